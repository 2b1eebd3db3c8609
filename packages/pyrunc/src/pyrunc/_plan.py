"""Compile a runtime spec into the ops the container's init runs (see native.h).

All the decisions live here, in Python and testable without a kernel: which namespaces to
create or join, the order of mounts, devices, pivot_root, hostname, sysctls, masks, limits,
capabilities and the user switch. The C side only executes the list.

The order follows runc's init: join namespaces, prepare the rootfs (propagation, bind of the
rootfs onto itself, spec mounts, devices, cwd), pivot_root, hostname, sysctls, read-only and
masked paths, read-only root, rlimits, no_new_privs (without it: the seccomp filter),
capabilities and user, chdir, resolve argv[0], report ready, wait for start, the seccomp filter
(with no_new_privs), exec. The seccomp filter is compiled to BPF here, in the parent.
"""

from __future__ import annotations

import os

from pyrunc._errors import SpecError, UnsupportedFieldError
from pyrunc._kernel import CloneFlags, MountFlags, Op, OpKind

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    from pyrunc._spec import Hook, IDMapping, Mount, Process, RuntimeSpec

__all__ = ["Plan", "compile_exec", "compile_init", "mount_flags"]

NAMESPACE_FLAGS = {
    "pid": CloneFlags.NEWPID,
    "network": CloneFlags.NEWNET,
    "mount": CloneFlags.NEWNS,
    "ipc": CloneFlags.NEWIPC,
    "uts": CloneFlags.NEWUTS,
    "user": CloneFlags.NEWUSER,
    "cgroup": CloneFlags.NEWCGROUP,
    "time": CloneFlags.NEWTIME,
}
# /proc/<pid>/ns/<name> for each spec namespace type.
NAMESPACE_FILES = {
    "pid": "pid",
    "network": "net",
    "mount": "mnt",
    "ipc": "ipc",
    "uts": "uts",
    "user": "user",
    "cgroup": "cgroup",
    "time": "time",
}
# Joining order: the mount namespace last, since joining it changes what paths mean.
_JOIN_ORDER = ("user", "ipc", "uts", "network", "cgroup", "mount")

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

# mount(8)-style options: name -> (flags to set, flags to clear).
_MOUNT_OPTIONS: dict[str, tuple[int, int]] = {
    "defaults": (0, 0),
    "ro": (MountFlags.RDONLY, 0),
    "rw": (0, MountFlags.RDONLY),
    "nosuid": (MountFlags.NOSUID, 0),
    "suid": (0, MountFlags.NOSUID),
    "nodev": (MountFlags.NODEV, 0),
    "dev": (0, MountFlags.NODEV),
    "noexec": (MountFlags.NOEXEC, 0),
    "exec": (0, MountFlags.NOEXEC),
    "sync": (MountFlags.SYNCHRONOUS, 0),
    "async": (0, MountFlags.SYNCHRONOUS),
    "dirsync": (MountFlags.DIRSYNC, 0),
    "remount": (MountFlags.REMOUNT, 0),
    "mand": (MountFlags.MANDLOCK, 0),
    "nomand": (0, MountFlags.MANDLOCK),
    "atime": (0, MountFlags.NOATIME),
    "noatime": (MountFlags.NOATIME, 0),
    "diratime": (0, MountFlags.NODIRATIME),
    "nodiratime": (MountFlags.NODIRATIME, 0),
    "relatime": (MountFlags.RELATIME, 0),
    "norelatime": (0, MountFlags.RELATIME),
    "strictatime": (MountFlags.STRICTATIME, 0),
    "nostrictatime": (0, MountFlags.STRICTATIME),
    "lazytime": (MountFlags.LAZYTIME, 0),
    "nolazytime": (0, MountFlags.LAZYTIME),
    "nosymfollow": (MountFlags.NOSYMFOLLOW, 0),
    "symfollow": (0, MountFlags.NOSYMFOLLOW),
    "bind": (MountFlags.BIND, 0),
    "rbind": (MountFlags.BIND | MountFlags.REC, 0),
}
PROPAGATION = {
    "private": MountFlags.PRIVATE,
    "rprivate": MountFlags.PRIVATE | MountFlags.REC,
    "shared": MountFlags.SHARED,
    "rshared": MountFlags.SHARED | MountFlags.REC,
    "slave": MountFlags.SLAVE,
    "rslave": MountFlags.SLAVE | MountFlags.REC,
    "unbindable": MountFlags.UNBINDABLE,
    "runbindable": MountFlags.UNBINDABLE | MountFlags.REC,
}

