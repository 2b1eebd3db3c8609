"""The content store: round trips, verification, locking across processes, crashes and concurrency."""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import pycontainerd
from pycontainerd import _content
from pycontainerd._content import ContentStore, validate_digest, validate_ref
from pycontainerd._content.writer import Writer
from pycontainerd._errors import (
    ContentError,
    DigestMismatchError,
    InvalidArgumentError,
    LockedError,
    NotFoundError,
    PycontainerdError,
    SizeMismatchError,
)

# The directory that holds the pycontainerd package under test, installed or source tree, for children.
_PACKAGE_PARENT = str(Path(pycontainerd.__file__).resolve().parents[1])


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def blob_files(root: Path) -> list[Path]:
    return sorted((root / "blobs" / "sha256").iterdir())


def ingest_dirs(root: Path) -> list[Path]:
    return sorted((root / "ingest").iterdir())


def assert_blobs_hash_to_their_names(root: Path) -> None:
    for path in blob_files(root):
        assert hashlib.sha256(path.read_bytes()).hexdigest() == path.name, path


def spawn(code: str, *args: str) -> subprocess.Popen[str]:
    """Run ``code`` in a fresh interpreter that imports the pycontainerd under test."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [_PACKAGE_PARENT, env.get("PYTHONPATH")]))
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


@pytest.fixture
def store(tmp_path: Path) -> ContentStore:
    return ContentStore(tmp_path / "content")


# -- names ---------------------------------------------------------------------------------------
def test_public_names() -> None:
    assert sorted(_content.__all__) == [
        "CommitResult",
        "ContentStore",
        "Info",
        "Status",
        "validate_digest",
        "validate_ref",
    ]
    for name in _content.__all__:
        assert getattr(_content, name).__doc__, name


def test_round_trip_write_commit_read_delete(store: ContentStore) -> None:
    data = os.urandom(300_000)
    digest = digest_of(data)
    with store.writer("layer-1", total=len(data), expected=digest) as writer:
        assert isinstance(writer, Writer)
        for start in range(0, len(data), 65536):
            writer.write(data[start : start + 65536])
        assert writer.offset == len(data) and writer.digest() == digest
        assert writer.status().offset == len(data)
        result = writer.commit(len(data), digest)
    assert (result.digest, result.size, result.created) == (digest, len(data), True)
    assert writer.closed
    info = store.info(digest)
    assert (info.digest, info.size) == (digest, len(data))
    with store.reader(digest) as file:
        assert file.read(10) == data[:10]
        buffer = bytearray(100)
        assert file.readinto(buffer) == 100 and bytes(buffer) == data[10:110]
    assert store.read_blob(digest) == data
    assert [(i.digest, i.size) for i in store.walk()] == [(digest, len(data))]
    assert store.list_statuses() == [] and ingest_dirs(store.root) == []
    blob = store.root / "blobs" / "sha256" / digest.removeprefix("sha256:")
    assert blob.stat().st_mode & 0o777 == 0o444
    store.delete(digest)
    assert list(store.walk()) == []
    for call in (store.info, store.reader, store.delete):
        with pytest.raises(NotFoundError):
            call(digest)


def test_commit_without_announcement_uses_the_bytes_digest(store: ContentStore) -> None:
    with store.writer("diff") as writer:
        writer.write(b"a tar, say")
        result = writer.commit()
    assert result.digest == digest_of(b"a tar, say") and result.created
    assert store.read_blob(result.digest) == b"a tar, say"
    empty = store.write_blob("empty", b"", 0, digest_of(b""))
    assert empty.size == 0 and store.info(empty.digest).size == 0


def test_wrong_digest_keeps_nothing(store: ContentStore) -> None:
    with store.writer("bad") as writer:
        writer.write(b"these bytes")
        with pytest.raises(DigestMismatchError) as caught:
            writer.commit(11, digest_of(b"other bytes"))
    assert caught.value.actual == digest_of(b"these bytes")
    assert writer.closed
    assert blob_files(store.root) == [] and ingest_dirs(store.root) == []
    # the announced digest is checked too
    with store.writer("bad", expected=digest_of(b"other bytes")) as writer:
        writer.write(b"these bytes")
        with pytest.raises(DigestMismatchError):
            writer.commit()
    assert blob_files(store.root) == []


def test_wrong_size_keeps_nothing_in_blobs_and_the_ingest_can_go_on(store: ContentStore) -> None:
    data = b"0123456789"
    with store.writer("short", total=10, expected=digest_of(data)) as writer:
        writer.write(data[:4])
        with pytest.raises(SizeMismatchError) as caught:
            writer.commit()
        assert (caught.value.expected, caught.value.actual) == (10, 4)
        assert blob_files(store.root) == []
        writer.write(data[4:])
        with pytest.raises(SizeMismatchError):
            writer.commit(11)
        assert writer.commit().created
    assert store.read_blob(digest_of(data)) == data


def test_committing_an_existing_blob_succeeds_and_discards_the_ingest(store: ContentStore) -> None:
    data = b"twice"
    first = store.write_blob("one", data, len(data), digest_of(data))
    blob = blob_files(store.root)[0]
    inode = blob.stat().st_ino
    with store.writer("two") as writer:
        writer.write(data)
        second = writer.commit(len(data), digest_of(data))
    assert first.created and not second.created and second.digest == first.digest
    assert blob_files(store.root) == [blob] and blob.stat().st_ino == inode
    assert ingest_dirs(store.root) == [] and store.list_statuses() == []


def test_status_resume_truncate_and_abort(store: ContentStore) -> None:
    data = os.urandom(5000)
    writer = store.writer("resumable", total=5000)
    writer.write(data[:1234])
    writer.close()
    status = store.status("resumable")
    assert (status.ref, status.offset, status.total, status.expected) == ("resumable", 1234, 5000, None)
    assert status.updated_at >= status.started_at
    assert store.list_statuses() == [status]
    with store.writer("resumable", expected=digest_of(data)) as writer:
        assert writer.offset == 1234 and writer.total == 5000
        writer.truncate(1000)
        writer.write(data[1000:])
    assert store.status("resumable").expected == digest_of(data)  # remembered for the next resume
    with pytest.raises(ContentError, match="abort it first"):
        store.writer("resumable", total=4999)
    with store.writer("resumable") as writer:
        assert writer.offset == 5000 and writer.digest() == digest_of(data)
        writer.truncate(0)
        assert writer.offset == 0 and writer.digest() == digest_of(b"")
    store.abort("resumable")
    assert store.list_statuses() == [] and ingest_dirs(store.root) == []
    for call in (store.status, store.abort):
        with pytest.raises(NotFoundError):
            call("resumable")


def test_a_closed_writer_refuses_work(store: ContentStore) -> None:
    writer = store.writer("x")
    writer.close()
    writer.close()
    with pytest.raises(ContentError, match="closed"):
        writer.write(b"late")
    with pytest.raises(ContentError, match="closed"):
        writer.commit()


def test_a_second_writer_in_the_same_process_is_locked_out(store: ContentStore) -> None:
    with store.writer("busy"):
        with pytest.raises(LockedError) as caught:
            store.writer("busy")
        assert caught.value.ref == "busy"
        with pytest.raises(LockedError):
            store.abort("busy")
        with store.writer("other"):
            pass
    with store.writer("busy"):
        pass


def test_a_writer_dropped_without_close_releases_its_lock(store: ContentStore) -> None:
    store.writer("dropped").write(b"abc")
    with store.writer("dropped") as writer:
        assert writer.offset == 3


_HOLD = """
import sys
from pycontainerd._content import ContentStore
writer = ContentStore(sys.argv[1]).writer("held")
writer.write(b"x" * 100)
print("locked", flush=True)
sys.stdin.readline()
"""


def test_a_writer_in_another_process_holds_the_ref_until_it_dies(store: ContentStore) -> None:
    child = spawn(_HOLD, str(store.root))
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "locked\n", child.stderr and child.stderr.read()
        with pytest.raises(LockedError):
            store.writer("held")
        with pytest.raises(LockedError):
            store.abort("held")
        assert store.status("held").offset == 100
    finally:
        child.send_signal(signal.SIGKILL)
        child.communicate()
    # the kernel released the dead writer's lock: the ingest resumes where it stopped
    with store.writer("held") as writer:
        assert writer.offset == 100
        writer.write(b"y")
        assert writer.commit(101, digest_of(b"x" * 100 + b"y")).created


# -- crashes -------------------------------------------------------------------------------------
_CRASH_SIZE = 16 << 20
_CRASH_WRITER = """
import random, sys
from pycontainerd._content import ContentStore
root, ref, size, digest = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
data = memoryview(random.Random(7).randbytes(size))
writer = ContentStore(root).writer(ref, total=size, expected=digest)
print(writer.offset, flush=True)
for start in range(writer.offset, size, 16384):
    writer.write(data[start : start + 16384])
