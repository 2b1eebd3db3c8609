"""Tasks: a container's live processes, each task supervised by its own monitor.

``TaskService.create(id)`` mounts the container's snapshot on ``<state>/tasks/<ns>/<id>/rootfs``, writes
the bundle's ``config.json`` beside it and starts a monitor (``pycontainerd._monitor``) on that
directory: a forked child creates the container with pyrunc's Python API, so that the init is its
child, and then becomes the monitor program. From then on the monitor holds the task's stdio, logs its
output and records its exit; the process that created the task may exit or be killed. Every other
operation (start, kill, pause, resume, update, stats, ps, delete) is a call into pyrunc's Python API on
the namespace's pyrunc root ``<state>/runc/<ns>``, from whichever process asks; attaching, resizing
and exec go through the monitor's socket (the monitor runs ``pyrunc exec`` for an exec).

A task's directory is made with ``creator.pid`` in it, naming the process that creates the task
(made under a temporary name and renamed into place, so no task directory ever lacks it), and the
launcher's process writes ``monitor.pid`` before it creates the container. So a task is never
mistaken for an abandoned one while it is being made, and whoever looks at a task can tell:

- a task whose monitor died without recording an exit is reconciled by the next process that looks
  at it: its processes are killed and it is recorded as stopped with status 255 (containerd's
  "unknown"), so ``wait`` returns and ``delete`` cleans up;
- a task whose creator died before its monitor started (no ``init.pid``, neither process alive) is
  reconciled the same way: stopped with status 255, pid 0, never having had a process;
- :meth:`TaskService.collect` (part of ``Client.gc``) deletes those, and the tasks left CREATED by a
  creator that died before starting them: nothing would ever start them.

The init's output goes to the container's log, ``<root>/logs/<ns>/<id>/container.log``, not to the
task's directory: the log is the container's (as dockerd keeps ``<data-root>/containers/<id>/
<id>-json.log``), outlives its tasks, and each new task appends to it; it is under the root, not the
state directory, because it must outlive a reboot as the container's record does. The monitor
writes it (a record per line, timestamped: ``pycontainerd._monitor.logfile``), rotating it as asked
at the task's creation; :meth:`TaskService.logs` reads it (since, until, tail, follow) and the
container's deletion removes it.

Waiting is woken by the monitor: a waiter asks it (``wait``) for the exit frame, and a follower of
the log (``watch``) is sent an empty frame when output reached the log; only a monitor that cannot
be asked (gone, or leaving) is polled for, as before.

Nothing in a task's directory is removed recursively through a mount: the root filesystem is
unmounted first, and the directory removed by ``remove_tree``, which refuses to enter a mount.
"""

from __future__ import annotations

import contextlib
import datetime
import enum
import errno
import json
import os
import sys
import time
from pathlib import Path

import pyrunc
from pycontainerd._errors import (
    AlreadyExistsError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    PycontainerdError,
    TaskError,
)
from pycontainerd._metadata import check_container_id
from pycontainerd._monitor import (
    Attachment,
    CreateRequest,
    ExitStatus,
    Monitor,
    MonitorError,
    MonitorLauncher,
    MonitorOptions,
    Watch,
    follow_watch,
    monitor_alive,
    process_alive,
    read_entries,
    read_exit,
    runtime_error,
    wait_monitor_exit,
    watch,
    write_process_file,
)
from pycontainerd._monitor.runtime import create_init
from pycontainerd._snapshots import mount_all, remove_tree, unmount_all
from pycontainerd._stdlib import signal
from pycontainerd._tasks.cgroups import cgroups_path, remove_empty_parent
from pycontainerd._tasks.resources import (
    BlkioMetrics,
    CpuMetrics,
    MemoryMetrics,
    Metrics,
    PidsMetrics,
    Resources,
)
from pycontainerd._tasks.stops import stop_point
from pycontainerd._times import format_time
from pycontainerd.oci._users import resolve_user

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from typing import Any, Final

    from pycontainerd._events import EventLog
    from pycontainerd._metadata import MetadataStore
    from pycontainerd._monitor.logfile import LogEntry
    from pycontainerd._snapshots import Snapshotters

