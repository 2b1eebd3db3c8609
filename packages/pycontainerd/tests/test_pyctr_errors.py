"""``pyctr``'s failures as a user meets them: one line on stderr saying what to do, never a traceback,
and the documented exit status (1 for a failure, 2 for a command line that does not parse, with the
usage of the command it names, 130 for Ctrl-C). Each case is a real command in a new process."""

from __future__ import annotations

import contextlib
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyrunc_acceptance_oci_images as oci_images  # registered by conftest.py
import pytest

from pyrunc.testing import HostSnapshot

PYCTR = str(Path(sys.executable).with_name("pyctr"))


class Pyctr:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.base = [PYCTR, "--root", str(tmp_path / "root"), "--state", str(tmp_path / "state")]
        self.image = ""

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [*self.base, *args], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60
        )
        if check and done.returncode != 0:
            raise AssertionError(f"pyctr {' '.join(args)} exited {done.returncode}: {done.stderr}")
        return done

    def fails(self, *args: str) -> str:
        """The one line ``pyctr ARGS`` prints when it fails (exit status 1), without its prefix."""
        done = self(*args, check=False)
        assert "Traceback" not in done.stderr, done.stderr
        assert done.returncode == 1, (done.returncode, done.stderr)
        assert done.stderr.startswith("pyctr: ") and done.stderr.count("\n") == 1, done.stderr
        return done.stderr.removeprefix("pyctr: ").rstrip("\n")


@pytest.fixture
def pyctr(tmp_path: Path, layout: Any) -> Iterator[Pyctr]:
    run = Pyctr(tmp_path)
    run("images", "import", str(oci_images.write_oci_archive(layout, tmp_path / "busybox.tar")))
    run.image = run("images", "ls", "-q").stdout.split()[0]
    yield run
    for container in run("containers", "ls", "-q").stdout.split():
        run("containers", "rm", "--force", container, check=False)


@pytest.fixture
def empty(tmp_path: Path) -> Pyctr:
    return Pyctr(tmp_path)


def test_running_an_image_never_pulled_says_where_and_how_to_get_it(empty: Pyctr) -> None:
    assert empty.fails("run", "--rm", "busybox", "x", "true") == (
        "image docker.io/library/busybox:latest not found in namespace default:"
        " pull it first (pyctr images pull busybox)"
    )
    line = empty.fails("-n", "other", "containers", "create", "127.0.0.1:5000/app:1", "x")
    assert (
        "not found in namespace other" in line and "(pyctr -n other images pull 127.0.0.1:5000/app:1)" in line
    )


def test_pulling_a_missing_tag_says_the_registry_has_no_such_image(empty: Pyctr, registry: Any) -> None:
    ref = f"{registry.address}/nope:latest"
    assert empty.fails("images", "pull", "--plain-http", ref) == (
        f"{ref}: not found in the registry {registry.address}"
    )


@pytest.mark.parametrize(
    ("argv", "usage"),
    [
        (["run", "--bogus", "img", "id"], "usage: pyctr run "),
        (["tasks", "kill", "--bogus", "id"], "usage: pyctr tasks kill "),
        (["images", "ls", "--bogus"], "usage: pyctr images ls "),
        (["c", "rm", "--bogus", "id"], "usage: pyctr containers rm "),
    ],
)
def test_an_unknown_option_shows_the_usage_of_its_command(empty: Pyctr, argv: list[str], usage: str) -> None:
    done = empty(*argv, check=False)
    assert done.returncode == 2 and done.stderr.startswith(usage), done.stderr
    prog = usage.removeprefix("usage: ").rstrip()
    assert done.stderr.splitlines()[-1] == f"{prog}: error: unrecognized arguments: --bogus"


def test_detach_and_rm_together_are_refused(pyctr: Pyctr) -> None:
    assert pyctr.fails("run", "-d", "--rm", pyctr.image, "both", "true") == (
        "--detach and --rm cannot be used together"
    )
    assert pyctr("containers", "ls", "-q").stdout == ""


