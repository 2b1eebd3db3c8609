"""A task's cgroup resources, in pycontainerd's own terms: the limits :meth:`Task.update` changes
(:class:`Resources`) and the counters :meth:`Task.metrics` reads (:class:`Metrics`).

They are pycontainerd's types, not the runtime's: the engine above names them without knowing pyrunc,
and the task service converts them at its boundary with pyrunc (an OCI ``linux.resources`` object
one way, pyrunc's stats the other). The fields are ``docker update``'s and containerd's cgroup v1
metrics'.
"""

from __future__ import annotations

from pycontainerd._errors import InvalidArgumentError
from pycontainerd._record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Final

__all__ = ["BlkioMetrics", "CpuMetrics", "MemoryMetrics", "Metrics", "PidsMetrics", "Resources"]

_INT64 = (-(1 << 63), (1 << 63) - 1)


def _int(name: str, value: object, low: int = _INT64[0]) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgumentError(f"Resources.{name}: an integer, not {value!r}")
    if not low <= value <= _INT64[1]:
        raise InvalidArgumentError(f"Resources.{name}: {value} is out of range ({low} to {_INT64[1]})")
    return value


def _cpus(name: str, value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not all(c.isdigit() or c in ",-" for c in value):
        raise InvalidArgumentError(f"Resources.{name}: a list such as '0-3,8', not {value!r}")
    return value


class Resources(Record):
    """New cgroup limits for a running task; a field left ``None`` keeps its value.

    ``memory_limit``, ``memory_reservation`` and ``memory_swap`` (memory plus swap) in bytes, ``-1``
    for no limit; ``cpu_shares`` (a relative weight), ``cpu_quota`` and ``cpu_period`` (CFS bandwidth,
    microseconds); ``cpuset_cpus`` and ``cpuset_mems`` (``"0-3,8"``); ``pids_limit`` (``-1`` or ``0``:
    no limit); ``blkio_weight`` (10 to 1000). InvalidArgumentError names a field that is not of its
    type; the runtime judges the values when the task is updated.
    """

    __slots__ = (
        "memory_limit",
        "memory_reservation",
        "memory_swap",
        "cpu_shares",
        "cpu_quota",
        "cpu_period",
        "cpuset_cpus",
        "cpuset_mems",
        "pids_limit",
        "blkio_weight",
    )

    def __init__(
        self,
        *,
        memory_limit: int | None = None,
        memory_reservation: int | None = None,
        memory_swap: int | None = None,
        cpu_shares: int | None = None,
        cpu_quota: int | None = None,
        cpu_period: int | None = None,
        cpuset_cpus: str | None = None,
        cpuset_mems: str | None = None,
        pids_limit: int | None = None,
        blkio_weight: int | None = None,
    ) -> None:
        self.memory_limit: Final = _int("memory_limit", memory_limit)
        self.memory_reservation: Final = _int("memory_reservation", memory_reservation)
        self.memory_swap: Final = _int("memory_swap", memory_swap)
        self.cpu_shares: Final = _int("cpu_shares", cpu_shares, 0)
        self.cpu_quota: Final = _int("cpu_quota", cpu_quota)
        self.cpu_period: Final = _int("cpu_period", cpu_period, 0)
        self.cpuset_cpus: Final = _cpus("cpuset_cpus", cpuset_cpus)
        self.cpuset_mems: Final = _cpus("cpuset_mems", cpuset_mems)
        self.pids_limit: Final = _int("pids_limit", pids_limit)
        self.blkio_weight: Final = _int("blkio_weight", blkio_weight, 0)

    def to_oci(self) -> dict[str, dict[str, object]]:
        """The OCI runtime spec's ``linux.resources`` object that sets these fields, and no other."""
        groups: dict[str, dict[str, object]] = {
            "memory": {
                "limit": self.memory_limit,
                "reservation": self.memory_reservation,
                "swap": self.memory_swap,
            },
            "cpu": {
                "shares": self.cpu_shares,
                "quota": self.cpu_quota,
                "period": self.cpu_period,
                "cpus": self.cpuset_cpus,
                "mems": self.cpuset_mems,
            },
            "pids": {"limit": self.pids_limit},
            "blockIO": {"weight": self.blkio_weight},
        }
        return {
            group: {key: value for key, value in fields.items() if value is not None}
            for group, fields in groups.items()
            if any(value is not None for value in fields.values())
        }


class MemoryMetrics(Record):
    """Bytes; ``limit`` None means unlimited. ``failcnt``: times the limit was hit. ``oom_kill``:
    processes the OOM killer killed in the task's cgroup."""

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

    def to_json(self) -> dict[str, int | None]:
        return {
            "usage": self.usage,
            "max_usage": self.max_usage,
            "limit": self.limit,
            "failcnt": self.failcnt,
            "oom_kill": self.oom_kill,
        }


class CpuMetrics(Record):
    """Nanoseconds of CPU time (total, user, kernel), and CFS bandwidth throttling: periods, periods
    throttled, nanoseconds throttled."""

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

    def to_json(self) -> dict[str, int | None]:
        return {
            "usage_total": self.usage_total,
            "usage_user": self.usage_user,
            "usage_kernel": self.usage_kernel,
            "nr_periods": self.nr_periods,
            "nr_throttled": self.nr_throttled,
            "throttled_time": self.throttled_time,
        }


class PidsMetrics(Record):
    """Processes in the task's cgroup; ``limit`` None means no limit."""

    __slots__ = ("current", "limit")

    def __init__(self, *, current: int | None = None, limit: int | None = None) -> None:
        self.current: Final = current
        self.limit: Final = limit

    def to_json(self) -> dict[str, int | None]:
        return {"current": self.current, "limit": self.limit}


class BlkioMetrics(Record):
    """Bytes the task's cgroup read and wrote, summed over devices."""

    __slots__ = ("read_bytes", "write_bytes")

    def __init__(self, *, read_bytes: int | None = None, write_bytes: int | None = None) -> None:
        self.read_bytes: Final = read_bytes
        self.write_bytes: Final = write_bytes

    def to_json(self) -> dict[str, int | None]:
        return {"read_bytes": self.read_bytes, "write_bytes": self.write_bytes}


class Metrics(Record):
    """A task's cgroup counters; a counter is None where its controller is not there."""

    __slots__ = ("memory", "cpu", "pids", "blkio")

    def __init__(
        self, memory: MemoryMetrics, cpu: CpuMetrics, pids: PidsMetrics, blkio: BlkioMetrics
    ) -> None:
        self.memory: Final = memory
        self.cpu: Final = cpu
        self.pids: Final = pids
        self.blkio: Final = blkio

    def to_json(self) -> dict[str, dict[str, int | None]]:
        """Each group's counters by name, as ``pyctr tasks metrics`` prints them."""
        return {
            "memory": self.memory.to_json(),
            "cpu": self.cpu.to_json(),
            "pids": self.pids.to_json(),
            "blkio": self.blkio.to_json(),
        }
