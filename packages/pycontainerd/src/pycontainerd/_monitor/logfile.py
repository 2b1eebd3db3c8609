"""A process's log as the monitor writes it, read without talking to it (but for a follower's wake-ups).

The monitor writes one record per line of output (the last piece of a read that ended mid-line is a
record too), each in the frame Docker's stdcopy uses followed by a trailer::

    stream (1 stdout, 2 stderr), 3 zero bytes, length (uint32 BE), the line,
    time read (int64 BE, nanoseconds since the epoch), length again (uint32 BE)

Why not Docker's JSON lines: a record parses with two ``struct`` calls where a JSON line needs a
decoder, output that is not UTF-8 is kept as it was, and the trailing length lets ``tail`` read the
file backwards. Rotation is Docker's json-file one: ``PATH`` is renamed ``PATH.1`` (``PATH.1``
becomes ``PATH.2``, up to the number of files kept) and ``PATH`` starts anew; a file never holds
part of a record.

An entry is a tuple ``(stream, data, time)``: plain tuples, since ``docker logs`` of 100,000 lines
makes as many.
"""

from __future__ import annotations

import os
import struct
import time
from pathlib import Path

from pycontainerd._monitor.client import Watch, watch
from pycontainerd._monitor.protocol import MonitorError
from pycontainerd._monitor.records import monitor_alive, read_exit

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import BinaryIO, Protocol, TypeAlias

    #: ``(stream, data, time)``: 1 stdout or 2 stderr, the line, when it was read (ns since the epoch).
    LogEntry: TypeAlias = tuple[int, bytes, int]

    class Wakeups(Protocol):
        """What a follower waits on (``Monitor.watch``): woken when output reached the log."""

        @property
        def ended(self) -> bool:
            """Whether the process's exit (or the monitor's end) has been seen: nothing more comes."""

        def wait(self, timeout: float | None) -> None:
            """Sleep until output came or the process ended (or ``timeout`` seconds passed)."""


__all__ = ["follow_watch", "log_files", "read_entries", "read_log"]

_HEADER = struct.Struct(">B3xI")
_TRAILER = struct.Struct(">qI")
_LENGTH = struct.Struct(">I")
_OVERHEAD = _HEADER.size + _TRAILER.size
_CHUNK = 1 << 20
_BACK_CHUNK = 1 << 16


def log_files(path: str | os.PathLike[str]) -> list[Path]:
    """The files of the log at ``path`` that exist, oldest first: ``PATH.N`` ... ``PATH.1``, ``PATH``."""
    base = Path(path)
    rotated = []
    number = 1
    while (candidate := Path(f"{base}.{number}")).exists():
        rotated.append(candidate)
        number += 1
    rotated.reverse()
    return [*rotated, base] if base.exists() else rotated


def _parse(buffer: bytes, entries: list[LogEntry], since: int | None, until: int | None) -> tuple[int, bool]:
    """Append the whole records of ``buffer`` within [since, until] to ``entries``; returns how many
    bytes they took and whether a record past ``until`` was met (the rest is newer still)."""
    offset, size = 0, len(buffer)
    header, trailer = _HEADER.unpack_from, _TRAILER.unpack_from
    while offset + _OVERHEAD <= size:
        stream, length = header(buffer, offset)
        end = offset + 8 + length
        if end + 12 > size:
            break
        stamp = trailer(buffer, end)[0]
        if until is not None and stamp > until:
            return offset, True
        if since is None or stamp >= since:
            entries.append((stream, buffer[offset + 8 : end], stamp))
        offset = end + 12
    return offset, False


class _Reader:
    """Reads one open log file forwards, keeping an incomplete record at its end for the next read."""

    def __init__(self, f: BinaryIO, since: int | None, until: int | None) -> None:
        self.f = f
        self.since, self.until = since, until
        self.rest = b""
        self.past_until = False

    def read(self) -> Iterator[list[LogEntry]]:
        """Batches of entries up to the file's current end."""
        while not self.past_until and (chunk := self.f.read(_CHUNK)):
            buffer = self.rest + chunk if self.rest else chunk
            entries: list[LogEntry] = []
            used, self.past_until = _parse(buffer, entries, self.since, self.until)
            self.rest = buffer[used:]
            if entries:
                yield entries


def _last_time(path: Path) -> int | None:
    """The time of the file's last record (from its trailer), or None for an empty or unreadable one."""
    try:
        with open(path, "rb") as f:
            f.seek(-_TRAILER.size, os.SEEK_END)
            return int(_TRAILER.unpack(f.read(_TRAILER.size))[0])
    except (OSError, struct.error):
        return None


def _tail(
    f: BinaryIO, end: int, count: int, since: int | None, until: int | None
) -> tuple[list[LogEntry], bool]:
    """The last ``count`` entries within [since, until] of the first ``end`` bytes of ``f``, read
    backwards a block at a time (oldest first); and whether the file had fewer (read to its start
    without meeting one older than ``since``)."""
    found: list[LogEntry] = []
    position = end
    block = b""
    while len(found) < count:
        if position > 0:
            step = min(position, _BACK_CHUNK)
            position -= step
            f.seek(position)
            block = f.read(step) + block
        stop = len(block)
        while stop >= _OVERHEAD and len(found) < count:
            (length,) = _LENGTH.unpack_from(block, stop - 4)
            start = stop - _OVERHEAD - length
            if start < 0:
                break  # the record begins in an earlier block
            stamp = _TRAILER.unpack_from(block, stop - _TRAILER.size)[0]
            if since is not None and stamp < since:
                found.reverse()
                return found, False
            if until is None or stamp <= until:
                found.append((block[start], block[start + 8 : start + 8 + length], stamp))
            stop = start
        block = block[:stop]
        if position == 0:
            break  # all of it parsed (what is left is not a whole record)
    found.reverse()
    return found, len(found) < count


