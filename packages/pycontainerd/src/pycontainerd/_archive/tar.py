"""Reading a layer's tar stream, one entry at a time, every part of it bounded before it is read.

Each 512-byte header is decoded by the standard library (:meth:`tarfile.TarInfo.frombuf`: its
fields, checksum and number formats); what surrounds the headers is read here, as Go's
``archive/tar`` (and so Docker and containerd) reads it:

- GNU long names and long link targets (``L``, ``K``): at most ``PATH_MAX`` bytes each;
- pax extended headers (``x``, Solaris' ``X``): at most 16 MiB of ``LENGTH KEY=VALUE`` records,
  which must all parse; their ``path``, ``linkpath``, ``size``, ``uid``, ``gid``, ``uname``,
  ``gname`` and ``mtime`` replace the next entry's (a GNU long name wins over a pax ``path``), and
  a number that does not parse is an error, not a zero;
- global pax headers (``g``): refused unless they only comment (Go's tar does not apply them);
- sparse files, in GNU's header form (``S``) or in any of the pax forms (``GNU.sparse.*``): refused;
- at most 8 extended headers before one entry, and the end of the archive is a zero block: a
  stream that ends before it is truncated.

Bad input is a ``LayerError`` (``UnsafeLayerError`` for what is refused on purpose) naming the entry.
"""

from __future__ import annotations

import tarfile
from typing import TYPE_CHECKING

from pycontainerd._errors import LayerError, UnsafeLayerError

if TYPE_CHECKING:
    from collections.abc import Callable

    from pycontainerd._archive.compression import Readable

__all__ = ["TarReader", "shown"]

_BLOCK = 512
_ZERO_BLOCK = bytes(_BLOCK)
_CHUNK = 1 << 20
_PATH_MAX = 4096  # bytes of a path, its terminating NUL included (linux/limits.h)
_MAX_PAX_HEADER = 16 << 20
_MAX_EXTENDED_HEADERS = 8  # a long name, a long link and a pax header, in practice
_LONG_NAME = tarfile.GNUTYPE_LONGNAME
_LONG_LINK = tarfile.GNUTYPE_LONGLINK
_PAX = (b"x", b"X")  # pax's, and Solaris' older form of it
_PAX_GLOBAL = b"g"
_SPARSE_PREFIX = "GNU.sparse."


def _integer(text: str) -> int:
    """A decimal integer, digits only (``int`` would take spaces, underscores and other scripts)."""
    if not (text.isascii() and text.removeprefix("-").isdigit()):
        raise ValueError(text)
    return int(text)


#: The pax keys that replace a field of the next header, and how their values are read.
_PAX_FIELDS: dict[str, tuple[str, Callable[[str], object]]] = {
    "path": ("name", str),
    "linkpath": ("linkname", str),
    "uname": ("uname", str),
    "gname": ("gname", str),
    "size": ("size", _integer),
    "uid": ("uid", _integer),
    "gid": ("gid", _integer),
    "mtime": ("mtime", float),
}


def shown(name: str) -> str:
    """``name`` quoted for a message, shortened when long (a name may be megabytes)."""
    if len(name) <= 120:
        return repr(name)
    return f"{name[:100]!r}... ({len(name)} characters)"


def _header_name(block: bytes) -> str:
    return block[:100].split(b"\0", 1)[0].decode("utf-8", "replace")


