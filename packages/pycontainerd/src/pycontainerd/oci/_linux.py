"""Opts for the container's surroundings: mounts, resources, namespaces, hostname, root, cgroup,
annotations. Arguments are checked when the opt is made."""

from __future__ import annotations

import os
import posixpath

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
    "with_host_namespace",
    "with_hostname",
    "with_memory_limit",
    "with_mounts",
    "with_namespace_path",
    "with_pids_limit",
    "with_readonly_rootfs",
    "with_rootfs",
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
