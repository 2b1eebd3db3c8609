"""Typed models of the OCI runtime-spec ``config.json`` (Linux parts).

See ``docs/model-contract.md``: plain ``__slots__`` classes (:class:`pyrunc._model.Model`), a keyword-only
``__init__``, ``X.from_json(obj, path)`` which validates what the JSON schemas constrain and raises
:class:`~pyrunc._errors.SpecError` naming the exact JSON path of a bad value, and ``x.to_json()`` which
gives the camelCase dict back (None and empty lists omitted). Unknown keys are ignored; an explicit
JSON ``null`` counts as an absent member (as it does for runc's Go decoder).

The process and resources models are :mod:`.process`'s and :mod:`.resources`'; this module is on
the path of create (see ARCHITECTURE.md, start-up).
"""

from __future__ import annotations

from pyrunc._errors import SpecError
from pyrunc._model import Model
from pyrunc._spec.process import Capabilities, Process, Rlimit, User
from pyrunc._spec.readers import (
    FILE_MODE,
    I64,
    POSITIVE,
    U32,
    U64,
    as_object,
    compact,
    dump_list,
    dump_optional,
    name_set,
    path_of,
    path_of_key,
    read_abs_path,
    read_bool,
    read_enum,
    read_enum_list,
    read_flag,
    read_int,
    read_list,
    read_map,
    read_model,
    read_models,
    read_raw,
    read_str,
    read_str_list,
    read_str_map,
    require_abs_path,
    require_enum,
    require_int,
    require_str,
)
from pyrunc._spec.resources import DeviceRule, Resources

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Final

__all__ = [
    "OTHER_PLATFORMS",
    "Device",
    "Hook",
    "Hooks",
    "IDMapping",
    "Linux",
    "Mount",
    "Namespace",
    "Root",
    "RuntimeSpec",
    "TimeOffset",
    "default_spec",
    "load_spec",
]


#: Top-level platform objects other than ``linux``, recorded in ``RuntimeSpec.other_platforms``.
OTHER_PLATFORMS = ("solaris", "windows", "vm", "zos", "freebsd")


# Enums of the schemas (defs-linux.json, config-schema.json).
_NAMESPACE_TYPES = name_set("", "mount pid network uts ipc user cgroup time")


_DEVICE_TYPES = name_set("", "c b u p")


# rootfsPropagation: the schema's four values and the recursive variants that runc accepts too.
_PROPAGATIONS = name_set("", "private shared slave unbindable rprivate rshared rslave runbindable")


_SECCOMP_ACTIONS = name_set("SCMP_ACT_", "KILL KILL_PROCESS KILL_THREAD TRAP ERRNO TRACE ALLOW LOG NOTIFY")


_SECCOMP_FLAGS = name_set("SECCOMP_FILTER_FLAG_", "TSYNC LOG SPEC_ALLOW WAIT_KILLABLE_RECV")


_SECCOMP_ARCHES = name_set(
    "SCMP_ARCH_",
    "X86 X86_64 X32 ARM AARCH64 LOONGARCH64 M68K MIPS MIPS64 MIPS64N32 MIPSEL MIPSEL64 MIPSEL64N32 "
    "PPC PPC64 PPC64LE S390 S390X SH SHEB PARISC PARISC64 RISCV64",
)


_SECCOMP_OPS = name_set("SCMP_CMP_", "NE LT LE EQ GE GT MASKED_EQ")


_MPOL_MODES = name_set("MPOL_", "DEFAULT BIND INTERLEAVE WEIGHTED_INTERLEAVE PREFERRED PREFERRED_MANY LOCAL")


_MPOL_FLAGS = name_set("MPOL_F_", "NUMA_BALANCING RELATIVE_NODES STATIC_NODES")


_PERSONALITY_DOMAINS = name_set("", "LINUX LINUX32")


class Root(Model):
    """``root``: the container's root filesystem (``path`` relative to the bundle or absolute)."""

    __slots__ = ("path", "readonly")

    def __init__(self, *, path: str = "", readonly: bool = False) -> None:
        self.path: Final = path
        self.readonly: Final = readonly

    @classmethod
    def from_json(cls, obj: object, path: str = "root") -> Root:
        o = as_object(obj, path)
        return cls(path=require_str(o, "path", path), readonly=read_flag(o, "readonly", path))

    def to_json(self) -> dict[str, object]:
        return compact({"path": self.path, "readonly": self.readonly or None})


