"""Start a compiled plan and talk to the child until it is ready.

The parent and the child share a SOCK_SEQPACKET pair (close-on-exec on both ends). The
conversation, in order:

=========  ==========  ===========================================================
direction  message     meaning
=========  ==========  ===========================================================
P -> C     ``G``       oom_score_adj set, the child moved into its cgroups unless it
                       joins them itself (its first ops), its new user namespace's
                       uid_map and gid_map written: begin set-up
C -> P     (-4, pid)   (joined user namespace, new pid namespace) the child forked the
                       init, our child too (CLONE_PARENT), and exits; pid is the init's
C -> P     (-1, 0)     set-up done, argv[0] found; the child now waits for start
C -> P     (i, errno)  op number i failed with errno; the child exits
P -> C     ``S``       start (``run`` and ``exec``; ``create`` uses the exec fifo)
C -> P     EOF         execve succeeded (the child's end closed on exec)
=========  ==========  ===========================================================

Reports are two native-endian int32s (struct pyrunc_report).
"""

from __future__ import annotations

import errno
import os
import sys

from pyrunc._errors import InitError
from pyrunc._native.kernel import CloneFlags, OpKind, SpawnRequest, StepFailed, spawn
from pyrunc._signals import signal

TYPE_CHECKING = False
if TYPE_CHECKING:
    import _socket
    from collections.abc import Callable

    from pyrunc._cgroups.driver import CgroupManager
    from pyrunc._plan.plan import Plan

__all__ = ["Child", "launch", "launch_vfork"]


class Child:
    """A cloned child that reported ready, and the parent's end of the control socket."""

    __slots__ = ("_ctl", "pid", "plan")

    def __init__(self, pid: int, ctl: _socket.socket, plan: Plan) -> None:
        self.pid = pid
        self._ctl = ctl
        self.plan = plan

    def start(self) -> None:
        """Release a child waiting on the control socket and wait until it has exec'd."""
        self._ctl.send(b"S")
        self._expect_exec()

    def wait_exec(self) -> None:
        """For a child that execs right after ready: wait until it has."""
        self._expect_exec()

    def detach(self) -> None:
        """Stop talking to the child (it waits on the exec fifo, or has exec'd)."""
        self._ctl.close()

    def _expect_exec(self) -> None:
        try:
            data = self._ctl.recv(8)
        finally:
            self._ctl.close()
        if data:
            raise _report_error(self.plan, data)

    def kill(self) -> None:
        """SIGKILL and reap the child (used when set-up fails)."""
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass


def _report_error(plan: Plan, data: bytes) -> InitError:
    index = int.from_bytes(data[:4], sys.byteorder, signed=True)
    err = int.from_bytes(data[4:8], sys.byteorder, signed=True)
    return _step_error(plan, index, err)


def _step_error(plan: Plan, index: int, err: int) -> InitError:
    if not 0 <= index < len(plan.ops):
        return InitError("container init", err)
    op = plan.ops[index]
    if op.kind == OpKind.FIND_EXEC and err == errno.ENOENT:
        return InitError(op.step, err, "executable file not found in $PATH")  # runc's words
    if op.kind in (OpKind.FIND_EXEC, OpKind.EXEC) and err == errno.EACCES and plan.root_ids is None:
        return InitError(op.step, err, "permission denied")  # runc's words (Go's), which engines look for
    if op.kind == OpKind.HOOK:
        from pyrunc._hooks import describe_failure

        return InitError(
            op.step, err, "timed out" if err == errno.ETIMEDOUT else f"failed: {describe_failure(err)}"
        )
    if op.kind == OpKind.EXEC and err == errno.E2BIG:
        return InitError(op.step, err, "process.args and process.env are longer than execve(2) takes")
    if op.kind == OpKind.SYSCTL and err == errno.EXDEV:
        return InitError(
            op.step, err, "not below the container's own /proc/sys (no procfs there, or a mount over it)"
        )
    if op.kind == OpKind.CHDIR and err == errno.EXDEV:
        return InitError(op.step, err, "the working directory is outside the container's root")
    if err == errno.EACCES and plan.root_ids is not None:
        return InitError(
            op.step,
            err,
            f"{os.strerror(err)} (the container's root, host uid {plan.root_ids[0]}, reaches it with its own "
            "rights, as with runc: the rootfs and the directories above it must let it through)",
        )
    return InitError(op.step, err)


