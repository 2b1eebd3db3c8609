"""Where a task's cgroups go: ``<own cgroup>/pyrunc/<namespace>@<id>`` in every hierarchy, below the
cgroup of the process that creates the task (a relative ``cgroupsPath``, which pyrunc resolves).
"""

from __future__ import annotations

__all__ = ["cgroups_path"]

#: The directory, below the creating process's cgroup, that holds the tasks' cgroups.
PARENT = "pyrunc"


def cgroups_path(namespace: str, container_id: str) -> str:
    """The spec's ``cgroupsPath`` for a container (``@`` is in neither a namespace nor an id, so no two
    containers share one)."""
    return f"{PARENT}/{namespace}@{container_id}"
