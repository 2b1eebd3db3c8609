"""Namespaces created and joined, --no-pivot, time offsets and live updates, on the real kernel."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import pyrunc_tests_helpers as h
import pytest

from pyrunc._native.kernel import NAMESPACE_FILES, CloneFlags
from pyrunc.testing import make_busybox_bundle

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


class Runtime:
    """``pyrunc --root R`` with bundles under a temp dir; force-deletes what it created."""

    def __init__(self, binary: Path, root: Path, tmp: Path) -> None:
        self.binary = binary
        self.root = root
        self.tmp = tmp
        self.created: list[str] = []

    def bundle(self, name: str, args: list[str], edit: Callable[[dict], None] | None = None) -> Path:  # type: ignore[type-arg]
        path = make_busybox_bundle(self.tmp / name, args)
        if edit is not None:
            config = json.loads((path / "config.json").read_text())
            edit(config)
            (path / "config.json").write_text(json.dumps(config))
        return path

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        if args[0] in ("create", "run"):
            self.created.append(args[-1])
        return subprocess.run(
            [str(self.binary), "--root", str(self.root), *args],
            capture_output=True,
            text=True,
            check=check,
            timeout=60,
        )

    def detached(self, bundle: Path, container_id: str) -> int:
        """``run -d``: the container keeps the stdio it is given, so give it /dev/null."""
        self.created.append(container_id)
        subprocess.run(
            [str(self.binary), "--root", str(self.root), "run", "-d", "-b", str(bundle), container_id],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=True,
            timeout=60,
        )
        pid: int = json.loads(self("state", container_id).stdout)["pid"]
        return pid

    def cleanup(self) -> None:
        for container_id in self.created:
            self("delete", "--force", container_id, check=False)


@pytest.fixture
def rt(pyrunc_bin: Path, pyrunc_root: Path, tmp_path: Path) -> Iterator[Runtime]:
    runtime = Runtime(pyrunc_bin, pyrunc_root, tmp_path)
    try:
        yield runtime
    finally:
        runtime.cleanup()


def test_no_pivot_runs_in_a_chroot(rt: Runtime) -> None:
    bundle = rt.bundle("b", ["sh", "-c", "echo $$; ls /"])
    out = rt("run", "--no-pivot", "-b", str(bundle), "np").stdout.splitlines()
    assert out[0] == "1"
    assert "bin" in out[1:] and "work" not in out[1:]


def add_namespace(ns_type: str, path: str | None = None) -> Callable[[dict], None]:  # type: ignore[type-arg]
    def edit(config: dict) -> None:  # type: ignore[type-arg]
        namespaces = [ns for ns in config["linux"]["namespaces"] if ns["type"] != ns_type]
        namespaces.append({"type": ns_type, "path": path} if path else {"type": ns_type})
        config["linux"]["namespaces"] = namespaces

    return edit


def test_time_namespace_offsets(rt: Runtime) -> None:
    def edit(config: dict) -> None:  # type: ignore[type-arg]
        add_namespace("time")(config)
        config["linux"]["timeOffsets"] = {"boottime": {"secs": 86400 * 365}, "monotonic": {"secs": 86400}}

    bundle = rt.bundle("b", ["cat", "/proc/uptime"], edit)
    inside = float(rt("run", "-b", str(bundle), "tns").stdout.split()[0])
    with open("/proc/uptime") as f:
        host = float(f.read().split()[0])
    assert inside - host == pytest.approx(86400 * 365, abs=60)
    assert os.readlink("/proc/self/ns/time") == os.readlink("/proc/self/ns/time_for_children")


def test_cgroup_namespace_hides_host_paths(rt: Runtime) -> None:
    bundle = rt.bundle("b", ["cat", "/proc/self/cgroup"], add_namespace("cgroup"))
    lines = rt("run", "-b", str(bundle), "cns").stdout.splitlines()
    v1 = [line for line in lines if not line.startswith("0::")]
    assert v1 and all(line.endswith(":/") for line in v1), lines


def test_joining_another_containers_namespaces(rt: Runtime) -> None:
    first = rt.bundle("first", ["sleep", "60"])
    pid = rt.detached(first, "c1")
    joined = add_namespace("network", f"/proc/{pid}/ns/net")

    def edit(config: dict) -> None:  # type: ignore[type-arg]
        joined(config)
        add_namespace("pid", f"/proc/{pid}/ns/pid")(config)

    second = rt.bundle("second", ["sh", "-c", "readlink /proc/self/ns/net; ps -o pid,args"], edit)
    out = rt("run", "-b", str(second), "c2").stdout
    assert out.splitlines()[0] == os.readlink(f"/proc/{pid}/ns/net")
    assert "sleep 60" in out  # c1's init is visible in the shared pid namespace


def test_update_changes_limits_of_a_running_container(rt: Runtime) -> None:
    bundle = rt.bundle("b", ["sleep", "60"])
    rt.detached(bundle, "up")
    resources = json.dumps({"memory": {"limit": 64 << 20}, "pids": {"limit": 20}})
    subprocess.run(
        [str(rt.binary), "--root", str(rt.root), "update", "--resources=-", "up"],
        input=resources,
        text=True,
        check=True,
        capture_output=True,
    )
    rt("update", "--cpu-share", "512", "up")
    probe = "cd /sys/fs/cgroup; cat memory/memory.limit_in_bytes pids/pids.max cpu/cpu.shares"
    out = rt("exec", "up", "sh", "-c", probe).stdout.split()
    assert out == [str(64 << 20), "20", "512"]


def test_preserve_fds_passes_extra_fds_and_no_others(rt: Runtime, tmp_path: Path) -> None:
    bundle = rt.bundle("b", ["sh", "-c", "cat <&3; [ -e /proc/$$/fd/4 ] && echo leaked || echo clean"])
    (tmp_path / "secret").write_text("through fd 3\n")
    # A shell opens fd 3 (preserved) and fd 4 (not preserved), then becomes pyrunc.
    command = f'exec 3<"{tmp_path}/secret" 4<"{tmp_path}"; exec "$@"'
    rt.created.append("fds")
    proc = subprocess.run(
        ["sh", "-c", command, "sh", str(rt.binary), "--root", str(rt.root), "run", "--preserve-fds", "1",
         "-b", str(bundle), "fds"],
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    assert proc.stdout.splitlines() == ["through fd 3", "clean"], proc.stderr


def test_events_stats_reads_the_cgroups(rt: Runtime) -> None:
    def edit(config: dict) -> None:  # type: ignore[type-arg]
        config["linux"]["resources"] = {"memory": {"limit": 48 << 20}, "pids": {"limit": 30}}

    rt.detached(rt.bundle("b", ["sleep", "60"], edit), "ev")
    event = json.loads(rt("events", "--stats", "ev").stdout)
    assert event["type"] == "stats" and event["id"] == "ev"
    assert event["data"]["memory"]["usage"]["limit"] == 48 << 20
    assert event["data"]["memory"]["usage"]["usage"] > 0
    assert event["data"]["pids"] == {"current": 1, "limit": 30}
    assert event["data"]["cpu"]["usage"]["total"] > 0
    assert rt("events", "ev", check=False).returncode == 1


# -- namespaces made on the host side and joined by path (runtime-spec conformance) -----------------


@pytest.mark.parametrize("by", ["proc-path", "bind-mounted-nsfs-file"])
def test_joining_a_mount_namespace_made_on_the_host_side(rt: Runtime, tmp_path: Path, by: str) -> None:
    """The container joins a mount namespace it did not make, and its rootfs is the one seen in that
    namespace (as with runc): here a directory that is empty on the host, with a busybox rootfs bound
    on it in that namespace alone, and a tmpfs of that namespace on its /home."""
    real = make_busybox_bundle(tmp_path / "real", ["true"])
    empty_on_host = tmp_path / "ns-only-root"
    empty_on_host.mkdir()
    setup = h.MAKE_MOUNTS_PRIVATE + (
        f"assert libc.mount({str(real / 'rootfs').encode()!r}, {str(empty_on_host).encode()!r}, None, "
        f"{h.MS_BIND | h.MS_REC}, None) == 0\n"
        f"assert libc.mount(b'tmpfs', {str(empty_on_host / 'home').encode()!r}, b'tmpfs', 0, None) == 0\n"
        f"open({str(empty_on_host / 'home' / 'marker')!r}, 'w').write('only in the joined namespace')\n"
    )

    def run_in(path: str) -> str:
        def edit(config: dict) -> None:  # type: ignore[type-arg]
            config["root"]["path"] = str(empty_on_host)
            add_namespace("mount", path)(config)

        bundle = rt.bundle(f"b-{by}", ["sh", "-c", "cat /home/marker; echo; ls /bin/busybox"], edit)
        result = rt("run", "-b", str(bundle), f"mnt-{by}", check=False)
        assert result.returncode == 0, result.stderr
        return result.stdout

    if by == "proc-path":
        with h.namespace_holder(CloneFlags.NEWNS, setup) as holder:
            out = run_in(holder.ns("mnt"))
    else:
        nsfs = tmp_path / "mntns"
        nsfs.touch()
        with h.namespace_holder(CloneFlags.NEWNS, setup) as holder:
            h.mount(holder.ns("mnt"), nsfs, flags=h.MS_BIND)
        try:  # the holder is gone: the bind mount alone keeps its namespace
            out = run_in(str(nsfs))
        finally:
            h.unmount(nsfs)
    assert out == "only in the joined namespace\n/bin/busybox\n"
    assert os.listdir(empty_on_host) == []  # the runtime's own view: nothing was there, nothing is


def test_hostname_in_a_joined_uts_namespace(rt: Runtime) -> None:
    """runtime-spec: hostname needs a uts namespace, new or joined; the names go to the joined one."""
    host = (socket.gethostname(), Path("/proc/sys/kernel/domainname").read_text())
    with h.namespace_holder(CloneFlags.NEWUTS) as holder:

        def edit(config: dict) -> None:  # type: ignore[type-arg]
            add_namespace("uts", holder.ns("uts"))(config)
            config["hostname"] = "joined-uts"
            config["linux"]["sysctl"] = {"kernel.domainname": "joined.example"}

        bundle = rt.bundle("b", ["sh", "-c", "hostname; cat /proc/sys/kernel/domainname"], edit)
        result = rt("run", "-b", str(bundle), "utsjoin", check=False)
        assert (result.returncode, result.stdout) == (0, "joined-uts\njoined.example\n"), result.stderr
        assert holder.read("/proc/sys/kernel/hostname") == "joined-uts\n"
        assert holder.read("/proc/sys/kernel/domainname") == "joined.example\n"
    assert (socket.gethostname(), Path("/proc/sys/kernel/domainname").read_text()) == host


def test_unknown_capabilities_are_warnings(rt: Runtime, tmp_path: Path) -> None:
    """runtime-spec 1.1: a capability that cannot be mapped is logged as a warning, and the runtime
    SHOULD NOT fail. runc 1.1 says the same words; with --log they go to the log, as runc's do."""

    def edit(config: dict) -> None:  # type: ignore[type-arg]
        for name in ("bounding", "effective", "permitted"):
            config["process"]["capabilities"][name] += ["CAP_TEST", "kill"]

    bundle = rt.bundle("b", ["sh", "-c", "grep CapBnd /proc/self/status"], edit)
    result = rt("run", "-b", str(bundle), "caps", check=False)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "pyrunc: warning: ignoring unknown or unavailable capabilities: [CAP_TEST kill]\n"
    # the known ones were granted: runc's default set, CAP_AUDIT_WRITE, CAP_KILL, CAP_NET_BIND_SERVICE
    assert result.stdout.split() == ["CapBnd:", f"{1 << 29 | 1 << 5 | 1 << 10:016x}"]
    log = tmp_path / "log.json"
    logged = subprocess.run(
        [str(rt.binary), "--root", str(rt.root), "--log", str(log), "--log-format", "json", "run", "-b",
         str(bundle), "caps-logged"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    rt.created.append("caps-logged")
    assert (logged.returncode, logged.stderr) == (0, "")
    (entry,) = [json.loads(line) for line in log.read_text().splitlines()]
    assert (entry["level"], entry["msg"]) == (
        "warning",
        "ignoring unknown or unavailable capabilities: [CAP_TEST kill]",
    )


def test_features_name_every_namespace_as_joinable(tmp_path: Path) -> None:
    """``pyrunc features`` lists the namespaces pyrunc creates or joins: each of them can be joined."""
    from pyrunc._features import features
    from pyrunc._plan.compile import compile_init
    from pyrunc._spec.config import RuntimeSpec

    (tmp_path / "rootfs").mkdir()
    linux = features()["linux"]
    assert isinstance(linux, dict)
    for ns_type in linux["namespaces"]:
        config = json.loads((make_busybox_bundle(tmp_path / ns_type, ["true"]) / "config.json").read_text())
        add_namespace(ns_type, f"/proc/{os.getpid()}/ns/{NAMESPACE_FILES[ns_type]}")(config)
        if ns_type == "user":
            config["linux"]["uidMappings"] = config["linux"]["gidMappings"] = [
                {"containerID": 0, "hostID": 0, "size": 1}
            ]
            config["linux"]["namespaces"] = [ns for ns in config["linux"]["namespaces"] if ns.get("path")]
            add_namespace("mount")(config)
            del config["hostname"]  # no uts namespace left to set it in
        plan = compile_init(RuntimeSpec.from_json(config), bundle=str(tmp_path / ns_type))
        assert ns_type in plan.joins
