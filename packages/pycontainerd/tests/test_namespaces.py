"""Namespaces as a boundary (issue 11, "Namespaces do not separate content"): content, images, snapshots,
containers, tasks, leases and GC are each seen and changed only in their own namespace, on one real
root. Driven through ``pyctr`` (each command its own process) and the Client, with images built
offline; the pulls go to a private docker-registry on 127.0.0.1 through a proxy that records every
request, to see which blobs a pull really fetches."""

from __future__ import annotations

import collections
import dataclasses
import gzip
import hashlib
import http.client
import io
import json
import shutil
import subprocess
import sys
import tarfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyrunc_acceptance_oci_images as oci_images  # registered by conftest.py
import pytest

from pycontainerd import (
    AlreadyExistsError,
    Client,
    ContentStore,
    DigestMismatchError,
    NotFoundError,
    SizeMismatchError,
    chain_id,
)
from pycontainerd._metadata import GC_ROOT, SHAREABLE, Descriptor, Image, MetadataStore, collect

if TYPE_CHECKING:
    from collections.abc import Iterator

PYCTR = str(Path(sys.executable).with_name("pyctr"))
SECRET = "a's secret\n"
SECRET_IMAGE = "example.com/secret:latest"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


class Pyctr:
    """``pyctr -n NAMESPACE ...`` on one root and state."""

    def __init__(self, tmp_path: Path) -> None:
        self.root, self.state = tmp_path / "root", tmp_path / "state"

    def __call__(
        self, namespace: str, *args: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        argv = [PYCTR, "--root", str(self.root), "--state", str(self.state), "-n", namespace, *args]
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
        if check and done.returncode != 0:
            raise AssertionError(
                f"pyctr -n {namespace} {' '.join(args)} exited {done.returncode}: {done.stderr}"
            )
        return done

    def refused(self, namespace: str, *args: str) -> str:
        """The one-line error of a command that must fail."""
        done = self(namespace, *args, check=False)
        assert done.returncode == 1, (args, done.stdout, done.stderr)
        assert done.stderr.startswith("pyctr: ") and done.stderr.count("\n") == 1, done.stderr
        return done.stderr

    def client(self, namespace: str) -> Client:
        return Client(self.root, self.state, namespace)


@pytest.fixture
def pyctr(tmp_path: Path) -> Iterator[Pyctr]:
    run = Pyctr(tmp_path)
    yield run
    if not (run.root / "metadata").is_dir():
        return
    for namespace in MetadataStore(run.root / "metadata").namespaces.list():
        for task in run(namespace.name, "tasks", "ls", "-q", check=False).stdout.split():
            run(namespace.name, "tasks", "rm", "--force", task, check=False)
        for container in run(namespace.name, "containers", "ls", "-q", check=False).stdout.split():
            run(namespace.name, "containers", "rm", "--force", container, check=False)


# --------------------------------------------------------------------------------------------------
# Images built offline: busybox plus layers of our own


@dataclasses.dataclass(frozen=True)
class Built:
    """An OCI layout of busybox and more layers, and its archive."""

    image: Any  # oci_images.OCIImage (its layer_digest/diff_id are busybox's)
    layers: tuple[str, ...]  # layer digests, bottom first
    diff_ids: tuple[str, ...]
    archive: Path

    @property
    def chains(self) -> list[str]:
        return [chain_id(list(self.diff_ids[: i + 1])) for i in range(len(self.diff_ids))]


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _layer(files: dict[str, bytes]) -> tuple[bytes, str]:
    """A gzip'd layer holding ``files``: its blob and its diff ID."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            entry = tarfile.TarInfo(name)
            entry.size, entry.mode, entry.mtime = len(data), 0o644, oci_images.EPOCH
            tar.addfile(entry, io.BytesIO(data))
    return gzip.compress(buffer.getvalue(), mtime=0), _sha256(buffer.getvalue())


def _build(directory: Path, files: dict[str, bytes], *, claimed_diff_id: str | None = None) -> Built:
    """busybox, then a layer holding ``files``; the config lists ``claimed_diff_id`` for that layer
    when given (an image lying about its layer), its real diff ID otherwise. Archived beside it."""
    busybox = oci_images.write_busybox_layout(directory)
    blobs = directory / "blobs" / "sha256"
    blob, diff_id = _layer(files)
    (blobs / _sha256(blob).removeprefix("sha256:")).write_bytes(blob)
    layers = (busybox.layer_digest, _sha256(blob))
    diff_ids = (busybox.diff_id, claimed_diff_id or diff_id)
    manifest = busybox.read_json(busybox.manifest_digest)
    config = busybox.read_json(busybox.config_digest)
    config["rootfs"] = {"type": "layers", "diff_ids": list(diff_ids)}
    config_bytes = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    (blobs / _sha256(config_bytes).removeprefix("sha256:")).write_bytes(config_bytes)
    manifest["config"] = {**manifest["config"], "digest": _sha256(config_bytes), "size": len(config_bytes)}  # type: ignore[dict-item]
    manifest["layers"] = [
        *manifest["layers"],
        {"mediaType": oci_images.LAYER_MEDIA_TYPE, "digest": layers[1], "size": len(blob)},
    ]  # type: ignore[misc]
    manifest_bytes = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    (blobs / _sha256(manifest_bytes).removeprefix("sha256:")).write_bytes(manifest_bytes)
    index = json.loads((directory / "index.json").read_bytes())
    index["manifests"][0].update(digest=_sha256(manifest_bytes), size=len(manifest_bytes))
    (directory / "index.json").write_text(json.dumps(index, sort_keys=True, separators=(",", ":")))
    for stale in (busybox.manifest_digest, busybox.config_digest):
        (blobs / stale.removeprefix("sha256:")).unlink()
    image = oci_images.OCIImage(
        directory,
        busybox.tag,
        _sha256(manifest_bytes),
        _sha256(config_bytes),
        busybox.layer_digest,
        busybox.diff_id,
    )
    archive = oci_images.write_oci_archive(image, directory.with_suffix(".tar"))
    return Built(image, layers, diff_ids, archive)


@pytest.fixture(scope="module")
def secret(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """busybox and a layer holding ``/secret``: namespace a's image."""
    return _build(tmp_path_factory.mktemp("secret") / "layout", {"secret": SECRET.encode()})


def _import(pyctr: Pyctr, namespace: str, archive: Path, name: str = SECRET_IMAGE) -> str:
    base = name.rsplit(":", 1)[0]
    imported = pyctr(namespace, "images", "import", "--base-name", base, str(archive)).stdout
    assert imported.startswith(f"{name}: "), imported
    return name


# --------------------------------------------------------------------------------------------------
# Content


def test_an_archive_that_names_another_namespace_s_layer_without_its_bytes_is_refused(
    pyctr: Pyctr, secret: Built, tmp_path: Path
) -> None:
    """The attack of issue 11: namespace b imports index, manifest and config naming a's layer."""
    _import(pyctr, "a", secret.archive)
    assert pyctr("a", "run", "--rm", SECRET_IMAGE, "s1", "cat", "/secret").stdout == SECRET  # it is there
    crafted_layout = tmp_path / "crafted"
    shutil.copytree(secret.image.directory, crafted_layout)
    secret_layer = secret.layers[1]
    (crafted_layout / "blobs" / "sha256" / secret_layer.removeprefix("sha256:")).unlink()
    crafted = oci_images.write_oci_archive(
        dataclasses.replace(secret.image, directory=crafted_layout), tmp_path / "crafted.tar"
    )

    error = pyctr.refused("b", "images", "import", "--base-name", "example.com/stolen", str(crafted))
    assert f"content {secret_layer} not found in namespace b" in error, error
    assert "the archive does not carry it" in error
    assert pyctr("b", "images", "ls", "-q").stdout == ""
    run = pyctr("b", "run", "--rm", "example.com/stolen:latest", "s2", "cat", "/secret", check=False)
    assert run.returncode == 1 and SECRET not in run.stdout + run.stderr
    assert secret_layer not in pyctr("b", "content", "ls").stdout
    with (
        pyctr.client("b") as b,
        crafted.open("rb") as stream,
        pytest.raises(NotFoundError, match=f"content {secret_layer} not found"),
    ):
        b.import_archive(stream)
    # What the refused imports wrote for b (its manifest, config, busybox layer) goes at gc.
    pyctr("b", "gc")
    assert pyctr("b", "content", "ls").stdout.splitlines()[1:] == []
    assert pyctr("a", "run", "--rm", SECRET_IMAGE, "s3", "cat", "/secret").stdout == SECRET


def test_content_is_seen_read_and_deleted_only_in_its_namespace(pyctr: Pyctr) -> None:
    data = b"a blob of namespace a"
    digest = _sha256(data)
    with pyctr.client("a") as a, pyctr.client("b") as b:
        assert a.content.write_blob("one", data, len(data), digest).created
        assert a.content.read_blob(digest) == data
        for call in (b.content.info, b.content.read_blob, b.content.reader, b.content.delete):
            with pytest.raises(NotFoundError, match=f"content {digest} not found in namespace b"):
                call(digest)
        assert [info.digest for info in a.content.walk()] == [digest]
        assert list(b.content.walk()) == []
        assert a.content.read_blob(digest) == data  # b's delete did nothing to a's

        # Ingests are each namespace's own: b can neither see a's complete but uncommitted bytes
        # (what a writer killed before its commit leaves) nor resume them.
        pulled = b"being pulled by a"
        with a.content.writer("pull", len(pulled), _sha256(pulled)) as held:
            held.write(pulled)
            assert b.content.list_statuses() == []
            with pytest.raises(NotFoundError):
                b.content.status("pull")
            with b.content.writer("pull", len(pulled), _sha256(pulled)) as mine:  # not locked: b's own
                assert mine.offset == 0
                mine.write(b"x" * len(pulled))
                with pytest.raises(DigestMismatchError):
                    mine.commit()
            assert [status.ref for status in a.content.list_statuses()] == ["pull"]
        a.content.abort("pull")

        # b proves it has the bytes by writing them: the blob on disk is shared, the record is b's.
        assert not b.content.write_blob("again", data, len(data), digest).created
        assert b.content.read_blob(digest) == data
        with pytest.raises(AlreadyExistsError, match="already exists in namespace b"):
            b.content.writer("third", len(data), digest)

        # Either namespace's reference keeps the blob on disk; with neither, gc deletes it.
        b.metadata.content.set_labels("b", digest, {GC_ROOT: "b references it"})
        a.content.delete(digest)
        with pytest.raises(NotFoundError):
            a.content.info(digest)
        assert a.gc().deleted_blobs == ()
        assert b.content.read_blob(digest) == data
        b.content.delete(digest)
        assert a.gc().deleted_blobs == (digest,)
        with pytest.raises(NotFoundError):
            ContentStore(pyctr.root / "content").info(digest)


def test_a_namespace_labelled_shareable_shares_its_blobs(pyctr: Pyctr) -> None:
    data = b"published by namespace a"
    digest = _sha256(data)
    with pyctr.client("a") as a, pyctr.client("b") as b, pyctr.client("c") as c:
        a.content.write_blob("one", data, len(data), digest)
        with b.content.writer("w", len(data), digest) as writer:  # not shared yet: b writes
            assert writer.offset == 0
        b.content.abort("w")
        with pytest.raises(NotFoundError):
            b.content.info(digest)
        a.metadata.namespaces.set_labels("a", {SHAREABLE: "true"})
        with pytest.raises(AlreadyExistsError):  # taken from a, recorded in b without the bytes
            b.content.writer("w", len(data), digest)
        assert b.content.read_blob(digest) == data
        with pytest.raises(SizeMismatchError):  # the same digest announced with another size
            c.content.writer("w", len(data) + 1, digest)
        with pytest.raises(NotFoundError):
            c.content.info(digest)


def test_a_pull_fetches_the_blobs_another_namespace_has(pyctr: Pyctr, registry: Any, layout: Any) -> None:
    oci_images.push_to_registry(layout, registry.address, "ns/busybox")
    with _CountingProxy(registry.address) as proxy:
        ref = f"{proxy.address}/ns/busybox:latest"
        pulled = pyctr("a", "images", "pull", ref)
        assert f"{layout.layer_digest}: done" in pulled.stderr
        first = proxy.blob_fetches()
        assert first == {layout.layer_digest: 1, layout.config_digest: 1}
        again = pyctr("a", "images", "pull", ref)  # the namespace has everything: nothing is fetched
        assert f"{layout.layer_digest}: exists" in again.stderr
        assert proxy.blob_fetches() == first

        pulled = pyctr("b", "images", "pull", ref)
        assert f"{layout.layer_digest}: done" in pulled.stderr
        assert proxy.blob_fetches() == {layout.layer_digest: 2, layout.config_digest: 2}
        assert proxy.manifest_fetches(layout.manifest_digest) == 2  # once per namespace too
    assert pyctr("b", "run", "--rm", ref, "p1", "echo", "ok").stdout == "ok\n"
    chain = chain_id([layout.diff_id])
    for namespace in ("a", "b"):
        assert chain in pyctr(namespace, "snapshots", "ls").stdout


# --------------------------------------------------------------------------------------------------
# Images and snapshots


def test_an_index_naming_another_namespace_s_manifest_reaches_none_of_its_blobs(
    pyctr: Pyctr, secret: Built, tmp_path: Path
) -> None:
    """b's index lists a's manifest for the host's platform and one of its own for arm64, as a pull
    with ``--platform linux/arm64`` of an index from b's registry records it: running the image,
    reading its config or exporting it in b must not reach a's manifest, config or layers."""
    _import(pyctr, "a", secret.archive)
    manifest_type = oci_images.MANIFEST_MEDIA_TYPE
    with pyctr.client("b") as b:
        config = json.dumps(
            {"architecture": "arm64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}
        )
        arm_config = _put(b, config.encode())
        arm = _put(
            b,
            json.dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": manifest_type,
                    "config": {"mediaType": oci_images.CONFIG_MEDIA_TYPE, **arm_config},
                    "layers": [],
                }
            ).encode(),
        )
        a_manifest = {
            "digest": secret.image.manifest_digest,
            "size": secret.image.blob(secret.image.manifest_digest).stat().st_size,
        }
        index = _put(
            b,
            json.dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": OCI_INDEX,
                    "manifests": [
                        {
                            "mediaType": manifest_type,
                            **a_manifest,
                            "platform": {"os": "linux", "architecture": "amd64"},
                        },
                        {
                            "mediaType": manifest_type,
                            **arm,
                            "platform": {"os": "linux", "architecture": "arm64"},
                        },
                    ],
                }
            ).encode(),
        )
        b.metadata.images.create(
            "b", Image("example.com/partial:1", Descriptor(OCI_INDEX, index["digest"], index["size"]))
        )
        with pytest.raises(
            NotFoundError, match=f"content {secret.image.manifest_digest} not found in namespace b"
        ):
            b.containers.image_config("example.com/partial:1")
    run = pyctr("b", "run", "--rm", "example.com/partial:1", "p1", "cat", "/secret", check=False)
    assert run.returncode == 1 and SECRET not in run.stdout + run.stderr
    assert f"content {secret.image.manifest_digest} not found in namespace b" in run.stderr
    assert pyctr("b", "containers", "ls", "-q").stdout == ""
    out = tmp_path / "out.tar"
    error = pyctr.refused("b", "images", "export", str(out), "example.com/partial:1")
    assert f"content {secret.image.manifest_digest} not found in namespace b" in error
    written = out.read_bytes() if out.exists() else b""
    assert secret.image.blob(secret.layers[1]).read_bytes() not in written


