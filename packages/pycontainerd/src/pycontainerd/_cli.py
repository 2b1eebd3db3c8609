"""``pyctr``: containerd's ``ctr`` for a pycontainerd root, a thin shell around :class:`Client`.

Each command opens the client, calls one method and prints. ``run``, ``containers``, ``tasks`` and
``events`` are in :mod:`pycontainerd._cli_tasks`. Arguments come in ctr's order (``images push REF``,
``images tag SRC DST``, ``images export OUT REF…``).

Exit status: 0 on success; 1 when the command fails, with one line on stderr (``pyctr: <why>``),
never a traceback (one would be a bug); 2 for a command line that does not parse, with the usage of
the command it names and argparse's error line; 130 when interrupted (Ctrl-C). ``run`` and ``tasks
start``/``attach``/``exec`` in the foreground exit with the container process's status.
"""

from __future__ import annotations

import datetime
import gc
import json
import sys
from collections.abc import Callable

from pycontainerd._cliparse import Namespace, Parser, Subparsers

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    from pycontainerd._client import Client
    from pycontainerd._remotes import Credentials, Progress

__all__ = ["main"]


def _table(rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=False)]
        print("  ".join([*cells, row[-1]]).rstrip())


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.1f} {unit}" if unit != "B" else f"{n} B"
        value /= 1024
    raise AssertionError("unreachable")


