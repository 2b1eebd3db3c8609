"""Containers and tasks: the running half of containerd, with a monitor per task instead of a daemon."""

from __future__ import annotations

from pycontainerd._tasks._containers import DEFAULT_RUNTIME, ContainerService, cgroups_path
from pycontainerd._tasks._tasks import (
    DEFAULT_LOG_MAX,
    ExecProcess,
    Task,
    TaskError,
    TaskService,
    TaskStatus,
)

__all__ = [
    "DEFAULT_LOG_MAX",
    "DEFAULT_RUNTIME",
    "ContainerService",
    "ExecProcess",
    "Task",
    "TaskError",
    "TaskService",
    "TaskStatus",
    "cgroups_path",
]
