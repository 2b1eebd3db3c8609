"""The Client: one facade over a pycontainerd root (content, metadata, snapshotters, registries).

    with Client(root="/var/lib/pycontainerd") as client:
        image = client.pull("127.0.0.1:5000/busybox:latest")     # fetched, recorded and unpacked
        client.tag(image.name, "127.0.0.1:5000/copy:latest")
        client.push("127.0.0.1:5000/copy:latest")

There is no daemon: every Client opens the stores under ``root`` directly (``<root>/content``,
``<root>/metadata``, ``<root>/snapshots/<snapshotter>``), and several processes may do so at once.

A Client works in one namespace, and namespaces are a boundary: images, containers, tasks, leases,
content and snapshots are each a namespace's own. Blobs and unpacked layers are stored once on disk
for every namespace, but a namespace uses a blob only once it has proved it has the bytes (written
them through its own ingest, which checks the digest: see :class:`NamespacedContent`), and reuses a
snapshot another namespace unpacked only for layers it holds itself whose uncompressed digest an
unpack has checked.

Work that creates content (pull, import) runs under a lease, so a concurrent GC never takes what is
half-way done; the lease is dropped at the end, and the image record then holds what it needs. The
lease names the process holding it (``LEASE_OWNER``): if that process dies (a pull killed half-way),
the next GC treats the lease as expired and collects what the pull left, blobs, ingests and the
snapshots it was extracting into (each recorded before it is created).

A pull fetches the layers in parallel and unpacks them in order while they download: each layer's
bytes go to its ingest, and the unpacker reads them back from the ingest's file as they land
(:class:`_Blob`), so inflating and extracting overlap the download instead of following it. The
snapshot is committed only once the blob is complete and its digest checked.
"""

from __future__ import annotations

import contextlib
import io
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from pycontainerd._archive import WhiteoutFormat, apply_dir
from pycontainerd._content import ContentStore
from pycontainerd._defaults import DEFAULT_ROOT, DEFAULT_STATE
from pycontainerd._errors import (
    AlreadyExistsError,
    ContentError,
    DigestMismatchError,
    FailedPreconditionError,
    InvalidArgumentError,
    LockedError,
    NotFoundError,
    RegistryError,
    ResourceExhaustedError,
)
from pycontainerd._events import EventLog
from pycontainerd._images import (
    INDEX_MEDIA_TYPES,
    MANIFEST_ONLY_MEDIA_TYPES,
    MAX_CONFIG_SIZE,
    MAX_MANIFEST_SIZE,
    Index,
    Layer,
    Manifest,
    PlatformMatcher,
    check_base_name,
    check_depth,
    children,
    host_platform,
    image_name,
    layers,
    manifest_descriptor_for,
    parse_platform,
    read_config,
    read_index,
    read_manifest,
)
from pycontainerd._metadata import (
    GC_REF_SNAPSHOT,
    UNCOMPRESSED,
    GCResult,
    Image,
    LeaseResource,
    MetadataStore,
    NamespacedContent,
    SnapshotKind,
    SnapshotRecord,
    check_namespace,
    collect,
)
from pycontainerd._metadata import Descriptor as Target
from pycontainerd._remotes import (
    OCI_INDEX,
    Credentials,
    Descriptor,
    Platform,
    Progress,
    ProgressState,
)
from pycontainerd._reserve import DEFAULT_MIN_FREE, SpaceGuard, check_min_free
from pycontainerd._snapshots import Info as SnapshotInfo
from pycontainerd._snapshots import Snapshotters, chain_id, check_snapshotter
from pycontainerd._tasks import ContainerService, TaskService

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence
    from typing import IO, Any

    from urllib3.response import BaseHTTPResponse

    from pycontainerd._archive.compression import Readable
    from pycontainerd._content.writer import Writer
    from pycontainerd._images import ImageConfig
    from pycontainerd._remotes.reference import Reference
    from pycontainerd._remotes.resolver import Fetcher, Resolver
    from pycontainerd._remotes.stream import VerifyingReader
    from pycontainerd._snapshots import Mount
    from pycontainerd._snapshots.protocol import Snapshotter

__all__ = ["Client"]

_FETCH_WORKERS = 4
_CHUNK = 1 << 20
#: How often a pull waiting on a blob another writer holds looks again.
_LOCKED_POLL = 0.05

ProgressCallback = Callable[[Progress], None]


def _descriptor(target: Target) -> Descriptor:
    return Descriptor(target.media_type, target.digest, target.size)


def _target(desc: Descriptor) -> Target:
    return Target(desc.media_type, desc.digest, desc.size)


def _platform(platform: Platform | str | None) -> PlatformMatcher:
    if isinstance(platform, str):
        platform = parse_platform(platform)
    return PlatformMatcher(platform if platform is not None else host_platform())