def _put(client: Client, data: bytes) -> dict[str, Any]:
    digest = _sha256(data)
    client.content.write_blob(f"put-{digest}", data, len(data), digest)
    return {"digest": digest, "size": len(data)}


def test_images_are_listed_read_and_removed_only_in_their_namespace(
    pyctr: Pyctr, secret: Built, tmp_path: Path
) -> None:
    _import(pyctr, "a", secret.archive)
    assert pyctr("b", "images", "ls", "-q").stdout == ""
    for command in (
        ("images", "inspect", SECRET_IMAGE),
        ("images", "rm", SECRET_IMAGE),
        ("images", "tag", SECRET_IMAGE, "example.com/copy:1"),
        ("images", "export", str(tmp_path / "out.tar"), SECRET_IMAGE),
        ("images", "push", "127.0.0.1:1/never:used", SECRET_IMAGE),
    ):
        assert f"image {SECRET_IMAGE} not found in b" in pyctr.refused("b", *command)
    assert pyctr("a", "images", "ls", "-q").stdout == f"{SECRET_IMAGE}\n"
    _import(pyctr, "b", secret.archive)  # b's own, of the same name
    pyctr("b", "images", "rm", SECRET_IMAGE)
    assert pyctr("a", "images", "ls", "-q").stdout == f"{SECRET_IMAGE}\n"
    with pyctr.client("b") as b:
        with pytest.raises(NotFoundError):
            b.image(SECRET_IMAGE)
        assert b.images() == []


