"""The monitor's process making a container's init with pyrunc, the runtime the task service runs."""

from __future__ import annotations

import pyrunc
from pycontainerd._monitor.launch import CreateRequest, MonitorLauncher

__all__ = ["create_init", "pyrunc_launcher"]


def create_init(request: CreateRequest) -> tuple[int, str | None]:
    """Create the container ``request`` describes with pyrunc, in the monitor's forked process: the
    init's pid and its memory cgroup (for the monitor's OOM reports)."""
    options = pyrunc.CreateOptions(
        request.bundle, pid_file=request.pid_file, console_socket=request.console_socket
    )
    container = pyrunc.Container.create(request.id, options, root=request.root)
    return container.pid, container.cgroup_paths.get("memory")


def pyrunc_launcher() -> MonitorLauncher:
    """A monitor's process forked now, to load pyrunc's create machinery while the caller makes the
    container; hand it to :meth:`TaskService.create`, or close it. Only for a process with one thread
    (pyctr): a forked child's imports can deadlock on locks other threads hold. ``pyctr run`` forks
    it first thing, so that the child loads pyrunc's create machinery on the other CPU while this
    process opens the store and makes the container's snapshot and spec."""
    return MonitorLauncher(create_init, load=pyrunc.preload)