class Client:
    """containerd's work over one root, in one namespace, with one default snapshotter.

    ``snapshotter`` is ``overlayfs`` (the default) or ``native``. ``state`` is where runtime state lives:
    the tasks' directories and monitors, pyrunc's root, the event log. Pulls and imports keep
    ``min_free`` (a share: 0.05 is 5 %) of the blocks and of the inodes of the root's filesystem free:
    content and layers that would take more stop with ResourceExhaustedError.

    Every method acts in ``namespace``, an identifier as containerd has them (letters and digits
    separated by single ``.``, ``_`` or ``-``, at most 76), and ``content`` is the namespace's view of
    the content store. ``metadata`` (records of every namespace, each call naming one) and
    :meth:`snapshotter` (the data every namespace's snapshots share) are the stores below the
    namespaces, as the layer below uses them.
    """

    def __init__(
        self,
        root: str | os.PathLike[str] = DEFAULT_ROOT,
        state: str | os.PathLike[str] = DEFAULT_STATE,
        namespace: str = "default",
        snapshotter: str = "overlayfs",
        *,
        min_free: float = DEFAULT_MIN_FREE,
    ) -> None:
        check_snapshotter(snapshotter)
        check_namespace(namespace)
        self.min_free = check_min_free(min_free)
        self.root = Path(root).absolute()
        self.state = Path(state).absolute()
        self.namespace = namespace
        #: The snapshotters under ``<root>/snapshots``, ``snapshotter`` the default.
        self.snapshotters = Snapshotters(self.root / "snapshots", snapshotter)
        self.root.mkdir(mode=0o711, parents=True, exist_ok=True)
        self.metadata = MetadataStore(self.root / "metadata")
        #: The blobs the namespace holds; its writers keep the reserve of ``min_free``.
        self.content = NamespacedContent(
            ContentStore(self.root / "content", min_free=self.min_free), self.metadata, namespace
        )
        #: Image, container and task events, shared by every process using ``state``.
        self.events = EventLog(self.state)
        #: The namespace's tasks (the containers' live processes) and containers (records: image,
        #: snapshot, spec).
        self.tasks = self._tasks_of(namespace)
        self.containers = ContainerService(
            namespace,
            metadata=self.metadata,
            content=self.content,
            images=self,
            snapshotters=self.snapshotters,
            tasks=self.tasks,
            events=self.events,
            scratch=self.state / "tmp",
        )

    def __repr__(self) -> str:
        return f"Client({str(self.root)!r}, namespace={self.namespace!r})"

    @property
    def snapshotter_name(self) -> str:
        """The name of the client's snapshotter, the default of the methods that take one."""
        return self.snapshotters.default

    def _tasks_of(self, namespace: str) -> TaskService:
        return TaskService(
            namespace,
            self.state,
            metadata=self.metadata,
            snapshotters=self.snapshotters,
            events=self.events,
            logs=self.root / "logs" / namespace,
        )

    def close(self) -> None:
        """Close the snapshotters opened so far."""
        self.snapshotters.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def snapshotter(self, name: str | None = None) -> Snapshotter:
        """The snapshotter ``name`` (default: the client's), opened under ``<root>/snapshots/<name>``.

        It holds the snapshots of every namespace, without namespace checks; the namespace's own are
        :meth:`snapshots`, :meth:`snapshot_mounts` and :meth:`remove_snapshot`.
        """
        return self.snapshotters.get(name)

    # -- leases --------------------------------------------------------------------------------------

    def lease(self) -> contextlib.AbstractContextManager[str]:
        """A lease for the duration of the block: what is attached to it is safe from GC meanwhile.

        The lease names this process (``LEASE_OWNER``), so it ends with the process if the block
        never gets to delete it.
        """
        return self.metadata.lease(self.namespace)

    def _hold(self, lease_id: str, resource: LeaseResource) -> None:
        self.metadata.leases.add_resource(self.namespace, lease_id, resource)

    # -- images --------------------------------------------------------------------------------------

    def images(self) -> list[Image]:
        """The images of the namespace, sorted by name."""
        return self.metadata.images.list(self.namespace)

    def image(self, name: str) -> Image:
        """The image ``name`` (as given, or fully qualified); NotFoundError if there is none, and
        InvalidArgumentError if ``name`` is neither an image's name nor a reference."""
        try:
            return self.metadata.images.get(self.namespace, name)
        except NotFoundError:
            full = image_name(name, "image name")
            if full == name:
                raise
            return self.metadata.images.get(self.namespace, full)

    def _set_image(self, name: str, target: Target) -> Image:
        try:
            return self.metadata.images.create(self.namespace, Image(name, target))
        except AlreadyExistsError:
            return self.metadata.images.update(self.namespace, name, target=target)

    def tag(self, source: str, target: str) -> Image:
        """Name ``target`` (a reference, stored fully qualified) the image ``source`` is, replacing
        what ``target`` named."""
        name = image_name(target, "tag target")
        return self._set_image(name, self.image(source).target)

    def remove_image(self, name: str) -> None:
        """Drop the name; its content goes at the next :meth:`gc` if nothing else holds it."""
        self.metadata.images.delete(self.namespace, self.image(name).name)

    def descriptors(self, image: Image) -> list[Descriptor]:
        """Everything ``image`` reaches that the store holds: the target, manifests, configs, layers."""
        found: dict[str, Descriptor] = {}
        stack = [(_descriptor(image.target), 0)]
        while stack:
            desc, depth = stack.pop()
            if desc.digest in found:
                continue
            check_depth(desc, depth)
            try:
                self.content.info(desc.digest)
            except NotFoundError:
                continue  # an index's entry for a platform that was not pulled
            found[desc.digest] = desc
            stack.extend((child, depth + 1) for child in children(self.content, desc))
        return list(found.values())

    def size(self, image: Image) -> int:
        """Bytes of the blobs of ``image`` the store holds."""
        return sum(desc.size for desc in self.descriptors(image))

    def config(self, image: Image) -> tuple[Descriptor, ImageConfig]:
        """The config of ``image`` for the host platform: its descriptor (the digest is what Docker
        shows as the image's ID) and what it holds. NotFoundError if the store lacks the platform's
        manifest or config."""
        _, manifest = manifest_descriptor_for(self.content, _descriptor(image.target))
        return manifest.config, read_config(self.content, manifest.config)

    def platforms(self, image: Image) -> list[Platform]:
        """The platforms ``image`` is for: its index's entries, or its config's."""
        desc = _descriptor(image.target)
        try:
            if desc.media_type in INDEX_MEDIA_TYPES:
                index = read_index(self.content, desc)
                return [m.platform for m in index.manifests if m.platform is not None]
            manifest = read_manifest(self.content, desc)
            return [read_config(self.content, manifest.config).platform]
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
        mirrors: Sequence[str] = (),
    ) -> Image:
        """Fetch ``ref`` for ``platform`` (default: the host's), record it, and unpack it.

        ``mirrors`` are registry hosts (``host[:port]``) serving docker.io's repositories: for a
        docker.io reference each is tried in turn before docker.io itself, as dockerd's
        ``registry-mirrors``, and the image is recorded under its docker.io name.

        Blobs go through ingests named by the reference and digest, so a pull interrupted half-way
        resumes where it stopped; a blob another process is writing is waited for, not fetched twice.
        Layers are fetched in parallel and unpacked, in order and while they download, into the
        client's snapshotter under their ChainIDs (layers already there are skipped). The image is
        recorded once everything is fetched and unpacked.
        """
        from pycontainerd._remotes.reference import Reference
        from pycontainerd._remotes.resolver import Resolver

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
            pinned, root = _resolve(resolver, reference, mirrors)
            fetcher = resolver.fetcher(pinned)
            content = self.content.with_lease(lease_id)
            fetch = _Fetch(content, fetcher, name, progress)
            fetch.tree(root, matcher)
            _, manifest = manifest_descriptor_for(content, root, matcher)
            blobs = [_Blob(content, layer) for layer in manifest.layers]
            from concurrent.futures import ThreadPoolExecutor  # loaded by the commands that fetch only

            try:
                with ThreadPoolExecutor(max_workers=_FETCH_WORKERS) as pool:
                    futures = [pool.submit(fetch.blob, b.descriptor, b if unpack else None) for b in blobs]
                    try:
                        if unpack:
                            self._unpack(lease_id, root, matcher, blobs)
                    except BaseException:
                        for future in futures:
                            future.cancel()  # the downloads not started yet: the pull failed
                        raise
                    for future in futures:
                        future.result()
            finally:
                for blob in blobs:
                    blob.close()
            return self._set_image(name, _target(root))

    def unpack(self, name: str, *, platform: Platform | str | None = None) -> str | None:
        """Unpack the image ``name`` into the client's snapshotter; returns the top layer's ChainID,
        None for an image without layers (whose containers get an empty root, with no parent)."""
        image = self.image(name)
        with self.lease() as lease_id:
            return self._unpack(lease_id, _descriptor(image.target), _platform(platform))

    def _unpack(
        self,
        lease_id: str,
        root: Descriptor,
        matcher: PlatformMatcher,
        blobs: Sequence[_Blob] | None = None,
    ) -> str | None:
        """Unpack the image ``root`` layer by layer: from ``blobs`` as they download, else from the store.

        Snapshots are named by ChainID and their data shared by the namespaces that record them; a
        layer whose snapshot is there already is only recorded, when :meth:`_checked` allows it, and
        otherwise applied again (which checks its diff ID) and recorded.

        The top layer's ChainID, or None if there are no layers: no ChainID names an empty stack, so
        no snapshot is chosen for one (containerd's ChainID of no layers is empty: no parent).
        """
        snapshotter = self.snapshotter()
        name = self.snapshotter_name
        manifest_desc, manifest = manifest_descriptor_for(self.content, root, matcher)
        diff_ids: list[str] = []
        parent: str | None = None
        for i, layer in enumerate(layers(self.content, manifest_desc, matcher)):
            diff_ids.append(layer.diff_id)
            chain = chain_id(diff_ids)
            self._hold(lease_id, LeaseResource.snapshot(name, chain))
            # The record comes before the data, so that a crash in between leaves a record GC sweeps.
            try:
                self.metadata.snapshots.create(
                    self.namespace, SnapshotRecord(name, chain, SnapshotKind.COMMITTED, parent)
                )
                recorded = True
            except AlreadyExistsError:
                recorded = False
            source = blobs[i] if blobs else None
            try:
                if not self._checked(snapshotter, layer, chain, source):
                    self._apply(snapshotter, lease_id, layer, chain, parent, source)
                    with self.metadata.transaction() as tx:  # the blob's diff ID is checked now
                        record = tx.content.get(self.namespace, layer.descriptor.digest)
                        tx.content.set_labels(
                            self.namespace, record.digest, {**record.labels, UNCOMPRESSED: layer.diff_id}
                        )
            except BaseException:
                if recorded:
                    self._unrecord(snapshotter, chain)
                raise
            parent = chain
        if parent is None:
            return None
        # The config names the image's top snapshot, so GC keeps the chain while the image lives.
        self.metadata.content.add(
            self.namespace, manifest.config.digest, manifest.config.size, {GC_REF_SNAPSHOT + name: parent}
        )
        return parent

    def _unrecord(self, snapshotter: Snapshotter, chain: str) -> None:
        """Drop the record of ``chain`` a failed unpack made: the namespace did not prove the layers of
        that snapshot (another namespace's, perhaps), so it must not list it."""
        name = self.snapshotter_name
        if self.metadata.snapshots.holders(name, chain) == [self.namespace]:
            try:
                snapshotter.stat(chain)
            except NotFoundError:
                pass  # no data: nothing for the record to stand for
            else:
                return  # data no other namespace records (made by this unpack): GC removes the two
        with contextlib.suppress(NotFoundError):
            self.metadata.snapshots.delete(self.namespace, name, chain)

    def _checked(self, snapshotter: Snapshotter, layer: Layer, chain: str, source: _Blob | None) -> bool:
        """Whether the existing snapshot ``chain`` may stand for ``layer`` in the namespace unapplied.

        Only if the namespace holds the layer's blob itself (or is fetching it: ``source``) and an
        unpack, in any namespace, has checked that this blob uncompresses to the layer's diff ID
        (its records' ``containerd.io/uncompressed``). A ChainID is only a name: an image config
        can claim any diff IDs, so knowing another namespace's ChainIDs must not get at its files.
        """
        holders = self.metadata.content.holders(layer.descriptor.digest)
        if not any(record.labels.get(UNCOMPRESSED) == layer.diff_id for record in holders.values()):
            return False
        if source is None and self.namespace not in holders:
            return False  # applying it says which blob the namespace lacks
        try:
            snapshotter.stat(chain)
        except NotFoundError:
            return False
        if source is not None:
            source.wait()  # the namespace's own copy of the blob: fetched, its digest checked
        return True

    def _apply(
        self,
        snapshotter: Snapshotter,
        lease_id: str,
        layer: Layer,
        chain: str,
        parent: str | None,
        source: _Blob | None,
    ) -> None:
        """Extract ``layer`` into a temporary active snapshot and commit it as ``chain``.

        The temporary key is recorded in the metadata store and held by the lease before the
        snapshot exists, so a crash at any point leaves it to GC; it is gone on every way out.
        """
        name = self.snapshotter_name
        if parent is not None and name == "native":
            # A native snapshot starts as a full copy of its parent: that copy counts against the
            # reserve as the layer's entries do (apply_layer's guard), before it is made.
            usage = snapshotter.usage(parent)
            try:
                SpaceGuard(self.root / "snapshots" / name, self.min_free).charge(usage.size, usage.inodes)
            except ResourceExhaustedError as exc:
                raise ResourceExhaustedError(
                    f"copying snapshot {parent} to apply layer {layer.descriptor.digest}: {exc}"
                ) from None
        key = f"extract-{os.urandom(16).hex()} {chain}"
        self._hold(lease_id, LeaseResource.snapshot(name, key))
        self.metadata.snapshots.create(self.namespace, SnapshotRecord(name, key, SnapshotKind.ACTIVE, parent))
        from pycontainerd._archive.apply import apply_layer

        try:
            try:
                directory, whiteouts = apply_dir(snapshotter.prepare(key, parent))
                with contextlib.ExitStack() as stack:
                    stream: Readable = (
                        source
                        if source is not None
                        else stack.enter_context(self.content.reader(layer.descriptor.digest))
                    )
                    result = apply_layer(
                        directory,
                        stream,
                        media_type=layer.descriptor.media_type,
                        whiteout_format=whiteouts,
                        digest_blob=False,  # the store checked the blob's digest, or is checking it
                        min_free=self.min_free,
                    )
                if source is not None:
                    source.wait()  # the whole blob is in the store, its digest checked
                if result.diff_id != layer.diff_id:
                    raise DigestMismatchError(layer.diff_id, result.diff_id)
                # Another process may have committed the same layer meanwhile: theirs is as good.
                with contextlib.suppress(AlreadyExistsError):
                    snapshotter.commit(chain, key)
            finally:
                with contextlib.suppress(NotFoundError):  # committed: the key is gone already
                    snapshotter.remove(key)
        finally:
            self.metadata.snapshots.delete(self.namespace, name, key)

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
        from pycontainerd._remotes.reference import Reference
        from pycontainerd._remotes.resolver import Resolver

        image = self.image(source or ref)
        reference = Reference.parse(ref)
        root = _descriptor(image.target)

        blobs: list[Descriptor] = []
        manifests: list[Descriptor] = []  # children before parents
        self._order(root, blobs, manifests, set(), 0)
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
                    progress(Progress(desc.digest, desc.size, desc.size, ProgressState.DONE, desc.media_type))
        return root

    def _order(
        self,
        desc: Descriptor,
        blobs: list[Descriptor],
        manifests: list[Descriptor],
        seen: set[str],
        depth: int,
    ) -> None:
        if desc.digest in seen:
            return
        check_depth(desc, depth)
        seen.add(desc.digest)
        if desc.media_type in INDEX_MEDIA_TYPES or desc.media_type in MANIFEST_ONLY_MEDIA_TYPES:
            for child in children(self.content, desc):
                self._order(child, blobs, manifests, seen, depth + 1)
            manifests.append(desc)
        else:
            self.content.info(desc.digest)  # NotFoundError before anything is sent
            blobs.append(desc)

    # -- import and export ---------------------------------------------------------------------------

    def import_archive(
        self, stream: IO[bytes], *, base_name: str | None = None, index_name: str | None = None
    ) -> list[Image]:
        """Import an OCI layout tar or a docker-archive; returns the images it named.

        An OCI layout often names its images by tag alone (``org.opencontainers.image.ref.name:
        latest``): with ``base_name`` (ctr's ``--base-name``) such a tag becomes ``<base_name>:<tag>``.
        Images without a name in the archive are named ``import-<digest>``. With ``index_name`` (ctr's
        ``--index-name``), the archive's index (made for a docker-archive) is kept as an image of that
        name too, last in the list. Every name goes through the reference grammar: InvalidArgumentError
        names the one that does not parse, and where it came from.
        """
        from pycontainerd._images.archive import import_archive

        if base_name is not None:
            check_base_name(base_name)
        index_image = image_name(index_name, "index name") if index_name is not None else None
        with self.lease() as lease_id:
            content = self.content.with_lease(lease_id)
            found = import_archive(content, stream, base_name=base_name)
            named = [
                (name or image_name(f"import-{desc.digest}", "image name"), desc) for name, desc in found
            ]
            if index_image is not None:
                named.append((index_image, self._write_index(content, [desc for _, desc in found])))
            images = []
            for name, desc in named:
                image = Image(name, _target(desc))
                self._record(lease_id, image)
                images.append(self._set_image(image.name, image.target))
        return images

    def _write_index(self, content: NamespacedContent, manifests: Sequence[Descriptor]) -> Descriptor:
        """An OCI index of ``manifests`` (each once), written through ``content`` (the namespace's,
        under the import's lease: so the namespace holds it, and GC keeps it until it is an image)."""
        import hashlib
        import json

        # A docker-archive's image with two tags comes back twice, as the same descriptor.
        unique = {(m.digest, tuple(sorted(m.annotations.items()))): m for m in manifests}
        data = json.dumps(
            Index(tuple(unique.values())).to_json(), sort_keys=True, separators=(",", ":")
        ).encode()
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        content.write_blob(f"index-{digest}", data, len(data), digest)
        return Descriptor(OCI_INDEX, digest, len(data))

    def _record(self, lease_id: str, image: Image) -> None:
        """Hold what ``image`` reaches in the namespace until the image itself is recorded."""
        descriptors = self.descriptors(image)
        with self.metadata.transaction() as tx:
            for desc in descriptors:
                tx.leases.add_resource(self.namespace, lease_id, LeaseResource.content(desc.digest))

    def export(
        self, stream: IO[bytes], names: Sequence[str], *, platform: Platform | str | None = None
    ) -> None:
        """Write the images ``names`` to ``stream`` as one tar: an OCI image layout and a docker-archive."""
        images = [self.image(name) for name in names]
        chosen = parse_platform(platform) if isinstance(platform, str) else platform
        from pycontainerd._images.archive import export

        export(
            self.content,
            stream,
            [(image.name, _descriptor(image.target)) for image in images],
            platform=chosen,
        )

    # -- commit --------------------------------------------------------------------------------------

    def commit(
        self,
        container_id: str,
        name: str | Callable[[str], str],
        *,
        config: Mapping[str, Any] | None = None,
        author: str | None = None,
        comment: str = "",
        created_by: str = "",
    ) -> tuple[Image, Descriptor]:
        """A new image: the container's image with one more layer, the container's changes (its
        snapshot's upper directory, as a gzip layer with OCI whiteouts); returns the image and its
        config's descriptor (whose digest is the image's ID, as Docker shows it).

        ``name`` is the image's name, or makes it from the new manifest's digest. ``config`` replaces
        the image config's ``config`` object (the container's command, environment...); ``author``
        and ``comment`` go in the config and in the layer's history entry, with ``created_by``.
        The container's processes may run meanwhile: pause them first for a consistent layer.
        FailedPreconditionError for a snapshotter whose snapshot is not an overlay upper directory.
        """
        import json

        from pycontainerd._archive.diff import write_diff
        from pycontainerd._images.types import DOCKER_LAYER, OCI_LAYER_GZIP
        from pycontainerd._remotes.types import OCI_MANIFEST
        from pycontainerd._times import format_time

        container = self.containers.get(container_id)
        image = self.image(container.image)
        _, manifest = manifest_descriptor_for(self.content, _descriptor(image.target))
        mounts = self.snapshotter(container.snapshotter).mounts(container.snapshot_key)
        upper, form = apply_dir(mounts)
        if form is not WhiteoutFormat.OVERLAY:
            raise FailedPreconditionError(
                f"commit of container {container_id}: its snapshotter {container.snapshotter} keeps no"
                " upper directory of its changes (use overlayfs)"
            )
        base = json.loads(self.content.read_blob(manifest.config.digest))
        now = format_time(datetime.now(UTC))
        with self.lease() as lease_id:
            content = self.content.with_lease(lease_id)
            with content.writer(f"commit-{container_id}-{os.urandom(8).hex()}") as writer:
                diff = write_diff(None, upper, writer, compression="gzip")  # type: ignore[arg-type]
                writer.commit(diff.compressed_size, diff.digest)
            docker = manifest.media_type != OCI_MANIFEST
            layer = Descriptor(DOCKER_LAYER if docker else OCI_LAYER_GZIP, diff.digest, diff.compressed_size)
            for stale in ("container", "container_config"):
                base.pop(stale, None)
            if config is not None:
                base["config"] = dict(config)
            base["created"] = now
            if author is not None:
                base["author"] = author
            rootfs = base.setdefault("rootfs", {"type": "layers", "diff_ids": []})
            rootfs["diff_ids"] = [*rootfs.get("diff_ids", []), diff.diff_id]
            entry = {"created": now, "created_by": created_by}
            entry.update({"author": author} if author else {})
            entry.update({"comment": comment} if comment else {})
            base["history"] = [*base.get("history", []), entry]
            config_data = json.dumps(base, separators=(",", ":")).encode()
            config_desc = self._write(content, manifest.config.media_type, config_data)
            new_manifest = Manifest(config_desc, (*manifest.layers, layer), manifest.media_type)
            manifest_data = json.dumps(new_manifest.to_json(), separators=(",", ":")).encode()
            manifest_desc = self._write(content, manifest.media_type, manifest_data)
            image_name_ = name(manifest_desc.digest) if callable(name) else image_name(name, "image name")
            created = self._set_image(image_name_, _target(manifest_desc))
        return created, config_desc

    @staticmethod
    def _write(content: NamespacedContent, media_type: str, data: bytes) -> Descriptor:
        import hashlib

        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        content.write_blob(f"commit-{digest}", data, len(data), digest)
        return Descriptor(media_type, digest, len(data))

    # -- snapshots and GC ----------------------------------------------------------------------------

    def snapshots(self, snapshotter: str | None = None) -> list[SnapshotInfo]:
        """The snapshots of the namespace in ``snapshotter`` (default: the client's), parents first.

        The data of a snapshot is shared by the namespaces that record it; this lists the ones whose
        records are in this namespace (image layers, extractions in progress), as ctr's ``-n`` does.
        """
        name = snapshotter or self.snapshotter_name
        keys = {record.key for record in self.metadata.snapshots.list(self.namespace, name)}
        return [info for info in self.snapshotter(name).walk() if info.name in keys]

    def _recorded(self, key: str, snapshotter: str | None) -> str:
        """The snapshotter of the namespace's snapshot ``key``; NotFoundError if the namespace has none."""
        name = snapshotter or self.snapshotter_name
        try:
            self.metadata.snapshots.get(self.namespace, name, key)
        except NotFoundError:
            raise NotFoundError(f"snapshot {key} not found in namespace {self.namespace}") from None
        return name

    def snapshot_mounts(self, key: str, snapshotter: str | None = None) -> list[Mount]:
        """The mounts of the namespace's active snapshot or view ``key``; NotFoundError if the
        namespace has no snapshot ``key``, whatever other namespaces have."""
        return self.snapshotter(self._recorded(key, snapshotter)).mounts(key)

    def remove_snapshot(self, key: str, snapshotter: str | None = None) -> None:
        """Remove the namespace's snapshot ``key`` (refused while it has children): its record, and its
        data unless another namespace records it too. NotFoundError if the namespace has no ``key``."""
        name = self._recorded(key, snapshotter)
        if self.metadata.snapshots.holders(name, key) == [self.namespace]:
            self.snapshotter(name).remove(key)
        with contextlib.suppress(NotFoundError):
            self.metadata.snapshots.delete(self.namespace, name, key)

    def _remove_for_gc(self, snapshotter: str, key: str) -> None:
        # GC calls this for a snapshot's data once no namespace keeps a record of it.
        with contextlib.suppress(NotFoundError):
            self.snapshotter(snapshotter).remove(key)

    def gc(self) -> GCResult:
        """Collect what no image, lease or GC root reaches: blobs, content records and snapshots.

        First, what processes that died half-way left in the state directory: the abandoned tasks of
        every namespace (:meth:`TaskService.collect`: creations cut short, tasks left CREATED by a
        creator that is gone) and the mounts of creations cut short (:meth:`ContainerService.collect`).
        """
        tasks: list[tuple[str, str]] = []
        errors: list[str] = []
        with contextlib.suppress(FileNotFoundError):
            for namespace in sorted(os.listdir(self.state / "tasks")):
                tasks += [(namespace, id_) for id_ in self._tasks_of(namespace).collect(errors)]
        self.containers.collect(errors)
        return collect(
            self.metadata,
            self.content.backend,
            snapshot_remover=self._remove_for_gc,
            deleted_tasks=tuple(tasks),
            errors=tuple(errors),
        )


