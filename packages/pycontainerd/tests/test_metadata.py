"""The metadata store: CRUD per table, namespaces, transactions, several processes, schema versions."""

from __future__ import annotations

import datetime
import multiprocessing
import multiprocessing.synchronize
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from pycontainerd import _metadata
from pycontainerd._errors import (
    AlreadyExistsError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
)
from pycontainerd._metadata import (
    DB_NAME,
    SCHEMA_VERSION,
    ContentRecord,
    Descriptor,
    Image,
    LeaseResource,
    MetadataStore,
    SnapshotKind,
    SnapshotRecord,
)

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
UTC = datetime.UTC


@pytest.fixture
def store(tmp_path: Path) -> MetadataStore:
    return MetadataStore(tmp_path)


def image(name: str, digest: str = D1, size: int = 10, **labels: str) -> Image:
    return Image(name, Descriptor(MANIFEST, digest, size), labels)


def test_opens_in_wal_mode_with_a_schema_version(tmp_path: Path) -> None:
    MetadataStore(tmp_path)
    conn = sqlite3.connect(tmp_path / DB_NAME)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
    conn.close()
    MetadataStore(tmp_path)  # reopening an existing store is fine


def test_a_newer_schema_version_is_refused(tmp_path: Path) -> None:
    MetadataStore(tmp_path)
    conn = sqlite3.connect(tmp_path / DB_NAME)
    with conn:
        conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    conn.close()
    with pytest.raises(FailedPreconditionError, match=f"schema version {SCHEMA_VERSION + 1}.*upgrade"):
        MetadataStore(tmp_path)


def test_images_crud(store: MetadataStore) -> None:
    created = store.images.create("default", image("docker.io/library/busybox:latest", team="a"))
    assert created.target == Descriptor(MANIFEST, D1, 10)
    assert created.labels == {"team": "a"}
    assert created.created_at is not None and created.created_at == created.updated_at
    with pytest.raises(AlreadyExistsError):
        store.images.create("default", image("docker.io/library/busybox:latest"))
    store.images.create("default", image("docker.io/library/alpine:3"))
    store.images.create("default", image("quay.io/x:1"))
    assert store.images.get("default", "quay.io/x:1").name == "quay.io/x:1"
    assert [i.name for i in store.images.list("default")] == [
        "docker.io/library/alpine:3",
        "docker.io/library/busybox:latest",
        "quay.io/x:1",
    ]
    assert [i.name for i in store.images.list("default", prefix="docker.io/")] == [
        "docker.io/library/alpine:3",
        "docker.io/library/busybox:latest",
    ]
    assert store.images.list("default", prefix="docker.io/%") == []  # prefixes are literal, not LIKE
    updated = store.images.update(
        "default", "quay.io/x:1", target=Descriptor(MANIFEST, D2, 20), labels={"k": "v"}
    )
    assert updated.target.digest == D2 and updated.labels == {"k": "v"}
    assert updated.updated_at is not None and updated.created_at is not None
    assert updated.updated_at >= updated.created_at
    assert store.images.update("default", "quay.io/x:1", labels={}).target.digest == D2
    store.images.delete("default", "quay.io/x:1")
    with pytest.raises(NotFoundError):
        store.images.get("default", "quay.io/x:1")
    with pytest.raises(NotFoundError):
        store.images.delete("default", "quay.io/x:1")
    with pytest.raises(NotFoundError):
        store.images.update("default", "quay.io/x:1", labels={})


def test_bad_arguments_are_refused(store: MetadataStore) -> None:
    with pytest.raises(InvalidArgumentError):
        store.images.create("default", image("x", digest="sha256:nothex"))
    with pytest.raises(InvalidArgumentError):
        store.images.create("bad namespace!", image("x"))
    with pytest.raises(InvalidArgumentError):
        store.images.create("default", image(""))
    with pytest.raises(InvalidArgumentError):
        store.content.add("default", D1, -1)
    with pytest.raises(InvalidArgumentError):
        store.leases.create("default", "l", expires_at=datetime.datetime(2030, 1, 1))  # naive
    store.leases.create("default", "l")
    with pytest.raises(InvalidArgumentError):
        store.leases.add_resource("default", "l", LeaseResource("weird", "x"))
    with pytest.raises(InvalidArgumentError):
        store.leases.add_resource("default", "l", LeaseResource.content("sha256:short"))


def test_namespaces_isolate_names_and_share_digests(store: MetadataStore) -> None:
    store.images.create("ns1", image("app:1", team="one"))
    store.images.create("ns2", image("app:1", team="two"))  # same name, other namespace: no conflict
    assert store.images.get("ns1", "app:1").labels == {"team": "one"}
    assert store.images.get("ns2", "app:1").labels == {"team": "two"}
    store.content.add("ns1", D1, 10, {"a": "1"})
    store.content.add("ns2", D1, 10, {"b": "2"})
    assert store.content.get("ns1", D1).labels == {"a": "1"}
    assert store.content.get("ns2", D1).labels == {"b": "2"}
    with pytest.raises(NotFoundError):
        store.images.get("ns3", "app:1")
    assert [n.name for n in store.namespaces.list()] == ["ns1", "ns2"]


