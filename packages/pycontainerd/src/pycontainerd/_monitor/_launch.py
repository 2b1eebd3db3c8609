"""Starting a monitor: fork, let ``create`` make the init, exec the monitor, wait until it is ready."""

from __future__ import annotations

import _socket
import contextlib
import json
import os
import select
import signal
import time
from pathlib import Path

from pycontainerd._monitor._protocol import MonitorError
from pycontainerd._record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Final, NoReturn

__all__ = ["DEFAULT_LOG_MAX", "MonitorProcess", "monitor_binary", "runtime_error", "start_monitor"]

DEFAULT_LOG_MAX = 16 << 20
_PROGRAM = "pycontainerd-monitor"


class MonitorProcess(Record):
    """A monitor that is ready: its own pid and the pid of the container's init it tracks."""

    __slots__ = ("pid", "init_pid")

    def __init__(self, pid: int, init_pid: int) -> None:
        self.pid: Final = pid
        self.init_pid: Final = init_pid


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
    create: Callable[[], int],
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
    """Start a monitor in ``directory`` (which must exist) around the init ``create`` makes; return
    once the monitor holds it.

    This process forks, and the child forks again and leaves, so that the monitor is nobody's child
    here (the first child is reaped at once). The grandchild, alone in a new session, makes the
    init's stdio (pipes, or with ``tty`` a console socket listening on ``DIR/console.sock`` for the
    pty master) and calls ``create()`` with those pipes as its own stdin, stdout and stderr.
    ``create`` must make the container's init as a child of the calling process (pyrunc's create
    does: the init is cloned with CLONE_PARENT) and return its pid, leaving it waiting for start.
    The grandchild then becomes the monitor program by ``execve`` (``--adopt PID``): the init stays
    its child, and no second interpreter is started. ``create`` runs in a forked child: every
    module it needs must be imported beforehand (an import there can deadlock on a lock another
    thread held at the fork).

    Raises :class:`MonitorError` with the reason (``create``'s exception, or the monitor's) if
    either failed, or nothing was ready within ``timeout`` seconds (the monitor is then killed; the
    container, if made, is the caller's to delete).
    """
    root = Path(directory)
    command = [str(monitor_binary()), "--dir", str(root), "--id", id, "--namespace", namespace]
    command += ["--log-max", str(log_max)]
    if memory_cgroup is not None:
        command += ["--memory-cgroup", os.path.abspath(memory_cgroup)]
    if events is not None:
        command += ["--events", os.path.abspath(events)]
    if stdin:
        command.append("--stdin")
    ready_r, ready_w = os.pipe()
    try:
        first = os.fork()
        if first == 0:
            _monitor_child(root, create, command, tty=tty, stdin=stdin, ready=ready_w)
        os.close(ready_w)
        ready_w = -1
        os.waitpid(first, 0)
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
        raise MonitorError(detail)
    raise MonitorError(f"the monitor in {root} exited before it was ready")


def _monitor_child(
    root: Path, create: Callable[[], int], command: list[str], *, tty: bool, stdin: bool, ready: int
) -> NoReturn:
    """The forked child of :func:`start_monitor`: never returns."""
    try:
        os.setsid()
        if os.fork() != 0:
            os._exit(0)
        keep: list[int] = [ready]
        null = os.open(os.devnull, os.O_RDWR)
        if tty:
            console = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
            console.bind(str(root / "console.sock"))
            console.listen(1)
            keep.append(console.fileno())
            command += ["--tty", "--console-fd", str(console.fileno())]
            theirs = [null, null, null]
        else:
            out_r, out_w = os.pipe()
            err_r, err_w = os.pipe()
            in_r, in_w = os.pipe() if stdin else (null, -1)
            keep += [out_r, err_r]
            command += ["--stdout-fd", str(out_r), "--stderr-fd", str(err_r)]
            if stdin:
                keep.append(in_w)
                command += ["--stdin-fd", str(in_w)]
            theirs = [in_r, out_w, err_w]
        for fd, target in zip(theirs, (0, 1, 2), strict=True):
            os.dup2(fd, target)
        pid = create()
        for target in (0, 1, 2):
            os.dup2(null, target)
        for fd in keep:
            os.set_inheritable(fd, True)
        command += ["--ready-fd", str(ready), "--adopt", str(pid)]
        os.execv(command[0], command)
    except BaseException as exc:  # noqa: BLE001 - everything is reported to the waiting parent
        with contextlib.suppress(OSError):
            os.unlink(root / "console.sock")
        message = str(exc) or type(exc).__name__
        with contextlib.suppress(OSError):
            os.write(ready, f"error {message}".replace("\n", " ").encode(errors="replace") + b"\n")
    os._exit(1)


def _kill_monitor(directory: Path) -> None:
    from pycontainerd._monitor._records import monitor_alive

    if monitor_alive(directory):
        os.kill(int((directory / "monitor.pid").read_text().split()[0]), signal.SIGKILL)
