"""Copying a snapshot's tree for the native snapshotter, keeping everything a layer can hold.

Ownership, modes (setuid bits included), extended attributes (``security.capability``,
``trusted.overlay.*``), hardlinks (one inode per group, as in the source), device nodes, fifos,
sockets, symlinks and timestamps are all kept. Ownership is set before the mode and the xattrs,
because ``chown(2)`` clears setuid bits and file capabilities.
"""

from __future__ import annotations

import errno
import os
import stat

__all__ = ["copy_tree"]

_CHUNK = 1 << 30


def copy_tree(src: str, dst: str) -> None:
    """Copy the contents of the directory ``src`` into the existing, empty directory ``dst``."""
    links: dict[tuple[int, int], str] = {}
    _copy_dir_contents(src, dst, links)
    _copy_metadata(src, dst, os.lstat(src))


def _copy_dir_contents(src: str, dst: str, links: dict[tuple[int, int], str]) -> None:
    with os.scandir(src) as entries:
        for entry in entries:
            s = entry.path
            d = os.path.join(dst, entry.name)
            st = entry.stat(follow_symlinks=False)
            mode = st.st_mode
            if stat.S_ISDIR(mode):
                os.mkdir(d, 0o700)
                _copy_dir_contents(s, d, links)
                _copy_metadata(s, d, st)
                continue
            if st.st_nlink > 1:
                first = links.get((st.st_dev, st.st_ino))
                if first is not None:
                    os.link(first, d, follow_symlinks=False)
                    continue
                links[(st.st_dev, st.st_ino)] = d
            if stat.S_ISREG(mode):
                _copy_file(s, d)
            elif stat.S_ISLNK(mode):
                os.symlink(os.readlink(s), d)
            else:  # character and block devices, fifos, sockets
                os.mknod(d, stat.S_IFMT(mode) | 0o600, st.st_rdev)
            _copy_metadata(s, d, st)


def _copy_file(src: str, dst: str) -> None:
    with open(src, "rb") as fin, open(dst, "xb") as fout:
        in_fd, out_fd = fin.fileno(), fout.fileno()
        try:
            while os.copy_file_range(in_fd, out_fd, _CHUNK):
                pass
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
                raise
            fin.seek(0)
            fout.seek(0)
            fout.truncate()
            while chunk := fin.read(1 << 20):
                fout.write(chunk)


def _copy_metadata(src: str, dst: str, st: os.stat_result) -> None:
    os.chown(dst, st.st_uid, st.st_gid, follow_symlinks=False)
    for name in os.listxattr(src, follow_symlinks=False):
        value = os.getxattr(src, name, follow_symlinks=False)
        os.setxattr(dst, name, value, follow_symlinks=False)
    if not stat.S_ISLNK(st.st_mode):  # a symlink's mode cannot be set on Linux
        os.chmod(dst, stat.S_IMODE(st.st_mode))
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
