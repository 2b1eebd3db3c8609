"""``pyengine.Client``: a typed, blocking client of the Engine API, for ``pydocker`` and scripts.

It speaks to pyengined (or any dockerd) over its unix socket with the standard library's
``http.client``, and returns attrs models (:mod:`pyengine.client._models`) instead of dicts. It is
on ``pydocker``'s start-up path, so importing it loads neither aiohttp nor asyncio, nor any of the
daemon's modules: only ``http.client``, ``json``, ``socket`` and attrs.

    from pyengine import Client, ContainerCreateConfig

    with Client() as client:  # -H, else DOCKER_HOST, else unix:///run/pyengine.sock
        container_id, _ = client.container_create(ContainerCreateConfig(image="busybox", cmd=["true"]))
        client.container_start(container_id)
        print(client.container_wait(container_id))  # 0
"""

from __future__ import annotations

from pyengine._errors import ApiError, Conflict, InvalidParameter, NotFound, Unauthorized
from pyengine.client._client import API_VERSION, Client
from pyengine.client._models import (
    AuthConfig,
    AuthResponse,
    ComponentVersion,
    ContainerConfig,
    ContainerCreateConfig,
    ContainerInspect,
    ContainerState,
    ContainerSummary,
    ContainerTop,
    EndpointSettings,
    Event,
    ExecInspect,
    Healthcheck,
    HostConfig,
    ImageConfig,
    ImageDeleteItem,
    ImageInspect,
    ImageSummary,
    LogConfig,
    Mount,
    MountPoint,
    NetworkSettings,
    Ping,
    Port,
    ProgressMessage,
    RestartPolicy,
    SystemInfo,
    Version,
)
from pyengine.client._transport import DEFAULT_HOST, DaemonUnreachable, Hijacked, ProgressError

__all__ = [
    "API_VERSION",
    "DEFAULT_HOST",
    "ApiError",
    "AuthConfig",
    "AuthResponse",
    "Client",
    "ComponentVersion",
    "Conflict",
    "ContainerConfig",
    "ContainerCreateConfig",
    "ContainerInspect",
    "ContainerState",
    "ContainerSummary",
    "ContainerTop",
    "DaemonUnreachable",
    "EndpointSettings",
    "Event",
    "ExecInspect",
    "Healthcheck",
    "Hijacked",
    "HostConfig",
    "ImageConfig",
    "ImageDeleteItem",
    "ImageInspect",
    "ImageSummary",
    "InvalidParameter",
    "LogConfig",
    "Mount",
    "MountPoint",
    "NetworkSettings",
    "NotFound",
    "Ping",
    "Port",
    "ProgressError",
    "ProgressMessage",
    "RestartPolicy",
    "SystemInfo",
    "Unauthorized",
    "Version",
]