def test_an_archive_s_index_kept_by_index_name_is_its_namespace_s(pyctr: Pyctr, secret: Built) -> None:
    """The index an import writes for ``--index-name`` is recorded in the importing namespace, as
    every blob the import wrote: another namespace sees it only once it has imported it itself."""
    name = "example.com/all:v1"
    with pyctr.client("a") as a, pyctr.client("b") as b:
        with secret.archive.open("rb") as stream:
            *_, index_image = a.import_archive(stream, base_name="example.com/secret", index_name=name)
        index = index_image.target.digest
        assert (index_image.name, index_image.target.media_type) == (name, OCI_INDEX)
        assert a.content.info(index).size == index_image.target.size
        with pytest.raises(NotFoundError, match=f"content {index} not found in namespace b"):
            b.content.info(index)
        assert index not in b.gc().deleted_blobs  # a's image keeps it
        assert f"image {name} not found in b" in pyctr.refused("b", "images", "inspect", name)

        with secret.archive.open("rb") as stream:
            imported = b.import_archive(stream, base_name="example.com/secret", index_name=name)
        assert imported[-1].target.digest == index
        a.remove_image(name)
        assert index not in a.gc().deleted_blobs  # b's record of its own import keeps the blob
        with pytest.raises(NotFoundError):
            a.content.info(index)
        (entry,) = json.loads(b.content.read_blob(index))["manifests"]
        assert entry["digest"] == secret.image.manifest_digest
        assert pyctr("b", "images", "ls", "-q").stdout.split() == [name, SECRET_IMAGE]


