"""Starting a monitor: fork, let ``create`` make the init, exec the monitor, wait until it is ready."""

from __future__ import annotations

import contextlib
import json
import os
import select
import time
from pathlib import Path

from pycontainerd._monitor.protocol import MonitorError
from pycontainerd._monitor.records import monitor_alive, write_process_file
from pycontainerd._record import Record
from pycontainerd._stdlib import signal, socket

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Final, NoReturn, TypeVar

    _T = TypeVar("_T")

__all__ = [
    "DEFAULT_LOG_MAX",
    "CreateRequest",
    "LaunchWork",
    "MonitorLauncher",
    "MonitorOptions",
    "MonitorProcess",
    "monitor_binary",
    "runtime_error",
]

DEFAULT_LOG_MAX = 16 << 20
_PROGRAM = "pycontainerd-monitor"

#: Above any descriptor number: the end of the range a launcher's child closes.
_MAX_FD = 2**31 - 1


class MonitorProcess(Record):
    """A monitor that is ready: its own pid and the pid of the container's init it tracks."""

    __slots__ = ("pid", "init_pid")

    def __init__(self, pid: int, init_pid: int) -> None:
        self.pid: Final = pid
        self.init_pid: Final = init_pid


class MonitorOptions(Record):
    """How a monitor runs its container's init: the task's id and namespace (for its events),
    whether the init gets a terminal and a stdin, the cap of exec'd processes' logs, the init's log
    (``log``: the file, its rotation size, 0 for none, and the files kept), the events file, and how
    long to wait for it to be ready (seconds)."""

    __slots__ = (
        "id", "namespace", "tty", "stdin", "log_max", "log", "log_max_size", "log_max_files", "events",
        "timeout",
    )  # fmt: skip

    def __init__(
        self,
        id: str,
        namespace: str,
        *,
        tty: bool = False,
        stdin: bool = False,
        log_max: int = DEFAULT_LOG_MAX,
        log: str | os.PathLike[str] | None = None,
        log_max_size: int = 0,
        log_max_files: int = 1,
        events: str | os.PathLike[str] | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.id: Final = id
        self.namespace: Final = namespace
        self.tty: Final = tty
        self.stdin: Final = stdin
        self.log_max: Final = log_max
        self.log: Final = log
        self.log_max_size: Final = log_max_size
        self.log_max_files: Final = log_max_files
        self.events: Final = events
        self.timeout: Final = timeout


class CreateRequest(Record):
    """What a launcher's process asks the runtime to create before it becomes the monitor: the
    container ``id``, its OCI ``bundle``, the runtime's state ``root``, the file for the init's pid,
    and with a terminal the console socket its pty master goes to."""

    __slots__ = ("id", "bundle", "root", "pid_file", "console_socket")

    def __init__(
        self, id: str, *, bundle: str, root: str, pid_file: str, console_socket: str | None = None
    ) -> None:
        self.id: Final = id
        self.bundle: Final = bundle
        self.root: Final = root
        self.pid_file: Final = pid_file
        self.console_socket: Final = console_socket

    def to_json(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in self.__slots__}

    @classmethod
    def from_json(cls, data: object) -> CreateRequest:
        """The request :meth:`to_json` gave; MonitorError naming what is wrong with another."""
        console_socket = _member(data, "create", "console_socket", (str, type(None)))
        return cls(
            _member(data, "create", "id", str),
            bundle=_member(data, "create", "bundle", str),
            root=_member(data, "create", "root", str),
            pid_file=_member(data, "create", "pid_file", str),
            console_socket=console_socket if isinstance(console_socket, str) else None,
        )


class LaunchWork(Record):
    """The work :meth:`MonitorLauncher.start` sends its child, as one JSON document on the work pipe:
    the task's ``directory``, the monitor's ``command`` but for its stdio, ready and adopt options,
    whether the init gets a terminal (``tty``) and a ``stdin``, and what to ``create``."""

    __slots__ = ("directory", "command", "tty", "stdin", "create")

    def __init__(
        self, directory: str, *, command: list[str], tty: bool, stdin: bool, create: CreateRequest
    ) -> None:
        self.directory: Final = directory
        self.command: Final = command
        self.tty: Final = tty
        self.stdin: Final = stdin
        self.create: Final = create

    def to_json(self) -> dict[str, object]:
        return {
            "directory": self.directory,
            "command": self.command,
            "tty": self.tty,
            "stdin": self.stdin,
            "create": self.create.to_json(),
        }

    @classmethod
    def from_json(cls, data: object) -> LaunchWork:
        """The work :meth:`to_json` gave; MonitorError naming what is wrong with another."""
        command = _member(data, "work", "command", list)
        if not all(isinstance(word, str) for word in command):
            raise MonitorError("the launcher's work: work.command holds a word that is not a string")
        return cls(
            _member(data, "work", "directory", str),
            command=[str(word) for word in command],
            tty=_member(data, "work", "tty", bool),
            stdin=_member(data, "work", "stdin", bool),
            create=CreateRequest.from_json(_member(data, "work", "create", dict)),
        )


def _member(data: object, what: str, name: str, kind: type[_T] | tuple[type[_T], ...]) -> _T:
    """Member ``name`` of the JSON object ``data`` (``what`` in messages), checked to be a ``kind``."""
    if not isinstance(data, dict):
        raise MonitorError(f"the launcher's work: {what} is not a JSON object")
    value = data.get(name)
    if not isinstance(value, kind):
        raise MonitorError(f"the launcher's work: {what}.{name} is {value!r}")
    return value


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


class MonitorLauncher:
    """Starts a monitor around the init that ``create(request)`` makes, in two steps.

    Made, it forks, and the child forks again and leaves (reaped at once), so that the monitor is
    nobody's child here. The grandchild, alone in a new session, calls ``load`` (if given) and waits for
    :meth:`start`, which sends it the work (a :class:`LaunchWork`: the monitor's options and the
    :class:`CreateRequest`, as JSON). It writes ``DIR/monitor.pid`` (it is the monitor's process from
    then on, so a task being created is never taken for one whose monitor died), makes the init's
    stdio (pipes,
    or with a terminal a console socket listening on ``DIR/console.sock`` for the pty master) and
    calls ``create`` with those pipes as its own stdin, stdout and stderr. ``create`` must make the
    container's init as a child of the calling process (pyrunc's create does: the init is cloned
    with CLONE_PARENT), leaving it waiting for start, and return its pid and its memory cgroup (v1:
    the monitor reports its OOM kills; None for none). The grandchild then becomes the monitor
    program by ``execve`` (``--adopt PID``): the init stays its child, and no second interpreter is
    started.

    A caller with one thread (pyctr) makes the launcher early and lets ``load`` do the imports
    ``create`` needs, on the other CPU, while it prepares the container. A caller with other
    threads imports everything first and passes no ``load``: an import in a forked
    child can deadlock on a lock another thread held at the fork. A launcher that is not started is
    ended by :meth:`close`: its child sees the work pipe close and exits.
    """

    def __init__(
        self,
        create: Callable[[CreateRequest], tuple[int, str | None]],
        *,
        load: Callable[[], object] | None = None,
    ) -> None:
        self._ready = -1
        self._work = -1
        ready_r, ready_w = os.pipe()
        work_r, work_w = os.pipe()
        try:
            first = os.fork()
            if first == 0:
                _close_inherited(keep=(work_r, ready_w))
                _launcher_child(load, create, work_r, ready_w)
        except BaseException:
            os.close(ready_r)
            os.close(work_w)
            raise
        finally:
            os.close(work_r)
            os.close(ready_w)
        # Reaped in start or close, long after it left: not waited for here, where pyctr run waits.
        self._first = first
        self._ready, self._work = ready_r, work_w

    def start(
        self,
        directory: str | os.PathLike[str],
        request: CreateRequest,
        options: MonitorOptions,
        *,
        meanwhile: Callable[[], object] | None = None,
    ) -> MonitorProcess:
        """Hand the work to the forked child and return once the monitor holds the init; ``meanwhile``
        is called while the child works.

        Raises :class:`MonitorError` with the reason (``create``'s exception, or the monitor's) if
        either failed, if nothing was ready within ``options.timeout`` seconds (the monitor is then
        killed; the container, if made, is the caller's to delete), or if the launcher was used or
        closed already."""
        if self._work < 0:
            raise MonitorError("this monitor launcher was used or closed already")
        root = Path(directory)
        work = LaunchWork(
            str(root), command=_command(root, options), tty=options.tty, stdin=options.stdin, create=request
        )
        try:
            with contextlib.suppress(BrokenPipeError):  # the child failed: its reason is on the ready pipe
                view = memoryview(json.dumps(work.to_json()).encode())
                while view:
                    view = view[os.write(self._work, view) :]
            os.close(self._work)
            self._work = -1
            if meanwhile is not None:
                meanwhile()
            return _await_ready(root, self._ready, options.timeout)
        finally:
            self.close()

    def close(self) -> None:
        """End a launcher that was not started (its child exits); nothing after :meth:`start`."""
        for fd in (self._work, self._ready):
            if fd >= 0:
                os.close(fd)
        self._work = self._ready = -1
        if self._first > 0:
            with contextlib.suppress(ChildProcessError):  # reaped by a wait for any child meanwhile
                os.waitpid(self._first, 0)
            self._first = 0


def _close_inherited(keep: tuple[int, int]) -> None:
    """In a launcher's child: close every descriptor the forking process had but stdio and
    ``keep``. Neither the monitor nor the container's init is to hold what its creator had open
    (an engine's sockets and log files; another launcher's work pipe, which would keep that
    launcher's child waiting for ever), and an init under a low RLIMIT_NOFILE must still find a
    free descriptor below it for its exec fifo."""
    low = 3
    for fd in sorted(keep):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, _MAX_FD)


