"""nftables through libnftables' JSON API, and the engine's own table.

``Nftables`` is a libnftables context (Debian's ``libnftables.so.1``, loaded with cffi in ABI
mode: Debian's Python binding cannot be imported from a virtual environment). ``EngineTable`` is the
engine's ``inet`` table, the only one it writes on the host: masquerade, isolation between its
bridges, and the DNAT of published ports. ``redirect_dns`` writes the small table a container's
network namespace needs for the embedded DNS server.

The engine's table, with ``B`` for each bridge (chain names carry the bridge's name, so removing a
bridge needs no rule handle: the jumps to its chains are elements of verdict maps keyed by
interface name)::

    forward      filter, priority filter:  oifname vmap @ingress  → to-B
                                            iifname vmap @egress   → from-B
    prerouting   nat, priority dstnat:     DNAT by @ports4_* / @ports6_* (address . proto . port)
                                            and, to any local address, by @ports4_any_* / @ports6_any_*
    output       nat, priority -100:       the same DNAT for this host's own connections
    postrouting  nat, priority srcnat:     masquerade of 127.0.0.0/8 leaving by a bridge,
                                            iifname vmap @masquerading → masq-B

The priorities are those Docker's nftables documentation gives its own tables. Every base chain's
policy is accept: a table decides only what it drops, and the host's other tables keep their say.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, cast

import attrs
import cffi

__all__ = [
    "EngineTable",
    "Nftables",
    "NftablesError",
    "PortRule",
    "enable_route_localnet",
    "ip_forward",
    "redirect_dns",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_CDEF = """
struct nft_ctx;
struct nft_ctx *nft_ctx_new(uint32_t flags);
void nft_ctx_free(struct nft_ctx *ctx);
int nft_ctx_buffer_output(struct nft_ctx *ctx);
const char *nft_ctx_get_output_buffer(struct nft_ctx *ctx);
int nft_ctx_buffer_error(struct nft_ctx *ctx);
const char *nft_ctx_get_error_buffer(struct nft_ctx *ctx);
void nft_ctx_output_set_flags(struct nft_ctx *ctx, unsigned int flags);
int nft_run_cmd_from_buffer(struct nft_ctx *nft, const char *buf);
"""
_NFT_CTX_DEFAULT = 0
#: JSON output; libnftables then also parses its input as JSON.
_NFT_CTX_OUTPUT_JSON = 1 << 4

#: The table in a container's network namespace that sends 127.0.0.11:53 to the embedded DNS server.
DNS_TABLE = "pyengine-dns"
#: Where a container's resolv.conf points, as with dockerd.
DNS_ADDRESS = "127.0.0.11"
_IFNAMSIZ = 16


class NftablesError(Exception):
    """libnftables refused a command; ``message`` is its error text."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@functools.cache
def _library() -> tuple[cffi.FFI, Any]:
    ffi = cffi.FFI()
    ffi.cdef(_CDEF)
    try:
        lib = ffi.dlopen("libnftables.so.1")
    except OSError as exc:
        raise NftablesError(f"cannot load libnftables (Debian's libnftables1): {exc}") from exc
    return ffi, lib


