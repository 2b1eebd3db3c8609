"""Containers: the lifecycle verbs behind the CLI, usable from Python.

Every verb follows the same four steps: refresh (derive the status from the kernel), guard
(:func:`pyrunc._container.state.check_allowed`), act, save. :class:`Container` stands on top of the
lifecycle: :mod:`.create` makes containers (create, run, exec) and :mod:`.remove` ends them, and the
verbs on a container that exists import neither the create machinery nor ``enum`` (the guards work
on :mod:`.state`'s status strings; :meth:`Container.status` alone turns one into a
:class:`~pyrunc.ContainerStatus`; see ARCHITECTURE.md, start-up).
"""

from __future__ import annotations

import posix

from pyrunc._container.remove import destroy, post_hooks
from pyrunc._container.state import (
    EXEC_FIFO,
    SavedState,
    Status,
    check_allowed,
    check_id,
    container_dir,
    process_start_time,
)
from pyrunc._errors import ContainerNotFoundError, PyruncError
from pyrunc._model import Model
from pyrunc._signals import signal

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Final

    from pyrunc._cgroups.stats import Stats
    from pyrunc._container.options import CreateOptions
    from pyrunc._container.status import ContainerStatus
    from pyrunc._spec.process import Process
    from pyrunc._spec.resources import Resources

__all__ = ["DEFAULT_ROOT", "Container", "ContainerState"]

DEFAULT_ROOT = "/run/pyrunc"
OCI_VERSION = "1.0.2"


class ContainerState(Model):
    """The OCI state of a container (what ``pyrunc state`` prints); ``status`` is its string."""

    __slots__ = ("annotations", "bundle", "created", "id", "oci_version", "pid", "rootfs", "status")

    def __init__(
        self,
        *,
        id: str,
        pid: int,
        status: str,
        bundle: str,
        rootfs: str,
        created: str,
        annotations: dict[str, str],
        oci_version: str = OCI_VERSION,
    ) -> None:
        self.id: Final = id
        self.pid: Final = pid
        self.status: Final = status
        self.bundle: Final = bundle
        self.rootfs: Final = rootfs
        self.created: Final = created
        self.annotations: Final = annotations
        self.oci_version: Final = oci_version

    def to_json(self) -> dict[str, object]:
        data: dict[str, object] = {
            "ociVersion": self.oci_version,
            "id": self.id,
            "pid": self.pid,
            "status": self.status,
            "bundle": self.bundle,
            "rootfs": self.rootfs,
            "created": self.created,
            "owner": "",
        }
        if self.annotations:
            data["annotations"] = self.annotations
        return data


