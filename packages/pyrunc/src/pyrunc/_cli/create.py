"""The verbs that make a container: create, and run (create, start, wait, delete)."""

from __future__ import annotations

from pyrunc._cli.args import preserve_fds, root_dir
from pyrunc._errors import PyruncError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyrunc._cli.args import Args, Verb
    from pyrunc._container.options import CreateOptions

__all__ = ["VERBS"]


def create_options(a: Args) -> CreateOptions:
    """The options of ``create`` and ``run``."""
    from pyrunc._container.options import CreateOptions

    return CreateOptions(
        a.value("bundle") or ".",
        pid_file=a.value("pid_file"),
        console_socket=a.value("console_socket"),
        no_pivot=a.flag("no_pivot"),
        no_new_keyring=a.flag("no_new_keyring"),
        preserve_fds=preserve_fds(a),
    )


def cmd_create(g: Args, a: Args) -> int:
    from pyrunc._container.container import Container

    Container.create(a.container_id(), create_options(a), root=root_dir(g))
    return 0


def cmd_run(g: Args, a: Args) -> int:
    from pyrunc._container.container import Container

    if a.flag("keep"):
        raise PyruncError("--keep is not supported by pyrunc yet")
    return Container.run(a.container_id(), create_options(a), root=root_dir(g), detach=a.flag("detach"))


VERBS: dict[str, Verb] = {
    "create": (
        cmd_create,
        {
            "bundle,b": "value",
            "console-socket": "value",
            "pid-file": "value",
            "no-pivot": "flag",
            "no-new-keyring": "flag",
            "preserve-fds": "value",
        },
    ),
    "run": (
        cmd_run,
        {
            "bundle,b": "value",
            "console-socket": "value",
            "detach,d": "flag",
            "pid-file": "value",
            "no-subreaper": "flag",
            "no-pivot": "flag",
            "no-new-keyring": "flag",
            "preserve-fds": "value",
            "keep": "flag",
        },
    ),
}
