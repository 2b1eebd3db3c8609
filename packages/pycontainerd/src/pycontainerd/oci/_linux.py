"""Opts for the container's surroundings: mounts, resources, namespaces, hostname, root, cgroup,
annotations. Arguments are checked when the opt is made."""

from __future__ import annotations

import os
import posixpath
import stat

from pycontainerd._errors import InvalidArgumentError, NotFoundError
from pycontainerd._record import Record
from pycontainerd.oci._spec import linux_of

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from typing import Any, Final

    from pycontainerd.oci._spec import SpecContext, SpecOpt

__all__ = [
    "NAMESPACE_KINDS",
    "ContainerMount",
    "with_annotations",
    "with_cgroups_path",
    "with_cpu_shares",
    "with_cpus",
    "with_cpuset",
    "with_devices",
    "with_host_namespace",
    "with_hostname",
    "with_memory_limit",
    "with_memory_swap",
    "with_mounts",
    "with_namespace_path",
    "with_pids_limit",
    "with_readonly_rootfs",
    "with_rootfs",
    "with_sysctls",
]

#: Namespace kinds of ``linux.namespaces`` (OCI names).
NAMESPACE_KINDS = ("pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time")

MIN_MEMORY = 6 << 20  # Docker's minimum memory limit: less cannot start a container
_CPU_PERIOD = 100_000  # microseconds: the CFS period Docker's --cpus uses
_MIN_SHARES, _MAX_SHARES = 2, 262_144  # the kernel's range for cpu.shares
_PROPAGATIONS = frozenset(
    {"private", "rprivate", "shared", "rshared", "slave", "rslave", "unbindable", "runbindable"}
)


def _clean_absolute(path: object, opt: str, what: str) -> str:
    if not isinstance(path, str) or not path.startswith("/") or "\0" in path:
        raise InvalidArgumentError(f"{opt}: {what} {path!r} is not an absolute path")
    return "/" + posixpath.normpath(path).lstrip("/")


class ContainerMount(Record):
    """One mount of the container (an OCI ``mounts`` entry): a ``bind`` of a host path (``rbind`` and
    ``rprivate`` unless the options say otherwise, as ``docker run --mount type=bind``), a ``tmpfs``,
    or any filesystem type the kernel mounts. ``source`` defaults to the type's name."""

    __slots__ = ("destination", "source", "type", "options")

    def __init__(
        self, destination: str, source: str | None = None, type: str = "bind", options: Iterable[str] = ()
    ) -> None:
        self.destination: Final = destination
        self.source: Final = source
        self.type: Final = type
        self.options: Final = tuple(options)

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> ContainerMount:
        """From an OCI ``mounts`` entry: ``destination``, ``type``, ``source``, ``options``."""
        if not hasattr(raw, "keys"):
            raise InvalidArgumentError(f"with_mounts: a mount must be an object, not {type(raw).__name__}")
        unknown = sorted(set(raw) - {"destination", "type", "source", "options"})
        if unknown:
            raise InvalidArgumentError(f"with_mounts: mount {raw!r} has unsupported keys {unknown}")
        options = raw.get("options") or []
        if not isinstance(options, list) or not all(isinstance(o, str) for o in options):
            raise InvalidArgumentError(f"with_mounts: options of mount {raw!r} must be a list of strings")
        kind = raw.get("type", "bind")
        if "bind" in options or "rbind" in options:
            kind = "bind"
        destination = raw.get("destination")
        if not isinstance(destination, str):
            raise InvalidArgumentError(f"with_mounts: mount {raw!r} has no destination string")
        return cls(destination=destination, source=raw.get("source"), type=kind, options=options)

    def to_json(self) -> dict[str, Any]:
        """The OCI ``mounts`` entry, after checking every field (raises :class:`InvalidArgumentError`,
        or :class:`NotFoundError` for a bind source missing on the host)."""
        destination = _clean_absolute(self.destination, "with_mounts", "mount destination")
        where = f"with_mounts: mount on {destination}"
        if not self.type or "\0" in self.type:
            raise InvalidArgumentError(f"{where}: type {self.type!r} is not a filesystem type")
        for option in self.options:
            if not option or "\0" in option:
                raise InvalidArgumentError(f"{where}: option {option!r} is not a mount option")
        options = list(self.options)
        if self.type == "bind":
            source = _clean_absolute(self.source, where, "bind source")
            if not os.path.exists(source):
                raise NotFoundError(f"{where}: bind source {source} does not exist on the host")
            if "bind" not in options and "rbind" not in options:
                options.insert(0, "rbind")
            if not _PROPAGATIONS & set(options):
                options.append("rprivate")
        else:
            source = self.source if self.source is not None else self.type
            if not source or "\0" in source:
                raise InvalidArgumentError(f"{where}: source {source!r} is not a string")
        return {"destination": destination, "type": self.type, "source": source, "options": options}