__all__ = ["DEFAULT_LOG_MAX", "ExecProcess", "Task", "TaskService", "TaskStatus"]

#: Bytes of output a task's log keeps (twice this at most: the current file and the previous one).
DEFAULT_LOG_MAX = 16 << 20
_UNKNOWN_STATUS = 255
_SOCKET_PATH_MAX = 107  # sun_path holds 108 bytes with the terminating NUL
_WAIT_INTERVAL = 0.02  # a waiter's poll, only while the monitor cannot be asked
_RECHECK = 0.5  # how often a waiter looks for a monitor that died without recording the exit
_MONITOR_EXIT_TIMEOUT = 10.0
#: The file naming the process that creates a task (``PID STARTTIME``), in the task's directory.
_CREATOR = "creator.pid"
#: The prefix of a task directory not yet renamed into place (not a valid container id).
_CLAIM_PREFIX = ".new-"


class TaskStatus(enum.StrEnum):
    CREATED = "CREATED"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    STOPPED = "STOPPED"

    @property
    def running(self) -> bool:
        """Whether the task's processes may still be alive (created, running or paused)."""
        return self is not TaskStatus.STOPPED


def _pyrunc_binary() -> str:
    """The ``pyrunc`` command of this environment (the monitor runs it for exec)."""
    import shutil
    import sysconfig

    beside = Path(sysconfig.get_path("scripts")) / "pyrunc"
    if beside.exists():
        return str(beside)
    found = shutil.which("pyrunc") or shutil.which("pyrunc", path=str(Path(sys.executable).parent))
    if found is None:
        raise TaskError("the pyrunc command is not installed beside pycontainerd (no pyrunc on PATH)")
    return found


def _launched() -> None:
    """While the monitor's process creates the container (a moment a crash can hit)."""
    stop_point("task-launched")


def _check_socket_path(path: Path) -> None:
    """Unix socket paths are short: refuse a state directory too deep for the task's sockets."""
    if len(os.fsencode(path)) > _SOCKET_PATH_MAX:
        raise InvalidArgumentError(
            f"{path} is longer than the {_SOCKET_PATH_MAX} bytes a unix socket path may have:"
            " use a shorter state directory (or id)"
        )


