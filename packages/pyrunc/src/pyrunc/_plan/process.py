"""The process part of a plan: user namespaces and ID mappings, rlimits, no_new_privs, the
seccomp filter, capabilities and the user switch, the environment. See :mod:`.compile`."""

from __future__ import annotations

import os

from pyrunc._errors import SpecError
from pyrunc._native.kernel import NAMESPACE_FLAGS, CloneFlags, Op, OpKind
from pyrunc._spec.readers import check_no_nul

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    from pyrunc._plan.plan import Plan
    from pyrunc._spec.config import IDMapping, RuntimeSpec
    from pyrunc._spec.process import Process


CAPABILITIES = (  # by number: CAP_CHOWN is 0
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
)


CAPABILITY_NUMBERS = {name: number for number, name in enumerate(CAPABILITIES)}


RLIMITS = {
    "CPU": 0,
    "FSIZE": 1,
    "DATA": 2,
    "STACK": 3,
    "CORE": 4,
    "RSS": 5,
    "NPROC": 6,
    "NOFILE": 7,
    "MEMLOCK": 8,
    "AS": 9,
    "LOCKS": 10,
    "SIGPENDING": 11,
    "MSGQUEUE": 12,
    "NICE": 13,
    "RTPRIO": 14,
    "RTTIME": 15,
}


_PR_SET_NO_NEW_PRIVS = 38


_PR_SET_KEEPCAPS = 8


_PR_CAP_AMBIENT = 47


_PR_CAP_AMBIENT_RAISE = 2


DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


_MAX_ID_MAP_LINES = 340  # the kernel's limit on the lines of /proc/<pid>/uid_map and gid_map


_LAST_ID = (1 << 32) - 2  # (uid_t)-1 is no ID


_MAX_GROUPS = 1024  # native.c's MAX_GROUPS


def uses_user_namespace(spec: RuntimeSpec) -> bool:
    """Whether the container gets a user namespace: its start needs the fork-mode launch (the
    parent writes the ID maps while the child waits)."""
    linux = spec.linux
    return linux is not None and any(ns.type == "user" for ns in linux.namespaces)


def _host_id(mappings: Sequence[IDMapping], container_id: int) -> int | None:
    for m in mappings:
        if m.container_id <= container_id < m.container_id + m.size:
            return m.host_id + container_id - m.container_id
    return None


def id_mappings(spec: RuntimeSpec, plan: Plan, new: set[str]) -> None:
    """Check linux.uidMappings and gidMappings against what the kernel accepts (and runc asks:
    mappings need a user namespace and the reverse, and the container's root must be mapped);
    keep them as the text the parent writes into the new namespace's maps."""
    linux = spec.linux
    uids = linux.uid_mappings if linux else []
    gids = linux.gid_mappings if linux else []
    joined = "user" in plan.joins
    if "user" not in new and not joined:
        if uids or gids:
            raise SpecError(
                "linux.uidMappings" if uids else "linux.gidMappings",
                "user namespace mappings specified, but the user namespace isn't enabled in linux.namespaces",
            )
        return
    for name, kind, mappings in (("uidMappings", "uid", uids), ("gidMappings", "gid", gids)):
        field = f"linux.{name}"
        if not mappings:
            raise SpecError(field, f"user namespaces enabled, but no {kind} mappings found")
        if len(mappings) > _MAX_ID_MAP_LINES:
            raise SpecError(field, f"{len(mappings)} mappings, the kernel takes at most {_MAX_ID_MAP_LINES}")
        for i, m in enumerate(mappings):
            if m.size <= 0:
                raise SpecError(f"{field}[{i}].size", "must be greater than 0")
            for what, first in (("containerID", m.container_id), ("hostID", m.host_id)):
                if first + m.size - 1 > _LAST_ID:
                    raise SpecError(
                        f"{field}[{i}].size",
                        f"{what} {first} + size {m.size} goes past the last ID ({_LAST_ID})",
                    )
            for j, other in enumerate(mappings[:i]):
                for what, first, other_first in (
                    ("container", m.container_id, other.container_id),
                    ("host", m.host_id, other.host_id),
                ):
                    if first < other_first + other.size and other_first < first + m.size:
                        raise SpecError(
                            f"{field}[{i}]",
                            f"{what} IDs {first}-{first + m.size - 1} overlap those of {field}[{j}] "
                            f"({other_first}-{other_first + other.size - 1})",
                        )
        if _host_id(mappings, 0) is None:
            raise SpecError(
                field, f"user namespaces enabled, but no root {kind} mapping found (containerID 0)"
            )
    process = spec.process
    if process is not None:
        user = process.user
        for field, kind, value, mappings in (
            ("process.user.uid", "uid", user.uid, uids),
            ("process.user.gid", "gid", user.gid, gids),
            *(
                (f"process.user.additionalGids[{i}]", "gid", gid, gids)
                for i, gid in enumerate(user.additional_gids)
            ),
        ):
            if _host_id(mappings, value) is None:
                raise SpecError(
                    field, f"{kind} {value} is not mapped in the user namespace (linux.{kind}Mappings)"
                )
    plan.user_ns = True
    if not joined:  # a joined namespace has its maps (runc 1.1, too, wants them in the spec)
        plan.uid_map = "".join(f"{m.container_id} {m.host_id} {m.size}\n" for m in uids)
        plan.gid_map = "".join(f"{m.container_id} {m.host_id} {m.size}\n" for m in gids)
    root_uid, root_gid = _host_id(uids, 0), _host_id(gids, 0)
    assert root_uid is not None and root_gid is not None
    plan.root_ids = (root_uid, root_gid)


