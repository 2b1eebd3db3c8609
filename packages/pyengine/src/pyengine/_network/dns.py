"""The embedded DNS server of user-defined networks, as dockerd's (libnetwork's resolver).

One ``DnsServer`` per daemon answers for every container: the engine binds a UDP and a TCP socket
to 127.0.0.11 on random ports inside each container's network namespace (``nft.redirect_dns`` sends
port 53 there) and hands them to ``serve`` under a key of its choosing, the container's; sockets
keep their namespace, so the server itself runs in the daemon's.

For each query: a name the engine knows (``lookup``: container names, aliases and links on the
container's networks) gets its A or AAAA records with dockerd's TTL of 600 s, or NOERROR without
records for another type; a PTR of a container's address gets its name (``reverse``); the rest is
forwarded to ``upstreams`` (the host's resolvers, reached from the daemon's namespace) one after the
other, each given ``timeout``: over UDP, again over TCP when truncated, and TCP queries over TCP.
SERVFAIL when none answers. Single-label names the engine does not know are forwarded too, as
dockerd does unless a container sets ``ndots``. A UDP answer longer than the client's size (512
bytes, or its EDNS size) is cut and flagged truncated, so the client asks again over TCP.

dnspython is the codec, and the client for the upstreams; the serving is asyncio's.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import struct
from collections.abc import Callable, Sequence
from typing import Protocol, cast

import attrs
import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.reversename
import dns.rrset

__all__ = ["Answer", "DnsServer", "Lookup", "Reverse"]

log = logging.getLogger("pyengine.dns")

#: dockerd's TTL for the names it answers.
TTL = 600
_UDP_SIZE = 512
#: What a TCP query may be: a 16-bit length.
_TCP_MAX = 65535
#: How long the server waits for the rest of a TCP query, or the next one, on a connection.
_TCP_IDLE = 10.0

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@attrs.frozen
class Answer:
    """The addresses a name has on a container's networks (either list may be empty)."""

    ipv4: Sequence[ipaddress.IPv4Address] = ()
    ipv6: Sequence[ipaddress.IPv6Address] = ()


class Lookup(Protocol):
    """For the container ``key``, what ``name`` (lower case, without the final dot) is on its
    networks, or None when it is no name of the engine's (the query is then forwarded). Called on
    the event loop: it must not block."""

    def __call__(self, key: str, name: str) -> Answer | None: ...


class Reverse(Protocol):
    """For the container ``key``, the name (without the final dot) of a container's ``address`` on
    its networks, or None (the PTR query is then forwarded). Called on the event loop."""

    def __call__(self, key: str, address: IPAddress) -> str | None: ...


@attrs.define
class _Served:
    transport: asyncio.DatagramTransport
    server: asyncio.Server
    tasks: set[asyncio.Task[None]] = attrs.Factory(set)
    upstreams: Sequence[tuple[str, int]] | None = None  # the container's own (``--dns``)


