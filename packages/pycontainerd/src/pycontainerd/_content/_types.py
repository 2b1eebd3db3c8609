"""What the content store reports: a blob's Info, an ingest's Status, a commit's result."""

from __future__ import annotations

import datetime

import attrs

__all__ = ["CommitResult", "Info", "Status"]


@attrs.frozen
class Info:
    """A committed blob: its digest, its size in bytes, and when it was committed."""

    digest: str
    size: int
    created_at: datetime.datetime


@attrs.frozen
class Status:
    """An ingest in progress (or left by a crashed writer): how far it got, and what it expects.

    ``offset`` is the number of bytes written so far; a writer reopened on ``ref`` resumes there.
    ``total`` and ``expected`` are the size and digest announced when the ingest started, if any.
    """

    ref: str
    offset: int
    total: int | None
    expected: str | None
    started_at: datetime.datetime
    updated_at: datetime.datetime


@attrs.frozen
class CommitResult:
    """The blob a commit produced. ``created`` is False when the blob was already in the store.

    Two writers committing the same content at the same moment may both see ``created``; the store
    still holds one blob, with the right bytes, either way.
    """

    digest: str
    size: int
    created: bool
