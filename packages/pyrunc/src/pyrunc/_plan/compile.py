"""Compile a runtime spec into the ops the container's init runs (see native.h).

All the decisions live here, in Python and testable without a kernel: which namespaces to
create or join, the order of mounts, devices, pivot_root, hostname, sysctls, masks, limits,
capabilities and the user switch. The C side only executes the list.

The order follows runc's init: join namespaces, prepare the rootfs (propagation, bind of the
rootfs onto itself, spec mounts, devices, cwd), pivot_root, hostname, sysctls, read-only and
masked paths, read-only root, rlimits, no_new_privs (without it: the seccomp filter),
capabilities and user, chdir, resolve argv[0], report ready, wait for start, the seccomp filter
(with no_new_privs), exec. The seccomp filter is compiled to BPF here, in the parent.

This module holds the order and the namespaces; :mod:`.rootfs` the mounts and devices,
:mod:`.process` ID mappings, limits, seccomp, capabilities and the user switch, :mod:`.sysctl` the
sysctls.
"""

from __future__ import annotations

import os

from pyrunc._errors import SpecError, UnsupportedFieldError
from pyrunc._native.kernel import NAMESPACE_FILES, NAMESPACE_FLAGS, CloneFlags, MountFlags, Op, OpKind
from pyrunc._plan.plan import Plan
from pyrunc._plan.process import (
    after_joining_user_ops,
    become_root_ops,
    id_mappings,
    late_seccomp,
    process_ops,
    seccomp_op,
    uses_user_namespace,
)
from pyrunc._plan.rootfs import (
    PROPAGATION,
    device_ops,
    mount_ops,
    rootfs_parent_mount,
)
from pyrunc._plan.sysctl import check_sysctls, sysctl_ops

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    from pyrunc._spec.config import Hook, RuntimeSpec
    from pyrunc._spec.process import Process


__all__ = [
    "check_lengths",
    "check_supported",
    "compile_exec",
    "compile_init",
    "has_hooks",
    "joins_mount_namespace",
]


# Joining order: the mount namespace last, since joining it changes what paths mean.
_JOIN_ORDER = ("user", "ipc", "uts", "network", "cgroup", "mount")


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
        if joins_mount_namespace(spec) and linux.rootfs_propagation in ("shared", "rshared"):
            # Making the rootfs's parent mount private needs the joined namespace's mount table.
            unsupported.append("linux.rootfsPropagation (shared, with a joined mount namespace)")
        new_user = any(ns.type == "user" and not ns.path for ns in linux.namespaces)
        for i, ns in enumerate(linux.namespaces):
            if new_user and ns.path and ns.type in _JOIN_ORDER:
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


_PATH_MAX = 4095  # bytes of a path the kernel takes (PATH_MAX with its NUL)
_HOST_NAME_MAX = 64  # bytes of a hostname or a domain name


