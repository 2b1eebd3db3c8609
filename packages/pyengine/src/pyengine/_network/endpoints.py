"""Containers on networks: what a container is connected to (its endpoints, kept in its record as
dockerd's ``EndpointSettings``), and what is made for it while it runs: a veth pair per network
with its addresses, the embedded DNS server's sockets, its published ports and its /etc/hosts.

A container's network namespace is made by the runtime with its process; the engine connects it
once the process exists and before it runs (pycontainerd's create, then start), and lets the
kernel take the veths away with the namespace when the process exits.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import secrets
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import attrs

from pyengine import _spec
from pyengine._errors import Forbidden, InvalidParameter
from pyengine._network.dns import Answer, DnsServer
from pyengine._network.ipam import Addresses
from pyengine._network.netlink import Attachment, Netlink, mac_of
from pyengine._network.networks import NetworkRecord, Networks
from pyengine._network.nft import Nftables, redirect_dns
from pyengine._network.ports import PortPublisher, Published, bindings_of, exposed_ports

__all__ = ["Connected", "Networking", "network_mode"]

log = logging.getLogger("pyengine.network")

#: Where a container's resolver finds the embedded DNS server (dockerd's address).
DNS_ADDRESS = "127.0.0.11"
_MODES = ("host", "none")


class Connected(Protocol):
    """What the networking reads and writes of a container record."""

    id: str
    name: str
    config: dict[str, Any]
    host_config: dict[str, Any]
    directory: str  # where its hostname, hosts and resolv.conf files are
    networks: dict[str, dict[str, Any]]  # EndpointSettings by network name
    ports: dict[str, Any]  # NetworkSettings.Ports of the running container


def network_mode(host_config: dict[str, Any]) -> str:
    """HostConfig.NetworkMode with ``default`` as dockerd reads it: ``bridge``."""
    mode = host_config.get("NetworkMode") or "default"
    return "bridge" if mode == "default" else str(mode)


def _empty_endpoint(network: NetworkRecord) -> dict[str, Any]:
    return {
        "IPAMConfig": None,
        "Links": [],
        "Aliases": [],
        "MacAddress": "",
        "DriverOpts": None,
        "NetworkID": network.id,
        "EndpointID": "",
        "Gateway": "",
        "IPAddress": "",
        "IPPrefixLen": 0,
        "IPv6Gateway": "",
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "DNSNames": [],
    }


@attrs.define
class _Endpoint:
    """A running endpoint: what the DNS server answers and what is given back at the end."""

    network: NetworkRecord
    ifname: str  # inside the container
    host_veth: str
    addresses: list[tuple[Addresses, ipaddress.IPv4Address | ipaddress.IPv6Address]]
    names: list[str]  # what it is called on its network: the container's name, aliases, short ID
    links: dict[str, str]  # alias -> container name, for this container's lookups on this network


@attrs.define
class _Sandbox:
    container_id: str
    pid: int
    endpoints: dict[str, _Endpoint] = attrs.Factory(dict)  # by network id
    published: Published | None = None
    dns: bool = False


class Networking:
    """Connects containers to networks. Methods block (the API runs them off the event loop)."""

    def __init__(
        self,
        networks: Networks,
        netlink: Netlink,
        publisher: PortPublisher,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.networks = networks
        self.netlink = netlink
        self.publisher = publisher
        self.loop = loop
        # What it forwards goes to the host's resolvers (from the daemon's namespace: local ones too).
        host = _spec.Host.read()
        self.dns = DnsServer(
            self.lookup, self.reverse, [(server, 53) for server in _spec.upstreams({}, host)]
        )
        self._lock = threading.RLock()
        self._sandboxes: dict[str, _Sandbox] = {}
        networks.users = self.users

    # -- create --------------------------------------------------------------------------------

    def endpoints_for(self, body: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """The endpoints a ``POST /containers/create`` body asks for, checked: by network name,
        its NetworkMode's network first. None for host, none and ``container:`` modes."""
        host_config = body.get("HostConfig") or {}
        mode = network_mode(host_config)
        given = (body.get("NetworkingConfig") or {}).get("EndpointsConfig") or {}
        if not isinstance(given, dict) or not all(isinstance(v, dict | type(None)) for v in given.values()):
            raise InvalidParameter("NetworkingConfig.EndpointsConfig: an object of EndpointSettings")
        given = {"bridge" if name == "default" else name: settings for name, settings in given.items()}
        if mode in _MODES or mode.startswith("container:"):
            if mode.startswith("container:") and not mode.removeprefix("container:"):
                raise InvalidParameter("invalid container format container:<name|id>")
            if any(name not in (mode, "default") for name in given) or host_config.get("Links"):
                if host_config.get("Links"):
                    raise InvalidParameter("conflicting options: links and the network mode " + mode)
                raise InvalidParameter(
                    f"conflicting options: more than one network and the network mode {mode}"
                )
            if mode.startswith("container:"):
                for key in ("PortBindings", "Dns", "DnsSearch", "DnsOptions", "ExtraHosts"):
                    if host_config.get(key):
                        raise InvalidParameter(f"conflicting options: {key} and the network mode container")
                if body.get("Hostname"):
                    raise InvalidParameter("conflicting options: hostname and the network mode")
            return {}
        endpoints: dict[str, dict[str, Any]] = {}
        primary = self.networks.get(mode)
        settings = given.get(mode) or given.get(primary.name) or given.get(primary.id) or {}
        if body.get("MacAddress") and not settings.get("MacAddress"):  # before API 1.44, Config's
            settings = {**settings, "MacAddress": body["MacAddress"]}
        wanted = [(primary, settings)]
        for name, settings in given.items():
            network = self.networks.get(name)
            if network.id != primary.id:
                wanted.append((network, settings or {}))
        for network, settings in wanted:
            if network.driver != "bridge":
                raise InvalidParameter(f"container cannot be connected to network {network.name} and others")
            endpoints[network.name] = self._checked(network, settings, body)
        links = host_config.get("Links") or []
        if links and primary.name != "bridge":
            endpoints[primary.name]["Links"] = [*(endpoints[primary.name]["Links"] or []), *links]
        return endpoints

    def _checked(
        self, network: NetworkRecord, settings: dict[str, Any], body: dict[str, Any]
    ) -> dict[str, Any]:
        """One network's EndpointSettings from a request, as dockerd checks them."""
        endpoint = _empty_endpoint(network)
        ipam = settings.get("IPAMConfig") or {}
        if not isinstance(ipam, dict):
            raise InvalidParameter("EndpointSettings.IPAMConfig: an object")
        for key in ipam:
            if key not in ("IPv4Address", "IPv6Address"):
                raise InvalidParameter(f"EndpointSettings.IPAMConfig.{key} is not supported by pyengine yet")
        user_defined = network.name != "bridge"
        if any(ipam.values()):
            if not user_defined:
                raise InvalidParameter("user specified IP address is supported on user defined networks only")
            for key, version in (("IPv4Address", 4), ("IPv6Address", 6)):
                text = ipam.get(key)
                if not text:
                    continue
                try:
                    address = ipaddress.ip_address(text)
                except ValueError:
                    raise InvalidParameter(f"invalid {key}: {text}") from None
                if address.version != version:
                    raise InvalidParameter(f"invalid {key}: {text}")
                if not any(address in s.network for s in network.subnets()):
                    raise InvalidParameter(
                        f"Invalid address {text}: It does not belong to any of this network's subnets"
                    )
            endpoint["IPAMConfig"] = {k: v for k, v in ipam.items() if v}
        aliases = settings.get("Aliases") or []
        if aliases:
            if not user_defined:
                raise InvalidParameter(
                    "network-scoped alias is supported only for containers in user defined networks"
                )
            endpoint["Aliases"] = _strings(aliases, "Aliases")
        links = settings.get("Links") or []
        if links:
            if not user_defined:
                raise InvalidParameter("links of an endpoint are only for user defined networks")
            endpoint["Links"] = _strings(links, "Links")
        if settings.get("MacAddress"):
            mac = str(settings["MacAddress"])
            parts = mac.split(":")
            if len(parts) != 6 or not all(
                len(p) == 2 and all(c in "0123456789abcdefABCDEF" for c in p) for p in parts
            ):
                raise InvalidParameter(f"invalid MAC address: {mac}")
            endpoint["MacAddress"] = mac.lower()
        if settings.get("DriverOpts"):
            raise InvalidParameter("EndpointSettings.DriverOpts is not supported by pyengine yet")
        return endpoint

    # -- start and exit ------------------------------------------------------------------------

    def users(self, network_id: str) -> list[str]:
        """The running containers connected to the network."""
        with self._lock:
            return [s.container_id for s in self._sandboxes.values() if network_id in s.endpoints]

    def kind(self, host_config: dict[str, Any]) -> str:
        """The network kind ``_spec.translate`` is told (one of ``_spec.NETWORK_KINDS``)."""
        mode = network_mode(host_config)
        if mode in _MODES:
            return mode
        if mode.startswith("container:"):
            return "container"
        return "bridge" if self.networks.get(mode).name == "bridge" else "user"

    def host_gateway(self) -> str | None:
        """The default bridge's address: what ``host-gateway`` stands for in ``--add-host``."""
        default = self.networks.get("bridge")
        return default.ipam[0]["Gateway"] if default.ipam else None

    def attach(self, record: Connected, pid: int) -> None:
        """Connect the container whose process (not started yet) is ``pid`` to its networks, and
        publish its ports; all or nothing. Fills the record's endpoints and ports."""
        if not record.networks:
            record.ports = {}
            return
        sandbox = _Sandbox(record.id, pid)
        with self._lock:
            self._sandboxes[record.id] = sandbox
        try:
            for index, (name, settings) in enumerate(list(record.networks.items())):
                network = self.networks.get(settings.get("NetworkID") or name)
                record.networks[network.name] = settings = {**settings, "NetworkID": network.id}
                self._connect(record, sandbox, network, settings, f"eth{index}", gateway=index == 0)
            self._serve_dns(record, sandbox)
            self._publish(record, sandbox)
            self._write_hosts(record, sandbox)
        except BaseException:
            self.detach(record, delete_links=True)
            raise

    def _connect(
        self,
        record: Connected,
        sandbox: _Sandbox,
        network: NetworkRecord,
        settings: dict[str, Any],
        ifname: str,
        *,
        gateway: bool,
    ) -> None:
        wanted = settings.get("IPAMConfig") or {}
        taken: list[tuple[Addresses, ipaddress.IPv4Address | ipaddress.IPv6Address]] = []
        endpoint_id = secrets.token_hex(32)
        endpoint = _Endpoint(
            network, ifname, f"veth{endpoint_id[:7]}", taken, self._names(record, settings), {}
        )
        for link in settings.get("Links") or []:
            target, _, alias = str(link).partition(":")
            endpoint.links[(alias or target).strip("/").rpartition("/")[2]] = target.strip("/")
        sandbox.endpoints[network.id] = endpoint
        with self.networks.lock:
            for book in self.networks.addresses(network.id):
                version = book.subnet.network.version
                if version == 6 and not network.enable_ipv6:
                    continue
                static = wanted.get("IPv4Address" if version == 4 else "IPv6Address")
                if static:
                    address = ipaddress.ip_address(static)
                    if address not in book.subnet.network:
                        continue
                    book.reserve(address)
                else:
                    address = book.allocate()
                taken.append((book, address))
        ipv4 = next((a for _, a in taken if a.version == 4), None)
        if ipv4 is None:
            raise Forbidden(f"no IPv4 address for the container on network {network.name}")
        interfaces = tuple(
            ipaddress.ip_interface(f"{address}/{book.subnet.network.prefixlen}") for book, address in taken
        )
        gateways = tuple(book.subnet.gateway for book, _ in taken) if gateway and not network.internal else ()
        mac = settings.get("MacAddress") or mac_of(ipv4)
        self.netlink.add_veth(
            endpoint.host_veth,
            sandbox.pid,
            network.bridge,
            Attachment(ifname, mac, interfaces, gateways, network.mtu),
        )
        v4 = next(b for b, a in taken if a == ipv4)
        v6 = next(((b, a) for b, a in taken if a.version == 6), None)
        settings.update(
            EndpointID=endpoint_id,
            Gateway=str(v4.subnet.gateway),
            IPAddress=str(ipv4),
            IPPrefixLen=v4.subnet.network.prefixlen,
            MacAddress=mac,
            IPv6Gateway=str(v6[0].subnet.gateway) if v6 else "",
            GlobalIPv6Address=str(v6[1]) if v6 else "",
            GlobalIPv6PrefixLen=v6[0].subnet.network.prefixlen if v6 else 0,
            DNSNames=endpoint.names if network.name != "bridge" else [],
        )

    def restore(self, record: Connected, pid: int) -> None:
        """Take back a container a previous daemon left running: its addresses, its embedded DNS
        server, its published ports (on the host ports it had) and its endpoints' names."""
        sandbox = _Sandbox(record.id, pid)
        with self._lock:
            self._sandboxes[record.id] = sandbox
        try:
            for index, (name, settings) in enumerate(record.networks.items()):
                network = self.networks.get(settings.get("NetworkID") or name)
                taken = []
                with self.networks.lock:
                    for book in self.networks.addresses(network.id):
                        for key in ("IPAddress", "GlobalIPv6Address"):
                            if (
                                settings.get(key)
                                and ipaddress.ip_address(settings[key]) in book.subnet.network
                            ):
                                book.reserve(ipaddress.ip_address(settings[key]))
                                taken.append((book, ipaddress.ip_address(settings[key])))
                endpoint_id = settings.get("EndpointID") or secrets.token_hex(32)
                sandbox.endpoints[network.id] = _Endpoint(
                    network, f"eth{index}", f"veth{endpoint_id[:7]}", taken, self._names(record, settings), {}
                )
            self._serve_dns(record, sandbox)
            if sandbox.endpoints:
                held = {
                    (key, b.get("HostIp", "")): int(b["HostPort"])
                    for key, bindings in record.ports.items()
                    for b in bindings or []
                }
                self._publish(record, sandbox, held)
        except Exception:
            log.exception("restoring the network of container %s failed", record.id[:12])

    def connect(
        self, record: Connected, *, network: NetworkRecord, settings: dict[str, Any], pid: int
    ) -> None:
        """Connect the container to one more network (``pid``: its process, 0 if it is not
        running: then only its record says so, for its next start)."""
        mode = network_mode(record.host_config)
        if mode in _MODES or mode.startswith("container:"):
            raise Forbidden(
                "container sharing network namespace with another container or host cannot be connected to "
                "any other network"
            )
        if network.driver != "bridge":
            raise Forbidden(
                f"container cannot be disconnected from host network or connected to {network.name}"
            )
        if network.name in record.networks:
            raise Forbidden(f"endpoint with name {record.name} already exists in network {network.name}")
        settings = self._checked(network, settings, {})
        if not pid:
            record.networks[network.name] = settings
            return
        with self._lock:
            sandbox = self._sandboxes.setdefault(record.id, _Sandbox(record.id, pid))
        used = {e.ifname for e in sandbox.endpoints.values()}
        ifname = next(f"eth{i}" for i in range(len(used) + 1) if f"eth{i}" not in used)
        try:
            self._connect(record, sandbox, network, settings, ifname, gateway=not sandbox.endpoints)
            if not sandbox.dns:
                self._serve_dns(record, sandbox)
        except BaseException:
            self._drop(sandbox, network.id, delete_link=True)
            raise
        record.networks[network.name] = settings
        self._write_hosts(record, sandbox)

    def disconnect(self, record: Connected, *, network: NetworkRecord, pid: int) -> None:
        if network.name not in record.networks:
            raise Forbidden(f"container {record.id} is not connected to network {network.name}")
        with self._lock:
            sandbox = self._sandboxes.get(record.id)
        if sandbox is not None:
            self._drop(sandbox, network.id, delete_link=True)
            self._write_hosts(record, sandbox)
        del record.networks[network.name]

    def _drop(self, sandbox: _Sandbox, network_id: str, *, delete_link: bool) -> None:
        endpoint = sandbox.endpoints.pop(network_id, None)
        if endpoint is None:
            return
        with self.networks.lock:
            for book, address in endpoint.addresses:
                book.release(address)
        if delete_link:
            self.netlink.delete(endpoint.host_veth)

    def _write_hosts(self, record: Connected, sandbox: _Sandbox) -> None:
        """Its /etc/hosts with its addresses (rewritten in place: the file is bind-mounted), and
        on the default bridge its links' (dockerd's legacy links)."""
        path = Path(record.directory) / "hosts"
        if not path.exists():
            return  # the container mounts one of its own
        hostname = record.config.get("Hostname") or record.id[:12]
        own = [f"{a}\t{hostname}" for e in sandbox.endpoints.values() for _, a in e.addresses]
        for link in record.host_config.get("Links") or []:
            target, _, alias = str(link).partition(":")
            name = target.strip("/")
            address = self._address_of(name)
            if address is not None:
                alias = alias.strip("/").rpartition("/")[2]
                own.append(f"{address}\t{alias} {name}" if alias and alias != name else f"{address}\t{name}")
        with path.open("r+") as hosts:
            hosts.truncate()
            hosts.write(_spec.hosts_file(record.host_config, self.host_gateway(), own))

    def _address_of(self, name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
        """A running container's address on the default bridge, by its name."""
        bridge = self.networks.get("bridge").id
        for endpoint in self._members(bridge):
            if name in endpoint.names:
                return next((a for _, a in endpoint.addresses if a.version == 4), None)
        return None

    def _names(self, record: Connected, settings: dict[str, Any]) -> list[str]:
        return [record.name, *(settings.get("Aliases") or []), record.id[:12]]

    def _serve_dns(self, record: Connected, sandbox: _Sandbox) -> None:
        """The embedded DNS server for a container on a user-defined network: its sockets inside
        the container's namespace, the redirect of 127.0.0.11:53 to them."""
        if all(e.network.name == "bridge" for e in sandbox.endpoints.values()):
            return

        def sockets() -> tuple[socket.socket, socket.socket]:
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                udp.bind((DNS_ADDRESS, 0))
                tcp.bind((DNS_ADDRESS, 0))
                tcp.listen(64)
                redirect_dns(Nftables(), udp.getsockname()[1], tcp.getsockname()[1])
            except BaseException:
                udp.close()
                tcp.close()
                raise
            return udp, tcp

        udp, tcp = self.netlink.inside(sandbox.pid, sockets)
        servers = [(server, 53) for server in record.host_config.get("Dns") or []]
        asyncio.run_coroutine_threadsafe(
            self.dns.serve(record.id, udp, tcp, servers or None), self.loop
        ).result()
        sandbox.dns = True

    def _publish(
        self, record: Connected, sandbox: _Sandbox, held: dict[tuple[str, str], int] | None = None
    ) -> None:
        """Publish its ports on its first network; ``held``: the host ports a previous daemon gave
        them, by port/proto and host address."""
        primary = next(iter(sandbox.endpoints.values()))
        bindings = bindings_of(record.host_config, exposed_ports(record.config), _default_ip(primary.network))
        if held:
            bindings = [
                attrs.evolve(
                    b,
                    host_port=held.get(
                        (f"{b.container_port}/{b.proto}", b.host_ip or "0.0.0.0"), b.host_port
                    ),
                )
                for b in bindings
            ]
        if not bindings:
            record.ports = dict.fromkeys(_exposed_view(record))
            return
        ipv4 = next(a for _, a in primary.addresses if a.version == 4)
        ipv6 = next((a for _, a in primary.addresses if a.version == 6), None)
        assert isinstance(ipv4, ipaddress.IPv4Address)
        assert ipv6 is None or isinstance(ipv6, ipaddress.IPv6Address)
        sandbox.published = self.publisher.publish(record.name, bindings, ipv4, ipv6)
        record.ports = dict.fromkeys(_exposed_view(record)) | sandbox.published.view

    def detach(self, record: Connected, *, delete_links: bool = False) -> None:
        """Give back what the container had while it ran (its process has exited: the kernel takes
        its veths away with its namespace; ``delete_links`` deletes them now)."""
        with self._lock:
            sandbox = self._sandboxes.pop(record.id, None)
        if sandbox is None:
            return
        if sandbox.published is not None:
            self.publisher.unpublish(sandbox.published)
        if sandbox.dns:
            self.loop.call_soon_threadsafe(self.dns.stop, record.id)
        for network_id in list(sandbox.endpoints):
            self._drop(sandbox, network_id, delete_link=delete_links)
        for settings in record.networks.values():
            address = settings.get("IPAddress")
            if address and settings.get("MacAddress") == mac_of(ipaddress.IPv4Address(address)):
                settings["MacAddress"] = ""  # made from its address; one asked for (--mac-address) stays
            settings.update(
                EndpointID="", Gateway="", IPAddress="", IPPrefixLen=0, IPv6Gateway="",
                GlobalIPv6Address="", GlobalIPv6PrefixLen=0,
            )  # fmt: skip
        record.ports = {}

    def close(self) -> None:
        """At the daemon's end: its DNS server stops; published ports stay in the table (for the
        containers left running) and their sockets close with the daemon."""
        asyncio.run_coroutine_threadsafe(self.dns.close(), self.loop).result()

    # -- the embedded DNS server's questions -----------------------------------------------------

    def lookup(self, key: str, name: str) -> Answer | None:
        """The addresses ``name`` has for the container ``key`` on its user-defined networks (its
        links' aliases, the names and aliases of containers sharing a network, ``name.network``);
        None when it is none of the engine's."""
        wanted = name.rstrip(".").lower()
        with self._lock:
            asking = self._sandboxes.get(key)
            if asking is None:
                return None
            for network_id, own in asking.endpoints.items():
                if own.network.name == "bridge":
                    continue
                bare = wanted
                suffix = f".{own.network.name.lower()}"
                if wanted.endswith(suffix):
                    bare = wanted.removesuffix(suffix)
                target = own.links.get(bare)
                found: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
                for endpoint in self._members(network_id):
                    names = [n.lower() for n in endpoint.names]
                    if bare in names or (target is not None and target.lower() in names):
                        found += [address for _, address in endpoint.addresses]
                if found:
                    return Answer(
                        [a for a in found if isinstance(a, ipaddress.IPv4Address)],
                        [a for a in found if isinstance(a, ipaddress.IPv6Address)],
                    )
        return None

    def reverse(self, key: str, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
        """The name of the container at ``address`` on a network the container ``key`` is on."""
        with self._lock:
            asking = self._sandboxes.get(key)
            if asking is None:
                return None
            for network_id, own in asking.endpoints.items():
                for endpoint in self._members(network_id):
                    if any(a == address for _, a in endpoint.addresses):
                        return f"{endpoint.names[0]}.{own.network.name}"
        return None

    def _members(self, network_id: str) -> Iterator[_Endpoint]:
        for sandbox in self._sandboxes.values():
            endpoint = sandbox.endpoints.get(network_id)
            if endpoint is not None:
                yield endpoint


def _default_ip(network: NetworkRecord) -> str:
    ip = network.host_binding
    return "" if ip in ("", "0.0.0.0") else ip


def _exposed_view(record: Connected) -> list[str]:
    return [f"{port}/{proto}" for port, proto in exposed_ports(record.config)]


def _strings(value: object, field: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidParameter(f"EndpointSettings.{field}: a list of strings, not {value!r}")
    return value