class IDMapping(Model):
    """A user or group ID mapping (``uidMappings``/``gidMappings``) of ``size`` IDs."""

    __slots__ = ("container_id", "host_id", "size")

    def __init__(self, *, container_id: int = 0, host_id: int = 0, size: int = 0) -> None:
        self.container_id: Final = container_id
        self.host_id: Final = host_id
        self.size: Final = size

    @classmethod
    def from_json(cls, obj: object, path: str = "linux.uidMappings[0]") -> IDMapping:
        o = as_object(obj, path)
        return cls(
            container_id=require_int(o, "containerID", path, U32),
            host_id=require_int(o, "hostID", path, U32),
            size=require_int(o, "size", path, U32),
        )

    def to_json(self) -> dict[str, object]:
        return {"containerID": self.container_id, "hostID": self.host_id, "size": self.size}


class Mount(Model):
    """An entry of ``mounts``, mounted in list order."""

    __slots__ = ("destination", "type", "source", "options", "uid_mappings", "gid_mappings")

    def __init__(
        self,
        *,
        destination: str = "",
        type: str | None = None,
        source: str | None = None,
        options: list[str] | None = None,
        uid_mappings: list[IDMapping] | None = None,
        gid_mappings: list[IDMapping] | None = None,
    ) -> None:
        self.destination: Final = destination
        self.type: Final = type
        self.source: Final = source
        self.options: Final = options if options is not None else []
        self.uid_mappings: Final = uid_mappings if uid_mappings is not None else []
        self.gid_mappings: Final = gid_mappings if gid_mappings is not None else []

    @classmethod
    def from_json(cls, obj: object, path: str = "mounts[0]") -> Mount:
        o = as_object(obj, path)
        return cls(
            destination=require_str(o, "destination", path),
            type=read_str(o, "type", path),
            source=read_str(o, "source", path),
            options=read_str_list(o, "options", path),
            uid_mappings=read_models(o, "uidMappings", path, IDMapping.from_json),
            gid_mappings=read_models(o, "gidMappings", path, IDMapping.from_json),
        )

    def to_json(self) -> dict[str, object]:
        return compact(
            {
                "destination": self.destination,
                "type": self.type,
                "source": self.source,
                "options": self.options,
                "uidMappings": dump_list(self.uid_mappings),
                "gidMappings": dump_list(self.gid_mappings),
            }
        )


class Hook(Model):
    """A hook command: ``path`` (absolute) run with ``args``/``env``, killed after ``timeout`` seconds."""

    __slots__ = ("path", "args", "env", "timeout")

    def __init__(
        self,
        *,
        path: str = "",
        args: list[str] | None = None,
        env: list[str] | None = None,
        timeout: int | None = None,
    ) -> None:
        self.path: Final = path
        self.args: Final = args if args is not None else []
        self.env: Final = env if env is not None else []
        self.timeout: Final = timeout

    @classmethod
    def from_json(cls, obj: object, path: str = "hooks.prestart[0]") -> Hook:
        o = as_object(obj, path)
        return cls(
            path=require_abs_path(o, "path", path),
            args=read_str_list(o, "args", path),
            env=read_str_list(o, "env", path),
            timeout=read_int(o, "timeout", path, POSITIVE),
        )

    def to_json(self) -> dict[str, object]:
        return compact({"path": self.path, "args": self.args, "env": self.env, "timeout": self.timeout})


class Hooks(Model):
    """``hooks``: the lists of hooks run at each point of the container lifecycle."""

    __slots__ = (
        "prestart",
        "create_runtime",
        "create_container",
        "start_container",
        "poststart",
        "poststop",
    )

    def __init__(
        self,
        *,
        prestart: list[Hook] | None = None,
        create_runtime: list[Hook] | None = None,
        create_container: list[Hook] | None = None,
        start_container: list[Hook] | None = None,
        poststart: list[Hook] | None = None,
        poststop: list[Hook] | None = None,
    ) -> None:
        self.prestart: Final = prestart if prestart is not None else []
        self.create_runtime: Final = create_runtime if create_runtime is not None else []
        self.create_container: Final = create_container if create_container is not None else []
        self.start_container: Final = start_container if start_container is not None else []
        self.poststart: Final = poststart if poststart is not None else []
        self.poststop: Final = poststop if poststop is not None else []

    @classmethod
    def from_json(cls, obj: object, path: str = "hooks") -> Hooks:
        o = as_object(obj, path)
        hook = Hook.from_json
        return cls(
            prestart=read_models(o, "prestart", path, hook),
            create_runtime=read_models(o, "createRuntime", path, hook),
            create_container=read_models(o, "createContainer", path, hook),
            start_container=read_models(o, "startContainer", path, hook),
            poststart=read_models(o, "poststart", path, hook),
            poststop=read_models(o, "poststop", path, hook),
        )

    def to_json(self) -> dict[str, object]:
        return compact(
            {
                "prestart": dump_list(self.prestart),
                "createRuntime": dump_list(self.create_runtime),
                "createContainer": dump_list(self.create_container),
                "startContainer": dump_list(self.start_container),
                "poststart": dump_list(self.poststart),
                "poststop": dump_list(self.poststop),
            }
        )


