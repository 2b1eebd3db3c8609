"""Every lifecycle verb of the ``pyrunc`` CLI against real containers, with runc's wording.

create -> created -> start -> running -> pause -> paused -> resume -> running -> kill -> stopped ->
delete; ``run`` (attached and detached), ``exec`` in all its forms, ``list``, ``ps``, ``state``; the
refusals containerd's shim relies on (exit status 1, runc's message on stderr and as the last
``{"level":"error","msg":...}`` line of the ``--log`` file); ``spec``, ``features``, ``--version``.

Every runtime call goes through ``--log LOG --log-format json``; the ``rt`` fixture deletes (with
``--force``) every container id it handed out.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pyrunc_acceptance_specs as specs  # registered by conftest.py
import pyrunc_tests_helpers as h
import pytest

sh = h.sh

pytestmark = [
    pytest.mark.integration,
    pytest.mark.cgroup,
]

_RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$")


@pytest.fixture
def rt(pyrunc_bin: Path, pyrunc_root: Path, tmp_path: Path) -> Any:
    runtime = h.Runtime(pyrunc_bin, pyrunc_root, log=tmp_path / "log.json")
    yield runtime
    runtime.cleanup()


@pytest.fixture
def sleeper(tmp_path: Path) -> Path:
    """A bundle whose init sleeps (as pid 1 it ignores SIGTERM; SIGKILL from outside works)."""
    return h.make_bundle(tmp_path / "sleeper", ["sleep", "300"])


def log_lines(rt: Any) -> list[str]:
    return rt.log.read_text().splitlines() if rt.log.exists() else []


def refused(rt: Any, result: Any, message: str, lines_before: int | None = None) -> None:
    """Exit status 1, ``message`` on stderr, and the same message appended to the JSON log."""
    assert result.returncode == 1, f"exit {result.returncode}, stderr {result.stderr!r}"
    assert message in result.stderr
    lines = log_lines(rt)
    if lines_before is not None:
        assert len(lines) == lines_before + 1, "each error appends exactly one log line"
    entry = json.loads(lines[-1])
    assert set(entry) == {"level", "msg", "time"}
    assert entry["level"] == "error"
    assert entry["msg"] == result.stderr.strip()
    assert _RFC3339.match(entry["time"]), entry["time"]


def create_started(rt: Any, bundle: Path) -> tuple[str, int]:
    """Create and start a container; its id and the init's host pid."""
    container_id = rt.create(bundle)
    assert rt("start", container_id).returncode == 0
    return container_id, int(rt.state(container_id)["pid"])