def _launcher_child(
    load: Callable[[], object] | None,
    create: Callable[[CreateRequest], tuple[int, str | None]],
    work_pipe: int,
    ready: int,
) -> NoReturn:
    """The forked child of :class:`MonitorLauncher`: never returns."""
    root = None
    try:
        os.setsid()
        if os.fork() != 0:
            os._exit(0)
        if load is not None:
            load()
        data = b""
        while chunk := os.read(work_pipe, 1 << 16):
            data += chunk
        if not data:
            os._exit(0)  # closed without work: the caller gave up
        try:
            work = LaunchWork.from_json(json.loads(data))
        except ValueError as exc:
            raise MonitorError(f"the launcher's work is not JSON: {exc}") from None
        root = Path(work.directory)
        # This process becomes the monitor (same pid and start time): from here on, the task has a
        # live process, which tells a task being made from one its creator abandoned.
        write_process_file(root / "monitor.pid")
        _become_monitor(
            root, lambda: create(work.create), work.command, tty=work.tty, stdin=work.stdin, ready=ready
        )
    except BaseException as exc:  # noqa: BLE001 - everything is reported to the waiting parent
        _report(root, ready, exc)
    os._exit(1)


def _command(root: Path, options: MonitorOptions) -> list[str]:
    """The monitor's command line, but for its stdio, ready and adopt options."""
    command = [
        str(monitor_binary()),
        "--dir",
        str(root),
        "--id",
        options.id,
        "--namespace",
        options.namespace,
    ]
    command += ["--log-max", str(options.log_max)]
    if options.log is not None:
        command += ["--log", os.path.abspath(options.log)]
        command += [
            "--log-max-size",
            str(options.log_max_size),
            "--log-max-files",
            str(options.log_max_files),
        ]
    if options.events is not None:
        command += ["--events", os.path.abspath(options.events)]
    if options.stdin:
        command.append("--stdin")
    return command


