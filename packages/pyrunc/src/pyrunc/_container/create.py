"""The verbs that launch a process: create and run (a container's init) and exec (a process in a
running container), from a runtime spec through its plan to the launch. :class:`pyrunc.Container`
calls in here, so that the verbs on a container that exists (start, kill, state, delete) load none of
the spec models, the launch machinery or the C extension.
"""

from __future__ import annotations

import os

from pyrunc._cgroups.manager import open_cgroups
from pyrunc._container.remove import destroy, post_hooks, remove_state_dir
from pyrunc._container.state import (
    EXEC_FIFO,
    SavedState,
    Status,
    check_id,
    container_dir,
    process_start_time,
    rfc3339_now,
)
from pyrunc._errors import ContainerExistsError, InitError, PyruncError, warn
from pyrunc._launch.child import launch, launch_vfork
from pyrunc._plan.compile import compile_exec, compile_init, has_hooks
from pyrunc._plan.process import uses_user_namespace
from pyrunc._plan.seccomp import sha256_hex
from pyrunc._signals import signal
from pyrunc._spec.config import load_spec
from pyrunc._spec.process import ConsoleSize
from pyrunc._spec.resources import DeviceRule, Resources

TYPE_CHECKING = False
if TYPE_CHECKING:
    import _socket

    from pyrunc._cgroups.driver import CgroupManager
    from pyrunc._container.options import CreateOptions
    from pyrunc._spec.config import RuntimeSpec
    from pyrunc._spec.process import Process

__all__ = ["create", "exec_process", "import_on_use_modules", "run"]

#: What create, run and exec import on first use, on any host: the cgroup drivers of both versions,
#: the launch machinery and the C extension, seccomp, terminals and hooks.
_LOADED_ON_USE = (
    "fcntl",
    "pyrunc._cgroups.manager",
    "pyrunc._cgroups.v1",
    "pyrunc._cgroups.v2",
    "pyrunc._container.container",
    "pyrunc._container.options",
    "pyrunc._launch.console",
    "pyrunc._hooks",
    "pyrunc._launch.child",
    "pyrunc._native._lib",
    "pyrunc._native.libseccomp",
    "pyrunc._plan.compile",
    "pyrunc._plan.seccomp",
    "pyrunc._spec.config",
    "select",
    "termios",
    "time",
    "tty",
)

# Device cgroup rules every container gets after the spec's own (runc's AllowedDevices).
_ALLOWED_DEVICES = (
    ("c", None, None, "m"),
    ("b", None, None, "m"),
    ("c", 1, 3, "rwm"),
    ("c", 1, 8, "rwm"),
    ("c", 1, 7, "rwm"),
    ("c", 5, 0, "rwm"),
    ("c", 1, 5, "rwm"),
    ("c", 1, 9, "rwm"),
    ("c", 136, None, "rwm"),
    ("c", 5, 2, "rwm"),
    ("c", 10, 200, "rwm"),
)


def run(container_id: str, root: str, options: CreateOptions, *, detach: bool = False) -> int:
    """:meth:`pyrunc.Container.run`: create, start, wait (or bridge a terminal), delete."""
    # Catch signals from the start: one that arrives while the container is being made is
    # passed on once it exists, instead of killing us and orphaning it.
    with _forward_signals() as forward:
        saved, pid, receiver = create(container_id, root, options, start=True, bridge=not detach)
        forward.to(pid)
        post_hooks(saved, "poststart", Status.RUNNING)
        if detach:
            return 0
        status = _wait_or_bridge(pid, receiver)
    destroy(saved, root)
    post_hooks(saved, "poststop", Status.STOPPED)
    return status


def import_on_use_modules() -> None:
    """Import what create, run and exec import on first use (:func:`pyrunc.preload`)."""
    for name in _LOADED_ON_USE:
        __import__(name)

    sha256_hex(b"")  # imports the SHA-256 of the seccomp cache's keys: its name depends on Python


