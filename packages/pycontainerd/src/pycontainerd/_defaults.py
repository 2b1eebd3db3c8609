"""Where a :class:`~pycontainerd.Client` keeps things unless told otherwise; a module of its own so
that reading them (pyctr's parser does, for every command) loads nothing else."""

from __future__ import annotations

__all__ = ["DEFAULT_ROOT", "DEFAULT_STATE"]

DEFAULT_ROOT = "/var/lib/pycontainerd"
DEFAULT_STATE = "/run/pycontainerd"