def with_mounts(mounts: Iterable[ContainerMount | Mapping[str, Any]]) -> SpecOpt:
    """Add mounts (:class:`ContainerMount` or OCI ``mounts`` dicts); one on the destination of an
    existing mount (``/dev/shm``...) replaces it."""
    entries = [
        (m if isinstance(m, ContainerMount) else ContainerMount.from_json(m)).to_json() for m in mounts
    ]
    destinations = [entry["destination"] for entry in entries]
    doubled = sorted({d for d in destinations if destinations.count(d) > 1})
    if doubled:
        raise InvalidArgumentError(f"with_mounts: more than one mount on {', '.join(doubled)}")

    def opt(context: SpecContext, spec: dict[str, Any]) -> None:
        new = set(destinations)
        kept = [m for m in spec.get("mounts") or [] if m.get("destination") not in new]
        spec["mounts"] = [*kept, *(dict(entry, options=list(entry["options"])) for entry in entries)]

    return opt


def _positive_int(value: object, opt: str, what: str, low: int = 1, high: int | None = None) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < low
        or (high is not None and value > high)
    ):
        bound = f"from {low} to {high}" if high is not None else f"of at least {low}"
        raise InvalidArgumentError(f"{opt}: {what} must be an integer {bound}, not {value!r}")
    return value


def _resources(spec: dict[str, Any]) -> dict[str, Any]:
    resources: dict[str, Any] = linux_of(spec).setdefault("resources", {})
    return resources


def with_memory_limit(limit: int) -> SpecOpt:
    """Limit the container's memory to ``limit`` bytes (at least 6 MiB, Docker's minimum)."""
    value = _positive_int(limit, "with_memory_limit", "the limit in bytes", MIN_MEMORY)

    def opt(context: SpecContext, spec: dict[str, Any]) -> None:
        _resources(spec).setdefault("memory", {})["limit"] = value

    return opt


def with_memory_swap(limit: int) -> SpecOpt:
    """Limit the container's memory plus swap to ``limit`` bytes (``memory.swap``, Docker's
    ``--memory-swap``); ``-1`` lets it swap without limit. Needs a memory limit no larger, which the
    spec must have by the time this opt runs."""
    if limit != -1:
        _positive_int(limit, "with_memory_swap", "the limit in bytes (or -1)", MIN_MEMORY)

    def opt(context: SpecContext, spec: dict[str, Any]) -> None:
        memory = _resources(spec).setdefault("memory", {})
        if "limit" not in memory:
            raise InvalidArgumentError(
                "with_memory_swap: a swap limit needs a memory limit (with_memory_limit)"
            )
        if limit != -1 and limit < memory["limit"]:
            raise InvalidArgumentError(
                f"with_memory_swap: memory plus swap ({limit}) is below the memory limit ({memory['limit']})"
            )
        memory["swap"] = limit

    return opt


def _cpu_list(value: object, opt: str, what: str) -> str:
    """A cpuset list (``0-2,4``): numbers and ascending ranges, comma-separated."""
    if not isinstance(value, str) or not value:
        raise InvalidArgumentError(f"{opt}: {what} {value!r} is not a list like 0-2,4")
    for part in value.split(","):
        low, sep, high = part.partition("-")
        if not low.isdigit() or (sep and (not high.isdigit() or int(high) < int(low))):
            raise InvalidArgumentError(f"{opt}: {what} {value!r} is not a list like 0-2,4")
    return value


def with_cpuset(cpus: str | None = None, mems: str | None = None) -> SpecOpt:
    """Pin the container to CPUs and memory nodes (``cpuset.cpus``, ``cpuset.mems``; lists like
    ``0-2,4``), as ``docker run --cpuset-cpus/--cpuset-mems``. ``None`` leaves one as it is."""
    checked = {
        key: _cpu_list(value, "with_cpuset", key)
        for key, value in (("cpus", cpus), ("mems", mems))
        if value is not None
    }
    if not checked:
        raise InvalidArgumentError("with_cpuset: give cpus, mems or both")

    def opt(context: SpecContext, spec: dict[str, Any]) -> None:
        _resources(spec).setdefault("cpu", {}).update(checked)

    return opt


