"""The cgroup v2 driver, on a fake cgroupfs tree in ``tmp_path``.

The host runs cgroup v1 in hybrid mode: its cgroup2 mount (/sys/fs/cgroup/unified) has no controllers
to use (memory, cpu, cpuset, io and pids are bound to the v1 hierarchies; its cgroup.controllers lists
at most hugetlb), so no v2 limit can be tried for real here. These tests build a directory that looks
like a unified hierarchy (cgroup.controllers, cgroup.subtree_control, the interface files the driver
writes) and check what the driver writes. Files are only ever written, never created (as on
cgroupfs), so each test creates the interface files a kernel would show; a missing file is how a
missing kernel feature looks.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest

import pyrunc._cgroups.files
import pyrunc._cgroups.v2
from pyrunc._cgroups.manager import from_paths, open_cgroups
from pyrunc._cgroups.v2 import V2Manager, cpu_weight_from_shares, io_weight_from_blkio
from pyrunc._errors import CgroupError
from pyrunc._spec.resources import (
    BlockIO,
    Cpu,
    DeviceRule,
    HugepageLimit,
    Memory,
    Pids,
    Resources,
    ThrottleDevice,
    WeightDevice,
)

if TYPE_CHECKING:
    from pathlib import Path

    from pyrunc._cgroups.driver import CgroupManager

CONTROLLERS = "cpuset cpu io memory hugetlb pids"
# What a kernel shows in a non-root cgroup directory (the ones the driver may write or read).
INTERFACE_FILES = [
    "cgroup.controllers",
    "cgroup.subtree_control",
    "cgroup.procs",
    "cgroup.freeze",
    "cgroup.events",
    "cpu.weight",
    "cpu.max",
    "cpu.max.burst",
    "cpu.idle",
    "cpuset.cpus",
    "cpuset.mems",
    "memory.max",
    "memory.low",
    "memory.high",
    "memory.swap.max",
    "memory.current",
    "pids.max",
    "io.weight",
    "io.max",
    "hugetlb.2MB.max",
    "hugetlb.2MB.rsvd.max",
]


class FakeTree:
    def __init__(self, tmp_path: Path, own: str = "/some/path") -> None:
        self.root = str(tmp_path / "cgroup")
        self.own_file = str(tmp_path / "self-cgroup")
        with open(self.own_file, "w") as f:
            f.write(f"0::{own}\n")
        os.mkdir(self.root)
        self.cgroup_dir(self.root)
        d = self.root
        for name in own.strip("/").split("/") if own != "/" else []:
            d += "/" + name
            os.mkdir(d)
            self.cgroup_dir(d)

    def cgroup_dir(self, d: str, files: list[str] | None = None) -> None:
        """Give ``d`` the interface files a kernel would show."""
        for name in files if files is not None else INTERFACE_FILES:
            with open(f"{d}/{name}", "w") as f:
                f.write(CONTROLLERS if name == "cgroup.controllers" else "")

    def open(self, container_id: str = "ctr", cgroups_path: str | None = None) -> CgroupManager:
        return open_cgroups(container_id, cgroups_path, root=self.root, own_cgroup_file=self.own_file)

    def created(self, container_id: str = "ctr", cgroups_path: str | None = None) -> CgroupManager:
        """A manager whose directory exists and looks like a kernel made it."""
        mgr = self.open(container_id, cgroups_path)
        mgr.create()
        d = mgr.paths()[""]
        self.cgroup_dir(d)
        return mgr

    @staticmethod
    def empty(d: str) -> None:
        """What the kernel does on rmdir: the interface files go with the directory."""
        for entry in os.scandir(d):
            if entry.is_file():
                os.unlink(entry.path)


@pytest.fixture
def tree(tmp_path: Path) -> FakeTree:
    return FakeTree(tmp_path)


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Every (file name, value) the drivers write, in order (io.max takes one line per write)."""
    log: list[tuple[str, str]] = []
    real = pyrunc._cgroups.files.try_write_file

    def spy(path: str, value: str) -> int:
        log.append((os.path.basename(path), value))
        return real(path, value)

    monkeypatch.setattr(pyrunc._cgroups.files, "try_write_file", spy)
    monkeypatch.setattr(pyrunc._cgroups.v2, "try_write_file", spy)
    return log


def read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