def test_namespaces_crud_and_delete_refuses_non_empty(store: MetadataStore) -> None:
    store.namespaces.create("empty", {"owner": "me"})
    with pytest.raises(AlreadyExistsError):
        store.namespaces.create("empty")
    assert store.namespaces.get("empty").labels == {"owner": "me"}
    assert store.namespaces.set_labels("empty", {}).labels == {}
    store.namespaces.delete("empty")
    with pytest.raises(NotFoundError):
        store.namespaces.get("empty")
    fills: list[tuple[str, Callable[[], object]]] = [
        ("images", lambda: store.images.create("full", image("x"))),
        ("content", lambda: store.content.add("full", D1, 1)),
        ("leases", lambda: store.leases.create("full", "l")),
        (
            "snapshots",
            lambda: store.snapshots.create("full", SnapshotRecord("overlayfs", "k", SnapshotKind.ACTIVE)),
        ),
    ]
    for table, fill in fills:
        fill()
        with pytest.raises(FailedPreconditionError, match=table):
            store.namespaces.delete("full")
        {
            "images": lambda: store.images.delete("full", "x"),
            "content": lambda: store.content.delete("full", D1),
            "leases": lambda: store.leases.delete("full", "l"),
            "snapshots": lambda: store.snapshots.delete("full", "overlayfs", "k"),
        }[table]()
    store.namespaces.delete("full")


def test_leases_crud_and_resources(store: MetadataStore) -> None:
    expiry = datetime.datetime(2030, 1, 1, tzinfo=UTC)
    lease = store.leases.create("default", "pull-1", expires_at=expiry, labels={"why": "pull"})
    assert lease.expires_at == expiry and lease.labels == {"why": "pull"}
    assert lease.expired(expiry) and not lease.expired(expiry - datetime.timedelta(seconds=1))
    assert not store.leases.create("default", "forever").expired(expiry)
    with pytest.raises(AlreadyExistsError):
        store.leases.create("default", "pull-1")
    resources = [
        LeaseResource.content(D1),
        LeaseResource.ingest("pull-1-layer"),
        LeaseResource.snapshot("overlayfs", "sha256:chain"),
    ]
    for resource in resources:
        store.leases.add_resource("default", "pull-1", resource)
    store.leases.add_resource("default", "pull-1", resources[0])  # idempotent
    assert sorted(store.leases.resources("default", "pull-1"), key=lambda r: r.type) == resources
    store.leases.remove_resource("default", "pull-1", resources[1])
    with pytest.raises(NotFoundError):
        store.leases.remove_resource("default", "pull-1", resources[1])
    assert [le.id for le in store.leases.list("default")] == ["forever", "pull-1"]
    with pytest.raises(NotFoundError):
        store.leases.add_resource("default", "nope", resources[0])
    store.leases.delete("default", "pull-1")
    with pytest.raises(NotFoundError):
        store.leases.resources("default", "pull-1")
    store.leases.create("default", "pull-1")
    assert store.leases.resources("default", "pull-1") == []  # resources went with the lease
    with pytest.raises(NotFoundError):
        store.leases.delete("default", "nope")


def test_content_records_crud(store: MetadataStore) -> None:
    record = store.content.add("default", D1, 10, {"a": "1"})
    assert record == ContentRecord(D1, 10, {"a": "1"}, record.created_at, record.updated_at)
    # add is idempotent and merges labels: concurrent pulls of one blob both succeed
    assert store.content.add("default", D1, 10, {"b": "2"}).labels == {"a": "1", "b": "2"}
    with pytest.raises(InvalidArgumentError, match="size"):
        store.content.add("default", D1, 11)
    assert store.content.set_labels("default", D1, {"c": "3"}).labels == {"c": "3"}
    store.content.add("default", D2, 5)
    assert [c.digest for c in store.content.list("default")] == [D1, D2]
    store.content.delete("default", D1)
    with pytest.raises(NotFoundError):
        store.content.get("default", D1)
    with pytest.raises(NotFoundError):
        store.content.delete("default", D1)


