"""A namespace's view of the content store (containerd's ``metadata`` content store).

Blobs are kept once on disk (:class:`~pycontainerd.ContentStore`), shared by every namespace; what a
namespace may use is what the metadata store records for it, a content record ``(namespace, digest)``.
A namespace gets a record only by proving it has the bytes: by writing them through one of its own
ingests, whose commit checks the digest, even when the blob is on disk already because another
namespace wrote it. Knowing a digest is not enough. So, in :class:`NamespacedContent`:

* ``info``, ``reader``, ``read_blob`` and ``walk`` see only the namespace's blobs (NotFoundError names
  the digest and the namespace), ``delete`` drops only the namespace's record (the blob goes at the next
  GC if no namespace references it);
* ingests are the namespace's own: the ref ``r`` is the ingest ``<namespace>/r`` on disk, so a
  namespace can neither resume nor wait on another's half-written blob;
* ``writer`` refuses a blob the namespace holds already (AlreadyExistsError: nothing to prove), and
  a commit records the blob in the namespace (and in the view's lease, if it has one) before the
  ingest is let go.

One exception, containerd's: a namespace labelled ``containerd.io/namespace.shareable=true`` shares its
blobs. A writer for a blob such a namespace holds (same digest, same size) records it in its own
namespace without the bytes, and says AlreadyExistsError. The label is the owner's decision to
publish; no other namespace can set it on its behalf through pycontainerd's commands.
"""

from __future__ import annotations

import contextlib

from pycontainerd._content import ContentStore, Status, validate_digest, validate_ref
from pycontainerd._errors import AlreadyExistsError, LockedError, NotFoundError, SizeMismatchError
from pycontainerd._metadata.tables import check_namespace
from pycontainerd._metadata.types import ContentRecord, LeaseResource

TYPE_CHECKING = False
if TYPE_CHECKING:
    import io
    from collections.abc import Iterator

    from pycontainerd._content import CommitResult, Info
    from pycontainerd._content.writer import Bytes, Writer
    from pycontainerd._metadata.store import MetadataStore, Transaction

__all__ = ["SHAREABLE", "UNCOMPRESSED", "NamespacedContent"]

#: A namespace label: ``"true"`` shares the namespace's blobs with every namespace (containerd's).
SHAREABLE = "containerd.io/namespace.shareable"
#: A layer blob's label: the digest of its uncompressed tar (its diff ID), set once an unpack checked it.
UNCOMPRESSED = "containerd.io/uncompressed"


