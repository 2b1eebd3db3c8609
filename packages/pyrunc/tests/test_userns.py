"""User namespaces (``linux.uidMappings``, ``linux.gidMappings``, a new ``user`` namespace), on
the real kernel and side by side with runc 1.1.5.

The container's root is host uid 100000 (and gid 100000), 65536 IDs mapped. runc and pyrunc both
resolve the rootfs as that user, so the bundles live in a directory it can pass through (pytest's
tmp_path is 0700); bind sources are opened with the runtime's own rights (runc 1.1 does too). The
busybox rootfs is root-owned 0755/0644: readable and executable by "others", which host uid 100000
is. Each probe's output is compared between the two runtimes where they agree by design.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pyrunc._errors import SpecError
from pyrunc._native.kernel import CloneFlags, MountFlags, OpKind
from pyrunc._plan.compile import compile_init
from pyrunc._plan.process import CAPABILITIES
from pyrunc._spec.config import RuntimeSpec

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


import pyrunc_tests_helpers as h

sh, setting, appending, removing = h.sh, h.setting, h.appending, h.removing

HOST_ROOT = 100000


def _user_namespace(config: dict[str, Any]) -> None:
    config["linux"]["namespaces"].append({"type": "user"})
    for name in ("uidMappings", "gidMappings"):  # a list each: cases append to one of them
        config["linux"][name] = [{"containerID": 0, "hostID": HOST_ROOT, "size": 65536}]


USERNS = (_user_namespace,)
_LAST_CAP = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
ALL_CAPS = setting(
    "process.capabilities",
    {name: list(CAPABILITIES[: _LAST_CAP + 1]) for name in ("bounding", "effective", "permitted")},
)
FULL_CAP_MASK = f"{(1 << (_LAST_CAP + 1)) - 1:016x}"
# A probe that would touch the host if the user namespace were missing runs only behind this.
MAPPED = f"grep -q '{HOST_ROOT}' /proc/self/uid_map || {{ echo NOT MAPPED; exit 99; }}; "


def needs_root(test: Any) -> Any:
    """Marks of a test that runs containers (as the other container suites mark theirs)."""
    for mark in (
        pytest.mark.integration,
        pytest.mark.cgroup,
    ):
        test = mark(test)
    return test


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture
def bundles() -> Iterator[Path]:
    """A directory for bundles that the container's root (host uid 100000) can pass through."""
    directory = Path(tempfile.mkdtemp(prefix="pyrunc-userns-"))
    directory.chmod(0o711)
    yield directory
    shutil.rmtree(directory)


@pytest.fixture
def rt(pyrunc_bin: Path, pyrunc_root: Path) -> Iterator[Any]:
    runtime = h.Runtime(pyrunc_bin, pyrunc_root)
    yield runtime
    runtime.cleanup()


@pytest.fixture
def runc(tmp_path: Path) -> Iterator[Any]:
    root = tmp_path / "runc-root"
    root.mkdir(mode=0o700)
    runtime = h.Runtime(h.RUNC, root)
    yield runtime
    runtime.cleanup()


@pytest.fixture
def runtimes(rt: Any, runc: Any) -> list[Any]:
    return [rt, runc]


def bundle(bundles: Path, args: list[str], *edits: Any) -> Path:
    return h.make_bundle(h.next_bundle_dir(bundles), args, *USERNS, *edits)


def run_both(runtimes: list[Any], bundles: Path, args: list[str], *edits: Any) -> dict[str, Any]:
    """Run the same user-namespaced bundle with each runtime; their results by runtime name."""
    results = {}
    for runtime in runtimes:
        results[runtime.name] = runtime.run(bundle(bundles, args, *edits))
    return results


def ok(result: Any) -> str:
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr}"
    return str(result.stdout)


def host_status(pid: int, *names: str) -> dict[str, list[str]]:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return {name: fields[name].split() for name in names}