def test_an_image_claiming_another_namespace_s_layers_cannot_reach_their_snapshot(
    pyctr: Pyctr, secret: Built, tmp_path: Path
) -> None:
    """A ChainID is only a name: b's config lists the diff IDs of a's layers over a decoy layer."""
    _import(pyctr, "a", secret.archive)
    pyctr("a", "run", "--rm", SECRET_IMAGE, "s1", "true")  # a's snapshots of its layers exist
    decoy = _build(tmp_path / "decoy", {"decoy": b"nothing\n"}, claimed_diff_id=secret.diff_ids[1])
    assert decoy.chains == secret.chains
    _import(pyctr, "b", decoy.archive, "example.com/decoy:latest")  # every blob it names is there
    run = pyctr("b", "run", "--rm", "example.com/decoy:latest", "s2", "cat", "/secret", check=False)
    assert run.returncode == 1 and SECRET not in run.stdout + run.stderr
    assert f"digest mismatch: expected {secret.diff_ids[1]}" in run.stderr
    listed = pyctr("b", "snapshots", "ls").stdout
    assert secret.chains[1] not in listed
    assert secret.chains[0] in listed  # busybox's layer: b holds that blob itself, and it is checked
    assert secret.chains[1] in pyctr("a", "snapshots", "ls").stdout


