"""Snapshotters: root filesystems as stacks of snapshots, modelled on containerd's ``snapshots``.

Two implementations of one :class:`Snapshotter` protocol, each standalone under its own root
(its own ``metadata.db``, ``lock`` and ``snapshots/<id>/``):

- :class:`OverlaySnapshotter` (the default): each snapshot is an overlayfs layer;
- :class:`NativeSnapshotter`: each snapshot is a full copy, for filesystems without overlayfs.

Committed snapshots of images are named by :func:`chain_id`. :class:`Mount` describes a mount
and performs it (``mount(2)``, through a small C module); :func:`apply_dir` says where and in which whiteout
form a layer goes for a snapshot's mounts; :func:`remove_tree` removes a directory that may hold mount
points without ever deleting through one.
"""

from __future__ import annotations

from pathlib import Path

from .._errors import InvalidArgumentError
from ._mount import Mount, MountFlags, mount_all, unmount, unmount_all
from ._native import NativeSnapshotter
from ._overlay import OverlaySnapshotter, mount_data_limit
from ._removal import remove_tree, unmount_beneath
from ._types import Info, Kind, Usage, chain_id

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    from .._archive._whiteouts import WhiteoutFormat
    from ._types import Snapshotter

__all__ = [
    "Info",
    "Kind",
    "Mount",
    "MountFlags",
    "NativeSnapshotter",
    "OverlaySnapshotter",
    "Snapshotter",
    "Usage",
    "apply_dir",
    "chain_id",
    "mount_all",
    "mount_data_limit",
    "remove_tree",
    "unmount",
    "unmount_all",
    "unmount_beneath",
]


def __getattr__(name: str) -> object:
    if name == "Snapshotter":  # see _types.__getattr__: imports typing, so only on first use
        from ._types import Snapshotter

        globals()[name] = Snapshotter
        return Snapshotter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def apply_dir(mounts: Sequence[Mount]) -> tuple[Path, WhiteoutFormat]:
    """Where a layer is applied for an active snapshot's ``mounts``, and in which whiteout form.

    An overlay mount takes the layer in its ``upperdir`` with overlayfs' whiteouts (as containerd's
    applier does, so no mount is needed); a bind takes it in its source, whiteouts applied in place.
    """
    from .._archive._whiteouts import WhiteoutFormat  # here: only unpacking needs it

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
