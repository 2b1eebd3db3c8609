"""pyctr's command line: declared once with argparse's calls, parsed without argparse when it can be.

The commands declare their arguments with the part of argparse's API they use (``add_subparsers``,
``add_parser``, ``add_argument``, ``set_defaults``) on a :class:`Parser`, which records the calls.
:meth:`Parser.parse_args` reads a command line made of known options (long, ``--long=value``, or
two-character short ones) followed by the positionals straight into a namespace. Anything else -
help, an unknown or abbreviated option, a missing argument, ``--``, an option among or after the
positionals, a value that does not convert - is handed to argparse, built by replaying the calls, which
parses it or prints its usage and error as it always did; but for arguments no parser knows, the usage
printed is that of the command they were given to (argparse prints the top-level usage then).
Importing argparse (with gettext and locale) and building its parsers would be a cost of every pyctr
command (measured: ARCHITECTURE.md, "Start-up").

The fast path yields exactly what argparse would: tests compare the two on every command.
"""

from __future__ import annotations

from types import SimpleNamespace

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Sequence
    from typing import Any

__all__ = ["REMAINDER", "Namespace", "Parser", "Subparsers"]

#: ``nargs`` for a positional that takes the rest of the command line verbatim (argparse's value).
REMAINDER = "..."

#: What a command gets: one attribute per argument (argparse's Namespace, or its fields).
Namespace = SimpleNamespace


class _Argument:
    """One ``add_argument`` call."""

    __slots__ = ("names", "kwargs", "dest", "action", "nargs", "convert", "default", "required")

    def __init__(self, names: tuple[str, ...], kwargs: dict[str, Any]) -> None:
        unsupported = set(kwargs) - {"action", "nargs", "type", "default", "required", "help", "metavar"}
        if unsupported:
            raise TypeError(f"add_argument{names}: {', '.join(sorted(unsupported))} not supported here")
        self.names = names
        self.kwargs = kwargs
        self.action: str = kwargs.get("action", "store")
        if self.action not in ("store", "store_true", "append"):
            raise TypeError(f"add_argument{names}: action {self.action!r} not supported here")
        if names[0].startswith("-"):
            long = next((name for name in names if name.startswith("--")), names[0])
            self.dest = long.lstrip("-").replace("-", "_")
        else:
            self.dest = names[0]
        self.nargs: str | None = kwargs.get("nargs")
        self.convert: Callable[[str], object] | None = kwargs.get("type")
        if (self.option and self.nargs is not None) or (not self.option and {"type", "action"} & set(kwargs)):
            raise TypeError(f"add_argument{names}: this combination is not supported here")
        self.default: object = kwargs.get("default", False if self.action == "store_true" else None)
        self.required: bool = kwargs.get("required", False)

    @property
    def option(self) -> bool:
        return self.names[0].startswith("-")


