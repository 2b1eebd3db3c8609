"""Image layers: applying layer tars to directories safely, and diffing directories into layers.

- :func:`apply_layer` streams a tar, tar+gzip or tar+zstd layer into a directory, every entry
  resolved inside it (see ``_apply``), whiteouts in overlayfs' form or applied natively;
- :func:`write_diff` writes the changes between two directories (or an overlayfs upper dir) as a
  layer tar with OCI whiteouts;
- :class:`DigestingReader` hashes a stream while it is read (blob digests and diffIDs).
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ._apply import ApplyLimits, ApplyResult, apply_layer
    from ._compression import Compression, DigestingReader, compression_for_media_type
    from ._diff import DiffResult, write_diff
    from ._whiteouts import WhiteoutFormat

__all__ = [
    "ApplyLimits",
    "ApplyResult",
    "Compression",
    "DiffResult",
    "DigestingReader",
    "WhiteoutFormat",
    "apply_layer",
    "compression_for_media_type",
    "write_diff",
]

# Loaded on first use: the snapshotters need WhiteoutFormat, not tarfile and the decompressors.
_WHERE = {
    "ApplyLimits": "_apply",
    "ApplyResult": "_apply",
    "apply_layer": "_apply",
    "Compression": "_compression",
    "DigestingReader": "_compression",
    "compression_for_media_type": "_compression",
    "DiffResult": "_diff",
    "write_diff": "_diff",
    "WhiteoutFormat": "_whiteouts",
}


def __getattr__(name: str) -> object:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    qualified = f"{__name__}.{module}"
    __import__(qualified)
    value = getattr(sys.modules[qualified], name)
    globals()[name] = value
    return value
