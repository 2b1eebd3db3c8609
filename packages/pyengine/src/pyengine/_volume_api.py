"""The volume endpoints: ``GET /volumes``, ``POST /volumes/create``, ``GET`` and ``DELETE
/volumes/{name}``, ``POST /volumes/prune``; the work is :class:`pyengine._volumes.Volumes`'s."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from pyengine._errors import InvalidParameter
from pyengine._http import Route, blocking, flag, json_body, json_response, parse_filters
from pyengine._versions import API_VERSION, parse_version
from pyengine._volumes import Volumes

__all__ = ["add_routes"]


def _strings(body: dict[str, object], key: str) -> dict[str, str]:
    value = body.get(key) or {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise InvalidParameter(f"{key}: an object of strings, not {value!r}")
    return value


def add_routes(route: Route, volumes: Callable[[web.Request], Volumes]) -> None:
    """Route the volume endpoints through ``route(method, path, handler)``."""

    async def list_volumes(request: web.Request) -> web.Response:
        filters = parse_filters(request.query.get("filters"))
        found = await blocking(volumes(request).find, filters)
        return json_response({"Volumes": found, "Warnings": []})

    async def create(request: web.Request) -> web.Response:
        body = await json_body(request)
        name = body.get("Name") or ""
        driver = body.get("Driver") or ""
        if not isinstance(name, str) or not isinstance(driver, str):
            raise InvalidParameter("Name and Driver: strings")
        if body.get("ClusterVolumeSpec"):
            raise InvalidParameter("ClusterVolumeSpec: cluster volumes need a swarm, which pyengine has not")
        store = volumes(request)
        volume, _ = await blocking(
            lambda: store.create(
                name, driver=driver, options=_strings(body, "DriverOpts"), labels=_strings(body, "Labels")
            )
        )
        return json_response(volume.to_api(store.data(volume.name)), status=201)

    async def inspect(request: web.Request) -> web.Response:
        return json_response(await blocking(volumes(request).inspect, request.match_info["name"]))

    async def remove(request: web.Request) -> web.Response:
        store = volumes(request)
        force = flag(request, "force")
        await blocking(lambda: store.remove(request.match_info["name"], force=force))
        return web.Response(status=204)

    async def prune(request: web.Request) -> web.Response:
        filters = parse_filters(request.query.get("filters"))
        # Before API 1.42 a prune took every unused volume, named ones too: dockerd keeps that for
        # the clients of those versions (Debian's docker 20.10 among them).
        if parse_version(request.match_info.get("version") or API_VERSION) < (1, 42):
            filters.setdefault("all", ["true"])
        return json_response(await blocking(volumes(request).prune, filters))

    route("GET", "/volumes", list_volumes)
    route("POST", "/volumes/create", create)
    route("POST", "/volumes/prune", prune)
    route("GET", "/volumes/{name}", inspect)
    route("DELETE", "/volumes/{name}", remove)
