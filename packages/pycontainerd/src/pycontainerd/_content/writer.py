"""The Writer: one locked ingest, hashed as it is written, committed into the store by digest."""

from __future__ import annotations

import datetime
import hashlib
import os
import weakref
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from pycontainerd._content.ingest import (
    DATA,
    lock_ingest,
    read_status,
    record_announcement,
    remove_ingest,
    start_ingest,
)
from pycontainerd._content.names import ALGORITHM, digest_hex, ingest_name, validate_digest, validate_ref
from pycontainerd._content.types import CommitResult, Status
from pycontainerd._errors import ContentError, DigestMismatchError, ResourceExhaustedError, SizeMismatchError
from pycontainerd._reserve import SpaceGuard

__all__ = ["CommitHook", "Writer", "open_writer"]

_CHUNK = 1 << 20
Bytes = bytes | bytearray | memoryview
#: Told of each blob a writer commits, before the writer lets go of its ingest (see Writer.commit).
CommitHook = Callable[[CommitResult], None]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _hash_prefix(path: Path, size: int) -> hashlib._Hash:
    """sha256 of the first ``size`` bytes of ``path``: a resumed ingest's hash state, rebuilt."""
    hasher = hashlib.sha256()
    buffer = bytearray(_CHUNK)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as file:
        left = size
        while left:
            n = file.readinto(view[: min(left, _CHUNK)])
            if not n:
                raise ContentError(f"ingest data {path} shrank while it was being rehashed")
            hasher.update(view[:n])
            left -= n
    return hasher


class Writer:
    """An open ingest: ``write`` bytes, then ``commit`` them as a blob. Use it as a context manager.

    The writer holds the ingest's lock until it is committed or closed. Leaving the ``with`` block
    without a commit (an exception, a cancelled download) closes the writer and keeps the ingest, so
    ``ContentStore.writer(ref)`` can resume it at ``offset``; ``ContentStore.abort(ref)`` drops it.
    A write that would take the filesystem under the store's reserve of free space (``guard``)
    drops the ingest and raises ResourceExhaustedError.
    """

    def __init__(
        self,
        *,
        ref: str,
        path: Path,
        blobs: Path,
        lock_fd: int,
        total: int | None,
        expected: str | None,
        started_at: datetime.datetime,
        committed: CommitHook | None = None,
        guard: SpaceGuard | None = None,
    ) -> None:
        self._ref = ref
        self._path = path
        self._blobs = blobs
        self._lock_fd = lock_fd
        self._total = total
        self._expected = expected
        self._started_at = started_at
        self._committed = committed
        self._guard = guard
        data_path = path / DATA
        st = os.stat(data_path) if data_path.exists() else None
        if st is not None and not st.st_mode & 0o200:
            os.chmod(data_path, 0o644)  # a commit that failed after making the data read-only
        self._file = open(data_path, "ab", buffering=0)  # noqa: SIM115 -- closed by close()/commit()
        self._offset = os.fstat(self._file.fileno()).st_size
        self._hash = _hash_prefix(data_path, self._offset)
        # Last, so that a failure above leaves the descriptor to open_writer alone. If the writer is
        # dropped without close(), the lock is still released when it is collected.
        self._release = weakref.finalize(self, os.close, lock_fd)

    # -- what it is ------------------------------------------------------------------------------
    @property
    def ref(self) -> str:
        return self._ref

    @property
    def offset(self) -> int:
        """Bytes written so far, including those of earlier writers of the same ingest."""
        return self._offset

    @property
    def data_path(self) -> Path:
        """The file the bytes go to: a reader opened on it keeps reading them after the commit's rename."""
        return self._path / DATA

    @property
    def total(self) -> int | None:
        return self._total

    @property
    def expected(self) -> str | None:
        return self._expected

    @property
    def closed(self) -> bool:
        return self._file.closed

    def digest(self) -> str:
        """The digest of the bytes written so far."""
        return f"{ALGORITHM}:{self._hash.hexdigest()}"

    def status(self) -> Status:
        self._check_open()
        status = read_status(self._path)
        if status is None:
            raise ContentError(f"ingest for ref {self._ref!r} lost its metadata")
        return status

    # -- writing ---------------------------------------------------------------------------------
    def write(self, data: Bytes) -> int:
        """Append ``data`` to the ingest and hash it; return the number of bytes written (all)."""
        self._check_open()
        view = memoryview(data).cast("B")
        if self._guard is not None:
            try:
                self._guard.charge(len(view))
            except ResourceExhaustedError as exc:
                # A blob that cannot fit is not kept for a resume: its bytes would only hold the room.
                self._discard()
                raise ResourceExhaustedError(
                    f"ingest {self._ref!r} dropped at {self._offset} bytes: {exc}"
                ) from None
        done = 0
        while done < len(view):
            n = self._file.write(view[done:])
            # Hash exactly what reached the file, so a failed write (ENOSPC) leaves hash and offset agreeing.
            self._hash.update(view[done : done + n])
            done += n
            self._offset += n
        return done

    def truncate(self, size: int = 0) -> None:
        """Cut the ingest back to ``size`` bytes (0: start again), e.g. when a download cannot resume."""
        self._check_open()
        if not 0 <= size <= self._offset:
            raise ContentError(f"cannot truncate ingest {self._ref!r} to {size}: it has {self._offset} bytes")
        self._file.truncate(size)
        self._offset = size
        self._hash = _hash_prefix(self._path / DATA, size) if size else hashlib.sha256()

    def commit(self, size: int | None = None, digest: str | None = None) -> CommitResult:
        """Make the written bytes a blob, after checking them against ``size`` and ``digest``.

        Either defaults to what was announced when the ingest started (``total``, ``expected``);
        with neither, the blob is stored under whatever digest its bytes have. On SizeMismatchError
        the ingest is kept and the writer stays open (a short write may go on); on
        DigestMismatchError the ingest is discarded, since its bytes can never become that blob.
        Nothing appears under ``blobs/`` in either case. If the blob already exists, the ingest is
        discarded and the result says ``created=False``. The writer is closed after a commit.

        The writer's ``committed`` hook, if it has one, is called with the result once the blob is in
        place and while the ingest is still held, so that a writer waiting for the ingest sees what
        the hook recorded as soon as it gets it; an error of the hook is the commit's.
        """
        self._check_open()
        if digest is not None:
            validate_digest(digest)
        size = self._total if size is None else size
        expected = self._expected if digest is None else digest
        if size is not None and size != self._offset:
            raise SizeMismatchError(size, self._offset)
        actual = self.digest()
        if expected is not None and expected != actual:
            self._discard()
            raise DigestMismatchError(expected, actual)
        # The bytes reach the disk before the name does, and no descriptor that can write them
        # survives the rename: from here on they are the blob.
        os.fsync(self._file.fileno())
        os.fchmod(self._file.fileno(), 0o444)
        self._file.close()
        target = self._blobs / digest_hex(actual)
        created = not target.exists()
        if created:
            # A concurrent commit of the same bytes may land first; rename replaces its file with an
            # identical one, and readers holding the old one keep reading the same bytes.
            os.rename(self._path / DATA, target)
            _fsync_dir(self._blobs)
        result = CommitResult(digest=actual, size=self._offset, created=created)
        try:
            if self._committed is not None:
                self._committed(result)
        finally:
            self._discard()
        return result

    # -- closing ---------------------------------------------------------------------------------
    def close(self) -> None:
        """Release the ingest, keeping its bytes for a later writer to resume. Idempotent."""
        self._file.close()
        self._release()

    def _discard(self) -> None:
        try:
            self._file.close()
            remove_ingest(self._path)
        finally:
            self._release()  # only after the directory is gone: nobody may reopen a half-removed ingest

    def _check_open(self) -> None:
        if self._file.closed:
            raise ContentError(f"writer for ref {self._ref!r} is closed")

    def __enter__(self) -> Writer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"offset={self._offset}"
        return f"<Writer ref={self._ref!r} {state}>"


