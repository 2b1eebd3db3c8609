"""Tests of pycontainerd._snapshots: both snapshotters through the Snapshotter protocol, with every
mount really performed (and undone), layers applied with _archive, and the crash-safety cleanup."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import stat
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pycontainerd._archive import WhiteoutFormat, apply_dir
from pycontainerd._archive.apply import apply_layer
from pycontainerd._errors import (
    AlreadyExistsError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
)
from pycontainerd._snapshots import (
    Kind,
    Mount,
    NativeSnapshotter,
    OverlaySnapshotter,
    chain_id,
    mount_all,
    unmount_all,
)
from pycontainerd._snapshots.protocol import Snapshotter

Factory = Callable[[Path], Snapshotter]
FACTORIES: dict[str, Factory] = {"overlay": OverlaySnapshotter, "native": NativeSnapshotter}


def mounted_under(path: Path) -> list[str]:
    """Mount points at or under ``path``, from /proc/self/mountinfo."""
    prefix = os.fspath(path)
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    return [p for p in points if p == prefix or p.startswith(prefix + "/")]


@pytest.fixture
def nothing_left_mounted(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    assert mounted_under(tmp_path) == []


@pytest.fixture(params=sorted(FACTORIES))
def snapshotter(request: pytest.FixtureRequest, nothing_left_mounted: Path) -> Iterator[Snapshotter]:
    s = FACTORIES[request.param](nothing_left_mounted / "root")
    try:
        yield s
    finally:
        s.close()


@contextlib.contextmanager
def mounted(mounts: list[Mount], target: Path) -> Iterator[Path]:
    target.mkdir(exist_ok=True)
    mount_all(mounts, target)
    try:
        yield target
    finally:
        unmount_all(target)


# -- layers built in the test --------------------------------------------------------------------


def _d(name: str) -> tuple[tarfile.TarInfo, bytes]:
    t = tarfile.TarInfo(name)
    t.type, t.mode, t.mtime = tarfile.DIRTYPE, 0o755, 1_600_000_000
    return t, b""


def _f(name: str, data: bytes = b"", mode: int = 0o644) -> tuple[tarfile.TarInfo, bytes]:
    t = tarfile.TarInfo(name)
    t.size, t.mode, t.mtime = len(data), mode, 1_600_000_000
    return t, data


def _sym(name: str, target: str) -> tuple[tarfile.TarInfo, bytes]:
    t = tarfile.TarInfo(name)
    t.type, t.linkname, t.mtime = tarfile.SYMTYPE, target, 1_600_000_000
    return t, b""


def layer(*entries: tuple[tarfile.TarInfo, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
    return buf.getvalue()


LAYERS = [
    layer(
        _d("etc"),
        _f("etc/hostname", b"one\n"),
        _f("gone", b"deleted by layer 2\n"),
        _d("dir"),
        _f("dir/a", b"a\n"),
        _d("dir/sub"),
        _f("dir/sub/b", b"b\n"),
        _sym("link", "etc/hostname"),
        _f("bin-tool", b"#!/bin/sh\n", mode=0o755),
    ),
    layer(_f(".wh.gone"), _f("etc/motd", b"hello\n")),
    layer(_d("dir"), _f("dir/.wh..wh..opq"), _f("dir/c", b"c\n"), _f("etc/hostname", b"three\n")),
]

EXPECTED = {
    ".": ("dir", 0o755, None),
    "bin-tool": ("file", 0o755, b"#!/bin/sh\n"),
    "dir": ("dir", 0o755, None),
    "dir/c": ("file", 0o644, b"c\n"),
    "etc": ("dir", 0o755, None),
    "etc/hostname": ("file", 0o644, b"three\n"),
    "etc/motd": ("file", 0o644, b"hello\n"),
    "link": ("symlink", 0o777, b"etc/hostname"),
}


def tree(root: Path) -> dict[str, tuple[str, int, bytes | None]]:
    """What a directory shows: each path's type, permission bits and contents."""
    out: dict[str, tuple[str, int, bytes | None]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [".", *dirnames, *filenames]:
            p = Path(dirpath) / name if name != "." else Path(dirpath)
            if name == "." and p != root:
                continue
            rel = os.path.relpath(p, root)
            st = p.lstat()
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("symlink", stat.S_IMODE(st.st_mode), os.fsencode(os.readlink(p)))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", stat.S_IMODE(st.st_mode), None)
            elif stat.S_ISREG(st.st_mode):
                out[rel] = ("file", stat.S_IMODE(st.st_mode), p.read_bytes())
            else:
                out[rel] = ("other", st.st_mode, None)
    return out


def unpack(s: Snapshotter, layers: list[bytes]) -> str:
    """Unpack ``layers`` one snapshot each, as image unpacking will; returns the top ChainID."""
    parent: str | None = None
    diff_ids: list[str] = []
    for i, blob in enumerate(layers):
        key = f"extract-{i}"
        target, form = apply_dir(s.prepare(key, parent))
        if isinstance(s, OverlaySnapshotter) and parent is not None:
            assert form is WhiteoutFormat.OVERLAY
        if isinstance(s, NativeSnapshotter):
            assert form is WhiteoutFormat.NATIVE
        result = apply_layer(target, io.BytesIO(blob), whiteout_format=form)
        assert result.diff_id == "sha256:" + hashlib.sha256(blob).hexdigest()
        diff_ids.append(result.diff_id)
        name = chain_id(diff_ids)
        s.commit(name, key)
        parent = name
    assert parent is not None
    return parent


# -- tests ---------------------------------------------------------------------------------------


def test_chain_id_known_vector() -> None:
    a, b, c = ("sha256:" + ch * 64 for ch in "abc")
    # by hand: sha256("sha256:aaa… sha256:bbb…"), then sha256(that + " sha256:ccc…")
    ab = "sha256:ccd722928bd92476ba1745586fed6e45a102504185ad88cd89e01ff116fd146c"
    abc = "sha256:c1377126441fb2f5ec2c21ae2a60255331d639e830f0ee1b40a36e52d4c40588"
    assert ab == "sha256:" + hashlib.sha256(f"{a} {b}".encode()).hexdigest()
    assert chain_id([a]) == a
    assert chain_id([a, b]) == ab
    assert chain_id([a, b, c]) == abc
    with pytest.raises(InvalidArgumentError):
        chain_id([])
    with pytest.raises(InvalidArgumentError):
        chain_id(["nodigest"])


def test_prepare_commit_child_mounts(snapshotter: Snapshotter, tmp_path: Path) -> None:
    s = snapshotter
    with mounted(s.prepare("base", labels={"a": "1"}), tmp_path / "m1") as m:
        (m / "etc").mkdir()
        (m / "etc" / "hostname").write_text("parent\n")
        (m / "old").write_text("to be removed\n")
        assert mounted_under(m) == [os.fspath(m)]
    s.commit("base-c", "base", labels={"b": "2"})
    info = s.stat("base-c")
    assert (info.kind, info.name, info.parent, dict(info.labels)) == (
        Kind.COMMITTED,
        "base-c",
        None,
        {"b": "2"},
    )
    with pytest.raises(NotFoundError):
        s.stat("base")

    with mounted(s.prepare("child", "base-c"), tmp_path / "m2") as m:
        assert (m / "etc" / "hostname").read_text() == "parent\n"
        (m / "etc" / "hostname").write_text("child\n")
        (m / "old").unlink()
        (m / "new").write_text("new\n")
    # mounted again from mounts(): the child's changes stay, the parent is untouched
    with mounted(s.mounts("child"), tmp_path / "m3") as m:
        assert sorted(os.listdir(m)) == ["etc", "new"]
        assert (m / "etc" / "hostname").read_text() == "child\n"
    with mounted(s.view("look", "base-c"), tmp_path / "m4") as m:
        assert sorted(os.listdir(m)) == ["etc", "old"]
        assert (m / "etc" / "hostname").read_text() == "parent\n"
        with pytest.raises(OSError, match="Read-only"):
            (m / "x").write_text("no")
    assert s.stat("child").kind is Kind.ACTIVE and s.stat("child").parent == "base-c"
    assert s.stat("look").kind is Kind.VIEW


def test_three_layers_same_tree_for_both(nothing_left_mounted: Path) -> None:
    trees = {}
    for name, factory in FACTORIES.items():
        s = factory(nothing_left_mounted / name)
        try:
            top = unpack(s, LAYERS)
            assert [i.name for i in s.walk()] == [
                chain_id(["sha256:" + hashlib.sha256(b).hexdigest() for b in LAYERS[: n + 1]])
                for n in range(3)
            ]
            with mounted(s.view("top", top), nothing_left_mounted / f"{name}-view") as m:
                trees[name] = tree(m)
            # a writable child sees the same tree
            with mounted(s.prepare("rw", top), nothing_left_mounted / f"{name}-rw") as m:
                assert tree(m) == trees[name]
        finally:
            s.close()
    assert trees["overlay"] == EXPECTED
    assert trees["native"] == EXPECTED


def test_remove_refuses_parent_with_children(snapshotter: Snapshotter) -> None:
    s = snapshotter
    s.prepare("a")
    s.commit("a-c", "a")
    s.view("v", "a-c")
    with pytest.raises(FailedPreconditionError, match="children"):
        s.remove("a-c")
    s.remove("v")
    s.remove("a-c")
    assert s.walk() == []
    with pytest.raises(NotFoundError):
        s.remove("a-c")
    assert isinstance(s, OverlaySnapshotter | NativeSnapshotter)
    root = s.root
    assert os.listdir(root / "snapshots") == []


def test_usage_counts_bytes(snapshotter: Snapshotter) -> None:
    s = snapshotter
    target, _ = apply_dir(s.prepare("u"))
    empty = s.usage("u")
    (target / "data").write_bytes(os.urandom(1 << 20))
    (target / "d").mkdir()
    os.link(target / "data", target / "d" / "hardlink")  # counted once
    used = s.usage("u")
    assert used.inodes == empty.inodes + 2
    assert 1 << 20 <= used.size - empty.size < (1 << 20) + 64 * 1024
    s.commit("u-c", "u")
    assert s.usage("u-c") == used
    # a child over the committed one: overlay only holds changes, native holds a copy
    s.prepare("child", "u-c")
    child = s.usage("child")
    if isinstance(s, NativeSnapshotter):
        assert child == used
    else:
        assert child.size < 1 << 20


def test_errors(snapshotter: Snapshotter) -> None:
    s = snapshotter
    s.prepare("k")
    with pytest.raises(AlreadyExistsError):
        s.prepare("k")
    with pytest.raises(NotFoundError):
        s.prepare("x", "missing")
    with pytest.raises(InvalidArgumentError, match="not committed"):
        s.prepare("x", "k")
    s.view("v")
    with pytest.raises(FailedPreconditionError):
        s.commit("v-c", "v")
    s.commit("k-c", "k")
    with pytest.raises(FailedPreconditionError):
        s.mounts("k-c")
    s.prepare("k2")
    with pytest.raises(AlreadyExistsError):
        s.commit("k-c", "k2")
    with pytest.raises(AlreadyExistsError):
        s.prepare("k-c")
    assert [(i.name, i.kind) for i in s.walk()] == [
        ("k-c", Kind.COMMITTED),
        ("v", Kind.VIEW),
        ("k2", Kind.ACTIVE),
    ]


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_orphans_are_removed_on_open_and_records_kept(name: str, tmp_path: Path) -> None:
    root = tmp_path / "root"
    s = FACTORIES[name](root)
    s.prepare("kept")
    s.close()
    (root / "snapshots" / "new-crashed" / "fs").mkdir(parents=True)  # crash before the insert
    (root / "snapshots" / "77" / "fs").mkdir(parents=True)  # rename done, transaction lost
    (root / "snapshots" / "rm-5").mkdir()  # crash during a removal
    s = FACTORIES[name](root)
    try:
        assert [i.name for i in s.walk()] == ["kept"]
        assert os.listdir(root / "snapshots") == ["1"]
        assert s.mounts("kept")[0].source == os.fspath(root / "snapshots" / "1" / "fs")
    finally:
        s.close()


def test_failed_creation_leaves_nothing(tmp_path: Path) -> None:
    class Failing(NativeSnapshotter):
        def _populate(self, path: Path, kind: Kind, parent_ids: list[int]) -> None:
            super()._populate(path, kind, parent_ids)
            raise RuntimeError("boom")

    with Failing(tmp_path / "root") as s:
        with pytest.raises(RuntimeError):
            s.prepare("x")
        assert s.walk() == []
        assert os.listdir(tmp_path / "root" / "snapshots") == []


def test_overlay_refuses_chains_beyond_one_page(nothing_left_mounted: Path) -> None:
    root = nothing_left_mounted / ("r" * 200)  # each lowerdir takes ~ 300 bytes: ~ 13 fit in a page
    with OverlaySnapshotter(root) as s:
        parent = None
        for n in range(40):
            try:
                s.prepare(f"a{n}", parent)
            except FailedPreconditionError as exc:
                assert "one page" in str(exc)
                break
            s.commit(f"c{n}", f"a{n}")
            parent = f"c{n}"
        else:
            pytest.fail("a chain of 40 layers with long paths fit in one page")
        assert 5 < n < 40
        assert [i.name for i in s.walk()] == [f"c{i}" for i in range(n)]
        assert len(os.listdir(root / "snapshots")) == n
        # the longest accepted chain (n - 1 parents) really mounts
        with mounted(s.prepare("top", f"c{n - 2}"), nothing_left_mounted / "m") as m:
            assert os.listdir(m) == []


def test_native_copy_keeps_metadata(tmp_path: Path) -> None:
    with NativeSnapshotter(tmp_path / "root") as s:
        base, _ = apply_dir(s.prepare("p"))
        (base / "file").write_bytes(b"x" * 5000)
        os.chown(base / "file", 1234, 5678)
        os.chmod(base / "file", 0o4750)
        os.setxattr(base / "file", "user.note", b"kept")
        os.setxattr(base / "file", "trusted.t", b"kept too")
        os.link(base / "file", base / "hard")
        os.symlink("file", base / "sym")
        os.lchown(base / "sym", 42, 43)
        os.mknod(base / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
        os.mkfifo(base / "fifo", 0o640)
        (base / "dir").mkdir(mode=0o700)
        os.chown(base / "dir", 7, 8)
        os.utime(base / "file", ns=(1, 1_500_000_000_000_000_000))
        s.commit("p-c", "p")
        child, _ = apply_dir(s.prepare("c", "p-c"))
        st = (child / "file").stat()
        assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode), st.st_size) == (1234, 5678, 0o4750, 5000)
        assert st.st_mtime_ns == 1_500_000_000_000_000_000
        assert os.getxattr(child / "file", "user.note") == b"kept"
        assert os.getxattr(child / "file", "trusted.t") == b"kept too"
        assert st.st_ino == (child / "hard").stat().st_ino and st.st_nlink == 2
        assert st.st_ino != (base / "file").stat().st_ino
        assert os.readlink(child / "sym") == "file" and (child / "sym").lstat().st_uid == 42
        null = (child / "null").lstat()
        assert stat.S_ISCHR(null.st_mode) and null.st_rdev == os.makedev(1, 3)
        assert stat.S_ISFIFO((child / "fifo").lstat().st_mode)
        d = (child / "dir").stat()
        assert (d.st_uid, d.st_gid, stat.S_IMODE(d.st_mode)) == (7, 8, 0o700)


