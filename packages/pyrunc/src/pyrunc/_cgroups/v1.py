"""The cgroup v1 driver (legacy or hybrid hosts: one mount per hierarchy under /sys/fs/cgroup).

What each ``linux.resources`` field writes (``<dir>`` is the container's directory in the hierarchy of
the controller named first):

- memory: ``limit`` -> memory.limit_in_bytes; ``swap`` (memory+swap, OCI) -> memory.memsw.limit_in_bytes,
  written before or after the limit so that memsw >= limit holds at every step (runc's order);
  ``reservation`` -> memory.soft_limit_in_bytes; ``kernel``/``kernel_tcp`` ->
  memory.kmem[.tcp].limit_in_bytes (recent kernels accept and ignore the kmem one);
  ``swappiness`` -> memory.swappiness; ``disable_oom_killer`` -> memory.oom_control;
  ``use_hierarchy`` -> memory.use_hierarchy; ``check_before_update`` compares with memory.usage_in_bytes.
- cpu: ``shares`` -> cpu.shares (read back: the kernel clamps); ``quota``/``period``/``burst`` ->
  cpu.cfs_quota_us/cpu.cfs_period_us/cpu.cfs_burst_us (runc's retry order); ``idle`` -> cpu.idle;
  ``realtime_runtime``/``realtime_period`` -> cpu.rt_runtime_us/cpu.rt_period_us; ``cpus``/``mems`` ->
  cpuset.cpus/cpuset.mems.
- pids: ``limit`` -> pids.max ("max" for 0 or less).
- block_io: ``weight`` -> blkio.weight (CFQ) or blkio.bfq.weight; ``leaf_weight`` -> blkio.leaf_weight;
  ``weight_device`` -> blkio[.bfq].weight_device / blkio.leaf_weight_device "MAJ:MIN W";
  ``throttle_*`` -> blkio.throttle.{read,write}_{bps,iops}_device "MAJ:MIN RATE".
- devices: in order, devices.allow / devices.deny "TYPE MAJ:MIN ACCESS" (None -> "a", "*", "rwm").
- hugepage_limits: hugetlb.<size>.limit_in_bytes (and .rsvd.limit_in_bytes when present).
- unified, network, rdma: refused (CgroupError naming the field).

Values of 0 mean "unset" where runc reads them so (Go zero values): memory limit/reservation/swap,
cpu shares/quota/period/realtime, blkio weights.

cgroupspy (a dependency) parses the accounting files in ``stats()`` only, imported there: the verbs
that do not read stats do not pay for its imports (see ARCHITECTURE.md, start-up).
"""

from __future__ import annotations

import posix
import time