def after_joining_user_ops(plan: Plan, new: set[str]) -> None:
    """A joined user namespace owns only what is made after joining it (runc joins it first, then
    unshares the rest): the new namespaces are unshared after the joins instead of made by clone.
    A new pid namespace takes only the children of whoever unshares it: the init is then forked
    (the child that joined leaves, see PYRUNC_OP_FORK)."""
    later = CloneFlags.NEWNS | CloneFlags.NEWUTS | CloneFlags.NEWNET | CloneFlags.NEWPID | CloneFlags.NEWIPC
    unshare = plan.clone_flags & later & ~CloneFlags.NEWPID
    plan.clone_flags &= ~later
    if unshare:
        names = ", ".join(name for name, flag in NAMESPACE_FLAGS.items() if unshare & flag)
        plan.add(OpKind.UNSHARE, f"create {names} namespaces (in the joined user namespace)", flags=unshare)
    if "pid" in new:
        plan.add(
            OpKind.UNSHARE, "create pid namespace (in the joined user namespace)", flags=CloneFlags.NEWPID
        )
        plan.add(OpKind.FORK, "fork the init into the new pid namespace")


def become_root_ops(plan: Plan, *, new_ipc: bool) -> None:
    """In a user namespace (a new one once the parent has written its maps): become its root, as
    runc does, so that what the init creates is owned by the container's root and the host's
    files are reached with the container root's rights, not the runtime's. With ``new_ipc`` the
    ipc namespace is made in between, where runc makes it: its mqueue filesystem (/dev/mqueue)
    belongs to the uid and gid that create the namespace (runc's: root's uid, the host's gid)."""
    plan.add(OpKind.SETGROUPS, "drop supplementary groups (user namespace)", gids=())
    plan.add(OpKind.SETRESUID, "become root in the user namespace: setresuid 0", id=0)
    if new_ipc:
        plan.clone_flags &= ~CloneFlags.NEWIPC
        plan.add(OpKind.UNSHARE, "create ipc namespace", flags=CloneFlags.NEWIPC)
    plan.add(OpKind.SETRESGID, "become root in the user namespace: setresgid 0", id=0)


def _user_ops(plan: Plan, process: Process) -> None:
    """Capabilities and the user switch. No ``capabilities`` member means no capabilities at
    all, as with runc (not "keep whatever the runtime has"). A capability that pyrunc or the kernel
    does not know is left out with a warning: runtime-spec 1.1 says a runtime SHOULD NOT fail for
    one it cannot grant, and runc 1.1 warns alike."""
    user = process.user
    caps = process.capabilities
    last_cap = _last_cap()
    masks: dict[str, int] = {}
    ignored: list[str] = []
    for set_name in ("bounding", "effective", "inheritable", "permitted", "ambient"):
        mask = 0
        for name in getattr(caps, set_name) if caps is not None else ():
            number = CAPABILITY_NUMBERS.get(name)
            if number is not None and number <= last_cap:
                mask |= 1 << number
            elif name not in ignored:
                ignored.append(name)
        masks[set_name] = mask
    if ignored:
        plan.warnings.append(f"ignoring unknown or unavailable capabilities: [{' '.join(ignored)}]")
    plan.add(
        OpKind.CAPBSET, "drop capabilities from the bounding set", last_cap=last_cap, keep=masks["bounding"]
    )
    if len(user.additional_gids) > _MAX_GROUPS:
        raise SpecError(
            "process.user.additionalGids",
            f"{len(user.additional_gids)} groups, more than the {_MAX_GROUPS} pyrunc sets",
        )
    plan.add(OpKind.SETGROUPS, f"setgroups {user.additional_gids}", gids=tuple(user.additional_gids))
    plan.add(OpKind.SETRESGID, f"setresgid {user.gid}", id=user.gid)
    plan.add(OpKind.PRCTL, "keep capabilities across setuid", option=_PR_SET_KEEPCAPS, arg2=1)
    plan.add(OpKind.SETRESUID, f"setresuid {user.uid}", id=user.uid)
    plan.add(
        OpKind.CAPSET,
        "set capabilities",
        effective=masks["effective"],
        permitted=masks["permitted"],
        inheritable=masks["inheritable"],
    )
    # The kernel only lets a capability into the ambient set if it is permitted and
    # inheritable; runc ignores the rest, so do we.
    ambient = masks["ambient"] & masks["permitted"] & masks["inheritable"]
    for cap in range(last_cap + 1):
        if ambient >> cap & 1:
            plan.add(
                OpKind.PRCTL,
                f"raise ambient {CAPABILITIES[cap]}",
                option=_PR_CAP_AMBIENT,
                arg2=_PR_CAP_AMBIENT_RAISE,
                arg3=cap,
            )
    plan.add(OpKind.UMASK, "umask", mask=user.umask if user.umask is not None else 0o022)