# -- paths ---------------------------------------------------------------------------------------------


def test_picks_v2_and_runc_paths(tree: FakeTree) -> None:
    mgr = tree.open("ctr")
    assert isinstance(mgr, V2Manager)
    # runc's fs2: below the parent of the own cgroup (which holds the caller: no internal processes)
    assert mgr.paths() == {"": f"{tree.root}/some/pyrunc/ctr"}
    assert tree.open("ctr", "a/b").paths() == {"": f"{tree.root}/some/a/b"}
    assert tree.open("ctr", "../../../x").paths() == {"": f"{tree.root}/some/x"}  # cannot climb out
    assert tree.open("ctr", "/abs/x").paths() == {"": f"{tree.root}/abs/x"}
    assert mgr.mount_hierarchies() == []
    with pytest.raises(CgroupError, match="root of the hierarchy"):
        tree.open("ctr", "/")


def test_own_cgroup_at_root(tmp_path: Path) -> None:
    tree = FakeTree(tmp_path, own="/")
    assert tree.open("ctr").paths() == {"": f"{tree.root}/pyrunc/ctr"}


def test_create_enables_controllers_in_ancestors(tree: FakeTree) -> None:
    mgr = tree.open("ctr", "/a/b")
    mgr.create()
    assert os.path.isdir(f"{tree.root}/a/b")
    assert read(f"{tree.root}/cgroup.subtree_control").split() == ["+" + c for c in CONTROLLERS.split()]
    # the new level "a" has no subtree_control in the fake tree (a kernel would make it): ignored


def test_create_writes_only_missing_controllers(tree: FakeTree, writes: list[tuple[str, str]]) -> None:
    with open(f"{tree.root}/cgroup.subtree_control", "w") as f:
        f.write("cpu memory")
    os.mkdir(f"{tree.root}/x")
    tree.cgroup_dir(f"{tree.root}/x")
    with open(f"{tree.root}/x/cgroup.controllers", "w") as f:
        f.write("cpu memory")  # what the parent enabled
    with open(f"{tree.root}/x/cgroup.subtree_control", "w") as f:
        f.write("cpu memory")
    tree.open("ctr", "/x/ctr").create()
    assert ("cgroup.subtree_control", "+cpuset +io +hugetlb +pids") in writes
    assert sum(name == "cgroup.subtree_control" for name, _ in writes) == 1  # x has all it can have


def test_from_paths(tree: FakeTree) -> None:
    mgr = tree.created()
    again = from_paths(mgr.paths())
    assert isinstance(again, V2Manager) and again.paths() == mgr.paths()
    with pytest.raises(CgroupError, match="mix"):
        from_paths({"": mgr.paths()[""], "memory": "/sys/fs/cgroup/memory/x"})
    with pytest.raises(CgroupError, match="absolute"):
        from_paths({"": "relative/x"})


# -- resources -----------------------------------------------------------------------------------------


def test_memory(tree: FakeTree) -> None:
    mgr = tree.created()
    d = mgr.paths()[""]
    mgr.set(Resources(memory=Memory(limit=64 << 20, reservation=32 << 20, swap=96 << 20)))
    assert read(d + "/memory.max") == str(64 << 20)
    assert read(d + "/memory.low") == str(32 << 20)
    assert read(d + "/memory.swap.max") == str(32 << 20), "OCI swap is memory+swap"
    mgr.update(Resources(memory=Memory(limit=128 << 20, swap=128 << 20)))
    assert read(d + "/memory.swap.max") == "0"
    mgr.update(Resources(memory=Memory(limit=-1)))
    assert read(d + "/memory.max") == "max"
    assert read(d + "/memory.swap.max") == "max"
    mgr.update(Resources(memory=Memory(limit=64 << 20, swap=-1)))
    assert read(d + "/memory.swap.max") == "max"
    with pytest.raises(CgroupError, match=r"linux\.resources\.memory\.swap: memory\+swap .* below"):
        mgr.set(Resources(memory=Memory(limit=64 << 20, swap=32 << 20)))
    with pytest.raises(CgroupError, match=r"linux\.resources\.memory\.swap: cannot limit swap without"):
        mgr.set(Resources(memory=Memory(swap=32 << 20)))


