"""Where a task's cgroups go: ``<own cgroup>/pyrunc/<namespace>@<id>`` in every hierarchy, below the
cgroup of the process that creates the task (a relative ``cgroupsPath``, which pyrunc resolves).

The ``pyrunc`` directory above them is shared by the tasks created from one cgroup, and made by the
first of them; pyrunc removes a container's own cgroups, not a parent that the spec named. So the
task service removes that parent once it is empty, after a task's deletion and after a creation
that failed. That races with other creations safely: ``rmdir`` refuses a cgroup that still holds
another task's (EBUSY), and a creation whose parent vanished between its ``mkdir`` calls makes it
again (pyrunc retries).
"""

from __future__ import annotations

import errno
import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["cgroups_path", "remove_empty_parent"]

#: The directory, below the creating process's cgroup, that holds the tasks' cgroups.
PARENT = "pyrunc"


def cgroups_path(namespace: str, container_id: str) -> str:
    """The spec's ``cgroupsPath`` for a container (``@`` is in neither a namespace nor an id, so no two
    containers share one)."""
    return f"{PARENT}/{namespace}@{container_id}"


def remove_empty_parent(paths: Iterable[str], namespace: str, container_id: str) -> None:
    """Remove the ``pyrunc`` directory above each of ``paths`` (a task's cgroup directories, by
    hierarchy) if it is empty. Paths that are not :func:`cgroups_path`'s (a spec that named its own
    cgroups) are left alone, as is a parent that another task's cgroup keeps, or that is gone."""
    inner = "/" + cgroups_path(namespace, container_id)
    for path in paths:
        if not path.endswith(inner):
            continue
        try:
            os.rmdir(path.removesuffix(inner) + "/" + PARENT)
        except OSError as exc:
            if exc.errno not in (errno.ENOENT, errno.EBUSY, errno.ENOTEMPTY):
                raise
