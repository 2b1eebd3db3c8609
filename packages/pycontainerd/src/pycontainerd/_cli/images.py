"""``pyctr images``, ``content``, ``snapshots``, ``leases`` and ``gc``: the store half of ``ctr``.

Arguments come in ctr's order (``images push REF``, ``images tag SRC DST``, ``images export OUT REF…``).
"""

from __future__ import annotations

import datetime
import json
import sys

from pycontainerd._cli.common import command, labels, size, table
from pycontainerd._images import format_platform
from pycontainerd._remotes import Credentials

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pycontainerd._cli.parse import Namespace, Subparsers
    from pycontainerd._client import Client
    from pycontainerd._remotes import Progress

__all__ = ["content_group", "gc_group", "images_group", "leases_group", "snapshots_group"]


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

    name, sep, password = user.partition(":")
    if not name:
        raise SystemExit("pyctr: --user takes USER[:PASSWORD], and USER must not be empty")
    if not sep:
        password = getpass.getpass("Password: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
    return Credentials(name, password)


def _insecure(args: Namespace, ref: str) -> tuple[str, ...]:
    if not args.plain_http:
        return ()
    from pycontainerd._remotes.reference import Reference

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
                size(client.size(image)),
                platforms,
                labels(image.labels),
            ]
        )
    table(rows)


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
        rows.append([record.digest, size(record.size), age, labels(record.labels)])
    table(rows)


def _snapshots_ls(client: Client, args: Namespace) -> None:
    rows = [["KEY", "PARENT", "KIND"]]
    for info in client.snapshots(args.snapshotter):
        rows.append([info.name, info.parent or "", info.kind.value.capitalize()])
    table(rows)


def _snapshots_rm(client: Client, args: Namespace) -> None:
    for key in args.keys:
        client.remove_snapshot(key, args.snapshotter)


def _leases_ls(client: Client, args: Namespace) -> None:
    rows = [["ID", "CREATED AT", "LABELS"]]
    for lease in client.metadata.leases.list(client.namespace):
        created = lease.created_at.isoformat() if lease.created_at else "-"
        rows.append([lease.id, created, labels(lease.labels)])
    table(rows)


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


def images_group(groups: Subparsers) -> None:
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


def content_group(groups: Subparsers) -> None:
    content = groups.add_parser("content", help="inspect content")
    csub = content.add_subparsers(dest="command", required=True, metavar="COMMAND")
    command(csub, "ls", _content_ls, help="list the namespace's blobs")


def snapshots_group(groups: Subparsers) -> None:
    snapshots = groups.add_parser("snapshots", aliases=["snapshot"], help="manage snapshots")
    ssub = snapshots.add_subparsers(dest="command", required=True, metavar="COMMAND")
    command(ssub, "ls", _snapshots_ls, help="list snapshots")
    p = command(ssub, "rm", _snapshots_rm, help="remove snapshots")
    p.add_argument("keys", nargs="+")


def leases_group(groups: Subparsers) -> None:
    leases = groups.add_parser("leases", help="inspect leases")
    lsub = leases.add_subparsers(dest="command", required=True, metavar="COMMAND")
    command(lsub, "ls", _leases_ls, help="list leases")


def gc_group(groups: Subparsers) -> None:
    groups.add_parser("gc", help="collect what nothing references").set_defaults(func=_gc)
