"""Volumes: dockerd's ``local`` driver and the store of its volumes, and the volumes a container mounts.

A volume lives in ``<data root>/volumes/<name>/``: its files in ``_data`` (the ``Mountpoint``), its
record (creation time, labels, driver options) in ``volume.json``, written whole to a temporary file
and renamed over, so that a crash at any moment leaves either the complete record or none. A
directory without its record is a creation cut short (or a removal, which deletes the record first)
and is removed when the next daemon opens the store: a volume is complete or gone.

A volume made with the local driver's ``type``/``device``/``o`` options (a tmpfs, a bind of a host
directory, any filesystem the kernel mounts) has that mounted on ``_data`` while a container using it
runs, as dockerd's local driver does: mounted when the first starts, unmounted when the last stops.
Which volumes are mounted is read from the kernel (``/proc/self/mountinfo``), so that a daemon that
was killed knows it again.

A container's volumes (:class:`VolumeMount`) come from ``-v name:/path``, ``-v /path``, ``--mount
type=volume``, ``Config.Volumes`` (the request's and the image's: anonymous volumes) and
``--volumes-from``; :func:`plan_mounts` reads them from a create request, dockerd's rules and words.
On the container's creation a volume that is empty gets the content the image has at its path (owners,
modes and times kept), unless ``nocopy`` says not to, as dockerd's ``populateVolumes``.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import posixpath
import re
import secrets
import stat
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import attrs

import pycontainerd
from pycontainerd import oci
from pyengine._errors import Conflict, InvalidParameter, NotFound
from pyengine._events import EventBus
from pyengine._images import labels_match
from pyengine._times import rfc3339

__all__ = ["ANONYMOUS_LABEL", "Volume", "VolumeMount", "Volumes", "mount_points", "plan_mounts"]

log = logging.getLogger("pyengine.volumes")

#: The label dockerd (API 1.42 and later) gives the volumes it makes for a container, which a prune
#: removes unless told ``all``.
ANONYMOUS_LABEL = "com.docker.volume.anonymous"
DRIVER = "local"
_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+")
#: The local driver's options, and those each needs beside it (dockerd's mandatoryOpts).
_OPTIONS = ("type", "device", "o")
_NEEDS = {"type": "device", "device": "type", "o": "type"}
_RECORD = "volume.json"
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_COPY_MODES = frozenset({"nocopy"})
_PROPAGATIONS = frozenset({"shared", "rshared", "slave", "rslave", "private", "rprivate"})
_MODES = frozenset({"ro", "rw", "z", "Z", "consistent", "cached", "delegated"}) | _COPY_MODES | _PROPAGATIONS


def _plugin_error(driver: str) -> NotFound:
    """dockerd's answer for a driver other than ``local``: there are no volume plugins here."""
    return NotFound(f'error looking up volume plugin {driver}: plugin "{driver}" not found')


@attrs.define
class Volume:
    """A volume of the local driver, as ``volume.json`` keeps it."""

    name: str
    created_at: str
    labels: dict[str, str] = attrs.Factory(dict)
    options: dict[str, str] = attrs.Factory(dict)

    @property
    def anonymous(self) -> bool:
        return ANONYMOUS_LABEL in self.labels

    def to_api(self, mountpoint: Path) -> dict[str, Any]:
        """The API's ``Volume``, as ``docker volume inspect`` shows it."""
        return {
            "CreatedAt": self.created_at,
            "Driver": DRIVER,
            "Labels": self.labels,
            "Mountpoint": str(mountpoint),
            "Name": self.name,
            "Options": self.options,
            "Scope": "local",
        }


@attrs.frozen
class VolumeMount:
    """One mount of a container that :mod:`pyengine._volumes` makes: a volume (``name``), or a host
    path taken from another container by ``--volumes-from`` (``source``, a bind)."""

    destination: str
    name: str = ""  # of the volume; "" for a bind
    source: str = ""  # the host path: the volume's _data, or the bind's source
    rw: bool = True
    mode: str = ""  # as given (``-v``'s third part)
    propagation: str = ""  # of a bind; "" for a volume, as dockerd shows it
    copy: bool = True  # the image's content goes in an empty volume on creation
    anonymous: bool = False  # no name was given: ``rm -v`` removes the volume with the container

    @property
    def is_volume(self) -> bool:
        return bool(self.name)

    def to_json(self) -> dict[str, Any]:
        return attrs.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> VolumeMount:
        return cls(**data)


