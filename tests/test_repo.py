"""The repository's plumbing: the entry points the README promises, and the shared test helpers."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pyrunc_acceptance_specs as specs  # registered by conftest.py
import pytest

from pyrunc.testing import BusyboxError, HostSnapshot, make_busybox_bundle

REPO = Path(__file__).resolve().parents[1]
RUNC = Path("/usr/sbin/runc")


def _commands(script: Path) -> list[str]:
    """The non-comment, non-blank lines of a shell script."""
    lines = (line.strip() for line in script.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


# --------------------------------------------------------------------------------------------------
# Entry points


def test_ci_runs_the_readme_test_command() -> None:
    commands = _commands(REPO / ".ci" / "run")
    assert "set -euo pipefail" in commands
    assert any(re.search(r"(^|[\s/])scripts/test\b", line) for line in commands), commands


@pytest.mark.parametrize(
    "script", [".ci/run", "scripts/bootstrap", "scripts/test", "scripts/demo", "scripts/registry"]
)
def test_entry_points_are_executable_bash(script: str) -> None:
    path = REPO / script
    assert os.access(path, os.X_OK), f"{script} is not executable"
    assert path.read_text().startswith("#!/usr/bin/env bash\n")
    subprocess.run(["bash", "-n", str(path)], check=True)


def test_test_script_runs_lint_typecheck_and_tests_through_nox() -> None:
    assert any(".venv/bin/nox -s lint typecheck tests" in line for line in _commands(REPO / "scripts/test"))


def test_the_registry_script_serves_loopback_only() -> None:
    done = subprocess.run(
        [str(REPO / "scripts" / "registry"), "start", "10.0.0.1:5000"],
        capture_output=True,
        text=True,
        env={**os.environ, "VIRTUAL_ENV": sys.prefix},
        timeout=60,
    )
    assert done.returncode == 2
    assert "'10.0.0.1:5000': give a loopback address and port, e.g. 127.0.0.1:5000" in done.stderr


# --------------------------------------------------------------------------------------------------
# The repository stands alone: what its tests read is in it


#: Places a development machine kept data in, beside the repository.
OUTSIDE = re.compile(r"(?<![\w.-])/work/|\.\./shared\b|\bshared/spec\b")
#: Not the project's own files: environments, caches, build output.
NOT_OURS = {
    ".git",
    ".venv",
    ".nox",
    "build",
    "__pycache__",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    ".hypothesis",
}


def _project_files() -> list[Path]:
    files = []
    for directory, subdirectories, names in os.walk(REPO):
        subdirectories[:] = [d for d in subdirectories if d not in NOT_OURS and not d.endswith(".egg-info")]
        files += [Path(directory) / name for name in names if name not in NOT_OURS]  # a worktree's .git file
    return files


def test_nothing_refers_to_a_path_outside_the_repository() -> None:
    found = []
    for path in _project_files():
        if path == Path(__file__) or path.suffix in (".so", ".o"):
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # binary
        found += [
            f"{path.relative_to(REPO)}:{number}: {line.strip()}"
            for number, line in enumerate(text.splitlines(), 1)
            if OUTSIDE.search(line)
        ]
    assert not found, "copy what these read into the repository (spec/):\n" + "\n".join(found)


def test_the_vendored_specifications_are_the_upstream_files() -> None:
    spec = REPO / "spec"
    listed = {}
    for line in (spec / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split("  ")
        listed[name] = digest
    present = {
        str(path.relative_to(spec))
        for path in spec.rglob("*")
        if path.is_file() and path.name not in ("README.md", "LICENSE", "NOTICE", "SHA256SUMS")
    }
    assert present == set(listed), "SHA256SUMS lists every vendored file, and only those"
    changed = [
        name
        for name, digest in listed.items()
        if hashlib.sha256((spec / name).read_bytes()).hexdigest() != digest
    ]
    assert not changed, f"vendored files differ from their upstream copies: {changed}"
    readme = (spec / "README.md").read_text()
    for name in (
        "oci-runtime-spec/",
        "oci-image-spec/",
        "seccomp-default.json",
        "docker-engine-api-v1.44.yaml",
    ):
        assert f"`{name}" in readme, f"spec/README.md says nothing of {name}"
    assert (
        "Apache License" in (spec / "LICENSE").read_text() and "Docker, Inc." in (spec / "NOTICE").read_text()
    )


def test_a_missing_specification_fails_the_test_that_reads_it() -> None:
    with pytest.raises(
        pytest.fail.Exception, match=r"spec/no-such-schema\.json is missing: .*\(spec/README\.md"
    ):
        specs.spec_file("no-such-schema.json")


# --------------------------------------------------------------------------------------------------
# pyrunc.testing: the helpers every layer's tests use


def test_busybox_bundle_layout(busybox_bundle: Path) -> None:
    rootfs = busybox_bundle / "rootfs"
    for name in ("bin", "dev", "etc", "proc", "sys", "tmp", "root", "home", "var"):
        assert (rootfs / name).is_dir(), name
    assert (rootfs / "tmp").stat().st_mode & 0o7777 == 0o1777
    busybox = rootfs / "bin" / "busybox"
    assert busybox.is_file() and not busybox.is_symlink()
    assert os.readlink(rootfs / "bin" / "sh") == "busybox"
    passwd = (rootfs / "etc" / "passwd").read_text()
    assert "root:x:0:0:" in passwd and "app:x:1000:1000:" in passwd and "nobody:x:65534:65534:" in passwd
    assert (rootfs / "etc" / "hostname").read_text() == "pyrunc\n"
    config = json.loads((busybox_bundle / "config.json").read_text())
    assert config["process"]["args"] == ["true"]
    assert config["process"]["terminal"] is False
    assert config["hostname"] == "pyrunc"
    assert config["root"] == {"path": "rootfs", "readonly": True}


def test_missing_busybox_says_what_to_install(tmp_path: Path) -> None:
    with pytest.raises(BusyboxError, match="install busybox-static"):
        make_busybox_bundle(tmp_path / "bundle", ["true"], busybox=tmp_path / "no-busybox")
    with pytest.raises(BusyboxError, match="install busybox-static"):
        make_busybox_bundle(tmp_path / "bundle", ["true"], busybox="/bin/ls")  # dynamically linked


@pytest.mark.runc
@pytest.mark.integration
def test_reference_runc_runs_a_busybox_bundle(tmp_path: Path) -> None:
    script = 'echo "$(hostname) $$ $(cat /proc/self/mountinfo | wc -l)"; id -u; exit 3'
    bundle = make_busybox_bundle(tmp_path / "bundle", ["sh", "-c", script], hostname="box")
    result = subprocess.run(
        [str(RUNC), "--root", str(tmp_path / "state"), "run", "--bundle", str(bundle), "test-repo-runc"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 3, result.stderr
    hostname, pid, mounts, uid = result.stdout.split()
    assert (hostname, pid, uid) == ("box", "1", "0")
    assert int(mounts) < 40


def test_host_snapshot_reports_a_leaked_mount_and_child(tmp_path: Path) -> None:
    before = HostSnapshot.take()
    target = tmp_path / "mnt"
    target.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "leak-test", str(target)], check=True)
    child = subprocess.Popen(["sleep", "60"])
    try:
        leaks = HostSnapshot.take().leaked_since(before)
        assert f"mount: {target} (tmpfs from leak-test)" in leaks
        assert any(line.startswith(f"process: pid {child.pid} (sleep)") for line in leaks), leaks
    finally:
        child.kill()
        child.wait()
        subprocess.run(["umount", str(target)], check=True)
    assert HostSnapshot.wait_until_clean(before) == []
