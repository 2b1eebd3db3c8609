"""Image layers: applying layer tars to directories safely, and diffing directories into layers.

- ``apply`` (:func:`~pycontainerd._archive.apply.apply_layer`) streams a tar, tar+gzip or tar+zstd
  layer into a directory, its headers read by ``tar`` and every entry resolved inside the directory
  (``resolve``), whiteouts in overlayfs' form or applied natively (``whiteouts``);
- ``diff`` (:func:`~pycontainerd._archive.diff.write_diff`) writes the changes between two
  directories (or an overlayfs upper dir) as a layer tar with OCI whiteouts;
- ``compression`` detects and undoes a layer's compression, and hashes a stream while it is read
  (blob digests and diffIDs).

The face holds :class:`WhiteoutFormat` and :func:`apply_dir` (where, and in which form, a snapshot's
mounts take a layer). The other modules load tarfile, the decompressors and hashlib, which only
pulls, imports and unpacking need: they are imported by their paths, where they are used.
"""

from __future__ import annotations

from pycontainerd._archive.whiteouts import WhiteoutFormat, apply_dir

__all__ = ["WhiteoutFormat", "apply_dir"]