def alive(pid: int) -> bool:
    """Running (a zombie, waiting to be reaped by whoever inherited it, counts as dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"


def wait_dead(pid: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while alive(pid):
        assert time.monotonic() < deadline, f"pid {pid} is still alive"
        time.sleep(0.01)


def assert_gone(rt: Any, container_id: str) -> None:
    """State refused with "does not exist", no state dir, no cgroup."""
    result = rt("state", container_id)
    refused(rt, result, f"container {container_id} does not exist")
    assert not (rt.root / container_id).exists()
    assert not h.container_cgroups(container_id)


# -- the happy path ------------------------------------------------------------------------------


def test_create_start_kill_delete(rt: Any, sleeper: Path, tmp_path: Path) -> None:
    pid_file = tmp_path / "init.pid"
    started = time.monotonic()
    container_id = rt.create(sleeper, None, "--pid-file", str(pid_file))
    assert time.monotonic() - started < 10, "create must return while the init waits"
    pid = int(pid_file.read_text())
    assert alive(pid)

    state = rt.state(container_id)
    assert state["status"] == "created"
    assert state["pid"] == pid
    assert state["id"] == container_id
    assert state["bundle"] == str(sleeper)
    assert state["rootfs"] == str(sleeper / "rootfs")
    assert state["ociVersion"] and _RFC3339.match(state["created"])

    table = rt("list").stdout.splitlines()
    assert table[0].split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    assert [row.split()[:3] for row in table[1:]] == [[container_id, str(pid), "created"]]
    (listed,) = json.loads(rt("list", "--format", "json").stdout)
    assert (listed["id"], listed["pid"], listed["status"]) == (container_id, pid, "created")
    assert rt("list", "-q").stdout == container_id + "\n"

    assert rt("start", container_id).returncode == 0
    assert rt.status(container_id) == "running"
    assert Path(f"/proc/{pid}/cmdline").read_bytes() == b"sleep\x00300\x00"
    assert json.loads(rt("ps", "--format", "json", container_id).stdout) == [pid]
    ps_table = rt("ps", container_id).stdout.splitlines()
    assert ps_table[0].split() == ["UID", "PID", "PPID", "CMD"] and str(pid) in ps_table[1].split()

    assert rt("kill", container_id, "KILL").returncode == 0
    rt.wait_status(container_id, "stopped")
    assert rt.state(container_id)["pid"] == 0
    assert rt("list", "-q").stdout == container_id + "\n"

    delete = rt("delete", container_id)
    assert delete.returncode == 0, delete.stderr
    assert_gone(rt, container_id)
    assert rt("list", "-q").stdout == ""


def test_delete_a_created_container(rt: Any, sleeper: Path) -> None:
    container_id = rt.create(sleeper)
    pid = rt.state(container_id)["pid"]
    assert rt("delete", container_id).returncode == 0
    wait_dead(pid)
    assert_gone(rt, container_id)


# -- exec ----------------------------------------------------------------------------------------


def test_exec_output_and_exit_code_pass_through(rt: Any, sleeper: Path) -> None:
    container_id, _ = create_started(rt, sleeper)
    result = rt("exec", container_id, "sh", "-c", "echo out; echo err >&2; exit 5")
    assert (result.returncode, result.stdout, result.stderr) == (5, "out\n", "err\n")
    assert rt("exec", container_id, "true").returncode == 0
    assert rt("exec", container_id, "sh", "-c", "kill -KILL $$").returncode == 128 + signal.SIGKILL


def test_exec_passes_bytes_that_are_not_utf8(rt: Any, sleeper: Path) -> None:
    """An argument or variable that is not UTF-8 on the command line reaches the process as it was
    (runc passes bytes); a NUL cannot be on a command line, and is refused elsewhere."""
    container_id, _ = create_started(rt, sleeper)
    odd = os.fsdecode(b"a\xffb")
    result = rt(
        "exec", "--env", f"ODD={odd}", container_id, "sh", "-c", 'printf %s "$1$ODD" | od -An -tx1', "sh", odd
    )
    assert (result.returncode, result.stdout.split()) == (0, ["61", "ff", "62", "61", "ff", "62"]), (
        result.stderr
    )


@pytest.mark.parametrize("detach", [False, True], ids=["attached", "detached"])
def test_exec_of_a_missing_program(rt: Any, sleeper: Path, detach: bool) -> None:
    container_id, init_pid = create_started(rt, sleeper)
    result = rt("exec", *(["--detach"] if detach else []), container_id, "nope")
    refused(rt, result, 'exec: "nope": executable file not found in $PATH', 0)
    assert json.loads(rt("ps", "--format", "json", container_id).stdout) == [init_pid]
    assert rt.status(container_id) == "running"


def test_exec_joins_the_containers_namespaces(rt: Any, sleeper: Path) -> None:
    container_id, _ = create_started(rt, sleeper)
    result = rt("exec", container_id, "sh", "-c", "echo $$; hostname; ls /sys/class/net; cat /proc/1/cmdline")
    assert result.returncode == 0, result.stderr
    pid, hostname, link, cmdline = result.stdout.split("\n", 3)
    assert int(pid) > 1 and hostname == "pyrunc" and link == "lo"
    assert cmdline == "sleep\x00300\x00"


def test_exec_detach_returns_while_the_process_runs(rt: Any, sleeper: Path, tmp_path: Path) -> None:
    container_id, init_pid = create_started(rt, sleeper)
    pid_file = tmp_path / "exec.pid"
    started = time.monotonic()
    result = rt("exec", "--detach", "--pid-file", str(pid_file), container_id, "sleep", "200")
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 10
    pid = int(pid_file.read_text())
    assert alive(pid)
    assert Path(f"/proc/{pid}/cmdline").read_bytes() == b"sleep\x00200\x00"
    assert os.readlink(f"/proc/{pid}/ns/pid") == os.readlink(f"/proc/{init_pid}/ns/pid")
    assert sorted(json.loads(rt("ps", "--format", "json", container_id).stdout)) == sorted([init_pid, pid])


@pytest.mark.parametrize("from_stdin", [False, True], ids=["file", "stdin"])
def test_exec_process_json(rt: Any, sleeper: Path, tmp_path: Path, from_stdin: bool) -> None:
    container_id, _ = create_started(rt, sleeper)
    process = {
        "terminal": False,
        "user": {"uid": 1000, "gid": 1000, "additionalGids": [5]},
        "args": ["sh", "-c", "id -u; id -g; id -G; pwd; echo $FOO; exit 4"],
        "env": ["PATH=/bin", "FOO=from-process-json"],
        "cwd": "/tmp",
    }
    text = json.dumps(process)
    if from_stdin:
        result = rt("exec", "--process", "-", container_id, input=text)
    else:
        (tmp_path / "process.json").write_text(text)
        result = rt("exec", "--process", str(tmp_path / "process.json"), container_id)
    assert result.returncode == 4, result.stderr
    assert result.stdout == "1000\n1000\n1000 5\n/tmp\nfrom-process-json\n"


def test_exec_process_json_without_capabilities_gets_the_containers(
    rt: Any, sleeper: Path, tmp_path: Path
) -> None:
    container_id, init_pid = create_started(rt, sleeper)
    init_status = Path(f"/proc/{init_pid}/status").read_text()
    process = {
        "args": ["cat", "/proc/self/status"],
        "cwd": "/",
        "env": ["PATH=/bin"],
        "user": {"uid": 0, "gid": 0},
    }
    (tmp_path / "process.json").write_text(json.dumps(process))
    result = rt("exec", "--process", str(tmp_path / "process.json"), container_id)
    assert result.returncode == 0, result.stderr
    names = ("CapPrm", "CapEff", "CapBnd")
    assert {n: v for n, v in _status(result.stdout).items() if n in names} == {
        n: v for n, v in _status(init_status).items() if n in names
    }
    assert _status(init_status)["CapBnd"] == "0000000020000420"  # the spec's three capabilities


def _status(text: str) -> dict[str, str]:
    return {k: v.strip() for k, _, v in (line.partition(":") for line in text.splitlines())}


def test_exec_env_cwd_user_flags(rt: Any, sleeper: Path) -> None:
    container_id, _ = create_started(rt, sleeper)
    result = rt(
        "exec",
        "--env",
        "FOO=bar",
        "-e",
        "BAZ=qux",
        "--cwd",
        "/tmp",
        "--user",
        "1000:1000",
        container_id,
        "sh",
        "-c",
        "id -u; id -g; pwd; echo $FOO $BAZ",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "1000\n1000\n/tmp\nbar qux\n"


# -- pause and resume ----------------------------------------------------------------------------


def test_pause_and_resume(rt: Any, sleeper: Path) -> None:
    container_id, _ = create_started(rt, sleeper)
    (freezer,) = [
        c for c in h.container_cgroups(container_id) if str(c).startswith("/sys/fs/cgroup/freezer/")
    ]
    assert rt("pause", container_id).returncode == 0
    assert rt.status(container_id) == "paused"
    assert (freezer / "freezer.state").read_text().strip() == "FROZEN"
    before = len(log_lines(rt))
    refused(rt, rt("exec", container_id, "true"), "cannot exec in a paused container", before)
    again = rt("pause", container_id)
    assert again.returncode == 1 and again.stderr.strip()

    assert rt("resume", container_id).returncode == 0
    assert rt.status(container_id) == "running"
    assert (freezer / "freezer.state").read_text().strip() == "THAWED"
    before = len(log_lines(rt))
    refused(rt, rt("resume", container_id), "container not paused", before)
    assert rt("exec", container_id, "true").returncode == 0


def test_delete_force_a_paused_container(rt: Any, sleeper: Path) -> None:
    container_id, pid = create_started(rt, sleeper)
    assert rt("pause", container_id).returncode == 0
    assert rt("delete", "--force", container_id).returncode == 0
    wait_dead(pid)
    assert_gone(rt, container_id)


# -- kill ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("sig", ["KILL", "SIGKILL", "9"])
def test_kill_signal_forms(rt: Any, sleeper: Path, sig: str) -> None:
    container_id, pid = create_started(rt, sleeper)
    assert rt("kill", container_id, sig).returncode == 0
    wait_dead(pid)
    rt.wait_status(container_id, "stopped")


def test_kill_default_signal_is_sigterm(rt: Any, tmp_path: Path) -> None:
    bundle = h.make_bundle(tmp_path / "b", sh("trap 'exit 0' TERM; while :; do sleep 0.05; done"))
    container_id, pid = create_started(rt, bundle)
    assert rt("kill", container_id).returncode == 0
    wait_dead(pid)
    rt.wait_status(container_id, "stopped")


def test_kill_all(rt: Any, tmp_path: Path) -> None:
    bundle = h.make_bundle(tmp_path / "b", sh("sleep 300 & sleep 301 & wait"))
    container_id, init_pid = create_started(rt, bundle)
    deadline = time.monotonic() + 5
    while len(pids := json.loads(rt("ps", "--format", "json", container_id).stdout)) < 3:
        assert time.monotonic() < deadline, pids
        time.sleep(0.02)
    assert init_pid in pids
    assert rt("kill", "--all", container_id, "KILL").returncode == 0
    for pid in pids:
        wait_dead(pid)
    rt.wait_status(container_id, "stopped")


# -- a container without a pid namespace of its own: its processes may outlive the init -----------


@pytest.fixture
def orphaning(rt: Any, tmp_path: Path) -> Any:
    """A stopped container (no pid namespace) whose init exited leaving ``sleep 300`` in its
    cgroup; yields (id, the sleeper's pid). Afterwards whatever pyrunc left is purged."""
    bundle = h.make_bundle(
        tmp_path / "b", sh("sleep 300 & echo $! > /tmp/bg.pid"), h.without_namespace("pid")
    )
    h.edit_config(bundle, h.setting("root.readonly", False))
    container_id, _ = create_started(rt, bundle)
    rt.wait_status(container_id, "stopped")
    deadline = time.monotonic() + 5
    while not (bundle / "rootfs/tmp/bg.pid").exists() or not (bundle / "rootfs/tmp/bg.pid").read_text():
        assert time.monotonic() < deadline
        time.sleep(0.01)
    pid = int((bundle / "rootfs/tmp/bg.pid").read_text())
    assert alive(pid)
    try:
        yield container_id, pid
    finally:
        rt("delete", "--force", container_id)
        h.purge_container_cgroups(container_id)  # what pyrunc could not remove


def test_kill_all_reaches_processes_that_outlived_the_init(rt: Any, orphaning: Any) -> None:
    """As runc: containerd's shim calls ``kill --all`` after the init of a container that shares
    a pid namespace exited, to reach what it left behind."""
    container_id, pid = orphaning
    result = rt("kill", "--all", container_id, "KILL")
    assert result.returncode == 0, result.stderr
    wait_dead(pid)


@pytest.mark.parametrize("force", [False, True], ids=["delete", "delete-force"])
def test_delete_kills_processes_that_outlived_the_init(rt: Any, orphaning: Any, force: bool) -> None:
    """As runc's destroy: without a pid namespace of its own, what is left in the cgroup is killed."""
    container_id, pid = orphaning
    result = rt("delete", *(["--force"] if force else []), container_id)
    assert result.returncode == 0, result.stderr
    wait_dead(pid)
    assert not h.container_cgroups(container_id)


def test_run_cleans_up_processes_that_outlived_the_init(rt: Any, tmp_path: Path) -> None:
    bundle = h.make_bundle(tmp_path / "b", sh("sleep 300 & exit 3"), h.without_namespace("pid"))
    container_id = rt.new_id()
    try:
        result = rt.run(bundle, container_id)
        assert (result.returncode, result.stderr) == (3, "")
        assert not h.container_cgroups(container_id)
    finally:
        h.purge_container_cgroups(container_id)


def test_delete_when_the_cgroups_are_already_gone(rt: Any, sleeper: Path) -> None:
    """Someone else (an admin, systemd) removed the empty cgroups of a stopped container: delete
    still removes the container, as runc's does."""
    container_id, pid = create_started(rt, sleeper)
    assert rt("kill", container_id, "KILL").returncode == 0
    wait_dead(pid)
    rt.wait_status(container_id, "stopped")
    h.purge_container_cgroups(container_id)
    result = rt("delete", container_id)
    assert (result.returncode, result.stderr) == (0, "")
    assert_gone(rt, container_id)


# -- run -----------------------------------------------------------------------------------------


def test_run_detached(rt: Any, sleeper: Path, tmp_path: Path) -> None:
    container_id = rt.new_id()
    started = time.monotonic()
    result = rt.run(sleeper, container_id, "--detach", "--pid-file", str(tmp_path / "pid"))
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 10
    pid = int((tmp_path / "pid").read_text())
    assert rt.state(container_id)["pid"] == pid
    assert rt.status(container_id) == "running"
    assert rt("delete", "--force", container_id).returncode == 0
    wait_dead(pid)
    assert_gone(rt, container_id)


@pytest.mark.parametrize("code", [0, 7, 255])
def test_run_exit_code_passes_through(rt: Any, tmp_path: Path, code: int) -> None:
    result = h.run_container(rt, tmp_path, sh(f"echo out; exit {code}"))
    assert (result.returncode, result.stdout) == (code, "out\n")


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGUSR1])
def test_run_init_killed_by_a_signal(rt: Any, tmp_path: Path, sig: signal.Signals) -> None:
    # Without a pid namespace the shell is not an init, so it can signal itself.
    result = h.run_container(rt, tmp_path, sh(f"kill -{sig.name[3:]} $$"), h.without_namespace("pid"))
    assert result.returncode == 128 + sig