def create(
    container_id: str, root: str, options: CreateOptions, *, start: bool, bridge: bool
) -> tuple[SavedState, int, _socket.socket | None]:
    """Create the container ``container_id`` under ``root``; return its saved state, the init's
    pid, and the socket to receive the pty master on when that is ours to do (``bridge``: a
    terminal without a console socket is bridged to our stdio). With ``start``, run straight through
    to exec (vfork mode: the init joins its cgroups itself and nobody waits on a fifo), else leave
    the init on the exec fifo."""

    check_id(container_id)
    if options.preserve_fds < 0:
        raise PyruncError(f"preserve_fds: {options.preserve_fds} is not 0 or more")
    bundle = os.path.abspath(options.bundle)
    spec = load_spec(bundle)
    try:
        os.makedirs(root, mode=0o700, exist_ok=True)
    except FileExistsError:
        raise PyruncError(f"state root {root}: not a directory") from None
    except OSError as exc:
        raise PyruncError(f"state root {root}: {exc.strerror}") from None
    directory = os.path.join(root, container_id)
    try:
        os.mkdir(directory, 0o711)
    except FileExistsError:
        raise ContainerExistsError(container_id) from None
    cgroups: CgroupManager | None = None
    pid = -1
    try:
        linux = spec.linux
        process = spec.process
        cgroups = open_cgroups(container_id, linux.cgroups_path if linux else None)
        resources = linux.resources if linux and linux.resources else Resources()
        resources = resources.replace(devices=_device_rules(spec))
        fifo_fd = -1
        if not start:
            fifo = os.path.join(directory, EXEC_FIFO)
            os.mkfifo(fifo, 0o622)
            os.chmod(fifo, 0o622)
            fifo_fd = os.open(fifo, os.O_PATH | os.O_CLOEXEC)
        hooked = has_hooks(spec)
        user_ns = uses_user_namespace(spec)
        # vfork mode suspends us until the child execs: no hooks to run for it meanwhile, no
        # user namespace maps to write.
        vfork = start and not hooked and not user_ns
        # The init joins its cgroups itself (see CgroupManager.join_files: faster than our moving
        # it), unless it gets a user namespace: then launch moves it, as the init may not be able
        # to write the host's cgroup files.
        joins = [] if user_ns else cgroups.join_files()
        console, receiver = _console_sockets(process, options.console_socket, bridge=bridge)
        if receiver is not None and process is not None:  # our own terminal's size wins, as with runc
            process = _with_our_terminal_size(process)
            spec = spec.replace(process=process)
        try:
            plan = compile_init(
                spec,
                bundle=bundle,
                cgroup_hierarchies=cgroups.mount_hierarchies(),
                no_pivot=options.no_pivot,
                fifo_fd=fifo_fd,
                preserve_fds=options.preserve_fds,
                # runc's name (a leading "." is the kernel's)
                keyring=None if options.no_new_keyring else f"_ses.{container_id}",
                stdio=options.stdio or (),
                vfork=vfork,
                join_cgroups=joins,
                oom_score_adj=process.oom_score_adj if process else None,
                container_id=container_id,
                console_fd=console.fileno() if console is not None else -1,
                seccomp_cache=_seccomp_cache_dir(root),
            )
            assert process is not None and spec.root is not None  # compile_init checked them
            for warning in plan.warnings:
                warn(warning)
            if plan.root_ids is not None and fifo_fd >= 0:
                os.chown(os.path.join(directory, EXEC_FIFO), *plan.root_ids)  # the init's, as runc does
            if cgroups.exists() and cgroups.pids():
                busy = cgroups
                cgroups = None  # not ours: leave it alone when cleaning up
                raise PyruncError(
                    f"container's cgroup is not empty: {len(busy.pids())} process(es) found in "
                    f"{sorted(set(busy.paths().values()))[0]} (another container with this id?)"
                )
            cgroups.create()
            cgroups.set(resources)
            if vfork:
                pid = launch_vfork(plan)
            else:

                def creation_hooks(child_pid: int) -> None:  # at the init's SYNC op, with hooks only
                    from pyrunc._hooks import run_hooks, state_json

                    assert spec.hooks is not None
                    state = state_json(
                        container_id,
                        Status.CREATING,
                        child_pid,
                        bundle,
                        spec.annotations,
                        spec.oci_version,
                    )
                    run_hooks("prestart", spec.hooks.prestart, state)
                    run_hooks("createRuntime", spec.hooks.create_runtime, state)

                child = launch(
                    plan,
                    cgroups=None if joins else cgroups,
                    oom_score_adj=process.oom_score_adj,
                    on_sync=creation_hooks,
                )
                pid = child.pid
                if start:
                    child.start()
                else:
                    child.detach()
        finally:
            if fifo_fd >= 0:
                os.close(fifo_fd)
            if console is not None:
                console.close()
        start_time = process_start_time(pid)
        if start_time is None and not start:
            raise PyruncError("container init exited during create")
        saved = SavedState(
            id=container_id,
            init_pid=pid,
            init_start_time=start_time or 0,
            bundle=bundle,
            rootfs=os.path.realpath(os.path.join(bundle, spec.root.path)),
            created=rfc3339_now(),
            oci_version=spec.oci_version,
            annotations=dict(spec.annotations),
            cgroup_paths=cgroups.paths(),
            namespaces=[ns.type for ns in linux.namespaces] if linux else [],
            process=process.to_json(),
            hooks=spec.hooks.to_json() if hooked and spec.hooks is not None else {},
            seccomp=linux.seccomp if linux else None,
        )
        saved.save(directory)
        if options.pid_file:
            _write_pid_file(options.pid_file, pid)
    except BaseException as exc:
        if pid > 0:
            _kill_child(pid)
        if cgroups is not None and isinstance(exc, InitError):
            _note_oom(exc, cgroups)
        _cleanup(exc, cgroups, root, container_id)
        raise
    return saved, pid, receiver