def _is_valid_name(name: str) -> bool:
    return _NAME.fullmatch(name) is not None


def _check_name(name: str) -> None:
    if not _is_valid_name(name):
        raise InvalidParameter(
            f'create {name}: "{name}" includes invalid characters for a local volume name, only '
            '"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute '
            "path"
        )


def check_options(options: dict[str, str]) -> None:
    """The local driver's checks of its options, with dockerd's words."""
    for key in options:
        if key == "size":  # dockerd's local driver takes it only on a filesystem with project quotas
            raise InvalidParameter("quota size requested but no quota support")
        if key not in _OPTIONS:
            raise InvalidParameter(f'invalid option: "{key}"')
    for key, needed in _NEEDS.items():
        if options.get(key) and not options.get(needed):
            raise InvalidParameter(f'missing required option: "{needed}"')


class Volumes:
    """The local driver's volumes under ``root`` (``<data root>/volumes``). Methods block; one lock
    keeps the records, the mounts and their holders consistent.

    ``users(name)`` (set by the daemon) lists the IDs of the containers that use a volume: such a
    volume is not removed."""

    def __init__(self, root: Path, events: EventBus) -> None:
        self.root = root
        self.events = events
        self.users: Callable[[str], list[str]] = lambda name: []
        self._lock = threading.RLock()
        self._volumes: dict[str, Volume] = {}
        #: The containers running with each volume that has options (mounted while there is one).
        self._holders: dict[str, set[str]] = {}
        root.mkdir(mode=0o701, parents=True, exist_ok=True)
        for directory in sorted(root.iterdir()):
            try:
                data = json.loads((directory / _RECORD).read_text())
            except (FileNotFoundError, NotADirectoryError):
                self._forget(directory)
                continue
            volume = Volume(**data)
            self._volumes[volume.name] = volume

    def _forget(self, directory: Path) -> None:
        """Remove what a creation or removal cut short left (no record: the volume does not exist)."""
        log.warning("removing %s: the creation or removal of its volume was cut short", directory)
        try:
            if directory.is_dir() and not directory.is_symlink():
                pycontainerd.remove_tree(directory, unmount=False)
            else:
                directory.unlink()
        except (OSError, pycontainerd.PycontainerdError) as exc:
            log.error("cannot remove %s: %s", directory, exc)

    def data(self, name: str) -> Path:
        """The volume's ``_data``: its Mountpoint."""
        return self.root / name / "_data"

    # -- create, inspect, list, remove ----------------------------------------------------------------

    def create(
        self,
        name: str = "",
        *,
        driver: str = "",
        options: dict[str, str] | None = None,
        labels: dict[str, str] | None = None,
        anonymous: bool = False,
    ) -> tuple[Volume, bool]:
        """The volume ``name``, made now if it does not exist (a new name if none is given); and
        whether it was made."""
        if driver not in ("", DRIVER):
            raise _plugin_error(driver)
        if name:
            _check_name(name)
        options = dict(options or {})
        check_options(options)
        labels = dict(labels or {})
        with self._lock:
            name = name or secrets.token_hex(32)
            if anonymous:
                labels[ANONYMOUS_LABEL] = ""
            existing = self._volumes.get(name)
            if existing is not None:
                return existing, False
            volume = Volume(name=name, created_at=rfc3339(), labels=labels, options=options)
            directory = self.root / name
            directory.mkdir(mode=0o701)
            try:
                (directory / "_data").mkdir(mode=0o755)
                _write_record(directory, volume)
            except BaseException:
                self._forget(directory)
                raise
            self._volumes[name] = volume
        self.events.publish("volume", "create", name, {"driver": DRIVER})
        return volume, True

    def get(self, name: str) -> Volume:
        with self._lock:
            volume = self._volumes.get(name)
        if volume is None:
            raise NotFound(f"get {name}: no such volume")
        return volume

    def inspect(self, name: str) -> dict[str, Any]:
        return self.get(name).to_api(self.data(name))

    def find(self, filters: dict[str, list[str]]) -> list[dict[str, Any]]:
        """``GET /volumes``'s volumes: those matching every filter (dockerd's)."""
        for key in filters:
            if key not in ("dangling", "driver", "label", "label!", "name"):
                raise InvalidParameter(f"invalid filter '{key}'")
        dangling: bool | None = None
        for value in filters.get("dangling", []):
            if value.lower() not in ("true", "1", "false", "0"):
                raise InvalidParameter(f"invalid filter 'dangling={value}'")
            dangling = value.lower() in ("true", "1")
        with self._lock:
            volumes = sorted(self._volumes.values(), key=lambda v: v.name)
        found = []
        for volume in volumes:
            if any(driver != DRIVER for driver in filters.get("driver", [])):
                continue
            if not all(part in volume.name for part in filters.get("name", [])):
                continue
            if not labels_match(volume.labels, filters):
                continue
            if dangling is not None and dangling == bool(self.users(volume.name)):
                continue
            found.append(volume.to_api(self.data(volume.name)))
        return found

    def remove(self, name: str, *, force: bool = False) -> None:
        """Remove the volume and its files; 409 while a container uses it; with ``force``, a volume
        that does not exist is no error (dockerd's ``docker volume rm -f``)."""
        with self._lock:
            if name not in self._volumes:
                if force:
                    return
                raise NotFound(f"get {name}: no such volume")
            users = self.users(name)
            if users:
                raise Conflict(f"remove {name}: volume is in use - [{', '.join(users)}]")
            directory = self.root / name
            if _mounted(self.data(name)):  # a container of a killed daemon held it: never delete through
                pycontainerd.unmount(self.data(name))
            # The record first: from here on the volume no longer exists, and a crash before its files
            # are gone leaves a directory the next daemon removes.
            (directory / _RECORD).unlink()
            del self._volumes[name]
            self._holders.pop(name, None)
        try:
            pycontainerd.remove_tree(directory, unmount=False)
        except (OSError, pycontainerd.PycontainerdError) as exc:
            log.error("volume %s removed, but not its directory %s: %s", name, directory, exc)
        self.events.publish("volume", "destroy", name, {"driver": DRIVER})

    def prune(self, filters: dict[str, list[str]]) -> dict[str, Any]:
        """``POST /volumes/prune``: the unused volumes matching the label filters; only anonymous ones
        unless ``all`` (API 1.42's rule)."""
        for key in filters:
            if key not in ("label", "label!", "all"):
                raise InvalidParameter(f"invalid filter '{key}'")
        every = False
        for value in filters.get("all", []):
            if value.lower() not in ("true", "1", "false", "0"):
                raise InvalidParameter(f"invalid filter 'all={value}'")
            every = value.lower() in ("true", "1")
        deleted: list[str] = []
        reclaimed = 0
        with self._lock:
            candidates = sorted(self._volumes.values(), key=lambda v: v.name)
        for volume in candidates:
            if not every and not volume.anonymous:
                continue
            if not labels_match(volume.labels, filters) or self.users(volume.name):
                continue
            size = self.size(volume.name)
            try:
                self.remove(volume.name)
            except (Conflict, NotFound):
                continue  # taken (or removed) meanwhile
            deleted.append(volume.name)
            reclaimed += size
        self.events.publish("volume", "prune", "", {"reclaimed": str(reclaimed)})
        return {"VolumesDeleted": deleted, "SpaceReclaimed": reclaimed}

    def size(self, name: str) -> int:
        """The bytes of the volume's files (dockerd's directory size: what ``lstat`` says of each)."""
        total = 0
        for directory, dirs, files in os.walk(self.data(name)):
            for entry in (*dirs, *files):
                with contextlib.suppress(OSError):
                    st = os.lstat(os.path.join(directory, entry))
                    if not stat.S_ISDIR(st.st_mode):
                        total += st.st_size
        return total

    def usage(self, references: dict[str, int]) -> list[dict[str, Any]]:
        """``/system/df``'s Volumes: each with its size and how many containers reference it."""
        with self._lock:
            volumes = sorted(self._volumes.values(), key=lambda v: v.name)
        return [
            {
                **volume.to_api(self.data(volume.name)),
                "UsageData": {"Size": self.size(volume.name), "RefCount": references.get(volume.name, 0)},
            }
            for volume in volumes
        ]

    # -- a container's volumes ------------------------------------------------------------------------

    def prepare(
        self, mounts: Iterable[VolumeMount], creating: dict[str, tuple[dict[str, str], dict[str, str]]]
    ) -> list[str]:
        """Make the volumes of a container being created that do not exist yet (with the options and
        labels of ``creating``, by name); returns the names of those made (to remove if the creation
        fails)."""
        made = []
        try:
            for mount in mounts:
                if mount.is_volume:
                    options, labels = creating.get(mount.name, ({}, {}))
                    _, created = self.create(
                        mount.name, options=options, labels=labels, anonymous=mount.anonymous
                    )
                    if created:
                        made.append(mount.name)
        except BaseException:
            self.discard(made)
            raise
        return made

    def discard(self, names: Iterable[str]) -> None:
        """Remove volumes made for a container whose creation failed."""
        for name in names:
            with contextlib.suppress(NotFound, Conflict):
                self.remove(name)

    def spec_mounts(self, mounts: Iterable[VolumeMount]) -> list[oci.ContainerMount]:
        """The OCI mounts of a container's volumes (and binds taken by ``--volumes-from``)."""
        found = []
        for mount in mounts:
            options = ["rbind", mount.propagation or "rprivate", *([] if mount.rw else ["ro"])]
            found.append(oci.ContainerMount(mount.destination, mount.source, options=options))
        return found

    def populate(self, rootfs: str, mounts: Iterable[VolumeMount]) -> None:
        """Copy into each empty volume the content the container's root filesystem (its image) has at
        the volume's path, unless the mount says ``nocopy`` (dockerd's populateVolumes, on creation)."""
        for mount in mounts:
            if not mount.is_volume or not mount.copy:
                continue
            with self._lock:
                options = self.get(mount.name).options
            if options.get("type"):
                continue  # its files live on what is mounted for a run, not in _data
            with _opened_in(rootfs, mount.destination) as source:
                if source is None:
                    continue
                target = os.open(self.data(mount.name), _DIR)
                try:
                    if not os.listdir(target):
                        _copy_tree(source, target)
                        _copy_attributes(os.fstat(source), None, target)
                finally:
                    os.close(target)

    def mount(self, container_id: str, mounts: Iterable[VolumeMount]) -> None:
        """A container using ``mounts`` starts: mount the volumes with options that are not mounted
        yet, and say ``mount`` for each volume (dockerd's events). On failure nothing it mounted stays."""
        done: list[VolumeMount] = []
        try:
            for mount in mounts:
                if not mount.is_volume:
                    continue
                with self._lock:
                    volume = self.get(mount.name)
                    if volume.options.get("type"):
                        holders = self._holders.setdefault(mount.name, set())
                        if not holders and not _mounted(self.data(mount.name)):
                            _mount_local(volume, self.data(mount.name))
                        holders.add(container_id)
                done.append(mount)
                self.events.publish(
                    "volume",
                    "mount",
                    mount.name,
                    {
                        "container": container_id,
                        "destination": mount.destination,
                        "driver": DRIVER,
                        "propagation": "",
                        "read/write": str(mount.rw).lower(),
                    },
                )
        except BaseException:
            self.unmount(container_id, done, events=False)
            raise

    def unmount(self, container_id: str, mounts: Iterable[VolumeMount], *, events: bool = True) -> None:
        """A container using ``mounts`` stopped: unmount the volumes it was the last to hold."""
        for mount in mounts:
            if not mount.is_volume:
                continue
            with self._lock:
                holders = self._holders.get(mount.name)
                if holders is not None:
                    holders.discard(container_id)
                    if not holders:
                        del self._holders[mount.name]
                        self._release(mount.name)
            if events:
                self.events.publish(
                    "volume", "unmount", mount.name, {"container": container_id, "driver": DRIVER}
                )

    def _release(self, name: str) -> None:
        data = self.data(name)
        try:
            if _mounted(data):
                pycontainerd.unmount(data)
        except OSError as exc:  # busy: a process outside the container holds it; tried again later
            log.error("cannot unmount volume %s from %s: %s", name, data, exc)

    def restore(self, running: dict[str, list[VolumeMount]]) -> None:
        """After a daemon's start: the containers running (by ID) with their volumes hold them again;
        the volumes a container that stopped meanwhile left mounted are unmounted."""
        with self._lock:
            self._holders.clear()
            for container_id, mounts in running.items():
                for mount in mounts:
                    volume = self._volumes.get(mount.name)
                    if volume is not None and volume.options.get("type"):
                        self._holders.setdefault(mount.name, set()).add(container_id)
            for name, volume in self._volumes.items():
                if volume.options.get("type") and name not in self._holders:
                    self._release(name)


