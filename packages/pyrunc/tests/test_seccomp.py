"""Seccomp in real containers, side by side with runc 1.1.5: the bypasses a filter must stop are
attempted, and fail, under both runtimes alike.

Each probe builds a bundle from what ``runc spec`` writes (terminal off, ``args`` set, plus the
probe's edits), runs it with ``runc run`` and with ``pyrunc run`` (each with its own ``--root``),
and checks the expected answer and that both runtimes gave it. Where a probe shows a syscall being
refused, a control run without the filter shows the same command succeeding, so it is the filter
that stops it (not a missing capability).

busybox issues most of the syscalls (``unshare``, ``mount``, ``mkdir``, its shell's ``getpid``).
It has no ``keyctl``, ``personality(0xffffffff)`` or ``clone3`` applet, so for those the probe is
the host's own Python (``/usr`` bind-mounted read-only into the container) calling ``syscall(2)``
through ctypes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import pyrunc

if TYPE_CHECKING:
    from collections.abc import Callable

    Edit = Callable[[dict[str, Any]], object]


import pyrunc_tests_helpers as h

setting = h.setting

pytestmark = [
    pytest.mark.runc,
    pytest.mark.integration,
    pytest.mark.cgroup,
]

DOCKER_CAPS = list(pyrunc.DOCKER_CAPABILITIES)
DOCKER_PROFILE = pyrunc.docker_default_seccomp(DOCKER_CAPS)
EPERM = "Operation not permitted"
ENOSYS = "Function not implemented"
SIGSYS_EXIT = 128 + 31

HOST_PYTHON = "/usr/bin/python3"
# argv: python3 -I -S -c PROBE NR ARG...: syscall(NR, ARG...) with integer or string arguments;
# prints "ok" or the error's strerror.
PROBE = (
    "import ctypes, os, sys\n"
    "libc = ctypes.CDLL(None, use_errno=True)\n"
    "libc.syscall.restype = ctypes.c_long\n"
    "args = [ctypes.c_long(int(a, 0)) if a.lstrip('-')[:1].isdigit() else a.encode() for a in sys.argv[1:]]\n"
    "rc = libc.syscall(*args)\n"
    "print('ok' if rc >= 0 else os.strerror(ctypes.get_errno()))\n"
)
SYS_PERSONALITY, SYS_ADD_KEY, SYS_KEYCTL, SYS_CLONE3 = 135, 248, 250, 435
KEY_SPEC_SESSION_KEYRING, KEYCTL_GET_KEYRING_ID = -3, 0


def python_probe(*call: object) -> list[str]:
    return [HOST_PYTHON, "-I", "-S", "-c", PROBE, *map(str, call)]


def caps(names: list[str]) -> Edit:
    """The process gets exactly ``names`` (bounding, effective, permitted), as Docker sets them."""
    return setting("process.capabilities", {"bounding": names, "effective": names, "permitted": names})


def seccomp(profile: dict[str, Any]) -> Edit:
    return setting("linux.seccomp", profile)


def host_usr(config: dict[str, Any]) -> None:
    """/usr of the host, read-only, for the Python probe (see make_bundle for /lib and /lib64)."""
    config["mounts"].append(
        {"destination": "/usr", "type": "bind", "source": "/usr", "options": ["rbind", "ro"]}
    )


def allow_all_but(*rules: dict[str, Any]) -> dict[str, Any]:
    return {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": list(rules)}


@pytest.fixture
def runtimes(pyrunc_bin: Path, pyrunc_root: Path, tmp_path: Path) -> Any:
    assert h.RUNC.is_file(), "/usr/sbin/runc is required"
    pair = (h.Runtime(h.RUNC, tmp_path / "runc-root"), h.Runtime(pyrunc_bin, pyrunc_root))
    try:
        yield pair
    finally:
        for runtime in pair:
            runtime.cleanup()


def make_bundle(tmp_path: Path, args: list[str], *edits: Edit) -> Path:
    bundle = h.make_runc_bundle(h.next_bundle_dir(tmp_path), args, *edits)
    if args[0] == HOST_PYTHON:
        if not Path(HOST_PYTHON).exists():
            pytest.skip(f"{HOST_PYTHON} is needed for this probe")
        (bundle / "rootfs" / "lib").symlink_to("usr/lib")
        (bundle / "rootfs" / "lib64").symlink_to("usr/lib64")
    return bundle


def run_both(runtimes: Any, tmp_path: Path, args: list[str], *edits: Edit) -> tuple[int, str]:
    """Run the same bundle under runc and pyrunc; assert they agree; return (exit status, stdout)."""
    bundle = make_bundle(tmp_path, args, *edits)
    results = {runtime.name: runtime.run(bundle) for runtime in runtimes}
    runc, ours = results["runc"], results["pyrunc"]
    assert (ours.returncode, ours.stdout) == (runc.returncode, runc.stdout), (
        f"runc: {runc.returncode} {runc.stdout!r} {runc.stderr!r}\n"
        f"pyrunc: {ours.returncode} {ours.stdout!r} {ours.stderr!r}"
    )
    return ours.returncode, ours.stdout


def attempt(command: str) -> list[str]:
    """``sh -c`` running ``command`` with its errors on stdout, then its exit status."""
    return ["sh", "-c", f"({command}) 2>&1; echo rc=$?"]


# -- Docker's default profile ----------------------------------------------------------------------

STATUS = "grep -E '^(NoNewPrivs|Seccomp|Seccomp_filters):' /proc/self/status"


def test_docker_profile_is_loaded(runtimes: Any, tmp_path: Path) -> None:
    _, out = run_both(runtimes, tmp_path, ["sh", "-c", STATUS], caps(DOCKER_CAPS), seccomp(DOCKER_PROFILE))
    assert out == "NoNewPrivs:\t1\nSeccomp:\t2\nSeccomp_filters:\t1\n"


def test_no_filter_without_linux_seccomp(runtimes: Any, tmp_path: Path) -> None:
    _, out = run_both(runtimes, tmp_path, ["sh", "-c", STATUS], caps(DOCKER_CAPS))
    assert out == "NoNewPrivs:\t1\nSeccomp:\t0\nSeccomp_filters:\t0\n"


# Bypasses Docker's profile stops: (argv, extra capabilities the attempt gets, what it prints
# unfiltered, what it prints under the profile). With CAP_SYS_ADMIN the process could mount and
# unshare: only the filter (resolved for Docker's 14 capabilities) stands in the way.
BYPASSES = {
    "unshare-user-namespace": (
        attempt("unshare -U true"),
        [],
        "rc=0\n",
        f"unshare: unshare(0x10000000): {EPERM}\nrc=1\n",
    ),
    "unshare-mount-namespace": (
        attempt("unshare -m true"),
        ["CAP_SYS_ADMIN"],
        "rc=0\n",
        f"unshare: unshare(0x20000): {EPERM}\nrc=1\n",
    ),
    "mount-tmpfs": (
        attempt("mount -t tmpfs none /tmp && grep -c ' /tmp ' /proc/self/mounts"),
        ["CAP_SYS_ADMIN"],
        "1\nrc=0\n",
        "mount: permission denied (are you root?)\nrc=1\n",
    ),
    "add_key": (
        python_probe(SYS_ADD_KEY, "user", "pyrunc-probe", "secret", 6, KEY_SPEC_SESSION_KEYRING),
        [],
        "ok\n",
        f"{EPERM}\n",
    ),
    "keyctl": (
        python_probe(SYS_KEYCTL, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0),
        [],
        "ok\n",
        f"{EPERM}\n",
    ),
    # clone3 fails with ENOSYS (libcs then fall back to clone); unfiltered the bad size is EINVAL.
    "clone3": (python_probe(SYS_CLONE3, 0, 0), [], "Invalid argument\n", f"{ENOSYS}\n"),
}


@pytest.mark.parametrize("name", BYPASSES)
def test_docker_profile_stops(runtimes: Any, tmp_path: Path, name: str) -> None:
    argv, extra, unfiltered, filtered = BYPASSES[name]
    process_caps = caps(DOCKER_CAPS + extra)
    edits = (process_caps, host_usr) if argv[0] == HOST_PYTHON else (process_caps,)
    assert run_both(runtimes, tmp_path, argv, *edits) == (0, unfiltered)
    assert run_both(runtimes, tmp_path, argv, *edits, seccomp(DOCKER_PROFILE)) == (0, filtered)


def test_syscalls_newer_than_the_profile_look_absent(runtimes: Any, tmp_path: Path) -> None:
    """Above the largest syscall number the profile names, the answer is ENOSYS (runc's patchbpf
    stub), so that programs fall back to older syscalls; below it, the default EPERM. mseal (462)
    is in Docker's profile but unknown to libseccomp 2.5.4; 999 does not exist at all."""
    edits = (caps(DOCKER_CAPS), host_usr, seccomp(DOCKER_PROFILE))
    for number, answer in ((999, ENOSYS), (462, ENOSYS), (SYS_KEYCTL, EPERM)):
        assert run_both(runtimes, tmp_path, python_probe(number, 0, 0), *edits) == (0, f"{answer}\n")


