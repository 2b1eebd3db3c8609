"""The end of a container: what ``delete`` (and ``run``, once its container exited) does, and the
hooks that follow ``start`` and ``delete``.

Kill what is left in the cgroups (an init that shares a pid namespace can leave processes behind,
and runc kills them too), reap our own init, remove the cgroups and then the state directory, never
through a mount. On the path of ``pyrunc delete``: ``posix`` rather than ``os`` (see
ARCHITECTURE.md, start-up).
"""

from __future__ import annotations

import posix

from pyrunc._container.state import SavedState, Status, container_dir
from pyrunc._errors import PyruncError
from pyrunc._mounts import mount_id
from pyrunc._signals import signal

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyrunc._cgroups.driver import CgroupManager

__all__ = ["destroy", "post_hooks", "remove_state_dir"]


def destroy(saved: SavedState, root: str, status: str = Status.STOPPED) -> None:
    """Kill what is left of the container recorded in ``saved`` (its init too unless ``status`` is
    stopped), reap our own init, remove its cgroups and its state directory under ``root``."""
    error: BaseException | None = None
    try:
        # What CgroupManager.exists() checks, without loading a driver when the cgroups are
        # already gone (removed by hand, or by an earlier delete that failed afterwards).
        if any(posix.access(path, posix.F_OK) for path in saved.cgroup_paths.values()):
            cgroups = saved.cgroups()
            if status == Status.PAUSED or cgroups.is_frozen():
                cgroups.thaw()
            _kill_and_wait(None if status == Status.STOPPED else saved.init_pid, cgroups)
            _reap(saved.init_pid)
            cgroups.destroy()
        else:
            _reap(saved.init_pid)
    except PyruncError as exc:
        error = exc
    try:
        remove_state_dir(root, saved.id)
    except (PyruncError, OSError) as exc:
        if error is None:
            raise
        error.add_note(f"removing the state directory: {exc}")
    if error is not None:
        raise error


def post_hooks(saved: SavedState, kind: str, status: str) -> None:
    """The poststart or poststop hooks of the container recorded in ``saved``: run in this (the
    runtime's) namespace; failures are warnings."""
    if not saved.hooks.get(kind):  # the saved hooks are others (docker's prestart): nothing to load
        return
    from pyrunc._hooks import state_json, warn_hooks
    from pyrunc._spec.config import Hooks

    hooks = Hooks.from_json(saved.hooks, "hooks")
    pid = None if status == Status.STOPPED else saved.init_pid
    state = state_json(saved.id, status, pid, saved.bundle, saved.annotations, saved.oci_version)
    warn_hooks(kind, hooks.poststart if kind == "poststart" else hooks.poststop, state)


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


def remove_state_dir(root: str, container_id: str) -> None:
    """Remove the state directory of ``container_id`` in ``root``: the files in it, then itself;
    never through a mount. A state directory with a filesystem mounted on it (a bind mount too), or
    that is a symlink, is refused; in it, only files are unlinked (a directory, or a mount point,
    fails)."""
    directory = container_dir(root, container_id)
    try:
        parent = posix.open(root, posix.O_PATH | posix.O_DIRECTORY | posix.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        flags = posix.O_RDONLY | posix.O_DIRECTORY | posix.O_NOFOLLOW | posix.O_CLOEXEC
        try:
            fd = posix.open(container_id, flags, dir_fd=parent)
        except FileNotFoundError:
            return
        except OSError as exc:  # ENOTDIR for a symlink: it is not followed
            raise PyruncError(
                f"refusing to remove {directory}: {exc.strerror} (a symlink is not followed)"
            ) from None
        try:
            if mount_id(fd) != mount_id(parent):
                raise PyruncError(f"refusing to remove {directory}: a filesystem is mounted on it")
            for name in posix.listdir(fd):
                posix.unlink(name, dir_fd=fd)
            posix.rmdir(container_id, dir_fd=parent)
        finally:
            posix.close(fd)
    finally:
        posix.close(parent)
