"""Resolving layer paths inside a root directory, never outside it.

Every filesystem operation of the applier goes through a directory file descriptor obtained here and
a single final name component, so the kernel never walks a path the layer controls. Intermediate
components are walked one at a time from a descriptor of the root, each opened with ``O_NOFOLLOW``;
a symlink met on the way is read and resolved *as the container would see it*: an absolute target
restarts at the root and ``..`` stops at the root (what ``openat2(RESOLVE_IN_ROOT)`` does, and what
containerd's ``fs.RootPath`` does). The final component is never followed: the caller replaces it.
"""

from __future__ import annotations

import os
import stat
from collections import deque

from pycontainerd._errors import LayerError, UnsafeLayerError

__all__ = ["RootDir", "clean_name"]

_MAX_SYMLINKS = 40
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def clean_name(name: str) -> tuple[str, ...]:
    """The components of a tar entry name, relative to the root.

    A leading ``/`` is dropped (the name is contained in the root); ``.`` and empty components go;
    ``..`` cancels the previous component, and a ``..`` that would climb above the root is refused.
    """
    parts: list[str] = []
    for part in name.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise UnsafeLayerError(name, "the name climbs out of the root")
            parts.pop()
            continue
        if "\x00" in part:
            raise UnsafeLayerError(name, "the name holds a NUL byte")
        parts.append(part)
    return tuple(parts)


class RootDir:
    """An open directory that layer paths are resolved in."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self.fd = os.open(self.path, _DIR_FLAGS)

    def close(self) -> None:
        os.close(self.fd)

    def open_dir(
        self, parts: tuple[str, ...], *, create: bool, entry: str
    ) -> tuple[int, tuple[str, ...]] | None:
        """A new descriptor of the directory ``parts`` resolved in the root, and its real path.

        Symlinks on the way are followed but scoped to the root. Missing directories are made (0755,
        owned by the caller) when ``create``; otherwise None is returned for a missing one. A
        component that is not a directory is an error.
        """
        todo = deque(parts)
        stack = [os.dup(self.fd)]
        names: list[str] = []
        hops = 0
        try:
            while todo:
                part = todo.popleft()
                if part in ("", "."):
                    continue
                if part == "..":
                    if len(stack) > 1:
                        os.close(stack.pop())
                        names.pop()
                    continue
                cur = stack[-1]
                try:
                    st = os.stat(part, dir_fd=cur, follow_symlinks=False)
                except FileNotFoundError:
                    if not create:
                        return None
                    os.mkdir(part, 0o755, dir_fd=cur)
                    st = os.stat(part, dir_fd=cur, follow_symlinks=False)
                if stat.S_ISLNK(st.st_mode):
                    hops += 1
                    if hops > _MAX_SYMLINKS:
                        raise UnsafeLayerError(entry, "too many levels of symbolic links")
                    target = os.readlink(part, dir_fd=cur)
                    if target.startswith("/"):
                        while len(stack) > 1:
                            os.close(stack.pop())
                        names.clear()
                    todo.extendleft(reversed(target.split("/")))
                    continue
                if not stat.S_ISDIR(st.st_mode):
                    raise LayerError(f"layer entry {entry!r}: {part!r} on its path is not a directory")
                # O_NOFOLLOW: if the component was swapped for a symlink since the stat, this fails.
                stack.append(os.open(part, _DIR_FLAGS, dir_fd=cur))
                names.append(part)
            return stack.pop(), tuple(names)
        finally:
            for fd in stack:
                os.close(fd)

    def open_real_dir(self, parts: tuple[str, ...]) -> int | None:
        """A descriptor of ``parts`` only if every component is a real directory (no symlinks)."""
        fd = os.dup(self.fd)
        try:
            for part in parts:
                nfd = os.open(part, _DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = nfd
        except OSError:
            os.close(fd)
            return None
        return fd
