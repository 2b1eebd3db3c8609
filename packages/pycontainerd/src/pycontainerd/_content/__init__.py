"""The content store: blobs addressed by their sha256 digest, written through locked, resumable ingests.

See :class:`ContentStore` for the on-disk layout and the guarantees.
"""

from __future__ import annotations

from pycontainerd._content._names import validate_digest, validate_ref
from pycontainerd._content._store import ContentStore
from pycontainerd._content._types import CommitResult, Info, Status

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pycontainerd._content._writer import Writer

__all__ = [
    "CommitResult",
    "ContentStore",
    "Info",
    "Status",
    "Writer",
    "validate_digest",
    "validate_ref",
]


def __getattr__(name: str) -> object:
    if name == "Writer":  # loaded on first use: see ContentStore.writer
        from pycontainerd._content._writer import Writer

        return Writer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
