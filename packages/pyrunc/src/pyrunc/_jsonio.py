"""JSON for the command line's paths, on the C scanner of ``json`` (``_json``) and a small encoder.

``import json`` imports ``re`` (and with it ``enum``, ``functools`` and ``collections``), which the
lifecycle verbs would pay for on every call (see ARCHITECTURE.md, start-up). The C scanner that
``json`` itself parses with needs none of that; only the error path imports ``json.decoder`` (for
its exception type). Writing is a short recursive encoder here: what pyrunc writes is small (a
container's state, a hook's input, a log line), and a string is escaped as ``json`` escapes it.
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
_quote = _json.encode_basestring_ascii  # what json.dumps uses for strings (ensure_ascii)
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
    """Serialize ``value`` (dicts with string keys, lists, tuples, strings, numbers, booleans, None):
    compact like Go's ``json.Marshal`` (runc's output), or indented by ``indent`` (spaces or a string)
    as ``json.dumps`` indents. ValueError for NaN and the infinities, TypeError for what JSON cannot
    hold."""
    out: list[str] = []
    _write(value, out, " " * indent if isinstance(indent, int) else indent, "\n", sort=False)
    return "".join(out)


def canonical(value: object) -> str:
    """``value`` with sorted keys and no spaces: the text ``json.dumps(value, sort_keys=True,
    separators=(",", ":"))`` gives, for hashing. Errors as :func:`dumps`."""
    out: list[str] = []
    _write(value, out, None, "", sort=True)
    return "".join(out)


def _write(value: object, out: list[str], step: str | None, newline: str, *, sort: bool) -> None:
    """Append the JSON of ``value`` to ``out``; ``step`` indents each level (None: compact) after
    ``newline`` (which carries the current level's indent)."""
    if isinstance(value, str):
        out.append(_quote(value))
    elif value is None or isinstance(value, bool):
        out.append("null" if value is None else "true" if value else "false")
    elif isinstance(value, int):
        out.append(int.__repr__(value))
    elif isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"Out of range float values are not JSON compliant: {value!r}")
        out.append(float.__repr__(value))
    elif isinstance(value, dict):
        if not value:
            out.append("{}")
            return
        inner = newline + step if step is not None else ""
        colon = ": " if step is not None else ":"
        for i, key in enumerate(sorted(value) if sort else value):
            if not isinstance(key, str):
                raise TypeError(f"keys must be str, not {type(key).__name__}")
            out.append(("{" if i == 0 else ",") + inner + _quote(key) + colon)
            _write(value[key], out, step, inner, sort=sort)
        out.append((newline if step is not None else "") + "}")
    elif isinstance(value, list | tuple):
        if not value:
            out.append("[]")
            return
        inner = newline + step if step is not None else ""
        for i, item in enumerate(value):
            out.append(("[" if i == 0 else ",") + inner)
            _write(item, out, step, inner, sort=sort)
        out.append((newline if step is not None else "") + "]")
    else:
        raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")
