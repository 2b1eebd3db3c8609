"""``containers``: the records of containers (containerd's ``containers`` service).

A container is metadata only: its id, the image it came from, the runtime that runs it, its OCI
runtime spec, the snapshot holding its root filesystem, and labels. What runs is a task (pycontainerd's
tasks), made from a container. A container is a GC root: its snapshot (and that snapshot's parents)
stay while the record exists.
"""

from __future__ import annotations

import json
import re
import sqlite3

from pycontainerd._errors import AlreadyExistsError, InvalidArgumentError, NotFoundError
from pycontainerd._metadata.tables import (
    Access,
    check_name,
    check_namespace,
    current_time,
    decode_labels,
    encode_labels,
    ensure_namespace,
    from_timestamp,
)
from pycontainerd._record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    import datetime
    from collections.abc import Mapping
    from typing import Any, Final

__all__ = ["Container", "Containers", "check_container_id"]

# containerd's identifier rule (alphanumerics separated by single '.', '_' or '-'), at most 76 characters.
_ID = re.compile(r"[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*")
_MAX_ID = 76
_COLUMNS = "id, image, runtime, spec, snapshotter, snapshot_key, labels, created_at, updated_at"


def check_container_id(container_id: object) -> str:
    """``container_id`` if it is a valid identifier, else InvalidArgumentError naming the rule."""
    if isinstance(container_id, str) and len(container_id) <= _MAX_ID and _ID.fullmatch(container_id):
        return container_id
    raise InvalidArgumentError(
        f"invalid container id {container_id!r}: letters and digits separated by single '.', '_' or '-',"
        f" at most {_MAX_ID} characters"
    )


class Container(Record):
    """A container record: everything needed to create its task later, from any process.

    Two records are equal when all but their specs are.
    """

    __slots__ = (
        "id",
        "image",
        "runtime",
        "spec",
        "snapshotter",
        "snapshot_key",
        "labels",
        "created_at",
        "updated_at",
    )
    _compared = (
        "id",
        "image",
        "runtime",
        "snapshotter",
        "snapshot_key",
        "labels",
        "created_at",
        "updated_at",
    )

    def __init__(
        self,
        id: str,
        image: str,
        runtime: str,
        spec: dict[str, Any],
        snapshotter: str,
        snapshot_key: str,
        labels: Mapping[str, str] | None = None,
        created_at: datetime.datetime | None = None,
        updated_at: datetime.datetime | None = None,
    ) -> None:
        self.id: Final = id
        self.image: Final = image
        self.runtime: Final = runtime
        self.spec: Final = spec
        self.snapshotter: Final = snapshotter
        self.snapshot_key: Final = snapshot_key
        self.labels: Final = {} if labels is None else dict(labels)
        self.created_at: Final = created_at
        self.updated_at: Final = updated_at


def _container(row: tuple[Any, ...]) -> Container:
    return Container(
        row[0],
        row[1],
        row[2],
        json.loads(row[3]),
        row[4],
        row[5],
        decode_labels(row[6]),
        from_timestamp(row[7]),
        from_timestamp(row[8]),
    )


class Containers:
    """``containers``: create, get, list, update labels or spec, delete."""

    def __init__(self, access: Access) -> None:
        self._use = access.use

    def create(self, namespace: str, container: Container) -> Container:
        """Record ``container``; AlreadyExistsError if its id is taken in ``namespace``."""
        check_container_id(container.id)
        check_name("image name", container.image)
        check_name("runtime", container.runtime)
        check_namespace(container.snapshotter)
        check_name("snapshot key", container.snapshot_key)
        if not isinstance(container.spec, dict):
            raise InvalidArgumentError(f"container {container.id}: the spec must be a JSON object")
        spec = json.dumps(container.spec, sort_keys=True)
        labels = encode_labels(container.labels)
        now = current_time()
        with self._use(True) as conn:
            ensure_namespace(conn, namespace)
            try:
                conn.execute(
                    f"INSERT INTO containers (namespace, {_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (namespace, container.id, container.image, container.runtime, spec,
                     container.snapshotter, container.snapshot_key, labels, now, now),
                )  # fmt: skip
            except sqlite3.IntegrityError:
                raise AlreadyExistsError(f"container {container.id} already exists in {namespace}") from None
            return self._get(conn, namespace, container.id)

    def _get(self, conn: sqlite3.Connection, namespace: str, container_id: str) -> Container:
        row = conn.execute(
            f"SELECT {_COLUMNS} FROM containers WHERE namespace = ? AND id = ?", (namespace, container_id)
        ).fetchone()
        if row is None:
            raise NotFoundError(f"container {container_id} not found in {namespace}")
        return _container(row)

    def get(self, namespace: str, container_id: str) -> Container:
        with self._use(False) as conn:
            return self._get(conn, namespace, container_id)

    def list(self, namespace: str) -> list[Container]:
        with self._use(False) as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM containers WHERE namespace = ? ORDER BY id", (namespace,)
            ).fetchall()
        return [_container(row) for row in rows]

    def set_labels(self, namespace: str, container_id: str, labels: Mapping[str, str]) -> Container:
        """Replace the labels of a container."""
        with self._use(True) as conn:
            cursor = conn.execute(
                "UPDATE containers SET labels = ?, updated_at = ? WHERE namespace = ? AND id = ?",
                (encode_labels(labels), current_time(), namespace, container_id),
            )
            if cursor.rowcount == 0:
                raise NotFoundError(f"container {container_id} not found in {namespace}")
            return self._get(conn, namespace, container_id)

    def set_spec(self, namespace: str, container_id: str, spec: dict[str, Any]) -> Container:
        """Replace the spec of a container (its next task is made from it)."""
        with self._use(True) as conn:
            cursor = conn.execute(
                "UPDATE containers SET spec = ?, updated_at = ? WHERE namespace = ? AND id = ?",
                (json.dumps(spec, sort_keys=True), current_time(), namespace, container_id),
            )
            if cursor.rowcount == 0:
                raise NotFoundError(f"container {container_id} not found in {namespace}")
            return self._get(conn, namespace, container_id)

    def delete(self, namespace: str, container_id: str) -> None:
        with self._use(True) as conn:
            cursor = conn.execute(
                "DELETE FROM containers WHERE namespace = ? AND id = ?", (namespace, container_id)
            )
            if cursor.rowcount == 0:
                raise NotFoundError(f"container {container_id} not found in {namespace}")