def mount_points(mounts: Iterable[VolumeMount]) -> list[dict[str, Any]]:
    """inspect's ``Mounts`` entries of a container's volumes, as dockerd shows them."""
    points = []
    for mount in mounts:
        point = {
            "Type": "volume" if mount.is_volume else "bind",
            "Source": mount.source,
            "Destination": mount.destination,
            "Mode": mount.mode,
            "RW": mount.rw,
            "Propagation": mount.propagation,
        }
        if mount.is_volume:
            point = {"Type": "volume", "Name": mount.name, **point, "Driver": DRIVER}
        points.append(point)
    return points


def _write_record(directory: Path, volume: Volume) -> None:
    """``volume.json``, whole or not at all: written to a temporary file, synced, renamed over."""
    tmp = directory / f".{_RECORD}.tmp"
    with open(tmp, "w") as f:
        json.dump(attrs.asdict(volume), f)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(directory / _RECORD)
    fd = os.open(directory, _DIR)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _mounted(path: Path) -> bool:
    """Whether something is mounted on ``path``, as the kernel lists its mounts."""
    wanted = os.fsencode(os.path.realpath(path))
    with open("/proc/self/mountinfo", "rb") as f:
        for line in f:
            point = line.split(b" ", 5)[4]
            if b"\\" in point:  # the kernel escapes space, tab, newline and backslash as octal
                point = re.sub(rb"\\([0-7]{3})", lambda m: bytes([int(m.group(1), 8)]), point)
            if point == wanted:
                return True
    return False


