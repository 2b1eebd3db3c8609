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

The drivers (:mod:`.v1`, :mod:`.v2`) are imported only when a manager is built, the one the host
needs; the hot path (create, apply, set, destroy) is plain ``posix`` calls: ``pyrunc delete``
removes cgroups (see ARCHITECTURE.md, start-up).
"""

from __future__ import annotations

import posix

from pyrunc._cgroups.files import parent_of
from pyrunc._errors import CgroupError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyrunc._cgroups.driver import CgroupManager

__all__ = ["cgroup_paths", "from_paths", "open_cgroups"]


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
    if posix.access(root + "/cgroup.controllers", posix.F_OK):
        from pyrunc._cgroups.v2 import V2Manager

        return V2Manager.open(inner, root, own, default_parent)
    from pyrunc._cgroups.v1 import V1Manager

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
        if not _is_clean_absolute(path):
            raise CgroupError(f"cgroup path of {key or 'unified'} is not a clean absolute path: {path!r}")
    if "" in paths:
        if len(paths) != 1:
            raise CgroupError(f"cgroup paths mix v2 and v1 hierarchies: {paths}")
        from pyrunc._cgroups.v2 import V2Manager

        return V2Manager(paths[""], _is_default_path(paths[""]))
    from pyrunc._cgroups.v1 import V1Manager

    return V1Manager.from_paths(paths, all(_is_default_path(p) for p in paths.values()))


def _is_default_path(path: str) -> bool:
    """Whether ``path`` has the shape of the default path ``.../pyrunc/<id>`` (its parent may be removed)."""
    return parent_of(path).rpartition("/")[2] == "pyrunc"


def _is_clean_absolute(path: str) -> bool:
    """Whether ``path`` is absolute with no empty, ``.`` or ``..`` component and no trailing slash
    (what ``os.path.normpath`` leaves as it is; POSIX keeps a leading ``//`` apart)."""
    if not path.startswith("/"):
        return False
    rest = path[2:] if path.startswith("//") and not path.startswith("///") else path[1:]
    return not rest or all(part not in ("", ".", "..") for part in rest.split("/"))


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