# The devices every container gets when /dev is not bind-mounted from the host (runc's set).
DEFAULT_DEVICES = (
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
)
_DEV_LINKS = (
    ("/proc/self/fd", "/dev/fd"),
    ("/proc/self/fd/0", "/dev/stdin"),
    ("/proc/self/fd/1", "/dev/stdout"),
    ("/proc/self/fd/2", "/dev/stderr"),
)
_S_IFCHR = 0o020000
_S_IFBLK = 0o060000
_S_IFIFO = 0o010000
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class Plan:
    """A compiled container start: namespaces, joins and the ops for the child."""

    __slots__ = (
        "argv",
        "clone_flags",
        "envp",
        "gid_map",
        "joins",
        "ops",
        "root_ids",
        "slots",
        "sources",
        "time_offsets",
        "uid_map",
        "user_ns",
    )

    def __init__(self) -> None:
        self.ops: list[Op] = []
        self.clone_flags = 0
        # namespace type -> path to join (pid and time are joined by the parent before clone)
        self.joins: dict[str, str] = {}
        self.time_offsets: str | None = None
        self.argv: list[str] = []
        self.envp: list[str] = []
        # A user namespace (user_ns), new or joined. For a new one the parent writes the maps
        # into /proc/<pid>/{uid,gid}_map before it lets the child go on; root_ids are the host
        # uid and gid of the container's root.
        self.user_ns = False
        self.uid_map: str | None = None
        self.gid_map: str | None = None
        self.root_ids: tuple[int, int] | None = None
        # The child's slots of files it opens early (OPEN_SOURCE): namespace files to join, and
        # the bind sources (slot, path) it opens before it becomes the user namespace's root.
        self.slots = 0
        self.sources: list[tuple[int, str]] = []

    def new_slot(self) -> int:
        if self.slots >= _MAX_SOURCES:
            raise SpecError("mounts", f"more than {_MAX_SOURCES} bind mounts and namespaces to join")
        self.slots += 1
        return self.slots - 1

    def add(self, kind: int, step: str, **kw: object) -> None:
        self.ops.append(Op(kind, step, **kw))  # type: ignore[arg-type]


def mount_flags(options: Sequence[str], where: str) -> tuple[int, int, str]:
    """Split mount options into (flags, propagation flags, filesystem data)."""
    flags = 0
    propagation = 0
    data: list[str] = []
    for option in options:
        if option in _MOUNT_OPTIONS:
            set_, clear = _MOUNT_OPTIONS[option]
            flags = (flags | set_) & ~clear
        elif option in PROPAGATION:
            propagation |= PROPAGATION[option]
        elif option in ("tmpcopyup", "idmap", "ridmap") or (
            option.startswith("r") and option[1:] in _MOUNT_OPTIONS
        ):
            raise UnsupportedFieldError(where, f'mount option "{option}" is not supported by pyrunc yet')
        else:
            data.append(option)
    return flags, propagation, ",".join(data)


def _clean_destination(dest: str, where: str) -> str:
    if ".." in dest.split("/"):
        raise SpecError(where, f"{dest!r} must not contain '..': mounts stay inside the rootfs")
    return os.path.normpath("/" + dest).replace("//", "/")


def check_supported(spec: RuntimeSpec) -> None:
    """Refuse valid fields that pyrunc does not implement yet, naming each."""
    unsupported: list[str] = list(spec.other_platforms)
    process = spec.process
    if process is not None:
        for name, json_name in (
            ("apparmor_profile", "apparmorProfile"),
            ("selinux_label", "selinuxLabel"),
            ("io_priority", "ioPriority"),
            ("scheduler", "scheduler"),
            ("exec_cpu_affinity", "execCPUAffinity"),
            ("command_line", "commandLine"),
        ):
            if getattr(process, name):
                unsupported.append(f"process.{json_name}")
    linux = spec.linux
    if linux is not None:
        for name, json_name in (
            ("intel_rdt", "intelRdt"),
            ("personality", "personality"),
            ("memory_policy", "memoryPolicy"),
            ("mount_label", "mountLabel"),
            ("net_devices", "netDevices"),
        ):
            if getattr(linux, name):
                unsupported.append(f"linux.{json_name}")
        new_user = any(ns.type == "user" and not ns.path for ns in linux.namespaces)
        for i, ns in enumerate(linux.namespaces):
            if ns.type == "mount" and ns.path:
                unsupported.append(f"linux.namespaces[{i}].path (joining a mount namespace)")
            elif new_user and ns.path and ns.type in _JOIN_ORDER:
                # The child is in its new user namespace by then, with no privilege over these.
                unsupported.append(
                    f"linux.namespaces[{i}].path (joining a {ns.type} namespace together with a new user "
                    "namespace)"
                )
    for i, mount in enumerate(spec.mounts):
        if mount.uid_mappings or mount.gid_mappings:
            unsupported.append(f"mounts[{i}].uidMappings")
    if unsupported:
        raise UnsupportedFieldError(", ".join(unsupported))


