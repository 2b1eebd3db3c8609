"""Container status, the verbs each status allows, and the on-disk state of a container.

Everything that affects the lifecycle state machine lives here. A container's status is not
stored: it is derived each time from the kernel (is the init alive, and the same process as
the one we started? is the exec fifo still there? is the freezer frozen?), as runc does, so
it is never stale after a crash.
"""

from __future__ import annotations

import posix  # not os: see ARCHITECTURE.md, start-up
import time

from pyrunc import _jsonio
from pyrunc._errors import InvalidStateError, PyruncError
from pyrunc._model import Model

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Final

    from pyrunc._cgroups.driver import CgroupManager

__all__ = [
    "ALLOWED",
    "EXEC_FIFO",
    "MAX_ID_LENGTH",
    "SavedState",
    "Status",
    "check_allowed",
    "check_id",
    "container_dir",
    "process_start_time",
    "rfc3339_now",
]


#: The fifo the init waits on until ``start`` (create), in the container's state directory.
EXEC_FIFO = "exec.fifo"

# runc's ^[\w+-\.]+$: in Go's character class, "+-." is the range from "+" to ".", comma included.
_ID_CHARACTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_+,-.")
# An id names the container's state directory and its cgroup directories: one file name each.
MAX_ID_LENGTH = 255


def check_id(container_id: str) -> None:
    """Refuse an id that runc refuses ("invalid container ID format"), or too long to name a file."""
    if len(container_id) > MAX_ID_LENGTH:
        raise PyruncError(
            f"invalid container ID format: {len(container_id)} characters, more than the {MAX_ID_LENGTH} "
            "of a file name (the id names the container's state and cgroup directories)"
        )
    if container_id in ("", ".", "..") or not _ID_CHARACTERS.issuperset(container_id):
        raise PyruncError(
            f"invalid container ID format: {container_id!r} (an id is made of letters, digits and _ + , - .)"
        )


class Status:
    """The OCI statuses, plus runc's ``paused``."""

    CREATING = "creating"
    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"


# verb -> statuses it applies to. Errors use runc's wording where containerd parses it.
ALLOWED: dict[str, frozenset[str]] = {
    "start": frozenset({Status.CREATED}),
    "kill": frozenset({Status.CREATED, Status.RUNNING, Status.PAUSED}),
    "pause": frozenset({Status.CREATED, Status.RUNNING}),
    "resume": frozenset({Status.PAUSED}),
    "delete": frozenset({Status.CREATED, Status.STOPPED}),
    "exec": frozenset({Status.CREATED, Status.RUNNING}),
    "update": frozenset({Status.CREATED, Status.RUNNING, Status.PAUSED}),
}
_REFUSALS = {
    ("start", Status.STOPPED): "cannot start a container that has stopped",
    ("start", Status.RUNNING): "cannot start an already running container",
    ("start", Status.PAUSED): "cannot start an already running container",
    ("kill", Status.STOPPED): "container not running",
    ("pause", Status.STOPPED): "container not running",
    ("pause", Status.PAUSED): "container already paused",
    ("resume", Status.RUNNING): "container not paused",
    ("resume", Status.CREATED): "container not paused",
    ("resume", Status.STOPPED): "container not running",
    ("exec", Status.STOPPED): "cannot exec in a stopped container",
    ("exec", Status.PAUSED): "cannot exec in a paused container",
    ("update", Status.STOPPED): "container not running",
}


def check_allowed(verb: str, status: str, container_id: str) -> None:
    """Raise InvalidStateError unless ``verb`` applies to a container in ``status``."""
    if status in ALLOWED[verb]:
        return
    message = _REFUSALS.get((verb, status))
    if message is None:
        if verb == "delete":
            message = f"cannot delete container {container_id} that is not stopped: {status}"
        else:
            message = f"cannot {verb} a {status} container"
    raise InvalidStateError(container_id, message)


def process_start_time(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat (start time in clock ticks), or None if the process is
    gone or a zombie. Together with the pid it names one process, whatever reuses the pid."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = stat[stat.rindex(b")") + 2 :].split()
    if fields[0] == b"Z" or fields[0] == b"X":
        return None
    return int(fields[19])


def container_dir(root: str, container_id: str) -> str:
    """``<root>/<id>``, the container's state directory (``os.path.join(root, container_id)``: a
    valid id has no slash)."""
    return f"{root}{container_id}" if not root or root.endswith("/") else f"{root}/{container_id}"


def rfc3339_now() -> str:
    """The current UTC time as RFC 3339 with nanoseconds, as Go's time.RFC3339Nano."""
    ns = time.time_ns()
    seconds, frac = divmod(ns, 1_000_000_000)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return f"{text}.{frac:09d}Z" if frac else f"{text}Z"


class SavedState(Model):
    """What pyrunc keeps in ``<root>/<id>/state.json`` between invocations."""

    __slots__ = (
        "annotations",
        "bundle",
        "cgroup_paths",
        "created",
        "hooks",
        "id",
        "init_pid",
        "init_start_time",
        "namespaces",
        "oci_version",
        "process",
        "rootfs",
        "seccomp",
    )

    def __init__(
        self,
        *,
        id: str,
        init_pid: int,
        init_start_time: int,
        bundle: str,
        rootfs: str,
        created: str,
        oci_version: str,
        annotations: dict[str, str],
        cgroup_paths: dict[str, str],
        namespaces: list[str],
        process: dict[str, object],
        hooks: dict[str, object],
        seccomp: dict[str, object] | None = None,
    ) -> None:
        self.id: Final = id
        self.init_pid: Final = init_pid
        self.init_start_time: Final = init_start_time
        self.bundle: Final = bundle
        self.rootfs: Final = rootfs
        self.created: Final = created
        self.oci_version: Final = oci_version
        self.annotations: Final = annotations
        self.cgroup_paths: Final = cgroup_paths
        self.namespaces: Final = namespaces
        self.process: Final = process
        self.hooks: Final = hooks
        self.seccomp: Final = seccomp  # linux.seccomp, raw: exec'd processes get the container's filter

    def cgroups(self) -> CgroupManager:
        """The manager of the container's cgroups, rebuilt from the recorded paths."""
        from pyrunc._cgroups.manager import from_paths

        return from_paths(self.cgroup_paths)

    def save(self, directory: str) -> None:
        """Write atomically (temp file + rename), so a reader never sees half a state."""
        data = {name: getattr(self, name) for name in self.__slots__}
        tmp = f"{directory}/.state.json.tmp"
        with open(tmp, "w") as f:
            f.write(_jsonio.dumps(data))
        posix.replace(tmp, f"{directory}/state.json")

    @classmethod
    def load(cls, directory: str) -> SavedState:
        """The state in ``directory``; FileNotFoundError without one, PyruncError for one that is not
        pyrunc's (damaged, or written by something else)."""
        path = f"{directory}/state.json"
        try:
            with open(path) as f:
                data = _jsonio.loads(f.read())
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            # "seccomp" may be absent: state written by a pyrunc from before seccomp support.
            return cls(**{name: data[name] for name in cls.__slots__ if name in data or name != "seccomp"})
        except (ValueError, KeyError) as exc:
            what = f"no {exc}" if isinstance(exc, KeyError) else str(exc)
            raise PyruncError(f"{path}: not a container state pyrunc wrote ({what})") from None
