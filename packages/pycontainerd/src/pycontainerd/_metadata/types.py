"""The records the metadata store holds: images, leases and their resources, content and snapshot records."""

from __future__ import annotations

import enum

from pycontainerd._record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    import datetime
    from typing import Final

__all__ = [
    "ContentRecord",
    "Descriptor",
    "Image",
    "Lease",
    "LeaseResource",
    "Namespace",
    "SnapshotKind",
    "SnapshotRecord",
]

Labels = dict[str, str]


def _labels(value: dict[str, str] | None) -> dict[str, str]:
    return dict(value or {})


class Descriptor(Record):
    """What an image points at (OCI descriptor): media type, digest and size of a blob."""

    __slots__ = ("media_type", "digest", "size")

    def __init__(self, media_type: str, digest: str, size: int) -> None:
        self.media_type: Final = media_type
        self.digest: Final = digest
        self.size: Final = size


class Namespace(Record):
    """A namespace: names (images, leases, content references, snapshots) are per namespace."""

    __slots__ = ("name", "labels", "created_at")

    def __init__(
        self, name: str, labels: dict[str, str] | None = None, created_at: datetime.datetime | None = None
    ) -> None:
        self.name: Final = name
        self.labels: Final = _labels(labels)
        self.created_at: Final = created_at


class Image(Record):
    """A name in a namespace bound to a target descriptor (a manifest or an index)."""

    __slots__ = ("name", "target", "labels", "created_at", "updated_at")

    def __init__(
        self,
        name: str,
        target: Descriptor,
        labels: dict[str, str] | None = None,
        created_at: datetime.datetime | None = None,
        updated_at: datetime.datetime | None = None,
    ) -> None:
        self.name: Final = name
        self.target: Final = target
        self.labels: Final = _labels(labels)
        self.created_at: Final = created_at
        self.updated_at: Final = updated_at


class LeaseResource(Record):
    """A resource a lease protects from GC. ``type`` is ``content``, ``ingests`` or ``snapshots/<name>``.

    The types are containerd's: a content digest, an ingest ref, a snapshot key of one snapshotter.
    """

    __slots__ = ("type", "id")

    def __init__(self, type: str, id: str) -> None:
        self.type: Final = type
        self.id: Final = id

    @classmethod
    def content(cls, digest: str) -> LeaseResource:
        return cls("content", digest)

    @classmethod
    def ingest(cls, ref: str) -> LeaseResource:
        return cls("ingests", ref)

    @classmethod
    def snapshot(cls, snapshotter: str, key: str) -> LeaseResource:
        return cls(f"snapshots/{snapshotter}", key)


class Lease(Record):
    """A lease: while it exists and has not expired, the resources attached to it are GC roots."""

    __slots__ = ("id", "labels", "created_at", "expires_at")

    def __init__(
        self,
        id: str,
        labels: dict[str, str] | None = None,
        created_at: datetime.datetime | None = None,
        expires_at: datetime.datetime | None = None,
    ) -> None:
        self.id: Final = id
        self.labels: Final = _labels(labels)
        self.created_at: Final = created_at
        self.expires_at: Final = expires_at

    def expired(self, now: datetime.datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


class ContentRecord(Record):
    """A namespace's reference to a blob. Blobs are shared by namespaces; records are not."""

    __slots__ = ("digest", "size", "labels", "created_at", "updated_at")

    def __init__(
        self,
        digest: str,
        size: int,
        labels: dict[str, str] | None = None,
        created_at: datetime.datetime | None = None,
        updated_at: datetime.datetime | None = None,
    ) -> None:
        self.digest: Final = digest
        self.size: Final = size
        self.labels: Final = _labels(labels)
        self.created_at: Final = created_at
        self.updated_at: Final = updated_at


class SnapshotKind(enum.StrEnum):
    ACTIVE = "active"
    VIEW = "view"
    COMMITTED = "committed"


class SnapshotRecord(Record):
    """A snapshot as the metadata store knows it; its data belongs to the snapshotter ``snapshotter``."""

    __slots__ = ("snapshotter", "key", "kind", "parent", "labels", "created_at", "updated_at")

    def __init__(
        self,
        snapshotter: str,
        key: str,
        kind: SnapshotKind,
        parent: str | None = None,
        labels: dict[str, str] | None = None,
        created_at: datetime.datetime | None = None,
        updated_at: datetime.datetime | None = None,
    ) -> None:
        self.snapshotter: Final = snapshotter
        self.key: Final = key
        self.kind: Final = kind
        self.parent: Final = parent
        self.labels: Final = _labels(labels)
        self.created_at: Final = created_at
        self.updated_at: Final = updated_at
