"""The cgroup v2 driver (unified hierarchy: ``<root>/cgroup.controllers`` exists). Plain file writes.

What each ``linux.resources`` field writes in the container's directory (runc's ``fs2`` conversions):

- memory: ``limit`` -> memory.max; ``reservation`` -> memory.low; ``swap`` (OCI memory+swap) ->
  memory.swap.max = swap - limit ("max" for -1; limit -1 with swap unset gives "max" too);
  ``check_before_update`` compares with memory.current. ``kernel``, ``kernel_tcp``,
  ``disable_oom_killer`` (true), ``swappiness`` (other than -1) and ``use_hierarchy`` (false) have no v2
  file: refused.
- cpu: ``shares`` -> cpu.weight = 1 + ((shares - 2) * 9999) // 262142 (shares clamped to 2..262144);
  ``quota``/``period`` -> cpu.max "QUOTA PERIOD" ("max" for quota <= 0, period kept when unset);
  ``burst`` -> cpu.max.burst; ``idle`` -> cpu.idle; ``cpus``/``mems`` -> cpuset.cpus/cpuset.mems.
  ``realtime_*``: refused (no v2 interface).
- pids: ``limit`` -> pids.max ("max" for 0 or less).
- block_io: ``weight`` -> io.bfq.weight when present, else io.weight = 1 + (weight - 10) * 9999 // 990;
  ``weight_device`` -> io.bfq.weight "MAJ:MIN W" (BFQ only); ``throttle_*`` -> io.max
  "MAJ:MIN rbps=N" / wbps / riops / wiops. ``leaf_weight``: refused.
- hugepage_limits: hugetlb.<size>.max (and hugetlb.<size>.rsvd.max when present).
- unified: each key written as a file of the directory, last (it overrides the above).
- devices (needs an eBPF program, not implemented), network, rdma: refused.

Values of 0 mean "unset" where runc reads them so (memory limit/reservation/swap, cpu
shares/quota/period, blkio weights). Refusals happen before anything is written.
"""

from __future__ import annotations

import posix
import time

from pyrunc._cgroups.files import (
    FREEZE_TIMEOUT,
    all_pids,
    int_or_none,
    join_cgroup,
    keyed_values,
    make_retrying,
    mkdir_cgroup,
    parent_of,
    read_file,
    read_file_or_none,
    remove_trees,
    try_write_file,
    write_error,
    write_file,
)
from pyrunc._cgroups.stats import BlkioStats, CpuStats, MemoryStats, PidsStats, Stats
from pyrunc._errors import CgroupError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyrunc._spec.resources import BlockIO, Cpu, Memory, Resources

__all__ = ["V2Manager", "cpu_weight_from_shares", "io_weight_from_blkio"]

_R = "linux.resources"


def cpu_weight_from_shares(shares: int) -> int:
    """runc's ConvertCPUSharesToCgroupV2Value: cpu.shares 2..262144 onto cpu.weight 1..10000."""
    shares = min(max(shares, 2), 262144)
    return 1 + ((shares - 2) * 9999) // 262142


def io_weight_from_blkio(weight: int) -> int:
    """runc's ConvertBlkIOToIOWeightValue: blkio.weight 10..1000 onto io.weight 1..10000."""
    weight = min(max(weight, 10), 1000)
    return 1 + (weight - 10) * 9999 // 990


def _nz(value: int | None) -> bool:
    """Set in runc's sense: neither absent nor 0."""
    return value is not None and value != 0


def _max(value: int) -> str:
    return "max" if value == -1 else str(value)


