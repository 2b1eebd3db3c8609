"""A container's files: ``docker cp`` both ways (``/containers/{id}/archive``), ``docker export``,
``docker diff`` (``/containers/{id}/changes``) and ``docker commit`` (``POST /commit``).

The files are reached through pycontainerd's ``containers.rootfs``: a running container's root as its
processes see it (``/proc/<pid>/root``, its binds and tmpfs mounts included, as dockerd mounts the
volumes for a copy), a stopped one's root filesystem, a created one's snapshot mounted for the
request. A path is resolved in that root one component at a time from a descriptor, each opened
without following symlinks, and a symlink met is resolved *inside* the root: a running container
swapping a component for a symlink meanwhile cannot send a read or a write to the host.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import errno
import functools
import json
import os
import posixpath
import stat
import tarfile
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import IO, Any

import attrs
from aiohttp import web

import pycontainerd
from pyengine._containers import ContainerRecord, Containers
from pyengine._errors import ApiError, InvalidParameter, NotFound
from pyengine._http import Route, blocking, flag, json_response
from pyengine._images import familiar_name

__all__ = ["PathStat", "add_routes", "changes", "commit"]

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_MAX_SYMLINKS = 40
_CHUNK = 1 << 16
#: Go's os.FileMode bits, which the stat header's ``mode`` carries.
_GO_DIR = 1 << 31
_GO_SYMLINK = 1 << 27
_GO_DEVICE = 1 << 26
_GO_PIPE = 1 << 25
_GO_SOCKET = 1 << 24
_GO_SETUID = 1 << 23
_GO_SETGID = 1 << 22
_GO_CHAR = 1 << 21
_GO_STICKY = 1 << 20


class FileNotInContainer(NotFound):
    """dockerd's containerFileNotFound: the path as the request gave it, the container as named."""

    def __init__(self, path: str, name: str) -> None:
        super().__init__(f"Could not find the file {path} in container {name}")


# -- resolving a path inside a root ----------------------------------------------------------------


@attrs.define
class Located:
    """Where a path resolved: a descriptor of its parent directory (the caller closes it), its final
    name there (``.`` for the directory itself), its real path in the root, and its lstat (None if
    there is nothing there)."""

    parent: int
    name: str
    path: str
    st: os.stat_result | None

    def close(self) -> None:
        os.close(self.parent)


