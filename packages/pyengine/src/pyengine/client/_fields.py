"""What the client's models share: the Engine API's request and response models, as the client
reads and writes them, and the helpers that read the API's JSON into them.

Each response model is a frozen attrs class made by ``from_api(dict)`` from the daemon's JSON:
fields it does not know are ignored (a newer daemon adds some), and a field the answer leaves
out, or sends as ``null``, takes its default (an older daemon, or pyengined, omits some), so a
model never fails on a well-formed answer. Names are the API's in snake case (``RepoTags`` ->
``repo_tags``); lists become tuples, objects stay mappings.

The request side (:class:`ContainerCreateConfig` and its :class:`HostConfig`) goes the other way,
with ``to_api()``; a field left at None is not sent, so the daemon applies its own default, as it
does for the docker CLI.

Only the fields a CLI shows or acts on are modelled; ``raw`` keeps each answer whole for the rest.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

__all__ = ["Json", "mapping", "obj", "optional_strings", "raw", "strings"]

Json = Mapping[str, Any]


def strings(value: Iterable[str] | None) -> tuple[str, ...]:
    return tuple(value or ())


def optional_strings(value: Iterable[str] | None) -> tuple[str, ...] | None:
    return None if value is None else tuple(value)


def mapping(value: Mapping[str, str] | None) -> Mapping[str, str]:
    return dict(value or {})


def obj(data: Json, key: str) -> Json:
    """``data[key]`` when it is an object, else an empty one (absent or null)."""
    value = data.get(key)
    return value if isinstance(value, Mapping) else {}


def raw() -> Any:
    """The whole answer, kept for what is not modelled; not compared, not shown."""
    return attrs.field(factory=dict, eq=False, repr=False)
