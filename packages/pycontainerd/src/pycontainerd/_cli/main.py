"""``pyctr``: containerd's ``ctr`` for a pycontainerd root, a thin shell around :class:`Client`.

Each command opens the client, calls one method and prints. The commands are in :mod:`.images`
(``images``, ``content``, ``snapshots``, ``leases``, ``gc``) and :mod:`.tasks` (``run``,
``containers``, ``tasks``, ``events``), declared with :mod:`.parse`; only the group a command line
names is imported and declared.

Exit status: 0 on success; 1 when the command fails, with one line on stderr (``pyctr: <why>``),
never a traceback (one would be a bug); 2 for a command line that does not parse, with the usage of
the command it names and argparse's error line; 130 when interrupted (Ctrl-C). ``run`` and ``tasks
start``/``attach``/``exec`` in the foreground exit with the container process's status.
"""

from __future__ import annotations

import gc
import os
import sqlite3
import sys

from pycontainerd._cli.parse import Namespace, Parser
from pycontainerd._client import Client
from pycontainerd._errors import PycontainerdError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from types import ModuleType

__all__ = ["main", "run"]


def _images() -> ModuleType:
    from pycontainerd._cli import images

    return images


def _tasks() -> ModuleType:
    from pycontainerd._cli import tasks

    return tasks


#: Each command group's names (aliases included), and the module (imported when the group is
#: declared) and function that add it to the parser, in help order.
_GROUPS: tuple[tuple[tuple[str, ...], Callable[[], ModuleType], str], ...] = (
    (("images", "image", "i"), _images, "images_group"),
    (("content",), _images, "content_group"),
    (("snapshots", "snapshot"), _images, "snapshots_group"),
    (("leases",), _images, "leases_group"),
    (("gc",), _images, "gc_group"),
    (("run",), _tasks, "run_group"),
    (("containers", "container", "c"), _tasks, "containers_group"),
    (("tasks", "task", "t"), _tasks, "tasks_group"),
    (("events",), _tasks, "events_group"),
)
#: The global options that take a value.
_VALUED = ("--root", "--state", "--namespace", "-n", "--snapshotter", "--min-free")


def _chosen_group(argv: Sequence[str]) -> str | None:
    """The command group ``argv`` names after the global options; None if there is none to see (help,
    an unknown option): then every group is built, for the usage message to list them all."""
    words = iter(argv)
    for word in words:
        if word in _VALUED:
            next(words, None)
        elif not word.startswith("-"):
            return word
        elif not word.startswith(tuple(f"{option}=" for option in _VALUED if option.startswith("--"))):
            return None
    return None


def parser(argv: Sequence[str] | None = None) -> Parser:
    """pyctr's parser; with ``argv``, only the command group it names is declared: its module is
    imported only then, and argparse, when it has to judge the line, builds a parser for the
    subcommands declared only."""
    from pycontainerd._defaults import DEFAULT_ROOT, DEFAULT_STATE

    top = Parser(prog="pyctr", description="containerd's ctr, for pycontainerd")
    top.add_argument("--root", default=DEFAULT_ROOT, help="store root (default %(default)s)")
    top.add_argument("--state", default=DEFAULT_STATE, help="state directory (default %(default)s)")
    top.add_argument("--namespace", "-n", default="default", help="namespace (default %(default)s)")
    top.add_argument("--snapshotter", default="overlayfs", help="snapshotter (default %(default)s)")
    top.add_argument(
        "--min-free",
        help="percent of the store filesystem's blocks and inodes pulls and imports leave free (default 5%%)",
    )
    groups = top.add_subparsers(dest="group", required=True, metavar="COMMAND")
    chosen = None if argv is None else _chosen_group(argv)
    known = any(chosen in names for names, _, _ in _GROUPS)
    for names, module, function in _GROUPS:
        if not known or chosen in names:
            getattr(module(), function)(groups)
    return top


def _describe(exc: BaseException) -> str:
    """One line for a failure: an OSError's reason and path, without its errno; anything else's
    message; and what went wrong while cleaning up after it (its notes)."""
    if isinstance(exc, OSError) and exc.strerror:
        where = exc.filename if exc.filename2 is None else f"{exc.filename} -> {exc.filename2}"
        text = exc.strerror if where is None else f"{where}: {exc.strerror}"
    else:
        text = str(exc) or type(exc).__name__
    return " ".join("; ".join([text, *getattr(exc, "__notes__", ())]).split())


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``pyctr`` with ``argv`` (default: the process's); returns the exit status."""
    argv = sys.argv[1:] if argv is None else argv
    args = parser(argv).parse_args(argv)
    gc.enable()  # the pyctr launcher turns the collector off while modules load (see scripts/pyctr)
    try:
        with _client(args) as client:
            code = args.func(client, args)
        return code or 0
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if not _expected(exc):
            raise
        print(f"pyctr: {_describe(exc)}", file=sys.stderr)
        return 1


def _client(args: Namespace) -> Client:
    """The client ``args`` open: ``--min-free`` is a percentage (``5``, ``2.5%``)."""
    if args.min_free is None:
        return Client(args.root, args.state, args.namespace, args.snapshotter)
    try:
        percent = float(args.min_free.strip().removesuffix("%"))
    except ValueError:
        percent = -1.0
    if not 0 <= percent < 100:  # NaN too
        raise ValueError(f"--min-free {args.min_free!r}: a percentage from 0 to below 100")
    return Client(args.root, args.state, args.namespace, args.snapshotter, min_free=percent / 100)


def _expected(exc: Exception) -> bool:
    """Whether ``exc`` is a failure to report in one line rather than a bug: pycontainerd's errors
    (the layers below it are translated into them), a bad value, the system's refusal (OSError),
    and the stores' sqlite errors (a root that is not writable, a corrupt database)."""
    return isinstance(exc, PycontainerdError | ValueError | OSError | sqlite3.Error)


def run() -> None:
    """The ``pyctr`` command: :func:`main`, then leave without tearing the interpreter down (the
    command has closed what it opened, and finalising every module and object is a cost of its own
    at each command)."""
    code = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:
        code = code or 1
    os._exit(code)
