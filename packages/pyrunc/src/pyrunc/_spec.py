"""Typed models of the OCI runtime-spec ``config.json`` (Linux parts).

See ``docs/model-contract.md``: plain ``__slots__`` classes (:class:`pyrunc._model.Model`), a keyword-only
``__init__``, ``X.from_json(obj, path)`` which validates what the JSON schemas constrain and raises
:class:`~pyrunc._errors.SpecError` naming the exact JSON path of a bad value, and ``x.to_json()`` which
gives the camelCase dict back (None and empty lists omitted). Unknown keys are ignored; an explicit
JSON ``null`` counts as an absent member (as it does for runc's Go decoder).

Start-up path: this module imports no typing, re, enum, dataclasses, inspect or even json at import
time; :func:`load_spec` imports json when it is called.
"""

from __future__ import annotations

from pyrunc._errors import SpecError
from pyrunc._model import Model
from pyrunc._spec_resources import (
    _FILE_MODE,
    _I32,
    _I64,
    _POSITIVE,
    _U32,
    _U64,
    BlockIO,
    Cpu,
    DeviceRule,
    HugepageLimit,
    Memory,
    Pids,
    Resources,
    ThrottleDevice,
    WeightDevice,
    _at,
    _at_key,
    _bool,
    _compact,
    _dump,
    _dump_opt,
    _enum,
    _enum_list,
    _flag,
    _int,
    _int_list,
    _is_upper,
    _list,
    _map,
    _model,
    _models,
    _obj,
    _raw,
    _req_enum,
    _req_int,
    _req_str,
    _str,
    _str_list,
    _str_map,
)

__all__ = [
    "OTHER_PLATFORMS",
    "BlockIO",
    "Capabilities",
    "ConsoleSize",
    "Cpu",
    "Device",
    "DeviceRule",
    "ExecCPUAffinity",
    "Hook",
    "Hooks",
    "HugepageLimit",
    "IDMapping",
    "IOPriority",
    "Linux",
    "Memory",
    "Mount",
    "Namespace",
    "Pids",
    "Process",
    "Resources",
    "Rlimit",
    "Root",
    "RuntimeSpec",
    "Scheduler",
    "ThrottleDevice",
    "TimeOffset",
    "User",
    "WeightDevice",
    "default_spec",
    "load_spec",
]

#: Top-level platform objects other than ``linux``, recorded in ``RuntimeSpec.other_platforms``.
OTHER_PLATFORMS = ("solaris", "windows", "vm", "zos", "freebsd")


def _names(prefix: str, words: str) -> frozenset[str]:
    """The enum values ``prefix + word`` for each space-separated word."""
    return frozenset(prefix + word for word in words.split())


# Enums of the schemas (defs-linux.json, config-schema.json).
_NAMESPACE_TYPES = _names("", "mount pid network uts ipc user cgroup time")
_DEVICE_TYPES = _names("", "c b u p")
# rootfsPropagation: the schema's four values and the recursive variants that runc accepts too.
_PROPAGATIONS = _names("", "private shared slave unbindable rprivate rshared rslave runbindable")
_IOPRIO_CLASSES = _names("IOPRIO_CLASS_", "RT BE IDLE")
_SCHED_POLICIES = _names("SCHED_", "OTHER FIFO RR BATCH ISO IDLE DEADLINE")
_SCHED_FLAGS = _names(
    "SCHED_FLAG_", "RESET_ON_FORK RECLAIM DL_OVERRUN KEEP_POLICY KEEP_PARAMS UTIL_CLAMP_MIN UTIL_CLAMP_MAX"
)
_SECCOMP_ACTIONS = _names("SCMP_ACT_", "KILL KILL_PROCESS KILL_THREAD TRAP ERRNO TRACE ALLOW LOG NOTIFY")
_SECCOMP_FLAGS = _names("SECCOMP_FILTER_FLAG_", "TSYNC LOG SPEC_ALLOW WAIT_KILLABLE_RECV")
_SECCOMP_ARCHES = _names(
    "SCMP_ARCH_",
    "X86 X86_64 X32 ARM AARCH64 LOONGARCH64 M68K MIPS MIPS64 MIPS64N32 MIPSEL MIPSEL64 MIPSEL64N32 "
    "PPC PPC64 PPC64LE S390 S390X SH SHEB PARISC PARISC64 RISCV64",
)
_SECCOMP_OPS = _names("SCMP_CMP_", "NE LT LE EQ GE GT MASKED_EQ")
_MPOL_MODES = _names("MPOL_", "DEFAULT BIND INTERLEAVE WEIGHTED_INTERLEAVE PREFERRED PREFERRED_MANY LOCAL")
_MPOL_FLAGS = _names("MPOL_F_", "NUMA_BALANCING RELATIVE_NODES STATIC_NODES")
_PERSONALITY_DOMAINS = _names("", "LINUX LINUX32")