class Namespace(Model):
    """An entry of ``linux.namespaces``: a new namespace, or the one at ``path`` to join."""

    __slots__ = ("type", "path")

    def __init__(self, *, type: str = "", path: str | None = None) -> None:
        self.type: Final = type
        self.path: Final = path

    @classmethod
    def from_json(cls, obj: object, path: str = "linux.namespaces[0]") -> Namespace:
        o = as_object(obj, path)
        return cls(
            type=require_enum(o, "type", path, _NAMESPACE_TYPES, "namespace type"),
            path=read_abs_path(o, "path", path),
        )

    def to_json(self) -> dict[str, object]:
        return compact({"type": self.type, "path": self.path})


class TimeOffset(Model):
    """A value of ``linux.timeOffsets`` (keyed by clock: ``boottime``, ``monotonic``)."""

    __slots__ = ("secs", "nanosecs")

    def __init__(self, *, secs: int | None = None, nanosecs: int | None = None) -> None:
        self.secs: Final = secs
        self.nanosecs: Final = nanosecs

    @classmethod
    def from_json(cls, obj: object, path: str = "linux.timeOffsets.monotonic") -> TimeOffset:
        o = as_object(obj, path)
        return cls(secs=read_int(o, "secs", path, I64), nanosecs=read_int(o, "nanosecs", path, U32))

    def to_json(self) -> dict[str, object]:
        return compact({"secs": self.secs, "nanosecs": self.nanosecs})


class Device(Model):
    """An entry of ``linux.devices``: a device node to create in the container."""

    __slots__ = ("type", "path", "major", "minor", "file_mode", "uid", "gid")

    def __init__(
        self,
        *,
        type: str = "c",
        path: str = "",
        major: int | None = None,
        minor: int | None = None,
        file_mode: int | None = None,
        uid: int | None = None,
        gid: int | None = None,
    ) -> None:
        self.type: Final = type
        self.path: Final = path
        self.major: Final = major
        self.minor: Final = minor
        self.file_mode: Final = file_mode
        self.uid: Final = uid
        self.gid: Final = gid

    @classmethod
    def from_json(cls, obj: object, path: str = "linux.devices[0]") -> Device:
        o = as_object(obj, path)
        kind = require_enum(o, "type", path, _DEVICE_TYPES, "device type")
        major = read_int(o, "major", path, I64)
        minor = read_int(o, "minor", path, I64)
        if kind != "p":  # "major, minor (int64, REQUIRED unless type is p)"
            for key, value in (("major", major), ("minor", minor)):
                if value is None:
                    raise SpecError(path_of(path, key), f'required for device type "{kind}"')
        return cls(
            type=kind,
            path=require_str(o, "path", path),
            major=major,
            minor=minor,
            file_mode=read_int(o, "fileMode", path, FILE_MODE),
            uid=read_int(o, "uid", path, U32),
            gid=read_int(o, "gid", path, U32),
        )

    def to_json(self) -> dict[str, object]:
        return compact(
            {
                "path": self.path,
                "type": self.type,
                "major": self.major,
                "minor": self.minor,
                "fileMode": self.file_mode,
                "uid": self.uid,
                "gid": self.gid,
            }
        )


def _clock(name: str, path: str) -> str:
    """A key of linux.timeOffsets: the clocks a time namespace offsets."""
    if name not in ("boottime", "monotonic"):
        raise SpecError(
            path_of_key(path, name), "unknown clock (a time namespace offsets boottime and monotonic)"
        )
    return name