class DnsServer:
    """Answers the queries of many containers; see the module's docstring."""

    def __init__(
        self,
        lookup: Lookup,
        reverse: Reverse,
        upstreams: Sequence[tuple[str, int]],
        *,
        timeout: float = 4.0,
    ) -> None:
        self.lookup = lookup
        self.reverse = reverse
        self.upstreams = list(upstreams)
        self.timeout = timeout
        self._served: dict[str, _Served] = {}

    async def serve(
        self,
        key: str,
        udp_sock: socket.socket,
        tcp_sock: socket.socket,
        upstreams: Sequence[tuple[str, int]] | None = None,
    ) -> None:
        """Start answering the container ``key`` on two bound sockets (the TCP one not yet
        listening), which the server owns from now on; ``upstreams`` instead of the server's for
        the questions it forwards (a container's ``--dns``)."""
        if key in self._served:
            raise ValueError(f"already serving {key!r}")
        loop = asyncio.get_running_loop()
        tasks: set[asyncio.Task[None]] = set()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _UdpProtocol(self, key, tasks), sock=udp_sock
        )
        try:
            server = await asyncio.start_server(lambda r, w: self._tcp_client(key, r, w), sock=tcp_sock)
        except BaseException:
            transport.close()
            raise
        self._served[key] = _Served(transport, server, tasks, upstreams)

    def stop(self, key: str) -> None:
        """Stop answering ``key`` and close its sockets; nothing if it is not served."""
        served = self._served.pop(key, None)
        if served is None:
            return
        served.transport.close()
        served.server.close()
        for task in served.tasks:
            task.cancel()

    async def close(self) -> None:
        """Stop answering everyone."""
        served = list(self._served.values())
        for key in list(self._served):
            self.stop(key)
        for each in served:
            await each.server.wait_closed()
            await asyncio.gather(*each.tasks, return_exceptions=True)

    async def _tcp_client(self, key: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        served = self._served.get(key)
        if task is not None and served is not None:
            served.tasks.add(task)
        try:
            while True:
                async with asyncio.timeout(_TCP_IDLE):
                    (length,) = struct.unpack("!H", await reader.readexactly(2))
                    wire = await reader.readexactly(length)
                answer = await self.answer(key, wire, tcp=True)
                if answer is None:
                    return
                writer.write(struct.pack("!H", len(answer)) + answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
            return
        finally:
            if task is not None and served is not None:
                served.tasks.discard(task)
            writer.close()

    def answer_locally(
        self, key: str, wire: bytes, *, tcp: bool
    ) -> tuple[dns.message.Message | None, bytes | None]:
        """The query parsed, and the answer when the engine has it (no upstream involved); a
        malformed query gets FORMERR (when it has a header to answer) and no message."""
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return None, _formerr(wire)
        if query.flags & dns.flags.QR or len(query.question) != 1:
            return None, _formerr(wire)
        question = query.question[0]
        name = question.name.to_text(omit_final_dot=True).lower()
        response = dns.message.make_response(query)
        response.flags |= dns.flags.RA
        if question.rdtype == dns.rdatatype.PTR:
            try:
                address = ipaddress.ip_address(dns.reversename.to_address(question.name))
            except (dns.exception.SyntaxError, ValueError):
                return query, None
            target = self.reverse(key, address)
            if target is None:
                return query, None
            response.answer.append(
                dns.rrset.from_text(question.name, TTL, dns.rdataclass.IN, dns.rdatatype.PTR, f"{target}.")
            )
            return query, _to_wire(response, query, udp=not tcp)
        found = self.lookup(key, name)
        if found is None:
            return query, None
        addresses: Sequence[IPAddress] = ()
        if question.rdtype == dns.rdatatype.A:
            addresses = found.ipv4
        elif question.rdtype == dns.rdatatype.AAAA:
            addresses = found.ipv6
        if addresses:
            response.answer.append(
                dns.rrset.from_text_list(
                    question.name, TTL, dns.rdataclass.IN, question.rdtype, [str(a) for a in addresses]
                )
            )
        return query, _to_wire(response, query, udp=not tcp)

    async def answer(self, key: str, wire: bytes, *, tcp: bool) -> bytes | None:
        """The answer to the query ``wire``, by the engine or an upstream; None for no answer."""
        query, local = self.answer_locally(key, wire, tcp=tcp)
        if local is not None or query is None:
            return local
        response = await self.forward(query, self.upstreams_of(key), tcp=tcp)
        return _to_wire(response, query, udp=not tcp)

    def upstreams_of(self, key: str) -> Sequence[tuple[str, int]]:
        served = self._served.get(key)
        return served.upstreams if served is not None and served.upstreams else self.upstreams

    async def forward(
        self, query: dns.message.Message, upstreams: Sequence[tuple[str, int]], *, tcp: bool
    ) -> dns.message.Message:
        """The first of ``upstreams``' answer to ``query``; SERVFAIL when none answers."""
        for address, port in upstreams:
            try:
                if not tcp:
                    response = await dns.asyncquery.udp(
                        query, address, timeout=self.timeout, port=port, ignore_unexpected=True
                    )
                    if not response.flags & dns.flags.TC:
                        return response
                return await dns.asyncquery.tcp(query, address, timeout=self.timeout, port=port)
            except (dns.exception.DNSException, OSError, EOFError) as exc:
                log.debug("upstream %s:%d: %r", address, port, exc)
        response = dns.message.make_response(query)
        response.set_rcode(dns.rcode.SERVFAIL)
        return response


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: DnsServer, key: str, tasks: set[asyncio.Task[None]]) -> None:
        self.server = server
        self.key = key
        self.tasks = tasks
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Typed BaseTransport, though a datagram endpoint's (asyncio's own is no DatagramTransport
        # subclass in 3.11).
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        # The engine's names are answered right here, without a task: the common case, and the one
        # whose latency counts. A plain A or AAAA question is answered without dnspython.
        quick = quick_answer(data, lambda name: self.server.lookup(self.key, name))
        if quick is not None:
            self._send(quick, addr)
            return
        query, local = self.server.answer_locally(self.key, data, tcp=False)
        if local is not None:
            self._send(local, addr)
        elif query is not None:
            task = asyncio.get_running_loop().create_task(self._forward(query, addr))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _forward(self, query: dns.message.Message, addr: tuple[str, int]) -> None:
        response = await self.server.forward(query, self.server.upstreams_of(self.key), tcp=False)
        self._send(_to_wire(response, query, udp=True), addr)

    def _send(self, wire: bytes, addr: tuple[str, int]) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(wire, addr)


_HEADER = struct.Struct("!HHHHHH")
_QR, _OPCODE, _RD, _RA = 0x8000, 0x7800, 0x0100, 0x0080
_A, _AAAA, _IN = 1, 28, 1
_UDP_SIZE = 512  # without EDNS


def quick_answer(wire: bytes, lookup: Callable[[str], Answer | None]) -> bytes | None:
    """The answer to a query that asks one A or AAAA question, without EDNS, of a name ``lookup``
    knows, encoded by hand (what dnspython would answer, at a fraction of its cost); None for any
    other query: it then takes the general way."""
    if len(wire) < _HEADER.size + 5:
        return None
    ident, flags, questions, answers, authorities, additional = _HEADER.unpack_from(wire)
    if flags & (_QR | _OPCODE) or (questions, answers, authorities, additional) != (1, 0, 0, 0):
        return None
    labels = []
    at = _HEADER.size
    while (length := wire[at]) != 0:
        if length > 63 or at + 1 + length >= len(wire):
            return None  # a pointer or a label past the end: not in a plain query
        labels.append(wire[at + 1 : at + 1 + length])
        at += 1 + length
    end = at + 5
    if end != len(wire):
        return None
    rdtype, rdclass = struct.unpack_from("!HH", wire, at + 1)
    if rdtype not in (_A, _AAAA) or rdclass != _IN:
        return None
    try:
        name = b".".join(labels).decode("ascii").lower()
    except UnicodeDecodeError:
        return None
    found = lookup(name)
    if found is None:
        return None
    addresses: Sequence[IPAddress] = found.ipv4 if rdtype == _A else found.ipv6
    records = b"".join(
        struct.pack("!HHHIH", 0xC000 | _HEADER.size, rdtype, _IN, TTL, len(a.packed)) + a.packed
        for a in addresses
    )
    header = _HEADER.pack(ident, _QR | (flags & _RD) | _RA, 1, len(addresses), 0, 0)
    answer = header + wire[_HEADER.size : end] + records
    return answer if len(answer) <= _UDP_SIZE else None


def _to_wire(response: dns.message.Message, query: dns.message.Message, *, udp: bool) -> bytes:
    """``response`` for the client: cut to its UDP size, flagged truncated, when it does not fit."""
    if not udp:
        return response.to_wire(max_size=_TCP_MAX)
    limit = max(query.payload, _UDP_SIZE) if query.edns >= 0 else _UDP_SIZE
    return response.to_wire(max_size=limit, prefer_truncation=True)


def _formerr(wire: bytes) -> bytes | None:
    """FORMERR for a query too broken to parse, if it has at least a header (its ID and opcode);
    None for a reply or a runt, which get nothing."""
    if len(wire) < 12 or wire[2] & 0x80:
        return None
    (ident,) = struct.unpack("!H", wire[:2])
    flags = 0x8000 | (wire[2] & 0x78) << 8 | dns.rcode.FORMERR
    return struct.pack("!HHHHHH", ident, flags, 0, 0, 0, 0)