def test_memory_without_swap_accounting(tree: FakeTree) -> None:
    mgr = tree.created()
    d = mgr.paths()[""]
    os.unlink(d + "/memory.swap.max")
    mgr.set(Resources(memory=Memory(limit=64 << 20, swap=64 << 20)))  # no swap: nothing to limit
    assert read(d + "/memory.max") == str(64 << 20)
    with pytest.raises(CgroupError, match=r"linux\.resources\.memory\.swap: swap accounting"):
        mgr.set(Resources(memory=Memory(limit=64 << 20, swap=128 << 20)))


def test_memory_check_before_update(tree: FakeTree) -> None:
    mgr = tree.created()
    d = mgr.paths()[""]
    with open(d + "/memory.current", "w") as f:
        f.write(str(100 << 20))
    with pytest.raises(CgroupError, match=r"linux\.resources\.memory\.limit: .* below the current usage"):
        mgr.update(Resources(memory=Memory(limit=64 << 20, check_before_update=True)))
    assert read(d + "/memory.max") == ""
    mgr.update(Resources(memory=Memory(limit=128 << 20, check_before_update=True)))
    assert read(d + "/memory.max") == str(128 << 20)


@pytest.mark.parametrize(
    ("shares", "weight"), [(2, 1), (1024, 39), (262144, 10000), (1, 1), (512, 20), (10**6, 10000)]
)
def test_cpu_weight_conversion(shares: int, weight: int) -> None:
    assert cpu_weight_from_shares(shares) == weight
    if 2 <= shares <= 262144:
        assert weight == 1 + ((shares - 2) * 9999) // 262142


def test_cpu(tree: FakeTree) -> None:
    mgr = tree.created()
    d = mgr.paths()[""]
    mgr.set(
        Resources(cpu=Cpu(shares=1024, quota=50000, period=100000, cpus="0-1", mems="0", idle=0, burst=1000))
    )
    assert read(d + "/cpu.weight") == "39"
    assert read(d + "/cpu.max") == "50000 100000"
    assert read(d + "/cpu.max.burst") == "1000"
    assert read(d + "/cpu.idle") == "0"
    assert read(d + "/cpuset.cpus") == "0-1"
    assert read(d + "/cpuset.mems") == "0"
    mgr.update(Resources(cpu=Cpu(quota=20000)))
    assert read(d + "/cpu.max") == "20000"  # the kernel keeps the period
    mgr.update(Resources(cpu=Cpu(quota=-1, period=50000)))
    assert read(d + "/cpu.max") == "max 50000"
    with pytest.raises(CgroupError, match=r"linux\.resources\.cpu\.realtimeRuntime"):
        mgr.set(Resources(cpu=Cpu(realtime_runtime=1000, realtime_period=10000)))


def test_pids(tree: FakeTree) -> None:
    mgr = tree.created()
    d = mgr.paths()[""]
    mgr.set(Resources(pids=Pids(limit=100)))
    assert read(d + "/pids.max") == "100"
    for unlimited in (0, -1):
        mgr.update(Resources(pids=Pids(limit=100)))
        mgr.update(Resources(pids=Pids(limit=unlimited)))
        assert read(d + "/pids.max") == "max"


def test_io(tree: FakeTree, writes: list[tuple[str, str]]) -> None:
    mgr = tree.created()
    d = mgr.paths()[""]
    mgr.set(
        Resources(
            block_io=BlockIO(
                weight=500,
                throttle_read_bps_device=[ThrottleDevice(major=8, minor=0, rate=1 << 20)],
                throttle_write_bps_device=[ThrottleDevice(major=8, minor=0, rate=2 << 20)],
                throttle_read_iops_device=[ThrottleDevice(major=8, minor=16, rate=100)],
                throttle_write_iops_device=[ThrottleDevice(major=8, minor=16, rate=200)],
            )
        )
    )
    assert read(d + "/io.weight") == str(io_weight_from_blkio(500)) == "4950"
    assert [v for name, v in writes if name == "io.max"] == [
        "8:0 rbps=1048576",
        "8:0 wbps=2097152",
        "8:16 riops=100",
        "8:16 wiops=200",
    ]
    with pytest.raises(CgroupError, match=r"linux\.resources\.blockIO\.weightDevice: .*BFQ"):
        mgr.set(Resources(block_io=BlockIO(weight_device=[WeightDevice(major=8, minor=0, weight=100)])))
    with pytest.raises(CgroupError, match=r"linux\.resources\.blockIO\.leafWeight"):
        mgr.set(Resources(block_io=BlockIO(leaf_weight=100)))


