"""``GET /containers/json``'s ``filters`` and ``size``, as dockerd's list answers them.

The filters are dockerd's (``invalid filter 'x'`` for any other); those about what pyengine has not
(ports, health checks, swarm tasks, user-defined networks) answer for what exists: no container
publishes or exposes a port, every health is ``none``, no container is a task, and a container's
network is its network mode (``none``, ``host``, ``bridge`` for the default).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

from pyengine._containers import ContainerRecord, Containers
from pyengine._errors import InvalidParameter, NotFound
from pyengine._http import parse_filters

__all__ = ["FILTERS", "list_containers"]

FILTERS = frozenset(
    {
        "ancestor", "before", "exited", "expose", "health", "id", "is-task", "label", "name", "network",
        "publish", "since", "status", "volume",
    }
)  # fmt: skip
_STATES = ("created", "restarting", "running", "removing", "paused", "exited", "dead")
_HEALTH = ("starting", "healthy", "unhealthy", "none")


def _state(record: ContainerRecord) -> str:
    state = record.state
    return "paused" if state.paused else "restarting" if state.restarting else state.status


def _regex(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise InvalidParameter(f"error parsing regexp: {exc}: `{pattern}`") from None


def _network(record: ContainerRecord) -> str:
    mode = record.host_config.get("NetworkMode") or "default"
    return "bridge" if mode == "default" else mode


def _checks(containers: Containers, filters: dict[str, list[str]]) -> list[Callable[[ContainerRecord], bool]]:
    """One predicate per filter given; InvalidParameter for a bad value, with dockerd's message."""
    checks: list[Callable[[ContainerRecord], bool]] = []
    if ids := [_regex(v) for v in filters.get("id", [])]:
        checks.append(lambda r: any(p.search(r.id) for p in ids))
    if names := [_regex(v) for v in filters.get("name", [])]:
        checks.append(lambda r: any(p.search(f"/{r.name}") for p in names))
    if labels := filters.get("label", []):

        def labelled(record: ContainerRecord) -> bool:
            have = record.config.get("Labels") or {}
            for label in labels:
                key, sep, value = label.partition("=")
                if key not in have or (sep and have[key] != value):
                    return False
            return True

        checks.append(labelled)
    if states := filters.get("status", []):
        for value in states:
            if value not in _STATES:
                raise InvalidParameter(f"invalid filter 'status={value}'")
        checks.append(lambda r: _state(r) in states)
    if exited := filters.get("exited", []):
        try:
            codes = {int(v) for v in exited}
        except ValueError:
            raise InvalidParameter(f"invalid filter 'exited={exited[0]}'") from None
        checks.append(
            lambda r: (
                r.state.status == "exited"
                and r.state.started_at != "0001-01-01T00:00:00Z"
                and r.state.exit_code in codes
            )
        )
    if health := filters.get("health", []):
        for value in health:
            if value not in _HEALTH:
                raise InvalidParameter(f"invalid filter 'health={value}'")
        checks.append(lambda r: "none" in health)  # pyengine runs no health checks yet
    if tasks := filters.get("is-task", []):
        for value in tasks:
            if value not in ("true", "false", "1", "0"):
                raise InvalidParameter(f"invalid filter 'is-task={value}'")
        checks.append(lambda r: any(v in ("false", "0") for v in tasks))
    for key in ("publish", "expose"):
        if filters.get(key):
            checks.append(lambda r: False)  # pyengine publishes and exposes no port yet
    if networks := filters.get("network", []):
        checks.append(lambda r: _network(r) in networks)
    if volumes := filters.get("volume", []):

        def mounted(record: ContainerRecord) -> bool:
            points = record.mount_points()
            return any(
                p.get("Name") in volumes or p["Source"] in volumes or p["Destination"] in volumes
                for p in points
            )

        checks.append(mounted)
    if ancestors := filters.get("ancestor", []):
        checks.append(_ancestry(containers, ancestors))
    for value in filters.get("before", []):
        before = _named(containers, value).created
        checks.append(functools.partial(_created, before=before))
    for value in filters.get("since", []):
        since = _named(containers, value).created
        checks.append(functools.partial(_created, after=since))
    return checks


def _created(record: ContainerRecord, before: str | None = None, after: str | None = None) -> bool:
    return (before is None or record.created < before) and (after is None or record.created > after)


def _named(containers: Containers, name: str) -> ContainerRecord:
    try:
        return containers.get(name)
    except NotFound:
        raise NotFound(f"No such container: {name}") from None


def _ancestry(containers: Containers, ancestors: list[str]) -> Callable[[ContainerRecord], bool]:
    """Containers of an image given (by name, ID or name:tag), or of an image made on top of one
    (its layers start with all of the ancestor's)."""
    layers: list[tuple[str, ...]] = []
    for name in ancestors:
        try:
            summary, _ = containers.images.find(name)
        except (NotFound, InvalidParameter):
            continue  # dockerd lists nothing for an image it does not have
        layers.append(tuple(summary.config.rootfs.diff_ids))
    by_image: dict[str, tuple[str, ...]] = {}

    def descends(record: ContainerRecord) -> bool:
        if record.image_id not in by_image:
            try:
                summary, _ = containers.images.find(record.image_id)
                by_image[record.image_id] = tuple(summary.config.rootfs.diff_ids)
            except (NotFound, InvalidParameter):
                by_image[record.image_id] = ()
        mine = by_image[record.image_id]
        return any(mine[: len(theirs)] == theirs for theirs in layers)

    return descends


def list_containers(
    containers: Containers, query: dict[str, str], all_: bool, limit: int, with_size: bool
) -> list[dict[str, Any]]:
    """The summaries ``GET /containers/json`` answers."""
    filters = parse_filters(query.get("filters"), FILTERS)
    checks = _checks(containers, filters)
    # As dockerd: a limit, before, since or a status filter looks at stopped containers too.
    wide = all_ or limit > 0 or any(k in filters for k in ("before", "since", "status"))
    records = [r for r in containers.records(all=wide) if all(check(r) for check in checks)]
    if limit > 0:
        records = records[:limit]
    return [r.summary(containers.sizes(r) if with_size else None) for r in records]
