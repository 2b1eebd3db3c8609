"""The ``pyrunc`` command: runc's command line, verb for verb and flag for flag.

This module is the dispatcher: the global flags, the table of verbs, and a small table-driven
parser (argparse alone costs more start-up time than runc's whole ``run``). Each verb is a few
lines in the module that the table names, imported only when that verb runs, with its own flags:
the shim calls us for create, start and delete of every container, and each call pays for what
it imports.

    _cli_lifecycle  start kill delete state pause resume   (a container's state, nothing else)
    _cli_create     create run                            (the spec and the launch machinery)
    _cli_exec       exec update
    _cli_info       list ps events spec features
"""

from __future__ import annotations

import sys

from pyrunc import _jsonio as json
from pyrunc._errors import PyruncError, SpecError, log_warnings_to

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from types import ModuleType

    from pyrunc._container import Container

    #: What a verb module's ``VERBS`` maps each of its verbs to: (run it, its flags).
    Verb = tuple[Callable[["Args", "Args"], int], dict[str, str]]

__all__ = ["main"]

VERSION = "0.1.0"


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


# Option specs: "name,short:kind" where kind is flag, value or list.
_GLOBAL = {
    "debug": "flag",
    "log": "value",
    "log-format": "value",
    "root": "value",
    "criu": "value",
    "systemd-cgroup": "flag",
    "rootless": "value",
    "help,h": "flag",
    "version,v": "flag",
}
# verb -> (the module that implements it, its one-line summary), in the order `--help` lists them.
# A verb's flags ("name,short": flag, value or list) are in its module's ``VERBS``.
_VERBS = {
    "create": ("_cli_create", "create a container"),
    "start": ("_cli_lifecycle", "executes the user defined process in a created container"),
    "run": ("_cli_create", "create and run a container"),
    "kill": (
        "_cli_lifecycle",
        "kill sends the specified signal (default: SIGTERM) to the container's init process",
    ),
    "delete": (
        "_cli_lifecycle",
        "delete any resources held by the container often used with detached container",
    ),
    "state": ("_cli_lifecycle", "output the state of a container"),
    "list": ("_cli_info", "lists containers started by pyrunc with the given root"),
    "ps": ("_cli_info", "ps displays the processes running inside a container"),
    "exec": ("_cli_exec", "execute new process inside the container"),
    "events": (
        "_cli_info",
        "display container events such as OOM notifications, CPU, memory, and IO usage statistics",
    ),
    "pause": ("_cli_lifecycle", "pause suspends all processes inside the container"),
    "resume": ("_cli_lifecycle", "resumes all processes that have been previously paused"),
    "update": ("_cli_exec", "update container resource constraints"),
    "spec": ("_cli_info", "create a new specification file"),
    "features": ("_cli_info", "show the enabled features"),
}


def _table(spec: dict[str, str]) -> dict[str, tuple[str, str]]:
    names: dict[str, tuple[str, str]] = {}
    for key, kind in spec.items():
        long, _, short = key.partition(",")
        names["--" + long] = (long.replace("-", "_"), kind)
        if short:
            names["-" + short] = (long.replace("-", "_"), kind)
    return names


def _parse(argv: list[str], spec: dict[str, str], args: Args, *, stop_at_positional: bool) -> list[str]:
    """Parse options into ``args`` until the first positional when ``stop_at_positional``
    (global flags end at the verb); return what is left."""
    table = _table(spec)
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


