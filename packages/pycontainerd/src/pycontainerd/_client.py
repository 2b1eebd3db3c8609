"""The Client: one facade over a pycontainerd root (content, metadata, snapshotters, registries).

    with Client(root="/var/lib/pycontainerd") as client:
        image = client.pull("127.0.0.1:5000/busybox:latest")     # fetched, recorded and unpacked
        client.tag(image.name, "127.0.0.1:5000/copy:latest")
        client.push("127.0.0.1:5000/copy:latest")

There is no daemon: every Client opens the stores under ``root`` directly (``<root>/content``,
``<root>/metadata``, ``<root>/snapshots/<snapshotter>``), and several processes may do so at once.
Work that creates content (pull, import) runs under a lease, so a concurrent GC never takes what is
half-way done; the lease is dropped at the end, and the image record then holds what it needs.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO

from urllib3.response import BaseHTTPResponse

from pycontainerd._archive import apply_layer
from pycontainerd._content import ContentStore
from pycontainerd._errors import (
    AlreadyExistsError,
    DigestMismatchError,
    InvalidArgumentError,
    NotFoundError,
)
from pycontainerd._images import (
    PlatformMatcher,
    children,
    export,
    host_platform,
    import_archive,
    layers,
    manifest_descriptor_for,
    parse_platform,
)
from pycontainerd._images._types import (
    INDEX_MEDIA_TYPES,
    MANIFEST_ONLY_MEDIA_TYPES,
    ImageConfig,
    Index,
    Manifest,
)
from pycontainerd._metadata import (
    GC_REF_SNAPSHOT,
    GCResult,
    Image,
    LeaseResource,
    MetadataStore,
    SnapshotKind,
    SnapshotRecord,
    collect,
)
from pycontainerd._metadata import Descriptor as Target
from pycontainerd._remotes import (
    Credentials,
    Descriptor,
    Fetcher,
    Platform,
    Progress,
    ProgressState,
    Reference,
    ReferenceError,
    Resolver,
)
from pycontainerd._snapshots import (
    NativeSnapshotter,
    OverlaySnapshotter,
    Snapshotter,
    apply_dir,
    chain_id,
)

__all__ = ["DEFAULT_ROOT", "DEFAULT_STATE", "SNAPSHOTTERS", "Client"]

DEFAULT_ROOT = "/var/lib/pycontainerd"
DEFAULT_STATE = "/run/pycontainerd"
#: The snapshotters a Client can open, by the names containerd gives them.
SNAPSHOTTERS: dict[str, Callable[[Path], Snapshotter]] = {
    "overlayfs": OverlaySnapshotter,
    "native": NativeSnapshotter,
}
_FETCH_WORKERS = 4
_CHUNK = 1 << 20

ProgressCallback = Callable[[Progress], None]


def normalize_name(name: str) -> str:
    """``name`` fully qualified (``busybox`` → ``docker.io/library/busybox:latest``) when it is a reference.

    Names that are not references (an imported image's free-form name) stay as they are.
    """
    try:
        return str(Reference.parse(name))
    except ReferenceError:
        return name


def _descriptor(target: Target) -> Descriptor:
    return Descriptor(target.media_type, target.digest, target.size)


def _target(desc: Descriptor) -> Target:
    return Target(desc.media_type, desc.digest, desc.size)


def _platform(platform: Platform | str | None) -> PlatformMatcher:
    if isinstance(platform, str):
        platform = parse_platform(platform)
    return PlatformMatcher(platform if platform is not None else host_platform())


class Client:
    """The images half of containerd over one root, in one namespace, with one default snapshotter.

    ``snapshotter`` is ``overlayfs`` (the default) or ``native``. ``state`` is where runtime state will
    live (the tasks); nothing is written there yet.
    """

    def __init__(
        self,
        root: str | os.PathLike[str] = DEFAULT_ROOT,
        state: str | os.PathLike[str] = DEFAULT_STATE,
        namespace: str = "default",
        snapshotter: str = "overlayfs",
    ) -> None:
        if snapshotter not in SNAPSHOTTERS:
            raise InvalidArgumentError(
                f"unknown snapshotter {snapshotter!r}: one of {', '.join(SNAPSHOTTERS)}"
            )
        self.root = Path(root).absolute()
        self.state = Path(state).absolute()
        self.namespace = namespace
        self.snapshotter_name = snapshotter
        self.root.mkdir(mode=0o711, parents=True, exist_ok=True)
        self.content = ContentStore(self.root / "content")
        self.metadata = MetadataStore(self.root / "metadata")
        self._snapshotters: dict[str, Snapshotter] = {}

    def __repr__(self) -> str:
        return f"Client({str(self.root)!r}, namespace={self.namespace!r})"

    def close(self) -> None:
        """Close the snapshotters opened so far."""
        while self._snapshotters:
            _, snapshotter = self._snapshotters.popitem()
            snapshotter.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def snapshotter(self, name: str | None = None) -> Snapshotter:
        """The snapshotter ``name`` (default: the client's), opened under ``<root>/snapshots/<name>``."""
        name = name or self.snapshotter_name
        if name not in SNAPSHOTTERS:
            raise InvalidArgumentError(f"unknown snapshotter {name!r}: one of {', '.join(SNAPSHOTTERS)}")
        if name not in self._snapshotters:
            self._snapshotters[name] = SNAPSHOTTERS[name](self.root / "snapshots" / name)
        return self._snapshotters[name]

    # -- leases --------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def lease(self) -> Iterator[str]:
        """A lease for the duration of the block: what is attached to it is safe from GC meanwhile."""
        lease_id = f"pycontainerd-{uuid.uuid4().hex}"
        self.metadata.leases.create(self.namespace, lease_id)
        try:
            yield lease_id
        finally:
            self.metadata.leases.delete(self.namespace, lease_id)

    def _hold(self, lease_id: str, resource: LeaseResource) -> None:
        self.metadata.leases.add_resource(self.namespace, lease_id, resource)

    # -- images --------------------------------------------------------------------------------------

    def images(self) -> list[Image]:
        """The images of the namespace, sorted by name."""
        return self.metadata.images.list(self.namespace)

    def image(self, name: str) -> Image:
        """The image ``name`` (as given, or fully qualified); NotFoundError if there is none."""
        try:
            return self.metadata.images.get(self.namespace, name)
        except NotFoundError:
            full = normalize_name(name)
            if full == name:
                raise
            return self.metadata.images.get(self.namespace, full)

    def _set_image(self, name: str, target: Target) -> Image:
        try:
            return self.metadata.images.create(self.namespace, Image(name, target))
        except AlreadyExistsError:
            return self.metadata.images.update(self.namespace, name, target=target)

    def tag(self, source: str, target: str) -> Image:
        """Name ``target`` the image ``source`` is (replacing what ``target`` named)."""
        return self._set_image(normalize_name(target), self.image(source).target)

    def remove_image(self, name: str) -> None:
        """Drop the name; its content goes at the next :meth:`gc` if nothing else holds it."""
        self.metadata.images.delete(self.namespace, self.image(name).name)

    def descriptors(self, image: Image) -> list[Descriptor]:
        """Everything ``image`` reaches that the store holds: the target, manifests, configs, layers."""
        found: dict[str, Descriptor] = {}
        stack = [_descriptor(image.target)]
        while stack:
            desc = stack.pop()
            if desc.digest in found:
                continue
            try:
                self.content.info(desc.digest)
            except NotFoundError:
                continue  # an index's entry for a platform that was not pulled
            found[desc.digest] = desc
            stack.extend(children(self.content, desc))
        return list(found.values())

    def size(self, image: Image) -> int:
        """Bytes of the blobs of ``image`` the store holds."""
        return sum(desc.size for desc in self.descriptors(image))

    def platforms(self, image: Image) -> list[Platform]:
        """The platforms ``image`` is for: its index's entries, or its config's."""
        desc = _descriptor(image.target)
        try:
            if desc.media_type in INDEX_MEDIA_TYPES:
                index = Index.parse(self.content.read_blob(desc.digest), desc.media_type)
                return [m.platform for m in index.manifests if m.platform is not None]
            manifest = Manifest.parse(self.content.read_blob(desc.digest), desc.media_type)
            return [ImageConfig.parse(self.content.read_blob(manifest.config.digest)).platform]
        except (NotFoundError, InvalidArgumentError):
            return []

    # -- pull ----------------------------------------------------------------------------------------

    def pull(
        self,
        ref: str,
        *,
        platform: Platform | str | None = None,
        credentials: Credentials | None = None,
        insecure_hosts: Iterable[str] = (),
        progress: ProgressCallback | None = None,
        unpack: bool = True,
    ) -> Image:
        """Fetch ``ref`` for ``platform`` (default: the host's), record it, and unpack it.

        Blobs go through ingests named by the reference and digest, so a pull interrupted half-way
        resumes where it stopped. Layers are fetched in parallel and unpacked, in order, into the
        client's snapshotter under their ChainIDs (layers already there are skipped).
        """
        matcher = _platform(platform)
        reference = Reference.parse(ref)
        name = str(reference)
        with (
            self.lease() as lease_id,
            Resolver(
                credentials=(lambda host: credentials) if credentials is not None else None,
                insecure_hosts=insecure_hosts,
            ) as resolver,
        ):
            pinned, root = resolver.resolve(reference)
            fetcher = resolver.fetcher(pinned)
            fetch = _Fetch(self, fetcher, lease_id, name, progress)
            fetch.tree(root, matcher)
            _, manifest = manifest_descriptor_for(self.content, root, matcher)
            with ThreadPoolExecutor(max_workers=_FETCH_WORKERS) as pool:
                for future in [pool.submit(fetch.blob, layer) for layer in manifest.layers]:
                    future.result()
            image = self._set_image(name, _target(root))
            if unpack:
                self._unpack(lease_id, root, matcher)
        return image

    def unpack(self, name: str, *, platform: Platform | str | None = None) -> str:
        """Unpack the image ``name`` into the client's snapshotter; returns the top layer's ChainID."""
        image = self.image(name)
        with self.lease() as lease_id:
            return self._unpack(lease_id, _descriptor(image.target), _platform(platform))

    def _unpack(self, lease_id: str, root: Descriptor, matcher: PlatformMatcher) -> str:
        snapshotter = self.snapshotter()
        name = self.snapshotter_name
        manifest_desc, manifest = manifest_descriptor_for(self.content, root, matcher)
        diff_ids: list[str] = []
        parent: str | None = None
        for layer in layers(self.content, manifest_desc, matcher):
            diff_ids.append(layer.diff_id)
            chain = chain_id(diff_ids)
            self._hold(lease_id, LeaseResource.snapshot(name, chain))
            try:
                snapshotter.stat(chain)
            except NotFoundError:
                self._apply(snapshotter, lease_id, layer.descriptor, layer.diff_id, chain, parent)
            with contextlib.suppress(AlreadyExistsError):
                self.metadata.snapshots.create(
                    self.namespace, SnapshotRecord(name, chain, SnapshotKind.COMMITTED, parent)
                )
            parent = chain
        assert parent is not None  # layers() refuses an image without layers
        # The config names the image's top snapshot, so GC keeps the chain while the image lives.
        self.metadata.content.add(
            self.namespace, manifest.config.digest, manifest.config.size, {GC_REF_SNAPSHOT + name: parent}
        )
        return parent

    def _apply(
        self,
        snapshotter: Snapshotter,
        lease_id: str,
        blob: Descriptor,
        diff_id: str,
        chain: str,
        parent: str | None,
    ) -> None:
        key = f"extract-{uuid.uuid4().hex} {chain}"
        self._hold(lease_id, LeaseResource.snapshot(self.snapshotter_name, key))
        mounts = snapshotter.prepare(key, parent)
        try:
            directory, whiteouts = apply_dir(mounts)
            with self.content.reader(blob.digest) as stream:
                result = apply_layer(directory, stream, media_type=blob.media_type, whiteout_format=whiteouts)
            if result.diff_id != diff_id:
                raise DigestMismatchError(diff_id, result.diff_id)
            try:
                snapshotter.commit(chain, key)
            except AlreadyExistsError:
                pass  # another process unpacked the same layer meanwhile: theirs is as good
            else:
                return
        except BaseException:
            with contextlib.suppress(NotFoundError):
                snapshotter.remove(key)
            raise
        snapshotter.remove(key)

    # -- push ----------------------------------------------------------------------------------------

    def push(
        self,
        ref: str,
        *,
        source: str | None = None,
        credentials: Credentials | None = None,
        insecure_hosts: Iterable[str] = (),
        progress: ProgressCallback | None = None,
    ) -> Descriptor:
        """Push the image ``source`` (default: the image named ``ref``) to ``ref``: blobs, then manifests.

        Blobs are sent as stored, so digests stay the same; blobs the registry has are skipped.
        """
        image = self.image(source or ref)
        reference = Reference.parse(ref)
        root = _descriptor(image.target)
        blobs: list[Descriptor] = []
        manifests: list[Descriptor] = []  # children before parents
        self._order(root, blobs, manifests, set())
        with Resolver(
            credentials=(lambda host: credentials) if credentials is not None else None,
            insecure_hosts=insecure_hosts,
        ) as resolver:
            pusher = resolver.pusher(reference)
            for desc in blobs:
                with self.content.reader(desc.digest) as stream:
                    pusher.push_blob(desc, stream, progress=progress)
            for desc in manifests:
                data = self.content.read_blob(desc.digest)
                tag = None if desc.digest == root.digest else desc.digest
                pusher.push_manifest(desc, data, tag=tag)
                if progress is not None:
                    progress(Progress(desc.digest, desc.size, desc.size, ProgressState.DONE))
        return root

    def _order(
        self, desc: Descriptor, blobs: list[Descriptor], manifests: list[Descriptor], seen: set[str]
    ) -> None:
        if desc.digest in seen:
            return
        seen.add(desc.digest)
        if desc.media_type in INDEX_MEDIA_TYPES or desc.media_type in MANIFEST_ONLY_MEDIA_TYPES:
            for child in children(self.content, desc):
                self._order(child, blobs, manifests, seen)
            manifests.append(desc)
        else:
            self.content.info(desc.digest)  # NotFoundError before anything is sent
            blobs.append(desc)

    # -- import and export ---------------------------------------------------------------------------

    def import_archive(self, stream: IO[bytes]) -> list[Image]:
        """Import an OCI layout tar or a docker-archive; returns the images it named.

        Images without a name in the archive are named ``import-<digest>``.
        """
        with self.lease() as lease_id:
            found = import_archive(self.content, stream)
            images = []
            for name, desc in found:
                image = Image(name or f"import-{desc.digest}", _target(desc))
                self._record(lease_id, image)
                images.append(self._set_image(normalize_name(image.name), image.target))
        return images

    def _record(self, lease_id: str, image: Image) -> None:
        for desc in self.descriptors(image):
            self._hold(lease_id, LeaseResource.content(desc.digest))
            self.metadata.content.add(self.namespace, desc.digest, desc.size)

    def export(
        self, stream: IO[bytes], names: Sequence[str], *, platform: Platform | str | None = None
    ) -> None:
        """Write the images ``names`` to ``stream`` as one tar: an OCI image layout and a docker-archive."""
        images = [self.image(name) for name in names]
        chosen = parse_platform(platform) if isinstance(platform, str) else platform
        export(
            self.content,
            stream,
            [(image.name, _descriptor(image.target)) for image in images],
            platform=chosen,
        )

    # -- snapshots and GC ----------------------------------------------------------------------------

    def remove_snapshot(self, key: str, snapshotter: str | None = None) -> None:
        """Remove the snapshot ``key`` (refused while it has children) and its record."""
        name = snapshotter or self.snapshotter_name
        self.snapshotter(name).remove(key)
        with contextlib.suppress(NotFoundError):
            self.metadata.snapshots.delete(self.namespace, name, key)

    def _remove_for_gc(self, snapshotter: str, key: str) -> None:
        # Snapshot data is shared by namespaces: only the last namespace's record removes it.
        for namespace in self.metadata.namespaces.list():
            if namespace.name == self.namespace:
                continue
            with contextlib.suppress(NotFoundError):
                self.metadata.snapshots.get(namespace.name, snapshotter, key)
                return
        with contextlib.suppress(NotFoundError):
            self.snapshotter(snapshotter).remove(key)

    def gc(self) -> GCResult:
        """Collect what no image, lease or GC root reaches: blobs, content records and snapshots."""
        return collect(self.metadata, self.content, snapshot_remover=self._remove_for_gc)


class _Fetch:
    """One pull's fetching: blobs into the content store through ingests, recorded under the lease."""

    def __init__(
        self, client: Client, fetcher: Fetcher, lease_id: str, name: str, progress: ProgressCallback | None
    ) -> None:
        self._client = client
        self._fetcher = fetcher
        self._lease = lease_id
        self._name = name
        self._progress = progress

    def tree(self, desc: Descriptor, matcher: PlatformMatcher) -> None:
        """Fetch ``desc`` and, for the platform, the manifests and configs below it (not the layers)."""
        self.blob(desc)
        if desc.media_type in INDEX_MEDIA_TYPES:
            index = Index.parse(self._client.content.read_blob(desc.digest), desc.media_type)
            for child in index.manifests:
                if child.platform is None or matcher.match(child.platform):
                    self.tree(child, matcher)
        elif desc.media_type in MANIFEST_ONLY_MEDIA_TYPES:
            manifest = Manifest.parse(self._client.content.read_blob(desc.digest), desc.media_type)
            self.blob(manifest.config)

    def _report(self, desc: Descriptor, done: int, state: ProgressState) -> None:
        if self._progress is not None:
            self._progress(Progress(desc.digest, done, desc.size, state))

    def blob(self, desc: Descriptor) -> None:
        """Have the blob ``desc`` in the store, recorded in the namespace and held by the lease."""
        client, namespace = self._client, self._client.namespace
        client.metadata.leases.add_resource(namespace, self._lease, LeaseResource.content(desc.digest))
        try:
            client.content.info(desc.digest)
        except NotFoundError:
            self._download(desc)
        else:
            self._report(desc, desc.size, ProgressState.EXISTS)
        client.metadata.content.add(namespace, desc.digest, desc.size)

    def _download(self, desc: Descriptor) -> None:
        ref = f"{self._name}-{desc.digest}"
        store = self._client.content
        self._client.metadata.leases.add_resource(
            self._client.namespace, self._lease, LeaseResource.ingest(ref)
        )
        with store.writer(ref, desc.size, desc.digest) as writer:
            resumed = self._resume(desc, writer.offset) if writer.offset and not desc.is_manifest else None
            if resumed is not None:
                try:
                    while chunk := resumed.read(_CHUNK):
                        writer.write(chunk)
                finally:
                    resumed.release_conn()
            else:
                writer.truncate(0)
                with self._fetcher.fetch(desc, progress=self._progress) as stream:
                    while chunk := stream.read(_CHUNK):
                        writer.write(chunk)
            writer.commit(desc.size, desc.digest)
        self._report(desc, desc.size, ProgressState.DONE)

    def _resume(self, desc: Descriptor, offset: int) -> BaseHTTPResponse | None:
        """The rest of the blob from ``offset`` (a Range request), or None if the registry will not."""
        path = f"/v2/{self._fetcher.reference.path}/blobs/{desc.digest}"
        response = self._fetcher.request("GET", path, headers={"Range": f"bytes={offset}-"}, ok=(200, 206))
        if response.status != 206:
            response.close()
            response.release_conn()
            return None
        self._report(desc, offset, ProgressState.DOWNLOADING)
        return response
