"""The embedded DNS server on real loopback sockets, dnspython's ``dns.query`` as the client and a
fake upstream resolver of the test's own on other ports."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import statistics
import struct
import threading
import time
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest

from pyengine._network.dns import Answer, DnsServer, IPAddress, quick_answer

_T = TypeVar("_T")

NAMES = {
    "web": Answer(ipv4=[ipaddress.IPv4Address("172.30.0.2")], ipv6=[ipaddress.IPv6Address("fd00::2")]),
    "db": Answer(ipv4=[ipaddress.IPv4Address("172.30.0.3")]),
    "many": Answer(ipv4=[ipaddress.IPv4Address(f"172.30.1.{n}") for n in range(1, 101)]),
}


def lookup(key: str, name: str) -> Answer | None:
    return NAMES.get(name) if key == "c1" else None


def reverse(key: str, address: IPAddress) -> str | None:
    return "web" if key == "c1" and address == ipaddress.IPv4Address("172.30.0.2") else None


class Upstream:
    """A resolver on 127.0.0.1: every A query gets 192.0.2.1, ``big.test`` 60 TXT records (over
    UDP only its truncated header); ``silent`` answers nothing. It notes the transports it saw."""

    def __init__(self, *, silent: bool = False) -> None:
        self.silent = silent
        self.seen: list[tuple[str, str]] = []
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", 0))
        self.port = self.udp.getsockname()[1]
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.tcp.bind(("127.0.0.1", self.port))
        self.tcp.listen()
        for target in (self._serve_udp, self._serve_tcp):
            threading.Thread(target=target, daemon=True).start()

    def respond(self, wire: bytes, transport: str) -> dns.message.Message:
        query = dns.message.from_wire(wire)
        name = query.question[0].name
        self.seen.append((transport, name.to_text()))
        response = dns.message.make_response(query)
        if name.to_text() == "big.test.":
            if transport == "udp":
                response.flags |= dns.flags.TC
            else:
                texts = [f'"record {n:03d} padding padding padding"' for n in range(60)]
                response.answer.append(dns.rrset.from_text_list(name, 60, "IN", "TXT", texts))
        else:
            response.answer.append(dns.rrset.from_text(name, 60, "IN", "A", "192.0.2.1"))
        return response

    def _serve_udp(self) -> None:
        while True:
            try:
                wire, peer = self.udp.recvfrom(65535)
            except OSError:
                return
            response = self.respond(wire, "udp")
            if not self.silent:
                self.udp.sendto(response.to_wire(), peer)

    def _serve_tcp(self) -> None:
        while True:
            try:
                conn, _ = self.tcp.accept()
            except OSError:
                return
            with conn:
                (length,) = struct.unpack("!H", conn.recv(2))
                wire = conn.recv(length, socket.MSG_WAITALL)
                answer = self.respond(wire, "tcp").to_wire()
                if not self.silent:
                    conn.sendall(struct.pack("!H", len(answer)) + answer)

    def close(self) -> None:
        self.udp.close()
        self.tcp.close()


class Loop:
    """An event loop in a thread of its own, for the server under test."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=30)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()


@pytest.fixture
def loop() -> Iterator[Loop]:
    running = Loop()
    try:
        yield running
    finally:
        running.close()


@pytest.fixture
def upstreams() -> Iterator[list[Upstream]]:
    made = [Upstream(silent=True), Upstream(silent=True), Upstream()]
    try:
        yield made
    finally:
        for upstream in made:
            upstream.close()


def start(loop: Loop, upstreams: list[Upstream], key: str = "c1") -> tuple[DnsServer, int, int]:
    """A server with ``upstreams`` serving ``key`` on fresh loopback sockets; their ports."""
    server = DnsServer(lookup, reverse, [("127.0.0.1", u.port) for u in upstreams], timeout=0.3)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.bind(("127.0.0.1", 0))
    loop.run(server.serve(key, udp, tcp))
    return server, udp.getsockname()[1], tcp.getsockname()[1]


@pytest.fixture
def served(loop: Loop, upstreams: list[Upstream]) -> Iterator[tuple[int, int]]:
    """Ports of a server for c1 whose only upstream answers."""
    server, udp_port, tcp_port = start(loop, upstreams[2:])
    try:
        yield udp_port, tcp_port
    finally:
        loop.run(server.close())