def _namespaces(spec: RuntimeSpec, plan: Plan) -> set[str]:
    """Fill clone flags and joins; return the set of namespace types the container has new."""
    linux = spec.linux
    new: set[str] = set()
    for ns in linux.namespaces if linux else []:
        if ns.path:
            plan.joins[ns.type] = ns.path
        else:
            new.add(ns.type)
            if ns.type != "cgroup":  # unshared after the child has joined its cgroup
                plan.clone_flags |= NAMESPACE_FLAGS[ns.type]
    if "mount" not in new:
        raise SpecError("linux.namespaces", "a new mount namespace is required")
    if (spec.hostname or spec.domainname) and "uts" not in new:
        raise SpecError("hostname", "setting the hostname needs a new uts namespace")
    if linux is not None:
        for key in linux.sysctl:
            if key.startswith("net.") and "network" not in new:
                raise SpecError(f"linux.sysctl.{key}", "needs a new network namespace")
        if linux.time_offsets:
            if "time" not in new:
                raise SpecError("linux.timeOffsets", "needs a new time namespace")
            plan.time_offsets = "".join(
                f"{clock} {offset.secs or 0} {offset.nanosecs or 0}\n"
                for clock, offset in sorted(linux.time_offsets.items())
            )
        if "time" in new and plan.time_offsets is None:
            plan.time_offsets = ""
    plan.clone_flags &= ~CloneFlags.NEWTIME  # created by the parent, see pyrunc_spawn
    return new


_MAX_SOURCES = 1024  # native.h's PYRUNC_MAX_SOURCES
_MAX_ID_MAP_LINES = 340  # the kernel's limit on the lines of /proc/<pid>/uid_map and gid_map
_LAST_ID = (1 << 32) - 2  # (uid_t)-1 is no ID


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


def _id_mappings(spec: RuntimeSpec, plan: Plan, new: set[str]) -> None:
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


def _after_joining_user_ops(plan: Plan, new: set[str]) -> None:
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


def _become_root_ops(plan: Plan, *, new_ipc: bool) -> None:
    """In a user namespace (a new one once the parent has written its maps): become its root, as
    runc does, so that what the init creates is owned by the container's root and the host's
    files are reached with the container root's rights, not the runtime's. With ``new_ipc`` the
    ipc namespace is made in between, where runc makes it: its mqueue filesystem (/dev/mqueue)
    belongs to the uid and gid that create the namespace (runc's: root's uid, the host's gid)."""
    plan.add(OpKind.SETGROUPS, "drop supplementary groups (user namespace)", ids=())
    plan.add(OpKind.SETRESUID, "become root in the user namespace: setresuid 0", num=0)
    if new_ipc:
        plan.clone_flags &= ~CloneFlags.NEWIPC
        plan.add(OpKind.UNSHARE, "create ipc namespace", flags=CloneFlags.NEWIPC)
    plan.add(OpKind.SETRESGID, "become root in the user namespace: setresgid 0", num=0)


def _cleared_flags(options: Sequence[str]) -> int:
    """The mount flags that ``options`` ask to be off (``dev``, ``suid``, ``exec``, ``atime`` ...)."""
    cleared = 0
    for option in options:
        if option in _MOUNT_OPTIONS:
            set_, clear = _MOUNT_OPTIONS[option]
            cleared = (cleared | clear) & ~set_
    return cleared


def _bind_op(plan: Plan, step: str, source: str, dest: str, flags: int) -> None:
    """Bind ``source`` (a host path) on ``dest`` in the rootfs. In a user namespace the source
    is opened before the init becomes the namespace's root, with the runtime's own rights (runc
    1.1 opens bind sources from the host's user namespace, too)."""
    if not plan.user_ns:
        plan.add(OpKind.MOUNT, step, a=source, b=dest, flags=flags, in_root=True)
        return
    slot = plan.new_slot()
    plan.sources.append((slot, source))
    plan.add(OpKind.MOUNT, step, a=source, b=dest, flags=flags, in_root=True, ids=(slot,))


def _remount_op(plan: Plan, step: str, dest: str, flags: int, options: Sequence[str] = ()) -> None:
    """Remount a bind mount with ``flags``. In a user namespace the kernel has locked the
    source mount's nosuid, nodev, noexec, ro and atime flags on the bind: keep them (or the
    remount fails with EPERM), except those that ``options`` ask off (then it fails, rather
    than give a mount other than the one asked for); ``rw`` is not such a request (runc 1.1, too,
    keeps ro when the source is read-only)."""
    if not plan.user_ns:
        plan.add(OpKind.MOUNT, step, b=dest, flags=flags, in_root=True)
        return
    cleared = _cleared_flags(options) & ~MountFlags.RDONLY
    plan.add(OpKind.BIND_REMOUNT, step, b=dest, flags=flags, num=cleared, in_root=True)


