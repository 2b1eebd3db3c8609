"""Starting a monitor: find the program, run it, wait for its ready line."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from pycontainerd._monitor._protocol import MonitorError

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["DEFAULT_LOG_MAX", "MonitorProcess", "monitor_binary", "runtime_error", "start_monitor"]

DEFAULT_LOG_MAX = 16 << 20
_PROGRAM = "pycontainerd-monitor"


@attrs.frozen
class MonitorProcess:
    """A monitor that is ready: its own pid and the pid of the container's init it tracks."""

    pid: int
    init_pid: int


def monitor_binary() -> Path:
    """The monitor program built into the installed package."""
    path = Path(__file__).with_name(_PROGRAM)
    if not os.access(path, os.X_OK):
        raise MonitorError(
            f"the monitor program {path} is missing or not executable: reinstall pycontainerd "
            "(pip install ./packages/pycontainerd) so that it is compiled"
        )
    return path


def runtime_error(directory: Path) -> str | None:
    """The last error the runtime logged in ``DIR/runtime.log`` (JSON lines, as runc's
    ``--log-format json``), if any."""
    try:
        lines = (directory / "runtime.log").read_text(errors="replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("level") in ("error", "fatal"):
            return str(entry.get("msg"))
    return None


def _read_ready(fd: int, timeout: float) -> bytes:
    """The ready line, read until its newline, EOF or ``timeout``."""
    deadline = time.monotonic() + timeout
    line = b""
    while not line.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            raise TimeoutError
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        line += chunk
    return line


def start_monitor(
    directory: str | os.PathLike[str],
    argv: Sequence[str],
    *,
    id: str,
    namespace: str,
    tty: bool = False,
    stdin: bool = False,
    log_max: int = DEFAULT_LOG_MAX,
    memory_cgroup: str | os.PathLike[str] | None = None,
    events: str | os.PathLike[str] | None = None,
    timeout: float = 30.0,
) -> MonitorProcess:
    """Start a monitor in ``directory`` (which must exist) that runs ``argv`` (``pyrunc ... create``)
    and tracks the container's init; returns once the init exists.

    Raises :class:`MonitorError` with the reason (the runtime's own error when it logged one to
    ``DIR/runtime.log``) if the monitor or the runtime failed, or nothing was ready within
    ``timeout`` seconds (the monitor is then killed; the container, if made, is the caller's to
    delete).
    """
    root = Path(directory)
    command = [str(monitor_binary()), "--dir", str(root), "--id", id, "--namespace", namespace]
    command += ["--log-max", str(log_max)]
    if tty:
        command.append("--tty")
    if stdin:
        command.append("--stdin")
    if memory_cgroup is not None:
        command += ["--memory-cgroup", os.path.abspath(memory_cgroup)]
    if events is not None:
        command += ["--events", os.path.abspath(events)]
    ready_r, ready_w = os.pipe()
    try:
        command += ["--ready-fd", str(ready_w), "--", *argv]
        # The monitor forks and its first process exits at once: this does not wait for the container.
        first = subprocess.run(
            command, pass_fds=(ready_w,), stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout
        )
        os.close(ready_w)
        ready_w = -1
        if first.returncode != 0:
            raise MonitorError(first.stderr.decode(errors="replace").strip() or f"{command[0]} failed")
        try:
            line = _read_ready(ready_r, timeout).decode(errors="replace").strip()
        except TimeoutError:
            _kill_monitor(root)
            raise MonitorError(f"the monitor in {root} was not ready after {timeout} s") from None
    finally:
        os.close(ready_r)
        if ready_w >= 0:
            os.close(ready_w)
    verdict, _, detail = line.partition(" ")
    if verdict == "ok":
        return MonitorProcess(pid=int((root / "monitor.pid").read_text().split()[0]), init_pid=int(detail))
    if verdict == "error":
        # The monitor quotes the runtime's stderr; with a terminal that is not the monitor's to see.
        cause = runtime_error(root)
        extra = f": {cause}" if cause and cause not in detail else ""
        raise MonitorError(f"monitor in {root}: {detail}{extra}")
    raise MonitorError(f"the monitor in {root} exited before it was ready")


def _kill_monitor(directory: Path) -> None:
    from pycontainerd._monitor._records import monitor_alive

    if monitor_alive(directory):
        os.kill(int((directory / "monitor.pid").read_text().split()[0]), signal.SIGKILL)
