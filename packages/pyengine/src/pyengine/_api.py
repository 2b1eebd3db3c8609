"""The HTTP side: the aiohttp application, its routes under ``/vX.Y/`` and unversioned, and the
middleware that checks the version, logs each request and turns errors into ``{"message": …}``."""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING

from aiohttp import web

import pyengine
from pyengine._archive import add_routes as add_archive_routes
from pyengine._attach_ws import add_routes as add_websocket_routes
from pyengine._container_api import add_routes as add_container_routes
from pyengine._errors import ApiError, InvalidParameter
from pyengine._events import add_routes as add_event_routes
from pyengine._exec_api import add_routes as add_exec_routes
from pyengine._http import Handler, blocking, json_response
from pyengine._images import add_routes as add_image_routes
from pyengine._images import auth_config
from pyengine._network_api import add_routes as add_network_routes
from pyengine._system import (
    PING_HEADERS,
    SystemInfo,
    VersionInfo,
    disk_usage,
    prune_containers,
)
from pyengine._versions import check_version
from pyengine._volume_api import add_routes as add_volume_routes

if TYPE_CHECKING:
    from pyengine._daemon import Engine

__all__ = ["ENGINE", "make_app"]

log = logging.getLogger("pyengine.api")

ENGINE: web.AppKey[Engine] = web.AppKey("engine")
_SERVER = f"pyengine/{pyengine.__version__} (linux)"


def _error(status: int, message: str) -> web.Response:
    return json_response({"message": message}, status=status)


@web.middleware
async def _middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        version = request.match_info.get("version")
        if version is not None:
            check_version(version)
        response = await handler(request)
    except ApiError as exc:
        response = _error(exc.status, exc.message)
    except web.HTTPNotFound:
        response = _error(404, "page not found")
    except web.HTTPMethodNotAllowed:
        response = _error(405, f"method {request.method} not allowed for {request.path}")
    except web.HTTPException as exc:
        response = _error(exc.status, exc.reason)
    except Exception:
        log.exception("request failed: %s %s", request.method, request.path)
        response = _error(
            500, f"internal error handling {request.method} {request.path} (see the daemon's log)"
        )
    response.headers.setdefault("Server", _SERVER)
    log.debug("%s %s -> %d", request.method, request.path_qs, response.status)
    return response


async def _ping(request: web.Request) -> web.Response:
    body = b"" if request.method == "HEAD" else b"OK"
    return web.Response(body=body, content_type="text/plain", charset="utf-8", headers=PING_HEADERS)


async def _version(request: web.Request) -> web.Response:
    return json_response(VersionInfo().to_api())


async def _info(request: web.Request) -> web.Response:
    engine = request.app[ENGINE]
    counts = await blocking(engine.counts)
    info = SystemInfo(
        id=engine.id,
        counts=counts,
        data_root=str(engine.config.data_root),
        snapshotter=engine.snapshotter,
        live_restore=engine.config.live_restore,
        insecure_registries=engine.config.insecure_registries,
        registry_mirrors=engine.config.registry_mirrors,
        warnings=tuple(engine.config.api_warnings),
    )
    return json_response(info.to_api())


async def _disk_usage(request: web.Request) -> web.Response:
    engine = request.app[ENGINE]
    types = request.query.getall("type", [])
    usage = await blocking(disk_usage, engine.store, engine.images, engine.supervisor.containers, types)
    return json_response(usage)


async def _prune_containers(request: web.Request) -> web.Response:
    from pyengine._http import parse_filters

    filters = parse_filters(request.query.get("filters"))
    return json_response(await prune_containers(request.app[ENGINE].supervisor, filters))


async def _auth(request: web.Request) -> web.Response:
    """``POST /auth``: check the credentials against the registry, as ``docker login`` asks."""
    try:
        body = await request.json()
    except ValueError:
        raise InvalidParameter("the request body is not JSON") from None
    server, credentials = auth_config(body)
    await blocking(request.app[ENGINE].images.login, server, credentials)
    return json_response({"Status": "Login Succeeded", "IdentityToken": ""})


def _add(app: web.Application, method: str, path: str, handler: Handler) -> None:
    """Route ``path`` and ``/v{version}{path}``, as dockerd serves both."""
    app.router.add_route(method, path, handler)
    app.router.add_route(method, "/{version:v[^/]+}" + path, handler)


def make_app(engine: Engine) -> web.Application:
    app = web.Application(middlewares=[_middleware])
    app[ENGINE] = engine
    route = functools.partial(_add, app)
    route("GET", "/_ping", _ping)
    route("HEAD", "/_ping", _ping)
    route("GET", "/version", _version)
    route("GET", "/info", _info)
    route("GET", "/system/df", _disk_usage)
    route("POST", "/containers/prune", _prune_containers)
    route("POST", "/auth", _auth)
    add_event_routes(route, lambda r: r.app[ENGINE].events)
    add_image_routes(route, lambda r: r.app[ENGINE].images)
    add_container_routes(route, lambda r: r.app[ENGINE].supervisor)
    add_exec_routes(route, lambda r: r.app[ENGINE].supervisor)
    add_archive_routes(route, lambda r: r.app[ENGINE].supervisor.containers)
    add_websocket_routes(route, lambda r: r.app[ENGINE].supervisor)
    add_network_routes(route, lambda r: r.app[ENGINE].networks)
    add_volume_routes(route, lambda r: r.app[ENGINE].supervisor.containers.volumes)
    return app
