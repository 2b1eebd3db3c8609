"""What pyctr's commands share: the subcommand declaration and the formats of their output."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from pycontainerd._cli.parse import Namespace, Parser, Subparsers
    from pycontainerd._client import Client

__all__ = ["command", "labels", "size", "table"]


def command(
    sub: Subparsers,
    name: str,
    func: Callable[[Client, Namespace], int | None],
    help: str,
    aliases: Sequence[str] = (),
) -> Parser:
    """Add the subcommand ``name`` running ``func`` to ``sub``: ``func`` gets the opened client and the
    parsed arguments, and may return an exit status."""
    p = sub.add_parser(name, help=help, aliases=list(aliases))
    p.set_defaults(func=func)
    return p


def table(rows: Sequence[Sequence[str]]) -> None:
    """Print ``rows`` (the header first) in columns as wide as their widest cell."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=False)]
        print("  ".join([*cells, row[-1]]).rstrip())


def size(n: int) -> str:
    """Bytes as ctr prints them: ``512 B``, ``1.5 KiB``, ..."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.1f} {unit}" if unit != "B" else f"{n} B"
        value /= 1024
    raise AssertionError("unreachable")


def labels(values: dict[str, str]) -> str:
    """``k=v,k2=v2``, sorted; ``-`` for none."""
    return ",".join(f"{k}={v}" for k, v in sorted(values.items())) or "-"
