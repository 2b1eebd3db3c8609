"""Networks: dockerd's network objects, kept in ``<data root>/networks/<id>.json``.

Three are built in, as in dockerd: ``bridge`` (the default, on the Linux bridge the daemon is told,
``pyengine0`` unless configured), ``host`` and ``none``. Others are user-defined bridge networks,
each on a Linux bridge ``br-<first 12 digits of its id>`` that exists as long as the network does
while the daemon runs. Their firewall rules live in the engine's own nftables table.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import secrets
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import attrs

from pyengine._errors import Conflict, Forbidden, InvalidParameter, NotFound
from pyengine._images import labels_match, until_filter
from pyengine._network.ipam import Addresses, AddressPool, Subnet, free_subnet
from pyengine._network.netlink import Interface, Netlink
from pyengine._network.nft import EngineTable, enable_route_localnet
from pyengine._times import rfc3339, unix

__all__ = ["BRIDGE_OPTIONS", "NetworkRecord", "Networks"]

log = logging.getLogger("pyengine.network")

DEFAULT_MTU = 1500
#: The bridge driver's options that this engine does (the rest are refused by name).
BRIDGE_OPTIONS = {
    "com.docker.network.bridge.name",
    "com.docker.network.bridge.enable_icc",
    "com.docker.network.bridge.enable_ip_masquerade",
    "com.docker.network.bridge.host_binding_ipv4",
    "com.docker.network.driver.mtu",
}
_BUILT_IN = ("bridge", "host", "none")
_DRIVERS = {"bridge": "bridge", "host": "host", "none": "null"}


@attrs.define
class NetworkRecord:
    """A network as the engine keeps it; ``to_api`` gives dockerd's shape of it."""

    id: str
    name: str
    driver: str  # bridge, host, null
    created: str
    enable_ipv6: bool = False
    ipam: list[dict[str, str]] = attrs.Factory(list)  # IPAM.Config: Subnet, Gateway, IPRange
    ipam_options: dict[str, str] = attrs.Factory(dict)
    internal: bool = False
    attachable: bool = False
    options: dict[str, str] = attrs.Factory(dict)
    labels: dict[str, str] = attrs.Factory(dict)

    @property
    def built_in(self) -> bool:
        return self.name in _BUILT_IN

    @property
    def bridge(self) -> str:
        """Its Linux bridge's name (bridge networks only)."""
        return self.options.get("com.docker.network.bridge.name") or f"br-{self.id[:12]}"

    @property
    def mtu(self) -> int:
        return int(self.options.get("com.docker.network.driver.mtu") or DEFAULT_MTU)

    @property
    def icc(self) -> bool:
        return self.options.get("com.docker.network.bridge.enable_icc", "true") == "true"

    @property
    def masquerade(self) -> bool:
        return self.options.get("com.docker.network.bridge.enable_ip_masquerade", "true") == "true"

    @property
    def host_binding(self) -> str:
        """The host address its published ports bind when a port names none."""
        return self.options.get("com.docker.network.bridge.host_binding_ipv4") or ""

    def subnets(self) -> list[Subnet]:
        return [Subnet.parse(entry) for entry in self.ipam]

    def to_json(self) -> dict[str, Any]:
        return attrs.asdict(self)

    def to_api(self, containers: dict[str, dict[str, str]] | None = None) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "Name": self.name,
            "Id": self.id,
            "Created": self.created,
            "Scope": "local",
            "Driver": self.driver,
            "EnableIPv6": self.enable_ipv6,
            "IPAM": {"Driver": "default", "Options": self.ipam_options or None, "Config": self.ipam},
            "Internal": self.internal,
            "Attachable": self.attachable,
            "Ingress": False,
            "ConfigFrom": {"Network": ""},
            "ConfigOnly": False,
            "Options": self.options,
            "Labels": self.labels,
        }
        if containers is not None:
            answer["Containers"] = containers
        return answer


