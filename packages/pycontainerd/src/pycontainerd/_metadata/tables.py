"""The tables of the metadata store, each an object whose methods run in a transaction given by Access.

The same classes serve ``store.images`` (each call its own transaction) and ``tx.images`` (every call
in the caller's transaction). Writes create their namespace if it does not exist yet, as containerd's
do; ``namespaces.delete`` refuses a namespace that still holds anything.
"""

from __future__ import annotations

import builtins
import datetime
import json
import re
import sqlite3
import time
from collections.abc import Callable
from contextlib import AbstractContextManager

from pycontainerd._content import validate_digest
from pycontainerd._errors import (
    AlreadyExistsError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
)
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

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

__all__ = [
    "Access",
    "Content",
    "Images",
    "Leases",
    "Namespaces",
    "Snapshots",
    "check_name",
    "check_namespace",
    "current_time",
    "decode_labels",
    "encode_labels",
    "ensure_namespace",
    "from_timestamp",
]

Use = Callable[[bool], AbstractContextManager[sqlite3.Connection]]

# containerd's namespace and identifier rules: alphanumerics separated by single '.', '_' or '-'.
_NAMESPACE = re.compile(r"[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*")
_MAX_NAME = 76
_MAX_LABEL = 4096
_RESOURCE_TYPE = re.compile(r"content|ingests|snapshots/[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*")


class Access:
    """How a table reaches the database: ``use(write)`` yields a connection inside a transaction."""

    def __init__(self, use: Use) -> None:
        self.use = use


def current_time() -> float:
    """The time a record is stamped with: seconds since the epoch."""
    return time.time()


def from_timestamp(value: float | None) -> datetime.datetime | None:
    """A stored time as an aware UTC datetime (None stays None)."""
    return None if value is None else datetime.datetime.fromtimestamp(value, tz=datetime.UTC)


def _seconds(value: datetime.datetime | None) -> float | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise InvalidArgumentError(f"time {value} has no timezone: pass an aware datetime")
    return value.timestamp()


def check_namespace(name: object) -> str:
    """``name`` if it is a namespace's name (containerd's rules); InvalidArgumentError otherwise."""
    if isinstance(name, str) and len(name) <= _MAX_NAME and _NAMESPACE.fullmatch(name):
        return name
    raise InvalidArgumentError(f"invalid namespace {name!r}")


def check_name(kind: str, name: object) -> str:
    """``name`` if it can name a record of ``kind``; InvalidArgumentError otherwise."""
    if isinstance(name, str) and name and name.isprintable() and len(name) <= 4096:
        return name
    raise InvalidArgumentError(f"invalid {kind} {name!r}: a non-empty printable string is required")


def encode_labels(labels: Mapping[str, str] | None) -> str:
    """``labels``, checked, as the JSON text a record stores."""
    # Checked at run time too: labels come from callers and files, not only from typed code.
    checked: dict[object, object] = {}
    checked.update(labels or {})
    for key, value in checked.items():
        if not isinstance(key, str) or not key or not isinstance(value, str):
            raise InvalidArgumentError(f"invalid label {key!r}={value!r}: keys and values are strings")
        if len(key) + len(value) > _MAX_LABEL:
            raise InvalidArgumentError(f"label {key!r} is longer than {_MAX_LABEL} characters")
    return json.dumps(checked, sort_keys=True)


def decode_labels(text: str) -> dict[str, str]:
    """The labels a record stores as JSON text."""
    value: dict[str, str] = json.loads(text)
    return value


def _check_size(size: object) -> int:
    if isinstance(size, int) and not isinstance(size, bool) and size >= 0:
        return size
    raise InvalidArgumentError(f"invalid size {size!r}")


def ensure_namespace(conn: sqlite3.Connection, namespace: str) -> None:
    """Record ``namespace`` (checked) if it is not yet, in the transaction of ``conn``."""
    conn.execute(
        "INSERT OR IGNORE INTO namespaces (name, labels, created_at) VALUES (?, '{}', ?)",
        (check_namespace(namespace), current_time()),
    )


