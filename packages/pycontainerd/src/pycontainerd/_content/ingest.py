"""Ingests: the directories where blobs are written before they are committed, and their lock.

An ingest directory ``ingest/<sha256 of ref>/`` holds::

    ref         the caller's ref, verbatim (the directory name is only its hash)
    startedat   when the ingest began (ISO 8601, UTC)
    total       the announced size in bytes, if one was given
    expected    the announced digest, if one was given
    data        the bytes written so far; its size is the ingest's offset

The writer holds ``flock(LOCK_EX)`` on the directory itself for as long as it is open. flock belongs
to the open file description, so a second writer is refused whether it is another process or the
same one, and the kernel drops the lock when a writer dies, however it dies: a crashed ingest can be
reopened and resumed at once. Metadata files are written whole (temp file + rename) before ``data``
is created, so an ingest with ``data`` always has its metadata; one without ``data`` (a crash while
starting, or after a commit's rename) is simply started again.
"""

from __future__ import annotations

import datetime
import errno
import fcntl
import os
from pathlib import Path

from pycontainerd._content.names import validate_digest
from pycontainerd._content.types import Status
from pycontainerd._errors import LockedError, NotFoundError

__all__ = [
    "DATA",
    "lock_ingest",
    "read_status",
    "record_announcement",
    "remove_ingest",
    "start_ingest",
    "timestamp",
]

DATA = "data"
_REF = "ref"
_STARTED_AT = "startedat"
_TOTAL = "total"
_EXPECTED = "expected"


def timestamp(seconds: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC)


def lock_ingest(path: Path, ref: str, *, create: bool) -> int:
    """Lock the ingest directory ``path`` (making it if ``create``); return the locked descriptor.

    Raises LockedError if another writer holds it, NotFoundError if it is missing and not ``create``.
    """
    while True:
        if create:
            try:
                path.mkdir(mode=0o700)
            except FileExistsError:
                pass
        try:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            if not create:
                raise NotFoundError(f"no ingest for ref {ref!r}") from None
            continue  # a committing writer removed it between our mkdir and open: make it again
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            # The previous holder may have finished and removed the directory between our open and
            # our flock: the lock only counts if it is on the directory now at ``path``.
            here = os.stat(path)
            mine = os.fstat(fd)
        except BlockingIOError:
            os.close(fd)
            raise LockedError(ref) from None
        except FileNotFoundError:
            os.close(fd)
            if not create:
                raise NotFoundError(f"no ingest for ref {ref!r}") from None
            continue
        except BaseException:
            os.close(fd)
            raise
        if (here.st_dev, here.st_ino) == (mine.st_dev, mine.st_ino):
            return fd
        os.close(fd)


def remove_ingest(path: Path) -> None:
    """Remove an ingest directory the caller holds the lock on (every entry, then the directory)."""
    try:
        entries = list(os.scandir(path))
    except FileNotFoundError:
        return
    for entry in entries:
        try:
            os.unlink(entry.path)
        except FileNotFoundError:
            pass
    try:
        os.rmdir(path)
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            raise


def _write_file(path: Path, text: str) -> None:
    temp = path.with_name(path.name + ".tmp")
    temp.write_text(text)
    os.replace(temp, path)


def start_ingest(
    path: Path, ref: str, total: int | None, expected: str | None, started_at: datetime.datetime
) -> None:
    """Start a fresh ingest in the locked directory ``path``: clear it and write its metadata."""
    for entry in list(os.scandir(path)):
        os.unlink(entry.path)
    _write_file(path / _REF, ref)
    _write_file(path / _STARTED_AT, started_at.isoformat())
    record_announcement(path, total, expected)


def record_announcement(path: Path, total: int | None, expected: str | None) -> None:
    """Record the size and digest the ingest is meant to have (each only if given)."""
    if total is not None:
        _write_file(path / _TOTAL, str(total))
    if expected is not None:
        _write_file(path / _EXPECTED, expected)


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except FileNotFoundError:
        return None


def read_status(path: Path) -> Status | None:
    """The status of the ingest at ``path``, or None if there is no complete ingest there.

    Reads without the lock: a live writer's offset is a snapshot of a moving value.
    """
    ref = _read(path / _REF)
    if not ref:
        return None
    total_text = _read(path / _TOTAL)
    expected = _read(path / _EXPECTED)
    started_text = _read(path / _STARTED_AT)
    try:
        total = int(total_text) if total_text is not None else None
        if expected is not None:
            validate_digest(expected)
        started_at = datetime.datetime.fromisoformat(started_text) if started_text else None
    except ValueError:
        return None  # metadata this store never writes: not an ingest of ours
    try:
        st = os.stat(path / DATA)
        offset, updated_at = st.st_size, timestamp(st.st_mtime)
    except FileNotFoundError:
        offset, updated_at = 0, None
    if started_at is None:
        started_at = timestamp(os.stat(path).st_mtime)
    return Status(
        ref=ref,
        offset=offset,
        total=total,
        expected=expected,
        started_at=started_at,
        updated_at=updated_at or started_at,
    )
