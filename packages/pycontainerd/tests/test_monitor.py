"""The per-container monitor (pycontainerd._monitor) with real pyrunc containers on busybox bundles.

Every container is created with pyrunc's Python API in the monitor's forked process, started with
``pyrunc start`` and deleted with ``pyrunc delete`` afterwards; every test waits for its monitors to exit.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

import pyrunc
from pycontainerd._monitor import (
    FRAME_STDERR,
    FRAME_STDOUT,
    CreateRequest,
    ExitStatus,
    Monitor,
    MonitorError,
    MonitorLauncher,
    MonitorOptions,
    MonitorProcess,
    monitor_alive,
    monitor_binary,
    read_exit,
    read_log,
    wait_monitor_exit,
)
from pycontainerd._monitor.launch import LaunchWork
from pycontainerd._monitor.runtime import create_init
from pycontainerd._times import parse_time
from pyrunc.testing import make_busybox_bundle

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

pytestmark = pytest.mark.integration

PYRUNC = Path(sys.executable).parent / "pyrunc"


def _joined(frames: Iterable[tuple[int, bytes]], stream: int | None = None) -> bytes:
    return b"".join(data for kind, data in frames if stream is None or kind == stream)


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


class Box:
    """One container: a busybox bundle, a pyrunc root and the monitor's directory under ``base``."""

    def __init__(self, base: Path, args: list[str], *, tty: bool = False) -> None:
        self.id = f"mon-{uuid.uuid4().hex[:10]}"
        self.base = base
        self.bundle = make_busybox_bundle(base / "bundle", args, terminal=tty)
        self.root = base / "root"
        self.dir = base / "m"
        self.dir.mkdir()
        self.tty = tty
        self.monitor: MonitorProcess | None = None

    @property
    def rootfs(self) -> Path:
        return self.bundle / "rootfs"

    def edit_config(self, change: Callable[[dict[str, Any]], None]) -> None:
        path = self.bundle / "config.json"
        config = json.loads(path.read_text())
        change(config)
        path.write_text(json.dumps(config))

    def create_request(self) -> CreateRequest:
        """What pyrunc's create gets, in the monitor's forked process."""
        console = str(self.dir / "console.sock") if self.tty else None
        return CreateRequest(
            self.id, bundle=str(self.bundle), root=str(self.root), pid_file=str(self.dir / "init.pid"),
            console_socket=console,
        )  # fmt: skip

    def start_monitor(self, memory_cgroup: str | None = None, **options: Any) -> MonitorProcess:
        """The monitor around a new init; ``memory_cgroup`` replaces the one pyrunc made it."""

        def with_memory_cgroup(request: CreateRequest) -> tuple[int, str | None]:
            return create_init(request)[0], memory_cgroup

        create = create_init if memory_cgroup is None else with_memory_cgroup
        launcher = MonitorLauncher(create, load=pyrunc.preload)
        self.monitor = launcher.start(
            self.dir, self.create_request(), MonitorOptions(self.id, "testing", tty=self.tty, **options)
        )
        return self.monitor

    def pyrunc(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(PYRUNC), "--root", str(self.root), *args], check=True, capture_output=True, text=True
        )

    def start(self) -> None:
        self.pyrunc("start", self.id)

    def exec_argv(self, proc: str, args: list[str], *, tty: bool = False) -> list[str]:
        process = json.loads((self.bundle / "config.json").read_text())["process"]
        process.update(args=args, terminal=tty)
        spec = self.base / f"{proc}.json"
        spec.write_text(json.dumps(process))
        argv = [str(PYRUNC), "--root", str(self.root), "exec", "-d"]
        argv += ["--pid-file", str(self.dir / f"{proc}.pid")]
        if tty:
            argv += ["--console-socket", str(self.dir / f"{proc}.console.sock")]
        return [*argv, "--process", str(spec), self.id]

    def wait_exit(self, proc: str = "init", timeout: float = 30.0) -> ExitStatus:
        _wait_for(lambda: read_exit(self.dir, proc) is not None, f"the exit record of {proc}", timeout)
        status = read_exit(self.dir, proc)
        assert status is not None
        return status

    def events(self) -> list[dict[str, Any]]:
        """The events, each checked for a recent ``timestamp`` that is then left out."""
        path = self.base / "events"
        events = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
        now = datetime.now(UTC)
        for event in events:
            assert timedelta(0) <= now - parse_time(event.pop("timestamp")) < timedelta(minutes=5), event
        return events

    def remove(self) -> None:
        """Delete the container (killing it), then see the monitor out."""
        if (self.root / self.id).exists():
            subprocess.run(
                [str(PYRUNC), "--root", str(self.root), "delete", "--force", self.id],
                check=True,
                capture_output=True,
            )
        if self.monitor is not None:
            try:
                _wait_for(lambda: not monitor_alive(self.dir), "the monitor to exit", 15)
            except AssertionError:
                os.kill(self.monitor.pid, signal.SIGKILL)
                raise