def _mount_local(volume: Volume, target: Path) -> None:
    """Mount what the volume's options say on its ``_data`` (dockerd's local driver)."""
    options = volume.options
    device, kind = options.get("device", ""), options.get("type", "")
    flags = tuple(o for o in options.get("o", "").split(",") if o)
    try:
        pycontainerd.Mount(kind, device, flags).mount(target)
    except OSError as exc:
        raise InvalidParameter(
            f"error while mounting volume '{target}': failed to mount local volume: mount {device}:{target}, "
            f"data: {options.get('o', '')}: {exc.strerror or exc}"
        ) from None


# -- copying the image's content into a volume -------------------------------------------------------


@contextlib.contextmanager
def _opened_in(rootfs: str, path: str) -> Iterator[int | None]:
    """A descriptor of the directory ``path`` in the root filesystem ``rootfs``, each component opened
    without following a symlink (the image is not trusted); None if there is no such directory."""
    fd = os.open(rootfs, _DIR)
    try:
        for part in path.strip("/").split("/"):
            if part in ("", "."):
                continue
            try:
                child = os.open(part, _DIR, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
                    yield None
                    return
                raise
            os.close(fd)
            fd = child
        yield fd
    finally:
        os.close(fd)


def _copy_attributes(st: os.stat_result, name: str | None, parent: int) -> None:
    """Give ``name`` in ``parent`` (``parent`` itself for None) the owner, mode and times of ``st``."""
    if name is None:
        os.chown(parent, st.st_uid, st.st_gid)
        os.chmod(parent, stat.S_IMODE(st.st_mode))
        os.utime(parent, ns=(st.st_atime_ns, st.st_mtime_ns))
        return
    os.chown(name, st.st_uid, st.st_gid, dir_fd=parent, follow_symlinks=False)
    if not stat.S_ISLNK(st.st_mode):  # Linux has no mode of a symlink to set
        os.chmod(name, stat.S_IMODE(st.st_mode), dir_fd=parent)
    os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=parent, follow_symlinks=False)