def test_snapshot_records_crud(store: MetadataStore) -> None:
    base = store.snapshots.create("default", SnapshotRecord("overlayfs", "base", SnapshotKind.COMMITTED))
    assert base.kind is SnapshotKind.COMMITTED and base.parent is None
    store.snapshots.create("default", SnapshotRecord("overlayfs", "work", SnapshotKind.ACTIVE, parent="base"))
    store.snapshots.create("default", SnapshotRecord("native", "base", SnapshotKind.VIEW))
    with pytest.raises(AlreadyExistsError):
        store.snapshots.create("default", SnapshotRecord("overlayfs", "base", SnapshotKind.ACTIVE))
    with pytest.raises(NotFoundError):
        store.snapshots.create(
            "default", SnapshotRecord("overlayfs", "x", SnapshotKind.ACTIVE, parent="none")
        )
    assert store.snapshots.get("default", "overlayfs", "work").parent == "base"
    assert [s.key for s in store.snapshots.list("default", "overlayfs")] == ["base", "work"]
    assert len(store.snapshots.list("default")) == 3
    with pytest.raises(FailedPreconditionError, match="parent"):
        store.snapshots.delete("default", "overlayfs", "base")
    store.snapshots.delete("default", "overlayfs", "work")
    store.snapshots.delete("default", "overlayfs", "base")
    with pytest.raises(NotFoundError):
        store.snapshots.get("default", "overlayfs", "base")


def test_a_transaction_commits_together_or_not_at_all(store: MetadataStore) -> None:
    with store.transaction() as tx:
        tx.images.create("default", image("a"))
        tx.content.add("default", D1, 10)
        assert tx.images.get("default", "a").name == "a"  # sees its own writes
    assert store.images.get("default", "a").name == "a"
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.images.create("default", image("b"))
        tx.content.delete("default", D1)
        raise RuntimeError("boom")
    with pytest.raises(NotFoundError):
        store.images.get("default", "b")
    assert store.content.get("default", D1).size == 10
    with store.transaction(write=False) as tx:
        assert [i.name for i in tx.images.list("default")] == ["a"]
        with pytest.raises(InvalidArgumentError, match="read-only"):
            tx.images.delete("default", "a")


def _writer(root: str, worker: int, count: int) -> None:
    store = MetadataStore(root)
    for i in range(count):
        with store.transaction() as tx:
            tx.images.create("shared", image(f"w{worker}/img{i}", digest="sha256:" + f"{worker}{i:063x}"))
            tx.content.add("shared", D1, 10)  # every worker references the same blob
            # read-modify-write of one counter: only serialised transactions keep every increment
            counter = tx.images.get("shared", "counter")
            n = int(counter.labels["n"]) + 1
            tx.images.update("shared", "counter", labels={"n": str(n)})
        store.leases.create("shared", f"lease-{worker}-{i}")
        store.leases.add_resource("shared", f"lease-{worker}-{i}", LeaseResource.content(D2))


def test_four_processes_write_at_once_and_the_result_is_consistent(tmp_path: Path) -> None:
    store = MetadataStore(tmp_path)
    store.images.create("shared", image("counter", n="0"))
    workers, count = 4, 40
    # fork, not spawn: spawn starts a resource tracker that outlives the test. The parent holds no
    # sqlite connection across the fork (each transaction opens and closes its own).
    context = multiprocessing.get_context("fork")
    processes = [context.Process(target=_writer, args=(str(tmp_path), w, count)) for w in range(workers)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    assert [p.exitcode for p in processes] == [0] * workers
    names = [i.name for i in store.images.list("shared")]
    assert len(names) == workers * count + 1
    assert len(store.images.list("shared", prefix="w2/")) == count
    assert store.images.get("shared", "counter").labels == {"n": str(workers * count)}
    assert [c.digest for c in store.content.list("shared")] == [D1]
    assert len(store.leases.list("shared")) == workers * count
    conn = sqlite3.connect(tmp_path / DB_NAME)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()


def _opener(root: str, barrier: multiprocessing.synchronize.Barrier) -> None:
    barrier.wait()
    MetadataStore(root).content.add("default", D1, 10)


def test_four_processes_opening_a_fresh_store_at_once_all_succeed(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(4)
    processes = [context.Process(target=_opener, args=(str(tmp_path), barrier)) for _ in range(4)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=60)
    assert [p.exitcode for p in processes] == [0] * 4
    assert [c.digest for c in MetadataStore(tmp_path).content.list("default")] == [D1]


def test_public_names() -> None:
    assert sorted(_metadata.__all__) == sorted(
        [
            "DB_NAME",
            "GC_REF_CONTENT",
            "GC_REF_SNAPSHOT",
            "GC_ROOT",
            "LEASE_OWNER",
            "SCHEMA_VERSION",
            "SHAREABLE",
            "UNCOMPRESSED",
            "Container",
            "Containers",
            "ContentRecord",
            "Descriptor",
            "GCResult",
            "Image",
            "Lease",
            "LeaseResource",
            "MetadataStore",
            "Namespace",
            "NamespacedContent",
            "SnapshotKind",
            "SnapshotRecord",
            "Transaction",
            "check_container_id",
            "check_namespace",
            "collect",
            "current_owner",
            "owner_alive",
        ]
    )
    for name in _metadata.__all__:
        assert getattr(_metadata, name) is not None
