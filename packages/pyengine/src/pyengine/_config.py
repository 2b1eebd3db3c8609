"""The daemon's configuration: ``pyengined``'s flags and its JSON file, as dockerd reads them.

A setting may come from a flag or from the file, not both (dockerd refuses that too), and a key of
the file that names no setting is refused, so that a typo is never silently ignored.

Hosts are ``unix:///PATH`` sockets and ``tcp://HOST[:PORT]`` addresses. A TCP address is served
over TLS with ``tls`` (and requires clients' certificates signed by ``tlscacert`` with
``tlsverify``, which implies ``tls``), as dockerd serves it. Plain TCP gives root on this machine
to whoever reaches the port: dockerd (20.10 to 28) still starts then, with warnings, and stalls
its start 15 seconds for a non-loopback address unless ``--tls=false`` or ``--tlsverify=false``
says so on purpose, announcing that this will become a hard failure. pyengine makes it that
failure now: plain TCP on a non-loopback address is refused unless TLS was turned off explicitly;
on loopback, or turned off explicitly, it is served with dockerd's warnings (logged, and in
``/info``'s Warnings).
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import urllib.parse
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import attrs

from pyengine._errors import ConfigError
from pyengine._network.ipam import DEFAULT_POOLS, AddressPool, parse_pools

__all__ = [
    "DEFAULT_BRIDGE",
    "DEFAULT_CONFIG_FILE",
    "DEFAULT_DATA_ROOT",
    "DEFAULT_EXEC_ROOT",
    "DEFAULT_HOST",
    "FILE_KEYS",
    "LOG_LEVELS",
    "DaemonConfig",
    "TcpAddress",
    "load_config",
]

DEFAULT_CONFIG_FILE = "/etc/pyengine/daemon.json"
DEFAULT_HOST = "unix:///run/pyengine.sock"
DEFAULT_DATA_ROOT = "/var/lib/pyengine"
DEFAULT_EXEC_ROOT = "/run/pyengine"
DEFAULT_BRIDGE = "pyengine0"
LOG_LEVELS = ("debug", "info", "warn", "error", "fatal")
#: Registries reached over plain HTTP without being named: loopback, as in Docker.
DEFAULT_INSECURE = ("127.0.0.0/8",)
#: dockerd's ports for a tcp:// host that names none: without TLS, and with it.
DEFAULT_TCP_PORT = 2375
DEFAULT_TLS_PORT = 2376


@attrs.frozen
class TcpAddress:
    """A ``tcp://`` host: where to bind (an IPv6 address without its brackets)."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def loopback(self) -> bool:
        """Whether it is a loopback address (``localhost`` included, as dockerd counts it)."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            pass
        try:
            infos = socket.getaddrinfo(self.host, None)
        except OSError:
            return False
        return all(ipaddress.ip_address(info[4][0]).is_loopback for info in infos)


def _parse_tcp(host: str, default_port: int) -> TcpAddress:
    """``tcp://HOST[:PORT]``: an address, ``[IPv6]`` or a name, and a port (dockerd's default for
    none)."""
    rest = host.removeprefix("tcp://")
    if "/" in rest.rstrip("/"):
        raise ConfigError(f"host {host!r}: a tcp:// host has no path")
    rest = rest.rstrip("/")
    if rest.startswith("["):
        name, bracket, tail = rest[1:].partition("]")
        if not bracket or (tail and not tail.startswith(":")):
            raise ConfigError(f"host {host!r}: not tcp://[IPv6]:PORT")
        port_text = tail[1:]
    else:
        name, _, port_text = rest.partition(":")
    if not name:
        raise ConfigError(f"host {host!r}: no address to listen on (tcp://HOST:PORT)")
    if not port_text:
        return TcpAddress(name, default_port)
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(f"host {host!r}: invalid port {port_text!r}")
    return TcpAddress(name, int(port_text))


def _check_hosts(_: object, attribute: attrs.Attribute[tuple[str, ...]], hosts: tuple[str, ...]) -> None:
    if not hosts:
        raise ConfigError(f"{attribute.name}: at least one address to listen on is needed")
    for host in hosts:
        if host.startswith("tcp://"):
            _parse_tcp(host, DEFAULT_TCP_PORT)
            continue
        if not host.startswith("unix://") or len(host) == len("unix://"):
            raise ConfigError(f"host {host!r}: only unix:///PATH sockets and tcp://HOST:PORT are supported")
        if not host.removeprefix("unix://").startswith("/"):
            raise ConfigError(f"host {host!r}: the socket's path must be absolute")


def _check_level(_: object, attribute: attrs.Attribute[str], level: str) -> None:
    if level not in LOG_LEVELS:
        raise ConfigError(f"log-level {level!r}: not one of {', '.join(LOG_LEVELS)}")


def _check_cidrs(_: object, attribute: attrs.Attribute[tuple[str, ...]], values: tuple[str, ...]) -> None:
    for value in values:
        if "/" in value:
            try:
                ipaddress.ip_network(value, strict=False)
            except ValueError:
                raise ConfigError(f"insecure-registries: {value!r} is not a CIDR") from None


def _absolute(path: str | os.PathLike[str]) -> Path:
    return Path(path).absolute()


def _check_bridge(_: object, attribute: attrs.Attribute[str], name: str) -> None:
    if not name or len(name) > 15 or any(c in name for c in "/: \t") or name in (".", ".."):
        raise ConfigError(f"bridge {name!r}: not a network interface name (at most 15 characters)")


def _bip(value: str | ipaddress.IPv4Interface) -> ipaddress.IPv4Interface:
    try:
        bip = ipaddress.IPv4Interface(value)
    except ValueError:
        raise ConfigError(
            f"bip {value!r}: not an IPv4 address with its prefix length (172.30.0.1/16)"
        ) from None
    if bip.ip in (bip.network.network_address, bip.network.broadcast_address) or bip.network.prefixlen > 30:
        raise ConfigError(
            f"bip {value}: the bridge's address must be a host address of a subnet of 4 or more"
        )
    return bip


def _pools(value: object) -> tuple[AddressPool, ...]:
    if isinstance(value, tuple) and all(isinstance(v, AddressPool) for v in value):
        return value
    try:
        return parse_pools(value)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _mirrors(values: Iterable[str]) -> tuple[str, ...]:
    """dockerd's check of registry mirrors: an http or https URL of a host, nothing after it;
    normalized as dockerd shows them (``http://127.0.0.1:5000/``)."""
    normalized = []
    for value in values:
        url = urllib.parse.urlsplit(str(value))
        if url.scheme not in ("http", "https"):
            raise ConfigError(f"invalid mirror: unsupported scheme {url.scheme!r} in {value!r}")
        if url.path not in ("", "/") or url.query or url.fragment or not url.netloc:
            raise ConfigError(f"invalid mirror: path, query, or fragment at end of the URI {value!r}")
        normalized.append(f"{url.scheme}://{url.netloc}/")
    return tuple(normalized)


@attrs.frozen(kw_only=True)
class DaemonConfig:
    """Everything ``pyengined`` is started with. Paths are absolute."""

    hosts: tuple[str, ...] = attrs.field(default=(DEFAULT_HOST,), converter=tuple, validator=_check_hosts)
    data_root: Path = attrs.field(default=Path(DEFAULT_DATA_ROOT), converter=_absolute)
    exec_root: Path = attrs.field(default=Path(DEFAULT_EXEC_ROOT), converter=_absolute)
    pidfile: Path | None = attrs.field(default=None, converter=attrs.converters.optional(Path))
    group: str = "docker"
    log_level: str = attrs.field(default="info", validator=_check_level)
    live_restore: bool = True
    insecure_registries: tuple[str, ...] = attrs.field(
        default=DEFAULT_INSECURE, converter=tuple, validator=_check_cidrs
    )
    registry_mirrors: tuple[str, ...] = attrs.field(default=(), converter=_mirrors)
    #: None: not given (plain TCP then, refused on a non-loopback address); tlsverify implies tls.
    tls: bool | None = None
    tlsverify: bool | None = None
    #: The CA that signs clients' certificates, and the server's certificate and key; None for
    #: dockerd's defaults: ca.pem, cert.pem and key.pem in $DOCKER_CERT_PATH or ~/.docker.
    tlscacert: Path | None = attrs.field(default=None, converter=attrs.converters.optional(_absolute))
    tlscert: Path | None = attrs.field(default=None, converter=attrs.converters.optional(_absolute))
    tlskey: Path | None = attrs.field(default=None, converter=attrs.converters.optional(_absolute))
    #: The default network's Linux bridge, which the daemon makes (and the name of its nftables
    #: table); its address and subnet (``--bip``), else the first free subnet of the pools.
    bridge: str = attrs.field(default=DEFAULT_BRIDGE, validator=_check_bridge)
    bip: ipaddress.IPv4Interface | None = attrs.field(default=None, converter=attrs.converters.optional(_bip))
    default_address_pools: tuple[AddressPool, ...] = attrs.field(default=DEFAULT_POOLS, converter=_pools)

    def __attrs_post_init__(self) -> None:
        if self.tls is None and self.tlsverify is None:
            for address in self.tcp_addresses:
                if not address.loopback:
                    raise ConfigError(
                        f"host tcp://{address}: listening on TCP without TLS gives root access on this "
                        "machine to everyone who can reach it: give --tlsverify (with --tlscacert, "
                        "--tlscert and --tlskey), or --tls=false or --tlsverify=false to serve it "
                        "unauthenticated on purpose"
                    )

    @property
    def socket_paths(self) -> list[Path]:
        return [Path(host.removeprefix("unix://")) for host in self.hosts if host.startswith("unix://")]

    @property
    def uses_tls(self) -> bool:
        return bool(self.tls) or bool(self.tlsverify)

    @property
    def tcp_addresses(self) -> list[TcpAddress]:
        port = DEFAULT_TLS_PORT if self.uses_tls else DEFAULT_TCP_PORT
        return [_parse_tcp(host, port) for host in self.hosts if host.startswith("tcp://")]

    def tls_file(self, name: str) -> Path:
        """The TLS file ``name`` (tlscacert, tlscert, tlskey): the one given, else dockerd's default."""
        given: Path | None = getattr(self, name)
        if given is not None:
            return given
        directory = os.environ.get("DOCKER_CERT_PATH") or str(Path.home() / ".docker")
        return Path(directory) / {"tlscacert": "ca.pem", "tlscert": "cert.pem", "tlskey": "key.pem"}[name]

    @property
    def api_warnings(self) -> list[str]:
        """What ``/info`` warns of the TCP addresses served without client verification."""
        if self.tlsverify:
            return []
        scheme, lacking = ("https", "TLS client verification") if self.tls else ("http", "encryption")
        return [
            f"API is accessible on {scheme}://{address} without {lacking}. Access to the remote API "
            "is equivalent to root access on the host: use --tlsverify"
            for address in self.tcp_addresses
        ]

    @property
    def effective_pidfile(self) -> Path:
        """The pidfile: the one given, else ``<exec root>/pyengined.pid``."""
        return self.pidfile if self.pidfile is not None else self.exec_root / "pyengined.pid"


#: The configuration file's keys (dockerd's spelling) and the DaemonConfig field each sets.
FILE_KEYS = {
    "hosts": "hosts",
    "data-root": "data_root",
    "exec-root": "exec_root",
    "pidfile": "pidfile",
    "group": "group",
    "log-level": "log_level",
    "live-restore": "live_restore",
    "insecure-registries": "insecure_registries",
    "registry-mirrors": "registry_mirrors",
    "tls": "tls",
    "tlsverify": "tlsverify",
    "tlscacert": "tlscacert",
    "tlscert": "tlscert",
    "tlskey": "tlskey",
    "bridge": "bridge",
    "bip": "bip",
    "default-address-pools": "default_address_pools",
}
_LISTS = {"hosts", "insecure-registries", "registry-mirrors"}
_BOOLEANS = {"live-restore", "tls", "tlsverify"}


def _read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"config file {path}: {exc.strerror}") from None
    try:
        data = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as exc:
        raise ConfigError(f"config file {path}: not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: not a JSON object")
    unknown = sorted(set(data) - set(FILE_KEYS))
    if unknown:
        raise ConfigError(
            f"config file {path}: the following directives don't match any configuration option: "
            + ", ".join(unknown)
        )
    for key, value in data.items():
        if key == "default-address-pools":
            continue  # a list of objects, checked by DaemonConfig
        if key in _LISTS:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"config file {path}: {key!r} must be a list of strings")
        elif key in _BOOLEANS:
            if not isinstance(value, bool):
                raise ConfigError(f"config file {path}: {key!r} must be true or false")
        elif not isinstance(value, str):
            raise ConfigError(f"config file {path}: {key!r} must be a string")
    return data


def load_config(flags: dict[str, Any], config_file: str | os.PathLike[str] | None) -> DaemonConfig:
    """The configuration from ``flags`` (the file's keys, set by the command line) and the file:
    ``config_file`` if given (it must exist), else the default file when it exists."""
    if config_file is not None:
        from_file = _read_file(Path(config_file))
    elif Path(DEFAULT_CONFIG_FILE).exists():
        from_file = _read_file(Path(DEFAULT_CONFIG_FILE))
    else:
        from_file = {}
    both = sorted(set(flags) & set(from_file))
    if both:
        details = ", ".join(f"{key}: (from flag: {flags[key]}, from file: {from_file[key]})" for key in both)
        raise ConfigError(
            "the following directives are specified both as a flag and in the configuration file: " + details
        )
    merged = {FILE_KEYS[key]: value for key, value in {**from_file, **flags}.items()}
    if "insecure_registries" in merged:  # the given ones add to loopback, as in Docker
        merged["insecure_registries"] = (*DEFAULT_INSECURE, *merged["insecure_registries"])
    return DaemonConfig(**merged)