def _join_ops(plan: Plan) -> None:
    """Open every namespace file first, then join them in _JOIN_ORDER, user first (as runc does:
    once in a joined user namespace, /proc/<pid>/ns of a process that has not exec'd yet is out
    of reach)."""
    slots = {}
    for ns_type in _JOIN_ORDER:
        if ns_type in plan.joins:
            path = plan.joins[ns_type]
            slots[ns_type] = slot = plan.new_slot()
            plan.add(
                OpKind.OPEN_SOURCE, f"open {ns_type} namespace {path}", a=path, num=slot, flags=os.O_RDONLY
            )
    for ns_type, slot in slots.items():
        plan.add(
            OpKind.SETNS,
            f"join {ns_type} namespace {plan.joins[ns_type]}",
            a=plan.joins[ns_type],
            flags=NAMESPACE_FLAGS[ns_type],
            ids=(slot,),
        )


def _mount_ops(
    plan: Plan,
    mount: Mount,
    index: int,
    bundle: str,
    cgroup_hierarchies: Sequence[tuple[str, str, str]],
    new_cgroupns: bool,
) -> None:
    where = f"mounts[{index}]"
    dest = _clean_destination(mount.destination, f"{where}.destination")
    flags, propagation, data = mount_flags(mount.options, f"{where}.options")
    fstype = mount.type or ("bind" if flags & MountFlags.BIND else "")
    on = f"{where} {dest}"
    if fstype == "bind" or flags & MountFlags.BIND:
        source = mount.source or ""
        if not source:
            raise SpecError(f"{where}.source", "a bind mount needs a source")
        if not os.path.isabs(source):
            source = os.path.join(bundle, source)
        if not os.path.lexists(source):
            raise SpecError(f"{where}.source", f"bind source {source} does not exist")
        if os.path.isdir(source):
            plan.add(OpKind.MKDIRS, f"create {on}", b=dest, num=0o755)
        else:
            plan.add(OpKind.MKFILE, f"create {on}", b=dest)
        bind = MountFlags.BIND | (flags & MountFlags.REC)
        _bind_op(plan, f"bind {source} on {on}", source, dest, bind)
        extra = flags & ~(MountFlags.BIND | MountFlags.REC | MountFlags.REMOUNT)
        if extra:
            _remount_op(
                plan,
                f"remount {on} ({', '.join(mount.options)})",
                dest,
                MountFlags.BIND | MountFlags.REMOUNT | extra,
                mount.options,
            )
    elif fstype == "cgroup" and cgroup_hierarchies:
        # cgroup v1: a tmpfs holding one mount per hierarchy, as runc builds it (runc leaves the
        # tmpfs itself writable and makes each hierarchy read-only; so do we).
        tmpfs_flags = MountFlags.NOSUID | MountFlags.NODEV | MountFlags.NOEXEC
        plan.add(
            OpKind.MOUNT,
            f"mount tmpfs on {on}",
            a="tmpfs",
            b=dest,
            c="tmpfs",
            flags=tmpfs_flags,
            d="mode=755",
            in_root=True,
            num=1,  # made if missing, else the covered directory's mode (sysfs: 0555), as runc
        )
        sub_flags = flags & ~(MountFlags.BIND | MountFlags.REC)
        for dirname, option, host_dir in cgroup_hierarchies:
            target = f"{dest}/{dirname}"
            plan.add(OpKind.MKDIRS, f"create {target}", b=target, num=0o755)
            if new_cgroupns:
                plan.add(
                    OpKind.MOUNT,
                    f"mount cgroup {option} on {target}",
                    a="cgroup",
                    b=target,
                    c="cgroup",
                    flags=sub_flags,
                    d=option,
                    in_root=True,
                )
            else:
                _bind_op(plan, f"bind {host_dir} on {target}", host_dir, target, MountFlags.BIND)
                if sub_flags:
                    _remount_op(
                        plan,
                        f"remount {target}",
                        target,
                        MountFlags.BIND | MountFlags.REMOUNT | sub_flags,
                        mount.options,
                    )
            if "," in dirname:
                for controller in dirname.split(","):
                    plan.add(OpKind.SYMLINK, f"link {dest}/{controller}", a=dirname, b=f"{dest}/{controller}")
    else:
        if fstype == "cgroup":  # unified host: the container's own cgroup2
            fstype = "cgroup2"
        if fstype != "tmpfs":  # a tmpfs target is made by the mount op itself (see num below)
            plan.add(OpKind.MKDIRS, f"create {on}", b=dest, num=0o755)
        plan.add(
            OpKind.MOUNT,
            f"mount {fstype} on {on}",
            a=mount.source or fstype,
            b=dest,
            c=fstype,
            flags=flags,
            d=data or None,
            in_root=True,
            num=1 if fstype == "tmpfs" else 0,  # made if missing, else keeps the covered dir's mode
        )
    if propagation:
        plan.add(OpKind.MOUNT, f"set propagation of {on}", b=dest, flags=propagation, in_root=True)


