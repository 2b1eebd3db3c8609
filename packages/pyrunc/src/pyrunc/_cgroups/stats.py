"""What a container's cgroups report (``Container.stats()``, ``pyrunc events --stats``): memory, cpu,
pids and block I/O counters, None where the kernel has no such file."""

from __future__ import annotations

from pyrunc._model import Model

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Final

__all__ = ["BlkioStats", "CpuStats", "MemoryStats", "PidsStats", "Stats"]


class MemoryStats(Model):
    """Bytes; ``limit`` None means unlimited. ``failcnt``: times the limit was hit (v2: memory.events max).
    ``oom_kill``: processes the OOM killer killed in this cgroup."""

    __slots__ = ("usage", "max_usage", "limit", "failcnt", "oom_kill")

    def __init__(
        self,
        *,
        usage: int | None = None,
        max_usage: int | None = None,
        limit: int | None = None,
        failcnt: int | None = None,
        oom_kill: int | None = None,
    ) -> None:
        self.usage: Final = usage
        self.max_usage: Final = max_usage
        self.limit: Final = limit
        self.failcnt: Final = failcnt
        self.oom_kill: Final = oom_kill


class CpuStats(Model):
    """Nanoseconds. ``nr_periods``/``nr_throttled``/``throttled_time``: CFS bandwidth throttling."""

    __slots__ = ("usage_total", "usage_user", "usage_kernel", "nr_periods", "nr_throttled", "throttled_time")

    def __init__(
        self,
        *,
        usage_total: int | None = None,
        usage_user: int | None = None,
        usage_kernel: int | None = None,
        nr_periods: int | None = None,
        nr_throttled: int | None = None,
        throttled_time: int | None = None,
    ) -> None:
        self.usage_total: Final = usage_total
        self.usage_user: Final = usage_user
        self.usage_kernel: Final = usage_kernel
        self.nr_periods: Final = nr_periods
        self.nr_throttled: Final = nr_throttled
        self.throttled_time: Final = throttled_time


class PidsStats(Model):
    """``limit`` None means no limit ("max")."""

    __slots__ = ("current", "limit")

    def __init__(self, *, current: int | None = None, limit: int | None = None) -> None:
        self.current: Final = current
        self.limit: Final = limit


class BlkioStats(Model):
    """Bytes read and written by the cgroup, summed over devices."""

    __slots__ = ("read_bytes", "write_bytes")

    def __init__(self, *, read_bytes: int | None = None, write_bytes: int | None = None) -> None:
        self.read_bytes: Final = read_bytes
        self.write_bytes: Final = write_bytes


class Stats(Model):
    """What ``manager.stats()`` returns; a part is all-None when its controller is not there."""

    __slots__ = ("memory", "cpu", "pids", "blkio")

    def __init__(
        self,
        *,
        memory: MemoryStats | None = None,
        cpu: CpuStats | None = None,
        pids: PidsStats | None = None,
        blkio: BlkioStats | None = None,
    ) -> None:
        self.memory: Final = memory if memory is not None else MemoryStats()
        self.cpu: Final = cpu if cpu is not None else CpuStats()
        self.pids: Final = pids if pids is not None else PidsStats()
        self.blkio: Final = blkio if blkio is not None else BlkioStats()
