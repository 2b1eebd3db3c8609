"""What a process sees from inside a container started by ``pyrunc run``, on the real kernel.

Every test builds a busybox bundle, edits its config.json, runs it with the installed ``pyrunc``
(``--root`` in tmp_path) and looks at what the container printed. ``run`` deletes the container
when it exits; the ``rt`` fixture still runs ``delete --force`` on every id it handed out. The last
part drives the Python API, ``pyrunc.run``.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import pyrunc_tests_helpers as h
import pytest

import pyrunc

sh, setting, appending, MiB = h.sh, h.setting, h.appending, h.MiB

pytestmark = [
    pytest.mark.integration,
    pytest.mark.cgroup,
]


@pytest.fixture
def rt(pyrunc_bin: Path, pyrunc_root: Path) -> Any:
    runtime = h.Runtime(pyrunc_bin, pyrunc_root)
    yield runtime
    runtime.cleanup()


def run_ok(rt: Any, tmp_path: Path, args: list[str], *edits: Any) -> str:
    """Run the container, assert it exited 0, return its stdout."""
    result = h.run_container(rt, tmp_path, args, *edits)
    assert result.returncode == 0, f"exit {result.returncode}, stderr: {result.stderr}"
    return str(result.stdout)


def status_fields(text: str, *names: str) -> dict[str, str]:
    """Lines ``Name:\\tvalue`` of /proc/self/status, by name."""
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    return {name: fields[name].strip() for name in names}


# -- namespaces ----------------------------------------------------------------------------------


def test_init_is_pid_1(rt: Any, tmp_path: Path) -> None:
    assert run_ok(rt, tmp_path, sh("echo $$")) == "1\n"


def test_proc_shows_only_the_containers_pids(rt: Any, tmp_path: Path) -> None:
    # A shell loop forks nothing: the init alone is in the pid namespace.
    out = run_ok(rt, tmp_path, sh("for p in /proc/[0-9]*; do echo ${p#/proc/}; done"))
    assert out.split() == ["1"]


def test_proc_1_cmdline_is_the_containers(rt: Any, tmp_path: Path) -> None:
    args = ["cat", "/proc/1/cmdline", "/proc/self/cmdline"]
    assert run_ok(rt, tmp_path, args) == ("\0".join(args) + "\0") * 2


def test_own_hostname(rt: Any, tmp_path: Path) -> None:
    host_name = socket.gethostname()
    out = run_ok(rt, tmp_path, sh("hostname; cat /proc/sys/kernel/hostname"), setting("hostname", "iso-box"))
    assert out == "iso-box\niso-box\n"
    assert socket.gethostname() == host_name != "iso-box"


def test_own_mount_table(rt: Any, tmp_path: Path) -> None:
    host_dir = tmp_path / "host-only"
    host_dir.mkdir()
    args = sh(f"cat /proc/self/mountinfo; echo ---; ls {host_dir} 2>&1; cat /proc/1/mountinfo | wc -l")
    bundle = h.make_bundle(h.next_bundle_dir(tmp_path), args)
    config = h.read_config(bundle)
    result = rt.run(bundle)
    assert result.returncode == 0, result.stderr
    mountinfo, _, rest = result.stdout.partition("---\n")
    entries = [line.split() for line in mountinfo.splitlines()]
    points = {fields[4] for fields in entries}
    expected = {"/", *(m["destination"] for m in config["mounts"])}
    expected |= set(config["linux"]["maskedPaths"]) | set(config["linux"]["readonlyPaths"])
    unexpected = {p for p in points - expected if not p.startswith("/sys/fs/cgroup/")}
    assert not unexpected, f"mounts that are not the container's own: {unexpected}"
    # The root is the bundle's rootfs (pivot_root), the init sees the same table.
    (root_entry,) = [fields for fields in entries if fields[4] == "/"]
    assert root_entry[3] == str((bundle / "rootfs").resolve())
    assert f"{host_dir}: No such file or directory" in rest  # the host's files are out of sight
    assert int(rest.split()[-1]) == len(entries)


# -- user, cwd, env, rlimits ---------------------------------------------------------------------


def test_user_uid_gid_and_additional_groups(rt: Any, tmp_path: Path) -> None:
    out = run_ok(
        rt,
        tmp_path,
        sh("id; cat /proc/self/status"),
        setting("process.user", {"uid": 1000, "gid": 1000, "additionalGids": [5]}),
    )
    assert out.splitlines()[0] == "uid=1000(app) gid=1000(app) groups=5(tty)"
    fields = status_fields(out, "Uid", "Gid", "Groups")
    assert fields["Uid"].split() == ["1000"] * 4
    assert fields["Gid"].split() == ["1000"] * 4
    assert fields["Groups"].split() == ["5"]


def test_cwd_and_env_are_honoured(rt: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYRUNC_TEST_HOST_ONLY", "leaked")  # pyrunc's own environment stays outside
    out = run_ok(
        rt,
        tmp_path,
        sh("pwd; env"),
        setting("process.cwd", "/home/app"),
        setting("process.env", ["PATH=/bin", "GREETING=hello world", "EMPTY="]),
    )
    lines = out.splitlines()
    assert lines[0] == "/home/app"
    env = set(lines[1:])
    assert {"PATH=/bin", "GREETING=hello world", "EMPTY="} <= env
    assert not [line for line in env if line.startswith("PYRUNC_TEST_HOST_ONLY")]


def test_missing_cwd_is_created(rt: Any, tmp_path: Path) -> None:
    assert run_ok(rt, tmp_path, sh("pwd"), setting("process.cwd", "/srv/work/dir")) == "/srv/work/dir\n"


def test_rlimit_nofile(rt: Any, tmp_path: Path) -> None:
    rlimits = [{"type": "RLIMIT_NOFILE", "soft": 321, "hard": 654}]
    out = run_ok(rt, tmp_path, sh("ulimit -n; ulimit -Hn"), setting("process.rlimits", rlimits))
    assert out == "321\n654\n"


# -- privileges ----------------------------------------------------------------------------------

_KILL_CHOWN = ["CAP_KILL", "CAP_CHOWN"]


@pytest.mark.parametrize(
    ("user", "caps", "expected"),
    [
        pytest.param(
            {"uid": 0, "gid": 0},
            {"bounding": _KILL_CHOWN, "effective": _KILL_CHOWN, "permitted": _KILL_CHOWN},
            {"CapInh": 0, "CapPrm": 0x21, "CapEff": 0x21, "CapBnd": 0x21, "CapAmb": 0},
            id="root-keeps-kill-chown",
        ),
        pytest.param(
            {"uid": 1000, "gid": 1000},
            dict.fromkeys(("bounding", "effective", "permitted", "inheritable", "ambient"), _KILL_CHOWN),
            {"CapInh": 0x21, "CapPrm": 0x21, "CapEff": 0x21, "CapBnd": 0x21, "CapAmb": 0x21},
            id="uid1000-keeps-kill-chown-through-ambient",
        ),
        pytest.param(
            {"uid": 1000, "gid": 1000},
            {"bounding": _KILL_CHOWN, "effective": _KILL_CHOWN, "permitted": _KILL_CHOWN},
            {"CapInh": 0, "CapPrm": 0, "CapEff": 0, "CapBnd": 0x21, "CapAmb": 0},
            id="uid1000-without-ambient-loses-them-at-exec",
        ),
        pytest.param(
            {"uid": 0, "gid": 0},
            {"bounding": [], "effective": [], "permitted": []},
            {"CapInh": 0, "CapPrm": 0, "CapEff": 0, "CapBnd": 0, "CapAmb": 0},
            id="root-with-empty-sets",
        ),
        pytest.param(
            {"uid": 0, "gid": 0},
            None,
            {"CapInh": 0, "CapPrm": 0, "CapEff": 0, "CapBnd": 0, "CapAmb": 0},
            id="root-without-a-capabilities-member",
        ),
    ],
)
def test_capability_sets(
    rt: Any, tmp_path: Path, user: dict[str, int], caps: dict[str, list[str]] | None, expected: dict[str, int]
) -> None:
    out = run_ok(
        rt,
        tmp_path,
        sh("cat /proc/self/status"),
        setting("process.user", user),
        setting("process.capabilities", caps) if caps is not None else h.removing("process.capabilities"),
    )
    fields = status_fields(out, *expected)
    assert {name: int(value, 16) for name, value in fields.items()} == expected


@pytest.mark.parametrize(("no_new_privileges", "expected"), [(True, "1"), (False, "0")])
def test_no_new_privileges(rt: Any, tmp_path: Path, no_new_privileges: bool, expected: str) -> None:
    out = run_ok(
        rt, tmp_path, sh("cat /proc/self/status"), setting("process.noNewPrivileges", no_new_privileges)
    )
    assert status_fields(out, "NoNewPrivs") == {"NoNewPrivs": expected}


# -- masked and read-only paths, read-only root --------------------------------------------------


def test_default_masked_paths_read_empty(rt: Any, tmp_path: Path) -> None:
    # /proc/timer_list has content on the host: masked, it reads as nothing.
    assert Path("/proc/timer_list").read_bytes()
    script = (
        "cat /proc/kcore 2>/dev/null | wc -c; wc -c < /proc/keys; wc -c < /proc/timer_list; "
        "ls -A /proc/acpi | wc -l; ls -A /sys/firmware | wc -l"
    )
    assert run_ok(rt, tmp_path, sh(script)).split() == ["0"] * 5


def test_masked_paths_of_the_config(rt: Any, tmp_path: Path) -> None:
    bundle = h.make_bundle(
        h.next_bundle_dir(tmp_path),
        sh(
            "cat /etc/secret; echo rc=$?; ls -A /srv/private; echo rc=$?; "
            "touch /srv/private/new 2>&1; echo rc=$?"
        ),
        appending("linux.maskedPaths", "/etc/secret"),
        appending("linux.maskedPaths", "/srv/private"),
    )
    rootfs = bundle / "rootfs"
    (rootfs / "etc/secret").write_text("s3cret\n")
    (rootfs / "srv/private").mkdir(parents=True)
    (rootfs / "srv/private/key").write_text("k3y\n")
    result = rt.run(bundle)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:2] == ["rc=0", "rc=0"]  # both readable, both empty
    assert "Read-only file system" in lines[2] and lines[3] != "rc=0"
    assert (rootfs / "etc/secret").read_text() == "s3cret\n"
    assert sorted(os.listdir(rootfs / "srv/private")) == ["key"]


def test_readonly_proc_sys(rt: Any, tmp_path: Path) -> None:
    out = run_ok(rt, tmp_path, sh("(echo evil > /proc/sys/kernel/hostname) 2>&1; echo rc=$?; hostname"))
    lines = out.splitlines()
    assert "Read-only file system" in lines[0]
    assert lines[1] != "rc=0"
    assert lines[2] == "pyrunc"


def test_readonly_paths_of_the_config(rt: Any, tmp_path: Path) -> None:
    bundle = h.make_bundle(
        h.next_bundle_dir(tmp_path),
        sh("(echo x > /data/new) 2>&1; echo rc=$?; echo x > /tmp/new; echo rc=$?; cat /data/old"),
        setting("root.readonly", False),
        appending("linux.readonlyPaths", "/data"),
    )
    (bundle / "rootfs/data").mkdir()
    (bundle / "rootfs/data/old").write_text("still readable\n")
    result = rt.run(bundle)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "Read-only file system" in lines[0] and lines[1] != "rc=0"
    assert lines[2:] == ["rc=0", "still readable"]
    assert not (bundle / "rootfs/data/new").exists()
    assert (bundle / "rootfs/tmp/new").read_text() == "x\n"


def test_readonly_root(rt: Any, tmp_path: Path) -> None:
    result = h.run_container(rt, tmp_path, ["touch", "/x"], setting("root.readonly", True))
    assert result.returncode != 0
    assert "Read-only file system" in result.stderr


def test_writable_root_writes_to_the_rootfs(rt: Any, tmp_path: Path) -> None:
    bundle = h.make_bundle(
        h.next_bundle_dir(tmp_path), ["sh", "-c", "echo hi > /x"], setting("root.readonly", False)
    )
    result = rt.run(bundle)
    assert result.returncode == 0, result.stderr
    assert (bundle / "rootfs/x").read_text() == "hi\n"


# -- sysctl and network --------------------------------------------------------------------------


def test_sysctl_in_the_containers_namespaces(rt: Any, tmp_path: Path) -> None:
    forward = Path("/proc/sys/net/ipv4/ip_forward")
    rmid = Path("/proc/sys/kernel/shm_rmid_forced")
    host_before = (forward.read_text(), rmid.read_text())
    # Values that differ from the host's, whatever they are: the test sees where they were written.
    wanted = ["0" if value.strip() == "1" else "1" for value in host_before]
    out = run_ok(
        rt,
        tmp_path,
        sh("cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shm_rmid_forced"),
        setting("linux.sysctl", {"net.ipv4.ip_forward": wanted[0], "kernel.shm_rmid_forced": wanted[1]}),
    )
    assert out.split() == wanted
    assert (forward.read_text(), rmid.read_text()) == host_before


def test_new_network_namespace_has_only_lo_up(rt: Any, tmp_path: Path) -> None:
    out = run_ok(rt, tmp_path, sh("ls /sys/class/net; echo ---; cat /sys/class/net/lo/flags; ip -o -4 addr"))
    links, _, rest = out.partition("---\n")
    assert links.split() == ["lo"]
    flags, _, addresses = rest.partition("\n")
    assert int(flags, 16) & 0x1, "lo is not UP"  # IFF_UP
    assert "127.0.0.1" in addresses


# -- cgroup limits -------------------------------------------------------------------------------


def test_memory_limit_is_set(rt: Any, tmp_path: Path) -> None:
    out = run_ok(
        rt,
        tmp_path,
        ["cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"],
        setting("linux.resources.memory", {"limit": 32 * MiB}),
    )
    assert int(out) == 32 * MiB


def test_memory_limit_kills_a_greedy_process(rt: Any, tmp_path: Path) -> None:
    # tail keeps the current line of /dev/zero (no newline ever comes) in memory: it grows until killed.
    result = h.run_container(
        rt, tmp_path, ["tail", "/dev/zero"], setting("linux.resources.memory", {"limit": 32 * MiB})
    )
    assert result.returncode == 137, result.stderr


def test_pids_limit_stops_a_fork_loop(rt: Any, tmp_path: Path) -> None:
    result = h.run_container(
        rt,
        tmp_path,
        sh("cat /sys/fs/cgroup/pids/pids.max; for i in 1 2 3 4 5 6 7 8; do sleep 30 & done; echo looped"),
        setting("linux.resources.pids", {"limit": 5}),
    )
    assert result.stdout.splitlines()[0] == "5"
    assert "can't fork" in result.stderr
    assert "Resource temporarily unavailable" in result.stderr


# -- the Python API ------------------------------------------------------------------------------


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    return h.make_bundle(tmp_path / "api", ["true"]) / "rootfs"


def _api_cgroups() -> list[Path]:
    """Cgroups of pyrunc.run calls made by this process (``<own>/pyrunc/run-<pid>-<n>``)."""
    return [c for d in h.own_cgroup_dirs() for c in d.glob(f"pyrunc/run-{os.getpid()}-*")]


@pytest.fixture
def no_api_cgroups_left() -> Any:
    assert not _api_cgroups()
    yield
    assert not _api_cgroups()


@pytest.mark.usefixtures("no_api_cgroups_left")
def test_api_returns_code_and_output(rootfs: Path) -> None:
    result = pyrunc.run(
        ["sh", "-c", "echo hi; echo err >&2; exit 3"],
        rootfs=str(rootfs),
        memory_limit=64 * MiB,
        pids_limit=32,
    )
    assert (result.returncode, result.stdout, result.stderr) == (3, b"hi\n", b"err\n")
    assert result.oom_killed is False


@pytest.mark.usefixtures("no_api_cgroups_left")
def test_api_oom_kill(rootfs: Path) -> None:
    result = pyrunc.run(["tail", "/dev/zero"], rootfs=str(rootfs), memory_limit=32 * MiB)
    assert result.returncode == 137
    assert result.oom_killed is True


@pytest.mark.usefixtures("no_api_cgroups_left")
def test_api_pids_limit(rootfs: Path) -> None:
    result = pyrunc.run(
        ["sh", "-c", "for i in 1 2 3 4 5 6 7 8; do sleep 30 & done"], rootfs=str(rootfs), pids_limit=5
    )
    assert b"can't fork" in result.stderr


def test_api_network(rootfs: Path) -> None:
    isolated = pyrunc.run(["ls", "/sys/class/net"], rootfs=str(rootfs), network=False)
    assert isolated.stdout.split() == [b"lo"]
    before = set(os.listdir("/sys/class/net"))
    shared = set(
        pyrunc.run(["ls", "/sys/class/net"], rootfs=str(rootfs), network=True).stdout.decode().split()
    )
    after = set(os.listdir("/sys/class/net"))
    assert before & after <= shared <= before | after  # the host's links (others may come and go)
    assert len(shared) > 1


def test_api_user_cwd_env_hostname_input(rootfs: Path) -> None:
    result = pyrunc.run(
        ["sh", "-c", "id -u; id -g; pwd; echo $A; hostname; cat"],
        rootfs=str(rootfs),
        user=(1000, 1000),
        cwd="/tmp",
        env=["A=1", "PATH=/bin"],
        hostname="api-box",
        input=b"from stdin",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"1000\n1000\n/tmp\n1\napi-box\nfrom stdin"


@pytest.mark.usefixtures("no_api_cgroups_left")
def test_api_timeout_kills_the_container(rootfs: Path) -> None:
    with pytest.raises(pyrunc.TimeoutExpired):
        pyrunc.run(["sleep", "30"], rootfs=str(rootfs), timeout=0.3, pids_limit=8)