class TarReader:
    """The entries of the tar read from ``stream``: :meth:`next` gives each header (a
    :class:`tarfile.TarInfo`, extended headers applied), :meth:`read` its data. Names are decoded as
    UTF-8, bytes that are not kept as surrogates (``surrogateescape``)."""

    def __init__(self, stream: Readable) -> None:
        self._stream = stream
        self._buffer = b""
        self._offset = 0
        self._name = ""  # the current entry's, or extended header's
        self._data_left = 0  # bytes of its data not read yet
        self._padding = 0  # and the zeros after them, up to the next block

    def _take(self, size: int) -> bytes:
        """Up to ``size`` bytes of the stream, fewer only at its end."""
        pieces = []
        while size > 0:
            if self._offset == len(self._buffer):
                self._buffer, self._offset = self._stream.read(max(size, _CHUNK)), 0
                if not self._buffer:
                    break
            piece = self._buffer[self._offset : self._offset + size]
            self._offset += len(piece)
            size -= len(piece)
            pieces.append(piece)
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def read(self, size: int) -> bytes:
        """Up to ``size`` bytes of the current entry's data; ``b""`` once it is all read. LayerError
        if the stream ends first."""
        wanted = min(size, self._data_left)
        data = self._take(wanted)
        if len(data) < wanted:
            self._truncated()
        self._data_left -= len(data)
        return data

    def _truncated(self) -> None:
        raise LayerError(f"layer entry {shown(self._name)}: its data ends early (truncated)")

    def _skip_data(self) -> None:
        while self._data_left:
            self.read(_CHUNK)
        if len(self._take(self._padding)) < self._padding:
            self._truncated()
        self._padding = 0

    def _start_data(self, header: tarfile.TarInfo) -> None:
        self._name = header.name
        self._data_left = header.size
        self._padding = -header.size % _BLOCK

    def next(self) -> tarfile.TarInfo | None:
        """The next entry, its extended headers applied; None at the end of the archive. What is
        left of the previous entry's data is skipped."""
        self._skip_data()
        long_name: str | None = None
        long_link: str | None = None
        pax: dict[str, str] = {}
        for _ in range(_MAX_EXTENDED_HEADERS + 1):
            header = self._header()
            if header is None:
                if long_name is not None or long_link is not None or pax:
                    raise LayerError("the tar ends after an extended header, without its entry")
                return None
            if header.type == tarfile.GNUTYPE_SPARSE:
                raise UnsafeLayerError(header.name, "sparse files are not supported")
            if header.type in (_LONG_NAME, _LONG_LINK):
                value = (
                    self._extended(header, _PATH_MAX).split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
                )
                if header.type == _LONG_NAME:
                    long_name = value
                else:
                    long_link = value
            elif header.type in _PAX:
                pax.update(_pax_records(self._extended(header, _MAX_PAX_HEADER)))
            elif header.type == _PAX_GLOBAL:
                records = _pax_records(self._extended(header, _MAX_PAX_HEADER))
                if records.keys() - {"comment"}:
                    raise LayerError(
                        f"a global pax header sets {sorted(records)} for every entry after it:"
                        " not supported (Docker ignores them)"
                    )
            else:
                _apply(header, pax, long_name, long_link)
                if header.size < 0:
                    raise LayerError(f"layer entry {shown(header.name)}: negative size {header.size}")
                self._start_data(header)
                return header
        raise LayerError(f"more than {_MAX_EXTENDED_HEADERS} extended tar headers in a row")

    def _header(self) -> tarfile.TarInfo | None:
        """The next header block, decoded; None for the end-of-archive marker."""
        block = self._take(_BLOCK)
        if not block:
            raise LayerError("the tar ends without its end-of-archive marker (truncated)")
        if len(block) < _BLOCK:
            raise LayerError("the tar ends inside a header (truncated)")
        if block == _ZERO_BLOCK:
            return None
        try:
            return tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
        except tarfile.HeaderError as exc:
            raise LayerError(f"corrupt tar header of entry {shown(_header_name(block))}: {exc}") from None

    def _extended(self, header: tarfile.TarInfo, limit: int) -> bytes:
        """The data of an extended header, read whole once its size is known to be within ``limit``."""
        if not 0 <= header.size <= limit:
            raise LayerError(f"extended tar header ({header.type!r}) of {header.size} bytes: over {limit}")
        self._start_data(header)
        data = self.read(header.size)
        self._skip_data()
        return data


def _pax_records(data: bytes) -> dict[str, str]:
    """The ``LENGTH KEY=VALUE\\n`` records of a pax header; LayerError if one does not parse."""
    records: dict[str, str] = {}
    position = 0
    while position < len(data):
        space = data.find(b" ", position, position + 20)
        length_text = data[position:space] if space > 0 else b""
        if not length_text.isdigit():
            raise LayerError("corrupt extended tar header: a record without its length")
        end = position + int(length_text)
        if end > len(data) or end <= space + 1 or data[end - 1 : end] != b"\n":
            raise LayerError(
                f"corrupt extended tar header: a record of length {int(length_text)} does not fit"
            )
        key, equals, value = data[space + 1 : end - 1].partition(b"=")
        if not equals or not key:
            raise LayerError("corrupt extended tar header: a record that is not KEY=VALUE")
        records[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
        position = end
    return records


def _apply(
    header: tarfile.TarInfo, pax: dict[str, str], long_name: str | None, long_link: str | None
) -> None:
    """Give ``header`` what its extended headers say."""
    sparse = [key for key in pax if key.startswith(_SPARSE_PREFIX)]
    if sparse:
        raise UnsafeLayerError(pax.get("GNU.sparse.name", header.name), "sparse files are not supported")
    for key, value in pax.items():
        field = _PAX_FIELDS.get(key)
        if field is None:
            continue
        attribute, kind = field
        try:
            converted = kind(value)
        except ValueError:
            raise LayerError(
                f"layer entry {shown(header.name)}: its pax {key} {shown(value)} is not valid"
            ) from None
        setattr(header, attribute, converted)
    if long_name is not None:
        header.name = long_name
    if long_link is not None:
        header.linkname = long_link
    if header.isdir():
        header.name = header.name.rstrip("/")
    header.pax_headers = pax