def test_normal_commands_work_under_docker_profile(runtimes: Any, tmp_path: Path) -> None:
    script = (
        "echo hello; id; hostname; ls /; cat /etc/passwd | wc -l; sleep 0.01; "
        "echo data > /dev/shm/f && cat /dev/shm/f; (exit 3); echo sub=$?; "
        "ps -o pid,comm | wc -l; chroot / true && echo chroot ok; date +%Y >/dev/null; "
        "echo done"
    )
    unfiltered = run_both(runtimes, tmp_path, ["sh", "-c", script], caps(DOCKER_CAPS))
    assert (
        run_both(runtimes, tmp_path, ["sh", "-c", script], caps(DOCKER_CAPS), seccomp(DOCKER_PROFILE))
        == unfiltered
    )
    assert (
        unfiltered[1].startswith("hello\n") and "sub=3\n" in unfiltered[1] and "chroot ok\n" in unfiltered[1]
    )
    assert unfiltered[1].endswith("done\n")


def test_spec_seccomp_docker(pyrunc_bin: Path, runtimes: Any, tmp_path: Path) -> None:
    """``pyrunc spec --seccomp docker``: Docker's profile resolved for runc's default capabilities;
    runc runs the bundle with the same result."""
    written = tmp_path / "written"
    written.mkdir()
    result = h.call([str(pyrunc_bin), "spec", "--seccomp", "docker", "--bundle", str(written)])
    assert result.returncode == 0, result.stderr
    config = json.loads((written / "config.json").read_text())
    bounding = config["process"]["capabilities"]["bounding"]
    assert config["linux"]["seccomp"] == pyrunc.docker_default_seccomp(bounding)
    refused = h.call([str(pyrunc_bin), "spec", "--seccomp", "bogus", "--bundle", str(tmp_path)])
    assert refused.returncode == 1 and "--seccomp" in refused.stderr
    edit = seccomp(config["linux"]["seccomp"])
    assert run_both(runtimes, tmp_path, ["sh", "-c", STATUS], edit) == (
        0,
        "NoNewPrivs:\t1\nSeccomp:\t2\nSeccomp_filters:\t1\n",
    )
    assert run_both(runtimes, tmp_path, attempt("unshare -U true"), edit)[1].endswith(f"{EPERM}\nrc=1\n")


