"""pyengine: the engine daemon of the stack, the layer that dockerd is in Docker.

It will hold ``pyengined``, a daemon that serves the Docker Engine API 1.44 on a unix socket
(containers, images, exec, logs, events) and carries each request out through :mod:`pycontainerd`.
For now the package is a placeholder that only carries its version and its dependency on
``pycontainerd``.
"""

from __future__ import annotations

__all__ = ["__version__"]


def __getattr__(name: str) -> str:
    # __version__ comes from the installed distribution's metadata, read on first use only.
    if name == "__version__":
        from importlib.metadata import version

        return version("pyengine")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