class Namespaces:
    """``namespaces``: create, get, list, update labels, delete (only when empty)."""

    def __init__(self, access: Access) -> None:
        self._use = access.use

    def create(self, name: str, labels: Mapping[str, str] | None = None) -> Namespace:
        """AlreadyExistsError if ``name`` exists."""
        check_namespace(name)
        with self._use(True) as conn:
            try:
                conn.execute(
                    "INSERT INTO namespaces (name, labels, created_at) VALUES (?, ?, ?)",
                    (name, encode_labels(labels), current_time()),
                )
            except sqlite3.IntegrityError:
                raise AlreadyExistsError(f"namespace {name} already exists") from None
            return self._get(conn, name)

    def _get(self, conn: sqlite3.Connection, name: str) -> Namespace:
        row = conn.execute(
            "SELECT name, labels, created_at FROM namespaces WHERE name = ?", (name,)
        ).fetchone()
        if row is None:
            raise NotFoundError(f"namespace {name} not found")
        return Namespace(row[0], decode_labels(row[1]), from_timestamp(row[2]))

    def get(self, name: str) -> Namespace:
        with self._use(False) as conn:
            return self._get(conn, name)

    def list(self) -> list[Namespace]:
        with self._use(False) as conn:
            rows = conn.execute("SELECT name, labels, created_at FROM namespaces ORDER BY name").fetchall()
        return [Namespace(row[0], decode_labels(row[1]), from_timestamp(row[2])) for row in rows]

    def set_labels(self, name: str, labels: Mapping[str, str]) -> Namespace:
        """Replace the labels of namespace ``name``."""
        with self._use(True) as conn:
            cursor = conn.execute(
                "UPDATE namespaces SET labels = ? WHERE name = ?", (encode_labels(labels), name)
            )
            if cursor.rowcount == 0:
                raise NotFoundError(f"namespace {name} not found")
            return self._get(conn, name)

    def delete(self, name: str) -> None:
        """Delete an empty namespace; FailedPreconditionError if it still holds anything."""
        with self._use(True) as conn:
            self._get(conn, name)
            for table in ("images", "content", "leases", "snapshots", "containers"):
                if conn.execute(f"SELECT 1 FROM {table} WHERE namespace = ? LIMIT 1", (name,)).fetchone():
                    raise FailedPreconditionError(f"namespace {name} is not empty: it still has {table}")
            conn.execute("DELETE FROM namespaces WHERE name = ?", (name,))


_IMAGE_COLUMNS = "name, media_type, digest, size, labels, created_at, updated_at"


def _image(row: tuple[Any, ...]) -> Image:
    return Image(
        row[0],
        Descriptor(row[1], row[2], row[3]),
        decode_labels(row[4]),
        from_timestamp(row[5]),
        from_timestamp(row[6]),
    )


def _check_target(target: Descriptor) -> None:
    validate_digest(target.digest)
    _check_size(target.size)
    check_name("media type", target.media_type)