def test_snapshots_are_listed_mounted_and_removed_only_in_their_namespace(
    pyctr: Pyctr, secret: Built
) -> None:
    _import(pyctr, "a", secret.archive)
    pyctr("a", "run", "-d", SECRET_IMAGE, "web", "sleep", "600")
    top = secret.chains[1]
    assert {top, "a/web"} <= set(_snapshot_keys(pyctr, "a"))
    assert _snapshot_keys(pyctr, "b") == []
    for key in (top, "a/web"):
        assert f"snapshot {key} not found in namespace b" in pyctr.refused("b", "snapshots", "rm", key)
    with pyctr.client("a") as a, pyctr.client("b") as b:
        with pytest.raises(NotFoundError, match="snapshot a/web not found in namespace b"):
            b.snapshot_mounts("a/web")
        (mount,) = a.snapshot_mounts("a/web")
        assert mount.type == "overlay"

    # b unpacks the same layers: the data is shared, each namespace has its own records of it.
    _import(pyctr, "b", secret.archive)
    pyctr("b", "run", "--rm", SECRET_IMAGE, "s1", "true")
    assert top in _snapshot_keys(pyctr, "b")
    pyctr("b", "images", "rm", SECRET_IMAGE)
    pyctr("b", "snapshots", "rm", top)  # b's record only: a's container stands on that snapshot
    assert top not in _snapshot_keys(pyctr, "b") and top in _snapshot_keys(pyctr, "a")
    assert pyctr("a", "tasks", "exec", "--exec-id", "e1", "web", "cat", "/secret").stdout == SECRET


