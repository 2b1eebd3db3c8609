"""Containers: records made from an image, a snapshot for their root filesystem and a generated OCI spec.

``ContainerService.create(id, image, *opts)`` prepares the active snapshot ``<namespace>/<id>`` on the
image's top layer (unpacking the image first if needed), generates the spec (Docker's defaults, then the
image config, then ``opts``; when it names a user, the snapshot is mounted for a moment so that the user
is resolved through the image's ``/etc/passwd`` and ``/etc/group``) and records the container. All of
it happens under a lease, and a failure at any step removes what the earlier steps made. A crash
cannot leave what the next ``Client.gc`` does not find: the snapshot is recorded (held by the lease,
which names this process) before it is made, and a removal takes the data before the record.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pyrunc
from pycontainerd._errors import (
    AlreadyExistsError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    PycontainerdError,
)
from pycontainerd._images import image_name, manifest_descriptor_for, read_config
from pycontainerd._metadata import (
    GC_REF_SNAPSHOT,
    Container,
    Image,
    LeaseResource,
    SnapshotKind,
    SnapshotRecord,
    check_container_id,
)
from pycontainerd._monitor import process_alive, write_process_file
from pycontainerd._remotes import Descriptor
from pycontainerd._snapshots import Kind, Mount, chain_id, mount_all, remove_tree, unmount_all
from pycontainerd._tasks.cgroups import cgroups_path
from pycontainerd._tasks.resources import Resources
from pycontainerd._tasks.stops import stop_point
from pycontainerd.oci import SpecContext, SpecOpt, generate_spec, with_cgroups_path, with_image_config

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

    from pycontainerd._content.protocol import Provider
    from pycontainerd._events import EventLog
    from pycontainerd._images import ImageConfig
    from pycontainerd._metadata import MetadataStore, NamespacedContent, Transaction
    from pycontainerd._monitor.logfile import LogEntry
    from pycontainerd._snapshots import Snapshotters
    from pycontainerd._tasks.protocols import ImageSource
    from pycontainerd._tasks.tasks import TaskService

__all__ = ["DEFAULT_RUNTIME", "ContainerService"]

#: The runtime a container records; the tasks service runs it with pyrunc.
DEFAULT_RUNTIME = "io.pycontainerd.pyrunc.v1"


class ContainerService:
    """The containers of ``namespace`` (``client.containers``).

    Their records are in ``metadata``; an image's records and blobs come from ``images`` and
    ``content`` (the namespace's view of the content store), its root filesystem from
    ``snapshotters``. A container's snapshot is mounted for a moment under ``scratch`` when its spec
    names a user. Deleting a container deletes its task through ``tasks``; ``events`` gets the
    containers' events.
    """

    def __init__(
        self,
        namespace: str,
        *,
        metadata: MetadataStore,
        content: NamespacedContent,
        images: ImageSource,
        snapshotters: Snapshotters,
        tasks: TaskService,
        events: EventLog,
        scratch: Path,
    ) -> None:
        self._namespace = namespace
        self._metadata = metadata
        self._content = content
        self._images = images
        self._snapshotters = snapshotters
        self._tasks = tasks
        self._events = events
        self._scratch = scratch

    def image_config(self, name: str) -> ImageConfig:
        """The config of the image ``name`` for the host platform."""
        return self._config(self._images.image(name), self._content)[1]

    def _config(self, image: Image, store: Provider) -> tuple[str, ImageConfig]:
        """(the digest, the parsed config) of ``image`` for the host platform, read from ``store``."""
        target = Descriptor(image.target.media_type, image.target.digest, image.target.size)
        _, manifest = manifest_descriptor_for(store, target)
        return manifest.config.digest, read_config(store, manifest.config)

    def _record_unpacked(
        self, config_digest: str, chain: str, snapshotter: str, lease_id: str, container_id: str
    ) -> bool:
        """If the image is unpacked already in the namespace (containerd's ``IsUnpacked``: its config,
        as the namespace records it, names its top layer's ChainID ``chain`` for ``snapshotter``, and
        the namespace records that snapshot), in one transaction: the lease holds that layer, and
        the container's snapshot is recorded on it (:meth:`_record`). Returns whether it was: if not,
        :meth:`ImageSource.unpack` does the work (and the bookkeeping an unpacked image needs, which costs
        five metadata transactions even when everything is in place already)."""
        namespace = self._namespace
        with self._metadata.transaction() as tx:
            try:
                labels = tx.content.get(namespace, config_digest).labels
            except NotFoundError:
                return False
            if labels.get(GC_REF_SNAPSHOT + snapshotter) != chain:
                return False
            try:
                tx.snapshots.get(namespace, snapshotter, chain)
            except NotFoundError:  # removed by hand since
                return False
            tx.leases.add_resource(namespace, lease_id, LeaseResource.snapshot(snapshotter, chain))
            self._record(tx, snapshotter, chain, lease_id, container_id)
        return True

    def _record(
        self, tx: Transaction, snapshotter: str, parent: str | None, lease_id: str, container_id: str
    ) -> None:
        """Record the container's snapshot ``<namespace>/<id>`` (active, on ``parent``; on nothing for
        an image without layers) before its data
        exists, held by the lease: a crash leaves a record that gc finds. AlreadyExistsError if it is
        recorded: a creation of the same container is under way, or one was cut short (gc removes
        its snapshot once its process is gone)."""
        namespace = self._namespace
        key = f"{namespace}/{container_id}"
        try:
            tx.snapshots.create(namespace, SnapshotRecord(snapshotter, key, SnapshotKind.ACTIVE, parent))
        except AlreadyExistsError:
            raise AlreadyExistsError(
                f"container {container_id} is being created in {namespace}, or its creation was cut"
                f" short: its snapshot {key} exists (gc removes it once the creating process is gone)"
            ) from None
        tx.leases.add_resource(namespace, lease_id, LeaseResource.snapshot(snapshotter, key))

    def _committed(self, snapshotter: str, key: str) -> bool:
        try:
            return self._snapshotters.get(snapshotter).stat(key).kind is Kind.COMMITTED
        except NotFoundError:
            return False

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
        namespace = self._namespace
        with contextlib.suppress(NotFoundError):
            self._metadata.containers.get(namespace, container_id)
            raise AlreadyExistsError(f"container {container_id} already exists in {namespace}")
        try:
            record = self._images.image(image)
        except NotFoundError:
            raise NotFoundError(
                f"image {image_name(image, 'image name')} not found in namespace {namespace}: pull it"
                f" first (pyctr{'' if namespace == 'default' else f' -n {namespace}'} images pull {image})"
            ) from None
        # Read past the namespace's checks (they cost two metadata transactions): the config is used
        # only if the namespace holds it unpacked (_record_unpacked reads its records there) or once
        # unpack, which reads through the namespace, succeeded.
        config_digest, config = self._config(record, self._content.backend)
        name = snapshotter or self._snapshotters.default
        key = f"{namespace}/{container_id}"
        # An image without layers has no ChainID to look for: unpack finds no layer and returns None,
        # and the container's root is a new, empty snapshot with no parent (as containerd's).
        chain = chain_id(config.rootfs.diff_ids) if config.rootfs.diff_ids else None
        with self._metadata.lease(namespace) as lease_id:
            recorded = chain is not None and self._record_unpacked(
                config_digest, chain, name, lease_id, container_id
            )
            prepared = False
            try:
                committed = chain is not None and recorded and self._committed(name, chain)
                parent = chain if committed else self._images.unpack(record.name)
                if not recorded:
                    with self._metadata.transaction() as tx:
                        self._record(tx, name, parent, lease_id, container_id)
                    recorded = True
                stop_point("container-recorded")
                try:
                    mounts = self._snapshotters.get(name).prepare(key, parent)
                except AlreadyExistsError:
                    raise AlreadyExistsError(
                        f"container {container_id} cannot be created in {namespace}: snapshotter {name}"
                        f" has a snapshot {key} that no record names (remove it: pyctr snapshots rm {key})"
                    ) from None
                prepared = True
                stop_point("container-prepared")
                with _Mounter(mounts, self._scratch) as rootfs:
                    spec = generate_spec(
                        SpecContext(container_id, namespace, rootfs.path, mount=rootfs.mount),
                        with_cgroups_path(cgroups_path(namespace, container_id)),
                        with_image_config(config),
                        *opts,
                    )
                container = self._metadata.containers.create(
                    namespace,
                    Container(container_id, record.name, runtime, spec, name, key, dict(labels or {})),
                )
            except BaseException:
                if prepared:
                    self._remove_snapshot(name, key)
                elif recorded:  # only the record: data that is there without one is not this call's
                    with contextlib.suppress(NotFoundError):
                        self._metadata.snapshots.delete(namespace, name, key)
                raise
        self._events.publish(
            "/containers/create", namespace, id=container_id, image=record.name, runtime=runtime
        )
        return container

    def get(self, container_id: str) -> Container:
        """NotFoundError if there is no such container in the namespace."""
        return self._metadata.containers.get(self._namespace, container_id)

    def update_resources(self, container_id: str, resources: Resources) -> Container:
        """Set ``resources`` (the fields it sets; the others keep theirs) in the container's spec,
        for its next task, as ``docker update`` does to a container. A running task keeps its
        limits: :meth:`Task.update` changes those. InvalidArgumentError names a value the runtime's
        spec does not allow, by its ``linux.resources`` path."""
        spec = dict(self.get(container_id).spec)
        linux = dict(spec.get("linux") or {})
        current = dict(linux.get("resources") or {})
        for group, fields in resources.to_oci().items():
            current[group] = {**(current.get(group) or {}), **fields}
        try:
            pyrunc.Resources.from_json(current)
        except pyrunc.SpecError as exc:
            raise InvalidArgumentError(f"update container {container_id}: {exc}") from exc
        spec["linux"] = {**linux, "resources": current}
        return self._metadata.containers.set_spec(self._namespace, container_id, spec)

    @contextlib.contextmanager
    def rootfs(self, container_id: str, *, mounts: bool = True) -> Iterator[str]:
        """The container's root filesystem for the duration of the block, as a directory path.

        - a task whose processes run (or are paused), with ``mounts``: ``/proc/<pid>/root/.``, the
          root its processes see, with what is mounted in their mount namespace (binds, tmpfs);
        - any other task: its root filesystem alone, which stays mounted until the task is deleted;
        - no task: the snapshot, mounted for the block under the scratch directory (named by an owner
          file, so that :meth:`collect` takes a mount a crash left).

        Open paths below it only relative to a descriptor of it, resolving symlinks inside it: a
        running container can change its files at any time. NotFoundError if there is no container.
        """
        container = self.get(container_id)
        task = None
        with contextlib.suppress(NotFoundError):
            task = self._tasks.get(container_id)
        if mounts and task is not None and task.status().running and task.pid > 0:
            yield f"/proc/{task.pid}/root/."
            return
        rootfs = task.directory / "rootfs" if task is not None else None
        if rootfs is not None and (os.path.ismount(rootfs) or (rootfs.is_dir() and any(rootfs.iterdir()))):
            yield str(rootfs)
            return
        snapshot = self._snapshotters.get(container.snapshotter).mounts(container.snapshot_key)
        with _Mounter(snapshot, self._scratch) as mounter:
            mounter.mount()
            yield str(mounter.path)

    def collect(self, errors: list[str]) -> None:
        """Unmount and remove what creations cut short by a crash left mounted to read an image's
        users; why something cannot be is appended to ``errors``. Part of ``Client.gc``."""
        _Mounter.collect(self._scratch, errors)

    def list(self) -> list[Container]:
        return self._metadata.containers.list(self._namespace)

    def log_path(self, container_id: str) -> Path:
        """The file the container's log is in now (its tasks' output; rotated files beside it, ``.1``
        the newest). It exists once a task of the container was created."""
        self.get(container_id)
        return self._tasks.log_path(container_id)

    def logs(
        self,
        container_id: str,
        *,
        since: int | None = None,
        until: int | None = None,
        tail: int | None = None,
        follow: bool = False,
    ) -> Iterator[Sequence[LogEntry]]:
        """The container's log, what its tasks wrote to stdout and stderr, across their runs: entries
        ``(stream, data, time)``, a line each (1 stdout, 2 stderr; ``time`` in nanoseconds since
        the epoch, when the monitor read it), oldest first, in batches (lists) as read. Only those
        at ``since`` or later and at ``until`` or earlier; of those, the last ``tail`` (read
        backwards from the end). With ``follow``, what comes next too, until the container's task
        exits (at once if it has none running) or ``until`` passes, or the caller closes the
        iterator."""
        self.get(container_id)
        return self._tasks.logs_of(container_id, since=since, until=until, tail=tail, follow=follow)

    def delete(self, container_id: str, *, force: bool = False) -> None:
        """Remove the container, its snapshot, its log and a stopped task; a running task needs
        ``force`` (it is killed first). FailedPreconditionError names the task's state otherwise."""
        container = self.get(container_id)
        with contextlib.suppress(NotFoundError):
            task = self._tasks.get(container_id)
            if task.status().running and not force:
                raise FailedPreconditionError(
                    f"container {container_id} has a {task.status().value} task: stop it first, or force"
                )
            task.delete(force=True)
        self._metadata.containers.delete(self._namespace, container_id)
        self._remove_snapshot(container.snapshotter, container.snapshot_key)
        self._tasks.remove_log(container_id)
        self._events.publish("/containers/delete", self._namespace, id=container_id)

    def _remove_snapshot(self, snapshotter: str, key: str) -> None:
        # The data first: a crash in between leaves a record, which gc sweeps (data without a record
        # would never be found again).
        with contextlib.suppress(NotFoundError):
            self._snapshotters.get(snapshotter).remove(key)
        with contextlib.suppress(NotFoundError):
            self._metadata.snapshots.delete(self._namespace, snapshotter, key)


