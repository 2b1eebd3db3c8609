"""What a monitor leaves in its directory, read without talking to it: exit records, logs, liveness."""

from __future__ import annotations

import json
import os
import select
import time
from pathlib import Path

from pycontainerd._monitor.protocol import HEADER, MonitorError
from pycontainerd._record import Record
from pycontainerd._times import parse_time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from datetime import datetime
    from typing import BinaryIO, Final

__all__ = [
    "ExitStatus",
    "monitor_alive",
    "process_alive",
    "read_exit",
    "read_log",
    "wait_monitor_exit",
    "write_process_file",
]

_FOLLOW_INTERVAL = 0.05


class ExitStatus(Record):
    """How a process ended: ``status`` is its exit code, or 128+signal if a signal killed it."""

    __slots__ = ("pid", "status", "exited_at", "oom_killed")

    def __init__(self, pid: int, status: int, exited_at: datetime, oom_killed: bool) -> None:
        self.pid: Final = pid
        self.status: Final = status
        self.exited_at: Final = exited_at
        self.oom_killed: Final = oom_killed

    @classmethod
    def from_json(cls, raw: dict[str, object]) -> ExitStatus:
        """From the monitor's exit record ``{"pid", "status", "exited_at", "oom_killed"}``."""
        pid, status, exited_at, oom_killed = (
            raw.get("pid"),
            raw.get("status"),
            raw.get("exited_at"),
            raw.get("oom_killed"),
        )
        if not (
            isinstance(pid, int)
            and isinstance(status, int)
            and isinstance(exited_at, str)
            and isinstance(oom_killed, bool)
        ):
            raise MonitorError(f"malformed exit record: {raw!r}")
        return cls(pid=pid, status=status, exited_at=parse_time(exited_at), oom_killed=oom_killed)


def read_exit(directory: str | os.PathLike[str], proc: str = "init") -> ExitStatus | None:
    """The exit record of ``proc`` in a monitor's directory, or None while it has not exited."""
    path = Path(directory) / f"{proc}.exit"
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise MonitorError(f"{path}: not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise MonitorError(f"{path}: not a JSON object")
    return ExitStatus.from_json(raw)


def _stat_fields(pid: int | str) -> list[str]:
    """The fields of ``/proc/PID/stat`` from the third (state) on: the command name before them may
    hold spaces and parentheses."""
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    return stat[stat.rindex(")") + 2 :].split()


def write_process_file(path: str | os.PathLike[str]) -> None:
    """Write ``PID STARTTIME`` of this process to ``path`` (atomically), as the monitor writes
    ``monitor.pid``: :func:`process_alive` reads it."""
    temporary = f"{os.fspath(path)}.tmp"
    with open(temporary, "w") as f:
        f.write(f"{os.getpid()} {_stat_fields('self')[19]}\n")
    os.replace(temporary, path)


def process_alive(path: str | os.PathLike[str]) -> bool:
    """Whether the process named in the file ``path`` (``PID STARTTIME``, field 22 of its
    /proc/PID/stat) still runs: same pid, same start time (a reused pid does not count), not a
    zombie. False if there is no such file."""
    try:
        pid_text, start_text = Path(path).read_text().split()
        fields = _stat_fields(int(pid_text))
    except (OSError, ValueError):
        return False
    return fields[0] != "Z" and fields[19] == start_text


def monitor_alive(directory: str | os.PathLike[str]) -> bool:
    """Whether the monitor that wrote ``DIR/monitor.pid`` still runs (or the process that becomes
    it by ``execve``, which writes the file first: see ``MonitorLauncher``)."""
    return process_alive(Path(directory) / "monitor.pid")


def wait_monitor_exit(directory: str | os.PathLike[str], timeout: float) -> bool:
    """Wait until the monitor that wrote ``DIR/monitor.pid`` has exited (at once when none runs);
    False if it still runs after ``timeout`` seconds. Waits on a pidfd, which turns readable when
    the process ends (it is nobody's child here), rather than polling: a poll interval was the
    latency of every task delete that came right after its process's exit."""
    try:
        pid_text, _ = (Path(directory) / "monitor.pid").read_text().split()
        pidfd = os.pidfd_open(int(pid_text))
    except (OSError, ValueError):
        return True  # no pid file, or no such process: nothing runs
    try:
        # Checked once the pidfd is open: if the monitor still runs, the pidfd is its own, not that
        # of a process that got its pid again.
        if not monitor_alive(directory):
            return True
        return bool(select.select([pidfd], [], [], timeout)[0])
    finally:
        os.close(pidfd)


def _frames(buffer: bytearray) -> Iterator[tuple[int, bytes]]:
    """The whole frames at the start of ``buffer``, removed from it as they are yielded."""
    while len(buffer) >= HEADER.size:
        kind, length = HEADER.unpack_from(buffer)
        if len(buffer) < HEADER.size + length:
            return
        payload = bytes(buffer[HEADER.size : HEADER.size + length])
        del buffer[: HEADER.size + length]
        yield kind, payload


def _drain(f: BinaryIO, buffer: bytearray) -> Iterator[tuple[int, bytes]]:
    while chunk := f.read(1 << 16):
        buffer += chunk
        yield from _frames(buffer)


def read_log(
    directory: str | os.PathLike[str], proc: str = "init", *, follow: bool = False
) -> Iterator[tuple[int, bytes]]:
    """The output ``proc`` left in its log as ``(stream, data)``, 1 stdout and 2 stderr: the
    rotated ``PROC.log.1`` first, then ``PROC.log``.

    With ``follow``, keeps reading as the monitor writes (across rotations) until the exit record
    exists and the log is drained, or the monitor is gone. Without, a rotation while reading can
    skip what was rotated meanwhile.
    """
    root = Path(directory)
    current, exit_path = root / f"{proc}.log", root / f"{proc}.exit"
    buffer = bytearray()
    try:
        with open(root / f"{proc}.log.1", "rb") as old:
            yield from _drain(old, buffer)
    except FileNotFoundError:
        pass
    buffer.clear()  # a frame is never split across files
    f: BinaryIO | None = None
    try:
        while True:
            # Checked before reading: the exit record comes after the output's end, so once it
            # exists, reading to the end gets everything.
            finished = not follow or exit_path.exists() or not monitor_alive(root)
            if f is None:
                try:
                    f = open(current, "rb")  # noqa: SIM115 (kept open across rotations)
                except FileNotFoundError:
                    if finished:
                        return
                    time.sleep(_FOLLOW_INTERVAL)
                    continue
            yield from _drain(f, buffer)
            try:
                rotated = os.stat(current).st_ino != os.fstat(f.fileno()).st_ino
            except FileNotFoundError:
                rotated = False
            if rotated:
                yield from _drain(f, buffer)  # what was written before the rename
                f.close()
                f = None
                buffer.clear()
                continue
            if finished:
                return
            time.sleep(_FOLLOW_INTERVAL)
    finally:
        if f is not None:
            f.close()
