"""The cgroup v1 driver against the real kernel (hybrid or legacy host, run as root).

Safety: every cgroup these tests make nests under this process's OWN cgroup in each hierarchy (read
independently from /proc/self/cgroup and /proc/self/mountinfo and asserted before ``create()``); the
``cgroups`` fixture destroys what each test made, removes any intermediate directory it caused, and
asserts that nothing is left, even when the test failed. Nothing is ever mounted or unmounted.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from typing import TYPE_CHECKING

import pytest

from pyrunc._cgroups.manager import from_paths, open_cgroups
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
)

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from pyrunc._cgroups.driver import CgroupManager

pytestmark = [
    pytest.mark.cgroup,
    pytest.mark.skipif(
        os.path.exists("/sys/fs/cgroup/cgroup.controllers") or not os.path.isdir("/sys/fs/cgroup/devices"),
        reason="needs a cgroup v1 (legacy or hybrid) host",
    ),
]

SRC = os.path.dirname(os.path.dirname(os.path.abspath(sys.modules["pyrunc"].__path__[0])))


# -- an independent view of this process's own cgroups -------------------------------------------------


def own_cgroup_dirs() -> dict[str, str]:
    """Controller ("cpu", "name=systemd"...) -> this process's own cgroup directory, v1 only."""
    mounts = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fs = right.split()
            if len(fs) >= 3 and fs[0] == "cgroup":
                fields = left.split()
                mounts.append((fields[4], fields[3], set(fs[2].split(","))))
    own = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            if not controllers:
                continue
            wanted = set(controllers.split(","))
            for mountpoint, root, options in mounts:
                if wanted <= options and os.path.dirname(mountpoint) == "/sys/fs/cgroup":
                    rel = path[len(root.rstrip("/")) :] if root != "/" else path
                    for c in wanted:
                        own[c] = os.path.normpath(mountpoint + rel)
                    break
    return own


