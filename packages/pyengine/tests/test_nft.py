"""The engine's nftables table on the real kernel: network namespaces on test bridges, real sockets.

Each test builds its own bridges, veths and namespaces (``ip``), with short names unique to the
run, and removes them; the table has a name of its own too. Sockets are made inside a namespace by
a thread that ``setns()``'d into it (a socket stays in the namespace it was made in), and used from
the test's thread.
"""

from __future__ import annotations

import ctypes
import ipaddress
import os
import secrets
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from pyengine._network.nft import (
    DNS_TABLE,
    EngineTable,
    Nftables,
    NftablesError,
    PortRule,
    enable_route_localnet,
    ip_forward,
    redirect_dns,
)

_T = TypeVar("_T")
_CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


def in_netns(netns: str, function: Callable[[], _T]) -> _T:
    """``function()`` run by a thread that joined the network namespace ``netns``."""
    result: list[_T] = []
    errors: list[BaseException] = []

    def run() -> None:
        fd = os.open(f"/run/netns/{netns}", os.O_RDONLY)
        try:
            if _libc.setns(fd, _CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns")
        finally:
            os.close(fd)
        try:
            result.append(function())
        except BaseException as exc:  # noqa: BLE001 -- raised again in the caller
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return result[0]


class Lab:
    """Bridges, namespaces and veths made for one test, removed (namespaces first) at the end."""

    def __init__(self) -> None:
        self.tag = secrets.token_hex(3)
        self.octet = int(self.tag[:2], 16)
        self.links: list[str] = []
        self.netns: list[str] = []

    def bridge(self, index: int, *addresses: str) -> str:
        name = f"nb{self.tag}{index}"
        ip("link", "add", name, "type", "bridge")
        self.links.append(name)
        for address in addresses:
            ip("address", "add", address, "dev", name, *(["nodad"] if ":" in address else []))
        ip("link", "set", name, "up")
        return name

    def namespace(self, index: int, bridge: str | None, *addresses: str, gateway: str | None = None) -> str:
        """A namespace whose veth ``e0`` has ``addresses``; its host end is put on ``bridge``, or
        left alone (returned as the namespace's ``peer``) when ``bridge`` is None."""
        name = f"nn{self.tag}{index}"
        ip("netns", "add", name)
        self.netns.append(name)
        host_end = f"nv{self.tag}{index}"
        ip("link", "add", host_end, "type", "veth", "peer", "name", "e0", "netns", name)
        self.links.append(host_end)
        if bridge is not None:
            ip("link", "set", host_end, "master", bridge)
        ip("link", "set", host_end, "up")
        ip("-n", name, "link", "set", "lo", "up")
        for address in addresses:
            ip("-n", name, "address", "add", address, "dev", "e0", *(["nodad"] if ":" in address else []))
        ip("-n", name, "link", "set", "e0", "up")
        if gateway is not None:
            ip("-n", name, "route", "add", "default", "via", gateway)
        return name

    def remove(self) -> None:
        for netns in self.netns:
            subprocess.run(["ip", "netns", "delete", netns], check=False)
        for link in self.links:
            if Path(f"/sys/class/net/{link}").exists():
                subprocess.run(["ip", "link", "delete", link], check=False)


@pytest.fixture
def lab() -> Iterator[Lab]:
    made = Lab()
    try:
        yield made
    finally:
        made.remove()


@pytest.fixture
def table() -> Iterator[EngineTable]:
    engine_table = EngineTable(f"pyengine-t{secrets.token_hex(3)}")
    engine_table.create()
    try:
        yield engine_table
    finally:
        engine_table.delete()


def listener(netns: str, address: str, kind: int = socket.SOCK_STREAM) -> socket.socket:
    """A socket bound in ``netns`` to ``address`` on a free port, listening if it is TCP, with a
    thread that answers each connection or datagram with the peer's address."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = in_netns(netns, lambda: socket.socket(family, kind))
    sock.bind((address, 0))

    def serve() -> None:
        while True:
            try:
                if kind == socket.SOCK_STREAM:
                    conn, peer = sock.accept()
                    with conn:
                        conn.sendall(peer[0].encode())
                else:
                    _, peer = sock.recvfrom(100)
                    sock.sendto(peer[0].encode(), peer)
            except OSError:  # closed by the test
                return

    if kind == socket.SOCK_STREAM:
        sock.listen()
    threading.Thread(target=serve, daemon=True).start()
    return sock


def ask(netns: str | None, address: str, port: int, kind: int = socket.SOCK_STREAM) -> str | None:
    """The peer address a listener saw for a connection (or datagram) from ``netns`` (None: the
    host) to ``address:port``; None when nothing answered within a second."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = in_netns(netns, lambda: socket.socket(family, kind)) if netns else socket.socket(family, kind)
    sock.settimeout(1.0)
    with sock:
        try:
            if kind == socket.SOCK_STREAM:
                sock.connect((address, port))
                return sock.recv(100).decode()
            sock.sendto(b"?", (address, port))
            return sock.recv(100).decode()
        except (TimeoutError, ConnectionRefusedError):
            return None


def other_tables(nft: Nftables, mine: str) -> list[tuple[str, str]]:
    return sorted(table for table in nft.tables() if table[1] != mine)


def test_a_context_acts_in_the_namespace_of_the_thread_that_created_it(lab: Lab) -> None:
    netns = lab.namespace(1, None)
    name = f"pyengine-t{lab.tag}"
    host = Nftables()
    inside = in_netns(netns, Nftables)
    try:
        # Created in the namespace, run from this (the host's) thread: acts in the namespace.
        inside.run([{"add": {"table": {"family": "inet", "name": name}}}])
        assert ("inet", name) in inside.tables()
        assert ("inet", name) not in host.tables()
        # Created on the host, run from a thread in the namespace: acts on the host.
        in_netns(netns, lambda: host.run([{"add": {"table": {"family": "inet", "name": name}}}]))
        assert ("inet", name) in host.tables()
    finally:
        host.run(
            [
                {"add": {"table": {"family": "inet", "name": name}}},
                {"delete": {"table": {"family": "inet", "name": name}}},
            ]
        )


def test_errors_carry_libnftables_text() -> None:
    with pytest.raises(NftablesError, match="No such file or directory"):
        Nftables().run(
            [{"delete": {"table": {"family": "inet", "name": f"pyengine-t{secrets.token_hex(3)}"}}}]
        )


def test_create_replaces_leftovers_and_delete_leaves_nothing() -> None:
    nft = Nftables()
    others = other_tables(nft, "")
    engine_table = EngineTable(f"pyengine-t{secrets.token_hex(3)}", nft)
    assert not engine_table.exists()
    engine_table.create()
    try:
        engine_table.add_bridge("nbleft0", [ipaddress.ip_network("10.250.0.0/24")], internal=False)
        engine_table.create()  # a crashed daemon's table: replaced by an empty one
        assert not nft.run(
            [{"list": {"set": {"family": "inet", "table": engine_table.name, "name": "bridges"}}}]
        )[0]["set"].get("elem")
        assert other_tables(nft, engine_table.name) == others
    finally:
        engine_table.delete()
    assert not engine_table.exists()
    engine_table.delete()  # nothing to delete: no error
    assert other_tables(nft, "") == others


def test_masquerade_isolation_and_internal(lab: Lab, table: EngineTable) -> None:
    net = f"10.{lab.octet}"
    bridge_a = lab.bridge(1, f"{net}.1.1/24")
    bridge_b = lab.bridge(2, f"{net}.2.1/24")
    bridge_i = lab.bridge(3, f"{net}.3.1/24")
    a1 = lab.namespace(1, bridge_a, f"{net}.1.2/24", gateway=f"{net}.1.1")
    a2 = lab.namespace(2, bridge_a, f"{net}.1.3/24", gateway=f"{net}.1.1")
    b1 = lab.namespace(3, bridge_b, f"{net}.2.2/24", gateway=f"{net}.2.1")
    i1 = lab.namespace(4, bridge_i, f"{net}.3.2/24", gateway=f"{net}.3.1")
    i2 = lab.namespace(5, bridge_i, f"{net}.3.3/24", gateway=f"{net}.3.1")
    # "Outside": a namespace behind a veth of the host's that is no engine bridge.
    outside = lab.namespace(6, None, "192.168.250.2/30")
    ip("address", "add", "192.168.250.1/30", "dev", f"nv{lab.tag}6")
    ip("-n", outside, "route", "add", f"{net}.0.0/16", "via", "192.168.250.1")
    ip_forward()  # left on, as dockerd leaves it
    servers = {ns: listener(ns, "0.0.0.0") for ns in (a2, b1, i1, i2, outside)}
    port = {ns: server.getsockname()[1] for ns, server in servers.items()}
    try:
        # Without the table's rules everything is routed, unchanged.
        assert ask(a1, f"{net}.2.2", port[b1]) == f"{net}.1.2"
        assert ask(a1, "192.168.250.2", port[outside]) == f"{net}.1.2"
        assert ask(i1, "192.168.250.2", port[outside]) == f"{net}.3.2"

        table.add_bridge(bridge_a, [ipaddress.ip_network(f"{net}.1.0/24")], internal=False)
        table.add_bridge(bridge_b, [ipaddress.ip_network(f"{net}.2.0/24")], internal=False)
        table.add_bridge(bridge_i, [ipaddress.ip_network(f"{net}.3.0/24")], internal=True)

        # Masquerade: leaving by another interface, the host's address on it is the source.
        assert ask(a1, "192.168.250.2", port[outside]) == "192.168.250.1"
        # Within a bridge: allowed, unchanged (bridged, through the forward hook).
        assert ask(a1, f"{net}.1.3", port[a2]) == f"{net}.1.2"
        # Isolation: bridge to bridge, either way; and from outside straight to a container.
        assert ask(a1, f"{net}.2.2", port[b1]) is None
        assert ask(b1, f"{net}.1.3", port[a2]) is None
        assert ask(outside, f"{net}.1.3", port[a2]) is None
        # Internal: nothing leaves, nothing enters; within the bridge, fine.
        assert ask(i1, "192.168.250.2", port[outside]) is None
        assert ask(a1, f"{net}.3.2", port[i1]) is None
        assert ask(i2, f"{net}.3.2", port[i1]) == f"{net}.3.3"

        # icc off: bridged traffic within the bridge is dropped too (br_netfilter's forward hook).
        table.add_bridge(bridge_a, [ipaddress.ip_network(f"{net}.1.0/24")], internal=False, icc=False)
        assert ask(a1, f"{net}.1.3", port[a2]) is None

        for bridge in (bridge_a, bridge_b, bridge_i):
            table.remove_bridge(bridge)
        table.remove_bridge(bridge_a)  # again: nothing to do
        assert ask(a1, f"{net}.2.2", port[b1]) == f"{net}.1.2"
        assert ask(a1, f"{net}.1.3", port[a2]) == f"{net}.1.2"
        assert ask(i1, "192.168.250.2", port[outside]) == f"{net}.3.2"
    finally:
        for server in servers.values():
            server.close()


def test_published_ports(lab: Lab, table: EngineTable) -> None:
    net = f"10.{lab.octet}"
    v6 = f"fd00:{lab.tag[:4]}"
    bridge_a = lab.bridge(1, f"{net}.1.1/24", f"{v6}:1::1/64")
    bridge_b = lab.bridge(2, f"{net}.2.1/24")
    a1 = lab.namespace(1, bridge_a, f"{net}.1.2/24", f"{v6}:1::2/64", gateway=f"{net}.1.1")
    ip("-n", a1, "route", "add", "default", "via", f"{v6}:1::1")
    b1 = lab.namespace(2, bridge_b, f"{net}.2.2/24", gateway=f"{net}.2.1")
    enable_route_localnet(bridge_a)
    ip_forward()
    table.add_bridge(
        bridge_a,
        [ipaddress.ip_network(f"{net}.1.0/24"), ipaddress.ip_network(f"{v6}:1::/64")],
        internal=False,
    )
    table.add_bridge(bridge_b, [ipaddress.ip_network(f"{net}.2.0/24")], internal=False)
    tcp = listener(a1, "0.0.0.0")
    udp = listener(a1, "0.0.0.0", socket.SOCK_DGRAM)
    tcp6 = listener(a1, "::")
    container = ipaddress.ip_address(f"{net}.1.2")
    rules = [
        PortRule("tcp", None, 18080, container, tcp.getsockname()[1]),
        PortRule("udp", None, 18080, container, udp.getsockname()[1]),
        PortRule("tcp", ipaddress.ip_address(f"{net}.2.1"), 18081, container, tcp.getsockname()[1]),
        PortRule("tcp", None, 18080, ipaddress.ip_address(f"{v6}:1::2"), tcp6.getsockname()[1]),
    ]
    try:
        for rule in rules:
            table.publish(rule)
        table.publish(rules[0])  # again: nothing changes
        # From the host, at 127.0.0.1 (masqueraded to the bridge's address) and at another address.
        assert ask(None, "127.0.0.1", 18080) == f"{net}.1.1"
        assert ask(None, "127.0.0.1", 18080, socket.SOCK_DGRAM) == f"{net}.1.1"
        assert ask(None, f"{net}.2.1", 18080) == f"{net}.2.1"
        # From a container on another engine bridge, through the host's address: it leaves its
        # bridge by another, so it is masqueraded, as with Docker.
        assert ask(b1, f"{net}.2.1", 18080) == f"{net}.1.1"
        # Published on one address only.
        assert ask(b1, f"{net}.2.1", 18081) == f"{net}.1.1"
        assert ask(None, "127.0.0.1", 18081) is None
        # IPv6, to a local address of the host's.
        assert ask(None, f"{v6}:1::1", 18080) == f"{v6}:1::1"

        for rule in rules:
            table.unpublish(rule)
        table.unpublish(rules[0])  # again: nothing to do
        assert ask(None, "127.0.0.1", 18080) is None
        assert ask(b1, f"{net}.2.1", 18081) is None
        ports = [
            item["map"].get("elem")
            for item in table.nft.run([{"list": {"table": {"family": "inet", "name": table.name}}}])
            if "map" in item and item["map"]["name"].startswith("ports")
        ]
        assert ports == [None] * 8
    finally:
        for server in (tcp, udp, tcp6):
            server.close()


def test_port_rule_refuses_what_dnat_cannot_do() -> None:
    container = ipaddress.ip_address("fd00::2")
    with pytest.raises(ValueError, match="userland proxy"):
        PortRule("tcp", ipaddress.ip_address("::1"), 80, container, 80)
    with pytest.raises(ValueError, match="not one IP version"):
        PortRule("tcp", ipaddress.ip_address("127.0.0.1"), 80, container, 80)
    with pytest.raises(ValueError, match="invalid port"):
        PortRule("udp", None, 0, container, 80)


def test_dns_redirect_in_a_namespace(lab: Lab) -> None:
    netns = lab.namespace(1, None)
    host = Nftables()
    before = host.tables()
    nft = in_netns(netns, Nftables)
    udp = listener(netns, "127.0.0.11", socket.SOCK_DGRAM)
    tcp = listener(netns, "127.0.0.11")
    try:
        assert ask(netns, "127.0.0.11", 53, socket.SOCK_DGRAM) is None
        redirect_dns(nft, udp.getsockname()[1], tcp.getsockname()[1])
        redirect_dns(nft, udp.getsockname()[1], tcp.getsockname()[1])  # replaces its own table

        def query(kind: int) -> tuple[str, tuple[str, int]]:
            with socket.socket(socket.AF_INET, kind) as client:
                client.settimeout(1.0)
                client.connect(("127.0.0.11", 53))
                if kind == socket.SOCK_DGRAM:
                    client.send(b"?")
                    answer, source = client.recvfrom(100)
                    return answer.decode(), source
                return client.recv(100).decode(), client.getpeername()

        # The client sees port 53 and only port 53: the replies' source is put back by conntrack.
        assert in_netns(netns, lambda: query(socket.SOCK_DGRAM)) == ("127.0.0.1", ("127.0.0.11", 53))
        assert in_netns(netns, lambda: query(socket.SOCK_STREAM)) == ("127.0.0.1", ("127.0.0.11", 53))
        assert nft.tables() == [("ip", DNS_TABLE)]
        assert host.tables() == before
    finally:
        udp.close()
        tcp.close()


def test_ip_forward_says_whether_it_changed_anything(tmp_path: Path) -> None:
    (tmp_path / "net/ipv4").mkdir(parents=True)
    (tmp_path / "net/ipv6/conf/all").mkdir(parents=True)
    (tmp_path / "net/ipv4/ip_forward").write_text("0\n")
    (tmp_path / "net/ipv6/conf/all/forwarding").write_text("0\n")
    assert ip_forward(proc=tmp_path)
    assert not ip_forward(proc=tmp_path)
    assert (tmp_path / "net/ipv6/conf/all/forwarding").read_text() == "0\n"
    assert ip_forward(ipv6=True, proc=tmp_path)
    assert (tmp_path / "net/ipv6/conf/all/forwarding").read_text() == "1\n"
