"""Links, addresses and routes through netlink (pyroute2), on the host and inside containers'
network namespaces.

A container's namespace is entered by one thread of the engine's own, which ``setns()``s into it for
the time of one job and back: a network namespace is per thread, so the rest of the daemon stays in
the host's. What such a job makes there (a netlink socket, the embedded DNS server's sockets) stays
in that namespace when the thread leaves it.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import logging
import os
import socket
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import attrs
from pyroute2 import IPRoute, NetlinkError
from pyroute2 import netns as pyroute2_netns

__all__ = ["Attachment", "Interface", "Netlink", "NetlinkError", "mac_of"]

log = logging.getLogger("pyengine.network")

T = TypeVar("T")

Interface = ipaddress.IPv4Interface | ipaddress.IPv6Interface
_IFA_F_NODAD = 0x02  # an address usable at once: no duplicate detection on a link only we are on


@attrs.frozen
class Attachment:
    """What a container's end of a veth pair gets inside its namespace."""

    ifname: str  # eth0, eth1, ...
    mac: str
    addresses: tuple[Interface, ...]
    gateways: tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, ...]  # default routes, if any
    mtu: int


class Netlink:
    """The engine's netlink: one socket in the host's namespace, and a thread that works inside
    containers' namespaces. Methods block."""

    def __init__(self) -> None:
        self._host = IPRoute()
        self._lock = threading.Lock()  # pyroute2's synchronous socket is not for two threads at once
        self._host_ns = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        self._inside = ThreadPoolExecutor(1, thread_name_prefix="pyengine-netns")

    def close(self) -> None:
        self._inside.shutdown()
        self._host.close()
        os.close(self._host_ns)

    # -- the host's side ---------------------------------------------------------------------------

    def taken_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        """The networks of the host's addresses and routes (but its default routes): what a new
        network's subnet must not overlap."""
        taken: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        with self._lock:
            addresses = self._host.get_addr()
            routes = [
                *self._host.get_routes(family=socket.AF_INET),
                *self._host.get_routes(family=socket.AF_INET6),
            ]
        for message in addresses:
            address = message.get_attr("IFA_ADDRESS")
            if address:
                taken.append(ipaddress.ip_interface(f"{address}/{message['prefixlen']}").network)
        for message in routes:
            destination = message.get_attr("RTA_DST")
            if destination and message["dst_len"] > 0:
                taken.append(ipaddress.ip_network(f"{destination}/{message['dst_len']}", strict=False))
        return [n for n in taken if not n.is_loopback and not n.is_link_local]

    def exists(self, name: str) -> bool:
        with self._lock:
            return bool(self._host.link_lookup(ifname=name))

    def make_bridge(self, name: str, addresses: Sequence[Interface], mtu: int) -> None:
        """The Linux bridge ``name``, up, with exactly ``addresses`` (made, or taken over from a
        daemon that did not clean up)."""
        with self._lock:
            found = self._host.link_lookup(ifname=name)
            if not found:
                self._host.link("add", ifname=name, kind="bridge", mtu=mtu)
                found = self._host.link_lookup(ifname=name)
            index = found[0]
            present = {
                ipaddress.ip_interface(f"{m.get_attr('IFA_ADDRESS')}/{m['prefixlen']}")
                for m in self._host.get_addr(index=index)
                if m["scope"] == 0
            }
            for address in set(addresses) - present:
                self._host.addr(
                    "add",
                    index=index,
                    address=str(address.ip),
                    prefixlen=address.network.prefixlen,
                    flags=_IFA_F_NODAD if address.version == 6 else 0,
                )
            for address in present - set(addresses):
                self._host.addr(
                    "del", index=index, address=str(address.ip), prefixlen=address.network.prefixlen
                )
            self._host.link("set", index=index, mtu=mtu, state="up")

    def delete(self, name: str) -> None:
        """Delete the link ``name`` (a veth's deletion takes its peer along); gone already is fine."""
        with self._lock, contextlib.suppress(NetlinkError):
            self._host.link("del", ifname=name)

    def add_veth(self, host_name: str, pid: int, bridge: str, inside: Attachment) -> None:
        """A veth pair: ``host_name`` on ``bridge``, its peer moved into the network namespace of
        process ``pid`` and configured there as ``inside``. Undone if any step fails."""
        with self._lock:
            master = self._host.link_lookup(ifname=bridge)
            if not master:
                raise NetlinkError(errno.ENODEV, f"bridge {bridge} is gone")
            self._host.link(
                "add",
                ifname=host_name,
                kind="veth",
                mtu=inside.mtu,
                peer={"ifname": inside.ifname, "address": inside.mac, "mtu": inside.mtu, "net_ns_pid": pid},
            )
        try:
            with self._lock:
                self._host.link("set", ifname=host_name, master=master[0], state="up")
            self.inside(pid, lambda: _configure(inside))
        except BaseException:
            self.delete(host_name)
            raise

    # -- inside a container's namespace ------------------------------------------------------------

    def inside(self, pid: int, job: Callable[[], T]) -> T:
        """``job()`` run in the network namespace of process ``pid``."""
        return self._inside.submit(self._in_namespace, pid, job).result()

    def _in_namespace(self, pid: int, job: Callable[[], T]) -> T:
        target = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            pyroute2_netns.setns(target, fork=False)
        finally:
            os.close(target)
        try:
            return job()
        finally:
            # Never let this thread work on in a container's namespace: without its way back the
            # daemon cannot go on.
            try:
                pyroute2_netns.setns(self._host_ns, fork=False)
            except OSError:
                log.critical("cannot return to the host's network namespace: stopping")
                os.abort()


def _configure(inside: Attachment) -> None:
    """Addresses, link and routes of a container's end of a veth (in its namespace)."""
    with IPRoute() as ip:
        index = ip.link_lookup(ifname=inside.ifname)[0]
        for address in inside.addresses:
            ip.addr(
                "add",
                index=index,
                address=str(address.ip),
                prefixlen=address.network.prefixlen,
                flags=_IFA_F_NODAD if address.version == 6 else 0,
            )
        ip.link("set", index=index, state="up")
        for gateway in inside.gateways:
            ip.route(
                "add", dst="default" if gateway.version == 4 else "::/0", gateway=str(gateway), oif=index
            )


def mac_of(address: ipaddress.IPv4Address) -> str:
    """dockerd's MAC address for an endpoint: 02:42 and the IPv4 address's four bytes."""
    return "02:42:" + ":".join(f"{byte:02x}" for byte in address.packed)
