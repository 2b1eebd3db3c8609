"""The engine's events: an in-process bus that every part of the engine publishes to, and
``GET /events``, which streams them.

Publishing is one call, from any thread (the store's work runs in the executor's threads)::

    events.container(record, "start")                      # a container's action
    events.container(record, "die", exitCode="0")          # with attributes of its own
    events.image(image_id, "untag")                        # an image's action (name: the ID)
    events.image("busybox:latest", "pull", name="busybox") # ... with the name Docker gives it
    events.publish("container", "prune", "", {"reclaimed": "0"})  # anything else

As dockerd does, the bus keeps the last :data:`LIMIT` events, so that a client asking with
``since`` or ``until`` gets the ones before it subscribed; every subscriber gets each event
published after it subscribed, in order, through an asyncio queue of its event loop.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs
from aiohttp import web

from pyengine._errors import InvalidParameter
from pyengine._http import Route, parse_filters

if TYPE_CHECKING:
    from pyengine._containers import ContainerRecord

__all__ = ["LIMIT", "Event", "EventBus", "EventFilter", "add_routes", "parse_time"]

#: How many past events the bus keeps for ``since``/``until`` (dockerd's eventsLimit).
LIMIT = 256


@attrs.frozen
class Event:
    """One event, as Docker's ``events.Message`` has it."""

    type: str  # container, image, network, volume, daemon ...
    action: str
    actor_id: str
    attributes: Mapping[str, str]
    time_nano: int

    def to_api(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        # API 1.44 still sends the fields of the old format for containers and images.
        if self.type in ("container", "image"):
            data["status"] = self.action
            data["id"] = self.actor_id
            if self.type == "container":
                data["from"] = self.attributes.get("image", "")
        data.update(
            {
                "Type": self.type,
                "Action": self.action,
                "Actor": {"ID": self.actor_id, "Attributes": dict(self.attributes)},
                "scope": "local",
                "time": self.time_nano // 1_000_000_000,
                "timeNano": self.time_nano,
            }
        )
        return data


class _Subscriber:
    def __init__(self, loop: asyncio.AbstractEventLoop, include: Callable[[Event], bool]) -> None:
        self.loop = loop
        self.include = include
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue()  # None: the bus has closed


class EventBus:
    """Where the engine's events go: kept (the last :data:`LIMIT`) and handed to subscribers."""

    def __init__(self, limit: int = LIMIT) -> None:
        self._lock = threading.Lock()
        self._past: collections.deque[Event] = collections.deque(maxlen=limit)
        self._subscribers: list[_Subscriber] = []
        self._closed = False

    def publish(
        self, type: str, action: str, actor_id: str, attributes: Mapping[str, str] | None = None
    ) -> Event:
        """Record an event now and hand it to every subscriber; safe from any thread."""
        with self._lock:
            # Strictly increasing times: ``since``/``until`` then cut between two events, never through.
            now = time.time_ns()
            if self._past and now <= self._past[-1].time_nano:
                now = self._past[-1].time_nano + 1
            event = Event(type, action, actor_id, dict(attributes or {}), now)
            self._past.append(event)
            subscribers = list(self._subscribers)
        for subscriber in subscribers:
            if subscriber.include(event):
                with contextlib.suppress(RuntimeError):  # its loop has closed
                    subscriber.loop.call_soon_threadsafe(subscriber.queue.put_nowait, event)
        return event

    def container(self, record: ContainerRecord, action: str, **attributes: str) -> Event:
        """A container's event: its image (as it was named) and name, its labels, ``attributes``."""
        labels = record.config.get("Labels") or {}
        return self.publish(
            "container",
            action,
            record.id,
            {**labels, "image": record.image, "name": record.name, **attributes},
        )

    def image(
        self, actor_id: str, action: str, *, name: str | None = None, labels: Mapping[str, str] | None = None
    ) -> Event:
        """An image's event: ``actor_id`` (an ID or a reference), its ``name`` (default: the ID) and
        the image's labels."""
        return self.publish("image", action, actor_id, {**(labels or {}), "name": name or actor_id})

    @contextlib.contextmanager
    def subscribe(
        self, since: int | None, until: int | None, include: Callable[[Event], bool]
    ) -> Iterator[tuple[list[Event], asyncio.Queue[Event | None]]]:
        """The kept events between ``since`` and ``until`` (nanoseconds; none without either, as
        dockerd replays), and a queue of the events to come, for the block's duration."""
        subscriber = _Subscriber(asyncio.get_running_loop(), include)
        with self._lock:
            past = list(self._past)
            self._subscribers.append(subscriber)
            if self._closed:
                subscriber.queue.put_nowait(None)
        replay: list[Event] = []
        if since is not None or until is not None:
            replay = [
                e
                for e in past
                if (since is None or e.time_nano >= since)
                and (until is None or e.time_nano <= until)
                and include(e)
            ]
        try:
            yield replay, subscriber.queue
        finally:
            with self._lock:
                self._subscribers.remove(subscriber)

    def close(self) -> None:
        """End every subscription (the daemon is going): their streams end as dockerd's do."""
        with self._lock:
            self._closed = True
            subscribers = list(self._subscribers)
        for subscriber in subscribers:
            with contextlib.suppress(RuntimeError):
                subscriber.loop.call_soon_threadsafe(subscriber.queue.put_nowait, None)


# -- filters ---------------------------------------------------------------------------------------

#: The keys of ``filters`` dockerd takes on /events.
_FILTER_KEYS = frozenset(
    {
        "config", "container", "daemon", "event", "image", "label", "network", "node", "plugin",
        "scope", "secret", "service", "type", "volume",
    }
)  # fmt: skip
#: Keys matched against the actor's ID or name by prefix (dockerd's fuzzyMatchName).
_BY_NAME = ("config", "container", "daemon", "network", "node", "plugin", "secret", "service", "volume")


def _strip_tag(name: str) -> str:
    """``busybox`` of ``busybox:latest`` or ``busybox@sha256:…``; an ID stays as it is."""
    if name.startswith("sha256:"):
        return name
    bare = name.split("@", 1)[0]
    head, _, tail = bare.rpartition(":")
    return head if head and "/" not in tail else bare


@attrs.frozen
class EventFilter:
    """``filters`` of ``GET /events``, matched as dockerd's events.Filter matches them."""

    values: Mapping[str, frozenset[str]] = attrs.field(factory=dict)

    @classmethod
    def from_query(cls, text: str | None) -> EventFilter:
        filters = parse_filters(text, _FILTER_KEYS)
        return cls({key: frozenset(values) for key, values in filters.items()})

    def _exact(self, key: str, value: str) -> bool:
        return key not in self.values or value in self.values[key]

    def _fuzzy(self, key: str, value: str) -> bool:
        return key not in self.values or any(value.startswith(v) for v in self.values[key])

    def include(self, event: Event) -> bool:
        attributes = event.attributes
        action = event.action
        wanted = self.values.get("event", frozenset())
        if wanted & {"health_status", "exec_create", "exec_start"}:
            if not self._fuzzy("event", action):
                return False
        elif not self._exact("event", action):
            return False
        if not (self._exact("type", event.type) and self._exact("scope", "local")):
            return False
        for key in _BY_NAME:
            if not (self._fuzzy(key, event.actor_id) or self._fuzzy(key, attributes.get("name", "\0"))):
                return False
        if "image" in self.values:
            image = attributes.get("name" if event.type == "image" else "image", "")
            names = {event.actor_id, image, _strip_tag(event.actor_id), _strip_tag(image)}
            if not names & self.values["image"]:
                return False
        for label in self.values.get("label", ()):
            key, sep, value = label.partition("=")
            if key not in attributes or (sep and attributes[key] != value):
                return False
        return True


# -- the endpoint ----------------------------------------------------------------------------------


def parse_time(value: str | None, what: str) -> int | None:
    """A time of the query, in nanoseconds since the epoch: unix seconds with an optional fraction
    (what the docker CLI sends, ``1700000000.000000000``) or RFC 3339; None for none."""
    if not value:
        return None
    seconds, dot, fraction = value.partition(".")
    if seconds.lstrip("-").isdigit() and (not dot or fraction.isdigit()):
        return int(seconds) * 1_000_000_000 + int((fraction + "0" * 9)[:9] or 0)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidParameter(f"{what}: {value!r} is neither a unix time nor an RFC 3339 time") from None
    if moment.tzinfo is None:
        raise InvalidParameter(f"{what}: {value!r} has no time zone")
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000


def add_routes(route: Route, bus: Callable[[web.Request], EventBus]) -> None:
    """Route ``GET /events`` through ``route(method, path, handler)``."""

    async def events(request: web.Request) -> web.StreamResponse:
        since = parse_time(request.query.get("since"), "since")
        until = parse_time(request.query.get("until"), "until")
        if since is not None and until is not None and until < since:
            given = request.query
            raise InvalidParameter(
                f"`since` time ({given['since']}) cannot be after `until` time ({given['until']})"
            )
        event_filter = EventFilter.from_query(request.query.get("filters"))
        with bus(request).subscribe(since, until, event_filter.include) as (past, queue):
            response = web.StreamResponse(headers={"Content-Type": "application/json"})
            await response.prepare(request)
            for kept in past:
                await response.write(_line(kept))
            while until is None or time.time_ns() < until:
                timeout = None if until is None else max(0.0, (until - time.time_ns()) / 1e9)
                try:
                    event: Event | None = await asyncio.wait_for(queue.get(), timeout)
                except TimeoutError:
                    break
                if event is None or (until is not None and event.time_nano > until):
                    break
                await response.write(_line(event))
        await response.write_eof()
        return response

    route("GET", "/events", events)


def _line(event: Event) -> bytes:
    return json.dumps(event.to_api()).encode() + b"\n"
