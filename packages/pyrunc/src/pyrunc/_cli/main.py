"""The ``pyrunc`` command: runc's command line, verb for verb and flag for flag.

This module is the dispatcher: the global flags and the table of verbs. Each verb is a few lines in
the module that the table names, imported only when that verb runs, with its own flags: the shim
calls us for create, start and delete of every container, and each call pays for what it imports.

    lifecycle  start kill delete state pause resume   (a container's state, nothing else)
    create     create run                            (the spec and the launch machinery)
    exec       exec update
    info       list ps events spec features
"""

from __future__ import annotations

import sys

from pyrunc import __version__
from pyrunc import _jsonio as json
from pyrunc._cli.args import Args, UsageError, parse_options
from pyrunc._errors import PyruncError, log_warnings_to

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import ModuleType

    from pyrunc._cli.args import Verb

__all__ = ["main", "version_text"]


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
    "create": ("create", "create a container"),
    "start": ("lifecycle", "executes the user defined process in a created container"),
    "run": ("create", "create and run a container"),
    "kill": (
        "lifecycle",
        "kill sends the specified signal (default: SIGTERM) to the container's init process",
    ),
    "delete": (
        "lifecycle",
        "delete any resources held by the container often used with detached container",
    ),
    "state": ("lifecycle", "output the state of a container"),
    "list": ("info", "lists containers started by pyrunc with the given root"),
    "ps": ("info", "ps displays the processes running inside a container"),
    "exec": ("exec", "execute new process inside the container"),
    "events": (
        "info",
        "display container events such as OOM notifications, CPU, memory, and IO usage statistics",
    ),
    "pause": ("lifecycle", "pause suspends all processes inside the container"),
    "resume": ("lifecycle", "resumes all processes that have been previously paused"),
    "update": ("exec", "update container resource constraints"),
    "spec": ("info", "create a new specification file"),
    "features": ("info", "show the enabled features"),
}


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
        from pyrunc._container.state import rfc3339_now

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


def _verb(name: str) -> Verb:
    """Import the module of verb ``name``; (its function, its flags)."""
    module_name = f"pyrunc._cli.{_VERBS[name][0]}"
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
    python = sys.version.split()[0]
    return f"runc version {__version__}\ncommit: pyrunc-{__version__}\nspec: 1.0.2\npython: {python}"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    g = Args()
    logger = Logger(None, "text", False)
    try:
        rest = parse_options(argv, _GLOBAL, g, stop_at_positional=True)
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
        parse_options(rest[1:], dict(options, **{"help,h": "flag"}), a, stop_at_positional=False)
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
