"""``pyctr run``, ``containers``, ``tasks`` and ``events`` as a user types them (ctr's argument order), each
command a separate process: nothing survives between them but the root, the state and the monitors."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import pyrunc_acceptance_oci_images as oci_images  # registered by conftest.py
import pytest

PYCTR = str(Path(sys.executable).with_name("pyctr"))


class Pyctr:
    def __init__(self, tmp_path: Path) -> None:
        self.base = [PYCTR, "--root", str(tmp_path / "root"), "--state", str(tmp_path / "state")]

    def __call__(
        self, *args: str, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [*self.base, *args], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout
        )
        if check and done.returncode != 0:
            raise AssertionError(f"pyctr {' '.join(args)} exited {done.returncode}: {done.stderr}")
        return done


@pytest.fixture
def pyctr(tmp_path: Path, layout: object) -> Iterator[Pyctr]:
    archive = oci_images.write_oci_archive(layout, tmp_path / "busybox.tar")
    run = Pyctr(tmp_path)
    run("images", "import", str(archive))
    yield run
    for task in run("tasks", "ls", "-q").stdout.split():
        run("tasks", "rm", "--force", task, check=False)
    for container in run("containers", "ls", "-q").stdout.split():
        run("containers", "rm", "--force", container, check=False)


def _image(pyctr: Pyctr) -> str:
    return pyctr("images", "ls", "-q").stdout.split()[0]


def _tasks(pyctr: Pyctr) -> list[list[str]]:
    return [line.split() for line in pyctr("tasks", "ls").stdout.splitlines()]


def test_run_prints_only_the_output_and_exits_with_the_status(pyctr: Pyctr) -> None:
    done = pyctr(
        "run", "--rm", _image(pyctr), "hello", "sh", "-c", "echo out; echo err >&2; exit 4", check=False
    )
    assert (done.stdout, done.stderr, done.returncode) == ("out\n", "err\n", 4)
    assert pyctr("containers", "ls", "-q").stdout == ""
    assert pyctr("tasks", "ls", "-q").stdout == ""


def test_the_command_after_the_id_is_passed_verbatim(pyctr: Pyctr) -> None:
    done = pyctr("run", "--rm", _image(pyctr), "verbatim", "sh", "-c", 'echo "$0|$1"', "--rm", "-d x")
    assert done.stdout == "--rm|-d x\n"


def test_detached_tasks_listed_killed_and_removed(pyctr: Pyctr) -> None:
    image = _image(pyctr)
    assert pyctr("run", "-d", image, "d1", "sh", "-c", "echo started; sleep 60").stdout == ""
    rows = _tasks(pyctr)
    assert rows[0] == ["TASK", "PID", "STATUS", "EXIT"]
    assert rows[1][0] == "d1" and rows[1][2:] == ["RUNNING", "-"] and int(rows[1][1]) > 1
    assert pyctr("tasks", "ls", "-q").stdout == "d1\n"
    refused = pyctr("containers", "rm", "d1", check=False)
    assert refused.returncode == 1 and "d1 has a RUNNING task" in refused.stderr
    pyctr("tasks", "kill", "-s", "SIGKILL", "d1")
    deadline = time.monotonic() + 30
    while _tasks(pyctr)[1][2] != "STOPPED":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert _tasks(pyctr)[1][2:] == ["STOPPED", "137"]
    assert pyctr("tasks", "logs", "d1").stdout == "started\n"
    pyctr("containers", "rm", "d1")  # its stopped task goes with it
    assert pyctr("tasks", "ls", "-q").stdout == "" and pyctr("containers", "ls", "-q").stdout == ""


def test_exec_pause_resume_and_force_remove(pyctr: Pyctr) -> None:
    pyctr("run", "-d", _image(pyctr), "d2", "sleep", "60")
    done = pyctr(
        "tasks", "exec", "--exec-id", "e1", "d2", "sh", "-c", 'echo "in $0"; exit 6', "d2", check=False
    )
    assert (done.stdout, done.returncode) == ("in d2\n", 6)
    pyctr("tasks", "pause", "d2")
    assert _tasks(pyctr)[1][2] == "PAUSED"
    pyctr("tasks", "resume", "d2")
    assert _tasks(pyctr)[1][2] == "RUNNING"
    assert pyctr("tasks", "ps", "d2").stdout.splitlines()[0].split() == ["PID", "INFO"]
    metrics = json.loads(pyctr("tasks", "metrics", "d2").stdout)
    assert sorted(metrics) == ["blkio", "cpu", "memory", "pids"]
    assert sorted(metrics["pids"]) == ["current", "limit"] and metrics["pids"]["current"] >= 1
    assert metrics["memory"]["usage"] > 0 and metrics["cpu"]["usage_total"] > 0
    pyctr("containers", "rm", "--force", "d2")
    assert pyctr("containers", "ls", "-q").stdout == ""


def test_run_with_a_terminal(pyctr: Pyctr) -> None:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 31, 101, 0, 0))
    proc = subprocess.Popen(
        [*pyctr.base, "run", "--rm", "-t", _image(pyctr), "tty1", "sh", "-c", "stty size; tty; exit 3"],
        stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
    )  # fmt: skip
    os.close(slave)
    output = b""
    deadline = time.monotonic() + 60
    while proc.poll() is None or select.select([master], [], [], 0)[0]:
        assert time.monotonic() < deadline, output
        if select.select([master], [], [], 0.1)[0]:
            try:
                output += os.read(master, 4096)
            except OSError:
                break
    os.close(master)
    assert proc.wait() == 3
    assert b"31 101" in output and b"/dev/pts/0" in output


def test_bad_arguments_give_one_line_errors(pyctr: Pyctr) -> None:
    done = pyctr("run", "--rm", "no/such:image", "x", "true", check=False)
    assert done.returncode == 1 and done.stderr.startswith("pyctr: ") and done.stderr.count("\n") == 1
    done = pyctr("tasks", "kill", "-s", "SIGNOPE", "x", check=False)
    assert done.returncode != 0 and "unknown signal 'SIGNOPE'" in done.stderr
    done = pyctr("events", "topic~=(", check=False)
    assert done.returncode == 1 and "invalid event filter" in done.stderr
    done = pyctr("run", "--rm", _image(pyctr), "bad/id", "true", check=False)
    assert done.returncode == 1 and "invalid container id" in done.stderr


def test_events_follows_what_other_commands_do(pyctr: Pyctr) -> None:
    follower = subprocess.Popen(
        [*pyctr.base, "events", "topic~=^/tasks/(start|exit)$"], stdout=subprocess.PIPE, text=True
    )
    try:
        time.sleep(1)  # let it open the log
        pyctr("run", "--rm", _image(pyctr), "evented", "sh", "-c", "exit 9", check=False)
        assert follower.stdout is not None
        lines = [follower.stdout.readline().split(" ", 3) for _ in range(2)]
    finally:
        follower.send_signal(signal.SIGINT)
        assert follower.wait(10) == 0
    assert sorted(line[2] for line in lines) == ["/tasks/exit", "/tasks/start"]
    assert all(line[1] == "default" and '"id": "evented"' in line[3] for line in lines)
    exit_line = next(line for line in lines if line[2] == "/tasks/exit")
    assert '"status": 9' in exit_line[3]


#: Modules that pyctr's path must not load: each costs every pyctr command (a fresh interpreter)
#: about a millisecond or more, and none is needed to run a container (ARCHITECTURE.md, "Start-up").
#: typing: protocols and aliases are for type checking only; signal, threading, socket: their C
#: modules serve (pycontainerd._stdlib); argparse (with gettext and locale): pyctr's own parser
#: takes a full command line; hashlib: only content writers and multi-layer ChainIDs hash; the
#: network half, the reference grammar, archives and decompressors: only pulls, pushes, imports
#: and unpacking (an image's first run) use them; shutil, tempfile, platform, ctypes, copy,
#: dataclasses, _strptime and importlib.metadata: not used on the path.
SLOW_MODULES = frozenset(
    {
        "typing",
        "signal",
        "threading",
        "socket",
        "argparse",
        "gettext",
        "locale",
        "hashlib",
        "urllib3",
        "concurrent.futures",
        "pycontainerd._remotes.reference",
        "tarfile",
        "zstandard",
        "shutil",
        "tempfile",
        "platform",
        "ctypes",
        "copy",
        "dataclasses",
        "_strptime",
        "importlib.metadata",
    }
)

#: pyctr's launcher (the pyctr script), recording the modules loaded when the command leaves.
_RECORDING_LAUNCHER = """
import os, sys
env = sys.executable.rsplit("/", 2)[0]
sys.path.append(f"{env}/lib/python{sys.version_info[0]}.{sys.version_info[1]}/site-packages")
record, me, leave = sys.argv.pop(1), os.getpid(), os._exit