def with_pids_limit(limit: int) -> SpecOpt:
    """Limit the number of processes and threads in the container."""
    value = _positive_int(limit, "with_pids_limit", "the limit")

    def opt(context: SpecContext, spec: dict[str, Any]) -> None:
        _resources(spec)["pids"] = {"limit": value}

    return opt


def with_cpu_shares(shares: int) -> SpecOpt:
    """The container's relative CPU weight (``cpu.shares``; 1024 is the default weight)."""
    value = _positive_int(shares, "with_cpu_shares", "the shares", _MIN_SHARES, _MAX_SHARES)

    def opt(context: SpecContext, spec: dict[str, Any]) -> None:
        _resources(spec).setdefault("cpu", {})["shares"] = value

    return opt


def with_cpus(cpus: float) -> SpecOpt:
    """At most ``cpus`` CPUs' worth of time (``docker run --cpus``): a CFS quota per 100 ms period."""
    available = os.cpu_count() or 1
    if not 0.01 <= cpus <= available:
        raise InvalidArgumentError(
            f"with_cpus: {cpus!r} is out of range: this host has 0.01 to {available} CPUs"
        )
    quota = round(cpus * _CPU_PERIOD)

    def opt(context: SpecContext, spec: dict[str, Any]) -> None:
        cpu = _resources(spec).setdefault("cpu", {})
        cpu["quota"] = quota
        cpu["period"] = _CPU_PERIOD

    return opt


def _kind(kind: str, opt: str) -> str:
    if kind not in NAMESPACE_KINDS:
        raise InvalidArgumentError(f"{opt}: unknown namespace {kind!r} (one of {', '.join(NAMESPACE_KINDS)})")
    return kind


def with_host_namespace(kind: str) -> SpecOpt:
    """Share the host's namespace of ``kind`` (``docker run --network host``, ``--pid host``...):
    the container gets none of its own. Sharing the host's UTS namespace drops the hostname."""
    _kind(kind, "with_host_namespace")
    if kind == "mount":
        raise InvalidArgumentError("with_host_namespace: a container cannot share the host's mount namespace")

    def opt(context: SpecContext, spec: dict[str, Any]) -> None:
        linux = linux_of(spec)
        linux["namespaces"] = [ns for ns in linux.get("namespaces") or [] if ns.get("type") != kind]
        if kind == "uts":
            spec.pop("hostname", None)

    return opt


def with_namespace_path(kind: str, path: str) -> SpecOpt:
    """Join the existing namespace of ``kind`` at ``path`` (``/proc/PID/ns/net``, a bind-mounted
    nsfs file...). Joining a UTS namespace drops the hostname: it belongs to the namespace's owner."""
    _kind(kind, "with_namespace_path")
    target = _clean_absolute(path, "with_namespace_path", f"the {kind} namespace path")

    def opt(context: SpecContext, spec: dict[str, Any]) -> None:
        linux = linux_of(spec)
        others = [ns for ns in linux.get("namespaces") or [] if ns.get("type") != kind]
        linux["namespaces"] = [*others, {"type": kind, "path": target}]
        if kind == "uts":
            spec.pop("hostname", None)

    return opt


def with_sysctls(sysctls: Mapping[str, str]) -> SpecOpt:
    """Set kernel parameters in the container's namespaces (``linux.sysctl``, ``docker run
    --sysctl``), replacing those of the same key. Which keys a container may set is the runtime's
    rule (runc's, and pyrunc's: namespaced ones only, for the namespaces the container has)."""
    items: dict[object, object] = {}
    items.update(sysctls)
    for key, value in items.items():
        if not isinstance(key, str) or not key or "\0" in key or "=" in key or not isinstance(value, str):
            raise InvalidArgumentError(
                f"with_sysctls: {key!r}: {value!r}: keys must be sysctl names and values strings"
            )

    def opt(context: SpecContext, spec: dict[str, Any]) -> None:
        linux_of(spec).setdefault("sysctl", {}).update(items)

    return opt


def _device(host_path: object, permissions: object) -> tuple[str, int, int, os.stat_result]:
    where = f"with_devices: device {host_path!r}"
    if not isinstance(host_path, str) or not host_path.startswith("/"):
        raise InvalidArgumentError(f"{where} is not an absolute path")
    if (
        not isinstance(permissions, str)
        or not permissions
        or set(permissions) - set("rwm")
        or len(set(permissions)) != len(permissions)
    ):
        raise InvalidArgumentError(f"{where}: permissions {permissions!r} are not some of r, w and m")
    try:
        info = os.stat(host_path)  # through symlinks, as Docker's --device
    except FileNotFoundError:
        raise NotFoundError(f"{where} does not exist on the host") from None
    if stat.S_ISCHR(info.st_mode):
        kind = "c"
    elif stat.S_ISBLK(info.st_mode):
        kind = "b"
    else:
        raise InvalidArgumentError(f"{where} is not a device node")
    return kind, os.major(info.st_rdev), os.minor(info.st_rdev), info


