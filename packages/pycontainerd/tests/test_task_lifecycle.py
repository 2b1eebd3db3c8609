"""Every way a task and a container end, on both snapshotters, through ``pyctr`` (one process per
command): the container's files survive its task and go with its record, nothing is ever deleted
through a mount, and nothing stays mounted, in a cgroup or running. Then ``pyctr run -d`` killed with
SIGKILL at each point of its work (a test seam stops it there: PYCONTAINERD_TEST_STOP_AT) and at
random moments: ``tasks ls`` tells what is there, and ``gc`` cleans up without a force flag."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pyrunc_acceptance_oci_images as oci_images  # registered by conftest.py
import pytest

from pyrunc.testing import HostSnapshot

PYCTR = str(Path(sys.executable).with_name("pyctr"))
SNAPSHOTTERS = ("native", "overlayfs")


class Pyctr:
    """``pyctr`` on a private root and state, in a namespace of its own, with one snapshotter."""

    def __init__(self, tmp_path: Path, snapshotter: str) -> None:
        self.tmp = tmp_path
        self.namespace = f"lc{os.getpid()}"
        self.base = [
            PYCTR, "--root", str(tmp_path / "root"), "--state", str(tmp_path / "state"),
            "--namespace", self.namespace, "--snapshotter", snapshotter,
        ]  # fmt: skip
        self.image = ""

    def __call__(
        self, *args: str, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [*self.base, *args], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout
        )
        assert "Traceback" not in done.stderr, done.stderr
        if check and done.returncode != 0:
            raise AssertionError(f"pyctr {' '.join(args)} exited {done.returncode}: {done.stderr}")
        return done

    def in_namespace(self, namespace: str) -> Pyctr:
        """The same ``pyctr`` (root, state, snapshotter) in another namespace."""
        other = Pyctr(self.tmp, self.base[self.base.index("--snapshotter") + 1])
        other.namespace = namespace
        other.base[other.base.index("--namespace") + 1] = namespace
        return other

    def tasks(self) -> dict[str, list[str]]:
        """``tasks ls`` as {id: [pid, status, exit]}."""
        lines = self("tasks", "ls").stdout.splitlines()
        assert lines[0].split() == ["TASK", "PID", "STATUS", "EXIT"]
        return {row[0]: row[1:] for row in (line.split() for line in lines[1:])}

    def containers(self) -> list[str]:
        return self("containers", "ls", "-q").stdout.split()

    def snapshots(self) -> list[str]:
        return [line.split()[0] for line in self("snapshots", "ls").stdout.splitlines()[1:]]

    def leftovers(self) -> list[str]:
        """Mounts under the test's directory, processes naming it (monitors; inits still waiting to
        start, which run under pyctr's command line), and the namespace's cgroups (pyrunc puts them
        in ``<own cgroup>/pyrunc/<namespace>@<id>``)."""
        found = [f"mount {m}" for m in HostSnapshot.take().mounts if m.startswith(f"{self.tmp}/")]
        found += [f"cgroup {c}" for c in HostSnapshot.take().cgroups if f"/pyrunc/{self.namespace}@" in c]
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if str(self.tmp / "state") in cmdline and int(pid) != os.getpid():
                found.append(f"process {pid}: {cmdline}")
        return found

    def wait_clean(self, timeout: float = 10) -> list[str]:
        deadline = time.monotonic() + timeout
        while (left := self.leftovers()) and time.monotonic() < deadline:
            time.sleep(0.1)
        return left


@pytest.fixture(scope="module")
def archive(layout: object, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path: Path = oci_images.write_oci_archive(layout, tmp_path_factory.mktemp("archive") / "busybox.tar")
    return path


@pytest.fixture(params=SNAPSHOTTERS)
def pyctr(request: pytest.FixtureRequest, tmp_path: Path, archive: Path) -> Iterator[Pyctr]:
    run = Pyctr(tmp_path, request.param)
    run("images", "import", str(archive))
    run.image = run("images", "ls", "-q").stdout.split()[0]
    yield run
    for container in run("containers", "ls", "-q", check=False).stdout.split():
        run("containers", "rm", "--force", container, check=False)
    run("gc", check=False)
    assert run.wait_clean() == []


def _wait_status(pyctr: Pyctr, task: str, status: str, timeout: float = 30) -> list[str]:
    deadline = time.monotonic() + timeout
    while (row := pyctr.tasks().get(task)) is None or row[1] != status:
        assert time.monotonic() < deadline, f"{task}: {row}, not {status}"
        time.sleep(0.05)
    return row


# -- the container's files outlive its task, and nothing is deleted through a mount -----------------


def test_a_task_delete_keeps_the_container_s_files(pyctr: Pyctr) -> None:
    script = "echo run >>/root/data; exec sleep 1000"
    pyctr("run", "-d", pyctr.image, "keep", "sh", "-c", script)
    pyctr("tasks", "kill", "-s", "SIGKILL", "keep")
    _wait_status(pyctr, "keep", "STOPPED")
    pyctr("tasks", "delete", "keep")  # the issue: "Device or resource busy: 'rootfs'", fs emptied
    assert pyctr.tasks() == {} and pyctr.containers() == ["keep"]
    assert f"{pyctr.namespace}/keep" in pyctr.snapshots()
    assert pyctr.leftovers() == []
    pyctr("tasks", "start", "-d", "keep")  # a second task of the same container sees the first's file
    _wait_status(pyctr, "keep", "RUNNING")
    assert pyctr("tasks", "exec", "--exec-id", "look", "keep", "cat", "/root/data").stdout == "run\nrun\n"
    pyctr("tasks", "delete", "--force", "keep")
    pyctr("containers", "rm", "keep")
    assert f"{pyctr.namespace}/keep" not in pyctr.snapshots() and pyctr.leftovers() == []


def test_run_rm_leaves_nothing_every_time(pyctr: Pyctr) -> None:
    for n in range(3):
        done = pyctr("run", "--rm", pyctr.image, "gone", "sh", "-c", f"echo {n} >/root/data; cat /root/data")
        assert done.stdout == f"{n}\n"
        assert pyctr.containers() == [] and pyctr.tasks() == {}
        assert [key for key in pyctr.snapshots() if key.startswith(pyctr.namespace)] == []
        assert pyctr.leftovers() == []
    assert os.listdir(pyctr.tmp / "state" / "tasks" / pyctr.namespace) == []


def test_rm_force_and_gc_around_a_running_task(pyctr: Pyctr) -> None:
    pyctr("run", "-d", pyctr.image, "busy", "sh", "-c", "echo kept >/root/data; exec sleep 1000")
    _wait_status(pyctr, "busy", "RUNNING")
    assert "0 abandoned tasks" in pyctr("gc").stdout  # a running task is nobody's garbage
    assert pyctr("tasks", "exec", "--exec-id", "look", "busy", "cat", "/root/data").stdout == "kept\n"
    pyctr("containers", "rm", "--force", "busy")
    assert pyctr.containers() == [] and pyctr.tasks() == {} and pyctr.leftovers() == []


def _plant(point: Path, canary_dir: Path) -> None:
    point.mkdir(exist_ok=True)
    subprocess.run(["mount", "--bind", str(canary_dir), str(point)], check=True)


def test_mounts_planted_in_a_task_are_unmounted_not_deleted_through(pyctr: Pyctr) -> None:
    canary_dir = pyctr.tmp / "outside"
    canary_dir.mkdir()
    (canary_dir / "canary").write_text("alive")
    pyctr("run", "-d", pyctr.image, "planted", "sleep", "1000")
    task_dir = pyctr.tmp / "state" / "tasks" / pyctr.namespace / "planted"
    _plant(task_dir / "planted", canary_dir)  # beside the root filesystem
    _plant(task_dir / "rootfs" / "tmp", canary_dir)  # inside it, on the host's side
    try:
        pyctr("tasks", "delete", "--force", "planted")
        assert (canary_dir / "canary").read_text() == "alive"
        assert not task_dir.exists() and pyctr.leftovers() == []
        pyctr("containers", "rm", "planted")
    finally:
        for point in (task_dir / "rootfs" / "tmp", task_dir / "planted", task_dir / "rootfs"):
            subprocess.run(["umount", "-l", str(point)], capture_output=True, check=False)
    assert (canary_dir / "canary").read_text() == "alive"


# -- pyctr run -d killed half-way --------------------------------------------------------------------

#: Where the seam stops ``pyctr run -d`` (in order), and what a later ``tasks ls`` must say of the
#: task: None (no task), or its status with the pid 0 of a task that never got a process.
POINTS: dict[str, str | None] = {
    "container-recorded": None,  # the snapshot is recorded, not made: no container
    "container-mounted": None,  # mounted to read the image's users (run -u): no container yet
    "container-prepared": None,  # made, not recorded as a container
    "task-create": None,  # the container exists, no task
    "task-claimed": "STOPPED",  # the task's directory exists: its creation was cut short
    "task-mounted": "STOPPED",  # and its root filesystem mounted
    "task-launched": "CREATED",  # the monitor's process had the work: it creates and waits
    "task-created": "CREATED",  # created, never started
}


def _run_killed_at(pyctr: Pyctr, point: str, container: str) -> None:
    """``pyctr run -d`` stopped by the seam at ``point``, then SIGKILLed."""
    extra = ["-u", "nobody"] if point == "container-mounted" else []
    process = subprocess.Popen(
        [*pyctr.base, "run", "-d", *extra, pyctr.image, container, "sleep", "1000"],
        env={**os.environ, "PYCONTAINERD_TEST_STOP_AT": point},
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "T":
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"pyctr run never reached {point}"
        time.sleep(0.01)
    process.kill()
    process.communicate()


@pytest.mark.parametrize("point", list(POINTS))
def test_run_killed_at_each_point_is_reported_and_collected(pyctr: Pyctr, point: str) -> None:
    _run_killed_at(pyctr, point, "cut")
    expected = POINTS[point]
    if expected is None:
        assert pyctr.tasks() == {}
    elif expected == "CREATED":  # the monitor's process finishes the creation on its own
        assert _wait_status(pyctr, "cut", "CREATED")[2] == "-"
    else:
        assert pyctr.tasks() == {"cut": ["0", "STOPPED", "255"]}  # never had a process
    assert pyctr.containers() == ([] if point.startswith("container-") else ["cut"])

    collected = pyctr("gc").stdout  # no force anywhere from here on
    assert f"{0 if expected is None else 1} abandoned tasks" in collected
    assert pyctr.tasks() == {}
    if not point.startswith("container-"):
        pyctr("containers", "rm", "cut")
    assert [key for key in pyctr.snapshots() if key.startswith(pyctr.namespace)] == []
    assert pyctr.wait_clean() == []
    tasks_dir = pyctr.tmp / "state" / "tasks" / pyctr.namespace
    assert not tasks_dir.exists() or os.listdir(tasks_dir) == []
    # Nothing is left to stand in the way of the same id.
    assert pyctr("run", "--rm", pyctr.image, "cut", "echo", "again").stdout == "again\n"


def test_run_killed_at_random_moments(pyctr: Pyctr) -> None:
    started = time.monotonic()
    pyctr("run", "-d", pyctr.image, "timing", "true")
    duration = time.monotonic() - started
    pyctr("containers", "rm", "timing")
    generator = random.Random(int(os.environ.get("PYTEST_SEED", "11")))
    for n in range(10):
        process = subprocess.Popen(
            [*pyctr.base, "run", "-d", pyctr.image, f"r{n}", "sleep", "1000"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(generator.uniform(0.3, 1.1) * duration)
        process.send_signal(signal.SIGKILL)
        process.wait()
    # A monitor's process that had its work finishes the creation on its own: until it has, the
    # task is not listed (it is being created).
    directory = pyctr.tmp / "state" / "tasks" / pyctr.namespace
    deadline = time.monotonic() + 30
    while len(tasks := pyctr.tasks()) != len([d for d in os.listdir(directory) if not d.startswith(".")]):
        assert time.monotonic() < deadline, (tasks, os.listdir(directory))
        time.sleep(0.1)
    assert all(status in ("CREATED", "RUNNING", "STOPPED") for _, status, _ in tasks.values())
    pyctr("gc")
    after = pyctr.tasks()
    assert all(status == "RUNNING" for _, status, _ in after.values()), after  # started before the kill
    for container in pyctr.containers():
        pyctr("containers", "rm", *(["--force"] if container in after else []), container)
    assert pyctr.tasks() == {} and pyctr.containers() == []
    assert [key for key in pyctr.snapshots() if key.startswith(pyctr.namespace)] == []
    assert pyctr.wait_clean() == []


def test_gc_in_another_namespace_collects_what_a_crashed_run_left(pyctr: Pyctr) -> None:
    """Namespaces separate what each sees, and gc works on the whole store: a gc run in a namespace
    holding nothing deletes the task and the container snapshot crashed ``run -d``s left in this one,
    and leaves this namespace's running task, and the container of the cut task, alone."""
    pyctr("run", "-d", pyctr.image, "busy", "sleep", "1000")
    _wait_status(pyctr, "busy", "RUNNING")
    _run_killed_at(pyctr, "task-mounted", "cut")  # a container, and a task never started
    _run_killed_at(pyctr, "container-prepared", "half")  # a snapshot, made and recorded, no container
    mine = f"{pyctr.namespace}/"
    assert {f"{mine}busy", f"{mine}cut", f"{mine}half"} <= set(pyctr.snapshots())
    elsewhere = pyctr.in_namespace("elsewhere")
    assert elsewhere.tasks() == {} and elsewhere.snapshots() == []

    assert "1 abandoned tasks" in elsewhere("gc").stdout
    assert pyctr.tasks().keys() == {"busy"} and pyctr.tasks()["busy"][1] == "RUNNING"
    assert sorted(pyctr.containers()) == ["busy", "cut"]
    kept = [key for key in pyctr.snapshots() if key.startswith(mine)]
    assert sorted(kept) == [f"{mine}busy", f"{mine}cut"]
    assert pyctr("tasks", "exec", "--exec-id", "look", "busy", "true").returncode == 0
    pyctr("containers", "rm", "cut")
    pyctr("containers", "rm", "--force", "busy")
    assert pyctr.wait_clean() == []
