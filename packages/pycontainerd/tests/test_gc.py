"""GC: roots (images, leases, labels) keep what they reach; the rest goes, and space comes back."""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pycontainerd._content import ContentStore
from pycontainerd._metadata import (
    GC_REF_CONTENT,
    GC_REF_SNAPSHOT,
    GC_ROOT,
    Descriptor,
    Image,
    LeaseResource,
    MetadataStore,
    SnapshotKind,
    SnapshotRecord,
    collect,
)
from pycontainerd._metadata.owner import LEASE_OWNER, current_owner, owner_alive

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
UTC = datetime.UTC


def put(content: ContentStore, store: MetadataStore, data: bytes, ns: str = "default") -> Descriptor:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    content.write_blob(f"test-{digest}", data, len(data), digest)
    store.content.add(ns, digest, len(data))
    return Descriptor("application/octet-stream", digest, len(data))


def put_image(
    content: ContentStore, store: MetadataStore, seed: str, *, docker: bool = False, ns: str = "default"
) -> dict[str, Descriptor]:
    """An index → manifest → config + two 64 KiB layers, all in the content store; returns the blobs."""
    layers = [put(content, store, os.urandom(64 << 10), ns) for _ in range(2)]
    config = put(content, store, json.dumps({"architecture": "amd64", "seed": seed}).encode(), ns)
    manifest_type, list_type = (DOCKER_MANIFEST, DOCKER_LIST) if docker else (OCI_MANIFEST, OCI_INDEX)
    manifest_doc = {
        "schemaVersion": 2,
        "mediaType": manifest_type,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **_desc(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **_desc(d)} for d in layers],
    }
    manifest = put(content, store, json.dumps(manifest_doc).encode(), ns)
    index_doc = {
        "schemaVersion": 2,
        "mediaType": list_type,
        "manifests": [{"mediaType": manifest_type, **_desc(manifest)}],
    }
    index = put(content, store, json.dumps(index_doc).encode(), ns)
    return {
        "index": Descriptor(list_type, index.digest, index.size),
        "manifest": manifest,
        "config": config,
        "layer0": layers[0],
        "layer1": layers[1],
    }


def _desc(d: Descriptor) -> dict[str, object]:
    return {"digest": d.digest, "size": d.size}


def blob_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in (root / "blobs").rglob("*") if p.is_file())


def digests(content: ContentStore) -> set[str]:
    return {info.digest for info in content.walk()}


@pytest.fixture
def stores(tmp_path: Path) -> tuple[MetadataStore, ContentStore]:
    return MetadataStore(tmp_path), ContentStore(tmp_path)


@pytest.mark.parametrize("docker", [False, True], ids=["oci", "docker-schema2"])
def test_an_image_keeps_its_blobs_and_gc_deletes_the_rest(
    tmp_path: Path, stores: tuple[MetadataStore, ContentStore], docker: bool
) -> None:
    store, content = stores
    kept = put_image(content, store, "kept", docker=docker)
    store.images.create("default", Image("example.com/kept:1", kept["index"]))
    dropped = put_image(content, store, "dropped", docker=docker)
    store.images.create("default", Image("example.com/dropped:1", dropped["index"]))
    assert collect(store, content).deleted_blobs == ()  # everything is reachable so far
    stray = put(content, store, b"stray bytes nobody names")
    before = blob_bytes(tmp_path)

    store.images.delete("default", "example.com/dropped:1")
    result = collect(store, content)
    after = blob_bytes(tmp_path)
    gone = {d.digest for d in dropped.values()} | {stray.digest}
    assert set(result.deleted_blobs) == gone
    assert digests(content) == {d.digest for d in kept.values()}
    assert {digest for _, digest in result.deleted_content_records} == gone
    assert {c.digest for c in store.content.list("default")} == {d.digest for d in kept.values()}
    # space comes back: exactly the bytes of the dropped image and the stray blob
    assert before - after == result.bytes_freed == sum(d.size for d in dropped.values()) + stray.size
    assert before - after > 128 << 10
    for d in kept.values():
        assert hashlib.sha256(content.read_blob(d.digest)).hexdigest() == d.digest[7:]