from pyrunc._cgroups.files import (
    FREEZE_TIMEOUT,
    UNLIMITED,
    ParentGone,
    all_pids,
    int_or_none,
    join_cgroup,
    make_retrying,
    makedirs,
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
    from pyrunc._spec.resources import BlockIO, Cpu, DeviceRule, HugepageLimit, Memory, Resources

__all__ = ["V1Manager"]

_R = "linux.resources"
# Hierarchies whose directory names pids() looks in, best first (runc reads the devices one).
_PIDS_FROM = ("devices", "pids", "freezer", "memory", "cpu", "cpuacct", "name=systemd")


class _Hierarchy:
    """One mounted v1 hierarchy: its controllers (``("cpu", "cpuacct")``, ``("name=systemd",)``), its
    mount point (None until looked up, for managers rebuilt from paths) and the container's directory."""

    __slots__ = ("controllers", "mountpoint", "path")

    def __init__(self, controllers: tuple[str, ...], mountpoint: str | None, path: str) -> None:
        self.controllers = controllers
        self.mountpoint = mountpoint
        self.path = path


class _Mount:
    __slots__ = ("mountpoint", "root", "options")

    def __init__(self, mountpoint: str, root: str, options: set[str]) -> None:
        self.mountpoint = mountpoint
        self.root = root
        self.options = options


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as ``\\ooo``."""
    if "\\" not in field:
        return field
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def _v1_mounts(mountinfo: str) -> list[_Mount]:
    """The cgroup (v1) mounts listed in ``mountinfo``."""
    try:
        with open(mountinfo) as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise CgroupError(f"read {mountinfo}: {e.strerror}") from None
    mounts = []
    for line in lines:
        left, sep, right = line.partition(" - ")
        fs = right.split()
        if not sep or len(fs) < 3 or fs[0] != "cgroup":
            continue
        fields = left.split()
        mounts.append(_Mount(_unescape(fields[4]), _unescape(fields[3]), set(fs[2].split(","))))
    return mounts


def _pick_mount(mounts: list[_Mount], controllers: tuple[str, ...], root: str) -> _Mount | None:
    """The mount of the hierarchy with ``controllers``, preferring one directly under ``root``."""
    wanted = set(controllers)
    found = [m for m in mounts if wanted <= m.options]
    for m in found:
        if parent_of(m.mountpoint) == root:
            return m
    return found[0] if found else None


def _nz(value: int | None) -> bool:
    """Set in runc's sense: neither absent nor 0."""
    return value is not None and value != 0


class V1Manager:
    """A container's directories in every mounted cgroup v1 hierarchy (satisfies ``CgroupManager``)."""

    __slots__ = ("_hierarchies", "_by_controller", "_default_parent")

    def __init__(self, hierarchies: list[_Hierarchy], default_parent: bool) -> None:
        self._hierarchies = hierarchies
        self._by_controller = {c: h for h in hierarchies for c in h.controllers}
        self._default_parent = default_parent

    @classmethod
    def open(
        cls,
        inner: str,
        root: str,
        own: dict[str, str],
        mountinfo: str,
        default_parent: bool,
        only: frozenset[str] | None = None,
    ) -> V1Manager:
        """Paths for the cleaned cgroups path ``inner`` (absolute or relative to the own cgroups ``own``)."""
        from posixpath import normpath  # creating a container: os is imported anyway

        mounts = _v1_mounts(mountinfo)
        root = normpath(root)
        hierarchies = []
        for key, own_path in own.items():
            if not key:
                continue  # the v2 line of a hybrid host
            controllers = tuple(key.split(","))
            if only is not None and only.isdisjoint(controllers):
                continue
            mount = _pick_mount(mounts, controllers, root)
            if mount is None:
                continue  # in the hierarchy but not mounted here: nothing to manage
            if inner.startswith("/"):
                path = mount.mountpoint + inner
            else:
                mroot = mount.root.rstrip("/")
                if mroot and own_path != mroot and not own_path.startswith(mroot + "/"):
                    raise CgroupError(
                        f"own cgroup {own_path} of {key} is outside the mounted part {mount.root} "
                        f"at {mount.mountpoint}"
                    )
                path = f"{mount.mountpoint}{own_path[len(mroot) :]}/{inner}"
            hierarchies.append(_Hierarchy(controllers, mount.mountpoint, normpath(path)))
        # In the order of the mount table, which is the order runc mounts them in a container.
        order = {m.mountpoint: i for i, m in enumerate(mounts)}
        hierarchies.sort(key=lambda h: order.get(h.mountpoint or "", 0))
        if only is None and not any("devices" in h.controllers for h in hierarchies):
            # runc: without the devices controller the container would see every device of the host
            raise CgroupError("the devices cgroup (v1) is not mounted: refusing to run without it")
        return cls(hierarchies, default_parent)

    @classmethod
    def from_paths(cls, paths: dict[str, str], default_parent: bool) -> V1Manager:
        groups: dict[str, list[str]] = {}
        for controller, path in paths.items():
            groups.setdefault(path, []).append(controller)
        return cls([_Hierarchy(tuple(c), None, p) for p, c in groups.items()], default_parent)

    # -- CgroupManager -------------------------------------------------------------------------------

    def paths(self) -> dict[str, str]:
        return {c: h.path for h in self._hierarchies for c in h.controllers}

    def exists(self) -> bool:
        return any(posix.access(h.path, posix.F_OK) for h in self._hierarchies)

    def create(self) -> None:
        def make() -> None:
            for h in self._hierarchies:
                if "cpuset" in h.controllers:
                    _create_cpuset(h.path)
                else:
                    makedirs(h.path)

        make_retrying(make)

    def apply(self, pid: int) -> None:
        for h in self._hierarchies:
            join_cgroup(h.path, pid)

    def join_files(self) -> list[str]:
        # ``tasks``, not ``cgroup.procs``: moving a task between cgroups write-locks the kernel's
        # global cgroup_threadgroup_rwsem, a percpu rwsem whose first writer after a quiet spell
        # waits for an RCU grace period (rcu_sync_enter), except when a thread moves itself
        # alone: for ``0`` in ``tasks`` cgroup_procs_write_start skips the lock (a kernel that
        # does not just takes it, as for cgroup.procs). That wait was most of a create; the
        # write of 0 to tasks does not wait. The container's init is single-threaded: moving its
        # one thread moves the process.
        return [h.path + "/tasks" for h in self._hierarchies]

    def set(self, resources: Resources) -> None:
        r = resources
        self._refuse_unsupported(r)
        if r.cpu is not None and (r.cpu.cpus or r.cpu.mems):
            d = self._dir("cpuset", f"{_R}.cpu.cpus")
            if r.cpu.cpus:
                write_file(d + "/cpuset.cpus", r.cpu.cpus)
            if r.cpu.mems:
                write_file(d + "/cpuset.mems", r.cpu.mems)
        if r.devices:
            self._set_devices(r.devices)
        if r.memory is not None:
            self._set_memory(r.memory)
        if r.cpu is not None:
            self._set_cpu(r.cpu)
        if r.pids is not None:
            d = self._dir("pids", f"{_R}.pids.limit")
            write_file(d + "/pids.max", str(r.pids.limit) if r.pids.limit > 0 else "max", f"{_R}.pids.limit")
        if r.block_io is not None:
            self._set_blkio(r.block_io)
        if r.hugepage_limits:
            self._set_hugetlb(r.hugepage_limits)

    def update(self, resources: Resources) -> None:
        self.set(resources)

    def pids(self) -> list[int]:
        for controller in _PIDS_FROM:
            h = self._by_controller.get(controller)
            if h is not None:
                return all_pids(h.path)
        return all_pids(self._hierarchies[0].path)

    def freeze(self) -> None:
        state = self._dir("freezer", "freeze") + "/freezer.state"
        deadline = time.monotonic() + FREEZE_TIMEOUT
        i = 0
        while True:
            write_file(state, "FROZEN")
            current = read_file(state)
            if current == "FROZEN":
                return
            if current != "FREEZING":
                raise CgroupError(f"unexpected freezer state {current} in {state} while freezing")
            if time.monotonic() >= deadline:
                try_write_file(state, "THAWED")
                raise CgroupError(f"freeze {parent_of(state)}: still FREEZING after {FREEZE_TIMEOUT}s")
            i += 1
            if i % 50 == 0:
                # runc's trick: a short thaw lets tasks stuck half-way (e.g. still forking) settle
                try_write_file(state, "THAWED")
                time.sleep(0.01)
            else:
                time.sleep(0.001)

    def thaw(self) -> None:
        state = self._dir("freezer", "thaw") + "/freezer.state"
        deadline = time.monotonic() + FREEZE_TIMEOUT
        while True:
            write_file(state, "THAWED")
            current = read_file(state)
            if current == "THAWED":
                return
            if time.monotonic() >= deadline:
                raise CgroupError(f"thaw {parent_of(state)}: still {current} after {FREEZE_TIMEOUT}s")
            time.sleep(0.001)

    def is_frozen(self) -> bool:
        state = self._dir("freezer", "freezer state") + "/freezer.state"
        deadline = time.monotonic() + FREEZE_TIMEOUT
        while True:
            current = read_file(state)
            if current != "FREEZING" or time.monotonic() >= deadline:
                return current == "FROZEN"
            time.sleep(0.001)

    def stats(self) -> Stats:
        from cgroupspy.controllers import CpuAcctController, CpuController, MemoryController

        def num(value: object) -> int | None:
            # cgroupspy gives ints (None for -1); "no limit" is PAGE_COUNTER_MAX, shown as None
            return value if type(value) is int and value < UNLIMITED else None

        for hierarchy in self._hierarchies:
            if not posix.access(hierarchy.path, posix.F_OK):
                raise CgroupError(f"stats: cgroup {hierarchy.path} does not exist")
        memory: MemoryStats | None = None
        pids: PidsStats | None = None
        blkio: BlkioStats | None = None
        h = self._by_controller.get("memory")
        if h is not None:
            mem = MemoryController(_Node(h.path))
            oom = mem.get_content("oom_control")
            memory = MemoryStats(
                usage=num(mem.get_content("usage_in_bytes")),
                max_usage=num(mem.get_content("max_usage_in_bytes")),
                limit=num(mem.get_content("limit_in_bytes")),
                failcnt=num(mem.get_content("failcnt")),
                oom_kill=oom.get("oom_kill") if isinstance(oom, dict) else None,
            )
        usage: dict[str, int | None] = {}
        h = self._by_controller.get("cpuacct")
        if h is not None:
            acct = CpuAcctController(_Node(h.path))
            usage["usage_total"] = num(acct.get_content("usage"))
            ticks = acct.get_content("acct_stat")
            if isinstance(ticks, dict):
                ns_per_tick = 1_000_000_000 // posix.sysconf("SC_CLK_TCK")
                usage["usage_user"] = ticks.get("user", 0) * ns_per_tick
                usage["usage_kernel"] = ticks.get("system", 0) * ns_per_tick
        h = self._by_controller.get("cpu")
        if h is not None:
            throttling = CpuController(_Node(h.path)).get_content("stat")
            if isinstance(throttling, dict):
                for key in ("nr_periods", "nr_throttled", "throttled_time"):
                    usage[key] = throttling.get(key)
        cpu = CpuStats(**usage)
        h = self._by_controller.get("pids")
        if h is not None:
            pids = PidsStats(
                current=int_or_none(read_file_or_none(h.path + "/pids.current")),
                limit=int_or_none(read_file_or_none(h.path + "/pids.max")),
            )
        h = self._by_controller.get("blkio")
        if h is not None:
            read, written = _blkio_bytes(h.path)
            blkio = BlkioStats(read_bytes=read, write_bytes=written)
        return Stats(memory=memory, cpu=cpu, pids=pids, blkio=blkio)

    def destroy(self) -> None:
        dirs = [h.path for h in self._hierarchies]
        parents = [parent_of(d) for d in dirs] if self._default_parent else []
        remove_trees(dirs, parents)

    def mount_hierarchies(self) -> list[tuple[str, str, str]]:
        if any(h.mountpoint is None for h in self._hierarchies):
            self._find_mountpoints()
        out = []
        for h in self._hierarchies:
            if h.mountpoint is not None:
                out.append((h.mountpoint.rpartition("/")[2], ",".join(h.controllers), h.path))
        return out

    # -- helpers -------------------------------------------------------------------------------------

    def _dir(self, controller: str, field: str) -> str:
        h = self._by_controller.get(controller)
        if h is None:
            raise CgroupError(f"{field}: the {controller} cgroup controller is not mounted (v1)")
        return h.path

    def _find_mountpoints(self) -> None:
        """Fill in mount points of a manager rebuilt from paths: the cgroup mount holding each path."""
        mounts = _v1_mounts("/proc/self/mountinfo")
        for h in self._hierarchies:
            wanted = set(h.controllers)
            best = None
            for m in mounts:
                inside = h.path == m.mountpoint or h.path.startswith(m.mountpoint.rstrip("/") + "/")
                if inside and wanted <= m.options and (best is None or len(m.mountpoint) > len(best)):
                    best = m.mountpoint
            h.mountpoint = best

    def _refuse_unsupported(self, r: Resources) -> None:
        """Raise for what v1 cannot do before anything is written (no half-applied set)."""
        if r.unified:
            raise CgroupError(f"{_R}.unified: cannot be used with cgroup v1")
        if r.network:
            raise CgroupError(f"{_R}.network: net_cls/net_prio are not supported by pyrunc")
        if r.rdma:
            raise CgroupError(f"{_R}.rdma: the rdma controller is not supported by pyrunc")
        for i, rule in enumerate(r.devices):
            _device_line(rule, f"{_R}.devices[{i}]")
        m = r.memory
        if m is not None:
            if m.swappiness is not None and m.swappiness != -1 and not 0 <= m.swappiness <= 100:
                raise CgroupError(f"{_R}.memory.swappiness: {m.swappiness} is not in 0..100")
            if _nz(m.swap) and m.swap != -1 and m.swap != m.limit:
                d = self._dir("memory", f"{_R}.memory.swap")
                if not posix.access(d + "/memory.memsw.limit_in_bytes", posix.F_OK):
                    raise CgroupError(
                        f"{_R}.memory.swap: swap accounting is not enabled in this kernel "
                        f"({d}/memory.memsw.limit_in_bytes does not exist)"
                    )
        for i, limit in enumerate(r.hugepage_limits):
            self._dir("hugetlb", f"{_R}.hugepageLimits[{i}]")
            if "/" in limit.page_size or not limit.page_size:
                raise CgroupError(f"{_R}.hugepageLimits[{i}].pageSize: invalid page size {limit.page_size!r}")

    def _set_devices(self, rules: list[DeviceRule]) -> None:
        d = self._dir("devices", f"{_R}.devices")
        for i, rule in enumerate(rules):
            line = _device_line(rule, f"{_R}.devices[{i}]")
            write_file(d + ("/devices.allow" if rule.allow else "/devices.deny"), line)

    def _set_memory(self, m: Memory) -> None:
        d = self._dir("memory", f"{_R}.memory")
        limit_file = d + "/memory.limit_in_bytes"
        memsw_file = d + "/memory.memsw.limit_in_bytes"
        has_memsw = posix.access(memsw_file, posix.F_OK)
        limit = m.limit if _nz(m.limit) else None
        swap = m.swap if _nz(m.swap) else None
        if m.check_before_update and limit is not None and limit > 0:
            usage = int(read_file(d + "/memory.usage_in_bytes"))
            if limit < usage:
                raise CgroupError(
                    f"{_R}.memory.limit: {limit} is below the current usage {usage} (checkBeforeUpdate)"
                )
        if limit == -1 and swap is None and has_memsw:
            swap = -1  # unlimited memory means unlimited memory+swap (runc)
        if swap is not None and not has_memsw:
            swap = None  # -1 or == limit: nothing to account without memsw (others refused above)
        if limit is not None and swap is not None:
            # memsw must stay >= limit after each write: raise memsw first when it grows
            current = int(read_file(limit_file))
            if swap == -1 or current < swap:
                write_file(memsw_file, str(swap))
                self._write_limit(limit_file, limit)
            else:
                self._write_limit(limit_file, limit)
                write_file(memsw_file, str(swap))
        elif limit is not None:
            self._write_limit(limit_file, limit)
        elif swap is not None:
            write_file(memsw_file, str(swap))
        if _nz(m.reservation):
            write_file(d + "/memory.soft_limit_in_bytes", str(m.reservation), f"{_R}.memory.reservation")
        if _nz(m.kernel):
            write_file(d + "/memory.kmem.limit_in_bytes", str(m.kernel), f"{_R}.memory.kernel")
        if _nz(m.kernel_tcp):
            write_file(d + "/memory.kmem.tcp.limit_in_bytes", str(m.kernel_tcp), f"{_R}.memory.kernelTCP")
        if m.disable_oom_killer is not None:
            value = "1" if m.disable_oom_killer else "0"
            write_file(d + "/memory.oom_control", value, f"{_R}.memory.disableOOMKiller")
        if m.use_hierarchy is not None:
            value = "1" if m.use_hierarchy else "0"
            write_file(d + "/memory.use_hierarchy", value, f"{_R}.memory.useHierarchy")
        if m.swappiness is not None and m.swappiness != -1:
            write_file(d + "/memory.swappiness", str(m.swappiness), f"{_R}.memory.swappiness")

    @staticmethod
    def _write_limit(path: str, limit: int) -> None:
        err = try_write_file(path, str(limit))
        if err == 16:  # EBUSY: below what the cgroup uses and cannot be reclaimed
            d = parent_of(path)
            usage = read_file_or_none(d + "/memory.usage_in_bytes")
            peak = read_file_or_none(d + "/memory.max_usage_in_bytes")
            raise CgroupError(
                f"write {limit} to {path}: Device or resource busy "
                f"(current usage: {usage}, peak usage: {peak})"
            )
        if err:
            raise write_error(path, str(limit), err, f"{_R}.memory.limit")

    def _set_cpu(self, c: Cpu) -> None:
        cpu_fields = (c.shares, c.quota, c.period, c.burst, c.idle, c.realtime_runtime, c.realtime_period)
        if not any(v is not None for v in cpu_fields):
            return
        d = self._dir("cpu", f"{_R}.cpu")
        if _nz(c.shares):
            path = d + "/cpu.shares"
            write_file(path, str(c.shares), f"{_R}.cpu.shares")
            got = int(read_file(path))
            if got != c.shares:
                bound = "maximum" if got < (c.shares or 0) else "minimum"
                raise CgroupError(f"{_R}.cpu.shares: {c.shares} is out of range, the {bound} is {got}")
        retry_period = retry_burst = None
        if _nz(c.period):
            path, value = d + "/cpu.cfs_period_us", str(c.period)
            err = try_write_file(path, value)
            if err == 22 and _nz(c.quota):
                retry_period = value  # old quota / new period may exceed the parent: retry after quota
            elif err:
                raise write_error(path, value, err, f"{_R}.cpu.period")
        if c.burst is not None:
            path, value = d + "/cpu.cfs_burst_us", str(c.burst)
            err = try_write_file(path, value)
            if err == 22 and _nz(c.quota):
                retry_burst = value
            elif err:
                raise write_error(path, value, err, f"{_R}.cpu.burst")
        if _nz(c.quota):
            write_file(d + "/cpu.cfs_quota_us", str(c.quota), f"{_R}.cpu.quota")
            if retry_period is not None:
                write_file(d + "/cpu.cfs_period_us", retry_period)
            if retry_burst is not None:
                write_file(d + "/cpu.cfs_burst_us", retry_burst)
        if c.idle is not None:
            write_file(d + "/cpu.idle", str(c.idle), f"{_R}.cpu.idle")
        retry_rt = None
        if _nz(c.realtime_period):
            path, value = d + "/cpu.rt_period_us", str(c.realtime_period)
            err = try_write_file(path, value)
            if err == 22 and _nz(c.realtime_runtime):
                retry_rt = value
            elif err:
                raise write_error(path, value, err, f"{_R}.cpu.realtimePeriod")
        if _nz(c.realtime_runtime):
            write_file(d + "/cpu.rt_runtime_us", str(c.realtime_runtime), f"{_R}.cpu.realtimeRuntime")
            if retry_rt is not None:
                write_file(d + "/cpu.rt_period_us", retry_rt)

    def _set_blkio(self, b: BlockIO) -> None:
        d = self._dir("blkio", f"{_R}.blockIO")
        if posix.access(d + "/blkio.weight", posix.F_OK):
            weight, weight_device = "/blkio.weight", "/blkio.weight_device"
        else:
            weight, weight_device = "/blkio.bfq.weight", "/blkio.bfq.weight_device"
        if _nz(b.weight):
            write_file(d + weight, str(b.weight), f"{_R}.blockIO.weight")
        if _nz(b.leaf_weight):
            write_file(d + "/blkio.leaf_weight", str(b.leaf_weight), f"{_R}.blockIO.leafWeight")
        for i, wd in enumerate(b.weight_device):
            if _nz(wd.weight):
                line = f"{wd.major}:{wd.minor} {wd.weight}"
                write_file(d + weight_device, line, f"{_R}.blockIO.weightDevice[{i}].weight")
            if _nz(wd.leaf_weight):
                line = f"{wd.major}:{wd.minor} {wd.leaf_weight}"
                write_file(
                    d + "/blkio.leaf_weight_device", line, f"{_R}.blockIO.weightDevice[{i}].leafWeight"
                )
        for devices, name, field in (
            (b.throttle_read_bps_device, "read_bps_device", "throttleReadBpsDevice"),
            (b.throttle_write_bps_device, "write_bps_device", "throttleWriteBpsDevice"),
            (b.throttle_read_iops_device, "read_iops_device", "throttleReadIOPSDevice"),
            (b.throttle_write_iops_device, "write_iops_device", "throttleWriteIOPSDevice"),
        ):
            for i, td in enumerate(devices):
                line = f"{td.major}:{td.minor} {td.rate}"
                write_file(f"{d}/blkio.throttle.{name}", line, f"{_R}.blockIO.{field}[{i}]")

    def _set_hugetlb(self, limits: list[HugepageLimit]) -> None:
        d = self._dir("hugetlb", f"{_R}.hugepageLimits")
        rsvd = True
        for i, limit in enumerate(limits):
            prefix, value = f"{d}/hugetlb.{limit.page_size}", str(limit.limit)
            write_file(prefix + ".limit_in_bytes", value, f"{_R}.hugepageLimits[{i}]")
            if rsvd:
                err = try_write_file(prefix + ".rsvd.limit_in_bytes", value)
                if err == 2:
                    rsvd = False  # kernel without reservation accounting
                elif err:
                    raise write_error(prefix + ".rsvd.limit_in_bytes", value, err)


class _Node:
    """The one attribute cgroupspy's controllers read from a tree node."""

    __slots__ = ("full_path",)

    def __init__(self, path: str) -> None:
        self.full_path = path.encode()


def _device_line(rule: DeviceRule, field: str) -> str:
    """``"c 1:3 rwm"`` for a rule; ``type`` None is "a", ``major``/``minor`` None are "*"."""
    kind = rule.type or "a"
    if kind not in ("a", "b", "c"):
        raise CgroupError(f"{field}.type: {kind!r} is not a, b or c")
    access = rule.access or "rwm"
    if access.strip("rwm"):
        raise CgroupError(f"{field}.access: {access!r} is not a combination of r, w and m")
    major = "*" if rule.major is None or rule.major == -1 else str(rule.major)
    minor = "*" if rule.minor is None or rule.minor == -1 else str(rule.minor)
    return f"{kind} {major}:{minor} {access}"


def _create_cpuset(path: str) -> None:
    """mkdir -p for the cpuset hierarchy: a new cpuset has empty cpus and mems, and a task cannot join
    it (ENOSPC) until they are set, so each level copies them from its parent (runc). Every level up to
    one that has both is filled, not just the levels made here: another process may have made a
    parent a moment ago and not filled it yet."""
    levels = []
    d = path
    while not (
        posix.access(d, posix.F_OK)
        and read_file_or_none(d + "/cpuset.cpus")
        and read_file_or_none(d + "/cpuset.mems")
    ):
        levels.append(d)
        parent = parent_of(d)
        if parent == d:
            break
        d = parent
    for d in reversed(levels):
        mkdir_cgroup(d)
        parent = parent_of(d)
        for name in ("/cpuset.cpus", "/cpuset.mems"):
            if not read_file_or_none(d + name):
                value = read_file_or_none(parent + name)
                if value and (err := try_write_file(d + name, value)):
                    if not posix.access(d, posix.F_OK):  # removed since our mkdir: make it again
                        raise ParentGone(f"write {value} to {d + name}: {posix.strerror(err)}")
                    raise write_error(d + name, value, err)


def _blkio_bytes(d: str) -> tuple[int | None, int | None]:
    """Bytes read and written: CFQ's blkio.io_service_bytes_recursive, else BFQ's, else throttle's."""
    chosen = None
    for name in (
        "/blkio.io_service_bytes_recursive",
        "/blkio.bfq.io_service_bytes_recursive",
        "/blkio.throttle.io_service_bytes_recursive",
    ):
        text = read_file_or_none(d + name)
        if text is None:
            continue
        chosen = text
        if any(not line.startswith("Total") for line in text.splitlines() if line):
            break
    if chosen is None:
        return None, None
    read = written = 0
    for line in chosen.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2].isdigit():
            if parts[1] == "Read":
                read += int(parts[2])
            elif parts[1] == "Write":
                written += int(parts[2])
    return read, written