# -- hand-written filters ------------------------------------------------------------------------

MKDIR_ENOSYS = {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}
MKDIR_FAILS = f"mkdir: can't create directory '/tmp/x': {ENOSYS}\n"


def test_errno_ret(runtimes: Any, tmp_path: Path) -> None:
    edits = (setting("root.readonly", False),)
    assert run_both(runtimes, tmp_path, attempt("mkdir /tmp/x && rmdir /tmp/x"), *edits) == (0, "rc=0\n")
    filtered = run_both(
        runtimes, tmp_path, attempt("mkdir /tmp/x"), *edits, seccomp(allow_all_but(MKDIR_ENOSYS))
    )
    assert filtered == (0, f"{MKDIR_FAILS}rc=1\n")


def test_kill_process(runtimes: Any, tmp_path: Path) -> None:
    """busybox's shell calls getpid() as it starts: with getpid -> KILL_PROCESS it dies of SIGSYS."""
    kill = seccomp(allow_all_but({"names": ["getpid"], "action": "SCMP_ACT_KILL_PROCESS"}))
    assert run_both(runtimes, tmp_path, ["sh", "-c", "echo alive"]) == (0, "alive\n")
    assert run_both(runtimes, tmp_path, ["sh", "-c", "echo alive"], kill) == (SIGSYS_EXIT, "")


def test_nothing_runs_between_loading_and_exec(runtimes: Any, tmp_path: Path) -> None:
    """busybox's echo never calls getpid(), so a filter killing getpid() lets it run under pyrunc,
    whose init makes no syscall but execve() after loading the filter. runc 1.1.5's init itself
    calls getpid() after loading it (for the startContainer hooks' state, standard_init_linux.go)
    and dies of SIGSYS before exec: a difference in pyrunc's favour, kept visible here."""
    kill = seccomp(allow_all_but({"names": ["getpid"], "action": "SCMP_ACT_KILL_PROCESS"}))
    bundle = make_bundle(tmp_path, ["echo", "alive"], kill)
    runc, ours = (runtime.run(bundle) for runtime in runtimes)
    assert (ours.returncode, ours.stdout) == (0, "alive\n"), ours.stderr
    assert (runc.returncode, runc.stdout) == (SIGSYS_EXIT, "")


