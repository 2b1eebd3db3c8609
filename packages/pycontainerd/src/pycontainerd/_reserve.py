"""The disk reserve: the share of its filesystem's blocks and of its inodes a store leaves free.

A pull or an import stops with :class:`~pycontainerd.ResourceExhaustedError` before its writes would
take the store's filesystem under the reserve (``Client(min_free=0.05)``, ``pyctr --min-free 5%``: 5 %
of the blocks and 5 % of the inodes by default), so that a layer which inflates to far more than it
weighs (a gzip bomb) or holds a million empty files (an inode bomb) ends with an error naming it, and
the host keeps room to work, instead of filling the disk.

A :class:`SpaceGuard` is told what a writer is about to write (:meth:`SpaceGuard.charge`) and looks at
the filesystem with ``statvfs(2)`` only once those writes could have used half of the room it found
above the reserve at its last look: looks are rare while there is room, and come more often as it
runs out. Blocks are counted as what is available to unprivileged users (``f_bavail``), so the
blocks ext4 reserves for root are not counted as room.
"""

from __future__ import annotations

import math
import os

from pycontainerd._errors import InvalidArgumentError, ResourceExhaustedError

__all__ = ["DEFAULT_MIN_FREE", "SpaceGuard", "check_min_free"]

#: The share of blocks and inodes a store leaves free unless told otherwise.
DEFAULT_MIN_FREE = 0.05


def check_min_free(min_free: float) -> float:
    """``min_free`` if it is a share from 0 (no reserve) to below 1; InvalidArgumentError otherwise."""
    if not 0 <= min_free < 1:  # NaN too
        raise InvalidArgumentError(f"min_free {min_free!r}: a share of the filesystem from 0 to below 1")
    return float(min_free)


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


class SpaceGuard:
    """Keeps the writes into ``path``'s filesystem above a reserve of ``min_free`` of its blocks and
    inodes. Not thread-safe: one per writer."""

    def __init__(self, path: str | os.PathLike[str], min_free: float) -> None:
        self.path = os.fspath(path)
        self.min_free = check_min_free(min_free)
        self._block_size = 0  # known after the first look
        # What may still be written before the next look; below zero: look now.
        self._blocks_left = -1
        self._inodes_left = -1

    def charge(self, size: int = 0, inodes: int = 0) -> None:
        """Account for ``size`` bytes of data and ``inodes`` new files about to be written.

        Each new file is counted a block as well, for its directory entry and metadata. Raises
        ResourceExhaustedError (nothing written yet) if they would take the filesystem under the
        reserve.
        """
        blocks = -(-size // self._block_size) + inodes if self._block_size else 0
        self._blocks_left -= blocks
        self._inodes_left -= inodes
        if self._blocks_left < 0 or self._inodes_left < 0:
            self._look(size, inodes)

    def _look(self, size: int, inodes: int) -> None:
        st = os.statvfs(self.path)
        self._block_size = st.f_frsize or st.f_bsize or 4096
        blocks = -(-size // self._block_size) + inodes
        spare_blocks = st.f_bavail - math.ceil(st.f_blocks * self.min_free)
        if blocks > spare_blocks:
            raise ResourceExhaustedError(
                f"the store's filesystem ({self.path}) would fall under its reserve of"
                f" {self.min_free * 100:g}% free blocks ({_size(st.f_bavail * self._block_size)} free"
                f" of {_size(st.f_blocks * self._block_size)})"
            )
        # A filesystem without an inode count (btrfs, some FUSE ones) has no inodes to run out of.
        spare_inodes = st.f_favail - math.ceil(st.f_files * self.min_free) if st.f_files else 1 << 62
        if inodes > spare_inodes:
            raise ResourceExhaustedError(
                f"the store's filesystem ({self.path}) would fall under its reserve of"
                f" {self.min_free * 100:g}% free inodes ({st.f_favail} free of {st.f_files})"
            )
        self._blocks_left = (spare_blocks - blocks) // 2
        self._inodes_left = (spare_inodes - inodes) // 2
