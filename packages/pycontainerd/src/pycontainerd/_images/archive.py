"""Image archives: export to, and import from, OCI image layouts and docker-archives (``docker save``).

Modelled on containerd's ``images/archive``. :func:`export` writes one tar that is at once:

- an OCI image layout: ``oci-layout``, ``index.json`` (one entry per image, annotated with
  ``io.containerd.image.name`` = the full name and ``org.opencontainers.image.ref.name`` = its tag)
  and ``blobs/sha256/<hex>``;
- a docker-archive: ``manifest.json`` whose ``Config`` and ``Layers`` point at the same
  ``blobs/sha256/<hex>`` files, with the familiar name (``busybox:latest``) in ``RepoTags``.

The tar is deterministic: entries sorted, PAX format, mtime 0, uid/gid 0, no user names.

:func:`import_archive` reads either kind (plain, gzip'd or zstd'd), writes every blob through the
content store (blobs under ``blobs/<alg>/<hex>`` are verified against their names), and for a
docker-archive without ``index.json`` synthesises an OCI manifest for each image, as containerd does.
"""

from __future__ import annotations

import hashlib
import io
import json
import posixpath
import tarfile
import uuid
from typing import TYPE_CHECKING

from pycontainerd._archive.compression import decompress
from pycontainerd._archive.tar import TarReader
from pycontainerd._errors import AlreadyExistsError, InvalidArgumentError, LayerError, NotFoundError
from pycontainerd._images.names import check_base_name, image_name
from pycontainerd._images.platforms import PlatformMatcher, host_platform
from pycontainerd._images.types import (
    OCI_CONFIG,
    OCI_LAYER,
    OCI_LAYER_GZIP,
    OCI_LAYER_ZSTD,
    Index,
    Manifest,
    load_document,
)
from pycontainerd._images.walk import check_depth, children, manifest_descriptor_for, read_config
from pycontainerd._record import Record
from pycontainerd._remotes import OCI_INDEX, OCI_MANIFEST, Descriptor, Platform
from pycontainerd._remotes.reference import Reference, ReferenceError

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from typing import IO, Any, Final

    from pycontainerd._content.protocol import Provider, Store

__all__ = ["IMAGE_NAME_ANNOTATION", "REF_NAME_ANNOTATION", "export", "import_archive"]

IMAGE_NAME_ANNOTATION = "io.containerd.image.name"
REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"
_OCI_LAYOUT = b'{"imageLayoutVersion":"1.0.0"}'
_SMALL = 16 << 20  # JSON documents of an archive are read into memory up to this size
_CHUNK = 1 << 20


def _dumps(document: object) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def _blob_name(digest: str) -> str:
    algorithm, _, encoded = digest.partition(":")
    return f"blobs/{algorithm}/{encoded}"