def test_a_lease_protects_content_until_it_expires_or_is_deleted(
    stores: tuple[MetadataStore, ContentStore],
) -> None:
    store, content = stores
    now = datetime.datetime(2030, 1, 1, tzinfo=UTC)
    pulled = put_image(content, store, "pull")  # a pull in progress: no image name yet
    store.leases.create("default", "pull", expires_at=now + datetime.timedelta(hours=1))
    store.leases.add_resource("default", "pull", LeaseResource.content(pulled["index"].digest))
    other = put(content, store, b"held by a lease without expiry")
    store.leases.create("default", "build")
    store.leases.add_resource("default", "build", LeaseResource.content(other.digest))

    # the lease's index is sniffed as JSON, so its manifest, config and layers are kept too
    assert collect(store, content, now=now).deleted_blobs == ()
    result = collect(store, content, now=now + datetime.timedelta(hours=2))
    assert result.deleted_leases == (("default", "pull"),)
    assert set(result.deleted_blobs) == {d.digest for d in pulled.values()}
    assert digests(content) == {other.digest}
    store.leases.delete("default", "build")
    assert collect(store, content, now=now).deleted_blobs == (other.digest,)
    assert digests(content) == set()


def test_gc_root_and_ref_labels_keep_content(stores: tuple[MetadataStore, ContentStore]) -> None:
    store, content = stores
    child = put(content, store, b"child")
    grandchild = put(content, store, b"grandchild")
    root = put(content, store, b"root")
    loose = put(content, store, b"loose")
    store.content.add(
        "default", root.digest, root.size, {GC_ROOT: "2030-01-01", GC_REF_CONTENT + "0": child.digest}
    )
    store.content.add("default", child.digest, child.size, {GC_REF_CONTENT + "x": grandchild.digest})
    result = collect(store, content)
    assert result.deleted_blobs == (loose.digest,)
    assert digests(content) == {root.digest, child.digest, grandchild.digest}


def test_namespaces_share_blobs_and_gc_keeps_a_blob_any_namespace_reaches(
    stores: tuple[MetadataStore, ContentStore],
) -> None:
    store, content = stores
    shared = put(content, store, b"shared", ns="ns1")
    store.content.add("ns2", shared.digest, shared.size, {GC_ROOT: "yes"})
    result = collect(store, content)
    # ns1's unreferenced record goes, but the blob stays: ns2 still reaches it
    assert result.deleted_content_records == (("ns1", shared.digest),)
    assert result.deleted_blobs == ()
    assert digests(content) == {shared.digest}
    store.content.delete("ns2", shared.digest)
    assert collect(store, content).deleted_blobs == (shared.digest,)


def test_unreferenced_snapshots_are_reported_and_removed_children_first(
    stores: tuple[MetadataStore, ContentStore],
) -> None:
    store, content = stores
    snaps = store.snapshots
    for key, parent in [
        ("base", None),
        ("mid", "base"),
        ("top", "mid"),
        ("kept-base", None),
        ("kept", "kept-base"),
    ]:
        snaps.create("default", SnapshotRecord("overlayfs", key, SnapshotKind.COMMITTED, parent=parent))
    snaps.create("default", SnapshotRecord("overlayfs", "work", SnapshotKind.ACTIVE, parent="base"))
    snaps.create("default", SnapshotRecord("native", "by-label", SnapshotKind.COMMITTED))
    # an image config labelled with its chain's snapshot keeps that chain, as unpacking does
    config = put(content, store, b"{}")
    store.content.add(
        "default", config.digest, config.size, {GC_ROOT: "1", GC_REF_SNAPSHOT + "overlayfs": "kept"}
    )
    store.leases.create("default", "unpack")
    store.leases.add_resource("default", "unpack", LeaseResource.snapshot("native", "by-label"))

    report = collect(store, content)
    assert report.unreferenced_snapshots == (
        ("default", "overlayfs", "base"),
        ("default", "overlayfs", "mid"),
        ("default", "overlayfs", "top"),
        ("default", "overlayfs", "work"),
    )
    assert report.removed_snapshots == ()  # no remover: reported only, records kept
    assert len(snaps.list("default")) == 7

    removed: list[tuple[str, str]] = []
    result = collect(store, content, snapshot_remover=lambda name, key: removed.append((name, key)))
    assert removed.index(("overlayfs", "top")) < removed.index(("overlayfs", "mid"))
    assert removed.index(("overlayfs", "mid")) < removed.index(("overlayfs", "base"))
    assert removed.index(("overlayfs", "work")) < removed.index(("overlayfs", "base"))
    assert len(result.removed_snapshots) == 4
    assert sorted(s.key for s in snaps.list("default")) == ["by-label", "kept", "kept-base"]


