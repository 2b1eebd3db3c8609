"""The root filesystem part of a plan: mounts with their options and propagation, devices,
and the mount point that holds the rootfs. See :mod:`.compile` for the order of it all."""

from __future__ import annotations

import os

from pyrunc._errors import SpecError, UnsupportedFieldError
from pyrunc._native.kernel import MountFlags, OpKind

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    from pyrunc._plan.plan import Plan
    from pyrunc._spec.config import Mount, RuntimeSpec


# mount(8)-style options: name -> (flags to set, flags to clear).
MOUNT_OPTIONS: dict[str, tuple[int, int]] = {
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


def mount_flags(options: Sequence[str], where: str) -> tuple[int, int, str]:
    """Split mount options into (flags, propagation flags, filesystem data)."""
    flags = 0
    propagation = 0
    data: list[str] = []
    for option in options:
        if option in MOUNT_OPTIONS:
            set_, clear = MOUNT_OPTIONS[option]
            flags = (flags | set_) & ~clear
        elif option in PROPAGATION:
            propagation |= PROPAGATION[option]
        elif option in ("tmpcopyup", "idmap", "ridmap") or (
            option.startswith("r") and option[1:] in MOUNT_OPTIONS
        ):
            raise UnsupportedFieldError(where, f'mount option "{option}" is not supported by pyrunc yet')
        else:
            data.append(option)
    return flags, propagation, ",".join(data)


def _clean_destination(dest: str, where: str) -> str:
    if ".." in dest.split("/"):
        raise SpecError(where, f"{dest!r} must not contain '..': mounts stay inside the rootfs")
    return os.path.normpath("/" + dest).replace("//", "/")


def _cleared_flags(options: Sequence[str]) -> int:
    """The mount flags that ``options`` ask to be off (``dev``, ``suid``, ``exec``, ``atime`` ...)."""
    cleared = 0
    for option in options:
        if option in MOUNT_OPTIONS:
            set_, clear = MOUNT_OPTIONS[option]
            cleared = (cleared | clear) & ~set_
    return cleared


def _bind_op(plan: Plan, step: str, source: str, dest: str, flags: int) -> None:
    """Bind ``source`` (a host path) on ``dest`` in the rootfs. In a user namespace the source
    is opened before the init becomes the namespace's root, with the runtime's own rights (runc
    1.1 opens bind sources from the host's user namespace, too)."""
    if not plan.user_ns:
        plan.mount(step, source=source, target=dest, flags=flags, in_root=True)
        return
    slot = plan.new_slot()
    plan.sources.append((slot, source))
    plan.mount(step, source=source, target=dest, flags=flags, in_root=True, source_slot=slot)


def _remount_op(plan: Plan, step: str, dest: str, flags: int, options: Sequence[str] = ()) -> None:
    """Remount a bind mount with ``flags``. In a user namespace the kernel has locked the
    source mount's nosuid, nodev, noexec, ro and atime flags on the bind: keep them (or the
    remount fails with EPERM), except those that ``options`` ask off (then it fails, rather
    than give a mount other than the one asked for); ``rw`` is not such a request (runc 1.1, too,
    keeps ro when the source is read-only)."""
    if not plan.user_ns:
        plan.mount(step, target=dest, flags=flags, in_root=True)
        return
    cleared = _cleared_flags(options) & ~MountFlags.RDONLY
    plan.add(OpKind.BIND_REMOUNT, step, path=dest, flags=flags, cleared=cleared, in_root=True)


def mount_ops(
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
        if "mount" in plan.joins:  # the source is the joined mount namespace's, found by the init
            plan.add(OpKind.MKTARGET, f"create {on} for bind source {source}", source=source, path=dest)
        elif not os.path.lexists(source):
            raise SpecError(f"{where}.source", f"bind source {source} does not exist")
        elif os.path.isdir(source):
            plan.add(OpKind.MKDIRS, f"create {on}", path=dest, mode=0o755)
        else:
            plan.add(OpKind.MKFILE, f"create {on}", path=dest)
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
        plan.mount(
            f"mount tmpfs on {on}",
            source="tmpfs",
            target=dest,
            fstype="tmpfs",
            flags=tmpfs_flags,
            data="mode=755",
            in_root=True,
            tmpfs=True,  # made if missing, else the covered directory's mode (sysfs: 0555), as runc
        )
        sub_flags = flags & ~(MountFlags.BIND | MountFlags.REC)
        for dirname, option, host_dir in cgroup_hierarchies:
            target = f"{dest}/{dirname}"
            plan.add(OpKind.MKDIRS, f"create {target}", path=target, mode=0o755)
            if new_cgroupns:
                plan.mount(
                    f"mount cgroup {option} on {target}",
                    source="cgroup",
                    target=target,
                    fstype="cgroup",
                    flags=sub_flags,
                    data=option,
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
                    plan.add(
                        OpKind.SYMLINK,
                        f"link {dest}/{controller}",
                        target=dirname,
                        path=f"{dest}/{controller}",
                    )
    else:
        if fstype == "cgroup":  # unified host: the container's own cgroup2
            fstype = "cgroup2"
        if fstype != "tmpfs":  # a tmpfs target is made by the mount op itself (see tmpfs below)
            plan.add(OpKind.MKDIRS, f"create {on}", path=dest, mode=0o755)
        plan.mount(
            f"mount {fstype} on {on}",
            source=mount.source or fstype,
            target=dest,
            fstype=fstype,
            flags=flags,
            data=data or None,
            in_root=True,
            tmpfs=fstype == "tmpfs",  # made if missing, else keeps the covered dir's mode
        )
    if propagation:
        plan.mount(f"set propagation of {on}", target=dest, flags=propagation, in_root=True)


def _bind_device_op(plan: Plan, path: str, what: str) -> None:
    """In a user namespace mknod is refused: bind the host's node onto an empty file, as runc
    does (the node's mode and owner are then the host's)."""
    plan.add(OpKind.MKFILE, f"create {path} for the host's device{what}", path=path)
    plan.mount(
        f"bind the host's device {path}{what}", source=path, target=path, flags=MountFlags.BIND, in_root=True
    )


def device_ops(plan: Plan, spec: RuntimeSpec, dev_is_bind: bool) -> None:
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
                path=path,
                mode=_S_IFCHR | 0o666,
                dev=os.makedev(major, minor),
                uid=0,
                gid=0,
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
            path=_clean_destination(device.path, f"linux.devices[{i}].path"),
            mode=kind | (mode & 0o7777),
            dev=os.makedev(device.major or 0, device.minor or 0),
            uid=device.uid or 0,
            gid=device.gid or 0,
        )
    if not dev_is_bind:
        for target, link in _DEV_LINKS:
            plan.add(OpKind.SYMLINK, f"link {link}", target=target, path=link)
        if os.path.exists("/proc/kcore"):
            plan.add(OpKind.SYMLINK, "link /dev/core", target="/proc/kcore", path="/dev/core")
        if any(m.destination.rstrip("/") == "/dev/pts" for m in spec.mounts):
            plan.add(OpKind.SYMLINK, "link /dev/ptmx", target="pts/ptmx", path="/dev/ptmx")


def rootfs_parent_mount(rootfs: str) -> str:
    """The mount point that holds ``rootfs`` (longest matching mount point in mountinfo)."""
    best = "/"
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            point = line.split(" ", 5)[4].replace("\\040", " ")
            if (rootfs == point or rootfs.startswith(point.rstrip("/") + "/")) and len(point) > len(best):
                best = point
    return best