def _lstat(fd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def locate(root: int, path: str, *, follow: bool) -> Located:
    """Resolve ``path`` in the root ``root`` (a descriptor); symlinks on the way are followed inside
    the root, the final one only when ``follow``. FileNotFoundError if a directory on the way is
    missing, NotADirectoryError if a component on the way is not one."""
    todo = collections.deque(path.split("/"))
    stack = [os.dup(root)]
    names: list[str] = []
    hops = 0
    try:
        while todo:
            part = todo.popleft()
            if part in ("", "."):
                continue
            if part == "..":
                if len(stack) > 1:
                    os.close(stack.pop())
                    names.pop()
                continue
            last = all(p in ("", ".") for p in todo)
            st = _lstat(stack[-1], part)
            if st is None and not last:
                raise FileNotFoundError(errno.ENOENT, "no such file or directory", path)
            if st is not None and stat.S_ISLNK(st.st_mode) and (follow or not last):
                hops += 1
                if hops > _MAX_SYMLINKS:
                    raise OSError(errno.ELOOP, "too many levels of symbolic links", path)
                target = os.readlink(part, dir_fd=stack[-1])
                if target.startswith("/"):
                    while len(stack) > 1:
                        os.close(stack.pop())
                    names.clear()
                todo.extendleft(reversed(target.split("/")))
                continue
            if last and (st is None or not stat.S_ISDIR(st.st_mode)):
                return Located(stack.pop(), part, "/" + "/".join([*names, part]), st)
            assert st is not None
            if not stat.S_ISDIR(st.st_mode):
                raise NotADirectoryError(errno.ENOTDIR, "not a directory", path)
            stack.append(os.open(part, _DIR, dir_fd=stack[-1]))
            names.append(part)
        fd = stack.pop()  # the path is a directory (or a symlink followed to one)
        return Located(fd, ".", "/" + "/".join(names), os.fstat(fd))
    finally:
        for fd in stack:
            os.close(fd)


def _go_mode(mode: int) -> int:
    """``st_mode`` as Go's os.FileMode, which dockerd sends."""
    bits = stat.S_IMODE(mode) & 0o777
    kind = stat.S_IFMT(mode)
    bits |= {
        stat.S_IFDIR: _GO_DIR,
        stat.S_IFLNK: _GO_SYMLINK,
        stat.S_IFIFO: _GO_PIPE,
        stat.S_IFSOCK: _GO_SOCKET,
        stat.S_IFBLK: _GO_DEVICE,
        stat.S_IFCHR: _GO_DEVICE | _GO_CHAR,
    }.get(kind, 0)
    for flag_, go in ((stat.S_ISUID, _GO_SETUID), (stat.S_ISGID, _GO_SETGID), (stat.S_ISVTX, _GO_STICKY)):
        if mode & flag_:
            bits |= go
    return bits


def _go_time(ns: int) -> str:
    """Go's RFC3339Nano in UTC: the fraction's trailing zeros dropped."""
    seconds, fraction = divmod(ns, 1_000_000_000)
    text = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    digits = f"{fraction:09d}".rstrip("0")
    return f"{text}.{digits}Z" if digits else f"{text}Z"


def _abs_path(path: str) -> tuple[str, bool]:
    """``path`` made absolute and clean, and whether it asks to follow its last component (a
    trailing ``/`` or ``/.``: Docker's PreserveTrailingDotOrSeparator)."""
    follow = path.endswith(("/", "/.")) or path == "."
    clean = posixpath.normpath("/" + path)
    clean = "/" + clean.lstrip("/")
    if path.endswith("/.") or path == ".":
        return (clean.rstrip("/") + "/."), True
    return (clean + "/" if follow and clean != "/" else clean), follow


def _base(abs_path: str) -> str:
    """Go's filepath.Base: ``etc`` of ``/etc/``, ``.`` of ``/etc/.``, ``/`` of ``/``."""
    stripped = abs_path.rstrip("/")
    return stripped.rsplit("/", 1)[-1] if stripped else "/"


@attrs.frozen
class PathStat:
    """What ``X-Docker-Container-Path-Stat`` carries."""

    name: str
    size: int
    mode: int
    mtime: str
    link_target: str

    def header(self) -> str:
        data = {
            "name": self.name,
            "size": self.size,
            "mode": self.mode,
            "mtime": self.mtime,
            "linkTarget": self.link_target,
        }
        return base64.b64encode(json.dumps(data).encode()).decode()


def _stat(root: int, abs_path: str, follow: bool) -> tuple[Located, PathStat]:
    """The path located (FileNotFoundError if missing) and its stat as dockerd reports it."""
    located = locate(root, abs_path, follow=follow)
    if located.st is None:
        located.close()
        raise FileNotFoundError(errno.ENOENT, "no such file or directory", abs_path)
    st = located.st
    link_target = ""
    if stat.S_ISLNK(st.st_mode):
        try:
            target = locate(root, abs_path, follow=True)
            target.close()
            link_target = target.path
        except OSError:
            link_target = ""
    return located, PathStat(
        _base(abs_path), st.st_size, _go_mode(st.st_mode), _go_time(st.st_mtime_ns), link_target
    )


# -- writing a tar of a tree -----------------------------------------------------------------------


class _TreeWriter:
    """A tar of what a descriptor reaches, never following a symlink: directories are opened
    ``O_NOFOLLOW`` from their parent's descriptor, files ``O_NOFOLLOW`` too. Sockets are left out;
    hardlinked files are written once, then as links."""

    def __init__(self, out: IO[bytes]) -> None:
        self.tar = tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT)  # noqa: SIM115
        self.inodes: dict[tuple[int, int], str] = {}

    def close(self) -> None:
        self.tar.close()

    def add(self, parent: int, name: str, arcname: str, st: os.stat_result) -> None:
        info = tarfile.TarInfo(arcname)
        info.mode = stat.S_IMODE(st.st_mode)
        info.uid, info.gid = st.st_uid, st.st_gid
        info.uname = info.gname = ""
        info.mtime = st.st_mtime_ns // 1_000_000_000
        kind = stat.S_IFMT(st.st_mode)
        if kind == stat.S_IFDIR:
            info.type = tarfile.DIRTYPE
            info.name = arcname.rstrip("/") + "/"
            self.tar.addfile(info)
            fd = os.open(name, _DIR, dir_fd=parent)
            try:
                for child in sorted(os.listdir(fd)):
                    child_st = _lstat(fd, child)
                    if child_st is None:
                        continue  # gone meanwhile
                    self.add(fd, child, f"{arcname.rstrip('/')}/{child}", child_st)
            finally:
                os.close(fd)
            return
        if kind == stat.S_IFLNK:
            info.type = tarfile.SYMTYPE
            info.linkname = os.readlink(name, dir_fd=parent)
        elif kind == stat.S_IFREG:
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in self.inodes:
                info.type, info.linkname = tarfile.LNKTYPE, self.inodes[key]
            else:
                if st.st_nlink > 1:
                    self.inodes[key] = arcname
                fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
                with os.fdopen(fd, "rb") as data:
                    info.size = os.fstat(data.fileno()).st_size
                    self.tar.addfile(info, data)
                return
        elif kind in (stat.S_IFCHR, stat.S_IFBLK):
            info.type = tarfile.CHRTYPE if kind == stat.S_IFCHR else tarfile.BLKTYPE
            info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
        elif kind == stat.S_IFIFO:
            info.type = tarfile.FIFOTYPE
        else:
            return  # a socket: Docker's tar leaves them out too
        self.tar.addfile(info)