def _bind_device_op(plan: Plan, path: str, what: str) -> None:
    """In a user namespace mknod is refused: bind the host's node onto an empty file, as runc
    does (the node's mode and owner are then the host's)."""
    plan.add(OpKind.MKFILE, f"create {path} for the host's device{what}", b=path)
    plan.add(
        OpKind.MOUNT,
        f"bind the host's device {path}{what}",
        a=path,
        b=path,
        flags=MountFlags.BIND,
        in_root=True,
    )


def _device_ops(plan: Plan, spec: RuntimeSpec, dev_is_bind: bool) -> None:
    linux = spec.linux
    created: set[str] = set()
    if not dev_is_bind:
        for path, major, minor in DEFAULT_DEVICES:
            created.add(path)
            if plan.user_ns:
                _bind_device_op(plan, path, "")
                continue
            plan.add(
                OpKind.MKNOD,
                f"create device {path}",
                b=path,
                num=_S_IFCHR | 0o666,
                flags=os.makedev(major, minor),
                ids=(0, 0),
            )
    for i, device in enumerate(linux.devices if linux else []):
        if not dev_is_bind and device.path == "/dev/ptmx":
            continue  # always the symlink to pts/ptmx below, as runc makes it
        kind = {"c": _S_IFCHR, "u": _S_IFCHR, "b": _S_IFBLK, "p": _S_IFIFO}[device.type]
        if device.type != "p" and (device.major is None or device.minor is None):
            raise SpecError(f"linux.devices[{i}]", "major and minor are required for this device type")
        if plan.user_ns:
            path = _clean_destination(device.path, f"linux.devices[{i}].path")
            _bind_device_op(plan, path, f" (linux.devices[{i}])")
            continue
        mode = device.file_mode if device.file_mode is not None else 0o666
        plan.add(
            OpKind.MKNOD,
            f"create device {device.path} (linux.devices[{i}])",
            b=_clean_destination(device.path, f"linux.devices[{i}].path"),
            num=kind | (mode & 0o7777),
            flags=os.makedev(device.major or 0, device.minor or 0),
            ids=(device.uid or 0, device.gid or 0),
        )
    if not dev_is_bind:
        for target, link in _DEV_LINKS:
            plan.add(OpKind.SYMLINK, f"link {link}", a=target, b=link)
        if os.path.exists("/proc/kcore"):
            plan.add(OpKind.SYMLINK, "link /dev/core", a="/proc/kcore", b="/dev/core")
        if any(m.destination.rstrip("/") == "/dev/pts" for m in spec.mounts):
            plan.add(OpKind.SYMLINK, "link /dev/ptmx", a="pts/ptmx", b="/dev/ptmx")


def _rootfs_parent_mount(rootfs: str) -> str:
    """The mount point that holds ``rootfs`` (longest matching mount point in mountinfo)."""
    best = "/"
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            point = line.split(" ", 5)[4].replace("\\040", " ")
            if (rootfs == point or rootfs.startswith(point.rstrip("/") + "/")) and len(point) > len(best):
                best = point
    return best


def _user_ops(plan: Plan, process: Process) -> None:
    """Capabilities and the user switch. No ``capabilities`` member means no capabilities at
    all, as with runc (not "keep whatever the runtime has")."""
    user = process.user
    caps = process.capabilities
    last_cap = _last_cap()
    masks: dict[str, int] = {}
    for set_name in ("bounding", "effective", "inheritable", "permitted", "ambient"):
        mask = 0
        for i, name in enumerate(getattr(caps, set_name) if caps is not None else ()):
            number = CAPABILITY_NUMBERS.get(name)
            if number is None:
                raise SpecError(f"process.capabilities.{set_name}[{i}]", f"unknown capability {name}")
            if number <= last_cap:  # runc, too, skips what the kernel does not know
                mask |= 1 << number
        masks[set_name] = mask
    plan.add(
        OpKind.CAPBSET, "drop capabilities from the bounding set", num=last_cap, ids=(masks["bounding"],)
    )
    plan.add(OpKind.SETGROUPS, f"setgroups {user.additional_gids}", ids=tuple(user.additional_gids))
    plan.add(OpKind.SETRESGID, f"setresgid {user.gid}", num=user.gid)
    plan.add(OpKind.PRCTL, "keep capabilities across setuid", num=_PR_SET_KEEPCAPS, flags=1)
    plan.add(OpKind.SETRESUID, f"setresuid {user.uid}", num=user.uid)
    plan.add(
        OpKind.CAPSET, "set capabilities", ids=(masks["effective"], masks["permitted"], masks["inheritable"])
    )
    # The kernel only lets a capability into the ambient set if it is permitted and
    # inheritable; runc ignores the rest, so do we.
    ambient = masks["ambient"] & masks["permitted"] & masks["inheritable"]
    for cap in range(last_cap + 1):
        if ambient >> cap & 1:
            plan.add(
                OpKind.PRCTL,
                f"raise ambient {CAPABILITIES[cap]}",
                num=_PR_CAP_AMBIENT,
                flags=_PR_CAP_AMBIENT_RAISE,
                ids=(cap,),
            )
    plan.add(OpKind.UMASK, "umask", num=user.umask if user.umask is not None else 0o022)


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


