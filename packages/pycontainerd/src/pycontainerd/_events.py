"""Events: what happened to images, containers and tasks, as containerd's event topics, without a daemon.

Every process that changes something (a manager: ``pyctr``, an embedding program; a container's
monitor, for exits and OOMs) appends one JSON line per event to ``<state>/events.jsonl``, in a single
``O_APPEND`` write, so lines from several writers never interleave. Subscribers follow the file. A
line holds ``topic``, ``namespace``, ``timestamp`` (RFC 3339, UTC) and the event's own fields. When the
file passes :data:`MAX_LOG_BYTES` a publisher moves it to ``events.jsonl.1`` (replacing the older one)
under a lock; followers finish the old file before they switch.

Filters use containerd's syntax: ``field==value``, ``field!=value``, ``field~=regexp``, clauses joined
by ``,`` must all hold, and an event passes when any one filter holds. ``topic``, ``namespace`` and
``timestamp`` are the envelope; any other field is the event's (``id``, ``status``…), also reachable as
``event.id``.
"""

from __future__ import annotations

import datetime
import fcntl
import json
import os
import re
import time
from collections.abc import Callable
from pathlib import Path

from pycontainerd._errors import InvalidArgumentError
from pycontainerd._record import Record
from pycontainerd._times import format_time, parse_time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from typing import Any, Final

__all__ = [
    "MAX_LOG_BYTES",
    "Event",
    "EventLog",
    "Filter",
    "parse_filter",
]

MAX_LOG_BYTES = 4 << 20
_NAME = "events.jsonl"
_ENVELOPE = ("topic", "namespace", "timestamp")


def _utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class Event(Record):
    """One event: its topic (``/tasks/exit``), namespace, time and fields (``{"id": …, "status": …}``).

    Two events are equal when their envelopes (topic, namespace, time) are; the fields do not count.
    """

    __slots__ = ("topic", "namespace", "timestamp", "fields")
    _compared = ("topic", "namespace", "timestamp")

    def __init__(
        self,
        topic: str,
        namespace: str,
        timestamp: datetime.datetime,
        fields: dict[str, Any] | None = None,
    ) -> None:
        self.topic: Final = topic
        self.namespace: Final = namespace
        self.timestamp: Final = timestamp
        self.fields: Final = {} if fields is None else fields

    def to_json(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "namespace": self.namespace,
            "timestamp": format_time(self.timestamp),
            **self.fields,
        }

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> Event:
        fields = {k: v for k, v in value.items() if k not in _ENVELOPE}
        stamp = value.get("timestamp") or value.get("exited_at")
        return cls(
            str(value.get("topic", "")),
            str(value.get("namespace", "")),
            parse_time(stamp) if isinstance(stamp, str) else _utc_now(),
            fields,
        )

    def get(self, field: str) -> object:
        """An envelope field or an event field (``event.`` prefix optional); None when absent."""
        if field in ("topic", "namespace"):
            return getattr(self, field)
        if field == "timestamp":
            return format_time(self.timestamp)
        return self.fields.get(field.removeprefix("event."))


_CLAUSE = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_.]*)\s*(==|!=|~=)\s*(\"(?:[^\"\\]|\\.)*\"|[^,]*?)\s*(?:,|$)")

Filter = Callable[[Event], bool]


def parse_filter(text: str) -> Filter:
    """A filter in containerd's syntax (``topic=="/tasks/exit",namespace==default``); InvalidArgumentError."""
    clauses: list[tuple[str, str, str | re.Pattern[str]]] = []
    position = 0
    while position < len(text):
        match = _CLAUSE.match(text, position)
        if match is None or match.end() == position:
            raise InvalidArgumentError(f"invalid event filter {text!r} at character {position + 1}")
        field, operator, raw = match.groups()
        value = json.loads(raw) if raw.startswith('"') else raw
        if operator == "~=":
            try:
                clauses.append((field, operator, re.compile(value)))
            except re.error as exc:
                raise InvalidArgumentError(f"invalid event filter {text!r}: {exc}") from None
        else:
            clauses.append((field, operator, value))
        position = match.end()
    if not clauses:
        raise InvalidArgumentError("an empty event filter")

    def matches(event: Event) -> bool:
        for field, operator, value in clauses:
            found = event.get(field)
            text = "" if found is None else str(found)
            if operator == "==" and text != value:
                return False
            if operator == "!=" and text == value:
                return False
            if isinstance(value, re.Pattern) and (found is None or not value.search(text)):
                return False
        return True

    return matches


