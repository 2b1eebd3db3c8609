"""The networks' address management (pyengine._network.ipam) at its seam: choosing a subnet that
collides with nothing, parsing IPAM entries with dockerd's messages, handing out addresses."""

from __future__ import annotations

import ipaddress
import re

import pytest

from pyengine._errors import Forbidden, InvalidParameter
from pyengine._network.ipam import DEFAULT_POOLS, Addresses, Subnet, free_subnet, parse_pools


def net(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(text)


def test_the_first_free_subnet_of_the_pools() -> None:
    assert free_subnet(DEFAULT_POOLS, []) == net("172.17.0.0/16")
    # the host's routes and the other networks' subnets are skipped, whatever their size
    taken = [net("172.17.5.0/24"), net("172.18.0.0/15"), net("10.0.0.0/8")]
    assert free_subnet(DEFAULT_POOLS, taken) == net("172.20.0.0/16")
    everything = [net("172.16.0.0/12"), net("192.168.0.0/17")]
    assert free_subnet(DEFAULT_POOLS, everything) == net("192.168.128.0/20")
    with pytest.raises(Forbidden, match="could not find an available, non-overlapping IPv4 address pool"):
        free_subnet(DEFAULT_POOLS, [net("172.16.0.0/12"), net("192.168.0.0/16")])
    pools = parse_pools([{"base": "10.10.0.0/16", "size": 24}])
    assert free_subnet(pools, [net("10.10.0.0/24")]) == net("10.10.1.0/24")


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ("10.0.0.0/8", "a list of {base, size} objects"),
        ([{"base": "10.0.0.0/33", "size": 24}], "default-address-pools"),
        ([{"base": "10.0.0.0/16", "size": 8}], "size 8 of 10.0.0.0/16 must be between 16 and 30"),
        ([{"size": 24}], "is not a {base, size} object"),
    ],
)
def test_pools_are_checked(entries: object, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_pools(entries)


def test_ipam_entries_with_dockerds_messages() -> None:
    entry = Subnet.parse({"Subnet": "10.5.0.0/16", "IPRange": "10.5.1.0/24", "Gateway": "10.5.0.254"})
    assert entry.to_api() == {"Subnet": "10.5.0.0/16", "Gateway": "10.5.0.254", "IPRange": "10.5.1.0/24"}
    assert Subnet.parse({"Subnet": "10.6.0.0/24"}).gateway == ipaddress.ip_address("10.6.0.1")
    for bad, error, message in [
        ({"Subnet": "10.7.0.0/33"}, InvalidParameter, "invalid CIDR address: 10.7.0.0/33"),
        (
            {"Subnet": "10.7.0.0/24", "Gateway": "10.8.0.1"},
            Forbidden,
            "no matching subnet for gateway 10.8.0.1",
        ),
        (
            {"Subnet": "10.7.0.0/24", "IPRange": "10.9.0.0/24"},
            Forbidden,
            "no matching subnet for range 10.9.0.0/24",
        ),
        ({"Subnet": "10.7.0.0/24", "Gateway": "x"}, InvalidParameter, "invalid gateway address x"),
        ({"Gateway": "10.7.0.1"}, InvalidParameter, "a Subnet is required"),
    ]:
        with pytest.raises(error, match=re.escape(message)):
            Subnet.parse(bad)


def test_addresses_are_handed_out_serially_in_the_range() -> None:
    book = Addresses(Subnet.parse({"Subnet": "10.5.0.0/29"}))
    first, second = book.allocate(), book.allocate()
    assert (str(first), str(second)) == ("10.5.0.2", "10.5.0.3")  # .0 the network, .1 the gateway
    book.release(first)
    assert str(book.allocate()) == "10.5.0.4"  # one just given back is not handed out again at once
    book.reserve(ipaddress.ip_address("10.5.0.6"))
    with pytest.raises(InvalidParameter, match=re.escape("Address already in use: 10.5.0.6")):
        book.reserve(ipaddress.ip_address("10.5.0.6"))
    with pytest.raises(InvalidParameter, match="does not belong to any of this network's subnets"):
        book.reserve(ipaddress.ip_address("10.6.0.1"))
    assert str(book.allocate()) == "10.5.0.5"
    assert str(book.allocate()) == "10.5.0.2"  # round again; .7 is the broadcast address
    with pytest.raises(Forbidden, match="no available IPv4 addresses"):
        book.allocate()
    ranged = Addresses(Subnet.parse({"Subnet": "10.5.0.0/24", "IPRange": "10.5.0.128/25"}))
    assert str(ranged.allocate()) == "10.5.0.128"