def _abs_path(o: dict[str, object], key: str, path: str) -> str | None:
    """A string member that must be an absolute path (where the spec text says so)."""
    v = _str(o, key, path)
    if v is not None and not v.startswith("/"):
        raise SpecError(_at(path, key), "must be an absolute path")
    return v


def _req_abs_path(o: dict[str, object], key: str, path: str) -> str:
    v = _abs_path(o, key, path)
    if v is None:
        raise SpecError(_at(path, key), "required")
    return v


# -- root, mounts, hooks ------------------------------------------------------------------------------


class Root(Model):
    """``root``: the container's root filesystem (``path`` relative to the bundle or absolute)."""

    __slots__ = ("path", "readonly")

    def __init__(self, *, path: str = "", readonly: bool = False) -> None:
        self.path = path
        self.readonly = readonly

    @classmethod
    def from_json(cls, obj: object, path: str = "root") -> Root:
        o = _obj(obj, path)
        return cls(path=_req_str(o, "path", path), readonly=_flag(o, "readonly", path))

    def to_json(self) -> dict[str, object]:
        return _compact({"path": self.path, "readonly": self.readonly or None})


class IDMapping(Model):
    """A user or group ID mapping (``uidMappings``/``gidMappings``) of ``size`` IDs."""

    __slots__ = ("container_id", "host_id", "size")

    def __init__(self, *, container_id: int = 0, host_id: int = 0, size: int = 0) -> None:
        self.container_id = container_id
        self.host_id = host_id
        self.size = size

    @classmethod
    def from_json(cls, obj: object, path: str = "linux.uidMappings[0]") -> IDMapping:
        o = _obj(obj, path)
        return cls(
            container_id=_req_int(o, "containerID", path, _U32),
            host_id=_req_int(o, "hostID", path, _U32),
            size=_req_int(o, "size", path, _U32),
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
        self.destination = destination
        self.type = type
        self.source = source
        self.options = options if options is not None else []
        self.uid_mappings = uid_mappings if uid_mappings is not None else []
        self.gid_mappings = gid_mappings if gid_mappings is not None else []

    @classmethod
    def from_json(cls, obj: object, path: str = "mounts[0]") -> Mount:
        o = _obj(obj, path)
        return cls(
            destination=_req_str(o, "destination", path),
            type=_str(o, "type", path),
            source=_str(o, "source", path),
            options=_str_list(o, "options", path),
            uid_mappings=_models(o, "uidMappings", path, IDMapping.from_json),
            gid_mappings=_models(o, "gidMappings", path, IDMapping.from_json),
        )

    def to_json(self) -> dict[str, object]:
        return _compact(
            {
                "destination": self.destination,
                "type": self.type,
                "source": self.source,
                "options": self.options,
                "uidMappings": _dump(self.uid_mappings),
                "gidMappings": _dump(self.gid_mappings),
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
        self.path = path
        self.args = args if args is not None else []
        self.env = env if env is not None else []
        self.timeout = timeout

    @classmethod
    def from_json(cls, obj: object, path: str = "hooks.prestart[0]") -> Hook:
        o = _obj(obj, path)
        return cls(
            path=_req_abs_path(o, "path", path),
            args=_str_list(o, "args", path),
            env=_str_list(o, "env", path),
            timeout=_int(o, "timeout", path, _POSITIVE),
        )

    def to_json(self) -> dict[str, object]:
        return _compact({"path": self.path, "args": self.args, "env": self.env, "timeout": self.timeout})


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
        self.prestart = prestart if prestart is not None else []
        self.create_runtime = create_runtime if create_runtime is not None else []
        self.create_container = create_container if create_container is not None else []
        self.start_container = start_container if start_container is not None else []
        self.poststart = poststart if poststart is not None else []
        self.poststop = poststop if poststop is not None else []

    @classmethod
    def from_json(cls, obj: object, path: str = "hooks") -> Hooks:
        o = _obj(obj, path)
        hook = Hook.from_json
        return cls(
            prestart=_models(o, "prestart", path, hook),
            create_runtime=_models(o, "createRuntime", path, hook),
            create_container=_models(o, "createContainer", path, hook),
            start_container=_models(o, "startContainer", path, hook),
            poststart=_models(o, "poststart", path, hook),
            poststop=_models(o, "poststop", path, hook),
        )

    def to_json(self) -> dict[str, object]:
        return _compact(
            {
                "prestart": _dump(self.prestart),
                "createRuntime": _dump(self.create_runtime),
                "createContainer": _dump(self.create_container),
                "startContainer": _dump(self.start_container),
                "poststart": _dump(self.poststart),
                "poststop": _dump(self.poststop),
            }
        )


# -- process --------------------------------------------------------------------------------------------


class ConsoleSize(Model):
    """``process.consoleSize``: the terminal's size in characters."""

    __slots__ = ("height", "width")

    def __init__(self, *, height: int = 0, width: int = 0) -> None:
        self.height = height
        self.width = width

    @classmethod
    def from_json(cls, obj: object, path: str = "process.consoleSize") -> ConsoleSize:
        o = _obj(obj, path)
        return cls(height=_req_int(o, "height", path, _U64), width=_req_int(o, "width", path, _U64))

    def to_json(self) -> dict[str, object]:
        return {"height": self.height, "width": self.width}


class User(Model):
    """``process.user``: IDs in the container's user namespace."""

    __slots__ = ("uid", "gid", "umask", "additional_gids", "username")

    def __init__(
        self,
        *,
        uid: int = 0,
        gid: int = 0,
        umask: int | None = None,
        additional_gids: list[int] | None = None,
        username: str | None = None,
    ) -> None:
        self.uid = uid
        self.gid = gid
        self.umask = umask
        self.additional_gids = additional_gids if additional_gids is not None else []
        self.username = username

    @classmethod
    def from_json(cls, obj: object, path: str = "process.user") -> User:
        o = _obj(obj, path)
        return cls(
            uid=_int(o, "uid", path, _U32) or 0,
            gid=_int(o, "gid", path, _U32) or 0,
            umask=_int(o, "umask", path, _U32),
            additional_gids=_int_list(o, "additionalGids", path, _U32),
            username=_str(o, "username", path),
        )

    def to_json(self) -> dict[str, object]:
        return _compact(
            {
                "uid": self.uid,
                "gid": self.gid,
                "umask": self.umask,
                "additionalGids": self.additional_gids,
                "username": self.username,
            }
        )


class Rlimit(Model):
    """An entry of ``process.rlimits`` (``type`` like ``"RLIMIT_NOFILE"``)."""

    __slots__ = ("type", "hard", "soft")

    def __init__(self, *, type: str = "", hard: int = 0, soft: int = 0) -> None:
        self.type = type
        self.hard = hard
        self.soft = soft

    @classmethod
    def from_json(cls, obj: object, path: str = "process.rlimits[0]") -> Rlimit:
        o = _obj(obj, path)
        kind = _req_str(o, "type", path)
        if not (kind.startswith("RLIMIT_") and len(kind) > 7 and _is_upper(kind[7:])):
            raise SpecError(_at(path, "type"), f'"{kind}" does not match ^RLIMIT_[A-Z]+$')
        return cls(type=kind, hard=_req_int(o, "hard", path, _U64), soft=_req_int(o, "soft", path, _U64))

    def to_json(self) -> dict[str, object]:
        return {"type": self.type, "hard": self.hard, "soft": self.soft}


def _caps(o: dict[str, object], key: str, path: str) -> list[str]:
    names = _str_list(o, key, path)
    for i, name in enumerate(names):
        if not (name.startswith("CAP_") and len(name) > 4 and _is_upper(name[4:], "_")):
            raise SpecError(f"{_at(path, key)}[{i}]", f'"{name}" is not a capability name (^CAP_[A-Z_]+$)')
    return names


class Capabilities(Model):
    """``process.capabilities``: the five capability sets; an absent set is ``[]``."""

    __slots__ = ("bounding", "effective", "inheritable", "permitted", "ambient")

    def __init__(
        self,
        *,
        bounding: list[str] | None = None,
        effective: list[str] | None = None,
        inheritable: list[str] | None = None,
        permitted: list[str] | None = None,
        ambient: list[str] | None = None,
    ) -> None:
        self.bounding = bounding if bounding is not None else []
        self.effective = effective if effective is not None else []
        self.inheritable = inheritable if inheritable is not None else []
        self.permitted = permitted if permitted is not None else []
        self.ambient = ambient if ambient is not None else []

    @classmethod
    def from_json(cls, obj: object, path: str = "process.capabilities") -> Capabilities:
        o = _obj(obj, path)
        return cls(
            bounding=_caps(o, "bounding", path),
            effective=_caps(o, "effective", path),
            inheritable=_caps(o, "inheritable", path),
            permitted=_caps(o, "permitted", path),
            ambient=_caps(o, "ambient", path),
        )

    def to_json(self) -> dict[str, object]:
        return _compact(
            {
                "bounding": self.bounding,
                "effective": self.effective,
                "inheritable": self.inheritable,
                "permitted": self.permitted,
                "ambient": self.ambient,
            }
        )


class IOPriority(Model):
    """``process.ioPriority``: ``class_`` is the JSON ``class`` (``IOPRIO_CLASS_RT|BE|IDLE``)."""

    __slots__ = ("class_", "priority")

    def __init__(self, *, class_: str = "IOPRIO_CLASS_BE", priority: int = 0) -> None:
        self.class_ = class_
        self.priority = priority

    @classmethod
    def from_json(cls, obj: object, path: str = "process.ioPriority") -> IOPriority:
        o = _obj(obj, path)
        return cls(
            class_=_req_enum(o, "class", path, _IOPRIO_CLASSES, "I/O priority class"),
            priority=_int(o, "priority", path, _I32) or 0,
        )

    def to_json(self) -> dict[str, object]:
        return {"class": self.class_, "priority": self.priority}


class Scheduler(Model):
    """``process.scheduler``: sched_setattr(2) parameters (``runtime``/``deadline``/``period`` in ns)."""

    __slots__ = ("policy", "nice", "priority", "flags", "runtime", "deadline", "period")

    def __init__(
        self,
        *,
        policy: str = "SCHED_OTHER",
        nice: int | None = None,
        priority: int | None = None,
        flags: list[str] | None = None,
        runtime: int | None = None,
        deadline: int | None = None,
        period: int | None = None,
    ) -> None:
        self.policy = policy
        self.nice = nice
        self.priority = priority
        self.flags = flags if flags is not None else []
        self.runtime = runtime
        self.deadline = deadline
        self.period = period

    @classmethod
    def from_json(cls, obj: object, path: str = "process.scheduler") -> Scheduler:
        o = _obj(obj, path)
        return cls(
            policy=_req_enum(o, "policy", path, _SCHED_POLICIES, "scheduler policy"),
            nice=_int(o, "nice", path, _I32),
            priority=_int(o, "priority", path, _I32),
            flags=_enum_list(o, "flags", path, _SCHED_FLAGS, "scheduler flag"),
            runtime=_int(o, "runtime", path, _U64),
            deadline=_int(o, "deadline", path, _U64),
            period=_int(o, "period", path, _U64),
        )

    def to_json(self) -> dict[str, object]:
        return _compact(
            {
                "policy": self.policy,
                "nice": self.nice,
                "priority": self.priority,
                "flags": self.flags,
                "runtime": self.runtime,
                "deadline": self.deadline,
                "period": self.period,
            }
        )


def _cpu_list(o: dict[str, object], key: str, path: str) -> str | None:
    v = _str(o, key, path)
    if v is not None and v.strip("0123456789, -"):
        raise SpecError(_at(path, key), f'"{v}" is not a CPU list like "0-3,7"')
    return v


class ExecCPUAffinity(Model):
    """``process.execCPUAffinity``: CPU lists (``"0-3,7"``) for ``runc exec`` before and after joining."""

    __slots__ = ("initial", "final")

    def __init__(self, *, initial: str | None = None, final: str | None = None) -> None:
        self.initial = initial
        self.final = final

    @classmethod
    def from_json(cls, obj: object, path: str = "process.execCPUAffinity") -> ExecCPUAffinity:
        o = _obj(obj, path)
        return cls(initial=_cpu_list(o, "initial", path), final=_cpu_list(o, "final", path))

    def to_json(self) -> dict[str, object]:
        return _compact({"initial": self.initial, "final": self.final})


class Process(Model):
    """``process``: the container's process (also the JSON of ``runc exec --process``)."""

    __slots__ = (
        "terminal",
        "console_size",
        "cwd",
        "env",
        "args",
        "command_line",
        "user",
        "rlimits",
        "capabilities",
        "no_new_privileges",
        "oom_score_adj",
        "apparmor_profile",
        "selinux_label",
        "io_priority",
        "scheduler",
        "exec_cpu_affinity",
    )

    def __init__(
        self,
        *,
        terminal: bool = False,
        console_size: ConsoleSize | None = None,
        cwd: str = "/",
        env: list[str] | None = None,
        args: list[str] | None = None,
        command_line: str | None = None,
        user: User | None = None,
        rlimits: list[Rlimit] | None = None,
        capabilities: Capabilities | None = None,
        no_new_privileges: bool = False,
        oom_score_adj: int | None = None,
        apparmor_profile: str | None = None,
        selinux_label: str | None = None,
        io_priority: IOPriority | None = None,
        scheduler: Scheduler | None = None,
        exec_cpu_affinity: ExecCPUAffinity | None = None,
    ) -> None:
        self.terminal = terminal
        self.console_size = console_size
        self.cwd = cwd
        self.env = env if env is not None else []
        self.args = args if args is not None else []
        self.command_line = command_line
        self.user = user if user is not None else User()
        self.rlimits = rlimits if rlimits is not None else []
        self.capabilities = capabilities
        self.no_new_privileges = no_new_privileges
        self.oom_score_adj = oom_score_adj
        self.apparmor_profile = apparmor_profile
        self.selinux_label = selinux_label
        self.io_priority = io_priority
        self.scheduler = scheduler
        self.exec_cpu_affinity = exec_cpu_affinity

    @classmethod
    def from_json(cls, obj: object, path: str = "process") -> Process:
        o = _obj(obj, path)
        cwd = _req_abs_path(o, "cwd", path)
        args = _str_list(o, "args", path)
        command_line = _str(o, "commandLine", path)
        if not args and command_line is None:  # "at least one entry is REQUIRED (non-Windows)"
            raise SpecError(_at(path, "args"), "required (at least one entry)")
        rlimits = _models(o, "rlimits", path, Rlimit.from_json)
        seen: set[str] = set()
        for rlimit in rlimits:
            if rlimit.type in seen:
                raise SpecError(_at(path, "rlimits"), f'duplicate rlimit type "{rlimit.type}"')
            seen.add(rlimit.type)
        return cls(
            terminal=_flag(o, "terminal", path),
            console_size=_model(o, "consoleSize", path, ConsoleSize.from_json),
            cwd=cwd,
            env=_str_list(o, "env", path),
            args=args,
            command_line=command_line,
            user=_model(o, "user", path, User.from_json),
            rlimits=rlimits,
            capabilities=_model(o, "capabilities", path, Capabilities.from_json),
            no_new_privileges=_flag(o, "noNewPrivileges", path),
            oom_score_adj=_int(o, "oomScoreAdj", path, _I64),
            apparmor_profile=_str(o, "apparmorProfile", path),
            selinux_label=_str(o, "selinuxLabel", path),
            io_priority=_model(o, "ioPriority", path, IOPriority.from_json),
            scheduler=_model(o, "scheduler", path, Scheduler.from_json),
            exec_cpu_affinity=_model(o, "execCPUAffinity", path, ExecCPUAffinity.from_json),
        )

    def to_json(self) -> dict[str, object]:
        return _compact(
            {
                "terminal": self.terminal or None,
                "consoleSize": _dump_opt(self.console_size),
                "user": self.user.to_json(),
                "args": self.args,
                "commandLine": self.command_line,
                "env": self.env,
                "cwd": self.cwd,
                "capabilities": _dump_opt(self.capabilities),
                "rlimits": _dump(self.rlimits),
                "noNewPrivileges": self.no_new_privileges or None,
                "apparmorProfile": self.apparmor_profile,
                "oomScoreAdj": self.oom_score_adj,
                "scheduler": _dump_opt(self.scheduler),
                "selinuxLabel": self.selinux_label,
                "ioPriority": _dump_opt(self.io_priority),
                "execCPUAffinity": _dump_opt(self.exec_cpu_affinity),
            }
        )


# -- linux ------------------------------------------------------------------------------------------


class Namespace(Model):
    """An entry of ``linux.namespaces``: a new namespace, or the one at ``path`` to join."""

    __slots__ = ("type", "path")

    def __init__(self, *, type: str = "", path: str | None = None) -> None:
        self.type = type
        self.path = path

    @classmethod
    def from_json(cls, obj: object, path: str = "linux.namespaces[0]") -> Namespace:
        o = _obj(obj, path)
        return cls(
            type=_req_enum(o, "type", path, _NAMESPACE_TYPES, "namespace type"),
            path=_abs_path(o, "path", path),
        )

    def to_json(self) -> dict[str, object]:
        return _compact({"type": self.type, "path": self.path})


class TimeOffset(Model):
    """A value of ``linux.timeOffsets`` (keyed by clock: ``boottime``, ``monotonic``)."""

    __slots__ = ("secs", "nanosecs")

    def __init__(self, *, secs: int | None = None, nanosecs: int | None = None) -> None:
        self.secs = secs
        self.nanosecs = nanosecs

    @classmethod
    def from_json(cls, obj: object, path: str = "linux.timeOffsets.monotonic") -> TimeOffset:
        o = _obj(obj, path)
        return cls(secs=_int(o, "secs", path, _I64), nanosecs=_int(o, "nanosecs", path, _U32))

    def to_json(self) -> dict[str, object]:
        return _compact({"secs": self.secs, "nanosecs": self.nanosecs})


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
        self.type = type
        self.path = path
        self.major = major
        self.minor = minor
        self.file_mode = file_mode
        self.uid = uid
        self.gid = gid

    @classmethod
    def from_json(cls, obj: object, path: str = "linux.devices[0]") -> Device:
        o = _obj(obj, path)
        kind = _req_enum(o, "type", path, _DEVICE_TYPES, "device type")
        major = _int(o, "major", path, _I64)
        minor = _int(o, "minor", path, _I64)
        if kind != "p":  # "major, minor (int64, REQUIRED unless type is p)"
            for key, value in (("major", major), ("minor", minor)):
                if value is None:
                    raise SpecError(_at(path, key), f'required for device type "{kind}"')
        return cls(
            type=kind,
            path=_req_str(o, "path", path),
            major=major,
            minor=minor,
            file_mode=_int(o, "fileMode", path, _FILE_MODE),
            uid=_int(o, "uid", path, _U32),
            gid=_int(o, "gid", path, _U32),
        )

    def to_json(self) -> dict[str, object]:
        return _compact(
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


def _check_seccomp(o: dict[str, object], path: str) -> None:
    _req_enum(o, "defaultAction", path, _SECCOMP_ACTIONS, "seccomp action")
    _int(o, "defaultErrnoRet", path, _U32)
    _enum_list(o, "flags", path, _SECCOMP_FLAGS, "seccomp flag")
    _str(o, "listenerPath", path)
    _str(o, "listenerMetadata", path)
    _enum_list(o, "architectures", path, _SECCOMP_ARCHES, "seccomp architecture")
    for i, v in enumerate(_list(o, "syscalls", path)):
        where = f"{path}.syscalls[{i}]"
        syscall = _obj(v, where)
        if not _str_list(syscall, "names", where):
            raise SpecError(_at(where, "names"), "required (at least one name)")
        _req_enum(syscall, "action", where, _SECCOMP_ACTIONS, "seccomp action")
        _int(syscall, "errnoRet", where, _U32)
        for j, a in enumerate(_list(syscall, "args", where)):
            at = f"{where}.args[{j}]"
            arg = _obj(a, at)
            _req_int(arg, "index", at, _U32)
            _req_int(arg, "value", at, _U64)
            _int(arg, "valueTwo", at, _U64)
            _req_enum(arg, "op", at, _SECCOMP_OPS, "seccomp operator")


def _check_intel_rdt(o: dict[str, object], path: str) -> None:
    _str(o, "closID", path)
    _str_list(o, "schemata", path)
    _str(o, "l3CacheSchema", path)
    mb = _str(o, "memBwSchema", path)
    if mb is not None and (not mb.startswith("MB:") or "\n" in mb):
        raise SpecError(_at(path, "memBwSchema"), "must be one line starting with MB:")
    _bool(o, "enableMonitoring", path)


def _check_personality(o: dict[str, object], path: str) -> None:
    _enum(o, "domain", path, _PERSONALITY_DOMAINS, "personality domain")
    _str_list(o, "flags", path)


def _check_memory_policy(o: dict[str, object], path: str) -> None:
    _enum(o, "mode", path, _MPOL_MODES, "memory policy mode")
    _str(o, "nodes", path)
    _enum_list(o, "flags", path, _MPOL_FLAGS, "memory policy flag")


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
        self.namespaces = namespaces if namespaces is not None else []
        self.uid_mappings = uid_mappings if uid_mappings is not None else []
        self.gid_mappings = gid_mappings if gid_mappings is not None else []
        self.time_offsets = time_offsets if time_offsets is not None else {}
        self.devices = devices if devices is not None else []
        self.net_devices = net_devices if net_devices is not None else {}
        self.cgroups_path = cgroups_path
        self.resources = resources
        self.rootfs_propagation = rootfs_propagation
        self.seccomp = seccomp
        self.sysctl = sysctl if sysctl is not None else {}
        self.masked_paths = masked_paths if masked_paths is not None else []
        self.readonly_paths = readonly_paths if readonly_paths is not None else []
        self.mount_label = mount_label
        self.intel_rdt = intel_rdt
        self.personality = personality
        self.memory_policy = memory_policy

    @classmethod
    def from_json(cls, obj: object, path: str = "linux") -> Linux:
        o = _obj(obj, path)
        namespaces = _models(o, "namespaces", path, Namespace.from_json)
        seen: set[str] = set()
        for ns in namespaces:
            if ns.type in seen:
                raise SpecError(_at(path, "namespaces"), f'duplicate namespace type "{ns.type}"')
            seen.add(ns.type)
        offsets_at = _at(path, "timeOffsets")
        net_at = _at(path, "netDevices")
        net_devices: dict[str, dict[str, object]] = {}
        for name, dev in _map(o, "netDevices", path).items():
            where = _at_key(net_at, name)
            net_devices[name] = dict(_obj(dev, where))
            _str(net_devices[name], "name", where)
        return cls(
            namespaces=namespaces,
            uid_mappings=_models(o, "uidMappings", path, IDMapping.from_json),
            gid_mappings=_models(o, "gidMappings", path, IDMapping.from_json),
            time_offsets={
                clock: TimeOffset.from_json(v, _at_key(offsets_at, clock))
                for clock, v in _map(o, "timeOffsets", path).items()
            },
            devices=_models(o, "devices", path, Device.from_json),
            net_devices=net_devices,
            cgroups_path=_str(o, "cgroupsPath", path),
            resources=_model(o, "resources", path, Resources.from_json),
            rootfs_propagation=_enum(o, "rootfsPropagation", path, _PROPAGATIONS, "rootfs propagation"),
            seccomp=_raw(o, "seccomp", path, _check_seccomp),
            sysctl=_str_map(o, "sysctl", path),
            masked_paths=_str_list(o, "maskedPaths", path),
            readonly_paths=_str_list(o, "readonlyPaths", path),
            mount_label=_str(o, "mountLabel", path),
            intel_rdt=_raw(o, "intelRdt", path, _check_intel_rdt),
            personality=_raw(o, "personality", path, _check_personality),
            memory_policy=_raw(o, "memoryPolicy", path, _check_memory_policy),
        )

    def to_json(self) -> dict[str, object]:
        return _compact(
            {
                "uidMappings": _dump(self.uid_mappings),
                "gidMappings": _dump(self.gid_mappings),
                "sysctl": self.sysctl or None,
                "resources": _dump_opt(self.resources),
                "cgroupsPath": self.cgroups_path,
                "namespaces": _dump(self.namespaces),
                "devices": _dump(self.devices),
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


# -- the whole config.json ----------------------------------------------------------------------------


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
        self.oci_version = oci_version
        self.root = root
        self.process = process
        self.hostname = hostname
        self.domainname = domainname
        self.mounts = mounts if mounts is not None else []
        self.hooks = hooks
        self.annotations = annotations if annotations is not None else {}
        self.linux = linux
        self.other_platforms = other_platforms if other_platforms is not None else []

    @classmethod
    def from_json(cls, obj: object, path: str = "") -> RuntimeSpec:
        o = _obj(obj, path)
        return cls(
            oci_version=_req_str(o, "ociVersion", path),
            root=_model(o, "root", path, Root.from_json),
            process=_model(o, "process", path, Process.from_json),
            hostname=_str(o, "hostname", path),
            domainname=_str(o, "domainname", path),
            mounts=_models(o, "mounts", path, Mount.from_json),
            hooks=_model(o, "hooks", path, Hooks.from_json),
            annotations=_str_map(o, "annotations", path),
            linux=_model(o, "linux", path, Linux.from_json),
            other_platforms=[name for name in OTHER_PLATFORMS if _model(o, name, path, _obj) is not None],
        )

    def to_json(self) -> dict[str, object]:
        out = _compact(
            {
                "ociVersion": self.oci_version,
                "process": _dump_opt(self.process),
                "root": _dump_opt(self.root),
                "hostname": self.hostname,
                "domainname": self.domainname,
                "mounts": _dump(self.mounts),
                "hooks": _dump_opt(self.hooks),
                "annotations": self.annotations or None,
                "linux": _dump_opt(self.linux),
            }
        )
        for name in self.other_platforms:
            out[name] = {}
        return out


# -- module functions -------------------------------------------------------------------------------


def load_spec(bundle: str) -> RuntimeSpec:
    """Read and validate ``<bundle>/config.json``; every problem is a :class:`SpecError`."""
    import os

    from pyrunc import _jsonio

    if not os.path.isdir(bundle):
        problem = "not a directory" if os.path.exists(bundle) else "no such directory"
        raise SpecError("", f"bundle {bundle}: {problem}")
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
    except RecursionError:
        raise SpecError("", f"{config}: invalid JSON: nested too deeply") from None
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
