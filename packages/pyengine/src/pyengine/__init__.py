"""pyengine: the engine daemon of the stack, the layer that dockerd is in Docker.

It will hold ``pyengined``, a daemon that serves the Docker Engine API 1.44 on a unix socket
(containers, images, exec, logs, events) and carries each request out through :mod:`pycontainerd`.
For now the package is a placeholder that only carries its version and its dependency on
``pycontainerd``.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
