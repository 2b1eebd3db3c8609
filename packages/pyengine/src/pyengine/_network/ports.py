"""Published ports: ``-p [ip:][hostPort:]containerPort[/proto]`` and ``-P``.

Each published port is a socket the engine binds on the host (which reserves the port, and tells a
port already taken by its error), a DNAT rule in the engine's table (what carries the traffic, also
from 127.0.0.1), and, as dockerd's userland proxy, a relay on that socket for what DNAT cannot reach:
IPv6 connections to a container that has no IPv6 address, and ``::1``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import logging
import socket
from collections.abc import Sequence
from typing import Any

import attrs

from pyengine._errors import ApiError, InvalidParameter
from pyengine._network.nft import EngineTable, PortRule

__all__ = ["Binding", "PortPublisher", "Published", "bindings_of", "exposed_ports"]

log = logging.getLogger("pyengine.network")

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class PortTaken(ApiError):
    """dockerd's 500 for a host port that cannot be had."""


@attrs.frozen
class Binding:
    """One host port asked for: ``host_port`` 0 for any free one, ``host_ip`` "" for every address."""

    container_port: int
    proto: str
    host_ip: str
    host_port: int
    host_port_end: int = 0  # a range: the first of host_port..host_port_end that is free


def _port_proto(key: str) -> tuple[int, str]:
    port, _, proto = key.partition("/")
    proto = proto or "tcp"
    if proto not in ("tcp", "udp"):
        raise InvalidParameter(
            f"invalid proto '{proto}'" if proto != "sctp" else "sctp ports are not supported by pyengine yet"
        )
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidParameter(f"invalid containerPort: {port}")
    return int(port), proto


def exposed_ports(config: dict[str, Any]) -> list[tuple[int, str]]:
    """Config.ExposedPorts (what ``EXPOSE`` and ``--expose`` declare), checked."""
    exposed = config.get("ExposedPorts") or {}
    if not isinstance(exposed, dict):
        raise InvalidParameter("Config.ExposedPorts: an object keyed by port/proto")
    return [_port_proto(key) for key in exposed]


def bindings_of(
    host_config: dict[str, Any], exposed: Sequence[tuple[int, str]], default_ip: str
) -> list[Binding]:
    """The host ports HostConfig.PortBindings asks for, and with PublishAllPorts a free one for
    each exposed port that has none; ``default_ip`` for a binding that names no address."""
    given = host_config.get("PortBindings") or {}
    if not isinstance(given, dict):
        raise InvalidParameter("HostConfig.PortBindings: an object keyed by port/proto")
    bindings = []
    for key, entries in given.items():
        port, proto = _port_proto(key)
        for entry in entries or [{}]:
            if not isinstance(entry, dict):
                raise InvalidParameter(
                    f"HostConfig.PortBindings[{key}]: {entry!r} is not a HostIp and HostPort"
                )
            host_ip = entry.get("HostIp") or default_ip
            if host_ip in ("0.0.0.0", "::"):
                host_ip = host_ip if host_ip == "::" else ""
            if host_ip:
                try:
                    ipaddress.ip_address(host_ip.strip("[]"))
                except ValueError:
                    raise InvalidParameter(f"invalid IP address: {host_ip}") from None
            text = entry.get("HostPort") or "0"
            low, _, high = text.partition("-")
            if not low.isdigit() or (high and not high.isdigit()) or int(low) > 65535:
                raise InvalidParameter(f"invalid hostPort: {text}")
            if high and not int(low) <= int(high) <= 65535:
                raise InvalidParameter(f"invalid hostPort: {text}")
            bindings.append(Binding(port, proto, host_ip.strip("[]"), int(low), int(high or 0)))
    if host_config.get("PublishAllPorts"):
        bound = {(b.container_port, b.proto) for b in bindings}
        bindings += [
            Binding(port, proto, default_ip, 0) for port, proto in exposed if (port, proto) not in bound
        ]
    return bindings


@attrs.define
class Published:
    """A container's published ports: the sockets held and the rules made."""

    sockets: list[socket.socket] = attrs.Factory(list)
    rules: list[PortRule] = attrs.Factory(list)
    servers: list[asyncio.AbstractServer] = attrs.Factory(list)
    view: dict[str, list[dict[str, str]]] = attrs.Factory(dict)  # NetworkSettings.Ports