def _copy_tree(source: int, target: int) -> None:
    """Copy the content of the directory ``source`` into the empty directory ``target`` (both
    descriptors): files, directories, symlinks (as they are) and special files, with their owners,
    modes and times; nothing is followed."""
    for name in sorted(os.listdir(source)):
        st = os.stat(name, dir_fd=source, follow_symlinks=False)
        kind = stat.S_IFMT(st.st_mode)
        if kind == stat.S_IFDIR:
            os.mkdir(name, 0o700, dir_fd=target)
            child_source = os.open(name, _DIR, dir_fd=source)
            try:
                child_target = os.open(name, _DIR, dir_fd=target)
                try:
                    _copy_tree(child_source, child_target)
                finally:
                    os.close(child_target)
            finally:
                os.close(child_source)
        elif kind == stat.S_IFREG:
            reader = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=source)
            try:
                writer = os.open(
                    name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600, dir_fd=target
                )
                try:
                    while os.sendfile(writer, reader, None, 1 << 20):
                        pass
                finally:
                    os.close(writer)
            finally:
                os.close(reader)
        elif kind == stat.S_IFLNK:
            os.symlink(os.readlink(name, dir_fd=source), name, dir_fd=target)
        else:  # devices, fifos, sockets
            os.mknod(name, st.st_mode, st.st_rdev, dir_fd=target)
        _copy_attributes(st, name, target)