def _await_ready(root: Path, ready_r: int, timeout: float) -> MonitorProcess:
    """The monitor, once its ready line came; MonitorError with the reason otherwise."""
    try:
        line = _read_ready(ready_r, timeout).decode(errors="replace").strip()
    except TimeoutError:
        _kill_monitor(root)
        raise MonitorError(f"the monitor in {root} was not ready after {timeout} s") from None
    verdict, _, detail = line.partition(" ")
    if verdict == "ok":
        return MonitorProcess(pid=int((root / "monitor.pid").read_text().split()[0]), init_pid=int(detail))
    if verdict == "error":
        raise MonitorError(detail)
    raise MonitorError(f"the monitor in {root} exited before it was ready")


def _become_monitor(
    root: Path,
    create: Callable[[], tuple[int, str | None]],
    command: list[str],
    *,
    tty: bool,
    stdin: bool,
    ready: int,
) -> NoReturn:
    """In the grandchild: make the init's stdio, let ``create`` make the init, exec the monitor."""
    keep: list[int] = [ready]
    null = os.open(os.devnull, os.O_RDWR)
    if tty:
        console = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
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
    pid, memory_cgroup = create()
    for target in (0, 1, 2):
        os.dup2(null, target)
    if memory_cgroup is not None:
        command += ["--memory-cgroup", os.path.abspath(memory_cgroup)]
    for fd in keep:
        os.set_inheritable(fd, True)
    command += ["--ready-fd", str(ready), "--adopt", str(pid)]
    os.execv(command[0], command)


def _report(root: Path | None, ready: int, exc: BaseException) -> None:
    """Tell the waiting parent why the grandchild failed (one ``error`` line on the ready pipe)."""
    if root is not None:
        for name in ("console.sock", "monitor.pid"):
            with contextlib.suppress(OSError):
                os.unlink(root / name)
    message = str(exc) or type(exc).__name__
    with contextlib.suppress(OSError):
        os.write(ready, f"error {message}".replace("\n", " ").encode(errors="replace") + b"\n")


def _kill_monitor(directory: Path) -> None:
    if monitor_alive(directory):
        os.kill(int((directory / "monitor.pid").read_text().split()[0]), signal.SIGKILL)