def test_argument_condition(runtimes: Any, tmp_path: Path) -> None:
    """personality(0xffffffff) (a query) is refused; personality(0) is not: the rule's argument
    condition decides."""
    rule = {
        "names": ["personality"],
        "action": "SCMP_ACT_ERRNO",
        "errnoRet": 95,
        "args": [{"index": 0, "value": 0xFFFFFFFF, "op": "SCMP_CMP_EQ"}],
    }
    edits = (host_usr, seccomp(allow_all_but(rule)))
    assert run_both(runtimes, tmp_path, python_probe(SYS_PERSONALITY, 0xFFFFFFFF), *edits) == (
        0,
        "Operation not supported\n",
    )
    assert run_both(runtimes, tmp_path, python_probe(SYS_PERSONALITY, 0), *edits) == (0, "ok\n")


def test_masked_eq_and_two_rules(runtimes: Any, tmp_path: Path) -> None:
    """MASKED_EQ takes the mask in value and the expected bits in valueTwo; two rules for one
    syscall are alternatives: unshare is refused for CLONE_NEWUSER and for CLONE_NEWUTS only."""
    rules = [
        {
            "names": ["unshare"],
            "action": "SCMP_ACT_ERRNO",
            "args": [{"index": 0, "value": flag, "valueTwo": flag, "op": "SCMP_CMP_MASKED_EQ"}],
        }
        for flag in (0x10000000, 0x04000000)
    ]
    edits = (caps([*DOCKER_CAPS, "CAP_SYS_ADMIN"]), seccomp(allow_all_but(*rules)))
    script = "unshare -U true; echo user=$?; unshare -u true; echo uts=$?; unshare -i true; echo ipc=$?"
    assert run_both(runtimes, tmp_path, ["sh", "-c", f"({script}) 2>/dev/null"], *edits) == (
        0,
        "user=1\nuts=1\nipc=0\n",
    )


def test_filter_loads_without_no_new_privs_for_a_non_root_user(runtimes: Any, tmp_path: Path) -> None:
    """Without no_new_privs loading a filter needs CAP_SYS_ADMIN: it must be loaded before the
    capabilities are dropped and the user switched, or the container cannot start."""
    edits = (
        setting("process.noNewPrivileges", False),
        setting("process.user", {"uid": 1000, "gid": 1000}),
        seccomp(allow_all_but(MKDIR_ENOSYS)),
    )
    assert run_both(runtimes, tmp_path, ["sh", "-c", f"id -u; {STATUS}; mkdir /tmp/x 2>&1"], *edits) == (
        1,
        f"1000\nNoNewPrivs:\t0\nSeccomp:\t2\nSeccomp_filters:\t1\n{MKDIR_FAILS}",
    )


@pytest.mark.parametrize("no_new_privileges", [True, False])
def test_exec_gets_the_container_filter(runtimes: Any, tmp_path: Path, no_new_privileges: bool) -> None:
    bundle = make_bundle(
        tmp_path,
        ["sleep", "60"],
        setting("process.noNewPrivileges", no_new_privileges),
        seccomp(allow_all_but(MKDIR_ENOSYS)),
    )
    outputs = {}
    for runtime in runtimes:
        container_id = runtime.create(bundle)
        assert runtime("start", container_id).returncode == 0
        result = runtime("exec", container_id, "sh", "-c", f"{STATUS}; mkdir /tmp/x 2>&1")
        outputs[runtime.name] = (result.returncode, result.stdout)
        runtime("kill", container_id, "KILL")
    nnp = int(no_new_privileges)
    expected = (
        1,
        f"NoNewPrivs:\t{nnp}\nSeccomp:\t2\nSeccomp_filters:\t1\n{MKDIR_FAILS}",
    )
    assert outputs == {"runc": expected, "pyrunc": expected}


# -- the cache of compiled filters ----------------------------------------------------------------


