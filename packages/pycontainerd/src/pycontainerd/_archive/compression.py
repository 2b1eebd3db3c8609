"""Layer streams: compression detection, streaming decompression and digesting readers.

A layer blob goes through two readers while it is applied: a :class:`DigestingReader` over the
compressed bytes (the blob digest the content store checks) and one over the decompressed tar (the
diffID, which the image config lists in ``rootfs.diff_ids``). Neither buffers more than one chunk.
"""

from __future__ import annotations

import enum
import hashlib
import zlib
from typing import Protocol

import zstandard

from pycontainerd._errors import LayerError

__all__ = ["Compression", "DigestingReader", "compression_for_media_type", "decompress"]

_CHUNK = 1 << 20
# zstd input fed at once: at most 16 MiB of output however it was compressed (and no slower).
_ZSTD_SLICE = 512
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_UNSUPPORTED_MAGIC = {b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz"}


class Readable(Protocol):
    """What a layer is read from: a binary stream's ``read``."""

    def read(self, size: int = -1, /) -> bytes: ...


class Compression(enum.Enum):
    """How a layer blob is compressed."""

    NONE = "none"
    GZIP = "gzip"
    ZSTD = "zstd"


def compression_for_media_type(media_type: str) -> Compression:
    """The compression an OCI or Docker layer media type declares."""
    base = media_type.split(";", 1)[0].strip()
    if base.endswith(("+gzip", ".tar.gzip", ".tar.gz")):
        return Compression.GZIP
    if base.endswith(("+zstd", ".tar.zstd")):
        return Compression.ZSTD
    if base.endswith((".tar", ".layer.v1.tar")):
        return Compression.NONE
    raise LayerError(f"unsupported layer media type {media_type!r}")


class DigestingReader:
    """Reads through to ``source`` while hashing (sha256, unless not ``hashing``) and counting every
    byte read."""

    def __init__(self, source: Readable, *, hashing: bool = True) -> None:
        self._source = source
        self._hash = hashlib.sha256() if hashing else None
        self.size = 0

    def read(self, size: int = -1, /) -> bytes:
        data = self._source.read(size)
        if self._hash is not None:
            self._hash.update(data)
        self.size += len(data)
        return data

    def drain(self) -> None:
        """Read to the end, so the digest covers the whole stream."""
        while self.read(_CHUNK):
            pass

    @property
    def digest(self) -> str:
        """``sha256:<hex>`` of the bytes read so far."""
        if self._hash is None:
            raise ValueError("this reader does not hash what it reads")
        return "sha256:" + self._hash.hexdigest()


class _PeekReader:
    """Gives back the bytes read to sniff the magic number."""

    def __init__(self, source: Readable, head: bytes) -> None:
        self._source = source
        self._head = head

    def read(self, size: int = -1, /) -> bytes:
        if self._head:
            head, self._head = self._head, b""
            return head
        return self._source.read(size)


class _Inflater:
    """Streaming gzip (multi-member) or zstd (multi-frame) decompression; truncation is an error.

    Output is made a chunk at a time whatever the input: a few KiB of gzip can inflate to GiBs (a
    gzip bomb), so gzip is inflated with a bound on its output, and zstd (whose decompressor has none,
    and whose blocks expand up to 32768 times) is fed small slices of input.
    """

    def __init__(self, source: Readable, kind: Compression) -> None:
        self._source = source
        self._kind = kind
        # The decompressor of the current gzip member or zstd frame (the other one stays unused).
        self._gzip = zlib.decompressobj(wbits=31)
        self._zstd = zstandard.ZstdDecompressor().decompressobj()
        self._magic = _GZIP_MAGIC if kind is Compression.GZIP else _ZSTD_MAGIC
        self._input = b""  # compressed bytes read and not inflated yet
        self._flush = False  # gzip filled its output bound last time: it may hold more
        # Output not read yet: ``_pending[_offset:]``. An offset, not slicing the rest off, so that many
        # small reads of one large output copy each byte once.
        self._pending = b""
        self._offset = 0
        self._done = False

    @property
    def _eof(self) -> bool:
        """Whether the current member or frame has ended."""
        return self._gzip.eof if self._kind is Compression.GZIP else self._zstd.eof

    def _restart(self) -> None:
        """Start on the next gzip member or zstd frame."""
        if self._kind is Compression.GZIP:
            self._gzip = zlib.decompressobj(wbits=31)
        else:
            self._zstd = zstandard.ZstdDecompressor().decompressobj()

    def read(self, size: int = -1, /) -> bytes:
        while self._offset == len(self._pending) and not self._done:
            self._fill()
        if self._offset == 0 and (size < 0 or size >= len(self._pending)):
            out = self._pending
        else:
            end = len(self._pending) if size < 0 else min(len(self._pending), self._offset + size)
            out = self._pending[self._offset : end]
        self._offset += len(out)
        return out

    def _fill(self) -> None:
        """Inflate about a chunk into ``_pending`` (everything before was read)."""
        self._pending, self._offset = b"", 0
        pieces: list[bytes] = []
        produced = 0
        while produced < _CHUNK:
            if not self._input and not self._flush:
                self._input = self._source.read(_CHUNK)
                if not self._input:
                    if not self._eof:
                        raise LayerError(f"truncated {self._kind.value} stream")
                    self._done = True
                    break
            if self._eof:
                # Another gzip member or zstd frame follows; anything else is garbage.
                if not self._magic.startswith(self._input[: len(self._magic)]):
                    raise LayerError(f"trailing garbage after {self._kind.value} stream")
                self._restart()
            try:
                piece = self._inflate()
            except (zlib.error, zstandard.ZstdError) as exc:
                raise LayerError(f"corrupt {self._kind.value} stream: {exc}") from exc
            pieces.append(piece)
            produced += len(piece)
        self._pending = b"".join(pieces)

    def _inflate(self) -> bytes:
        """Inflate the next part of ``_input``, keeping what is left of it."""
        if self._kind is Compression.ZSTD:
            zstd = self._zstd
            out = zstd.decompress(self._input[:_ZSTD_SLICE])
            rest = self._input[_ZSTD_SLICE:]
            self._input = zstd.unused_data + rest if zstd.eof else rest
            return out
        gzip = self._gzip
        out = gzip.decompress(self._input, _CHUNK)
        self._input = gzip.unused_data if gzip.eof else gzip.unconsumed_tail
        self._flush = len(out) == _CHUNK and not gzip.eof
        return out


def _sniff(head: bytes) -> Compression:
    if head.startswith(_GZIP_MAGIC):
        return Compression.GZIP
    if head.startswith(_ZSTD_MAGIC):
        return Compression.ZSTD
    for magic, name in _UNSUPPORTED_MAGIC.items():
        if head.startswith(magic):
            raise LayerError(f"unsupported layer compression {name}")
    return Compression.NONE


def decompress(source: Readable, compression: Compression | None = None) -> tuple[Readable, Compression]:
    """Wrap ``source`` so that reading it yields the tar stream.

    ``compression`` None sniffs the magic bytes; a declared compression that the bytes contradict is
    an error (the media type lies).
    """
    head = b""
    while len(head) < 6:
        chunk = source.read(6 - len(head))
        if not chunk:
            break
        head += chunk
    found = _sniff(head)
    if compression is not None and compression is not found and head:
        raise LayerError(f"layer declared {compression.value} but its bytes are {found.value}")
    reader = _PeekReader(source, head)
    if found is Compression.NONE:
        return reader, found
    return _Inflater(reader, found), found
