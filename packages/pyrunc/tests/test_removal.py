"""Nothing pyrunc removes is removed through a mount point: a container's state directory (on
delete, and when a create fails), the cgroup trees it destroys, and the old programs of its
seccomp cache. Each is given a mount where it would remove, on the real kernel, and must leave
what the mount holds."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pyrunc._cgroups.files import remove_trees
from pyrunc._errors import CgroupError
from pyrunc._plan.seccomp import _cache_trim

if TYPE_CHECKING:
    from collections.abc import Iterator

import pyrunc_tests_helpers as h


@pytest.fixture
def rt(pyrunc_bin: Path, pyrunc_root: Path) -> Iterator[Any]:
    runtime = h.Runtime(pyrunc_bin, pyrunc_root)
    yield runtime
    runtime.cleanup()


def _victim(directory: Path, state_dir: Path) -> Path:
    """A directory holding a copy of the container's state and a file of someone else's."""
    directory.mkdir()
    shutil.copy(state_dir / "state.json", directory / "state.json")
    (directory / "precious").write_text("not pyrunc's\n")
    return directory


@pytest.mark.parametrize("bind", [True, False], ids=["bind-of-the-same-filesystem", "tmpfs"])
def test_delete_refuses_a_state_directory_with_a_mount_on_it(rt: Any, tmp_path: Path, bind: bool) -> None:
    container_id = rt.create(h.make_bundle(tmp_path / "bundle", ["sleep", "300"]))
    state_dir = rt.root / container_id
    victim = _victim(tmp_path / "victim", state_dir)
    source, fstype, flags = (victim, None, h.MS_BIND) if bind else ("tmpfs", "tmpfs", 0)
    with h.mounted(source, state_dir, fstype, flags):
        if not bind:  # the state where pyrunc looks for it, and someone else's file
            for name in ("state.json", "precious"):
                shutil.copy(victim / name, state_dir / name)
        result = rt("delete", "--force", container_id)
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
        assert result.stderr == f"refusing to remove {state_dir}: a filesystem is mounted on it\n"
        assert sorted(os.listdir(state_dir)) == ["precious", "state.json"]
    assert sorted(os.listdir(victim)) == ["precious", "state.json"]
    # The container itself went (killed, cgroups removed); with the mount gone, delete finishes.
    assert rt("delete", "--force", container_id).returncode == 0
    assert not state_dir.exists()


def test_delete_refuses_a_state_directory_that_is_a_symlink(rt: Any, tmp_path: Path) -> None:
    container_id = rt.create(h.make_bundle(tmp_path / "bundle", ["sleep", "300"]))
    state_dir = rt.root / container_id
    elsewhere = tmp_path / "elsewhere"
    state_dir.rename(elsewhere)
    (elsewhere / "precious").write_text("kept\n")
    state_dir.symlink_to(elsewhere)
    result = rt("delete", "--force", container_id)
    assert result.returncode == 1
    assert result.stderr == f"refusing to remove {state_dir}: Not a directory (a symlink is not followed)\n"
    assert (elsewhere / "precious").read_text() == "kept\n"
    state_dir.unlink()
    elsewhere.rename(state_dir)
    (state_dir / "precious").unlink()


def test_a_cgroup_tree_is_not_removed_through_a_mount(tmp_path: Path) -> None:
    """The cgroup destroyer removes empty directories, deepest first: never those of a filesystem
    mounted in the tree (here on a plain directory tree, the same code as on cgroupfs)."""
    top = tmp_path / "cgroup"
    (top / "child" / "grandchild").mkdir(parents=True)
    (top / "mounted").mkdir()
    with h.mounted("tmpfs", top / "mounted", "tmpfs"):
        (top / "mounted" / "someone-elses").mkdir()
        with pytest.raises(
            CgroupError, match=r"mounted: a filesystem is mounted on it \(not removed through\)"
        ):
            remove_trees([str(top)], [])
        assert (top / "mounted" / "someone-elses").is_dir()
    remove_trees([str(top)], [])  # and without the mount, the whole tree goes
    assert not top.exists()


def test_the_seccomp_cache_is_not_trimmed_through_a_mount(tmp_path: Path) -> None:
    cache = tmp_path / "@seccomp"
    cache.mkdir(mode=0o700)

    def stale_leftovers() -> list[Path]:
        old = time.time() - 7200
        files = [cache / ".left.123.1.tmp", *(cache / f"{n:064x}.bpf" for n in range(70))]
        for path in files:
            path.write_bytes(b"\0" * 8)
            os.utime(path, (old, old))
        return files

    with h.mounted("tmpfs", cache, "tmpfs"):
        files = stale_leftovers()
        _cache_trim(str(cache), str(cache / "new.bpf"))
        assert all(path.exists() for path in files)
    files = stale_leftovers()
    _cache_trim(str(cache), str(cache / "new.bpf"))  # the same without a mount: trimmed
    assert not files[0].exists() and len(os.listdir(cache)) == 63
