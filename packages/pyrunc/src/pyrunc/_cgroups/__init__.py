"""Control groups for pyrunc: one manager per container, cgroup v1 (hybrid or legacy) or v2 (unified).

    mgr = open_cgroups(container_id, spec.linux.cgroups_path)
    mgr.create()                 # mkdir in every hierarchy
    mgr.set(spec.linux.resources)
    mgr.apply(init_pid)          # cgroup.procs
    saved = mgr.paths()          # persist in the container state
    ...
    from_paths(saved).destroy()  # later, from another process

Path rules are runc's (``libcontainer/cgroups/fs`` and ``fs2``):

- an absolute ``cgroups_path`` is taken as is below each hierarchy's mount point;
- v1: a relative one is below this process's own cgroup in each hierarchy (from ``/proc/self/cgroup``,
  made relative to the mount's root from ``/proc/self/mountinfo``); ``None`` means
  ``<own cgroup>/pyrunc/<container_id>``;
- v2: a relative one is below the *parent* of this process's own cgroup, as runc's fs2 does: the own
  cgroup holds the caller, so the kernel's "no internal processes" rule would forbid enabling the
  domain controllers (memory, pids, io...) for a child of it; ``None`` means
  ``<parent of own cgroup>/pyrunc/<container_id>``.

The drivers (:mod:`._v1`, :mod:`._v2`) are imported only when a manager is built; the hot path
(create, apply, set, destroy) is plain ``posix`` calls. Nothing here imports os (see
:mod:`pyrunc._fs`: ``pyrunc delete`` removes cgroups), typing, re, logging or dataclasses at run
time.
"""

from __future__ import annotations

import posix

from pyrunc._errors import CgroupError
from pyrunc._fs import basename, dirname, exists, is_clean_absolute, is_mount_point, isdir

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from pyrunc._cgroups._driver import CgroupManager

__all__ = [
    "BlkioStats",
    "CgroupError",
    "CpuStats",
    "MemoryStats",
    "PidsStats",
    "Stats",
    "cgroup_paths",
    "from_paths",
    "open_cgroups",
]

#: How long ``destroy`` keeps retrying ``rmdir`` on EBUSY (processes may still be exiting), seconds.
DESTROY_TIMEOUT = 0.5
_MAKE_ATTEMPTS = 5
#: How long ``freeze``/``thaw``/``is_frozen`` wait for the freezer state to settle, seconds.
FREEZE_TIMEOUT = 2.0

# Anything at or above this in a v1 limit file is "no limit" (the kernel prints PAGE_COUNTER_MAX).
_UNLIMITED = 1 << 62


# -- stats ---------------------------------------------------------------------------------------------


class _Slots:
    """``__repr__`` and ``__eq__`` from ``__slots__`` (stats are plain value objects)."""

    __slots__ = ()

    def __repr__(self) -> str:
        names: tuple[str, ...] = self.__slots__
        fields = ", ".join(f"{n}={getattr(self, n)!r}" for n in names)
        return f"{type(self).__name__}({fields})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        names: tuple[str, ...] = self.__slots__
        return all(getattr(self, n) == getattr(other, n) for n in names)

    __hash__ = None  # type: ignore[assignment]


class MemoryStats(_Slots):
    """Bytes; ``limit`` None means unlimited. ``failcnt``: times the limit was hit (v2: memory.events max).
    ``oom_kill``: processes the OOM killer killed in this cgroup."""

    __slots__ = ("usage", "max_usage", "limit", "failcnt", "oom_kill")

    def __init__(
        self,
        *,
        usage: int | None = None,
        max_usage: int | None = None,
        limit: int | None = None,
        failcnt: int | None = None,
        oom_kill: int | None = None,
    ) -> None:
        self.usage = usage
        self.max_usage = max_usage
        self.limit = limit
        self.failcnt = failcnt
        self.oom_kill = oom_kill


class CpuStats(_Slots):
    """Nanoseconds. ``nr_periods``/``nr_throttled``/``throttled_time``: CFS bandwidth throttling."""

    __slots__ = ("usage_total", "usage_user", "usage_kernel", "nr_periods", "nr_throttled", "throttled_time")

    def __init__(
        self,
        *,
        usage_total: int | None = None,
        usage_user: int | None = None,
        usage_kernel: int | None = None,
        nr_periods: int | None = None,
        nr_throttled: int | None = None,
        throttled_time: int | None = None,
    ) -> None:
        self.usage_total = usage_total
        self.usage_user = usage_user
        self.usage_kernel = usage_kernel
        self.nr_periods = nr_periods
        self.nr_throttled = nr_throttled
        self.throttled_time = throttled_time


