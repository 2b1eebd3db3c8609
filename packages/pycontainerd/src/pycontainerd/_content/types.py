"""What the content store reports: a blob's Info, an ingest's Status, a commit's result."""

from __future__ import annotations

from pycontainerd._record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    import datetime
    from typing import Final

__all__ = ["CommitResult", "Info", "Status"]


class Info(Record):
    """A committed blob: its digest, its size in bytes, and when it was committed."""

    __slots__ = ("digest", "size", "created_at")

    def __init__(self, digest: str, size: int, created_at: datetime.datetime) -> None:
        self.digest: Final = digest
        self.size: Final = size
        self.created_at: Final = created_at


class Status(Record):
    """An ingest in progress (or left by a crashed writer): how far it got, and what it expects.

    ``offset`` is the number of bytes written so far; a writer reopened on ``ref`` resumes there.
    ``total`` and ``expected`` are the size and digest announced when the ingest started, if any.
    """

    __slots__ = ("ref", "offset", "total", "expected", "started_at", "updated_at")

    def __init__(
        self,
        ref: str,
        offset: int,
        total: int | None,
        expected: str | None,
        started_at: datetime.datetime,
        updated_at: datetime.datetime,
    ) -> None:
        self.ref: Final = ref
        self.offset: Final = offset
        self.total: Final = total
        self.expected: Final = expected
        self.started_at: Final = started_at
        self.updated_at: Final = updated_at


class CommitResult(Record):
    """The blob a commit produced. ``created`` is False when the blob was already in the store.

    Two writers committing the same content at the same moment may both see ``created``; the store
    still holds one blob, with the right bytes, either way.
    """

    __slots__ = ("digest", "size", "created")

    def __init__(self, digest: str, size: int, created: bool) -> None:
        self.digest: Final = digest
        self.size: Final = size
        self.created: Final = created
