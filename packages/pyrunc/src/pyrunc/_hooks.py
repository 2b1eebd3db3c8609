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
import sys

from pyrunc import _jsonio
from pyrunc._errors import PyruncError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    from pyrunc._spec import Hook

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
    import subprocess

    for i, hook in enumerate(hooks):
        name = f"{kind} hook {hook.path}"
        env = dict(entry.split("=", 1) for entry in hook.env if "=" in entry)
        try:
            done = subprocess.run(
                hook.args or [hook.path],
                executable=hook.path,
                input=state.encode(),
                env=env,
                capture_output=True,
                timeout=hook.timeout or None,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise HookError(f"hooks.{kind}[{i}]: {name} timed out after {hook.timeout}s") from None
        except OSError as exc:
            raise HookError(f"hooks.{kind}[{i}]: {name}: {exc.strerror}") from None
        if done.returncode:
            how = (
                f"killed by signal {-done.returncode}"
                if done.returncode < 0
                else f"exit status {done.returncode}"
            )
            detail = done.stderr.decode(errors="replace").strip()
            raise HookError(f"hooks.{kind}[{i}]: {name} failed: {how}" + (f": {detail}" if detail else ""))


def warn_hooks(kind: str, hooks: Sequence[Hook], state: str) -> None:
    """poststart and poststop: run every hook; a failure is a warning on stderr, as the spec says."""
    for hook in hooks:
        try:
            run_hooks(kind, [hook], state)
        except HookError as exc:
            print(f"pyrunc: warning: {exc}", file=sys.stderr)


def describe_failure(err: int) -> str:
    """The words for a hook failure reported by the init (native.h PYRUNC_HOOK_*)."""
    if err >= 2000:
        return f"killed by signal {err - 2000}"
    if err >= 1000:
        return f"exit status {err - 1000}"
    return os.strerror(err)
