"""Removing trees that hold mount points (pycontainerd._snapshots.remove_tree and its users): nothing
is ever deleted through a mount. Every mount is real, planted with mount(8) on the host: bind mounts
within one filesystem (which os.path.ismount and st_dev cannot tell from a directory), tmpfs, stacked
and nested mounts, a bind-mounted file, odd names; a file outside the tree, seen through each mount,
must survive every removal."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pycontainerd._archive.apply import apply_layer
from pycontainerd._errors import FailedPreconditionError, PycontainerdError
from pycontainerd._snapshots import NativeSnapshotter, OverlaySnapshotter, remove_tree, unmount_beneath


def mounted_under(path: Path) -> list[str]:
    """Mount points at or under ``path``, in /proc/self/mountinfo's order (escapes decoded)."""
    prefix = os.fsencode(path)
    points = []
    with open("/proc/self/mountinfo", "rb") as f:
        for line in f:
            raw = line.split()[4]
            point = raw.decode("unicode_escape").encode("latin-1")  # \040 and friends
            if point == prefix or point.startswith(prefix + b"/"):
                points.append(os.fsdecode(point))
    return points


def mount(*args: str | Path) -> None:
    subprocess.run(["mount", *map(str, args)], check=True)


@pytest.fixture
def area(tmp_path: Path) -> Iterator[Path]:
    """A directory whose mounts are undone at the end, whatever the test left (lazily, so a busy one
    goes too); the tests check what they expect to be unmounted themselves."""
    yield tmp_path
    for point in reversed(mounted_under(tmp_path)):
        subprocess.run(["umount", "-l", point], check=False)


@pytest.fixture
def outside(area: Path) -> Path:
    """A directory beside the trees, holding a canary file that no removal may touch."""
    path = area / "outside"
    (path / "sub").mkdir(parents=True)
    (path / "canary").write_text("alive")
    (path / "sub" / "deeper").write_text("alive")
    return path


def intact(outside: Path) -> bool:
    return (outside / "canary").read_text() == "alive" and (outside / "sub" / "deeper").read_text() == "alive"


def tree(area: Path) -> Path:
    """A tree with files, a symlink out of it, a fifo and nested directories."""
    top = area / "tree"
    (top / "a" / "b").mkdir(parents=True)
    (top / "a" / "file").write_text("x")
    (top / "a" / "b" / "file").write_text("y")
    (top / "out").symlink_to(area / "outside")
    os.mkfifo(top / "a" / "fifo")
    return top


# Each plants mounts in the tree (given the tree and the outside directory) and returns the mount
# point a refusal names.
Planter = Callable[[Path, Path], Path]


def _bind(top: Path, outside: Path) -> Path:
    mount("--bind", outside, top / "a" / "b")
    return top / "a" / "b"


def _tmpfs_with_a_bind_inside(top: Path, outside: Path) -> Path:
    mount("-t", "tmpfs", "tmpfs", top / "a")
    (top / "a" / "m").mkdir()
    mount("--bind", outside, top / "a" / "m")
    return top / "a"


def _stacked(top: Path, outside: Path) -> Path:
    mount("--bind", outside, top / "a" / "b")
    mount("--bind", outside / "sub", top / "a" / "b")
    return top / "a" / "b"


def _nested(top: Path, outside: Path) -> Path:
    mount("--bind", outside, top / "a" / "b")
    mount("--bind", outside, top / "a" / "b" / "sub")  # inside the first: outside/sub is its point
    return top / "a" / "b"


def _file(top: Path, outside: Path) -> Path:
    mount("--bind", outside / "canary", top / "a" / "file")
    return top / "a" / "file"


def _on_the_top(top: Path, outside: Path) -> Path:
    mount("--bind", outside, top)
    return top


def _odd_name(top: Path, outside: Path) -> Path:
    odd = top / "a" / "sp ace\ttab\\back\nline"
    odd.mkdir()
    mount("--bind", outside, odd)
    return odd


PLANTERS: dict[str, Planter] = {
    "bind": _bind,
    "tmpfs-with-a-bind-inside": _tmpfs_with_a_bind_inside,
    "stacked": _stacked,
    "nested": _nested,
    "file": _file,
    "on-the-top": _on_the_top,
    "odd-name": _odd_name,
}


