"""What every verb module of the command line uses: the parsed arguments, the option parser, the
usage error, and the helpers the verbs share (the state root, the container named, tables, JSON
input).

The parser is table-driven and small: argparse alone costs more start-up time than runc's whole
``run`` (see ARCHITECTURE.md, start-up).
"""

from __future__ import annotations

import sys

from pyrunc import _jsonio as json
from pyrunc._errors import SpecError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from pyrunc._container.container import Container

    #: What a verb module's ``VERBS`` maps each of its verbs to: (run it, its flags).
    Verb = tuple[Callable[["Args", "Args"], int], dict[str, str]]

__all__ = [
    "Args",
    "UsageError",
    "load",
    "parse_options",
    "preserve_fds",
    "print_table",
    "read_json",
    "root_dir",
]


class UsageError(Exception):
    """Bad command line: printed with the verb's usage, exit status 1 like runc."""


class Args:
    """Parsed options (by long name, dashes as underscores) and positional arguments."""

    __slots__ = ("opts", "positional")

    def __init__(self) -> None:
        self.opts: dict[str, object] = {}
        self.positional: list[str] = []

    def flag(self, name: str) -> bool:
        return bool(self.opts.get(name))

    def value(self, name: str, default: str | None = None) -> str | None:
        v = self.opts.get(name, default)
        return v if isinstance(v, str) or v is None else str(v)

    def values(self, name: str) -> list[str]:
        v = self.opts.get(name, [])
        return list(v) if isinstance(v, list) else []

    def container_id(self) -> str:
        if not self.positional:
            raise UsageError('"container id" is required')
        return self.positional[0]


def _option_table(spec: dict[str, str]) -> dict[str, tuple[str, str]]:
    names: dict[str, tuple[str, str]] = {}
    for key, kind in spec.items():
        long, _, short = key.partition(",")
        names["--" + long] = (long.replace("-", "_"), kind)
        if short:
            names["-" + short] = (long.replace("-", "_"), kind)
    return names


def parse_options(
    argv: list[str], spec: dict[str, str], args: Args, *, stop_at_positional: bool
) -> list[str]:
    """Parse options into ``args`` until the first positional when ``stop_at_positional``
    (global flags end at the verb); return what is left."""
    table = _option_table(spec)
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            args.positional.extend(argv[i + 1 :])
            return []
        if arg.startswith("-") and arg != "-":
            name, eq, inline = arg.partition("=")
            if name not in table:
                raise UsageError(f"flag provided but not defined: {name}")
            dest, kind = table[name]
            if kind == "flag":
                args.opts[dest] = inline.lower() not in ("false", "0") if eq else True
            else:
                if not eq:
                    i += 1
                    if i >= len(argv):
                        raise UsageError(f"flag needs an argument: {name}")
                    inline = argv[i]
                if kind == "list":
                    current = args.opts.setdefault(dest, [])
                    assert isinstance(current, list)
                    current.append(inline)
                else:
                    args.opts[dest] = inline
            i += 1
            continue
        if stop_at_positional:
            return argv[i:]
        # runc's verbs take their flags before the id; what follows the id is the verb's own
        # (exec's command, kill's signal, ps's options).
        args.positional.extend(argv[i:])
        return []
    return []


def root_dir(g: Args) -> str:
    from pyrunc._container.container import DEFAULT_ROOT

    return g.value("root") or DEFAULT_ROOT


def load(g: Args, a: Args) -> Container:
    """The container the verb's first positional argument names."""
    from pyrunc._container.container import Container

    return Container.load(a.container_id(), root_dir(g))


def preserve_fds(a: Args) -> int:
    text = a.value("preserve_fds", "0") or "0"
    if not text.isdigit():
        raise UsageError(f"invalid --preserve-fds value {text!r}")
    return int(text)


def print_table(rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("   ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def read_json(source: str, field: str) -> object:
    """The JSON document in file ``source`` (``-``: standard input); errors name ``field``."""
    with sys.stdin if source == "-" else open(source) as f:
        try:
            return json.loads(f.read())
        except ValueError as exc:
            raise SpecError(field, f"{source}: invalid JSON: {exc}") from None
