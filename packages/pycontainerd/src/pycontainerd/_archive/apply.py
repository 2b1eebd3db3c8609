"""Applying a layer tar to a directory, safely and streaming.

:class:`~pycontainerd._archive.tar.TarReader` only reads the entries; every filesystem operation is
made here, relative to a directory descriptor from :class:`~pycontainerd._archive.resolve.RootDir`,
on one final name component that is never followed:

- a name is cleaned lexically (``/abs`` becomes ``abs``, ``..`` above the root is refused);
- its parent is resolved inside the root (symlinks scoped to the root, as the container sees them);
- whatever sits at the final name is removed first (a non-directory replaces anything, a directory
  replaces a non-directory and merges into a directory), then the entry is made with ``O_EXCL`` /
  ``mkdirat`` / ``symlinkat`` / ``linkat`` without ``AT_SYMLINK_FOLLOW`` / ``mknodat``;
- metadata goes through the new file's descriptor, or ``*at`` calls with ``AT_SYMLINK_NOFOLLOW``.

So nothing is ever written through a symlink, whatever the layer holds. Headers are checked before
anything is made, and a bad one is a ``LayerError`` naming the entry: names and link targets over
PATH_MAX or with a component over NAME_MAX, sizes, modes, owners, times and device numbers out of
range, unknown types (and what the reader refuses: sparse files, long chains of extended headers,
global pax headers). With ``min_free``, entries and data are charged to a
:class:`~pycontainerd._reserve.SpaceGuard` before they are written.

On error (``LayerError``, ``ResourceExhaustedError``), the entries before the failing one stay
applied and the directory is left half-written: the caller discards the snapshot.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import TYPE_CHECKING

from pycontainerd._archive.compression import (
    Compression,
    DigestingReader,
    compression_for_media_type,
    decompress,
)
from pycontainerd._archive.resolve import RootDir, clean_name
from pycontainerd._archive.tar import TarReader, shown
from pycontainerd._archive.whiteouts import (
    OPAQUE,
    WHITEOUT_PREFIX,
    WhiteoutFormat,
    empty_dir,
    remove_entry,
    set_overlay_opaque,
    write_overlay_whiteout,
)
from pycontainerd._errors import LayerError, ResourceExhaustedError, UnsafeLayerError
from pycontainerd._record import Record
from pycontainerd._reserve import SpaceGuard

if TYPE_CHECKING:
    import tarfile
    from typing import Final

    from pycontainerd._archive.compression import Readable

__all__ = ["ApplyLimits", "ApplyResult", "apply_layer"]

_CHUNK = 1 << 20
_PATH_MAX = 4096  # bytes of a path, its terminating NUL included (linux/limits.h)
_NAME_MAX = 255  # bytes of one path component
_MAX_MODE = 0o7777777  # what the header's octal mode field holds
_MAX_ID = (1 << 32) - 2  # uid_t and gid_t; (uid_t)-1 means "leave unchanged" to chown(2)
_MAX_DEVICE = (1 << 32) - 1
_MAX_SECONDS = ((1 << 63) - 1) // 1_000_000_000  # times are nanoseconds in an int64
_XATTR_NAME_MAX = 255
_XATTR_SIZE_MAX = 65536
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_XATTR_PREFIX = "SCHILY.xattr."
# A layer must not speak for the kernel's overlayfs: these would redirect or hide lower paths.
_FORBIDDEN_XATTRS = ("trusted.overlay.", "user.overlay.")


class ApplyLimits(Record):
    """Bounds against tar bombs: bytes of file data written, and entries."""

    __slots__ = ("max_bytes", "max_entries")

    def __init__(self, max_bytes: int = 1 << 40, max_entries: int = 10_000_000) -> None:
        self.max_bytes: Final = max_bytes
        self.max_entries: Final = max_entries


_DEFAULT_LIMITS = ApplyLimits()


class ApplyResult(Record):
    """What applying a layer found.

    ``diff_id`` and ``size`` describe the uncompressed tar (the diffID of the image config);
    ``digest`` and ``compressed_size`` the blob as read (equal to the former for a plain tar);
    ``digest`` is None when the caller had the blob hashed elsewhere (``digest_blob=False``).
    """

    __slots__ = ("diff_id", "size", "digest", "compressed_size", "compression", "entries")

    def __init__(
        self,
        diff_id: str,
        size: int,
        digest: str | None,
        compressed_size: int,
        compression: Compression,
        entries: int,
    ) -> None:
        self.diff_id: Final = diff_id
        self.size: Final = size
        self.digest: Final = digest
        self.compressed_size: Final = compressed_size
        self.compression: Final = compression
        self.entries: Final = entries


def apply_layer(
    root: str | os.PathLike[str],
    stream: Readable,
    *,
    media_type: str | None = None,
    compression: Compression | str = "auto",
    whiteout_format: WhiteoutFormat | str = WhiteoutFormat.OVERLAY,
    allow_devices: bool = False,
    strip_setuid: bool = False,
    limits: ApplyLimits = _DEFAULT_LIMITS,
    digest_blob: bool = True,
    min_free: float | None = None,
) -> ApplyResult:
    """Apply the layer read from ``stream`` to the directory ``root``.

    The compression comes from ``media_type`` if given, else from ``compression`` ("auto" sniffs
    the magic bytes). ``whiteout_format`` says whether ``root`` is an overlayfs upper dir or a plain
    directory holding the lower layers. Device nodes are refused unless ``allow_devices``; setuid
    and setgid bits are kept unless ``strip_setuid``. Raises ``UnsafeLayerError`` (naming the entry)
    or ``LayerError`` (naming the entry); the caller verifies digests and discards ``root`` on error.
    ``digest_blob=False`` skips hashing the blob as read, for a caller whose blob is hashed on its way
    into the store. With ``min_free`` (a share: 0.05), an entry that would take ``root``'s filesystem
    under that share of free blocks or inodes raises ``ResourceExhaustedError``.
    """
    declared: Compression | None
    if media_type is not None:
        declared = compression_for_media_type(media_type)
    elif compression == "auto":
        declared = None
    else:
        declared = Compression(compression)
    blob = DigestingReader(stream, hashing=digest_blob)
    inner, found = decompress(blob, declared)
    tar_stream = DigestingReader(inner)
    guard = SpaceGuard(root, min_free) if min_free is not None else None
    applier = _Applier(root, WhiteoutFormat(whiteout_format), allow_devices, strip_setuid, limits, guard)
    try:
        applier.run(TarReader(tar_stream))
        tar_stream.drain()
        blob.drain()
    finally:
        applier.close()
    return ApplyResult(
        diff_id=tar_stream.digest,
        size=tar_stream.size,
        digest=blob.digest if digest_blob else None,
        compressed_size=blob.size,
        compression=found,
        entries=applier.entries,
    )


class _Applier:
    def __init__(
        self,
        root: str | os.PathLike[str],
        whiteouts: WhiteoutFormat,
        allow_devices: bool,
        strip_setuid: bool,
        limits: ApplyLimits,
        guard: SpaceGuard | None,
    ) -> None:
        self.root = RootDir(root)
        self.whiteouts = whiteouts
        self.allow_devices = allow_devices
        self.strip_setuid = strip_setuid
        self.limits = limits
        self.guard = guard
        self.chown = os.geteuid() == 0
        self.entries = 0
        self.written = 0
        # Real paths (from the root) made by this layer, by parent: whiteouts spare them.
        self.created: dict[tuple[str, ...], set[str]] = {}
        self.whited: set[tuple[str, ...]] = set()
        self.dir_times: list[tuple[tuple[str, ...], int]] = []

    def close(self) -> None:
        self.root.close()

    def run(self, tar: TarReader) -> None:
        while (member := tar.next()) is not None:
            self.entries += 1
            if self.entries > self.limits.max_entries:
                raise LayerError(
                    f"layer entry {shown(member.name)}: the layer has more than"
                    f" {self.limits.max_entries} entries"
                )
            try:
                _check_header(member)
                if self.guard is not None:
                    self.guard.charge(inodes=1)
                self._entry(tar, member)
            except ResourceExhaustedError as exc:
                raise ResourceExhaustedError(f"layer entry {shown(member.name)}: {exc}") from None
            except (OSError, ValueError, OverflowError) as exc:
                # What the checks above did not foresee still names the entry.
                raise LayerError(f"layer entry {shown(member.name)}: {exc}") from exc
        self._set_dir_times()

    # --- entries -------------------------------------------------------------------------

    def _entry(self, tar: TarReader, member: tarfile.TarInfo) -> None:
        parts = clean_name(member.name)
        if not parts:
            if not member.isdir():
                raise UnsafeLayerError(member.name, "a non-directory entry would replace the root")
            fd = os.dup(self.root.fd)
            try:
                self._meta_fd(fd, member)
            finally:
                os.close(fd)
            self.dir_times.append(((), _ns(member)))
            return
        base = parts[-1]
        if base.startswith(WHITEOUT_PREFIX):
            self._whiteout(member, parts)
            return
        if (member.ischr() or member.isblk()) and not self.allow_devices:
            raise UnsafeLayerError(member.name, "device nodes are not allowed (allow_devices=False)")
        opened = self.root.open_dir(parts[:-1], create=True, entry=member.name)
        assert opened is not None
        pfd, real = opened
        try:
            self._make(tar, member, pfd, real, base)
        finally:
            os.close(pfd)
        self.created.setdefault(real, set()).add(base)

    def _make(
        self, tar: TarReader, member: tarfile.TarInfo, pfd: int, real: tuple[str, ...], base: str
    ) -> None:
        existing = _lstat(pfd, base)
        if member.isdir():
            if existing is None or not stat.S_ISDIR(existing.st_mode):
                remove_entry(pfd, base)
                os.mkdir(base, 0o700, dir_fd=pfd)
            fd = os.open(base, _DIR_FLAGS, dir_fd=pfd)
            try:
                self._meta_fd(fd, member)
                if self.whiteouts is WhiteoutFormat.OVERLAY and (*real, base) in self.whited:
                    set_overlay_opaque(fd)  # this layer removed the lower NAME, then made it anew
            finally:
                os.close(fd)
            self.dir_times.append(((*real, base), _ns(member)))
        elif member.isreg():
            if self.written + member.size > self.limits.max_bytes:
                raise LayerError(
                    f"layer entry {shown(member.name)}: its {member.size} bytes take the layer over"
                    f" its limit of {self.limits.max_bytes} bytes"
                )
            remove_entry(pfd, base)
            fd = os.open(base, _FILE_FLAGS, 0o600, dir_fd=pfd)
            try:
                self._copy(tar, member, fd)
                self._meta_fd(fd, member)
                os.utime(fd, ns=(_ns(member), _ns(member)))
            finally:
                os.close(fd)
        elif member.issym():
            remove_entry(pfd, base)
            os.symlink(member.linkname, base, dir_fd=pfd)
            self._meta_path(pfd, base, member, chmod=False)
        elif member.islnk():
            self._hardlink(member, pfd, base, existing)
        elif member.ischr() or member.isblk() or member.isfifo():
            remove_entry(pfd, base)
            kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK if member.isblk() else stat.S_IFIFO
            dev = os.makedev(member.devmajor, member.devminor) if kind != stat.S_IFIFO else 0
            os.mknod(base, kind | 0o600, dev, dir_fd=pfd)
            self._meta_path(pfd, base, member, chmod=True)
        else:
            raise LayerError(f"layer entry {shown(member.name)}: unsupported tar type {member.type!r}")

    def _copy(self, tar: TarReader, member: tarfile.TarInfo, fd: int) -> None:
        remaining = member.size
        while remaining > 0:
            chunk = tar.read(min(_CHUNK, remaining))
            if self.guard is not None:
                self.guard.charge(len(chunk))
            remaining -= len(chunk)
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view) :]
        self.written += member.size

    def _hardlink(
        self, member: tarfile.TarInfo, pfd: int, base: str, existing: os.stat_result | None
    ) -> None:
        target = clean_name(member.linkname)
        if not target:
            raise UnsafeLayerError(member.name, "a hardlink to the root")
        opened = self.root.open_dir(target[:-1], create=False, entry=member.name)
        if opened is None:
            raise LayerError(
                f"layer entry {shown(member.name)}: hardlink target {shown(member.linkname)} missing"
            )
        tfd, _ = opened
        try:
            tst = _lstat(tfd, target[-1])
            if tst is None:
                raise LayerError(
                    f"layer entry {shown(member.name)}: hardlink target {shown(member.linkname)} missing"
                )
            if stat.S_ISDIR(tst.st_mode):
                raise UnsafeLayerError(member.name, "a hardlink to a directory")
            if existing is not None and (existing.st_dev, existing.st_ino) == (tst.st_dev, tst.st_ino):
                return
            remove_entry(pfd, base)
            # follow_symlinks=False: linkat without AT_SYMLINK_FOLLOW links a symlink itself.
            os.link(target[-1], base, src_dir_fd=tfd, dst_dir_fd=pfd, follow_symlinks=False)
        finally:
            os.close(tfd)

    # --- whiteouts -----------------------------------------------------------------------

    def _whiteout(self, member: tarfile.TarInfo, parts: tuple[str, ...]) -> None:
        base = parts[-1]
        overlay = self.whiteouts is WhiteoutFormat.OVERLAY
        if base != OPAQUE and base.startswith(WHITEOUT_PREFIX + WHITEOUT_PREFIX):
            return  # aufs' internal names (.wh..wh.plnk, ...): meaningless here, as in Docker
        target = base[len(WHITEOUT_PREFIX) :]
        if base != OPAQUE and target in ("", ".", ".."):
            raise UnsafeLayerError(member.name, "a whiteout naming its own directory or its parent")
        opened = self.root.open_dir(parts[:-1], create=overlay, entry=member.name)
        if opened is None:
            return  # nothing below to hide (e.g. the parent is a dangling symlink)
        pfd, real = opened
        try:
            mine = self.created.get(real, set())
            if base == OPAQUE:
                if overlay:
                    set_overlay_opaque(pfd)
                else:
                    empty_dir(pfd, mine)
                return
            self.whited.add((*real, target))
            if target in mine:
                st = _lstat(pfd, target)
                if st is not None and stat.S_ISDIR(st.st_mode):
                    # Same layer made the directory: hide only the lower contents.
                    dfd = os.open(target, _DIR_FLAGS, dir_fd=pfd)
                    try:
                        if overlay:
                            set_overlay_opaque(dfd)
                        else:
                            empty_dir(dfd, self.created.get((*real, target), set()))
                    finally:
                        os.close(dfd)
                return
            if overlay:
                write_overlay_whiteout(pfd, target)
            else:
                remove_entry(pfd, target)
        finally:
            os.close(pfd)

    # --- metadata ------------------------------------------------------------------------

    def _mode(self, member: tarfile.TarInfo) -> int:
        mode = member.mode & 0o7777
        if self.strip_setuid:
            mode &= ~(stat.S_ISUID | stat.S_ISGID)
        return mode

    def _meta_fd(self, fd: int, member: tarfile.TarInfo) -> None:
        if self.chown:
            os.chown(fd, member.uid, member.gid)
        os.chmod(fd, self._mode(member))  # after chown, which clears setuid bits
        for key, value in _xattrs(member):
            try:
                os.setxattr(fd, key, value)
            except OSError as exc:
                if exc.errno not in (errno.ENOTSUP, errno.EOPNOTSUPP):
                    raise

    def _meta_path(self, pfd: int, base: str, member: tarfile.TarInfo, *, chmod: bool) -> None:
        if self.chown:
            os.chown(base, member.uid, member.gid, dir_fd=pfd, follow_symlinks=False)
        if chmod:
            # Only for nodes just made by mknodat in a directory we hold: no symlink to follow.
            os.chmod(base, self._mode(member), dir_fd=pfd)
        os.utime(base, ns=(_ns(member), _ns(member)), dir_fd=pfd, follow_symlinks=False)

    def _set_dir_times(self) -> None:
        # Children change their parent's mtime: directories get theirs last, deepest first.
        for real, mtime in sorted(self.dir_times, key=lambda item: len(item[0]), reverse=True):
            fd = self.root.open_real_dir(real)
            if fd is None:
                continue  # replaced later in the layer
            try:
                os.utime(fd, ns=(mtime, mtime))
            finally:
                os.close(fd)


def _encoded(text: str, what: str, entry: str) -> bytes:
    try:
        return os.fsencode(text)
    except UnicodeEncodeError as exc:
        raise LayerError(f"layer entry {shown(entry)}: its {what} is not encodable: {exc}") from None


def _check_path(path: str, what: str, entry: str) -> None:
    encoded = _encoded(path, what, entry)
    if len(encoded) >= _PATH_MAX:
        raise LayerError(f"layer entry {shown(entry)}: its {what} is {len(encoded)} bytes, over PATH_MAX")
    longest = max(encoded.split(b"/"), key=len)
    if len(longest) > _NAME_MAX:
        raise LayerError(
            f"layer entry {shown(entry)}: its {what} has a component of {len(longest)} bytes, over NAME_MAX"
            f" ({_NAME_MAX})"
        )


def _check_header(member: tarfile.TarInfo) -> None:
    """LayerError naming ``member`` if a field of its header cannot be applied as it says."""
    name = member.name
    _check_path(name, "name", name)
    if member.issym():
        target = _encoded(member.linkname, "link target", name)
        if not target or b"\0" in target or len(target) >= _PATH_MAX:
            raise LayerError(
                f"layer entry {shown(name)}: a symlink to {shown(member.linkname)} (empty, over PATH_MAX,"
                " or holding a NUL byte)"
            )
    elif member.islnk():
        _check_path(member.linkname, "hardlink target", name)
    problem = None
    if member.size < 0:
        problem = f"negative size {member.size}"
    elif not 0 <= member.mode <= _MAX_MODE:
        problem = f"mode {member.mode} is not from 0 to {_MAX_MODE:#o}"
    elif not 0 <= member.uid <= _MAX_ID or not 0 <= member.gid <= _MAX_ID:
        problem = f"owner {member.uid}:{member.gid}: ids are from 0 to {_MAX_ID}"
    elif not -_MAX_SECONDS < member.mtime < _MAX_SECONDS:  # NaN too
        problem = f"modification time {member.mtime!r} is out of range"
    elif (member.ischr() or member.isblk()) and not (
        0 <= member.devmajor <= _MAX_DEVICE and 0 <= member.devminor <= _MAX_DEVICE
    ):
        problem = f"device number {member.devmajor}:{member.devminor} is out of range"
    if problem is not None:
        raise LayerError(f"layer entry {shown(name)}: {problem}")
    for key, value in member.pax_headers.items():
        if not key.startswith(_XATTR_PREFIX):
            continue
        xattr = _encoded(key[len(_XATTR_PREFIX) :], "xattr name", name)
        size = len(value.encode("utf-8", "surrogateescape"))
        if not xattr or b"\0" in xattr or len(xattr) > _XATTR_NAME_MAX or size > _XATTR_SIZE_MAX:
            raise LayerError(
                f"layer entry {shown(name)}: xattr {shown(key)} ({size} bytes of value): names are 1 to"
                f" {_XATTR_NAME_MAX} bytes without NUL, values at most {_XATTR_SIZE_MAX} bytes"
            )


def _ns(member: tarfile.TarInfo) -> int:
    return int(member.mtime * 1_000_000_000)


def _lstat(dir_fd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _xattrs(member: tarfile.TarInfo) -> list[tuple[str, bytes]]:
    out = []
    for key, value in member.pax_headers.items():
        if not key.startswith(_XATTR_PREFIX):
            continue
        name = key[len(_XATTR_PREFIX) :]
        if name.startswith(_FORBIDDEN_XATTRS):
            continue
        out.append((name, value.encode("utf-8", "surrogateescape")))
    return out