def wait_for(condition: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


# -- the plan (no kernel) ------------------------------------------------------------------------


def _spec(*edits: Any) -> RuntimeSpec:
    from pyrunc._spec.config import default_spec

    config = default_spec().to_json()
    config["process"]["terminal"] = False
    for edit in (*USERNS, *edits):
        edit(config)
    return RuntimeSpec.from_json(config)


def test_plan_new_user_namespace(tmp_path: Path) -> None:
    (tmp_path / "rootfs").mkdir()
    (tmp_path / "data").mkdir()
    mount = {
        "destination": "/data",
        "type": "bind",
        "source": str(tmp_path / "data"),
        "options": ["rbind", "ro"],
    }
    plan = compile_init(_spec(appending("mounts", mount)), bundle=str(tmp_path))
    assert plan.clone_flags & CloneFlags.NEWUSER
    assert plan.uid_map == plan.gid_map == f"0 {HOST_ROOT} 65536\n"
    assert plan.root_ids == (HOST_ROOT, HOST_ROOT)
    order = [op.kind for op in plan.ops]
    root_at = next(i for i, op in enumerate(plan.ops) if op.kind == OpKind.SETRESUID and op.args["id"] == 0)
    # the parent's go, bind sources opened, root of the namespace, then everything else
    assert order.index(OpKind.WAIT) < order.index(OpKind.OPEN_SOURCE) < root_at < order.index(OpKind.MOUNT)
    # the ipc namespace is made by the namespace's root (it owns /dev/mqueue)
    assert not plan.clone_flags & CloneFlags.NEWIPC
    unshare = next(
        op for op in plan.ops if op.kind == OpKind.UNSHARE and op.args["flags"] == CloneFlags.NEWIPC
    )
    assert plan.ops.index(unshare) > root_at
    # no mknod: the host's device nodes are bound
    assert OpKind.MKNOD not in order
    assert any(
        op.kind == OpKind.MOUNT and op.args["source"] == op.args["target"] == "/dev/null" for op in plan.ops
    )
    # the bind is made from the opened source, and remounted keeping what the kernel locked
    (opened,) = [
        op for op in plan.ops if op.kind == OpKind.OPEN_SOURCE and op.args["path"] == str(tmp_path / "data")
    ]
    (bind,) = [op for op in plan.ops if op.kind == OpKind.MOUNT and op.args["target"] == "/data"]
    assert bind.args["source_slot"] == opened.args["slot"]
    (remount,) = [op for op in plan.ops if op.kind == OpKind.BIND_REMOUNT and op.args["path"] == "/data"]
    assert remount.args["flags"] & MountFlags.RDONLY and remount.args["cleared"] == 0


def test_plan_joined_user_namespace(tmp_path: Path) -> None:
    """Joined first, then the new namespaces unshared (so the joined one owns them), the init
    forked into the new pid namespace; no maps to write."""
    (tmp_path / "rootfs").mkdir()

    def join_user(config: dict[str, Any]) -> None:
        config["linux"]["namespaces"][-1]["path"] = "/proc/1/ns/user"
        config["linux"]["namespaces"][1]["path"] = "/proc/1/ns/net"

    mount = {"destination": "/data", "type": "bind", "source": str(tmp_path), "options": ["rbind"]}
    plan = compile_init(_spec(join_user, appending("mounts", mount)), bundle=str(tmp_path))
    assert plan.clone_flags == 0
    assert plan.uid_map is None and plan.root_ids == (HOST_ROOT, HOST_ROOT)
    order = [op.kind for op in plan.ops]
    setns = [op for op in plan.ops if op.kind == OpKind.SETNS]
    opened_in = {op.args["slot"]: op.args["path"] for op in plan.ops if op.kind == OpKind.OPEN_SOURCE}
    assert [opened_in[op.args["slot"]] for op in setns] == ["/proc/1/ns/user", "/proc/1/ns/net"]
    unshares = [op.args["flags"] for op in plan.ops if op.kind == OpKind.UNSHARE]
    assert unshares[:2] == [CloneFlags.NEWNS | CloneFlags.NEWUTS | CloneFlags.NEWIPC, CloneFlags.NEWPID]
    assert plan.ops.index(setns[-1]) < order.index(OpKind.UNSHARE) < order.index(OpKind.FORK)
    # the namespace files are all opened before the first join, the bind source after the fork
    opened = [op for op in plan.ops if op.kind == OpKind.OPEN_SOURCE]
    assert [op.args["path"] for op in opened] == ["/proc/1/ns/user", "/proc/1/ns/net", str(tmp_path)]
    assert plan.ops.index(opened[1]) < plan.ops.index(setns[0])
    assert order.index(OpKind.FORK) < plan.ops.index(opened[2]) < order.index(OpKind.SETRESUID)


def test_plan_user_namespace_needs_fork_mode(tmp_path: Path) -> None:
    (tmp_path / "rootfs").mkdir()
    with pytest.raises(ValueError, match="fork-mode"):
        compile_init(_spec(), bundle=str(tmp_path), vfork=True)


def test_plan_remount_names_explicitly_cleared_flags(tmp_path: Path) -> None:
    (tmp_path / "rootfs").mkdir()
    mount = {
        "destination": "/data",
        "type": "bind",
        "source": str(tmp_path),
        "options": ["rbind", "dev", "rw"],
    }
    mount2 = dict(mount, destination="/data2", options=["rbind", "dev", "nosuid"])
    plan = compile_init(_spec(appending("mounts", mount), appending("mounts", mount2)), bundle=str(tmp_path))
    # "dev" alone asks for nothing to set: no remount; with "nosuid", nodev must not be kept
    assert not [op for op in plan.ops if op.kind == OpKind.BIND_REMOUNT and op.args["path"] == "/data"]
    (remount,) = [op for op in plan.ops if op.kind == OpKind.BIND_REMOUNT and op.args["path"] == "/data2"]
    assert remount.args["cleared"] == MountFlags.NODEV


# -- who the container's root is -----------------------------------------------------------------


@pytest.mark.runc
@needs_root
def test_root_inside_is_uid_100000_outside(runtimes: list[Any], bundles: Path) -> None:
    probe = sh(
        "id; cat /proc/self/uid_map /proc/self/gid_map; grep -E '^(Uid|Gid|Groups):' /proc/self/status"
    )
    results = run_both(runtimes, bundles, probe)
    outputs = {name: ok(result) for name, result in results.items()}
    assert outputs["pyrunc"] == outputs["runc"]
    lines = outputs["pyrunc"].splitlines()
    assert lines[0] == "uid=0(root) gid=0(root)"
    assert lines[1].split() == lines[2].split() == ["0", str(HOST_ROOT), "65536"]
    assert lines[3].split() == ["Uid:", "0", "0", "0", "0"]
    assert lines[4].split() == ["Gid:", "0", "0", "0", "0"]


@pytest.mark.runc
@needs_root
@pytest.mark.parametrize(
    ("user", "inside", "host"),
    [
        ({"uid": 0, "gid": 0}, "uid=0(root) gid=0(root)", HOST_ROOT),
        ({"uid": 1000, "gid": 1000}, "uid=1000(app) gid=1000(app)", HOST_ROOT + 1000),
    ],
)
def test_host_sees_the_mapped_ids(
    runtimes: list[Any], bundles: Path, user: dict[str, int], inside: str, host: int
) -> None:
    """From the host, the init (waiting to be started, and then running) has the mapped IDs."""
    for runtime in runtimes:
        out = bundles / f"out-{runtime.name}"
        out.mkdir(mode=0o777)
        out.chmod(0o777)
        b = bundle(
            bundles,
            sh("id > /home/id; exec sleep 60"),
            setting("process.user", user),
            appending(
                "mounts", {"destination": "/home", "type": "bind", "source": str(out), "options": ["rbind"]}
            ),
        )
        container_id = runtime.create(b)
        pid = runtime.state(container_id)["pid"]
        assert host_status(pid, "Uid", "Gid") == {"Uid": [str(host)] * 4, "Gid": [str(host)] * 4}, (
            runtime.name
        )
        assert Path(f"/proc/{pid}/uid_map").read_text().split() == ["0", str(HOST_ROOT), "65536"]
        assert runtime("start", container_id).returncode == 0
        runtime.wait_status(container_id, "running")
        id_file = out / "id"
        wait_for(lambda f=id_file: f.exists() and f.read_text())  # type: ignore[misc]
        assert (out / "id").read_text() == inside + "\n", runtime.name
        assert (out / "id").stat().st_uid == host, runtime.name
        assert runtime("delete", "--force", container_id).returncode == 0


@needs_root
def test_exec_joins_the_user_namespace(rt: Any, bundles: Path) -> None:
    container_id = rt.create(bundle(bundles, ["sleep", "60"]))
    # runc 1.1 chowns no cgroup (v1, and the hybrid's empty unified tree) to the container's root
    cgroups = h.container_cgroups(container_id)
    assert cgroups and {(d.stat().st_uid, d.stat().st_gid) for d in cgroups} == {(0, 0)}
    # before start too: the init has not exec'd, its /proc/<pid>/ns are opened before joining
    assert ok(rt("exec", container_id, "id")) == "uid=0(root) gid=0(root)\n"
    assert rt("start", container_id).returncode == 0
    result = rt("exec", container_id, "sh", "-c", "id; cat /proc/self/uid_map")
    assert ok(result).splitlines()[0] == "uid=0(root) gid=0(root)"
    assert result.stdout.splitlines()[1].split() == ["0", str(HOST_ROOT), "65536"]
    pid_file = bundles / "exec.pid"
    assert rt("exec", "--detach", "--pid-file", pid_file, container_id, "sleep", "60").returncode == 0
    pid = int(pid_file.read_text())
    assert host_status(pid, "Uid")["Uid"] == [str(HOST_ROOT)] * 4
    assert rt("delete", "--force", container_id).returncode == 0


@pytest.mark.runc
@needs_root
def test_join_another_containers_user_namespace(runtimes: list[Any], bundles: Path) -> None:
    """A second container joins the first one's user and network namespaces by path: its own
    pid, mount, uts and ipc namespaces are made in (owned by) that user namespace, so it mounts
    its own proc and its init is pid 1 there."""
    probe = sh("echo $$; id; cat /proc/self/uid_map; ls /sys/class/net; hostname")
    outputs = {}
    for runtime in runtimes:
        first = runtime.create(bundle(bundles, ["sleep", "60"]))
        first_pid = runtime.state(first)["pid"]

        def join(config: dict[str, Any], pid: int = first_pid) -> None:
            for ns in config["linux"]["namespaces"]:
                if ns["type"] in ("user", "network"):
                    ns["path"] = f"/proc/{pid}/ns/{'net' if ns['type'] == 'network' else 'user'}"

        second = runtime.create(bundle(bundles, probe, join), None)
        pid = runtime.state(second)["pid"]
        for ns in ("user", "net"):
            assert os.readlink(f"/proc/{pid}/ns/{ns}") == os.readlink(f"/proc/{first_pid}/ns/{ns}"), (
                runtime.name
            )
        for ns in ("pid", "mnt", "uts", "ipc"):
            assert os.readlink(f"/proc/{pid}/ns/{ns}") != os.readlink(f"/proc/{first_pid}/ns/{ns}"), (
                runtime.name
            )
        assert host_status(pid, "Uid")["Uid"] == [str(HOST_ROOT)] * 4, runtime.name
        assert runtime("delete", "--force", second).returncode == 0
        outputs[runtime.name] = ok(runtime.run(bundle(bundles, probe, join)))
        assert runtime("delete", "--force", first).returncode == 0
    assert outputs["pyrunc"] == outputs["runc"]
    lines = outputs["pyrunc"].splitlines()
    assert lines[:2] == ["1", "uid=0(root) gid=0(root)"] and lines[2].split() == [
        "0",
        str(HOST_ROOT),
        "65536",
    ]


# -- what the container's root can do -------------------------------------------------------------


@pytest.mark.runc
@needs_root
def test_host_files_keep_their_host_owners(runtimes: list[Any], bundles: Path) -> None:
    """Through a bind mount, root in the container is only host uid 100000: a root-owned 0644 file
    reads but does not write (CAP_DAC_OVERRIDE does not reach IDs outside the namespace); a file
    owned by host uid 100000 writes."""
    probe = sh(
        "grep CapEff /proc/self/status; cat /home/root-file; "
        "echo more >> /home/root-file && echo root-file written || echo root-file refused; "
        "echo more >> /home/mapped-file && echo mapped-file written; ls -ln /home | sed 1d"
    )
    outputs = {}
    for runtime in runtimes:
        shared = bundles / f"shared-{runtime.name}"
        shared.mkdir(mode=0o755)
        (shared / "root-file").write_text("host data\n")
        (shared / "mapped-file").write_text("")
        os.chown(shared / "mapped-file", HOST_ROOT, HOST_ROOT)
        for name in ("root-file", "mapped-file"):
            (shared / name).chmod(0o644)
        mount = {"destination": "/home", "type": "bind", "source": str(shared), "options": ["rbind"]}
        result = runtime.run(bundle(bundles, probe, ALL_CAPS, appending("mounts", mount)))
        outputs[runtime.name] = ok(result)
        assert "can't create /home/root-file: Permission denied" in result.stderr, runtime.name
        assert (shared / "root-file").read_text() == "host data\n", runtime.name
        assert (shared / "mapped-file").read_text() == "more\n", runtime.name
    assert outputs["pyrunc"] == outputs["runc"]
    lines = outputs["pyrunc"].splitlines()
    assert lines[:4] == [f"CapEff:\t{FULL_CAP_MASK}", "host data", "root-file refused", "mapped-file written"]
    owners = {fields[-1]: (fields[2], fields[3]) for fields in map(str.split, lines[4:])}
    assert owners == {"mapped-file": ("0", "0"), "root-file": ("65534", "65534")}  # host root: unmapped


@pytest.mark.runc
@needs_root
def test_full_capabilities_only_over_its_own_namespaces(runtimes: list[Any], bundles: Path) -> None:
    """Every capability, but in the container's user namespace: it can mount a proc of its own pid
    namespace and name its own uts namespace, not make a device node (CAP_MKNOD counts only in
    the host's user namespace). Loading a kernel module cannot tell here: this kernel has no
    module support (init_module is ENOSYS for everyone)."""
    probe = sh(
        MAPPED + "grep CapEff /proc/self/status; mount -t proc proc /home && echo proc mounted; "
        "hostname own-name && hostname; mknod /dev/shm/null c 1 3; echo mknod=$?"
    )
    results = run_both(runtimes, bundles, probe, ALL_CAPS)
    outputs = {name: ok(result) for name, result in results.items()}
    assert outputs["pyrunc"] == outputs["runc"]
    assert outputs["pyrunc"] == f"CapEff:\t{FULL_CAP_MASK}\nproc mounted\nown-name\nmknod=1\n"
    for result in results.values():
        assert "mknod: /dev/shm/null: Operation not permitted" in result.stderr


@pytest.mark.runc
@needs_root
def test_no_power_over_the_hosts_namespaces(runtimes: list[Any], bundles: Path) -> None:
    """Without a uts or pid namespace of its own, the same root cannot rename the host (neither
    with sethostname nor through /proc/sys, writable here) or mount a proc of the host's pid
    namespace, whatever its capabilities."""
    host_name = socket.gethostname()

    def host_pid_and_uts(config: dict[str, Any]) -> None:
        config["linux"]["namespaces"] = [
            ns for ns in config["linux"]["namespaces"] if ns["type"] not in ("uts", "pid")
        ]
        config.pop("hostname", None)
        # A proc of the host's pid namespace can only be bound; /proc/sys left writable
        for m in config["mounts"]:
            if m["destination"] == "/proc":
                m.update(type="bind", source="/proc", options=["rbind"])
        config["linux"]["readonlyPaths"] = []

    probe = sh(
        MAPPED + "mount -t proc proc /proc; echo mount=$?; hostname other-name; echo hostname=$?; "
        "echo other-name > /proc/sys/kernel/hostname; echo write=$?"
    )
    results = run_both(runtimes, bundles, probe, ALL_CAPS, host_pid_and_uts)
    outputs = {name: ok(result) for name, result in results.items()}
    assert outputs["pyrunc"] == outputs["runc"] == "mount=1\nhostname=1\nwrite=1\n"
    for result in results.values():
        assert "mount: permission denied" in result.stderr
        assert "hostname: sethostname: Operation not permitted" in result.stderr
        assert "can't create /proc/sys/kernel/hostname: Permission denied" in result.stderr
    assert socket.gethostname() == host_name


@pytest.mark.runc
@needs_root
def test_devices_are_the_hosts_nodes(runtimes: list[Any], bundles: Path) -> None:
    """mknod is refused in a user namespace: /dev/null, /dev/zero ... and linux.devices are the
    host's nodes bound on empty files, as runc makes them."""
    fuse = {
        "path": "/dev/fuse",
        "type": "c",
        "major": 10,
        "minor": 229,
        "fileMode": 0o600,
        "uid": 0,
        "gid": 0,
    }
    probe = sh(
        "echo data > /dev/null && echo null written; head -c 4 /dev/zero | od -An -tx1; "
        "ls -ln /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty /dev/fuse | "
        "sed -E 's/ +[A-Z][a-z]{2} +[0-9]+ +[0-9:]+ / DATE /'"
    )
    results = run_both(runtimes, bundles, probe, appending("linux.devices", fuse))
    outputs = {name: ok(result) for name, result in results.items()}
    assert outputs["pyrunc"] == outputs["runc"]
    lines = outputs["pyrunc"].splitlines()
    assert lines[:2] == ["null written", " 00 00 00 00"]
    for line in lines[2:]:  # the host's node, its mode and owner: host root reads as nobody
        path = line.split()[-1]
        host = os.stat(path)
        assert line.startswith(("c", "b")) and line.split()[2:4] == ["65534", "65534"], line
        assert line.split()[4:6] == [f"{os.major(host.st_rdev)},", str(os.minor(host.st_rdev))], line


@pytest.mark.runc
@needs_root
def test_bind_remount_keeps_the_flags_the_kernel_locked(rt: Any, runc: Any, bundles: Path) -> None:
    """A read-only bind of a directory on a nosuid,nodev,noexec mount: the remount must keep
    those (the kernel locked them); pyrunc does (runc 1.1.5 does not and fails with EPERM). A
    mount that asks one of them off explicitly is refused by the kernel, named by the step."""
    locked = bundles / "locked"
    locked.mkdir(mode=0o755)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "nosuid,nodev,noexec,mode=755", "tmpfs", locked], check=True
    )
    try:
        (locked / "file").write_text("on a locked mount\n")
        mount = {"destination": "/home", "type": "bind", "source": str(locked), "options": ["rbind", "ro"]}
        probe = sh("cat /home/file; grep ' /home ' /proc/self/mountinfo | cut -d' ' -f6")
        out = ok(rt.run(bundle(bundles, probe, appending("mounts", mount))))
        assert out.splitlines()[0] == "on a locked mount"
        assert set(out.splitlines()[1].split(",")) >= {"ro", "nosuid", "nodev", "noexec"}
        assert runc.run(bundle(bundles, probe, appending("mounts", mount))).returncode != 0
        asks_dev = dict(mount, options=["rbind", "ro", "dev"])
        result = rt.run(bundle(bundles, probe, appending("mounts", asks_dev)))
        assert result.returncode == 1
        assert result.stderr.startswith("remount mounts[") and "Operation not permitted" in result.stderr
    finally:
        subprocess.run(["umount", locked], check=True)