class PortPublisher:
    """Publishes containers' ports: the host's sockets, the table's DNAT rules and the relays."""

    def __init__(self, table: EngineTable, loop: asyncio.AbstractEventLoop) -> None:
        self.table = table
        self.loop = loop
        self._held: set[tuple[str, int]] = set()  # (proto, port) of the sockets held

    def publish(
        self,
        endpoint: str,
        bindings: Sequence[Binding],
        ipv4: ipaddress.IPv4Address,
        ipv6: ipaddress.IPv6Address | None,
    ) -> Published:
        """Bind, route and relay each of ``bindings`` to the container at ``ipv4`` (and ``ipv6``);
        ``endpoint`` names it in dockerd's errors. All or nothing."""
        published = Published()
        try:
            for binding in bindings:
                self._publish_one(published, endpoint, binding, ipv4, ipv6)
        except BaseException:
            self.unpublish(published)
            raise
        return published

    def _publish_one(
        self,
        published: Published,
        endpoint: str,
        binding: Binding,
        ipv4: ipaddress.IPv4Address,
        ipv6: ipaddress.IPv6Address | None,
    ) -> None:
        host_ip = ipaddress.ip_address(binding.host_ip) if binding.host_ip else None
        for candidate in range(binding.host_port, max(binding.host_port, binding.host_port_end) + 1):
            try:
                sock = _bind(
                    endpoint,
                    attrs.evolve(binding, host_port=candidate),
                    host_ip,
                    (binding.proto, candidate) in self._held,
                )
                break
            except PortTaken:
                if candidate >= binding.host_port_end:
                    raise
        published.sockets.append(sock)
        port = sock.getsockname()[1]
        self._held.add((binding.proto, port))
        for address in (ipv4, ipv6) if host_ip is None else (ipv4 if host_ip.version == 4 else ipv6,):
            if address is None:
                continue
            if host_ip == ipaddress.IPv6Address("::1"):
                continue  # DNAT cannot reach it: the relay serves it
            rule = PortRule(
                "udp" if binding.proto == "udp" else "tcp", host_ip, port, address, binding.container_port
            )
            self.table.publish(rule)
            published.rules.append(rule)
        if binding.proto == "tcp":  # listening holds the port; the relay serves what DNAT does not take
            target = str(ipv6 if ipv6 is not None else ipv4)
            server = asyncio.run_coroutine_threadsafe(
                _relay(sock, target, binding.container_port), self.loop
            ).result()
            published.servers.append(server)
        key = f"{binding.container_port}/{binding.proto}"
        for shown in ("0.0.0.0", "::") if host_ip is None else (str(host_ip),):
            published.view.setdefault(key, []).append({"HostIp": shown, "HostPort": str(port)})

    def unpublish(self, published: Published) -> None:
        for server in published.servers:
            self.loop.call_soon_threadsafe(server.close)
        for rule in published.rules:
            with contextlib.suppress(Exception):  # the table may be gone with a daemon killed before
                self.table.unpublish(rule)
        for sock in published.sockets:
            with contextlib.suppress(OSError):
                self._held.discard((_PROTOS[sock.type], sock.getsockname()[1]))
            sock.close()
        published.servers.clear()
        published.rules.clear()
        published.sockets.clear()


_PROTOS = {socket.SOCK_STREAM: "tcp", socket.SOCK_DGRAM: "udp"}


def _bind(endpoint: str, binding: Binding, host_ip: Address | None, ours: bool) -> socket.socket:
    """The host socket of ``binding``: on every address (IPv4 and IPv6) for none given."""
    kind = socket.SOCK_STREAM if binding.proto == "tcp" else socket.SOCK_DGRAM
    family = socket.AF_INET if host_ip is not None and host_ip.version == 4 else socket.AF_INET6
    sock = socket.socket(family, kind)
    try:
        if kind == socket.SOCK_STREAM:  # past connections' TIME_WAIT must not hold the port (UDP: no sharing)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, int(host_ip is not None))
        sock.bind((str(host_ip) if host_ip is not None else "::", binding.host_port))
        if kind == socket.SOCK_STREAM:
            sock.listen(128)
    except OSError as exc:
        sock.close()
        shown = binding.host_ip or "0.0.0.0"
        if exc.errno == errno.EADDRINUSE and ours:
            raise PortTaken(
                f"driver failed programming external connectivity on endpoint {endpoint}: Bind for "
                f"{shown}:{binding.host_port} failed: port is already allocated"
            ) from None
        raise PortTaken(
            f"driver failed programming external connectivity on endpoint {endpoint}: Error starting "
            f"userland proxy: listen {binding.proto}{4 if host_ip is None or host_ip.version == 4 else 6} "
            f"{shown}:{binding.host_port}: bind: {(exc.strerror or str(exc)).lower()}"
        ) from None
    return sock


async def _relay(sock: socket.socket, host: str, port: int) -> asyncio.AbstractServer:
    """Relay each connection accepted on ``sock`` to ``host:port`` (dockerd's userland proxy)."""

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()
        except OSError:
            writer.close()

    async def relay(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError:
            client_writer.close()
            return
        try:
            await asyncio.gather(pipe(client_reader, writer), pipe(reader, client_writer))
        finally:
            writer.close()
            client_writer.close()

    return await asyncio.start_server(relay, sock=sock)
