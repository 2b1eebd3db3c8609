"""``pyctr run``, ``containers``, ``tasks`` and ``events``: the running half of ``ctr``.

Argument order is ctr's: ``run [OPTIONS] IMAGE ID [CMD…]``, ``tasks exec --exec-id E ID CMD…``,
``tasks kill -s SIGNAL ID``; everything after ID is the container's command, verbatim. ``run`` without
``-d`` prints only the container's output and exits with its exit status.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys

from pycontainerd import oci
from pycontainerd._cli.common import command, table
from pycontainerd._cli.parse import REMAINDER
from pycontainerd._errors import InvalidArgumentError, PycontainerdError
from pycontainerd._events import parse_filter
from pycontainerd._monitor.runtime import pyrunc_launcher
from pycontainerd._stdlib import signal, start_new_thread
from pycontainerd._times import format_time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from typing import Any

    from pycontainerd._cli.parse import Namespace, Parser, Subparsers
    from pycontainerd._client import Client
    from pycontainerd._monitor import Attachment
    from pycontainerd._tasks import Task

__all__ = ["containers_group", "events_group", "run_group", "tasks_group"]

_STDIN_CHUNK = 1 << 16


def _signal_number(text: str) -> int:
    """``KILL``, ``SIGKILL`` or ``9`` as a signal number; SystemExit names a bad one."""
    if text.isdigit():
        return int(text)
    name = text.upper()
    name = name if name.startswith("SIG") else "SIG" + name
    from signal import Signals  # the names' enum, which only this command needs

    try:
        return int(Signals[name])
    except KeyError:
        raise SystemExit(f"pyctr: unknown signal {text!r}") from None


def _parse_mount(text: str) -> dict[str, Any]:
    """ctr's ``--mount type=bind,src=/a,dst=/b,options=rbind:ro`` as an OCI mount."""
    fields: dict[str, str] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep:
            raise SystemExit(f"pyctr: --mount {text!r}: {part!r} is not KEY=VALUE")
        fields[key] = value
    mount: dict[str, Any] = {"type": fields.pop("type", "bind")}
    for names, field in ((("src", "source"), "source"), (("dst", "destination", "target"), "destination")):
        for name in names:
            if name in fields:
                mount[field] = fields.pop(name)
    if "destination" not in mount:
        raise SystemExit(f"pyctr: --mount {text!r}: dst= is required")
    options = fields.pop("options", "")
    mount["options"] = [o for o in options.split(":") if o] or (["rbind"] if mount["type"] == "bind" else [])
    if fields:
        raise SystemExit(f"pyctr: --mount {text!r}: unknown field {next(iter(fields))!r}")
    return mount


def _spec_opts(args: Namespace) -> list[oci.SpecOpt]:
    opts: list[oci.SpecOpt] = []
    if args.privileged:
        opts.append(oci.with_privileged())
    if args.user:
        opts.append(oci.with_user(args.user))
    if args.cwd:
        opts.append(oci.with_cwd(args.cwd))
    if args.env:
        opts.append(oci.with_env(args.env))
    if args.mount:
        opts.append(oci.with_mounts([_parse_mount(m) for m in args.mount]))
    if args.memory_limit is not None:
        opts.append(oci.with_memory_limit(args.memory_limit))
    if args.hostname:
        opts.append(oci.with_hostname(args.hostname))
    if args.net_host:
        opts.append(oci.with_host_namespace("network"))
    if args.read_only:
        opts.append(oci.with_readonly_rootfs())
    if args.tty:
        opts.append(oci.with_tty())
    if args.command:
        opts.append(oci.with_args(args.command))
    return opts


def _parse_labels(pairs: Sequence[str]) -> dict[str, str]:
    labels = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        labels[key] = value
    return labels


# -- attaching ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def _raw_terminal() -> Iterator[None]:
    """The caller's terminal in raw mode (restored after), when stdin is one."""
    if not os.isatty(0):
        yield
        return
    import termios
    import tty

    saved = termios.tcgetattr(0)
    tty.setraw(0)
    try:
        yield
    finally:
        termios.tcsetattr(0, termios.TCSADRAIN, saved)


