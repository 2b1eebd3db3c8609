"""The metadata store (containerd's ``metadata`` package, on sqlite in WAL mode) and its garbage collector.

``MetadataStore(root)`` opens ``<root>/metadata.db``: namespaces, images, leases, content references,
snapshot and container records, shared safely by several processes. ``NamespacedContent`` is the
content store as one namespace sees it: only the blobs the namespace proved it has.
``collect(store, content_store)`` marks from the roots and sweeps what nothing reaches; a lease
labelled with its owner process (``owner``: :data:`LEASE_OWNER`) ends with that process.
"""

from __future__ import annotations

from pycontainerd._metadata.containers import Container, Containers, check_container_id
from pycontainerd._metadata.content import SHAREABLE, UNCOMPRESSED, NamespacedContent
from pycontainerd._metadata.gc import GC_REF_CONTENT, GC_REF_SNAPSHOT, GC_ROOT, GCResult, collect
from pycontainerd._metadata.owner import LEASE_OWNER, current_owner, owner_alive
from pycontainerd._metadata.schema import SCHEMA_VERSION
from pycontainerd._metadata.store import DB_NAME, MetadataStore, Transaction
from pycontainerd._metadata.tables import check_namespace
from pycontainerd._metadata.types import (
    ContentRecord,
    Descriptor,
    Image,
    Lease,
    LeaseResource,
    Namespace,
    SnapshotKind,
    SnapshotRecord,
)

__all__ = [
    "DB_NAME",
    "GC_REF_CONTENT",
    "GC_REF_SNAPSHOT",
    "GC_ROOT",
    "LEASE_OWNER",
    "SCHEMA_VERSION",
    "SHAREABLE",
    "UNCOMPRESSED",
    "Container",
    "Containers",
    "ContentRecord",
    "Descriptor",
    "GCResult",
    "Image",
    "Lease",
    "LeaseResource",
    "MetadataStore",
    "Namespace",
    "NamespacedContent",
    "SnapshotKind",
    "SnapshotRecord",
    "Transaction",
    "check_container_id",
    "check_namespace",
    "collect",
    "current_owner",
    "owner_alive",
]
