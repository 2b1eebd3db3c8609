"""The process part of the runtime spec: ``process`` with its user, rlimits, capabilities,
console size, I/O priority, scheduler and CPU affinity."""

from __future__ import annotations

from pyrunc._errors import SpecError
from pyrunc._model import Model
from pyrunc._spec.readers import (
    I32,
    I64,
    U32,
    U64,
    as_object,
    compact,
    dump_list,
    dump_optional,
    is_upper,
    name_set,
    path_of,
    read_enum_list,
    read_flag,
    read_int,
    read_int_list,
    read_model,
    read_models,
    read_str,
    read_str_list,
    require_abs_path,
    require_enum,
    require_int,
    require_str,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Final

_IOPRIO_CLASSES = name_set("IOPRIO_CLASS_", "RT BE IDLE")


_SCHED_POLICIES = name_set("SCHED_", "OTHER FIFO RR BATCH ISO IDLE DEADLINE")


_SCHED_FLAGS = name_set(
    "SCHED_FLAG_", "RESET_ON_FORK RECLAIM DL_OVERRUN KEEP_POLICY KEEP_PARAMS UTIL_CLAMP_MIN UTIL_CLAMP_MAX"
)


class ConsoleSize(Model):
    """``process.consoleSize``: the terminal's size in characters."""

    __slots__ = ("height", "width")

    def __init__(self, *, height: int = 0, width: int = 0) -> None:
        self.height: Final = height
        self.width: Final = width

    @classmethod
    def from_json(cls, obj: object, path: str = "process.consoleSize") -> ConsoleSize:
        o = as_object(obj, path)
        return cls(height=require_int(o, "height", path, U64), width=require_int(o, "width", path, U64))

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
        self.uid: Final = uid
        self.gid: Final = gid
        self.umask: Final = umask
        self.additional_gids: Final = additional_gids if additional_gids is not None else []
        self.username: Final = username

    @classmethod
    def from_json(cls, obj: object, path: str = "process.user") -> User:
        o = as_object(obj, path)
        return cls(
            uid=read_int(o, "uid", path, U32) or 0,
            gid=read_int(o, "gid", path, U32) or 0,
            umask=read_int(o, "umask", path, U32),
            additional_gids=read_int_list(o, "additionalGids", path, U32),
            username=read_str(o, "username", path),
        )

    def to_json(self) -> dict[str, object]:
        return compact(
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
        self.type: Final = type
        self.hard: Final = hard
        self.soft: Final = soft

    @classmethod
    def from_json(cls, obj: object, path: str = "process.rlimits[0]") -> Rlimit:
        o = as_object(obj, path)
        kind = require_str(o, "type", path)
        if not (kind.startswith("RLIMIT_") and len(kind) > 7 and is_upper(kind[7:])):
            raise SpecError(path_of(path, "type"), f'"{kind}" does not match ^RLIMIT_[A-Z]+$')
        return cls(type=kind, hard=require_int(o, "hard", path, U64), soft=require_int(o, "soft", path, U64))

    def to_json(self) -> dict[str, object]:
        return {"type": self.type, "hard": self.hard, "soft": self.soft}


class Capabilities(Model):
    """``process.capabilities``: the five capability sets; an absent set is ``[]``. Any string is
    taken (the schema's ArrayOfStrings): one that names no capability is left out of the process's
    with a warning (see pyrunc._plan.process), as runtime-spec 1.1 asks."""

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
        self.bounding: Final = bounding if bounding is not None else []
        self.effective: Final = effective if effective is not None else []
        self.inheritable: Final = inheritable if inheritable is not None else []
        self.permitted: Final = permitted if permitted is not None else []
        self.ambient: Final = ambient if ambient is not None else []

    @classmethod
    def from_json(cls, obj: object, path: str = "process.capabilities") -> Capabilities:
        o = as_object(obj, path)
        return cls(
            bounding=read_str_list(o, "bounding", path),
            effective=read_str_list(o, "effective", path),
            inheritable=read_str_list(o, "inheritable", path),
            permitted=read_str_list(o, "permitted", path),
            ambient=read_str_list(o, "ambient", path),
        )

    def to_json(self) -> dict[str, object]:
        return compact(
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
        self.class_: Final = class_
        self.priority: Final = priority

    @classmethod
    def from_json(cls, obj: object, path: str = "process.ioPriority") -> IOPriority:
        o = as_object(obj, path)
        return cls(
            class_=require_enum(o, "class", path, _IOPRIO_CLASSES, "I/O priority class"),
            priority=read_int(o, "priority", path, I32) or 0,
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
        self.policy: Final = policy
        self.nice: Final = nice
        self.priority: Final = priority
        self.flags: Final = flags if flags is not None else []
        self.runtime: Final = runtime
        self.deadline: Final = deadline
        self.period: Final = period

    @classmethod
    def from_json(cls, obj: object, path: str = "process.scheduler") -> Scheduler:
        o = as_object(obj, path)
        return cls(
            policy=require_enum(o, "policy", path, _SCHED_POLICIES, "scheduler policy"),
            nice=read_int(o, "nice", path, I32),
            priority=read_int(o, "priority", path, I32),
            flags=read_enum_list(o, "flags", path, _SCHED_FLAGS, "scheduler flag"),
            runtime=read_int(o, "runtime", path, U64),
            deadline=read_int(o, "deadline", path, U64),
            period=read_int(o, "period", path, U64),
        )

    def to_json(self) -> dict[str, object]:
        return compact(
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
    v = read_str(o, key, path)
    if v is not None and v.strip("0123456789, -"):
        raise SpecError(path_of(path, key), f'"{v}" is not a CPU list like "0-3,7"')
    return v


class ExecCPUAffinity(Model):
    """``process.execCPUAffinity``: CPU lists (``"0-3,7"``) for ``runc exec`` before and after joining."""

    __slots__ = ("initial", "final")

    def __init__(self, *, initial: str | None = None, final: str | None = None) -> None:
        self.initial: Final = initial
        self.final: Final = final

    @classmethod
    def from_json(cls, obj: object, path: str = "process.execCPUAffinity") -> ExecCPUAffinity:
        o = as_object(obj, path)
        return cls(initial=_cpu_list(o, "initial", path), final=_cpu_list(o, "final", path))

    def to_json(self) -> dict[str, object]:
        return compact({"initial": self.initial, "final": self.final})


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
        self.terminal: Final = terminal
        self.console_size: Final = console_size
        self.cwd: Final = cwd
        self.env: Final = env if env is not None else []
        self.args: Final = args if args is not None else []
        self.command_line: Final = command_line
        self.user: Final = user if user is not None else User()
        self.rlimits: Final = rlimits if rlimits is not None else []
        self.capabilities: Final = capabilities
        self.no_new_privileges: Final = no_new_privileges
        self.oom_score_adj: Final = oom_score_adj
        self.apparmor_profile: Final = apparmor_profile
        self.selinux_label: Final = selinux_label
        self.io_priority: Final = io_priority
        self.scheduler: Final = scheduler
        self.exec_cpu_affinity: Final = exec_cpu_affinity

    @classmethod
    def from_json(cls, obj: object, path: str = "process") -> Process:
        o = as_object(obj, path)
        cwd = require_abs_path(o, "cwd", path)
        args = read_str_list(o, "args", path)
        command_line = read_str(o, "commandLine", path)
        if not args and command_line is None:  # "at least one entry is REQUIRED (non-Windows)"
            raise SpecError(path_of(path, "args"), "required (at least one entry)")
        rlimits = read_models(o, "rlimits", path, Rlimit.from_json)
        seen: set[str] = set()
        for rlimit in rlimits:
            if rlimit.type in seen:
                raise SpecError(path_of(path, "rlimits"), f'duplicate rlimit type "{rlimit.type}"')
            seen.add(rlimit.type)
        return cls(
            terminal=read_flag(o, "terminal", path),
            console_size=read_model(o, "consoleSize", path, ConsoleSize.from_json),
            cwd=cwd,
            env=read_str_list(o, "env", path),
            args=args,
            command_line=command_line,
            user=read_model(o, "user", path, User.from_json),
            rlimits=rlimits,
            capabilities=read_model(o, "capabilities", path, Capabilities.from_json),
            no_new_privileges=read_flag(o, "noNewPrivileges", path),
            oom_score_adj=read_int(o, "oomScoreAdj", path, I64),
            apparmor_profile=read_str(o, "apparmorProfile", path),
            selinux_label=read_str(o, "selinuxLabel", path),
            io_priority=read_model(o, "ioPriority", path, IOPriority.from_json),
            scheduler=read_model(o, "scheduler", path, Scheduler.from_json),
            exec_cpu_affinity=read_model(o, "execCPUAffinity", path, ExecCPUAffinity.from_json),
        )

    def to_json(self) -> dict[str, object]:
        return compact(
            {
                "terminal": self.terminal or None,
                "consoleSize": dump_optional(self.console_size),
                "user": self.user.to_json(),
                "args": self.args,
                "commandLine": self.command_line,
                "env": self.env,
                "cwd": self.cwd,
                "capabilities": dump_optional(self.capabilities),
                "rlimits": dump_list(self.rlimits),
                "noNewPrivileges": self.no_new_privileges or None,
                "apparmorProfile": self.apparmor_profile,
                "oomScoreAdj": self.oom_score_adj,
                "scheduler": dump_optional(self.scheduler),
                "selinuxLabel": self.selinux_label,
                "ioPriority": dump_optional(self.io_priority),
                "execCPUAffinity": dump_optional(self.exec_cpu_affinity),
            }
        )
