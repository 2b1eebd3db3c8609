"""The event log: publish from several processes, containerd's filter syntax, following across rotation."""

from __future__ import annotations

import json
import multiprocessing
import threading
import time
from pathlib import Path

import pytest

from pycontainerd import InvalidArgumentError
from pycontainerd._events import Event, EventLog, _Follower, parse_filter


def _publish_many(state: str, writer: int, count: int) -> None:
    log = EventLog(state)
    for n in range(count):
        log.publish("/tasks/exit", "default", id=f"w{writer}", n=n, padding="x" * 200)


def test_publishers_in_several_processes_never_interleave_lines(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    writers = [ctx.Process(target=_publish_many, args=(str(tmp_path), w, 300)) for w in range(4)]
    for p in writers:
        p.start()
    for p in writers:
        p.join(30)
        assert p.exitcode == 0
    lines = (tmp_path / "events.jsonl").read_bytes().splitlines()
    assert len(lines) == 1200
    events = [json.loads(line) for line in lines]  # every line whole
    for w in range(4):
        assert [e["n"] for e in events if e["id"] == f"w{w}"] == list(range(300))


def test_filters_follow_containerds_syntax() -> None:
    event = Event.from_json(
        {"topic": "/tasks/exit", "namespace": "default", "timestamp": "2026-11-28T10:00:00.5Z", "id": "web"}
    )
    assert parse_filter('topic=="/tasks/exit"')(event)
    assert parse_filter("topic==/tasks/exit,namespace==default")(event)
    assert not parse_filter("topic==/tasks/exit,namespace==other")(event)
    assert parse_filter("topic~=^/tasks/")(event)
    assert parse_filter("event.id==web")(event) and parse_filter("id!=db")(event)
    assert not parse_filter("id~=db")(event)
    assert event.timestamp.microsecond == 500000
    for bad in ("", "topic", "topic=", "topic~=(", "=x"):
        with pytest.raises(InvalidArgumentError):
            parse_filter(bad)


def test_follow_sees_new_events_only_and_survives_rotation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = EventLog(tmp_path)
    log.publish("/images/create", "default", name="before")
    # A rotation every ~25 events; the publisher is slower than the follower, as in life (4 MiB apart).
    monkeypatch.setattr("pycontainerd._events.MAX_LOG_BYTES", 4000)
    seen: list[Event] = []
    done = threading.Event()

    def reader() -> None:
        for event in log.follow("topic==/tasks/start", stop=done.is_set, interval=0.01):
            seen.append(event)
            if len(seen) == 60:
                return

    thread = threading.Thread(target=reader)
    thread.start()
    time.sleep(0.2)
    for n in range(60):
        log.publish("/tasks/start", "default", n=n)
        log.publish("/tasks/exit", "default", n=n)
        time.sleep(0.01)
    thread.join(10)
    done.set()
    assert not thread.is_alive()
    assert [e.fields["n"] for e in seen] == list(range(60))
    assert (tmp_path / "events.jsonl.1").exists()  # it rotated, several times over
    assert all(e.topic != "/images/create" for e in seen)


def test_history_skips_a_line_cut_by_a_killed_writer(tmp_path: Path) -> None:
    log = EventLog(tmp_path)
    log.publish("/containers/create", "default", id="a")
    with open(tmp_path / "events.jsonl", "ab") as f:
        f.write(b'{"topic": "/containers/cre')
    log.publish("/containers/create", "default", id="b")
    assert [e.fields["id"] for e in log.history("topic==/containers/create")] == ["a"]
    # the cut line glued to the next one makes that line invalid JSON too: both are skipped, not guessed
    with open(tmp_path / "events.jsonl", "ab") as f:
        f.write(b"\n")
    log.publish("/containers/create", "default", id="c")
    assert [e.fields["id"] for e in log.history()] == ["a", "c"]


def test_follow_reads_the_file_between_two_rotations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A follower that sleeps through two rotations finds the middle file at .1: nothing is lost.
    monkeypatch.setattr("pycontainerd._events.MAX_LOG_BYTES", 1000)
    log = EventLog(tmp_path)
    log.publish("/images/create", "default", name="before")
    follower = _Follower(log.path)  # what follow() reads with: from the end of the current file
    inodes = {log.path.stat().st_ino}
    n = 0
    while len(inodes) < 3:  # the follower's file, the middle one, the current one
        log.publish("/tasks/start", "default", n=n)
        n += 1
        if log.path.exists():
            inodes.add(log.path.stat().st_ino)
    seen: list[int] = []
    for _ in range(10):  # a file per read at most, and one more to see the last is current
        seen += [event.fields["n"] for event in follower.read()]
    follower.close()
    assert seen == list(range(n))
