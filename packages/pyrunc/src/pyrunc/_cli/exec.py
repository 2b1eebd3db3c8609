"""The verbs that change a running container: exec (a new process in it) and update (its
resource limits), from flags or from a JSON document."""

from __future__ import annotations

from pyrunc._cli.args import UsageError, load, preserve_fds, read_json
from pyrunc._errors import PyruncError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyrunc._cli.args import Args, Verb
    from pyrunc._spec.process import Process

__all__ = ["VERBS"]


def cmd_exec(g: Args, a: Args) -> int:
    from pyrunc._spec.process import Process

    container = load(g, a)
    for unsupported in ("process_label", "apparmor", "cgroup"):
        if a.opts.get(unsupported):
            raise PyruncError(f"--{unsupported.replace('_', '-')} is not supported by pyrunc yet")
    process_file = a.value("process")
    if process_file:
        process = Process.from_json(read_json(process_file, "process"), "process")
    else:
        if len(a.positional) < 2:
            raise UsageError("exec needs a command or --process")
        process = _from_flags(container.saved_process(), a)
    status = container.exec(
        process,
        detach=a.flag("detach"),
        pid_file=a.value("pid_file"),
        preserve_fds=preserve_fds(a),
        console_socket=a.value("console_socket"),
    )
    return 0 if a.flag("detach") else status


def _from_flags(process: Process, a: Args) -> Process:
    """The container's own process with what exec's flags change: the command, its terminal, more
    environment, the cwd, the user and groups, more capabilities, no_new_privs."""
    user = process.user
    text = a.value("user")
    if text:
        uid, _, gid = text.partition(":")
        if not uid.isdigit() or (gid and not gid.isdigit()):
            raise UsageError(f"--user takes uid[:gid] as numbers, got {text!r}")
        user = user.replace(uid=int(uid), gid=int(gid) if gid else 0)
    gids = a.values("additional_gids")
    if gids:
        if not all(gid.isdigit() for gid in gids):
            raise UsageError(f"--additional-gids takes group ids as numbers, got {gids!r}")
        user = user.replace(additional_gids=[int(gid) for gid in gids])
    capabilities = process.capabilities
    if a.values("cap"):
        from pyrunc._spec.process import Capabilities

        base = capabilities or Capabilities()
        sets: dict[str, list[str]] = {}
        for name in ("bounding", "effective", "permitted", "ambient"):
            sets[name] = list(getattr(base, name))
            for cap in a.values("cap"):
                if cap not in sets[name]:
                    sets[name].append(cap)
        capabilities = base.replace(**sets)
    return process.replace(
        args=a.positional[1:],
        terminal=a.flag("tty"),
        env=process.env + a.values("env"),
        cwd=a.value("cwd") or process.cwd,
        user=user,
        capabilities=capabilities,
        no_new_privileges=process.no_new_privileges or a.flag("no_new_privs"),
    )


def cmd_update(g: Args, a: Args) -> int:
    from pyrunc._spec.resources import Resources

    container = load(g, a)
    source = a.value("resources")
    if source:
        resources = Resources.from_json(read_json(source, "resources"), "resources")
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


VERBS: dict[str, Verb] = {
    "exec": (
        cmd_exec,
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
    "update": (
        cmd_update,
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
}