class Parser:
    """A command's arguments, recorded (``argparse.ArgumentParser``'s ``kwargs``)."""

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        self.arguments: list[_Argument] = []
        self.defaults: dict[str, object] = {}
        self.subparsers: Subparsers | None = None
        self._steps: list[_Argument | Subparsers] = []  # in order, for argparse's usage line
        self._options: dict[str, _Argument] = {}

    def add_argument(self, *names: str, **kwargs: Any) -> None:
        argument = _Argument(names, kwargs)
        self.arguments.append(argument)
        self._steps.append(argument)
        if argument.option:
            self._options.update(dict.fromkeys(names, argument))

    def set_defaults(self, **kwargs: object) -> None:
        self.defaults.update(kwargs)

    def add_subparsers(self, *, dest: str, **kwargs: Any) -> Subparsers:
        self.subparsers = Subparsers(dest, kwargs)
        self._steps.append(self.subparsers)
        return self.subparsers

    def parse_args(self, argv: Sequence[str]) -> Namespace:
        """``argv`` parsed; argparse's SystemExit (after its usage and error) when it is not valid."""
        values = self.parse_fast(argv)
        if values is None:
            values = self._parse_slow(argv)
        return Namespace(**values)

    def _parse_slow(self, argv: Sequence[str]) -> dict[str, object]:
        """argparse's parse_args, but unknown arguments are refused by the innermost command chosen,
        so that the usage shown is that command's."""
        built: dict[int, argparse.ArgumentParser] = {}
        namespace, extras = self.to_argparse(built).parse_known_args(argv)
        values = vars(namespace)
        if extras:
            chosen = self
            while chosen.subparsers is not None:
                child = chosen.subparsers.choices.get(str(values.get(chosen.subparsers.dest)))
                if child is None:
                    break
                chosen = child
            built[id(chosen)].error(f"unrecognized arguments: {' '.join(extras)}")
        return values

    def parse_fast(self, argv: Sequence[str]) -> dict[str, object] | None:
        """The fields of ``argv`` without argparse; None when argparse has to judge it."""
        values: dict[str, object] = {}
        return values if "--" not in argv and self._parse(list(argv), values) else None

    def to_argparse(self, built: dict[int, argparse.ArgumentParser] | None = None) -> argparse.ArgumentParser:
        """The argparse parser these calls declare; ``built`` gets the argparse parser of each
        :class:`Parser`, by ``id``."""
        import argparse

        parser = argparse.ArgumentParser(**self.kwargs)
        self._replay(parser, {} if built is None else built)
        return parser

    def _replay(self, parser: argparse.ArgumentParser, built: dict[int, argparse.ArgumentParser]) -> None:
        built[id(self)] = parser
        for step in self._steps:
            if isinstance(step, _Argument):
                parser.add_argument(*step.names, **step.kwargs)
            else:
                group = parser.add_subparsers(dest=step.dest, **step.kwargs)
                for name, aliases, kwargs, child in step.entries:
                    child._replay(group.add_parser(name, aliases=list(aliases), **kwargs), built)
        if self.defaults:
            parser.set_defaults(**self.defaults)

    def _parse(self, words: list[str], values: dict[str, object]) -> bool:
        """Fill ``values`` as argparse would; False when argparse has to judge the command line."""
        given: set[str] = set()
        for argument in self.arguments:
            if argument.option:
                default = argument.default
                values[argument.dest] = list(default) if isinstance(default, list) else default
        values.update(self.defaults)
        position = 0
        while position < len(words) and words[position].startswith("-") and words[position] != "-":
            name, equals, value = words[position].partition("=")
            option = self._options.get(name if name.startswith("--") else words[position])
            if option is None:
                return False  # also -h, -xVALUE, -abc, an abbreviation: argparse's
            if option.action == "store_true":
                if equals:
                    return False
                values[option.dest] = True
            else:
                if not equals:
                    position += 1
                    if position == len(words) or words[position].startswith("-"):
                        return False
                    value = words[position]
                try:
                    converted = option.convert(value) if option.convert is not None else value
                except (TypeError, ValueError):
                    return False
                if option.action == "append":
                    target = values[option.dest]
                    assert isinstance(target, list)
                    target.append(converted)
                else:
                    values[option.dest] = converted
            given.add(option.dest)
            position += 1
        if any(a.required and a.dest not in given for a in self.arguments if a.option):
            return False
        rest = words[position:]
        if self.subparsers is not None:
            child = self.subparsers.choices.get(rest[0]) if rest else None
            if child is None:
                return False
            values[self.subparsers.dest] = rest[0]
            return child._parse(rest[1:], values)
        for argument in self.arguments:
            if argument.option:
                continue
            if argument.nargs == REMAINDER:
                values[argument.dest], rest = rest, []
            elif argument.nargs in ("+", "*"):
                if any(word.startswith("-") for word in rest) or (argument.nargs == "+" and not rest):
                    return False
                empty = argument.default if argument.default is not None else []
                values[argument.dest], rest = rest or empty, []
            elif rest and not rest[0].startswith("-"):
                values[argument.dest] = rest.pop(0)
            elif argument.nargs == "?":
                values[argument.dest] = argument.default
            else:
                return False
        return not rest


class Subparsers:
    """An ``add_subparsers`` call and the commands added to it."""

    def __init__(self, dest: str, kwargs: dict[str, Any]) -> None:
        self.dest = dest
        self.kwargs = kwargs
        self.entries: list[tuple[str, tuple[str, ...], dict[str, Any], Parser]] = []
        self.choices: dict[str, Parser] = {}

    def add_parser(self, name: str, *, aliases: Sequence[str] = (), **kwargs: Any) -> Parser:
        parser = Parser()
        self.entries.append((name, tuple(aliases), kwargs, parser))
        self.choices.update(dict.fromkeys((name, *aliases), parser))
        return parser