class _Mounter:
    """The container's snapshot, mounted on a temporary directory only if :meth:`mount` is called (a
    spec without a user never reads its root filesystem, and spares the mount), and unmounted at
    the end of the ``with`` block. ``rootfs-<random>.owner`` beside it names this process, so that
    :meth:`collect` can tell the mount of a crashed creation from one in use."""

    def __init__(self, mounts: Sequence[Mount], parent: Path) -> None:
        self._mounts = mounts
        self._parent = parent
        self.path = parent / f"rootfs-{os.urandom(8).hex()}"
        self._made = False

    def mount(self) -> None:
        self._parent.mkdir(parents=True, exist_ok=True)
        write_process_file(self.path.with_suffix(_OWNER))  # first: a crash leaves nothing unnamed
        self._made = True
        self.path.mkdir(mode=0o700)
        mount_all(self._mounts, self.path)
        stop_point("container-mounted")

    def __enter__(self) -> _Mounter:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._made:
            _Mounter._remove(self.path)

    @staticmethod
    def _remove(path: Path) -> None:
        with contextlib.suppress(FileNotFoundError):
            unmount_all(path)
            remove_tree(path)  # empty once unmounted, and it never enters a mount point anyway
        path.with_suffix(_OWNER).unlink(missing_ok=True)

    @staticmethod
    def collect(parent: Path, errors: list[str]) -> None:
        """Unmount and remove the mounts under ``parent`` whose process is gone; why one cannot be
        is appended to ``errors``."""
        with contextlib.suppress(FileNotFoundError):
            for entry in os.listdir(parent):
                if entry.endswith(_OWNER) and not process_alive(parent / entry):
                    try:
                        _Mounter._remove(parent / entry.removesuffix(_OWNER))
                    except (PycontainerdError, OSError) as exc:
                        errors.append(f"mount {parent / entry.removesuffix(_OWNER)}: {exc}")


_OWNER = ".owner"
