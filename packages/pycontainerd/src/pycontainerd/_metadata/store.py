"""MetadataStore: one sqlite database in WAL mode, shared by every process that opens the same root.

Each write runs in a ``BEGIN IMMEDIATE`` transaction (it takes the database's write lock at once, so
two writers queue instead of deadlocking on a lock upgrade) and waits up to ``busy_timeout`` for it;
readers never block writers (WAL). ``store.transaction()`` groups several operations into one
transaction; the per-operation accessors (``store.images.create(...)``) each run in their own.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from pathlib import Path

from pycontainerd._errors import InvalidArgumentError
from pycontainerd._metadata.containers import Containers
from pycontainerd._metadata.owner import LEASE_OWNER, current_owner
from pycontainerd._metadata.schema import ensure_schema
from pycontainerd._metadata.tables import Access, Content, Images, Leases, Namespaces, Snapshots
from pycontainerd._stdlib import local

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["DB_NAME", "MetadataStore", "Transaction"]

DB_NAME = "metadata.db"
DEFAULT_BUSY_TIMEOUT = 30.0


class Transaction:
    """One open transaction: its tables see and change the same snapshot of the store.

    Made by ``MetadataStore.transaction()``; it commits when the ``with`` block ends and rolls back if
    the block raises. Do not call the store's own accessors inside it: they would wait for this
    transaction's write lock.
    """

    def __init__(self, conn: sqlite3.Connection, *, writable: bool) -> None:
        self._conn = conn
        self.writable = writable
        access = Access(self._use)
        self.namespaces = Namespaces(access)
        self.images = Images(access)
        self.leases = Leases(access)
        self.content = Content(access)
        self.snapshots = Snapshots(access)
        self.containers = Containers(access)

    @contextlib.contextmanager
    def _use(self, write: bool) -> Iterator[sqlite3.Connection]:
        if write and not self.writable:
            raise InvalidArgumentError("a write in a read-only metadata transaction")
        yield self._conn

    @property
    def connection(self) -> sqlite3.Connection:
        """The sqlite connection, for callers (GC) that need a query the tables do not offer."""
        return self._conn


class MetadataStore:
    """The metadata of a pycontainerd root: namespaces, images, leases, content and snapshot records.

    ``MetadataStore(root)`` opens (creating it if needed) ``<root>/metadata.db``. Several processes may
    open the same root at once. FailedPreconditionError if the database comes from a newer
    pycontainerd (its schema version is higher than this one knows).
    """

    def __init__(self, root: str | os.PathLike[str], *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> None:
        self.root = Path(root)
        self.root.mkdir(mode=0o711, parents=True, exist_ok=True)
        self.path = self.root / DB_NAME
        self._busy_timeout = busy_timeout
        conn = self._connect()
        try:
            self._enable_wal(conn)
            conn.execute("BEGIN IMMEDIATE")
            try:
                ensure_schema(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except BaseException:
            conn.close()
            raise
        # Kept as this thread's connection: closing the last connection to the file checkpoints the
        # write-ahead log (an fsync), and the next transaction would open another one.
        self._local = local()
        self._local.conn, self._local.pid = conn, os.getpid()
        access = Access(self._transaction_conn)
        self.namespaces = Namespaces(access)
        self.images = Images(access)
        self.leases = Leases(access)
        self.content = Content(access)
        self.snapshots = Snapshots(access)
        self.containers = Containers(access)

    def __repr__(self) -> str:
        return f"MetadataStore({str(self.root)!r})"

    def _enable_wal(self, conn: sqlite3.Connection) -> None:
        """Switch the file to WAL mode (a property of the file: once set, it holds for every later
        connection). Changing the journal mode needs the file to itself and sqlite does not wait for
        it through the busy handler, so processes opening a fresh store together retry here."""
        deadline = time.monotonic() + self._busy_timeout
        while True:
            try:
                if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() >= deadline:
                    raise
                time.sleep(0.005)

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, so a write is IMMEDIATE from its start.
        conn = sqlite3.connect(self.path, timeout=self._busy_timeout, isolation_level=None)
        conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA synchronous = FULL")  # a committed transaction survives a power cut
        return conn

    def _idle_connection(self) -> tuple[sqlite3.Connection, bool]:
        """This thread's connection when it is free (kept: opening one costs more than most
        transactions), else a new one to close after use (a transaction is already open on it)."""
        local = self._local
        if getattr(local, "pid", None) != os.getpid():  # none yet in this thread, or inherited by fork
            local.conn, local.pid = self._connect(), os.getpid()
        conn: sqlite3.Connection = local.conn
        if conn.in_transaction:
            return self._connect(), True
        return conn, False

    @contextlib.contextmanager
    def _transaction_conn(self, write: bool) -> Iterator[sqlite3.Connection]:
        conn, temporary = self._idle_connection()
        try:
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            if temporary:
                conn.close()
            elif conn.in_transaction:  # a COMMIT that failed: the kept connection must not hold locks
                conn.execute("ROLLBACK")

    @contextlib.contextmanager
    def lease(self, namespace: str) -> Iterator[str]:
        """A lease in ``namespace`` for the duration of the block: what is attached to it is safe from
        GC meanwhile. It names this process (:data:`LEASE_OWNER`), so it ends with the process if the
        block never gets to delete it."""
        lease_id = f"pycontainerd-{os.urandom(16).hex()}"
        self.leases.create(namespace, lease_id, labels={LEASE_OWNER: current_owner()})
        try:
            yield lease_id
        finally:
            self.leases.delete(namespace, lease_id)

    @contextlib.contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Transaction]:
        """A transaction over the whole store: ``with store.transaction() as tx: tx.images.create(...)``.

        ``write=True`` (the default) takes the write lock at once (``BEGIN IMMEDIATE``); ``write=False``
        is a read-only snapshot that never blocks writers.
        """
        with self._transaction_conn(write) as conn:
            yield Transaction(conn, writable=write)