class _Fetch:
    """One pull's fetching: blobs into the namespace's content through its ingests, under the lease of
    ``content``, a view of the namespace's content with the pull's lease."""

    def __init__(
        self, content: NamespacedContent, fetcher: Fetcher, name: str, progress: ProgressCallback | None
    ) -> None:
        self._content = content
        self._fetcher = fetcher
        self._name = name
        self._progress = progress

    def tree(self, desc: Descriptor, matcher: PlatformMatcher, depth: int = 0) -> None:
        """Fetch ``desc`` and, for the platform, the manifests and configs below it (not the layers).

        Documents larger than their bound, or indexes nested too deep, are refused before a byte of
        them is fetched."""
        check_depth(desc, depth)
        if desc.media_type in INDEX_MEDIA_TYPES or desc.media_type in MANIFEST_ONLY_MEDIA_TYPES:
            _check_size(desc, "manifest", MAX_MANIFEST_SIZE)
        self.blob(desc)
        if desc.media_type in INDEX_MEDIA_TYPES:
            for child in read_index(self._content, desc).manifests:
                if child.platform is None or matcher.match(child.platform):
                    self.tree(child, matcher, depth + 1)
        elif desc.media_type in MANIFEST_ONLY_MEDIA_TYPES:
            config = read_manifest(self._content, desc).config
            _check_size(config, "image config", MAX_CONFIG_SIZE)
            self.blob(config)

    def _report(self, desc: Descriptor, done: int, state: ProgressState) -> None:
        if self._progress is not None:
            self._progress(Progress(desc.digest, done, desc.size, state, desc.media_type))

    def _downloading(self, event: Progress) -> None:
        """The fetcher's events, less its DONE: a blob is done once committed, which :meth:`blob`
        says, once."""
        if self._progress is not None and event.state is not ProgressState.DONE:
            self._progress(event)

    def blob(self, desc: Descriptor, watch: _Blob | None = None) -> None:
        """Have the blob ``desc`` in the namespace, held by the lease: fetched, unless the namespace
        holds it already (a copy on disk from another namespace does not count).

        ``watch`` is told where the bytes land as they are written, and when the blob is whole.
        """
        try:
            if not self._download(desc, watch):
                self._report(desc, desc.size, ProgressState.EXISTS)
        except BaseException as exc:
            if watch is not None:
                watch.finished(exc)
            raise
        if watch is not None:
            watch.finished()

    def _download(self, desc: Descriptor, watch: _Blob | None) -> bool:
        """Fetch ``desc`` through its ingest; False if the namespace holds it (or another of its
        writers committed it meanwhile)."""
        ref = f"{self._name}-{desc.digest}"
        store = self._content
        # One writer per ingest: another process pulling the same image in the namespace (or this
        # pull, for a layer listed twice) may hold it. Wait for it to commit, or to die and leave the
        # ingest to resume.
        while True:
            try:
                writer = store.writer(ref, desc.size, desc.digest)
                break
            except AlreadyExistsError:
                return False
            except LockedError:
                time.sleep(_LOCKED_POLL)
        try:
            with writer:
                self._fill(desc, writer, watch)
        except DigestMismatchError:
            # A failed commit discards the ingest itself; another writer may have taken it since.
            with contextlib.suppress(NotFoundError, LockedError):
                store.abort(ref)  # bytes that can never become the blob: the next pull starts afresh
            raise
        self._report(desc, desc.size, ProgressState.DONE)
        return True

    def _fill(self, desc: Descriptor, writer: Writer, watch: _Blob | None) -> None:
        """Write the rest of ``desc`` into ``writer`` (resuming where it stands if it can) and commit."""
        stream: BaseHTTPResponse | VerifyingReader | None = None
        resumed: BaseHTTPResponse | None = None
        if writer.offset != desc.size or writer.digest() != desc.digest:
            resumable = 0 < writer.offset < desc.size and not desc.is_manifest
            resumed = self._resume(desc, writer.offset) if resumable else None
            if resumed is None:
                writer.truncate(0)
            # The writer hashes every byte and its commit checks the digest: no second hash here.
            stream = resumed or self._fetcher.fetch(desc, progress=self._downloading, verify_digest=False)
        # else: the process writing it died between the last write and the commit
        if watch is not None:
            watch.started(writer.data_path, writer.offset)
        if stream is not None:
            try:
                while chunk := stream.read(_CHUNK):
                    writer.write(chunk)
                    if watch is not None:
                        watch.wrote(len(chunk))
            finally:
                stream.close()
                if resumed is not None:
                    resumed.release_conn()
        writer.commit(desc.size, desc.digest)

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


