"""Address management for bridge networks: choosing a subnet that collides with nothing, and the
addresses of a subnet's endpoints."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator, Sequence
from typing import TypeAlias

import attrs

from pyengine._errors import Forbidden, InvalidParameter

__all__ = ["DEFAULT_POOLS", "AddressPool", "Addresses", "Subnet", "free_subnet", "parse_pools"]

Network: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network
Address: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address


@attrs.frozen
class AddressPool:
    """A range that networks' subnets are cut from, each ``size`` bits long (daemon.json's
    ``default-address-pools`` entries: ``{"base": "172.80.0.0/16", "size": 24}``)."""

    base: Network
    size: int

    def subnets(self) -> Iterator[Network]:
        return self.base.subnets(new_prefix=self.size)


#: dockerd's default pools: 172.17.0.0/16 to 172.31.0.0/16, then 192.168.0.0/16 in /20s.
DEFAULT_POOLS = (
    AddressPool(ipaddress.ip_network("172.17.0.0/16"), 16),
    AddressPool(ipaddress.ip_network("172.18.0.0/15"), 16),
    AddressPool(ipaddress.ip_network("172.20.0.0/14"), 16),
    AddressPool(ipaddress.ip_network("172.24.0.0/14"), 16),
    AddressPool(ipaddress.ip_network("172.28.0.0/14"), 16),
    AddressPool(ipaddress.ip_network("192.168.0.0/16"), 20),
)


def parse_pools(entries: object) -> tuple[AddressPool, ...]:
    """daemon.json's ``default-address-pools``, checked."""
    if not isinstance(entries, list):
        raise ValueError(f"default-address-pools: a list of {{base, size}} objects, not {entries!r}")
    pools = []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("base"), str):
            raise ValueError(f"default-address-pools: {entry!r} is not a {{base, size}} object")
        try:
            base = ipaddress.ip_network(entry["base"])
        except ValueError as exc:
            raise ValueError(f"default-address-pools: {exc}") from None
        size = entry.get("size")
        if not isinstance(size, int) or not base.prefixlen <= size <= base.max_prefixlen - 2:
            raise ValueError(
                f"default-address-pools: size {size!r} of {base} must be between {base.prefixlen} and "
                f"{base.max_prefixlen - 2}"
            )
        pools.append(AddressPool(base, size))
    return tuple(pools)


def free_subnet(pools: Sequence[AddressPool], taken: Iterable[Network], version: int = 4) -> Network:
    """The first subnet of ``pools`` that overlaps none of ``taken`` (the host's routes and
    addresses, the other networks' subnets), as dockerd chooses one."""
    taken = list(taken)
    for pool in pools:
        if pool.base.version != version:
            continue
        for subnet in pool.subnets():
            if not any(subnet.overlaps(other) for other in taken if other.version == version):
                return subnet
    raise Forbidden(
        f"could not find an available, non-overlapping IPv{version} address pool among the defaults to "
        "assign to the network"
    )


@attrs.define
class Subnet:
    """One subnet of a network (an IPAM Config entry): its gateway, and the range its containers'
    addresses are given from."""

    network: Network
    gateway: Address
    ip_range: Network

    @classmethod
    def parse(cls, entry: dict[str, str], default: Network | None = None) -> Subnet:
        """An IPAM Config entry (Subnet, IPRange, Gateway), checked with dockerd's messages; a
        missing Subnet is ``default``."""
        text = entry.get("Subnet") or ""
        if text:
            try:
                network = ipaddress.ip_network(text, strict=False)
            except ValueError:
                raise InvalidParameter(f"invalid CIDR address: {text}") from None
        elif default is not None:
            network = default
        else:
            raise InvalidParameter("invalid IPAM config: a Subnet is required with an IPRange or a Gateway")
        ip_range = network
        if entry.get("IPRange"):
            try:
                ip_range = ipaddress.ip_network(entry["IPRange"], strict=False)
            except ValueError:
                raise InvalidParameter(f"invalid CIDR address: {entry['IPRange']}") from None
            if ip_range.version != network.version or not ip_range.subnet_of(network):  # type: ignore[arg-type]
                raise Forbidden(f"no matching subnet for range {entry['IPRange']}")
        if entry.get("Gateway"):
            try:
                gateway = ipaddress.ip_address(entry["Gateway"])
            except ValueError:
                raise InvalidParameter(f"invalid gateway address {entry['Gateway']}") from None
            if gateway not in network:
                raise Forbidden(f"no matching subnet for gateway {entry['Gateway']}")
        else:
            gateway = network.network_address + 1
        if network.num_addresses < 4:
            raise InvalidParameter(f"invalid subnet {network}: too small for a gateway and a container")
        return cls(network, gateway, ip_range)

    def to_api(self) -> dict[str, str]:
        entry = {"Subnet": str(self.network), "Gateway": str(self.gateway)}
        if self.ip_range != self.network:
            entry["IPRange"] = str(self.ip_range)
        return entry


class Addresses:
    """The addresses given out in one subnet: serially, as dockerd, so that one just given back is
    not handed out again at once."""

    def __init__(self, subnet: Subnet) -> None:
        self.subnet = subnet
        self._used: set[Address] = {subnet.gateway}
        self._next = 0

    def _usable(self, address: Address) -> bool:
        network = self.subnet.network
        if address == network.network_address:
            return False
        return not (network.version == 4 and address == network.broadcast_address)

    def reserve(self, address: Address) -> None:
        """Take ``address`` (a static ``--ip``, or one a live container has)."""
        if address not in self.subnet.network:
            raise InvalidParameter(
                f"Invalid address {address}: It does not belong to any of this network's subnets"
            )
        if address in self._used or not self._usable(address):
            raise InvalidParameter(f"Address already in use: {address}")
        self._used.add(address)

    def allocate(self) -> Address:
        ip_range = self.subnet.ip_range
        count = ip_range.num_addresses
        for step in range(count):
            offset = (self._next + step) % count
            address = ip_range.network_address + offset
            if address not in self._used and self._usable(address):
                self._used.add(address)
                self._next = offset + 1
                return address
        raise Forbidden(
            f"no available IPv{ip_range.version} addresses on this network's address pools: {ip_range}"
        )

    def release(self, address: Address) -> None:
        if address != self.subnet.gateway:
            self._used.discard(address)
