"""A container's log (kept outside its tasks, appended across them, rotated, read by time and from
the end, followed) and the waits the monitor wakes: real containers on a busybox image built offline."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pyrunc_acceptance_oci_images as oci_images  # registered by conftest.py
import pytest

from pycontainerd import Client, NotFoundError
from pycontainerd._monitor import log_files
from pycontainerd.oci import with_args

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def archive(layout: object, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path: Path = oci_images.write_oci_archive(layout, tmp_path_factory.mktemp("archive") / "busybox.tar")
    return path


@pytest.fixture
def client(tmp_path: Path, archive: Path) -> Iterator[Client]:
    with Client(root=tmp_path / "root", state=tmp_path / "state") as opened:
        with archive.open("rb") as f:
            opened.import_archive(f)
        yield opened
        for task in opened.tasks.list():
            task.delete(force=True)
        for container in opened.containers.list():
            opened.containers.delete(container.id, force=True)


def _entries(batches: Iterable[Sequence[tuple[int, bytes, int]]]) -> list[tuple[int, bytes, int]]:
    return [entry for batch in batches for entry in batch]


def _lines(batches: Iterable[Sequence[tuple[int, bytes, int]]]) -> list[bytes]:
    return [data for _, data, _ in _entries(batches)]


def _run_once(client: Client, container_id: str, **options: int | bool) -> None:
    """A new task of the container, started and waited for, then deleted (as an engine's restart)."""
    task = client.tasks.create(container_id, **options)  # type: ignore[arg-type]
    task.start()
    assert task.wait(timeout=30).status == 0
    task.delete()


def test_the_log_outlives_the_task_and_each_run_appends_until_the_container_goes(
    client: Client, tmp_path: Path
) -> None:
    client.containers.create(
        "twice", client.images()[0].name, with_args(["sh", "-c", "echo out; echo err >&2"])
    )
    path = client.containers.log_path("twice")
    assert path == tmp_path / "root" / "logs" / "default" / "twice" / "container.log"
    _run_once(client, "twice")
    with pytest.raises(NotFoundError):
        client.tasks.get("twice")
    _run_once(client, "twice")
    entries = _entries(client.containers.logs("twice"))
    assert [(stream, data) for stream, data, _ in entries] == [(1, b"out\n"), (2, b"err\n")] * 2
    assert [entry[2] for entry in entries] == sorted(entry[2] for entry in entries)
    assert list(client.tasks.create("twice").logs()) == [(1, b"out\n"), (2, b"err\n")] * 2
    client.containers.delete("twice", force=True)
    assert not path.parent.exists()


def test_since_until_and_tail(client: Client) -> None:
    # The monitor stamps what one read gets: the late lines apart, so that each has a time of its own.
    script = "for i in 1 2 3; do echo early$i; done; sleep 0.3; "
    script += "for i in 1 2 3 4 5; do echo late$i; sleep 0.05; done"
    client.containers.create("timed", client.images()[0].name, with_args(["sh", "-c", script]))
    _run_once(client, "timed")
    entries = _entries(client.containers.logs("timed"))
    assert len(entries) == 8
    late = entries[3][2]
    assert late - entries[2][2] > 200_000_000
    assert _lines(client.containers.logs("timed", since=late)) == [b"late%d\n" % i for i in range(1, 6)]
    assert _lines(client.containers.logs("timed", until=late - 1)) == [b"early%d\n" % i for i in range(1, 4)]
    assert _lines(client.containers.logs("timed", tail=2)) == [b"late4\n", b"late5\n"]
    assert _lines(client.containers.logs("timed", tail=0)) == []
    assert len(_lines(client.containers.logs("timed", tail=100))) == 8
    # the last two before ``until``; and ``since`` limits what tail can reach back to
    assert _lines(client.containers.logs("timed", tail=2, until=late - 1)) == [b"early2\n", b"early3\n"]
    assert _lines(client.containers.logs("timed", tail=5, since=entries[6][2])) == [b"late4\n", b"late5\n"]


def test_rotation_keeps_the_newest_and_tail_reads_across_files(client: Client) -> None:
    script = "i=0; while [ $i -lt 2000 ]; do echo line$i; i=$((i+1)); done"
    client.containers.create("rotated", client.images()[0].name, with_args(["sh", "-c", script]))
    _run_once(client, "rotated", log_max_size=4096, log_max_files=3)
    files = log_files(client.containers.log_path("rotated"))
    assert [f.name for f in files] == ["container.log.2", "container.log.1", "container.log"]
    assert all(f.stat().st_size <= 4096 for f in files)
    kept = _lines(client.containers.logs("rotated"))
    assert kept == [b"line%d\n" % i for i in range(2000 - len(kept), 2000)]  # the newest, contiguous
    assert 200 < len(kept) < 600
    tail = _lines(client.containers.logs("rotated", tail=len(kept) - 10))  # reaches into .2
    assert tail == kept[10:]


def test_a_log_read_backwards_is_not_read_whole(client: Client) -> None:
    script = "i=0; while [ $i -lt 20000 ]; do echo line$i; i=$((i+1)); done"
    client.containers.create("long", client.images()[0].name, with_args(["sh", "-c", script]))
    _run_once(client, "long")
    path = client.containers.log_path("long")
    assert path.stat().st_size > 400_000
    before = _io_read_bytes()
    assert _lines(client.containers.logs("long", tail=3)) == [b"line19997\n", b"line19998\n", b"line19999\n"]
    assert _io_read_bytes() - before < 200_000  # a block from the end, not 400 kB


def _io_read_bytes() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


def test_following_wakes_at_each_line_and_ends_at_the_exit(client: Client) -> None:
    script = "echo first; read go; echo second; read go; echo third"
    client.containers.create("chatty", client.images()[0].name, with_args(["sh", "-c", script]))
    task = client.tasks.create("chatty", stdin=True)
    with task.attach(stdin=True) as attachment:
        task.start()
        seen: list[tuple[bytes, float]] = []

        def follow() -> None:
            for batch in client.containers.logs("chatty", follow=True):
                seen.extend((data, time.monotonic()) for _, data, _ in batch)

        follower = threading.Thread(target=follow)
        follower.start()
        _wait_for(lambda: len(seen) == 1)
        for expected in (2, 3):
            sent = time.monotonic()
            attachment.write_stdin(b"go\n")
            _wait_for(lambda: len(seen) == expected)  # noqa: B023
            # woken by the monitor: well within the 50 ms the old poll slept (a loaded machine aside)
            assert seen[-1][1] - sent < 0.2
        follower.join(timeout=10)
        assert not follower.is_alive()  # the follow ended with the process
    assert [data for data, _ in seen] == [b"first\n", b"second\n", b"third\n"]
    task.delete()


def test_following_a_stopped_container_returns_what_is_kept(client: Client) -> None:
    client.containers.create("done", client.images()[0].name, with_args(["echo", "bye"]))
    _run_once(client, "done")
    began = time.monotonic()
    assert _lines(client.containers.logs("done", follow=True)) == [b"bye\n"]
    assert time.monotonic() - began < 1


def test_a_wait_wakes_at_the_exit_not_at_a_poll(client: Client) -> None:
    client.containers.create("sleeper", client.images()[0].name, with_args(["sleep", "0.5"]))
    task = client.tasks.create("sleeper")
    task.start()
    status = task.wait(timeout=30)
    # the exit record and the wake-up differ by the monitor's write and one socket message
    woke = time.time()
    assert woke - status.exited_at.timestamp() < 0.1
    task.delete()


def test_a_wait_on_a_task_whose_monitor_died_falls_back_to_reconciling(client: Client) -> None:
    client.containers.create("orphan", client.images()[0].name, with_args(["sleep", "100"]))
    task = client.tasks.create("orphan")
    task.start()
    monitor_pid = int((task.directory / "monitor.pid").read_text().split()[0])
    threading.Timer(0.3, os.kill, (monitor_pid, 9)).start()
    status = task.wait(timeout=30)
    assert status.status == 255
    task.delete()


def test_no_log_is_kept_when_asked_not_to(client: Client) -> None:
    client.containers.create("quiet", client.images()[0].name, with_args(["echo", "unseen"]))
    _run_once(client, "quiet", keep_log=False)
    assert _lines(client.containers.logs("quiet")) == []
    assert not client.containers.log_path("quiet").exists()


def _wait_for(condition: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.001)