class PidsStats(_Slots):
    """``limit`` None means no limit ("max")."""

    __slots__ = ("current", "limit")

    def __init__(self, *, current: int | None = None, limit: int | None = None) -> None:
        self.current = current
        self.limit = limit


class BlkioStats(_Slots):
    """Bytes read and written by the cgroup, summed over devices."""

    __slots__ = ("read_bytes", "write_bytes")

    def __init__(self, *, read_bytes: int | None = None, write_bytes: int | None = None) -> None:
        self.read_bytes = read_bytes
        self.write_bytes = write_bytes


class Stats(_Slots):
    """What ``manager.stats()`` returns; a part is all-None when its controller is not there."""

    __slots__ = ("memory", "cpu", "pids", "blkio")

    def __init__(
        self,
        *,
        memory: MemoryStats | None = None,
        cpu: CpuStats | None = None,
        pids: PidsStats | None = None,
        blkio: BlkioStats | None = None,
    ) -> None:
        self.memory = memory if memory is not None else MemoryStats()
        self.cpu = cpu if cpu is not None else CpuStats()
        self.pids = pids if pids is not None else PidsStats()
        self.blkio = blkio if blkio is not None else BlkioStats()


# -- building managers ---------------------------------------------------------------------------------


def open_cgroups(
    container_id: str,
    cgroups_path: str | None,
    *,
    root: str = "/sys/fs/cgroup",
    own_cgroup_file: str = "/proc/self/cgroup",
    mountinfo: str = "/proc/self/mountinfo",
    controllers: frozenset[str] | None = None,
) -> CgroupManager:
    """The manager of ``container_id``'s cgroups: v2 when ``<root>/cgroup.controllers`` exists, else v1.

    ``controllers`` limits a v1 manager to the hierarchies of those controllers (the Python API
    uses only what its limits need; a runtime spec always gets every hierarchy, as with runc).

    Only computes paths (reads ``own_cgroup_file`` and, for v1, ``mountinfo``); nothing is created
    before ``create()``. The same arguments give the same paths from any process with the same own
    cgroup.
    """
    if not container_id or "/" in container_id or container_id in (".", ".."):
        raise CgroupError(f"invalid container id for a cgroup name: {container_id!r}")
    if cgroups_path is None:
        inner, default_parent = "pyrunc/" + container_id, True
    else:
        inner, default_parent = _clean(cgroups_path), False
        if inner in ("", "/"):
            raise CgroupError(f"linux.cgroupsPath: {cgroups_path!r} names the root of the hierarchy")
    own = _read_own_cgroups(own_cgroup_file)
    if exists(root + "/cgroup.controllers"):
        from pyrunc._cgroups._v2 import V2Manager

        return V2Manager.open(inner, root, own, default_parent)
    from pyrunc._cgroups._v1 import V1Manager

    return V1Manager.open(inner, root, own, mountinfo, default_parent, controllers)


def cgroup_paths(container_id: str, cgroups_path: str | None = None) -> dict[str, str]:
    """The cgroup directories pyrunc uses for ``container_id`` with the spec's ``cgroupsPath``, by
    controller (v1; ``""`` for the v2 hierarchy), by runc's rules and from this process's own cgroup.
    Only computed: nothing is created. For callers that watch a container's cgroup (OOM notices)."""
    return open_cgroups(container_id, cgroups_path).paths()


def from_paths(paths: dict[str, str]) -> CgroupManager:
    """Rebuild a manager from a saved ``manager.paths()`` (v2 when the only key is ``""``)."""
    if not paths:
        raise CgroupError("no cgroup paths to rebuild a manager from")
    for key, path in paths.items():
        if not is_clean_absolute(path):
            raise CgroupError(f"cgroup path of {key or 'unified'} is not a clean absolute path: {path!r}")
    if "" in paths:
        if len(paths) != 1:
            raise CgroupError(f"cgroup paths mix v2 and v1 hierarchies: {paths}")
        from pyrunc._cgroups._v2 import V2Manager

        return V2Manager(paths[""], _is_default_path(paths[""]))
    from pyrunc._cgroups._v1 import V1Manager

    return V1Manager.from_paths(paths, all(_is_default_path(p) for p in paths.values()))


def _is_default_path(path: str) -> bool:
    """Whether ``path`` has the shape of the default path ``.../pyrunc/<id>`` (its parent may be removed)."""
    return basename(dirname(path)) == "pyrunc"


