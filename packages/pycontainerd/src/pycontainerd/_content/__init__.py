"""The content store: blobs addressed by their sha256 digest, written through locked, resumable ingests.

See :class:`ContentStore` for the on-disk layout and the guarantees.
"""

from __future__ import annotations

from pycontainerd._content._names import validate_digest, validate_ref
from pycontainerd._content._store import ContentStore
from pycontainerd._content._types import CommitResult, Info, Status
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
