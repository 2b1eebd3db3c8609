"""Containers and tasks: the running half of containerd, with a monitor per task instead of a daemon.

- ``containers``: :class:`ContainerService`, the records (image, snapshot, generated spec);
- ``tasks``: :class:`TaskService` and :class:`Task`, their live processes, each supervised by its own
  monitor (:mod:`pycontainerd._monitor`) and run by pyrunc;
- ``resources``: the limits a task is updated with and the counters it reports, pycontainerd's types;
- ``cgroups``: where a task's cgroups go, and the removal of the directory they share;
- ``stops``: the test seam that stops a creation half-way; ``protocols``: what the container service
  needs of the images (for type checking).

The services hold what they use, not the client: the metadata store, the snapshotters, the event log,
the images (:class:`~pycontainerd._tasks.protocols.ImageSource`), and each other (a container's
deletion deletes its task).
"""

from __future__ import annotations

from pycontainerd._tasks.containers import DEFAULT_RUNTIME, ContainerService
from pycontainerd._tasks.resources import (
    BlkioMetrics,
    CpuMetrics,
    MemoryMetrics,
    Metrics,
    PidsMetrics,
    Resources,
)
from pycontainerd._tasks.tasks import DEFAULT_LOG_MAX, ExecProcess, Task, TaskService, TaskStatus

__all__ = [
    "DEFAULT_LOG_MAX",
    "DEFAULT_RUNTIME",
    "BlkioMetrics",
    "ContainerService",
    "CpuMetrics",
    "ExecProcess",
    "MemoryMetrics",
    "Metrics",
    "PidsMetrics",
    "Resources",
    "Task",
    "TaskService",
    "TaskStatus",
]