class TaskService:
    """The tasks of ``namespace`` (``client.tasks``): their directories under
    ``<state>/tasks/<namespace>``, pyrunc's state of their containers under ``<state>/runc/<namespace>``.

    It reads the containers' records from ``metadata``, their root filesystems' mounts from
    ``snapshotters``, and publishes the tasks' events to ``events``.
    """

    def __init__(
        self,
        namespace: str,
        state: Path,
        *,
        metadata: MetadataStore,
        snapshotters: Snapshotters,
        events: EventLog,
        logs: Path,
    ) -> None:
        self.namespace = namespace
        #: Where the namespace's containers' logs are, a directory per container.
        self.logs = logs
        #: Where the namespace's task directories are.
        self.directory = state / "tasks" / namespace
        #: The namespace's pyrunc state root.
        self.runtime_root = state / "runc" / namespace
        self._metadata = metadata
        self._snapshotters = snapshotters
        self._events = events

    def publish(self, topic: str, **fields: object) -> None:
        """Publish the event ``topic`` of a task of the namespace."""
        self._events.publish(topic, self.namespace, **fields)

    def create(
        self,
        container_id: str,
        *,
        tty: bool | None = None,
        stdin: bool = False,
        log_max: int = DEFAULT_LOG_MAX,
        log_max_size: int = 0,
        log_max_files: int = 1,
        keep_log: bool = True,
        launcher: MonitorLauncher | None = None,
    ) -> Task:
        """Create the task of container ``container_id``: its init exists, stopped before the program,
        until :meth:`Task.start`. ``tty`` overrides the spec's ``process.terminal``; ``stdin`` gives it an
        input the caller writes through :meth:`Task.attach`. The init's output is appended to the
        container's log (:meth:`log_path`), rotated past ``log_max_size`` bytes (0: never) keeping
        ``log_max_files`` files, as Docker's json-file driver; without ``keep_log`` it is not kept
        (attached clients still see it). ``log_max`` caps each exec'd process's log. ``launcher`` is
        the monitor's process forked ahead of time (``pycontainerd._monitor.runtime.pyrunc_launcher()``,
        by a process with one thread, as ``pyctr run``); without one, it is forked here.

        AlreadyExistsError if the container has a task; TaskError with pyrunc's message when the
        runtime refuses the spec (nothing is left behind then).
        """
        container = self._metadata.containers.get(self.namespace, container_id)
        if log_max <= 0:
            raise InvalidArgumentError(f"log_max must be positive, not {log_max}")
        if log_max_size < 0 or log_max_files < 1:
            raise InvalidArgumentError(
                "log_max_size must be 0 or more and log_max_files 1 or more, "
                f"not {log_max_size} and {log_max_files}"
            )
        log = self.log_path(container_id) if keep_log else Path(os.devnull)
        directory = self.directory / container_id
        _check_socket_path(directory / "console.sock")
        stop_point("task-create")
        self._claim(container_id, directory)
        stop_point("task-claimed")
        # The record's spec stays as it is: only the two objects changed here are copied.
        spec: dict[str, Any] = dict(container.spec)
        process = spec["process"] = dict(spec.get("process") or {})
        if tty is not None:
            process["terminal"] = tty
        terminal = bool(process.get("terminal"))
        spec["root"] = {**(spec.get("root") or {}), "path": "rootfs"}
        rootfs = directory / "rootfs"
        mounted = False
        try:
            (directory / "config.json").write_text(json.dumps(spec))
            rootfs.mkdir()
            mount_all(self._snapshotters.get(container.snapshotter).mounts(container.snapshot_key), rootfs)
            mounted = True
            stop_point("task-mounted")
            self.runtime_root.mkdir(parents=True, exist_ok=True)
            log.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            request = CreateRequest(
                container_id,
                bundle=str(directory),
                root=str(self.runtime_root),
                pid_file=str(directory / "init.pid"),
                console_socket=str(directory / "console.sock") if terminal else None,
            )
            options = MonitorOptions(
                container_id,
                self.namespace,
                tty=terminal,
                stdin=stdin,
                log_max=log_max,
                log=log,
                log_max_size=log_max_size,
                log_max_files=log_max_files,
                events=self._events.path,
            )
            if launcher is None:
                pyrunc.preload()  # the init is created in a forked child: nothing may be imported there
                launcher = MonitorLauncher(create_init)
            started = launcher.start(directory, request, options, meanwhile=_launched)
        except MonitorError as exc:
            error = TaskError(f"create task {container_id}: {exc}")
            self._discard(container_id, directory, mounted, spec, error)
            raise error from exc
        except BaseException as exc:
            self._discard(container_id, directory, mounted, spec, exc)
            raise
        self.publish("/tasks/create", id=container_id, pid=started.init_pid, bundle=str(directory))
        stop_point("task-created")
        return Task(self, container_id, directory, started.init_pid)

    def log_path(self, container_id: str) -> Path:
        """The file of container ``container_id``'s log (rotated files beside it: ``.1``, ``.2``...)."""
        return self.logs / container_id / "container.log"

    def logs_of(
        self,
        container_id: str,
        *,
        since: int | None = None,
        until: int | None = None,
        tail: int | None = None,
        follow: bool = False,
    ) -> Iterator[Sequence[LogEntry]]:
        """The entries of the container's log, ``(stream, data, time)``, a line each, in batches as
        read: see :meth:`ContainerService.logs`."""
        check_container_id(container_id)
        wakeups = follow_watch(self.directory / container_id, "init") if follow else None
        try:
            yield from read_entries(
                self.log_path(container_id), since=since, until=until, tail=tail, follow=wakeups
            )
        finally:
            if wakeups is not None:
                wakeups.close()

    def remove_log(self, container_id: str) -> None:
        """Remove the container's log (the container is being deleted)."""
        directory = self.logs / container_id
        if directory.is_dir():
            remove_tree(directory)

    def _claim(self, container_id: str, directory: Path) -> None:
        """Make the task's directory with ``creator.pid`` (this process) in it: filled under a
        temporary name, then renamed into place, which fails if the task exists."""
        self.directory.mkdir(parents=True, exist_ok=True)
        claim = self.directory / f"{_CLAIM_PREFIX}{os.urandom(8).hex()}"
        claim.mkdir(mode=0o700)
        try:
            write_process_file(claim / _CREATOR)
            os.rename(claim, directory)
        except BaseException as exc:
            remove_tree(claim)
            if isinstance(exc, OSError) and exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
                raise AlreadyExistsError(f"task {container_id} already exists in {self.namespace}") from None
            raise

    def _discard(
        self, container_id: str, directory: Path, mounted: bool, spec: dict[str, Any], error: BaseException
    ) -> None:
        """Undo a create that failed with ``error``; what cannot be undone is noted on it."""
        try:
            with contextlib.suppress(pyrunc.ContainerNotFoundError, FileNotFoundError):
                pyrunc.Container.load(container_id, str(self.runtime_root)).delete(force=True)
            own = cgroups_path(self.namespace, container_id)
            if (spec.get("linux") or {}).get("cgroupsPath") == own:
                # pyrunc removed the cgroups it made, from this process's cgroup: not their parent.
                paths = pyrunc.cgroup_paths(container_id, own).values()
                remove_empty_parent(paths, self.namespace, container_id)
            if mounted:
                unmount_all(directory / "rootfs")
            remove_tree(directory)
        except (pyrunc.PyruncError, PycontainerdError, OSError) as cleanup:
            error.add_note(f"and undoing the creation of task {container_id} failed: {cleanup}")

    def get(self, container_id: str) -> Task:
        """The task of container ``container_id``; NotFoundError if it has none (or while it is being
        created). A task whose creator or monitor died is reconciled first (see the module's
        docstring): a caller sees it stopped."""
        check_container_id(container_id)
        directory = self.directory / container_id
        try:
            pid = int((directory / "init.pid").read_text())
        except (FileNotFoundError, ValueError):
            pid = 0
        task = Task(self, container_id, directory, pid)
        try:
            if pid == 0:
                task._reconcile_unfinished()
            else:
                task.reconcile()
        except FileNotFoundError:  # deleted meanwhile
            raise NotFoundError(f"task {container_id} not found in {self.namespace}") from None
        return task

    def collect(self, errors: list[str]) -> list[str]:
        """Delete the namespace's abandoned tasks: those whose creation was cut short (by a crash of
        the process creating them), and those left CREATED by a creator that is gone (nothing would
        ever start them). Returns their ids; a task that cannot be deleted is kept, and the reason
        appended to ``errors``. Part of ``Client.gc``."""
        collected = []
        try:
            entries = sorted(os.listdir(self.directory))
        except FileNotFoundError:
            return []
        for entry in entries:
            try:
                if entry.startswith(_CLAIM_PREFIX):  # a creator died before renaming it into place
                    if not process_alive(self.directory / entry / _CREATOR):
                        remove_tree(self.directory / entry)
                    continue
                task = self.get(entry)
                if task._abandoned():
                    task.delete(force=True)
                    collected.append(entry)
            except (NotFoundError, InvalidArgumentError, FileNotFoundError):
                continue  # not a task, or gone meanwhile
            except (PycontainerdError, OSError) as exc:
                errors.append(f"task {self.namespace}/{entry}: {exc}")
        return collected

    def list(self) -> list[Task]:
        """Every task of the namespace, by id."""
        found = []
        with contextlib.suppress(FileNotFoundError):
            for entry in sorted(os.listdir(self.directory)):
                with contextlib.suppress(NotFoundError, InvalidArgumentError):
                    found.append(self.get(entry))
        return found


