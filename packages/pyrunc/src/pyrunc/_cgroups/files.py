"""The cgroupfs files both drivers read and write: one write call per value (no O_CREAT), errors
that name the file and the value, mkdir -p, every pid of a subtree, and removal deepest first,
never through a mount.

Plain ``posix`` calls: ``pyrunc delete`` removes cgroups, and the verbs on a container that exists
do not import ``os`` (see ARCHITECTURE.md, start-up).
"""

from __future__ import annotations

import posix

from pyrunc._errors import CgroupError
from pyrunc._mounts import is_mount_point

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "DESTROY_TIMEOUT",
    "FREEZE_TIMEOUT",
    "UNLIMITED",
    "ParentGone",
    "all_pids",
    "int_or_none",
    "join_cgroup",
    "keyed_values",
    "make_retrying",
    "makedirs",
    "mkdir_cgroup",
    "parent_of",
    "read_file",
    "read_file_or_none",
    "remove_trees",
    "try_write_file",
    "write_error",
    "write_file",
]

#: How long ``destroy`` keeps retrying ``rmdir`` on EBUSY (processes may still be exiting), seconds.
DESTROY_TIMEOUT = 0.5
_MAKE_ATTEMPTS = 5
#: How long ``freeze``/``thaw``/``is_frozen`` wait for the freezer state to settle, seconds.
FREEZE_TIMEOUT = 2.0

# Anything at or above this in a v1 limit file is "no limit" (the kernel prints PAGE_COUNTER_MAX).
UNLIMITED = 1 << 62


def parent_of(path: str) -> str:
    """The directory holding ``path``, a clean absolute path (as every cgroup path is: built by
    :func:`pyrunc._cgroups.manager.open_cgroups`, checked by ``from_paths``); ``/`` for ``/``."""
    return path.rpartition("/")[0] or "/"


def try_write_file(path: str, value: str) -> int:
    """Write ``value`` to the cgroup file ``path`` in one write call (no O_CREAT); 0 or the errno."""
    try:
        fd = posix.open(path, posix.O_WRONLY | posix.O_TRUNC | posix.O_CLOEXEC)
    except OSError as e:
        return e.errno or 5
    try:
        posix.write(fd, value.encode())
    except OSError as e:
        return e.errno or 5
    finally:
        posix.close(fd)
    return 0


def write_file(path: str, value: str, field: str | None = None) -> None:
    """Write ``value`` to the cgroup file ``path``; failures raise CgroupError naming file and value.

    A missing file in an existing directory means this kernel lacks the knob: the error then names
    ``field`` (the ``linux.resources`` path of the setting), when given.
    """
    err = try_write_file(path, value)
    if err:
        raise write_error(path, value, err, field)


def write_error(path: str, value: str, err: int, field: str | None = None) -> CgroupError:
    if err == 2 and field is not None and posix.access(parent_of(path), posix.F_OK):
        return CgroupError(f"{field}: not supported by this kernel ({path} does not exist)")
    return CgroupError(f"write {value} to {path}: {posix.strerror(err)}")


def join_cgroup(directory: str, pid: int) -> None:
    """Write ``pid`` to ``directory``/cgroup.procs, retrying EINVAL briefly (a task still being forked)."""
    path = directory + "/cgroup.procs"
    value = str(pid)
    err = try_write_file(path, value)
    if err == 22:  # EINVAL: the task may be in TASK_NEW; runc retries too
        import time

        for _ in range(5):
            time.sleep(0.01)
            err = try_write_file(path, value)
            if err != 22:
                break
    if err:
        raise write_error(path, value, err)


class ParentGone(CgroupError):
    """A mkdir found its parent gone, or a directory just made vanished before it was filled (see
    :func:`make_retrying`)."""


def mkdir_cgroup(path: str) -> bool:
    """mkdir ``path`` (mode 0755); True when created, False when it existed."""
    try:
        posix.mkdir(path, 0o755)
        return True
    except FileExistsError:
        return False
    except FileNotFoundError as e:
        raise ParentGone(f"mkdir {path}: {e.strerror}") from None
    except OSError as e:
        raise CgroupError(f"mkdir {path}: {e.strerror}") from None


def make_retrying(make: Callable[[], None]) -> None:
    """Run ``make`` (a container's mkdirs), again if a directory's parent vanished meanwhile: the
    ``pyrunc`` parent of the default paths is shared, and a container's destroy removes it once it
    is empty, which can fall between another create's check that it exists and its mkdir below it."""
    for _ in range(_MAKE_ATTEMPTS - 1):
        try:
            make()
            return
        except ParentGone:
            continue
    make()


