"""The native snapshotter (containerd's ``snapshots/native``): full copies, for filesystems where
overlayfs cannot run (an overlayfs or NFS root, for instance).

Each snapshot owns ``snapshots/<id>/fs``, a complete copy of its parent's tree made when it is
prepared (ownership, modes, xattrs, hardlinks, devices and symlinks kept; see ``copy``); its mount
is a bind of that directory, read-only for views. Layers are applied to it with whiteouts done in
place (``WhiteoutFormat.NATIVE``). Simple and slow: every snapshot costs a full copy in time and
space.
"""

from __future__ import annotations

import os
from pathlib import Path

from pycontainerd._snapshots.copy import copy_tree
from pycontainerd._snapshots.mount import Mount
from pycontainerd._snapshots.store import SnapshotStore
from pycontainerd._snapshots.types import Kind

__all__ = ["NativeSnapshotter"]


class NativeSnapshotter(SnapshotStore):
    """Snapshots as full directory copies under ``root``."""

    def _populate(self, path: Path, kind: Kind, parent_ids: list[int]) -> None:
        fs = path / "fs"
        fs.mkdir(mode=0o755)
        if parent_ids:
            copy_tree(os.fspath(self._dir(parent_ids[0]) / "fs"), os.fspath(fs))

    def _mounts_for(self, kind: Kind, snapshot_id: int, parent_ids: list[int]) -> list[Mount]:
        mode = "ro" if kind is Kind.VIEW else "rw"
        return [Mount("bind", os.fspath(self._dir(snapshot_id) / "fs"), (mode, "rbind"))]
