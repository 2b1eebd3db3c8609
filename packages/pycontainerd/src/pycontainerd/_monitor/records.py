"""What a monitor leaves in its directory, read without talking to it: exit records, liveness (the
logs: ``logfile``)."""

from __future__ import annotations

import json
import os
import select
from pathlib import Path

from pycontainerd._monitor.protocol import MonitorError
from pycontainerd._record import Record
from pycontainerd._times import parse_time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from datetime import datetime
    from typing import Final

__all__ = [
    "ExitStatus",
    "monitor_alive",
    "process_alive",
    "read_exit",
    "wait_monitor_exit",
    "write_process_file",
]


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
