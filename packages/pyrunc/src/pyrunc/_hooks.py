"""OCI hooks: when each kind runs, where, and what a failure means.

==================  ===========================  ===================  =========================
hook                when                         where                a failure
==================  ===========================  ===================  =========================
prestart            create, mounts done, before  runtime namespace    fails create
                    pivot_root (deprecated)      (this process)
createRuntime       same point, after prestart   runtime namespace    fails create
createContainer     same point, after those      container namespace  fails create
                                                 (the init runs it)
startContainer      start, just before exec      container namespace  fails start (the init
                                                 (the init runs it)   exits)
poststart           start, after exec            runtime namespace    a warning, nothing more
poststop            delete, after clean-up       runtime namespace    a warning, nothing more
==================  ===========================  ===================  =========================

Each hook gets the container's state JSON on stdin and is killed after ``timeout`` seconds.
Hooks that run in the container's namespaces are ops the init executes (see native.c
``op_hook``); the others run here, through :func:`run_hooks`.
"""

from __future__ import annotations

import os

from pyrunc import _jsonio
from pyrunc._errors import PyruncError, warn
from pyrunc._signals import signal

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    from pyrunc._spec.config import Hook

__all__ = ["HookError", "run_hooks", "state_json", "warn_hooks"]


class HookError(PyruncError):
    """A hook exited non-zero, was killed, timed out or could not be started."""


def state_json(
    container_id: str,
    status: str,
    pid: int | None,
    bundle: str,
    annotations: dict[str, str],
    oci_version: str,
) -> str:
    """The state document a hook reads on stdin."""
    state: dict[str, object] = {"ociVersion": oci_version, "id": container_id, "status": status}
    if pid is not None:
        state["pid"] = pid
    state["bundle"] = bundle
    if annotations:
        state["annotations"] = annotations
    return _jsonio.dumps(state)


def run_hooks(kind: str, hooks: Sequence[Hook], state: str) -> None:
    """Run ``hooks`` in order with ``state`` on stdin; the first failure raises HookError."""
    for i, hook in enumerate(hooks):
        name = f"{kind} hook {hook.path}"
        try:
            status, stderr = _run(hook, state.encode())
        except OSError as exc:
            raise HookError(f"hooks.{kind}[{i}]: {name}: {exc.strerror}") from None
        if status is None:
            raise HookError(f"hooks.{kind}[{i}]: {name} timed out after {hook.timeout}s")
        if status:
            how = describe_failure(
                2000 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else 1000 + os.WEXITSTATUS(status)
            )
            detail = stderr.decode(errors="replace").strip()
            raise HookError(f"hooks.{kind}[{i}]: {name} failed: {how}" + (f": {detail}" if detail else ""))


def _run(hook: Hook, stdin: bytes) -> tuple[int | None, bytes]:
    """Spawn one hook and wait for it within its timeout. Returns (wait status, or None if it
    timed out; its stderr). ``posix_spawn``: ``subprocess`` imports more than create may (see
    ARCHITECTURE.md, start-up)."""
    import select
    import time

    env = dict(entry.split("=", 1) for entry in hook.env if "=" in entry)
    in_r, in_w = os.pipe2(os.O_CLOEXEC)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    try:
        pid = os.posix_spawn(
            hook.path,
            hook.args or [hook.path],
            env,
            file_actions=[
                (os.POSIX_SPAWN_DUP2, in_r, 0),
                (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
                (os.POSIX_SPAWN_DUP2, err_w, 2),
            ],
            setsigdef=(signal.SIGPIPE, signal.SIGXFSZ),  # ignored by Python, not by the hook
        )
    finally:
        os.close(in_r)
        os.close(err_w)
    pidfd = os.pidfd_open(pid)
    try:
        try:
            os.write(in_w, stdin)  # a state document fits a pipe
        except BrokenPipeError:
            pass  # the hook does not read its stdin
        os.close(in_w)
        in_w = -1
        deadline = time.monotonic() + hook.timeout if hook.timeout else None
        stderr = b""
        reading = True
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([pidfd, err_r] if reading else [pidfd], [], [], left)
            if not ready:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return None, stderr
            if err_r in ready:
                chunk = os.read(err_r, 65536)
                stderr += chunk[: max(0, 65536 - len(stderr))]
                reading = bool(chunk)
            if pidfd in ready:
                _, status = os.waitpid(pid, 0)
                while reading and select.select([err_r], [], [], 0)[0]:  # what it wrote last
                    chunk = os.read(err_r, 65536)
                    stderr += chunk[: max(0, 65536 - len(stderr))]
                    reading = bool(chunk)
                return status, stderr
    finally:
        os.close(pidfd)
        os.close(err_r)
        if in_w >= 0:
            os.close(in_w)


def warn_hooks(kind: str, hooks: Sequence[Hook], state: str) -> None:
    """poststart and poststop: run every hook; a failure is a warning on stderr, as the spec says."""
    for hook in hooks:
        try:
            run_hooks(kind, [hook], state)
        except HookError as exc:
            warn(str(exc))


def describe_failure(err: int) -> str:
    """The words for a hook failure reported by the init (native.h PYRUNC_HOOK_*)."""
    if err >= 2000:
        return f"killed by signal {err - 2000}"
    if err >= 1000:
        return f"exit status {err - 1000}"
    return os.strerror(err)