def _race(root: Path, name: str, n: int) -> str:
    s = FACTORIES[name](root)
    try:
        s.prepare(f"extract-{n}")
        try:
            s.commit("sha256:" + "f" * 64, f"extract-{n}")
        except AlreadyExistsError:
            s.remove(f"extract-{n}")
            return "lost"
        return "won"
    finally:
        s.close()


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_processes_racing_for_one_chain_id(name: str, tmp_path: Path) -> None:
    import multiprocessing

    root = tmp_path / "root"
    FACTORIES[name](root).close()
    with multiprocessing.get_context("fork").Pool(4) as pool:
        results = pool.starmap(_race, [(root, name, n) for n in range(4)])
    assert sorted(results) == ["lost", "lost", "lost", "won"]
    s = FACTORIES[name](root)
    try:
        assert [i.name for i in s.walk()] == ["sha256:" + "f" * 64]
        assert len(os.listdir(root / "snapshots")) == 1
    finally:
        s.close()


def test_the_syscalls_raise_oserror_with_the_errno_and_path(tmp_path: Path) -> None:
    import errno

    from pycontainerd._snapshots import _syscalls
    from pycontainerd._snapshots.mount import syncfs

    with pytest.raises(OSError) as exc:
        _syscalls.umount2(os.fsencode(tmp_path), 0)  # not a mount point
    assert (exc.value.errno, exc.value.filename) == (errno.EINVAL, str(tmp_path))
    with pytest.raises(OSError) as exc:
        _syscalls.mount(b"none", os.fsencode(tmp_path), b"no-such-filesystem", 0, None)
    assert (exc.value.errno, exc.value.filename) == (errno.ENODEV, str(tmp_path))
    with pytest.raises(OSError) as exc:
        _syscalls.syncfs(-1)
    assert exc.value.errno == errno.EBADF
    with pytest.raises(TypeError, match="fstype must be bytes or None, not str"):
        _syscalls.mount(None, b"/x", "tmpfs", 0, None)  # type: ignore[arg-type]
    syncfs(tmp_path)  # a real flush of this filesystem
    _syscalls.mount(b"tmpfs", os.fsencode(tmp_path), b"tmpfs", 0, b"size=1m")
    try:
        assert str(tmp_path) in Path("/proc/self/mountinfo").read_text()
    finally:
        _syscalls.umount2(os.fsencode(tmp_path), 0)
    assert str(tmp_path) not in Path("/proc/self/mountinfo").read_text()


def test_opening_a_snapshotter_again_writes_nothing(tmp_path: Path) -> None:
    import sqlite3

    from pycontainerd._snapshots.store import _SCHEMA_VERSION

    root = tmp_path / "overlay"
    with OverlaySnapshotter(root) as s:
        s.prepare("a")
    db = sqlite3.connect(root / "metadata.db")
    try:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA user_version").fetchone()[0] == _SCHEMA_VERSION
    finally:
        db.close()
    files = sorted(root.glob("metadata.db*"))
    before = {f.name: f.stat().st_mtime_ns for f in files}
    with OverlaySnapshotter(root) as s:
        assert s.stat("a").name == "a"
    assert {f.name: f.stat().st_mtime_ns for f in sorted(root.glob("metadata.db*"))} == before
