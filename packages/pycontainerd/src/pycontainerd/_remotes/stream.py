"""A blob being read from a registry, checked against its descriptor as the bytes go by."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable

import urllib3
from urllib3.response import BaseHTTPResponse

from pycontainerd._errors import DigestMismatchError, RegistryError, SizeMismatchError
from pycontainerd._remotes.types import Descriptor, Progress, ProgressState

__all__ = ["ProgressFunc", "VerifyingReader", "hasher"]

ProgressFunc = Callable[[Progress], None]
#: Reopens the blob from a byte offset after the connection dropped (None: cannot resume).
Reopen = Callable[[int], BaseHTTPResponse | None]


def hasher(digest: str) -> hashlib._Hash:
    """A fresh hash object for ``digest``'s algorithm."""
    algorithm = digest.partition(":")[0]
    try:
        return hashlib.new(algorithm)
    except ValueError as exc:
        raise ValueError(f"unsupported digest algorithm in {digest!r}") from exc


class VerifyingReader(io.RawIOBase):
    """Reads a blob's response body; raises at the end if size or digest differ from the descriptor.

    More bytes than the descriptor's size raise at once (SizeMismatchError). ``verify_digest=False``
    leaves the digest to a caller that hashes the bytes anyway (the content store's writer does), so
    they are not hashed twice; the size is still checked. A connection dropped
    mid-body is resumed with a ``Range`` request from the offset reached (``reopen``), a bounded
    number of times. Use as a context manager, or close it, to give the connection back.
    """

    def __init__(
        self,
        descriptor: Descriptor,
        response: BaseHTTPResponse,
        *,
        reopen: Reopen | None = None,
        resumes: int = 3,
        progress: ProgressFunc | None = None,
        verify_digest: bool = True,
    ) -> None:
        super().__init__()
        self.descriptor = descriptor
        self._response: BaseHTTPResponse | None = response
        self._reopen = reopen
        self._resumes = resumes
        self._progress = progress
        self._hash = hasher(descriptor.digest) if verify_digest else None
        self._done = 0
        self._verified = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        if self._verified or self._response is None:
            return 0
        view = memoryview(buffer).cast("B")
        while True:
            try:
                n = self._response.readinto(view)
                break
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                self._resume(exc)
        if n == 0:
            self._finish()
            return 0
        if self._done + n > self.descriptor.size:
            self.close()
            raise SizeMismatchError(self.descriptor.size, self._done + n)
        if self._hash is not None:
            self._hash.update(view[:n])
        self._done += n
        if self._progress is not None:
            self._progress(
                Progress(
                    self.descriptor.digest,
                    self._done,
                    self.descriptor.size,
                    ProgressState.DOWNLOADING,
                    self.descriptor.media_type,
                )
            )
        return n

    def _resume(self, exc: BaseException) -> None:
        assert self._response is not None
        self._response.close()
        self._response.release_conn()
        fresh = None
        if self._reopen is not None and self._resumes > 0:
            self._resumes -= 1
            fresh = self._reopen(self._done)
        if fresh is None:
            self._response = None
            raise RegistryError(
                f"reading {self.descriptor.digest}: connection lost after {self._done} bytes: {exc}"
            ) from exc
        self._response = fresh

    def _finish(self) -> None:
        self._verified = True
        if self._response is not None:
            self._response.release_conn()  # read to the end: the connection can be reused
            self._response = None
        if self._done != self.descriptor.size:
            raise SizeMismatchError(self.descriptor.size, self._done)
        if self._hash is not None:
            actual = f"{self._hash.name}:{self._hash.hexdigest()}"
            if actual != self.descriptor.digest:
                raise DigestMismatchError(self.descriptor.digest, actual)
        if self._progress is not None:
            self._progress(
                Progress(
                    self.descriptor.digest,
                    self._done,
                    self.descriptor.size,
                    ProgressState.DONE,
                    self.descriptor.media_type,
                )
            )

    def close(self) -> None:
        if self._response is not None:
            # Unread bytes would poison a reused connection: close it instead of pooling it.
            self._response.close()
            self._response.release_conn()
            self._response = None
        super().close()

    def __enter__(self) -> VerifyingReader:
        return self
