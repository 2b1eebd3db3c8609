"""Validation of the two names the content store turns into paths: digests and ingest refs.

A digest names a blob file directly (``blobs/sha256/<hex>``), so it is checked against the one form
the store accepts, ``sha256:`` and 64 lowercase hex digits, before it comes near a path. A ref is
never used as a path at all: its ingest directory is named by the sha256 of the ref, so ``../`` in a
ref is harmless; refs are only refused when they cannot be stored back faithfully (empty, too long,
control characters, not encodable).
"""

from __future__ import annotations

import re

from pycontainerd._errors import InvalidArgumentError

__all__ = ["ALGORITHM", "digest_hex", "ingest_name", "validate_digest", "validate_ref"]

ALGORITHM = "sha256"
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_REF_BYTES = 1024


def validate_digest(digest: object) -> str:
    """Return ``digest`` if it is ``sha256:`` and 64 lowercase hex digits, else raise InvalidArgumentError."""
    # fullmatch, not match with "$": "$" would accept a trailing newline.
    if isinstance(digest, str) and _DIGEST.fullmatch(digest):
        return digest
    raise InvalidArgumentError(
        f"invalid digest {digest!r}: the content store takes 'sha256:' and 64 lowercase hex digits"
    )


def digest_hex(digest: object) -> str:
    """The hex part of a valid digest: the blob's file name under ``blobs/sha256``."""
    return validate_digest(digest)[len(ALGORITHM) + 1 :]


def validate_ref(ref: object) -> str:
    """Return ``ref`` if it can name an ingest, else raise InvalidArgumentError."""
    if not isinstance(ref, str) or not ref:
        raise InvalidArgumentError(f"invalid ingest ref {ref!r}: a non-empty string is required")
    if _CONTROL.search(ref):
        raise InvalidArgumentError(f"invalid ingest ref {ref!r}: control characters are not allowed")
    try:
        size = len(ref.encode())
    except UnicodeEncodeError as exc:
        raise InvalidArgumentError(f"invalid ingest ref {ref!r}: not encodable as UTF-8") from exc
    if size > MAX_REF_BYTES:
        raise InvalidArgumentError(f"invalid ingest ref: {size} bytes, at most {MAX_REF_BYTES} allowed")
    return ref


def ingest_name(ref: str) -> str:
    """The ingest directory's name for ``ref``: the hex sha256 of the ref, as containerd names it."""
    import hashlib  # here: OpenSSL's set-up is not on pyctr's path, where nothing is hashed

    return hashlib.sha256(validate_ref(ref).encode()).hexdigest()
