"""A pull unpacks while it downloads: a layer's extraction is under way before its blob is whole, the
blob still lands in the content store, and a blob whose digest turns out wrong at the end discards the
snapshot it was extracted into. Against a private docker-registry on 127.0.0.1; images built offline."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyrunc_acceptance_oci_images as oci_images  # registered by conftest.py
import pytest

from pycontainerd import Client, ContentError, NotFoundError, Progress, ProgressState, chain_id
from pycontainerd._archive import apply_dir
from pycontainerd._snapshots import Kind

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Client]:
    with Client(root=tmp_path / "root", state=tmp_path / "state") as opened:
        yield opened


def _chains(image: Any) -> list[str]:
    return [chain_id(list(image.diff_ids[: n + 1])) for n in range(len(image.diff_ids))]


def _extracted(observer: Client, chain: str, path: str) -> int:
    """Bytes of ``path`` in the extraction snapshot being made for ``chain`` (0 if none yet)."""
    snapshotter = observer.snapshotter()
    for info in snapshotter.walk():
        if info.kind is Kind.ACTIVE and info.name.endswith(f" {chain}"):
            directory, _ = apply_dir(snapshotter.mounts(info.name))
            target = directory / path
            return target.stat().st_size if target.exists() else 0
    return 0


def test_a_layer_is_extracted_while_its_blob_is_still_downloading(
    registry: Any, build_layered: Any, client: Client, tmp_path: Path
) -> None:
    image = build_layered(tmp_path / "oci", (8 << 20,), seed=11)
    ref = oci_images.push_to_registry(image.image, registry.address, "unpack/streamed")
    layer, chain = image.layers[1], _chains(image)[1]
    seen: list[int] = []
    halted = threading.Event()

    with Client(client.root, client.state) as observer:

        def progress(event: Progress) -> None:
            # Hold the download half-way and watch the unpacker make progress on the same layer.
            if event.digest != layer or event.state is not ProgressState.DOWNLOADING or halted.is_set():
                return
            if event.done < event.total // 2:
                return
            halted.set()
            with pytest.raises(NotFoundError):
                client.content.info(layer)  # the blob is not whole yet
            for _ in range(400):
                if extracted := _extracted(observer, chain, "data/layer1"):
                    seen.append(extracted)
                    return
                threading.Event().wait(0.05)

        pulled = client.pull(ref, progress=progress)
    assert halted.is_set()
    assert seen and 0 < seen[0] < len(image.files["data/layer1"]), (
        "nothing was extracted before the download ended"
    )
    assert pulled.target.digest == image.manifest_digest
    assert client.content.info(layer).size > 0  # and the blob went to the store all the same
    assert [info.name for info in client.snapshotter().walk()] == _chains(image)


def _registry_blob(registry: Any, digest: str) -> Path:
    hexdigest = digest.removeprefix("sha256:")
    return Path(registry.root) / "data/docker/registry/v2/blobs/sha256" / hexdigest[:2] / hexdigest / "data"


def test_a_blob_whose_digest_fails_at_the_end_discards_its_snapshot(
    registry: Any, build_layered: Any, client: Client, tmp_path: Path
) -> None:
    image = build_layered(tmp_path / "oci", (2 << 20,), seed=12)
    ref = oci_images.push_to_registry(image.image, registry.address, "unpack/lying")
    # Change the gzip header's MTIME field: the layer inflates to the same tar (same DiffID), but the
    # blob's bytes no longer hash to its digest, which only shows once the last byte is in.
    blob = _registry_blob(registry, image.layers[1])
    data = bytearray(blob.read_bytes())
    data[4] ^= 0xFF
    blob.write_bytes(bytes(data))

    with pytest.raises(ContentError, match="digest mismatch"):
        client.pull(ref)
    chains = _chains(image)
    assert [info.name for info in client.snapshotter().walk()] == chains[:1]  # the busybox layer only
    with pytest.raises(NotFoundError):
        client.content.info(image.layers[1])
    assert client.content.list_statuses() == []  # the ingest with the wrong bytes is gone too
    assert client.images() == []
    assert client.metadata.leases.list(client.namespace) == []
    client.gc()  # the image was never recorded: everything the pull made goes
    assert client.snapshotter().walk() == []
    assert client.metadata.snapshots.list(client.namespace) == []


def test_without_unpack_every_layer_is_fetched_and_nothing_extracted(
    registry: Any, build_layered: Any, client: Client, tmp_path: Path
) -> None:
    # More layers than the pull fetches at once: the last ones wait for a free download thread.
    image = build_layered(tmp_path / "oci", (64 << 10,) * 6, seed=13)
    ref = oci_images.push_to_registry(image.image, registry.address, "unpack/none")
    pulled = client.pull(ref, unpack=False)
    assert pulled.target.digest == image.manifest_digest
    for layer in image.layers:
        client.content.info(layer)
    assert client.snapshotter().walk() == []
    # Unpacking later, from the store, gives the same snapshots a streamed pull makes.
    assert client.unpack(ref) == _chains(image)[-1]
    assert [info.name for info in client.snapshotter().walk()] == _chains(image)