def _snapshot_keys(pyctr: Pyctr, namespace: str) -> list[str]:
    return [line.split()[0] for line in pyctr(namespace, "snapshots", "ls").stdout.splitlines()[1:]]


# --------------------------------------------------------------------------------------------------
# Containers, tasks and leases


def test_containers_and_tasks_of_the_same_id_are_each_their_namespace_s(pyctr: Pyctr, secret: Built) -> None:
    for namespace in ("a", "b"):
        _import(pyctr, namespace, secret.archive)
        pyctr(namespace, "run", "-d", SECRET_IMAGE, "web", "sh", "-c", f"echo {namespace}; sleep 600")
    pids = {namespace: _task(pyctr, namespace, "web")[1] for namespace in ("a", "b")}
    assert pids["a"] != pids["b"]
    assert pyctr("c", "containers", "ls", "-q").stdout == "" and pyctr("c", "tasks", "ls", "-q").stdout == ""
    for command in (("containers", "rm", "web"), ("tasks", "kill", "web"), ("tasks", "rm", "web")):
        assert "web not found in c" in pyctr.refused("c", *command)
    with pyctr.client("c") as c:
        with pytest.raises(NotFoundError):
            c.containers.get("web")
        with pytest.raises(NotFoundError):
            c.tasks.get("web")

    pyctr("b", "tasks", "kill", "-s", "SIGKILL", "web")
    deadline = time.monotonic() + 30
    while _task(pyctr, "b", "web")[2] != "STOPPED":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert _task(pyctr, "a", "web")[1:3] == [pids["a"], "RUNNING"]
    pyctr("b", "containers", "rm", "web")
    assert pyctr("a", "containers", "ls", "-q").stdout == "web\n"
    assert pyctr("a", "tasks", "logs", "web").stdout == "a\n"
    assert pyctr("b", "containers", "ls", "-q").stdout == ""


def _task(pyctr: Pyctr, namespace: str, task_id: str) -> list[str]:
    rows = [line.split() for line in pyctr(namespace, "tasks", "ls").stdout.splitlines()[1:]]
    (row,) = [row for row in rows if row[0] == task_id]
    return row


def test_leases_are_their_namespace_s_and_keep_its_content_from_any_gc(pyctr: Pyctr) -> None:
    data = b"held by a's lease"
    digest = _sha256(data)
    with pyctr.client("a") as a, pyctr.client("b") as b:
        with a.lease() as lease_id:
            a.content.with_lease(lease_id).write_blob("leased", data, len(data), digest)
            assert lease_id in pyctr("a", "leases", "ls").stdout
            assert pyctr("b", "leases", "ls").stdout.splitlines()[1:] == []
            assert b.metadata.leases.list("b") == []
            assert b.gc().deleted_blobs == ()  # an unreferenced blob, but a's lease holds it
            assert a.content.read_blob(digest) == data
        assert b.gc().deleted_blobs == (digest,)