def test_run_killed_from_outside(rt: Any, sleeper: Path, tmp_path: Path) -> None:
    container_id = rt.new_id()
    with (tmp_path / "run.err").open("w+") as err:
        proc = subprocess.Popen(
            rt.argv("run", "--bundle", str(sleeper), container_id),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
        try:
            deadline = time.monotonic() + 10
            while rt("state", container_id).returncode != 0 or rt.status(container_id) != "running":
                assert time.monotonic() < deadline and proc.poll() is None, "run did not start"
                time.sleep(0.02)
            assert rt("kill", container_id, "KILL").returncode == 0
            assert proc.wait(timeout=10) == 128 + signal.SIGKILL
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert not (rt.root / container_id).exists()
    assert not h.container_cgroups(container_id)


def catches(pid: int, sig: int) -> bool:
    """Whether process ``pid`` has a handler for ``sig`` (SigCgt of /proc/<pid>/status)."""
    status = Path(f"/proc/{pid}/status").read_text()
    (mask,) = [line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:")]
    return bool(int(mask, 16) >> (sig - 1) & 1)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_run_forwards_signals_to_the_init(rt: Any, tmp_path: Path, sig: signal.Signals) -> None:
    script = f"trap 'echo got it; exit 9' {sig.name[3:]}; echo ready; while :; do sleep 0.02; done"
    bundle = h.make_bundle(tmp_path / "b", sh(script))
    container_id = rt.new_id()
    with (tmp_path / "run.out").open("w+") as out:
        proc = subprocess.Popen(
            rt.argv("run", "--bundle", str(bundle), container_id), stdin=subprocess.DEVNULL, stdout=out
        )
        try:
            deadline = time.monotonic() + 10
            # Both sides ready: the init trapped the signal, pyrunc run installed its forwarding
            # (SIGUSR2, which Python leaves alone, is the last of the signals it forwards).
            while "ready" not in (tmp_path / "run.out").read_text() or not catches(proc.pid, signal.SIGUSR2):
                assert time.monotonic() < deadline and proc.poll() is None, "the container did not start"
                time.sleep(0.01)
            proc.send_signal(sig)
            assert proc.wait(timeout=10) == 9
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert (tmp_path / "run.out").read_text() == "ready\ngot it\n"
    assert not (rt.root / container_id).exists()


def test_run_forwards_a_signal_sent_as_the_container_starts(rt: Any, tmp_path: Path) -> None:
    # No pid namespace: the init can signal its parent, pyrunc run, the moment it starts.
    script = "trap 'exit 9' TERM; kill -TERM $PPID; sleep 2; exit 3"
    bundle = h.make_bundle(tmp_path / "b", sh(script), h.without_namespace("pid"))
    container_id = rt.new_id()
    try:
        assert rt.run(bundle, container_id).returncode == 9
    finally:
        rt("delete", "--force", container_id)
        h.purge_container_cgroups(container_id)


def test_run_removes_state_and_cgroups(rt: Any, tmp_path: Path) -> None:
    bundle = h.make_bundle(tmp_path / "b", sh("cat /proc/self/cgroup"))
    container_id = rt.new_id()
    result = rt.run(bundle, container_id)
    assert result.returncode == 0, result.stderr
    assert f"/pyrunc/{container_id}" in result.stdout  # it did have cgroups of its own
    assert not (rt.root / container_id).exists()
    assert not h.container_cgroups(container_id)
    assert rt("list", "-q").stdout == ""


def test_status_follows_the_kernel(rt: Any, sleeper: Path) -> None:
    """The init killed behind pyrunc's back: the container is stopped, and cannot be started."""
    container_id = rt.create(sleeper)
    pid = rt.state(container_id)["pid"]
    os.kill(pid, signal.SIGKILL)  # the init this test created
    wait_dead(pid)
    assert rt.state(container_id)["status"] == "stopped"
    before = len(log_lines(rt))
    refused(rt, rt("start", container_id), "cannot start a container that has stopped", before)
    assert rt("delete", container_id).returncode == 0
    assert_gone(rt, container_id)


# -- refusals ------------------------------------------------------------------------------------


def test_start_twice(rt: Any, sleeper: Path) -> None:
    container_id, _ = create_started(rt, sleeper)
    before = len(log_lines(rt))
    refused(rt, rt("start", container_id), "cannot start an already running container", before)


def test_start_a_stopped_container(rt: Any, tmp_path: Path) -> None:
    container_id, _ = create_started(rt, h.make_bundle(tmp_path / "b", ["true"]))
    rt.wait_status(container_id, "stopped")
    before = len(log_lines(rt))
    refused(rt, rt("start", container_id), "cannot start a container that has stopped", before)


def test_delete_a_running_container_needs_force(rt: Any, sleeper: Path) -> None:
    container_id, pid = create_started(rt, sleeper)
    message = f"cannot delete container {container_id} that is not stopped: running"
    before = len(log_lines(rt))
    refused(rt, rt("delete", container_id), message, before)
    assert rt.status(container_id) == "running" and alive(pid)
    forced = rt("delete", "--force", container_id)
    assert (forced.returncode, forced.stderr) == (0, "")
    wait_dead(pid)
    assert_gone(rt, container_id)


def test_kill_a_stopped_container(rt: Any, sleeper: Path) -> None:
    container_id, pid = create_started(rt, sleeper)
    assert rt("kill", container_id, "KILL").returncode == 0
    wait_dead(pid)
    before = len(log_lines(rt))
    refused(rt, rt("kill", container_id, "KILL"), "container not running", before)


@pytest.mark.parametrize(
    "verb",
    [
        ("state",),
        ("start",),
        ("kill",),
        ("kill", "--all"),
        ("delete",),
        ("pause",),
        ("resume",),
        ("ps", "--format", "json"),
        ("exec",),
    ],
    ids=lambda v: "-".join(v).strip("-"),
)
def test_unknown_id(rt: Any, verb: tuple[str, ...]) -> None:
    container_id = rt.new_id("nope")
    trailing = ["true"] if verb[0] == "exec" else []
    result = rt(*verb, container_id, *trailing)
    refused(rt, result, f"container {container_id} does not exist", 0)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("kill", "{id}", "BOGUS"), "unknown signal 'BOGUS'"),
        (("exec", "--bogus", "{id}", "true"), "flag provided but not defined: --bogus"),
        (("bogus-verb",), "bogus-verb"),
    ],
    ids=["unknown-signal", "unknown-flag", "unknown-verb"],
)
def test_usage_errors(rt: Any, sleeper: Path, args: tuple[str, ...], message: str) -> None:
    container_id, pid = create_started(rt, sleeper)
    before = len(log_lines(rt))
    result = rt(*(arg.format(id=container_id) for arg in args))
    assert result.returncode == 1
    assert message in result.stderr and "Traceback" not in result.stderr
    lines = log_lines(rt)
    assert len(lines) == before + 1
    entry = json.loads(lines[-1])
    assert entry["level"] == "error" and message in entry["msg"] and entry["msg"] in result.stderr
    assert rt.status(container_id) == "running" and alive(pid)