def describe(wait_status: int) -> str:
    """A wait status in words."""
    if os.WIFSIGNALED(wait_status):
        return f"killed by signal {os.WTERMSIG(wait_status)}"
    return f"exited with status {os.WEXITSTATUS(wait_status)}"


def _request(plan: Plan, ctl_fd: int, pidns: int, timens: int, vfork: bool) -> SpawnRequest:
    return SpawnRequest(
        ops=plan.ops,
        argv=plan.argv,
        envp=plan.envp,
        ctl_fd=ctl_fd,
        clone_flags=plan.clone_flags & ~CloneFlags.NEWTIME,
        join_pidns_fd=pidns,
        join_timens_fd=timens,
        time_offsets=plan.time_offsets if timens < 0 else None,
        vfork=vfork,
    )


def launch_vfork(plan: Plan) -> int:
    """Start a plan compiled for vfork mode; return the pid once the child has exec'd.

    A failed step raises InitError naming it (the child is reaped already).
    """
    pidns = timens = -1
    try:
        pidns = _open_ns(plan.joins.get("pid"))
        timens = _open_ns(plan.joins.get("time"))
        return spawn(_request(plan, -1, pidns, timens, vfork=True))
    except StepFailed as failed:
        if failed.index == -1:
            raise InitError(
                "container init", 0, f"died during set-up: {describe(failed.wait_status)}"
            ) from None
        raise _step_error(plan, failed.index, failed.errno) from None
    finally:
        for fd in (pidns, timens):
            if fd >= 0:
                os.close(fd)


def _write_id_maps(pid: int, uid_map: str, gid_map: str) -> None:
    """Map the child's new user namespace. We are root in the parent namespace, so the kernel
    takes any mapping and /proc/<pid>/setgroups stays "allow" (runc writes them the same way)."""
    for name, text, field in (
        ("uid_map", uid_map, "linux.uidMappings"),
        ("gid_map", gid_map, "linux.gidMappings"),
    ):
        path = f"/proc/{pid}/{name}"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.write(fd, text.encode())  # one write: the kernel takes a map only whole
            finally:
                os.close(fd)
        except OSError as exc:
            raise InitError(f"write {path} ({field})", exc.errno or 0) from None


def _open_ns(path: str | None) -> int:
    return os.open(path, os.O_RDONLY | os.O_CLOEXEC) if path else -1


def launch(
    plan: Plan,
    *,
    cgroups: CgroupManager | None = None,
    oom_score_adj: int | None = None,
    on_sync: Callable[[int], None] | None = None,
) -> Child:
    """Clone the child for ``plan``, put it in ``cgroups`` (None: it joins them itself, or has
    none), and wait until it reports ready.

    ``on_sync(pid)`` runs when the child stops at a SYNC op (the parent's hooks).

    On any failure the child is killed and reaped, and the error (an InitError naming the
    failed step, or the OSError/CgroupError of the parent's part) is raised.
    """
    import _socket  # only the create path talks over a socket

    ours, theirs = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET | _socket.SOCK_CLOEXEC)
    pidns = timens = -1
    try:
        pidns = _open_ns(plan.joins.get("pid"))
        timens = _open_ns(plan.joins.get("time"))
        pid = spawn(_request(plan, theirs.fileno(), pidns, timens, vfork=False))
    except BaseException:
        ours.close()
        raise
    finally:
        theirs.close()
        for fd in (pidns, timens):
            if fd >= 0:
                os.close(fd)
    child = Child(pid, ours, plan)
    try:
        if plan.uid_map is not None and plan.gid_map is not None:
            _write_id_maps(pid, plan.uid_map, plan.gid_map)
        if cgroups is not None:
            cgroups.apply(pid)
        if oom_score_adj is not None:
            with open(f"/proc/{pid}/oom_score_adj", "w") as f:
                f.write(str(oom_score_adj))
        ours.send(b"G")
        while True:
            data = ours.recv(8)
            if not data:
                _, status = os.waitpid(pid, 0)
                raise InitError("container init", 0, f"died during set-up: {describe(status)}")
            index = int.from_bytes(data[:4], sys.byteorder, signed=True)
            if index == -4:  # PYRUNC_OP_FORK: the init takes over from the child
                init_pid = int.from_bytes(data[4:8], sys.byteorder, signed=True)
                os.waitpid(pid, 0)
                pid = child.pid = init_pid
                continue
            if index == -3 and on_sync is not None:
                on_sync(pid)
                ours.send(b"H")
                continue
            if index != -1:
                raise _report_error(plan, data)
            break
    except BaseException:
        ours.close()
        child.kill()
        raise
    return child