def with_devices(devices: Iterable[tuple[str, str, str]]) -> SpecOpt:
    """Give the container host devices (``docker run --device``), each ``(path on the host, path in
    the container, cgroup permissions)`` with permissions some of ``rwm``: the node is created in
    the container (``linux.devices``, with the host node's type, numbers, mode and owner) and the
    device cgroup allows that access to it. Raises :class:`NotFoundError` for a missing host path,
    :class:`InvalidArgumentError` for one that is not a device node."""
    nodes: list[dict[str, Any]] = []
    rules: list[dict[str, Any]] = []
    given: list[object] = list(devices)  # checked at run time too: JSON and CLI callers
    for item in given:
        if not isinstance(item, tuple) or len(item) != 3:
            raise InvalidArgumentError(
                f"with_devices: {item!r} is not a (host path, container path, permissions) tuple"
            )
        host_path, container_path, permissions = item
        kind, major, minor, info = _device(host_path, permissions)
        path = _clean_absolute(container_path, "with_devices", "container path")
        nodes.append(
            {
                "path": path,
                "type": kind,
                "major": major,
                "minor": minor,
                "fileMode": stat.S_IMODE(info.st_mode),
                "uid": info.st_uid,
                "gid": info.st_gid,
            }
        )
        rules.append({"allow": True, "type": kind, "major": major, "minor": minor, "access": permissions})

    def opt(context: SpecContext, spec: dict[str, Any]) -> None:
        linux = linux_of(spec)
        new = {node["path"] for node in nodes}
        kept = [d for d in linux.get("devices") or [] if d.get("path") not in new]
        linux["devices"] = [*kept, *(dict(node) for node in nodes)]
        resources = _resources(spec)
        resources["devices"] = [*(resources.get("devices") or []), *(dict(rule) for rule in rules)]

    return opt


def with_hostname(name: str) -> SpecOpt:
    """Set the container's hostname (1 to 64 bytes, the kernel's limit)."""
    if not 0 < len(name.encode()) <= 64 or "\0" in name or "/" in name:
        raise InvalidArgumentError(f"with_hostname: {name!r} is not a hostname (1 to 64 bytes, no '/')")

    def opt(context: SpecContext, spec: dict[str, Any]) -> None:
        spec["hostname"] = name

    return opt


def with_readonly_rootfs() -> SpecOpt:
    """Mount the container's root filesystem read-only (``docker run --read-only``)."""

    def opt(context: SpecContext, spec: dict[str, Any]) -> None:
        spec.setdefault("root", {"path": "rootfs"})["readonly"] = True

    return opt


def with_rootfs(path: str) -> SpecOpt:
    """Set ``root.path``: the root filesystem, absolute or relative to the bundle."""
    if not path or "\0" in path:
        raise InvalidArgumentError(f"with_rootfs: {path!r} is not a path")

    def opt(context: SpecContext, spec: dict[str, Any]) -> None:
        spec.setdefault("root", {"readonly": False})["path"] = path

    return opt


def with_cgroups_path(path: str | None) -> SpecOpt:
    """Set ``linux.cgroupsPath`` (absolute: below each hierarchy's root; relative: below the
    runtime's own cgroup); ``None`` leaves it to the runtime's default."""
    if path is not None and (not path.strip("/") or "\0" in path):
        raise InvalidArgumentError(f"with_cgroups_path: {path!r} is not a cgroup path")

    def opt(context: SpecContext, spec: dict[str, Any]) -> None:
        linux = linux_of(spec)
        if path is None:
            linux.pop("cgroupsPath", None)
        else:
            linux["cgroupsPath"] = path

    return opt


def with_annotations(annotations: Mapping[str, str]) -> SpecOpt:
    """Add annotations (string keys and values), replacing those of the same key."""
    items: dict[object, object] = {}
    items.update(annotations)  # checked at run time too: JSON and CLI callers
    for key, value in items.items():
        if not isinstance(key, str) or not key or not isinstance(value, str):
            raise InvalidArgumentError(
                f"with_annotations: {key!r}: {value!r}: keys must be non-empty strings and values strings"
            )

    def opt(context: SpecContext, spec: dict[str, Any]) -> None:
        spec.setdefault("annotations", {}).update(items)

    return opt