def test_delete_force_of_an_unknown_id_succeeds_silently(rt: Any) -> None:
    result = rt("delete", "--force", rt.new_id("nope"))
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    assert log_lines(rt) == []


def test_duplicate_id(rt: Any, sleeper: Path) -> None:
    container_id = rt.create(sleeper)
    pid = rt.state(container_id)["pid"]
    result = rt("create", "--bundle", sleeper, container_id)
    refused(rt, result, f"container with id exists: {container_id}", 0)
    assert rt.state(container_id)["pid"] == pid and rt.status(container_id) == "created"
    refused(rt, rt.run(sleeper, container_id), f"container with id exists: {container_id}", 1)


@pytest.mark.parametrize("verb", ["create", "run", "state", "delete"])
@pytest.mark.parametrize("bad_id", ["a/b", "..", ".", "../escape", "a b", "a:b", "é", "@seccomp", "a\nb"])
def test_invalid_id(rt: Any, sleeper: Path, tmp_path: Path, verb: str, bad_id: str) -> None:
    bundle_flags = ["--bundle", str(sleeper)] if verb in ("create", "run") else []
    result = rt(verb, *bundle_flags, bad_id)
    refused(rt, result, f"invalid container ID format: {bad_id!r}", 0)  # runc's words, and the id
    assert result.stderr.count("\n") == 1
    assert sorted(os.listdir(rt.root)) == []
    assert not (tmp_path / "escape").exists()


