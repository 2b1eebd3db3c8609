"""Writing the difference between two directories as a layer tar.

Entries come in a deterministic order (parents first, names sorted bytewise), in PAX format with
xattrs as ``SCHILY.xattr.*``, user and group names empty, whiteouts in the OCI form:

- ``WhiteoutFormat.OVERLAY``: ``upper`` is an overlayfs upper dir and *is* the diff; its 0:0
  character devices become ``.wh.NAME`` and its opaque directories get ``.wh..wh..opq``. ``lower``
  is not read (overlay's redirect_dir and metacopy features must be off, as on our mounts).
- ``WhiteoutFormat.NATIVE``: ``upper`` is compared with ``lower`` (None: an empty tree) by type,
  mode, owner, size, mtime, symlink target, device and xattrs; a name gone from ``upper`` becomes
  ``.wh.NAME``. Parents of changed entries are included.
"""

from __future__ import annotations

import os
import stat
import tarfile
import zlib
from typing import TYPE_CHECKING, Protocol

import zstandard

from pycontainerd._archive.compression import Compression
from pycontainerd._archive.whiteouts import (
    OPAQUE,
    OVERLAY_OPAQUE_XATTR,
    WHITEOUT_PREFIX,
    WhiteoutFormat,
    is_overlay_whiteout,
)
from pycontainerd._record import Record

if TYPE_CHECKING:
    from typing import BinaryIO, Final

__all__ = ["DiffResult", "write_diff"]

_CHUNK = 1 << 20


class DiffResult(Record):
    """The layer written: diffID and size of the tar, digest and size of the (compressed) blob."""

    __slots__ = ("diff_id", "size", "digest", "compressed_size", "entries")

    def __init__(self, diff_id: str, size: int, digest: str, compressed_size: int, entries: int) -> None:
        self.diff_id: Final = diff_id
        self.size: Final = size
        self.digest: Final = digest
        self.compressed_size: Final = compressed_size
        self.entries: Final = entries


class _HashingWriter:
    def __init__(self, out: BinaryIO) -> None:
        import hashlib

        self._out = out
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self._hash.update(data)
        self.size += len(data)
        self._out.write(data)
        return len(data)

    @property
    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()


class _Compressing(Protocol):
    """What zlib's and zstandard's compression objects both offer."""

    def compress(self, data: bytes, /) -> bytes: ...

    def flush(self) -> bytes: ...


class _Compressor:
    """Compresses into ``out``; ``finish`` flushes the last bytes."""

    def __init__(self, out: _HashingWriter, compression: Compression) -> None:
        self._out = out
        self._obj: _Compressing | None
        if compression is Compression.GZIP:
            self._obj = zlib.compressobj(6, zlib.DEFLATED, 31)
        elif compression is Compression.ZSTD:
            self._obj = zstandard.ZstdCompressor().compressobj()
        else:
            self._obj = None

    def write(self, data: bytes) -> int:
        self._out.write(self._obj.compress(data) if self._obj is not None else data)
        return len(data)

    def finish(self) -> None:
        if self._obj is not None:
            self._out.write(self._obj.flush())


