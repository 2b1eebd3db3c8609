"""A task's cgroups go below the cgroup of the process that creates it, in ``pyrunc/<namespace>@<id>``;
the ``pyrunc`` directory they share is removed once its last task is deleted, whichever way the task
ended, and creations running meanwhile make it again. Each test runs ``pyctr`` in cgroups of its own
(one per hierarchy, below this process's), which start without that directory."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyrunc_acceptance_oci_images as oci_images  # registered by conftest.py
import pytest

import pyrunc

PYCTR = str(Path(sys.executable).with_name("pyctr"))


class Cgroups:
    """A cgroup in every hierarchy, below this process's own; :meth:`enter` moves the calling process
    into them (a ``preexec_fn``)."""

    def __init__(self, name: str) -> None:
        # The directories pyrunc would use for a cgroupsPath of ``name``: ours, by hierarchy.
        self.dirs = sorted({Path(p) for p in pyrunc.cgroup_paths("probe", name).values()})
        for directory in self.dirs:
            directory.mkdir()
            if (directory / "cpuset.cpus").exists():  # an empty cpuset takes no process
                for key in ("cpuset.cpus", "cpuset.mems"):
                    (directory / key).write_text((directory.parent / key).read_text())

    def enter(self) -> None:
        for directory in self.dirs:
            (directory / "cgroup.procs").write_text(str(os.getpid()))

    def shared(self) -> list[Path]:
        """The ``pyrunc`` directories that are left, in any hierarchy."""
        return [d / "pyrunc" for d in self.dirs if (d / "pyrunc").exists()]

    def remove(self) -> None:
        """Remove the cgroups and what is left in them (their processes must have gone)."""
        deadline = time.monotonic() + 10
        for directory in self.dirs:
            for below in sorted(directory.rglob("*"), key=lambda p: len(p.parts), reverse=True):
                if below.is_dir():
                    below.rmdir()
            while True:
                try:
                    directory.rmdir()
                    break
                except OSError as exc:  # EBUSY: a process is still leaving
                    if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)


class Pyctr:
    def __init__(self, tmp_path: Path, cgroups: Cgroups) -> None:
        self.base = [PYCTR, "--root", str(tmp_path / "root"), "--state", str(tmp_path / "state")]
        self.cgroups = cgroups
        self.image = ""

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [*self.base, *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
            preexec_fn=self.cgroups.enter,
        )
        assert "Traceback" not in done.stderr, done.stderr
        if check and done.returncode != 0:
            raise AssertionError(f"pyctr {' '.join(args)} exited {done.returncode}: {done.stderr}")
        return done


@pytest.fixture
def pyctr(tmp_path: Path, layout: object) -> Iterator[Pyctr]:
    cgroups = Cgroups(f"pyctr-test-{os.getpid()}-{tmp_path.name}")
    try:
        run = Pyctr(tmp_path, cgroups)
        run("images", "import", str(oci_images.write_oci_archive(layout, tmp_path / "busybox.tar")))
        run.image = run("images", "ls", "-q").stdout.split()[0]
        yield run
        for container in run("containers", "ls", "-q", check=False).stdout.split():
            run("containers", "rm", "--force", container, check=False)
    finally:
        cgroups.remove()


def test_run_rm_leaves_no_shared_directory(pyctr: Pyctr) -> None:
    assert pyctr("run", "--rm", pyctr.image, "once", "echo", "hi").stdout == "hi\n"
    assert pyctr.cgroups.shared() == []


def test_a_task_whose_cgroups_are_gone_takes_the_shared_directory_along(pyctr: Pyctr) -> None:
    # Removed by hand once its task stopped (the runtime then has nothing to remove): the directory
    # above them is pycontainerd's to remove all the same.
    pyctr("run", "-d", pyctr.image, "gone", "true")
    deadline = time.monotonic() + 30
    while "STOPPED" not in pyctr("tasks", "ls").stdout:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    removed = [d / "pyrunc" / "default@gone" for d in pyctr.cgroups.dirs]
    for directory in removed:
        directory.rmdir()
    assert pyctr.cgroups.shared() != []
    pyctr("containers", "rm", "gone")
    assert pyctr.cgroups.shared() == []


@pytest.mark.parametrize(
    ("options", "command", "reason"),
    [
        # Refused before any cgroup is made: the bind's source is missing.
        (("--mount", "type=bind,src=/nonexistent/source,dst=/mnt"), "true", "/nonexistent/source"),
        # Refused by the init, in its cgroups: the program is not in the image. pyrunc removes the
        # cgroups it made, not the directory the spec put them in.
        ((), "/no/such/program", "/no/such/program"),
    ],
    ids=["before-cgroups", "in-cgroups"],
)
def test_a_creation_the_runtime_refuses_leaves_no_shared_directory(
    pyctr: Pyctr, options: tuple[str, ...], command: str, reason: str
) -> None:
    done = pyctr("run", "--rm", *options, pyctr.image, "refused", command, check=False)
    assert done.returncode == 1 and reason in done.stderr
    assert pyctr.cgroups.shared() == []


def test_concurrent_runs_share_the_directory_and_the_last_one_removes_it(pyctr: Pyctr) -> None:
    # Deletions remove the directory while other creations make their cgroups in it: each creation
    # that finds it gone makes it again, and none fails.
    def runs(worker: int) -> list[str]:
        return [pyctr("run", "--rm", pyctr.image, f"c{worker}-{i}", "echo", "ok").stdout for i in range(4)]

    with ThreadPoolExecutor(max_workers=4) as pool:
        outputs = [out for done in pool.map(runs, range(4)) for out in done]
    assert outputs == ["ok\n"] * 16
    assert pyctr.cgroups.shared() == []
