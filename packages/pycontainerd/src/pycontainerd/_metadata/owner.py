"""Which process holds a lease, so that GC can tell a crashed pull's lease from a live one.

There is no daemon to notice that a client died: a pull killed half-way leaves its lease behind,
and a lease without expiry would keep the crashed pull's blobs, ingests and snapshots forever. A
client therefore labels the leases it takes with :data:`LEASE_OWNER`, naming its process as
``<boot id>:<pid>:<start time>`` (the start time in clock ticks since boot, from ``/proc/<pid>/stat``,
so a recycled pid does not pass for the owner). GC treats a labelled lease whose owner is gone as
expired. Leases without the label (made by hand, ``pyctr leases``) live until deleted or expired.

The pid is the one the store's users see: processes sharing a store share a pid namespace.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["LEASE_OWNER", "current_owner", "owner_alive"]

#: The label naming the process that holds a lease.
LEASE_OWNER = "pycontainerd.io/lease.owner"
_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


def _start_time(pid: int) -> str | None:
    """Field 22 of ``/proc/<pid>/stat`` (after the command name, which may hold spaces and ')')."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return stat[stat.rindex(")") + 2 :].split()[19]


def current_owner() -> str:
    """The :data:`LEASE_OWNER` value naming this process."""
    pid = os.getpid()
    start = _start_time(pid)
    assert start is not None  # our own /proc entry
    return f"{_BOOT_ID.read_text().strip()}:{pid}:{start}"


def owner_alive(owner: str) -> bool:
    """Whether the process ``owner`` (a :data:`LEASE_OWNER` value) still runs.

    A value this module did not write counts as alive: only a provably dead owner frees a lease.
    """
    boot, _, rest = owner.partition(":")
    pid_text, _, start = rest.partition(":")
    if not boot or not pid_text.isdigit() or not start:
        return True
    if boot != _BOOT_ID.read_text().strip():
        return False  # the machine rebooted since: every process of that boot is gone
    return _start_time(int(pid_text)) == start
