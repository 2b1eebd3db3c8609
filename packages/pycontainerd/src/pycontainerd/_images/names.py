"""Image names: every name a user or an archive gives an image goes through the reference grammar
that ``pull`` uses (:class:`~pycontainerd.Reference`), so that ``../../etc/passwd``, ``a b`` or
``http://evil/x`` never name an image, and names are stored fully qualified."""

from __future__ import annotations

from pycontainerd._errors import InvalidArgumentError

__all__ = ["check_base_name", "image_name"]


def image_name(name: str, what: str) -> str:
    """``name`` fully qualified (``busybox`` is ``docker.io/library/busybox:latest``);
    InvalidArgumentError naming ``what`` (where the name came from) if it is not a reference."""
    from pycontainerd._remotes.reference import Reference  # its grammar compiles when imported

    try:
        return str(Reference.parse(name))
    except InvalidArgumentError as exc:
        raise InvalidArgumentError(f"{what}: {exc}") from None


def check_base_name(base_name: str) -> str:
    """``base_name`` if ``<base_name>:<tag>`` names an image: a repository, without tag or digest."""
    if "@" in base_name or ":" in base_name.rpartition("/")[2]:
        raise InvalidArgumentError(f"base name {base_name!r}: a repository without tag or digest is required")
    image_name(f"{base_name}:latest", f"base name {base_name!r}")
    return base_name
