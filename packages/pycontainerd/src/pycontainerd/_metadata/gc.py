"""Garbage collection: mark what the roots reach, sweep the rest (containerd's ``gc`` and ``metadata/gc.go``).

Roots, per namespace:

* images: their target descriptors;
* unexpired leases: their content, ingest and snapshot resources (a lease labelled with the process
  that holds it, ``pycontainerd.io/lease.owner``, expires when that process is gone: a crashed pull);
* content records labelled ``containerd.io/gc.root`` and snapshot records labelled likewise;
* containers: their snapshot.

From a marked blob, GC follows the labels ``containerd.io/gc.ref.content.*`` (digests) and
``containerd.io/gc.ref.snapshot.<snapshotter>*`` (snapshot keys) of its record, and, when the blob is a
manifest or an index (OCI or Docker schema2, by media type or, for untyped roots, by its JSON), the
descriptors it lists: config, layers, sub-manifests. A marked snapshot keeps its parent chain.

Sweep, all under the store's write lock so nothing can gain a reference half-way: expired leases are
deleted; unmarked content records are deleted; blobs are deleted from the content store unless a
namespace keeps a record of them or a lease holds them (a namespace naming a digest it has no record
of, in an index say, keeps no other namespace's blob alive); unmarked snapshot records are reported,
and removed (children first) through ``snapshot_remover`` when one is given, which is called for a
snapshot's data only once no namespace keeps a record of it (the data is shared by the namespaces
that unpacked the same layers); ingests not held by a lease are aborted when the lease that held them
has just been deleted (expired, or its owner died), when idle past ``ingest_expiry``, or when the
blob they were writing is in the store already and recorded in their namespace (nothing left to
resume). A namespace's ingest ``r`` is ``<namespace>/r`` on disk (see ``NamespacedContent``).
A blob committed by a writer that holds no lease may be collected: writers take a lease first.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable

from pycontainerd._content import ContentStore
from pycontainerd._errors import LockedError, NotFoundError
from pycontainerd._metadata.owner import LEASE_OWNER, owner_alive
from pycontainerd._metadata.store import MetadataStore
from pycontainerd._record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from typing import Final

__all__ = ["MANIFEST_MEDIA_TYPES", "GCResult", "collect"]

GC_ROOT = "containerd.io/gc.root"
GC_REF_CONTENT = "containerd.io/gc.ref.content."
GC_REF_SNAPSHOT = "containerd.io/gc.ref.snapshot."

_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MANIFEST_MEDIA_TYPES = frozenset({_OCI_INDEX, _OCI_MANIFEST, _DOCKER_LIST, _DOCKER_MANIFEST})
# An untyped root (a lease's or a labelled blob) is sniffed as JSON only if it is this small.
_MAX_SNIFF = 4 << 20

SnapshotRemover = Callable[[str, str], None]


class GCResult(Record):
    """What a collection did. Blobs are digests; snapshots, records and tasks are ``(namespace, ...)``
    tuples (the abandoned tasks ``Client.gc`` deleted before collecting)."""

    __slots__ = (
        "deleted_blobs",
        "bytes_freed",
        "deleted_content_records",
        "deleted_leases",
        "unreferenced_snapshots",
        "removed_snapshots",
        "aborted_ingests",
        "errors",
        "deleted_tasks",
    )

    def __init__(
        self,
        deleted_blobs: tuple[str, ...],
        bytes_freed: int,
        deleted_content_records: tuple[tuple[str, str], ...],
        deleted_leases: tuple[tuple[str, str], ...],
        unreferenced_snapshots: tuple[tuple[str, str, str], ...],
        removed_snapshots: tuple[tuple[str, str, str], ...],
        aborted_ingests: tuple[str, ...],
        errors: tuple[str, ...] = (),
        deleted_tasks: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self.deleted_blobs: Final = deleted_blobs
        self.bytes_freed: Final = bytes_freed
        self.deleted_content_records: Final = deleted_content_records
        self.deleted_leases: Final = deleted_leases
        self.unreferenced_snapshots: Final = unreferenced_snapshots
        self.removed_snapshots: Final = removed_snapshots
        self.aborted_ingests: Final = aborted_ingests
        self.errors: Final = errors
        self.deleted_tasks: Final = deleted_tasks


def _descriptors(document: object) -> Iterator[tuple[str, str | None]]:
    """The ``(digest, media type)`` of every descriptor a manifest or index lists."""
    if not isinstance(document, dict):
        return
    entries: list[object] = []
    config = document.get("config")
    if config is not None:
        entries.append(config)
    for field in ("layers", "manifests", "blobs"):
        value = document.get(field)
        if isinstance(value, list):
            entries.extend(value)
    subject = document.get("subject")
    if subject is not None:
        entries.append(subject)
    for entry in entries:
        if isinstance(entry, dict) and isinstance(entry.get("digest"), str):
            media_type = entry.get("mediaType")
            yield entry["digest"], media_type if isinstance(media_type, str) else None


def _children(content: ContentStore, digest: str, media_type: str | None) -> list[tuple[str, str | None]]:
    """The descriptors ``digest`` lists if it is a manifest or an index held by the store, else none."""
    if media_type is not None and media_type not in MANIFEST_MEDIA_TYPES:
        return []
    try:
        if media_type is None and content.info(digest).size > _MAX_SNIFF:
            return []
        data = content.read_blob(digest)
    except (NotFoundError, ValueError):
        return []  # not in the store (yet): nothing below it to keep
    if media_type is None and data.lstrip()[:1] != b"{":
        return []
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):  # not a document an image could hold (see _images.types)
        return []
    if media_type is None:
        found = document.get("mediaType") if isinstance(document, dict) else None
        if found not in MANIFEST_MEDIA_TYPES and not (
            isinstance(document, dict) and document.get("schemaVersion") == 2
        ):
            return []
    return list(_descriptors(document))


def _in_store(content: ContentStore, digest: str) -> bool:
    try:
        content.info(digest)
    except NotFoundError:
        return False
    return True


def _label_refs(labels: dict[str, str], prefix: str) -> Iterable[tuple[str, str]]:
    for key, value in labels.items():
        if key.startswith(prefix):
            yield key[len(prefix) :], value


def collect(
    store: MetadataStore,
    content: ContentStore,
    *,
    snapshot_remover: SnapshotRemover | None = None,
    now: datetime.datetime | None = None,
    ingest_expiry: datetime.timedelta = datetime.timedelta(hours=24),
    deleted_tasks: tuple[tuple[str, str], ...] = (),
    errors: tuple[str, ...] = (),
) -> GCResult:
    """Mark from the roots, sweep the rest; see the module docstring. ``now`` defaults to the clock.

    ``snapshot_remover(snapshotter, key)`` removes a snapshot's data; a failure keeps the record and is
    reported in the result's ``errors``. ``deleted_tasks`` and ``errors``, what the caller collected
    before and what it failed to, go into the result.
    """
    now = now or datetime.datetime.now(tz=datetime.UTC)
    failures: list[str] = list(errors)
    with store.transaction() as tx:
        conn = tx.connection
        stamp = now.timestamp()
        expired = [
            (ns, id_)
            for ns, id_, labels, expires_at in conn.execute(
                "SELECT namespace, id, labels, expires_at FROM leases ORDER BY namespace, id"
            )
            if (expires_at is not None and expires_at <= stamp)
            or not owner_alive(json.loads(labels).get(LEASE_OWNER, ""))
        ]
        ended = set(expired)
        released_ingests = {
            id_
            for ns, lease_id, id_ in conn.execute(
                "SELECT namespace, lease_id, id FROM lease_resources WHERE type = 'ingests'"
            )
            if (ns, lease_id) in ended
        }
        conn.executemany("DELETE FROM leases WHERE namespace = ? AND id = ?", expired)

        records: dict[tuple[str, str], dict[str, str]] = {
            (ns, digest): json.loads(labels)
            for ns, digest, labels in conn.execute("SELECT namespace, digest, labels FROM content")
        }
        snapshots: dict[tuple[str, str, str], tuple[str | None, dict[str, str]]] = {
            (ns, sn, key): (parent, json.loads(labels))
            for ns, sn, key, parent, labels in conn.execute(
                "SELECT namespace, snapshotter, key, parent, labels FROM snapshots"
            )
        }

        content_roots: list[tuple[str, str, str | None]] = [
            (ns, digest, media_type)
            for ns, digest, media_type in conn.execute("SELECT namespace, digest, media_type FROM images")
        ]
        content_roots += [(ns, digest, None) for (ns, digest), labels in records.items() if GC_ROOT in labels]
        snapshot_roots = [key for key, (_, labels) in snapshots.items() if GC_ROOT in labels]
        snapshot_roots += conn.execute(
            "SELECT namespace, snapshotter, snapshot_key FROM containers"
        ).fetchall()
        held_ingests: set[str] = set()
        leased_digests: set[str] = set()
        for ns, type_, id_ in conn.execute("SELECT namespace, type, id FROM lease_resources"):
            if type_ == "content":
                content_roots.append((ns, id_, None))
                leased_digests.add(id_)  # perhaps being committed: its record is not there yet
            elif type_ == "ingests":
                held_ingests.add(id_)
            elif type_.startswith("snapshots/"):
                snapshot_roots.append((ns, type_[len("snapshots/") :], id_))

        # Mark: content per namespace (a record is kept only if its own namespace reaches it).
        marked: set[tuple[str, str]] = set()
        marked_snapshots: set[tuple[str, str, str]] = set()
        stack = content_roots
        while stack:
            ns, digest, media_type = stack.pop()
            if (ns, digest) in marked:
                continue
            marked.add((ns, digest))
            labels = records.get((ns, digest), {})
            for _, ref in _label_refs(labels, GC_REF_CONTENT):
                stack.append((ns, ref, None))
            for name, key in _label_refs(labels, GC_REF_SNAPSHOT):
                snapshot_roots.append((ns, name.split("/", 1)[0], key))
            for child, child_type in _children(content, digest, media_type):
                stack.append((ns, child, child_type))
        for root in snapshot_roots:
            node: tuple[str, str, str] | None = root
            while node is not None and node not in marked_snapshots:
                marked_snapshots.add(node)
                parent = snapshots.get(node, (None, {}))[0]
                node = (node[0], node[1], parent) if parent is not None else None

        # Sweep content records, then blobs no namespace keeps a record of.
        dead_records = sorted(key for key in records if key not in marked)
        conn.executemany("DELETE FROM content WHERE namespace = ? AND digest = ?", dead_records)
        live_records = {key for key in records if key in marked}
        live_digests = {digest for _, digest in live_records} | leased_digests
        deleted_blobs: list[str] = []
        freed = 0
        for info in list(content.walk()):
            if info.digest in live_digests:
                continue
            try:
                content.delete(info.digest)
            except NotFoundError:
                continue  # another collector got there first
            deleted_blobs.append(info.digest)
            freed += info.size

        # Snapshots: children before parents, so a snapshotter never loses a parent under a child.
        unreferenced = [key for key in snapshots if key not in marked_snapshots]
        depth: dict[tuple[str, str, str], int] = {}
        for snap in unreferenced:
            n, above = 0, snapshots[snap][0]
            while above is not None and n < len(snapshots):
                n += 1
                above = snapshots.get((snap[0], snap[1], above), (None, {}))[0]
            depth[snap] = n
        unreferenced.sort(key=lambda snap: (-depth[snap], snap))
        removed: list[tuple[str, str, str]] = []
        if snapshot_remover is not None:
            # A snapshot's data is shared by the namespaces that record it: it goes with its last record,
            # and stays while anything marks it (a lease of an unpack that is about to record it, say).
            in_use = {(name, key) for _, name, key in marked_snapshots}
            gone: set[tuple[str, str]] = set()
            failed: set[tuple[str, str]] = set()
            for ns, name, key in unreferenced:
                data = (name, key)
                if data in failed:
                    continue  # its data could not be removed: the records stay, for the next collection
                if data not in in_use and data not in gone:
                    try:
                        snapshot_remover(name, key)
                    except Exception as exc:  # noqa: BLE001 -- one snapshot's failure must not stop the sweep
                        failures.append(f"snapshot {ns}/{name}/{key}: {exc}")
                        failed.add(data)
                        continue
                    gone.add(data)
                conn.execute(
                    "DELETE FROM snapshots WHERE namespace = ? AND snapshotter = ? AND key = ?",
                    (ns, name, key),
                )
                removed.append((ns, name, key))

        # Ingests left behind (a crashed pull): abort those no live lease holds, once their lease
        # ended, they idled too long, or their blob is in the store (for a namespace's ingest: in the
        # store and recorded in that namespace; another namespace's copy proves nothing for it).
        namespaces = {name for (name,) in conn.execute("SELECT name FROM namespaces")}

        def finished(ref: str, expected: str | None) -> bool:
            if expected is None:
                return False
            namespace, slash, _ = ref.partition("/")
            if slash and namespace in namespaces:
                return (namespace, expected) in live_records
            return _in_store(content, expected)

        aborted: list[str] = []
        cutoff = now - ingest_expiry
        for status in content.list_statuses():
            if status.ref in held_ingests:
                continue
            if (
                status.ref not in released_ingests
                and status.updated_at > cutoff
                and not finished(status.ref, status.expected)
            ):
                continue
            try:
                content.abort(status.ref)
            except (LockedError, NotFoundError):
                continue  # a writer is alive on it, or it just finished
            aborted.append(status.ref)

    return GCResult(
        deleted_blobs=tuple(sorted(deleted_blobs)),
        bytes_freed=freed,
        deleted_content_records=tuple(dead_records),
        deleted_leases=tuple((ns, id_) for ns, id_ in expired),
        unreferenced_snapshots=tuple(sorted(unreferenced)),
        removed_snapshots=tuple(removed),
        aborted_ingests=tuple(aborted),
        errors=tuple(failures),
        deleted_tasks=deleted_tasks,
    )