def _clean(path: str) -> str:
    """runc's CleanPath: lexically clean, ``..`` cannot climb above the start; keeps absolute/relative."""
    from posixpath import normpath  # creating a container: os is imported anyway

    cleaned = normpath("/" + path)
    if cleaned.startswith("//"):
        cleaned = cleaned[1:]
    return cleaned if path.startswith("/") else cleaned[1:]


def _read_own_cgroups(own_cgroup_file: str) -> dict[str, str]:
    """``/proc/self/cgroup`` as {controllers: path}; controllers like ``"cpu,cpuacct"``, ``"name=systemd"``
    or ``""`` (the v2 line)."""
    try:
        with open(own_cgroup_file) as f:
            text = f.read()
    except OSError as e:
        raise CgroupError(f"read {own_cgroup_file}: {e.strerror}") from None
    own: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            own[parts[1]] = parts[2]
    return own


# -- helpers shared by the drivers ---------------------------------------------------------------------


def _try_write(path: str, value: str) -> int:
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


def _write(path: str, value: str, field: str | None = None) -> None:
    """Write ``value`` to the cgroup file ``path``; failures raise CgroupError naming file and value.

    A missing file in an existing directory means this kernel lacks the knob: the error then names
    ``field`` (the ``linux.resources`` path of the setting), when given.
    """
    err = _try_write(path, value)
    if err:
        raise _write_error(path, value, err, field)


def _write_error(path: str, value: str, err: int, field: str | None = None) -> CgroupError:
    if err == 2 and field is not None and isdir(dirname(path)):
        return CgroupError(f"{field}: not supported by this kernel ({path} does not exist)")
    return CgroupError(f"write {value} to {path}: {posix.strerror(err)}")


def _join(directory: str, pid: int) -> None:
    """Write ``pid`` to ``directory``/cgroup.procs, retrying EINVAL briefly (a task still being forked)."""
    path = directory + "/cgroup.procs"
    value = str(pid)
    err = _try_write(path, value)
    if err == 22:  # EINVAL: the task may be in TASK_NEW; runc retries too
        import time

        for _ in range(5):
            time.sleep(0.01)
            err = _try_write(path, value)
            if err != 22:
                break
    if err:
        raise _write_error(path, value, err)


class _ParentGone(CgroupError):
    """A mkdir found its parent gone (see :func:`_make_retrying`)."""


def _mkdir(path: str) -> bool:
    """mkdir ``path`` (mode 0755); True when created, False when it existed."""
    try:
        posix.mkdir(path, 0o755)
        return True
    except FileExistsError:
        return False
    except FileNotFoundError as e:
        raise _ParentGone(f"mkdir {path}: {e.strerror}") from None
    except OSError as e:
        raise CgroupError(f"mkdir {path}: {e.strerror}") from None


def _make_retrying(make: Callable[[], None]) -> None:
    """Run ``make`` (a container's mkdirs), again if a directory's parent vanished meanwhile: the
    ``pyrunc`` parent of the default paths is shared, and a container's destroy removes it once it
    is empty, which can fall between another create's check that it exists and its mkdir below it."""
    for _ in range(_MAKE_ATTEMPTS - 1):
        try:
            make()
            return
        except _ParentGone:
            continue
    make()


def _makedirs(path: str) -> None:
    """mkdir -p ``path``."""
    if isdir(path):
        return
    parent = dirname(path)
    if parent != path:
        _makedirs(parent)
    _mkdir(path)


def _read(path: str) -> str:
    """The stripped content of ``path``; errors raise CgroupError."""
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError as e:
        raise CgroupError(f"read {path}: {e.strerror}") from None


def _read_opt(path: str) -> str | None:
    """The stripped content of ``path``, None when it cannot be read."""
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def _int_or_none(text: str | None) -> int | None:
    if not text or text == "max":
        return None
    try:
        value = int(text.split()[0])
    except ValueError:
        return None
    return None if value >= _UNLIMITED else value


def _keyed(text: str | None) -> dict[str, int]:
    """A flat-keyed file (``key value`` per line, e.g. memory.events, cpu.stat) as a dict."""
    out: dict[str, int] = {}
    for line in (text or "").splitlines():
        key, _, value = line.partition(" ")
        try:
            out[key] = int(value)
        except ValueError:
            continue
    return out


def _all_pids(top: str) -> list[int]:
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


def _remove_trees(dirs: list[str], parents: list[str]) -> None:
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