# -- a create request's volumes -------------------------------------------------------------------------


def _mount_error(message: str) -> InvalidParameter:
    return InvalidParameter(f'invalid mount config for type "volume": {message}')


def _destination(path: str) -> str:
    if not path.startswith("/"):
        raise _mount_error(f"invalid mount path: '{path}' mount path must be absolute")
    clean = posixpath.normpath(path)
    if clean == "/":
        raise InvalidParameter("invalid specification: destination can't be '/'")
    return clean


def _bound(hc: dict[str, Any]) -> set[str]:
    """The destinations of the request's binds and tmpfs mounts (which ``_spec`` makes)."""
    found = set()
    for spec in hc.get("Binds") or []:
        parts = spec.split(":") if isinstance(spec, str) else []
        if len(parts) > 1 and parts[0].startswith("/"):
            found.add(posixpath.normpath(parts[1]))
    for mount in hc.get("Mounts") or []:
        if isinstance(mount, dict) and mount.get("Type") in ("bind", "tmpfs") and mount.get("Target"):
            found.add(posixpath.normpath(str(mount["Target"])))
    found.update(posixpath.normpath(t) for t in (hc.get("Tmpfs") or {}) if isinstance(t, str))
    return found


def _parse_volume_bind(spec: str) -> VolumeMount | None:
    """A ``Binds`` entry that names a volume (``name:/path[:mode]``) or asks for an anonymous one
    (``/path``); None for a bind of a host path (``_spec``'s)."""
    parts = spec.split(":")
    if not parts[0] or len(parts) > 3:
        raise InvalidParameter(f"invalid volume specification: '{spec}'")
    if len(parts) == 1:
        return VolumeMount(destination=_destination(spec), anonymous=True)
    if parts[0].startswith("/"):
        return None
    if not parts[1]:
        raise InvalidParameter(f"invalid volume specification: '{spec}'")
    mode = parts[2] if len(parts) == 3 else ""
    modes = mode.split(",") if mode else []
    if (
        any(m not in _MODES for m in modes)
        or sum(m in ("ro", "rw") for m in modes) > 1
        or sum(m in _PROPAGATIONS for m in modes) > 1
    ):
        raise InvalidParameter(f"invalid mode: {mode}")
    if any(m in _PROPAGATIONS for m in modes):
        raise _mount_error("field BindOptions must not be specified")
    _check_name(parts[0])
    return VolumeMount(
        destination=_destination(parts[1]),
        name=parts[0],
        rw="ro" not in modes,
        mode=mode,
        copy="nocopy" not in modes,
    )


