"""The sqlite schema of ``metadata.db`` and its version check.

Tables (labels are JSON objects of strings; times are UTC seconds since the epoch)::

    schema_version   (version)                                            one row
    namespaces       (name PK, labels, created_at)
    images           (namespace, name) PK → namespaces; media_type, digest, size, labels, created/updated
    content          (namespace, digest) PK → namespaces; size, labels, created/updated
    leases           (namespace, id) PK → namespaces;     labels, created_at, expires_at (NULL: never)
    lease_resources  (namespace, lease_id, type, id) PK → leases ON DELETE CASCADE
    snapshots        (namespace, snapshotter, key) PK → namespaces; parent, kind, labels, created/updated
    containers       (namespace, id) PK → namespaces; image, runtime, spec (JSON), snapshotter,
                     snapshot_key, labels, created/updated

Version 2 added ``containers``; a version 1 database is upgraded in place (the tables are only added).

A database written by a newer pycontainerd (a larger ``schema_version``) is refused, never rewritten.
"""

from __future__ import annotations

import sqlite3

from pycontainerd._errors import FailedPreconditionError

__all__ = ["SCHEMA_VERSION", "ensure_schema"]

SCHEMA_VERSION = 2

_TABLES = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS namespaces (
    name TEXT PRIMARY KEY,
    labels TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS images (
    namespace TEXT NOT NULL REFERENCES namespaces (name),
    name TEXT NOT NULL,
    media_type TEXT NOT NULL,
    digest TEXT NOT NULL,
    size INTEGER NOT NULL CHECK (size >= 0),
    labels TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (namespace, name)
);
CREATE TABLE IF NOT EXISTS content (
    namespace TEXT NOT NULL REFERENCES namespaces (name),
    digest TEXT NOT NULL,
    size INTEGER NOT NULL CHECK (size >= 0),
    labels TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (namespace, digest)
);
CREATE TABLE IF NOT EXISTS leases (
    namespace TEXT NOT NULL REFERENCES namespaces (name),
    id TEXT NOT NULL,
    labels TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL,
    expires_at REAL,
    PRIMARY KEY (namespace, id)
);
CREATE TABLE IF NOT EXISTS lease_resources (
    namespace TEXT NOT NULL,
    lease_id TEXT NOT NULL,
    type TEXT NOT NULL,
    id TEXT NOT NULL,
    PRIMARY KEY (namespace, lease_id, type, id),
    FOREIGN KEY (namespace, lease_id) REFERENCES leases (namespace, id) ON DELETE CASCADE
);
CREATE TABLE IF NOT EXISTS snapshots (
    namespace TEXT NOT NULL REFERENCES namespaces (name),
    snapshotter TEXT NOT NULL,
    key TEXT NOT NULL,
    parent TEXT,
    kind TEXT NOT NULL CHECK (kind IN ('active', 'view', 'committed')),
    labels TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (namespace, snapshotter, key)
);
CREATE TABLE IF NOT EXISTS containers (
    namespace TEXT NOT NULL REFERENCES namespaces (name),
    id TEXT NOT NULL,
    image TEXT NOT NULL,
    runtime TEXT NOT NULL,
    spec TEXT NOT NULL,
    snapshotter TEXT NOT NULL,
    snapshot_key TEXT NOT NULL,
    labels TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (namespace, id)
);
"""


def ensure_schema(conn: sqlite3.Connection) -> None:
    """Create the tables if they are missing and check the version. The caller holds a write transaction.

    FailedPreconditionError if the database was written by a newer pycontainerd.
    """
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    if row is not None:
        found = conn.execute("SELECT max(version) FROM schema_version").fetchone()[0]
        if found is not None and found > SCHEMA_VERSION:
            raise FailedPreconditionError(
                f"metadata database has schema version {found}, newer than version {SCHEMA_VERSION}"
                " that this pycontainerd knows: upgrade pycontainerd to open it"
            )
        if found == SCHEMA_VERSION:
            return
    for statement in _TABLES.split(";"):
        if statement.strip():
            conn.execute(statement)
    conn.execute("DELETE FROM schema_version")
    conn.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
