"""``pyctr`` end to end against private docker-registry processes on 127.0.0.1 (busybox built offline
and pushed there with skopeo): pull, ls, inspect, tag, rm, export/import, push (anonymous, basic and
Bearer auth with ``--user``), content/snapshots/leases ls per namespace, gc. Nothing here contacts any
other registry."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyrunc_acceptance_oci_images as oci_images  # registered by conftest.py
import pytest

from pycontainerd import Client, chain_id


@pytest.fixture(scope="module")
def ref(registry: Any, layout: Any) -> str:
    pushed: str = oci_images.push_to_registry(layout, registry.address, "pyctr/busybox")
    return pushed


def pyctr(root: Path, *args: str, check: bool = True, stdin: str = "") -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pycontainerd._cli",
            "--root",
            str(root),
            "--state",
            str(root / "state"),
            *args,
        ],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"pyctr {' '.join(args)} failed: {result.stderr}")
    return result


def test_pull_ls_inspect_and_snapshots(ref: str, layout: Any, tmp_path: Path) -> None:
    root = tmp_path / "root"
    pulled = pyctr(root, "images", "pull", ref)
    assert f"{layout.layer_digest}: done" in pulled.stderr  # progress on stderr
    rows = pyctr(root, "images", "ls").stdout.splitlines()
    assert rows[0].split() == ["REF", "TYPE", "DIGEST", "SIZE", "PLATFORMS", "LABELS"]
    assert rows[1].split()[0] == ref  # the full reference first, as ctr prints it
    assert layout.manifest_digest in rows[1]
    assert "linux/amd64" in rows[1]
    inspected = json.loads(pyctr(root, "images", "inspect", ref).stdout)
    assert inspected["target"]["digest"] == layout.manifest_digest
    chain = chain_id([layout.diff_id])
    snapshots = pyctr(root, "snapshots", "ls").stdout
    assert chain in snapshots and "Committed" in snapshots
    content = pyctr(root, "content", "ls").stdout
    assert layout.layer_digest in content and f"containerd.io/gc.ref.snapshot.overlayfs={chain}" in content
    assert pyctr(root, "leases", "ls").stdout.splitlines()[1:] == []
    with Client(root) as client:
        view = client.snapshotter().view("pyctr-view", chain)
        try:
            where = tmp_path / "rootfs"
            where.mkdir()
            view[0].mount(where)
            try:
                assert (where / "bin" / "busybox").is_file()
            finally:
                view[0].unmount(where)
        finally:
            client.snapshotter().remove("pyctr-view")


def test_tag_rm_and_gc(ref: str, layout: Any, tmp_path: Path) -> None:
    root = tmp_path / "root"
    pyctr(root, "images", "pull", ref)
    other = ref.rsplit(":", 1)[0] + ":copy"
    assert pyctr(root, "images", "tag", ref, other).stdout.strip() == other
    assert pyctr(root, "images", "ls", "-q").stdout.split() == sorted([ref, other])
    pyctr(root, "images", "rm", ref, other)
    assert pyctr(root, "images", "ls", "-q").stdout.split() == []
    assert "deleted 3 blobs" in pyctr(root, "gc").stdout
    assert not any((root / "content" / "blobs" / "sha256").iterdir())
    assert chain_id([layout.diff_id]) not in pyctr(root, "snapshots", "ls").stdout


def test_export_import_into_a_fresh_root(ref: str, layout: Any, tmp_path: Path) -> None:
    pyctr(tmp_path / "a", "images", "pull", ref)
    archive = tmp_path / "busybox.tar"
    pyctr(tmp_path / "a", "images", "export", str(archive), ref)
    imported = pyctr(tmp_path / "b", "images", "import", str(archive)).stdout
    assert imported.strip() == f"{ref}: {layout.manifest_digest}"
    rows = pyctr(tmp_path / "b", "images", "ls").stdout.splitlines()
    assert rows[1].split()[:3] == pyctr(tmp_path / "a", "images", "ls").stdout.splitlines()[1].split()[:3]


def test_push_then_skopeo_inspect(ref: str, registry: Any, layout: Any, tmp_path: Path) -> None:
    root = tmp_path / "root"
    pyctr(root, "images", "pull", "--plain-http", ref)
    target = f"{registry.address}/pyctr/pushed:v1"
    pyctr(root, "images", "tag", ref, target)
    pushed = pyctr(root, "images", "push", target)
    assert layout.layer_digest in pushed.stderr
    result = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", f"docker://{target}"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert json.loads(result.stdout)["Digest"] == layout.manifest_digest


def test_native_snapshotter(ref: str, layout: Any, tmp_path: Path) -> None:
    root = tmp_path / "root"
    pyctr(root, "--snapshotter", "native", "images", "pull", ref)
    assert chain_id([layout.diff_id]) in pyctr(root, "--snapshotter", "native", "snapshots", "ls").stdout


def test_errors_are_one_line_and_exit_1(tmp_path: Path, registry: Any) -> None:
    result = pyctr(tmp_path / "root", "images", "rm", "127.0.0.1:1/nothing:here", check=False)
    assert result.returncode == 1
    assert result.stderr.startswith("pyctr: ") and result.stderr.count("\n") == 1
    missing = pyctr(tmp_path / "root", "images", "pull", f"{registry.address}/no/such:tag", check=False)
    assert missing.returncode == 1 and missing.stderr.count("\n") == 1


@pytest.mark.parametrize("auth", ["basic_registry", "token_registry"])
def test_push_and_pull_with_user_against_basic_and_bearer_registries(
    auth: str, ref: str, layout: Any, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    secured = request.getfixturevalue(auth)
    root = tmp_path / "root"
    pyctr(root, "images", "pull", ref)
    target = f"{secured.address}/pyctr/auth:v1"
    pyctr(root, "images", "tag", ref, target)
    refused = pyctr(root, "images", "push", target, check=False)
    assert refused.returncode == 1 and "credentials" in refused.stderr and refused.stderr.count("\n") == 1
    wrong = pyctr(root, "images", "push", "--user", f"{secured.user}:wrong", target, check=False)
    assert wrong.returncode == 1 and wrong.stderr.startswith("pyctr: ")
    pushed = pyctr(root, "images", "push", "-u", f"{secured.user}:{secured.password}", target)
    assert layout.layer_digest in pushed.stderr

    fresh = tmp_path / "fresh"
    assert pyctr(fresh, "images", "pull", target, check=False).returncode == 1
    # USER alone: the password is asked for, and read from stdin when there is no terminal.
    pulled = pyctr(fresh, "images", "pull", "--user", secured.user, target, stdin=f"{secured.password}\n")
    assert f"{target}: {layout.manifest_digest}" in pulled.stderr
    assert pyctr(fresh, "images", "ls", "-q").stdout.split() == [target]


def test_snapshots_ls_lists_the_namespace_s_snapshots(ref: str, layout: Any, tmp_path: Path) -> None:
    root = tmp_path / "root"
    chain = chain_id([layout.diff_id])
    pyctr(root, "-n", "team-a", "images", "pull", ref)
    assert chain in pyctr(root, "-n", "team-a", "snapshots", "ls").stdout
    assert pyctr(root, "-n", "team-b", "snapshots", "ls").stdout.splitlines() == ["KEY  PARENT  KIND"]
    pyctr(root, "-n", "team-b", "images", "pull", ref)  # the layer is there: only recorded for team-b
    assert chain in pyctr(root, "-n", "team-b", "snapshots", "ls").stdout
    pyctr(root, "-n", "team-a", "images", "rm", ref)
    pyctr(root, "-n", "team-a", "gc")
    assert pyctr(root, "-n", "team-a", "snapshots", "ls").stdout.splitlines() == ["KEY  PARENT  KIND"]
    assert chain in pyctr(root, "-n", "team-b", "snapshots", "ls").stdout  # team-b's still holds it


def test_import_names_tag_only_images_with_base_name(layout: Any, tmp_path: Path) -> None:
    archive = oci_images.write_oci_archive(layout, tmp_path / "busybox.oci.tar")  # ref.name: "latest"
    imported = pyctr(
        tmp_path / "root", "images", "import", "--base-name", "127.0.0.1:5000/lib/bb", str(archive)
    )
    assert imported.stdout == f"127.0.0.1:5000/lib/bb:latest: {layout.manifest_digest}\n"


_ALL_GROUPS = {
    *("images", "image", "i", "content", "snapshots", "snapshot", "leases", "gc", "run"),
    *("containers", "container", "c", "tasks", "task", "t", "events"),
}


@pytest.mark.parametrize(
    ("argv", "built"),
    [
        (["--root", "/r", "-n", "x", "run", "--rm", "img", "id", "true"], {"run"}),
        (["--state=/s", "tasks", "ls"], {"tasks", "task", "t"}),
        (["i", "ls"], {"images", "image", "i"}),
        (["--help"], _ALL_GROUPS),
        (["no-such-command"], _ALL_GROUPS),
        ([], _ALL_GROUPS),
    ],
)
def test_only_the_command_group_named_is_built(argv: list[str], built: set[str]) -> None:
    # A group's module is imported when it is declared: a command declares its own, help all of them.
    from pycontainerd._cli.main import parser as _parser

    groups = _parser(argv).subparsers
    assert groups is not None and set(groups.choices) == built


def test_help_lists_every_command_group(tmp_path: Path) -> None:
    done = pyctr(tmp_path, "--help")
    for name in ("images", "content", "snapshots", "leases", "gc", "run", "containers", "tasks", "events"):
        assert name in done.stdout


def test_main_turns_the_collector_back_on(tmp_path: Path) -> None:
    # The launcher turns the cyclic GC off for start-up; a long command (pull, events -f) needs it.
    import gc

    from pycontainerd._cli.main import main

    gc.disable()
    try:
        assert main(["--root", str(tmp_path), "--state", str(tmp_path / "state"), "images", "ls", "-q"]) == 0
        assert gc.isenabled()
    finally:
        gc.enable()


def test_the_launcher_runs_without_site(tmp_path: Path) -> None:
    launcher = Path(sys.executable).parent / "pyctr"
    assert launcher.read_text().startswith("#!/bin/sh")
    done = subprocess.run(
        [str(launcher), "--root", str(tmp_path), "--state", str(tmp_path / "state"), "images", "ls", "-q"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert done.stdout == ""


def test_the_group_finder_knows_every_global_option_with_a_value() -> None:
    from pycontainerd._cli.main import _VALUED
    from pycontainerd._cli.main import parser as _parser

    parser = _parser([])
    valued = {name for a in parser.arguments if a.option and a.action != "store_true" for name in a.names}
    assert valued == set(_VALUED)
