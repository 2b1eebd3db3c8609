"""The snapshotters of a root, by the names containerd gives them, each opened once on first use."""

from __future__ import annotations

from pycontainerd._errors import InvalidArgumentError
from pycontainerd._snapshots.native import NativeSnapshotter
from pycontainerd._snapshots.overlay import OverlaySnapshotter

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from pycontainerd._snapshots.protocol import Snapshotter

__all__ = ["SNAPSHOTTERS", "Snapshotters", "check_snapshotter"]

#: The snapshotters a root can hold, by name.
SNAPSHOTTERS: dict[str, Callable[[Path], Snapshotter]] = {
    "overlayfs": OverlaySnapshotter,
    "native": NativeSnapshotter,
}


def check_snapshotter(name: str) -> str:
    """``name`` if it names a snapshotter; InvalidArgumentError otherwise."""
    if name not in SNAPSHOTTERS:
        raise InvalidArgumentError(f"unknown snapshotter {name!r}: one of {', '.join(SNAPSHOTTERS)}")
    return name


class Snapshotters:
    """The snapshotters under ``root`` (``<root>/<name>``), opened on first use and kept until
    :meth:`close`; ``default`` is the one :meth:`get` gives without a name."""

    def __init__(self, root: Path, default: str) -> None:
        self.root = root
        self.default = check_snapshotter(default)
        self._opened: dict[str, Snapshotter] = {}

    def get(self, name: str | None = None) -> Snapshotter:
        """The snapshotter ``name`` (default: :attr:`default`). It holds the snapshots of every
        namespace, without namespace checks."""
        name = check_snapshotter(name or self.default)
        if name not in self._opened:
            self._opened[name] = SNAPSHOTTERS[name](self.root / name)
        return self._opened[name]

    def close(self) -> None:
        """Close the snapshotters opened so far."""
        while self._opened:
            _, snapshotter = self._opened.popitem()
            snapshotter.close()