# --------------------------------------------------------------------------------------------------
# GC


def test_gc_keeps_what_any_namespace_references_and_removes_the_rest_wherever_it_runs(
    pyctr: Pyctr, secret: Built
) -> None:
    for namespace in ("a", "b"):
        _import(pyctr, namespace, secret.archive)
        pyctr(namespace, "run", "--rm", SECRET_IMAGE, "s1", "true")
    pyctr("a", "images", "rm", SECRET_IMAGE)
    assert pyctr("a", "gc").stdout.startswith("deleted 0 blobs (0 bytes)")
    assert pyctr("b", "run", "--rm", SECRET_IMAGE, "s2", "cat", "/secret").stdout == SECRET
    assert _snapshot_keys(pyctr, "a") == []  # a's records went; the data stays for b's
    assert set(secret.chains) <= set(_snapshot_keys(pyctr, "b"))

    pyctr("b", "images", "rm", SECRET_IMAGE)
    assert pyctr("c", "gc").stdout.startswith("deleted 4 blobs")  # from a namespace holding nothing
    assert not any((pyctr.root / "content" / "blobs" / "sha256").iterdir())
    with pyctr.client("c") as c:
        assert c.snapshotter().walk() == []  # the data went with the last namespace's records


def test_a_digest_named_without_a_record_keeps_no_other_namespace_s_blob(tmp_path: Path) -> None:
    """b's index lists a manifest only a holds (an entry for a platform b did not pull, say): the blob
    stays while a keeps it, and goes with a's record, whatever b's index says."""
    store, content = MetadataStore(tmp_path / "metadata"), ContentStore(tmp_path / "content")
    manifest = b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]}'
    kept = Descriptor("application/vnd.oci.image.manifest.v1+json", _sha256(manifest), len(manifest))
    content.write_blob("m", manifest, kept.size, kept.digest)
    store.content.add("a", kept.digest, kept.size, {GC_ROOT: "a keeps it"})
    entry = {"mediaType": kept.media_type, "digest": kept.digest, "size": kept.size}
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry]}).encode()
    content.write_blob("i", index, len(index), _sha256(index))
    store.content.add("b", _sha256(index), len(index))
    store.images.create("b", Image("example.com/b:1", Descriptor(OCI_INDEX, _sha256(index), len(index))))
    assert collect(store, content).deleted_blobs == ()
    store.content.delete("a", kept.digest)
    assert collect(store, content).deleted_blobs == (kept.digest,)
    assert [info.digest for info in content.walk()] == [_sha256(index)]


# --------------------------------------------------------------------------------------------------
# A proxy in front of the registry that records what is asked of it


class _CountingProxy:
    """HTTP on 127.0.0.1 forwarding GET and HEAD to ``upstream``, each request recorded."""

    def __init__(self, upstream: str) -> None:
        self.requests: list[tuple[str, str]] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self) -> None:
                proxy.requests.append((self.command, self.path))
                upstream_conn = http.client.HTTPConnection(upstream, timeout=60)
                try:
                    headers = {
                        k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")
                    }
                    upstream_conn.request(self.command, self.path, headers=headers)
                    response = upstream_conn.getresponse()
                    body = response.read()
                finally:
                    upstream_conn.close()
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in ("connection", "keep-alive", "transfer-encoding", "date", "server"):
                        self.send_header(key, value)
                if response.getheader("Content-Length") is None:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_HEAD = _forward

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> _CountingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)

    def blob_fetches(self) -> dict[str, int]:
        """How many times each blob was downloaded (GET .../blobs/DIGEST)."""
        return dict(
            collections.Counter(
                path.rsplit("/", 1)[1]
                for method, path in self.requests
                if method == "GET" and "/blobs/" in path
            )
        )

    def manifest_fetches(self, digest: str) -> int:
        return sum(
            1 for method, path in self.requests if method == "GET" and path.endswith(f"/manifests/{digest}")
        )