def write_diff(
    lower: str | os.PathLike[str] | None,
    upper: str | os.PathLike[str],
    out: BinaryIO,
    *,
    whiteout_format: WhiteoutFormat | str = WhiteoutFormat.OVERLAY,
    compression: Compression | str = Compression.NONE,
) -> DiffResult:
    """Write the changes from ``lower`` to ``upper`` to ``out`` as a layer tar (see the module doc)."""
    fmt = WhiteoutFormat(whiteout_format)
    blob = _HashingWriter(out)
    comp = _Compressor(blob, Compression(compression))
    tar_out = _HashingWriter(comp)  # type: ignore[arg-type]
    writer = _DiffWriter(tar_out)
    with tarfile.open(fileobj=tar_out, mode="w|", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
        writer.tar = tar
        lower_path = os.fspath(lower) if lower is not None and fmt is WhiteoutFormat.NATIVE else None
        writer.walk(os.fspath(upper), lower_path, "", fmt)
    comp.finish()
    return DiffResult(
        diff_id=tar_out.digest,
        size=tar_out.size,
        digest=blob.digest,
        compressed_size=blob.size,
        entries=writer.entries,
    )


class _DiffWriter:
    def __init__(self, _out: object) -> None:
        self.tar: tarfile.TarFile | None = None
        self.entries = 0
        self.inodes: dict[tuple[int, int], str] = {}

    def walk(self, upper: str, lower: str | None, rel: str, fmt: WhiteoutFormat) -> bool:
        """Write the changes under directory ``rel``; True if anything was written."""
        up_dir = os.path.join(upper, rel)
        names = sorted(os.listdir(up_dir), key=os.fsencode)
        low_names: set[str] = set()
        if lower is not None:
            low_dir = os.path.join(lower, rel)
            if os.path.isdir(low_dir) and not os.path.islink(low_dir):
                low_names = set(os.listdir(low_dir))
        changed = False
        for name in sorted(set(names) | low_names, key=os.fsencode):
            path = f"{rel}/{name}" if rel else name
            if name not in names:
                self._whiteout(path)
                changed = True
                continue
            st = os.lstat(os.path.join(upper, path))
            if stat.S_ISSOCK(st.st_mode):
                continue
            if fmt is WhiteoutFormat.OVERLAY and is_overlay_whiteout(st):
                self._whiteout(path)
                changed = True
                continue
            low_st = None
            if lower is not None and name in low_names:
                low_st = os.lstat(os.path.join(lower, path))
            if stat.S_ISDIR(st.st_mode):
                same_dir = low_st is not None and stat.S_ISDIR(low_st.st_mode)
                xattrs = _xattrs(os.path.join(upper, path), st)
                opaque = fmt is WhiteoutFormat.OVERLAY and xattrs.get(OVERLAY_OPAQUE_XATTR) == b"y"
                meta_same = same_dir and _same(st, low_st, xattrs, os.path.join(lower or "", path))
                if not meta_same or opaque:
                    self._add(os.path.join(upper, path), path, st, xattrs)
                    if opaque:
                        self._marker(f"{path}/{OPAQUE}")
                    self.walk(upper, lower if same_dir else None, path, fmt)
                    changed = True
                else:
                    # Unchanged directory: written only if something below changed, before it.
                    assert self.tar is not None
                    mark = self._pending(os.path.join(upper, path), path, st, xattrs)
                    if self.walk(upper, lower, path, fmt):
                        changed = True
                    else:
                        mark.discard()
                continue
            xattrs = _xattrs(os.path.join(upper, path), st)
            here, there = os.path.join(upper, path), os.path.join(lower or "", path)
            if (
                stat.S_ISLNK(st.st_mode)
                and low_st is not None
                and stat.S_ISLNK(low_st.st_mode)
                and os.readlink(here) != os.readlink(there)
            ):
                low_st = None
            if (
                low_st is not None
                and _same(st, low_st, xattrs, there)
                and (not stat.S_ISREG(st.st_mode) or _same_content(here, there, st))
            ):
                continue
            self._add(os.path.join(upper, path), path, st, xattrs)
            changed = True
        return changed

    def _pending(self, full: str, path: str, st: os.stat_result, xattrs: dict[str, bytes]) -> _Pending:
        return _Pending(self, full, path, st, xattrs)

    def _whiteout(self, path: str) -> None:
        head, _, name = path.rpartition("/")
        self._marker(f"{head}/{WHITEOUT_PREFIX}{name}" if head else WHITEOUT_PREFIX + name)

    def _marker(self, name: str) -> None:
        assert self.tar is not None
        self._flush_pending()
        info = tarfile.TarInfo(name)
        info.mode = 0o644
        info.uname = info.gname = ""
        self.tar.addfile(info)
        self.entries += 1

    def _add(self, full: str, path: str, st: os.stat_result, xattrs: dict[str, bytes]) -> None:
        assert self.tar is not None
        self._flush_pending()
        info = tarfile.TarInfo(path + "/" if stat.S_ISDIR(st.st_mode) else path)
        info.mode = stat.S_IMODE(st.st_mode)
        info.uid, info.gid = st.st_uid, st.st_gid
        info.uname = info.gname = ""
        info.mtime = st.st_mtime_ns / 1e9 if st.st_mtime_ns % 1_000_000_000 else st.st_mtime_ns // 10**9
        pax: dict[str, str] = {}
        for key, value in sorted(xattrs.items()):
            if key.startswith(("trusted.overlay.", "user.overlay.")):
                continue
            pax[f"SCHILY.xattr.{key}"] = value.decode("utf-8", "surrogateescape")
        info.pax_headers = pax
        data = None
        if stat.S_ISDIR(st.st_mode):
            info.type = tarfile.DIRTYPE
        elif stat.S_ISLNK(st.st_mode):
            info.type = tarfile.SYMTYPE
            info.linkname = os.readlink(full)
        elif stat.S_ISREG(st.st_mode):
            ino = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and ino in self.inodes:
                info.type = tarfile.LNKTYPE
                info.linkname = self.inodes[ino]
            else:
                if st.st_nlink > 1:
                    self.inodes[ino] = path
                info.type = tarfile.REGTYPE
                info.size = st.st_size
                data = full
        elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
            info.type = tarfile.CHRTYPE if stat.S_ISCHR(st.st_mode) else tarfile.BLKTYPE
            info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
        elif stat.S_ISFIFO(st.st_mode):
            info.type = tarfile.FIFOTYPE
        else:
            return
        if data is None:
            self.tar.addfile(info)
        else:
            fd = os.open(data, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            with os.fdopen(fd, "rb") as f:
                self.tar.addfile(info, f)
        self.entries += 1

    # Unchanged parent directories wait until a child needs them.
    _stack: list[_Pending]

    def _flush_pending(self) -> None:
        stack = getattr(self, "_stack", [])
        self._stack = []
        for item in stack:
            if not item.discarded:
                self._add(item.full, item.path, item.st, item.xattrs)


class _Pending:
    """An unchanged directory waiting on the writer's stack until a child needs it written."""

    __slots__ = ("writer", "full", "path", "st", "xattrs", "discarded")

    def __init__(
        self,
        writer: _DiffWriter,
        full: str,
        path: str,
        st: os.stat_result,
        xattrs: dict[str, bytes],
        discarded: bool = False,
    ) -> None:
        self.writer = writer
        self.full = full
        self.path = path
        self.st = st
        self.xattrs = xattrs
        self.discarded = discarded
        if not hasattr(self.writer, "_stack"):
            self.writer._stack = []
        self.writer._stack.append(self)

    def discard(self) -> None:
        self.discarded = True
        if self.writer._stack and self.writer._stack[-1] is self:
            self.writer._stack.pop()


def _xattrs(path: str, st: os.stat_result) -> dict[str, bytes]:
    if stat.S_ISLNK(st.st_mode) or not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
        return {}
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return {}
    return {name: os.getxattr(path, name, follow_symlinks=False) for name in names}


def _same(a: os.stat_result, b: os.stat_result | None, a_xattrs: dict[str, bytes], b_path: str) -> bool:
    """Same metadata; ``b_path`` is the lower path (a symlink's target is compared too)."""
    if b is None or stat.S_IFMT(a.st_mode) != stat.S_IFMT(b.st_mode):
        return False
    if (a.st_mode, a.st_uid, a.st_gid, a.st_rdev) != (b.st_mode, b.st_uid, b.st_gid, b.st_rdev):
        return False
    if not stat.S_ISDIR(a.st_mode) and (a.st_size, a.st_mtime_ns) != (b.st_size, b.st_mtime_ns):
        return False
    return a_xattrs == _xattrs(b_path, b)


def _same_content(a_path: str, b_path: str, st: os.stat_result) -> bool:
    # Same size and mtime: trust it, like rsync, unless the mtime has no sub-second part (a copy
    # tool may have truncated it), then compare the bytes.
    if st.st_mtime_ns % 1_000_000_000:
        return True
    with open(a_path, "rb") as fa, open(b_path, "rb") as fb:
        while True:
            ca, cb = fa.read(_CHUNK), fb.read(_CHUNK)
            if ca != cb:
                return False
            if not ca:
                return True
