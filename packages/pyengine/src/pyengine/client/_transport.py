"""HTTP over the engine's unix socket, with the standard library only: requests and their errors,
the API version, JSON streams, stdcopy frames, and hijacked connections.

Why not aiohttp or requests: the client is on ``pydocker``'s start-up path, and ``http.client``
is most of what a CLI command needs (one or two requests, a stream) at a few milliseconds of
import; aiohttp or requests would cost ten times that.

Connections: one idle connection is kept and reused (HTTP/1.1 keep-alive); a request while it is
busy (a stream being read, another thread) opens another. A streamed response owns its
connection until the stream is read to its end or closed. A reused connection the daemon closed
meanwhile (its keep-alive timeout) is retried once on a new one, since the request never reached
it.
"""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator, Mapping
from typing import IO, Any
from urllib.parse import quote, urlencode

from pyengine._errors import ApiError, Conflict, InvalidParameter, NotFound, Unauthorized

__all__ = [
    "DEFAULT_HOST",
    "DaemonUnreachable",
    "Hijacked",
    "ProgressError",
    "Response",
    "Transport",
    "json_lines",
    "socket_path",
]

#: pyengined's socket, where the client looks when neither an argument nor DOCKER_HOST names one.
DEFAULT_HOST = "unix:///run/pyengine.sock"

_ERRORS: dict[int, type[ApiError]] = {400: InvalidParameter, 401: Unauthorized, 404: NotFound, 409: Conflict}


class DaemonUnreachable(ConnectionError):
    """The socket is missing, refuses the connection or is not ours to open: no daemon answers
    there. The message is the docker CLI's."""


class ProgressError(ApiError):
    """A pull, a push or a load that the daemon accepted (200) and then failed: the ``error`` of
    its progress stream."""


def socket_path(host: str) -> str:
    """The socket's path of a ``unix://`` host (the only kind pyengined serves)."""
    scheme, sep, path = host.partition("://")
    if not sep or scheme != "unix":
        raise ValueError(f"unsupported host {host!r}: pyengine.Client speaks to unix:///PATH sockets only")
    if not path:
        raise ValueError(f"invalid host {host!r}: no socket path")
    return path


def api_error(status: int, body: bytes, reason: str) -> ApiError:
    """The exception for an error answer: its class by the status, its message the daemon's
    ``message`` (or the body's text, or the reason, when it has none)."""
    message = ""
    try:
        message = str(json.loads(body)["message"])
    except (ValueError, KeyError, TypeError):
        message = body.decode(errors="replace").strip() or f"{status} {reason}"
    error = _ERRORS.get(status, ApiError)(message)
    error.status = status
    return error


class Response(http.client.HTTPResponse):
    """An answer, with the connection it came on (given back once the answer is read)."""

    connection: _UnixConnection


class _UnixConnection(http.client.HTTPConnection):
    """``http.client``'s connection over a unix socket."""

    response_class = Response

    def __init__(self, path: str, timeout: float | None) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        self.sock = _connect(self._path, self.timeout)


def _connect(path: str, timeout: float | None) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(path)
    except BaseException:
        sock.close()
        raise
    return sock


