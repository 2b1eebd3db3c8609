"""The plan of a container start: what :mod:`pyrunc._plan.compile` builds from a runtime spec and
:mod:`pyrunc._launch.child` starts (the namespaces to create or join, the ID maps, and the ops the
child runs, see native.h)."""

from __future__ import annotations

from pyrunc._errors import SpecError
from pyrunc._native.kernel import MAX_SOURCES, Op, OpKind

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyrunc._native.kernel import Argument

__all__ = ["Plan"]


class Plan:
    """A compiled container start: namespaces, joins and the ops for the child."""

    __slots__ = (
        "argv",
        "clone_flags",
        "envp",
        "gid_map",
        "joins",
        "ops",
        "root_ids",
        "slots",
        "sources",
        "time_offsets",
        "uid_map",
        "user_ns",
        "warnings",
    )

    def __init__(self) -> None:
        self.ops: list[Op] = []
        self.clone_flags = 0
        # namespace type -> path to join (pid and time are joined by the parent before clone)
        self.joins: dict[str, str] = {}
        self.time_offsets: str | None = None
        self.argv: list[str] = []
        self.envp: list[str] = []
        # A user namespace (user_ns), new or joined. For a new one the parent writes the maps
        # into /proc/<pid>/{uid,gid}_map before it lets the child go on; root_ids are the host
        # uid and gid of the container's root.
        self.user_ns = False
        self.uid_map: str | None = None
        self.gid_map: str | None = None
        self.root_ids: tuple[int, int] | None = None
        # The child's slots of files it opens early (OPEN_SOURCE): namespace files to join, and
        # the bind sources (slot, path) it opens before it becomes the user namespace's root.
        self.slots = 0
        self.sources: list[tuple[int, str]] = []
        # What the start goes on despite, for the caller to warn about (pyrunc._errors.warn).
        self.warnings: list[str] = []

    def new_slot(self) -> int:
        if self.slots >= MAX_SOURCES:
            raise SpecError("mounts", f"more than {MAX_SOURCES} bind mounts and namespaces to join")
        self.slots += 1
        return self.slots - 1

    def add(self, kind: int, step: str, **args: Argument) -> None:
        """Append an op (see :class:`pyrunc._native.kernel.Op`)."""
        self.ops.append(Op(kind, step, **args))

    def mount(
        self,
        step: str,
        *,
        target: str,
        source: str | None = None,
        source_slot: int = -1,
        fstype: str | None = None,
        flags: int = 0,
        data: str | None = None,
        in_root: bool = False,
        tmpfs: bool = False,
    ) -> None:
        """Append a MOUNT op: ``source_slot`` >= 0 binds the file opened in that slot (OPEN_SOURCE)
        instead of ``source``; ``tmpfs`` makes a missing target, else gives the new filesystem the
        mode of the directory it covers."""
        self.add(
            OpKind.MOUNT,
            step,
            source=source,
            source_slot=source_slot,
            target=target,
            fstype=fstype,
            flags=flags,
            data=data,
            in_root=in_root,
            tmpfs=tmpfs,
        )
