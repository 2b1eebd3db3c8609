"""Containers: the lifecycle verbs behind the CLI, usable from Python.

Every verb follows the same four steps: refresh (derive the status from the kernel), guard
(:func:`pyrunc._state.check_allowed`), act, save.
"""

from __future__ import annotations

import posix

from pyrunc._errors import ContainerNotFoundError, PyruncError
from pyrunc._fs import basename, dirname, exists, isdir, mount_id
from pyrunc._state import SavedState, Status, check_allowed, container_dir, process_start_time

TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal

    from pyrunc._cgroups import Stats
    from pyrunc._cgroups._driver import CgroupManager
    from pyrunc._spec import Process, Resources
else:
    import _signal as signal  # the signal module imports enum: ~10 ms of start-up

# Verbs import what they use: ``pyrunc start`` or ``state`` need neither the spec models nor the
# C extension, and each pyrunc invocation pays for its imports. create, run and exec are in
# pyrunc._spawn, imported by those verbs alone; and this module calls ``posix`` rather than ``os``
# (see pyrunc._fs).

__all__ = ["DEFAULT_ROOT", "Container", "ContainerState"]

DEFAULT_ROOT = "/run/pyrunc"
OCI_VERSION = "1.0.2"
_FIFO = "exec.fifo"


# runc's ^[\w+-\.]+$: in Go's character class, "+-." is the range from "+" to ".", comma included.
_ID_CHARACTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_+,-.")
# An id names the container's state directory and its cgroup directories: one file name each.
MAX_ID_LENGTH = 255


def _valid_id(container_id: str) -> None:
    """Refuse an id that runc refuses ("invalid container ID format"), or too long to name a file."""
    if len(container_id) > MAX_ID_LENGTH:
        raise PyruncError(
            f"invalid container ID format: {len(container_id)} characters, more than the {MAX_ID_LENGTH} "
            "of a file name (the id names the container's state and cgroup directories)"
        )
    if container_id in ("", ".", "..") or not _ID_CHARACTERS.issuperset(container_id):
        raise PyruncError(
            f"invalid container ID format: {container_id!r} (an id is made of letters, digits and _ + , - .)"
        )


class ContainerState:
    """The OCI state of a container (what ``pyrunc state`` prints)."""

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
        self.id = id
        self.pid = pid
        self.status = status
        self.bundle = bundle
        self.rootfs = rootfs
        self.created = created
        self.annotations = annotations
        self.oci_version = oci_version

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
    def create(
        cls,
        container_id: str,
        bundle: str,
        *,
        root: str = DEFAULT_ROOT,
        pid_file: str | None = None,
        no_pivot: bool = False,
        no_new_keyring: bool = False,
        preserve_fds: int = 0,
        console_socket: str | None = None,
    ) -> Container:
        """Create the container and leave its init waiting for :meth:`start` (``runc create``).
        With ``process.terminal`` the pty master goes to the unix socket ``console_socket``."""
        from pyrunc._spawn import create

        container, _, _ = create(
            cls,
            container_id,
            bundle,
            root,
            pid_file=pid_file,
            no_pivot=no_pivot,
            no_new_keyring=no_new_keyring,
            preserve_fds=preserve_fds,
            console_socket=console_socket,
            start=False,
            detach=True,
        )
        return container

    @classmethod
    def run(
        cls,
        container_id: str,
        bundle: str,
        *,
        root: str = DEFAULT_ROOT,
        pid_file: str | None = None,
        no_pivot: bool = False,
        no_new_keyring: bool = False,
        preserve_fds: int = 0,
        detach: bool = False,
        console_socket: str | None = None,
    ) -> int:
        """Create, start and (unless ``detach``) wait: the init's exit code, 128+signal if
        killed. The container is deleted when it exits (``runc run``). A terminal without a
        console socket is bridged to our own stdin and stdout."""
        from pyrunc._spawn import run

        return run(
            cls,
            container_id,
            bundle,
            root=root,
            pid_file=pid_file,
            no_pivot=no_pivot,
            no_new_keyring=no_new_keyring,
            preserve_fds=preserve_fds,
            detach=detach,
            console_socket=console_socket,
        )

    # -- loading -------------------------------------------------------------------------
    @classmethod
    def load(cls, container_id: str, root: str = DEFAULT_ROOT) -> Container:
        """The container ``container_id`` under ``root``; ContainerNotFoundError if none."""
        _valid_id(container_id)
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

    def _cgroups(self) -> CgroupManager:
        from pyrunc._cgroups import from_paths

        return from_paths(self._saved.cgroup_paths)

    def status(self) -> str:
        """Derived from the kernel each time: stopped, created, paused or running."""
        if process_start_time(self._saved.init_pid) != self._saved.init_start_time:
            return Status.STOPPED
        if exists(f"{self.directory}/{_FIFO}"):
            return Status.CREATED
        try:
            if self._cgroups().is_frozen():
                return Status.PAUSED
        except (OSError, PyruncError):
            pass
        return Status.RUNNING

    def state(self) -> ContainerState:
        status = self.status()
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
        check_allowed("start", self.status(), self.id)
        fifo = f"{self.directory}/{_FIFO}"
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
        self._post_hooks("poststart", Status.RUNNING)

    def _post_hooks(self, kind: str, status: str) -> None:
        """poststart and poststop hooks: run in this (the runtime's) namespace; failures are
        warnings."""
        if not self._saved.hooks:
            return
        from pyrunc._hooks import state_json, warn_hooks
        from pyrunc._spec import Hooks

        hooks = Hooks.from_json(self._saved.hooks, "hooks")
        pid = None if status == Status.STOPPED else self._saved.init_pid
        saved = self._saved
        state = state_json(self.id, status, pid, saved.bundle, saved.annotations, saved.oci_version)
        warn_hooks(kind, hooks.poststart if kind == "poststart" else hooks.poststop, state)

    def kill(self, sig: int = signal.SIGTERM, *, all: bool = False) -> None:
        """Send ``sig`` to the init, or with ``all`` to every process in the container's cgroup
        (whatever the init's status: processes can outlive an init that shares a pid namespace,
        and containerd's shim relies on reaching them, as runc does)."""
        if not all:
            check_allowed("kill", self.status(), self.id)
        pids = self._cgroups().pids() if all else [self._saved.init_pid]
        for pid in pids:
            try:
                posix.kill(pid, sig)
            except ProcessLookupError:
                if not all:
                    raise PyruncError("no such process") from None

    def pause(self) -> None:
        check_allowed("pause", self.status(), self.id)
        self._cgroups().freeze()

    def resume(self) -> None:
        check_allowed("resume", self.status(), self.id)
        self._cgroups().thaw()

    def update(self, resources: Resources) -> None:
        """Change the cgroup limits of a live container (``runc update``)."""
        check_allowed("update", self.status(), self.id)
        self._cgroups().update(resources)

    def stats(self) -> Stats:
        """Resource usage read from the container's cgroups (memory, cpu, pids, blkio)."""
        return self._cgroups().stats()

    def processes(self) -> list[int]:
        """Host pids of every process in the container (``runc ps --format json``)."""
        return self._cgroups().pids()

    def delete(self, *, force: bool = False) -> None:
        """Remove a stopped (or created) container; ``force`` kills a running one first."""
        status = self.status()
        if not force:
            check_allowed("delete", status, self.id)
        self._destroy(status)
        self._post_hooks("poststop", Status.STOPPED)

    def _destroy(self, status: str = Status.STOPPED) -> None:
        """Kill what is left in the cgroups (an init that shares a pid namespace can leave
        processes behind, and runc kills them too), reap our own init, remove cgroups and state."""
        error: BaseException | None = None
        try:
            # What CgroupManager.exists() checks, without loading a driver when the cgroups are
            # already gone (removed by hand, or by an earlier delete that failed afterwards).
            if any(isdir(path) for path in self._saved.cgroup_paths.values()):
                cgroups = self._cgroups()
                if status == Status.PAUSED or cgroups.is_frozen():
                    cgroups.thaw()
                _kill_and_wait(None if status == Status.STOPPED else self._saved.init_pid, cgroups)
                _reap(self._saved.init_pid)
                cgroups.destroy()
            else:
                _reap(self._saved.init_pid)
        except PyruncError as exc:
            error = exc
        try:
            _remove_dir(self.directory)
        except (PyruncError, OSError) as exc:
            if error is None:
                raise
            error.add_note(f"removing the state directory: {exc}")
        if error is not None:
            raise error

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
        and returns its exit status (128+signal if killed). A terminal goes to
        ``console_socket``, or without one is bridged to our stdio."""
        from pyrunc._spawn import exec_process

        return exec_process(
            self,
            process,
            detach=detach,
            pid_file=pid_file,
            preserve_fds=preserve_fds,
            console_socket=console_socket,
        )

    def saved_process(self) -> Process:
        """The container's own process spec, the base for :meth:`exec`."""
        from pyrunc._spec import Process

        return Process.from_json(self._saved.process, "process")


