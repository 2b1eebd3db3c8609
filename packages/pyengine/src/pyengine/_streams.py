"""Streams to and from a client: the hijacked connection of attach and exec (the container's
output out, its stdin in, the detach keys), and the copy of a process's output as Docker frames
it (stdcopy frames, or raw bytes for a terminal)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator

from aiohttp import web

import pycontainerd
from pyengine._errors import InvalidParameter
from pyengine._http import blocking

__all__ = [
    "MULTIPLEXED",
    "RAW",
    "Hijacked",
    "detach_keys",
    "each_frame",
    "frame",
    "scan_detach",
    "send",
    "stream_process",
]

#: The content type of an attach stream and of logs without a terminal (API 1.42+), and with one.
MULTIPLEXED = "application/vnd.docker.multiplexed-stream"
RAW = "application/vnd.docker.raw-stream"

#: Ctrl-P Ctrl-Q, Docker's default detach sequence.
DEFAULT_DETACH_KEYS = b"\x10\x11"
_CTRL_KEYS = "abcdefghijklmnopqrstuvwxyz[\\]^_"


def detach_keys(text: str | None) -> bytes:
    """The bytes of a detach sequence as Docker spells it (``ctrl-p,ctrl-q``, ``a,ctrl-@``); the
    default for none."""
    if not text:
        return DEFAULT_DETACH_KEYS
    keys = bytearray()
    for key in text.split(","):
        if len(key) == 1:
            keys.append(ord(key))
        elif key.lower() == "ctrl-@":
            keys.append(0)
        elif key.lower().startswith("ctrl-") and len(key) == 6 and key[5].lower() in _CTRL_KEYS:
            keys.append(_CTRL_KEYS.index(key[5].lower()) + 1)
        else:
            raise InvalidParameter(f"Invalid detach keys ({text}) provided")
    return bytes(keys)


def frame(stream: int, data: bytes) -> bytes:
    """Docker's stdcopy frame: the stream (1 stdout, 2 stderr), three zeros, the length, the data."""
    return bytes((stream, 0, 0, 0)) + len(data).to_bytes(4, "big") + data


class _Hijack(asyncio.Protocol):
    """A connection's protocol once its request has been answered: what the client sends goes
    to ``input`` (``None`` at its end) instead of to the HTTP parser, and the client's EOF leaves
    the connection open, since the output still has to go out on it (the docker CLI half-closes
    a hijacked connection when it has no more input)."""

    def __init__(self, inner: asyncio.BaseProtocol) -> None:
        self.inner = inner
        self.input: asyncio.Queue[bytes | None] = asyncio.Queue()

    def connection_lost(self, exc: Exception | None) -> None:
        self.input.put_nowait(None)
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def data_received(self, data: bytes) -> None:
        self.input.put_nowait(data)

    def eof_received(self) -> bool:
        self.input.put_nowait(None)
        return True


class Hijacked:
    """A request whose connection carries a process's streams from now on: the response (``101
    UPGRADED`` when the client asked to upgrade, else 200) and, through :meth:`pump_stdin`, the
    client's input."""

    def __init__(self, request: web.Request, response: web.StreamResponse, protocol: _Hijack | None) -> None:
        self.request = request
        self.response = response
        self._protocol = protocol

    @classmethod
    async def start(cls, request: web.Request, *, tty: bool) -> Hijacked:
        upgrade = request.headers.get("Upgrade", "").lower() == "tcp"
        response = web.StreamResponse(
            status=101 if upgrade else 200,
            headers={
                "Content-Type": RAW if tty else MULTIPLEXED,
                **({"Connection": "Upgrade", "Upgrade": "tcp"} if upgrade else {}),
            },
        )
        response.force_close()
        protocol = None
        if request.transport is not None:
            protocol = _Hijack(request.transport.get_protocol())
            request.transport.set_protocol(protocol)
        await response.prepare(request)
        return cls(request, response, protocol)

    async def pump_stdin(
        self, attachment: pycontainerd.Attachment, keys: bytes, *, close_at_eof: bool
    ) -> bool:
        """Copy the client's input to ``attachment`` until the client ends it (then the process's
        stdin is closed if ``close_at_eof``) or types the detach ``keys``: True for a detach."""
        if self._protocol is None:
            return False
        matched = 0  # how much of the detach sequence the input ended with so far
        try:
            while (data := await self._protocol.input.get()) is not None:
                if keys:
                    data, detached, matched = scan_detach(keys, matched, data)
                    if detached:
                        if data:
                            await blocking(attachment.write_stdin, data)
                        return True
                if data:
                    await blocking(attachment.write_stdin, data)
            if close_at_eof:
                await blocking(attachment.close_stdin)
        except pycontainerd.MonitorError:
            pass  # the process has exited (its monitor connection with it): its output tells the rest
        return False

    async def send(self, frames: Iterator[tuple[int, bytes]], streams: set[int], *, tty: bool) -> None:
        await send(self.response, frames, streams, tty=tty)

    async def close(self) -> None:
        await self.response.write_eof()


