"""The JSON readers the runtime-spec models are built with.

Each reader (``read_str``, ``read_int``, ``read_models``...) takes the parent object, the key and the
parent's JSON path, returns the converted value (``None``/``[]``/``{}`` when absent; an explicit JSON
``null`` counts as absent, as in Go) and raises ``SpecError`` naming the exact path of a bad value; the
``require_*`` readers refuse an absent one. The scalar readers build the path string only when they
raise. Pattern checks are written out with ``str`` methods rather than ``re`` (see ARCHITECTURE.md,
start-up).
"""

from __future__ import annotations

from pyrunc._errors import SpecError
from pyrunc._jsonio import dumps as _quoted

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Protocol, TypeVar

    _T = TypeVar("_T")
    Range = tuple[int, int, str]

    class _JSONModel(Protocol):
        def to_json(self) -> dict[str, object]: ...


__all__ = [
    "FILE_MODE",
    "I32",
    "I64",
    "POSITIVE",
    "U16",
    "U32",
    "U64",
    "as_int",
    "as_object",
    "check_no_nul",
    "check_text",
    "compact",
    "dump_list",
    "dump_optional",
    "is_upper",
    "name_set",
    "path_of",
    "path_of_key",
    "read_abs_path",
    "read_bool",
    "read_enum",
    "read_enum_list",
    "read_flag",
    "read_int",
    "read_int_list",
    "read_list",
    "read_map",
    "read_model",
    "read_models",
    "read_raw",
    "read_str",
    "read_str_list",
    "read_str_map",
    "require_abs_path",
    "require_enum",
    "require_int",
    "require_str",
    "wrong_type",
]

# Integer ranges of defs.json.
U16: Range = (0, 0xFFFF, "uint16")
I32: Range = (-(2**31), 2**31 - 1, "int32")
U32: Range = (0, 2**32 - 1, "uint32")
I64: Range = (-(2**63), 2**63 - 1, "int64")
U64: Range = (0, 2**64 - 1, "uint64")
FILE_MODE: Range = (0, 0o777, "a file mode (0..511)")
POSITIVE: Range = (1, 2**63 - 1, "a positive int64")

_TYPE_NAMES = {
    str: "string",
    int: "int",
    float: "number",
    bool: "boolean",
    list: "array",
    dict: "object",
    type(None): "null",
}


# -- error helpers -------------------------------------------------------------------------------------


def path_of(path: str, key: str) -> str:
    """The JSON path of member ``key`` of the object at ``path``."""
    return f"{path}.{key}" if path else key


def path_of_key(path: str, key: str) -> str:
    """The JSON path of a map entry: ``sysctl["net.ipv4.ip_forward"]``, ``timeOffsets.monotonic``."""
    return f"{path}.{key}" if key.isidentifier() else f"{path}[{_quoted(key)}]"


def wrong_type(path: str, expected: str, value: object) -> SpecError:
    return SpecError(path, f"expected {expected}, got {_TYPE_NAMES.get(type(value), type(value).__name__)}")


# -- readers -------------------------------------------------------------------------------------------


def as_object(value: object, path: str) -> dict[str, object]:
    """``value`` checked to be a JSON object (the top level, path "", is called ``config.json``)."""
    if isinstance(value, dict):
        return value
    raise wrong_type(path or "config.json", "an object", value)


def check_no_nul(value: str, path: str) -> str:
    """``value``, refused (naming ``path``) if it holds a NUL byte: the kernel gets it as a C string,
    which a NUL would cut short, silently."""
    if "\0" in value:
        where = value.index("\0")
        raise SpecError(path, f"holds a NUL byte (at index {where}), which no C string can carry")
    return value


def check_text(value: str, path: str) -> str:
    """``value``, refused (naming ``path``) if it holds a NUL byte (see :func:`check_no_nul`) or a
    lone surrogate: a string read from JSON reaches the kernel as UTF-8."""
    check_no_nul(value, path)
    if not value.isascii():
        try:
            value.encode()
        except UnicodeEncodeError as exc:
            raise SpecError(
                path, f"holds the lone surrogate {value[exc.start]!r} (at {exc.start}): not text"
            ) from None
    return value


def read_str(o: dict[str, object], key: str, path: str) -> str | None:
    v = o.get(key)
    if v is None:
        return v
    if isinstance(v, str):
        return v if v.isascii() and "\0" not in v else check_text(v, path_of(path, key))
    raise wrong_type(path_of(path, key), "a string", v)


def require_str(o: dict[str, object], key: str, path: str) -> str:
    v = read_str(o, key, path)
    if v is None:
        raise SpecError(path_of(path, key), "required")
    return v


def read_bool(o: dict[str, object], key: str, path: str) -> bool | None:
    v = o.get(key)
    if v is None or isinstance(v, bool):
        return v
    raise wrong_type(path_of(path, key), "a boolean", v)


def read_flag(o: dict[str, object], key: str, path: str) -> bool:
    """A boolean defaulting to false."""
    return read_bool(o, key, path) is True


def as_int(v: object, rng: Range, path: str) -> int:
    """``v`` as an integer in ``rng``; integral JSON numbers (``5.0``) count, booleans do not."""
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    elif not isinstance(v, int) or isinstance(v, bool):
        raise wrong_type(path, "an integer", v)
    lo, hi, name = rng
    if not lo <= v <= hi:
        raise SpecError(path, f"{v} is out of range for {name} ({lo}..{hi})")
    return v


