"""JSON for the start-up path, on the C accelerator ``_json`` alone.

``import json`` pulls in ``re`` (and with it enum, functools and collections), about 10 ms on
this kind of machine, which is a third of the time runc takes for a whole ``run``. The C
scanner and encoder that ``json`` itself uses need none of that; only the error path imports
``json`` (for its exception type).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    _json: Any
else:
    import _json

__all__ = ["canonical", "dumps", "loads"]


class _Constant(ValueError):
    """NaN, Infinity or -Infinity, which Python's scanner takes and JSON does not."""

    def __init__(self, name: str) -> None:
        super().__init__(f"{name} is not valid JSON")
        self.name = name


def _no_constants(name: str) -> object:
    raise _Constant(name)


def _constant_at(text: str, name: str) -> int:
    """Where the scanner met the constant ``name``: its first use outside a string (before it, the
    scanner found no error)."""
    in_string = escaped = False
    for i, ch in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif text.startswith(name, i):
            return i
    return 0


class _Context:
    # The attributes _json.make_scanner reads from its context (json.JSONDecoder's).
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = staticmethod(_no_constants)
    memo: dict[str, str] = {}  # noqa: RUF012 - the scanner expects a plain dict here


_scan = _json.make_scanner(_Context())
# Compact, like Go's json.Marshal (runc's output); the indented form adds its own spacing.
_encode = _json.make_encoder(None, None, _json.encode_basestring_ascii, None, ":", ",", False, False, False)
_WHITESPACE = " \t\n\r"


def _position(text: str, index: int) -> str:
    line = text.count("\n", 0, index) + 1
    column = index - text.rfind("\n", 0, index)
    return f"line {line} column {column}"


def _scan_from(text: str, start: int) -> tuple[object, int]:
    try:
        return _scan(text, start)  # type: ignore[no-any-return]
    except SystemError:
        # The C scanner reports most syntax errors with json.decoder.JSONDecodeError, which it looks
        # up in sys.modules without importing it: when json.decoder is not loaded yet, it fails
        # without an exception. Load it (an error is worth the import) and scan again for the error.
        import json.decoder  # noqa: F401

        return _scan(text, start)  # type: ignore[no-any-return]


def loads(text: str) -> object:
    """Parse a JSON document; ValueError names the line and column of a syntax error, or says that
    the document nests too deeply."""
    start = len(text) - len(text.lstrip(_WHITESPACE))
    try:
        value, end = _scan_from(text, start)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    except _Constant as exc:
        raise ValueError(f"{exc} at {_position(text, _constant_at(text, exc.name))}") from None
    except StopIteration as stop:
        raise ValueError(f"expecting a value at {_position(text, stop.value)}") from None
    except ValueError as exc:  # json.JSONDecodeError
        index = getattr(exc, "pos", None)
        where = _position(text, index) if isinstance(index, int) else ""
        message = getattr(exc, "msg", str(exc)).removesuffix(" at")  # "Unterminated string starting at"
        raise ValueError(f"{message} at {where}" if where else message) from None
    rest = len(text.rstrip(_WHITESPACE))
    if end < rest:
        raise ValueError(f"extra data at {_position(text, end)}")
    return value


def dumps(value: object, indent: int | str | None = None) -> str:
    """Serialize ``value`` (dicts, lists, strings, numbers, booleans, None): compact, or
    indented by ``indent`` (spaces or a string) as ``json.dumps`` indents."""
    if indent is None:
        return "".join(_encode(value, 0))
    return _pretty(value, " " * indent if isinstance(indent, int) else indent, "\n")


def canonical(value: object) -> str:
    """``value`` with sorted keys and no spaces: the text ``json.dumps(value, sort_keys=True,
    separators=(",", ":"))`` gives (the same C encoder), for hashing. ValueError for NaN and the
    infinities, TypeError for what JSON cannot hold."""
    encode = _json.make_encoder(None, None, _json.encode_basestring_ascii, None, ":", ",", True, False, False)
    return "".join(encode(value, 0))


def _pretty(value: object, step: str, newline: str) -> str:
    if isinstance(value, dict) and value:
        inner = newline + step
        items = [
            f"{inner}{_json.encode_basestring_ascii(str(k))}: {_pretty(v, step, inner)}"
            for k, v in value.items()
        ]
        return "{" + ",".join(items) + newline + "}"
    if isinstance(value, list) and value:
        inner = newline + step
        return "[" + ",".join(inner + _pretty(v, step, inner) for v in value) + newline + "]"
    return "".join(_encode(value, 0))