def _tar_entry(name: str, size: int = 0, *, directory: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
    info.mode = 0o755 if directory else 0o444
    info.size = size
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _familiar(name: str) -> str | None:
    """``busybox:latest`` for ``docker.io/library/busybox:latest``; None if the name has no tag."""
    try:
        ref = Reference.parse(name)
    except ReferenceError:
        return None
    if ref.tag is None or ref.digest is not None:
        return None
    text = str(ref)
    for prefix in ("docker.io/library/", "docker.io/"):
        if text.startswith(prefix):
            return text[len(prefix) :]
    return text


def _ref_name(name: str) -> str | None:
    """The OCI ``ref.name`` of an image name: its tag (the OCI spec's reference is the tag alone)."""
    try:
        ref = Reference.parse(name)
    except ReferenceError:
        return name or None
    return ref.tag if ref.digest is None else None


def _reachable(store: Provider, roots: Iterable[Descriptor]) -> dict[str, Descriptor]:
    seen: dict[str, Descriptor] = {}
    stack = [(root, 0) for root in roots]
    while stack:
        desc, depth = stack.pop()
        if desc.digest in seen:
            continue
        check_depth(desc, depth)
        store.info(desc.digest)  # NotFoundError now, not half way through the tar
        seen[desc.digest] = desc
        stack.extend((child, depth + 1) for child in children(store, desc))
    return seen


def export(
    store: Provider,
    out: IO[bytes],
    images: Sequence[tuple[str, Descriptor]],
    *,
    platform: Platform | None = None,
) -> None:
    """Write ``images`` (name, target descriptor) to ``out`` as an OCI layout + docker-archive tar.

    With ``platform`` None every platform of each image goes into the OCI part (its whole index);
    with a platform, each image is exported as its manifest for that platform alone (and
    ``index.json`` points at that manifest), so the layout stays complete. ``manifest.json`` lists,
    for each image, the manifest for ``platform`` (default: the host's); an image with none for it
    is left out of ``manifest.json`` only. NotFoundError if a blob an image needs is missing.
    """
    matcher = PlatformMatcher(platform) if platform is not None else None
    docker_matcher = matcher or PlatformMatcher(host_platform())
    index_entries: list[dict[str, Any]] = []
    roots: list[Descriptor] = []
    docker: dict[str, dict[str, Any]] = {}  # manifest digest -> manifest.json entry
    for name, desc in images:
        target = desc
        if matcher is not None:
            target, _manifest = manifest_descriptor_for(store, desc, matcher)
        roots.append(target)
        annotations = dict(target.annotations)
        if name:
            annotations[IMAGE_NAME_ANNOTATION] = name
            ref_name = _ref_name(name)
            if ref_name:
                annotations[REF_NAME_ANNOTATION] = ref_name
        named = Descriptor(
            target.media_type, target.digest, target.size, annotations, target.platform, target.urls
        )
        index_entries.append(named.to_json())
        try:
            mdesc, manifest = manifest_descriptor_for(store, target, docker_matcher)
        except NotFoundError:
            continue
        entry = docker.setdefault(
            mdesc.digest,
            {
                "Config": _blob_name(manifest.config.digest),
                "RepoTags": [],
                "Layers": [_blob_name(layer.digest) for layer in manifest.layers],
            },
        )
        tag = _familiar(name)
        if tag and tag not in entry["RepoTags"]:
            entry["RepoTags"].append(tag)
    blobs = _reachable(store, roots)
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": index_entries}
    documents = {
        "oci-layout": _OCI_LAYOUT,
        "index.json": _dumps(index),
        "manifest.json": _dumps(list(docker.values())),
    }
    directories = sorted({"blobs"} | {posixpath.dirname(_blob_name(d)) for d in blobs})
    names = sorted([*documents, *directories, *(_blob_name(d) for d in blobs)])
    by_name = {_blob_name(d): d for d in blobs}
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for entry_name in names:
            if entry_name in documents:
                data = documents[entry_name]
                tar.addfile(_tar_entry(entry_name, len(data)), io.BytesIO(data))
            elif entry_name in by_name:
                digest = by_name[entry_name]
                size = store.info(digest).size
                with store.reader(digest) as reader:
                    tar.addfile(_tar_entry(entry_name, size), reader)
            else:
                tar.addfile(_tar_entry(entry_name + "/", directory=True))


class _Stored(Record):
    __slots__ = ("digest", "size")

    def __init__(self, digest: str, size: int) -> None:
        self.digest: Final = digest
        self.size: Final = size


class _Reader:
    """What an archive holds once read: blobs written to the store, small documents kept in memory."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.files: dict[str, _Stored] = {}  # normalised archive path -> blob in the store
        self.documents: dict[str, bytes] = {}  # oci-layout, index.json, manifest.json, repositories
        self.links: dict[str, str] = {}  # symlink path -> target path (docker save links layers)

    def read(self, stream: IO[bytes]) -> None:
        try:
            tar = TarReader(decompress(stream)[0])
            while (member := tar.next()) is not None:
                self._member(tar, member)
        except LayerError as exc:
            raise InvalidArgumentError(f"not a readable image archive: {exc}") from exc

    def _member(self, tar: TarReader, member: tarfile.TarInfo) -> None:
        name = _clean(member.name)
        if name is None:
            raise InvalidArgumentError(f"archive entry {member.name!r} escapes the archive")
        if member.issym() or member.islnk():
            base = posixpath.dirname(name) if member.issym() else ""
            target = _clean(posixpath.join(base, member.linkname))
            if target is None:
                raise InvalidArgumentError(f"archive link {member.name!r} points outside the archive")
            self.links[name] = target
            return
        if not member.isfile():
            return
        if name in ("oci-layout", "index.json", "manifest.json", "repositories"):
            if member.size > _SMALL:
                raise InvalidArgumentError(f"archive entry {name}: {member.size} bytes is too big")
            self.documents[name] = tar.read(member.size)
            return
        expected = None
        parts = name.split("/")
        if len(parts) == 3 and parts[0] == "blobs":
            expected = f"{parts[1]}:{parts[2]}"
        self.files[name] = self._store(tar, member.size, expected)

    def _store(self, source: TarReader, size: int, expected: str | None) -> _Stored:
        ref = f"import-{uuid.uuid4().hex}"
        try:
            writer = self.store.writer(ref, size, expected)
        except AlreadyExistsError:
            assert expected is not None  # only a writer told what to expect finds it there already
            return _Stored(expected, size)  # the store (a namespace) has proved it holds these bytes
        try:
            with writer:
                while chunk := source.read(_CHUNK):
                    writer.write(chunk)
                result = writer.commit(size, expected)
        except BaseException:
            try:
                self.store.abort(ref)
            except NotFoundError:
                pass
            raise
        return _Stored(result.digest, result.size)

    def resolve(self, path: str, where: str) -> _Stored:
        """The blob at ``path`` (links followed); NotFoundError naming ``where`` it was asked for."""
        seen = 0
        name = _clean(path)
        while name is not None and name in self.links and seen < 16:
            name, seen = self.links[name], seen + 1
        if name is None or name not in self.files:
            raise NotFoundError(f"{where}: the archive has no file {path!r}")
        return self.files[name]


def _clean(name: str) -> str | None:
    """``name`` relative and normalised, or None if it climbs out of the archive with ``..``."""
    path = posixpath.normpath(name.lstrip("/"))
    if path == ".." or path.startswith("../"):
        return None
    return path


def import_archive(
    store: Store, stream: IO[bytes], *, base_name: str | None = None
) -> list[tuple[str, Descriptor]]:
    """Read an OCI layout tar or a docker-archive from ``stream`` into ``store``.

    Returns (name, target descriptor) for each image: from ``index.json`` when the archive has one
    (the name is ``io.containerd.image.name``, else ``org.opencontainers.image.ref.name``, else
    empty), otherwise one per ``RepoTags`` entry of ``manifest.json`` (an image without tags is
    returned with an empty name) pointing at a synthesised OCI manifest. A name that is a tag alone
    (``latest``) becomes ``<base_name>:<tag>`` with ``base_name`` (ctr's ``--base-name``). Names go
    through the reference grammar and come back fully qualified (``busybox:latest`` becomes
    ``docker.io/library/busybox:latest``); one that is not a reference is an InvalidArgumentError
    naming the field it came from. Every blob the images need must be in the archive or already in
    ``store`` (NotFoundError naming the digest otherwise; a namespace's store holds only what the
    namespace itself wrote); blobs whose bytes do not hash to their name are refused
    (DigestMismatchError).
    """
    if base_name is not None:
        check_base_name(base_name)
    reader = _Reader(store)
    reader.read(stream)
    if "index.json" in reader.documents:
        found = _import_oci(store, reader)
    elif "manifest.json" in reader.documents:
        found = _import_docker(store, reader)
    else:
        raise InvalidArgumentError(
            "the archive has neither index.json (OCI layout) nor manifest.json (docker)"
        )
    images = []
    for name, where, desc in found:
        if name and base_name is not None and not any(c in name for c in "/:@"):
            name = f"{base_name}:{name}"
        images.append((image_name(name, where) if name else "", desc))
    return images


def _import_oci(store: Store, reader: _Reader) -> list[tuple[str, str, Descriptor]]:
    layout = reader.documents.get("oci-layout")
    if layout is not None:
        document = load_document(layout, "oci-layout", _SMALL)
        version = document.get("imageLayoutVersion") if isinstance(document, dict) else None
        if not isinstance(version, str) or not version.startswith("1."):
            raise InvalidArgumentError(f"oci-layout: unsupported imageLayoutVersion {version!r}")
    try:
        index = Index.parse(reader.documents["index.json"], OCI_INDEX)
    except InvalidArgumentError as exc:
        raise InvalidArgumentError(f"index.json: {exc}") from None
    result = []
    for i, desc in enumerate(index.manifests):
        where = f"index.json manifests[{i}]"
        try:
            _reachable(store, [desc])
        except NotFoundError as exc:
            # Blobs are taken from the archive, or the store must hold them already: an image is
            # never made of blobs the importer only names (another namespace's, say).
            raise NotFoundError(f"{where}: {exc}, and the archive does not carry it") from None
        except InvalidArgumentError as exc:
            raise InvalidArgumentError(f"{where}: {exc}") from None
        for key in (IMAGE_NAME_ANNOTATION, REF_NAME_ANNOTATION):
            name = desc.annotations.get(key)
            if name:
                result.append((name, f"{where}.annotations[{key!r}]", desc))
                break
        else:
            result.append(("", where, desc))
    return result


def _layer_media_type(store: Provider, digest: str) -> str:
    with store.reader(digest) as blob:
        magic = blob.read(4)
    if magic[:2] == b"\x1f\x8b":
        return OCI_LAYER_GZIP
    if magic == b"\x28\xb5\x2f\xfd":
        return OCI_LAYER_ZSTD
    return OCI_LAYER


def _import_docker(store: Store, reader: _Reader) -> list[tuple[str, str, Descriptor]]:
    entries = load_document(reader.documents["manifest.json"], "manifest.json", _SMALL)
    if not isinstance(entries, list):
        raise InvalidArgumentError("manifest.json: expected a list")
    result: list[tuple[str, str, Descriptor]] = []
    for i, entry in enumerate(entries):
        where = f"manifest.json[{i}]"
        if not isinstance(entry, dict):
            raise InvalidArgumentError(f"{where}: expected an object")
        config_path, layer_paths, tags = entry.get("Config"), entry.get("Layers"), entry.get("RepoTags") or []
        if not isinstance(config_path, str):
            raise InvalidArgumentError(f"{where}.Config: expected a path")
        if not isinstance(layer_paths, list) or not all(isinstance(p, str) for p in layer_paths):
            raise InvalidArgumentError(f"{where}.Layers: expected a list of paths")
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise InvalidArgumentError(f"{where}.RepoTags: expected a list of names")
        config_blob = reader.resolve(config_path, f"{where}.Config")
        config_desc = Descriptor(OCI_CONFIG, config_blob.digest, config_blob.size)
        try:
            config = read_config(store, config_desc)
        except InvalidArgumentError as exc:
            raise InvalidArgumentError(f"{where}.Config {config_path!r}: {exc}") from None
        layer_descs = []
        for j, path in enumerate(layer_paths):
            blob = reader.resolve(path, f"{where}.Layers[{j}]")
            layer_descs.append(Descriptor(_layer_media_type(store, blob.digest), blob.digest, blob.size))
        manifest = Manifest(config_desc, tuple(layer_descs))
        data = _dumps(manifest.to_json())
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        store.write_blob(f"import-{uuid.uuid4().hex}", data, len(data), digest)
        target = Descriptor(OCI_MANIFEST, digest, len(data), platform=config.platform)
        if not tags:
            result.append(("", where, target))
        result += [(tag, f"{where}.RepoTags[{j}]", target) for j, tag in enumerate(tags)]
    return result