def _check_size(desc: Descriptor, what: str, limit: int) -> None:
    if desc.size > limit:
        raise InvalidArgumentError(f"{what} {desc.digest}: {desc.size} bytes, more than the {limit} accepted")


class _Blob:
    """A layer blob as it arrives: written into its ingest by a download, read meanwhile by the unpacker.

    The download says where the bytes land (:meth:`started`), how many it wrote (:meth:`wrote`) and
    when the blob is committed or the download failed (:meth:`finished`). :meth:`read` follows the
    ingest's file (through a descriptor opened at the start, which the commit's rename does not
    disturb): it returns bytes as soon as they are written and waits when it has caught up. A blob
    the store had already, or that another writer committed, is read from the store.
    """

    def __init__(self, content: NamespacedContent, descriptor: Descriptor) -> None:
        self.descriptor = descriptor
        self._content = content
        import threading  # here: only pulls stream blobs between threads

        self._changed = threading.Condition()
        self._fd: int | None = None
        self._written = 0
        self._finished = False
        self._error: BaseException | None = None
        self._position = 0
        self._stored: io.BufferedReader | None = None

    def started(self, data: Path, offset: int) -> None:
        """The download writes to ``data``, which holds ``offset`` bytes of the blob already."""
        fd = os.open(data, os.O_RDONLY | os.O_CLOEXEC)
        with self._changed:
            self._fd, self._written = fd, offset
            self._changed.notify_all()

    def wrote(self, size: int) -> None:
        with self._changed:
            self._written += size
            self._changed.notify_all()

    def finished(self, error: BaseException | None = None) -> None:
        """The blob is committed (or was there already), or the download failed with ``error``."""
        with self._changed:
            self._finished, self._error = True, error
            self._changed.notify_all()

    def _check(self) -> None:
        if self._error is not None:
            kind = ResourceExhaustedError if isinstance(self._error, ResourceExhaustedError) else ContentError
            raise kind(f"fetching {self.descriptor.digest} failed: {self._error}") from self._error

    def read(self, size: int = -1, /) -> bytes:
        """Up to ``size`` bytes (all that are written, if negative), waiting for some; b"" at the end."""
        with self._changed:
            while True:
                self._check()
                if self._fd is not None and self._position < self._written:
                    fd, available = self._fd, self._written - self._position
                    break
                if self._finished:
                    if self._fd is not None:
                        return b""
                    if self._stored is None:
                        self._stored = self._content.reader(self.descriptor.digest)
                    return self._stored.read(size)
                self._changed.wait()
        data = os.pread(fd, available if size < 0 else min(size, available), self._position)
        self._position += len(data)
        return data

    def wait(self) -> None:
        """Wait for the download's end; raise if it failed (a digest that did not match, say)."""
        with self._changed:
            self._changed.wait_for(lambda: self._finished)
            self._check()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._stored is not None:
            self._stored.close()


def _resolve(
    resolver: Resolver, reference: Reference, mirrors: Sequence[str]
) -> tuple[Reference, Descriptor]:
    """Resolve ``reference`` through the first of ``mirrors`` that has it (docker.io's references
    only), else where it names."""
    from pycontainerd._remotes.reference import DEFAULT_DOMAIN, Reference

    if reference.domain == DEFAULT_DOMAIN:
        for mirror in mirrors:
            mirrored = Reference(mirror, reference.path, reference.tag, reference.digest)
            try:
                return resolver.resolve(mirrored)
            except RegistryError:
                continue  # not there, or the mirror is down: the next, then docker.io
    return resolver.resolve(reference)
