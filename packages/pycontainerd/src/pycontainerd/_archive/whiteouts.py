"""Whiteouts: the OCI form in layer tars, and the two forms on disk.

In a layer tar (OCI image spec, "Whiteouts"):

- ``DIR/.wh.NAME`` removes ``NAME`` (and everything under it) of the lower layers;
- ``DIR/.wh..wh..opq`` makes ``DIR`` opaque: nothing of the lower layers shows through it.

On disk, :class:`WhiteoutFormat` picks one of:

- ``OVERLAY`` (an overlayfs upper dir): a removed name is a 0:0 character device and an opaque
  directory carries the ``trusted.overlay.opaque=y`` xattr, which the kernel interprets;
- ``NATIVE`` (a plain directory already holding the lower layers, the copy snapshotter): the names are
  removed and the opaque directory is emptied.

Both forms only touch the lower layers: entries of the same layer survive, whatever their order.
:func:`apply_dir` says where an active snapshot's mounts take a layer, and in which form.
"""

from __future__ import annotations

import enum
import os
import stat
from pathlib import Path

from pycontainerd._errors import InvalidArgumentError
from pycontainerd._snapshots import remove_tree

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    from pycontainerd._snapshots import Mount

__all__ = [
    "OPAQUE",
    "OVERLAY_OPAQUE_XATTR",
    "WHITEOUT_PREFIX",
    "WhiteoutFormat",
    "apply_dir",
    "empty_dir",
    "is_overlay_whiteout",
    "remove_entry",
    "set_overlay_opaque",
    "write_overlay_whiteout",
]

WHITEOUT_PREFIX = ".wh."
OPAQUE = ".wh..wh..opq"
OVERLAY_OPAQUE_XATTR = "trusted.overlay.opaque"


class WhiteoutFormat(enum.Enum):
    """How whiteouts are represented in the directory a layer is applied to."""

    OVERLAY = "overlay"
    NATIVE = "native"


def is_overlay_whiteout(st: os.stat_result) -> bool:
    """Whether ``st`` is overlayfs' whiteout: a character device numbered 0:0."""
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def remove_entry(dir_fd: int, name: str) -> None:
    """Remove ``name`` in ``dir_fd`` whatever it is, never following a symlink; absent is fine."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        # By descriptors, never following a symlink, and refusing to enter a mount point: a layer
        # never unmounts anything, nor deletes what is mounted below the snapshot.
        remove_tree(name, dir_fd=dir_fd, unmount=False)
    else:
        os.unlink(name, dir_fd=dir_fd)


def write_overlay_whiteout(dir_fd: int, name: str) -> None:
    remove_entry(dir_fd, name)
    os.mknod(name, stat.S_IFCHR | 0o000, os.makedev(0, 0), dir_fd=dir_fd)


def set_overlay_opaque(dir_fd: int) -> None:
    os.setxattr(dir_fd, OVERLAY_OPAQUE_XATTR, b"y")


def empty_dir(dir_fd: int, keep: set[str]) -> None:
    """Remove every child of ``dir_fd`` except those named in ``keep`` (made by the same layer)."""
    for name in os.listdir(dir_fd):
        if name not in keep:
            remove_entry(dir_fd, name)


def apply_dir(mounts: Sequence[Mount]) -> tuple[Path, WhiteoutFormat]:
    """Where a layer is applied for an active snapshot's ``mounts``, and in which whiteout form.

    An overlay mount takes the layer in its ``upperdir`` with overlayfs' whiteouts (as containerd's
    applier does, so no mount is needed); a bind takes it in its source, whiteouts applied in place.
    """
    if len(mounts) != 1:
        raise InvalidArgumentError(f"expected one mount, got {len(mounts)}")
    (m,) = mounts
    if m.type == "overlay":
        for option in m.options:
            if option.startswith("upperdir="):
                return Path(option.removeprefix("upperdir=")), WhiteoutFormat.OVERLAY
        raise InvalidArgumentError("a read-only overlay mount cannot take a layer")
    if m.type == "bind" and "ro" not in m.options:
        return Path(m.source), WhiteoutFormat.NATIVE
    raise InvalidArgumentError(f"cannot apply a layer to a {m.type} mount with options {m.options}")