async def stream_process(
    hijacked: Hijacked,
    attachment: pycontainerd.Attachment,
    streams: set[int],
    *,
    tty: bool,
    stdin: bool,
    keys: bytes,
    close_at_eof: bool,
) -> None:
    """Carry one attached process's streams over ``hijacked``: its output until it exits, and,
    with ``stdin``, the client's input to it until the client ends it or types the detach
    ``keys`` (then the stream ends and the process goes on)."""
    output = asyncio.create_task(hijacked.send(attachment.frames(), streams, tty=tty))
    if not stdin:
        await output
        return
    pump = asyncio.create_task(hijacked.pump_stdin(attachment, keys, close_at_eof=close_at_eof))
    try:
        await asyncio.wait((output, pump), return_when=asyncio.FIRST_COMPLETED)
        if pump.done() and not pump.result():
            await output  # the input ended: the output goes on to the exit
    finally:
        for task in (output, pump):
            task.cancel()
        await asyncio.gather(output, pump, return_exceptions=True)


def scan_detach(keys: bytes, matched: int, data: bytes) -> tuple[bytes, bool, int]:
    """Look for the detach ``keys`` in the input's next ``data``, the input so far having ended
    with the first ``matched`` of them (held back, not sent). Returns what to send, whether the
    sequence is complete (what to send is then what preceded it), and the new count of held keys."""
    out = bytearray()
    for byte in data:
        if byte == keys[matched]:
            matched += 1
            if matched == len(keys):
                return bytes(out), True, 0
            continue
        out += keys[:matched]  # not the sequence after all: what was held goes through
        matched = 0
        if byte == keys[0]:
            matched = 1
        else:
            out.append(byte)
    return bytes(out), False, matched


async def send(
    response: web.StreamResponse, frames: Iterator[tuple[int, bytes]], streams: set[int], *, tty: bool = False
) -> None:
    """Copy ``frames`` (a blocking iterator, read in a thread) to ``response``: as stdcopy frames,
    or the bytes as they are for a terminal's output."""
    async for stream, data in each_frame(frames):
        if stream in streams:
            await response.write(data if tty else frame(stream, data))


async def each_frame(frames: Iterator[tuple[int, bytes]]) -> AsyncIterator[tuple[int, bytes]]:
    """``frames`` (a blocking iterator) read in a thread, as they come; the end of the monitor's
    stream ends them, as the process's did."""
    loop = asyncio.get_running_loop()
    # Unbounded: the reading thread never waits on the event loop, so it ends with the stream
    # even when the client has gone.
    queue: asyncio.Queue[tuple[int, bytes] | BaseException | None] = asyncio.Queue()

    def pump() -> None:
        try:
            for item in frames:
                loop.call_soon_threadsafe(queue.put_nowait, item)
        except BaseException as exc:  # noqa: BLE001 -- handed to the event loop
            loop.call_soon_threadsafe(queue.put_nowait, exc)
        else:
            loop.call_soon_threadsafe(queue.put_nowait, None)

    threading.Thread(target=pump, name="pyengine-stream", daemon=True).start()
    while (item := await queue.get()) is not None:
        if isinstance(item, BaseException):
            if isinstance(item, pycontainerd.PycontainerdError):
                break  # the monitor went away: the stream ends, as the process's did
            raise item
        yield item