def test_io_with_bfq(tree: FakeTree, writes: list[tuple[str, str]]) -> None:
    mgr = tree.created()
    d = mgr.paths()[""]
    tree.cgroup_dir(d, ["io.bfq.weight"])
    mgr.set(
        Resources(block_io=BlockIO(weight=500, weight_device=[WeightDevice(major=8, minor=0, weight=100)]))
    )
    assert [v for name, v in writes if name == "io.bfq.weight"] == ["500", "8:0 100"]
    assert read(d + "/io.weight") == ""


def test_hugetlb_and_unified(tree: FakeTree) -> None:
    mgr = tree.created()
    d = mgr.paths()[""]
    mgr.set(
        Resources(
            memory=Memory(limit=1 << 30),
            hugepage_limits=[HugepageLimit(page_size="2MB", limit=4 << 21)],
            unified={"memory.high": "512M", "memory.max": "768M"},
        )
    )
    assert read(d + "/hugetlb.2MB.max") == read(d + "/hugetlb.2MB.rsvd.max") == str(4 << 21)
    assert read(d + "/memory.high") == "512M"
    assert read(d + "/memory.max") == "768M", "unified is written last and wins"
    with pytest.raises(
        CgroupError, match=r"linux\.resources\.unified\['memory\.oom\.group'\]: not supported"
    ):
        mgr.set(Resources(unified={"memory.oom.group": "1"}))
    with pytest.raises(CgroupError, match=r"linux\.resources\.unified\['\.\./x'\]: not a cgroup file"):
        mgr.set(Resources(unified={"../x": "1"}))
    with pytest.raises(CgroupError, match=r"linux\.resources\.hugepageLimits\[0\]: not supported"):
        mgr.set(Resources(hugepage_limits=[HugepageLimit(page_size="1GB", limit=1 << 30)]))


@pytest.mark.parametrize(
    ("resources", "field"),
    [
        (Resources(devices=[DeviceRule(allow=False)]), r"linux\.resources\.devices: .*eBPF"),
        (Resources(network={"classID": 1}), r"linux\.resources\.network"),
        (Resources(rdma={"mlx5_0": {"hcaHandles": 1}}), r"linux\.resources\.rdma"),
        (Resources(memory=Memory(kernel=1 << 20)), r"linux\.resources\.memory\.kernel:"),
        (Resources(memory=Memory(kernel_tcp=1 << 20)), r"linux\.resources\.memory\.kernelTCP"),
        (Resources(memory=Memory(disable_oom_killer=True)), r"linux\.resources\.memory\.disableOOMKiller"),
        (Resources(memory=Memory(swappiness=10)), r"linux\.resources\.memory\.swappiness"),
        (Resources(memory=Memory(use_hierarchy=False)), r"linux\.resources\.memory\.useHierarchy"),
    ],
)
def test_unsupported_fields_raise_before_writing(tree: FakeTree, resources: Resources, field: str) -> None:
    mgr = tree.created()
    d = mgr.paths()[""]
    with pytest.raises(CgroupError, match=field):
        mgr.set(resources.replace(pids=Pids(limit=10)))
    assert read(d + "/pids.max") == "", "nothing is written when a field is refused"


def test_write_error_names_file_and_value(tree: FakeTree) -> None:
    mgr = tree.created()
    d = mgr.paths()[""]
    os.unlink(d + "/memory.max")
    os.mkdir(d + "/memory.max")  # (root ignores file modes) a write that fails with EISDIR
    with pytest.raises(CgroupError, match=rf"^write 1024 to {d}/memory\.max: Is a directory$"):
        mgr.set(Resources(memory=Memory(limit=1024)))
    os.rmdir(d + "/memory.max")


# -- processes, freezer, stats -------------------------------------------------------------------------


def test_apply_and_pids(tree: FakeTree) -> None:
    mgr = tree.created()
    d = mgr.paths()[""]
    mgr.apply(4242)
    assert read(d + "/cgroup.procs") == "4242"
    os.mkdir(d + "/sub")
    tree.cgroup_dir(d + "/sub")
    with open(d + "/cgroup.procs", "w") as f:
        f.write("30\n10\n")
    with open(d + "/sub/cgroup.procs", "w") as f:
        f.write("20\n")
    assert mgr.pids() == [10, 20, 30]


