"""Four ``pyctr images pull`` processes pulling the same image into one root at once, against a private
docker-registry on 127.0.0.1: all succeed, and the store ends with one blob per digest, one snapshot
per ChainID, no ingest, lease or extraction snapshot left over."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyrunc_acceptance_oci_images as oci_images  # registered by conftest.py
import pytest

from pycontainerd import Client, chain_id
from pycontainerd._snapshots import Kind

PULLERS = 4


@pytest.fixture(scope="module")
def layered(registry: Any, build_layered: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Any]:
    image = build_layered(tmp_path_factory.mktemp("layered") / "oci", (3 << 20, 2 << 20, 3 << 20), seed=4)
    ref: str = oci_images.push_to_registry(image.image, registry.address, "concurrency/layered")
    return ref, image


@pytest.mark.parametrize("snapshotter", ["overlayfs", "native"])
def test_four_processes_pulling_one_image_into_one_root_all_succeed(
    layered: tuple[str, Any], tmp_path: Path, snapshotter: str
) -> None:
    ref, image = layered
    root = tmp_path / "root"
    argv = [sys.executable, "-m", "pycontainerd._cli", "--root", str(root), "--state", str(root / "state")]
    pullers = [
        subprocess.Popen(
            [*argv, "--snapshotter", snapshotter, "images", "pull", ref],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(PULLERS)
    ]
    outcomes = [(p.wait(120), p.communicate()[1]) for p in pullers]
    assert [code for code, _ in outcomes] == [0] * PULLERS, outcomes

    chains = [chain_id(list(image.diff_ids[: n + 1])) for n in range(len(image.diff_ids))]
    wanted = {image.manifest_digest, image.image.config_digest, *image.layers}
    blobs = sorted((root / "content" / "blobs" / "sha256").iterdir())
    assert [f"sha256:{blob.name}" for blob in blobs] == sorted(wanted)
    for blob in blobs:
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name
    with Client(root, root / "state", snapshotter=snapshotter) as client:
        assert [i.name for i in client.images()] == [ref]
        infos = client.snapshotter().walk()
        assert [info.name for info in infos] == chains  # parents first, each once
        assert all(info.kind is Kind.COMMITTED for info in infos)
        records = client.metadata.snapshots.list(client.namespace, snapshotter)
        assert sorted(r.key for r in records) == sorted(chains)
        assert client.metadata.leases.list(client.namespace) == []
        assert client.content.list_statuses() == []
        # Nothing is left for GC: the four pulls cleaned up after themselves.
        result = client.gc()
        assert (result.deleted_blobs, result.removed_snapshots) == ((), ())