writer.commit()
print("committed", flush=True)
"""


def test_writers_killed_at_random_points_leave_a_consistent_resumable_store(store: ContentStore) -> None:
    data = random.Random(7).randbytes(_CRASH_SIZE)
    digest = digest_of(data)
    ingest_data = store.root / "ingest" / hashlib.sha256(b"big").hexdigest() / "data"
    chance = random.Random()
    resume_at = 0
    for _ in range(6):
        child = spawn(_CRASH_WRITER, str(store.root), "big", str(_CRASH_SIZE), digest)
        assert child.stdout is not None
        started = child.stdout.readline()
        assert started, child.stderr and child.stderr.read()
        # each round resumes where the status said the last one stopped (0 once a round got to commit)
        assert int(started) == resume_at
        time.sleep(chance.uniform(0, 0.02))  # writing all 16 MiB takes about 0.06 s here
        child.send_signal(signal.SIGKILL)
        child.communicate()
        # no half-written blob is ever visible, and whatever the ingest holds is a prefix of the blob
        assert_blobs_hash_to_their_names(store.root)
        assert [path.name for path in blob_files(store.root)] in ([], [digest.removeprefix("sha256:")])
        if ingest_data.exists():
            status = store.status("big")
            assert status.offset == ingest_data.stat().st_size <= _CRASH_SIZE
            assert ingest_data.read_bytes() == data[: status.offset]
        resume_at = store.status("big").offset if store.list_statuses() else 0
    statuses = store.list_statuses()
    offset = statuses[0].offset if statuses else 0
    with store.writer("big", total=_CRASH_SIZE, expected=digest) as writer:
        assert writer.offset == offset
        writer.write(memoryview(data)[offset:])
        result = writer.commit()
    assert result.digest == digest
    assert_blobs_hash_to_their_names(store.root)
    # a fresh write of the same content works too, whether or not the blob is there
    assert not store.write_blob("again", data, len(data), digest).created
    store.delete(digest)
    assert store.write_blob("again", data, len(data), digest).created
    assert_blobs_hash_to_their_names(store.root)
    assert store.list_statuses() == []


# -- concurrency ---------------------------------------------------------------------------------
_RACER = """
import random, sys
from pycontainerd._content import ContentStore
root, ref = sys.argv[1], sys.argv[2]
data = random.Random(11).randbytes(4 << 20)
store = ContentStore(root)
print("ready", flush=True)
sys.stdin.readline()
result = store.write_blob(ref, data)
print(result.digest, result.created, flush=True)
"""


def test_four_processes_writing_the_same_content_end_with_one_blob(store: ContentStore) -> None:
    digest = digest_of(random.Random(11).randbytes(4 << 20))
    children = [spawn(_RACER, str(store.root), f"racer-{i}") for i in range(4)]
    for child in children:
        assert child.stdout is not None
        assert child.stdout.readline() == "ready\n", child.stderr and child.stderr.read()
    for child in children:  # release them together
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
    outputs = [child.communicate() for child in children]
    assert [child.returncode for child in children] == [0] * 4, outputs
    results = [out.split() for out, _ in outputs]
    assert {digest for digest, _ in results} == {digest}
    assert "True" in {created for _, created in results}
    assert [path.name for path in blob_files(store.root)] == [digest.removeprefix("sha256:")]
    assert_blobs_hash_to_their_names(store.root)
    assert ingest_dirs(store.root) == []


# -- hostile names -------------------------------------------------------------------------------
HOSTILE_DIGESTS = [
    "sha256:../../etc",
    "sha256:../../../../../../etc/passwd",
    "md5:d41d8cd98f00b204e9800998ecf8427e",
    "sha512:" + "0" * 128,
    "sha256:" + "A" * 64,
    "SHA256:" + "a" * 64,
    "sha256:" + "a" * 63,
    "sha256:" + "a" * 65,
    "sha256:" + "a" * 64 + "\n",
    "sha256:" + "a" * 63 + "/",
    "a" * 64,
    "sha256:",
    "",
    None,
    b"sha256:" + b"a" * 64,
]


@pytest.mark.parametrize("digest", HOSTILE_DIGESTS, ids=repr)
def test_hostile_digests_are_refused(store: ContentStore, digest: Any) -> None:
    for call in (store.info, store.reader, store.read_blob, store.delete, validate_digest):
        with pytest.raises(InvalidArgumentError, match="invalid digest"):
            call(digest)
    if digest is None:
        return  # for writer() and commit(), None means "not announced"
    with pytest.raises(InvalidArgumentError):
        store.writer("ref", expected=digest)
    with store.writer("ref") as writer:
        writer.write(b"data")
        with pytest.raises(InvalidArgumentError):
            writer.commit(digest=digest)
    assert blob_files(store.root) == []


def test_invalid_argument_is_a_value_error_and_a_package_error() -> None:
    assert issubclass(InvalidArgumentError, ValueError)
    assert issubclass(InvalidArgumentError, PycontainerdError)


@pytest.mark.parametrize("ref", ["", "a\x00b", "line\nbreak", "x" * 1025, "\udcff", None], ids=repr)
def test_unusable_refs_are_refused(store: ContentStore, ref: Any) -> None:
    for call in (store.writer, store.status, store.abort, validate_ref):
        with pytest.raises(InvalidArgumentError, match="invalid ingest ref"):
            call(ref)
    assert ingest_dirs(store.root) == []


@pytest.mark.parametrize("ref", ["../../etc/passwd", "/etc/passwd", "..", "a/../../b", "é" * 100])
def test_refs_never_name_a_path(store: ContentStore, ref: str) -> None:
    with store.writer(ref) as writer:
        writer.write(b"contained")
    (ingest,) = ingest_dirs(store.root)
    assert ingest.parent == store.root / "ingest" and ingest.name == hashlib.sha256(ref.encode()).hexdigest()
    assert store.status(ref).ref == ref
    store.abort(ref)


def test_stray_files_are_not_blobs_or_ingests(store: ContentStore) -> None:
    (store.root / "blobs" / "sha256" / "README").write_text("not a blob")
    (store.root / "ingest" / "junk").mkdir()
    (store.root / "ingest" / ("0" * 64)).mkdir()  # a crashed start: no ref written yet
    assert list(store.walk()) == [] and store.list_statuses() == []
