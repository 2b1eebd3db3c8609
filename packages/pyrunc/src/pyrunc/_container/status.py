"""``ContainerStatus``: a container's status as :meth:`pyrunc.Container.status` gives it, and what each
status allows (youki's ``ContainerStatus`` with ``can_start()``, ``can_kill()``...).

The statuses and the verbs each allows are :mod:`.state`'s: the lifecycle verbs of the command line
guard on those strings, so that they do not import ``enum`` (see ARCHITECTURE.md, start-up); this
enum is built from the same strings and reads the same table.
"""

from __future__ import annotations

import enum

from pyrunc._container.state import ALLOWED, Status

__all__ = ["ContainerStatus"]


class ContainerStatus(enum.Enum):
    """The OCI statuses, plus runc's ``paused``; ``.value`` is the word ``pyrunc state`` prints."""

    CREATING = Status.CREATING
    CREATED = Status.CREATED
    RUNNING = Status.RUNNING
    PAUSED = Status.PAUSED
    STOPPED = Status.STOPPED

    def can_start(self) -> bool:
        return self.value in ALLOWED["start"]

    def can_kill(self) -> bool:
        return self.value in ALLOWED["kill"]

    def can_pause(self) -> bool:
        return self.value in ALLOWED["pause"]

    def can_resume(self) -> bool:
        return self.value in ALLOWED["resume"]

    def can_exec(self) -> bool:
        return self.value in ALLOWED["exec"]

    def can_update(self) -> bool:
        return self.value in ALLOWED["update"]

    def can_delete(self) -> bool:
        """Without ``force``: a running or paused container is killed by ``delete(force=True)`` only."""
        return self.value in ALLOWED["delete"]
