"""``GET /containers/{id}/stats``: a container's cgroup counters in Docker's stats shape.

Each sample carries the previous one's CPU counters as ``precpu_stats``, so that a client computes
the CPU percentage from two samples (the docker CLI: the container's usage delta over the host's
``system_cpu_usage`` delta, times the number of CPUs)."""

from __future__ import annotations

import os
from typing import Any

import pycontainerd
from pyengine._containers import ContainerRecord
from pyengine._times import rfc3339

__all__ = ["StatsSampler"]

_ZERO_TIME = "0001-01-01T00:00:00Z"
_NANOSECONDS_PER_TICK = 1_000_000_000 // os.sysconf("SC_CLK_TCK")


def system_cpu_usage() -> int:
    """The host's CPU time in nanoseconds: the first line of ``/proc/stat``, all of its columns
    up to steal (guest time is counted in user already), as dockerd reads it."""
    with open("/proc/stat") as stat:
        fields = stat.readline().split()
    return sum(int(value) for value in fields[1:9]) * _NANOSECONDS_PER_TICK


def machine_memory() -> int:
    """The host's memory in bytes (``MemTotal``)."""
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return 0


class StatsSampler:
    """Samples of one stats request, each with the CPU counters of the one before."""

    def __init__(self) -> None:
        self._previous: dict[str, Any] = _cpu_stats(None, 0)
        self._previous_read = _ZERO_TIME
        self._online_cpus = len(os.sched_getaffinity(0))
        self._memory = machine_memory()

    def sample(self, record: ContainerRecord, metrics: pycontainerd.Metrics | None) -> dict[str, Any]:
        """The stats body for ``metrics`` (None: the container is not running, all zeros)."""
        read = rfc3339() if metrics is not None else _ZERO_TIME
        cpu = _cpu_stats(metrics, system_cpu_usage() if metrics is not None else 0)
        if metrics is not None:
            cpu["online_cpus"] = self._online_cpus
        body = {
            "read": read,
            "preread": self._previous_read,
            "pids_stats": {}
            if metrics is None
            else _present(current=metrics.pids.current, limit=metrics.pids.limit),
            "blkio_stats": _blkio(metrics),
            "num_procs": 0,
            "storage_stats": {},
            "cpu_stats": cpu,
            "precpu_stats": self._previous,
            "memory_stats": self._memory_stats(metrics),
            "name": f"/{record.name}",
            "id": record.id,
        }
        self._previous, self._previous_read = cpu, read
        return body

    def _memory_stats(self, metrics: pycontainerd.Metrics | None) -> dict[str, Any]:
        if metrics is None:
            return {}
        memory = metrics.memory
        limit = memory.limit
        if self._memory and (limit is None or limit > self._memory):
            limit = self._memory  # no limit: the machine's memory, as dockerd reports it
        return _present(
            usage=memory.usage, max_usage=memory.max_usage, failcnt=memory.failcnt, limit=limit
        ) | {"stats": {}}


def _present(**values: int | None) -> dict[str, int]:
    """The counters the kernel gave (a missing controller leaves them out)."""
    return {key: value for key, value in values.items() if value is not None}


def _cpu_stats(metrics: pycontainerd.Metrics | None, system: int) -> dict[str, Any]:
    cpu = metrics.cpu if metrics is not None else None
    stats: dict[str, Any] = {
        "cpu_usage": {
            "total_usage": (cpu.usage_total or 0) if cpu else 0,
            "usage_in_kernelmode": (cpu.usage_kernel or 0) if cpu else 0,
            "usage_in_usermode": (cpu.usage_user or 0) if cpu else 0,
        },
        "throttling_data": {
            "periods": (cpu.nr_periods or 0) if cpu else 0,
            "throttled_periods": (cpu.nr_throttled or 0) if cpu else 0,
            "throttled_time": (cpu.throttled_time or 0) if cpu else 0,
        },
    }
    if system:
        stats["system_cpu_usage"] = system
    return stats


def _blkio(metrics: pycontainerd.Metrics | None) -> dict[str, Any]:
    """The bytes read and written, summed over the devices (pycontainerd gives the sums)."""
    entries = []
    if metrics is not None:
        for op, value in (("read", metrics.blkio.read_bytes), ("write", metrics.blkio.write_bytes)):
            if value is not None:
                entries.append({"major": 0, "minor": 0, "op": op, "value": value})
    return {
        "io_service_bytes_recursive": entries or None,
        "io_serviced_recursive": None,
        "io_queue_recursive": None,
        "io_service_time_recursive": None,
        "io_wait_time_recursive": None,
        "io_merged_recursive": None,
        "io_time_recursive": None,
        "sectors_recursive": None,
    }
