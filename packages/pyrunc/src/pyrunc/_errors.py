"""Exceptions raised by pyrunc.

    PyruncError
     ├── SpecError                 config.json is malformed or breaks the OCI schema
     │    └── UnsupportedFieldError a valid field that pyrunc does not implement yet
     ├── ContainerError            a lifecycle verb was refused (carries the container id)
     │    ├── ContainerNotFoundError   "container <id> does not exist"
     │    ├── ContainerExistsError     "container with id exists: <id>"
     │    └── InvalidStateError        e.g. "container not running"
     ├── CgroupError               a cgroup could not be created, configured or removed
     └── InitError                 the container's init failed a set-up step before exec

Kernel calls that fail outside those contexts raise ``OSError`` with errno, strerror and path.
The messages that containerd's shim matches ("container not running", "does not exist",
"no such process") are kept word for word.

What pyrunc goes on despite (a capability it cannot grant, a poststart hook that failed) is not an
exception but a warning, :func:`warn`.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "CgroupError",
    "ContainerError",
    "ContainerExistsError",
    "ContainerNotFoundError",
    "InitError",
    "InvalidStateError",
    "PyruncError",
    "SpecError",
    "UnsupportedFieldError",
    "log_warnings_to",
    "warn",
]

# The command line's log of warnings (its --log), when it has one: see warn.
_warning_log: list[Callable[[str], None]] = []


def log_warnings_to(log: Callable[[str], None]) -> None:
    """Send the warnings of :func:`warn` to ``log`` from now on (the command line's --log)."""
    _warning_log[:] = [log]


def warn(message: str) -> None:
    """Report something pyrunc goes on despite, as runc logs it at level warning: to the command
    line's log when it has one (under containerd's shim, the stderr of ``create`` is the
    container's own), else on stderr as ``pyrunc: warning: <message>``."""
    if _warning_log:
        _warning_log[0](message)
    else:
        print(f"pyrunc: warning: {message}", file=sys.stderr)


class PyruncError(Exception):
    """Root of every error pyrunc raises on purpose."""


class SpecError(PyruncError):
    """The runtime spec is malformed; the message starts with the offending field's path."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}" if field else problem)
        self.field = field
        self.problem = problem


class UnsupportedFieldError(SpecError):
    """A field that is valid OCI but not implemented by pyrunc yet."""

    def __init__(self, field: str, problem: str = "is not supported by pyrunc yet") -> None:
        super().__init__(field, problem)


class ContainerError(PyruncError):
    """A lifecycle verb was refused for the container ``container_id``."""

    def __init__(self, container_id: str, message: str) -> None:
        super().__init__(message)
        self.container_id = container_id


class ContainerNotFoundError(ContainerError):
    def __init__(self, container_id: str) -> None:
        super().__init__(container_id, f"container {container_id} does not exist")


class ContainerExistsError(ContainerError):
    def __init__(self, container_id: str) -> None:
        super().__init__(container_id, f"container with id exists: {container_id}")


class InvalidStateError(ContainerError):
    """The verb does not apply to the container's current status."""


class CgroupError(PyruncError):
    """Creating, configuring, joining or removing a cgroup failed."""


class InitError(PyruncError):
    """The container's init process failed a set-up step before exec.

    ``step`` names the step (e.g. ``"mount proc on /proc"``), ``errno`` is the kernel's error.
    """

    def __init__(self, step: str, errno: int, detail: str = "") -> None:
        import os

        reason = detail or os.strerror(errno)
        super().__init__(f"{step}: {reason}")
        self.step = step
        self.errno = errno
