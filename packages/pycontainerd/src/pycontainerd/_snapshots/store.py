"""What both snapshotters share: the metadata database, the file lock, and crash-safe creation.

Layout under the snapshotter's root::

    metadata.db          sqlite (WAL): one row per snapshot (id, key or name, parent, kind, labels,
                         times, and the usage of committed snapshots)
    lock                 flock(2) serialising the changes of every process using this root
    snapshots/<id>/fs    the snapshot's tree (+ work/ for overlayfs' active snapshots)

A record and its directory come and go together, whatever the moment of a crash:

- create: the directory is filled under a temporary name (``new-*``), then, in one transaction, the
  record is inserted and the directory renamed to its id before the transaction commits;
- remove: the record is deleted (committed), then the directory is removed;
- open: under the lock, every entry of ``snapshots/`` that is not the id of a record (temporary
  directories, directories of rolled-back creations or of interrupted removals) is deleted.

So a record never lacks its directory, and an orphaned directory lives only until the next open.
Directories are removed with :func:`~pycontainerd._snapshots.removal.remove_tree`: whatever is
mounted inside one is unmounted first, and nothing is ever deleted through a mount point.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import os
import sqlite3
import stat
from pathlib import Path

from pycontainerd._errors import (
    AlreadyExistsError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
)
from pycontainerd._snapshots.mount import Mount, syncfs
from pycontainerd._snapshots.removal import remove_tree
from pycontainerd._snapshots.types import Info, Kind, Usage
from pycontainerd._stdlib import Lock

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

__all__ = ["SnapshotStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS snapshots (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    parent_id INTEGER REFERENCES snapshots(id),
    kind TEXT NOT NULL,
    labels TEXT NOT NULL,
    created TEXT NOT NULL,
    updated TEXT NOT NULL,
    size INTEGER,
    inodes INTEGER
);
CREATE INDEX IF NOT EXISTS snapshots_parent ON snapshots(parent_id);
"""
_SCHEMA_VERSION = 1


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def measure(path: Path) -> Usage:
    """Blocks (in bytes) and inodes under ``path``, each hardlinked inode counted once."""
    seen: set[tuple[int, int]] = set()
    size = 0
    pending = [str(path)]
    root = os.lstat(path)
    seen.add((root.st_dev, root.st_ino))
    size += root.st_blocks * 512
    while pending:
        with os.scandir(pending.pop()) as entries:
            for entry in entries:
                st = entry.stat(follow_symlinks=False)
                if (st.st_dev, st.st_ino) not in seen:
                    seen.add((st.st_dev, st.st_ino))
                    size += st.st_blocks * 512
                if stat.S_ISDIR(st.st_mode):
                    pending.append(entry.path)
    return Usage(size=size, inodes=len(seen))


