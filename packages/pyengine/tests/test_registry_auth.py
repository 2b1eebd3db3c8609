"""docker login, push and pull against registries with authentication, and image prune of what a
moved tag left dangling. The registries are pycontainerd's test registries (htpasswd, and a token
server in a thread), each a private docker-registry on 127.0.0.1 stopped by pid."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import docker
import pyrunc_acceptance_oci_images as oci_images  # registered by conftest.py
import pytest

from pyengine import DaemonConfig
from pyrunc.testing import register_module

TYPE_CHECKING = False
if TYPE_CHECKING:
    from conftest import DockerCLI

REPO_ROOT = Path(__file__).resolve().parents[3]
register_module(
    "pycontainerd_test_registries", REPO_ROOT / "packages" / "pycontainerd" / "tests" / "conftest.py"
)
import pycontainerd_test_registries as registries  # noqa: E402

# pycontainerd's fixtures, used here as they are.
basic_registry = registries.basic_registry
token_registry = registries.token_registry
build_layered = registries.build_layered


def _login(cli: DockerCLI, address: str, user: str, password: str) -> subprocess.CompletedProcess[str]:
    """``docker login ADDRESS -u USER --password-stdin``, the password on its standard input."""
    return subprocess.run(
        [cli.binary, "-H", cli.host, "login", address, "-u", user, "--password-stdin"],
        env=cli.env,
        input=password,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("kind", ["basic_registry", "token_registry"])
def test_login_push_and_pull_back(kind: str, request: pytest.FixtureRequest, loaded: DockerCLI) -> None:
    auth = request.getfixturevalue(kind)
    wrong = _login(loaded, auth.address, auth.user, "wrong")
    assert wrong.returncode == 1
    assert f"login attempt to http://{auth.address}/v2/ failed with status: 401 Unauthorized" in wrong.stderr
    ref = f"{auth.address}/pushed/busybox:v1"
    loaded("tag", "busybox", ref)
    anonymous = loaded("push", ref, check=False)
    assert anonymous.returncode == 1 and "unauthorized: " in anonymous.stderr

    done = _login(loaded, auth.address, auth.user, auth.password)
    assert done.returncode == 0, done.stderr
    assert "Login Succeeded" in done.stdout
    since = time.time()
    pushed = loaded("push", ref).stdout
    assert f"The push refers to repository [{auth.address}/pushed/busybox]" in pushed
    assert "Pushed" in pushed and "v1: digest: sha256:" in pushed
    again = loaded("push", ref).stdout
    assert "Layer already exists" in again
    image_id = loaded("image", "inspect", "busybox", "--format", "{{.Id}}").stdout.strip()
    loaded("rmi", ref, "busybox")
    assert loaded("images", "-q").stdout == ""
    pulled = loaded("pull", ref).stdout
    assert f"Status: Downloaded newer image for {ref}" in pulled
    assert loaded("image", "inspect", ref, "--format", "{{.Id}}").stdout.strip() == image_id
    events = loaded(
        "events", "--since", f"{since:.6f}", "--until", f"{time.time():.6f}", "--filter", "type=image",
        "--format", "{{.Action}} {{.Actor.ID}}",
    ).stdout.splitlines()  # fmt: skip
    assert events[:2] == [f"push {ref}", f"push {ref}"]
    assert events[-1] == f"pull {ref}"


def test_docker_py_logs_in_and_pushes(loaded: DockerCLI, config: DaemonConfig, basic_registry: Any) -> None:
    client = docker.APIClient(base_url=config.hosts[0], version="auto")
    try:
        answer = client.login(basic_registry.user, basic_registry.password, registry=basic_registry.address)
        assert answer == {"Status": "Login Succeeded", "IdentityToken": ""}
        with pytest.raises(docker.errors.APIError, match="401 Unauthorized"):
            client.login(basic_registry.user, "wrong", registry=basic_registry.address, reauth=True)
        repository = f"{basic_registry.address}/py/busybox"
        client.tag("busybox", repository, "v2")
        auth = {"username": basic_registry.user, "password": basic_registry.password}
        lines = list(client.push(repository, tag="v2", auth_config=auth, stream=True, decode=True))
        assert lines[-1]["aux"]["Tag"] == "v2" and not any("error" in line for line in lines)
    finally:
        client.close()


def test_image_prune_removes_what_a_moved_tag_left_dangling(
    loaded: DockerCLI, registry: Any, build_layered: Any, tmp_path: Path
) -> None:
    layered = build_layered(tmp_path / "layered", [4096], seed=7)
    other = oci_images.push_to_registry(layered.image, registry.address, "layered")
    loaded("pull", other)
    busybox_id = loaded("image", "inspect", "busybox", "--format", "{{.Id}}").stdout.strip()
    loaded("tag", other, "busybox:latest")  # busybox's only name moves: the old image dangles
    assert loaded("images", "-q", "--no-trunc", "--filter", "dangling=true").stdout.split() == [busybox_id]
    assert loaded("images", "--format", "{{.Repository}}").stdout.split().count("<none>") == 1
    kept_by_label = loaded("image", "prune", "-f", "--filter", "label=nosuch").stdout
    assert busybox_id not in kept_by_label
    pruned = loaded("image", "prune", "-f").stdout
    assert f"deleted: {busybox_id}" in pruned and "Total reclaimed space: 0B" not in pruned
    assert loaded("images", "-q", "--filter", "dangling=true").stdout == ""
    # dangling=false: every image no container uses; this one is used.
    loaded("create", "--name", "user", "busybox", "true")
    assert "Total reclaimed space: 0B" in loaded("image", "prune", "-a", "-f").stdout
    loaded("rm", "user")
    everything = loaded("image", "prune", "-a", "-f").stdout
    assert "untagged: busybox:latest" in everything
    assert loaded("images", "-q").stdout == ""