# -- bad input: refused by field, nothing left behind ---------------------------------------------


def _without_user_namespace(config: dict[str, Any]) -> None:
    config["linux"]["namespaces"] = [ns for ns in config["linux"]["namespaces"] if ns["type"] != "user"]


BAD = {
    "mappings-without-user-namespace": (
        [_without_user_namespace],
        "linux.uidMappings: user namespace mappings specified, but the user namespace isn't enabled",
    ),
    "user-namespace-without-mappings": (
        [removing("linux.uidMappings"), removing("linux.gidMappings")],
        "linux.uidMappings: user namespaces enabled, but no uid mappings found",
    ),
    "no-gid-mappings": (
        [removing("linux.gidMappings")],
        "linux.gidMappings: user namespaces enabled, but no gid",
    ),
    "overlapping-container-ids": (
        [appending("linux.uidMappings", {"containerID": 1000, "hostID": 300000, "size": 10})],
        "linux.uidMappings[1]: container IDs 1000-1009 overlap those of linux.uidMappings[0] (0-65535)",
    ),
    "overlapping-host-ids": (
        [appending("linux.gidMappings", {"containerID": 70000, "hostID": 165535, "size": 10})],
        "linux.gidMappings[1]: host IDs 165535-165544 overlap those of linux.gidMappings[0] (100000-165535)",
    ),
    "size-zero": (
        [appending("linux.uidMappings", {"containerID": 70000, "hostID": 300000, "size": 0})],
        "linux.uidMappings[1].size: must be greater than 0",
    ),
    "past-the-last-id": (
        [appending("linux.uidMappings", {"containerID": 70000, "hostID": 4294967290, "size": 10})],
        "linux.uidMappings[1].size: hostID 4294967290 + size 10 goes past the last ID",
    ),
    "root-not-mapped": (
        [setting("linux.uidMappings", [{"containerID": 1, "hostID": HOST_ROOT, "size": 65536}])],
        "linux.uidMappings: user namespaces enabled, but no root uid mapping found",
    ),
    "user-not-mapped": (
        [setting("process.user", {"uid": 70000, "gid": 0})],
        "process.user.uid: uid 70000 is not mapped in the user namespace",
    ),
    "joined-user-namespace-without-mappings": (
        [
            removing("linux.uidMappings"),
            removing("linux.gidMappings"),
            lambda c: c["linux"]["namespaces"][-1].__setitem__("path", "/proc/1/ns/user"),
        ],
        "linux.uidMappings: user namespaces enabled, but no uid mappings found",  # runc 1.1 asks them too
    ),
    "joining-a-network-namespace-too": (
        [lambda c: c["linux"]["namespaces"].__setitem__(1, {"type": "network", "path": "/proc/1/ns/net"})],
        "linux.namespaces[1].path (joining a network namespace together with a new user namespace)",
    ),
}


