"""Removing directory trees that may hold mount points, never deleting through one.

A task's directory holds the mount point of its root filesystem, and a snapshot may be mounted
somewhere below a directory being removed: a recursive removal that descends into a mount deletes
the files of the mounted filesystem (a native snapshot's bind mount is on the filesystem it comes
from, so ``os.path.ismount`` and ``st_dev`` cannot tell it from a plain directory; its mount id can).

:func:`remove_tree` walks the tree through directory descriptors, never following a symlink, and
checks the mount id (``statx(2)``'s ``STATX_MNT_ID``) of every directory before it enters it against
the one the tree's parent is on. What is mounted on a directory of the tree is unmounted first
(everything at or below it, the last mounted first, as ``/proc/self/mountinfo`` lists them, read
only when a mount is found) when the caller allows it; otherwise, or if that fails, the removal is
refused with :class:`FailedPreconditionError` naming the directory, and nothing below it is touched.
A bind-mounted file (``unlink`` says EBUSY) is treated alike.
"""

from __future__ import annotations

import errno
import os

from pycontainerd._errors import FailedPreconditionError
from pycontainerd._snapshots import _syscalls

__all__ = ["remove_tree", "unmount_beneath"]

_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_MOUNTINFO = "/proc/self/mountinfo"


def _unescape(field: bytes) -> bytes:
    """A path of ``/proc/self/mountinfo``: the kernel writes space, tab, newline and backslash as
    octal escapes (``\\040``), so every backslash starts one."""
    first, *rest = field.split(b"\\")
    return first + b"".join(bytes([int(part[:3], 8)]) + part[3:] for part in rest)


def unmount_beneath(path: str | os.PathLike[str]) -> list[str]:
    """Unmount everything mounted on ``path`` or below it, the last mounted first (so a mount on top
    of another, or inside it, goes before it); returns the mount points, in that order. OSError if
    one cannot be unmounted (EBUSY: a process uses it); those before it are unmounted then."""
    top = os.fsencode(os.path.realpath(path))
    below = top.rstrip(b"/") + b"/"
    with open(_MOUNTINFO, "rb") as f:
        points = [_unescape(line.split(b" ", 5)[4]) for line in f.read().splitlines()]
    done = []
    for point in reversed(points):
        if point == top or point.startswith(below):
            try:
                _syscalls.umount2(point, 0)
            except OSError as exc:
                if exc.errno != errno.EINVAL:  # EINVAL: not mounted any more (it went with another)
                    raise
            done.append(os.fsdecode(point))
    return done


def remove_tree(path: str | os.PathLike[str], *, dir_fd: int | None = None, unmount: bool = True) -> None:
    """Remove the directory ``path`` (relative to ``dir_fd`` if given) and everything in it, without
    following symlinks or entering another mount.

    With ``unmount``, what is mounted on the directory or anywhere below it is unmounted first; without,
    or when an unmount fails, FailedPreconditionError names the mount point and nothing below it is
    touched. FileNotFoundError if ``path`` does not exist.
    """
    name = os.path.normpath(os.fspath(path))
    head, base = os.path.split(name)
    parent = os.open(head or ".", _DIRECTORY, dir_fd=dir_fd)
    try:
        _Removal(parent, unmount).remove(parent, base, name)
    finally:
        os.close(parent)


class _Removal:
    """One :func:`remove_tree`: the mount the tree must stay on, and whether to unmount."""

    def __init__(self, parent: int, unmount: bool) -> None:
        self.mount = _syscalls.mount_id(parent)
        self.unmount = unmount

    def remove(self, parent: int, base: str, shown: str) -> None:
        # One frame per directory being emptied: its descriptor, name, path (for messages) and the
        # entries left to remove. Iterative, so that depth is bounded by descriptors, not recursion.
        frames: list[tuple[int, str, str, list[tuple[str, bool]]]] = []
        try:
            fd = self._enter(parent, base, shown)
            frames.append((fd, base, shown, _entries(fd)))
            while frames:
                fd, base, shown, pending = frames[-1]
                while pending:
                    entry, is_dir = pending.pop()
                    if is_dir:
                        child = self._enter(fd, entry, f"{shown}/{entry}")
                        frames.append((child, entry, f"{shown}/{entry}", _entries(child)))
                        break
                    self._unlink(fd, entry, f"{shown}/{entry}")
                else:
                    frames.pop()
                    os.close(fd)
                    os.rmdir(base, dir_fd=frames[-1][0] if frames else parent)
        finally:
            for frame in frames:
                os.close(frame[0])

    def _enter(self, parent: int, name: str, shown: str) -> int:
        """The directory ``name`` of ``parent``, opened, if it is on the tree's mount (made so by
        unmounting what is on it, when allowed); FailedPreconditionError otherwise."""
        fd = os.open(name, _DIRECTORY | os.O_NOFOLLOW, dir_fd=parent)
        if _syscalls.mount_id(fd) == self.mount:
            return fd
        os.close(fd)
        self._unmount(parent, name, shown)
        fd = os.open(name, _DIRECTORY | os.O_NOFOLLOW, dir_fd=parent)
        if _syscalls.mount_id(fd) == self.mount:
            return fd
        os.close(fd)
        raise FailedPreconditionError(f"refusing to remove {shown}: another filesystem is mounted on it")

    def _unlink(self, parent: int, name: str, shown: str) -> None:
        try:
            os.unlink(name, dir_fd=parent)
        except OSError as exc:
            if exc.errno != errno.EBUSY:  # a bind-mounted file
                raise
            self._unmount(parent, name, shown)
            os.unlink(name, dir_fd=parent)

    def _unmount(self, parent: int, name: str, shown: str) -> None:
        if not self.unmount:
            raise FailedPreconditionError(f"refusing to remove {shown}: it is a mount point")
        where = os.path.join(os.readlink(f"/proc/self/fd/{parent}"), name)
        try:
            unmount_beneath(where)
        except OSError as exc:
            raise FailedPreconditionError(
                f"refusing to remove {shown}: {exc.filename or where} is mounted and cannot be unmounted"
                f" ({exc.strerror})"
            ) from exc


def _entries(fd: int) -> list[tuple[str, bool]]:
    """The names in the open directory ``fd``, each with whether it is a directory (not a symlink)."""
    with os.scandir(fd) as entries:
        return [(entry.name, entry.is_dir(follow_symlinks=False)) for entry in entries]
