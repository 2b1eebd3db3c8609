"""pycontainerd: the container supervisor of the stack, the layer that containerd is in Docker.

It will hold a content-addressed store for blobs, image handling (manifests, configs, unpacking
layers), snapshotters that lay out root filesystems, a registry client, and the container and task
services that create OCI bundles and drive them through :mod:`pyrunc`, with a shim per container.
Its command line will be ``pyctr``. For now the package is a placeholder that only carries its
version and its dependency on ``pyrunc``.
"""

from __future__ import annotations

__all__ = ["__version__"]


def __getattr__(name: str) -> str:
    # __version__ comes from the installed distribution's metadata, read on first use only.
    if name == "__version__":
        from importlib.metadata import version

        return version("pycontainerd")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
