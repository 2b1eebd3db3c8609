"""``Model``: the base of pyrunc's value types (the runtime-spec models, the create options, the
saved state, the cgroup counters...).

Its rules, the same as pycontainerd's ``Record`` (see ``docs/model-contract.md`` and ARCHITECTURE.md):

- a subclass lists its fields in ``__slots__`` and writes its own typed ``__init__`` (keyword
  arguments named as the fields), which converts and assigns each field once, annotated ``Final``
  (``self.bundle: Final = bundle``), so that mypy refuses any later assignment;
- ``Model`` derives ``__eq__``, ``__hash__`` and ``__repr__`` from the slots of the whole class
  hierarchy: two models are equal when of the same class with equal fields, and a model is
  hashable when its fields are (a list field makes it unhashable, as it does a tuple);
- a changed copy is made with :meth:`Model.replace`.

Plain slotted classes rather than attrs or dataclasses: every pyrunc command is a fresh process, and
this module imports nothing.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Self

__all__ = ["Model", "fields_of"]

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


class Model:
    """Equality, hash and repr from ``__slots__``; see the module docstring for the rules."""

    __slots__ = ()

    def _key(self) -> tuple[object, ...]:
        return tuple(getattr(self, name, _MISSING) for name in fields_of(type(self)))

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, Model)
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

    def replace(self, **changes: object) -> Self:
        """A copy with the fields named in ``changes`` set to those values (built by ``__init__``,
        which checks them as it checks any)."""
        fields = {name: getattr(self, name) for name in fields_of(type(self))}
        fields.update(changes)
        return type(self)(**fields)