class Logger:
    """runc's --log/--log-format: JSON lines or logfmt-style text, appended to a file."""

    def __init__(self, path: str | None, fmt: str, debug: bool) -> None:
        self.path = path
        self.fmt = fmt
        self.debug_enabled = debug

    def check(self) -> None:
        """Fail now, as runc does, when the log file cannot be written: not while reporting an error."""
        if self.path:
            try:
                with open(self.path, "a"):
                    pass
            except OSError as exc:
                self.path = None
                raise PyruncError(f"--log {exc.filename}: {exc.strerror}") from None

    def log(self, level: str, msg: str) -> None:
        if not self.path:
            return
        from pyrunc._state import rfc3339_now

        now = rfc3339_now()
        if self.fmt == "json":
            line = json.dumps({"level": level, "msg": msg, "time": now})
        else:
            line = f"time={json.dumps(now)} level={level} msg={json.dumps(msg)}"
        with open(self.path, "a") as f:
            f.write(line + "\n")

    def debug(self, msg: str) -> None:
        if self.debug_enabled:
            self.log("debug", msg)


def root_dir(g: Args) -> str:
    from pyrunc._container import DEFAULT_ROOT

    return g.value("root") or DEFAULT_ROOT


def load(g: Args, a: Args) -> Container:
    """The container the verb's first positional argument names."""
    from pyrunc._container import Container

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


def _verb(name: str) -> Verb:
    """Import the module of verb ``name``; (its function, its flags)."""
    module_name = f"pyrunc.{_VERBS[name][0]}"
    __import__(module_name)
    module: ModuleType = sys.modules[module_name]
    verbs: dict[str, Verb] = module.VERBS
    return verbs[name]


def _usage() -> str:
    lines = [
        "NAME:",
        "   pyrunc - an OCI runtime in Python with runc's command line",
        "",
        "USAGE:",
        "   pyrunc [global options] command [command options] [arguments...]",
        "",
        "COMMANDS:",
    ]
    lines += [f"   {name:<10}{_VERBS[name][1]}" for name in _VERBS]
    lines += [
        "",
        "GLOBAL OPTIONS:",
        "   --debug, --log FILE, --log-format text|json, --root DIR (default /run/pyrunc)",
        "   --systemd-cgroup (not supported), --help, --version",
    ]
    return "\n".join(lines)


def version_text() -> str:
    return f"runc version {VERSION}\ncommit: pyrunc-{VERSION}\nspec: 1.0.2\npython: {sys.version.split()[0]}"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    g = Args()
    logger = Logger(None, "text", False)
    try:
        rest = _parse(argv, _GLOBAL, g, stop_at_positional=True)
        logger = Logger(g.value("log"), g.value("log_format", "text") or "text", g.flag("debug"))
        logger.check()
        if logger.fmt not in ("text", "json"):
            raise UsageError(f"invalid log-format: {logger.fmt}")
        if logger.path:
            log_warnings_to(lambda message: logger.log("warning", message))
        if g.flag("version"):
            print(version_text())
            return 0
        if not rest or g.flag("help"):
            print(_usage())
            return 0
        if g.flag("systemd_cgroup"):
            raise PyruncError("--systemd-cgroup is not supported: pyrunc manages cgroups through cgroupfs")
        if g.value("rootless") not in (None, "false", "auto"):
            raise PyruncError("--rootless is not supported by pyrunc yet")
        verb = rest[0]
        if verb not in _VERBS:
            raise UsageError(f"No help topic for '{verb}'")
        command, options = _verb(verb)
        a = Args()
        _parse(rest[1:], dict(options, **{"help,h": "flag"}), a, stop_at_positional=False)
        if a.flag("help"):
            print(f"pyrunc {verb} - {_VERBS[verb][1]}")
            return 0
        logger.debug(f"pyrunc {verb} {' '.join(rest[1:])}")
        return command(g, a)
    except UsageError as exc:
        logger.log("error", str(exc))
        print(f"pyrunc: {exc}", file=sys.stderr)
        return 1
    except (PyruncError, OSError) as exc:
        message = str(exc)
        if isinstance(exc, OSError) and exc.strerror:  # not "[Errno 36] File name too long: '...'"
            message = f"{exc.filename}: {exc.strerror}" if exc.filename is not None else exc.strerror
        for note in getattr(exc, "__notes__", ()):
            message += f" ({note})"
        logger.log("error", message)
        print(message, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