def read_int(o: dict[str, object], key: str, path: str, rng: Range) -> int | None:
    v = o.get(key)
    if v is None:
        return None
    if type(v) is int and rng[0] <= v <= rng[1]:
        return v
    return as_int(v, rng, path_of(path, key))


def require_int(o: dict[str, object], key: str, path: str, rng: Range) -> int:
    v = read_int(o, key, path, rng)
    if v is None:
        raise SpecError(path_of(path, key), "required")
    return v


def read_list(o: dict[str, object], key: str, path: str) -> list[object]:
    v = o.get(key)
    if v is None:
        return []
    if isinstance(v, list):
        return v
    raise wrong_type(path_of(path, key), "an array", v)


def read_str_list(o: dict[str, object], key: str, path: str) -> list[str]:
    out: list[str] = []
    for i, v in enumerate(read_list(o, key, path)):
        if not isinstance(v, str):
            raise wrong_type(f"{path_of(path, key)}[{i}]", "a string", v)
        out.append(v if v.isascii() and "\0" not in v else check_text(v, f"{path_of(path, key)}[{i}]"))
    return out


def read_int_list(o: dict[str, object], key: str, path: str, rng: Range) -> list[int]:
    return [as_int(v, rng, f"{path_of(path, key)}[{i}]") for i, v in enumerate(read_list(o, key, path))]


def read_model(o: dict[str, object], key: str, path: str, parse: Callable[[object, str], _T]) -> _T | None:
    """The object at ``key`` parsed by ``parse(value, path)`` (a ``from_json``), or None."""
    v = o.get(key)
    return None if v is None else parse(v, path_of(path, key))


def read_models(o: dict[str, object], key: str, path: str, parse: Callable[[object, str], _T]) -> list[_T]:
    items = read_list(o, key, path)
    if not items:
        return []
    where = path_of(path, key)
    return [parse(v, f"{where}[{i}]") for i, v in enumerate(items)]


def read_map(o: dict[str, object], key: str, path: str) -> dict[str, object]:
    """A JSON object used as a map (values unchecked, keys checked as text), copied."""
    v = o.get(key)
    if v is None:
        return {}
    out = dict(as_object(v, path_of(path, key)))
    for k in out:
        if not k.isascii() or "\0" in k:
            check_text(k, path_of_key(path_of(path, key), k))
    return out


def read_str_map(o: dict[str, object], key: str, path: str) -> dict[str, str]:
    """defs.json ``mapStringString``."""
    out: dict[str, str] = {}
    for k, v in read_map(o, key, path).items():
        if not isinstance(v, str):
            raise wrong_type(path_of_key(path_of(path, key), k), "a string", v)
        out[k] = v if v.isascii() and "\0" not in v else check_text(v, path_of_key(path_of(path, key), k))
    return out


def read_raw(
    o: dict[str, object], key: str, path: str, check: Callable[[dict[str, object], str], None]
) -> dict[str, object] | None:
    """An object kept as a raw dict (copied) after ``check(obj, path)`` validated it."""
    v = o.get(key)
    if v is None:
        return None
    where = path_of(path, key)
    raw = as_object(v, where)
    check(raw, where)
    return dict(raw)


def read_enum(o: dict[str, object], key: str, path: str, allowed: frozenset[str], what: str) -> str | None:
    v = read_str(o, key, path)
    if v is None or v in allowed:
        return v
    raise SpecError(path_of(path, key), f'unknown {what} "{v}"')


def require_enum(o: dict[str, object], key: str, path: str, allowed: frozenset[str], what: str) -> str:
    v = read_enum(o, key, path, allowed, what)
    if v is None:
        raise SpecError(path_of(path, key), "required")
    return v


def read_enum_list(
    o: dict[str, object], key: str, path: str, allowed: frozenset[str], what: str
) -> list[str]:
    items = read_str_list(o, key, path)
    for i, v in enumerate(items):
        if v not in allowed:
            raise SpecError(f"{path_of(path, key)}[{i}]", f'unknown {what} "{v}"')
    return items


def is_upper(s: str) -> bool:
    """``s`` matches ``^[A-Z]+$``."""
    return s.isascii() and s.isalpha() and s.isupper()


def compact(d: dict[str, object]) -> dict[str, object]:
    """``d`` without None values and empty lists, like Go's ``omitempty`` (0, false, "" and {} stay:
    callers pass ``x or None`` for maps and ``flag or None`` for default-false booleans)."""
    return {k: v for k, v in d.items() if v is not None and v != []}


def dump_list(items: Iterable[_JSONModel]) -> list[dict[str, object]]:
    return [item.to_json() for item in items]


def dump_optional(item: _JSONModel | None) -> dict[str, object] | None:
    return None if item is None else item.to_json()


def name_set(prefix: str, words: str) -> frozenset[str]:
    """The enum values ``prefix + word`` for each space-separated word."""
    return frozenset(prefix + word for word in words.split())


def read_abs_path(o: dict[str, object], key: str, path: str) -> str | None:
    """A string member that must be an absolute path (where the spec text says so)."""
    v = read_str(o, key, path)
    if v is not None and not v.startswith("/"):
        raise SpecError(path_of(path, key), "must be an absolute path")
    return v


def require_abs_path(o: dict[str, object], key: str, path: str) -> str:
    v = read_abs_path(o, key, path)
    if v is None:
        raise SpecError(path_of(path, key), "required")
    return v
