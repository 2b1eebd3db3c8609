"""The image endpoints, driven by the real docker CLI and docker-py against a private engine."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import docker
import pyrunc_acceptance_oci_images as oci_images  # registered by conftest.py
import pytest

from pyengine import Daemon, DaemonConfig

TYPE_CHECKING = False
if TYPE_CHECKING:
    from conftest import DockerCLI


def config_digest(layout: Any) -> str:
    index = json.loads((Path(layout.directory) / "index.json").read_text())
    manifest_digest = index["manifests"][0]["digest"]
    blobs = Path(layout.directory) / "blobs" / "sha256"
    manifest = json.loads((blobs / manifest_digest.removeprefix("sha256:")).read_text())
    digest: str = manifest["config"]["digest"]
    return digest


def test_load_list_inspect_tag_and_remove_with_the_docker_cli(
    engine: Daemon, docker_cli: DockerCLI, docker_archive: Path, layout: Any
) -> None:
    image_id = config_digest(layout)
    assert docker_cli("load", "-i", str(docker_archive)).stdout.strip() == "Loaded image: busybox:latest"
    listed = docker_cli("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}").stdout.split("\n")
    assert listed[0] == f"busybox:latest {image_id.removeprefix('sha256:')[:12]}"
    inspected = docker_cli("image", "inspect", "busybox", "--format", "{{.Id}} {{.Os}} {{json .Config.Cmd}}")
    assert inspected.stdout.split() == [image_id, "linux", '["sh"]']

    docker_cli("tag", "busybox", "example.test/team/busybox:v1")
    tags = docker_cli("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
    assert sorted(tags) == ["busybox:latest", "example.test/team/busybox:v1"]
    refused = docker_cli("rmi", image_id[7:19], check=False)
    assert refused.returncode == 1
    assert "image is referenced in multiple repositories" in refused.stderr

    assert docker_cli("rmi", "example.test/team/busybox:v1").stdout.split() == [
        "Untagged:",
        "example.test/team/busybox:v1",
    ]
    gone = docker_cli("rmi", "busybox").stdout.splitlines()
    assert gone == ["Untagged: busybox:latest", f"Deleted: {image_id}"]
    assert docker_cli("images", "-q").stdout == ""
    missing = docker_cli("image", "inspect", "busybox", check=False)
    assert missing.returncode == 1 and "No such image: busybox" in missing.stderr


def test_save_then_load_into_another_engine_keeps_the_id(
    engine: Daemon, docker_cli: DockerCLI, docker_archive: Path, layout: Any, scratch: Path
) -> None:
    docker_cli("load", "-i", str(docker_archive))
    docker_cli("save", "-o", str(scratch / "saved.tar"), "busybox")
    other = DaemonConfig(
        hosts=[f"unix://{scratch}/other.sock"], data_root=scratch / "data2", exec_root=scratch / "run2"
    )
    with Daemon(other):
        client = docker.DockerClient(base_url=other.hosts[0], version="auto")
        try:
            (image,) = client.images.load((scratch / "saved.tar").read_bytes())
            assert image.id == config_digest(layout)
            assert image.tags == ["busybox:latest"]
        finally:
            client.close()


def test_pull_from_a_loopback_registry_with_progress(
    engine: Daemon, docker_cli: DockerCLI, registry: Any, layout: Any
) -> None:
    ref = oci_images.push_to_registry(layout, registry.address, "pulled/busybox")
    pulled = docker_cli("pull", ref)
    assert f"Status: Downloaded newer image for {ref}" in pulled.stdout
    # One line per layer (busybox has one), as dockerd prints: not the manifest's, not the config's.
    completed = [line for line in pulled.stdout.splitlines() if line.endswith(": Pull complete")]
    assert completed == [f"{layout.layer_digest.removeprefix('sha256:')[:12]}: Pull complete"]
    assert docker_cli("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split() == [ref]
    missing = docker_cli("pull", f"{registry.address}/pulled/busybox:nope", check=False)
    assert missing.returncode == 1
    assert "not found" in missing.stderr


def test_docker_py_lists_gets_pulls_and_saves(
    engine: Daemon, config: DaemonConfig, registry: Any, layout: Any
) -> None:
    ref = oci_images.push_to_registry(layout, registry.address, "py/busybox")
    client = docker.DockerClient(base_url=config.hosts[0], version="auto")
    try:
        image = client.images.pull(ref)
        assert image.id == config_digest(layout)
        assert [i.id for i in client.images.list()] == [image.id]
        assert client.images.get(ref).tags == [ref]
        saved = b"".join(image.save())
        assert saved[257:262] == b"ustar"  # a tar
        client.images.remove(ref)
        assert client.images.list() == []
    finally:
        client.close()


def test_list_filters_by_reference_and_refuses_unknown_filters(
    engine: Daemon, config: DaemonConfig, docker_archive: Path
) -> None:
    client = docker.APIClient(base_url=config.hosts[0], version="auto")
    try:
        client.load_image(docker_archive.read_bytes())
        client.tag("busybox", "example.test/other", "v2")
        found = client.images(filters={"reference": "example.test/*"})
        assert [i["RepoTags"] for i in found] == [["busybox:latest", "example.test/other:v2"]]
        assert client.images(filters={"reference": "nomatch*"}) == []
        with pytest.raises(docker.errors.APIError, match="invalid filter 'colour'"):
            client.images(filters={"colour": "blue"})
    finally:
        client.close()


def test_a_bad_archive_is_refused_with_a_message(engine: Daemon, config: DaemonConfig) -> None:
    client = docker.APIClient(base_url=config.hosts[0], version="auto")
    try:
        with pytest.raises(docker.errors.APIError, match="loading the archive"):
            list(client.load_image(b"not a tar at all" * 100))
    finally:
        client.close()


def test_docker_io_names_are_pulled_through_a_registry_mirror(
    scratch: Path, docker_cli: DockerCLI, registry: Any, layout: Any
) -> None:
    # The mirror holds library/busybox, so docker.io itself is never asked.
    oci_images.push_to_registry(layout, registry.address, "library/busybox")
    config = DaemonConfig(
        hosts=[f"unix://{scratch}/engine.sock"],
        data_root=scratch / "data",
        exec_root=scratch / "run",
        registry_mirrors=[f"http://{registry.address}"],
    )
    with Daemon(config):
        assert docker_cli("info", "--format", "{{json .RegistryConfig.Mirrors}}").stdout.strip() == (
            f'["http://{registry.address}/"]'
        )
        pulled = docker_cli("pull", "busybox")
        assert "Status: Downloaded newer image for busybox:latest" in pulled.stdout
        assert docker_cli("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split() == [
            "busybox:latest"
        ]
