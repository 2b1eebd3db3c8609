"""Walking an image through the content store: from its target descriptor to manifest, config, layers.

Modelled on containerd's ``images.Manifest``, ``images.Config``, ``images.Children``: an index is
resolved to the manifest that best matches the platform (default: the host's); a manifest reached
through an index entry without a platform is checked against its config's os and architecture.
"""

from __future__ import annotations

from pycontainerd._errors import InvalidArgumentError, NotFoundError
from pycontainerd._images.platforms import PlatformMatcher, format_platform, host_platform
from pycontainerd._images.types import (
    INDEX_MEDIA_TYPES,
    MANIFEST_ONLY_MEDIA_TYPES,
    MAX_CONFIG_SIZE,
    MAX_MANIFEST_SIZE,
    ImageConfig,
    Index,
    Manifest,
)
from pycontainerd._record import Record
from pycontainerd._remotes import Descriptor, Platform

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Final

    from pycontainerd._content.protocol import Provider

__all__ = [
    "MAX_INDEX_DEPTH",
    "Layer",
    "check_depth",
    "children",
    "config_for",
    "layers",
    "manifest_descriptor_for",
    "manifest_for",
    "read_config",
    "read_index",
    "read_manifest",
]

#: How many indexes deep a manifest may be below an image's target (an index of indexes of ...):
#: images have one index at most; every walk of an image refuses more, so none recurses without end.
MAX_INDEX_DEPTH = 8


class Layer(Record):
    """A layer of an image: its blob's descriptor and the digest of its uncompressed tar (diff ID)."""

    __slots__ = ("descriptor", "diff_id")

    def __init__(self, descriptor: Descriptor, diff_id: str) -> None:
        self.descriptor: Final = descriptor
        self.diff_id: Final = diff_id


def _matcher(platform: Platform | PlatformMatcher | None) -> PlatformMatcher:
    if isinstance(platform, PlatformMatcher):
        return platform
    return PlatformMatcher(platform if platform is not None else host_platform())


def check_depth(desc: Descriptor, depth: int) -> None:
    """InvalidArgumentError if ``desc``, reached through ``depth`` manifests and indexes, is too deep."""
    if depth > MAX_INDEX_DEPTH:
        raise InvalidArgumentError(f"{desc.digest}: indexes nested more than {MAX_INDEX_DEPTH} deep")


def _read(store: Provider, desc: Descriptor, what: str, limit: int) -> bytes:
    """The blob ``desc`` names, read whole when it is no larger than ``limit``."""
    if desc.size > limit:
        raise InvalidArgumentError(f"{what} {desc.digest}: {desc.size} bytes, more than the {limit} accepted")
    with store.reader(desc.digest) as blob:
        data = blob.read(limit + 1)
    if len(data) != desc.size:
        raise InvalidArgumentError(
            f"{what} {desc.digest}: the descriptor says {desc.size} bytes, the blob has {len(data)}"
        )
    return data


def read_index(store: Provider, desc: Descriptor) -> Index:
    """The index ``desc`` names, parsed; errors name the blob and the field."""
    data = _read(store, desc, "index", MAX_MANIFEST_SIZE)
    try:
        return Index.parse(data, desc.media_type)
    except InvalidArgumentError as exc:
        raise InvalidArgumentError(f"index {desc.digest}: {exc}") from None


def read_manifest(store: Provider, desc: Descriptor) -> Manifest:
    """The manifest ``desc`` names, parsed; errors name the blob and the field."""
    data = _read(store, desc, "manifest", MAX_MANIFEST_SIZE)
    try:
        return Manifest.parse(data, desc.media_type)
    except InvalidArgumentError as exc:
        raise InvalidArgumentError(f"manifest {desc.digest}: {exc}") from None


