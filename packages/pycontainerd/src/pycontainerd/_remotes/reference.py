"""Image references, parsed and normalised the way Docker does (distribution's ``reference`` package).

    busybox                          -> docker.io/library/busybox:latest
    user/app:1.0                     -> docker.io/user/app:1.0
    127.0.0.1:5000/app@sha256:...    -> 127.0.0.1:5000/app@sha256:...   (no tag added to a digest)
    localhost/app                    -> localhost/app:latest

The first path component is a registry host when it holds a ``.`` or a ``:``, is ``localhost``, or has
capitals; otherwise the reference is on Docker Hub, and a one-component Hub name gets ``library/``.
Parsing never contacts anything: ``docker.io`` is only a name here (:attr:`Reference.endpoint_host` maps
it to the host the API lives on).
"""

from __future__ import annotations

import re

from pycontainerd._errors import InvalidArgumentError
from pycontainerd._record import Record
from pycontainerd._remotes.types import check_digest

# On pyctr run's path when an image is named by a short name (busybox): typing stays off it.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Final

__all__ = ["DEFAULT_DOMAIN", "Reference", "ReferenceError"]

DEFAULT_DOMAIN = "docker.io"
_LEGACY_DOMAIN = "index.docker.io"
_HUB_ENDPOINT = "registry-1.docker.io"
_OFFICIAL_PREFIX = "library/"
_NAME_MAX = 255

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = re.compile(rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?")
_TAG = re.compile(r"[\w][\w.-]{0,127}", re.ASCII)  # \w as Go's: ASCII letters, digits and _
_ANCHORED_ID = re.compile(r"[a-f0-9]{64}")


class ReferenceError(InvalidArgumentError):
    """The string is not a valid image reference (says which part is wrong); an InvalidArgumentError,
    and so a ValueError."""


class Reference(Record):
    """A normalised image reference: ``domain/path[:tag][@digest]``.

    Build one with :meth:`parse`; ``str()`` gives the fully qualified form back.
    """

    __slots__ = ("domain", "path", "tag", "digest")

    def __init__(self, domain: str, path: str, tag: str | None = None, digest: str | None = None) -> None:
        self.domain: Final = domain
        self.path: Final = path
        self.tag: Final = tag
        self.digest: Final = digest

    @classmethod
    def parse(cls, text: str) -> Reference:
        """Parse and normalise ``text``; a reference with neither tag nor digest gets ``latest``."""
        if not text:
            raise ReferenceError("empty image reference")
        if _ANCHORED_ID.fullmatch(text):
            raise ReferenceError(f"{text!r}: a 64-hex-digit image ID is not a reference")
        remainder, digest = text, None
        if "@" in remainder:
            remainder, _, digest = remainder.partition("@")
            try:
                check_digest(digest)
            except ValueError as exc:
                raise ReferenceError(f"{text!r}: {exc}") from None
        tag = None
        slash = remainder.rfind("/")
        colon = remainder.rfind(":")
        if colon > slash:  # a colon after the last slash starts the tag (before it: a port)
            remainder, tag = remainder[:colon], remainder[colon + 1 :]
            if not _TAG.fullmatch(tag):
                raise ReferenceError(f"{text!r}: invalid tag {tag!r}")
        domain, path = cls._split_domain(text, remainder)
        if not _PATH.fullmatch(path):
            if path.lower() != path and _PATH.fullmatch(path.lower()):
                raise ReferenceError(f"{text!r}: repository name must be lowercase")
            raise ReferenceError(f"{text!r}: invalid repository name {path!r}")
        if len(domain) + 1 + len(path) > _NAME_MAX:
            raise ReferenceError(f"{text!r}: repository name longer than {_NAME_MAX} characters")
        if tag is None and digest is None:
            tag = "latest"
        return cls(domain, path, tag, digest)

    @staticmethod
    def _split_domain(text: str, name: str) -> tuple[str, str]:
        first, sep, rest = name.partition("/")
        if not sep or (not any(c in first for c in ".:") and first != "localhost" and first.lower() == first):
            domain, path = DEFAULT_DOMAIN, name
        else:
            if not _DOMAIN.fullmatch(first):
                raise ReferenceError(f"{text!r}: invalid registry host {first!r}")
            domain, path = first, rest
        if domain == _LEGACY_DOMAIN:
            domain = DEFAULT_DOMAIN
        if domain == DEFAULT_DOMAIN and "/" not in path:
            path = _OFFICIAL_PREFIX + path
        return domain, path

    @property
    def name(self) -> str:
        """``domain/path``, without tag or digest."""
        return f"{self.domain}/{self.path}"

    @property
    def object(self) -> str:
        """What the registry is asked for under ``/manifests/``: the digest if there is one, else the tag."""
        return self.digest or self.tag or "latest"

    @property
    def endpoint_host(self) -> str:
        """``host[:port]`` of the registry's API (Docker Hub's API is not at docker.io itself)."""
        return _HUB_ENDPOINT if self.domain == DEFAULT_DOMAIN else self.domain

    def with_digest(self, digest: str) -> Reference:
        """The same repository pinned to ``digest`` (the tag is kept, as Docker prints it)."""
        return Reference(self.domain, self.path, self.tag, check_digest(digest))

    def with_path(self, path: str) -> Reference:
        """Another repository of the same registry, at ``latest``."""
        return Reference.parse(f"{self.domain}/{path}")

    def __str__(self) -> str:
        text = self.name
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text
