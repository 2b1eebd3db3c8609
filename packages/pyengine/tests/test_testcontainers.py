"""testcontainers-python against the engine: a generic container started, waited on by its logs,
and stopped, with the reaper (Ryuk) off and the image from a loopback registry."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import docker
import pyrunc_acceptance_oci_images as oci_images  # registered by conftest.py
import pytest
from testcontainers.core.container import DockerContainer
from testcontainers.core.wait_strategies import LogMessageWaitStrategy

from pyengine import Daemon, DaemonConfig


@pytest.fixture
def testcontainers_env(config: DaemonConfig, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("DOCKER_HOST", config.hosts[0])
    monkeypatch.setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
    yield


def test_a_generic_container_waits_on_its_logs(
    engine: Daemon, testcontainers_env: None, registry: Any, layout: Any
) -> None:
    image = oci_images.push_to_registry(layout, registry.address, "tc/busybox")
    container = (
        DockerContainer(image)
        .with_command(["sh", "-c", "echo warming up; sleep 0.3; echo ready to serve; sleep 60"])
        .with_env("GREETING", "hi")
        .waiting_for(LogMessageWaitStrategy("ready to serve").with_startup_timeout(30))
    )
    with container:  # started once its log says it is ready
        code, output = container.exec(["sh", "-c", "echo $GREETING"])
        assert (code, output) == (0, b"hi\n")
        stdout, _ = container.get_logs()
        assert stdout == b"warming up\nready to serve\n"
        wrapped = container.get_wrapped_container()
        wrapped.reload()
        assert wrapped.status == "running"
    client = docker.DockerClient(base_url=engine.config.hosts[0], version="auto")
    try:
        assert client.containers.list(all=True) == []  # stopped and removed at the block's end
    finally:
        client.close()
