"""Whether a filesystem is mounted on a directory: pyrunc removes nothing through a mount (a
container's state directory, its cgroups, the seccomp cache).

On the path of ``pyrunc delete``: ``posix`` rather than ``os`` (see ARCHITECTURE.md, start-up).
"""

from __future__ import annotations

import posix

__all__ = ["is_mount_point", "mount_id"]


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
        parent = posix.open("..", flags, dir_fd=fd)
        try:
            return mount_id(fd) != mount_id(parent)
        finally:
            posix.close(parent)
    finally:
        posix.close(fd)
