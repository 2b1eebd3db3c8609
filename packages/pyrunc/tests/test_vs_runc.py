"""pyrunc side by side with runc 1.1.5: the same bundle, the same probe, the same answer.

Each probe builds a bundle from what ``runc spec`` writes (terminal off, ``args`` set to the probe,
plus the probe's edits), runs it with ``runc run`` and with ``pyrunc run`` (each with its own
``--root`` in tmp_path), and compares the exit status and what the probe printed, after masking
what legitimately differs (dates, cgroup paths, mount ids). runc is a requirement of this suite,
not an option: a missing /usr/sbin/runc fails the tests.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import pytest

from pyrunc._spec.config import default_spec

if TYPE_CHECKING:
    from collections.abc import Callable


import pyrunc_tests_helpers as h

setting, appending, MiB = h.setting, h.appending, h.MiB

pytestmark = [
    pytest.mark.runc,
    pytest.mark.integration,
    pytest.mark.cgroup,
]


# -- normalizers: what may differ between the two runtimes -----------------------------------------

_DATE = re.compile(r"\b[A-Z][a-z]{2} +\d{1,2} +(\d\d:\d\d|\d{4})\b")


def same(text: str) -> str:
    return text


_PROCFS_LINKS = re.compile(r"^(dr-xr-xr-x) +\d+ (.* (?:proc|sys))$", re.M)


def without_dates(text: str) -> str:
    """``ls -l`` output with the dates masked, and the link counts of /proc and /sys, which
    follow what runs on the host meanwhile."""
    return _PROCFS_LINKS.sub(r"\1 N \2", _DATE.sub("DATE", text))


def cgroup_controllers(text: str) -> list[str]:
    """/proc/self/cgroup without the paths (runc's are /<id>, pyrunc's /pyrunc/<id>)."""
    return [line.rsplit(":", 1)[0] for line in text.splitlines()]


def mountinfo_shape(text: str) -> list[str]:
    """/proc/self/mountinfo without mount ids, device numbers, peer group numbers, and the paths of
    the cgroup mounts' roots (the container's cgroup)."""
    shapes = []
    for line in text.splitlines():
        left, _, right = line.partition(" - ")
        fields = left.split()
        root = "CGROUP" if right.startswith("cgroup ") else fields[3]
        optional = [re.sub(r":\d+$", "", tag) for tag in fields[6:]]
        shapes.append(" ".join([root, fields[4], fields[5], *optional, "-", right]))
    return shapes


def sorted_lines(text: str) -> list[str]:
    return sorted(text.splitlines())


# -- probes --------------------------------------------------------------------------------------


class Probe(NamedTuple):
    script: str
    edits: tuple[Callable[[dict[str, Any]], object], ...] = ()
    normalize: Callable[[str], object] = same


_CAP_LINES = "grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status"
_SOME_CAPS = ["CAP_KILL", "CAP_CHOWN", "CAP_NET_BIND_SERVICE", "CAP_SETUID"]
_USER_1000 = setting("process.user", {"uid": 1000, "gid": 1000, "additionalGids": [5, 100]})

# runc spec's maskedPaths and readonlyPaths (test_spec checks default_spec() against `runc spec`).
_DEFAULT_LINUX = default_spec().linux
assert _DEFAULT_LINUX is not None
MASKED = _DEFAULT_LINUX.masked_paths
READONLY = _DEFAULT_LINUX.readonly_paths


def read_masked(path: str) -> str:
    return (
        f"if [ ! -e {path} ]; then echo absent; elif [ -d {path} ]; then echo dir $(ls -A {path} | wc -l); "
        f"else echo file $(cat {path} 2>&1 | wc -c); fi"
    )


def write_readonly(path: str) -> str:
    # ": >> F" opens F for writing and writes nothing: on a read-only mount the open fails (EROFS),
    # and where it would succeed nothing is changed. Tried on the path and a few writable files below.
    return (
        f"for f in {path} $(find {path} -mindepth 1 -maxdepth 3 -type f -perm -200 2>/dev/null | head -3); "
        'do [ -f "$f" ] || continue; (: >> "$f") 2>&1; echo "$f rc=$?"; done; '
        f"(mkdir {path}/probe-dir) 2>&1; echo mkdir rc=$?"
    )


PROBES: dict[str, Any] = {
    "status-caps": Probe(_CAP_LINES),
    "status-caps-uid1000": Probe(_CAP_LINES, (_USER_1000,)),
    "status-caps-uid1000-ambient": Probe(
        _CAP_LINES,
        (
            _USER_1000,
            setting(
                "process.capabilities",
                dict.fromkeys(("bounding", "effective", "permitted", "inheritable", "ambient"), _SOME_CAPS),
            ),
            setting("process.noNewPrivileges", False),
        ),
    ),
    "status-caps-none": pytest.param(Probe(_CAP_LINES, (h.removing("process.capabilities"),))),
    "status-ids": Probe("grep -E '^(Uid|Gid|Groups):' /proc/self/status", (_USER_1000,)),
    "status-signals": Probe("grep -E '^Sig(Blk|Ign):' /proc/self/status"),
    "id": Probe("id"),
    "id-uid1000": Probe("id", (_USER_1000,)),
    "hostname": Probe("hostname; cat /proc/sys/kernel/domainname"),
    "pid": Probe("echo $$; cat /proc/1/cmdline | tr '\\0' ' '"),
    "cwd": Probe("pwd", (setting("process.cwd", "/tmp"),)),
    "umask": Probe("umask"),
    "open-fds": Probe("ls /proc/self/fd | tr '\\n' ' '"),
    "oom-score-adj": Probe("cat /proc/self/oom_score_adj", (setting("process.oomScoreAdj", 123),)),
    "ulimit": Probe("ulimit -a"),
    "ulimit-configured": Probe(
        "ulimit -a",
        (
            setting(
                "process.rlimits",
                [
                    {"type": "RLIMIT_NOFILE", "soft": 100, "hard": 200},
                    {"type": "RLIMIT_NPROC", "soft": 50, "hard": 60},
                    {"type": "RLIMIT_CORE", "soft": 0, "hard": 0},
                ],
            ),
        ),
    ),
    "env": pytest.param(Probe("env | sort")),
    "env-with-home": Probe("env | sort", (appending("process.env", "HOME=/elsewhere"),)),
    "mount": Probe("mount"),
    "mountinfo": Probe("cat /proc/self/mountinfo", normalize=mountinfo_shape),
    "ls-dev": Probe("ls -la /dev", normalize=without_dates),
    "ls-dev-subdirs": Probe("ls -la /dev/pts /dev/shm /dev/mqueue", normalize=without_dates),
    "ls-root": Probe("ls -la /", normalize=without_dates),
    "root-readonly": Probe("(touch /x) 2>&1; echo rc=$?"),
    "cgroup": Probe("cat /proc/self/cgroup", normalize=cgroup_controllers),
    "ls-cgroup": Probe("ls /sys/fs/cgroup; ls /sys/fs/cgroup/memory | head -5"),
    "devices-list": Probe("cat /sys/fs/cgroup/devices/devices.list", normalize=sorted_lines),
    "net": Probe("ls /sys/class/net; cat /sys/class/net/lo/flags; ip -o -4 addr"),
    "sysctl": Probe(
        "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shm_rmid_forced",
        (setting("linux.sysctl", {"net.ipv4.ip_forward": "1", "kernel.shm_rmid_forced": "1"}),),
    ),
    "memory-limit": Probe(
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes",
        (setting("linux.resources.memory", {"limit": 64 * MiB}),),
    ),
    "pids-limit": Probe(
        "cat /sys/fs/cgroup/pids/pids.max", (setting("linux.resources.pids", {"limit": 10}),)
    ),
    "cpu-limits": Probe(
        "cd /sys/fs/cgroup/cpu && cat cpu.shares cpu.cfs_quota_us cpu.cfs_period_us",
        (setting("linux.resources.cpu", {"shares": 512, "quota": 50000, "period": 100000}),),
    ),
    "exit-code": Probe("echo out; echo err >&2; exit 42"),
    **{f"masked:{path}": Probe(read_masked(path)) for path in MASKED},
    **{f"readonly:{path}": Probe(write_readonly(path)) for path in READONLY},
}


def test_runc_is_installed() -> None:
    assert h.RUNC.is_file() and os.access(h.RUNC, os.X_OK), (
        "/usr/sbin/runc is required (apt-get install runc)"
    )
    assert h.call([str(h.RUNC), "--version"]).stdout.startswith("runc version 1.1.")


@pytest.fixture
def runtimes(pyrunc_bin: Path, pyrunc_root: Path, tmp_path: Path) -> Any:
    assert h.RUNC.is_file(), "/usr/sbin/runc is required"
    pair = (h.Runtime(h.RUNC, tmp_path / "runc-root"), h.Runtime(pyrunc_bin, pyrunc_root))
    try:
        yield pair
    finally:
        for runtime in pair:
            runtime.cleanup()


@pytest.mark.parametrize("probe", PROBES.values(), ids=PROBES.keys())
def test_same_as_runc(runtimes: Any, tmp_path: Path, probe: Probe) -> None:
    bundle = h.make_runc_bundle(tmp_path / "bundle", ["sh", "-c", probe.script], *probe.edits)
    results = {runtime.name: runtime.run(bundle) for runtime in runtimes}
    runc, ours = results["runc"], results["pyrunc"]
    assert runc.returncode in (0, 42), f"the probe fails under runc itself: {runc.stderr}"
    assert (ours.returncode, probe.normalize(ours.stdout)) == (
        runc.returncode,
        probe.normalize(runc.stdout),
    ), f"pyrunc stderr: {ours.stderr}"
    if probe.script.endswith("exit 42"):
        assert ours.stderr == runc.stderr == "err\n"