def test_the_compiled_filter_is_cached_per_root(pyrunc_bin: Path, pyrunc_root: Path, tmp_path: Path) -> None:
    """The first create compiles the profile into <root>/@seccomp; later creates, runs and execs
    with the same profile load that file (not rewritten: same inode and mtime), and the filter
    they load still refuses what the profile refuses. ``list`` does not take it for a container."""
    runtime = h.Runtime(pyrunc_bin, pyrunc_root)
    profile = seccomp(allow_all_but(MKDIR_ENOSYS))
    cache = pyrunc_root / "@seccomp"
    try:
        sleeper = runtime.create(make_bundle(tmp_path, ["sleep", "60"], profile))
        [entry] = cache.glob("*.bpf")
        assert sorted(p.name for p in cache.iterdir()) == [entry.name]
        assert cache.stat().st_mode & 0o7777 == 0o700 and entry.stat().st_mode & 0o7777 == 0o600
        before = entry.stat()

        result = runtime.run(make_bundle(tmp_path, ["sh", "-c", f"{STATUS}; mkdir /tmp/x 2>&1"], profile))
        assert (result.returncode, result.stdout) == (
            1,
            f"NoNewPrivs:\t1\nSeccomp:\t2\nSeccomp_filters:\t1\n{MKDIR_FAILS}",
        ), result.stderr
        assert runtime("start", sleeper).returncode == 0
        result = runtime("exec", sleeper, "sh", "-c", "mkdir /tmp/x 2>&1")
        assert (result.returncode, result.stdout) == (1, MKDIR_FAILS), result.stderr

        assert list(cache.glob("*.bpf")) == [entry]
        after = entry.stat()
        assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)

        # mkdir works where the file system allows it, without the filter: the filter stops it.
        result = runtime("exec", sleeper, "sh", "-c", "mkdir /dev/shm/x 2>&1")
        assert (result.returncode, result.stdout) == (1, MKDIR_FAILS.replace("/tmp/x", "/dev/shm/x"))
        result = runtime.run(make_bundle(tmp_path, ["sh", "-c", "mkdir /dev/shm/x 2>&1 && echo ok"]))
        assert (result.returncode, result.stdout) == (0, "ok\n"), result.stderr

        listed = runtime("list", "--format", "json")
        assert listed.returncode == 0, listed.stderr
        assert [c["id"] for c in json.loads(listed.stdout)] == [sleeper]
        quiet = runtime("list", "-q")
        assert quiet.stdout.split() == [sleeper]
        assert "@seccomp" not in runtime("list").stdout
    finally:
        runtime.cleanup()


def test_a_second_profile_gets_a_second_file(pyrunc_bin: Path, pyrunc_root: Path, tmp_path: Path) -> None:
    runtime = h.Runtime(pyrunc_bin, pyrunc_root)
    try:
        for errno_ret in (38, 1, 38):
            rule = dict(MKDIR_ENOSYS, errnoRet=errno_ret)
            result = runtime.run(make_bundle(tmp_path, attempt("mkdir /tmp/x"), seccomp(allow_all_but(rule))))
            assert result.stdout.endswith("rc=1\n"), result.stderr
        assert len(list((pyrunc_root / "@seccomp").glob("*.bpf"))) == 2
    finally:
        runtime.cleanup()


# -- bad input: refused before anything runs, naming the field --------------------------------------

BAD = {
    "unknown-action": (
        allow_all_but({"names": ["mkdir"], "action": "SCMP_ACT_BOGUS"}),
        'linux.seccomp.syscalls[0].action: unknown seccomp action "SCMP_ACT_BOGUS"',
    ),
    "bad-operator": (
        allow_all_but(
            {
                "names": ["mkdir"],
                "action": "SCMP_ACT_ERRNO",
                "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_BOGUS"}],
            }
        ),
        'linux.seccomp.syscalls[0].args[0].op: unknown seccomp operator "SCMP_CMP_BOGUS"',
    ),
    "argument-index": (
        allow_all_but(
            {
                "names": ["mkdir"],
                "action": "SCMP_ACT_ERRNO",
                "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}],
            }
        ),
        "linux.seccomp.syscalls[0].args[0].index: 6 is not an argument index (0 to 5)",
    ),
    "notify": (
        allow_all_but({"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}),
        "linux.seccomp.syscalls[0].action: SCMP_ACT_NOTIFY is not supported by pyrunc",
    ),
}


@pytest.mark.parametrize("case", BAD)
def test_bad_profile_is_refused(runtimes: Any, tmp_path: Path, case: str) -> None:
    profile, message = BAD[case]
    bundle = make_bundle(tmp_path, ["true"], seccomp(profile))
    runc, ours = (runtime.run(bundle) for runtime in runtimes)
    assert runc.returncode != 0, "runc refuses it too"
    assert ours.returncode == 1 and ours.stdout == ""
    assert ours.stderr.startswith(message), ours.stderr
    assert "Traceback" not in ours.stderr
