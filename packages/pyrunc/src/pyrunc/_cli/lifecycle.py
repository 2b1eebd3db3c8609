"""The verbs containerd's shim calls on a container that exists: start, kill, delete, state
(and pause, resume). They load the container's state and nothing else."""

from __future__ import annotations

from pyrunc import _jsonio as json
from pyrunc._cli.args import UsageError, load
from pyrunc._signals import signal

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyrunc._cli.args import Args, Verb

__all__ = ["VERBS"]


_SIGRTMAX = 64


def _parse_signal(text: str) -> int:
    if text.isdigit():
        if int(text) > _SIGRTMAX:
            raise UsageError(f"unknown signal {text!r}")
        return int(text)
    name = text.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    number = getattr(signal, name, None)
    if not isinstance(number, int) or name.startswith("SIG_"):
        raise UsageError(f"unknown signal {text!r}")
    return number


def cmd_start(g: Args, a: Args) -> int:
    load(g, a).start()
    return 0


def cmd_kill(g: Args, a: Args) -> int:
    sig = _parse_signal(a.positional[1]) if len(a.positional) > 1 else int(signal.SIGTERM)
    load(g, a).kill(sig, all=a.flag("all"))
    return 0


def cmd_delete(g: Args, a: Args) -> int:
    from pyrunc._errors import ContainerNotFoundError

    try:
        container = load(g, a)
    except ContainerNotFoundError:
        if a.flag("force"):
            return 0
        raise
    container.delete(force=a.flag("force"))
    return 0


def cmd_state(g: Args, a: Args) -> int:
    print(json.dumps(load(g, a).state().to_json(), indent=2))
    return 0


def cmd_pause(g: Args, a: Args) -> int:
    load(g, a).pause()
    return 0


def cmd_resume(g: Args, a: Args) -> int:
    load(g, a).resume()
    return 0


VERBS: dict[str, Verb] = {
    "start": (cmd_start, {}),
    "kill": (cmd_kill, {"all,a": "flag"}),
    "delete": (cmd_delete, {"force,f": "flag"}),
    "state": (cmd_state, {}),
    "pause": (cmd_pause, {}),
    "resume": (cmd_resume, {}),
}