@pytest.mark.parametrize("verb", ["create", "run", "state", "delete", "kill", "exec"])
def test_an_id_too_long_for_a_file_name(rt: Any, sleeper: Path, verb: str) -> None:
    bundle_flags = ["--bundle", str(sleeper)] if verb in ("create", "run") else []
    result = rt(verb, *bundle_flags, "a" * 300, *(["true"] if verb == "exec" else []))
    refused(rt, result, "invalid container ID format: 300 characters, more than the 255 of a file name", 0)
    assert result.stderr.count("\n") == 1 and "Errno" not in result.stderr
    assert sorted(os.listdir(rt.root)) == []


def test_ids_runc_takes(rt: Any, sleeper: Path) -> None:
    """runc's ^[\\w+-\\.]+$, where +-. is a range that holds the comma, up to a file name's length."""
    unique = uuid.uuid4().hex[:12]  # the cgroup path <own cgroup>/pyrunc/<id> is the host's
    for container_id in [f"a,b+c-d.e_F9{unique}", f".{unique}", f"{unique}-", unique.ljust(255, "x")]:
        rt.ids.append(container_id)
        rt.create(sleeper, container_id)
        assert rt.status(container_id) == "created"
        assert rt("delete", "--force", container_id).returncode == 0


# -- spec, features, version ---------------------------------------------------------------------