def _seccomp_op(raw: dict[str, object] | None) -> Op | None:
    """The op loading ``linux.seccomp``'s filter, compiled here with libseccomp (imported only
    when there is a filter: it costs start-up time). None without a filter."""
    if raw is None:
        return None
    from pyrunc._seccomp import build_filter

    program = build_filter(raw)
    step = f"load the seccomp filter ({len(program)} BPF instructions)"
    return Op(OpKind.SECCOMP, step, a=program.program, num=len(program.program), flags=program.flags)


def _late_seccomp(plan: Plan, process: Process, seccomp: Op | None) -> None:
    """With no_new_privs the filter is loaded as late as possible, right before exec, so that it
    constrains as little of the set-up as possible (runc does the same)."""
    if seccomp is not None and process.no_new_privileges:
        plan.ops.append(seccomp)


def _process_ops(plan: Plan, process: Process, rootfs: str, seccomp: Op | None = None) -> None:
    for i, rlimit in enumerate(process.rlimits):
        number = RLIMITS.get(rlimit.type.removeprefix("RLIMIT_"))
        if number is None:
            raise SpecError(f"process.rlimits[{i}].type", f"unknown rlimit {rlimit.type}")
        plan.add(OpKind.RLIMIT, f"set {rlimit.type}", num=number, ids=(rlimit.soft, rlimit.hard))
    if process.no_new_privileges:
        plan.add(OpKind.PRCTL, "set no_new_privs", num=_PR_SET_NO_NEW_PRIVS, flags=1)
    elif seccomp is not None:
        # Without no_new_privs loading a filter needs CAP_SYS_ADMIN: before the capabilities go.
        plan.ops.append(seccomp)
    _user_ops(plan, process)
    plan.add(OpKind.CHDIR, f"chdir to cwd {process.cwd}", a=process.cwd)
    plan.argv = list(process.args)
    plan.envp = list(process.env)
    if not any(entry.startswith("HOME=") for entry in plan.envp):
        plan.envp.append(f"HOME={_home(rootfs, process.user.uid)}")
    shown = process.args[0] if process.args else ""
    plan.add(OpKind.FIND_EXEC, f'exec: "{shown}"')


