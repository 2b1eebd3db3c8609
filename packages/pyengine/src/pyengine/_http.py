"""What every endpoint module uses: the handler and route types, responses as dockerd writes them,
query flags, and blocking work run off the event loop."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web

from pyengine._errors import InvalidParameter

__all__ = ["Handler", "Route", "blocking", "flag", "json_body", "json_response", "parse_filters", "waiting"]

_T = TypeVar("_T")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
#: How an endpoint module registers its handlers: ``route(method, path, handler)``.
Route = Callable[[str, str, Handler], None]


def json_response(data: Any, status: int = 200) -> web.Response:
    """``data`` as JSON, typed exactly ``application/json``: the docker CLI reads an error's
    message only from a body of that type, and a charset parameter hides it."""
    return web.Response(body=json.dumps(data).encode(), status=status, content_type="application/json")


def flag(request: web.Request, name: str, default: bool = False) -> bool:
    """A boolean query parameter, as the clients spell them (``1``, ``true``, ``True``)."""
    value = request.query.get(name)
    if value is None:
        return default
    return value.lower() in ("1", "true", "yes")


async def blocking(function: Callable[..., _T], *args: Any) -> _T:
    """``function(*args)`` in the default executor: the store's calls block."""
    return await asyncio.get_running_loop().run_in_executor(None, function, *args)


async def json_body(request: web.Request, *, optional: bool = False) -> dict[str, Any]:
    """The request's body, a JSON object (``{}`` for none when ``optional``)."""
    if optional and not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except ValueError:
        raise InvalidParameter("the request body is not JSON") from None
    if not isinstance(body, dict):
        raise InvalidParameter("the request body is not a JSON object")
    return body


async def waiting(function: Callable[..., _T], *args: Any) -> _T:
    """``function(*args)`` in a thread of its own: for a wait as long as a container's life (its
    exit, a health probe), which would otherwise hold one of the executor's threads each, until a
    few running containers left none for the requests."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[_T] = loop.create_future()

    def settle(outcome: Callable[[Any], None], value: Any) -> None:
        if not future.done():  # the request may have been cancelled meanwhile
            outcome(value)

    def run() -> None:
        try:
            result = function(*args)
        except BaseException as exc:  # noqa: BLE001 -- handed to the event loop
            loop.call_soon_threadsafe(settle, future.set_exception, exc)
        else:
            loop.call_soon_threadsafe(settle, future.set_result, result)

    name = f"pyengine-wait {getattr(function, '__name__', '')}"
    threading.Thread(target=run, name=name, daemon=True).start()
    return await future


def parse_filters(text: str | None, allowed: frozenset[str] | None = None) -> dict[str, list[str]]:
    """The ``filters`` query parameter: each key (refused unless ``allowed``) and its values."""
    if not text:
        return {}
    try:
        raw = json.loads(text)
    except ValueError:
        raise InvalidParameter(f"filters: not JSON: {text!r}") from None
    if not isinstance(raw, dict):
        raise InvalidParameter("filters: not a JSON object")
    filters: dict[str, list[str]] = {}
    for key, value in raw.items():
        if allowed is not None and key not in allowed:
            raise InvalidParameter(f"invalid filter '{key}'")
        # Docker's clients send {"key": {"value": true}}; older ones {"key": ["value"]}.
        filters[key] = list(value) if isinstance(value, dict | list) else [str(value)]
    return filters