def test_a_failing_snapshot_remover_keeps_the_record(stores: tuple[MetadataStore, ContentStore]) -> None:
    store, content = stores
    store.snapshots.create("default", SnapshotRecord("overlayfs", "busy", SnapshotKind.ACTIVE))

    def remover(name: str, key: str) -> None:
        raise OSError(16, "Device or resource busy")

    result = collect(store, content, snapshot_remover=remover)
    assert result.removed_snapshots == () and "busy" in result.errors[0]
    assert store.snapshots.get("default", "overlayfs", "busy").key == "busy"


def test_stale_ingests_are_aborted_and_leased_or_fresh_ones_kept(
    stores: tuple[MetadataStore, ContentStore],
) -> None:
    store, content = stores
    for ref in ("crashed-pull", "leased-pull", "fresh-pull"):
        with content.writer(ref) as writer:
            writer.write(b"partial")  # left without a commit, as a killed pull leaves it
    store.leases.create("default", "pull")
    store.leases.add_resource("default", "pull", LeaseResource.ingest("leased-pull"))
    later = datetime.datetime.now(tz=UTC) + datetime.timedelta(days=2)
    with content.writer("fresh-pull") as writer:
        writer.write(b"more")
    result = collect(store, content, now=later, ingest_expiry=datetime.timedelta(days=1, hours=23))
    assert set(result.aborted_ingests) == {"crashed-pull", "fresh-pull"}
    assert [s.ref for s in content.list_statuses()] == ["leased-pull"]
    # a held (locked) ingest is never aborted, however old
    with content.writer("in-use") as writer:
        writer.write(b"x")
        result = collect(store, content, now=later, ingest_expiry=datetime.timedelta(0))
        assert "in-use" not in result.aborted_ingests
    assert "leased-pull" not in result.aborted_ingests


def test_a_lease_ends_with_the_process_it_names(stores: tuple[MetadataStore, ContentStore]) -> None:
    """A lease labelled with its owner survives GC while the owner runs, and is collected with its
    blobs and ingests once the owner is gone (a pull killed half-way); a lease without the label
    waits for its deletion."""
    store, content = stores
    held = {name: put(content, store, f"held by {name}".encode()) for name in ("live", "dead", "unlabelled")}
    # A process that takes a lease and dies without deleting it, as SIGKILL leaves a pull.
    script = (
        "import os, sys; from pycontainerd._metadata import MetadataStore;"
        "from pycontainerd._metadata.owner import LEASE_OWNER, current_owner;"
        "MetadataStore(sys.argv[1]).leases.create('default', 'dead', labels={LEASE_OWNER: current_owner()});"
        "os._exit(0)"
    )
    subprocess.run([sys.executable, "-c", script, str(store.root)], check=True, timeout=60)
    store.leases.create("default", "live", labels={LEASE_OWNER: current_owner()})
    store.leases.create("default", "unlabelled")
    for name, desc in held.items():
        store.leases.add_resource("default", name, LeaseResource.content(desc.digest))
        with content.writer(f"{name}-ingest") as writer:
            writer.write(b"half a blob")  # a download under way (live), or left by a kill (dead)
        store.leases.add_resource("default", name, LeaseResource.ingest(f"{name}-ingest"))
    assert owner_alive(current_owner())
    assert not owner_alive(store.leases.get("default", "dead").labels[LEASE_OWNER])

    result = collect(store, content)
    assert result.deleted_leases == (("default", "dead"),)
    assert result.deleted_blobs == (held["dead"].digest,)
    assert result.aborted_ingests == ("dead-ingest",)  # its lease ended: no need to wait for it to age
    assert [lease.id for lease in store.leases.list("default")] == ["live", "unlabelled"]


def test_an_ingest_whose_blob_is_committed_already_is_aborted(
    stores: tuple[MetadataStore, ContentStore],
) -> None:
    """A writer killed between the commit's rename and removing its ingest leaves nothing to resume."""
    store, content = stores
    data = b"committed by another writer"
    blob = put(content, store, data)
    store.images.create(
        "default", Image("example.com/kept:1", Descriptor(OCI_MANIFEST, blob.digest, blob.size))
    )
    with content.writer("late-pull", len(data), blob.digest) as writer:
        writer.write(data[:5])
    result = collect(store, content)
    assert result.aborted_ingests == ("late-pull",)
    assert content.list_statuses() == []
    assert digests(content) == {blob.digest}