class V2Manager:
    """A container's directory in the unified hierarchy (satisfies ``CgroupManager``)."""

    __slots__ = ("_path", "_root", "_default_parent")

    def __init__(self, path: str, default_parent: bool, root: str | None = None) -> None:
        self._path = path
        self._root = root
        self._default_parent = default_parent

    @classmethod
    def open(cls, inner: str, root: str, own: dict[str, str], default_parent: bool) -> V2Manager:
        from posixpath import normpath  # creating a container: os is imported anyway

        root = normpath(root)
        if inner.startswith("/"):
            path = root + inner
        else:
            own_path = own.get("")
            if own_path is None:
                raise CgroupError("no cgroup v2 line (0::/...) in the own cgroup file")
            # runc (fs2): below the parent of the own cgroup, which holds the caller itself
            path = f"{root}{parent_of(own_path)}/{inner}"
        return cls(normpath(path), default_parent, root)

    # -- CgroupManager -------------------------------------------------------------------------------

    def paths(self) -> dict[str, str]:
        return {"": self._path}

    def exists(self) -> bool:
        return posix.access(self._path, posix.F_OK)

    def create(self) -> None:
        make_retrying(self._create)

    def _create(self) -> None:
        root = self._root
        if root is None:  # rebuilt from paths: the nearest ancestor with cgroup.controllers but no parent one
            root = _find_root(self._path)
        rel = self._path[len(root) :].strip("/")
        if not rel:
            raise CgroupError(f"refusing to use the root cgroup {root} as a container's cgroup")
        current = root
        available = read_file_or_none(root + "/cgroup.controllers") or ""
        for name in rel.split("/"):
            # enable every available controller for the children of each ancestor, as runc does;
            # failures are ignored here (delegation, internal processes) and surface in set()
            _enable_controllers(current, available)
            current = current + "/" + name
            mkdir_cgroup(current)
            available = read_file_or_none(current + "/cgroup.controllers") or available

    def apply(self, pid: int) -> None:
        join_cgroup(self._path, pid)

    def set(self, resources: Resources) -> None:
        r = resources
        d = self._path
        self._refuse_unsupported(r)
        if r.cpu is not None:
            if r.cpu.cpus:
                write_file(d + "/cpuset.cpus", r.cpu.cpus, f"{_R}.cpu.cpus")
            if r.cpu.mems:
                write_file(d + "/cpuset.mems", r.cpu.mems, f"{_R}.cpu.mems")
        if r.memory is not None:
            self._set_memory(r.memory)
        if r.cpu is not None:
            self._set_cpu(r.cpu)
        if r.pids is not None:
            write_file(d + "/pids.max", str(r.pids.limit) if r.pids.limit > 0 else "max", f"{_R}.pids.limit")
        if r.block_io is not None:
            self._set_io(r.block_io)
        rsvd = True
        for i, limit in enumerate(r.hugepage_limits):
            prefix, value = f"{d}/hugetlb.{limit.page_size}", str(limit.limit)
            write_file(prefix + ".max", value, f"{_R}.hugepageLimits[{i}]")
            if rsvd:
                err = try_write_file(prefix + ".rsvd.max", value)
                if err == 2:
                    rsvd = False
                elif err:
                    raise write_error(prefix + ".rsvd.max", value, err)
        for key, value in r.unified.items():
            write_file(f"{d}/{key}", value, f"{_R}.unified[{key!r}]")

    def update(self, resources: Resources) -> None:
        self.set(resources)

    def pids(self) -> list[int]:
        return all_pids(self._path)

    def freeze(self) -> None:
        self._set_frozen(True)

    def thaw(self) -> None:
        self._set_frozen(False)

    def is_frozen(self) -> bool:
        freeze = read_file_or_none(self._path + "/cgroup.freeze")
        if freeze is None:
            if not posix.access(self._path, posix.F_OK):
                raise CgroupError(f"freezer state: cgroup {self._path} does not exist")
            return False  # kernel without the v2 freezer: never frozen
        if freeze != "1":
            return False
        return self._wait_events(True)

    def stats(self) -> Stats:

        d = self._path
        if not posix.access(d, posix.F_OK):
            raise CgroupError(f"stats: cgroup {d} does not exist")
        events = keyed_values(read_file_or_none(d + "/memory.events"))
        memory = MemoryStats(
            usage=int_or_none(read_file_or_none(d + "/memory.current")),
            max_usage=int_or_none(read_file_or_none(d + "/memory.peak")),
            limit=int_or_none(read_file_or_none(d + "/memory.max")),
            failcnt=events.get("max"),
            oom_kill=events.get("oom_kill"),
        )
        cpu = keyed_values(read_file_or_none(d + "/cpu.stat"))

        def ns(key: str) -> int | None:
            usec = cpu.get(key)
            return None if usec is None else usec * 1000

        cpu_stats = CpuStats(
            usage_total=ns("usage_usec"),
            usage_user=ns("user_usec"),
            usage_kernel=ns("system_usec"),
            nr_periods=cpu.get("nr_periods"),
            nr_throttled=cpu.get("nr_throttled"),
            throttled_time=ns("throttled_usec"),
        )
        pids = PidsStats(
            current=int_or_none(read_file_or_none(d + "/pids.current")),
            limit=int_or_none(read_file_or_none(d + "/pids.max")),
        )
        io = read_file_or_none(d + "/io.stat")
        blkio = None
        if io is not None:
            read = written = 0
            for line in io.splitlines():
                for item in line.split()[1:]:
                    key, _, value = item.partition("=")
                    if key == "rbytes":
                        read += int(value)
                    elif key == "wbytes":
                        written += int(value)
            blkio = BlkioStats(read_bytes=read, write_bytes=written)
        return Stats(memory=memory, cpu=cpu_stats, pids=pids, blkio=blkio)

    def destroy(self) -> None:
        parents = [parent_of(self._path)] if self._default_parent else []
        remove_trees([self._path], parents)

    def mount_hierarchies(self) -> list[tuple[str, str, str]]:
        return []

    def join_files(self) -> list[str]:
        return [self._path + "/cgroup.procs"]  # no ``tasks`` in v2 (see V1Manager.join_files)

    # -- helpers -------------------------------------------------------------------------------------

    def _refuse_unsupported(self, r: Resources) -> None:
        if r.devices:
            raise CgroupError(
                f"{_R}.devices: device rules on cgroup v2 need an eBPF program, not implemented by pyrunc"
            )
        if r.network:
            raise CgroupError(f"{_R}.network: not available on cgroup v2")
        if r.rdma:
            raise CgroupError(f"{_R}.rdma: the rdma controller is not supported by pyrunc")
        m = r.memory
        if m is not None:
            if _nz(m.kernel):
                raise CgroupError(f"{_R}.memory.kernel: kernel memory limits do not exist on cgroup v2")
            if _nz(m.kernel_tcp):
                raise CgroupError(
                    f"{_R}.memory.kernelTCP: kernel TCP memory limits do not exist on cgroup v2"
                )
            if m.disable_oom_killer:
                raise CgroupError(
                    f"{_R}.memory.disableOOMKiller: the OOM killer cannot be disabled on cgroup v2"
                )
            if m.swappiness is not None and m.swappiness != -1:
                raise CgroupError(f"{_R}.memory.swappiness: there is no per-cgroup swappiness on cgroup v2")
            if m.use_hierarchy is False:
                raise CgroupError(f"{_R}.memory.useHierarchy: cgroup v2 is always hierarchical")
            _swap_max(m)  # raises for an inconsistent swap
        c = r.cpu
        if c is not None:
            if _nz(c.realtime_runtime):
                raise CgroupError(f"{_R}.cpu.realtimeRuntime: real-time CPU limits do not exist on cgroup v2")
            if _nz(c.realtime_period):
                raise CgroupError(f"{_R}.cpu.realtimePeriod: real-time CPU limits do not exist on cgroup v2")
        b = r.block_io
        if b is not None:
            if _nz(b.leaf_weight) or any(_nz(wd.leaf_weight) for wd in b.weight_device):
                raise CgroupError(f"{_R}.blockIO.leafWeight: leaf weights do not exist on cgroup v2")
            if any(_nz(wd.weight) for wd in b.weight_device) and not posix.access(
                self._path + "/io.bfq.weight", posix.F_OK
            ):
                raise CgroupError(
                    f"{_R}.blockIO.weightDevice: per-device weights need the BFQ I/O scheduler "
                    f"({self._path}/io.bfq.weight does not exist)"
                )
        for i, limit in enumerate(r.hugepage_limits):
            if "/" in limit.page_size or not limit.page_size:
                raise CgroupError(f"{_R}.hugepageLimits[{i}].pageSize: invalid page size {limit.page_size!r}")
        for key in r.unified:
            if "/" in key or key in ("", ".", ".."):
                raise CgroupError(f"{_R}.unified[{key!r}]: not a cgroup file name")

    def _set_memory(self, m: Memory) -> None:
        d = self._path
        limit = m.limit if _nz(m.limit) else None
        if m.check_before_update and limit is not None and limit > 0:
            usage = int_or_none(read_file_or_none(d + "/memory.current"))
            if usage is not None and limit < usage:
                raise CgroupError(
                    f"{_R}.memory.limit: {limit} is below the current usage {usage} (checkBeforeUpdate)"
                )
        swap = _swap_max(m)
        if swap is not None:
            path = d + "/memory.swap.max"
            err = try_write_file(path, swap)
            # no swap accounting: "max" and "0" (no swap) need no limit, others cannot be honoured
            if err == 2 and swap not in ("max", "0"):
                raise CgroupError(
                    f"{_R}.memory.swap: swap accounting is not enabled in this kernel ({path} does not exist)"
                )
            if err and err != 2:
                raise write_error(path, swap, err)
        if limit is not None:
            write_file(d + "/memory.max", _max(limit), f"{_R}.memory.limit")
        if _nz(m.reservation):
            write_file(d + "/memory.low", _max(m.reservation or 0), f"{_R}.memory.reservation")

    def _set_cpu(self, c: Cpu) -> None:
        d = self._path
        if _nz(c.shares):
            write_file(d + "/cpu.weight", str(cpu_weight_from_shares(c.shares or 0)), f"{_R}.cpu.shares")
        if c.idle is not None:
            write_file(d + "/cpu.idle", str(c.idle), f"{_R}.cpu.idle")
        retry_burst = None
        if c.burst is not None:
            path, value = d + "/cpu.max.burst", str(c.burst)
            err = try_write_file(path, value)
            if err == 22 and _nz(c.quota):
                retry_burst = value  # old quota / new burst may exceed the parent: retry after cpu.max
            elif err:
                raise write_error(path, value, err, f"{_R}.cpu.burst")
        if _nz(c.quota) or _nz(c.period):
            value = str(c.quota) if c.quota is not None and c.quota > 0 else "max"
            if _nz(c.period):
                value += f" {c.period}"
            write_file(d + "/cpu.max", value, f"{_R}.cpu.quota")
            if retry_burst is not None:
                write_file(d + "/cpu.max.burst", retry_burst)

    def _set_io(self, b: BlockIO) -> None:
        d = self._path
        if _nz(b.weight):
            bfq = d + "/io.bfq.weight"
            if posix.access(bfq, posix.F_OK):
                write_file(bfq, str(b.weight))
            else:
                write_file(d + "/io.weight", str(io_weight_from_blkio(b.weight or 0)), f"{_R}.blockIO.weight")
        for i, wd in enumerate(b.weight_device):
            if _nz(wd.weight):
                write_file(
                    d + "/io.bfq.weight",
                    f"{wd.major}:{wd.minor} {wd.weight}",
                    f"{_R}.blockIO.weightDevice[{i}]",
                )
        for devices, key, field in (
            (b.throttle_read_bps_device, "rbps", "throttleReadBpsDevice"),
            (b.throttle_write_bps_device, "wbps", "throttleWriteBpsDevice"),
            (b.throttle_read_iops_device, "riops", "throttleReadIOPSDevice"),
            (b.throttle_write_iops_device, "wiops", "throttleWriteIOPSDevice"),
        ):
            for i, td in enumerate(devices):
                write_file(
                    d + "/io.max", f"{td.major}:{td.minor} {key}={td.rate}", f"{_R}.blockIO.{field}[{i}]"
                )

    def _set_frozen(self, frozen: bool) -> None:
        path, value = self._path + "/cgroup.freeze", "1" if frozen else "0"
        err = try_write_file(path, value)
        if err == 2 and posix.access(self._path, posix.F_OK):
            if not frozen:
                return  # no v2 freezer (kernel < 5.2): nothing can be frozen
            raise CgroupError(f"freeze {self._path}: this kernel has no cgroup v2 freezer (no cgroup.freeze)")
        if err:
            raise write_error(path, value, err)
        if self._wait_events(frozen) != frozen:
            if frozen:
                try_write_file(path, "0")
            verb = "freeze" if frozen else "thaw"
            raise CgroupError(
                f"{verb} {self._path}: cgroup.events did not report it within {FREEZE_TIMEOUT}s"
            )

    def _wait_events(self, frozen: bool) -> bool:
        """Poll cgroup.events until ``frozen N`` matches ``frozen``; the last state seen."""
        deadline = time.monotonic() + FREEZE_TIMEOUT
        while True:
            state = keyed_values(read_file(self._path + "/cgroup.events")).get("frozen", 0) == 1
            if state == frozen or time.monotonic() >= deadline:
                return state
            time.sleep(0.001)


