"""The content store: blobs named by the digest of their bytes, written through locked ingests."""

from __future__ import annotations

import io
import os
from pathlib import Path

from pycontainerd._content.ingest import lock_ingest, read_status, remove_ingest, timestamp
from pycontainerd._content.names import ALGORITHM, digest_hex, ingest_name, validate_ref
from pycontainerd._content.types import CommitResult, Info, Status
from pycontainerd._errors import NotFoundError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

    from pycontainerd._content.writer import Bytes, CommitHook, Writer

__all__ = ["ContentStore"]

_HEX = frozenset("0123456789abcdef")


def _is_hex64(name: str) -> bool:
    return len(name) == 64 and _HEX.issuperset(name)


class ContentStore:
    """Content-addressed blobs on a local filesystem, shared safely by several processes.

    Modelled on containerd's ``content/local``. On disk, under ``root``::

        <root>/
        ├── blobs/
        │   └── sha256/
        │       └── <64 hex>            a committed blob, read-only (0444); its bytes hash to its name
        └── ingest/
            └── <sha256 hex of ref>/    one write in progress, locked (flock) by its writer
                ├── ref                 the caller's ref, verbatim
                ├── startedat           ISO 8601, UTC
                ├── total               announced size (optional)
                ├── expected            announced digest (optional)
                └── data                the bytes so far; its size is the ingest's offset

    The only way into ``blobs/`` is ``Writer.commit``: it checks the size and the digest, fsyncs the
    data, renames it into ``blobs/sha256/`` (atomic: a blob is either absent or whole) and fsyncs
    that directory. So a blob only ever exists under the digest of its bytes, whatever crashes. A
    writer killed mid-ingest leaves its ingest behind, unlocked by the kernel; ``writer(ref)`` resumes
    it at ``status(ref).offset`` (rehashing what is there), or ``abort(ref)`` drops it.

    Digests are checked (``sha256:`` and 64 lowercase hex digits) before they name a path, and refs
    only ever name a path through their hash, so neither can reach outside ``root``.

    With ``min_free`` (a share, 0.05 for 5 %), a write that would take the filesystem under that
    share of free blocks or inodes raises ResourceExhaustedError and drops its ingest (see
    ``pycontainerd._reserve``); None checks nothing.
    """

    def __init__(self, root: str | os.PathLike[str], *, min_free: float | None = None) -> None:
        self.root = Path(root)
        if min_free is not None:
            from pycontainerd._reserve import check_min_free

            check_min_free(min_free)
        self.min_free = min_free
        self._blobs = self.root / "blobs" / ALGORITHM
        self._ingest = self.root / "ingest"
        self._blobs.mkdir(mode=0o755, parents=True, exist_ok=True)
        self._ingest.mkdir(mode=0o700, exist_ok=True)

    def __repr__(self) -> str:
        return f"ContentStore({str(self.root)!r})"

    # -- blobs -----------------------------------------------------------------------------------
    def _blob_path(self, digest: str) -> Path:
        return self._blobs / digest_hex(digest)

    def info(self, digest: str) -> Info:
        """The committed blob ``digest``; NotFoundError if the store does not hold it."""
        path = self._blob_path(digest)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            raise NotFoundError(f"content {digest} not found") from None
        return Info(digest=digest, size=st.st_size, created_at=timestamp(st.st_mtime))

    def reader(self, digest: str) -> io.BufferedReader:
        """The blob ``digest`` opened for reading (a buffered binary file: read, readinto, seek).

        The caller closes it. Deleting the blob meanwhile does not disturb an open reader.
        """
        try:
            return open(self._blob_path(digest), "rb")
        except FileNotFoundError:
            raise NotFoundError(f"content {digest} not found") from None

    def read_blob(self, digest: str) -> bytes:
        """The whole blob ``digest``: for small ones (manifests, configs)."""
        with self.reader(digest) as file:
            return file.read()

    def delete(self, digest: str) -> None:
        """Remove the blob ``digest``; NotFoundError if the store does not hold it."""
        try:
            os.unlink(self._blob_path(digest))
        except FileNotFoundError:
            raise NotFoundError(f"content {digest} not found") from None

    def walk(self) -> Iterator[Info]:
        """Every committed blob, in no particular order. Files that are not blobs are skipped."""
        with os.scandir(self._blobs) as entries:
            for entry in entries:
                if not _is_hex64(entry.name):
                    continue
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue  # deleted while we walked
                yield Info(
                    digest=f"{ALGORITHM}:{entry.name}", size=st.st_size, created_at=timestamp(st.st_mtime)
                )

    # -- ingests ---------------------------------------------------------------------------------
    def writer(
        self,
        ref: str,
        total: int | None = None,
        expected: str | None = None,
        *,
        committed: CommitHook | None = None,
    ) -> Writer:
        """Open a writer on the ingest ``ref``: a new one, or the one left by an earlier writer.

        ``total`` and ``expected`` announce the blob's size and digest; commit checks them. Resuming
        an ingest announced differently is a ContentError (abort it first). LockedError if another
        writer, in this process or another, holds ``ref``. ``committed`` is called with the result of
        the writer's commit (see :meth:`Writer.commit`).
        """
        # Loaded here: the writer's hashlib (OpenSSL's set-up) is not on pyctr's path, which writes nothing.
        from pycontainerd._content.writer import open_writer

        return open_writer(
            self._ingest, self._blobs, ref, total, expected, committed=committed, min_free=self.min_free
        )

    def write_blob(
        self, ref: str, data: Bytes, size: int | None = None, digest: str | None = None
    ) -> CommitResult:
        """Write ``data`` through the ingest ``ref`` and commit it: the whole cycle for bytes in hand."""
        with self.writer(ref, size, digest) as writer:
            if writer.offset:
                writer.truncate(0)  # cheaper to rewrite than to prove the old bytes are ours
            writer.write(data)
            return writer.commit(size, digest)

    def status(self, ref: str) -> Status:
        """Where the ingest ``ref`` stands; NotFoundError if there is none."""
        status = read_status(self._ingest / ingest_name(ref))
        if status is None or status.ref != ref:
            raise NotFoundError(f"no ingest for ref {ref!r}")
        return status

    def list_statuses(self) -> list[Status]:
        """Every ingest in the store, active or abandoned, sorted by ref."""
        statuses = []
        with os.scandir(self._ingest) as entries:
            for entry in entries:
                if _is_hex64(entry.name):
                    status = read_status(Path(entry.path))
                    if status is not None:
                        statuses.append(status)
        return sorted(statuses, key=lambda status: status.ref)

    def abort(self, ref: str) -> None:
        """Drop the ingest ``ref`` and its bytes. NotFoundError if none, LockedError if a writer holds it."""
        path = self._ingest / ingest_name(validate_ref(ref))
        fd = lock_ingest(path, ref, create=False)
        try:
            remove_ingest(path)
        finally:
            os.close(fd)
