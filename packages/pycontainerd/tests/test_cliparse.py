"""pyctr's command line: the fast path gives what argparse gives, for every command, and leaves
argparse whatever it cannot be sure of."""

from __future__ import annotations

import argparse
import contextlib
import io
from collections.abc import Iterator

import pytest

from pycontainerd._cli.main import parser as _parser
from pycontainerd._cli.parse import REMAINDER, Parser


def _argparse(parser: Parser, argv: list[str]) -> dict[str, object] | int:
    """argparse's namespace for ``argv``, or its exit status when it refuses it (usage on stderr)."""
    try:
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            return vars(parser.to_argparse().parse_args(argv))
    except SystemExit as exc:
        return int(exc.code or 0)


def _commands(parser: Parser, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Parser]]:
    if parser.subparsers is None:
        yield path, parser
        return
    for name, aliases, _, child in parser.subparsers.entries:
        for word in (name, *aliases):
            yield from _commands(child, (*path, word))


def _every_argument(parser: Parser) -> list[str]:
    """A command line giving each option of ``parser`` (appended ones twice) and each positional."""
    words: list[str] = []
    for n, argument in enumerate(a for a in parser.arguments if a.option):
        flag = argument.names[n % len(argument.names)]  # long and short spellings both get used
        if argument.action == "store_true":
            words.append(flag)
        else:
            value = "42" if argument.convert is int else f"v{n}"
            words += [flag, value] * (2 if argument.action == "append" else 1)
    for n, argument in enumerate(a for a in parser.arguments if not a.option):
        if argument.nargs == REMAINDER:
            words += ["sh", "-c", "echo 'a b' >&2", "--rm", "-t"]
        elif argument.nargs in ("+", "*"):
            words += [f"p{n}", f"q{n}"]
        else:
            words.append(f"p{n}")
    return words


ALL = _parser()
COMMANDS = list(_commands(ALL))


def test_every_command_is_declared() -> None:
    names = {" ".join(path) for path, _ in COMMANDS}
    assert {"run", "images pull", "i ls", "tasks exec", "t kill", "c rm", "containers delete"} <= names
    assert len(COMMANDS) > 60  # with aliases


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_a_full_command_line_takes_the_fast_path_and_matches_argparse(
    path: tuple[str, ...], command: Parser
) -> None:
    for argv in (
        ["--root", "/r", "-n", "ns", "--state=/s", *path, *_every_argument(command)],
        [*path, *_every_argument(command)],
    ):
        fast = ALL.parse_fast(argv)
        assert fast is not None, argv
        assert fast == _argparse(ALL, argv)


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "--rm", "img", "id", "true"],
        ["run", "img", "id"],
        ["run", "--env=A=1", "--env", "B=2", "--memory-limit=7", "img", "id", "env"],
        ["run", "-d", "-t", "-u", "1:2", "img", "id", "sh", "-c", "--detach"],
        ["run", "img", "id", "", "-"],
        ["tasks", "exec", "--exec-id", "e1", "-t", "id", "ls", "-l", "--exec-id"],
        ["events"],
        ["events", 'topic=="/tasks/exit"', "namespace==default"],
        ["images", "push", "ref"],
        ["images", "push", "--plain-http", "ref", "local"],
        ["t", "kill", "-s", "KILL", "-a", "id"],
        ["c", "ls", "-q"],
        ["gc"],
    ],
)
def test_valid_command_lines_take_the_fast_path(argv: list[str]) -> None:
    fast = ALL.parse_fast(argv)
    assert fast is not None
    assert fast == _argparse(ALL, argv)


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "img", "--rm", "id", "true"],  # an option among the positionals
        ["c", "rm", "a", "b", "--force"],  # an option after them
        ["run", "--det", "img", "id"],  # an abbreviation
        ["run", "-dt", "img", "id"],  # short options together
        ["-nfoo", "images", "ls"],  # a short option's value attached
        ["run", "img", "id", "--", "x"],
        ["tasks", "kill", "-s", "-9", "id"],  # a value that looks like an option
        ["images", "rm", "-1"],
        ["run", "--rm=yes", "img", "id"],
        ["--help"],
        ["run", "-h"],
        ["run", "--memory-limit", "lots", "img", "id"],  # no int
        ["run", "img"],  # an argument missing
        ["tasks", "exec", "id", "true"],  # --exec-id is required
        ["no-such-command"],
        ["images"],
        [],
        ["events", "--root", "/r"],  # a global option after the command
    ],
)
def test_anything_else_is_left_to_argparse(argv: list[str]) -> None:
    assert ALL.parse_fast(argv) is None
    expected = _argparse(ALL, argv)
    if not isinstance(expected, int):  # valid after all: parse_args gives argparse's answer
        assert vars(ALL.parse_args(argv)) == expected


def test_argparse_judges_a_bad_command_line_with_its_usage(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        _parser(["run", "img"]).parse_args(["run", "img"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: pyctr run") and "the following arguments are required: id" in err


def test_help_is_argparse_s(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        _parser(["run", "--help"]).parse_args(["run", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: pyctr run [-h] [--rm] [--detach]") and "--memory-limit BYTES" in out


@pytest.mark.parametrize(
    ("names", "kwargs"),
    [
        (("--x",), {"action": "count"}),
        (("--x",), {"nargs": 2}),
        (("x",), {"type": int}),
        (("--x",), {"choices": ["a"]}),
    ],
)
def test_a_declaration_the_fast_path_cannot_honour_is_refused(
    names: tuple[str, ...], kwargs: dict[str, object]
) -> None:
    with pytest.raises(TypeError, match="not supported here"):
        Parser().add_argument(*names, **kwargs)


def test_the_namespace_is_argparse_s_fields() -> None:
    argv = ["run", "--rm", "img", "id", "true"]
    parsed = _parser(argv).parse_args(argv)
    assert not isinstance(parsed, argparse.Namespace)
    assert (parsed.rm, parsed.image, parsed.id, parsed.command) == (True, "img", "id", ["true"])
    assert parsed.env == [] and parsed.group == "run"