def ask(port: int, name: str, rdtype: str = "A", *, tcp: bool = False, **make: Any) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype, **make)
    if tcp:
        return dns.query.tcp(query, "127.0.0.1", port=port, timeout=3)
    return dns.query.udp(query, "127.0.0.1", port=port, timeout=3)


def records(response: dns.message.Message) -> list[str]:
    return sorted(rdata.to_text() for rrset in response.answer for rdata in rrset)


def test_engine_names(served: tuple[int, int], upstreams: list[Upstream]) -> None:
    udp, tcp = served
    a = ask(udp, "web")
    assert records(a) == ["172.30.0.2"]
    assert a.answer[0].ttl == 600
    assert a.flags & dns.flags.AA == 0 and a.flags & dns.flags.RA
    assert records(ask(udp, "WEB.", "AAAA")) == ["fd00::2"]
    assert records(ask(tcp, "web", tcp=True)) == ["172.30.0.2"]
    # A name of the engine's without that record type: NOERROR, no records, not forwarded.
    for rdtype in ("AAAA", "MX"):
        empty = ask(udp, "db", rdtype)
        assert empty.rcode() == dns.rcode.NOERROR and not empty.answer
    ptr = ask(udp, "2.0.30.172.in-addr.arpa", "PTR")
    assert records(ptr) == ["web."]
    assert upstreams[2].seen == []


def test_the_quick_answer_is_dnspythons(served: tuple[int, int]) -> None:
    """The hand-encoded answers (plain A/AAAA questions of the engine's names) say what dnspython's
    do, and every other query is left to dnspython."""
    for name, rdtype in [("web", "A"), ("WEB", "AAAA"), ("db", "AAAA"), ("db", "A")]:
        query = dns.message.make_query(name, rdtype)
        quick = quick_answer(query.to_wire(), lambda asked: lookup("c1", asked))
        assert quick is not None
        parsed = dns.message.from_wire(quick)
        assert parsed.id == query.id and parsed.flags & dns.flags.QR and parsed.flags & dns.flags.RA
        assert parsed.flags & dns.flags.RD and not parsed.flags & dns.flags.AA
        assert parsed.question == query.question
        assert records(parsed) == records(ask(served[0], name, rdtype))
        if parsed.answer:
            assert parsed.answer[0].ttl == 600
    for query in [
        dns.message.make_query("web", "MX"),
        dns.message.make_query("unknown", "A"),
        dns.message.make_query("web", "A", use_edns=0),
        dns.message.make_query("many", "A"),  # too big for 512 bytes: dnspython truncates it
    ]:
        assert quick_answer(query.to_wire(), lambda asked: lookup("c1", asked)) is None
    for wire in [b"", b"\x00" * 12, dns.message.make_query("web", "A").to_wire()[:-1], b"\xff" * 40]:
        assert quick_answer(wire, lambda asked: lookup("c1", asked)) is None


def test_other_names_are_forwarded_over_the_query_transport(
    served: tuple[int, int], upstreams: list[Upstream]
) -> None:
    udp, tcp = served
    assert records(ask(udp, "example.org")) == ["192.0.2.1"]
    assert records(ask(tcp, "example.net", tcp=True)) == ["192.0.2.1"]
    # A single label the engine does not know goes upstream too (dockerd without ndots).
    assert records(ask(udp, "nosuchcontainer")) == ["192.0.2.1"]
    # A PTR of an address that is no container's.
    ask(udp, "9.9.9.9.in-addr.arpa", "PTR")
    assert upstreams[2].seen == [
        ("udp", "example.org."),
        ("tcp", "example.net."),
        ("udp", "nosuchcontainer."),
        ("udp", "9.9.9.9.in-addr.arpa."),
    ]


def test_truncation(served: tuple[int, int], upstreams: list[Upstream]) -> None:
    udp, tcp = served
    # Upstream truncated over UDP: asked again over TCP; the whole answer does not fit the client's
    # 512 bytes, so it gets a truncated one, and all of it over TCP.
    cut = ask(udp, "big.test", "TXT")
    assert cut.flags & dns.flags.TC
    assert upstreams[2].seen == [("udp", "big.test."), ("tcp", "big.test.")]
    assert len(records(ask(tcp, "big.test", "TXT", tcp=True))) == 60
    # With EDNS and a large enough size, it fits over UDP.
    assert len(records(ask(udp, "big.test", "TXT", use_edns=0, payload=4096))) == 60
    # The engine's own answers are cut the same way.
    assert ask(udp, "many").flags & dns.flags.TC
    assert len(records(ask(udp, "many", use_edns=0, payload=4096))) == 100
    assert len(records(ask(tcp, "many", tcp=True))) == 100


