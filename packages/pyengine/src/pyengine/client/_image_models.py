"""The images' models: list, inspect, remove, and the progress messages of pull, push and load."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from pyengine.client._fields import Json, mapping, obj, optional_strings, raw, strings

__all__ = [
    "ImageConfig",
    "ImageDeleteItem",
    "ImageInspect",
    "ImageSummary",
    "ProgressMessage",
]


@attrs.frozen(kw_only=True)
class ImageSummary:
    """One image of ``GET /images/json``."""

    id: str
    repo_tags: tuple[str, ...] = ()
    repo_digests: tuple[str, ...] = ()
    parent_id: str = ""
    created: int = 0
    size: int = 0
    shared_size: int = -1
    containers: int = -1
    labels: Mapping[str, str] = attrs.field(factory=dict, converter=mapping)

    @classmethod
    def from_api(cls, data: Json) -> ImageSummary:
        return cls(
            id=data.get("Id") or "",
            repo_tags=strings(data.get("RepoTags")),
            repo_digests=strings(data.get("RepoDigests")),
            parent_id=data.get("ParentId") or "",
            created=data.get("Created") or 0,
            size=data.get("Size") or 0,
            shared_size=data.get("SharedSize", -1),
            containers=data.get("Containers", -1),
            labels=data.get("Labels"),
        )


@attrs.frozen(kw_only=True)
class ImageConfig:
    """The part of an image's config a container starts from."""

    cmd: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    env: tuple[str, ...] = ()
    working_dir: str = ""
    user: str = ""
    labels: Mapping[str, str] = attrs.field(factory=dict, converter=mapping)

    @classmethod
    def from_api(cls, data: Json) -> ImageConfig:
        return cls(
            cmd=optional_strings(data.get("Cmd")),
            entrypoint=optional_strings(data.get("Entrypoint")),
            env=strings(data.get("Env")),
            working_dir=data.get("WorkingDir") or "",
            user=data.get("User") or "",
            labels=data.get("Labels"),
        )


@attrs.frozen(kw_only=True)
class ImageInspect:
    """``GET /images/{name}/json`` (a subset)."""

    id: str
    repo_tags: tuple[str, ...] = ()
    repo_digests: tuple[str, ...] = ()
    created: str = ""
    size: int = 0
    config: ImageConfig = attrs.field(factory=ImageConfig)
    architecture: str = ""
    os: str = ""
    raw: Mapping[str, Any] = raw()

    @classmethod
    def from_api(cls, data: Json) -> ImageInspect:
        return cls(
            id=data.get("Id") or "",
            repo_tags=strings(data.get("RepoTags")),
            repo_digests=strings(data.get("RepoDigests")),
            created=data.get("Created") or "",
            size=data.get("Size") or 0,
            config=ImageConfig.from_api(obj(data, "Config")),
            architecture=data.get("Architecture") or "",
            os=data.get("Os") or "",
            raw=data,
        )


@attrs.frozen(kw_only=True)
class ImageDeleteItem:
    """One line of ``DELETE /images/{name}``'s answer: a name untagged or an image deleted."""

    untagged: str | None = None
    deleted: str | None = None

    @classmethod
    def from_api(cls, data: Json) -> ImageDeleteItem:
        return cls(untagged=data.get("Untagged"), deleted=data.get("Deleted"))


@attrs.frozen(kw_only=True)
class ProgressMessage:
    """One message of the JSON stream of a pull, a push or a load (Docker's JSONMessage):
    a layer's ``status`` and progress, a line of text (``stream``), or the ``error`` that ended
    the operation (the client raises it)."""

    id: str = ""
    status: str = ""
    progress: str = ""
    current: int | None = None
    total: int | None = None
    stream: str = ""
    error: str = ""
    aux: Mapping[str, Any] | None = None

    @classmethod
    def from_api(cls, data: Json) -> ProgressMessage:
        detail = obj(data, "progressDetail")
        error = data.get("error") or obj(data, "errorDetail").get("message") or ""
        return cls(
            id=data.get("id") or "",
            status=data.get("status") or "",
            progress=data.get("progress") or "",
            current=detail.get("current"),
            total=detail.get("total"),
            stream=data.get("stream") or "",
            error=error,
            aux=data.get("aux"),
        )