def _matcher(filters: tuple[str, ...]) -> Filter:
    parsed = [parse_filter(f) for f in filters]
    return lambda event: not parsed or any(f(event) for f in parsed)


class EventLog:
    """The event log of a state directory: publish, read what happened, follow what happens."""

    def __init__(self, state: str | os.PathLike[str]) -> None:
        self.state = Path(state)
        self.path = self.state / _NAME

    def publish(self, topic: str, namespace: str, **fields: Any) -> Event:
        """Append an event (one write, atomic against other writers) and return it."""
        event = Event(topic, namespace, _utc_now(), fields)
        line = (json.dumps(event.to_json(), sort_keys=True) + "\n").encode()
        self.state.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, line)
            if os.fstat(fd).st_size > MAX_LOG_BYTES:
                self._rotate(fd)
        finally:
            os.close(fd)
        return event

    def _rotate(self, fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            # Another publisher may have rotated already: only the file still at the path moves.
            if os.path.exists(self.path) and os.stat(self.path).st_ino == os.fstat(fd).st_ino:
                os.replace(self.path, self.path.with_name(_NAME + ".1"))
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def history(self, *filters: str) -> list[Event]:
        """The events still kept (the rotated file, then the current one), oldest first."""
        match = _matcher(filters)
        found: list[Event] = []
        for path in (self.path.with_name(_NAME + ".1"), self.path):
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                continue
            found += [e for e in _parse_lines(data.splitlines()) if match(e)]
        return found

    def follow(
        self, *filters: str, stop: Callable[[], bool] = lambda: False, interval: float = 0.05
    ) -> Iterator[Event]:
        """The events published from now on that pass ``filters``, as they come, until ``stop()``."""
        match = _matcher(filters)
        reader = _Follower(self.path)
        try:
            while not stop():
                batch = reader.read()
                for event in batch:
                    if match(event):
                        yield event
                if not batch:
                    time.sleep(interval)
        finally:
            reader.close()


def _parse_lines(lines: list[bytes]) -> Iterator[Event]:
    for line in lines:
        try:
            value = json.loads(line)
        except ValueError:
            continue  # a line cut by a writer killed mid-write, or not ours
        if isinstance(value, dict):
            try:
                yield Event.from_json(value)
            except ValueError:
                continue  # a malformed time: not a line pycontainerd wrote


class _Follower:
    """Reads new complete lines of the log, across rotations (by inode: the old file is finished first)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None
        self.pending = b""
        self._open(at_end=True)

    def _open(self, *, at_end: bool) -> None:
        try:
            self.fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            self.fd = None
            return
        if at_end:
            os.lseek(self.fd, 0, os.SEEK_END)

    def read(self) -> list[Event]:
        if self.fd is None:
            self._open(at_end=False)
            if self.fd is None:
                return []
        chunks = []
        while chunk := os.read(self.fd, 1 << 16):
            chunks.append(chunk)
        data = self.pending + b"".join(chunks)
        lines = data.split(b"\n")
        self.pending = lines.pop()
        events = list(_parse_lines(lines))
        try:
            moved = os.stat(self.path).st_ino != os.fstat(self.fd).st_ino
        except FileNotFoundError:
            moved = True
        if moved and not chunks:
            finished = os.fstat(self.fd).st_ino
            os.close(self.fd)
            self.fd, self.pending = None, b""
            self._open_rotated_after(finished)
        return events

    def _open_rotated_after(self, finished: int) -> None:
        """Having finished the file of inode ``finished``: if the log rotated twice since, the file
        now at ``.1`` came after ours and is read next, from its start; else the current file is
        (opened by the next read). Three rotations between two reads lose a file's events."""
        try:
            fd = os.open(self.path.with_name(_NAME + ".1"), os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return
        if os.fstat(fd).st_ino == finished:
            os.close(fd)
        else:
            self.fd = fd

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
