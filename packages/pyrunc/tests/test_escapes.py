"""Regression tests for the container escapes that hit runc: each attempts the bypass for real and
shows that it fails under pyrunc."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pyrunc_tests_helpers as h
import pytest


@pytest.fixture
def rt(tmp_path: Path) -> Any:
    runtime = h.Runtime(h.PYRUNC, tmp_path / "root")
    yield runtime
    runtime.cleanup()


def test_cve_2019_5736_joining_process_exe_is_out_of_reach(rt: Any, tmp_path: Path) -> None:
    """A process entering the container (pyrunc exec) is a copy of the host's Python until it
    execs. Container root keeps reading /proc/*/exe while we exec repeatedly: it must never reach
    the host interpreter (the joining process is non-dumpable, so /proc/<pid>/exe is closed)."""
    spy = (
        "while :; do for p in /proc/[0-9]*; do readlink $p/exe; done 2>/dev/null | grep -q python"
        " && echo REACHED > /tmp/result; done"
    )
    bundle = h.make_bundle(h.next_bundle_dir(tmp_path), ["sh", "-c", spy], h.setting("root.readonly", False))
    container_id = rt.new_id()
    with open(os.devnull, "rb") as null:
        subprocess.run(
            rt.argv("run", "-d", "--bundle", str(bundle), container_id),
            stdin=null,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=True,
            timeout=30,
        )
    for _ in range(40):
        assert rt("exec", container_id, "true").returncode == 0
    assert not (bundle / "rootfs/tmp/result").exists(), "a container process reached the host's python binary"


def test_cve_2024_21626_no_host_fd_leaks_in(rt: Any, tmp_path: Path) -> None:
    """Every fd beyond stdio is closed before exec, whatever the caller leaked to us."""
    bundle = h.make_bundle(h.next_bundle_dir(tmp_path), ["ls", "/proc/self/fd"])
    script = f'exec 5</ 7<"{tmp_path}" 9</proc; exec "$@"'
    result = subprocess.run(
        ["sh", "-c", script, "sh", *rt.argv("run", "--bundle", str(bundle), rt.new_id())],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert sorted(result.stdout.split()) == ["0", "1", "2", "3"]  # 3: ls's own directory fd


@pytest.mark.parametrize("cwd", ["/proc/self/fd/5", "/../../../../../"])
def test_cve_2024_21626_cwd_outside_the_root_is_refused_or_contained(
    rt: Any, tmp_path: Path, cwd: str
) -> None:
    bundle = h.make_bundle(
        h.next_bundle_dir(tmp_path), ["sh", "-c", "pwd; ls"], h.setting("process.cwd", cwd)
    )
    script = f'exec 5<"{tmp_path}"; exec "$@"'
    result = subprocess.run(
        ["sh", "-c", script, "sh", *rt.argv("run", "--bundle", str(bundle), rt.new_id())],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if result.returncode == 0:  # contained: the cwd resolved inside the container
        assert result.stdout.startswith("/"), result.stdout
        assert "pyrunc-root" not in result.stdout and "bundle" not in result.stdout
    else:
        assert "cwd" in result.stderr, result.stderr


def test_cve_2021_30465_mount_target_swapped_for_a_symlink_is_contained(rt: Any, tmp_path: Path) -> None:
    """A bind-mount destination that is a symlink to the host: the mount lands inside the rootfs."""
    host_dir = tmp_path / "host-dir"
    host_dir.mkdir()
    source = tmp_path / "source"
    source.mkdir()
    (source / "marker").write_text("from the bind source\n")
    bundle = h.make_bundle(
        h.next_bundle_dir(tmp_path),
        ["sh", "-c", "cat /target/marker"],
        h.appending(
            "mounts", {"destination": "/target", "type": "bind", "source": str(source), "options": ["bind"]}
        ),
    )
    os.symlink(host_dir, bundle / "rootfs/target")
    (bundle / "rootfs" / str(host_dir).lstrip("/")).mkdir(parents=True)
    result = rt.run(bundle)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "from the bind source\n"
    assert list(host_dir.iterdir()) == [], "the mount reached the host"
    assert str(host_dir) not in Path("/proc/self/mountinfo").read_text()


def test_cve_2025_31133_masking_verifies_dev_null(rt: Any, tmp_path: Path) -> None:
    """With /dev bind-mounted from a directory where ``null`` is a symlink to a host file, masking
    must not bind that file over /proc paths: the null device is checked first."""
    fake_dev = tmp_path / "fake-dev"
    fake_dev.mkdir()
    target = tmp_path / "writable-host-file"
    target.write_text("host\n")
    os.symlink(target, fake_dev / "null")

    def dev_from_fake(config: dict[str, Any]) -> None:
        config["mounts"] = [m for m in config["mounts"] if not m["destination"].startswith("/dev")]
        config["mounts"].append(
            {"destination": "/dev", "type": "bind", "source": str(fake_dev), "options": ["rbind"]}
        )

    bundle = h.make_bundle(
        h.next_bundle_dir(tmp_path), ["sh", "-c", "echo owned > /proc/kcore"], dev_from_fake
    )
    container_id = rt.new_id()
    with h.nothing_left_behind(rt.root, container_id):
        result = rt.run(bundle, container_id)
    assert result.returncode != 0
    assert result.stderr.startswith("mask /proc/"), result.stderr  # the first masked file that exists
    assert target.read_text() == "host\n"


def test_proc_mount_onto_a_file_is_refused(rt: Any, tmp_path: Path) -> None:
    bundle = h.make_bundle(
        h.next_bundle_dir(tmp_path),
        ["true"],
        h.appending("mounts", {"destination": "/etc/hostname", "type": "proc", "source": "proc"}),
    )
    container_id = rt.new_id()
    with h.nothing_left_behind(rt.root, container_id):
        result = rt.run(bundle, container_id)
    assert result.returncode != 0
    assert "/etc/hostname" in result.stderr and "Not a directory" in result.stderr, result.stderr


def test_state_json_is_not_readable_by_others(rt: Any, tmp_path: Path) -> None:
    bundle = h.make_bundle(h.next_bundle_dir(tmp_path), ["sleep", "30"])
    container_id = rt.create(bundle)
    mode = (rt.root / container_id).stat().st_mode & 0o777
    assert mode & 0o022 == 0
    assert json.loads((rt.root / container_id / "state.json").read_text())["id"] == container_id