async def _stream_tar(
    request: web.Request, response: web.StreamResponse, produce: Callable[[IO[bytes]], None]
) -> None:
    """Send what ``produce(out)`` writes, made in a thread and piped to the response."""
    read_end, write_end = os.pipe()
    failure: list[BaseException] = []

    def work() -> None:
        try:
            with os.fdopen(write_end, "wb") as out:
                produce(out)
        except BrokenPipeError:
            pass  # the client went away
        except BaseException as exc:  # noqa: BLE001 -- reported once the response ends
            failure.append(exc)

    thread = threading.Thread(target=work, name="tar", daemon=True)
    thread.start()
    await _send_pipe(request, response, read_end, thread, failure)


# -- the container's files -------------------------------------------------------------------------


@contextlib.contextmanager
def _root(containers: Containers, record: ContainerRecord, *, mounts: bool = True) -> Iterator[int]:
    """A descriptor of the container's root (see the module doc)."""
    with containers.store.containers.rootfs(record.runtime_id, mounts=mounts) as path:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            yield fd
        finally:
            os.close(fd)


@contextlib.contextmanager
def _root_of(
    containers: Containers, record: ContainerRecord, abs_path: str
) -> Iterator[tuple[int, str, str]]:
    """The root ``abs_path`` is resolved in: a descriptor of it, the path there, and where that root
    is in the container ("" for the container's own root). A running container's root shows its
    volumes and binds; a stopped one's does not, so a path in one of them is reached in its host
    directory, as dockerd mounts them for the copy."""
    if record.state.status != "running":
        clean = posixpath.normpath(abs_path)
        for point in sorted(record.mount_points(), key=lambda p: len(p["Destination"]), reverse=True):
            destination = posixpath.normpath(point["Destination"])
            if point["Type"] in ("volume", "bind") and (
                clean == destination or clean.startswith(destination + "/")
            ):
                rest = (
                    abs_path[len(destination) :]
                    if abs_path.startswith(destination)
                    else clean[len(destination) :]
                )
                fd = os.open(point["Source"], os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
                try:
                    yield fd, "/" + rest.lstrip("/"), destination
                finally:
                    os.close(fd)
                return
    with _root(containers, record) as root:
        yield root, abs_path, ""


def _archive_path(request: web.Request) -> str:
    path = request.query.get("path", "")
    if not path:
        raise InvalidParameter("bad parameter: pathcannot be empty")
    return path


def _not_found(path: str, name: str) -> Callable[[OSError], ApiError]:
    def convert(exc: OSError) -> ApiError:
        if isinstance(exc, FileNotFoundError | NotADirectoryError):
            return FileNotInContainer(path, name)
        return ApiError(f"{path}: {exc.strerror or exc}")

    return convert


def stat_path(containers: Containers, name: str, path: str) -> PathStat:
    record = containers.get(name)
    abs_path, follow = _abs_path(path)
    with _root_of(containers, record, abs_path) as (root, in_root, _):
        try:
            located, found = _stat(root, in_root, follow)
        except OSError as exc:
            raise _not_found(path, name)(exc) from None
        located.close()
    return found


def _user_ids(root: int, user: str) -> tuple[int, int]:
    """The uid and gid of ``user`` (``name``, ``uid``, ``name:group``, ``uid:gid``) in the container's
    /etc/passwd and /etc/group."""
    name, _, group = user.partition(":")

    def table(path: str) -> list[list[str]]:
        try:
            located = locate(root, path, follow=True)
        except OSError:
            return []
        try:
            fd = os.open(located.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=located.parent)
        except OSError:
            return []
        finally:
            located.close()
        with os.fdopen(fd, "rb") as f:
            return [line.split(":") for line in f.read(1 << 20).decode(errors="replace").splitlines()]

    if name.isdigit():
        uid, gid = int(name), 0
        for entry in table("/etc/passwd"):
            if len(entry) > 3 and entry[2] == name and entry[3].isdigit():
                gid = int(entry[3])
    else:
        found = [e for e in table("/etc/passwd") if len(e) > 3 and e[0] == name and e[2].isdigit()]
        if not found:
            raise InvalidParameter(f"unable to find user {name}: no matching entries in passwd file")
        uid, gid = int(found[0][2]), int(found[0][3]) if found[0][3].isdigit() else 0
    if group:
        if group.isdigit():
            gid = int(group)
        else:
            groups = [e for e in table("/etc/group") if len(e) > 2 and e[0] == group and e[2].isdigit()]
            if not groups:
                raise InvalidParameter(f"unable to find group {group}: no matching entries in group file")
            gid = int(groups[0][2])
    return uid, gid


def _writable(record: ContainerRecord, real_path: str) -> None:
    """dockerd's checkWritablePath: a read-only volume, bind or tmpfs, or a read-only root filesystem."""
    for point in sorted(record.mount_points(), key=lambda p: len(p["Destination"]), reverse=True):
        destination = point["Destination"].rstrip("/") or "/"
        if real_path == destination or real_path.startswith(destination.rstrip("/") + "/"):
            if point["RW"]:
                return
            raise InvalidParameter("mounted volume is marked read-only")
    if record.host_config.get("ReadonlyRootfs"):
        raise InvalidParameter("container rootfs is marked read-only")


def extract(
    containers: Containers,
    name: str,
    path: str,
    stream: IO[bytes],
    *,
    no_overwrite_dir_non_dir: bool,
    copy_uid_gid: bool,
) -> None:
    """``PUT /containers/{id}/archive``: the tar into the directory ``path`` (its last symlink
    followed, inside the container)."""
    record = containers.get(name)
    abs_path, _ = _abs_path(path)
    with _root_of(containers, record, abs_path) as (root, in_root, prefix):
        try:
            located = locate(root, in_root, follow=True)
        except OSError as exc:
            raise _not_found(path, name)(exc) from None
        located.close()
        if located.st is None:
            raise FileNotInContainer(path, name)
        if not stat.S_ISDIR(located.st.st_mode):
            raise InvalidParameter("extraction point is not a directory")
        _writable(record, posixpath.normpath(prefix + located.path))
        user = record.config.get("User") or ""
        owner = None
        if copy_uid_gid and user:
            with _root(containers, record) as container_root:
                owner = _user_ids(container_root, user)
        try:
            pycontainerd.extract_tar(
                f"/proc/self/fd/{root}/.",
                stream,
                directory=located.path,
                no_overwrite_dir_non_dir=no_overwrite_dir_non_dir,
                owner=owner,
            )
        except pycontainerd.LayerError as exc:
            raise ApiError(str(exc)) from None
    containers.events.container(record, "extract-to-dir")


@attrs.define
class _Body:
    """The end of a blocking request body, read from a thread (aiohttp's reader lives on the loop)."""

    content: Any
    loop: Any

    def read(self, size: int = -1, /) -> bytes:
        coroutine = self.content.read(size if size > 0 else _CHUNK)
        data: bytes = asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()
        return data


# -- changes and commit ----------------------------------------------------------------------------

_MODIFY, _ADD, _DELETE = 0, 1, 2


def _overlay_dirs(store: pycontainerd.Client, record: ContainerRecord) -> tuple[str, list[str]]:
    """The upper directory of the container's snapshot and its lower directories, top first."""
    container = store.containers.get(record.runtime_id)
    mounts = store.snapshot_mounts(container.snapshot_key, container.snapshotter)
    options = [o for m in mounts if m.type == "overlay" for o in m.options]
    upper = next((o.removeprefix("upperdir=") for o in options if o.startswith("upperdir=")), None)
    if upper is None:
        raise ApiError(
            f"the changes of container {record.id} are not kept apart from its image by the"
            f" {container.snapshotter} snapshotter: pyengine needs overlayfs for them"
        )
    lowers = next((o.removeprefix("lowerdir=").split(":") for o in options if o.startswith("lowerdir=")), [])
    return upper, lowers


#: What the runtime makes in a container's root filesystem to mount on (dockerd's init layer holds
#: them, below the container's changes): left out of the changes while they are empty.
_MOUNT_POINTS = frozenset(
    {"/etc/hostname", "/etc/hosts", "/etc/resolv.conf", "/dev", "/proc", "/sys", "/.dockerenv"}
)


def changes(containers: Containers, name: str) -> list[dict[str, Any]]:
    """``docker diff``: the container's changes to its image, as dockerd's overlay driver reports
    them: a whiteout is a deletion, a name in a lower layer a modification, any other an addition;
    the parent of an addition or a deletion is a modification too. A directory of the image is
    modified only if its mode changed (its mtime changes with its children, and the runtime's mount
    points, which dockerd keeps in an init layer, are left out)."""
    record = containers.get(name)
    upper, lowers = _overlay_dirs(containers.store, record)
    found: list[dict[str, Any]] = []
    changed_dirs: set[str] = set()

    def in_lowers(path: str) -> os.stat_result | None:
        for lower in lowers:
            with contextlib.suppress(OSError):
                return os.lstat(lower + path)
        return None

    def mount_point(path: str, st: os.stat_result) -> bool:
        if path not in _MOUNT_POINTS:
            return False
        if stat.S_ISDIR(st.st_mode):
            return not os.listdir(upper + path)
        return stat.S_ISREG(st.st_mode) and st.st_size == 0

    def walk(relative: str) -> None:
        for entry in sorted(os.listdir(upper + relative)):
            path = f"{relative}/{entry}"
            st = os.lstat(upper + path)
            if mount_point(path, st):
                continue
            kind: int | None = _ADD
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                kind = _DELETE
            elif (below := in_lowers(path)) is not None:
                same_dir = (
                    stat.S_ISDIR(below.st_mode) and stat.S_ISDIR(st.st_mode) and below.st_mode == st.st_mode
                )
                kind = None if same_dir else _MODIFY
            if kind is not None:
                if kind in (_ADD, _DELETE) and relative and relative not in changed_dirs:
                    found.append({"Path": relative, "Kind": _MODIFY})
                    changed_dirs.add(relative)
                found.append({"Path": path, "Kind": kind})
                if stat.S_ISDIR(st.st_mode):
                    changed_dirs.add(path)
            if stat.S_ISDIR(st.st_mode) and kind != _DELETE:
                mark = len(found)
                walk(path)
                if kind is None and len(found) > mark and found[mark]["Path"] != path:
                    # a change below a directory of the image: the directory is modified, first
                    found.insert(mark, {"Path": path, "Kind": _MODIFY})
                    changed_dirs.add(path)

    walk("")
    # dockerd reports a modified directory once, before what changed in it
    unique: dict[str, dict[str, Any]] = {}
    for change in found:
        unique.setdefault(change["Path"], change)
    return list(unique.values())


def _same_time(a: int, b: int) -> bool:
    """Go's sameFsTime: equal, or equal in seconds when either has no sub-second part."""
    if a == b:
        return True
    return (a % 1_000_000_000 == 0 or b % 1_000_000_000 == 0) and a // 1_000_000_000 == b // 1_000_000_000


#: The Dockerfile instructions ``docker commit --change`` takes (dockerd's list).
_CHANGES = (
    "CMD",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "LABEL",
    "ONBUILD",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
)


def _words(value: str, shell: bool) -> list[str]:
    """A JSON array, or the shell form (``/bin/sh -c``) for CMD and ENTRYPOINT, words otherwise."""
    with contextlib.suppress(ValueError):
        parsed = json.loads(value)
        if isinstance(parsed, list) and all(isinstance(w, str) for w in parsed):
            return parsed
    return ["/bin/sh", "-c", value] if shell else value.split()


def _pairs(value: str) -> list[tuple[str, str]]:
    """``k=v k2="v 2"`` or the old ``k v`` form of ENV and LABEL."""
    import shlex

    words = shlex.split(value)
    if words and "=" not in words[0]:
        return [(words[0], value.split(None, 1)[1] if len(words) > 1 else "")]
    return [(w.split("=", 1)[0], w.split("=", 1)[1] if "=" in w else "") for w in words]


def apply_changes(config: dict[str, Any], lines: list[str]) -> None:
    """Apply ``--change`` lines (Dockerfile instructions) to an image config's ``config``."""
    for line in lines:
        if not line.strip():
            continue
        keyword, _, value = line.strip().partition(" ")
        keyword, value = keyword.upper(), value.strip()
        if keyword not in _CHANGES:
            raise InvalidParameter(f"{keyword} is not a valid change command")
        if keyword in ("CMD", "ENTRYPOINT"):
            config["Cmd" if keyword == "CMD" else "Entrypoint"] = _words(value, shell=True)
            if keyword == "ENTRYPOINT":
                config["Cmd"] = None  # as a Dockerfile's ENTRYPOINT resets CMD
        elif keyword == "ENV":
            env = [e for e in config.get("Env") or [] if isinstance(e, str)]
            for key, val in _pairs(value):
                env = [e for e in env if e.split("=", 1)[0] != key] + [f"{key}={val}"]
            config["Env"] = env
        elif keyword == "LABEL":
            config["Labels"] = {**(config.get("Labels") or {}), **dict(_pairs(value))}
        elif keyword == "EXPOSE":
            ports = config.get("ExposedPorts") or {}
            config["ExposedPorts"] = {**ports, **{p if "/" in p else f"{p}/tcp": {} for p in value.split()}}
        elif keyword == "VOLUME":
            config["Volumes"] = {
                **(config.get("Volumes") or {}),
                **{key_0: {} for key_0 in _words(value, False)},
            }
        elif keyword == "USER":
            config["User"] = value
        elif keyword == "WORKDIR":
            config["WorkingDir"] = posixpath.join(config.get("WorkingDir") or "/", value)
        elif keyword == "STOPSIGNAL":
            config["StopSignal"] = value
        else:
            raise InvalidParameter("ONBUILD in a commit's changes is not supported by pyengine yet")


#: The image config's ``config`` fields a committed image takes from the container.
_IMAGE_FIELDS = (
    "User",
    "ExposedPorts",
    "Env",
    "Entrypoint",
    "Cmd",
    "Volumes",
    "WorkingDir",
    "Labels",
    "StopSignal",
)


def _container_config(containers: Containers, record: ContainerRecord) -> dict[str, Any]:
    """The container's config as dockerd keeps it: the image's, with what the create said over it
    (environments and labels merged)."""
    summary, _ = containers.images.find(record.image_id)
    image = summary.config.config
    given = record.config
    env = {e.split("=", 1)[0]: e for e in image.env or ()}
    env.update({e.split("=", 1)[0]: e for e in given.get("Env") or []})
    return {
        "User": given.get("User") or image.user or "",
        "ExposedPorts": given.get("ExposedPorts") or {key: {} for key in image.exposed_ports or ()} or None,
        "Env": list(env.values()),
        "Entrypoint": given.get("Entrypoint") or (list(image.entrypoint) if image.entrypoint else None),
        "Cmd": given.get("Cmd") if given.get("Cmd") is not None else list(image.cmd or ()) or None,
        "Volumes": given.get("Volumes") or {key: {} for key in image.volumes or ()} or None,
        "WorkingDir": given.get("WorkingDir") or image.working_dir or "",
        "Labels": {**dict(image.labels), **(given.get("Labels") or {})} or None,
        "StopSignal": given.get("StopSignal") or image.stop_signal or "",
    }


def commit(
    containers: Containers,
    name: str,
    *,
    repo: str,
    tag: str,
    author: str,
    comment: str,
    pause: bool,
    change_lines: list[str],
    overrides: dict[str, Any],
) -> str:
    """``POST /commit``: the container's changes as a new image; returns its ID."""
    from pyengine._images import _DANGLING

    record = containers.get(name)
    config = _container_config(containers, record)
    for key, value in overrides.items():  # the body's config: what it sets wins (dockerd's merge)
        if key in _IMAGE_FIELDS and value not in (None, "", [], {}):
            config[key] = value
    apply_changes(config, change_lines)
    reference = ""
    if repo:
        reference = f"{repo}:{tag or 'latest'}"
        try:
            pycontainerd.Reference.parse(reference)
        except pycontainerd.InvalidArgumentError as exc:
            raise InvalidParameter(str(exc)) from None
    elif tag:
        raise InvalidParameter("tag is specified without repo")
    task = None
    if pause and record.state.status == "running" and not record.state.paused:
        with contextlib.suppress(pycontainerd.NotFoundError):
            task = containers.task(record)
            task.pause()
    try:
        image, config_desc = containers.store.commit(
            record.runtime_id,
            reference or (lambda digest: f"{_DANGLING}{digest}"),
            config={k: v for k, v in config.items() if v not in (None, "", [], {})},
            author=author or None,
            comment=comment,
            created_by="",
        )
    except pycontainerd.FailedPreconditionError as exc:
        raise ApiError(str(exc)) from None
    finally:
        if task is not None:
            with contextlib.suppress(pycontainerd.PycontainerdError):
                task.resume()
    image_id = config_desc.digest
    containers.events.container(
        record,
        "commit",
        comment=comment,
        imageID=image_id,
        imageRef=familiar_name(image.name) if repo else "",
    )
    if repo:
        containers.events.image(image_id, "tag", name=familiar_name(image.name))
    return image_id


# -- the endpoints ---------------------------------------------------------------------------------


def add_routes(route: Route, containers: Callable[[web.Request], Containers]) -> None:
    """Route the container-files endpoints through ``route(method, path, handler)``."""

    async def head_archive(request: web.Request) -> web.Response:
        found = await blocking(
            stat_path, containers(request), request.match_info["id"], _archive_path(request)
        )
        return web.Response(status=200, headers={"X-Docker-Container-Path-Stat": found.header()})

    async def get_archive(request: web.Request) -> web.StreamResponse:
        store = containers(request)
        name, path = request.match_info["id"], _archive_path(request)
        record = await blocking(store.get, name)
        abs_path, follow = _abs_path(path)
        ready: asyncio.Future[PathStat] = asyncio.get_running_loop().create_future()
        loop = asyncio.get_running_loop()

        def answer(result: PathStat | BaseException) -> None:
            def settle() -> None:
                if ready.done():
                    return
                if isinstance(result, BaseException):
                    ready.set_exception(result)
                else:
                    ready.set_result(result)

            loop.call_soon_threadsafe(settle)

        def produce(out: IO[bytes]) -> None:
            try:
                with _root_of(store, record, abs_path) as (root, in_root, _):
                    try:
                        located, found = _stat(root, in_root, follow)
                    except OSError as exc:
                        answer(_not_found(path, name)(exc))
                        return
                    answer(found)
                    try:
                        writer = _TreeWriter(out)
                        st = _lstat(located.parent, located.name) or located.st
                        assert st is not None
                        writer.add(located.parent, located.name, _base(abs_path), st)
                        writer.close()
                    finally:
                        located.close()
            except BaseException as exc:
                answer(ApiError(f"{path}: {exc}"))
                raise

        response = web.StreamResponse(headers={"Content-Type": "application/x-tar"})
        read_end, write_end = os.pipe()
        thread = threading.Thread(target=functools.partial(_pipe_into, produce, write_end), daemon=True)
        thread.start()
        try:
            found = await ready
        except BaseException:
            os.close(read_end)
            await blocking(thread.join)
            raise
        response.headers["X-Docker-Container-Path-Stat"] = found.header()
        store.events.container(record, "archive-path")
        await _send_pipe(request, response, read_end, thread)
        return response

    async def put_archive(request: web.Request) -> web.Response:
        store = containers(request)
        body = _Body(request.content, asyncio.get_running_loop())
        await blocking(
            functools.partial(
                extract,
                store,
                request.match_info["id"],
                _archive_path(request),
                body,  # type: ignore[arg-type]
                no_overwrite_dir_non_dir=flag(request, "noOverwriteDirNonDir"),
                copy_uid_gid=flag(request, "copyUIDGID"),
            )
        )
        return web.Response(status=200)

    async def export(request: web.Request) -> web.StreamResponse:
        store = containers(request)
        record = await blocking(store.get, request.match_info["id"])

        def produce(out: IO[bytes]) -> None:
            with _root(store, record, mounts=False) as root:
                writer = _TreeWriter(out)
                for child in sorted(os.listdir(root)):
                    st = _lstat(root, child)
                    if st is not None:
                        writer.add(root, child, child, st)
                writer.close()

        response = web.StreamResponse(headers={"Content-Type": "application/x-tar"})
        await _stream_tar(request, response, produce)
        store.events.container(record, "export")
        return response

    async def diff(request: web.Request) -> web.Response:
        found = await blocking(changes, containers(request), request.match_info["id"])
        return json_response(found or None)

    async def commit_(request: web.Request) -> web.Response:
        query = request.query
        overrides = await _optional_config(request)
        image_id = await blocking(
            functools.partial(
                commit,
                containers(request),
                query.get("container", ""),
                repo=query.get("repo", ""),
                tag=query.get("tag", ""),
                author=query.get("author", ""),
                comment=query.get("comment", ""),
                pause=flag(request, "pause", True),
                change_lines=query.getall("changes", []),
                overrides=overrides,
            )
        )
        return json_response({"Id": image_id}, status=201)

    route("HEAD", "/containers/{id}/archive", head_archive)
    route("GET", "/containers/{id}/archive", get_archive)
    route("PUT", "/containers/{id}/archive", put_archive)
    route("GET", "/containers/{id}/export", export)
    route("GET", "/containers/{id}/changes", diff)
    route("POST", "/commit", commit_)


async def _optional_config(request: web.Request) -> dict[str, Any]:
    """The body of ``POST /commit``: a container config, or nothing (the 20.10 CLI sends ``null``)."""
    raw = (await request.read()).strip() if request.can_read_body else b""
    if raw in (b"", b"null"):
        return {}
    try:
        body = json.loads(raw)
    except ValueError:  # not UTF-8 either
        raise InvalidParameter("the request body is not JSON") from None
    if not isinstance(body, dict):
        raise InvalidParameter("the request body is not a JSON object")
    return body


def _pipe_into(produce: Callable[[IO[bytes]], None], write_end: int) -> None:
    try:
        with os.fdopen(write_end, "wb") as out:
            produce(out)
    except (BrokenPipeError, OSError):
        pass  # the client went away, or the file changed under the walk: the tar ends there


async def _send_pipe(
    request: web.Request,
    response: web.StreamResponse,
    read_end: int,
    thread: threading.Thread,
    failure: Sequence[BaseException] = (),
) -> None:
    """Send what ``thread`` writes into the pipe; a ``failure`` it noted then ends the response
    unfinished (no end of the tar: the client sees it broken)."""
    try:
        await response.prepare(request)
        while chunk := await blocking(os.read, read_end, _CHUNK):
            await response.write(chunk)
    finally:
        os.close(read_end)
        await blocking(thread.join)
    if failure:
        raise failure[0]
    with contextlib.suppress(ConnectionResetError):  # the client stops at the tar's end marker
        await response.write_eof()
