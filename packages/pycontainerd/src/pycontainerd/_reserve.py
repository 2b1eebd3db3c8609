"""The disk reserve: the share of its filesystem's blocks and of its inodes a store leaves free.

A pull or an import stops with :class:`~pycontainerd.ResourceExhaustedError` before its writes would
take the store's filesystem under the reserve (``Client(min_free=0.05)``, ``pyctr --min-free 5%``: 5 %
of the blocks and 5 % of the inodes by default), so that a layer which inflates to far more than it
weighs (a gzip bomb) or holds a million empty files (an inode bomb) ends with an error naming it, and
the host keeps room to work, instead of filling the disk.

A :class:`SpaceGuard` is told what a writer is about to write (:meth:`SpaceGuard.charge`) and looks at
the filesystem with ``statvfs(2)`` only once the process's writes there could have used a quarter of
the room it found above the reserve at its last look: looks are rare while there is room, and come
more often as it runs out. Blocks are counted as what is available to unprivileged users
(``f_bavail``), so the blocks ext4 reserves for root are not counted as room.
"""

from __future__ import annotations

import math
import os

from pycontainerd._errors import InvalidArgumentError, ResourceExhaustedError
from pycontainerd._stdlib import Lock

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


class _Room:
    """What one process may still write on one filesystem before it looks again. Shared by the
    process's guards on it: a pull's downloads and its unpacking write at once, and guards that each
    counted the same room would together take it several times over."""

    __slots__ = ("lock", "block_size", "blocks_left", "inodes_left")

    def __init__(self) -> None:
        self.lock = Lock()
        self.block_size = 0  # known after the first look
        # Below zero: look now.
        self.blocks_left = -1
        self.inodes_left = -1


_ROOMS: dict[tuple[int, float], _Room] = {}
# Each look lets this process write a quarter of the room it saw before it looks again: so a few
# processes writing to the same filesystem at once stay above the reserve too.
_SHARE = 4


class SpaceGuard:
    """Keeps the writes into ``path``'s filesystem above a reserve of ``min_free`` of its blocks and
    inodes."""

    def __init__(self, path: str | os.PathLike[str], min_free: float) -> None:
        self.path = os.fspath(path)
        self.min_free = check_min_free(min_free)
        self._room = _ROOMS.setdefault((os.stat(self.path).st_dev, self.min_free), _Room())

    def charge(self, size: int = 0, inodes: int = 0) -> None:
        """Account for ``size`` bytes of data and ``inodes`` new files about to be written.

        Each new file is counted a block as well, for its directory entry and metadata. Raises
        ResourceExhaustedError (nothing written yet) if they would take the filesystem under the
        reserve.
        """
        room = self._room
        with room.lock:
            room.blocks_left -= -(-size // room.block_size) + inodes if room.block_size else 0
            room.inodes_left -= inodes
            if room.blocks_left < 0 or room.inodes_left < 0:
                self._look(room, size, inodes)

    def _look(self, room: _Room, size: int, inodes: int) -> None:
        st = os.statvfs(self.path)
        room.block_size = st.f_frsize or st.f_bsize or 4096
        blocks = -(-size // room.block_size) + inodes
        spare_blocks = st.f_bavail - math.ceil(st.f_blocks * self.min_free)
        if blocks > spare_blocks:
            raise ResourceExhaustedError(
                f"the store's filesystem ({self.path}) would fall under its reserve of"
                f" {self.min_free * 100:g}% free blocks ({_size(st.f_bavail * room.block_size)} free"
                f" of {_size(st.f_blocks * room.block_size)})"
            )
        # A filesystem without an inode count (btrfs, some FUSE ones) has no inodes to run out of.
        spare_inodes = st.f_favail - math.ceil(st.f_files * self.min_free) if st.f_files else 1 << 62
        if inodes > spare_inodes:
            raise ResourceExhaustedError(
                f"the store's filesystem ({self.path}) would fall under its reserve of"
                f" {self.min_free * 100:g}% free inodes ({st.f_favail} free of {st.f_files})"
            )
        room.blocks_left = (spare_blocks - blocks) // _SHARE
        room.inodes_left = (spare_inodes - inodes) // _SHARE