class Container:
    """A container in a state directory ``<root>/<id>``; see the module docstring."""

    __slots__ = ("_saved", "directory", "id", "root")

    def __init__(self, container_id: str, root: str, saved: SavedState) -> None:
        self.id = container_id
        self.root = root
        self.directory = container_dir(root, container_id)
        self._saved = saved

    # -- creation ------------------------------------------------------------------------
    @classmethod
    def create(cls, container_id: str, options: CreateOptions, *, root: str = DEFAULT_ROOT) -> Container:
        """Create the container and leave its init waiting for :meth:`start` (``runc create``).
        With ``process.terminal`` the pty master goes to the unix socket ``options.console_socket``."""
        from pyrunc._container.create import create

        saved, _, _ = create(container_id, root, options, start=False, bridge=False)
        return cls(container_id, root, saved)

    @classmethod
    def run(
        cls, container_id: str, options: CreateOptions, *, root: str = DEFAULT_ROOT, detach: bool = False
    ) -> int:
        """Create, start and (unless ``detach``) wait: the init's exit code, 128+signal if
        killed. The container is deleted when it exits (``runc run``). A terminal without a
        console socket is bridged to our own stdin and stdout."""
        from pyrunc._container.create import run

        return run(container_id, root, options, detach=detach)

    # -- loading -------------------------------------------------------------------------
    @classmethod
    def load(cls, container_id: str, root: str = DEFAULT_ROOT) -> Container:
        """The container ``container_id`` under ``root``; ContainerNotFoundError if none."""
        check_id(container_id)
        directory = container_dir(root, container_id)
        try:
            saved = SavedState.load(directory)
        except FileNotFoundError:
            raise ContainerNotFoundError(container_id) from None
        return cls(container_id, root, saved)

    @classmethod
    def all(cls, root: str = DEFAULT_ROOT) -> list[Container]:
        """Every container under ``root``, by id."""
        try:
            names = sorted(posix.listdir(root))
        except FileNotFoundError:
            return []
        containers = []
        for name in names:
            try:
                containers.append(cls.load(name, root))
            except (ContainerNotFoundError, PyruncError):
                continue
        return containers

    # -- status --------------------------------------------------------------------------
    @property
    def pid(self) -> int:
        return self._saved.init_pid

    @property
    def bundle(self) -> str:
        return self._saved.bundle

    @property
    def cgroup_paths(self) -> dict[str, str]:
        """The container's cgroup directories by controller (v1; ``""`` for the v2 hierarchy), as
        :func:`pyrunc.cgroup_paths` gives them, recorded at create."""
        return dict(self._saved.cgroup_paths)

    def status(self) -> ContainerStatus:
        """Derived from the kernel each time: stopped, created, paused or running."""
        from pyrunc._container.status import ContainerStatus

        return ContainerStatus(self._refresh())

    def _refresh(self) -> str:
        """The status (a :class:`~pyrunc._container.state.Status` string), from the kernel."""
        if process_start_time(self._saved.init_pid) != self._saved.init_start_time:
            return Status.STOPPED
        try:
            posix.stat(f"{self.directory}/{EXEC_FIFO}")
            return Status.CREATED
        except OSError:
            pass
        try:
            if self._saved.cgroups().is_frozen():
                return Status.PAUSED
        except (OSError, PyruncError):
            pass
        return Status.RUNNING

    def state(self) -> ContainerState:
        status = self._refresh()
        return ContainerState(
            id=self.id,
            pid=0 if status == Status.STOPPED else self._saved.init_pid,
            status=status,
            bundle=self._saved.bundle,
            rootfs=self._saved.rootfs,
            created=self._saved.created,
            annotations=self._saved.annotations,
            oci_version=self._saved.oci_version,
        )

    # -- verbs ---------------------------------------------------------------------------
    def start(self) -> None:
        """Release the init waiting on the exec fifo (``runc start``)."""
        check_allowed("start", self._refresh(), self.id)
        fifo = f"{self.directory}/{EXEC_FIFO}"
        fd = posix.open(fifo, posix.O_RDONLY | posix.O_NONBLOCK | posix.O_CLOEXEC)
        try:
            # The init opens the fifo for writing as soon as we are reading, writes one byte,
            # and execs; poll so that an init that died meanwhile does not hang us.
            import select

            poller = select.poll()
            poller.register(fd, select.POLLIN)
            while not poller.poll(100):
                if process_start_time(self._saved.init_pid) != self._saved.init_start_time:
                    raise PyruncError("container init exited before it was started")
            posix.read(fd, 1)
        finally:
            posix.close(fd)
            posix.unlink(fifo)
        post_hooks(self._saved, "poststart", Status.RUNNING)

    def kill(self, sig: int = signal.SIGTERM, *, all: bool = False) -> None:
        """Send ``sig`` to the init, or with ``all`` to every process in the container's cgroup
        (whatever the init's status: processes can outlive an init that shares a pid namespace,
        and containerd's shim relies on reaching them, as runc does)."""
        if not all:
            check_allowed("kill", self._refresh(), self.id)
        pids = self._saved.cgroups().pids() if all else [self._saved.init_pid]
        for pid in pids:
            try:
                posix.kill(pid, sig)
            except ProcessLookupError:
                if not all:
                    raise PyruncError("no such process") from None

    def pause(self) -> None:
        check_allowed("pause", self._refresh(), self.id)
        self._saved.cgroups().freeze()

    def resume(self) -> None:
        check_allowed("resume", self._refresh(), self.id)
        self._saved.cgroups().thaw()

    def update(self, resources: Resources) -> None:
        """Change the cgroup limits of a live container (``runc update``)."""
        check_allowed("update", self._refresh(), self.id)
        self._saved.cgroups().update(resources)

    def stats(self) -> Stats:
        """Resource usage read from the container's cgroups (memory, cpu, pids, blkio)."""
        return self._saved.cgroups().stats()

    def processes(self) -> list[int]:
        """Host pids of every process in the container (``runc ps --format json``)."""
        return self._saved.cgroups().pids()

    def delete(self, *, force: bool = False) -> None:
        """Remove a stopped (or created) container; ``force`` kills a running one first."""
        status = self._refresh()
        if not force:
            check_allowed("delete", status, self.id)
        destroy(self._saved, self.root, status)
        post_hooks(self._saved, "poststop", Status.STOPPED)

    def exec(
        self,
        process: Process,
        *,
        detach: bool = False,
        pid_file: str | None = None,
        preserve_fds: int = 0,
        console_socket: str | None = None,
    ) -> int:
        """Run ``process`` inside the container. Returns its pid with ``detach``, else waits
        and returns its exit status (128+signal if killed). A process without ``capabilities``
        gets the container's, as with runc. A terminal goes to ``console_socket``, or without one
        is bridged to our stdio."""
        from pyrunc._container.create import exec_process

        check_allowed("exec", self._refresh(), self.id)
        if process.capabilities is None:
            process = process.replace(capabilities=self.saved_process().capabilities)
        return exec_process(
            self._saved,
            self.root,
            process,
            detach=detach,
            pid_file=pid_file,
            preserve_fds=preserve_fds,
            console_socket=console_socket,
        )

    def saved_process(self) -> Process:
        """The container's own process spec, the base for :meth:`exec`."""
        from pyrunc._spec.process import Process

        return Process.from_json(self._saved.process, "process")