def test_upstream_timeouts_then_servfail(loop: Loop, upstreams: list[Upstream]) -> None:
    server, udp, tcp = start(loop, upstreams)
    try:
        began = time.monotonic()
        assert records(ask(udp, "example.org")) == ["192.0.2.1"]
        assert time.monotonic() - began >= 0.6  # two silent upstreams, 0.3 s each
        assert [seen for upstream in upstreams for seen in upstream.seen] == [
            ("udp", "example.org."),
            ("udp", "example.org."),
            ("udp", "example.org."),
        ]
    finally:
        loop.run(server.close())
    server, udp, tcp = start(loop, upstreams[:2])
    try:
        assert ask(udp, "example.org").rcode() == dns.rcode.SERVFAIL
        assert ask(tcp, "example.org", tcp=True).rcode() == dns.rcode.SERVFAIL
        # The engine's names need no upstream.
        assert records(ask(udp, "web")) == ["172.30.0.2"]
    finally:
        loop.run(server.close())


def test_malformed_queries(served: tuple[int, int]) -> None:
    udp, tcp = served
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.settimeout(0.5)
        client.connect(("127.0.0.1", udp))
        # A header and garbage: FORMERR with the query's ID.
        client.send(b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xff\xff")
        reply = client.recv(512)
        assert reply[:2] == b"\x12\x34" and reply[2] & 0x80 and reply[3] & 0x0F == dns.rcode.FORMERR
        # Too short for a header, or a response: nothing.
        for junk in (b"\x00", dns.message.make_response(dns.message.make_query("x", "A")).to_wire()):
            client.send(junk)
            with pytest.raises(TimeoutError):
                client.recv(512)
    with socket.create_connection(("127.0.0.1", tcp), timeout=3) as client:
        client.sendall(b"\x00\x05abc")  # a length, then less than it, then the end
        client.shutdown(socket.SHUT_WR)
        assert client.recv(512) == b""
    assert records(ask(udp, "web")) == ["172.30.0.2"]
    assert records(ask(tcp, "web", tcp=True)) == ["172.30.0.2"]


async def stop(server: DnsServer, key: str) -> None:
    server.stop(key)  # on the server's loop, as the daemon calls it


def test_stop_closes_the_sockets_of_one_key(loop: Loop, upstreams: list[Upstream]) -> None:
    server = DnsServer(lookup, reverse, [("127.0.0.1", upstreams[2].port)])
    sockets: dict[str, tuple[socket.socket, socket.socket]] = {}
    for key in ("c1", "c2"):
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind(("127.0.0.1", 0))
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tcp.bind(("127.0.0.1", 0))
        sockets[key] = (udp, tcp)
        loop.run(server.serve(key, udp, tcp))
    ports = {key: (udp.getsockname()[1], tcp.getsockname()[1]) for key, (udp, tcp) in sockets.items()}
    try:
        # Each key gets its own answers: c2's lookup knows no "web", so it is forwarded.
        assert records(ask(ports["c2"][0], "web")) == ["192.0.2.1"]
        loop.run(stop(server, "c1"))
        loop.run(stop(server, "c1"))  # again: nothing
        time.sleep(0.1)  # the transports close on the loop's next turn
        assert all(sock.fileno() == -1 for sock in sockets["c1"])
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", ports["c1"][1]), timeout=1).close()
        assert records(ask(ports["c2"][1], "db", tcp=True)) == ["192.0.2.1"]
    finally:
        loop.run(server.close())
    time.sleep(0.1)
    assert all(sock.fileno() == -1 for pair in sockets.values() for sock in pair)


def test_answer_latency(served: tuple[int, int]) -> None:
    udp, _ = served
    query = dns.message.make_query("web", "A")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.connect(("127.0.0.1", udp))
        client.settimeout(3)
        times = []
        for _ in range(3000):
            began = time.perf_counter()
            client.send(query.to_wire())
            client.recv(512)
            times.append(time.perf_counter() - began)
    median = statistics.median(times)
    print(f"median answer latency over UDP: {median * 1e6:.0f} µs")
    assert median < 0.005
