"""Talking to a running monitor over ``DIR/monitor.sock`` (the frames are in ``protocol``)."""

from __future__ import annotations

import json
import select
from pathlib import Path

from pycontainerd._monitor.protocol import (
    FRAME_EXIT,
    FRAME_REPLY,
    FRAME_STDERR,
    FRAME_STDIN,
    FRAME_STDOUT,
    HEADER,
    MonitorError,
    encode_frame,
    encode_request,
    read_frame,
)
from pycontainerd._monitor.records import ExitStatus
from pycontainerd._record import Record
from pycontainerd._stdlib import socket

TYPE_CHECKING = False
if TYPE_CHECKING:
    import os
    from collections.abc import Iterator, Sequence
    from types import TracebackType
    from typing import BinaryIO, Final, Self

__all__ = ["Attachment", "Monitor", "ProcessStatus", "Watch"]

_STDIN_CHUNK = 1 << 16
#: How long a wait or a watch waits for the monitor's first answer: a monitor whose processes are
#: all recorded stops accepting connections, and leaves within moments.
_ANSWER_TIMEOUT = 1.0


class ProcessStatus(Record):
    """A process the monitor tracks: its pid and, once it has exited, its exit record."""

    __slots__ = ("proc", "pid", "exit")

    def __init__(self, proc: str, pid: int, exit: ExitStatus | None) -> None:
        self.proc: Final = proc
        self.pid: Final = pid
        self.exit: Final = exit

    @property
    def running(self) -> bool:
        return self.exit is None