@needs_root
@pytest.mark.parametrize("verb", ["create", "run"])
@pytest.mark.parametrize("case", BAD)
def test_bad_mappings_are_refused_by_field(rt: Any, bundles: Path, verb: str, case: str) -> None:
    edits, expected = BAD[case]
    b = bundle(bundles, ["true"], *edits)
    container_id = rt.new_id("bad")
    with h.subreaper(), h.nothing_left_behind(rt.root, container_id):
        result = rt(verb, "--bundle", b, container_id, timeout=30)
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith(expected), result.stderr
    assert result.stderr.count("\n") == 1


def test_bad_mappings_raise_spec_errors(tmp_path: Path) -> None:
    (tmp_path / "rootfs").mkdir()
    with pytest.raises(SpecError) as caught:
        compile_init(_spec(*BAD["overlapping-container-ids"][0]), bundle=str(tmp_path))
    assert caught.value.field == "linux.uidMappings[1]"


@needs_root
def test_rootfs_out_of_reach_of_the_mapped_root_is_explained(rt: Any, tmp_path: Path) -> None:
    """As with runc, the rootfs is reached as the container's root: in a 0700 directory it is not."""
    b = h.make_bundle(h.next_bundle_dir(tmp_path), ["true"], *USERNS)
    container_id = rt.new_id("bad")
    with h.subreaper(), h.nothing_left_behind(rt.root, container_id):
        result = rt("run", "--bundle", b, container_id, timeout=30)
    assert result.returncode == 1
    assert result.stderr.startswith(f"bind rootfs {(b / 'rootfs').resolve()}: Permission denied")
    assert f"host uid {HOST_ROOT}" in result.stderr


