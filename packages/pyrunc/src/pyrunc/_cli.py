"""The ``pyrunc`` command: runc's command line, verb for verb and flag for flag.

Each verb is a few lines: parse, call :class:`pyrunc.Container`, print. The parser is a small
table-driven one rather than argparse, which alone costs more start-up time than runc's
whole ``run`` (the shim calls us three times per container).
"""

from __future__ import annotations

import os
import sys

from pyrunc import _jsonio as json
from pyrunc._errors import PyruncError, SpecError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal
    from collections.abc import Callable, Sequence

    from pyrunc._container import Container
else:
    import _signal as signal  # the signal module imports enum: ~10 ms of start-up

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
_VERBS: dict[str, tuple[str, dict[str, str]]] = {
    "create": (
        "create a container",
        {
            "bundle,b": "value",
            "console-socket": "value",
            "pid-file": "value",
            "no-pivot": "flag",
            "no-new-keyring": "flag",
            "preserve-fds": "value",
        },
    ),
    "start": ("executes the user defined process in a created container", {}),
    "run": (
        "create and run a container",
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
    "kill": (
        "kill sends the specified signal (default: SIGTERM) to the container's init process",
        {"all,a": "flag"},
    ),
    "delete": (
        "delete any resources held by the container often used with detached container",
        {"force,f": "flag"},
    ),
    "state": ("output the state of a container", {}),
    "list": (
        "lists containers started by pyrunc with the given root",
        {"format,f": "value", "quiet,q": "flag"},
    ),
    "ps": ("ps displays the processes running inside a container", {"format,f": "value"}),
    "exec": (
        "execute new process inside the container",
        {
            "console-socket": "value",
            "cwd": "value",
            "env,e": "list",
            "tty,t": "flag",
            "user,u": "value",
            "additional-gids,g": "list",
            "process,p": "value",
            "detach,d": "flag",
            "pid-file": "value",
            "process-label": "value",
            "apparmor": "value",
            "no-new-privs": "flag",
            "cap,c": "list",
            "preserve-fds": "value",
            "cgroup": "list",
            "ignore-paused": "flag",
        },
    ),
    "events": (
        "display container events such as OOM notifications, CPU, memory, and IO usage statistics",
        {"stats": "flag", "interval": "value"},
    ),
    "pause": ("pause suspends all processes inside the container", {}),
    "resume": ("resumes all processes that have been previously paused", {}),
    "update": (
        "update container resource constraints",
        {
            "resources,r": "value",
            "memory": "value",
            "memory-reservation": "value",
            "memory-swap": "value",
            "cpu-period": "value",
            "cpu-quota": "value",
            "cpu-share": "value",
            "cpuset-cpus": "value",
            "cpuset-mems": "value",
            "pids-limit": "value",
            "blkio-weight": "value",
        },
    ),
    "spec": (
        "create a new specification file",
        {"bundle,b": "value", "rootless": "flag", "seccomp": "value"},
    ),
    "features": ("show the enabled features", {}),
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


def _parse_signal(text: str) -> int:
    if text.isdigit():
        return int(text)
    name = text.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    number = getattr(signal, name, None)
    if not isinstance(number, int) or name.startswith("SIG_"):
        raise UsageError(f"unknown signal {text!r}")
    return number


class Logger:
    """runc's --log/--log-format: JSON lines or logfmt-style text, appended to a file."""

    def __init__(self, path: str | None, fmt: str, debug: bool) -> None:
        self.path = path
        self.fmt = fmt
        self.debug_enabled = debug

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


def _root(g: Args) -> str:
    from pyrunc._container import DEFAULT_ROOT

    return g.value("root") or DEFAULT_ROOT


def _preserve_fds(a: Args) -> int:
    text = a.value("preserve_fds", "0") or "0"
    if not text.isdigit():
        raise UsageError(f"invalid --preserve-fds value {text!r}")
    return int(text)


def cmd_create(g: Args, a: Args) -> int:
    from pyrunc._container import Container

    Container.create(
        a.container_id(),
        a.value("bundle") or ".",
        root=_root(g),
        pid_file=a.value("pid_file"),
        no_pivot=a.flag("no_pivot"),
        no_new_keyring=a.flag("no_new_keyring"),
        preserve_fds=_preserve_fds(a),
        console_socket=a.value("console_socket"),
    )
    return 0


def cmd_run(g: Args, a: Args) -> int:
    from pyrunc._container import Container

    if a.flag("keep"):
        raise PyruncError("--keep is not supported by pyrunc yet")
    return Container.run(
        a.container_id(),
        a.value("bundle") or ".",
        root=_root(g),
        pid_file=a.value("pid_file"),
        no_pivot=a.flag("no_pivot"),
        no_new_keyring=a.flag("no_new_keyring"),
        preserve_fds=_preserve_fds(a),
        detach=a.flag("detach"),
        console_socket=a.value("console_socket"),
    )


def _load(g: Args, a: Args) -> Container:
    from pyrunc._container import Container

    return Container.load(a.container_id(), _root(g))


def cmd_start(g: Args, a: Args) -> int:
    _load(g, a).start()
    return 0


def cmd_kill(g: Args, a: Args) -> int:
    sig = _parse_signal(a.positional[1]) if len(a.positional) > 1 else int(signal.SIGTERM)
    _load(g, a).kill(sig, all=a.flag("all"))
    return 0


def cmd_delete(g: Args, a: Args) -> int:
    from pyrunc._errors import ContainerNotFoundError

    try:
        container = _load(g, a)
    except ContainerNotFoundError:
        if a.flag("force"):
            return 0
        raise
    container.delete(force=a.flag("force"))
    return 0


def cmd_state(g: Args, a: Args) -> int:
    print(json.dumps(_load(g, a).state().to_json(), indent=2))
    return 0


def cmd_pause(g: Args, a: Args) -> int:
    _load(g, a).pause()
    return 0


def cmd_resume(g: Args, a: Args) -> int:
    _load(g, a).resume()
    return 0


def cmd_list(g: Args, a: Args) -> int:
    from pyrunc._container import Container

    states = [c.state() for c in Container.all(_root(g))]
    fmt = a.value("format", "table")
    if a.flag("quiet"):
        for st in states:
            print(st.id)
    elif fmt == "json":
        print(json.dumps([st.to_json() for st in states]))
    elif fmt == "table":
        rows = [("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")]
        rows += [(s.id, str(s.pid), s.status, s.bundle, s.created, "root") for s in states]
        _print_table(rows)
    else:
        raise UsageError(f"invalid format option {fmt!r}")
    return 0


def _print_table(rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("   ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def cmd_ps(g: Args, a: Args) -> int:
    pids = _load(g, a).processes()
    fmt = a.value("format", "table")
    if fmt == "json":
        print(json.dumps(pids))
    elif fmt == "table":
        rows = [("UID", "PID", "PPID", "CMD")]
        for pid in pids:
            try:
                with open(f"/proc/{pid}/status") as f:
                    status = dict(line.split(":", 1) for line in f if ":" in line)
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmd = f.read().rstrip(b"\0").replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            uid = status.get("Uid", "").split()[0] if status.get("Uid") else "?"
            rows.append((uid, str(pid), status.get("PPid", "?").strip(), cmd))
        _print_table(rows)
    else:
        raise UsageError(f"invalid format option {fmt!r}")
    return 0


def _read_json(source: str, field: str) -> object:
    """The JSON document in file ``source`` (``-``: standard input); errors name ``field``."""
    with sys.stdin if source == "-" else open(source) as f:
        try:
            return json.loads(f.read())
        except ValueError as exc:
            raise SpecError(field, f"{source}: invalid JSON: {exc}") from None


def cmd_exec(g: Args, a: Args) -> int:
    from pyrunc._spec import Capabilities, Process

    container = _load(g, a)
    for unsupported in ("process_label", "apparmor", "cgroup"):
        if a.opts.get(unsupported):
            raise PyruncError(f"--{unsupported.replace('_', '-')} is not supported by pyrunc yet")
    process_file = a.value("process")
    if process_file:
        process = Process.from_json(_read_json(process_file, "process"), "process")
    else:
        if len(a.positional) < 2:
            raise UsageError("exec needs a command or --process")
        process = container.saved_process()
        process.args = a.positional[1:]
        process.terminal = a.flag("tty")
        process.env = process.env + a.values("env")
        if a.value("cwd"):
            process.cwd = a.value("cwd") or "/"
        user = a.value("user")
        if user:
            uid, _, gid = user.partition(":")
            if not uid.isdigit() or (gid and not gid.isdigit()):
                raise UsageError(f"--user takes uid[:gid] as numbers, got {user!r}")
            process.user.uid = int(uid)
            process.user.gid = int(gid) if gid else 0
        if a.values("additional_gids"):
            process.user.additional_gids = [int(x) for x in a.values("additional_gids")]
        if a.values("cap"):
            caps = process.capabilities or Capabilities()
            for cap in a.values("cap"):
                for set_name in ("bounding", "effective", "permitted", "ambient"):
                    current = getattr(caps, set_name)
                    if cap not in current:
                        current.append(cap)
            process.capabilities = caps
        if a.flag("no_new_privs"):
            process.no_new_privileges = True
    status = container.exec(
        process,
        detach=a.flag("detach"),
        pid_file=a.value("pid_file"),
        preserve_fds=_preserve_fds(a),
        console_socket=a.value("console_socket"),
    )
    return 0 if a.flag("detach") else status


def cmd_events(g: Args, a: Args) -> int:
    """``events --stats``: one stats record in runc's JSON shape (the event stream is not
    implemented: without --stats this is refused)."""
    if not a.flag("stats"):
        raise PyruncError("events: only --stats is supported by pyrunc yet")
    container = _load(g, a)
    st = container.stats()
    memory, cpu, pids = st.memory, st.cpu, st.pids
    data = {
        "cpu": {
            "usage": {"total": cpu.usage_total, "user": cpu.usage_user, "kernel": cpu.usage_kernel},
            "throttling": {
                "periods": cpu.nr_periods,
                "throttledPeriods": cpu.nr_throttled,
                "throttledTime": cpu.throttled_time,
            },
        },
        "memory": {
            "usage": {
                "usage": memory.usage,
                "max": memory.max_usage,
                "limit": memory.limit,
                "failcnt": memory.failcnt,
            },
            "oomKills": memory.oom_kill,
        },
        "pids": {"current": pids.current, "limit": pids.limit},
        "blkio": {"readBytes": st.blkio.read_bytes, "writeBytes": st.blkio.write_bytes},
    }
    print(json.dumps({"type": "stats", "id": container.id, "data": data}))
    return 0


def cmd_update(g: Args, a: Args) -> int:
    from pyrunc._spec import Resources

    container = _load(g, a)
    source = a.value("resources")
    if source:
        resources = Resources.from_json(_read_json(source, "resources"), "resources")
    else:
        raw_flags: dict[str, dict[str, object]] = {}
        mapping = {
            "memory": ("memory", "limit"),
            "memory_reservation": ("memory", "reservation"),
            "memory_swap": ("memory", "swap"),
            "cpu_period": ("cpu", "period"),
            "cpu_quota": ("cpu", "quota"),
            "cpu_share": ("cpu", "shares"),
            "cpuset_cpus": ("cpu", "cpus"),
            "cpuset_mems": ("cpu", "mems"),
            "pids_limit": ("pids", "limit"),
            "blkio_weight": ("blockIO", "weight"),
        }
        for opt, (group, key) in mapping.items():
            text = a.value(opt)
            if text is None:
                continue
            value: object = text if key in ("cpus", "mems") else _parse_size(text, opt)
            raw_flags.setdefault(group, {})[key] = value
        resources = Resources.from_json(raw_flags, "resources")
    container.update(resources)
    return 0


def _parse_size(text: str, opt: str) -> int:
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
    t = text.strip().lower().removesuffix("b")
    factor = 1
    if t and t[-1] in units:
        factor = units[t[-1]]
        t = t[:-1]
    try:
        return int(t) * factor
    except ValueError:
        raise UsageError(f"--{opt.replace('_', '-')}: invalid value {text!r}") from None


def cmd_spec(g: Args, a: Args) -> int:
    from pyrunc._spec import default_spec

    if a.flag("rootless"):
        raise PyruncError("--rootless: rootless mode (run by a non-root user) is not supported by pyrunc yet")
    profile = a.value("seccomp")
    if profile not in (None, "docker"):
        raise UsageError(f"--seccomp: unknown profile {profile!r} (known: docker)")
    path = os.path.join(a.value("bundle") or ".", "config.json")
    if os.path.exists(path):
        raise PyruncError("File config.json exists. Remove it first.")
    spec = default_spec()
    if profile == "docker" and spec.linux is not None and spec.process is not None:
        # Docker's default profile, resolved against the spec's (runc's default) bounding set.
        from pyrunc._seccomp import docker_default_seccomp

        caps = spec.process.capabilities
        spec.linux.seccomp = docker_default_seccomp(caps.bounding if caps is not None else ())
    with open(path, "w") as f:
        f.write(json.dumps(spec.to_json(), indent="\t"))
    return 0


def cmd_features(g: Args, a: Args) -> int:
    from pyrunc._features import features

    print(json.dumps(features(), indent=4))
    return 0


_COMMANDS: dict[str, Callable[[Args, Args], int]] = {
    "create": cmd_create,
    "start": cmd_start,
    "run": cmd_run,
    "kill": cmd_kill,
    "delete": cmd_delete,
    "state": cmd_state,
    "list": cmd_list,
    "ps": cmd_ps,
    "exec": cmd_exec,
    "events": cmd_events,
    "pause": cmd_pause,
    "resume": cmd_resume,
    "update": cmd_update,
    "spec": cmd_spec,
    "features": cmd_features,
}


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
    lines += [f"   {name:<10}{_VERBS[name][0]}" for name in _COMMANDS]
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
        if verb not in _COMMANDS:
            raise UsageError(f"No help topic for '{verb}'")
        a = Args()
        _parse(rest[1:], dict(_VERBS[verb][1], **{"help,h": "flag"}), a, stop_at_positional=False)
        if a.flag("help"):
            print(f"pyrunc {verb} - {_VERBS[verb][0]}")
            return 0
        logger.debug(f"pyrunc {verb} {' '.join(rest[1:])}")
        return _COMMANDS[verb](g, a)
    except UsageError as exc:
        logger.log("error", str(exc))
        print(f"pyrunc: {exc}", file=sys.stderr)
        return 1
    except (PyruncError, OSError) as exc:
        message = str(exc)
        for note in getattr(exc, "__notes__", ()):
            message += f" ({note})"
        logger.log("error", message)
        print(message, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
