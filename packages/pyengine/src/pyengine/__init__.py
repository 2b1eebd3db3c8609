"""pyengine: the engine daemon of the stack, the layer that dockerd is in Docker.

``pyengined`` serves the Docker Engine API (1.44, down to 1.24) on a unix socket and carries each
request out through :mod:`pycontainerd`, which it embeds (a ``pycontainerd.Client`` on a root inside
the engine's data root; no second daemon). It can run from Python too:

    from pyengine import Daemon, DaemonConfig

    config = DaemonConfig(
        hosts=["unix:///tmp/engine.sock"], data_root="/tmp/engine", exec_root="/tmp/engine-run"
    )
    with Daemon(config):
        ...  # docker -H unix:///tmp/engine.sock version

``pyengine.Client`` is the API's typed Python client, what ``pydocker`` uses; its models (the
request and answer types) are in :mod:`pyengine.client`. Importing it loads nothing of the daemon
(no aiohttp, no asyncio).

It answers the system, image, container and exec endpoints the docker CLI and docker-py use
(the package's README lists them); the bridge network, volumes and the builder come next.
"""

from __future__ import annotations

__version__ = "0.1.0"

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyengine._config import DaemonConfig
    from pyengine._daemon import Daemon
    from pyengine._errors import (
        ApiError,
        ConfigError,
        Conflict,
        DaemonError,
        InvalidParameter,
        NotFound,
        Unauthorized,
    )
    from pyengine._versions import API_VERSION, MIN_API_VERSION
    from pyengine.client import Client, DaemonUnreachable, ProgressError

__all__ = [
    "API_VERSION",
    "MIN_API_VERSION",
    "ApiError",
    "Client",
    "ConfigError",
    "Conflict",
    "Daemon",
    "DaemonConfig",
    "DaemonError",
    "DaemonUnreachable",
    "InvalidParameter",
    "NotFound",
    "ProgressError",
    "Unauthorized",
    "__version__",
]

#: Public name -> the module defining it, loaded on first use: the client (``pyengine.client``)
#: sits on pydocker's start-up path and must not pay for the daemon's aiohttp.
_MODULES = {
    "API_VERSION": "pyengine._versions",
    "MIN_API_VERSION": "pyengine._versions",
    **dict.fromkeys(
        [
            "ApiError",
            "ConfigError",
            "Conflict",
            "DaemonError",
            "InvalidParameter",
            "NotFound",
            "Unauthorized",
        ],
        "pyengine._errors",
    ),
    "Daemon": "pyengine._daemon",
    "DaemonConfig": "pyengine._config",
    **dict.fromkeys(["Client", "DaemonUnreachable", "ProgressError"], "pyengine.client"),
}


def __getattr__(name: str) -> object:
    import importlib

    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module 'pyengine' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
