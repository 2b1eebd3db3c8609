"""``pyengine.Client``: a typed, blocking client of the Engine API, for ``pydocker`` and scripts.

It speaks to pyengined (or any dockerd) over its unix socket with the standard library's
``http.client``, and returns attrs models instead of dicts (how they read the API's JSON:
:mod:`pyengine.client._fields`). It is on ``pydocker``'s start-up path, so importing it loads
neither aiohttp nor asyncio, nor any of the daemon's modules: only ``http.client``, ``json`` and
``socket``; attrs and each group of models (system, images, containers) load with the first
method that returns one.

    from pyengine.client import Client, ContainerCreateConfig

    with Client() as client:  # host=…, else DOCKER_HOST, else unix:///run/pyengine.sock
        container_id, _ = client.container_create(ContainerCreateConfig(image="busybox", cmd=["true"]))
        client.container_start(container_id)
        print(client.container_wait(container_id))  # 0
"""

from __future__ import annotations

from pyengine._errors import ApiError, Conflict, InvalidParameter, NotFound, Unauthorized
from pyengine.client._client import API_VERSION, Client
from pyengine.client._transport import DEFAULT_HOST, DaemonUnreachable, Hijacked, ProgressError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyengine.client._container_models import (
        ContainerConfig,
        ContainerInspect,
        ContainerState,
        ContainerSummary,
        ContainerTop,
        EndpointSettings,
        ExecInspect,
        MountPoint,
        NetworkSettings,
        Port,
    )
    from pyengine.client._create_models import (
        ContainerCreateConfig,
        Healthcheck,
        HostConfig,
        LogConfig,
        Mount,
        RestartPolicy,
    )
    from pyengine.client._image_models import (
        ImageConfig,
        ImageDeleteItem,
        ImageInspect,
        ImageSummary,
        ProgressMessage,
    )
    from pyengine.client._system_models import (
        AuthConfig,
        AuthResponse,
        ComponentVersion,
        Event,
        Ping,
        SystemInfo,
        Version,
    )

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

#: Model -> its module, imported on first use: each module's attrs classes cost their build (about
#: a tenth of a millisecond each), which a command pays only for the models it uses.
_MODELS = {
    **dict.fromkeys(
        ["ContainerConfig", "ContainerInspect", "ContainerState", "ContainerSummary", "ContainerTop",
         "EndpointSettings", "ExecInspect", "MountPoint", "NetworkSettings", "Port"],
        "pyengine.client._container_models",
    ),
    **dict.fromkeys(
        ["ContainerCreateConfig", "Healthcheck", "HostConfig", "LogConfig", "Mount", "RestartPolicy"],
        "pyengine.client._create_models",
    ),
    **dict.fromkeys(
        ["ImageConfig", "ImageDeleteItem", "ImageInspect", "ImageSummary", "ProgressMessage"],
        "pyengine.client._image_models",
    ),
    **dict.fromkeys(
        ["AuthConfig", "AuthResponse", "ComponentVersion", "Event", "Ping", "SystemInfo", "Version"],
        "pyengine.client._system_models",
    ),
}  # fmt: skip


def __getattr__(name: str) -> object:
    import importlib

    module = _MODELS.get(name)
    if module is None:
        raise AttributeError(f"module 'pyengine.client' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