# -- helpers -----------------------------------------------------------------------------
def _reap(pid: int) -> None:
    """Collect the init's exit status if it is our own child (Container used as a library in the
    process that created it); under the CLI it was re-parented and its new parent reaps it."""
    try:
        posix.waitpid(pid, posix.WNOHANG)
    except ChildProcessError:
        pass


def _kill_and_wait(init_pid: int | None, cgroups: CgroupManager, timeout: float = 10.0) -> None:
    """SIGKILL the init (if it is still ours to kill) and every process in the cgroups, and wait
    until they are gone."""
    leftovers = cgroups.pids()
    if init_pid is None and not leftovers:
        return
    import select
    import time

    pidfd = -1
    if init_pid is not None:
        try:
            pidfd = posix.pidfd_open(init_pid)
        except ProcessLookupError:
            init_pid = None
    try:
        for pid in [init_pid, *leftovers] if init_pid is not None else leftovers:
            try:
                posix.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if pidfd >= 0:
            select.select([pidfd], [], [], timeout)
        deadline = time.monotonic() + timeout
        while cgroups.pids() and time.monotonic() < deadline:
            time.sleep(0.005)
    finally:
        if pidfd >= 0:
            posix.close(pidfd)


def _remove_dir(directory: str) -> None:
    """Remove a container's state directory: the files in it, then itself; never through a mount.
    A state directory with a filesystem mounted on it (a bind mount too), or that is a symlink, is
    refused; in it, only files are unlinked (a directory, or a mount point, fails)."""
    flags = posix.O_RDONLY | posix.O_DIRECTORY | posix.O_NOFOLLOW | posix.O_CLOEXEC
    try:
        fd = posix.open(directory, flags)
    except FileNotFoundError:
        return
    except OSError as exc:  # ENOTDIR for a symlink: it is not followed
        raise PyruncError(
            f"refusing to remove {directory}: {exc.strerror} (a symlink is not followed)"
        ) from None
    try:
        parent = posix.open(dirname(directory) or ".", posix.O_PATH | posix.O_DIRECTORY | posix.O_CLOEXEC)
        try:
            if mount_id(fd) != mount_id(parent):
                raise PyruncError(f"refusing to remove {directory}: a filesystem is mounted on it")
            for name in posix.listdir(fd):
                posix.unlink(name, dir_fd=fd)
            posix.rmdir(basename(directory), dir_fd=parent)
        finally:
            posix.close(parent)
    finally:
        posix.close(fd)
