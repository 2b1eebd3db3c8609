"""The verbs that report or write information and change no container: list, ps, events
(``--stats``), spec and features."""

from __future__ import annotations

import os

from pyrunc import _jsonio as json
from pyrunc._cli.args import UsageError, load, print_table, root_dir
from pyrunc._errors import PyruncError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyrunc._cli.args import Args, Verb

__all__ = ["VERBS"]


def cmd_list(g: Args, a: Args) -> int:
    from pyrunc._container.container import Container

    states = [c.state() for c in Container.all(root_dir(g))]
    fmt = a.value("format", "table")
    if a.flag("quiet"):
        for st in states:
            print(st.id)
    elif fmt == "json":
        print(json.dumps([st.to_json() for st in states]))
    elif fmt == "table":
        rows = [("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")]
        rows += [(s.id, str(s.pid), s.status, s.bundle, s.created, "root") for s in states]
        print_table(rows)
    else:
        raise UsageError(f"invalid format option {fmt!r}")
    return 0


def cmd_ps(g: Args, a: Args) -> int:
    pids = load(g, a).processes()
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
        print_table(rows)
    else:
        raise UsageError(f"invalid format option {fmt!r}")
    return 0


def cmd_events(g: Args, a: Args) -> int:
    """``events --stats``: one stats record in runc's JSON shape (the event stream is not
    implemented: without --stats this is refused)."""
    if not a.flag("stats"):
        raise PyruncError("events: only --stats is supported by pyrunc yet")
    container = load(g, a)
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


def cmd_spec(g: Args, a: Args) -> int:
    from pyrunc._spec.config import default_spec

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
        from pyrunc._spec.docker import docker_default_seccomp

        caps = spec.process.capabilities
        seccomp = docker_default_seccomp(caps.bounding if caps is not None else ())
        spec = spec.replace(linux=spec.linux.replace(seccomp=seccomp))
    with open(path, "w") as f:
        f.write(json.dumps(spec.to_json(), indent="\t"))
    return 0


def cmd_features(g: Args, a: Args) -> int:
    from pyrunc._features import features

    print(json.dumps(features(), indent=4))
    return 0


VERBS: dict[str, Verb] = {
    "list": (cmd_list, {"format,f": "value", "quiet,q": "flag"}),
    "ps": (cmd_ps, {"format,f": "value"}),
    "events": (cmd_events, {"stats": "flag", "interval": "value"}),
    "spec": (cmd_spec, {"bundle,b": "value", "rootless": "flag", "seccomp": "value"}),
    "features": (cmd_features, {}),
}