class Networks:
    """The engine's networks: their records, their Linux bridges and firewall rules, and the
    addresses given out on each. Methods block; one lock keeps records and addresses consistent."""

    def __init__(
        self,
        root: Path,
        netlink: Netlink,
        table: EngineTable,
        *,
        default_bridge: str,
        bip: Interface | None,
        pools: tuple[AddressPool, ...],
    ) -> None:
        self.root = root
        self.netlink = netlink
        self.table = table
        self.default_bridge = default_bridge
        self.bip = bip
        self.pools = pools
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._records: dict[str, NetworkRecord] = {}
        self._addresses: dict[str, list[Addresses]] = {}  # network id -> per subnet
        #: Whether a network has endpoints: asked of the containers (set by the daemon).
        self.users: Callable[[str], list[str]] = lambda network_id: []
        for path in sorted(self.root.glob("*.json")):
            record = NetworkRecord(**json.loads(path.read_text()))
            self._records[record.id] = record

    # -- the daemon's start and end ----------------------------------------------------------------

    def start(self) -> None:
        """Make the built-in networks if new, and every bridge network's Linux bridge and rules."""
        for name in _BUILT_IN:
            if self._by_name(name) is None:
                self._save(
                    NetworkRecord(
                        id=secrets.token_hex(32), name=name, driver=_DRIVERS[name], created=rfc3339()
                    )
                )
        self.table.create()
        default = self.get("bridge")
        wanted = self._default_subnet(default)
        default.ipam = [wanted.to_api()]
        default.options = {
            "com.docker.network.bridge.default_bridge": "true",
            "com.docker.network.bridge.enable_icc": "true",
            "com.docker.network.bridge.enable_ip_masquerade": "true",
            "com.docker.network.bridge.host_binding_ipv4": "0.0.0.0",
            "com.docker.network.bridge.name": self.default_bridge,
            "com.docker.network.driver.mtu": str(DEFAULT_MTU),
        }
        self._save(default)
        for record in self._records.values():
            if record.driver == "bridge":
                self._make_bridge(record)

    def _default_subnet(self, default: NetworkRecord) -> Subnet:
        """The default bridge's subnet: ``--bip``'s, else the one it had (if nothing else took it
        meanwhile), else the first free one of the pools."""
        if self.bip is not None:
            return Subnet(self.bip.network, self.bip.ip, self.bip.network)
        taken = self._taken(exclude=default.bridge)
        if default.ipam:
            kept = Subnet.parse(default.ipam[0])
            if not any(
                kept.network.overlaps(other) for other in taken if other.version == kept.network.version
            ):
                return kept
        return Subnet.parse({}, default=free_subnet(self.pools, taken))

    def _taken(self, exclude: str = "") -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        """What a new subnet may not overlap: the host's routes and addresses (but those of the
        bridge ``exclude``), and every bridge network's subnets."""
        ours = {
            s.network
            for r in self._records.values()
            if r.driver == "bridge" and r.ipam and r.bridge != exclude
            for s in r.subnets()
        }
        own = set()
        if exclude:
            own = {s.network for r in self._records.values() if r.bridge == exclude for s in r.subnets()}
        return [n for n in self.netlink.taken_networks() if n not in own] + list(ours)

    def _make_bridge(self, record: NetworkRecord) -> None:
        subnets = record.subnets()
        addresses = [ipaddress.ip_interface(f"{s.gateway}/{s.network.prefixlen}") for s in subnets]
        self.netlink.make_bridge(record.bridge, addresses, record.mtu)
        enable_route_localnet(record.bridge)  # this host's connections to 127.0.0.1's published ports
        self.table.add_bridge(
            record.bridge,
            [s.network for s in subnets],
            internal=record.internal,
            icc=record.icc,
            masquerade=record.masquerade,
        )
        self._addresses[record.id] = [Addresses(s) for s in subnets]

    def stop(self, keep: Iterable[str]) -> None:
        """At a clean shutdown: remove the bridges and the table, but those of networks that
        containers left running (``keep``: network ids) still use."""
        kept = set(keep)
        for record in self._records.values():
            if record.driver == "bridge" and record.id not in kept:
                self.netlink.delete(record.bridge)
                self.table.remove_bridge(record.bridge)
        if not kept:
            self.table.delete()
        else:
            log.info(
                "keeping the bridges and firewall rules of %d networks in use by running containers",
                len(kept),
            )

    # -- records -----------------------------------------------------------------------------------

    def _save(self, record: NetworkRecord) -> None:
        tmp = self.root / f".{record.id}.json.tmp"
        tmp.write_text(json.dumps(record.to_json()))
        tmp.replace(self.root / f"{record.id}.json")
        self._records[record.id] = record

    def _by_name(self, name: str) -> NetworkRecord | None:
        return next((r for r in self._records.values() if r.name == name), None)

    def get(self, name: str) -> NetworkRecord:
        """The network ``name`` names: its full id, its name, or an id prefix (dockerd's order)."""
        with self._lock:
            if name in self._records:
                return self._records[name]
            found = self._by_name(name)
            if found is not None:
                return found
            matches = [r for r in self._records.values() if name and r.id.startswith(name)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise InvalidParameter(
                f"network {name} is ambiguous ({len(matches)} matches found based on ID prefix)"
            )
        raise NotFound(f"network {name} not found")

    def records(self) -> list[NetworkRecord]:
        with self._lock:
            return sorted(self._records.values(), key=lambda r: r.created)

    def matching(self, filters: dict[str, list[str]]) -> list[NetworkRecord]:
        for key in filters:
            if key not in ("driver", "id", "label", "name", "scope", "type", "dangling"):
                raise InvalidParameter(f"invalid filter '{key}'")
        found = []
        for record in self.records():
            if "driver" in filters and record.driver not in filters["driver"]:
                continue
            if "id" in filters and not any(record.id.startswith(v) for v in filters["id"]):
                continue
            if "name" in filters and not any(v in record.name for v in filters["name"]):
                continue
            if "scope" in filters and "local" not in filters["scope"]:
                continue
            if "type" in filters:
                kind = "builtin" if record.built_in else "custom"
                for value in filters["type"]:
                    if value not in ("builtin", "custom"):
                        raise InvalidParameter(f"invalid filter: 'type'='{value}'")
                if kind not in filters["type"]:
                    continue
            if not labels_match(record.labels, filters):
                continue
            if "dangling" in filters:
                dangling = _truth(filters["dangling"], "dangling")
                if dangling != (not record.built_in and not self.users(record.id)):
                    continue
            found.append(record)
        return found

    # -- create, remove ----------------------------------------------------------------------------

    def create(self, body: dict[str, Any]) -> NetworkRecord:
        """A user-defined network from a ``POST /networks/create`` body (dockerd's checks)."""
        name = body.get("Name")
        if not isinstance(name, str) or not name:
            raise InvalidParameter("network name is required" if not name else f"invalid name: {name!r}")
        driver = body.get("Driver") or "bridge"
        if driver in ("host", "null"):
            raise Forbidden(
                f'only one instance of "{"host" if driver == "host" else "none"}" network is allowed'
            )
        if driver != "bridge":
            raise NotFound(f'plugin "{driver}" not found')
        for key in ("Scope", "ConfigOnly", "Ingress"):
            value = body.get(key)
            if value not in (None, "", False, "local"):
                raise InvalidParameter(f"{key}: {value!r} is not supported by pyengine yet")
        if body.get("ConfigFrom"):
            raise InvalidParameter("ConfigFrom is not supported by pyengine yet")
        options = body.get("Options") or {}
        if not isinstance(options, dict) or not all(isinstance(v, str) for v in options.values()):
            raise InvalidParameter("Options: an object of strings")
        for key in options:
            if key not in BRIDGE_OPTIONS - {"com.docker.network.bridge.default_bridge"}:
                raise InvalidParameter(f"Options: {key} is not supported by pyengine yet")
        if "com.docker.network.driver.mtu" in options:
            mtu = options["com.docker.network.driver.mtu"]
            if not mtu.isdigit() or not 68 <= int(mtu) <= 65535:
                raise InvalidParameter(f"invalid MTU number: {mtu}")
        bridge_name = options.get("com.docker.network.bridge.name", "")
        if bridge_name and (len(bridge_name) > 15 or "/" in bridge_name or " " in bridge_name):
            raise InvalidParameter(f"invalid bridge name: {bridge_name}")
        ipam = body.get("IPAM") or {}
        if (ipam.get("Driver") or "default") != "default":
            raise NotFound(f'plugin "{ipam["Driver"]}" not found')
        entries = ipam.get("Config") or []
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise InvalidParameter("IPAM.Config: a list of objects")
        if any(e.get("AuxiliaryAddresses") for e in entries):
            raise InvalidParameter("IPAM.Config: AuxiliaryAddresses is not supported by pyengine yet")
        ipv6 = bool(body.get("EnableIPv6"))
        labels = body.get("Labels") or {}
        with self._lock:
            if self._by_name(name) is not None:
                raise Conflict(f"network with name {name} already exists")
            if bridge_name and any(r.bridge == bridge_name for r in self._records.values()):
                raise Conflict(f"bridge name {bridge_name} is already used by another network")
            subnets = [Subnet.parse(e) for e in entries]
            taken = self._taken()
            for subnet in subnets:
                for other in taken:
                    if other.version == subnet.network.version and subnet.network.overlaps(other):
                        raise Forbidden("Pool overlaps with other one on this address space")
                taken.append(subnet.network)
            if not any(s.network.version == 4 for s in subnets):
                subnets.insert(0, Subnet.parse({}, default=free_subnet(self.pools, taken)))
            if ipv6 and not any(s.network.version == 6 for s in subnets):
                raise InvalidParameter(
                    "EnableIPv6: give an IPv6 subnet (--subnet): pyengine has no IPv6 pool"
                )
            if not ipv6 and any(s.network.version == 6 for s in subnets):
                raise InvalidParameter("an IPv6 subnet needs EnableIPv6 (--ipv6)")
            record = NetworkRecord(
                id=secrets.token_hex(32),
                name=name,
                driver="bridge",
                created=rfc3339(),
                enable_ipv6=ipv6,
                ipam=[s.to_api() for s in subnets],
                ipam_options=ipam.get("Options") or {},
                internal=bool(body.get("Internal")),
                attachable=bool(body.get("Attachable")),
                options=options,
                labels=labels,
            )
            if self.netlink.exists(record.bridge):
                raise Conflict(f"bridge {record.bridge} exists on this host already")
            try:
                self._make_bridge(record)
                self._save(record)
            except BaseException:
                self._addresses.pop(record.id, None)
                self.netlink.delete(record.bridge)
                with contextlib.suppress(Exception):
                    self.table.remove_bridge(record.bridge)
                (self.root / f"{record.id}.json").unlink(missing_ok=True)
                self._records.pop(record.id, None)
                raise
        return record

    def remove(self, name: str) -> NetworkRecord:
        with self._lock:
            record = self.get(name)
            if record.built_in:
                raise Forbidden(f"{record.name} is a pre-defined network and cannot be removed")
            if self.users(record.id):
                raise Forbidden(
                    f"error while removing network: network {record.name} id {record.id} has active endpoints"
                )
            self.netlink.delete(record.bridge)
            self.table.remove_bridge(record.bridge)
            (self.root / f"{record.id}.json").unlink(missing_ok=True)
            del self._records[record.id]
            self._addresses.pop(record.id, None)
        return record

    def prune(self, filters: dict[str, list[str]]) -> list[NetworkRecord]:
        for key in filters:
            if key not in ("until", "label", "label!"):
                raise InvalidParameter(f"invalid filter '{key}'")
        before = until_filter(filters)
        removed = []
        for record in self.records():
            if record.built_in or self.users(record.id) or not labels_match(record.labels, filters):
                continue
            if before is not None and unix(record.created) * 10**9 >= before:
                continue
            with contextlib.suppress(NotFound, Forbidden):
                removed.append(self.remove(record.id))
        return removed

    # -- addresses ---------------------------------------------------------------------------------

    def addresses(self, network_id: str) -> list[Addresses]:
        """The address books of the network's subnets (empty but for bridge networks)."""
        return self._addresses.get(network_id, [])

    @property
    def lock(self) -> threading.RLock:
        return self._lock


def _truth(values: list[str], name: str) -> bool:
    value = values[-1].lower()
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise InvalidParameter(f"invalid filter '{name}={values[-1]}'")
