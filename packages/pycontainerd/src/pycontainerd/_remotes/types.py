"""The values the registry client hands around: descriptors, platforms, credentials, progress events."""

from __future__ import annotations

import enum
import re

from pycontainerd._record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any, Final

__all__ = [
    "DOCKER_MANIFEST",
    "DOCKER_MANIFEST_LIST",
    "MANIFEST_MEDIA_TYPES",
    "OCI_INDEX",
    "OCI_MANIFEST",
    "Credentials",
    "Descriptor",
    "Platform",
    "Progress",
    "ProgressState",
    "check_digest",
]

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
#: What a manifest GET accepts, most wanted first (containerd sends the same four).
MANIFEST_MEDIA_TYPES = (OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST)

_HEX_LENGTH = {"sha256": 64, "sha384": 96, "sha512": 128}
_DIGEST = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")


def check_digest(digest: str) -> str:
    """``digest`` if it is ``ALGORITHM:HEX`` with a known algorithm and the right length, else ValueError."""
    if not _DIGEST.fullmatch(digest):
        raise ValueError(f"invalid digest {digest!r}: expected ALGORITHM:ENCODED")
    algorithm, _, encoded = digest.partition(":")
    length = _HEX_LENGTH.get(algorithm)
    if length is None:
        raise ValueError(f"invalid digest {digest!r}: unsupported algorithm {algorithm!r}")
    if len(encoded) != length or not re.fullmatch(r"[0-9a-f]+", encoded):
        raise ValueError(f"invalid digest {digest!r}: {algorithm} needs {length} lowercase hex digits")
    return digest


class Platform(Record):
    """The platform an image runs on, as an index entry names it."""

    __slots__ = ("os", "architecture", "variant", "os_version", "os_features")

    def __init__(
        self,
        os: str,
        architecture: str,
        variant: str | None = None,
        os_version: str | None = None,
        os_features: tuple[str, ...] = (),
    ) -> None:
        self.os: Final = os
        self.architecture: Final = architecture
        self.variant: Final = variant
        self.os_version: Final = os_version
        self.os_features: Final = os_features

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Platform:
        return cls(
            os=str(raw["os"]),
            architecture=str(raw["architecture"]),
            variant=raw.get("variant"),
            os_version=raw.get("os.version"),
            os_features=tuple(raw.get("os.features") or ()),
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            out["variant"] = self.variant
        if self.os_version:
            out["os.version"] = self.os_version
        if self.os_features:
            out["os.features"] = list(self.os_features)
        return out


class Descriptor(Record):
    """What to fetch or push: an OCI content descriptor (media type, digest, size, and the optional rest).

    The annotations (a dict copy of the mapping given) take no part in equality and hashing.
    """

    __slots__ = ("media_type", "digest", "size", "annotations", "platform", "urls")
    _compared = ("media_type", "digest", "size", "platform", "urls")

    def __init__(
        self,
        media_type: str,
        digest: str,
        size: int,
        annotations: Mapping[str, str] | None = None,
        platform: Platform | None = None,
        urls: tuple[str, ...] = (),
    ) -> None:
        check_digest(digest)
        if size < 0:
            raise ValueError(f"'size' must be >= 0: {size}")
        self.media_type: Final = media_type
        self.digest: Final = digest
        self.size: Final = size
        self.annotations: Final[Mapping[str, str]] = {} if annotations is None else dict(annotations)
        self.platform: Final = platform
        self.urls: Final = urls

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Descriptor:
        """A descriptor as a manifest or index carries it (``mediaType``, ``digest``, ``size``...)."""
        try:
            return cls(
                media_type=str(raw["mediaType"]),
                digest=str(raw["digest"]),
                size=int(raw["size"]),
                annotations=dict(raw.get("annotations") or {}),
                platform=Platform.from_json(raw["platform"]) if raw.get("platform") else None,
                urls=tuple(raw.get("urls") or ()),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"invalid descriptor {dict(raw)!r}: {exc}") from exc

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.platform is not None:
            out["platform"] = self.platform.to_json()
        if self.urls:
            out["urls"] = list(self.urls)
        return out

    @property
    def is_manifest(self) -> bool:
        """True for an image manifest or index (fetched from ``/manifests/``, not ``/blobs/``)."""
        return self.media_type in MANIFEST_MEDIA_TYPES


class Credentials(Record):
    """A user name and password (or identity token) for one registry; the password never shows in repr."""

    __slots__ = ("username", "password")

    def __init__(self, username: str, password: str) -> None:
        self.username: Final = username
        self.password: Final = password

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, password=***)"


class ProgressState(enum.Enum):
    """Where one blob's transfer is."""

    DOWNLOADING = "downloading"
    UPLOADING = "uploading"
    EXISTS = "exists"  # the registry had the blob: nothing sent
    MOUNTED = "mounted"  # mounted from another repository of the same registry: nothing sent
    DONE = "done"  # every byte sent or received, and verified


class Progress(Record):
    """One progress event: ``done`` of ``total`` bytes of the blob ``digest``, of ``media_type`` (a
    layer's, a manifest's, a config's: an engine shows the layers only)."""

    __slots__ = ("digest", "done", "total", "state", "media_type")

    def __init__(
        self, digest: str, done: int, total: int, state: ProgressState, media_type: str = ""
    ) -> None:
        self.digest: Final = digest
        self.done: Final = done
        self.total: Final = total
        self.state: Final = state
        self.media_type: Final = media_type
