"""Images: manifests, indexes and configs, platform selection, and import/export of image archives.

    from pycontainerd._images import config_for, export, import_archive, parse_platform

    images = import_archive(store, open("busybox.tar", "rb"))     # [(name, descriptor)]
    config = config_for(store, images[0][1])                       # host platform by default
    config_for(store, desc, parse_platform("linux/arm64"))
    export(store, open("out.tar", "wb"), images)                   # OCI layout + docker-archive

Documents that do not parse raise :class:`~pycontainerd.InvalidArgumentError` naming the field
(``manifests[1].digest: ...``); a missing blob or platform raises :class:`~pycontainerd.NotFoundError`.
"""

from __future__ import annotations

from pycontainerd._images._platforms import (
    PlatformMatcher,
    format_platform,
    host_platform,
    normalize,
    parse_platform,
)
from pycontainerd._images._types import (
    DOCKER_CONFIG,
    DOCKER_LAYER,
    OCI_CONFIG,
    OCI_LAYER,
    OCI_LAYER_GZIP,
    OCI_LAYER_ZSTD,
    ContainerConfig,
    Healthcheck,
    History,
    ImageConfig,
    Index,
    Manifest,
    RootFS,
)
from pycontainerd._images._walk import (
    Layer,
    children,
    config_for,
    layers,
    manifest_descriptor_for,
    manifest_for,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pycontainerd._images._archive import (
        IMAGE_NAME_ANNOTATION,
        REF_NAME_ANNOTATION,
        export,
        import_archive,
    )

__all__ = [
    "DOCKER_CONFIG",
    "DOCKER_LAYER",
    "IMAGE_NAME_ANNOTATION",
    "OCI_CONFIG",
    "OCI_LAYER",
    "OCI_LAYER_GZIP",
    "OCI_LAYER_ZSTD",
    "REF_NAME_ANNOTATION",
    "ContainerConfig",
    "Healthcheck",
    "History",
    "ImageConfig",
    "Index",
    "Layer",
    "Manifest",
    "PlatformMatcher",
    "RootFS",
    "children",
    "config_for",
    "export",
    "format_platform",
    "host_platform",
    "import_archive",
    "layers",
    "manifest_descriptor_for",
    "manifest_for",
    "normalize",
    "parse_platform",
]


_ARCHIVE = {"IMAGE_NAME_ANNOTATION", "REF_NAME_ANNOTATION", "export", "import_archive"}


def __getattr__(name: str) -> object:
    # Archives (tarfile and all) load on first use: running a container never needs them.
    if name in _ARCHIVE:
        from pycontainerd._images import _archive

        return getattr(_archive, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
