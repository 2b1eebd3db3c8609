"""The overlayfs snapshotter (containerd's ``snapshots/overlay``), the default.

Each snapshot owns ``snapshots/<id>/fs``: the upper dir of an active snapshot, one layer once
committed; an active snapshot also owns ``work`` (overlayfs' workdir). Mounts:

- an active snapshot without parent: a read-write bind of its ``fs`` (nothing to overlay);
- an active snapshot with parents: ``overlay`` with ``upperdir=fs``, ``workdir=work`` and
  ``lowerdir`` the committed parents' ``fs``, nearest parent first (overlayfs' order: leftmost on top);
- a view of no parent or of one layer: a read-only bind (of its own empty ``fs``, or of the parent's);
- a view of several layers: a read-only ``overlay`` of ``lowerdir`` alone.

Layers are applied to the upper dir directly, with whiteouts in overlayfs' form
(``WhiteoutFormat.OVERLAY``).

Limit: ``mount(2)`` copies at most one page of option data (4096 bytes on x86-64 and arm64, the
terminating NUL included), so the ``lowerdir`` list must fit in one page with ``upperdir`` and
``workdir``. That is about 4000 / (len(root) + 20) layers: some 80 for a root of 30 characters. A
snapshot whose chain would not fit is refused with ``FailedPreconditionError`` when it is prepared,
before anything is created. (overlayfs itself stacks at most 500 layers.)
"""

from __future__ import annotations

import os
from pathlib import Path

from pycontainerd._errors import FailedPreconditionError, InvalidArgumentError
from pycontainerd._snapshots.mount import Mount
from pycontainerd._snapshots.store import SnapshotStore
from pycontainerd._snapshots.types import Kind

__all__ = ["OverlaySnapshotter", "mount_data_limit"]


def mount_data_limit() -> int:
    """The most bytes of option data ``mount(2)`` takes, the terminating NUL excluded."""
    return os.sysconf("SC_PAGE_SIZE") - 1


class OverlaySnapshotter(SnapshotStore):
    """Snapshots as overlayfs layers under ``root`` (see the module's docstring for the layout)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        path = os.fspath(Path(root).absolute())
        # overlayfs splits its options on "," and lowerdir on ":"; such a root cannot be expressed.
        if "," in path or ":" in path:
            raise InvalidArgumentError(f"an overlay snapshotter root cannot contain ',' or ':': {path!r}")
        super().__init__(root)

    def _populate(self, path: Path, kind: Kind, parent_ids: list[int]) -> None:
        (path / "fs").mkdir(mode=0o755)
        if kind is Kind.ACTIVE:
            (path / "work").mkdir(mode=0o700)

    def _mounts_for(self, kind: Kind, snapshot_id: int, parent_ids: list[int]) -> list[Mount]:
        own = self._dir(snapshot_id)
        if not parent_ids:
            mode = "ro" if kind is Kind.VIEW else "rw"
            return [Mount("bind", os.fspath(own / "fs"), (mode, "rbind"))]
        if kind is Kind.VIEW and len(parent_ids) == 1:
            return [Mount("bind", os.fspath(self._dir(parent_ids[0]) / "fs"), ("ro", "rbind"))]
        lower = "lowerdir=" + ":".join(os.fspath(self._dir(i) / "fs") for i in parent_ids)
        if kind is Kind.VIEW:
            data = [lower]
            options: tuple[str, ...] = ("ro", lower)
        else:
            data = [f"workdir={own / 'work'}", f"upperdir={own / 'fs'}", lower]
            options = tuple(data)
        size = len(",".join(data).encode())
        if size > mount_data_limit():
            raise FailedPreconditionError(
                f"{len(parent_ids)} layers do not fit in one overlay mount: its options take {size} "
                f"bytes, mount(2) takes at most {mount_data_limit()} (one page); use a shorter root"
            )
        return [Mount("overlay", "overlay", options)]