class NamespacedContent:
    """The blobs of ``namespace`` in ``backend``, as ``metadata`` records them; see the module docstring.

    With ``lease``, what the view's writers ingest and commit (and the blobs they find the namespace
    holds already) is held by that lease of the namespace.
    """

    def __init__(
        self, backend: ContentStore, metadata: MetadataStore, namespace: str, lease: str | None = None
    ) -> None:
        self._backend = backend
        self._metadata = metadata
        # Checked here: the namespace prefixes the refs of its ingests on disk.
        self._namespace = check_namespace(namespace)
        self._lease = lease

    def __repr__(self) -> str:
        return f"NamespacedContent({self._backend!r}, namespace={self._namespace!r})"

    @property
    def backend(self) -> ContentStore:
        """The content store on disk, shared by every namespace: no namespace checks there."""
        return self._backend

    @property
    def namespace(self) -> str:
        return self._namespace

    def with_lease(self, lease: str) -> NamespacedContent:
        """The same view, its writes held by ``lease`` (a lease of the namespace)."""
        return NamespacedContent(self._backend, self._metadata, self._namespace, lease)

    # -- blobs -----------------------------------------------------------------------------------
    def _not_found(self, digest: str) -> NotFoundError:
        return NotFoundError(f"content {digest} not found in namespace {self._namespace}")

    def _check(self, digest: str) -> None:
        validate_digest(digest)
        try:
            self._metadata.content.get(self._namespace, digest)
        except NotFoundError:
            raise self._not_found(digest) from None

    def info(self, digest: str) -> Info:
        """The blob ``digest``; NotFoundError unless the namespace holds it."""
        self._check(digest)
        return self._backend.info(digest)

    def reader(self, digest: str) -> io.BufferedReader:
        """The blob ``digest`` opened for reading; NotFoundError unless the namespace holds it."""
        self._check(digest)
        return self._backend.reader(digest)

    def read_blob(self, digest: str) -> bytes:
        with self.reader(digest) as file:
            return file.read()

    def walk(self) -> Iterator[Info]:
        """The namespace's blobs, by digest."""
        for record in self._metadata.content.list(self._namespace):
            with contextlib.suppress(NotFoundError):  # collected meanwhile
                yield self._backend.info(record.digest)

    def delete(self, digest: str) -> None:
        """Drop the namespace's reference to ``digest``; the blob goes at the next GC if no namespace
        references it. NotFoundError unless the namespace holds it."""
        try:
            self._metadata.content.delete(self._namespace, validate_digest(digest))
        except NotFoundError:
            raise self._not_found(digest) from None

    # -- ingests ---------------------------------------------------------------------------------
    def _ref(self, ref: str) -> str:
        return f"{self._namespace}/{validate_ref(ref)}"

    def writer(self, ref: str, total: int | None = None, expected: str | None = None) -> Writer:
        """Open the namespace's ingest ``ref`` (see :meth:`ContentStore.writer`); its commit records the
        blob in the namespace.

        AlreadyExistsError if the namespace holds ``expected`` already (or has just taken it from a
        shareable namespace), SizeMismatchError if it holds it with a size other than ``total``.
        The writer's own ``ref`` is the ingest's on disk, ``<namespace>/<ref>``.
        """
        if expected is not None and self._claim(validate_digest(expected), total):
            raise AlreadyExistsError(f"content {expected} already exists in namespace {self._namespace}")
        if self._lease is not None:
            # Held before the ingest exists, so that a writer killed at any point leaves nothing that
            # GC would not take once the lease ends. The ref on disk: GC matches the ingests it
            # finds there with what leases hold.
            held = [LeaseResource.ingest(self._ref(ref))]
            if expected is not None:  # kept from the commit's rename to its record
                held.append(LeaseResource.content(expected))
            with self._metadata.transaction() as tx:
                for resource in held:
                    tx.leases.add_resource(self._namespace, self._lease, resource)
        writer = self._backend.writer(self._ref(ref), total, expected, committed=self._committed)
        # Another writer of the namespace may have committed the blob between the look above and our
        # lock on the ingest: then there is nothing left to write.
        try:
            done = expected is not None and self._holds(expected)
        except BaseException:
            writer.close()
            raise
        if done:
            writer.close()
            with contextlib.suppress(NotFoundError, LockedError):
                self._backend.abort(self._ref(ref))
            raise AlreadyExistsError(f"content {expected} already exists in namespace {self._namespace}")
        return writer

    def _holds(self, digest: str) -> bool:
        with self._metadata.transaction(write=False) as tx:
            return _record(tx, self._namespace, digest) is not None

    def _claim(self, digest: str, size: int | None) -> bool:
        """Whether the namespace holds ``digest`` (then held by the lease too), taking it from a
        shareable namespace that holds it if the namespace does not."""
        with self._metadata.transaction(write=False) as tx:
            found = _record(tx, self._namespace, digest)
            shared = None if found is not None else _shared(tx, digest)
        if found is None and shared is not None:
            try:
                on_disk = self._backend.info(digest).size
            except NotFoundError:
                return False
            if on_disk != shared.size:
                return False
        record = found or shared
        if record is None:
            return False
        if size is not None and size != record.size:
            raise SizeMismatchError(size, record.size)
        if shared is not None or self._lease is not None:
            with self._metadata.transaction() as tx:
                if shared is not None:
                    tx.content.add(self._namespace, digest, shared.size)
                if self._lease is not None:
                    tx.leases.add_resource(self._namespace, self._lease, LeaseResource.content(digest))
        return True

    def _committed(self, result: CommitResult) -> None:
        """A writer of the view committed ``result``: the namespace has proved it has the bytes."""
        with self._metadata.transaction() as tx:
            tx.content.add(self._namespace, result.digest, result.size)
            if self._lease is not None:
                tx.leases.add_resource(self._namespace, self._lease, LeaseResource.content(result.digest))

    def write_blob(
        self, ref: str, data: Bytes, size: int | None = None, digest: str | None = None
    ) -> CommitResult:
        """Write ``data`` through the ingest ``ref`` and commit it; a blob the namespace holds already
        is not written again (the result says ``created=False``)."""
        from pycontainerd._content import CommitResult

        try:
            with self.writer(ref, size, digest) as writer:
                if writer.offset:
                    writer.truncate(0)
                writer.write(data)
                return writer.commit(size, digest)
        except AlreadyExistsError:
            assert digest is not None  # only a writer told what to expect finds it there already
            return CommitResult(digest=digest, size=memoryview(data).nbytes, created=False)

    def status(self, ref: str) -> Status:
        """Where the namespace's ingest ``ref`` stands; NotFoundError if there is none."""
        return _relative(self._backend.status(self._ref(ref)), ref)

    def list_statuses(self) -> list[Status]:
        """The namespace's ingests, active or abandoned, sorted by ref."""
        prefix = f"{self._namespace}/"
        return [
            _relative(status, status.ref[len(prefix) :])
            for status in self._backend.list_statuses()
            if status.ref.startswith(prefix)
        ]

    def abort(self, ref: str) -> None:
        """Drop the namespace's ingest ``ref``. NotFoundError if none, LockedError if a writer holds it."""
        self._backend.abort(self._ref(ref))


def _record(tx: Transaction, namespace: str, digest: str) -> ContentRecord | None:
    try:
        return tx.content.get(namespace, digest)
    except NotFoundError:
        return None


def _shared(tx: Transaction, digest: str) -> ContentRecord | None:
    """The record of ``digest`` in a namespace labelled shareable, if one holds it."""
    for namespace, record in tx.content.holders(digest).items():
        if tx.namespaces.get(namespace).labels.get(SHAREABLE) == "true":
            return record
    return None


def _relative(status: Status, ref: str) -> Status:
    return Status(ref, status.offset, status.total, status.expected, status.started_at, status.updated_at)