@pytest.fixture
def boxes() -> Iterator[Callable[..., Box]]:
    """Make containers (in short directories: unix socket paths stay under 108 bytes); all are
    deleted afterwards and their monitors must have exited."""
    made: list[Box] = []
    base = Path(tempfile.mkdtemp(prefix="pcm-"))

    def make(args: list[str], *, tty: bool = False) -> Box:
        box = Box(base / str(len(made)), args, tty=tty)
        made.append(box)
        return box

    try:
        yield make
    finally:
        try:
            for box in made:
                box.remove()
        finally:
            shutil.rmtree(base)


def test_the_program_is_built_into_the_package() -> None:
    path = monitor_binary()
    assert path.name == "pycontainerd-monitor"
    assert os.access(path, os.X_OK)
    with path.open("rb") as f:
        assert f.read(4) == b"\x7fELF"


def test_the_program_compiles_without_warnings(tmp_path: Path) -> None:
    sources = sorted((Path(__file__).resolve().parents[1] / "src" / "pycontainerd" / "_monitor").glob("*.c"))
    assert [source.name for source in sources] == ["control.c", "monitor.c", "output.c", "process.c"]
    done = subprocess.run(
        ["gcc", "-O2", "-Wall", "-Wextra", *map(str, sources), "-o", str(tmp_path / "pycontainerd-monitor")],
        capture_output=True,
        text=True,
    )
    assert (done.returncode, done.stderr) == (0, "")


