"""The interface every cgroup driver satisfies structurally (import it only under ``TYPE_CHECKING``).

Drivers (:class:`pyrunc._cgroups.v1.V1Manager`, :class:`pyrunc._cgroups.v2.V2Manager`) are plain
classes; they never import this module (it imports ``typing``). The conformance check at the bottom
makes mypy prove that both satisfy :class:`CgroupManager`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from pyrunc._cgroups.stats import Stats
    from pyrunc._spec.resources import Resources

__all__ = ["CgroupManager"]


class CgroupManager(Protocol):
    """One container's cgroups. Every failure raises :class:`pyrunc._errors.CgroupError`."""

    def paths(self) -> dict[str, str]:
        """Controller (v1: ``"memory"``, ``"name=systemd"``...; v2: ``""``) -> absolute directory.

        Save it with the container's state; ``pyrunc._cgroups.manager.from_paths`` rebuilds the manager.
        """
        ...

    def exists(self) -> bool:
        """Whether any of the container's cgroup directories exists."""
        ...

    def create(self) -> None:
        """Make the directories (v1: in every mounted hierarchy this process is in)."""
        ...

    def apply(self, pid: int) -> None:
        """Move ``pid`` into the container's cgroup in every hierarchy."""
        ...

    def join_files(self) -> list[str]:
        """The files a process writes ``0`` to, one after the other, to move itself into the
        container's cgroups (a container's init before its set-up), instead of ``apply``."""
        ...

    def set(self, resources: Resources) -> None:
        """Apply ``linux.resources``; anything this driver cannot do raises naming the field."""
        ...

    def update(self, resources: Resources) -> None:
        """``set`` for a live container (``pyrunc update``)."""
        ...

    def pids(self) -> list[int]:
        """Every pid in the container's cgroup and its descendants, sorted."""
        ...

    def freeze(self) -> None:
        """Freeze every process; returns once the cgroup is frozen (bounded wait)."""
        ...

    def thaw(self) -> None:
        """Undo ``freeze``."""
        ...

    def is_frozen(self) -> bool:
        """Whether the cgroup is frozen."""
        ...

    def stats(self) -> Stats:
        """Memory, OOM kills, pids, CPU and block I/O accounting."""
        ...

    def destroy(self) -> None:
        """Remove the directories, deepest first (bounded retry on EBUSY); absent ones are fine."""
        ...

    def mount_hierarchies(self) -> list[tuple[str, str, str]]:
        """v1: (directory name under /sys/fs/cgroup, mount option, container's host directory) per
        hierarchy, for building the container's /sys/fs/cgroup; v2: ``[]``."""
        ...


if TYPE_CHECKING:
    from pyrunc._cgroups.v1 import V1Manager
    from pyrunc._cgroups.v2 import V2Manager

    def _conforms(v1: V1Manager, v2: V2Manager) -> tuple[CgroupManager, CgroupManager]:
        return v1, v2