def _pump_stdin(attachment: Attachment) -> None:
    """Copy our stdin into the process until EOF, then close its stdin (a thread)."""
    try:
        while data := os.read(0, _STDIN_CHUNK):
            attachment.write_stdin(data)
        attachment.close_stdin()
    except (OSError, PycontainerdError):
        pass  # the process exited first: the attachment is closed, its input no longer wanted


def _print_frames(attachment: Attachment) -> int:
    """Write the process's output to ours until it exits; its exit status."""
    outputs = {1: sys.stdout.buffer, 2: sys.stderr.buffer}
    for stream, data in attachment.frames():
        out = outputs.get(stream, sys.stdout.buffer)
        out.write(data)
        out.flush()
    exit_status = attachment.exit
    return exit_status.status if exit_status is not None else 255


def _foreground(attachment: Attachment, *, tty: bool, resize: Callable[[int, int], None],
                kill: Callable[[int], None], start: Callable[[], None] | None = None) -> int:  # fmt: skip
    """Attached: stdin in, output out, window size and signals passed on; the exit status. ``start``
    (a created task's) is called once the terminal has our window's size and signals are passed on."""
    start_new_thread(_pump_stdin, (attachment,))
    if tty:
        if os.isatty(1):

            def on_winch(_signum: int, _frame: object) -> None:
                size = os.get_terminal_size(1)
                with contextlib.suppress(Exception):
                    resize(size.lines, size.columns)

            signal.signal(signal.SIGWINCH, on_winch)
            on_winch(signal.SIGWINCH, None)
        with _raw_terminal():
            if start is not None:
                start()
            return _print_frames(attachment)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):

        def forward(signum: int, _frame: object) -> None:
            with contextlib.suppress(Exception):
                kill(signum)

        signal.signal(sig, forward)
    if start is not None:
        start()
    return _print_frames(attachment)


# -- commands ----------------------------------------------------------------------------------------


def _start_detached(task: Task) -> None:
    """Start ``task``, or delete it if that fails: left created, it would wait for a start nobody
    makes."""
    try:
        task.start()
    except BaseException as exc:
        try:
            task.delete(force=True)
        except (PycontainerdError, OSError) as cleanup:
            exc.add_note(f"and deleting the task failed: {cleanup}")
        raise


def _run(client: Client, args: Namespace) -> int:
    if args.detach and args.rm:  # as ctr: a detached container outlives run, so run cannot remove it
        raise InvalidArgumentError("--detach and --rm cannot be used together")
    # The monitor's process is forked first (pyctr has one thread: a fork is safe), and loads pyrunc's
    # create machinery on the other CPU while this process makes the container.
    launcher = pyrunc_launcher()
    try:
        container = client.containers.create(
            args.id, args.image, *_spec_opts(args), labels=_parse_labels(args.label)
        )
        try:
            task = client.tasks.create(container.id, stdin=not args.detach, launcher=launcher)
        except BaseException:
            if args.rm:
                client.containers.delete(container.id)
            raise
    finally:
        launcher.close()
    if args.detach:
        _start_detached(task)
        return 0
    try:
        with task.attach(stdin=True) as attachment:
            code = _foreground(attachment, tty=args.tty, resize=task.resize, kill=task.kill, start=task.start)
        task.wait()
    finally:
        task.delete(force=True)
        if args.rm:
            client.containers.delete(container.id)
    return code


def _containers_create(client: Client, args: Namespace) -> None:
    client.containers.create(args.id, args.image, *_spec_opts(args), labels=_parse_labels(args.label))


def _containers_ls(client: Client, args: Namespace) -> None:
    containers = client.containers.list()
    if args.quiet:
        for c in containers:
            print(c.id)
        return
    table([("CONTAINER", "IMAGE", "RUNTIME"), *((c.id, c.image, c.runtime) for c in containers)])


def _containers_info(client: Client, args: Namespace) -> None:
    c = client.containers.get(args.id)
    info = {
        "ID": c.id,
        "Labels": c.labels,
        "Image": c.image,
        "Runtime": {"Name": c.runtime},
        "Snapshotter": c.snapshotter,
        "SnapshotKey": c.snapshot_key,
        "CreatedAt": c.created_at.isoformat() if c.created_at else None,
        "UpdatedAt": c.updated_at.isoformat() if c.updated_at else None,
        "Spec": c.spec,
    }
    print(json.dumps(info, indent=4))


