"""``Model``: the base of pyrunc's plain ``__slots__`` classes.

Subclasses declare their fields in ``__slots__`` and write their own keyword-only ``__init__``;
``Model`` derives ``__eq__`` and ``__repr__`` from the ``__slots__`` of the whole class hierarchy.
Instances are mutable and therefore unhashable. This module imports nothing: it is on the
runtime's start-up path.
"""

from __future__ import annotations

__all__ = ["Model"]

_FIELDS: dict[type, tuple[str, ...]] = {}
_MISSING = object()


def _fields_of(cls: type) -> tuple[str, ...]:
    """Names of the slots of ``cls`` and its bases, base classes first (cached per class)."""
    fields = _FIELDS.get(cls)
    if fields is None:
        names: list[str] = []
        for klass in reversed(cls.__mro__):
            slots = klass.__dict__.get("__slots__", ())
            for name in (slots,) if isinstance(slots, str) else slots:
                if name in ("__dict__", "__weakref__"):
                    continue
                if name.startswith("__") and not name.endswith("__"):
                    name = f"_{klass.__name__.lstrip('_')}{name}"  # private names are mangled
                if name not in names:
                    names.append(name)
        fields = _FIELDS[cls] = tuple(names)
    return fields


class Model:
    """Equality and repr from ``__slots__``; two models are equal when of the same class and equal slots."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        for name in _fields_of(type(self)):
            if getattr(self, name, _MISSING) != getattr(other, name, _MISSING):
                return False
        return True

    __hash__ = None  # type: ignore[assignment]  # mutable: not hashable

    def __repr__(self) -> str:
        parts = []
        for name in _fields_of(type(self)):
            value = getattr(self, name, _MISSING)
            if value is not _MISSING:
                parts.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(parts)})"
