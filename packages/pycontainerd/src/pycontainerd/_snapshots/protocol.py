"""The :class:`Snapshotter` protocol: what the overlayfs and native snapshotters both offer.

Imported for type checking, and by :mod:`pycontainerd` when ``Snapshotter`` is asked for: it needs
``typing`` at run time, which pyctr's path does not load.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Mapping

    from pycontainerd._snapshots.mount import Mount
    from pycontainerd._snapshots.types import Info, Usage

__all__ = ["Snapshotter"]


class Snapshotter(Protocol):
    """Lays out root filesystems as stacks of snapshots (containerd's ``snapshots.Snapshotter``).

    Errors: ``NotFoundError`` (no such key or parent), ``AlreadyExistsError`` (key or name taken),
    ``InvalidArgumentError`` (the parent is not committed), ``FailedPreconditionError`` (committing
    a view, removing a snapshot with children, a parent chain too long to mount).
    """

    def prepare(
        self, key: str, parent: str | None = None, labels: Mapping[str, str] | None = None
    ) -> list[Mount]:
        """Create the active (writable) snapshot ``key`` on top of the committed ``parent``."""
        ...

    def view(
        self, key: str, parent: str | None = None, labels: Mapping[str, str] | None = None
    ) -> list[Mount]:
        """Create the read-only snapshot ``key`` of the committed ``parent``."""
        ...

    def mounts(self, key: str) -> list[Mount]:
        """The mounts of the active snapshot or view ``key``, again."""
        ...

    def commit(self, name: str, key: str, labels: Mapping[str, str] | None = None) -> None:
        """Turn the active snapshot ``key`` into the committed, immutable snapshot ``name``."""
        ...

    def remove(self, key: str) -> None:
        """Remove the snapshot ``key`` and its files; refused while it has children."""
        ...

    def stat(self, key: str) -> Info:
        """The record of the snapshot ``key``."""
        ...

    def usage(self, key: str) -> Usage:
        """Space the snapshot ``key`` takes (fixed once committed, measured now if active)."""
        ...

    def walk(self) -> list[Info]:
        """Every snapshot, parents before their children."""
        ...

    def close(self) -> None:
        """Release the metadata database."""
        ...