def recorded(code):
    if os.getpid() == me:  # not the monitor's process, forked by run
        with open(record, "w") as f:
            f.write("\\n".join(sorted(sys.modules)))
    leave(code)

os._exit = recorded
from pycontainerd._cli.main import run
run()
"""


@pytest.mark.parametrize(
    "command",
    [
        ("run", "--rm", "IMAGE", "fast", "true"),
        ("run", "--rm", "SHORT-NAME", "fast", "true"),  # loads the reference grammar, and only it
        ("images", "ls"),
        ("tasks", "ls"),
    ],
    ids=" ".join,
)
def test_pyctr_loads_none_of_the_slow_modules(pyctr: Pyctr, tmp_path: Path, command: tuple[str, ...]) -> None:
    record = tmp_path / "modules"
    image = _image(pyctr)
    short = image.removeprefix("docker.io/library/")
    assert short != image, "the test image is on docker.io/library, so that a short name names it"
    pyctr("run", "--rm", image, "unpacking", "true")  # the image's first run unpacks it
    argv = [{"IMAGE": image, "SHORT-NAME": short}.get(word, word) for word in command]
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", _RECORDING_LAUNCHER, str(record), *pyctr.base[1:], *argv],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    loaded = set(record.read_text().split())
    assert "pycontainerd._cli.main" in loaded
    allowed = {"pycontainerd._remotes.reference"} if "SHORT-NAME" in command else set()
    assert sorted(loaded & SLOW_MODULES - allowed) == []
    assert ("pycontainerd._remotes.reference" in loaded) == bool(allowed)


def test_run_closes_its_forked_monitor_process_whatever_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # run forks the monitor's process first; a container that cannot be made (here: the root has no
    # such image) must still end it, or it would wait for work as long as this process lives.
    from pycontainerd._cli import main, tasks
    from pycontainerd._monitor import CreateRequest, MonitorLauncher, MonitorOptions

    launchers: list[MonitorLauncher] = []
    fork = tasks.pyrunc_launcher

    def recorded() -> MonitorLauncher:
        launchers.append(fork())
        return launchers[-1]

    monkeypatch.setattr(tasks, "pyrunc_launcher", recorded)
    argv = ["--root", str(tmp_path / "root"), "--state", str(tmp_path / "state"), "run", "img", "id"]
    assert main.main(argv) == 1
    (launcher,) = launchers
    with pytest.raises(Exception, match="used or closed already"):
        request = CreateRequest(
            "id", bundle=str(tmp_path), root=str(tmp_path), pid_file=str(tmp_path / "pid")
        )
        launcher.start(tmp_path, request, MonitorOptions("id", "testing"))