def _check_seccomp(o: dict[str, object], path: str) -> None:
    require_enum(o, "defaultAction", path, _SECCOMP_ACTIONS, "seccomp action")
    read_int(o, "defaultErrnoRet", path, U32)
    read_enum_list(o, "flags", path, _SECCOMP_FLAGS, "seccomp flag")
    read_str(o, "listenerPath", path)
    read_str(o, "listenerMetadata", path)
    read_enum_list(o, "architectures", path, _SECCOMP_ARCHES, "seccomp architecture")
    for i, v in enumerate(read_list(o, "syscalls", path)):
        where = f"{path}.syscalls[{i}]"
        syscall = as_object(v, where)
        if not read_str_list(syscall, "names", where):
            raise SpecError(path_of(where, "names"), "required (at least one name)")
        require_enum(syscall, "action", where, _SECCOMP_ACTIONS, "seccomp action")
        read_int(syscall, "errnoRet", where, U32)
        for j, a in enumerate(read_list(syscall, "args", where)):
            at = f"{where}.args[{j}]"
            arg = as_object(a, at)
            require_int(arg, "index", at, U32)
            require_int(arg, "value", at, U64)
            read_int(arg, "valueTwo", at, U64)
            require_enum(arg, "op", at, _SECCOMP_OPS, "seccomp operator")


def _check_intel_rdt(o: dict[str, object], path: str) -> None:
    read_str(o, "closID", path)
    read_str_list(o, "schemata", path)
    read_str(o, "l3CacheSchema", path)
    mb = read_str(o, "memBwSchema", path)
    if mb is not None and (not mb.startswith("MB:") or "\n" in mb):
        raise SpecError(path_of(path, "memBwSchema"), "must be one line starting with MB:")
    read_bool(o, "enableMonitoring", path)


def _check_personality(o: dict[str, object], path: str) -> None:
    read_enum(o, "domain", path, _PERSONALITY_DOMAINS, "personality domain")
    read_str_list(o, "flags", path)


def _check_memory_policy(o: dict[str, object], path: str) -> None:
    read_enum(o, "mode", path, _MPOL_MODES, "memory policy mode")
    read_str(o, "nodes", path)
    read_enum_list(o, "flags", path, _MPOL_FLAGS, "memory policy flag")