def makedirs(path: str) -> None:
    """mkdir -p ``path``."""
    if posix.access(path, posix.F_OK):
        return
    parent = parent_of(path)
    if parent != path:
        makedirs(parent)
    mkdir_cgroup(path)


def read_file(path: str) -> str:
    """The stripped content of ``path``; errors raise CgroupError."""
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError as e:
        raise CgroupError(f"read {path}: {e.strerror}") from None


def read_file_or_none(path: str) -> str | None:
    """The stripped content of ``path``, None when it cannot be read."""
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def int_or_none(text: str | None) -> int | None:
    if not text or text == "max":
        return None
    try:
        value = int(text.split()[0])
    except ValueError:
        return None
    return None if value >= UNLIMITED else value


def keyed_values(text: str | None) -> dict[str, int]:
    """A flat-keyed file (``key value`` per line, e.g. memory.events, cpu.stat) as a dict."""
    out: dict[str, int] = {}
    for line in (text or "").splitlines():
        key, _, value = line.partition(" ")
        try:
            out[key] = int(value)
        except ValueError:
            continue
    return out


def all_pids(top: str) -> list[int]:
    """Every pid in ``cgroup.procs`` of ``top`` and of its descendants, sorted."""
    pids: set[int] = set()
    stack = [top]
    while stack:
        d = stack.pop()
        try:
            with open(d + "/cgroup.procs") as f:
                pids.update(int(p) for p in f.read().split())
        except FileNotFoundError:
            if d == top:
                raise CgroupError(f"read {top}/cgroup.procs: cgroup does not exist") from None
            continue  # removed meanwhile
        except OSError as e:
            raise CgroupError(f"read {d}/cgroup.procs: {e.strerror}") from None
        try:
            with posix.scandir(d) as it:
                stack.extend(e.path for e in it if e.is_dir(follow_symlinks=False))
        except FileNotFoundError:
            continue
    return sorted(pids)


def remove_trees(dirs: list[str], parents: list[str]) -> None:
    """rmdir each of ``dirs`` and everything below, deepest first, retrying EBUSY for DESTROY_TIMEOUT.

    Absent directories are fine. ``parents`` (the ``pyrunc`` directories of the default path) are removed
    afterwards when empty; errors there are ignored (another container may be using them).
    """
    import time

    deadline = time.monotonic() + DESTROY_TIMEOUT
    delay = 0.005
    pending = list(dict.fromkeys(dirs))
    while True:
        failed: list[tuple[str, OSError]] = []
        for top in pending:
            err = _rmdir_tree(top)
            if err is not None:
                failed.append((top, err))
        if not failed:
            break
        busy = all(e.errno in (16, 39) for _, e in failed)  # EBUSY, ENOTEMPTY: still populated
        if not busy or time.monotonic() >= deadline:
            top, err = failed[0]
            where = err.filename or top
            others = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
            raise CgroupError(f"remove cgroup {where}: {err.strerror}{others}")
        pending = [top for top, _ in failed]
        time.sleep(delay)
        delay = min(delay * 2, 0.1)
    for parent in dict.fromkeys(parents):
        try:
            posix.rmdir(parent)
        except OSError:
            pass  # not empty, busy (another container) or already gone


def _rmdir_tree(top: str) -> OSError | None:
    """rmdir ``top`` and its subdirectories, deepest first; the first error, None when all are gone.
    It never descends into a directory that a filesystem is mounted on (of the same one too): that
    is an error, not a tree to remove."""
    try:
        posix.rmdir(top)
        return None
    except FileNotFoundError:
        return None
    except OSError as e:
        if e.errno not in (16, 39):  # EBUSY, ENOTEMPTY: maybe child cgroups
            return e
        first = e
    try:
        with posix.scandir(top) as it:
            children = [e.path for e in it if e.is_dir(follow_symlinks=False)]
        for child in children:
            if is_mount_point(child):
                return OSError(18, "a filesystem is mounted on it (not removed through)", child)  # EXDEV
    except FileNotFoundError:
        return None
    except OSError as e:
        return e
    if not children:
        return first  # populated: processes are still in it
    for child in children:
        err = _rmdir_tree(child)
        if err is not None:
            return err
    try:
        posix.rmdir(top)
    except FileNotFoundError:
        return None
    except OSError as e:
        return e
    return None