def test_a_bind_mount_within_one_filesystem_is_invisible_to_st_dev_and_ismount(
    area: Path, outside: Path
) -> None:
    # Why mount ids: the check the task delete used (os.path.ismount) is false here, and a walk
    # comparing st_dev would enter it.
    top = tree(area)
    point = _bind(top, outside)
    assert not os.path.ismount(point) and point.stat().st_dev == top.stat().st_dev
    remove_tree(top)
    assert not top.exists() and intact(outside) and mounted_under(area) == []


@pytest.mark.parametrize("planter", sorted(PLANTERS))
def test_what_is_mounted_in_a_tree_is_unmounted_first(area: Path, outside: Path, planter: str) -> None:
    top = tree(area)
    PLANTERS[planter](top, outside)
    assert mounted_under(top)
    remove_tree(top)
    assert not top.exists()
    assert intact(outside) and mounted_under(area) == []


@pytest.mark.parametrize("planter", sorted(PLANTERS))
def test_without_unmounting_a_mount_point_is_refused_by_name(area: Path, outside: Path, planter: str) -> None:
    top = tree(area)
    point = PLANTERS[planter](top, outside)
    before = mounted_under(top)
    with pytest.raises(FailedPreconditionError, match="refusing to remove") as refused:
        remove_tree(top, unmount=False)
    assert os.fspath(point) in str(refused.value)
    assert intact(outside) and mounted_under(top) == before


def test_a_mount_in_use_is_refused_and_left_whole(area: Path, outside: Path) -> None:
    top = tree(area)
    point = _bind(top, outside)
    with (
        open(point / "canary"),
        pytest.raises(FailedPreconditionError, match="cannot be unmounted") as refused,
    ):
        remove_tree(top)
    assert str(point) in str(refused.value) and "busy" in str(refused.value)
    assert intact(outside) and mounted_under(top) == [str(point)]


def test_symlinks_are_removed_not_followed(area: Path, outside: Path) -> None:
    top = tree(area)
    (top / "a" / "b" / "to-file").symlink_to(outside / "canary")
    remove_tree(top)
    assert not top.exists() and intact(outside)


def test_relative_to_a_directory_descriptor(area: Path, outside: Path) -> None:
    top = tree(area)
    _bind(top, outside)
    fd = os.open(area, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.raises(FailedPreconditionError, match="a/b: it is a mount point"):
            remove_tree("tree", dir_fd=fd, unmount=False)
        remove_tree("tree", dir_fd=fd)
    finally:
        os.close(fd)
    assert not top.exists() and intact(outside) and mounted_under(area) == []


def test_unmount_beneath_takes_the_last_mounted_first(area: Path, outside: Path) -> None:
    top = tree(area)
    _nested(top, outside)
    _odd_name(top, outside)
    expected = list(reversed(mounted_under(top)))
    assert unmount_beneath(top) == expected and mounted_under(area) == []
    remove_tree(top)


def _layer(*names: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name in names:
            tar.addfile(tarfile.TarInfo(name))
    return buffer.getvalue()


@pytest.mark.parametrize("whiteout", [".wh.a", "a/.wh..wh..opq"])
def test_a_layer_s_whiteout_never_removes_through_a_mount(area: Path, outside: Path, whiteout: str) -> None:
    # A whiteout removes a directory of the lower layers (native form: in place): a mount below it
    # is refused, never unmounted by a layer nor deleted through.
    top = tree(area)
    _bind(top, outside)
    with pytest.raises(PycontainerdError, match=r"refusing to remove (.*/)?b: it is a mount point"):
        apply_layer(top, io.BytesIO(_layer(whiteout)), whiteout_format="native")
    assert intact(outside) and mounted_under(top) == [str(top / "a" / "b")]


@pytest.mark.parametrize("factory", [NativeSnapshotter, OverlaySnapshotter])
def test_removing_a_snapshot_unmounts_what_is_mounted_in_it(
    area: Path, outside: Path, factory: Callable[[Path], NativeSnapshotter | OverlaySnapshotter]
) -> None:
    with contextlib.closing(factory(area / "root")) as snapshotter:
        (mount_spec,) = snapshotter.prepare("active")
        fs = Path(mount_spec.source if mount_spec.type == "bind" else "")
        assert fs.name == "fs"
        (fs / "in").mkdir()
        mount("--bind", outside, fs / "in")
        snapshotter.remove("active")
        assert not fs.exists() and intact(outside) and mounted_under(area) == []