def read_config(store: Provider, desc: Descriptor) -> ImageConfig:
    """The image config ``desc`` names, parsed; errors name the blob and the field."""
    data = _read(store, desc, "image config", MAX_CONFIG_SIZE)
    try:
        return ImageConfig.parse(data)
    except InvalidArgumentError as exc:
        raise InvalidArgumentError(f"image config {desc.digest}: {exc}") from None


def manifest_descriptor_for(
    store: Provider, desc: Descriptor, platform: Platform | PlatformMatcher | None = None
) -> tuple[Descriptor, Manifest]:
    """The descriptor and manifest of the image ``desc`` for ``platform`` (default: the host's).

    NotFoundError if an index has no entry for the platform, or a blob is missing from the store.
    """
    matcher = _matcher(platform)
    found = _resolve(store, desc, matcher, 0, top=True)
    if found is None:
        raise NotFoundError(f"{desc.digest}: no manifest for platform {format_platform(matcher.target)}")
    return found


def manifest_for(
    store: Provider, desc: Descriptor, platform: Platform | PlatformMatcher | None = None
) -> Manifest:
    """The manifest of the image ``desc`` for ``platform`` (default: the host's)."""
    return manifest_descriptor_for(store, desc, platform)[1]


def _resolve(
    store: Provider, desc: Descriptor, matcher: PlatformMatcher, depth: int, *, top: bool
) -> tuple[Descriptor, Manifest] | None:
    check_depth(desc, depth)
    if desc.media_type in MANIFEST_ONLY_MEDIA_TYPES:
        manifest = read_manifest(store, desc)
        if not top:
            if desc.platform is not None:
                if not matcher.match(desc.platform):
                    return None
            elif not matcher.match(read_config(store, manifest.config).platform):
                return None
        return desc, manifest
    if desc.media_type in INDEX_MEDIA_TYPES:
        index = read_index(store, desc)
        candidates = []
        for order, child in enumerate(index.manifests):
            if child.platform is None:
                rank = 0 if child.media_type in INDEX_MEDIA_TYPES else len(index.manifests)
            else:
                found_rank = matcher.rank(child.platform)
                if found_rank is None:
                    continue
                rank = found_rank
            candidates.append((rank, order, child))
        for _rank, _order, child in sorted(candidates, key=lambda c: (c[0], c[1])):
            found = _resolve(store, child, matcher, depth + 1, top=False)
            if found is not None:
                return found
        return None
    raise InvalidArgumentError(f"{desc.digest}: {desc.media_type!r} is neither a manifest nor an index")


def config_for(
    store: Provider, desc: Descriptor, platform: Platform | PlatformMatcher | None = None
) -> ImageConfig:
    """The image config of the image ``desc`` for ``platform`` (default: the host's)."""
    return read_config(store, manifest_for(store, desc, platform).config)


def layers(
    store: Provider, desc: Descriptor, platform: Platform | PlatformMatcher | None = None
) -> list[Layer]:
    """The layers of the image ``desc`` for ``platform``, bottom first, each with its diff ID."""
    manifest = manifest_for(store, desc, platform)
    config = read_config(store, manifest.config)
    diff_ids = config.rootfs.diff_ids
    if len(diff_ids) != len(manifest.layers):
        raise InvalidArgumentError(
            f"{desc.digest}: manifest has {len(manifest.layers)} layers, "
            f"config lists {len(diff_ids)} diff_ids"
        )
    return [Layer(layer, diff_id) for layer, diff_id in zip(manifest.layers, diff_ids, strict=True)]


def children(store: Provider, desc: Descriptor) -> list[Descriptor]:
    """What ``desc`` refers to directly: an index's manifests, a manifest's config then layers.

    Anything else (configs, layers, unknown types) has no children. Used by the garbage collector
    and by push and export to walk everything an image holds.
    """
    if desc.media_type in MANIFEST_ONLY_MEDIA_TYPES:
        manifest = read_manifest(store, desc)
        return [manifest.config, *manifest.layers]
    if desc.media_type in INDEX_MEDIA_TYPES:
        return list(read_index(store, desc).manifests)
    return []
