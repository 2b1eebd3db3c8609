"""A container's files from outside: :func:`pycontainerd.extract_tar` (an archive into a directory of a
root filesystem, never outside it), ``ContainerService.rootfs`` (the root as its processes see it, or
the snapshot mounted for a moment) and ``Client.commit`` (the container's changes as a new image that
runs)."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import tarfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pyrunc_acceptance_oci_images as oci_images  # registered by conftest.py
import pytest

from pycontainerd import Client, FailedPreconditionError, LayerError, UnsafeLayerError, extract_tar
from pycontainerd.oci import with_args, with_mounts

if TYPE_CHECKING:
    from collections.abc import Iterator


def _tar(*entries: tarfile.TarInfo | tuple[tarfile.TarInfo, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for entry in entries:
            if isinstance(entry, tuple):
                t.addfile(entry[0], io.BytesIO(entry[1]))
            else:
                t.addfile(entry)
    return buf.getvalue()


def _file(name: str, data: bytes = b"x", uid: int = 0) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.uid, info.gid = len(data), 0o640, uid, uid
    return info, data


def _entry(name: str, kind: bytes, target: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = kind, target, 0o755
    return info


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A root filesystem with /tmp, a symlink /escape -> /, and a file outside it beside."""
    (tmp_path / "root" / "tmp").mkdir(parents=True)
    (tmp_path / "root" / "tmp" / "dir").mkdir()
    (tmp_path / "root" / "tmp" / "file").write_text("old")
    os.symlink("/", tmp_path / "root" / "escape")
    os.symlink("../../..", tmp_path / "root" / "tmp" / "up")
    (tmp_path / "outside").mkdir()
    return tmp_path / "root"


def test_an_archive_goes_below_the_directory_with_whiteout_names_as_files(root: Path) -> None:
    data = _tar(_entry("sub", tarfile.DIRTYPE), _file("sub/a", b"A"), _file(".wh.file"), _file("./b"))
    assert extract_tar(root, io.BytesIO(data), directory="/tmp") == 4
    assert (root / "tmp" / "sub" / "a").read_bytes() == b"A"
    assert (root / "tmp" / ".wh.file").exists() and (root / "tmp" / "file").read_text() == "old"
    assert (root / "tmp" / "b").exists()


@pytest.mark.parametrize(
    "entries",
    [
        [_file("../../outside/x")],
        [_entry("link", tarfile.SYMTYPE, "/"), _file("link/outside/x")],
        [_entry("link", tarfile.SYMTYPE, "../../../.."), _file("link/outside/x")],
        [_file("up/outside/x")],
        [_file("/../outside/x")],
    ],
    ids=["dotdot", "absolute-symlink", "relative-symlink", "existing-symlink", "absolute-name"],
)
def test_nothing_is_written_outside_the_root(
    root: Path, entries: list[tarfile.TarInfo | tuple[tarfile.TarInfo, bytes]]
) -> None:
    try:
        extract_tar(root, io.BytesIO(_tar(*entries)), directory="/tmp")
    except UnsafeLayerError:
        pass  # refused: fine too
    assert list((root.parent / "outside").iterdir()) == []


def test_the_directory_itself_resolves_inside_the_root(root: Path) -> None:
    extract_tar(root, io.BytesIO(_tar(_file("x"))), directory="/escape/tmp/up")
    assert (root / "x").exists()
    assert list((root.parent / "outside").iterdir()) == []


def test_no_overwrite_dir_non_dir_refuses_both_ways(root: Path) -> None:
    with pytest.raises(LayerError, match='cannot overwrite directory "/tmp/dir" with non-directory "/tmp"'):
        extract_tar(root, io.BytesIO(_tar(_file("dir"))), directory="/tmp", no_overwrite_dir_non_dir=True)
    with pytest.raises(LayerError, match='cannot overwrite non-directory "/tmp/file" with directory'):
        extract_tar(
            root,
            io.BytesIO(_tar(_entry("file", tarfile.DIRTYPE))),
            directory="/tmp",
            no_overwrite_dir_non_dir=True,
        )
    extract_tar(root, io.BytesIO(_tar(_file("dir"))), directory="/tmp")  # replaced without the option
    assert (root / "tmp" / "dir").is_file()


def test_owner_replaces_the_headers_and_devices_are_refused(root: Path) -> None:
    extract_tar(root, io.BytesIO(_tar(_file("mine", uid=5))), directory="/tmp", owner=(7, 8))
    st = (root / "tmp" / "mine").stat()
    assert (st.st_uid, st.st_gid) == (7, 8)
    device = _entry("null", tarfile.CHRTYPE)
    with pytest.raises(UnsafeLayerError, match="device nodes"):
        extract_tar(root, io.BytesIO(_tar(device)), directory="/tmp")


