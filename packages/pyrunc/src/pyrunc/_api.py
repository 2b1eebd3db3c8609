"""Isolation without a daemon: run a program in a root filesystem, get its output back.

    result = pyrunc.run(["echo", "hi"], rootfs="/srv/busybox", memory_limit=64 << 20, pids_limit=32)
    result.returncode, result.stdout

No state directory is written: the container exists for the duration of the call.
"""

from __future__ import annotations

import os
import select
import signal
import time
from typing import TYPE_CHECKING

from pyrunc._cgroups.manager import open_cgroups
from pyrunc._errors import PyruncError
from pyrunc._launch.child import launch_vfork
from pyrunc._model import Model
from pyrunc._plan.compile import compile_init
from pyrunc._spec.config import Root, default_spec
from pyrunc._spec.resources import Memory, Pids, Resources

if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Final

    from pyrunc._cgroups.driver import CgroupManager

__all__ = ["CompletedProcess", "TimeoutExpired", "run"]

_counter = [0]


class TimeoutExpired(PyruncError):
    """The program ran longer than the timeout and was killed."""


class CompletedProcess(Model):
    """What :func:`run` returns, shaped like ``subprocess.CompletedProcess``."""

    __slots__ = ("args", "oom_killed", "returncode", "stderr", "stdout")

    def __init__(
        self, args: list[str], returncode: int, stdout: bytes, stderr: bytes, oom_killed: bool
    ) -> None:
        self.args: Final = args
        self.returncode: Final = returncode
        self.stdout: Final = stdout
        self.stderr: Final = stderr
        self.oom_killed: Final = oom_killed

    def __repr__(self) -> str:
        return (
            f"CompletedProcess(args={self.args!r}, returncode={self.returncode}, "
            f"stdout={self.stdout!r}, stderr={self.stderr!r}, oom_killed={self.oom_killed})"
        )


def run(
    args: Sequence[str],
    *,
    rootfs: str,
    env: Sequence[str] = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",),
    cwd: str = "/",
    hostname: str = "pyrunc",
    user: tuple[int, int] = (0, 0),
    memory_limit: int | None = None,
    pids_limit: int | None = None,
    network: bool = False,
    readonly: bool = False,
    input: bytes | None = None,
    timeout: float | None = None,
) -> CompletedProcess:
    """Run ``args`` isolated in ``rootfs`` (new pid, mount, ipc, uts and, unless ``network``,
    network namespaces; runc's default capabilities, masks and mounts) and capture its output.

    ``memory_limit`` (bytes) and ``pids_limit`` put it in a cgroup of its own. The exit code is
    ``128 + signal`` when it was killed; ``oom_killed`` says whether the memory limit did it.
    """
    spec = default_spec()
    process, linux = spec.process, spec.linux
    assert process is not None and linux is not None
    process = process.replace(
        terminal=False,
        args=list(args),
        env=list(env),
        cwd=cwd,
        user=process.user.replace(uid=user[0], gid=user[1]),
    )
    if network:
        linux = linux.replace(namespaces=[ns for ns in linux.namespaces if ns.type != "network"])
    root = Root(path=os.path.abspath(rootfs), readonly=readonly)
    spec = spec.replace(
        root=root,
        process=process,
        hostname=hostname,
        linux=linux,
    )
    cgroups: CgroupManager | None = None
    if memory_limit is not None or pids_limit is not None:
        _counter[0] += 1
        # Only the hierarchies the limits need: no device rules are needed either, since runc's
        # default capabilities leave out CAP_MKNOD and /dev holds only the harmless devices.
        wanted = {"memory"} if memory_limit is not None else set()
        if pids_limit is not None:
            wanted.add("pids")
        cgroups = open_cgroups(f"run-{os.getpid()}-{_counter[0]}", None, controllers=frozenset(wanted))
    else:
        spec = spec.replace(mounts=[m for m in spec.mounts if m.type != "cgroup"])
    stdin_r, stdin_w = os.pipe2(os.O_CLOEXEC)
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    ours = [stdin_w, out_r, err_r]
    theirs = [stdin_r, out_w, err_w]
    try:
        if cgroups is not None:
            cgroups.create()
            memory = Memory(limit=memory_limit, swap=memory_limit) if memory_limit is not None else None
            pids = Pids(limit=pids_limit) if pids_limit is not None else None
            cgroups.set(Resources(memory=memory, pids=pids))
        plan = compile_init(
            spec,
            bundle=os.path.dirname(root.path),
            cgroup_hierarchies=cgroups.mount_hierarchies() if cgroups else (),
            stdio=theirs,
            vfork=True,
            join_cgroups=cgroups.join_files() if cgroups else (),
        )
        pid = launch_vfork(plan)
        for fd in theirs:
            os.close(fd)
        theirs = []
        if input:
            os.write(stdin_w, input)  # small inputs; a pipe holds 64 KiB
        os.close(stdin_w)
        ours.remove(stdin_w)
        stdout, stderr = _collect(pid, out_r, err_r, timeout)
        _, status = os.waitpid(pid, 0)
        code = 128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        oom = bool(cgroups and memory_limit is not None and (cgroups.stats().memory.oom_kill or 0) > 0)
        return CompletedProcess(list(args), code, stdout, stderr, oom)
    finally:
        for fd in ours + theirs:
            os.close(fd)
        if cgroups is not None:
            cgroups.destroy()


def _collect(pid: int, out_fd: int, err_fd: int, timeout: float | None) -> tuple[bytes, bytes]:
    chunks: dict[int, list[bytes]] = {out_fd: [], err_fd: []}
    poller = select.poll()
    for fd in chunks:
        poller.register(fd, select.POLLIN)
    open_fds = set(chunks)
    deadline = None if timeout is None else time.monotonic() + timeout
    while open_fds:
        wait_ms = None if deadline is None else max(0, int((deadline - time.monotonic()) * 1000))
        events = poller.poll(wait_ms)
        if not events and deadline is not None and time.monotonic() >= deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise TimeoutExpired(f"timed out after {timeout} seconds")
        for fd, _ in events:
            data = os.read(fd, 65536)
            if data:
                chunks[fd].append(data)
            else:
                poller.unregister(fd)
                open_fds.discard(fd)
    return b"".join(chunks[out_fd]), b"".join(chunks[err_fd])