def check_lengths(spec: RuntimeSpec) -> None:
    """Refuse, naming the field, a path longer than the kernel takes and a hostname or domain name
    longer than a uts namespace holds (the kernel would say only ENAMETOOLONG or EINVAL)."""
    paths: list[tuple[str, str | None]] = []
    if spec.root is not None:
        paths.append(("root.path", spec.root.path))
    if spec.process is not None:
        paths.append(("process.cwd", spec.process.cwd))
    for i, mount in enumerate(spec.mounts):
        paths += [(f"mounts[{i}].destination", mount.destination), (f"mounts[{i}].source", mount.source)]
    linux = spec.linux
    if linux is not None:
        paths += [(f"linux.namespaces[{i}].path", ns.path) for i, ns in enumerate(linux.namespaces)]
        paths += [(f"linux.devices[{i}].path", device.path) for i, device in enumerate(linux.devices)]
        paths += [(f"linux.maskedPaths[{i}]", path) for i, path in enumerate(linux.masked_paths)]
        paths += [(f"linux.readonlyPaths[{i}]", path) for i, path in enumerate(linux.readonly_paths)]
    hooks = spec.hooks
    if hooks is not None:
        for name, listed in (
            ("prestart", hooks.prestart),
            ("createRuntime", hooks.create_runtime),
            ("createContainer", hooks.create_container),
            ("startContainer", hooks.start_container),
            ("poststart", hooks.poststart),
            ("poststop", hooks.poststop),
        ):
            paths += [(f"hooks.{name}[{i}].path", hook.path) for i, hook in enumerate(listed)]
    for field, path in paths:
        if path is not None and len(path) > _PATH_MAX // 4 and len(path.encode()) > _PATH_MAX:
            raise SpecError(field, f"{len(path.encode())} bytes long, more than the {_PATH_MAX} of a path")
    for field, value in (("hostname", spec.hostname), ("domainname", spec.domainname)):
        if value is not None and len(value.encode()) > _HOST_NAME_MAX:
            raise SpecError(
                field, f"{len(value.encode())} bytes long, more than the {_HOST_NAME_MAX} the kernel takes"
            )


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
    if "mount" not in new and "mount" not in plan.joins:
        raise SpecError("linux.namespaces", "a mount namespace is required, new or joined")
    if "uts" not in new and "uts" not in plan.joins:  # runc's words
        if spec.hostname:
            raise SpecError("hostname", "unable to set hostname without a private UTS namespace")
        if spec.domainname:
            raise SpecError("domainname", "unable to set domainname without a private UTS namespace")
    if linux is not None:
        check_sysctls(linux, new, plan.joins)
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
                OpKind.OPEN_SOURCE,
                f"open {ns_type} namespace {path}",
                path=path,
                slot=slot,
                flags=os.O_RDONLY,
            )
    for ns_type, slot in slots.items():
        plan.add(
            OpKind.SETNS,
            f"join {ns_type} namespace {plan.joins[ns_type]}",
            nstype=NAMESPACE_FLAGS[ns_type],
            slot=slot,
        )


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
    vfork: bool = False,
    join_cgroups: Sequence[str] = (),
    oom_score_adj: int | None = None,
    container_id: str = "",
    console_fd: int = -1,
    seccomp_cache: str | None = None,
) -> Plan:
    """The plan for a container's init.

    ``fifo_fd`` >= 0 waits on the exec fifo (create); otherwise the init waits for a second
    message on the control socket (run). With ``vfork`` the plan is for vfork mode instead:
    the child sets its oom_score_adj itself, and runs straight through to exec. The child
    joins its cgroups itself, first thing (after the parent's go, in fork mode), by writing 0
    to each of ``join_cgroups`` (``CgroupManager.join_files()``; empty: the parent moves it,
    or there are no cgroups); in vfork mode it must, the parent being suspended. ``keyring``
    names a new session keyring to join; ``stdio`` are fds to become the init's 0, 1, 2. With
    ``process.terminal`` the init makes a pty and sends its master on ``console_fd`` (a
    connected unix socket).
    ``seccomp_cache`` is the directory of compiled seccomp filters to use (None: compile).

    Hooks need the parent during set-up, so a spec with hooks cannot use vfork mode: before
    pivot_root the init stops (SYNC) for the parent's prestart and createRuntime hooks and runs
    createContainer hooks itself; startContainer hooks run after the start signal.
    """
    check_supported(spec)
    check_lengths(spec)
    hooks = spec.hooks
    if hooks is not None and vfork and has_hooks(spec):
        raise ValueError("a spec with hooks needs the fork-mode launch")
    if vfork and uses_user_namespace(spec):
        raise ValueError("a spec with a user namespace needs the fork-mode launch")
    if join_cgroups and uses_user_namespace(spec):
        raise ValueError("a spec with a user namespace needs the parent to move the init into its cgroups")
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
    if joins_mount_namespace(spec):
        # Looked up by the init, in the joined mount namespace, as runc does: what is there may
        # not be what the runtime sees at that path (a rootfs mounted in that namespace alone).
        rootfs = os.path.normpath(rootfs)
    else:
        rootfs = os.path.realpath(rootfs)
        if not os.path.isdir(rootfs):
            raise SpecError("root.path", f"rootfs {rootfs} is not a directory")

    plan = Plan()
    new = _namespaces(spec, plan)
    id_mappings(spec, plan, new)
    linux = spec.linux
    plan.add(OpKind.SET_DUMPABLE, "make the init non-dumpable", value=0)
    for target, fd in enumerate(stdio):
        plan.add(OpKind.DUP2, f"set up fd {target}", old_fd=fd, new_fd=target)
    plan.add(OpKind.CLOEXEC_FROM, "mark inherited fds close-on-exec", first=3 + preserve_fds)
    if not vfork:
        plan.add(OpKind.WAIT, "wait for the parent")
    for path in join_cgroups:
        plan.add(OpKind.WRITE_FILE, f"join cgroup {os.path.dirname(path)}", path=path, text="0")
    if vfork and oom_score_adj is not None:
        adj = str(oom_score_adj)
        plan.add(OpKind.WRITE_FILE, "set oom_score_adj", path="/proc/self/oom_score_adj", text=adj)
    _join_ops(plan)
    if "user" in plan.joins:
        after_joining_user_ops(plan, new)
    sources_at = len(plan.ops)  # OPEN_SOURCE ops go here, once the mounts are known
    if plan.user_ns:
        become_root_ops(plan, new_ipc="ipc" in new and "user" in new)
    if keyring is not None:
        plan.add(OpKind.JOIN_KEYRING, f"join session keyring {keyring}", name=keyring)
    if "cgroup" in new:
        plan.add(OpKind.UNSHARE, "create cgroup namespace", flags=CloneFlags.NEWCGROUP)

    # The root filesystem.
    propagation_name = linux.rootfs_propagation if linux else None
    propagation = PROPAGATION.get(propagation_name or "rslave", MountFlags.SLAVE | MountFlags.REC)
    root_propagation = propagation | MountFlags.REC if propagation_name else MountFlags.SLAVE | MountFlags.REC
    plan.mount("set propagation of /", target="/", flags=root_propagation)
    if propagation & MountFlags.SHARED:
        parent = rootfs_parent_mount(rootfs)
        plan.mount(f"make {parent} private for pivot_root", target=parent, flags=MountFlags.PRIVATE)
    plan.mount(f"bind rootfs {rootfs}", source=rootfs, target=rootfs, flags=MountFlags.BIND | MountFlags.REC)
    plan.add(OpKind.OPEN_ROOT, f"open rootfs {rootfs}", path=rootfs)
    dev_is_bind = False
    for index, mount in enumerate(spec.mounts):
        mount_ops(plan, mount, index, bundle, cgroup_hierarchies, "cgroup" in new)
        if mount.destination.rstrip("/") == "/dev":
            dev_is_bind = mount.type == "bind" or "bind" in mount.options or "rbind" in mount.options
    device_ops(plan, spec, dev_is_bind)
    plan.ops[sources_at:sources_at] = [
        Op(OpKind.OPEN_SOURCE, f"open bind source {source}", path=source, slot=slot, flags=os.O_PATH)
        for slot, source in plan.sources
    ]
    plan.add(OpKind.MKDIRS, f"create cwd {process.cwd}", path=process.cwd, mode=0o755)
    if hooks is not None:
        if hooks.prestart or hooks.create_runtime:
            plan.add(OpKind.SYNC, "wait for the prestart and createRuntime hooks")
        _hook_ops(plan, "createContainer", hooks.create_container, spec, bundle, container_id, "creating")
    if no_pivot:
        plan.add(OpKind.MOVE_ROOT, f"move {rootfs} to / and chroot", path=rootfs)
    else:
        plan.add(OpKind.PIVOT_ROOT, f"pivot_root to {rootfs}", path=rootfs)
    if propagation_name:
        plan.mount(f"set rootfsPropagation {propagation_name}", target="/", flags=propagation)
    _console_op(plan, process, console_fd)
    if "network" in new:
        plan.add(OpKind.LOOPBACK_UP, "bring up the loopback interface")
    if spec.hostname:  # an empty one is no hostname to set (runc's rule too)
        plan.add(OpKind.SETHOSTNAME, f"sethostname {spec.hostname}", name=spec.hostname)
    if spec.domainname:
        plan.add(OpKind.SETDOMAINNAME, f"setdomainname {spec.domainname}", name=spec.domainname)
    if linux is not None:
        sysctl_ops(plan, linux)
        for path in linux.readonly_paths:
            plan.add(OpKind.READONLY, f"make {path} read-only", path=path, in_root=True)
        for path in linux.masked_paths:
            plan.add(OpKind.MASK, f"mask {path}", path=path, in_root=True)
    if spec.root.readonly:
        plan.add(OpKind.REMOUNT_RO, "make the root read-only", path="/")
    seccomp = seccomp_op(linux.seccomp if linux else None, seccomp_cache)
    process_ops(plan, process, rootfs, seccomp)
    if not vfork:
        plan.add(OpKind.READY, "report ready")
        if fifo_fd >= 0:
            plan.add(OpKind.FIFO, "wait for start on the exec fifo", fd=fifo_fd)
        else:
            plan.add(OpKind.WAIT, "wait for start")
    late_seccomp(plan, process, seccomp)  # startContainer hooks run under it, as with runc
    if hooks is not None:
        _hook_ops(plan, "startContainer", hooks.start_container, spec, bundle, container_id, "created")
    plan.add(OpKind.EXEC, f"exec {process.args[0]}")
    return plan


