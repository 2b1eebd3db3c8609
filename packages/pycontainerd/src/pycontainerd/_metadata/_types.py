"""The records the metadata store holds: images, leases and their resources, content and snapshot records."""

from __future__ import annotations

import datetime
import enum

import attrs

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


@attrs.frozen
class Descriptor:
    """What an image points at (OCI descriptor): media type, digest and size of a blob."""

    media_type: str
    digest: str
    size: int


@attrs.frozen
class Namespace:
    """A namespace: names (images, leases, content references, snapshots) are per namespace."""

    name: str
    labels: dict[str, str] = attrs.field(factory=dict, converter=_labels)
    created_at: datetime.datetime | None = None


@attrs.frozen
class Image:
    """A name in a namespace bound to a target descriptor (a manifest or an index)."""

    name: str
    target: Descriptor
    labels: dict[str, str] = attrs.field(factory=dict, converter=_labels)
    created_at: datetime.datetime | None = None
    updated_at: datetime.datetime | None = None


@attrs.frozen
class LeaseResource:
    """A resource a lease protects from GC. ``type`` is ``content``, ``ingests`` or ``snapshots/<name>``.

    The types are containerd's: a content digest, an ingest ref, a snapshot key of one snapshotter.
    """

    type: str
    id: str

    @classmethod
    def content(cls, digest: str) -> LeaseResource:
        return cls("content", digest)

    @classmethod
    def ingest(cls, ref: str) -> LeaseResource:
        return cls("ingests", ref)

    @classmethod
    def snapshot(cls, snapshotter: str, key: str) -> LeaseResource:
        return cls(f"snapshots/{snapshotter}", key)


@attrs.frozen
class Lease:
    """A lease: while it exists and has not expired, the resources attached to it are GC roots."""

    id: str
    labels: dict[str, str] = attrs.field(factory=dict, converter=_labels)
    created_at: datetime.datetime | None = None
    expires_at: datetime.datetime | None = None

    def expired(self, now: datetime.datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


@attrs.frozen
class ContentRecord:
    """A namespace's reference to a blob. Blobs are shared by namespaces; records are not."""

    digest: str
    size: int
    labels: dict[str, str] = attrs.field(factory=dict, converter=_labels)
    created_at: datetime.datetime | None = None
    updated_at: datetime.datetime | None = None


class SnapshotKind(enum.StrEnum):
    ACTIVE = "active"
    VIEW = "view"
    COMMITTED = "committed"


@attrs.frozen
class SnapshotRecord:
    """A snapshot as the metadata store knows it; its data belongs to the snapshotter ``snapshotter``."""

    snapshotter: str
    key: str
    kind: SnapshotKind
    parent: str | None = None
    labels: dict[str, str] = attrs.field(factory=dict, converter=_labels)
    created_at: datetime.datetime | None = None
    updated_at: datetime.datetime | None = None