def read_entries(
    path: str | os.PathLike[str],
    *,
    since: int | None = None,
    until: int | None = None,
    tail: int | None = None,
    follow: Wakeups | None = None,
) -> Iterator[list[LogEntry]]:
    """The entries of the log at ``path`` (rotated files first), in batches, oldest first: those read
    at ``since`` or later and ``until`` or earlier (ns since the epoch), the last ``tail`` of them
    only (read backwards: the file is not read whole). With ``follow``, then what the monitor
    writes next, across rotations, until the process has ended (or ``until`` has passed); the
    caller may stop earlier by closing the iterator.

    Without ``follow``, a rotation while reading can skip or repeat what was rotated meanwhile."""
    base = Path(path)
    try:
        current: BinaryIO | None = open(base, "rb")  # noqa: SIM115 - followed after the first read
    except FileNotFoundError:
        current = None
    try:
        older = [p for p in log_files(base) if p != base]
        if since is not None:  # whole files older than ``since`` are not opened
            older = [p for p in older if (_last_time(p) or 0) >= since]
        end = os.fstat(current.fileno()).st_size if current is not None else 0
        if tail is not None:
            yield _tail_files(current, end, older, tail, since, until)
            reader = _Reader(current, since, until) if current is not None else None
            if reader is not None:
                current.seek(end)  # type: ignore[union-attr]
        else:
            for name in older:
                with open(name, "rb") as f:
                    old = _Reader(f, since, until)
                    yield from old.read()
                    if old.past_until:
                        return
            reader = _Reader(current, since, until) if current is not None else None
            if reader is not None:
                yield from reader.read()
        if follow is None or (reader is not None and reader.past_until):
            return
        yield from _follow(base, reader, follow, since, until)
    finally:
        if current is not None:
            current.close()


def _tail_files(
    current: BinaryIO | None, end: int, older: list[Path], count: int, since: int | None, until: int | None
) -> list[LogEntry]:
    if count <= 0:
        return []
    found: list[LogEntry] = []
    if current is not None:
        found, more = _tail(current, end, count, since, until)
        if not more:
            return found
    for name in reversed(older):
        with open(name, "rb") as f:
            earlier, more = _tail(f, os.fstat(f.fileno()).st_size, count - len(found), since, until)
        found = earlier + found
        if not more:
            break
    return found


def _follow(
    base: Path, reader: _Reader | None, wakeups: Wakeups, since: int | None, until: int | None
) -> Iterator[list[LogEntry]]:
    """What the monitor appends from now on, each time it says so, until the process's end."""
    try:
        while True:
            while True:  # the current file to its end, then the one after a rotation, if any
                if reader is None:
                    try:
                        reader = _Reader(open(base, "rb"), since, until)  # noqa: SIM115 - closed below
                    except FileNotFoundError:
                        break
                yield from reader.read()
                if reader.past_until:
                    return
                try:
                    rotated = os.stat(base).st_ino != os.fstat(reader.f.fileno()).st_ino
                except FileNotFoundError:
                    rotated = False  # between the rotation's rename and the new file
                if not rotated:
                    break
                yield from reader.read()  # what came before the rename
                reader.f.close()
                reader = None
            if wakeups.ended:
                return
            timeout = None
            if until is not None:
                timeout = (until - time.time_ns()) / 1e9
                if timeout <= 0:
                    return
            wakeups.wait(timeout)
    finally:
        if reader is not None:
            reader.f.close()


def follow_watch(directory: str | os.PathLike[str], proc: str) -> Watch | None:
    """Wake-ups for a follower of ``proc``'s log from the monitor of ``directory``, or None when
    there is nothing to follow: ``proc`` has exited, or its monitor is gone."""
    if read_exit(directory, proc) is not None or not monitor_alive(directory):
        return None
    try:
        return watch(directory, proc, notify=True)
    except MonitorError:
        return None  # gone or finishing meanwhile: its log is complete


def read_log(
    directory: str | os.PathLike[str],
    proc: str = "init",
    *,
    follow: bool = False,
    path: str | os.PathLike[str] | None = None,
) -> Iterator[tuple[int, bytes]]:
    """The output ``proc`` left in its log (``path``, by default ``DIR/PROC.log``) as ``(stream,
    data)``, a line at a time, 1 stdout and 2 stderr. With ``follow``, keeps reading as the
    monitor writes (across rotations), woken by it, until the process has exited and the log is
    drained, or the monitor is gone."""
    wakeups = follow_watch(directory, proc) if follow else None
    try:
        for batch in read_entries(path or Path(directory) / f"{proc}.log", follow=wakeups):
            for stream, data, _ in batch:
                yield stream, data
    finally:
        if wakeups is not None:
            wakeups.close()
