"""Container records in the metadata store: validation, namespaces, the v1 → v2 schema upgrade, GC roots."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from pycontainerd import AlreadyExistsError, FailedPreconditionError, InvalidArgumentError, NotFoundError
from pycontainerd._content import ContentStore
from pycontainerd._metadata import (
    Container,
    MetadataStore,
    SnapshotKind,
    SnapshotRecord,
    collect,
)

SPEC = {"ociVersion": "1.0.2", "process": {"args": ["true"]}}


def _container(container_id: str = "web", key: str = "default/web") -> Container:
    return Container(container_id, "127.0.0.1:5000/busybox:latest", "io.pycontainerd.pyrunc.v1", SPEC,
                     "overlayfs", key, {"team": "a"})  # fmt: skip


def test_create_get_list_label_delete(tmp_path: Path) -> None:
    store = MetadataStore(tmp_path)
    made = store.containers.create("default", _container())
    assert (made.id, made.spec, made.labels) == ("web", SPEC, {"team": "a"})
    assert made.created_at is not None and made.created_at == made.updated_at
    assert store.containers.get("default", "web") == made
    assert store.containers.list("other") == []
    store.containers.create("other", _container())  # namespaces separate ids
    relabelled = store.containers.set_labels("default", "web", {"team": "b"})
    assert relabelled.labels == {"team": "b"} and relabelled.updated_at is not None
    with pytest.raises(AlreadyExistsError, match="container web already exists in default"):
        store.containers.create("default", _container())
    with pytest.raises(FailedPreconditionError, match="still has containers"):
        store.namespaces.delete("default")
    store.containers.delete("default", "web")
    with pytest.raises(NotFoundError, match="container web not found in default"):
        store.containers.get("default", "web")
    with pytest.raises(NotFoundError):
        store.containers.delete("default", "web")


@pytest.mark.parametrize("bad", ["", "a/b", "-a", "a..b", "x" * 77, "a b", "..", "é"])
def test_ids_follow_containerds_rule(tmp_path: Path, bad: str) -> None:
    with pytest.raises(InvalidArgumentError, match="invalid container id"):
        MetadataStore(tmp_path).containers.create("default", _container(bad))


def test_a_version_1_database_is_upgraded_in_place(tmp_path: Path) -> None:
    MetadataStore(tmp_path).images  # noqa: B018 -- creates the current schema
    with sqlite3.connect(tmp_path / "metadata.db") as conn:
        conn.execute("DROP TABLE containers")
        conn.execute("UPDATE schema_version SET version = 1")
    store = MetadataStore(tmp_path)
    store.containers.create("default", _container())
    with sqlite3.connect(tmp_path / "metadata.db") as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(2,)]


def test_a_containers_snapshot_and_its_parents_are_gc_roots(tmp_path: Path) -> None:
    store = MetadataStore(tmp_path / "meta")
    content = ContentStore(tmp_path / "content")
    store.snapshots.create("default", SnapshotRecord("overlayfs", "layer", SnapshotKind.COMMITTED))
    store.snapshots.create(
        "default", SnapshotRecord("overlayfs", "default/web", SnapshotKind.ACTIVE, "layer")
    )
    store.snapshots.create("default", SnapshotRecord("overlayfs", "stray", SnapshotKind.ACTIVE, "layer"))
    store.containers.create("default", _container())
    removed: list[tuple[str, str]] = []
    collect(store, content, snapshot_remover=lambda name, key: removed.append((name, key)))
    assert removed == [("overlayfs", "stray")]
    store.containers.delete("default", "web")
    collect(store, content, snapshot_remover=lambda name, key: removed.append((name, key)))
    assert removed[1:] == [("overlayfs", "default/web"), ("overlayfs", "layer")]