class ExecProcess:
    """A process added to a running task by :meth:`Task.exec`."""

    __slots__ = ("task", "id", "pid", "attachment")

    def __init__(self, task: Task, id: str, pid: int, attachment: Attachment | None = None) -> None:
        self.task: Final = task
        self.id: Final = id
        self.pid: Final = pid
        self.attachment: Final = attachment

    def __repr__(self) -> str:
        return f"ExecProcess(task={self.task.id!r}, id={self.id!r}, pid={self.pid})"

    def wait(self, timeout: float | None = None) -> ExitStatus:
        """Its exit status, once it has exited; TimeoutError after ``timeout`` seconds."""
        return self.task._wait_for(self.id, timeout)

    def kill(self, sig: int = signal.SIGTERM) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, sig)

    def resize(self, rows: int, cols: int) -> None:
        with Monitor.connect(self.task.directory) as monitor:
            monitor.resize(self.id, rows, cols)

    def delete(self) -> ExitStatus:
        """Forget the exited process, as containerd deletes an exec: its exit record, log and files
        in the task's directory go, and its id can be used again. Returns its exit status;
        FailedPreconditionError while it runs."""
        status = read_exit(self.task.directory, self.id)
        if status is None:
            raise FailedPreconditionError(f"exec {self.id} in task {self.task.id} is running: kill it first")
        try:
            with Monitor.connect(self.task.directory) as monitor:
                monitor.forget(self.id)
        except MonitorError as exc:
            raise TaskError(f"delete exec {self.id} in task {self.task.id}: {exc}") from exc
        return status