def test_freeze_and_thaw(tree: FakeTree) -> None:
    mgr = tree.created()
    d = mgr.paths()[""]
    with open(d + "/cgroup.events", "w") as f:
        f.write("populated 1\nfrozen 1\n")  # what the kernel reports once every task stopped
    mgr.freeze()
    assert read(d + "/cgroup.freeze") == "1"
    assert mgr.is_frozen()
    with open(d + "/cgroup.events", "w") as f:
        f.write("populated 1\nfrozen 0\n")
    mgr.thaw()
    assert read(d + "/cgroup.freeze") == "0"
    assert not mgr.is_frozen()


def test_freeze_times_out_and_thaws_back(tree: FakeTree, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pyrunc._cgroups.v2, "FREEZE_TIMEOUT", 0.05)
    mgr = tree.created()
    d = mgr.paths()[""]
    with open(d + "/cgroup.events", "w") as f:
        f.write("populated 1\nfrozen 0\n")  # never settles
    with pytest.raises(CgroupError, match=r"freeze .*: cgroup\.events did not report it"):
        mgr.freeze()
    assert read(d + "/cgroup.freeze") == "0"


def test_stats(tree: FakeTree) -> None:
    mgr = tree.created()
    d = mgr.paths()[""]
    files = {
        "memory.current": "1048576",
        "memory.peak": "4194304",
        "memory.max": "max",
        "memory.events": "low 0\nhigh 0\nmax 5\noom 2\noom_kill 2\noom_group_kill 0\n",
        "pids.current": "3",
        "pids.max": "100",
        "cpu.stat": "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 10\n"
        "nr_throttled 4\nthrottled_usec 250\n",
        "io.stat": "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n"
        "8:16 rbytes=1 wbytes=2 rios=1 wios=1 dbytes=0 dios=0\n",
    }
    for name, content in files.items():
        with open(f"{d}/{name}", "w") as f:
            f.write(content)
    s = mgr.stats()
    assert (s.memory.usage, s.memory.max_usage, s.memory.limit) == (1 << 20, 4 << 20, None)
    assert (s.memory.failcnt, s.memory.oom_kill) == (5, 2)
    assert (s.pids.current, s.pids.limit) == (3, 100)
    assert (s.cpu.usage_total, s.cpu.usage_user, s.cpu.usage_kernel) == (1_500_000, 1_000_000, 500_000)
    assert (s.cpu.nr_periods, s.cpu.nr_throttled, s.cpu.throttled_time) == (10, 4, 250_000)
    assert (s.blkio.read_bytes, s.blkio.write_bytes) == (4097, 8194)


# -- destroy -------------------------------------------------------------------------------------------


def test_destroy_removes_tree_and_empty_default_parent(tree: FakeTree) -> None:
    mgr = tree.created()
    d = mgr.paths()[""]
    os.mkdir(d + "/sub")
    tree.empty(d)
    mgr.destroy()
    assert not os.path.exists(d)
    assert not os.path.exists(os.path.dirname(d)), "the empty pyrunc/ parent goes too"
    assert os.path.isdir(f"{tree.root}/some")
    mgr.destroy()  # absent is fine


def test_destroy_keeps_a_shared_parent(tree: FakeTree) -> None:
    one, two = tree.created("one"), tree.created("two")
    tree.empty(one.paths()[""])
    from_paths(one.paths()).destroy()
    assert not os.path.exists(one.paths()[""])
    assert os.path.isdir(two.paths()[""])


def test_destroy_of_a_busy_cgroup_raises(tree: FakeTree, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pyrunc._cgroups.files, "DESTROY_TIMEOUT", 0.05)
    mgr = tree.created("busy", "explicit/busy")
    d = mgr.paths()[""]
    # the fake cannot be EBUSY; a directory that stays non-empty is retried the same way
    with pytest.raises(CgroupError, match=rf"remove cgroup {d}: Directory not empty"):
        mgr.destroy()
    tree.empty(d)
    mgr.destroy()
    assert not os.path.exists(d)
    assert os.path.isdir(os.path.dirname(d)), "a parent of an explicit path is not removed"
