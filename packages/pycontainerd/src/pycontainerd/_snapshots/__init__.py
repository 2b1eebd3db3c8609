"""Snapshotters: root filesystems as stacks of snapshots, modelled on containerd's ``snapshots``.

Two implementations of one :class:`Snapshotter` protocol, each standalone under its own root
(its own ``metadata.db``, ``lock`` and ``snapshots/<id>/``):

- :class:`OverlaySnapshotter` (the default): each snapshot is an overlayfs layer;
- :class:`NativeSnapshotter`: each snapshot is a full copy, for filesystems without overlayfs.

Committed snapshots of images are named by :func:`chain_id`. :class:`Mount` describes a mount and
performs it (``mount(2)``, through a small C module); :func:`remove_tree` removes a directory that
may hold mount points without ever deleting through one. :class:`Snapshotters` opens a root's
snapshotters by name.

The :class:`Snapshotter` protocol itself (``protocol``) is imported for type checking only.
"""

from __future__ import annotations

from pycontainerd._snapshots.mount import Mount, MountFlags, mount_all, unmount, unmount_all
from pycontainerd._snapshots.native import NativeSnapshotter
from pycontainerd._snapshots.overlay import OverlaySnapshotter, mount_data_limit
from pycontainerd._snapshots.registry import SNAPSHOTTERS, Snapshotters, check_snapshotter
from pycontainerd._snapshots.removal import remove_tree, unmount_beneath
from pycontainerd._snapshots.types import Info, Kind, Usage, chain_id

__all__ = [
    "SNAPSHOTTERS",
    "Info",
    "Kind",
    "Mount",
    "MountFlags",
    "NativeSnapshotter",
    "OverlaySnapshotter",
    "Snapshotters",
    "Usage",
    "chain_id",
    "check_snapshotter",
    "mount_all",
    "mount_data_limit",
    "remove_tree",
    "unmount",
    "unmount_all",
    "unmount_beneath",
]