def _swap_max(m: Memory) -> str | None:
    """memory.swap.max for OCI's memory+swap ``m.swap`` (runc's ConvertMemorySwapToCgroupV2Value)."""
    limit = m.limit or 0
    swap = m.swap or 0
    if limit == -1 and swap == 0:
        return "max"  # unlimited memory, swap unset: unlimited swap too (v1 compatibility)
    if swap == 0:
        return None
    if swap == -1:
        return "max"
    if limit in (0, -1):
        raise CgroupError(f"{_R}.memory.swap: cannot limit swap without a memory limit")
    if limit < 0:
        raise CgroupError(f"{_R}.memory.limit: invalid value {limit}")
    if swap < limit:
        raise CgroupError(f"{_R}.memory.swap: memory+swap {swap} is below the memory limit {limit}")
    return str(swap - limit)


def _enable_controllers(directory: str, available: str) -> None:
    """Enable in ``directory``/cgroup.subtree_control the controllers of ``available`` not yet enabled."""
    enabled = set((read_file_or_none(directory + "/cgroup.subtree_control") or "").split())
    missing = [c for c in available.split() if c not in enabled]
    if not missing:
        return
    path = directory + "/cgroup.subtree_control"
    if try_write_file(path, " ".join("+" + c for c in missing)):
        for c in missing:  # one by one: enable what can be
            try_write_file(path, "+" + c)


def _find_root(path: str) -> str:
    """The top of the unified hierarchy holding ``path`` (for managers rebuilt from ``paths()``)."""
    d = parent_of(path)
    top = None
    while True:
        if posix.access(d + "/cgroup.controllers", posix.F_OK):
            top = d
        parent = parent_of(d)
        if parent == d:
            break
        d = parent
    if top is None:
        raise CgroupError(f"{path} is not inside a cgroup v2 hierarchy")
    return top
