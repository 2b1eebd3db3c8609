"""Image documents: OCI / Docker schema2 indexes and manifests, and the image config.

Each class has a ``from_json`` (a parsed JSON value) and a ``parse`` (bytes) constructor that checks
the document's shape and raises :class:`~pycontainerd.InvalidArgumentError` naming the field at
fault, as a path (``manifests[1].digest``), so a bad document from a registry or an archive says
where it is bad. ``parse`` bounds what it reads first: the document's size (:data:`MAX_MANIFEST_SIZE`,
:data:`MAX_CONFIG_SIZE`) and how deep its JSON nests (:data:`MAX_JSON_DEPTH`), so that no document
costs more than its bound in memory or reaches the interpreter's recursion limit.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from pycontainerd._errors import InvalidArgumentError
from pycontainerd._record import Record
from pycontainerd._remotes import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_INDEX,
    OCI_MANIFEST,
    Descriptor,
    Platform,
)
from pycontainerd._remotes.types import check_digest

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Final

__all__ = [
    "DOCKER_CONFIG",
    "DOCKER_LAYER",
    "DOCKER_LAYER_FOREIGN",
    "INDEX_MEDIA_TYPES",
    "MANIFEST_ONLY_MEDIA_TYPES",
    "MAX_CONFIG_SIZE",
    "MAX_JSON_DEPTH",
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
    "Manifest",
    "RootFS",
    "load_document",
]

OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_LAYER_FOREIGN = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"

INDEX_MEDIA_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
MANIFEST_ONLY_MEDIA_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})

#: The largest manifest or index read: containerd's ``MaxManifestSize`` (written ``4 * 1048 * 1048``
#: there), far above any image's (a few KiB) and low enough to hold in memory.
MAX_MANIFEST_SIZE = 4 * 1048 * 1048
#: The largest image config read: configs are a few KiB; long build histories stay far below this.
MAX_CONFIG_SIZE = 8 << 20
#: How deep arrays and objects may nest in a document. The specs' documents nest four deep at most;
#: ``json`` decodes recursively and would otherwise reach the interpreter's recursion limit.
MAX_JSON_DEPTH = 64
#: The largest size a descriptor may give: Go's int64, what the specs' ``size`` is.
_MAX_SIZE = (1 << 63) - 1


def _bad(path: str, problem: str) -> InvalidArgumentError:
    return InvalidArgumentError(f"{path}: {problem}")


def load_document(data: bytes, what: str, limit: int) -> Any:
    """``data`` decoded as JSON, at most ``limit`` bytes and :data:`MAX_JSON_DEPTH` levels deep.

    InvalidArgumentError naming ``what`` otherwise: for image documents and the JSON files of image
    archives (``index.json``, ``manifest.json``), which registries and archives control.
    """
    if len(data) > limit:
        raise _bad(what, f"{len(data)} bytes, more than the {limit} accepted")
    try:
        value = json.loads(data)
    except RecursionError:
        raise _bad(what, f"JSON nested more than {MAX_JSON_DEPTH} levels deep") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise _bad(what, f"not JSON: {exc}") from None
    # Level by level, not recursively: a document just under the decoder's limit is refused here.
    level = [value] if isinstance(value, (dict, list)) else []
    depth = 0
    while level:
        depth += 1
        if depth > MAX_JSON_DEPTH:
            raise _bad(what, f"JSON nested more than {MAX_JSON_DEPTH} levels deep")
        level = [
            child
            for container in level
            for child in (container.values() if isinstance(container, dict) else container)
            if isinstance(child, (dict, list))
        ]
    return value


def _object(raw: object, path: str) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise _bad(path, f"expected an object, got {type(raw).__name__}")
    return raw


def _opt_object(raw: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any]:
    value = raw.get(key)
    return {} if value is None else _object(value, f"{path}{key}")


def _str(raw: Mapping[str, Any], key: str, path: str, *, required: bool = False) -> str | None:
    value = raw.get(key)
    if value is None:
        if required:
            raise _bad(f"{path}{key}", "missing")
        return None
    if not isinstance(value, str):
        raise _bad(f"{path}{key}", f"expected a string, got {type(value).__name__}")
    return value


def _strs(raw: Mapping[str, Any], key: str, path: str) -> tuple[str, ...] | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, str):  # Docker accepts a bare string for Cmd/Entrypoint in some configs
        return (value,)
    if not isinstance(value, list):
        raise _bad(f"{path}{key}", f"expected a list of strings, got {type(value).__name__}")
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise _bad(f"{path}{key}[{i}]", f"expected a string, got {type(item).__name__}")
    return tuple(value)


def _str_map(raw: Mapping[str, Any], key: str, path: str) -> dict[str, str]:
    value = _opt_object(raw, key, path)
    for k, v in value.items():
        if not isinstance(v, str):
            raise _bad(f"{path}{key}.{k}", f"expected a string, got {type(v).__name__}")
    return dict(value)


def _key_set(raw: Mapping[str, Any], key: str, path: str) -> tuple[str, ...]:
    """``ExposedPorts`` and ``Volumes``: JSON objects whose keys matter and values are ``{}``."""
    return tuple(sorted(_opt_object(raw, key, path)))


def _int(raw: Mapping[str, Any], key: str, path: str) -> int | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(f"{path}{key}", f"expected an integer, got {type(value).__name__}")
    return value


def _descriptor(raw: object, path: str) -> Descriptor:
    obj = _object(raw, path)
    media_type = _str(obj, "mediaType", f"{path}.", required=True)
    digest = _str(obj, "digest", f"{path}.", required=True)
    size = _int(obj, "size", f"{path}.")
    if size is None:
        raise _bad(f"{path}.size", "missing")
    if not 0 <= size <= _MAX_SIZE:
        raise _bad(f"{path}.size", f"{size} is not from 0 to {_MAX_SIZE}")
    assert media_type is not None and digest is not None
    try:
        check_digest(digest)
    except ValueError as exc:
        raise _bad(f"{path}.digest", str(exc)) from None
    annotations = _str_map(obj, "annotations", f"{path}.")
    platform = None
    if obj.get("platform") is not None:
        p = _object(obj["platform"], f"{path}.platform")
        ppath = f"{path}.platform."
        os_ = _str(p, "os", ppath, required=True)
        arch = _str(p, "architecture", ppath, required=True)
        assert os_ is not None and arch is not None
        platform = Platform(
            os=os_,
            architecture=arch,
            variant=_str(p, "variant", ppath),
            os_version=_str(p, "os.version", ppath),
            os_features=_strs(p, "os.features", ppath) or (),
        )
    urls = _strs(obj, "urls", f"{path}.") or ()
    return Descriptor(media_type, digest, size, annotations, platform, urls)


def _check_media_type(
    obj: Mapping[str, Any], allowed: frozenset[str], media_type: str | None, default: str
) -> str:
    """The document's media type: its ``mediaType`` field, else the descriptor's, else the OCI one."""
    field = _str(obj, "mediaType", "")
    if field is not None and media_type is not None and field != media_type:
        raise _bad("mediaType", f"{field!r} does not match the descriptor's {media_type!r}")
    chosen = field or media_type
    if chosen is None:
        return default  # OCI allows an index or manifest without mediaType
    if chosen not in allowed:
        raise _bad("mediaType", f"{chosen!r} is not one of {sorted(allowed)}")
    return chosen


def _schema_version(obj: Mapping[str, Any]) -> None:
    version = obj.get("schemaVersion")
    if version != 2:
        raise _bad("schemaVersion", f"expected 2, got {version!r}")


class Index(Record):
    """An OCI image index or a Docker manifest list: manifests for several platforms.

    The annotations (a dict copy of the mapping given) take no part in equality and hashing.
    """

    __slots__ = ("manifests", "media_type", "annotations")
    _compared = ("manifests", "media_type")

    def __init__(
        self,
        manifests: tuple[Descriptor, ...],
        media_type: str = OCI_INDEX,
        annotations: Mapping[str, str] | None = None,
    ) -> None:
        self.manifests: Final = manifests
        self.media_type: Final = media_type
        self.annotations: Final[Mapping[str, str]] = {} if annotations is None else dict(annotations)

    @classmethod
    def from_json(cls, raw: object, media_type: str | None = None) -> Index:
        obj = _object(raw, "index")
        _schema_version(obj)
        kind = _check_media_type(obj, INDEX_MEDIA_TYPES, media_type, OCI_INDEX)
        manifests = obj.get("manifests")
        if not isinstance(manifests, list):
            raise _bad("manifests", "missing" if manifests is None else "expected a list")
        descs = tuple(_descriptor(m, f"manifests[{i}]") for i, m in enumerate(manifests))
        return cls(descs, kind, _str_map(obj, "annotations", ""))

    @classmethod
    def parse(cls, data: bytes, media_type: str | None = None) -> Index:
        return cls.from_json(load_document(data, "index", MAX_MANIFEST_SIZE), media_type)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": self.media_type,
            "manifests": [m.to_json() for m in self.manifests],
        }
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out


class Manifest(Record):
    """An OCI image manifest or a Docker schema2 manifest: one config and its layers.

    The annotations (a dict copy of the mapping given) take no part in equality and hashing.
    """

    __slots__ = ("config", "layers", "media_type", "annotations")
    _compared = ("config", "layers", "media_type")

    def __init__(
        self,
        config: Descriptor,
        layers: tuple[Descriptor, ...],
        media_type: str = OCI_MANIFEST,
        annotations: Mapping[str, str] | None = None,
    ) -> None:
        self.config: Final = config
        self.layers: Final = layers
        self.media_type: Final = media_type
        self.annotations: Final[Mapping[str, str]] = {} if annotations is None else dict(annotations)

    @classmethod
    def from_json(cls, raw: object, media_type: str | None = None) -> Manifest:
        obj = _object(raw, "manifest")
        _schema_version(obj)
        kind = _check_media_type(obj, MANIFEST_ONLY_MEDIA_TYPES, media_type, OCI_MANIFEST)
        if obj.get("config") is None:
            raise _bad("config", "missing")
        config = _descriptor(obj["config"], "config")
        layers = obj.get("layers")
        if not isinstance(layers, list):
            raise _bad("layers", "missing" if layers is None else "expected a list")
        descs = tuple(_descriptor(layer, f"layers[{i}]") for i, layer in enumerate(layers))
        return cls(config, descs, kind, _str_map(obj, "annotations", ""))

    @classmethod
    def parse(cls, data: bytes, media_type: str | None = None) -> Manifest:
        return cls.from_json(load_document(data, "manifest", MAX_MANIFEST_SIZE), media_type)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": self.media_type,
            "config": self.config.to_json(),
            "layers": [layer.to_json() for layer in self.layers],
        }
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out


class Healthcheck(Record):
    """``config.Healthcheck``: durations are nanoseconds, as Docker writes them."""

    __slots__ = ("test", "interval", "timeout", "start_period", "retries")

    def __init__(
        self,
        test: tuple[str, ...] = (),
        interval: int | None = None,
        timeout: int | None = None,
        start_period: int | None = None,
        retries: int | None = None,
    ) -> None:
        self.test: Final = test
        self.interval: Final = interval
        self.timeout: Final = timeout
        self.start_period: Final = start_period
        self.retries: Final = retries


class ContainerConfig(Record):
    """``config`` of the image config: what a container of the image runs by default.

    The labels (a dict copy of the mapping given) count for equality but not for the hash.
    """

    __slots__ = (
        "env",
        "cmd",
        "entrypoint",
        "working_dir",
        "user",
        "exposed_ports",
        "volumes",
        "labels",
        "healthcheck",
        "stop_signal",
    )

    def __init__(
        self,
        env: tuple[str, ...] = (),
        cmd: tuple[str, ...] | None = None,
        entrypoint: tuple[str, ...] | None = None,
        working_dir: str = "",
        user: str = "",
        exposed_ports: tuple[str, ...] = (),
        volumes: tuple[str, ...] = (),
        labels: Mapping[str, str] | None = None,
        healthcheck: Healthcheck | None = None,
        stop_signal: str | None = None,
    ) -> None:
        self.env: Final = env
        self.cmd: Final = cmd
        self.entrypoint: Final = entrypoint
        self.working_dir: Final = working_dir
        self.user: Final = user
        self.exposed_ports: Final = exposed_ports
        self.volumes: Final = volumes
        self.labels: Final[Mapping[str, str]] = {} if labels is None else dict(labels)
        self.healthcheck: Final = healthcheck
        self.stop_signal: Final = stop_signal

    def __hash__(self) -> int:
        return hash(
            (
                type(self),
                self.env,
                self.cmd,
                self.entrypoint,
                self.working_dir,
                self.user,
                self.exposed_ports,
                self.volumes,
                self.healthcheck,
                self.stop_signal,
            )
        )

    @classmethod
    def from_json(cls, raw: object, path: str = "config") -> ContainerConfig:
        obj = _object(raw, path)
        p = f"{path}."
        healthcheck = None
        if obj.get("Healthcheck") is not None:
            h = _object(obj["Healthcheck"], f"{p}Healthcheck")
            hp = f"{p}Healthcheck."
            healthcheck = Healthcheck(
                test=_strs(h, "Test", hp) or (),
                interval=_int(h, "Interval", hp),
                timeout=_int(h, "Timeout", hp),
                start_period=_int(h, "StartPeriod", hp),
                retries=_int(h, "Retries", hp),
            )
        return cls(
            env=_strs(obj, "Env", p) or (),
            cmd=_strs(obj, "Cmd", p),
            entrypoint=_strs(obj, "Entrypoint", p),
            working_dir=_str(obj, "WorkingDir", p) or "",
            user=_str(obj, "User", p) or "",
            exposed_ports=_key_set(obj, "ExposedPorts", p),
            volumes=_key_set(obj, "Volumes", p),
            labels=_str_map(obj, "Labels", p),
            healthcheck=healthcheck,
            stop_signal=_str(obj, "StopSignal", p),
        )


class RootFS(Record):
    """``rootfs``: the uncompressed digests (diff IDs) of the layers, bottom first."""

    __slots__ = ("diff_ids", "type")

    def __init__(self, diff_ids: tuple[str, ...], type: str = "layers") -> None:
        self.diff_ids: Final = diff_ids
        self.type: Final = type


class History(Record):
    """One ``history`` entry: how a layer (or an empty step) was made."""

    __slots__ = ("created", "created_by", "author", "comment", "empty_layer")

    def __init__(
        self,
        created: str | None = None,
        created_by: str | None = None,
        author: str | None = None,
        comment: str | None = None,
        empty_layer: bool = False,
    ) -> None:
        self.created: Final = created
        self.created_by: Final = created_by
        self.author: Final = author
        self.comment: Final = comment
        self.empty_layer: Final = empty_layer


class ImageConfig(Record):
    """The image config (OCI ``application/vnd.oci.image.config.v1+json`` or Docker's equivalent)."""

    __slots__ = (
        "architecture",
        "os",
        "rootfs",
        "variant",
        "os_version",
        "created",
        "author",
        "config",
        "history",
    )

    def __init__(
        self,
        architecture: str,
        os: str,
        rootfs: RootFS,
        variant: str | None = None,
        os_version: str | None = None,
        created: str | None = None,
        author: str | None = None,
        config: ContainerConfig | None = None,
        history: tuple[History, ...] = (),
    ) -> None:
        self.architecture: Final = architecture
        self.os: Final = os
        self.rootfs: Final = rootfs
        self.variant: Final = variant
        self.os_version: Final = os_version
        self.created: Final = created
        self.author: Final = author
        self.config: Final = ContainerConfig() if config is None else config
        self.history: Final = history

    @property
    def platform(self) -> Platform:
        return Platform(os=self.os, architecture=self.architecture, variant=self.variant or None)

    @classmethod
    def from_json(cls, raw: object) -> ImageConfig:
        obj = _object(raw, "image config")
        arch = _str(obj, "architecture", "", required=True)
        os_ = _str(obj, "os", "", required=True)
        assert arch is not None and os_ is not None
        rootfs_raw = obj.get("rootfs")
        if rootfs_raw is None:
            raise _bad("rootfs", "missing")
        rootfs_obj = _object(rootfs_raw, "rootfs")
        diff_ids = _strs(rootfs_obj, "diff_ids", "rootfs.")
        if diff_ids is None:
            raise _bad("rootfs.diff_ids", "missing")
        for i, diff_id in enumerate(diff_ids):
            try:
                check_digest(diff_id)
            except ValueError as exc:
                raise _bad(f"rootfs.diff_ids[{i}]", str(exc)) from None
        rootfs_type = _str(rootfs_obj, "type", "rootfs.") or "layers"
        if rootfs_type != "layers":
            raise _bad("rootfs.type", f"{rootfs_type!r} is not 'layers', the one type of root filesystem")
        history_raw = obj.get("history") or []
        if not isinstance(history_raw, list):
            raise _bad("history", "expected a list")
        history = []
        for i, entry in enumerate(history_raw):
            e = _object(entry, f"history[{i}]")
            hp = f"history[{i}]."
            empty = e.get("empty_layer", False)
            if not isinstance(empty, bool):
                raise _bad(f"{hp}empty_layer", "expected a boolean")
            history.append(
                History(
                    created=_str(e, "created", hp),
                    created_by=_str(e, "created_by", hp),
                    author=_str(e, "author", hp),
                    comment=_str(e, "comment", hp),
                    empty_layer=empty,
                )
            )
        config_raw = obj.get("config")
        return cls(
            architecture=arch,
            os=os_,
            rootfs=RootFS(diff_ids, rootfs_type),
            variant=_str(obj, "variant", ""),
            os_version=_str(obj, "os.version", ""),
            created=_str(obj, "created", ""),
            author=_str(obj, "author", ""),
            config=ContainerConfig() if config_raw is None else ContainerConfig.from_json(config_raw),
            history=tuple(history),
        )

    @classmethod
    def parse(cls, data: bytes) -> ImageConfig:
        return cls.from_json(load_document(data, "image config", MAX_CONFIG_SIZE))