class Images:
    """``images``: a name in a namespace → a target descriptor, with labels."""

    def __init__(self, access: Access) -> None:
        self._use = access.use

    def create(self, namespace: str, image: Image) -> Image:
        """Record ``image``; AlreadyExistsError if its name is taken in ``namespace``."""
        check_name("image name", image.name)
        _check_target(image.target)
        labels = encode_labels(image.labels)
        now = current_time()
        with self._use(True) as conn:
            ensure_namespace(conn, namespace)
            try:
                conn.execute(
                    f"INSERT INTO images (namespace, {_IMAGE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (namespace, image.name, image.target.media_type, image.target.digest, image.target.size,
                     labels, now, now),
                )  # fmt: skip
            except sqlite3.IntegrityError:
                raise AlreadyExistsError(f"image {image.name} already exists in {namespace}") from None
            return self._get(conn, namespace, image.name)

    def _get(self, conn: sqlite3.Connection, namespace: str, name: str) -> Image:
        row = conn.execute(
            f"SELECT {_IMAGE_COLUMNS} FROM images WHERE namespace = ? AND name = ?", (namespace, name)
        ).fetchone()
        if row is None:
            raise NotFoundError(f"image {name} not found in {namespace}")
        return _image(row)

    def get(self, namespace: str, name: str) -> Image:
        with self._use(False) as conn:
            return self._get(conn, namespace, name)

    def list(self, namespace: str, prefix: str = "") -> list[Image]:
        """The images of ``namespace`` whose names start with ``prefix``, sorted by name."""
        with self._use(False) as conn:
            rows = conn.execute(
                f"SELECT {_IMAGE_COLUMNS} FROM images WHERE namespace = ?"
                " AND substr(name, 1, length(?)) = ? ORDER BY name",
                (namespace, prefix, prefix),
            ).fetchall()
        return [_image(row) for row in rows]

    def update(
        self,
        namespace: str,
        name: str,
        *,
        target: Descriptor | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> Image:
        """Point ``name`` at a new ``target`` and/or replace its ``labels``; NotFoundError if missing."""
        with self._use(True) as conn:
            current = self._get(conn, namespace, name)
            new_target = target if target is not None else current.target
            _check_target(new_target)
            new_labels = encode_labels(labels if labels is not None else current.labels)
            conn.execute(
                "UPDATE images SET media_type = ?, digest = ?, size = ?, labels = ?, updated_at = ?"
                " WHERE namespace = ? AND name = ?",
                (
                    new_target.media_type,
                    new_target.digest,
                    new_target.size,
                    new_labels,
                    current_time(),
                    namespace,
                    name,
                ),
            )
            return self._get(conn, namespace, name)

    def delete(self, namespace: str, name: str) -> None:
        with self._use(True) as conn:
            cursor = conn.execute("DELETE FROM images WHERE namespace = ? AND name = ?", (namespace, name))
            if cursor.rowcount == 0:
                raise NotFoundError(f"image {name} not found in {namespace}")


def _lease(row: tuple[Any, ...]) -> Lease:
    return Lease(row[0], decode_labels(row[1]), from_timestamp(row[2]), from_timestamp(row[3]))


class Leases:
    """``leases``: ids with labels and an optional expiry, each holding resources safe from GC."""

    def __init__(self, access: Access) -> None:
        self._use = access.use

    def create(
        self,
        namespace: str,
        id: str,
        *,
        expires_at: datetime.datetime | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> Lease:
        """AlreadyExistsError if ``id`` is taken in ``namespace``."""
        if not (len(id) <= _MAX_NAME and _NAMESPACE.fullmatch(id)):
            raise InvalidArgumentError(
                f"invalid lease id {id!r}: letters and digits separated by single '.', '_' or '-',"
                f" at most {_MAX_NAME} characters (containerd's identifiers)"
            )
        text = encode_labels(labels)
        with self._use(True) as conn:
            ensure_namespace(conn, namespace)
            try:
                conn.execute(
                    "INSERT INTO leases (namespace, id, labels, created_at, expires_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (namespace, id, text, current_time(), _seconds(expires_at)),
                )
            except sqlite3.IntegrityError:
                raise AlreadyExistsError(f"lease {id} already exists in {namespace}") from None
            return self._get(conn, namespace, id)

    def _get(self, conn: sqlite3.Connection, namespace: str, id: str) -> Lease:
        row = conn.execute(
            "SELECT id, labels, created_at, expires_at FROM leases WHERE namespace = ? AND id = ?",
            (namespace, id),
        ).fetchone()
        if row is None:
            raise NotFoundError(f"lease {id} not found in {namespace}")
        return _lease(row)

    def get(self, namespace: str, id: str) -> Lease:
        with self._use(False) as conn:
            return self._get(conn, namespace, id)

    def list(self, namespace: str) -> list[Lease]:
        with self._use(False) as conn:
            rows = conn.execute(
                "SELECT id, labels, created_at, expires_at FROM leases WHERE namespace = ? ORDER BY id",
                (namespace,),
            ).fetchall()
        return [_lease(row) for row in rows]

    def delete(self, namespace: str, id: str) -> None:
        """Delete the lease and release its resources (they become collectable)."""
        with self._use(True) as conn:
            cursor = conn.execute("DELETE FROM leases WHERE namespace = ? AND id = ?", (namespace, id))
            if cursor.rowcount == 0:
                raise NotFoundError(f"lease {id} not found in {namespace}")

    def add_resource(self, namespace: str, id: str, resource: LeaseResource) -> None:
        """Attach ``resource`` to the lease (idempotent)."""
        _check_resource(resource)
        with self._use(True) as conn:
            self._get(conn, namespace, id)
            conn.execute(
                "INSERT OR IGNORE INTO lease_resources (namespace, lease_id, type, id) VALUES (?, ?, ?, ?)",
                (namespace, id, resource.type, resource.id),
            )

    def remove_resource(self, namespace: str, id: str, resource: LeaseResource) -> None:
        """Detach ``resource`` from the lease; NotFoundError if it was not attached."""
        with self._use(True) as conn:
            cursor = conn.execute(
                "DELETE FROM lease_resources WHERE namespace = ? AND lease_id = ? AND type = ? AND id = ?",
                (namespace, id, resource.type, resource.id),
            )
            if cursor.rowcount == 0:
                raise NotFoundError(f"lease {id} in {namespace} holds no {resource.type} {resource.id}")

    def resources(self, namespace: str, id: str) -> builtins.list[LeaseResource]:
        with self._use(False) as conn:
            self._get(conn, namespace, id)
            rows = conn.execute(
                "SELECT type, id FROM lease_resources WHERE namespace = ? AND lease_id = ? ORDER BY type, id",
                (namespace, id),
            ).fetchall()
        return [LeaseResource(row[0], row[1]) for row in rows]


def _check_resource(resource: LeaseResource) -> None:
    if not _RESOURCE_TYPE.fullmatch(resource.type):
        raise InvalidArgumentError(f"invalid lease resource type {resource.type!r}")
    if resource.type == "content":
        validate_digest(resource.id)
    else:
        check_name(resource.type, resource.id)


_CONTENT_COLUMNS = "digest, size, labels, created_at, updated_at"


def _content(row: tuple[Any, ...]) -> ContentRecord:
    return ContentRecord(
        row[0], row[1], decode_labels(row[2]), from_timestamp(row[3]), from_timestamp(row[4])
    )


class Content:
    """``content``: which blobs a namespace references, with their labels (``containerd.io/gc.*``...)."""

    def __init__(self, access: Access) -> None:
        self._use = access.use

    def add(
        self, namespace: str, digest: str, size: int, labels: Mapping[str, str] | None = None
    ) -> ContentRecord:
        """Reference blob ``digest`` from ``namespace``; idempotent: an existing record merges ``labels``.

        InvalidArgumentError if the record exists with a different size.
        """
        validate_digest(digest)
        _check_size(size)
        encode_labels(labels)
        now = current_time()
        with self._use(True) as conn:
            ensure_namespace(conn, namespace)
            row = conn.execute(
                f"SELECT {_CONTENT_COLUMNS} FROM content WHERE namespace = ? AND digest = ?",
                (namespace, digest),
            ).fetchone()
            if row is None:
                conn.execute(
                    f"INSERT INTO content (namespace, {_CONTENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
                    (namespace, digest, size, encode_labels(labels), now, now),
                )
            else:
                current = _content(row)
                if current.size != size:
                    raise InvalidArgumentError(
                        f"content {digest} is recorded with size {current.size}, not {size}"
                    )
                if labels:
                    conn.execute(
                        "UPDATE content SET labels = ?, updated_at = ? WHERE namespace = ? AND digest = ?",
                        (encode_labels({**current.labels, **labels}), now, namespace, digest),
                    )
            return self._get(conn, namespace, digest)

    def _get(self, conn: sqlite3.Connection, namespace: str, digest: str) -> ContentRecord:
        row = conn.execute(
            f"SELECT {_CONTENT_COLUMNS} FROM content WHERE namespace = ? AND digest = ?", (namespace, digest)
        ).fetchone()
        if row is None:
            raise NotFoundError(f"content {digest} not found in {namespace}")
        return _content(row)

    def get(self, namespace: str, digest: str) -> ContentRecord:
        with self._use(False) as conn:
            return self._get(conn, namespace, digest)

    def list(self, namespace: str) -> list[ContentRecord]:
        with self._use(False) as conn:
            rows = conn.execute(
                f"SELECT {_CONTENT_COLUMNS} FROM content WHERE namespace = ? ORDER BY digest", (namespace,)
            ).fetchall()
        return [_content(row) for row in rows]

    def holders(self, digest: str) -> dict[str, ContentRecord]:
        """Every namespace's record of blob ``digest``, by namespace."""
        with self._use(False) as conn:
            rows = conn.execute(
                f"SELECT namespace, {_CONTENT_COLUMNS} FROM content WHERE digest = ? ORDER BY namespace",
                (digest,),
            ).fetchall()
        return {row[0]: _content(row[1:]) for row in rows}

    def set_labels(self, namespace: str, digest: str, labels: Mapping[str, str]) -> ContentRecord:
        """Replace the labels of the record."""
        text = encode_labels(labels)
        with self._use(True) as conn:
            cursor = conn.execute(
                "UPDATE content SET labels = ?, updated_at = ? WHERE namespace = ? AND digest = ?",
                (text, current_time(), namespace, digest),
            )
            if cursor.rowcount == 0:
                raise NotFoundError(f"content {digest} not found in {namespace}")
            return self._get(conn, namespace, digest)

    def delete(self, namespace: str, digest: str) -> None:
        """Drop the namespace's reference; the blob itself goes at the next GC if nothing else holds it."""
        with self._use(True) as conn:
            cursor = conn.execute(
                "DELETE FROM content WHERE namespace = ? AND digest = ?", (namespace, digest)
            )
            if cursor.rowcount == 0:
                raise NotFoundError(f"content {digest} not found in {namespace}")


_SNAPSHOT_COLUMNS = "snapshotter, key, kind, parent, labels, created_at, updated_at"


def _snapshot(row: tuple[Any, ...]) -> SnapshotRecord:
    return SnapshotRecord(
        row[0],
        row[1],
        SnapshotKind(row[2]),
        row[3],
        decode_labels(row[4]),
        from_timestamp(row[5]),
        from_timestamp(row[6]),
    )


class Snapshots:
    """``snapshots``: records of the snapshots each snapshotter holds (the data is the snapshotter's)."""

    def __init__(self, access: Access) -> None:
        self._use = access.use

    def create(self, namespace: str, record: SnapshotRecord) -> SnapshotRecord:
        """AlreadyExistsError if the key is taken; NotFoundError if the parent is not recorded."""
        check_namespace(record.snapshotter)
        check_name("snapshot key", record.key)
        text = encode_labels(record.labels)
        now = current_time()
        with self._use(True) as conn:
            ensure_namespace(conn, namespace)
            if record.parent is not None:
                self._get(conn, namespace, record.snapshotter, record.parent)
            try:
                conn.execute(
                    f"INSERT INTO snapshots (namespace, {_SNAPSHOT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (namespace, record.snapshotter, record.key, SnapshotKind(record.kind).value,
                     record.parent, text, now, now),
                )  # fmt: skip
            except sqlite3.IntegrityError:
                raise AlreadyExistsError(
                    f"snapshot {record.key} already exists in {namespace}/{record.snapshotter}"
                ) from None
            return self._get(conn, namespace, record.snapshotter, record.key)

    def _get(self, conn: sqlite3.Connection, namespace: str, snapshotter: str, key: str) -> SnapshotRecord:
        row = conn.execute(
            f"SELECT {_SNAPSHOT_COLUMNS} FROM snapshots WHERE namespace = ? AND snapshotter = ? AND key = ?",
            (namespace, snapshotter, key),
        ).fetchone()
        if row is None:
            raise NotFoundError(f"snapshot {key} not found in {namespace}/{snapshotter}")
        return _snapshot(row)

    def get(self, namespace: str, snapshotter: str, key: str) -> SnapshotRecord:
        with self._use(False) as conn:
            return self._get(conn, namespace, snapshotter, key)

    def holders(self, snapshotter: str, key: str) -> builtins.list[str]:
        """The namespaces that record the snapshot ``key`` of ``snapshotter`` (its data is shared)."""
        with self._use(False) as conn:
            rows = conn.execute(
                "SELECT namespace FROM snapshots WHERE snapshotter = ? AND key = ? ORDER BY namespace",
                (snapshotter, key),
            ).fetchall()
        return [row[0] for row in rows]

    def list(self, namespace: str, snapshotter: str | None = None) -> list[SnapshotRecord]:
        with self._use(False) as conn:
            rows = conn.execute(
                f"SELECT {_SNAPSHOT_COLUMNS} FROM snapshots WHERE namespace = ?"
                " AND (? IS NULL OR snapshotter = ?) ORDER BY snapshotter, key",
                (namespace, snapshotter, snapshotter),
            ).fetchall()
        return [_snapshot(row) for row in rows]

    def delete(self, namespace: str, snapshotter: str, key: str) -> None:
        """FailedPreconditionError if another snapshot has this one as parent."""
        with self._use(True) as conn:
            child = conn.execute(
                "SELECT key FROM snapshots WHERE namespace = ? AND snapshotter = ? AND parent = ? LIMIT 1",
                (namespace, snapshotter, key),
            ).fetchone()
            if child is not None:
                raise FailedPreconditionError(f"snapshot {key} is the parent of {child[0]}")
            cursor = conn.execute(
                "DELETE FROM snapshots WHERE namespace = ? AND snapshotter = ? AND key = ?",
                (namespace, snapshotter, key),
            )
            if cursor.rowcount == 0:
                raise NotFoundError(f"snapshot {key} not found in {namespace}/{snapshotter}")
