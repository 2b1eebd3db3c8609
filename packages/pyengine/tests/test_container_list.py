"""docker ps's filters and sizes through the real docker CLI and docker-py: id, name (a regular
expression), label, status, exited, ancestor (by name, ID, and of a committed image), before and
since, network, volume, the filters answered for what pyengine has not (publish, expose, health,
is-task), unknown filters refused as dockerd refuses them, limit, and ``docker ps -s``."""

from __future__ import annotations

import json
from pathlib import Path

import docker
import pytest

from pyengine import Daemon, DaemonConfig

TYPE_CHECKING = False
if TYPE_CHECKING:
    from conftest import DockerCLI


@pytest.fixture
def made(engine: Daemon, docker_cli: DockerCLI, docker_archive: Path, tmp_path: Path) -> DockerCLI:
    """Four containers: ``first`` exited 0, ``second`` exited 3 (labelled), ``third`` running (with a
    bind and no network), ``fourth`` of an image committed from ``first``, created."""
    cli = docker_cli
    cli("load", "-i", str(docker_archive))
    cli(
        "run",
        "--name",
        "first",
        "--network",
        "none",
        "-l",
        "tier=web",
        "busybox",
        "sh",
        "-c",
        "head -c 100000 /dev/zero > /blob",
    )
    labels = ["-l", "tier=db", "-l", "solo"]
    cli("run", "--name", "second", "--network", "none", *labels, "busybox", "sh", "-c", "exit 3", check=False)
    (tmp_path / "data").mkdir()
    cli(
        "run",
        "-d",
        "--name",
        "third",
        "--network",
        "none",
        "-v",
        f"{tmp_path / 'data'}:/data",
        "busybox",
        "sleep",
        "60",
    )
    cli("commit", "first", "127.0.0.1:5000/derived:1")
    cli("create", "--name", "fourth", "127.0.0.1:5000/derived:1", "true")
    return cli


def _names(cli: DockerCLI, *args: str) -> list[str]:
    return cli("ps", "--format", "{{.Names}}", *args).stdout.split()


def test_filters_through_the_cli(made: DockerCLI, tmp_path: Path) -> None:
    third_id = made("inspect", "-f", "{{.Id}}", "third").stdout.strip()
    assert _names(made) == ["third"]
    assert _names(made, "-a") == ["fourth", "third", "second", "first"]
    assert _names(made, "-a", "-f", f"id={third_id[:10]}") == ["third"]
    assert _names(made, "-a", "-f", "name=^/s") == ["second"]
    assert _names(made, "-a", "-f", "name=ir") == ["third", "first"]
    assert _names(made, "-a", "-f", "label=tier") == ["second", "first"]
    assert _names(made, "-a", "-f", "label=tier=db", "-f", "label=solo") == ["second"]
    assert _names(made, "-f", "status=exited") == ["second", "first"]  # a status filter looks at all
    assert _names(made, "-a", "-f", "status=created") == ["fourth"]
    assert _names(made, "-a", "-f", "exited=3") == ["second"]
    assert _names(made, "-a", "-f", "exited=0") == ["first"]
    assert _names(made, "-a", "-f", "ancestor=busybox") == ["fourth", "third", "second", "first"]
    assert _names(made, "-a", "-f", "ancestor=127.0.0.1:5000/derived:1") == ["fourth"]
    image_id = made("image", "inspect", "-f", "{{.Id}}", "busybox").stdout.strip()
    assert _names(made, "-a", "-f", f"ancestor={image_id}") == ["fourth", "third", "second", "first"]
    assert _names(made, "-a", "-f", "before=third") == ["second", "first"]
    assert _names(made, "-a", "-f", "since=second") == ["fourth", "third"]
    assert _names(made, "-a", "-f", "network=none") == ["third", "second", "first"]
    assert _names(made, "-a", "-f", f"volume={tmp_path / 'data'}") == ["third"]
    assert _names(made, "-a", "-f", "volume=/data") == ["third"]
    assert _names(made, "-a", "-f", "publish=80") == []
    assert _names(made, "-a", "-f", "expose=80") == []
    assert _names(made, "-a", "-f", "health=none") == ["fourth", "third", "second", "first"]
    assert _names(made, "-a", "-f", "is-task=true") == []
    assert _names(made, "-n", "2") == ["fourth", "third"]
    assert _names(made, "-l") == ["fourth"]
    for bad, message in (
        ("nope=1", "invalid filter 'nope'"),
        ("status=sleeping", "invalid filter 'status=sleeping'"),
        ("before=ghost", "No such container: ghost"),
    ):
        done = made("ps", "-a", "-f", bad, check=False)
        assert done.returncode != 0 and message in done.stderr, done.stderr


def test_sizes(made: DockerCLI, config: DaemonConfig) -> None:
    rows = [json.loads(line) for line in made("ps", "-a", "-s", "--format", "{{json .}}").stdout.splitlines()]
    sizes = {row["Names"]: row["Size"] for row in rows}
    assert sizes["first"].split()[0].endswith("kB") and "(virtual " in sizes["first"]
    client = docker.APIClient(base_url=config.hosts[0], version="1.44")
    try:
        listed = {c["Names"][0]: c for c in client.containers(all=True, size=True)}
        assert listed["/first"]["SizeRw"] >= 100_000
        assert listed["/first"]["SizeRootFs"] > listed["/first"]["SizeRw"] + 500_000  # busybox's layer
        assert listed["/fourth"]["SizeRootFs"] > listed["/first"]["SizeRootFs"] - listed["/first"]["SizeRw"]
        assert "SizeRw" not in client.containers(all=True)[0]
    finally:
        client.close()


def test_filters_through_docker_py(made: DockerCLI, config: DaemonConfig) -> None:
    client = docker.DockerClient(base_url=config.hosts[0], version="1.44")
    try:
        assert [c.name for c in client.containers.list(all=True, filters={"label": "tier=web"})] == ["first"]
        assert [c.name for c in client.containers.list(filters={"status": "created"})] == ["fourth"]
        assert [c.name for c in client.containers.list(all=True, filters={"name": "second"})] == ["second"]
        with pytest.raises(docker.errors.APIError, match="invalid filter 'color'"):
            client.containers.list(filters={"color": "blue"})
    finally:
        client.close()
