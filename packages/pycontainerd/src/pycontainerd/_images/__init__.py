"""Images: manifests, indexes and configs, platform selection, and import/export of image archives.

    from pycontainerd._images import config_for, parse_platform
    from pycontainerd._images.archive import export, import_archive

    images = import_archive(store, open("busybox.tar", "rb"))     # [(name, descriptor)]
    config = config_for(store, images[0][1])                       # host platform by default
    config_for(store, desc, parse_platform("linux/arm64"))
    export(store, open("out.tar", "wb"), images)                   # OCI layout + docker-archive

Documents that do not parse raise :class:`~pycontainerd.InvalidArgumentError` naming the field
(``manifests[1].digest: ...``); a missing blob or platform raises :class:`~pycontainerd.NotFoundError`.

The face holds the documents (``types``), platforms (``platforms``), the walk from an image's
target to its manifest, config and layers (``walk``) and the checks of image names (``names``).
Archives (``archive``: tarfile and all) are imported by their path where an import or an export
uses them: running a container never needs them.
"""

from __future__ import annotations

from pycontainerd._images.names import check_base_name, image_name
from pycontainerd._images.platforms import (
    PlatformMatcher,
    format_platform,
    host_platform,
    normalize,
    parse_platform,
)
from pycontainerd._images.types import (
    DOCKER_CONFIG,
    DOCKER_LAYER,
    INDEX_MEDIA_TYPES,
    MANIFEST_ONLY_MEDIA_TYPES,
    MAX_CONFIG_SIZE,
    MAX_MANIFEST_SIZE,
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
from pycontainerd._images.walk import (
    Layer,
    check_depth,
    children,
    config_for,
    layers,
    manifest_descriptor_for,
    manifest_for,
    read_config,
    read_index,
    read_manifest,
)

__all__ = [
    "DOCKER_CONFIG",
    "DOCKER_LAYER",
    "INDEX_MEDIA_TYPES",
    "MANIFEST_ONLY_MEDIA_TYPES",
    "MAX_CONFIG_SIZE",
    "MAX_MANIFEST_SIZE",
    "OCI_CONFIG",
    "OCI_LAYER",
    "OCI_LAYER_GZIP",
    "OCI_LAYER_ZSTD",
    "ContainerConfig",
    "Healthcheck",
    "History",
    "ImageConfig",
    "Index",
    "Layer",
    "Manifest",
    "PlatformMatcher",
    "RootFS",
    "check_base_name",
    "check_depth",
    "children",
    "config_for",
    "format_platform",
    "host_platform",
    "image_name",
    "layers",
    "manifest_descriptor_for",
    "manifest_for",
    "normalize",
    "parse_platform",
    "read_config",
    "read_index",
    "read_manifest",
]