class Task:
    """A container's task. Made by :class:`TaskService`; any process may hold one for the same task."""

    __slots__ = ("service", "id", "directory", "pid")

    def __init__(self, service: TaskService, id: str, directory: Path, pid: int) -> None:
        self.service: Final = service
        self.id: Final = id
        self.directory: Final = directory
        self.pid: Final = pid

    def __repr__(self) -> str:
        return f"Task(id={self.id!r}, pid={self.pid}, directory={str(self.directory)!r})"

    def _runtime(self) -> pyrunc.Container:
        try:
            return pyrunc.Container.load(self.id, str(self.service.runtime_root))
        except pyrunc.ContainerNotFoundError:
            raise NotFoundError(f"task {self.id}: the runtime has no container {self.id}") from None
        except pyrunc.PyruncError as exc:
            raise TaskError(f"task {self.id}: {exc}") from exc

    def exit_status(self) -> ExitStatus | None:
        """The init's exit status, once it has exited."""
        return read_exit(self.directory)

    def status(self) -> TaskStatus:
        if self.exit_status() is not None:
            return TaskStatus.STOPPED
        try:
            state = self._runtime().status()
        except NotFoundError:
            return TaskStatus.STOPPED
        except pyrunc.PyruncError as exc:
            raise TaskError(f"task {self.id}: {exc}") from exc
        return {
            pyrunc.ContainerStatus.CREATED: TaskStatus.CREATED,
            pyrunc.ContainerStatus.RUNNING: TaskStatus.RUNNING,
            pyrunc.ContainerStatus.PAUSED: TaskStatus.PAUSED,
        }.get(state, TaskStatus.STOPPED)

    def reconcile(self) -> None:
        """If the monitor died before recording the init's exit: kill what is left of the container,
        record the exit as status 255 and publish it (the caller then sees a stopped task)."""
        if self.exit_status() is not None or monitor_alive(self.directory):
            return
        if self.exit_status() is not None:  # the monitor recorded it and left in between
            return
        with contextlib.suppress(NotFoundError, TaskError, pyrunc.PyruncError):
            self._runtime().kill(signal.SIGKILL, all=True)
        self._record_unknown_exit("monitor died")

    def _reconcile_unfinished(self) -> None:
        """For a task without ``init.pid``: NotFoundError if there is no such task, or while it is
        being created (its creator, or the process becoming its monitor, is alive); otherwise its
        creation was cut short, and it is recorded as stopped with status 255 (once)."""
        if self.exit_status() is not None:
            return
        directory = self.directory
        if not directory.is_dir() or process_alive(directory / _CREATOR) or monitor_alive(directory):
            raise NotFoundError(f"task {self.id} not found in {self.service.namespace}")
        if (directory / "init.pid").exists():  # its monitor's process got there meanwhile
            raise NotFoundError(f"task {self.id} not found in {self.service.namespace}")
        self._record_unknown_exit("creation interrupted")

    def _record_unknown_exit(self, reason: str) -> None:
        now = datetime.datetime.now(datetime.UTC)
        record = {
            "pid": self.pid,
            "status": _UNKNOWN_STATUS,
            "exited_at": format_time(now),
            "oom_killed": False,
        }
        temporary = self.directory / "init.exit.tmp"
        temporary.write_text(json.dumps(record))
        os.replace(temporary, self.directory / "init.exit")
        self.service.publish(
            "/tasks/exit", id=self.id, proc="init", pid=self.pid,
            status=_UNKNOWN_STATUS, exited_at=record["exited_at"], reason=reason,
        )  # fmt: skip

    def _abandoned(self) -> bool:
        """Whether nothing will ever start or run this task: its creation was cut short (pid 0), or
        it is CREATED and the process that created it is gone."""
        if self.pid == 0:
            return True
        return self.status() is TaskStatus.CREATED and not process_alive(self.directory / _CREATOR)

    def start(self) -> None:
        """Run the program (the init was waiting since create). TaskError with pyrunc's message."""
        try:
            self._runtime().start()
        except pyrunc.PyruncError as exc:
            raise TaskError(f"start task {self.id}: {exc}") from exc
        self.service.publish("/tasks/start", id=self.id, pid=self.pid)

    def attach(self, *, stdin: bool = False) -> Attachment:
        """A live stream of the init's output (and its input with ``stdin``), until it exits.
        FailedPreconditionError if it has exited (:meth:`logs` has its output)."""
        if self.exit_status() is not None:
            raise FailedPreconditionError(f"task {self.id} is stopped: nothing to attach to (read its log)")
        return Monitor.connect(self.directory).attach("init", stdin=stdin)

    def logs(self, *, follow: bool = False) -> Iterator[tuple[int, bytes]]:
        """The output kept in the container's log (of this task and those before it), as
        ``(stream, data)`` a line at a time; ``follow`` waits for more until the init has exited."""
        for batch in self.service.logs_of(self.id, follow=follow):
            for stream, data, _ in batch:
                yield stream, data

    def _wait_for(self, proc: str, timeout: float | None) -> ExitStatus:
        """``proc``'s exit status, woken by the monitor's exit frame (``wait``); polled for only while
        the monitor cannot be asked, and looked after every half second in case it died."""
        deadline = None if timeout is None else time.monotonic() + timeout
        checked = time.monotonic()
        waiter: Watch | None = None
        try:
            while True:
                status = read_exit(self.directory, proc)
                if status is not None:
                    return status
                if waiter is None or waiter.ended:
                    if waiter is not None:
                        waiter.close()
                    waiter = self._waiter(proc)
                now = time.monotonic()
                if now - checked > _RECHECK:
                    checked = now
                    self.reconcile()
                    if (
                        proc != "init"
                        and read_exit(self.directory) is not None
                        and not monitor_alive(self.directory)
                        and read_exit(self.directory, proc) is None
                    ):
                        raise TaskError(f"task {self.id}: process {proc} left no exit status")
                if deadline is not None and now >= deadline:
                    raise TimeoutError(f"task {self.id}: {proc} still running after {timeout} s")
                pause = _RECHECK if deadline is None else min(_RECHECK, deadline - now)
                if waiter is None:
                    time.sleep(min(pause, _WAIT_INTERVAL))
                    continue
                waiter.wait(pause)
                if waiter.exit is not None:
                    return waiter.exit
        finally:
            if waiter is not None:
                waiter.close()

    def _waiter(self, proc: str) -> Watch | None:
        """A connection the monitor sends ``proc``'s exit on; None if it cannot be asked."""
        if not monitor_alive(self.directory):
            return None
        try:
            return watch(self.directory, proc, notify=False)
        except MonitorError:
            return None

    def wait(self, timeout: float | None = None) -> ExitStatus:
        """The init's exit status (code, or 128 + signal; OOM noted), once it has exited."""
        return self._wait_for("init", timeout)

    def kill(self, sig: int = signal.SIGTERM, *, all: bool = False) -> None:
        """Send ``sig`` to the init, or with ``all`` to every process of the task."""
        try:
            self._runtime().kill(sig, all=all)
        except pyrunc.PyruncError as exc:
            raise TaskError(f"kill task {self.id}: {exc}") from exc

    def pause(self) -> None:
        try:
            self._runtime().pause()
        except pyrunc.PyruncError as exc:
            raise TaskError(f"pause task {self.id}: {exc}") from exc
        self.service.publish("/tasks/paused", id=self.id)

    def resume(self) -> None:
        try:
            self._runtime().resume()
        except pyrunc.PyruncError as exc:
            raise TaskError(f"resume task {self.id}: {exc}") from exc
        self.service.publish("/tasks/resumed", id=self.id)

    def resize(self, rows: int, cols: int) -> None:
        """Set the window size of the init's terminal."""
        with Monitor.connect(self.directory) as monitor:
            monitor.resize("init", rows, cols)

    def close_stdin(self) -> None:
        with Monitor.connect(self.directory) as monitor:
            monitor.close_stdin("init")

    def update(self, resources: Resources) -> None:
        """Change the cgroup limits of the live task to ``resources`` (the fields it sets; the others
        keep their values). InvalidArgumentError names a value the runtime's spec does not allow
        (by its ``linux.resources`` path); TaskError carries the runtime's refusal."""
        try:
            runtime_resources = pyrunc.Resources.from_json(resources.to_oci())
        except pyrunc.SpecError as exc:
            raise InvalidArgumentError(f"update task {self.id}: {exc}") from exc
        try:
            self._runtime().update(runtime_resources)
        except pyrunc.PyruncError as exc:
            raise TaskError(f"update task {self.id}: {exc}") from exc
        self.service.publish("/tasks/update", id=self.id)

    def processes(self) -> list[int]:
        """The pids of the task's processes (host pids). TaskError with pyrunc's message."""
        try:
            return self._runtime().processes()
        except pyrunc.PyruncError as exc:
            raise TaskError(f"ps task {self.id}: {exc}") from exc

    def metrics(self) -> Metrics:
        """cpu, memory, pids and blkio counters from the task's cgroups. TaskError with pyrunc's
        message."""
        try:
            stats = self._runtime().stats()
        except pyrunc.PyruncError as exc:
            raise TaskError(f"metrics of task {self.id}: {exc}") from exc
        memory, cpu, pids, blkio = stats.memory, stats.cpu, stats.pids, stats.blkio
        return Metrics(
            MemoryMetrics(
                usage=memory.usage,
                max_usage=memory.max_usage,
                limit=memory.limit,
                failcnt=memory.failcnt,
                oom_kill=memory.oom_kill,
            ),
            CpuMetrics(
                usage_total=cpu.usage_total,
                usage_user=cpu.usage_user,
                usage_kernel=cpu.usage_kernel,
                nr_periods=cpu.nr_periods,
                nr_throttled=cpu.nr_throttled,
                throttled_time=cpu.throttled_time,
            ),
            PidsMetrics(current=pids.current, limit=pids.limit),
            BlkioMetrics(read_bytes=blkio.read_bytes, write_bytes=blkio.write_bytes),
        )

    def exec(
        self,
        exec_id: str,
        args: Sequence[str],
        *,
        tty: bool = False,
        stdin: bool = False,
        env: Sequence[str] | None = None,
        cwd: str | None = None,
        user: str | None = None,
        attach: bool = False,
    ) -> ExecProcess:
        """Run ``args`` in the task as process ``exec_id``, with the container's process settings;
        ``env`` entries replace the container's of the same name, ``cwd`` and ``user`` (as
        :func:`pycontainerd.oci.with_user` takes it, resolved in the container's root filesystem)
        replace its own.

        With ``attach`` the returned process carries an Attachment registered before it runs.
        """
        check_container_id(exec_id)
        if exec_id == "init":
            raise InvalidArgumentError("exec id 'init' is the task's own process")
        if not args:
            raise InvalidArgumentError(f"exec {exec_id}: no command given")
        if self.exit_status() is not None:
            raise FailedPreconditionError(f"exec {exec_id} in task {self.id}: the task is stopped")
        _check_socket_path(self.directory / f"{exec_id}.console.sock")
        if (self.directory / f"{exec_id}.json").exists():
            raise AlreadyExistsError(f"exec {exec_id} already exists in task {self.id}")
        spec = json.loads((self.directory / "config.json").read_text())
        process: dict[str, Any] = dict(spec.get("process", {}))
        process["args"] = list(args)
        process["terminal"] = tty
        process.pop("consoleSize", None)
        if env is not None:
            process["env"] = _merge_env(process.get("env", []), env)
        if cwd is not None:
            process["cwd"] = cwd
        if user is not None:
            resolved = resolve_user(self.directory / "rootfs", user)
            process["user"] = {"uid": resolved.uid, "gid": resolved.gid}
            if resolved.additional_gids:
                process["user"]["additionalGids"] = list(resolved.additional_gids)
        process_file = self.directory / f"{exec_id}.json"
        process_file.write_text(json.dumps(process))
        argv = [
            _pyrunc_binary(), "--root", str(self.service.runtime_root),
            "--log", str(self.directory / "runtime.log"), "--log-format", "json",
            "exec", "--detach", "--pid-file", str(self.directory / f"{exec_id}.pid"),
            "--process", str(process_file),
        ]  # fmt: skip
        if tty:
            argv += ["--console-socket", str(self.directory / f"{exec_id}.console.sock")]
        argv.append(self.id)
        try:
            with Monitor.connect(self.directory) as monitor:
                pid, attachment = monitor.exec(exec_id, argv, tty=tty, stdin=stdin, attach=attach)
        except MonitorError as exc:
            reason = runtime_error(self.directory) or str(exc)
            raise TaskError(f"exec {exec_id} in task {self.id}: {reason}") from exc
        self.service.publish("/tasks/exec-started", id=self.id, exec_id=exec_id, pid=pid)
        return ExecProcess(self, exec_id, pid, attachment)

    def delete(self, *, force: bool = False) -> ExitStatus:
        """Remove the stopped task: runtime state, cgroups, rootfs mount, task directory. A task still
        running needs ``force`` (its processes are killed first). Returns the init's exit status."""
        status = self.exit_status()
        if status is None:
            if not force:
                raise FailedPreconditionError(
                    f"task {self.id} is {self.status().value.lower()}: kill it first, or force"
                )
            with contextlib.suppress(NotFoundError, TaskError, pyrunc.PyruncError):
                runtime = self._runtime()
                if runtime.status() is pyrunc.ContainerStatus.PAUSED:
                    runtime.resume()
                runtime.kill(signal.SIGKILL, all=True)
            status = self.wait(timeout=_MONITOR_EXIT_TIMEOUT)
        if not wait_monitor_exit(self.directory, _MONITOR_EXIT_TIMEOUT):
            raise TaskError(f"delete task {self.id}: its monitor has not exited after its processes")
        with contextlib.suppress(NotFoundError):
            runtime = self._runtime()
            try:
                runtime.delete(force=True)
            except pyrunc.PyruncError as exc:
                raise TaskError(f"delete task {self.id}: {exc}") from exc
            remove_empty_parent(runtime.cgroup_paths.values(), self.service.namespace, self.id)
        # The root filesystem is unmounted first (os.path.ismount cannot see a bind mount within one
        # filesystem, as the native snapshotter's), and remove_tree never enters a mount point: it
        # unmounts what is left (EBUSY here: something is mounted inside the root filesystem).
        try:
            unmount_all(self.directory / "rootfs")
        except OSError as exc:
            if exc.errno not in (errno.ENOENT, errno.EBUSY):
                raise
        remove_tree(self.directory)
        self.service.publish(
            "/tasks/delete", id=self.id, pid=self.pid,
            status=status.status, exited_at=format_time(status.exited_at),
        )  # fmt: skip
        return status


def _merge_env(base: Sequence[str], extra: Sequence[str]) -> list[str]:
    merged: dict[str, str] = {}
    for entry in [*base, *extra]:
        key, sep, _ = entry.partition("=")
        if not sep or not key:
            raise InvalidArgumentError(f"environment entry {entry!r} is not KEY=VALUE")
        merged[key] = entry
    return list(merged.values())