class SnapshotStore:
    """The base of both snapshotters: records, locking and directories; subclasses lay out trees.

    A subclass fills a new snapshot's directory (:meth:`_populate`) and says how to mount it
    (:meth:`_mounts_for`); everything else (validation, transactions, usage) is here.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).absolute()
        self._snapshots = self.root / "snapshots"
        self._snapshots.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._thread_lock = Lock()
        self._lock_fd = os.open(self.root / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            self._db = sqlite3.connect(
                self.root / "metadata.db", isolation_level=None, timeout=60, check_same_thread=False
            )
            with self._locked():
                self._db.execute("PRAGMA synchronous=FULL")
                self._db.execute("PRAGMA foreign_keys=ON")
                version = self._db.execute("PRAGMA user_version").fetchone()[0]
                if version > _SCHEMA_VERSION:
                    raise FailedPreconditionError(
                        f"{self.root / 'metadata.db'} has schema {version}, newer than {_SCHEMA_VERSION}"
                    )
                if version < _SCHEMA_VERSION:  # new (or older): once, not at every open (a write)
                    self._db.execute("PRAGMA journal_mode=WAL")  # kept by the file from then on
                    self._db.executescript(_SCHEMA)
                    self._db.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")
                self._remove_orphans()
        except BaseException:
            os.close(self._lock_fd)
            raise

    # -- the Snapshotter protocol ----------------------------------------------------------

    def prepare(
        self, key: str, parent: str | None = None, labels: Mapping[str, str] | None = None
    ) -> list[Mount]:
        """Create the active (writable) snapshot ``key`` on top of the committed ``parent``."""
        return self._create(Kind.ACTIVE, key, parent, labels)

    def view(
        self, key: str, parent: str | None = None, labels: Mapping[str, str] | None = None
    ) -> list[Mount]:
        """Create the read-only snapshot ``key`` of the committed ``parent``."""
        return self._create(Kind.VIEW, key, parent, labels)

    def mounts(self, key: str) -> list[Mount]:
        """The mounts of the active snapshot or view ``key``."""
        row = self._row(key)
        if row.kind is Kind.COMMITTED:
            raise FailedPreconditionError(
                f"snapshot {key!r} is committed: only active snapshots and views mount"
            )
        return self._mounts_for(row.kind, row.id, self._parent_ids(row.parent_id))

    def commit(self, name: str, key: str, labels: Mapping[str, str] | None = None) -> None:
        """Turn the active snapshot ``key`` into the committed snapshot ``name`` (same files).

        The snapshot's filesystem is synced first, so a committed snapshot survives a power loss.
        Its labels become ``labels``; its usage is measured once and kept.
        """
        with self._locked():
            row = self._row(key)
            if row.kind is not Kind.ACTIVE:
                raise FailedPreconditionError(f"snapshot {key!r} is a {row.kind.value} snapshot, not active")
            if self._find(name) is not None:
                raise AlreadyExistsError(f"snapshot {name!r} already exists")
            fs = self._dir(row.id) / "fs"
            usage = measure(fs)
            syncfs(fs)
            with self._transaction():
                self._db.execute(
                    "UPDATE snapshots SET key=?, kind=?, labels=?, updated=?, size=?, inodes=? WHERE id=?",
                    (name, Kind.COMMITTED.value, _dump(labels), _now(), usage.size, usage.inodes, row.id),
                )

    def remove(self, key: str) -> None:
        """Remove the snapshot ``key`` and its files; refused while a snapshot has it as parent."""
        with self._locked():
            row = self._row(key)
            with self._transaction():
                child = self._db.execute(
                    "SELECT key FROM snapshots WHERE parent_id=? LIMIT 1", (row.id,)
                ).fetchone()
                if child is not None:
                    raise FailedPreconditionError(f"snapshot {key!r} has children (such as {child[0]!r})")
                self._db.execute("DELETE FROM snapshots WHERE id=?", (row.id,))
            # The record is gone: from here on the directory is an orphan, collected on the next
            # open if this process dies before removing it.
            doomed = self._snapshots / f"rm-{row.id}"
            os.rename(self._dir(row.id), doomed)
            remove_tree(doomed)

    def stat(self, key: str) -> Info:
        """The record of the snapshot ``key``."""
        row = self._row(key)
        return row.info(self._parent_name(row.parent_id))

    def usage(self, key: str) -> Usage:
        """Space the snapshot ``key`` takes: kept since its commit, or measured now."""
        row = self._row(key)
        if row.usage is not None:
            return row.usage
        return measure(self._dir(row.id) / "fs")

    def walk(self) -> list[Info]:
        """Every snapshot, parents before children (a parent's id is always the smaller)."""
        rows = [_Row.from_db(r) for r in self._db.execute(_SELECT + " ORDER BY id")]
        names = {row.id: row.key for row in rows}
        return [row.info(names.get(row.parent_id) if row.parent_id is not None else None) for row in rows]

    def close(self) -> None:
        """Close the metadata database and the lock file."""
        self._db.close()
        os.close(self._lock_fd)

    def __enter__(self) -> SnapshotStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- for the subclasses ----------------------------------------------------------------

    def _populate(self, path: Path, kind: Kind, parent_ids: list[int]) -> None:
        """Fill the new snapshot directory ``path`` (``fs``, and ``work`` if needed)."""
        raise NotImplementedError

    def _mounts_for(self, kind: Kind, snapshot_id: int, parent_ids: list[int]) -> list[Mount]:
        """The mounts of a snapshot, given its parents' ids, nearest first."""
        raise NotImplementedError

    def _dir(self, snapshot_id: int) -> Path:
        return self._snapshots / str(snapshot_id)

    # -- internals -------------------------------------------------------------------------

    def _create(
        self, kind: Kind, key: str, parent: str | None, labels: Mapping[str, str] | None
    ) -> list[Mount]:
        if not key:
            raise InvalidArgumentError("a snapshot key must not be empty")
        with self._locked():
            if self._find(key) is not None:
                raise AlreadyExistsError(f"snapshot {key!r} already exists")
            parent_ids: list[int] = []
            if parent is not None:
                prow = self._find(parent)
                if prow is None:
                    raise NotFoundError(f"parent snapshot {parent!r} not found")
                if prow.kind is not Kind.COMMITTED:
                    raise InvalidArgumentError(
                        f"parent {parent!r} is a {prow.kind.value} snapshot, not committed"
                    )
                parent_ids = self._parent_ids(prow.id)
            tmp = self._snapshots / f"new-{os.urandom(8).hex()}"  # not tempfile: off pyctr's path
            tmp.mkdir(mode=0o700)
            placed: Path | None = None
            try:
                self._populate(tmp, kind, parent_ids)
                with self._transaction():
                    now = _now()
                    cur = self._db.execute(
                        "INSERT INTO snapshots (key, parent_id, kind, labels, created, updated)"
                        " VALUES (?, ?, ?, ?, ?, ?)",
                        (key, parent_ids[0] if parent_ids else None, kind.value, _dump(labels), now, now),
                    )
                    snapshot_id = cur.lastrowid
                    assert snapshot_id is not None
                    mounts = self._mounts_for(kind, snapshot_id, parent_ids)
                    final = self._dir(snapshot_id)
                    if final.exists():  # left by a creation rolled back in a process still running
                        remove_tree(final)
                    os.chmod(tmp, 0o700)
                    os.rename(tmp, final)
                    placed = final
                    _fsync_dir(self._snapshots)
            except BaseException as exc:
                try:
                    remove_tree(placed if placed is not None else tmp)
                except OSError as cleanup:
                    exc.add_note(f"and removing the new snapshot directory failed: {cleanup}")
                raise
            return mounts

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with self._thread_lock:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _remove_orphans(self) -> None:
        ids = {str(r[0]) for r in self._db.execute("SELECT id FROM snapshots")}
        for entry in os.listdir(self._snapshots):
            if entry not in ids:
                remove_tree(self._snapshots / entry)

    def _find(self, key: str) -> _Row | None:
        r = self._db.execute(_SELECT + " WHERE key=?", (key,)).fetchone()
        return None if r is None else _Row.from_db(r)

    def _row(self, key: str) -> _Row:
        row = self._find(key)
        if row is None:
            raise NotFoundError(f"snapshot {key!r} not found")
        return row

    def _parent_name(self, parent_id: int | None) -> str | None:
        if parent_id is None:
            return None
        r = self._db.execute("SELECT key FROM snapshots WHERE id=?", (parent_id,)).fetchone()
        return None if r is None else str(r[0])

    def _parent_ids(self, first: int | None) -> list[int]:
        """``first`` and its ancestors' ids, nearest first (empty if ``first`` is None)."""
        if first is None:
            return []
        rows = self._db.execute(
            "WITH RECURSIVE chain(id, parent_id, depth) AS ("
            " SELECT id, parent_id, 0 FROM snapshots WHERE id=?"
            " UNION ALL SELECT s.id, s.parent_id, chain.depth + 1"
            " FROM snapshots s JOIN chain ON s.id = chain.parent_id)"
            " SELECT id FROM chain ORDER BY depth",
            (first,),
        ).fetchall()
        return [int(r[0]) for r in rows]


_SELECT = "SELECT id, key, parent_id, kind, labels, created, updated, size, inodes FROM snapshots"


def _dump(labels: Mapping[str, str] | None) -> str:
    return json.dumps(dict(labels or {}), sort_keys=True)


class _Row:
    """One row of the ``snapshots`` table."""

    __slots__ = ("created", "id", "key", "kind", "labels", "parent_id", "updated", "usage")

    def __init__(
        self,
        id: int,
        key: str,
        parent_id: int | None,
        kind: Kind,
        labels: dict[str, str],
        created: datetime.datetime,
        updated: datetime.datetime,
        usage: Usage | None,
    ) -> None:
        self.id = id
        self.key = key
        self.parent_id = parent_id
        self.kind = kind
        self.labels = labels
        self.created = created
        self.updated = updated
        self.usage = usage

    @classmethod
    def from_db(cls, r: tuple[object, ...]) -> _Row:
        id_, key, parent_id, kind, labels, created, updated, size, inodes = r
        assert isinstance(id_, int) and isinstance(key, str) and isinstance(kind, str)
        assert isinstance(labels, str) and isinstance(created, str) and isinstance(updated, str)
        usage = Usage(size=size, inodes=inodes) if isinstance(size, int) and isinstance(inodes, int) else None
        return cls(
            id_,
            key,
            parent_id if isinstance(parent_id, int) else None,
            Kind(kind),
            json.loads(labels),
            datetime.datetime.fromisoformat(created),
            datetime.datetime.fromisoformat(updated),
            usage,
        )

    def info(self, parent: str | None) -> Info:
        return Info(
            kind=self.kind,
            name=self.key,
            parent=parent,
            labels=dict(self.labels),
            created=self.created,
            updated=self.updated,
        )