def compile_init(
    spec: RuntimeSpec,
    *,
    bundle: str,
    cgroup_hierarchies: Sequence[tuple[str, str, str]] = (),
    no_pivot: bool = False,
    fifo_fd: int = -1,
    preserve_fds: int = 0,
    keyring: str | None = None,
    stdio: Sequence[int] = (),
    vfork_cgroups: Sequence[str] | None = None,
    oom_score_adj: int | None = None,
    container_id: str = "",
    console_fd: int = -1,
) -> Plan:
    """The plan for a container's init.

    ``fifo_fd`` >= 0 waits on the exec fifo (create); otherwise the init waits for a second
    message on the control socket (run). With ``vfork_cgroups`` (the cgroup directories to
    join) the plan is for vfork mode instead: the child joins those cgroups and sets its
    oom_score_adj itself, and runs straight through to exec. ``keyring`` names a new session
    keyring to join; ``stdio`` are fds to become the init's 0, 1, 2. With ``process.terminal``
    the init makes a pty and sends its master on ``console_fd`` (a connected unix socket).

    Hooks need the parent during set-up, so a spec with hooks cannot use vfork mode: before
    pivot_root the init stops (SYNC) for the parent's prestart and createRuntime hooks and runs
    createContainer hooks itself; startContainer hooks run after the start signal.
    """
    check_supported(spec)
    hooks = spec.hooks
    if hooks is not None and vfork_cgroups is not None and has_hooks(spec):
        raise ValueError("a spec with hooks needs the fork-mode launch")
    if vfork_cgroups is not None and uses_user_namespace(spec):
        raise ValueError("a spec with a user namespace needs the fork-mode launch")
    process = spec.process
    if process is None:
        raise SpecError("process", "required to start a container")
    if not process.args:
        raise SpecError("process.args", "must name the program to run")
    if spec.root is None:
        raise SpecError("root", "required")
    rootfs = spec.root.path
    if not os.path.isabs(rootfs):
        rootfs = os.path.join(bundle, rootfs)
    rootfs = os.path.realpath(rootfs)
    if not os.path.isdir(rootfs):
        raise SpecError("root.path", f"rootfs {rootfs} is not a directory")

    plan = Plan()
    new = _namespaces(spec, plan)
    _id_mappings(spec, plan, new)
    linux = spec.linux
    plan.add(OpKind.SET_DUMPABLE, "make the init non-dumpable", num=0)
    for target, fd in enumerate(stdio):
        plan.add(OpKind.DUP2, f"set up fd {target}", num=fd, flags=target)
    plan.add(OpKind.CLOEXEC_FROM, "mark inherited fds close-on-exec", num=3 + preserve_fds)
    if vfork_cgroups is None:
        plan.add(OpKind.WAIT, "wait for the parent")
    else:
        for directory in vfork_cgroups:
            plan.add(OpKind.WRITE_FILE, f"join cgroup {directory}", a=f"{directory}/cgroup.procs", b="0")
        if oom_score_adj is not None:
            adj = str(oom_score_adj)
            plan.add(OpKind.WRITE_FILE, "set oom_score_adj", a="/proc/self/oom_score_adj", b=adj)
    _join_ops(plan)
    if "user" in plan.joins:
        _after_joining_user_ops(plan, new)
    sources_at = len(plan.ops)  # OPEN_SOURCE ops go here, once the mounts are known
    if plan.user_ns:
        _become_root_ops(plan, new_ipc="ipc" in new and "user" in new)
    if keyring is not None:
        plan.add(OpKind.JOIN_KEYRING, f"join session keyring {keyring}", a=keyring)
    if "cgroup" in new:
        plan.add(OpKind.UNSHARE, "create cgroup namespace", flags=CloneFlags.NEWCGROUP)

    # The root filesystem.
    propagation_name = linux.rootfs_propagation if linux else None
    propagation = PROPAGATION.get(propagation_name or "rslave", MountFlags.SLAVE | MountFlags.REC)
    root_propagation = propagation | MountFlags.REC if propagation_name else MountFlags.SLAVE | MountFlags.REC
    plan.add(OpKind.MOUNT, "set propagation of /", b="/", flags=root_propagation)
    if propagation & MountFlags.SHARED:
        parent = _rootfs_parent_mount(rootfs)
        plan.add(OpKind.MOUNT, f"make {parent} private for pivot_root", b=parent, flags=MountFlags.PRIVATE)
    plan.add(
        OpKind.MOUNT, f"bind rootfs {rootfs}", a=rootfs, b=rootfs, flags=MountFlags.BIND | MountFlags.REC
    )
    plan.add(OpKind.OPEN_ROOT, f"open rootfs {rootfs}", a=rootfs)
    dev_is_bind = False
    for index, mount in enumerate(spec.mounts):
        _mount_ops(plan, mount, index, bundle, cgroup_hierarchies, "cgroup" in new)
        if mount.destination.rstrip("/") == "/dev":
            dev_is_bind = mount.type == "bind" or "bind" in mount.options or "rbind" in mount.options
    _device_ops(plan, spec, dev_is_bind)
    plan.ops[sources_at:sources_at] = [
        Op(OpKind.OPEN_SOURCE, f"open bind source {source}", a=source, num=slot, flags=os.O_PATH)
        for slot, source in plan.sources
    ]
    plan.add(OpKind.MKDIRS, f"create cwd {process.cwd}", b=process.cwd, num=0o755)
    if hooks is not None:
        if hooks.prestart or hooks.create_runtime:
            plan.add(OpKind.SYNC, "wait for the prestart and createRuntime hooks")
        _hook_ops(plan, "createContainer", hooks.create_container, spec, bundle, container_id, "creating")
    if no_pivot:
        plan.add(OpKind.MOVE_ROOT, f"move {rootfs} to / and chroot", a=rootfs)
    else:
        plan.add(OpKind.PIVOT_ROOT, f"pivot_root to {rootfs}", a=rootfs)
    if propagation_name:
        plan.add(OpKind.MOUNT, f"set rootfsPropagation {propagation_name}", b="/", flags=propagation)
    _console_op(plan, process, console_fd)
    if "network" in new:
        plan.add(OpKind.LOOPBACK_UP, "bring up the loopback interface")
    if spec.hostname is not None:
        plan.add(OpKind.SETHOSTNAME, f"sethostname {spec.hostname}", a=spec.hostname)
    if spec.domainname is not None:
        plan.add(OpKind.SETDOMAINNAME, f"setdomainname {spec.domainname}", a=spec.domainname)
    if linux is not None:
        for key, value in linux.sysctl.items():
            path = "/proc/sys/" + key.replace(".", "/")
            plan.add(OpKind.WRITE_FILE, f"write sysctl {key}={value}", a=path, b=value)
        for path in linux.readonly_paths:
            plan.add(OpKind.READONLY, f"make {path} read-only", a=path, in_root=True)
        for path in linux.masked_paths:
            plan.add(OpKind.MASK, f"mask {path}", a=path, in_root=True)
    if spec.root.readonly:
        plan.add(OpKind.REMOUNT_RO, "make the root read-only", a="/")
    seccomp = _seccomp_op(linux.seccomp if linux else None)
    _process_ops(plan, process, rootfs, seccomp)
    if vfork_cgroups is None:
        plan.add(OpKind.READY, "report ready")
        if fifo_fd >= 0:
            plan.add(OpKind.FIFO, "wait for start on the exec fifo", num=fifo_fd)
        else:
            plan.add(OpKind.WAIT, "wait for start")
    _late_seccomp(plan, process, seccomp)  # startContainer hooks run under it, as with runc
    if hooks is not None:
        _hook_ops(plan, "startContainer", hooks.start_container, spec, bundle, container_id, "created")
    plan.add(OpKind.EXEC, f"exec {process.args[0]}")
    return plan