_last_cap_cache: list[int] = []


def _last_cap() -> int:
    if not _last_cap_cache:
        try:
            with open("/proc/sys/kernel/cap_last_cap", "rb") as f:
                _last_cap_cache.append(int(f.read()))
        except OSError:
            _last_cap_cache.append(len(CAPABILITIES) - 1)
    return _last_cap_cache[0]


def _home(rootfs: str, uid: int) -> str:
    """The user's home directory from the container's /etc/passwd, or "/" (runc sets HOME this
    way when the process's environment has none). A passwd that resolves outside the rootfs
    is not read."""
    passwd = os.path.realpath(os.path.join(rootfs, "etc/passwd"))
    if passwd.startswith(rootfs.rstrip("/") + "/"):
        try:
            with open(passwd, encoding="utf-8", errors="replace") as f:
                for line in f:
                    fields = line.rstrip("\n").split(":")
                    if len(fields) >= 6 and fields[2] == str(uid):
                        return fields[5] or "/"
        except OSError:
            pass
    return "/"


def seccomp_op(raw: dict[str, object] | None, cache: str | None = None) -> Op | None:
    """The op loading ``linux.seccomp``'s filter, compiled here with libseccomp (imported only
    when there is a filter: it costs start-up time), or taken from the directory of compiled
    filters ``cache`` (see :func:`pyrunc._plan.seccomp.build_filter`). None without a filter."""
    if raw is None:
        return None
    from pyrunc._plan.seccomp import build_filter

    program = build_filter(raw, cache=cache)
    step = f"load the seccomp filter ({len(program)} BPF instructions)"
    return Op(OpKind.SECCOMP, step, program=program.program, length=len(program.program), flags=program.flags)


def late_seccomp(plan: Plan, process: Process, seccomp: Op | None) -> None:
    """With no_new_privs the filter is loaded as late as possible, right before exec, so that it
    constrains as little of the set-up as possible (runc does the same)."""
    if seccomp is not None and process.no_new_privileges:
        plan.ops.append(seccomp)


def process_ops(plan: Plan, process: Process, rootfs: str, seccomp: Op | None = None) -> None:
    # A process made in Python (Container.exec, pyrunc.run, exec's command line) was not read from
    # JSON, where every string is checked: its program, environment and cwd are checked here. A
    # lone surrogate is taken: from the command line, it is a byte that was not UTF-8, and
    # os.fsencode gives it back.
    for field, values in (("process.args", process.args), ("process.env", process.env)):
        for i, value in enumerate(values):
            check_no_nul(value, f"{field}[{i}]")
    check_no_nul(process.cwd, "process.cwd")
    for i, rlimit in enumerate(process.rlimits):
        number = RLIMITS.get(rlimit.type.removeprefix("RLIMIT_"))
        if number is None:
            raise SpecError(f"process.rlimits[{i}].type", f"unknown rlimit {rlimit.type}")
        plan.add(OpKind.RLIMIT, f"set {rlimit.type}", resource=number, soft=rlimit.soft, hard=rlimit.hard)
    if process.no_new_privileges:
        plan.add(OpKind.PRCTL, "set no_new_privs", option=_PR_SET_NO_NEW_PRIVS, arg2=1)
    elif seccomp is not None:
        # Without no_new_privs loading a filter needs CAP_SYS_ADMIN: before the capabilities go.
        plan.ops.append(seccomp)
    _user_ops(plan, process)
    plan.add(OpKind.CHDIR, f"chdir to cwd {process.cwd}", path=process.cwd)
    plan.argv = list(process.args)
    plan.envp = list(process.env)
    if not any(entry.startswith("HOME=") for entry in plan.envp):
        plan.envp.append(f"HOME={_home(rootfs, process.user.uid)}")
    shown = process.args[0] if process.args else ""
    plan.add(OpKind.FIND_EXEC, f'exec: "{shown}"')