class CgroupEnv:
    """Managers and child processes of one test, all cleaned up by the fixture."""

    def __init__(self) -> None:
        self.own = own_cgroup_dirs()
        self.managers: list[CgroupManager] = []
        self.procs: list[subprocess.Popen[bytes]] = []
        self.made: list[str] = []  # directories that did not exist before create(), deepest last

    def open(self, cgroups_path: str | None = None, container_id: str | None = None) -> CgroupManager:
        cid = container_id or f"pytest-{uuid.uuid4().hex[:12]}"
        mgr = open_cgroups(cid, cgroups_path)
        for controller, path in mgr.paths().items():
            top = self.own[controller]
            assert path.startswith(top + "/"), f"{path} is not under the own cgroup {top}"
            # remember every level create() will make, so that teardown removes them all
            missing, d = [], path
            while d != top and not os.path.isdir(d):
                missing.append(d)
                d = os.path.dirname(d)
            self.made += [m for m in reversed(missing) if m not in self.made]
        self.managers.append(mgr)
        return mgr

    def spawn(self, args: list[str], **kw: object) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(args, **kw)  # type: ignore[call-overload]
        self.procs.append(proc)
        return proc  # type: ignore[no-any-return]

    def python(self, code: str) -> subprocess.Popen[bytes]:
        """A Python child that waits for a line on stdin (``go``) before running ``code``."""
        script = "import sys\nsys.stdin.readline()\n" + code
        return self.spawn([sys.executable, "-S", "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    @staticmethod
    def go(proc: subprocess.Popen[bytes]) -> tuple[int, str]:
        assert proc.stdin is not None
        proc.stdin.write(b"go\n")
        proc.stdin.flush()
        out, _ = proc.communicate(timeout=60)
        return proc.returncode, out.decode()

    def teardown(self) -> list[str]:
        problems = []
        for mgr in self.managers:
            try:
                if "freezer" in mgr.paths() and os.path.isdir(mgr.paths()["freezer"]):
                    mgr.thaw()  # a frozen task cannot die
            except CgroupError as e:
                problems.append(f"thaw: {e}")
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=30)
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    stream.close()
        for mgr in self.managers:
            try:
                mgr.destroy()
            except CgroupError as e:
                problems.append(f"destroy: {e}")
        for d in reversed(self.made):  # intermediate levels (absolute/relative paths, pyrunc/)
            try:
                os.rmdir(d)
            except FileNotFoundError:
                pass
            except OSError as e:
                if e.errno not in (errno.EBUSY, errno.ENOTEMPTY):
                    problems.append(f"rmdir {d}: {e}")
        for d in self.made:
            # only a shared parent that another user of it keeps populated may remain
            if os.path.isdir(d) and not any(entry.is_dir() for entry in os.scandir(d)):
                problems.append(f"leaked cgroup {d}")
        for mgr in self.managers:
            problems += [f"leaked cgroup {p}" for p in mgr.paths().values() if os.path.exists(p)]
        return problems


@pytest.fixture
def cgroups() -> Iterator[CgroupEnv]:
    env = CgroupEnv()
    try:
        yield env
    finally:
        problems = env.teardown()
    assert not problems, "\n".join(problems)


def read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


# -- paths ---------------------------------------------------------------------------------------------


def test_create_paths_destroy(cgroups: CgroupEnv) -> None:
    mgr = cgroups.open(container_id="pytest-paths-" + uuid.uuid4().hex[:8])
    paths = mgr.paths()
    assert set(paths) == set(cgroups.own), "one entry per mounted v1 controller, named hierarchy included"
    assert "name=systemd" in paths or not os.path.isdir("/sys/fs/cgroup/systemd")
    for controller, path in paths.items():
        assert path == f"{cgroups.own[controller]}/pyrunc/{path.rsplit('/', 1)[1]}"
    mgr.create()
    assert all(os.path.isdir(p) for p in paths.values())
    mgr.create()  # idempotent
    mgr.destroy()
    assert not any(os.path.exists(p) for p in paths.values())
    mgr.destroy()  # absent directories are fine


def test_cpuset_copied_from_parent(cgroups: CgroupEnv) -> None:
    mgr = cgroups.open()
    mgr.create()
    path = mgr.paths()["cpuset"]
    for name in ("cpuset.cpus", "cpuset.mems"):
        assert read(f"{path}/{name}") == read(f"{os.path.dirname(path)}/{name}") != ""


def test_cpuset_parent_made_but_not_yet_filled_by_another_process(cgroups: CgroupEnv) -> None:
    # Another create made the relative parent (pyrunc/<group>) a moment ago and has not copied
    # cpus and mems into it yet: this create fills it, or its own task could not join (ENOSPC).
    group = f"pytest-{uuid.uuid4().hex[:8]}"
    mgr = cgroups.open(f"{group}/one")
    path = mgr.paths()["cpuset"]
    parent = os.path.dirname(path)
    os.mkdir(parent)
    assert read(f"{parent}/cpuset.cpus") == ""
    mgr.create()
    proc = cgroups.spawn(["sleep", "30"])
    mgr.apply(proc.pid)
    for name in ("cpuset.cpus", "cpuset.mems"):
        assert read(f"{path}/{name}") == read(f"{parent}/{name}") == read(f"{os.path.dirname(parent)}/{name}")


def test_mount_hierarchies(cgroups: CgroupEnv) -> None:
    mgr = cgroups.open()
    found = mgr.mount_hierarchies()
    paths = mgr.paths()
    assert ("systemd", "name=systemd", paths["name=systemd"]) in found
    for dirname, option, host_dir in found:
        assert os.path.isdir(f"/sys/fs/cgroup/{dirname}")
        assert all(paths[c] == host_dir for c in option.split(","))
    assert {c for _, option, _ in found for c in option.split(",")} == set(paths)


def test_apply_and_pids(cgroups: CgroupEnv) -> None:
    mgr = cgroups.open()
    mgr.create()
    sleeper = cgroups.spawn(["sleep", "30"])
    mgr.apply(sleeper.pid)
    assert mgr.pids() == [sleeper.pid]
    with open(f"/proc/{sleeper.pid}/cgroup") as f:
        lines = f.read()
    rel = mgr.paths()["memory"][len("/sys/fs/cgroup/memory") :]
    assert f":memory:{rel}\n" in lines
    # a nested cgroup is part of the container: pids() is recursive, destroy removes it
    nested = mgr.paths()["devices"] + "/nested"
    os.mkdir(nested)
    other = cgroups.spawn(["sleep", "30"])
    with open(nested + "/cgroup.procs", "w") as f:
        f.write(str(other.pid))
    assert mgr.pids() == sorted([sleeper.pid, other.pid])
    stats = mgr.stats()
    assert stats.pids.current == 1  # "other" joined the devices hierarchy only


def assert_in(proc_cgroup: str, paths: dict[str, str]) -> None:
    """The process whose /proc/<pid>/cgroup is ``proc_cgroup`` is in ``paths`` in every hierarchy."""
    joined = set()
    for line in proc_cgroup.splitlines():
        _, controllers, path = line.split(":", 2)
        for c in controllers.split(",") if controllers else []:
            if c in paths:
                assert paths[c].endswith(path), (c, path)
                joined.add(c)
    assert joined == set(paths)


def test_a_process_joins_itself_through_the_join_files(cgroups: CgroupEnv) -> None:
    # create's init writes 0 to each of these (tasks: a thread moving itself alone skips the
    # kernel's global attach lock); a single-threaded process is then wholly in the container's
    # cgroups, in every hierarchy.
    mgr = cgroups.open()
    mgr.create()
    assert mgr.join_files() == [f"{p}/tasks" for p in dict.fromkeys(mgr.paths().values())]
    join = f"for path in {mgr.join_files()!r}:\n    with open(path, 'w') as f:\n        f.write('0')\n"
    child = cgroups.python(join + "print(open('/proc/self/cgroup').read(), end='')")
    status, out = cgroups.go(child)
    assert status == 0
    assert_in(out, mgr.paths())


def test_create_leaves_the_init_to_join_its_cgroups(
    busybox_bundle: Path, pyrunc_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Moving the init from the parent (apply: its pid to cgroup.procs) waits on the kernel's
    # attach lock; without a user namespace the init joins through join_files() instead.
    import pyrunc
    from pyrunc._cgroups.v1 import V1Manager

    def refuse(self: V1Manager, pid: int) -> None:
        raise AssertionError(f"create moved the init ({pid}) into its cgroups itself")

    monkeypatch.setattr(V1Manager, "apply", refuse)
    container_id = f"pytest-{uuid.uuid4().hex[:12]}"
    paths = pyrunc.cgroup_paths(container_id)
    container = pyrunc.Container.create(
        container_id, pyrunc.CreateOptions(str(busybox_bundle)), root=str(pyrunc_root)
    )
    try:
        with open(f"/proc/{container.state().pid}/cgroup") as f:
            assert_in(f.read(), paths)
    finally:
        container.delete(force=True)


def test_an_exec_d_process_joins_the_container_s_cgroups_itself(
    tmp_path: Path, pyrunc_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As the init: through join_files(), before it enters the container's namespaces.
    import pyrunc
    from pyrunc._cgroups.v1 import V1Manager
    from pyrunc.testing import make_busybox_bundle

    bundle = make_busybox_bundle(tmp_path / "bundle", ["sleep", "30"])
    container_id = f"pytest-{uuid.uuid4().hex[:12]}"
    container = pyrunc.Container.create(
        container_id, pyrunc.CreateOptions(str(bundle)), root=str(pyrunc_root)
    )
    try:
        container.start()

        def refuse(self: V1Manager, pid: int) -> None:
            raise AssertionError(f"exec moved the process ({pid}) into the cgroups itself")

        monkeypatch.setattr(V1Manager, "apply", refuse)
        process = container.saved_process().replace(args=["sleep", "30"])
        pid = container.exec(process, detach=True)
        try:
            with open(f"/proc/{pid}/cgroup") as f:
                assert_in(f.read(), container.cgroup_paths)
        finally:
            os.kill(pid, 9)
            os.waitpid(pid, 0)  # our child (the exec clones it so)
    finally:
        container.delete(force=True)


def test_create_makes_again_a_parent_another_container_removed_meanwhile(
    cgroups: CgroupEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A destroy removes the shared default parent (pyrunc/) once it is empty; in between another
    # create's making it and its mkdir below, that mkdir fails with ENOENT. Done for real here, once.
    import posix

    mgr = cgroups.open()
    paths = sorted(set(mgr.paths().values()))
    mkdir = posix.mkdir
    removed: list[str] = []

    def racing(path: str, mode: int = 0o777) -> None:
        if path in paths and not removed:
            posix.rmdir(os.path.dirname(path))  # empty: we just made it
            removed.append(path)
        mkdir(path, mode)

    monkeypatch.setattr(posix, "mkdir", racing)
    mgr.create()
    assert removed and all(os.path.isdir(p) for p in paths)


def test_create_makes_again_a_cpuset_parent_removed_before_it_was_filled(
    cgroups: CgroupEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The same race one step later: the shared parent is removed between its mkdir and the copy of
    # cpus and mems into it, so the write finds no file (ENOENT). Done for real here, once.
    from pyrunc._cgroups import v1

    mgr = cgroups.open()
    parent = os.path.dirname(mgr.paths()["cpuset"])
    write = v1.try_write_file
    removed: list[str] = []

    def racing(path: str, value: str) -> int:
        if path == f"{parent}/cpuset.cpus" and not removed:
            os.rmdir(parent)  # empty: this create has only just made it
            removed.append(path)
        return write(path, value)

    monkeypatch.setattr(v1, "try_write_file", racing)
    mgr.create()
    assert removed
    assert read(f"{parent}/cpuset.cpus") == read(f"{os.path.dirname(parent)}/cpuset.cpus") != ""


def test_destroy_busy_raises_after_bounded_retry(cgroups: CgroupEnv) -> None:
    mgr = cgroups.open()
    mgr.create()
    sleeper = cgroups.spawn(["sleep", "30"])
    mgr.apply(sleeper.pid)
    started = time.monotonic()
    with pytest.raises(CgroupError, match="Device or resource busy"):
        mgr.destroy()
    assert time.monotonic() - started < 3.0
    sleeper.kill()
    sleeper.wait()
    mgr.destroy()  # the process is gone (it may still be exiting: bounded retry)
    assert not any(os.path.exists(p) for p in mgr.paths().values())


def test_from_paths_and_reopen_from_another_process(cgroups: CgroupEnv) -> None:
    cid = "pytest-rt-" + uuid.uuid4().hex[:8]
    mgr = cgroups.open(container_id=cid)
    mgr.create()
    again = from_paths(mgr.paths())
    assert again.paths() == mgr.paths()
    assert again.mount_hierarchies() == mgr.mount_hierarchies()
    code = (
        "import json; from pyrunc._cgroups.manager import open_cgroups; "
        f"print(json.dumps(open_cgroups({cid!r}, None).paths()))"
    )
    env = dict(os.environ, PYTHONPATH=SRC)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, check=True, text=True)
    assert json.loads(out.stdout) == mgr.paths()
    sleeper = cgroups.spawn(["sleep", "30"])
    again.apply(sleeper.pid)
    assert mgr.pids() == [sleeper.pid]


def test_absolute_path_is_honoured(cgroups: CgroupEnv) -> None:
    mountpoints, own_rel = {}, {}  # per controller: mount point, own cgroup inside the hierarchy
    for controller, d in cgroups.own.items():
        mountpoint = d
        while os.path.dirname(mountpoint) != "/sys/fs/cgroup":
            mountpoint = os.path.dirname(mountpoint)
        mountpoints[controller], own_rel[controller] = mountpoint, d[len(mountpoint) :] or "/"
    # an absolute path is the same in every hierarchy: take one below the deepest own cgroup, which
    # (when the own cgroups are nested, as usual) is below the own cgroup of every controller
    deepest = max(own_rel.values(), key=len)
    if not all(deepest == r or deepest.startswith(r.rstrip("/") + "/") for r in own_rel.values()):
        pytest.skip(f"own cgroups are not nested: {own_rel}")
    absolute = f"{deepest.rstrip('/')}/pyrunc-test-abs-{uuid.uuid4().hex[:8]}"
    mgr = cgroups.open(absolute)
    assert mgr.paths() == {c: mountpoints[c] + absolute for c in cgroups.own}
    mgr.create()
    assert all(os.path.isdir(p) for p in mgr.paths().values())
    sleeper = cgroups.spawn(["sleep", "30"])
    mgr.apply(sleeper.pid)
    assert mgr.pids() == [sleeper.pid]


def test_relative_path_is_below_own_cgroup(cgroups: CgroupEnv) -> None:
    rel = f"pyrunc-test-rel-{uuid.uuid4().hex[:8]}/inner"
    mgr = cgroups.open("../" + rel)  # ".." cannot climb above the own cgroup (runc's CleanPath)
    for controller, path in mgr.paths().items():
        assert path == f"{cgroups.own[controller]}/{rel}"
    mgr.create()
    assert all(os.path.isdir(p) for p in mgr.paths().values())


# -- resources -----------------------------------------------------------------------------------------


def test_memory_limit_set_and_read_back(cgroups: CgroupEnv) -> None:
    mgr = cgroups.open()
    mgr.create()
    d = mgr.paths()["memory"]
    has_memsw = os.path.exists(d + "/memory.memsw.limit_in_bytes")
    mem = Memory(limit=64 << 20, reservation=32 << 20, swappiness=10, swap=(96 << 20) if has_memsw else None)
    mgr.set(Resources(memory=mem))
    assert int(read(d + "/memory.limit_in_bytes")) == 64 << 20
    assert int(read(d + "/memory.soft_limit_in_bytes")) == 32 << 20
    assert read(d + "/memory.swappiness") == "10"
    assert mgr.stats().memory.limit == 64 << 20
    if has_memsw:
        assert int(read(d + "/memory.memsw.limit_in_bytes")) == 96 << 20
        # growing both needs memsw first, shrinking both needs the limit first: both orders work
        mgr.update(Resources(memory=Memory(limit=256 << 20, swap=512 << 20)))
        assert int(read(d + "/memory.limit_in_bytes")) == 256 << 20
        assert int(read(d + "/memory.memsw.limit_in_bytes")) == 512 << 20
        mgr.update(Resources(memory=Memory(limit=32 << 20, swap=32 << 20)))
        assert int(read(d + "/memory.limit_in_bytes")) == 32 << 20
        assert int(read(d + "/memory.memsw.limit_in_bytes")) == 32 << 20
        with pytest.raises(CgroupError, match=r"^write \d+ to .*/memory\.[a-z_.]+: Invalid argument$"):
            mgr.update(Resources(memory=Memory(limit=64 << 20, swap=48 << 20)))  # memory+swap < memory
        mgr.update(Resources(memory=Memory(limit=-1)))  # unlimited memory means unlimited swap too
        assert mgr.stats().memory.limit is None
        assert int(read(d + "/memory.memsw.limit_in_bytes")) > 1 << 62
    with pytest.raises(CgroupError, match=r"linux\.resources\.memory\.swappiness"):
        mgr.set(Resources(memory=Memory(swappiness=101)))


def test_oom_kill_is_counted(cgroups: CgroupEnv) -> None:
    mgr = cgroups.open()
    mgr.create()
    d = mgr.paths()["memory"]
    swap = (32 << 20) if os.path.exists(d + "/memory.memsw.limit_in_bytes") else None
    mgr.set(Resources(memory=Memory(limit=32 << 20, swap=swap)))
    hog = cgroups.python("data = b'x' * (512 << 20)\nprint('survived')")
    mgr.apply(hog.pid)
    code, out = cgroups.go(hog)
    assert code == -signal.SIGKILL, out
    assert "survived" not in out
    stats = mgr.stats()
    assert stats.memory.oom_kill is not None and stats.memory.oom_kill >= 1
    assert stats.memory.max_usage is not None and stats.memory.max_usage >= 30 << 20


def test_pids_limit_makes_fork_fail(cgroups: CgroupEnv) -> None:
    mgr = cgroups.open()
    mgr.create()
    mgr.set(Resources(pids=Pids(limit=4)))
    assert read(mgr.paths()["pids"] + "/pids.max") == "4"
    forker = cgroups.python(
        "import os, time\n"
        "kids, err = [], None\n"
        "for _ in range(10):\n"
        "    try:\n"
        "        pid = os.fork()\n"
        "    except OSError as e:\n"
        "        err = e.errno\n"
        "        break\n"
        "    if pid == 0:\n"
        "        time.sleep(30)\n"
        "        os._exit(0)\n"
        "    kids.append(pid)\n"
        "for pid in kids:\n"
        "    os.kill(pid, 9)\n"
        "    os.waitpid(pid, 0)\n"
        "print(len(kids), err)\n"
    )
    mgr.apply(forker.pid)
    code, out = cgroups.go(forker)
    assert code == 0
    assert out.split() == ["3", str(errno.EAGAIN)]
    mgr.update(Resources(pids=Pids(limit=0)))
    assert read(mgr.paths()["pids"] + "/pids.max") == "max"
    assert mgr.stats().pids.limit is None


def test_cpu_shares_quota_period_cpuset(cgroups: CgroupEnv) -> None:
    mgr = cgroups.open()
    mgr.create()
    paths = mgr.paths()
    cpus = read(os.path.dirname(paths["cpuset"]) + "/cpuset.cpus").split(",")[0].split("-")[0]
    mgr.set(Resources(cpu=Cpu(shares=512, quota=25000, period=50000, cpus=cpus, mems="0")))
    d = paths["cpu"]
    assert read(d + "/cpu.shares") == "512"
    assert read(d + "/cpu.cfs_quota_us") == "25000"
    assert read(d + "/cpu.cfs_period_us") == "50000"
    assert read(paths["cpuset"] + "/cpuset.cpus") == cpus
    mgr.update(Resources(cpu=Cpu(quota=-1, period=100000)))
    assert read(d + "/cpu.cfs_quota_us") == "-1"
    assert read(d + "/cpu.cfs_period_us") == "100000"
    with pytest.raises(
        CgroupError, match=r"linux\.resources\.cpu\.shares: 1 is out of range, the minimum is 2"
    ):
        mgr.set(Resources(cpu=Cpu(shares=1)))
    with pytest.raises(CgroupError, match=rf"^write 500 to {d}/cpu\.cfs_quota_us: Invalid argument$"):
        mgr.set(Resources(cpu=Cpu(quota=500)))  # below the kernel's 1 ms minimum


def test_cpu_usage_is_accounted(cgroups: CgroupEnv) -> None:
    mgr = cgroups.open()
    mgr.create()
    mgr.set(Resources(cpu=Cpu(quota=10000, period=100000)))  # 10 % of a CPU: it gets throttled
    spinner = cgroups.python("import time\nend = time.time() + 0.5\nwhile time.time() < end: pass\n")
    mgr.apply(spinner.pid)
    assert cgroups.go(spinner)[0] == 0
    cpu = mgr.stats().cpu
    assert cpu.usage_total is not None and cpu.usage_total > 10_000_000
    assert cpu.nr_throttled is not None and cpu.nr_throttled > 0
    assert cpu.throttled_time is not None and cpu.throttled_time > 0


def test_device_rules_in_order(cgroups: CgroupEnv) -> None:
    mgr = cgroups.open()
    mgr.create()
    rules = [
        DeviceRule(allow=False, access="rwm"),  # deny all
        DeviceRule(allow=True, type="c", major=1, minor=3, access="rwm"),  # /dev/null
        DeviceRule(allow=True, type="c", major=136, minor=None, access="rw"),  # pts
        DeviceRule(allow=True, type="b", major=None, minor=None, access="m"),
        DeviceRule(allow=False, type="c", major=136, minor=None, access="w"),
    ]
    mgr.set(Resources(devices=rules))
    listed = read(mgr.paths()["devices"] + "/devices.list").splitlines()
    assert sorted(listed) == sorted(["c 1:3 rwm", "c 136:* r", "b *:* m"])
    with pytest.raises(CgroupError, match=r"linux\.resources\.devices\[0\]\.access"):
        mgr.set(Resources(devices=[DeviceRule(allow=True, type="c", access="rx")]))


def test_blkio_throttle(cgroups: CgroupEnv) -> None:
    devs = [read(f"/sys/block/{b}/dev") for b in sorted(os.listdir("/sys/block")) if not b.startswith("loop")]
    if not devs:
        pytest.skip("no block device")
    major, minor = (int(x) for x in devs[0].split(":"))
    mgr = cgroups.open()
    mgr.create()
    mgr.set(
        Resources(
            block_io=BlockIO(
                throttle_read_bps_device=[ThrottleDevice(major=major, minor=minor, rate=1 << 20)],
                throttle_write_iops_device=[ThrottleDevice(major=major, minor=minor, rate=100)],
            )
        )
    )
    d = mgr.paths()["blkio"]
    assert read(d + "/blkio.throttle.read_bps_device") == f"{major}:{minor} {1 << 20}"
    assert read(d + "/blkio.throttle.write_iops_device") == f"{major}:{minor} 100"
    blkio = mgr.stats().blkio
    assert blkio.read_bytes is not None and blkio.write_bytes is not None


def test_unsupported_fields_raise_before_writing(cgroups: CgroupEnv) -> None:
    mgr = cgroups.open()
    mgr.create()
    d = mgr.paths()["memory"]
    before = read(d + "/memory.limit_in_bytes")
    cases = [
        (
            Resources(memory=Memory(limit=1 << 30), unified={"memory.high": "1G"}),
            r"linux\.resources\.unified",
        ),
        (Resources(memory=Memory(limit=1 << 30), network={"classID": 1}), r"linux\.resources\.network"),
        (Resources(memory=Memory(limit=1 << 30), rdma={"mlx5_0": {}}), r"linux\.resources\.rdma"),
    ]
    if "hugetlb" not in mgr.paths():
        limits = [HugepageLimit(page_size="2MB", limit=1 << 21)]
        cases.append((Resources(memory=Memory(limit=1 << 30), hugepage_limits=limits), "hugepageLimits"))
    for resources, message in cases:
        with pytest.raises(CgroupError, match=message):
            mgr.set(resources)
        assert read(d + "/memory.limit_in_bytes") == before
    if not os.path.exists(mgr.paths()["blkio"] + "/blkio.leaf_weight"):
        with pytest.raises(CgroupError, match=r"linux\.resources\.blockIO\.leafWeight: not supported"):
            mgr.set(Resources(block_io=BlockIO(leaf_weight=500)))


def test_freeze_and_thaw(cgroups: CgroupEnv) -> None:
    mgr = cgroups.open()
    mgr.create()
    counter = cgroups.spawn(["sh", "-c", "while :; do :; done"])
    mgr.apply(counter.pid)
    assert not mgr.is_frozen()
    mgr.freeze()
    assert mgr.is_frozen()
    assert read(mgr.paths()["freezer"] + "/freezer.state") == "FROZEN"
    with open(f"/proc/{counter.pid}/stat") as f:
        before = f.read().rsplit(")", 1)[1].split()[11]  # utime
    time.sleep(0.2)
    with open(f"/proc/{counter.pid}/stat") as f:
        assert f.read().rsplit(")", 1)[1].split()[11] == before, "a frozen task does not run"
    mgr.thaw()
    assert not mgr.is_frozen()
    assert read(mgr.paths()["freezer"] + "/freezer.state") == "THAWED"


# -- path computation on made-up inputs (nothing is created) -------------------------------------------


def test_paths_from_fake_proc_files(tmp_path: Path) -> None:
    (tmp_path / "cgroup").write_text(
        "5:cpu,cpuacct:/docker/abc/user\n4:devices:/docker/abc\n3:name=systemd:/init.scope\n"
        "2:net_cls:/\n0::/whatever\n"
    )
    (tmp_path / "mountinfo").write_text(
        "30 23 0:26 / /sys/fs/cgroup ro - tmpfs tmpfs ro,mode=755\n"
        "31 30 0:27 /docker/abc /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
        "32 30 0:28 /docker/abc /sys/fs/cgroup/devices rw - cgroup cgroup rw,devices\n"
        "33 30 0:29 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd\n"
        "34 30 0:30 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n"
    )
    kw = {"own_cgroup_file": str(tmp_path / "cgroup"), "mountinfo": str(tmp_path / "mountinfo")}
    root = str(tmp_path / "no-v2")  # no cgroup.controllers there: v1
    mgr = open_cgroups("ctr", None, root=root, **kw)
    assert mgr.paths() == {
        "cpu": "/sys/fs/cgroup/cpu,cpuacct/user/pyrunc/ctr",
        "cpuacct": "/sys/fs/cgroup/cpu,cpuacct/user/pyrunc/ctr",
        "devices": "/sys/fs/cgroup/devices/pyrunc/ctr",
        "name=systemd": "/sys/fs/cgroup/systemd/init.scope/pyrunc/ctr",
    }
    assert mgr.mount_hierarchies() == [
        ("cpu,cpuacct", "cpu,cpuacct", "/sys/fs/cgroup/cpu,cpuacct/user/pyrunc/ctr"),
        ("devices", "devices", "/sys/fs/cgroup/devices/pyrunc/ctr"),
        ("systemd", "name=systemd", "/sys/fs/cgroup/systemd/init.scope/pyrunc/ctr"),
    ]
    assert open_cgroups("ctr", "/abs/x", root=root, **kw).paths()["devices"] == "/sys/fs/cgroup/devices/abs/x"
    assert open_cgroups("ctr", "rel/../../y", root=root, **kw).paths()["devices"] == (
        "/sys/fs/cgroup/devices/y"
    )
    (tmp_path / "cgroup").write_text("4:devices:/elsewhere\n")
    with pytest.raises(CgroupError, match="outside the mounted part"):
        open_cgroups("ctr", None, root=root, **kw)
    (tmp_path / "cgroup").write_text("5:cpu,cpuacct:/docker/abc\n")
    with pytest.raises(CgroupError, match="devices cgroup"):
        open_cgroups("ctr", None, root=root, **kw)
    with pytest.raises(CgroupError, match="invalid container id"):
        open_cgroups("../x", None, root=root, **kw)
