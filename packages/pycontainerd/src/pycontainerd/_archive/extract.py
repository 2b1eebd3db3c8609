"""Extracting a plain archive (not a layer) into a directory of a root filesystem, safely.

What ``docker cp`` into a container needs: the tar goes below ``directory`` of ``root`` with the
layer applier's safety (:mod:`~pycontainerd._archive.apply`: every name cleaned and resolved inside
``root``, symlinks scoped to ``root`` as the container sees them, nothing ever written through a
symlink, headers checked first), but as an archive, not a layer:

- ``.wh.`` names are ordinary files (Docker's ``Untar`` gives them no meaning);
- an entry naming ``directory`` itself (``.``) is skipped: its metadata is not the archive's to set;
- ``no_overwrite_dir_non_dir`` refuses to replace a directory with a non-directory and the reverse;
- ``owner`` chowns every entry to one uid and gid instead of the headers' (``copyUIDGID`` with a
  container user);
- gzip, zstd, bzip2 and xz archives are decompressed (Docker's ``DecompressStream`` takes all four).

Device nodes are refused, as in layers (``UnsafeLayerError``).
"""

from __future__ import annotations

import bz2
import lzma
import os
import stat
from typing import TYPE_CHECKING

from pycontainerd._archive.apply import ApplyLimits, _Applier, _lstat
from pycontainerd._archive.compression import DigestingReader, decompress
from pycontainerd._archive.resolve import clean_name
from pycontainerd._archive.tar import TarReader
from pycontainerd._archive.whiteouts import WhiteoutFormat
from pycontainerd._errors import LayerError

if TYPE_CHECKING:
    import tarfile

    from pycontainerd._archive.compression import Readable
    from pycontainerd._archive.tar import TarReader as _Reader

__all__ = ["extract_tar"]

_CHUNK = 1 << 20
_BZIP2 = b"BZh"
_XZ = b"\xfd7zXZ\x00"


class _Decompressing:
    """A bzip2 or xz stream read through its decompressor, a chunk at a time."""

    def __init__(self, source: Readable, head: bytes, xz: bool) -> None:
        self._source = source
        self._pending = head
        self._decompressor: bz2.BZ2Decompressor | lzma.LZMADecompressor = (
            lzma.LZMADecompressor() if xz else bz2.BZ2Decompressor()
        )

    def read(self, size: int = -1, /) -> bytes:
        wanted = _CHUNK if size < 0 else size
        while True:
            if self._decompressor.eof:
                return b""
            if not self._decompressor.needs_input:
                data = self._decompressor.decompress(b"", wanted)
            else:
                chunk, self._pending = self._pending or self._source.read(_CHUNK), b""
                if not chunk:
                    raise LayerError("the compressed archive ends early (truncated)")
                data = self._decompressor.decompress(chunk, wanted)
            if data:
                return data


def _open(stream: Readable) -> Readable:
    """The tar inside ``stream``, whichever of the four compressions it has, or none."""
    head = b""
    while len(head) < 6:
        chunk = stream.read(6 - len(head))
        if not chunk:
            break
        head += chunk
    if head.startswith((_BZIP2, _XZ)):
        return _Decompressing(stream, head, xz=head.startswith(_XZ))
    inner, _ = decompress(_Prefixed(stream, head))
    return inner


class _Prefixed:
    """``head``, then the rest of ``stream``."""

    def __init__(self, stream: Readable, head: bytes) -> None:
        self._stream = stream
        self._head = head

    def read(self, size: int = -1, /) -> bytes:
        if self._head:
            if size < 0 or size >= len(self._head):
                head, self._head = self._head, b""
                return head + (self._stream.read(size - len(head)) if size > len(head) else b"")
            head, self._head = self._head[:size], self._head[size:]
            return head
        return self._stream.read(size)


class _Extractor(_Applier):
    def __init__(
        self,
        root: str | os.PathLike[str],
        directory: tuple[str, ...],
        shown: str,
        no_overwrite_dir_non_dir: bool,
        owner: tuple[int, int] | None,
    ) -> None:
        super().__init__(root, WhiteoutFormat.NATIVE, False, False, ApplyLimits(), None)
        self.directory = directory
        self.shown = shown.rstrip("/") or "/"
        self.no_overwrite = no_overwrite_dir_non_dir
        self.owner = owner

    def _entry(self, tar: _Reader, member: tarfile.TarInfo) -> None:
        parts = clean_name(member.name)
        if not parts:
            return  # the directory extracted into: Docker's Untar leaves it as it is
        if self.owner is not None:
            member.uid, member.gid = self.owner
        if member.ischr() or member.isblk():
            from pycontainerd._errors import UnsafeLayerError

            raise UnsafeLayerError(member.name, "device nodes are not extracted into a container")
        opened = self.root.open_dir((*self.directory, *parts[:-1]), create=True, entry=member.name)
        assert opened is not None
        pfd, real = opened
        try:
            if self.no_overwrite:
                self._check_overwrite(member, pfd, parts)
            self._make(tar, member, pfd, real, parts[-1])
        finally:
            os.close(pfd)
        self.created.setdefault(real, set()).add(parts[-1])

    def _check_overwrite(self, member: tarfile.TarInfo, pfd: int, parts: tuple[str, ...]) -> None:
        existing = _lstat(pfd, parts[-1])
        if existing is None:
            return
        path = f"{self.shown.rstrip('/')}/{'/'.join(parts)}"
        if stat.S_ISDIR(existing.st_mode) and not member.isdir():
            raise LayerError(f'cannot overwrite directory "{path}" with non-directory "{self.shown}"')
        if not stat.S_ISDIR(existing.st_mode) and member.isdir():
            raise LayerError(f'cannot overwrite non-directory "{path}" with directory "{self.shown}"')

    def _hardlink(
        self, member: tarfile.TarInfo, pfd: int, base: str, existing: os.stat_result | None
    ) -> None:
        # A hardlink's target is named from the archive's root, which is ``directory`` here.
        member.linkname = "/".join((*self.directory, *clean_name(member.linkname)))
        super()._hardlink(member, pfd, base, existing)


def extract_tar(
    root: str | os.PathLike[str],
    stream: Readable,
    *,
    directory: str = "/",
    no_overwrite_dir_non_dir: bool = False,
    owner: tuple[int, int] | None = None,
) -> int:
    """Extract the archive read from ``stream`` below ``directory`` (a path inside ``root``, resolved
    there) of the root filesystem ``root``; returns the number of entries.

    See the module doc for what differs from :func:`~pycontainerd.apply_layer`. ``LayerError`` (or
    ``UnsafeLayerError``) names the entry that cannot be extracted; the entries before it stay.
    """
    where = clean_name(directory)
    extractor = _Extractor(root, where, directory, no_overwrite_dir_non_dir, owner)
    try:
        extractor.run(TarReader(DigestingReader(_open(stream), hashing=False)))
    finally:
        extractor.close()
    return extractor.entries