class _Connection:
    """One connection to the monitor socket, with buffered frame reads."""

    def __init__(self, directory: Path, timeout: float | None = None) -> None:
        path = directory / "monitor.sock"
        # The reader is a buffered file over the socket's descriptor, which a stream socket allows.
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.sock.settimeout(timeout)
            self.sock.connect(str(path))
        except OSError as exc:
            self.sock.close()
            raise MonitorError(f"connect to the monitor at {path}: {exc.strerror}") from None
        self.reader: BinaryIO = open(self.sock.fileno(), "rb", closefd=False)  # noqa: SIM115 - closed in close()

    def send(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except OSError as exc:
            raise MonitorError(f"send to the monitor: {exc.strerror}") from None

    def call(self, *fields: str) -> str:
        """Send a request, return the reply's detail (after ``ok``); MonitorError on ``error``."""
        self.send(encode_request(*fields))
        try:
            frame = read_frame(self.reader)
        except OSError as exc:  # a timeout: a monitor that is finishing no longer answers
            raise MonitorError(f"no reply from the monitor to {fields[0]}: {exc}") from None
        if frame is None:
            raise MonitorError(f"the monitor closed the connection during {fields[0]} (it exited?)")
        kind, payload = frame
        if kind != FRAME_REPLY:
            raise MonitorError(f"the monitor sent frame kind {kind} instead of a reply to {fields[0]}")
        verdict, _, detail = payload.decode(errors="replace").partition(" ")
        if verdict != "ok":
            raise MonitorError(detail)
        return detail

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


class Attachment:
    """The output stream of one process (and its stdin, when attached with it) until its exit.

    Iterate :meth:`frames` to the end, then :attr:`exit` holds the exit status. Writing stdin while
    nobody reads the output can block: the monitor holds a process's output back while an
    attached reader lags by more than about 1 MiB, and the process may wait on that.
    """

    def __init__(self, connection: _Connection, proc: str) -> None:
        self._connection = connection
        self.proc = proc
        self.exit: ExitStatus | None = None

    def fileno(self) -> int:
        return self._connection.sock.fileno()

    def frames(self) -> Iterator[tuple[int, bytes]]:
        """``(stream, data)`` as the process writes them, 1 stdout and 2 stderr (a terminal's
        output is 1); ends after the exit, which is then in :attr:`exit`."""
        while self.exit is None:
            frame = read_frame(self._connection.reader)
            if frame is None:
                raise MonitorError(f"the attach stream of {self.proc} ended before its exit (monitor gone?)")
            kind, payload = frame
            if kind == FRAME_EXIT:
                self.exit = _exit_status(payload, self.proc)
            elif kind in (FRAME_STDOUT, FRAME_STDERR):
                yield kind, payload
            else:
                raise MonitorError(f"unexpected frame kind {kind} on the attach stream of {self.proc}")

    def write_stdin(self, data: bytes) -> None:
        """Send ``data`` to the process's stdin."""
        for start in range(0, len(data), _STDIN_CHUNK):
            self._connection.send(encode_frame(FRAME_STDIN, data[start : start + _STDIN_CHUNK]))

    def close_stdin(self) -> None:
        """Close the process's stdin once what was written reached it (a terminal: stop input)."""
        self._connection.send(encode_frame(FRAME_STDIN, b""))

    def close(self) -> None:
        """Detach; the process keeps running and its output still goes to its log. A thread
        reading :meth:`frames` meanwhile sees the stream end (MonitorError)."""
        try:  # wakes a blocked reader; closing the buffered reader under it would wait for it
            self._connection.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # the monitor has gone already
        self._connection.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class Watch:
    """The end of a process, and with ``notify`` each time its output reached its log: what a
    waiter for its exit, or a follower of its log, sleeps on instead of polling (``wait`` and
    ``watch`` in the protocol). :attr:`exit` is the exit status once the monitor sent it;
    :attr:`ended` turns true then, or when the monitor went away without it (it died: see
    ``Task.reconcile``)."""

    def __init__(self, connection: _Connection, proc: str) -> None:
        self._connection = connection
        self.proc = proc
        self._buffer = bytearray()
        self._answered = False
        self.exit: ExitStatus | None = None
        self.ended = False

    def _await_answer(self, request: bytes) -> None:
        """Send the request and take the monitor's reply (MonitorError for an error, or none in
        time); read from the socket itself, so that nothing after the reply sits in a buffer."""
        self._connection.send(request)
        sock = self._connection.sock
        while not self._answered:
            try:
                chunk = sock.recv(1 << 16)
            except OSError as exc:
                raise MonitorError(f"no answer from the monitor about {self.proc}: {exc}") from None
            if not chunk:
                raise MonitorError(f"the monitor closed the connection about {self.proc} (it exited?)")
            self._buffer += chunk
            self._take_frames()

    def fileno(self) -> int:
        return self._connection.sock.fileno()

    def wait(self, timeout: float | None) -> None:
        """Sleep until the monitor says something (output, or the end) or ``timeout`` seconds
        passed, then take all it said."""
        if self.ended or not select.select([self], [], [], timeout)[0]:
            return
        sock = self._connection.sock
        while not self.ended:
            try:
                chunk = sock.recv(1 << 16, socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                chunk = b""
            if not chunk:
                self.ended = True
                break
            self._buffer += chunk
            self._take_frames()

    def _take_frames(self) -> None:
        while len(self._buffer) >= HEADER.size:
            kind, length = HEADER.unpack_from(self._buffer)
            if len(self._buffer) < HEADER.size + length:
                return
            payload = bytes(self._buffer[HEADER.size : HEADER.size + length])
            del self._buffer[: HEADER.size + length]
            if kind == FRAME_REPLY:
                verdict, _, detail = payload.decode(errors="replace").partition(" ")
                if verdict != "ok":
                    raise MonitorError(detail)
                self._answered = True
            elif kind == FRAME_EXIT:
                self.exit = _exit_status(payload, self.proc)
                self.ended = True
                return

    def close(self) -> None:
        self._connection.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class Monitor:
    """A connection to the monitor of one container, by its directory: one request at a time
    (threads share one under a lock, or connect their own)."""

    def __init__(self, directory: Path, connection: _Connection) -> None:
        self.directory = directory
        self._connection = connection

    @classmethod
    def connect(cls, directory: str | os.PathLike[str]) -> Monitor:
        """Connect to the monitor of ``directory``; MonitorError if it does not answer."""
        root = Path(directory)
        return cls(root, _Connection(root))

    def status(self) -> dict[str, ProcessStatus]:
        """Every process the monitor has run, by process id (``init`` first)."""
        raw = json.loads(self._connection.call("status"))
        return {
            proc: ProcessStatus(
                proc=proc,
                pid=entry["pid"],
                exit=None if entry["exit"] is None else ExitStatus.from_json(entry["exit"]),
            )
            for proc, entry in raw.items()
        }

    def resize(self, proc: str, rows: int, cols: int) -> None:
        """Set the window size of ``proc``'s terminal."""
        self._connection.call("resize", proc, str(rows), str(cols))

    def close_stdin(self, proc: str) -> None:
        """Close ``proc``'s stdin once what attached writers sent reached it."""
        self._connection.call("close_stdin", proc)

    def forget(self, proc: str) -> None:
        """Forget the exec ``proc``, which has exited: its record and its files go."""
        self._connection.call("forget", proc)

    def exec(
        self,
        proc_id: str,
        argv: Sequence[str],
        *,
        tty: bool = False,
        stdin: bool = False,
        attach: bool = False,
    ) -> tuple[int, Attachment | None]:
        """Run ``argv`` (``pyrunc exec -d --pid-file DIR/PROC.pid ...``) and track the process it
        starts as ``proc_id``; with ``tty`` its terminal comes to ``DIR/PROC.console.sock``
        (``argv`` must pass that as ``--console-socket``). With ``attach`` the returned
        :class:`Attachment` sees all of its output. Returns its pid and the attachment."""
        fields = ("exec", proc_id, _flag(tty), _flag(stdin), _flag(attach), *argv)
        if not attach:
            return int(self._connection.call(*fields)), None
        connection = _Connection(self.directory)
        try:
            pid = int(connection.call(*fields))
        except BaseException:
            connection.close()
            raise
        return pid, Attachment(connection, proc_id)

    def attach(self, proc: str, stdin: bool = False) -> Attachment:
        """Stream ``proc``'s output from now on (its log has what came before), and with
        ``stdin`` take its input."""
        connection = _Connection(self.directory)
        try:
            connection.call("attach", proc, _flag(stdin))
        except BaseException:
            connection.close()
            raise
        return Attachment(connection, proc)

    def close(self) -> None:
        self._connection.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def watch(directory: str | os.PathLike[str], proc: str, *, notify: bool) -> Watch:
    """A :class:`Watch` of ``proc`` on its own connection to the monitor of ``directory``; with
    ``notify`` it wakes on output too. MonitorError if the monitor does not answer within a second
    (gone, or finishing: its processes are all recorded then) or does not know ``proc``."""
    connection = _Connection(Path(directory), timeout=_ANSWER_TIMEOUT)
    try:
        found = Watch(connection, proc)
        found._await_answer(encode_request("watch" if notify else "wait", proc))
        connection.sock.settimeout(None)
    except BaseException:
        connection.close()
        raise
    return found


def _exit_status(payload: bytes, proc: str) -> ExitStatus:
    """The exit status an exit frame of ``proc`` carries."""
    record = json.loads(payload)
    if not isinstance(record, dict):
        raise MonitorError(f"malformed exit frame for {proc}: {payload!r}")
    return ExitStatus.from_json(record)


def _flag(value: bool) -> str:
    return "1" if value else "0"