def _containers_rm(client: Client, args: Namespace) -> int:
    code = 0
    for container_id in args.ids:
        try:
            client.containers.delete(container_id, force=args.force)
        except PycontainerdError as exc:
            print(f"pyctr: {exc}", file=sys.stderr)
            code = 1
    return code


def _tasks_ls(client: Client, args: Namespace) -> None:
    tasks = client.tasks.list()
    if args.quiet:
        for t in tasks:
            print(t.id)
        return
    rows = [("TASK", "PID", "STATUS", "EXIT")]
    for t in tasks:
        status = t.exit_status()
        rows.append((t.id, str(t.pid), t.status().value, "-" if status is None else str(status.status)))
    table(rows)


def _tasks_start(client: Client, args: Namespace) -> int:
    container = client.containers.get(args.id)
    task = client.tasks.create(container.id, stdin=not args.detach)
    if args.detach:
        _start_detached(task)
        return 0
    tty = bool(container.spec.get("process", {}).get("terminal"))
    with task.attach(stdin=True) as attachment:
        code = _foreground(attachment, tty=tty, resize=task.resize, kill=task.kill, start=task.start)
    task.delete(force=True)
    return code


def _tasks_attach(client: Client, args: Namespace) -> int:
    task = client.tasks.get(args.id)
    container = client.containers.get(args.id)
    tty = bool(container.spec.get("process", {}).get("terminal"))
    with task.attach(stdin=True) as attachment:
        return _foreground(attachment, tty=tty, resize=task.resize, kill=task.kill)


def _tasks_kill(client: Client, args: Namespace) -> None:
    sig = _signal_number(args.signal)  # a bad signal is reported before the task is looked up
    client.tasks.get(args.id).kill(sig, all=args.all)


def _tasks_delete(client: Client, args: Namespace) -> None:
    for task_id in args.ids:
        client.tasks.get(task_id).delete(force=args.force)


def _tasks_exec(client: Client, args: Namespace) -> int:
    task = client.tasks.get(args.id)
    process = task.exec(
        args.exec_id, args.command, tty=args.tty, stdin=not args.detach, env=args.env or None,
        cwd=args.cwd, attach=not args.detach,
    )  # fmt: skip
    if process.attachment is None:
        return 0
    with process.attachment as attachment:
        return _foreground(attachment, tty=args.tty, resize=process.resize, kill=process.kill)


def _tasks_ps(client: Client, args: Namespace) -> None:
    table([("PID", "INFO"), *((str(pid), "-") for pid in client.tasks.get(args.id).processes())])


def _tasks_pause(client: Client, args: Namespace) -> None:
    client.tasks.get(args.id).pause()


def _tasks_resume(client: Client, args: Namespace) -> None:
    client.tasks.get(args.id).resume()


def _tasks_metrics(client: Client, args: Namespace) -> None:
    print(json.dumps(client.tasks.get(args.id).metrics().to_json(), indent=4, sort_keys=True))


def _tasks_logs(client: Client, args: Namespace) -> None:
    outputs = {1: sys.stdout.buffer, 2: sys.stderr.buffer}
    for stream, data in client.tasks.get(args.id).logs(follow=args.follow):
        out = outputs.get(stream, sys.stdout.buffer)
        out.write(data)
        out.flush()


def _events(client: Client, args: Namespace) -> None:
    for text in args.filters:
        parse_filter(text)  # a bad filter fails before anything is printed
    with contextlib.suppress(KeyboardInterrupt):
        for event in client.events.follow(*args.filters):
            print(f"{format_time(event.timestamp)} {event.namespace} {event.topic} "
                  f"{json.dumps(event.fields, sort_keys=True)}", flush=True)  # fmt: skip


# -- parser ------------------------------------------------------------------------------------------


