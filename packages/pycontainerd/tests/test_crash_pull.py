"""Crash consistency: ``pyctr images pull`` killed with SIGKILL at seeded random points (after a random
share of the layer bytes reached the store, or a random moment into the unpacking of a random layer)
and at a chosen one (mid-extraction), then a new pull and GC.

The image (busybox and three layers of incompressible random bytes, built offline and pushed to a
private docker-registry on 127.0.0.1) takes long enough to pull that the kills land mid-download and
mid-unpack. After every kill the store must hold only whole blobs, each under the digest of its bytes;
after the last, a pull completes with every snapshot of the image whole, and GC collects what the
crashed pulls left: their leases, ingests, extraction snapshots and blobs.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import random
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyrunc_acceptance_oci_images as oci_images  # registered by conftest.py
import pytest

from pycontainerd import Client, chain_id
from pycontainerd._metadata.owner import LEASE_OWNER
from pycontainerd._snapshots import Kind

SEED = 20261128
ROUNDS = 8
LAYER_SIZES = (4 << 20, 3 << 20, 4 << 20)


@pytest.fixture(scope="module")
def layered(registry: Any, build_layered: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Any]:
    image = build_layered(tmp_path_factory.mktemp("layered") / "oci", LAYER_SIZES, seed=SEED)
    ref: str = oci_images.push_to_registry(image.image, registry.address, "crash/layered")
    return ref, image


def pyctr_argv(root: Path, *args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pycontainerd._cli",
        "--root",
        str(root),
        "--state",
        str(root / "state"),
        *args,
    ]


def pull(root: Path, ref: str) -> None:
    done = subprocess.run(
        pyctr_argv(root, "images", "pull", ref), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"pyctr images pull: {done.stderr}"


def assert_blobs_whole(root: Path) -> set[str]:
    """Every file under blobs/ is named by the sha256 of its bytes; returns the digests."""
    found = set()
    for entry in (root / "content" / "blobs" / "sha256").iterdir():
        assert re.fullmatch("[0-9a-f]{64}", entry.name), f"not a blob: {entry}"
        assert hashlib.sha256(entry.read_bytes()).hexdigest() == entry.name, f"{entry} is not its digest"
        found.add(f"sha256:{entry.name}")
    return found


def assert_snapshots_sane(client: Client, chains: list[str]) -> list[str]:
    """Committed snapshots are the image's ChainIDs; anything else is a pull's extraction in progress."""
    leftovers = []
    for info in client.snapshotter().walk():
        if info.kind is Kind.COMMITTED:
            assert info.name in chains, f"committed snapshot {info.name} is no ChainID of the image"
        else:
            assert info.kind is Kind.ACTIVE and info.name.startswith("extract-"), info
            leftovers.append(info.name)
    return leftovers


def assert_rootfs_whole(client: Client, image: Any, where: Path) -> None:
    """A view of the top snapshot holds busybox and every random file, byte for byte."""
    snapshotter = client.snapshotter()
    (mount,) = snapshotter.view("check-view", chain_id(list(image.diff_ids)))
    where.mkdir()
    try:
        mount.mount(where)
        try:
            assert (where / "bin" / "busybox").is_file()
            for path, data in image.files.items():
                assert (where / path).read_bytes() == data, path
        finally:
            mount.unmount(where)
    finally:
        snapshotter.remove("check-view")
        where.rmdir()


def _ingested_at_least(root: Path, size: float) -> bool:
    """Whether the store's ingests hold ``size`` bytes by now (read from the files: the pull holds
    the locks)."""
    total = 0
    for data in (root / "content" / "ingest").glob("*/data"):
        with contextlib.suppress(FileNotFoundError):  # committed meanwhile
            total += data.stat().st_size
    return total >= size


def _snapshot_dirs_at_least(root: Path, count: int) -> bool:
    directory = root / "snapshots" / "overlayfs" / "snapshots"
    return directory.is_dir() and len(list(directory.iterdir())) >= count


def _kill_when(process: subprocess.Popen[bytes], condition: Callable[[], bool], wait: float = 0.0) -> None:
    """SIGKILL ``process`` once ``condition`` holds (then ``wait`` seconds more), unless it ends first."""
    deadline = time.monotonic() + 120
    while process.poll() is None and not condition():
        assert time.monotonic() < deadline, "the pull neither ended nor got there in 120 s"
        time.sleep(0.002)
    time.sleep(wait)
    process.send_signal(signal.SIGKILL)
    process.wait(30)


def test_pulls_killed_at_random_points_leave_whole_blobs_and_the_next_pull_and_gc_finish(
    layered: tuple[str, Any], tmp_path: Path
) -> None:
    """Even rounds kill after a random share of the layer bytes reached the ingests (mid-download),
    odd rounds a random moment after the k-th snapshot directory appeared (mid-unpack)."""
    ref, image = layered
    root = tmp_path / "root"
    chains = [chain_id(list(image.diff_ids[: n + 1])) for n in range(len(image.diff_ids))]
    total = sum(LAYER_SIZES)
    rng = random.Random(SEED)
    seen_ingests = seen_extractions = collected = 0
    for round_ in range(ROUNDS):
        process = subprocess.Popen(
            pyctr_argv(root, "images", "pull", ref), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        if round_ % 2 == 0:
            _kill_when(process, functools.partial(_ingested_at_least, root, rng.uniform(0.05, 0.95) * total))
        else:
            k = rng.randint(1, len(chains))
            _kill_when(
                process, functools.partial(_snapshot_dirs_at_least, root, k), wait=rng.uniform(0.0, 0.1)
            )
        assert_blobs_whole(root)
        with Client(root, root / "state") as client:
            seen_ingests += bool(client.content.list_statuses())
            seen_extractions += bool(assert_snapshots_sane(client, chains))
            completed = client.images()  # the pull ended before the kill: start the next round afresh
            for finished in completed:
                client.remove_image(finished.name)
            if round_ % 4 == 1 or completed:
                # GC between crashes takes what the dead pulls left and must not break the next pull.
                collected += len(client.gc().deleted_leases)
                assert_blobs_whole(root)
                assert assert_snapshots_sane(client, chains) == []
                assert client.content.list_statuses() == []
    assert seen_ingests and seen_extractions, (
        f"the kills of {ROUNDS} rounds missed the download or the unpack"
    )

    pull(root, ref)
    with Client(root, root / "state") as client:
        assert [i.name for i in client.images()] == [ref]
        crashed = [
            lease for lease in client.metadata.leases.list(client.namespace) if LEASE_OWNER in lease.labels
        ]
        result = client.gc()
        assert len(result.deleted_leases) == len(crashed)
        assert collected + len(crashed) > 0, "no crashed pull's lease was ever collected"
        assert client.metadata.leases.list(client.namespace) == []
        assert client.content.list_statuses() == []
        wanted = {image.manifest_digest, image.image.config_digest, *image.layers}
        assert assert_blobs_whole(root) == wanted
        assert {record.digest for record in client.metadata.content.list(client.namespace)} == wanted
        assert assert_snapshots_sane(client, chains) == []
        assert sorted(info.name for info in client.snapshotter().walk()) == sorted(chains)
        assert sorted(r.key for r in client.metadata.snapshots.list(client.namespace)) == sorted(chains)
        assert_rootfs_whole(client, image, tmp_path / "rootfs")


_KILL_MID_UNPACK = textwrap.dedent(
    """
    import os, signal, sys
    import pycontainerd._archive.apply as archive
    from pycontainerd import Client

    real_apply = archive.apply_layer

    def apply_then_die(directory, stream, **kwargs):
        if "layer2" in str(sys.argv):  # the third layer: two are committed, one is half extracted
            stream.read(1 << 20)
            os.kill(os.getpid(), signal.SIGKILL)
        sys.argv.append("layer" + str(sum("layer" in a for a in sys.argv)))
        return real_apply(directory, stream, **kwargs)

    archive.apply_layer = apply_then_die  # what the client's unpacking imports
    with Client(sys.argv[1], sys.argv[1] + "/state") as client:
        client.pull(sys.argv[2])
    """
)


def test_a_pull_killed_mid_unpack_leaves_its_extraction_snapshot_to_gc(
    layered: tuple[str, Any], tmp_path: Path
) -> None:
    ref, image = layered
    root = tmp_path / "root"
    killed = subprocess.run(
        [sys.executable, "-c", _KILL_MID_UNPACK, str(root), ref], capture_output=True, text=True, timeout=120
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    chains = [chain_id(list(image.diff_ids[: n + 1])) for n in range(len(image.diff_ids))]
    with Client(root, root / "state") as client:
        (extraction,) = assert_snapshots_sane(client, chains)
        assert extraction.endswith(chains[2])
        records = {r.key: r for r in client.metadata.snapshots.list(client.namespace)}
        assert records[extraction].kind.value == "active" and records[extraction].parent == chains[1]
        (lease,) = client.metadata.leases.list(client.namespace)
        assert LEASE_OWNER in lease.labels
        held = {r.id for r in client.metadata.leases.resources(client.namespace, lease.id)}
        assert extraction in held
        assert client.images() == []

        result = client.gc()
        assert result.deleted_leases == ((client.namespace, lease.id),)
        assert (client.namespace, "overlayfs", extraction) in result.removed_snapshots
        assert client.snapshotter().walk() == []
        assert client.metadata.snapshots.list(client.namespace) == []
        assert assert_blobs_whole(root) == set()
        assert client.content.list_statuses() == []
