"""Odd images, end to end on the real kernel: an image without layers, hostile image names, and layers
and blobs that would fill the disk.

- An image whose manifest has no layers gets an empty root (a snapshot with no parent), never a
  snapshot another image left behind.
- Every name a user or an archive gives an image goes through the reference grammar ``pull`` uses.
- A pull or an import stops before the store's filesystem falls under its reserve of free blocks and
  inodes (5 % by default, ``--min-free``): a gzip bomb, an inode bomb, and blobs larger than the disk,
  on a small tmpfs the test mounts as the store root; the store is consistent afterwards.
"""

from __future__ import annotations

import gc
import gzip
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyrunc_acceptance_oci_images as oci_images  # registered by conftest.py
import pytest

from pycontainerd import Client, ResourceExhaustedError
from pycontainerd._snapshots import Kind
from pycontainerd.oci import with_args

PYCTR = str(Path(sys.executable).with_name("pyctr"))
EPOCH = oci_images.EPOCH


def pyctr(root: Path, *args: str, state: Path | None = None) -> subprocess.CompletedProcess[str]:
    state = state or root.parent / "state"
    return subprocess.run(
        [PYCTR, "--root", str(root), "--state", str(state), *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _tar(entries: list[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in entries:
            info.mtime = EPOCH
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _file(name: str, size: int = 0) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size, info.mode = size, 0o644
    return info, b"\0" * size


def write_layout(directory: Path, layers: list[bytes], *, tag: str = "latest") -> Any:
    """An OCI layout in ``directory``: ``layers`` (uncompressed tars, gzip'd here), linux/amd64."""
    blobs = directory / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def put(data: bytes) -> dict[str, Any]:
        (blobs / _digest(data).removeprefix("sha256:")).write_bytes(data)
        return {"digest": _digest(data), "size": len(data)}

    compressed = [gzip.compress(layer, compresslevel=9, mtime=0) for layer in layers]
    config = put(
        json.dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "config": {"Env": [oci_images.PATH_ENV], "Cmd": ["sh"]},
                "rootfs": {"type": "layers", "diff_ids": [_digest(layer) for layer in layers]},
            }
        ).encode()
    )
    manifest = put(
        json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": oci_images.MANIFEST_MEDIA_TYPE,
                "config": {"mediaType": oci_images.CONFIG_MEDIA_TYPE, **config},
                "layers": [{"mediaType": oci_images.LAYER_MEDIA_TYPE, **put(blob)} for blob in compressed],
            }
        ).encode()
    )
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": oci_images.MANIFEST_MEDIA_TYPE,
                **manifest,
                "platform": {"architecture": "amd64", "os": "linux"},
                "annotations": {oci_images.REF_NAME: tag},
            }
        ],
    }
    (directory / "index.json").write_text(json.dumps(index))
    (directory / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    return oci_images.OCIImage(directory, tag, manifest["digest"], config["digest"], "", "")


# -- an image without layers ---------------------------------------------------------------------


def test_an_image_without_layers_gets_an_empty_root(layout: Any, tmp_path: Path) -> None:
    root = tmp_path / "root"
    busybox = oci_images.write_oci_archive(layout, tmp_path / "busybox.tar")
    empty = oci_images.write_oci_archive(write_layout(tmp_path / "empty", []), tmp_path / "empty.tar")
    assert pyctr(root, "images", "import", "--base-name", "example.com/bb", str(busybox)).returncode == 0
    assert pyctr(root, "images", "import", "--base-name", "example.com/empty", str(empty)).returncode == 0
    with Client(root, tmp_path / "state") as client:
        client.unpack("example.com/bb:latest")  # busybox's snapshot is there to be (wrongly) chosen
        assert client.unpack("example.com/empty:latest") is None
        container = client.containers.create("empty", "example.com/empty:latest", with_args(["/bin/sh"]))
        try:
            info = client.snapshotter().stat(container.snapshot_key)
            assert info.kind is Kind.ACTIVE and info.parent is None
            where = tmp_path / "rootfs"
            where.mkdir()
            (mount,) = client.snapshotter().mounts(container.snapshot_key)
            mount.mount(where)
            try:
                assert os.listdir(where) == []
            finally:
                mount.unmount(where)
        finally:
            client.containers.delete("empty")
    # ``pyctr run`` finds no shell in it: a clean error, not busybox's.
    ran = pyctr(root, "run", "--rm", "example.com/empty:latest", "empty", "/bin/sh", "-c", "echo busybox")
    assert (ran.returncode, ran.stdout) == (1, "")
    assert re.fullmatch(r'pyctr: [^\n]*"/bin/sh"[^\n]* not found[^\n]*\n', ran.stderr), ran.stderr
    assert pyctr(root, "containers", "ls", "-q").stdout == ""


# -- names ---------------------------------------------------------------------------------------

BAD_NAMES = ["../../../etc/passwd", "a b", "http://evil/x", "Upper", "x:y:z", "a" * 300, "é:1", "busybox:1\n"]


@pytest.fixture
def imported(layout: Any, tmp_path: Path) -> Path:
    root = tmp_path / "root"
    archive = oci_images.write_oci_archive(layout, tmp_path / "busybox.tar")
    assert pyctr(root, "images", "import", "--base-name", "example.com/bb", str(archive)).returncode == 0
    return root


@pytest.mark.parametrize("name", BAD_NAMES)
def test_pyctr_refuses_a_bad_image_name_everywhere(imported: Path, tmp_path: Path, name: str) -> None:
    root = imported
    archive = tmp_path / "busybox.tar"
    for args, what in [
        (["images", "tag", "example.com/bb:latest", name], "tag target"),
        (["images", "import", "--base-name", name, str(archive)], "base name"),
        (["images", "import", "--index-name", name, str(archive)], "index name"),
        (["images", "export", str(tmp_path / "out.tar"), name], "image name"),
        (["images", "rm", name], "image name"),
        (["images", "inspect", name], "image name"),
    ]:
        result = pyctr(root, *args)
        assert result.returncode == 1, (args, result.stdout)
        assert re.fullmatch(f"pyctr: {what}[^\n]*\n", result.stderr), (args, result.stderr)
    assert pyctr(root, "images", "ls", "-q").stdout.split() == ["example.com/bb:latest"]


def test_names_an_archive_gives_go_through_the_grammar(layout: Any, tmp_path: Path) -> None:
    index = json.loads((layout.directory / "index.json").read_text())
    index["manifests"][0]["annotations"] = {"io.containerd.image.name": "../../../etc/passwd"}
    archive = tmp_path / "hostile.tar"
    with tarfile.open(archive, "w") as tar:
        for name, data in [
            ("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'),
            ("index.json", json.dumps(index).encode()),
            *(
                (f"blobs/sha256/{p.name}", p.read_bytes())
                for p in (layout.directory / "blobs/sha256").iterdir()
            ),
        ]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    root = tmp_path / "root"
    result = pyctr(root, "images", "import", str(archive))
    assert result.returncode == 1
    assert result.stderr == (
        "pyctr: index.json manifests[0].annotations['io.containerd.image.name']: "
        "'../../../etc/passwd': invalid registry host '..'\n"
    )
    assert pyctr(root, "images", "ls", "-q").stdout == ""
    assert pyctr(root, "gc").returncode == 0
    assert not any((root / "content" / "blobs" / "sha256").iterdir())  # nothing held the blobs


def test_index_name_keeps_the_archives_index(imported: Path, tmp_path: Path, layout: Any) -> None:
    result = pyctr(
        imported, "images", "import", "--index-name", "example.com/all:v1", str(tmp_path / "busybox.tar")
    )
    assert result.returncode == 0, result.stderr
    assert pyctr(imported, "images", "ls", "-q").stdout.split() == [
        "docker.io/library/latest:latest",
        "example.com/all:v1",
        "example.com/bb:latest",
    ]
    inspected = json.loads(pyctr(imported, "images", "inspect", "example.com/all:v1").stdout)
    assert inspected["target"]["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert inspected["platforms"] == [{"architecture": "amd64", "os": "linux"}]


# -- the disk reserve ----------------------------------------------------------------------------

SMALL_BLOCKS, SMALL_INODES = 4096, 4096  # 16 MiB of 4 KiB pages: 5 % is 205 blocks and 205 inodes


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB tmpfs of 4096 inodes, mounted for the test and unmounted after it."""
    where = tmp_path / "small"
    where.mkdir()
    options = f"size={SMALL_BLOCKS * 4}k,nr_inodes={SMALL_INODES},mode=0711"
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], check=True, timeout=30)
    try:
        yield where
    finally:
        # A Client keeps its metadata store's sqlite connection open until it is collected (Client and
        # its services refer to each other): collect it, or the filesystem is busy.
        gc.collect()
        subprocess.run(["umount", str(where)], check=True, timeout=30)


def _above_reserve(path: Path) -> None:
    st = os.statvfs(path)
    assert st.f_bavail >= 0.05 * st.f_blocks and st.f_favail >= 0.05 * st.f_files


def _assert_consistent(client: Client, images: list[str]) -> None:
    """Nothing of the failed pull or import is left but what GC collects, and GC collects it."""
    assert client.content.list_statuses() == []  # no ingest kept: the blob could never fit
    assert client.metadata.leases.list(client.namespace) == []
    assert [image.name for image in client.images()] == images
    assert all(info.kind is Kind.COMMITTED for info in client.snapshotter().walk())  # no extraction
    assert not client.gc().errors
    assert client.snapshotter().walk() == []  # no image was unpacked whole
    _above_reserve(client.root)


def test_writers_at_once_share_the_room_above_the_reserve(small_fs: Path) -> None:
    # A pull downloads and unpacks at once: guards counting the same room each would overshoot it.
    from pycontainerd._reserve import SpaceGuard

    guards = [SpaceGuard(small_fs, 0.05) for _ in range(8)]
    files = [(small_fs / f"w{i}").open("wb") for i in range(len(guards))]
    try:
        with pytest.raises(ResourceExhaustedError, match="reserve of 5% free blocks"):
            while True:
                for guard, file in zip(guards, files, strict=True):
                    guard.charge(64 << 10)
                    file.write(os.urandom(64 << 10))
                    file.flush()
        _above_reserve(small_fs)
    finally:
        for i, file in enumerate(files):
            file.close()
            (small_fs / f"w{i}").unlink()


@pytest.fixture(scope="module")
def bombs(registry: Any, layout: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Images pushed to the test's registry: busybox and then a layer each that fills 16 MiB."""
    layers = {
        # 64 MiB of zeros in one file: ~64 KiB of gzip.
        "gzip-bomb": _tar([_file("bomb", 64 << 20)]),
        # 6000 empty files: more than the 4096 inodes there are.
        "inode-bomb": _tar([_file(f"f{i}") for i in range(6000)]),
        # 24 MiB that do not compress: the blob itself cannot be stored.
        "big-blob": _tar([(_file("random", 24 << 20)[0], os.urandom(24 << 20))]),
        # 8 MiB: fits under a reserve of 5 %, not under one of 50 %.
        "eight-mib": _tar([_file("eight", 8 << 20)]),
    }
    refs = {}
    busybox_layer = oci_images.layer_tar()
    for name, layer in layers.items():
        image = write_layout(tmp_path_factory.mktemp(name) / "oci", [busybox_layer, layer])
        refs[name] = oci_images.push_to_registry(image, registry.address, f"reserve/{name}")
    # 8 MiB on busybox, then one small file: a native snapshot of the last layer starts as a copy of
    # the 10 MiB below it, which does not fit.
    copied = [busybox_layer, layers["eight-mib"], _tar([_file("last", 1)])]
    image = write_layout(tmp_path_factory.mktemp("copied") / "oci", copied)
    refs["copied"] = oci_images.push_to_registry(image, registry.address, "reserve/copied")
    return refs


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (
            "gzip-bomb",
            r"layer entry 'bomb': the store's filesystem \(.*\) would fall under its reserve of 5% free bl",
        ),
        (
            "inode-bomb",
            r"layer entry 'f\d+': the store's filesystem \(.*\) would fall under its reserve of 5% free in",
        ),
        (
            "big-blob",
            r"(fetching|ingest|layer entry '[^']+'|copying snapshot)"
            r".* would fall under its reserve of 5% free blocks",
        ),
    ],
)
@pytest.mark.parametrize("snapshotter", ["overlayfs", "native"])
def test_a_pull_stops_before_the_reserve(
    bombs: dict[str, str], small_fs: Path, tmp_path: Path, image: str, message: str, snapshotter: str
) -> None:
    # The half-applied layer's snapshot goes (a native one: a copy of busybox's tree and the part of
    # the bomb that fitted), removed as every snapshot is, never through a mount.
    root = small_fs / "root"
    argv = ["--snapshotter", snapshotter, "images", "pull", "--plain-http", bombs[image]]
    result = pyctr(root, *argv, state=tmp_path / "state")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert re.search(message, result.stderr.splitlines()[-1]), result.stderr
    with Client(root, tmp_path / "state", snapshotter=snapshotter) as client:
        _assert_consistent(client, [])


def test_a_native_snapshot_s_copy_of_its_parent_counts_against_the_reserve(
    bombs: dict[str, str], small_fs: Path, tmp_path: Path
) -> None:
    root, state = small_fs / "root", tmp_path / "state"
    argv = ["images", "pull", "--plain-http", bombs["copied"]]
    result = pyctr(root, "--snapshotter", "native", *argv, state=state)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert re.fullmatch(
        r"pyctr: copying snapshot sha256:\w+ to apply layer sha256:\w+: the store's filesystem \(.*\) would"
        r" fall under its reserve of 5% free blocks .*\n",
        result.stderr.splitlines(keepends=True)[-1],
    ), result.stderr
    with Client(root, state, snapshotter="native") as client:
        _assert_consistent(client, [])
    # overlayfs copies nothing: the same image fits.
    assert pyctr(root, *argv, state=state).returncode == 0
    with Client(root, state) as client:
        assert [image.name for image in client.images()] == [bombs["copied"]]
        client.remove_image(bombs["copied"])
        assert not client.gc().errors


def test_min_free_sets_the_reserve(bombs: dict[str, str], small_fs: Path, tmp_path: Path) -> None:
    root = small_fs / "root"
    with (
        Client(root, tmp_path / "state", min_free=0.5) as client,
        pytest.raises(ResourceExhaustedError, match="reserve of 50% free blocks"),
    ):
        client.pull(bombs["eight-mib"], insecure_hosts=[bombs["eight-mib"].split("/")[0]])
    state = tmp_path / "state"
    refused = pyctr(
        root, "--min-free", "50%", "images", "pull", "--plain-http", bombs["eight-mib"], state=state
    )
    assert refused.returncode == 1 and "reserve of 50% free blocks" in refused.stderr
    pulled = pyctr(root, "--min-free", "5", "images", "pull", "--plain-http", bombs["eight-mib"], state=state)
    assert pulled.returncode == 0, pulled.stderr
    with Client(root, tmp_path / "state") as client:
        assert [image.name for image in client.images()] == [bombs["eight-mib"]]
        client.remove_image(bombs["eight-mib"])
        _assert_consistent(client, [])
    for bad in ("100", "-1", "x", "nan"):
        result = pyctr(root, "--min-free", bad, "images", "ls", state=state)
        assert result.returncode == 1 and result.stderr.startswith(f"pyctr: --min-free {bad!r}: a percentage")


def test_an_import_stops_before_the_reserve(layout: Any, small_fs: Path, tmp_path: Path) -> None:
    root = small_fs / "root"
    # An archive of one 20 MiB blob that does not compress: its ingest is dropped, not kept.
    big = tmp_path / "big.tar"
    data = os.urandom(20 << 20)
    with tarfile.open(big, "w") as tar:
        info = tarfile.TarInfo(f"blobs/sha256/{_digest(data).removeprefix('sha256:')}")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    state = tmp_path / "state"
    result = pyctr(root, "images", "import", str(big), state=state)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    # The ingest is the namespace's: named as on disk, <namespace>/<ref>.
    assert re.fullmatch(
        r"pyctr: ingest 'default/import-\w+' dropped at \d+ bytes: the store's filesystem .*\n", result.stderr
    )
    # A gzip bomb imports (its blob is small) and is refused when run unpacks it.
    bomb = write_layout(tmp_path / "bomb", [oci_images.layer_tar(), _tar([_file("bomb", 64 << 20)])])
    archive = oci_images.write_oci_archive(bomb, tmp_path / "bomb.tar")
    assert (
        pyctr(
            root, "images", "import", "--base-name", "example.com/bomb", str(archive), state=state
        ).returncode
        == 0
    )
    ran = pyctr(root, "run", "--rm", "example.com/bomb:latest", "boom", "true", state=state)
    assert ran.returncode == 1 and "Traceback" not in ran.stderr
    assert re.fullmatch(
        r"pyctr: layer entry 'bomb': the store's filesystem .* reserve of 5% free blocks .*\n", ran.stderr
    )
    with Client(root, state) as client:
        assert client.containers.list() == []
        _assert_consistent(client, ["example.com/bomb:latest"])
