"""pycli: the command line of the stack, the layer that the docker CLI is in Docker.

It will hold ``pydocker``, a thin Typer command line that speaks the Docker Engine API to
``pyengined`` over its unix socket (run, ps, images, pull, exec, logs, rm). For now the package is a
placeholder that only carries its version and its dependency on ``pyengine``.
"""

from __future__ import annotations

__all__ = ["__version__"]


def __getattr__(name: str) -> str:
    # __version__ comes from the installed distribution's metadata, read on first use only.
    if name == "__version__":
        from importlib.metadata import version

        return version("pycli")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