def _parse_volume_mount(mount: dict[str, Any]) -> VolumeMount:
    """A ``Mounts`` entry of type ``volume`` (``--mount type=volume,...``)."""
    target = mount.get("Target") or ""
    if not target:
        raise _mount_error("field Target must not be empty")
    if mount.get("BindOptions"):
        raise _mount_error("field BindOptions must not be specified")
    if mount.get("TmpfsOptions"):
        raise _mount_error("field TmpfsOptions must not be specified")
    source = mount.get("Source") or ""
    options = mount.get("VolumeOptions") or {}
    if not isinstance(options, dict):
        raise _mount_error("field VolumeOptions must be an object")
    if options.get("Subpath"):
        raise _mount_error("VolumeOptions.Subpath (volume-subpath) is not supported by pyengine yet")
    if mount.get("ReadOnly") and not source:
        raise _mount_error("must not set ReadOnly mode when using anonymous volumes")
    driver = options.get("DriverConfig") or {}
    if driver.get("Name") not in (None, "", DRIVER):
        raise _plugin_error(driver["Name"])
    if driver.get("Options"):
        check_options(driver["Options"])
    if source:
        _check_name(source)
    return VolumeMount(
        destination=_destination(str(target)),
        name=source,
        rw=not mount.get("ReadOnly"),
        copy=not options.get("NoCopy"),
        anonymous=not source,
    )


def plan_mounts(
    body: dict[str, Any], image_volumes: Iterable[str], volumes_from: Callable[[str], list[VolumeMount]]
) -> tuple[list[VolumeMount], dict[str, tuple[dict[str, str], dict[str, str]]]]:
    """The volumes a ``POST /containers/create`` body mounts, in dockerd's order of precedence
    (``--volumes-from``, then ``Binds`` and ``Mounts``, then the request's and the image's
    ``Config.Volumes`` where nothing else is mounted), anonymous ones named now; and the driver
    options and labels ``--mount`` gives for the named volumes it may create."""
    hc: dict[str, Any] = body.get("HostConfig") or {}
    driver = hc.get("VolumeDriver") or ""
    if driver not in ("", DRIVER):
        raise _plugin_error(driver)
    by_destination: dict[str, VolumeMount] = {}
    for entry in hc.get("VolumesFrom") or []:
        if not isinstance(entry, str) or not entry:
            raise InvalidParameter("volumes-from specification cannot be an empty string")
        name, _, mode = entry.partition(":")
        if mode and mode not in ("ro", "rw"):
            raise InvalidParameter(f"invalid mode: {mode}")
        for taken in volumes_from(name):
            rw = taken.rw if not mode else mode == "rw"
            by_destination[taken.destination] = attrs.evolve(
                taken, rw=rw, mode=mode or taken.mode, copy=False
            )
    given: list[VolumeMount] = []
    for spec in hc.get("Binds") or []:
        if isinstance(spec, str):
            parsed = _parse_volume_bind(spec)
            if parsed is not None:
                given.append(parsed)
    creating: dict[str, tuple[dict[str, str], dict[str, str]]] = {}
    for mount in hc.get("Mounts") or []:
        if isinstance(mount, dict) and mount.get("Type") == "volume":
            parsed = _parse_volume_mount(mount)
            given.append(parsed)
            options = mount.get("VolumeOptions") or {}
            if parsed.name:
                creating[parsed.name] = (
                    dict((options.get("DriverConfig") or {}).get("Options") or {}),
                    dict(options.get("Labels") or {}),
                )
    bound = _bound(hc)
    for mount in given:
        if mount.destination in bound or any(
            m.destination == mount.destination for m in given if m is not mount
        ):
            raise InvalidParameter(f"Duplicate mount point: {mount.destination}")
    for mount in given:
        by_destination.pop(mount.destination, None)
    bound |= {m.destination for m in given}
    for destination in by_destination:
        bound.add(destination)
    wanted = [*(body.get("Volumes") or {}), *image_volumes]
    anonymous: list[VolumeMount] = []
    for path in wanted:
        destination = _destination(path)
        if destination in bound:
            continue
        bound.add(destination)
        anonymous.append(VolumeMount(destination=destination, anonymous=True))
    mounts = [*by_destination.values(), *given, *anonymous]
    return [
        attrs.evolve(m, name=secrets.token_hex(32)) if m.anonymous and not m.name else m for m in mounts
    ], creating