class Linux(Model):
    """``linux``: the Linux-specific configuration.

    ``seccomp``, ``intel_rdt``, ``personality``, ``memory_policy`` and the ``net_devices`` values are
    validated against the schema but kept as raw JSON dicts.
    """

    __slots__ = (
        "namespaces",
        "uid_mappings",
        "gid_mappings",
        "time_offsets",
        "devices",
        "net_devices",
        "cgroups_path",
        "resources",
        "rootfs_propagation",
        "seccomp",
        "sysctl",
        "masked_paths",
        "readonly_paths",
        "mount_label",
        "intel_rdt",
        "personality",
        "memory_policy",
    )

    def __init__(
        self,
        *,
        namespaces: list[Namespace] | None = None,
        uid_mappings: list[IDMapping] | None = None,
        gid_mappings: list[IDMapping] | None = None,
        time_offsets: dict[str, TimeOffset] | None = None,
        devices: list[Device] | None = None,
        net_devices: dict[str, dict[str, object]] | None = None,
        cgroups_path: str | None = None,
        resources: Resources | None = None,
        rootfs_propagation: str | None = None,
        seccomp: dict[str, object] | None = None,
        sysctl: dict[str, str] | None = None,
        masked_paths: list[str] | None = None,
        readonly_paths: list[str] | None = None,
        mount_label: str | None = None,
        intel_rdt: dict[str, object] | None = None,
        personality: dict[str, object] | None = None,
        memory_policy: dict[str, object] | None = None,
    ) -> None:
        self.namespaces: Final = namespaces if namespaces is not None else []
        self.uid_mappings: Final = uid_mappings if uid_mappings is not None else []
        self.gid_mappings: Final = gid_mappings if gid_mappings is not None else []
        self.time_offsets: Final = time_offsets if time_offsets is not None else {}
        self.devices: Final = devices if devices is not None else []
        self.net_devices: Final = net_devices if net_devices is not None else {}
        self.cgroups_path: Final = cgroups_path
        self.resources: Final = resources
        self.rootfs_propagation: Final = rootfs_propagation
        self.seccomp: Final = seccomp
        self.sysctl: Final = sysctl if sysctl is not None else {}
        self.masked_paths: Final = masked_paths if masked_paths is not None else []
        self.readonly_paths: Final = readonly_paths if readonly_paths is not None else []
        self.mount_label: Final = mount_label
        self.intel_rdt: Final = intel_rdt
        self.personality: Final = personality
        self.memory_policy: Final = memory_policy

    @classmethod
    def from_json(cls, obj: object, path: str = "linux") -> Linux:
        o = as_object(obj, path)
        namespaces = read_models(o, "namespaces", path, Namespace.from_json)
        seen: set[str] = set()
        for ns in namespaces:
            if ns.type in seen:
                raise SpecError(path_of(path, "namespaces"), f'duplicate namespace type "{ns.type}"')
            seen.add(ns.type)
        offsets_at = path_of(path, "timeOffsets")
        net_at = path_of(path, "netDevices")
        net_devices: dict[str, dict[str, object]] = {}
        for name, dev in read_map(o, "netDevices", path).items():
            where = path_of_key(net_at, name)
            net_devices[name] = dict(as_object(dev, where))
            read_str(net_devices[name], "name", where)
        return cls(
            namespaces=namespaces,
            uid_mappings=read_models(o, "uidMappings", path, IDMapping.from_json),
            gid_mappings=read_models(o, "gidMappings", path, IDMapping.from_json),
            time_offsets={
                _clock(clock, offsets_at): TimeOffset.from_json(v, path_of_key(offsets_at, clock))
                for clock, v in read_map(o, "timeOffsets", path).items()
            },
            devices=read_models(o, "devices", path, Device.from_json),
            net_devices=net_devices,
            cgroups_path=read_str(o, "cgroupsPath", path),
            resources=read_model(o, "resources", path, Resources.from_json),
            rootfs_propagation=read_enum(o, "rootfsPropagation", path, _PROPAGATIONS, "rootfs propagation"),
            seccomp=read_raw(o, "seccomp", path, _check_seccomp),
            sysctl=read_str_map(o, "sysctl", path),
            masked_paths=read_str_list(o, "maskedPaths", path),
            readonly_paths=read_str_list(o, "readonlyPaths", path),
            mount_label=read_str(o, "mountLabel", path),
            intel_rdt=read_raw(o, "intelRdt", path, _check_intel_rdt),
            personality=read_raw(o, "personality", path, _check_personality),
            memory_policy=read_raw(o, "memoryPolicy", path, _check_memory_policy),
        )

    def to_json(self) -> dict[str, object]:
        return compact(
            {
                "uidMappings": dump_list(self.uid_mappings),
                "gidMappings": dump_list(self.gid_mappings),
                "sysctl": self.sysctl or None,
                "resources": dump_optional(self.resources),
                "cgroupsPath": self.cgroups_path,
                "namespaces": dump_list(self.namespaces),
                "devices": dump_list(self.devices),
                "netDevices": self.net_devices or None,
                "seccomp": self.seccomp,
                "rootfsPropagation": self.rootfs_propagation,
                "maskedPaths": self.masked_paths,
                "readonlyPaths": self.readonly_paths,
                "mountLabel": self.mount_label,
                "intelRdt": self.intel_rdt,
                "memoryPolicy": self.memory_policy,
                "personality": self.personality,
                "timeOffsets": {k: v.to_json() for k, v in self.time_offsets.items()} or None,
            }
        )


class RuntimeSpec(Model):
    """The whole ``config.json``.

    ``other_platforms`` names the non-Linux platform objects present (``"windows"``...); the parser only
    records them (the runtime refuses them) and ``to_json`` writes each back as an empty object.
    """

    __slots__ = (
        "oci_version",
        "root",
        "process",
        "hostname",
        "domainname",
        "mounts",
        "hooks",
        "annotations",
        "linux",
        "other_platforms",
    )

    def __init__(
        self,
        *,
        oci_version: str = "1.0.2-dev",
        root: Root | None = None,
        process: Process | None = None,
        hostname: str | None = None,
        domainname: str | None = None,
        mounts: list[Mount] | None = None,
        hooks: Hooks | None = None,
        annotations: dict[str, str] | None = None,
        linux: Linux | None = None,
        other_platforms: list[str] | None = None,
    ) -> None:
        self.oci_version: Final = oci_version
        self.root: Final = root
        self.process: Final = process
        self.hostname: Final = hostname
        self.domainname: Final = domainname
        self.mounts: Final = mounts if mounts is not None else []
        self.hooks: Final = hooks
        self.annotations: Final = annotations if annotations is not None else {}
        self.linux: Final = linux
        self.other_platforms: Final = other_platforms if other_platforms is not None else []

    @classmethod
    def from_json(cls, obj: object, path: str = "") -> RuntimeSpec:
        o = as_object(obj, path)
        return cls(
            oci_version=require_str(o, "ociVersion", path),
            root=read_model(o, "root", path, Root.from_json),
            process=read_model(o, "process", path, Process.from_json),
            hostname=read_str(o, "hostname", path),
            domainname=read_str(o, "domainname", path),
            mounts=read_models(o, "mounts", path, Mount.from_json),
            hooks=read_model(o, "hooks", path, Hooks.from_json),
            annotations=read_str_map(o, "annotations", path),
            linux=read_model(o, "linux", path, Linux.from_json),
            other_platforms=[
                name for name in OTHER_PLATFORMS if read_model(o, name, path, as_object) is not None
            ],
        )

    def to_json(self) -> dict[str, object]:
        out = compact(
            {
                "ociVersion": self.oci_version,
                "process": dump_optional(self.process),
                "root": dump_optional(self.root),
                "hostname": self.hostname,
                "domainname": self.domainname,
                "mounts": dump_list(self.mounts),
                "hooks": dump_optional(self.hooks),
                "annotations": self.annotations or None,
                "linux": dump_optional(self.linux),
            }
        )
        for name in self.other_platforms:
            out[name] = {}
        return out


