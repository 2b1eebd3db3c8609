"""pycli: the command line of the stack, the layer that the docker CLI is in Docker.

It will hold ``pydocker``, a thin Typer command line that speaks the Docker Engine API to
``pyengined`` over its unix socket (run, ps, images, pull, exec, logs, rm). For now the package is a
placeholder that only carries its version and its dependency on ``pyengine``.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