def exec_process(
    saved: SavedState,
    root: str,
    process: Process,
    *,
    detach: bool = False,
    pid_file: str | None = None,
    preserve_fds: int = 0,
    console_socket: str | None = None,
) -> int:
    """:meth:`pyrunc.Container.exec`: launch ``process`` in the container recorded in ``saved`` (its
    state root ``root``) and (unless ``detach``) wait for it."""

    console, receiver = _console_sockets(process, console_socket, bridge=not detach)
    if receiver is not None:
        process = _with_our_terminal_size(process)
    cgroups = saved.cgroups()
    try:
        plan = compile_exec(
            process,
            namespaces=saved.namespaces,
            init_pid=saved.init_pid,
            rootfs=saved.rootfs,
            preserve_fds=preserve_fds,
            console_fd=console.fileno() if console is not None else -1,
            seccomp=saved.seccomp,
            seccomp_cache=_seccomp_cache_dir(root),
            # It joins them itself, still in our namespaces (see CgroupManager.join_files).
            join_cgroups=cgroups.join_files(),
        )
        for warning in plan.warnings:
            warn(warning)
        child = launch(plan, oom_score_adj=process.oom_score_adj)
    except BaseException:
        if receiver is not None:
            receiver.close()
        raise
    finally:
        if console is not None:
            console.close()
    try:
        child.wait_exec()
    except BaseException:
        child.kill()
        if receiver is not None:
            receiver.close()
        raise
    if pid_file:
        _write_pid_file(pid_file, child.pid)
    if detach:
        return child.pid
    with _forward_signals() as forward:
        forward.to(child.pid)
        return _wait_or_bridge(child.pid, receiver)


# -- helpers -----------------------------------------------------------------------------
def _seccomp_cache_dir(root: str) -> str:
    """The directory of compiled seccomp filters of the state root ``root`` (see
    :mod:`pyrunc._plan.seccomp`). ``@`` is not allowed in container ids: it is never a container's
    directory, and ``list`` skips it as it skips any name that is not an id."""
    return os.path.join(root, "@seccomp")


def _device_rules(spec: RuntimeSpec) -> list[DeviceRule]:

    linux = spec.linux
    rules = list(linux.resources.devices) if linux and linux.resources else []
    for kind, major, minor, access in _ALLOWED_DEVICES:
        rules.append(DeviceRule(allow=True, type=kind, major=major, minor=minor, access=access))
    for device in linux.devices if linux else []:
        kind = "c" if device.type == "u" else device.type
        if kind in ("c", "b"):
            rules.append(
                DeviceRule(allow=True, type=kind, major=device.major, minor=device.minor, access="rwm")
            )
    return rules


