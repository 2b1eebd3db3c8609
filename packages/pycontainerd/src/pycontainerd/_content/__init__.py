"""The content store: blobs addressed by their sha256 digest, written through locked, resumable ingests.

See :class:`ContentStore` for the on-disk layout and the guarantees. The face holds the store and its
records; the writer (``writer``: hashlib, whose OpenSSL set-up only a command that writes content
needs) is loaded by :meth:`ContentStore.writer` and imported by its path; ``protocol`` holds the
protocols the image code types its stores with, for type checking only.
"""

from __future__ import annotations

from pycontainerd._content.names import validate_digest, validate_ref
from pycontainerd._content.store import ContentStore
from pycontainerd._content.types import CommitResult, Info, Status

__all__ = ["CommitResult", "ContentStore", "Info", "Status", "validate_digest", "validate_ref"]