@pytest.mark.parametrize("compress", [gzip.compress, bz2.compress, lzma.compress], ids=["gz", "bz2", "xz"])
def test_compressed_archives(root: Path, compress: object) -> None:
    assert callable(compress)
    extract_tar(root, io.BytesIO(compress(_tar(_file("z", b"zz")))), directory="/tmp")
    assert (root / "tmp" / "z").read_bytes() == b"zz"


# -- containers -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def archive(layout: object, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path: Path = oci_images.write_oci_archive(layout, tmp_path_factory.mktemp("archive") / "busybox.tar")
    return path


@pytest.fixture
def client(tmp_path: Path, archive: Path) -> Iterator[Client]:
    with Client(root=tmp_path / "root", state=tmp_path / "state") as opened:
        with archive.open("rb") as f:
            opened.import_archive(f)
        yield opened
        for task in opened.tasks.list():
            task.delete(force=True)
        for container in opened.containers.list():
            opened.containers.delete(container.id, force=True)


def _mounts() -> str:
    with open("/proc/self/mountinfo") as f:
        return f.read()


def test_rootfs_of_a_created_a_running_and_a_stopped_container(client: Client) -> None:
    image = client.images()[0].name
    tmpfs = {"destination": "/mnt", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid"]}
    client.containers.create(
        "c1",
        image,
        with_args(["sh", "-c", "echo hi > /made; touch /mnt/intmpfs; sleep 60"]),
        with_mounts([tmpfs]),
    )
    before = _mounts()
    with client.containers.rootfs("c1") as path:
        assert os.path.exists(f"{path}/bin/sh")
        assert path in _mounts()
    assert _mounts() == before  # the temporary mount is gone
    task = client.tasks.create("c1")
    task.start()
    for _ in range(500):
        with client.containers.rootfs("c1") as path:
            if os.path.exists(f"{path}/mnt/intmpfs"):
                break
        time.sleep(0.02)
    with client.containers.rootfs("c1") as path:
        assert path == f"/proc/{task.pid}/root/."
        assert Path(path, "made").read_text() == "hi\n"
        assert os.path.exists(f"{path}/mnt/intmpfs")  # the container's own mounts are seen
    with client.containers.rootfs("c1", mounts=False) as path:
        assert path == str(task.directory / "rootfs")
        assert Path(path, "made").read_text() == "hi\n"
        assert not os.path.exists(f"{path}/mnt/intmpfs")
    task.kill(9)
    task.wait()
    with client.containers.rootfs("c1") as path:
        assert path == str(task.directory / "rootfs")
        assert Path(path, "made").read_text() == "hi\n"


def test_commit_makes_an_image_that_runs_with_the_changes(client: Client) -> None:
    image = client.images()[0].name
    client.containers.create("c2", image, with_args(["sh", "-c", "echo new > /etc/added; rm /bin/ls"]))
    task = client.tasks.create("c2")
    task.start()
    assert task.wait().status == 0
    config = {"Cmd": ["cat", "/etc/added"], "Env": ["PATH=/bin"]}
    committed, config_desc = client.commit(
        "c2", "127.0.0.1:5000/committed:latest", config=config, comment="why", author="me"
    )
    assert committed.name == "127.0.0.1:5000/committed:latest"
    _, parsed = client.config(committed)
    assert config_desc.digest == client.config(committed)[0].digest
    assert parsed.config.cmd == ("cat", "/etc/added")
    assert parsed.author == "me" and parsed.history is not None and parsed.history[-1].comment == "why"
    _, base = client.config(client.image(image))
    assert parsed.rootfs.diff_ids[:-1] == base.rootfs.diff_ids
    task.delete()
    client.containers.create("c3", committed.name)
    run = client.tasks.create("c3")
    with run.attach() as io_:
        run.start()
        output = b"".join(data for _, data in io_.frames())
    assert output == b"new\n"
    run.delete()
    client.containers.create("c4", committed.name, with_args(["ls"]))
    with client.containers.rootfs("c4") as path:
        assert not os.path.exists(f"{path}/bin/ls")  # the whiteout came along


def test_commit_needs_an_upper_directory(tmp_path: Path, archive: Path) -> None:
    with Client(root=tmp_path / "root", state=tmp_path / "state", snapshotter="native") as client:
        with archive.open("rb") as f:
            client.import_archive(f)
        client.containers.create("n1", client.images()[0].name)
        try:
            with pytest.raises(FailedPreconditionError, match="no upper directory"):
                client.commit("n1", "127.0.0.1:5000/x:1")
        finally:
            client.containers.delete("n1")