class Nftables:
    """A libnftables context speaking JSON; ``run`` is thread-safe (one lock per context).

    A context acts in the network namespace of the thread that *created* it, whichever thread runs
    its commands later: libnftables opens its netlink socket in ``nft_ctx_new``, and a socket stays
    in the namespace it was opened in. To program a container's namespace, create the context in a
    thread that has ``setns()``'d into it (and use it from anywhere afterwards); the daemon's own
    context must be created by a thread in the host's namespace.
    """

    def __init__(self) -> None:
        self._ffi, self._lib = _library()
        self._lock = threading.Lock()
        ctx = self._lib.nft_ctx_new(_NFT_CTX_DEFAULT)
        if ctx == self._ffi.NULL:
            raise NftablesError("nft_ctx_new failed")
        self._ctx = self._ffi.gc(ctx, self._lib.nft_ctx_free)
        self._lib.nft_ctx_buffer_output(self._ctx)
        self._lib.nft_ctx_buffer_error(self._ctx)
        self._lib.nft_ctx_output_set_flags(self._ctx, _NFT_CTX_OUTPUT_JSON)

    def run(self, commands: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Run ``commands`` (the items of ``{"nftables": [...]}``) as one transaction: all of them
        or none. Returns the objects a ``list`` command printed, without the metainfo."""
        request = json.dumps({"nftables": list(commands)}).encode()
        with self._lock:
            status = self._lib.nft_run_cmd_from_buffer(self._ctx, request)
            output = cast(bytes, self._ffi.string(self._lib.nft_ctx_get_output_buffer(self._ctx))).decode()
            error = cast(bytes, self._ffi.string(self._lib.nft_ctx_get_error_buffer(self._ctx))).decode()
        if status != 0:
            raise NftablesError(error.strip() or f"libnftables failed ({status})")
        if not output.strip():
            return []
        objects: list[dict[str, Any]] = json.loads(output)["nftables"]
        return [item for item in objects if "metainfo" not in item]

    def tables(self) -> list[tuple[str, str]]:
        """The (family, name) of every table in the context's namespace."""
        return [(item["table"]["family"], item["table"]["name"]) for item in self.run([_list_tables()])]


@attrs.frozen
class PortRule:
    """A published port: ``host_ip:host_port/proto`` to ``container_ip:container_port``.

    ``host_ip`` None publishes on every local address of ``container_ip``'s family. ``::1`` cannot
    be published here: the kernel does not route DNATed packets from IPv6 loopback (that takes a
    userland proxy), and neither can ``host_ip`` be of the other family than ``container_ip``.
    """

    proto: Literal["tcp", "udp"]
    host_ip: IPAddress | None
    host_port: int
    container_ip: IPAddress
    container_port: int

    def __attrs_post_init__(self) -> None:
        if self.proto not in ("tcp", "udp"):
            raise ValueError(f"invalid protocol {self.proto!r}")
        for port in (self.host_port, self.container_port):
            if not 1 <= port <= 65535:
                raise ValueError(f"invalid port {port}")
        if self.host_ip is not None and self.host_ip.version != self.container_ip.version:
            raise ValueError(f"cannot publish {self.host_ip} to {self.container_ip}: not one IP version")
        if self.host_ip == ipaddress.IPv6Address("::1"):
            raise ValueError("DNAT cannot reach ::1: it needs a userland proxy")


class EngineTable:
    """The engine's ``inet`` table ``name`` (one per daemon) in ``nft``'s network namespace.

    Each method is one libnftables transaction: all of it or nothing. ``add_bridge`` and
    ``publish`` can be repeated; ``remove_bridge`` and ``unpublish`` of what is not there do
    nothing.
    """

    def __init__(self, name: str, nft: Nftables | None = None) -> None:
        self.name = name
        self.nft = nft if nft is not None else Nftables()

    def exists(self) -> bool:
        return ("inet", self.name) in self.nft.tables()

    def create(self) -> None:
        """The table with its maps and base chains, empty; a table of this name already there (a
        crashed daemon's) is replaced."""
        table = {"family": "inet", "name": self.name}
        commands: list[dict[str, Any]] = [
            {"add": {"table": table}},
            {"delete": {"table": table}},
            {"add": {"table": table}},
            self._add("set", name="bridges", type="ifname"),
        ]
        for name in ("ingress", "egress", "masquerading"):
            commands.append(self._add("map", name=name, type="ifname", map="verdict"))
        for family, address in (("ip", "ipv4_addr"), ("ip6", "ipv6_addr")):
            for any_address in (False, True):
                key = (
                    ["inet_proto", "inet_service"] if any_address else [address, "inet_proto", "inet_service"]
                )
                name = _ports(family, any_address=any_address)
                commands.append(self._add("map", name=f"{name}_to", type=key, map=address))
                commands.append(self._add("map", name=f"{name}_port", type=key, map="inet_service"))
        commands += [
            self._base_chain("forward", "filter", "forward", 0),
            self._base_chain("prerouting", "nat", "prerouting", -100),
            self._base_chain("output", "nat", "output", -100),
            self._base_chain("postrouting", "nat", "postrouting", 100),
            self._rule("forward", _vmap(_meta("oifname"), "ingress")),
            self._rule("forward", _vmap(_meta("iifname"), "egress")),
        ]
        for chain in ("prerouting", "output"):
            for family in ("ip", "ip6"):
                commands += self._dnat_rules(chain, family)
        commands += [
            # This host's connections to 127.0.0.1 DNATed to a container leave by its bridge (with
            # route_localnet) with a source the container cannot answer.
            self._rule(
                "postrouting",
                _match(_meta("oifname"), "@bridges"),
                _match(_payload("ip", "saddr"), {"prefix": {"addr": "127.0.0.0", "len": 8}}),
                {"masquerade": None},
            ),
            self._rule("postrouting", _vmap(_meta("iifname"), "masquerading")),
        ]
        self.nft.run(commands)

    def delete(self) -> None:
        """Remove the table and all it holds; nothing if it is not there."""
        table = {"family": "inet", "name": self.name}
        self.nft.run([{"add": {"table": table}}, {"delete": {"table": table}}])

    def add_bridge(
        self,
        bridge: str,
        subnets: Iterable[IPNetwork],
        *,
        internal: bool,
        icc: bool = True,
        masquerade: bool = True,
    ) -> None:
        """Firewall the network of the Linux bridge ``bridge``, its containers in ``subnets``.

        Traffic within the bridge passes (with br_netfilter, bridged packets reach the forward hook
        with the bridge as both interfaces) unless ``icc`` is false. Nothing enters the bridge from
        another interface but replies and published ports (so nothing from another engine bridge
        but through a published port, as Docker 28). An ``internal`` network's traffic neither
        leaves its bridge nor enters it from elsewhere. Traffic from ``subnets`` leaving by another
        interface is masqueraded, unless ``internal`` or not ``masquerade``.
        """
        _check_ifname(bridge)
        to, out, masq = _bridge_chains(bridge)
        commands: list[dict[str, Any]] = []
        for chain in (to, out, masq):
            commands += [self._add("chain", name=chain), {"flush": {"chain": self._obj(name=chain)}}]
        within = _match(_meta("iifname"), bridge)
        commands.append(self._rule(to, within, {"accept": None} if icc else {"drop": None}))
        if not internal:
            commands += [
                self._rule(to, _match(_ct("state"), ["established", "related"], op="in"), {"accept": None}),
                self._rule(to, _match(_ct("status"), "dnat", op="in"), {"accept": None}),
            ]
        commands.append(self._rule(to, {"drop": None}))
        if internal:
            commands.append(self._rule(out, _match(_meta("oifname"), bridge, op="!="), {"drop": None}))
        elif masquerade:
            for family in ("ip", "ip6"):
                prefixes = [
                    {"prefix": {"addr": str(net.network_address), "len": net.prefixlen}}
                    for net in subnets
                    if net.version == (4 if family == "ip" else 6)
                ]
                if prefixes:
                    commands.append(
                        self._rule(
                            masq,
                            _match(_meta("oifname"), bridge, op="!="),
                            _match(_payload(family, "saddr"), {"set": prefixes}),
                            {"masquerade": None},
                        )
                    )
        commands += self._bridge_elements("add", bridge)
        self.nft.run(commands)

    def remove_bridge(self, bridge: str) -> None:
        """Drop ``bridge``'s rules: its chains and the elements that lead to them."""
        _check_ifname(bridge)
        chains = _bridge_chains(bridge)
        # Adding first what is deleted makes the removal of a bridge that is not there a no-op,
        # within the one transaction and without reading the table.
        commands = [self._add("chain", name=chain) for chain in chains]
        commands += self._bridge_elements("add", bridge)
        commands += self._bridge_elements("delete", bridge)
        for chain in chains:
            commands += [
                {"flush": {"chain": self._obj(name=chain)}},
                {"delete": {"chain": self._obj(name=chain)}},
            ]
        self.nft.run(commands)

    def publish(self, rule: PortRule) -> None:
        """DNAT ``rule``'s host address and port to its container, for traffic from anywhere and
        this host's own; from 127.0.0.1 only once ``enable_route_localnet`` ran for the bridge."""
        self.nft.run(self._port_elements("add", rule))

    def unpublish(self, rule: PortRule) -> None:
        self.nft.run(self._port_elements("add", rule) + self._port_elements("delete", rule))

    def _obj(self, **fields: Any) -> dict[str, Any]:
        return {"family": "inet", "table": self.name, **fields}

    def _add(self, kind: str, **fields: Any) -> dict[str, Any]:
        return {"add": {kind: self._obj(**fields)}}

    def _base_chain(self, name: str, type: str, hook: str, prio: int) -> dict[str, Any]:
        return self._add("chain", name=name, type=type, hook=hook, prio=prio, policy="accept")

    def _rule(self, chain: str, *expr: dict[str, Any]) -> dict[str, Any]:
        return self._add("rule", chain=chain, expr=list(expr))

    def _dnat_rules(self, chain: str, family: str) -> list[dict[str, Any]]:
        port = [_meta("l4proto"), _payload("th", "dport")]
        local = _match({"fib": {"result": "type", "flags": ["daddr"]}}, "local")
        only = [_match(_meta("nfproto"), "ipv4" if family == "ip" else "ipv6")]
        if family == "ip6":
            only.append(_match(_payload("ip6", "daddr"), "::1", op="!="))
        specific = _dnat(family, [_payload(family, "daddr"), *port], _ports(family))
        any_address = _dnat(family, port, _ports(family, any_address=True))
        return [self._rule(chain, *only, specific), self._rule(chain, *only, local, any_address)]

    def _bridge_elements(self, verb: str, bridge: str) -> list[dict[str, Any]]:
        to, out, masq = _bridge_chains(bridge)
        elements: list[tuple[str, Any]] = [("bridges", bridge)]
        for name, chain in (("ingress", to), ("egress", out), ("masquerading", masq)):
            elements.append((name, [bridge, {"jump": {"target": chain}}]))
        return [{verb: {"element": self._obj(name=name, elem=[elem])}} for name, elem in elements]

    def _port_elements(self, verb: str, rule: PortRule) -> list[dict[str, Any]]:
        family = "ip" if rule.container_ip.version == 4 else "ip6"
        key: list[Any] = [rule.proto, rule.host_port]
        if rule.host_ip is not None:
            key.insert(0, str(rule.host_ip))
        name = _ports(family, any_address=rule.host_ip is None)
        return [
            {
                verb: {
                    "element": self._obj(name=f"{name}_to", elem=[[{"concat": key}, str(rule.container_ip)]])
                }
            },
            {
                verb: {
                    "element": self._obj(name=f"{name}_port", elem=[[{"concat": key}, rule.container_port]])
                }
            },
        ]


def redirect_dns(nft: Nftables, udp_port: int, tcp_port: int) -> None:
    """In ``nft``'s network namespace (a container's), send 127.0.0.11:53 over UDP and TCP to the
    embedded DNS server's sockets on 127.0.0.11 at ``udp_port`` and ``tcp_port``, so that a process
    of the container may still bind port 53 itself. Replies need no rule of their own: conntrack
    undoes the DNAT on them, so they come from port 53. Replaces a table left from before."""
    table = {"family": "ip", "name": DNS_TABLE}
    chain = {"family": "ip", "table": DNS_TABLE, "name": "output"}
    commands: list[dict[str, Any]] = [
        {"add": {"table": table}},
        {"delete": {"table": table}},
        {"add": {"table": table}},
        {"add": {"chain": {**chain, "type": "nat", "hook": "output", "prio": -100, "policy": "accept"}}},
    ]
    for proto, port in (("udp", udp_port), ("tcp", tcp_port)):
        expr = [
            _match(_payload("ip", "daddr"), DNS_ADDRESS),
            _match(_payload(proto, "dport"), 53),
            {"dnat": {"addr": DNS_ADDRESS, "port": port}},
        ]
        commands.append({"add": {"rule": {**chain, "chain": "output", "expr": expr}}})
    nft.run(commands)


def enable_route_localnet(bridge: str, *, proc: Path = Path("/proc/sys")) -> None:
    """Let packets from 127.0.0.0/8 leave by ``bridge``: this host's connections to a port
    published on 127.0.0.1 are DNATed to a container behind it (then masqueraded by the table)."""
    _check_ifname(bridge)
    (proc / "net/ipv4/conf" / bridge / "route_localnet").write_text("1\n")


def ip_forward(*, ipv6: bool = False, proc: Path = Path("/proc/sys")) -> bool:
    """Turn on IPv4 forwarding (and IPv6 forwarding too when ``ipv6``), as dockerd does; whether
    this changed anything, for the caller to log."""
    switches = [proc / "net/ipv4/ip_forward"]
    if ipv6:
        switches.append(proc / "net/ipv6/conf/all/forwarding")
    changed = False
    for switch in switches:
        if switch.read_text().strip() != "1":
            switch.write_text("1\n")
            changed = True
    return changed


def _check_ifname(name: str) -> None:
    if not name or len(name) >= _IFNAMSIZ or "/" in name or name in (".", ".."):
        raise ValueError(f"invalid interface name {name!r}")


def _bridge_chains(bridge: str) -> tuple[str, str, str]:
    return f"to-{bridge}", f"from-{bridge}", f"masq-{bridge}"


def _ports(family: str, *, any_address: bool = False) -> str:
    return f"ports{4 if family == 'ip' else 6}{'_any' if any_address else ''}"


def _list_tables() -> dict[str, Any]:
    return {"list": {"tables": None}}


def _meta(key: str) -> dict[str, Any]:
    return {"meta": {"key": key}}


def _ct(key: str) -> dict[str, Any]:
    return {"ct": {"key": key}}


def _payload(protocol: str, field: str) -> dict[str, Any]:
    return {"payload": {"protocol": protocol, "field": field}}


def _match(left: Any, right: Any, *, op: str = "==") -> dict[str, Any]:
    return {"match": {"op": op, "left": left, "right": right}}


def _vmap(key: dict[str, Any], name: str) -> dict[str, Any]:
    return {"vmap": {"key": key, "data": f"@{name}"}}


def _dnat(family: str, key: list[dict[str, Any]], maps: str) -> dict[str, Any]:
    # Two maps, for the address and the port: libnftables 1.0.6 crashes on a JSON dnat whose one
    # map gives both (``address . port``).
    return {
        "dnat": {
            "family": family,
            "addr": {"map": {"key": {"concat": key}, "data": f"@{maps}_to"}},
            "port": {"map": {"key": {"concat": key}, "data": f"@{maps}_port"}},
        }
    }
