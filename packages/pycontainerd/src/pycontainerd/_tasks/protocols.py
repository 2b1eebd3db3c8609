"""What the container service needs of the images, as a protocol: the :class:`~pycontainerd.Client`
provides it (the images of its namespace, and its unpacker), and a test may hand in another.

Imported for type checking only: ``typing`` is not on ``pyctr``'s path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from pycontainerd._metadata import Image

__all__ = ["ImageSource"]


class ImageSource(Protocol):
    """The images of one namespace."""

    def image(self, name: str) -> Image:
        """The image ``name`` (as given, or fully qualified); NotFoundError if there is none."""
        ...

    def unpack(self, name: str) -> str | None:
        """Unpack the image ``name`` into the default snapshotter: its top layer's ChainID, None for
        an image without layers."""
        ...
