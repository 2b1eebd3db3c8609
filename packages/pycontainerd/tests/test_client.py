"""The Client against a private docker-registry on 127.0.0.1: pull and unpack, push, tag, remove,
import/export and GC. The busybox image is built offline (tests/oci_images.py) and pushed there with
skopeo; nothing here contacts any other registry."""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyrunc_acceptance_oci_images as oci_images  # registered by conftest.py
import pytest

from pycontainerd import (
    Client,
    NotFoundError,
    Progress,
    ProgressState,
    Reference,
    chain_id,
)

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture(scope="module")
def ref(registry: Any, layout: Any) -> str:
    pushed: str = oci_images.push_to_registry(layout, registry.address, "client/busybox")
    return pushed


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Client]:
    with Client(root=tmp_path / "root", state=tmp_path / "state") as opened:
        yield opened


def _view_has_busybox(client: Client, chain: str, where: Path) -> bool:
    """Mount a view of ``chain`` at ``where`` and look for bin/busybox; always unmounted after."""
    snapshotter = client.snapshotter()
    mounts = snapshotter.view("test-view", chain)
    where.mkdir()
    try:
        (mount,) = mounts
        mount.mount(where)
        try:
            return (where / "bin" / "busybox").is_file()
        finally:
            mount.unmount(where)
    finally:
        snapshotter.remove("test-view")


def test_pull_fetches_records_and_unpacks_into_overlayfs(
    client: Client, ref: str, layout: Any, tmp_path: Path
) -> None:
    events: list[Progress] = []
    image = client.pull(ref, progress=events.append)
    assert image.name == ref == str(Reference.parse(ref))
    assert image.target.digest == layout.manifest_digest
    assert [i.name for i in client.images()] == [ref]
    done = [e.digest for e in events if e.state is ProgressState.DONE]
    assert layout.layer_digest in done and len(done) == len(set(done))  # each blob done once
    for digest in (layout.manifest_digest, layout.config_digest, layout.layer_digest):
        client.content.info(digest)
        client.metadata.content.get(client.namespace, digest)
    chain = chain_id([layout.diff_id])
    assert client.snapshotter().stat(chain).kind.value == "committed"
    assert _view_has_busybox(client, chain, tmp_path / "rootfs")
    # The pull's lease is gone: only the image holds its content now.
    assert client.metadata.leases.list(client.namespace) == []
    assert client.content.list_statuses() == []


def test_a_second_pull_reuses_blobs_and_snapshots(client: Client, ref: str, layout: Any) -> None:
    client.pull(ref)
    events: list[Progress] = []
    client.pull(ref, progress=events.append)
    assert {e.state for e in events} == {ProgressState.EXISTS}
    assert len(client.snapshotter().walk()) == 1


def test_pull_with_the_native_snapshotter(ref: str, layout: Any, tmp_path: Path) -> None:
    with Client(root=tmp_path / "root", snapshotter="native") as client:
        client.pull(ref)
        chain = chain_id([layout.diff_id])
        assert client.snapshotter("native").stat(chain).kind.value == "committed"
        assert _view_has_busybox(client, chain, tmp_path / "rootfs")


def test_an_interrupted_pull_resumes_its_ingest(client: Client, ref: str, layout: Any) -> None:
    blob = layout.blob(layout.layer_digest).read_bytes()
    ingest = f"{ref}-{layout.layer_digest}"
    with client.content.writer(ingest, len(blob), layout.layer_digest) as writer:
        writer.write(blob[: len(blob) // 2])
    assert client.content.status(ingest).offset == len(blob) // 2
    events: list[Progress] = []
    client.pull(ref, progress=events.append)
    resumed = [e for e in events if e.digest == layout.layer_digest]
    assert resumed[0].done == len(blob) // 2  # the first event is the resumed offset, not 0
    assert client.content.read_blob(layout.layer_digest) == blob


def test_tag_and_remove(client: Client, ref: str) -> None:
    image = client.pull(ref, unpack=False)
    copy = client.tag(ref, "127.0.0.1:1/other:v1")
    assert copy.target == image.target
    assert [i.name for i in client.images()] == sorted([ref, "127.0.0.1:1/other:v1"])
    client.remove_image("127.0.0.1:1/other:v1")
    assert [i.name for i in client.images()] == [ref]
    with pytest.raises(NotFoundError):
        client.remove_image("127.0.0.1:1/other:v1")


def test_config_gives_the_host_platforms_config_and_its_descriptor(
    client: Client, ref: str, layout: Any
) -> None:
    image = client.pull(ref, unpack=False)
    desc, config = client.config(image)
    manifest = json.loads(client.content.read_blob(layout.manifest_digest))
    assert desc.digest == manifest["config"]["digest"]
    assert (config.os, config.config.cmd, config.rootfs.diff_ids) == ("linux", ("sh",), (layout.diff_id,))


def test_gc_after_remove_frees_blobs_and_snapshots(client: Client, ref: str, layout: Any) -> None:
    client.pull(ref)
    assert client.gc().deleted_blobs == ()  # the image holds everything
    client.remove_image(ref)
    result = client.gc()
    assert set(result.deleted_blobs) == {layout.manifest_digest, layout.config_digest, layout.layer_digest}
    assert result.bytes_freed > 0
    assert list(client.content.walk()) == []
    assert client.snapshotter().walk() == []
    assert client.metadata.snapshots.list(client.namespace) == []


def test_export_then_import_into_a_fresh_root_keeps_the_digest(
    client: Client, ref: str, layout: Any, tmp_path: Path
) -> None:
    client.pull(ref, unpack=False)
    out = io.BytesIO()
    client.export(out, [ref])
    out.seek(0)
    with Client(root=tmp_path / "fresh") as fresh:
        (imported,) = fresh.import_archive(out)
        assert imported.name == ref
        assert imported.target.digest == client.image(ref).target.digest
        fresh.unpack(ref)
        assert fresh.snapshotter().stat(chain_id([layout.diff_id])).kind.value == "committed"
        assert fresh.gc().deleted_blobs == ()


def test_push_to_another_repository_is_seen_by_skopeo(
    client: Client, ref: str, registry: Any, layout: Any
) -> None:
    image = client.pull(ref, unpack=False)
    target = f"{registry.address}/client/pushed:v2"
    events: list[Progress] = []
    desc = client.push(target, source=ref, progress=events.append)
    assert desc.digest == image.target.digest
    assert events
    result = subprocess.run(
        ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{target}"],
        capture_output=True,
        check=True,
        timeout=60,
    )
    manifest = json.loads(result.stdout)
    assert manifest["config"]["digest"] == layout.config_digest
    assert result.stdout == client.content.read_blob(image.target.digest)  # pushed as stored