@pytest.mark.parametrize(
    "argv",
    [
        ["tasks", "kill", "nope"],
        ["tasks", "rm", "nope"],
        ["tasks", "ps", "nope"],
        ["tasks", "pause", "nope"],
        ["tasks", "resume", "nope"],
        ["tasks", "metrics", "nope"],
        ["tasks", "logs", "nope"],
        ["tasks", "attach", "nope"],
        ["tasks", "exec", "--exec-id", "e", "nope", "true"],
        ["tasks", "start", "nope"],
        ["containers", "rm", "nope"],
        ["containers", "info", "nope"],
        ["snapshots", "rm", "nope"],
        ["images", "rm", "nope"],
        ["images", "inspect", "nope"],
        ["images", "tag", "nope", "other"],
        ["images", "import", "/nonexistent/archive.tar"],
        ["run", "--rm", "img", "bad/id", "true"],
        ["--snapshotter", "zfs", "images", "ls"],
    ],
)
def test_what_does_not_exist_is_one_line(pyctr: Pyctr, argv: list[str]) -> None:
    line = pyctr.fails(*argv)
    assert "nope" in line or "invalid" in line or "zfs" in line or "/nonexistent" in line, line


def test_a_stopped_task_cannot_be_attached_to_nor_exec_in(pyctr: Pyctr) -> None:
    pyctr("run", "-d", pyctr.image, "done", "sh", "-c", "echo bye")
    deadline = time.monotonic() + 30
    while "STOPPED" not in pyctr("tasks", "ls").stdout:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert (
        pyctr.fails("tasks", "attach", "done") == "task done is stopped: nothing to attach to (read its log)"
    )
    assert (
        pyctr.fails("tasks", "exec", "--exec-id", "e", "done", "true")
        == "exec e in task done: the task is stopped"
    )
    assert pyctr("tasks", "logs", "done").stdout == "bye\n"


def test_the_runtime_s_errors_are_translated(pyctr: Pyctr) -> None:
    # pyrunc's CgroupError used to reach the user as a traceback: the task's cgroups are removed by
    # hand (they are empty once it has stopped), and ps and metrics must say so in one line.
    pyctr("run", "-d", pyctr.image, "cg", "true")
    deadline = time.monotonic() + 30
    while "STOPPED" not in pyctr("tasks", "ls").stdout:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    removed = []
    for directory in HostSnapshot.take().cgroups:
        if directory.endswith("/pyrunc/default@cg"):
            Path(directory).rmdir()
            removed.append(directory)
    assert removed
    assert pyctr.fails("tasks", "metrics", "cg").startswith("metrics of task cg: ")
    assert pyctr.fails("tasks", "ps", "cg").startswith("ps task cg: ")
    pyctr("containers", "rm", "cg")  # and it is still removed


def test_a_broken_store_is_one_line(empty: Pyctr) -> None:
    empty("images", "ls")
    database = empty.tmp / "root" / "metadata" / "metadata.db"
    # Closed before the file is overwritten: closing the last connection checkpoints its log into it.
    with contextlib.closing(sqlite3.connect(database)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    database.write_bytes(b"this is not a database" * 100)
    for wal in database.parent.glob("metadata.db-*"):
        wal.unlink()
    assert "not a database" in empty.fails("images", "ls")


def test_a_root_that_is_a_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    run = Pyctr(tmp_path)
    run.base[2] = str(tmp_path / "file")
    assert run.fails("images", "ls").startswith(f"{tmp_path / 'file'}")


def test_ctrl_c_exits_130_quietly(pyctr: Pyctr) -> None:
    pyctr("run", "-d", pyctr.image, "talker", "sh", "-c", "while true; do echo tick; sleep 0.1; done")
    follower = subprocess.Popen(
        [*pyctr.base, "tasks", "logs", "-f", "talker"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert follower.stdout is not None and follower.stdout.readline() == "tick\n"
    follower.send_signal(signal.SIGINT)
    _, err = follower.communicate(timeout=30)
    assert follower.returncode == 130 and err == ""
