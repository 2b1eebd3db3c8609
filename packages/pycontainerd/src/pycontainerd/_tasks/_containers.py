"""Containers: records made from an image, a snapshot for their root filesystem and a generated OCI spec.

``ContainerService.create(id, image, *opts)`` prepares the active snapshot ``<namespace>/<id>`` on the
image's top layer (unpacking the image first if needed), generates the spec (Docker's defaults, then the
image config, then ``opts``; when it names a user, the snapshot is mounted for a moment so that the user
is resolved through the image's ``/etc/passwd`` and ``/etc/group``) and records the container. All of
it happens under a lease, and a failure at any step removes what the earlier steps made.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from pycontainerd._errors import AlreadyExistsError, FailedPreconditionError, NotFoundError
from pycontainerd._images import manifest_descriptor_for
from pycontainerd._images._walk import read_config
from pycontainerd._metadata import (
    GC_REF_SNAPSHOT,
    Container,
    Image,
    LeaseResource,
    SnapshotKind,
    SnapshotRecord,
    check_container_id,
)
from pycontainerd._remotes import Descriptor
from pycontainerd._snapshots import Kind, Mount, chain_id, mount_all, unmount_all
from pycontainerd.oci import SpecContext, SpecOpt, generate_spec, with_cgroups_path, with_image_config

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from pycontainerd._client import Client
    from pycontainerd._content._protocol import Provider
    from pycontainerd._images._types import ImageConfig

__all__ = ["DEFAULT_RUNTIME", "ContainerService", "cgroups_path"]

#: The runtime a container records; the tasks service runs it with pyrunc.
DEFAULT_RUNTIME = "io.pycontainerd.pyrunc.v1"


def cgroups_path(namespace: str, container_id: str) -> str:
    """The spec's ``cgroupsPath`` for a container: relative, so below the cgroup of the process that
    creates the task, in pyrunc's own directory (``<own cgroup>/pyrunc/<namespace>@<id>``; ``@`` is in
    neither a namespace nor an id, so no two containers share one)."""
    return f"pyrunc/{namespace}@{container_id}"


class ContainerService:
    """The containers of a client's namespace (``client.containers``)."""

    def __init__(self, client: Client) -> None:
        self._client = client

    @property
    def _namespace(self) -> str:
        return self._client.namespace

    def image_config(self, name: str) -> ImageConfig:
        """The config of the image ``name`` for the host platform."""
        return self._config(self._client.image(name), self._client.content)[1]

    def _config(self, image: Image, store: Provider) -> tuple[str, ImageConfig]:
        """(the digest, the parsed config) of ``image`` for the host platform, read from ``store``."""
        target = Descriptor(image.target.media_type, image.target.digest, image.target.size)
        _, manifest = manifest_descriptor_for(store, target)
        return manifest.config.digest, read_config(store, manifest.config)

    def _unpacked(
        self, config_digest: str, config: ImageConfig, snapshotter: str, lease_id: str, key: str
    ) -> str | None:
        """The image's top snapshot if the image is unpacked already (containerd's ``IsUnpacked``):
        its config names that ChainID for ``snapshotter`` and the snapshot is committed. It and the
        container's snapshot ``key`` are held by the lease from here on (one transaction). None
        otherwise: then :meth:`Client.unpack` does the work (and the bookkeeping an unpacked image
        needs, which costs five metadata transactions even when everything is in place already)."""
        client = self._client
        namespace = self._namespace
        chain = chain_id(config.rootfs.diff_ids)
        with client.metadata.transaction() as tx:
            try:
                labels = tx.content.get(namespace, config_digest).labels
            except NotFoundError:
                return None
            if labels.get(GC_REF_SNAPSHOT + snapshotter) != chain:
                return None
            for held in (chain, key):
                tx.leases.add_resource(namespace, lease_id, LeaseResource.snapshot(snapshotter, held))
        try:
            info = client.snapshotter(snapshotter).stat(chain)
        except NotFoundError:
            return None
        return chain if info.kind is Kind.COMMITTED else None

    def create(
        self,
        container_id: str,
        image: str,
        *opts: SpecOpt,
        snapshotter: str | None = None,
        labels: Mapping[str, str] | None = None,
        runtime: str = DEFAULT_RUNTIME,
    ) -> Container:
        """Create the container ``container_id`` from ``image``; ``opts`` come after the image config.

        AlreadyExistsError if the id is taken (nothing is made then); NotFoundError for a missing image,
        or a user the image doesn't have; InvalidArgumentError for a bad option.
        """
        check_container_id(container_id)
        client = self._client
        namespace = self._namespace
        with contextlib.suppress(NotFoundError):
            client.metadata.containers.get(namespace, container_id)
            raise AlreadyExistsError(f"container {container_id} already exists in {namespace}")
        record = client.image(image)
        # Read past the namespace's checks (they cost two metadata transactions): the config is used
        # only if the namespace holds it unpacked (_unpacked reads its record there) or once unpack,
        # which reads through the namespace, succeeded.
        config_digest, config = self._config(record, client.content.backend)
        name = snapshotter or client.snapshotter_name
        key = f"{namespace}/{container_id}"
        with client.lease() as lease_id:
            # An image without layers has no ChainID to look for: unpack finds no layer and returns
            # None, and the container's root is a new, empty snapshot (as containerd's).
            parent = (
                self._unpacked(config_digest, config, name, lease_id, key) if config.rootfs.diff_ids else None
            )
            if parent is None:
                parent = client.unpack(record.name)
                client.metadata.leases.add_resource(namespace, lease_id, LeaseResource.snapshot(name, key))
            store = client.snapshotter(name)
            try:
                mounts = store.prepare(key, parent)
            except AlreadyExistsError:
                raise AlreadyExistsError(
                    f"container {container_id} already exists in {namespace} (its snapshot {key} does)"
                ) from None
            try:
                with _Mounter(mounts, client.state / "tmp") as rootfs:
                    spec = generate_spec(
                        SpecContext(container_id, namespace, rootfs.path, mount=rootfs.mount),
                        with_cgroups_path(cgroups_path(namespace, container_id)),
                        with_image_config(config),
                        *opts,
                    )
                with client.metadata.transaction() as tx:
                    tx.snapshots.create(namespace, SnapshotRecord(name, key, SnapshotKind.ACTIVE, parent))
                    container = tx.containers.create(
                        namespace,
                        Container(container_id, record.name, runtime, spec, name, key, dict(labels or {})),
                    )
            except BaseException:
                self._remove_snapshot(name, key)
                raise
        client.events.publish(
            "/containers/create", namespace, id=container_id, image=record.name, runtime=runtime
        )
        return container

    def get(self, container_id: str) -> Container:
        """NotFoundError if there is no such container in the namespace."""
        return self._client.metadata.containers.get(self._namespace, container_id)

    def list(self) -> list[Container]:
        return self._client.metadata.containers.list(self._namespace)

    def delete(self, container_id: str, *, force: bool = False) -> None:
        """Remove the container, its snapshot and a stopped task; a running task needs ``force``
        (it is killed first). FailedPreconditionError names the task's state otherwise."""
        client = self._client
        container = self.get(container_id)
        with contextlib.suppress(NotFoundError):
            task = client.tasks.get(container_id)
            if task.status().running and not force:
                raise FailedPreconditionError(
                    f"container {container_id} has a {task.status().value} task: stop it first, or force"
                )
            task.delete(force=True)
        client.metadata.containers.delete(self._namespace, container_id)
        self._remove_snapshot(container.snapshotter, container.snapshot_key)
        client.events.publish("/containers/delete", self._namespace, id=container_id)

    def _remove_snapshot(self, snapshotter: str, key: str) -> None:
        client = self._client
        with contextlib.suppress(NotFoundError):
            client.metadata.snapshots.delete(self._namespace, snapshotter, key)
        with contextlib.suppress(NotFoundError):
            client.snapshotter(snapshotter).remove(key)


class _Mounter:
    """The container's snapshot, mounted on a temporary directory only if :meth:`mount` is called (a
    spec without a user never reads its rootfs: mounting and unmounting took ~3 ms), and unmounted at
    the end of the ``with`` block."""

    def __init__(self, mounts: Sequence[Mount], parent: Path) -> None:
        self._mounts = mounts
        self._parent = parent
        self.path = parent / f"rootfs-{os.urandom(8).hex()}"
        self._made = False

    def mount(self) -> None:
        self._parent.mkdir(parents=True, exist_ok=True)
        self.path.mkdir(mode=0o700)
        self._made = True
        mount_all(self._mounts, self.path)

    def __enter__(self) -> _Mounter:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._made:
            try:
                unmount_all(self.path)
            finally:
                self.path.rmdir()  # empty once unmounted; never a recursive removal through a mount
