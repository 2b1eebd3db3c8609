"""What snapshotters report: the kinds of snapshot, what :meth:`Snapshotter.stat` and
:meth:`Snapshotter.usage` return (the protocol itself is in ``protocol``), and :func:`chain_id`.

A snapshot is a directory tree. An *active* snapshot is writable and becomes a *committed* one
(immutable, a possible parent) under a new name; a *view* is a read-only snapshot that is never
committed. Keys of active snapshots and views, and names of committed ones, share one namespace per
snapshotter. Images name their committed snapshots by the ChainID of their layers.
"""

from __future__ import annotations

import datetime
import enum

from pycontainerd._errors import InvalidArgumentError
from pycontainerd._record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Final

__all__ = ["Info", "Kind", "Usage", "chain_id"]


class Kind(enum.Enum):
    """What a snapshot is; a snapshot only ever moves from ``ACTIVE`` to ``COMMITTED``."""

    VIEW = "view"
    ACTIVE = "active"
    COMMITTED = "committed"


class Info(Record):
    """A snapshot's record: its key or name, the name of its committed parent, labels, times (UTC)."""

    __slots__ = ("kind", "name", "parent", "labels", "created", "updated")

    def __init__(
        self,
        kind: Kind,
        name: str,
        parent: str | None,
        labels: Mapping[str, str],
        created: datetime.datetime,
        updated: datetime.datetime,
    ) -> None:
        self.kind: Final = kind
        self.name: Final = name
        self.parent: Final = parent
        self.labels: Final = labels
        self.created: Final = created
        self.updated: Final = updated


class Usage(Record):
    """Space a snapshot takes on disk: bytes of its blocks, and inodes (each hardlinked inode once).

    For overlayfs this is the snapshot's own layer; for the native snapshotter, its whole copy.
    """

    __slots__ = ("size", "inodes")

    def __init__(self, size: int, inodes: int) -> None:
        self.size: Final = size
        self.inodes: Final = inodes


def chain_id(diff_ids: Sequence[str]) -> str:
    """The ChainID of a stack of layers given by their DiffIDs, bottom first (OCI image spec).

    ChainID(L0) = DiffID(L0); ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln)).
    """
    if not diff_ids:
        raise InvalidArgumentError("a ChainID needs at least one DiffID")
    for diff_id in diff_ids:
        algorithm, _, hex_ = diff_id.partition(":")
        if not algorithm or not hex_:
            raise InvalidArgumentError(f"not a digest: {diff_id!r}")
    current = diff_ids[0]
    for diff_id in diff_ids[1:]:
        import hashlib  # only for images of more than one layer: see _content.names.ingest_name

        current = "sha256:" + hashlib.sha256(f"{current} {diff_id}".encode()).hexdigest()
    return current