def joins_mount_namespace(spec: RuntimeSpec) -> bool:
    """Whether the container joins a mount namespace (by ``path``) rather than making one: then its
    rootfs and bind sources are looked up inside that namespace, by the init."""
    linux = spec.linux
    return linux is not None and any(ns.type == "mount" and ns.path for ns in linux.namespaces)


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
            path=hook.path,
            argv=hook.args or [hook.path],
            envp=hook.env,
            state_head=before + '"pid":',
            state_tail=after,
            timeout=hook.timeout or 0,
        )


def _console_op(plan: Plan, process: Process, console_fd: int) -> None:
    """process.terminal: the pty is made inside the container (its /dev/pts), after pivot_root."""
    if not process.terminal:
        return
    if console_fd < 0:
        raise SpecError("process.terminal", "a terminal needs a console socket to send the pty master to")
    size = process.console_size
    rows, cols = (size.height, size.width) if size is not None else (0, 0)
    plan.add(OpKind.CONSOLE, "set up the terminal", socket=console_fd, rows=rows, cols=cols)


def compile_exec(
    process: Process,
    *,
    namespaces: Sequence[str],
    init_pid: int,
    rootfs: str,
    preserve_fds: int = 0,
    console_fd: int = -1,
    seccomp: dict[str, object] | None = None,
    seccomp_cache: str | None = None,
    join_cgroups: Sequence[str] = (),
) -> Plan:
    """The plan for a process joining a running container (``pyrunc exec``); ``seccomp`` is the
    container's ``linux.seccomp``, which the process gets too (its compiled filter from the
    directory ``seccomp_cache``, when there is one). The process joins the container's cgroups
    itself, after the parent's go and before it enters the namespaces, by writing 0 to each of
    ``join_cgroups`` (as the init does; empty: the parent moves it)."""
    if not process.args:
        raise SpecError("process.args", "must name the program to run")
    plan = Plan()
    for ns_type in namespaces:
        plan.joins[ns_type] = f"/proc/{init_pid}/ns/{NAMESPACE_FILES[ns_type]}"
    plan.add(OpKind.SET_DUMPABLE, "make the process non-dumpable", value=0)
    plan.add(OpKind.CLOEXEC_FROM, "mark inherited fds close-on-exec", first=3 + preserve_fds)
    plan.add(OpKind.WAIT, "wait for the parent")
    for path in join_cgroups:
        plan.add(OpKind.WRITE_FILE, f"join cgroup {os.path.dirname(path)}", path=path, text="0")
    _join_ops(plan)
    _console_op(plan, process, console_fd)
    filter_op = seccomp_op(seccomp, seccomp_cache)
    process_ops(plan, process, rootfs, filter_op)
    plan.add(OpKind.READY, "report ready")
    late_seccomp(plan, process, filter_op)
    plan.add(OpKind.EXEC, f"exec {process.args[0]}")
    return plan