def test_features_report_user_namespaces(rt: Any) -> None:
    import json

    features = json.loads(ok(rt("features")))
    assert "user" in features["linux"]["namespaces"]


def test_rootless_spec_stays_refused(rt: Any, tmp_path: Path) -> None:
    result = rt("spec", "--rootless", "--bundle", tmp_path)
    assert result.returncode == 1 and "rootless mode" in result.stderr
    assert not (tmp_path / "config.json").exists()


@needs_root
def test_sysctls_in_a_user_namespace(runtimes: list[Any], bundles: Path) -> None:
    """The init writes linux.sysctl as the user namespace's root, into its own namespaces (those of
    a network and an ipc namespace the user namespace owns), as runc does; the host's stay."""
    files = ("/proc/sys/net/ipv4/ip_unprivileged_port_start", "/proc/sys/kernel/shmmni")
    host = [Path(path).read_text() for path in files]
    sysctl = setting("linux.sysctl", {"net.ipv4.ip_unprivileged_port_start": "80", "kernel.shmmni": "1234"})
    results = run_both(runtimes, bundles, sh(MAPPED + f"cat {' '.join(files)}"), sysctl)
    assert [ok(result).split() for result in results.values()] == [["80", "1234"]] * 2
    assert [Path(path).read_text() for path in files] == host
