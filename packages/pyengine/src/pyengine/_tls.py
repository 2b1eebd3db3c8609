"""TLS for the TCP listeners, with the half-close that attach needs.

The docker CLI, done sending a container's stdin over a hijacked connection, closes its writing
half: over TLS, Go sends close_notify and goes on reading the container's output, which Go's
server (dockerd) goes on writing. asyncio's own TLS transport takes close_notify for the end of the
connection and drops what is written after it, so the output would be lost. Here each TLS
connection is relayed instead: its TLS is done with an :class:`ssl.SSLObject` over memory buffers,
and the plain bytes go to the HTTP server through a socket pair, where a close_notify becomes an
ordinary half-close (the hijacked connection handles that as it does on a unix socket).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Callable

__all__ = ["serve_tls"]

log = logging.getLogger("pyengine.tls")

_CHUNK = 1 << 16
#: How long a client has to complete its handshake.
_HANDSHAKE_TIMEOUT = 30.0


async def serve_tls(
    sock: socket.socket, context: ssl.SSLContext, protocol: Callable[[], asyncio.BaseProtocol]
) -> asyncio.Server:
    """Accept TLS connections on the listening ``sock``; each connection's plain side is served by
    a ``protocol()`` (the HTTP server's)."""

    async def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await _relay(reader, writer, context, protocol)
        except (OSError, ssl.SSLError, asyncio.IncompleteReadError) as exc:
            log.debug("TLS connection ended: %s", exc)
        finally:
            writer.close()

    return await asyncio.start_server(accepted, sock=sock)


class _Connection:
    """One client's TLS: its raw stream, the TLS object and its memory buffers."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, context: ssl.SSLContext
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.incoming, self.outgoing, server_side=True)

    def flush(self) -> None:
        """Send what TLS has to say (records, alerts)."""
        data = self.outgoing.read()
        if data:
            self.writer.write(data)

    async def receive(self) -> bool:
        """Read the client's next raw bytes into TLS; False at its end."""
        data = await self.reader.read(_CHUNK)
        if not data:
            return False
        self.incoming.write(data)
        return True

    async def handshake(self) -> None:
        while True:
            try:
                self.tls.do_handshake()
            except ssl.SSLWantReadError:
                self.flush()
                await self.writer.drain()
                if not await self.receive():
                    raise ConnectionResetError(
                        "the client closed the connection during the TLS handshake"
                    ) from None
            except ssl.SSLError:
                self.flush()  # the alert that tells the client why (a certificate refused, say)
                with contextlib.suppress(OSError):
                    await self.writer.drain()
                raise
            else:
                self.flush()
                await self.writer.drain()
                return


async def _relay(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    context: ssl.SSLContext,
    protocol: Callable[[], asyncio.BaseProtocol],
) -> None:
    connection = _Connection(reader, writer, context)
    await asyncio.wait_for(connection.handshake(), _HANDSHAKE_TIMEOUT)
    inner, outer = socket.socketpair()
    loop = asyncio.get_running_loop()
    try:
        await loop.connect_accepted_socket(protocol, sock=inner)
    except OSError:
        inner.close()
        outer.close()
        raise
    plain_reader, plain_writer = await asyncio.open_connection(sock=outer)
    upstream = asyncio.create_task(_from_client(connection, plain_writer))
    try:
        await _to_client(connection, plain_reader)
    finally:
        upstream.cancel()
        await asyncio.gather(upstream, return_exceptions=True)
        plain_writer.close()


async def _from_client(connection: _Connection, plain: asyncio.StreamWriter) -> None:
    """The client's bytes, decrypted, to the HTTP server; its close_notify (or its end) as EOF.
    What came with the handshake's last message is read first: a request may have."""
    while True:
        while True:
            try:
                data = connection.tls.read(_CHUNK)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:
                data = b""
            if not data:  # close_notify: no more input, the output goes on
                connection.flush()
                plain.write_eof()
                return
            plain.write(data)
        connection.flush()
        await plain.drain()
        if not await connection.receive():
            break
    if plain.can_write_eof():
        plain.write_eof()


async def _to_client(connection: _Connection, plain: asyncio.StreamReader) -> None:
    """The HTTP server's bytes, encrypted, to the client until the server closes; then close_notify."""
    while data := await plain.read(_CHUNK):
        connection.tls.write(data)
        connection.flush()
        await connection.writer.drain()
    with contextlib.suppress(ssl.SSLError):
        connection.tls.unwrap()
    connection.flush()
    with contextlib.suppress(OSError):
        await connection.writer.drain()