def has_hooks(spec: RuntimeSpec) -> bool:
    """Whether the spec has any hook the runtime must run."""
    hooks = spec.hooks
    return hooks is not None and any(
        (hooks.prestart, hooks.create_runtime, hooks.create_container, hooks.start_container, hooks.poststart,
         hooks.poststop)
    )  # fmt: skip


def _hook_ops(
    plan: Plan,
    kind: str,
    hooks: Sequence[Hook],
    spec: RuntimeSpec,
    bundle: str,
    container_id: str,
    status: str,
) -> None:
    """Hooks the init runs in the container's namespaces. The state JSON is split around the
    pid, which only the init knows (as the host sees it)."""
    from pyrunc._hooks import state_json

    state = state_json(container_id, status, 0, bundle, dict(spec.annotations), spec.oci_version)
    before, after = state.split('"pid":0', 1)
    for i, hook in enumerate(hooks):
        plan.add(
            OpKind.HOOK,
            f"hooks.{kind}[{i}]: {kind} hook {hook.path}",
            a=hook.path,
            argv=hook.args or [hook.path],
            envp=hook.env,
            b=before + '"pid":',
            c=after,
            num=hook.timeout or 0,
        )


def _console_op(plan: Plan, process: Process, console_fd: int) -> None:
    """process.terminal: the pty is made inside the container (its /dev/pts), after pivot_root."""
    if not process.terminal:
        return
    if console_fd < 0:
        raise SpecError("process.terminal", "a terminal needs a console socket to send the pty master to")
    size = process.console_size
    rows, cols = (size.height, size.width) if size is not None else (0, 0)
    plan.add(OpKind.CONSOLE, "set up the terminal", num=console_fd, ids=(rows, cols))


def compile_exec(
    process: Process,
    *,
    namespaces: Sequence[str],
    init_pid: int,
    rootfs: str,
    preserve_fds: int = 0,
    console_fd: int = -1,
    seccomp: dict[str, object] | None = None,
) -> Plan:
    """The plan for a process joining a running container (``pyrunc exec``); ``seccomp`` is the
    container's ``linux.seccomp``, which the process gets too."""
    if not process.args:
        raise SpecError("process.args", "must name the program to run")
    plan = Plan()
    for ns_type in namespaces:
        plan.joins[ns_type] = f"/proc/{init_pid}/ns/{NAMESPACE_FILES[ns_type]}"
    plan.add(OpKind.SET_DUMPABLE, "make the process non-dumpable", num=0)
    plan.add(OpKind.CLOEXEC_FROM, "mark inherited fds close-on-exec", num=3 + preserve_fds)
    plan.add(OpKind.WAIT, "wait for the parent")
    _join_ops(plan)
    _console_op(plan, process, console_fd)
    seccomp_op = _seccomp_op(seccomp)
    _process_ops(plan, process, rootfs, seccomp_op)
    plan.add(OpKind.READY, "report ready")
    _late_seccomp(plan, process, seccomp_op)
    plan.add(OpKind.EXEC, f"exec {process.args[0]}")
    return plan
