"""The values the registry client hands around: descriptors, platforms, credentials, progress events."""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from typing import Any

import attrs

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


def _digest_validator(_instance: object, _attribute: object, value: str) -> None:
    check_digest(value)


@attrs.frozen
class Platform:
    """The platform an image runs on, as an index entry names it."""

    os: str
    architecture: str
    variant: str | None = None
    os_version: str | None = None
    os_features: tuple[str, ...] = ()

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


@attrs.frozen
class Descriptor:
    """What to fetch or push: an OCI content descriptor (media type, digest, size, and the optional rest)."""

    media_type: str
    digest: str = attrs.field(validator=_digest_validator)
    size: int = attrs.field(validator=attrs.validators.ge(0))
    annotations: Mapping[str, str] = attrs.field(factory=dict, converter=dict, eq=False, hash=False)
    platform: Platform | None = None
    urls: tuple[str, ...] = ()

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


@attrs.frozen(repr=False)
class Credentials:
    """A user name and password (or identity token) for one registry; the password never shows in repr."""

    username: str
    password: str

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, password=***)"


class ProgressState(enum.Enum):
    """Where one blob's transfer is."""

    DOWNLOADING = "downloading"
    UPLOADING = "uploading"
    EXISTS = "exists"  # the registry had the blob: nothing sent
    MOUNTED = "mounted"  # mounted from another repository of the same registry: nothing sent
    DONE = "done"  # every byte sent or received, and verified


@attrs.frozen
class Progress:
    """One progress event: ``done`` of ``total`` bytes of the blob ``digest``."""

    digest: str
    done: int
    total: int
    state: ProgressState