def open_writer(
    ingest_dir: Path,
    blobs: Path,
    ref: str,
    total: int | None,
    expected: str | None,
    *,
    committed: CommitHook | None = None,
    min_free: float | None = None,
) -> Writer:
    """Open (start or resume) the ingest for ``ref`` under ``ingest_dir``, locked for this writer;
    ``committed`` is told of its commit, and with ``min_free`` its writes keep that share of the
    filesystem free."""
    validate_ref(ref)
    if expected is not None:
        validate_digest(expected)
    if total is not None and total < 0:
        raise ContentError(f"negative total {total} for ref {ref!r}")
    path = ingest_dir / ingest_name(ref)
    lock_fd = lock_ingest(path, ref, create=True)
    try:
        status = read_status(path) if (path / DATA).exists() else None
        if status is None or status.ref != ref:
            started_at = datetime.datetime.now(datetime.UTC)
            start_ingest(path, ref, total, expected, started_at)
        else:
            started_at = status.started_at
            if total is not None and status.total is not None and total != status.total:
                raise ContentError(
                    f"ingest {ref!r} was started with total {status.total}, not {total}: abort it first"
                )
            if expected is not None and status.expected is not None and expected != status.expected:
                raise ContentError(
                    f"ingest {ref!r} was started for {status.expected}, not {expected}: abort it first"
                )
            # Announced now but not when the ingest started: remember it for the next resume too.
            record_announcement(
                path,
                total if status.total is None else None,
                expected if status.expected is None else None,
            )
            total = status.total if total is None else total
            expected = status.expected if expected is None else expected
        return Writer(
            ref=ref,
            path=path,
            blobs=blobs,
            lock_fd=lock_fd,
            total=total,
            expected=expected,
            started_at=started_at,
            committed=committed,
            guard=None if min_free is None else SpaceGuard(ingest_dir, min_free),
        )
    except BaseException:
        os.close(lock_fd)
        raise
