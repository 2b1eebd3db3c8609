"""The few ``os.path`` functions that the verbs on an existing container need, on ``posix`` alone.

``import os`` costs ~2 ms (it imports _collections_abc, posixpath and stat), more than all the
rest of ``pyrunc start`` does; the modules on the path of start, kill, state and delete (the
container's state, its cgroups) call ``posix`` and these instead. Each gives its ``os.path``
namesake's answer.
"""

from __future__ import annotations

import posix
from _stat import S_ISDIR

__all__ = ["basename", "dirname", "exists", "is_clean_absolute", "is_mount_point", "isdir", "mount_id"]


def exists(path: str) -> bool:
    """``os.path.exists``."""
    try:
        posix.stat(path)
    except (OSError, ValueError):
        return False
    return True


def isdir(path: str) -> bool:
    """``os.path.isdir``."""
    try:
        return S_ISDIR(posix.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def dirname(path: str) -> str:
    """``os.path.dirname``."""
    head = path[: path.rfind("/") + 1]
    if head and head != "/" * len(head):
        head = head.rstrip("/")
    return head


def basename(path: str) -> str:
    """``os.path.basename``."""
    return path[path.rfind("/") + 1 :]


def is_clean_absolute(path: str) -> bool:
    """``os.path.isabs(path) and os.path.normpath(path) == path``: no empty, ``.`` or ``..``
    component, no trailing slash (POSIX keeps a leading ``//`` apart, and so does normpath)."""
    if not path.startswith("/"):
        return False
    rest = path[2:] if path.startswith("//") and not path.startswith("///") else path[1:]
    return not rest or all(part not in ("", ".", "..") for part in rest.split("/"))


def mount_id(fd: int) -> int:
    """The id of the mount that holds the file open at ``fd`` (``mnt_id`` in /proc/self/fdinfo):
    a directory that is a mount point, a bind mount of the same filesystem included, is held by
    another mount than its parent."""
    with open(f"/proc/self/fdinfo/{fd}", "rb") as f:
        for line in f:
            if line.startswith(b"mnt_id:"):
                return int(line[7:])
    raise OSError(95, "no mnt_id in /proc/self/fdinfo", f"/proc/self/fdinfo/{fd}")  # EOPNOTSUPP


def is_mount_point(path: str) -> bool:
    """Whether a filesystem is mounted on the directory ``path`` (a bind mount of the same one too).
    OSError if it is not a directory (a symlink is not followed)."""
    flags = posix.O_PATH | posix.O_DIRECTORY | posix.O_CLOEXEC
    fd = posix.open(path, flags | posix.O_NOFOLLOW)
    try:
        parent = posix.open(dirname(path) or ".", flags)
        try:
            return mount_id(fd) != mount_id(parent)
        finally:
            posix.close(parent)
    finally:
        posix.close(fd)
