"""What image code needs of a content store, as protocols (containerd's ``content.Provider`` and
``content.Store``): :class:`~pycontainerd.ContentStore` (the blobs on disk) and a namespace's view of it
(:class:`pycontainerd._metadata.NamespacedContent`) both provide them.

Imported for type checking only: ``typing`` costs start-up time on ``pyctr``'s paths.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import io

    from pycontainerd._content.types import CommitResult, Info
    from pycontainerd._content.writer import Bytes, Writer

__all__ = ["Provider", "Store"]


class Provider(Protocol):
    """Reads committed blobs by digest; NotFoundError for a blob it does not provide."""

    def info(self, digest: str) -> Info: ...

    def reader(self, digest: str) -> io.BufferedReader: ...

    def read_blob(self, digest: str) -> bytes: ...


class Store(Provider, Protocol):
    """A :class:`Provider` that also takes new blobs, through ingests named by a ref."""

    def writer(self, ref: str, total: int | None = None, expected: str | None = None) -> Writer: ...

    def write_blob(
        self, ref: str, data: Bytes, size: int | None = None, digest: str | None = None
    ) -> CommitResult: ...

    def abort(self, ref: str) -> None: ...