class Transport:
    """Requests to one daemon, under one API version."""

    def __init__(self, host: str, timeout: float | None) -> None:
        self.host = host
        self.path = socket_path(host)
        self.timeout = timeout
        self._idle: list[_UnixConnection] = []

    def unreachable(self, exc: OSError) -> DaemonUnreachable:
        if isinstance(exc, PermissionError):
            return DaemonUnreachable(
                f"permission denied while trying to connect to the Docker daemon socket at {self.host}: {exc}"
            )
        return DaemonUnreachable(
            f"Cannot connect to the Docker daemon at {self.host}. Is the docker daemon running?"
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, object] | None = None,
        body: bytes | IO[bytes] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """Send the request and read the answer's head; an error status is raised (see
        :func:`api_error`). The caller reads the body, then gives the answer to :meth:`done`."""
        url = quote(path) + (f"?{urlencode(_query(query))}" if query else "")
        sent = dict(headers or {})
        if isinstance(body, bytes):
            sent.setdefault("Content-Type", "application/json")
        while True:
            reused = bool(self._idle)
            connection = self._idle.pop() if reused else _UnixConnection(self.path, self.timeout)
            try:
                connection.request(method, url, body=body, headers=sent)
                response = connection.getresponse()
                assert isinstance(response, Response)
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                connection.close()
                if reused and (body is None or isinstance(body, bytes)):
                    continue  # the daemon closed the idle connection: the request never reached it
                raise self.unreachable(exc) from None
            except (FileNotFoundError, ConnectionRefusedError, PermissionError) as exc:
                connection.close()
                raise self.unreachable(exc) from None
            except BaseException:
                connection.close()
                raise
            break
        response.connection = connection
        if response.status >= 400:
            error = api_error(response.status, response.read(), response.reason)
            self.done(response)
            raise error
        return response

    def done(self, response: Response) -> None:
        """Give back the connection of an answer read to its end (or close it, when it was not,
        or when the daemon closes it)."""
        connection = response.connection
        if response.isclosed() and not response.will_close and not self._idle:
            self._idle.append(connection)
        else:
            response.close()
            connection.close()

    def call(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, object] | None = None,
        body: bytes | IO[bytes] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, bytes]:
        """A request whose answer is read whole: its status and body."""
        response = self.request(method, path, query=query, body=body, headers=headers)
        try:
            data = response.read()
        finally:
            self.done(response)
        return response.status, data

    def hijack(
        self, path: str, *, query: Mapping[str, object] | None = None, body: bytes = b"{}"
    ) -> tuple[socket.socket, IO[bytes], str]:
        """``POST path`` asking to upgrade the connection (``Upgrade: tcp``), as the docker CLI
        does for attach and exec: the socket, a reader of what comes after the answer's head
        (buffered: the daemon may have sent output with it), and the answer's Content-Type."""
        url = quote(path) + (f"?{urlencode(_query(query))}" if query else "")
        head = (
            f"POST {url} HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        try:
            sock = _connect(self.path, self.timeout)
        except (FileNotFoundError, ConnectionRefusedError, PermissionError) as exc:
            raise self.unreachable(exc) from None
        try:
            sock.sendall(head.encode() + body)
            response = http.client.HTTPResponse(sock, method="POST")
            response.begin()
            if response.status >= 400:
                raise api_error(response.status, response.read(), response.reason)
            if response.status not in (101, 200):
                raise ApiError(f"unexpected answer to an attach: {response.status} {response.reason}")
            # 101: what follows the head is the stream, unframed by HTTP (taken from the answer,
            # which would close it when collected); 200 (a daemon that does not upgrade): the
            # body is, to the connection's end.
            reader: IO[bytes] = response
            if response.status == 101:
                reader, response.fp = response.fp, None  # type: ignore[assignment]
        except BaseException:
            sock.close()
            raise
        return sock, reader, response.getheader("Content-Type") or ""

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()


def _query(query: Mapping[str, object]) -> list[tuple[str, str]]:
    """The query's parameters as the API spells them: None left out, booleans ``1``/``0``, a list
    as the parameter repeated."""
    pairs: list[tuple[str, str]] = []
    for key, value in query.items():
        if value is None:
            continue
        values = value if isinstance(value, list | tuple) else [value]
        for item in values:
            pairs.append((key, ("1" if item else "0") if isinstance(item, bool) else str(item)))
    return pairs


def json_lines(response: http.client.HTTPResponse) -> Iterator[dict[str, Any]]:
    """The JSON objects of a streamed answer, one a line (``\\n`` or ``\\r\\n``), as they come."""
    while line := response.readline():
        if line.strip():
            yield json.loads(line)


def read_frames(reader: IO[bytes], *, raw: bool) -> Iterator[tuple[int, bytes]]:
    """A container's output as ``(stream, data)``: stdcopy frames demultiplexed (1 stdout,
    2 stderr; 0 is stdin's, as Docker numbers them), or, for a terminal's ``raw`` output, what
    comes, as stdout."""
    if raw:
        while chunk := reader.read1(65536):  # type: ignore[attr-defined]
            yield 1, chunk
        return
    while header := reader.read(8):
        if len(header) < 8:
            raise ApiError(f"the output stream ended within a frame's header ({len(header)} of 8 bytes)")
        length = int.from_bytes(header[4:8], "big")
        data = reader.read(length) if length else b""
        if len(data) < length:
            raise ApiError(f"the output stream ended within a frame ({len(data)} of {length} bytes)")
        yield header[0], data


class Hijacked:
    """A connection taken over by an attach or an exec: the process's output comes on it (read
    with :meth:`frames` or :meth:`output`), its stdin goes on it (:meth:`write`), and
    :meth:`close_write` ends the input (half-closes the connection: the output still comes)."""

    def __init__(self, sock: socket.socket, reader: IO[bytes], *, tty: bool) -> None:
        self.sock = sock
        self.tty = tty
        self._reader = reader

    def frames(self) -> Iterator[tuple[int, bytes]]:
        """The output as ``(stream, data)`` until the process exits (or it is detached): stdcopy
        frames, or for a terminal its bytes as they come, all on stream 1."""
        return read_frames(self._reader, raw=self.tty)

    def output(self) -> tuple[bytes, bytes]:
        """The whole of stdout and of stderr, read to the stream's end."""
        out, err = bytearray(), bytearray()
        for stream, data in self.frames():
            (err if stream == 2 else out).extend(data)
        return bytes(out), bytes(err)

    def write(self, data: bytes) -> None:
        """Send ``data`` to the process's stdin."""
        self.sock.sendall(data)

    def close_write(self) -> None:
        """End the process's input: it reads EOF (when it was created to close stdin then)."""
        self.sock.shutdown(socket.SHUT_WR)

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        self._reader.close()
        self.sock.close()

    def __enter__(self) -> Hijacked:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