def load_spec(bundle: str) -> RuntimeSpec:
    """Read and validate ``<bundle>/config.json``; every problem is a :class:`SpecError`."""
    import os
    import stat

    from pyrunc import _jsonio

    try:
        is_dir = stat.S_ISDIR(os.stat(bundle).st_mode)
    except FileNotFoundError:
        raise SpecError("", f"bundle {bundle}: no such directory") from None
    except OSError as e:
        raise SpecError("", f"bundle {bundle}: {e.strerror}") from None
    except ValueError:
        raise SpecError("", f"bundle {bundle!r}: a path cannot hold a NUL byte") from None
    if not is_dir:
        raise SpecError("", f"bundle {bundle}: not a directory")
    config = os.path.join(bundle, "config.json")
    try:
        with open(config, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise SpecError("", f"bundle {bundle}: no config.json") from None
    except OSError as e:
        raise SpecError("", f"{config}: {e.strerror or e}") from None
    try:
        obj = _jsonio.loads(data.decode())
    except UnicodeDecodeError as e:
        raise SpecError("", f"{config}: invalid JSON: not UTF-8 ({e.reason} at byte {e.start})") from None
    except ValueError as e:
        raise SpecError("", f"{config}: invalid JSON: {e}") from None
    return RuntimeSpec.from_json(obj)


_CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]


_MOUNTS = (
    ("/proc", "proc", "proc", ()),
    ("/dev", "tmpfs", "tmpfs", ("nosuid", "strictatime", "mode=755", "size=65536k")),
    (
        "/dev/pts",
        "devpts",
        "devpts",
        ("nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"),
    ),
    ("/dev/shm", "tmpfs", "shm", ("nosuid", "noexec", "nodev", "mode=1777", "size=65536k")),
    ("/dev/mqueue", "mqueue", "mqueue", ("nosuid", "noexec", "nodev")),
    ("/sys", "sysfs", "sysfs", ("nosuid", "noexec", "nodev", "ro")),
    ("/sys/fs/cgroup", "cgroup", "cgroup", ("nosuid", "noexec", "nodev", "relatime", "ro")),
)


_MASKED_PATHS = (
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
    "/proc/scsi",
)


_READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")


def default_spec() -> RuntimeSpec:
    """A new spec equal to what ``runc spec`` (runc 1.1) writes."""
    return RuntimeSpec(
        oci_version="1.0.2-dev",
        process=Process(
            terminal=True,
            user=User(uid=0, gid=0),
            args=["sh"],
            env=["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            cwd="/",
            capabilities=Capabilities(
                bounding=list(_CAPS), effective=list(_CAPS), permitted=list(_CAPS), ambient=list(_CAPS)
            ),
            rlimits=[Rlimit(type="RLIMIT_NOFILE", hard=1024, soft=1024)],
            no_new_privileges=True,
        ),
        root=Root(path="rootfs", readonly=True),
        hostname="runc",
        mounts=[Mount(destination=d, type=t, source=s, options=list(opts)) for d, t, s, opts in _MOUNTS],
        linux=Linux(
            resources=Resources(devices=[DeviceRule(allow=False, access="rwm")]),
            namespaces=[Namespace(type=t) for t in ("pid", "network", "ipc", "uts", "mount")],
            masked_paths=list(_MASKED_PATHS),
            readonly_paths=list(_READONLY_PATHS),
        ),
    )