def test_bad_arguments_are_refused_before_anything_starts(tmp_path: Path) -> None:
    done = subprocess.run(
        [str(monitor_binary()), "--dir", str(tmp_path), "--id", "x", "--ready-fd", "1", "--adopt", "1"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert "--ready-fd must be an open file descriptor above 2" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_stdio_that_does_not_fit_the_mode_is_refused(tmp_path: Path) -> None:
    base = [str(monitor_binary()), "--dir", str(tmp_path), "--id", "x", "--namespace", "n", "--adopt", "1"]
    read, write = os.pipe()
    try:
        fds = [str(read), str(write)]
        for extra, message in [
            (["--tty", "--stdout-fd", fds[0]], "--tty takes --console-fd"),
            (["--stdout-fd", fds[0]], "without --tty: --stdout-fd and --stderr-fd"),
            (["--stdout-fd", fds[0], "--stderr-fd", fds[1], "--stdin"], "--stdin-fd with --stdin"),
        ]:
            done = subprocess.run(
                [*base, "--ready-fd", fds[1], *extra], capture_output=True, text=True, pass_fds=(read, write)
            )
            assert done.returncode == 2, extra
            assert message in done.stderr, extra
    finally:
        os.close(read)
        os.close(write)
    assert list(tmp_path.iterdir()) == []


# ("kill", 137): SIGKILL from outside (the container's init ignores signals it sent itself).
@pytest.mark.parametrize(("script", "expected"), [("exit 0", 0), ("exit 3", 3), ("kill", 137)])
def test_exit_status_is_recorded_with_an_event(boxes: Callable[..., Box], script: str, expected: int) -> None:
    box = boxes(["sleep", "100"] if script == "kill" else ["sh", "-c", script])
    before = datetime.now(UTC)
    started = box.start_monitor(events=box.base / "events")
    assert monitor_alive(box.dir)
    assert int((box.dir / "init.pid").read_text()) == started.init_pid
    pid, start_time = (box.dir / "monitor.pid").read_text().split()
    assert int(pid) == started.pid
    assert start_time == Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    box.start()
    if script == "kill":
        box.pyrunc("kill", box.id, "KILL")

    status = box.wait_exit()
    assert status.pid == started.init_pid
    assert status.status == expected
    assert status.oom_killed is False
    assert before - timedelta(seconds=1) < status.exited_at < datetime.now(UTC) + timedelta(seconds=1)
    _wait_for(lambda: not monitor_alive(box.dir), "the monitor to exit")
    assert not (box.dir / "monitor.sock").exists()
    assert not (box.dir / "monitor.pid").exists()
    (event,) = box.events()
    assert event == {
        "topic": "/tasks/exit",
        "namespace": "testing",
        "id": box.id,
        "proc": "init",
        "pid": started.init_pid,
        "status": expected,
        "exited_at": event["exited_at"],
    }
    assert event["exited_at"].endswith("Z") and len(event["exited_at"].split(".")[1]) == 10


@pytest.mark.parametrize("tty", [False, True], ids=["pipes", "tty"])
def test_a_failed_create_reports_the_runtime_error(boxes: Callable[..., Box], tty: bool) -> None:
    box = boxes(["true"])
    box.start_monitor()
    again = boxes(["true"], tty=tty)
    again.id = box.id
    again.root = box.root  # the same id under the same root: pyrunc create refuses
    # pyrunc's own error, raised in the forked child, said once.
    reason = rf"^container with id exists: {box.id}$"
    with pytest.raises(MonitorError, match=reason):
        again.start_monitor()
    assert not monitor_alive(again.dir)
    assert not (again.dir / "monitor.sock").exists() and not (again.dir / "monitor.pid").exists()
    assert not (again.dir / "console.sock").exists()
    box.start()
    assert box.wait_exit().status == 0


def test_a_memory_cgroup_that_cannot_notify_fails_the_start_and_stops_the_init(
    boxes: Callable[..., Box],
) -> None:
    box = boxes(["sleep", "100"])
    missing = f"/sys/fs/cgroup/memory/{box.id}-missing"
    with pytest.raises(MonitorError, match=f"open {missing}/memory.oom_control: No such file or directory$"):
        box.start_monitor(memory_cgroup=missing)
    assert not monitor_alive(box.dir)
    _wait_for(lambda: "stopped" in box.pyrunc("state", box.id).stdout, "the init to be killed")


def _records(raw: bytes) -> list[tuple[int, bytes, int]]:
    """The records of a log file, checked to be whole to its last byte."""
    found, offset = [], 0
    while offset < len(raw):
        stream, length = raw[offset], int.from_bytes(raw[offset + 4 : offset + 8], "big")
        assert raw[offset + 1 : offset + 4] == b"\0\0\0"
        end = offset + 8 + length
        stamp, again = (
            int.from_bytes(raw[end : end + 8], "big"),
            int.from_bytes(raw[end + 8 : end + 12], "big"),
        )
        assert again == length
        found.append((stream, raw[offset + 8 : end], stamp))
        offset = end + 12
    assert offset == len(raw)
    return found


def test_the_log_holds_a_timestamped_record_per_line(boxes: Callable[..., Box]) -> None:
    box = boxes(["sh", "-c", "echo out; sleep 0.2; echo err >&2; sleep 0.2; printf 'two\\nlines\\nabc'"])
    before = time.time_ns()
    box.start_monitor()
    box.start()
    box.wait_exit()
    records = _records((box.dir / "init.log").read_bytes())
    assert [(stream, data) for stream, data, _ in records] == [
        (FRAME_STDOUT, b"out\n"),
        (FRAME_STDERR, b"err\n"),
        (FRAME_STDOUT, b"two\n"),
        (FRAME_STDOUT, b"lines\n"),
        (FRAME_STDOUT, b"abc"),
    ]
    stamps = [stamp for _, _, stamp in records]
    assert before < stamps[0] and stamps == sorted(stamps) and stamps[-1] < time.time_ns()
    assert stamps[1] - stamps[0] >= 150_000_000  # read when written, 0.2 s apart
    assert list(read_log(box.dir)) == [(stream, data) for stream, data, _ in records]


def test_the_log_is_rotated_at_its_cap_between_records(boxes: Callable[..., Box]) -> None:
    box = boxes(["sh", "-c", "i=0; while [ $i -lt 3000 ]; do echo line$i; i=$((i+1)); done"])
    box.start_monitor(log_max=4096)
    box.start()
    box.wait_exit()
    everything = b"".join(b"line%d\n" % i for i in range(3000))
    kept = b""
    for name in ("init.log.1", "init.log"):
        raw = (box.dir / name).read_bytes()
        # a rotated file is full: the next record would not have fitted
        assert 4096 - 32 < len(raw) <= 4096 if name == "init.log.1" else 0 < len(raw) <= 4096
        kept += b"".join(data for _, data, _ in _records(raw))
    assert not (box.dir / "init.log.2").exists()
    assert everything.endswith(kept)  # the newest output, contiguous across the two files
    assert _joined(read_log(box.dir)) == kept


def test_following_the_log_across_rotations_misses_nothing(boxes: Callable[..., Box]) -> None:
    line = "x" * 500
    script = f"i=0; while [ $i -lt 60 ]; do echo ${{i}}{line}; i=$((i+1)); sleep 0.02; done"
    box = boxes(["sh", "-c", script])
    box.start_monitor(log_max=4096)
    box.start()
    followed = _joined(read_log(box.dir, follow=True))
    assert followed == b"".join(b"%d%s\n" % (i, line.encode()) for i in range(60))
    assert (box.dir / "init.log.1").exists()


def test_the_init_log_goes_where_asked_rotated_into_as_many_files_as_asked(
    boxes: Callable[..., Box],
) -> None:
    box = boxes(["sh", "-c", "i=0; while [ $i -lt 400 ]; do echo line$i; i=$((i+1)); done"])
    log = box.base / "logs" / "container.log"
    log.parent.mkdir()
    log.write_bytes(_records_bytes([(FRAME_STDOUT, b"from before\n", 1)]))  # an earlier run's
    box.start_monitor(log=log, log_max_size=1024, log_max_files=3)
    box.start()
    box.wait_exit()
    assert not (box.dir / "init.log").exists()
    assert sorted(p.name for p in log.parent.iterdir()) == [
        "container.log",
        "container.log.1",
        "container.log.2",
    ]
    kept = b""
    for name in ("container.log.2", "container.log.1", "container.log"):
        raw = (log.parent / name).read_bytes()
        assert 1024 - 40 < len(raw) <= 1024 if name != "container.log" else len(raw) <= 1024
        kept += b"".join(data for _, data, _ in _records(raw))
    assert b"".join(b"line%d\n" % i for i in range(400)).endswith(kept)
    assert _joined(read_log(box.dir, path=log)) == kept


def _records_bytes(records: list[tuple[int, bytes, int]]) -> bytes:
    return b"".join(
        bytes((stream, 0, 0, 0)) + len(data).to_bytes(4, "big") + data + stamp.to_bytes(8, "big")
        + len(data).to_bytes(4, "big")
        for stream, data, stamp in records
    )  # fmt: skip


def test_a_leftover_process_holding_the_output_does_not_hold_up_the_exit(boxes: Callable[..., Box]) -> None:
    box = boxes(["sleep", "100"])
    box.start_monitor()
    box.start()
    with Monitor.connect(box.dir) as monitor:
        pid, _ = monitor.exec("bg", box.exec_argv("bg", ["sh", "-c", "sleep 30 & echo started"]))
        started = time.monotonic()
        status = box.wait_exit("bg", timeout=10)
        assert 1.5 < time.monotonic() - started < 8  # recorded after the 2 s grace, not at the sleep's end
        assert (status.pid, status.status) == (pid, 0)
        assert _joined(read_log(box.dir, "bg")) == b"started\n"
        assert monitor.status()["init"].running


def test_an_attached_client_sees_all_output_and_the_exit(boxes: Callable[..., Box]) -> None:
    box = boxes(["sh", "-c", "echo one; echo two >&2; echo three; exit 2"])
    box.start_monitor()
    with Monitor.connect(box.dir) as monitor, monitor.attach("init") as attachment:
        box.start()
        frames = list(attachment.frames())
        assert attachment.exit is not None and attachment.exit.status == 2
    assert _joined(frames, FRAME_STDOUT) == b"one\nthree\n"
    assert _joined(frames, FRAME_STDERR) == b"two\n"
    assert attachment.exit == box.wait_exit()


def test_stdin_round_trip(boxes: Callable[..., Box]) -> None:
    box = boxes(["cat"])
    box.start_monitor(stdin=True)
    data = b"".join(b"line %d of stdin\n" % i for i in range(2000))
    with Monitor.connect(box.dir) as monitor, monitor.attach("init", stdin=True) as attachment:
        box.start()
        attachment.write_stdin(data)
        attachment.close_stdin()
        assert _joined(attachment.frames(), FRAME_STDOUT) == data
    assert box.wait_exit().status == 0


def _private_dirty_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Private_Dirty:"):
            return int(line.split()[1])
    raise AssertionError(f"no Private_Dirty in /proc/{pid}/smaps_rollup")


def _write_blob(path: Path, megabytes: int) -> str:
    digest = hashlib.sha256()
    with path.open("wb") as f:
        for _ in range(megabytes):
            chunk = os.urandom(1 << 20)
            digest.update(chunk)
            f.write(chunk)
    return digest.hexdigest()


def test_100_mb_of_binary_output_arrive_intact_through_an_attach(boxes: Callable[..., Box]) -> None:
    box = boxes(["cat", "/blob"])
    expected = _write_blob(box.rootfs / "blob", 100)
    started = box.start_monitor()
    idle = _private_dirty_kb(started.pid)
    received, size = hashlib.sha256(), 0
    with Monitor.connect(box.dir) as monitor, monitor.attach("init") as attachment:
        box.start()
        for kind, data in attachment.frames():
            assert kind == FRAME_STDOUT
            if size == 0:
                # A reader that lags holds the container back instead of growing the monitor.
                time.sleep(1)
                assert _private_dirty_kb(started.pid) - idle < 4096
            received.update(data)
            size += len(data)
    assert size == 100 << 20
    assert received.hexdigest() == expected
    assert attachment.exit is not None and attachment.exit.status == 0
    (box.rootfs / "blob").unlink()


def test_a_client_that_goes_away_is_dropped_and_nothing_is_lost(boxes: Callable[..., Box]) -> None:
    box = boxes(["cat", "/blob"])
    expected = _write_blob(box.rootfs / "blob", 8)
    box.start_monitor()
    with Monitor.connect(box.dir) as monitor:
        attachment = monitor.attach("init")
        box.start()
        next(attachment.frames())
        attachment.close()
    assert box.wait_exit().status == 0
    assert hashlib.sha256(_joined(read_log(box.dir))).hexdigest() == expected


def test_a_terminal_with_resize(boxes: Callable[..., Box]) -> None:
    box = boxes(["sh", "-c", "read line; stty size; exit 6"], tty=True)
    box.start_monitor(stdin=True)
    with Monitor.connect(box.dir) as monitor, monitor.attach("init", stdin=True) as attachment:
        box.start()
        monitor.resize("init", 42, 123)
        attachment.write_stdin(b"go\r")
        output = _joined(attachment.frames())
    assert b"42 123" in output
    assert attachment.exit is not None and attachment.exit.status == 6
    _wait_for(lambda: not monitor_alive(box.dir), "the monitor to exit")
    with pytest.raises(MonitorError, match="connect to the monitor"):
        Monitor.connect(box.dir)


def test_exec_with_and_without_a_terminal(boxes: Callable[..., Box]) -> None:
    box = boxes(["sleep", "100"])
    box.start_monitor(events=box.base / "events")
    box.start()
    with Monitor.connect(box.dir) as monitor:
        argv = box.exec_argv("plain", ["sh", "-c", "echo exec-out; echo exec-err >&2; exit 5"])
        pid, attachment = monitor.exec("plain", argv, attach=True)
        assert attachment is not None
        with attachment:
            frames = list(attachment.frames())
        assert _joined(frames, FRAME_STDOUT) == b"exec-out\n"
        assert _joined(frames, FRAME_STDERR) == b"exec-err\n"
        assert attachment.exit is not None and (attachment.exit.pid, attachment.exit.status) == (pid, 5)
        assert box.wait_exit("plain") == attachment.exit
        assert list(read_log(box.dir, "plain")) == frames

        argv = box.exec_argv("term", ["sh", "-c", "read a; test -t 0 && echo on-a-tty; exit 7"], tty=True)
        pid, attachment = monitor.exec("term", argv, tty=True, stdin=True, attach=True)
        assert attachment is not None
        with attachment:
            attachment.write_stdin(b"x\r")
            output = _joined(attachment.frames())
        assert b"on-a-tty" in output
        assert attachment.exit is not None and attachment.exit.status == 7

        argv = box.exec_argv("detached", ["sh", "-c", "echo later; exit 9"])
        pid, none = monitor.exec("detached", argv)
        assert none is None
        assert box.wait_exit("detached").status == 9
        assert _joined(read_log(box.dir, "detached", follow=True)) == b"later\n"

        with pytest.raises(MonitorError, match="process id plain is already used"):
            monitor.exec("plain", argv)
        with pytest.raises(
            MonitorError, match=r"^exec exited with status 1: container no-such-container does not exist$"
        ):
            monitor.exec("broken", [*box.exec_argv("broken", ["true"])[:-1], "no-such-container"])
        assert not (box.dir / "broken.log").exists()  # the id is free again
        with pytest.raises(
            MonitorError, match=r"^exec exited with status 1: container no-such-container does not"
        ):
            monitor.exec(
                "broken", [*box.exec_argv("broken", ["true"], tty=True)[:-1], "no-such-container"], tty=True
            )
        assert not (box.dir / "broken.console.sock").exists()
        status = monitor.status()
        assert list(status) == ["init", "plain", "term", "detached"]
        assert status["init"].running and status["init"].pid == box.monitor.init_pid  # type: ignore[union-attr]
        assert status["detached"].exit == read_exit(box.dir, "detached")
    box.pyrunc("kill", box.id, "KILL")
    assert box.wait_exit().status == 137
    exits = {event["proc"]: event["status"] for event in box.events() if event["topic"] == "/tasks/exit"}
    assert exits == {"plain": 5, "term": 7, "detached": 9, "init": 137}


_MANAGER = """
import sys, time
import pyrunc
from pycontainerd._monitor import CreateRequest, MonitorLauncher, MonitorOptions
from pycontainerd._monitor.runtime import create_init
directory, container_id, bundle, root = sys.argv[1:]
request = CreateRequest(container_id, bundle=bundle, root=root, pid_file=directory + "/init.pid")
launcher = MonitorLauncher(create_init, load=pyrunc.preload)
started = launcher.start(directory, request, MonitorOptions(container_id, "testing"))
print(started.init_pid, flush=True)
time.sleep(600)
"""


def test_the_container_outlives_the_manager_killed_with_sigkill(boxes: Callable[..., Box]) -> None:
    box = boxes(["sh", "-c", "i=0; while [ $i -lt 20 ]; do echo tick$i; i=$((i+1)); sleep 0.1; done; exit 4"])
    manager = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(_MANAGER),
            str(box.dir),
            box.id,
            *map(str, (box.bundle, box.root)),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert manager.stdout is not None
        init_pid = int(manager.stdout.readline())
        box.monitor = MonitorProcess(
            pid=int((box.dir / "monitor.pid").read_text().split()[0]), init_pid=init_pid
        )
        box.start()
        time.sleep(0.3)
    finally:
        manager.kill()
        manager.wait()
        manager.stdout.close()  # type: ignore[union-attr]
    assert monitor_alive(box.dir)
    follow = _joined(read_log(box.dir, follow=True))
    assert follow == b"".join(b"tick%d\n" % i for i in range(20))
    status = box.wait_exit()
    assert (status.pid, status.status) == (init_pid, 4)


def test_a_monitor_killed_with_sigkill_is_seen_dead(boxes: Callable[..., Box]) -> None:
    box = boxes(["sleep", "100"])
    started = box.start_monitor()
    box.start()
    assert monitor_alive(box.dir)
    os.kill(started.pid, signal.SIGKILL)
    _wait_for(lambda: not monitor_alive(box.dir), "monitor_alive to turn false")
    assert read_exit(box.dir) is None
    with pytest.raises(MonitorError, match="connect to the monitor"):
        Monitor.connect(box.dir)
    box.monitor = None  # nothing left to wait for: the container is deleted by remove()


def test_an_oom_kill_is_recorded_and_reported(boxes: Callable[..., Box]) -> None:
    box = boxes(["sh", "-c", "sleep 0.3; tail /dev/zero"])
    limit = 32 << 20

    def limit_memory(config: dict[str, Any]) -> None:
        config["linux"].setdefault("resources", {})["memory"] = {"limit": limit, "swap": limit}

    box.edit_config(limit_memory)
    box.start_monitor(events=box.base / "events")  # pyrunc's create names the memory cgroup
    box.start()
    status = box.wait_exit()
    assert (status.status, status.oom_killed) == (137, True)
    topics = [event["topic"] for event in box.events()]
    assert "/tasks/oom" in topics and topics[-1] == "/tasks/exit"
    oom = next(event for event in box.events() if event["topic"] == "/tasks/oom")
    assert oom == {"topic": "/tasks/oom", "namespace": "testing", "id": box.id}


def test_waiting_for_a_monitors_exit_wakes_at_the_exit(tmp_path: Path) -> None:
    assert wait_monitor_exit(tmp_path, 0)  # no monitor.pid: nothing runs
    stand_in = subprocess.Popen(["sleep", "30"])  # a process in the monitor's place
    try:
        start_time = Path(f"/proc/{stand_in.pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
        (tmp_path / "monitor.pid").write_text(f"{stand_in.pid} {start_time}\n")
        began = time.monotonic()
        assert not wait_monitor_exit(tmp_path, 0.3)
        assert time.monotonic() - began >= 0.3
        threading.Timer(0.2, stand_in.kill).start()
        began = time.monotonic()
        assert wait_monitor_exit(tmp_path, 10)
        assert time.monotonic() - began < 2  # woken by the exit, not by the timeout
        (tmp_path / "monitor.pid").write_text(f"{stand_in.pid} 1\n")  # another process's start time
        assert wait_monitor_exit(tmp_path, 0)
    finally:
        stand_in.kill()
        stand_in.wait()


def _process_gone(pid: int) -> bool:
    """Exited: no such process, or a zombie its new parent has not reaped yet."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def test_a_launcher_starts_once(boxes: Callable[..., Box]) -> None:
    box = boxes(["sh", "-c", "echo ahead; exit 6"])
    launcher = MonitorLauncher(create_init, load=pyrunc.preload)
    box.monitor = launcher.start(box.dir, box.create_request(), MonitorOptions(box.id, "testing"))
    with pytest.raises(MonitorError, match="used or closed already"):
        launcher.start(box.dir, box.create_request(), MonitorOptions(box.id, "testing"))
    box.start()
    assert box.wait_exit().status == 6
    assert _joined(read_log(box.dir)) == b"ahead\n"


def _never_called(request: CreateRequest) -> tuple[int, str | None]:
    raise AssertionError(f"create called with {request}")


def _request(directory: Path) -> CreateRequest:
    return CreateRequest("x", bundle=str(directory), root=str(directory), pid_file=str(directory / "pid"))


def test_the_launch_work_goes_through_json_and_back() -> None:
    request = CreateRequest("web", bundle="/b", root="/r", pid_file="/b/init.pid", console_socket="/b/c.sock")
    work = LaunchWork(
        "/b", command=["pycontainerd-monitor", "--id", "web"], tty=True, stdin=False, create=request
    )
    assert LaunchWork.from_json(json.loads(json.dumps(work.to_json()))) == work
    plain = work.create.to_json() | {"console_socket": None}
    assert CreateRequest.from_json(plain) == CreateRequest(
        "web", bundle="/b", root="/r", pid_file="/b/init.pid"
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda w: w.update(directory=1), "work.directory is 1"),
        (lambda w: w.update(tty="yes"), "work.tty is 'yes'"),
        (lambda w: w["command"].append(2), "work.command holds a word that is not a string"),
        (lambda w: w.pop("create"), "work.create is None"),
        (lambda w: w["create"].update(console_socket=5), "create.console_socket is 5"),
        (lambda w: w["create"].pop("root"), "create.root is None"),
        (lambda w: w.update(create=[]), "work.create is []"),
    ],
)
def test_launch_work_that_is_not_what_start_sends_is_refused_naming_the_field(
    change: Callable[[dict[str, Any]], object], message: str
) -> None:
    request = CreateRequest("web", bundle="/b", root="/r", pid_file="/b/init.pid")
    data = LaunchWork("/b", command=["monitor"], tty=False, stdin=False, create=request).to_json()
    data["create"] = dict(request.to_json())
    data["command"] = ["monitor"]
    change(data)
    with pytest.raises(MonitorError, match=rf"^the launcher's work: {re.escape(message)}$"):
        LaunchWork.from_json(data)


def test_a_launcher_closed_unused_leaves_no_process(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"

    def load() -> None:
        pid_file.write_text(str(os.getpid()))

    launcher = MonitorLauncher(_never_called, load=load)
    _wait_for(pid_file.exists, "the launcher's child to load")
    child = int(pid_file.read_text())
    assert not _process_gone(child)
    launcher.close()
    _wait_for(lambda: _process_gone(child), "the launcher's child to exit", 10)


def test_a_launcher_s_child_holds_no_other_launcher_s_pipes(tmp_path: Path) -> None:
    # Each child reads its work until its pipe's end: a child forked later (from another thread,
    # as TaskService.create does) must not keep an earlier launcher's pipe open, or that one's child
    # would wait on; two such children waited for each other for ever.
    def load_into(name: str) -> Callable[[], None]:
        def load() -> None:
            (tmp_path / name).write_text(str(os.getpid()))

        return load

    first = MonitorLauncher(_never_called, load=load_into("first"))
    second = MonitorLauncher(_never_called, load=load_into("second"))
    try:
        for name in ("first", "second"):
            _wait_for((tmp_path / name).exists, f"the {name} launcher's child to load")
        child = int((tmp_path / "first").read_text())
        first.close()  # its child sees the end of its work pipe although the second is still open
        _wait_for(lambda: _process_gone(child), "the first launcher's child to exit", 10)
    finally:
        second.close()


def test_a_launcher_whose_load_failed_says_why(tmp_path: Path) -> None:
    def load() -> None:
        raise RuntimeError("cannot load this")

    launcher = MonitorLauncher(_never_called, load=load)
    with pytest.raises(MonitorError, match=r"^cannot load this$"):
        launcher.start(tmp_path, _request(tmp_path), MonitorOptions("x", "testing"))