def _console_sockets(
    process: Process | None, console_socket: str | None, *, bridge: bool
) -> tuple[_socket.socket | None, _socket.socket | None]:
    """(the socket end the init sends its pty master on, the end we receive it on ourselves).
    runc's rules and words: a terminal needs a console socket unless we stay to bridge it, and
    a console socket needs a terminal."""
    if process is None or not process.terminal:
        if console_socket:
            raise PyruncError("cannot use console socket if runc will not detach or allocate tty")
        return None, None
    from pyrunc._launch import console  # a terminal's only: see ARCHITECTURE.md, start-up

    if console_socket:
        return console.connect(console_socket), None
    if not bridge:
        raise PyruncError("cannot allocate tty if runc will detach without setting console socket")
    ours, theirs = console.socketpair()
    return theirs, ours


def _with_our_terminal_size(process: Process) -> Process:
    """``process`` with the size of the terminal on our stdin, if it is one, as its consoleSize (a
    terminal we bridge to ours has its size)."""
    from pyrunc._launch import console

    size = console.terminal_size()
    if size is None:
        return process
    return process.replace(console_size=ConsoleSize(height=size[0], width=size[1]))


def _wait_or_bridge(pid: int, receiver: _socket.socket | None) -> int:
    """Wait for ``pid``; with a pty to receive, bridge it to our stdio until then."""
    if receiver is None:
        return _wait_child(pid)
    from pyrunc._launch import console

    try:
        master = console.receive_master(receiver)
    finally:
        receiver.close()
    return console.bridge(master, pid)


def _write_pid_file(path: str, pid: int) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "w") as f:
            f.write(str(pid))
        os.replace(tmp, path)
    except OSError as exc:
        try:
            os.unlink(tmp)  # our own, if it was made
        except OSError:
            pass
        raise PyruncError(f"pid file {path}: {exc.strerror}") from None


def _wait_child(pid: int) -> int:
    while True:
        try:
            _, status = os.waitpid(pid, 0)
        except InterruptedError:
            continue
        if os.WIFSIGNALED(status):
            return 128 + os.WTERMSIG(status)
        return os.WEXITSTATUS(status)


class _forward_signals:
    """While we are responsible for a container, pass the signals a terminal or a supervisor
    sends on to it, as runc does; those that come before it exists wait for :meth:`to`."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)

    def __init__(self) -> None:
        self.pid: int | None = None
        self.pending: list[int] = []
        self.saved: list[object] = []

    def to(self, pid: int) -> None:
        """Forward to ``pid`` from now on, starting with what arrived before."""
        self.pid = pid
        while self.pending:
            self._send(self.pending.pop(0))

    def _send(self, signum: int) -> None:
        assert self.pid is not None
        try:
            os.kill(self.pid, signum)
        except ProcessLookupError:
            pass

    def _handle(self, signum: int, frame: object) -> None:
        if self.pid is None:
            self.pending.append(signum)
        else:
            self._send(signum)

    def __enter__(self) -> _forward_signals:
        self.saved = [signal.signal(sig, self._handle) for sig in self.SIGNALS]
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in zip(self.SIGNALS, self.saved, strict=True):
            signal.signal(sig, handler)  # type: ignore[arg-type]


def _note_oom(exc: BaseException, cgroups: CgroupManager) -> None:
    """Say so when set-up failed because it hit the memory limit (the init is OOM-killed, or a
    kernel allocation it needs fails)."""
    try:
        memory = cgroups.stats().memory
    except (OSError, PyruncError):
        return
    if memory.oom_kill or memory.failcnt:
        exc.add_note(
            f"the container's cgroup hit its memory limit ({memory.limit} bytes) during set-up: "
            "linux.resources.memory.limit is too low"
        )


def _kill_child(pid: int) -> None:
    """SIGKILL and reap our own child (a create that failed half-way)."""
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


def _cleanup(exc: BaseException, cgroups: CgroupManager | None, root: str, container_id: str) -> None:
    """Undo a failed create; a failure here is attached to ``exc``, never replaces it."""
    try:
        if cgroups is not None:
            cgroups.destroy()
    except Exception as cleanup:  # noqa: BLE001 - reported on the original error
        exc.add_note(f"cleanup: removing cgroups failed: {cleanup}")
    try:
        remove_state_dir(root, container_id)
    except (OSError, PyruncError) as cleanup:
        exc.add_note(f"cleanup: removing {container_dir(root, container_id)} failed: {cleanup}")