def test_spec_equals_runcs(rt: Any, tmp_path: Path) -> None:
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    ours.mkdir()
    theirs.mkdir()
    assert h.call([str(h.RUNC), "spec"], cwd=theirs).returncode == 0
    result = h.call([str(rt.binary), "spec"], cwd=ours)
    assert result.returncode == 0, result.stderr
    assert json.loads((ours / "config.json").read_text()) == json.loads((theirs / "config.json").read_text())


def test_spec_bundle_flag_and_refusal_to_overwrite(rt: Any, tmp_path: Path) -> None:
    bundle = tmp_path / "b"
    bundle.mkdir()
    assert rt("spec", "--bundle", bundle).returncode == 0
    written = (bundle / "config.json").read_bytes()
    assert json.loads(written)["ociVersion"]
    refused(rt, rt("spec", "--bundle", bundle), "File config.json exists. Remove it first", 0)
    assert (bundle / "config.json").read_bytes() == written


def test_features_is_valid_against_the_schema(rt: Any) -> None:
    result = rt("features")
    assert result.returncode == 0, result.stderr
    features = json.loads(result.stdout)
    validator = specs.runtime_spec_validator("features-schema.json")
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(features)]
    assert not errors, errors
    # The validator does follow the references into features-linux.json:
    assert list(
        validator.iter_errors(
            {"ociVersionMin": "1.0.0", "ociVersionMax": "1.1.0", "linux": {"namespaces": ["x"]}}
        )
    )
    assert "mount" in features["linux"]["namespaces"]


def test_version(rt: Any) -> None:
    result = rt("--version")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[0].startswith("runc version ")
    assert lines[1].startswith("commit:") and lines[2].startswith("spec:")
