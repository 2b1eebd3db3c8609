"""Mounts as snapshotters describe them, and performing them with ``mount(2)``.

pycontainerd never runs the ``mount`` binary: :meth:`Mount.mount` splits the options the way
``mount(8)`` does (flags such as ``ro`` or ``rbind`` into ``mountflags``, the rest into the data
string the filesystem parses) and calls the kernel through :mod:`._syscalls`, a small C module. A
read-only bind takes two calls, since the kernel ignores ``MS_RDONLY`` when it creates a bind mount.
"""

from __future__ import annotations

import enum
import errno
import os

from pycontainerd._record import Record
from pycontainerd._snapshots import _syscalls

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Final

__all__ = ["Mount", "MountFlags", "mount_all", "syncfs", "unmount", "unmount_all"]


class MountFlags(enum.IntFlag):
    """The ``MS_*`` flags of ``<sys/mount.h>`` that mount options map to."""

    RDONLY = 0x1
    NOSUID = 0x2
    NODEV = 0x4
    NOEXEC = 0x8
    REMOUNT = 0x20
    NOATIME = 0x400
    NODIRATIME = 0x800
    BIND = 0x1000
    REC = 0x4000
    RELATIME = 0x200000


_MNT_DETACH = 0x2

# option -> (flags to set, flags to clear), as mount(8) reads them
_FLAG_OPTIONS: dict[str, tuple[MountFlags, MountFlags]] = {
    "ro": (MountFlags.RDONLY, MountFlags(0)),
    "rw": (MountFlags(0), MountFlags.RDONLY),
    "nosuid": (MountFlags.NOSUID, MountFlags(0)),
    "suid": (MountFlags(0), MountFlags.NOSUID),
    "nodev": (MountFlags.NODEV, MountFlags(0)),
    "dev": (MountFlags(0), MountFlags.NODEV),
    "noexec": (MountFlags.NOEXEC, MountFlags(0)),
    "exec": (MountFlags(0), MountFlags.NOEXEC),
    "noatime": (MountFlags.NOATIME, MountFlags(0)),
    "nodiratime": (MountFlags.NODIRATIME, MountFlags(0)),
    "relatime": (MountFlags.RELATIME, MountFlags(0)),
    "bind": (MountFlags.BIND, MountFlags(0)),
    "rbind": (MountFlags.BIND | MountFlags.REC, MountFlags(0)),
}


def split_options(options: Sequence[str]) -> tuple[MountFlags, str]:
    """``mount(8)``'s split: flag options into ``MS_*`` flags, the others into the data string."""
    flags = MountFlags(0)
    data: list[str] = []
    for option in options:
        if option in _FLAG_OPTIONS:
            set_, clear = _FLAG_OPTIONS[option]
            flags = (flags & ~clear) | set_
        else:
            data.append(option)
    return flags, ",".join(data)


class Mount(Record):
    """One mount: ``type`` ("bind", "overlay", ...), ``source`` and ``mount(8)``-style options."""

    __slots__ = ("type", "source", "options")

    def __init__(self, type: str, source: str, options: tuple[str, ...] = ()) -> None:
        self.type: Final = type
        self.source: Final = source
        self.options: Final = options

    def mount(self, target: str | os.PathLike[str]) -> None:
        """Mount this on the existing directory ``target``; raises ``OSError`` with the errno."""
        path = os.fsencode(target)
        flags, data = split_options(self.options)
        is_bind = bool(flags & MountFlags.BIND) or self.type == "bind"
        if is_bind:
            flags |= MountFlags.BIND
        fstype = None if is_bind else self.type.encode()
        first = flags & ~MountFlags.RDONLY if is_bind else flags
        _syscalls.mount(os.fsencode(self.source), path, fstype, first, data.encode() or None)
        if is_bind and flags & MountFlags.RDONLY:
            remount = MountFlags.REMOUNT | MountFlags.BIND | (flags & ~MountFlags.REC)
            try:
                _syscalls.mount(None, path, None, remount, None)
            except OSError as exc:
                try:
                    unmount(target)
                except OSError as cleanup:
                    exc.add_note(f"and unmounting it again failed: {cleanup}")
                raise

    def unmount(self, target: str | os.PathLike[str], *, detach: bool = False) -> None:
        """Unmount what is mounted on ``target`` (whatever it is); raises ``OSError``."""
        unmount(target, detach=detach)


def unmount(target: str | os.PathLike[str], *, detach: bool = False) -> None:
    """Unmount ``target`` (``umount2(2)``, lazily if ``detach``); raises ``OSError``."""
    _syscalls.umount2(os.fsencode(target), _MNT_DETACH if detach else 0)


def mount_all(mounts: Sequence[Mount], target: str | os.PathLike[str]) -> None:
    """Mount each of ``mounts`` on ``target`` in order; on failure undo those already mounted."""
    done = 0
    try:
        for m in mounts:
            m.mount(target)
            done += 1
    except OSError as exc:
        for _ in range(done):
            try:
                unmount(target)
            except OSError as cleanup:
                exc.add_note(f"and unmounting {os.fsdecode(target)} failed: {cleanup}")
        raise


def unmount_all(target: str | os.PathLike[str]) -> None:
    """Unmount everything mounted on ``target``, the topmost mount first."""
    while True:
        try:
            unmount(target)
        except OSError as exc:
            if exc.errno == errno.EINVAL:  # no longer a mount point
                return
            raise


def syncfs(path: str | os.PathLike[str]) -> None:
    """Flush the filesystem holding ``path`` to disk (``syncfs(2)``; Python's os has no binding)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        _syscalls.syncfs(fd)
    except OSError as exc:
        exc.filename = os.fsdecode(path)
        raise
    finally:
        os.close(fd)
