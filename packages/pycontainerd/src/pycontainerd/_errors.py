"""Exceptions raised by pycontainerd.

    PycontainerdError
     ├── NotFoundError            no such blob, ingest, image, snapshot, ...
     ├── AlreadyExistsError       the name or digest is taken
     ├── InvalidArgumentError     a malformed digest or ingest ref (also a ValueError)
     ├── FailedPreconditionError  the store's state forbids it (non-empty namespace, newer schema)
     ├── ResourceExhaustedError   writing would take the store's filesystem under its free reserve
     ├── ContentError             the content store refused a write
     │    ├── DigestMismatchError the bytes do not hash to the expected digest
     │    ├── SizeMismatchError   the bytes are not the expected size
     │    └── LockedError         another writer holds the ingest
     ├── LayerError               a layer could not be applied
     │    └── UnsafeLayerError    an entry would escape the root or breaks policy (names the entry)
     ├── RegistryError            a registry answered with an error (carries the HTTP status)
     │    └── AuthenticationError credentials missing or refused
     ├── TaskError                the runtime failed a task operation (its own message included)
     └── MonitorError             a task's monitor could not start, refused a request, or is gone

Errors of the layer below (pyrunc) are translated at the boundary with ``raise ... from exc``.
"""

from __future__ import annotations

__all__ = [
    "AlreadyExistsError",
    "AuthenticationError",
    "ContentError",
    "DigestMismatchError",
    "FailedPreconditionError",
    "InvalidArgumentError",
    "LayerError",
    "LockedError",
    "MonitorError",
    "NotFoundError",
    "PycontainerdError",
    "RegistryError",
    "ResourceExhaustedError",
    "SizeMismatchError",
    "TaskError",
    "UnsafeLayerError",
]


class PycontainerdError(Exception):
    """Root of every error pycontainerd raises on purpose."""


class NotFoundError(PycontainerdError):
    """The named object does not exist."""


class AlreadyExistsError(PycontainerdError):
    """The name or digest is already taken."""


class InvalidArgumentError(PycontainerdError, ValueError):
    """A digest, ref or other argument is malformed; nothing was touched."""


class FailedPreconditionError(PycontainerdError):
    """The store is not in a state that allows the operation (a non-empty namespace, a newer schema)."""


class ResourceExhaustedError(PycontainerdError):
    """Writing would take the store's filesystem under the blocks or inodes it keeps free; what was
    being written is dropped (an ingest aborted, a half-applied snapshot removed)."""


class ContentError(PycontainerdError):
    """The content store refused a write or a read."""


class DigestMismatchError(ContentError):
    def __init__(self, expected: str, actual: str) -> None:
        super().__init__(f"digest mismatch: expected {expected}, got {actual}")
        self.expected = expected
        self.actual = actual


class SizeMismatchError(ContentError):
    def __init__(self, expected: int, actual: int) -> None:
        super().__init__(f"size mismatch: expected {expected} bytes, got {actual}")
        self.expected = expected
        self.actual = actual


class LockedError(ContentError):
    """Another writer holds the ingest ``ref``."""

    def __init__(self, ref: str) -> None:
        super().__init__(f"ref {ref} is locked by another writer")
        self.ref = ref


class LayerError(PycontainerdError):
    """A layer could not be applied."""


class UnsafeLayerError(LayerError):
    """An entry of a layer would escape the root, or breaks the extraction policy."""

    def __init__(self, entry: str, reason: str) -> None:
        # A name may be megabytes long (a GNU long name): the message shows its start.
        shown = repr(entry) if len(entry) <= 120 else f"{entry[:100]!r}... ({len(entry)} characters)"
        super().__init__(f"unsafe layer entry {shown}: {reason}")
        self.entry = entry
        self.reason = reason


class RegistryError(PycontainerdError):
    """A registry answered with an error."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class AuthenticationError(RegistryError):
    """Credentials are missing or were refused."""


class TaskError(PycontainerdError):
    """The runtime (pyrunc) failed to do what a task operation asked; the message carries its reason."""


class MonitorError(PycontainerdError):
    """A monitor could not start, refused a request, or is gone; the message says which and why."""