def _labels(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or "-"


class _ProgressPrinter:
    """Progress events as lines on stderr: one per blob and state change."""

    def __init__(self) -> None:
        self._last: dict[str, str] = {}

    def __call__(self, event: Progress) -> None:
        state = event.state.value
        if self._last.get(event.digest) == state:
            return
        self._last[event.digest] = state
        print(f"{event.digest}: {state} {event.done}/{event.total}", file=sys.stderr, flush=True)


def _credentials(user: str | None) -> Credentials | None:
    """``--user USER[:PASSWORD]``, as ctr takes it: without a password, ask for one (on the terminal,
    or read from stdin when there is none)."""
    if user is None:
        return None
    import getpass

    from pycontainerd._remotes import Credentials

    name, sep, password = user.partition(":")
    if not name:
        raise SystemExit("pyctr: --user takes USER[:PASSWORD], and USER must not be empty")
    if not sep:
        password = getpass.getpass("Password: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
    return Credentials(name, password)


def _insecure(args: Namespace, ref: str) -> tuple[str, ...]:
    if not args.plain_http:
        return ()
    from pycontainerd._remotes import Reference

    return (Reference.parse(ref).domain,)


# -- commands ----------------------------------------------------------------------------------------


def _images_pull(client: Client, args: Namespace) -> None:
    image = client.pull(
        args.ref,
        platform=args.platform,
        credentials=_credentials(args.user),
        insecure_hosts=_insecure(args, args.ref),
        progress=_ProgressPrinter(),
    )
    print(f"{image.name}: {image.target.digest}", file=sys.stderr)


def _images_push(client: Client, args: Namespace) -> None:
    desc = client.push(
        args.ref,
        source=args.local,
        credentials=_credentials(args.user),
        insecure_hosts=_insecure(args, args.ref),
        progress=_ProgressPrinter(),
    )
    print(f"{args.ref}: {desc.digest}", file=sys.stderr)


def _images_ls(client: Client, args: Namespace) -> None:
    from pycontainerd._images import format_platform

    images = client.images()
    if args.quiet:
        for image in images:
            print(image.name)
        return
    rows = [["REF", "TYPE", "DIGEST", "SIZE", "PLATFORMS", "LABELS"]]
    for image in images:
        platforms = ",".join(format_platform(p) for p in client.platforms(image)) or "-"
        rows.append(
            [
                image.name,
                image.target.media_type,
                image.target.digest,
                _size(client.size(image)),
                platforms,
                _labels(image.labels),
            ]
        )
    _table(rows)


def _images_rm(client: Client, args: Namespace) -> None:
    for name in args.refs:
        client.remove_image(name)
        print(name)


def _images_tag(client: Client, args: Namespace) -> None:
    print(client.tag(args.source, args.target).name)


def _images_inspect(client: Client, args: Namespace) -> None:
    image = client.image(args.ref)
    document = {
        "name": image.name,
        "target": {
            "mediaType": image.target.media_type,
            "digest": image.target.digest,
            "size": image.target.size,
        },
        "labels": image.labels,
        "createdAt": image.created_at.isoformat() if image.created_at else None,
        "updatedAt": image.updated_at.isoformat() if image.updated_at else None,
        "size": client.size(image),
        "platforms": [p.to_json() for p in client.platforms(image)],
    }
    print(json.dumps(document, indent=2))


def _images_import(client: Client, args: Namespace) -> None:
    with open(args.input, "rb") as stream:
        for image in client.import_archive(stream, base_name=args.base_name, index_name=args.index_name):
            print(f"{image.name}: {image.target.digest}")


def _images_export(client: Client, args: Namespace) -> None:
    with open(args.output, "wb") as stream:
        client.export(stream, args.refs, platform=args.platform)


def _content_ls(client: Client, args: Namespace) -> None:
    rows = [["DIGEST", "SIZE", "AGE", "LABELS"]]
    now = datetime.datetime.now(tz=datetime.UTC)
    for record in client.metadata.content.list(client.namespace):
        age = "-"
        if record.created_at is not None:
            age = f"{int((now - record.created_at).total_seconds())}s"
        rows.append([record.digest, _size(record.size), age, _labels(record.labels)])
    _table(rows)


def _snapshots_ls(client: Client, args: Namespace) -> None:
    rows = [["KEY", "PARENT", "KIND"]]
    for info in client.snapshots(args.snapshotter):
        rows.append([info.name, info.parent or "", info.kind.value.capitalize()])
    _table(rows)


def _snapshots_rm(client: Client, args: Namespace) -> None:
    for key in args.keys:
        client.remove_snapshot(key, args.snapshotter)


def _leases_ls(client: Client, args: Namespace) -> None:
    rows = [["ID", "CREATED AT", "LABELS"]]
    for lease in client.metadata.leases.list(client.namespace):
        created = lease.created_at.isoformat() if lease.created_at else "-"
        rows.append([lease.id, created, _labels(lease.labels)])
    _table(rows)


def _gc(client: Client, args: Namespace) -> None:
    result = client.gc()
    print(
        f"deleted {len(result.deleted_blobs)} blobs ({result.bytes_freed} bytes), "
        f"{len(result.removed_snapshots)} snapshots, {len(result.deleted_leases)} expired leases, "
        f"{len(result.aborted_ingests)} ingests, {len(result.deleted_tasks)} abandoned tasks"
    )
    for error in result.errors:
        print(f"pyctr: gc: {error}", file=sys.stderr)


# -- parser ------------------------------------------------------------------------------------------

Command = Callable[["Client", Namespace], "int | None"]


def command(
    sub: Subparsers,
    name: str,
    func: Command,
    help: str,
    aliases: Sequence[str] = (),
    prepare: Callable[[Namespace], Callable[[], None]] | None = None,
) -> Parser:
    """Add the subcommand ``name`` running ``func`` to ``sub``; ``prepare(args)``, if given, runs
    before the client is loaded (and may add to ``args``), and what it returns after ``func``,
    whatever happened meanwhile."""
    p = sub.add_parser(name, help=help, aliases=list(aliases))
    p.set_defaults(func=func, prepare=prepare)
    return p


def _images_group(groups: Subparsers) -> None:
    images = groups.add_parser("images", aliases=["image", "i"], help="manage images")
    isub = images.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, func in (("pull", _images_pull), ("push", _images_push)):
        p = command(isub, name, func, help=f"{name} an image")
        p.add_argument("--plain-http", action="store_true", help="use plain HTTP for this registry")
        p.add_argument("--user", "-u", help="USER[:PASSWORD] for the registry (no password: asked for)")
        p.add_argument("ref")
        if name == "pull":
            p.add_argument("--platform", help="os/arch[/variant] (default: the host's)")
        else:
            p.add_argument("local", nargs="?", help="the local image to push (default: REF)")
    p = command(isub, "ls", _images_ls, help="list images")
    p.add_argument("--quiet", "-q", action="store_true", help="names only")
    p = command(isub, "rm", _images_rm, help="remove images")
    p.add_argument("refs", nargs="+")
    p = command(isub, "tag", _images_tag, help="name SRC's image DST too")
    p.add_argument("source")
    p.add_argument("target")
    p = command(isub, "inspect", _images_inspect, help="an image's record as JSON")
    p.add_argument("ref")
    p = command(isub, "import", _images_import, help="import an OCI layout tar or docker-archive")
    p.add_argument("--base-name", help="name images the archive names by tag alone BASE:TAG")
    p.add_argument("--index-name", help="keep the archive's index as an image of this name too")
    p.add_argument("input")
    p = command(isub, "export", _images_export, help="export images as an OCI layout + docker-archive")
    p.add_argument("--platform", help="only this platform's manifest")
    p.add_argument("output")
    p.add_argument("refs", nargs="+")


def _content_group(groups: Subparsers) -> None:
    content = groups.add_parser("content", help="inspect content")
    csub = content.add_subparsers(dest="command", required=True, metavar="COMMAND")
    command(csub, "ls", _content_ls, help="list the namespace's blobs")


def _snapshots_group(groups: Subparsers) -> None:
    snapshots = groups.add_parser("snapshots", aliases=["snapshot"], help="manage snapshots")
    ssub = snapshots.add_subparsers(dest="command", required=True, metavar="COMMAND")
    command(ssub, "ls", _snapshots_ls, help="list snapshots")
    p = command(ssub, "rm", _snapshots_rm, help="remove snapshots")
    p.add_argument("keys", nargs="+")


def _leases_group(groups: Subparsers) -> None:
    leases = groups.add_parser("leases", help="inspect leases")
    lsub = leases.add_subparsers(dest="command", required=True, metavar="COMMAND")
    command(lsub, "ls", _leases_ls, help="list leases")


def _gc_group(groups: Subparsers) -> None:
    groups.add_parser("gc", help="collect what nothing references").set_defaults(func=_gc)


def _task_group(name: str) -> Callable[[Subparsers], None]:
    """A group of pycontainerd._cli_tasks, which is imported only when the group is built."""

    def build(groups: Subparsers) -> None:
        from pycontainerd import _cli_tasks

        getattr(_cli_tasks, name)(groups)

    return build


#: Each command group's names (aliases included) and the function adding it to the parser, in help order.
_GROUPS: tuple[tuple[tuple[str, ...], Callable[[Subparsers], None]], ...] = (
    (("images", "image", "i"), _images_group),
    (("content",), _content_group),
    (("snapshots", "snapshot"), _snapshots_group),
    (("leases",), _leases_group),
    (("gc",), _gc_group),
    (("run",), _task_group("run_group")),
    (("containers", "container", "c"), _task_group("containers_group")),
    (("tasks", "task", "t"), _task_group("tasks_group")),
    (("events",), _task_group("events_group")),
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


def _parser(argv: Sequence[str] | None = None) -> Parser:
    """pyctr's parser; with ``argv``, only the command group it names is declared (its module is
    imported only then; and when argparse has to judge the line, it builds a parser per declared
    subcommand: all forty took ~10 ms)."""
    from pycontainerd._defaults import DEFAULT_ROOT, DEFAULT_STATE

    parser = Parser(prog="pyctr", description="containerd's ctr, for pycontainerd")
    parser.add_argument("--root", default=DEFAULT_ROOT, help="store root (default %(default)s)")
    parser.add_argument("--state", default=DEFAULT_STATE, help="state directory (default %(default)s)")
    parser.add_argument("--namespace", "-n", default="default", help="namespace (default %(default)s)")
    parser.add_argument("--snapshotter", default="overlayfs", help="snapshotter (default %(default)s)")
    parser.add_argument(
        "--min-free",
        help="percent of the store filesystem's blocks and inodes pulls and imports leave free (default 5%%)",
    )
    parser.set_defaults(prepare=None)
    groups = parser.add_subparsers(dest="group", required=True, metavar="COMMAND")
    chosen = None if argv is None else _chosen_group(argv)
    known = any(chosen in names for names, _ in _GROUPS)
    for names, build in _GROUPS:
        if not known or chosen in names:
            build(groups)
    return parser


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
    args = _parser(argv).parse_args(argv)
    finish = None
    try:
        # Before the client is loaded (run forks its monitor's process here).
        finish = args.prepare(args) if args.prepare is not None else None
        from pycontainerd._client import Client

        gc.enable()  # the pyctr launcher turns the collector off while modules load (see scripts/pyctr)
        with _client(Client, args) as client:
            code = args.func(client, args)
        return code or 0
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if not _expected(exc):
            raise
        print(f"pyctr: {_describe(exc)}", file=sys.stderr)
        return 1
    finally:
        if finish is not None:
            finish()


def _client(client: type[Client], args: Namespace) -> Client:
    """The client ``args`` open: ``--min-free`` is a percentage (``5``, ``2.5%``)."""
    if args.min_free is None:
        return client(args.root, args.state, args.namespace, args.snapshotter)
    try:
        percent = float(args.min_free.strip().removesuffix("%"))
    except ValueError:
        percent = -1.0
    if not 0 <= percent < 100:  # NaN too
        raise ValueError(f"--min-free {args.min_free!r}: a percentage from 0 to below 100")
    return client(args.root, args.state, args.namespace, args.snapshotter, min_free=percent / 100)


def _expected(exc: Exception) -> bool:
    """Whether ``exc`` is a failure to report in one line rather than a bug: pycontainerd's errors
    (the layers below it are translated into them), a bad value, the system's refusal (OSError),
    and the stores' sqlite errors (a root that is not writable, a corrupt database)."""
    import sqlite3

    from pycontainerd._errors import PycontainerdError

    return isinstance(exc, PycontainerdError | ValueError | OSError | sqlite3.Error)


def run() -> None:
    """The ``pyctr`` command: :func:`main`, then leave without tearing the interpreter down (module
    and object finalisation cost ~10 ms of every command, which has closed what it opened by then)."""
    code = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:
        code = code or 1
    import posix

    posix._exit(code)


if __name__ == "__main__":
    run()