def _spec_arguments(p: Parser) -> None:
    p.add_argument("--tty", "-t", action="store_true", help="allocate a terminal")
    p.add_argument(
        "--env", action="append", default=[], metavar="KEY=VALUE", help="set an environment variable"
    )
    p.add_argument("--mount", action="append", default=[], help="type=bind,src=/a,dst=/b,options=rbind:ro")
    p.add_argument("--memory-limit", type=int, metavar="BYTES", help="memory limit in bytes")
    p.add_argument("--privileged", action="store_true", help="all capabilities, no seccomp, no masks")
    p.add_argument("--user", "-u", help="USER[:GROUP], names resolved in the image")
    p.add_argument("--cwd", help="working directory in the container")
    p.add_argument("--hostname", help="the container's hostname")
    p.add_argument("--net-host", action="store_true", help="share the host's network namespace")
    p.add_argument("--read-only", action="store_true", help="read-only root filesystem")
    p.add_argument("--label", action="append", default=[], metavar="KEY=VALUE", help="container label")
    p.add_argument("image")
    p.add_argument("id")
    p.add_argument("command", nargs=REMAINDER, help="the command and its arguments, verbatim")


def run_group(groups: Subparsers) -> None:
    p = command(groups, "run", _run, help="run a container")
    p.add_argument("--rm", action="store_true", help="remove the container when it exits")
    p.add_argument("--detach", "-d", action="store_true", help="start it and return")
    _spec_arguments(p)


def containers_group(groups: Subparsers) -> None:
    containers = groups.add_parser("containers", aliases=["container", "c"], help="manage containers")
    csub = containers.add_subparsers(dest="command_name", required=True, metavar="COMMAND")
    _spec_arguments(command(csub, "create", _containers_create, help="create a container"))
    p = command(csub, "ls", _containers_ls, help="list containers", aliases=["list"])
    p.add_argument("--quiet", "-q", action="store_true", help="ids only")
    p = command(csub, "info", _containers_info, help="a container's record as JSON")
    p.add_argument("id")
    p = command(
        csub, "rm", _containers_rm, help="remove containers (and their stopped tasks)", aliases=["delete"]
    )
    p.add_argument("--force", "-f", action="store_true", help="kill and remove a running task too")
    p.add_argument("ids", nargs="+")


def tasks_group(groups: Subparsers) -> None:
    tasks = groups.add_parser("tasks", aliases=["task", "t"], help="manage tasks")
    tsub = tasks.add_subparsers(dest="command_name", required=True, metavar="COMMAND")
    p = command(tsub, "ls", _tasks_ls, help="list tasks", aliases=["list"])
    p.add_argument("--quiet", "-q", action="store_true", help="ids only")
    p = command(tsub, "start", _tasks_start, help="start a container's task")
    p.add_argument("--detach", "-d", action="store_true", help="start it and return")
    p.add_argument("id")
    p = command(tsub, "attach", _tasks_attach, help="attach to a task's input and output")
    p.add_argument("id")
    p = command(tsub, "kill", _tasks_kill, help="signal a task")
    p.add_argument("--signal", "-s", default="SIGTERM", help="signal name or number (default SIGTERM)")
    p.add_argument("--all", "-a", action="store_true", help="every process of the task")
    p.add_argument("id")
    p = command(tsub, "rm", _tasks_delete, help="delete stopped tasks", aliases=["delete"])
    p.add_argument("--force", "-f", action="store_true", help="kill a running task first")
    p.add_argument("ids", nargs="+")
    p = command(tsub, "exec", _tasks_exec, help="run another process in a task")
    p.add_argument("--exec-id", required=True, help="the process's id in the task")
    p.add_argument("--tty", "-t", action="store_true", help="allocate a terminal")
    p.add_argument("--detach", "-d", action="store_true", help="start it and return")
    p.add_argument("--env", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--cwd", help="working directory")
    p.add_argument("id")
    p.add_argument("command", nargs=REMAINDER)
    for name, func, text in (
        ("ps", _tasks_ps, "a task's processes"),
        ("pause", _tasks_pause, "freeze a task"),
        ("resume", _tasks_resume, "thaw a task"),
        ("metrics", _tasks_metrics, "a task's cgroup counters as JSON"),
    ):
        command(tsub, name, func, help=text).add_argument("id")
    p = command(tsub, "logs", _tasks_logs, help="a task's kept output")
    p.add_argument("--follow", "-f", action="store_true", help="keep printing until it exits")
    p.add_argument("id")


def events_group(groups: Subparsers) -> None:
    p = command(groups, "events", _events, help="print events as they happen")
    p.add_argument("filters", nargs="*", help='containerd filters, e.g. topic=="/tasks/exit"')
