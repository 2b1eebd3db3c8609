"""``Record``: the base of pycontainerd's value types (descriptors, metadata records, configs).

Plain classes with ``__slots__`` and a hand-written, typed ``__init__`` that converts and validates
its arguments; ``Record`` derives ``__eq__``, ``__hash__`` and ``__repr__`` from the slots of the
class hierarchy, without generating code. Attributes are assigned once, in ``__init__``, and
annotated ``Final`` there (``self.digest: Final = digest``), so mypy refuses any later assignment.

Why not attrs (or dataclasses): every ``pyctr`` command starts a new interpreter and loads some forty
of these classes, and importing attrs (typing, inspect, ast, …) and generating their methods would
cost it more than the rest of ``pyctr run``'s imports together (measured: ARCHITECTURE.md,
"Start-up"). pyrunc's ``Model`` follows the same rules; the layers above, long-lived, use attrs.

A class lists the slots that take part in equality and hashing in ``_compared`` when some should
not (a descriptor's annotations, say); by default all of them do. This module imports nothing.
"""

from __future__ import annotations

__all__ = ["Record"]

_FIELDS: dict[type, tuple[str, ...]] = {}
_MISSING = object()


def fields_of(cls: type) -> tuple[str, ...]:
    """Names of the slots of ``cls`` and its bases, base classes first (cached per class)."""
    fields = _FIELDS.get(cls)
    if fields is None:
        names: list[str] = []
        for klass in reversed(cls.__mro__):
            slots = klass.__dict__.get("__slots__", ())
            for name in (slots,) if isinstance(slots, str) else slots:
                if name not in ("__dict__", "__weakref__") and name not in names:
                    names.append(name)
        fields = _FIELDS[cls] = tuple(names)
    return fields


class Record:
    """Equality, hash and repr from ``__slots__``: two records are equal when of the same class and
    equal in every compared slot."""

    __slots__ = ()
    #: The slots equality and hashing look at; ``None``: all of them.
    _compared: tuple[str, ...] | None = None

    def _key(self) -> tuple[object, ...]:
        names = self._compared if self._compared is not None else fields_of(type(self))
        return tuple(getattr(self, name, _MISSING) for name in names)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, Record)
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash((type(self), self._key()))

    def __repr__(self) -> str:
        parts = []
        for name in fields_of(type(self)):
            value = getattr(self, name, _MISSING)
            if value is not _MISSING:
                parts.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(parts)})"
