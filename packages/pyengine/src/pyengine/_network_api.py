"""The ``/networks`` routes: list, inspect, create, remove, prune, and connecting containers."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import attrs
from aiohttp import web

from pyengine._containers import ContainerRecord, Containers
from pyengine._errors import InvalidParameter
from pyengine._events import EventBus
from pyengine._http import Route, blocking, json_body, json_response, parse_filters
from pyengine._network.endpoints import Networking
from pyengine._network.networks import NetworkRecord

__all__ = ["NetworkService", "add_routes"]


@attrs.define
class NetworkService:
    """What the routes work on: the networks through the containers that use them."""

    containers: Containers
    networking: Networking
    events: EventBus

    def view(self, record: NetworkRecord) -> dict[str, Any]:
        """``GET /networks/{id}``: the network with its running containers' endpoints."""
        attached: dict[str, dict[str, str]] = {}
        for container in self.containers.records():
            settings = next((s for s in container.networks.values() if s.get("NetworkID") == record.id), None)
            if settings is None or not settings.get("EndpointID"):
                continue
            attached[container.id] = {
                "Name": container.name,
                "EndpointID": settings["EndpointID"],
                "MacAddress": settings["MacAddress"],
                "IPv4Address": f"{settings['IPAddress']}/{settings['IPPrefixLen']}"
                if settings["IPAddress"]
                else "",
                "IPv6Address": (
                    f"{settings['GlobalIPv6Address']}/{settings['GlobalIPv6PrefixLen']}"
                    if settings["GlobalIPv6Address"]
                    else ""
                ),
            }
        return record.to_api(attached)

    def create(self, body: dict[str, Any]) -> NetworkRecord:
        record = self.networking.networks.create(body)
        self._event(record, "create")
        return record

    def remove(self, name: str) -> None:
        self._event(self.networking.networks.remove(name), "destroy")

    def prune(self, filters: dict[str, list[str]]) -> list[str]:
        removed = self.networking.networks.prune(filters)
        for record in removed:
            self._event(record, "destroy")
        return [r.name for r in removed]

    def connect(self, network_name: str, body: dict[str, Any]) -> None:
        network = self.networking.networks.get(network_name)
        container = self._container(body)
        settings = body.get("EndpointConfig") or {}
        if not isinstance(settings, dict):
            raise InvalidParameter("EndpointConfig: an object")
        self.containers.change_networks(
            container, functools.partial(self.networking.connect, network=network, settings=settings)
        )
        self._event(network, "connect", container=container.id)

    def disconnect(self, network_name: str, body: dict[str, Any]) -> None:
        network = self.networking.networks.get(network_name)
        container = self._container(body)
        self.containers.change_networks(
            container, functools.partial(self.networking.disconnect, network=network)
        )
        self._event(network, "disconnect", container=container.id)

    def _container(self, body: dict[str, Any]) -> ContainerRecord:
        name = body.get("Container")
        if not isinstance(name, str) or not name:
            raise InvalidParameter("Container: the container's name or id is required")
        return self.containers.get(name)

    def _event(self, record: NetworkRecord, action: str, **attributes: str) -> None:
        self.events.publish(
            "network", action, record.id, {"name": record.name, "type": record.driver, **attributes}
        )


def add_routes(route: Route, service: Callable[[web.Request], NetworkService]) -> None:
    async def list_networks(request: web.Request) -> web.Response:
        filters = parse_filters(request.query.get("filters"))
        networks = service(request)
        found = await blocking(networks.networking.networks.matching, filters)
        return json_response([networks.view(r) for r in found])

    async def inspect(request: web.Request) -> web.Response:
        networks = service(request)
        record = await blocking(networks.networking.networks.get, request.match_info["id"])
        return json_response(networks.view(record))

    async def create(request: web.Request) -> web.Response:
        body = await json_body(request)
        record = await blocking(service(request).create, body)
        return json_response({"Id": record.id, "Warning": ""}, status=201)

    async def remove(request: web.Request) -> web.Response:
        await blocking(service(request).remove, request.match_info["id"])
        return web.Response(status=204)

    async def prune(request: web.Request) -> web.Response:
        removed = await blocking(service(request).prune, parse_filters(request.query.get("filters")))
        return json_response({"NetworksDeleted": removed})

    async def connect(request: web.Request) -> web.Response:
        body = await json_body(request)
        await blocking(service(request).connect, request.match_info["id"], body)
        return web.Response(status=200)

    async def disconnect(request: web.Request) -> web.Response:
        body = await json_body(request)
        if "Force" in body and not isinstance(body["Force"], bool):
            raise InvalidParameter("Force: true or false")
        await blocking(service(request).disconnect, request.match_info["id"], body)
        return web.Response(status=200)

    route("GET", "/networks", list_networks)
    route("GET", "/networks/{id}", inspect)
    route("POST", "/networks/create", create)
    route("DELETE", "/networks/{id}", remove)
    route("POST", "/networks/prune", prune)
    route("POST", "/networks/{id}/connect", connect)
    route("POST", "/networks/{id}/disconnect", disconnect)
