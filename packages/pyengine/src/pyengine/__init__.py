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

So far it answers the system endpoints (``/_ping``, ``/version``, ``/info``), the image ones
(list, inspect, tag, remove, load, save, pull) and the containers' life (create, start, attach,
wait, logs, list, inspect, stop, kill, remove), so that ``docker run --rm busybox echo hello``
works; networks, volumes, exec and interactive containers come next.
"""

from __future__ import annotations

__version__ = "0.1.0"

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyengine._config import DaemonConfig
    from pyengine._daemon import Daemon
    from pyengine._errors import ApiError, ConfigError, DaemonError
    from pyengine._versions import API_VERSION, MIN_API_VERSION

__all__ = [
    "API_VERSION",
    "MIN_API_VERSION",
    "ApiError",
    "ConfigError",
    "Daemon",
    "DaemonConfig",
    "DaemonError",
    "__version__",
]

#: Public name -> the module defining it, loaded on first use: the typed client to come sits on
#: pydocker's start-up path and must not pay for aiohttp.
_MODULES = {
    "API_VERSION": "pyengine._versions",
    "MIN_API_VERSION": "pyengine._versions",
    "ApiError": "pyengine._errors",
    "ConfigError": "pyengine._errors",
    "DaemonError": "pyengine._errors",
    "Daemon": "pyengine._daemon",
    "DaemonConfig": "pyengine._config",
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
