"""The verbs that change a running container: exec (a new process in it) and update (its
resource limits), from flags or from a JSON document."""

from __future__ import annotations

from pyrunc._cli import UsageError, load, preserve_fds, read_json
from pyrunc._errors import PyruncError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyrunc._cli import Args, Verb

__all__ = ["VERBS"]


def cmd_exec(g: Args, a: Args) -> int:
    from pyrunc._spec import Capabilities, Process

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
            gids = a.values("additional_gids")
            if not all(gid.isdigit() for gid in gids):
                raise UsageError(f"--additional-gids takes group ids as numbers, got {gids!r}")
            process.user.additional_gids = [int(gid) for gid in gids]
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
        preserve_fds=preserve_fds(a),
        console_socket=a.value("console_socket"),
    )
    return 0 if a.flag("detach") else status


def cmd_update(g: Args, a: Args) -> int:
    from pyrunc._spec import Resources

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
