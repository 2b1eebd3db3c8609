"""docker-compose (Debian's 1.29, the Python one, through its own docker-py) against pyengined: two
services, one reaching the other by name and the host reaching it through a published port, their
data on a named volume; ``down -v`` removes everything it made."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

from pyengine import Daemon

if TYPE_CHECKING:
    from conftest import DockerCLI

COMPOSE_FILE = """\
version: "3.7"
services:
  web:
    image: busybox:latest
    command: ["sh", "-c", "echo served from the volume > /data/index.html; exec httpd -f -p 80 -h /data"]
    volumes: ["site:/data"]
    ports: ["127.0.0.1:{port}:80"]
  client:
    image: busybox:latest
    depends_on: [web]
    command: ["sleep", "300"]
volumes:
  site: {{}}
"""


def test_compose_up_reaches_by_name_and_port_then_down_removes_everything(
    engine: Daemon, loaded: DockerCLI, scratch: Path
) -> None:
    compose = shutil.which("docker-compose", path="/usr/bin:/usr/local/bin")
    assert compose, "docker-compose is missing: scripts/bootstrap installs Debian's docker-compose"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    project = scratch / "project"
    project.mkdir()
    (project / "docker-compose.yml").write_text(COMPOSE_FILE.format(port=port))
    env = {**loaded.env, "DOCKER_HOST": loaded.host, "COMPOSE_PROJECT_NAME": "pyt"}

    def compose_run(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [compose, *args], cwd=project, env=env, capture_output=True, text=True, timeout=120,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done

    compose_run("up", "-d")
    try:
        fetch = "printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc -w 2 web 80 | tail -1"
        for _ in range(50):
            out = compose_run("exec", "-T", "client", "sh", "-c", fetch).stdout
            if out == "served from the volume\n":
                break
            time.sleep(0.1)
        assert out == "served from the volume\n"
        with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
            connection.sendall(b"GET /index.html HTTP/1.0\r\n\r\n")
            assert connection.makefile("rb").read().endswith(b"\r\n\r\nserved from the volume\n")
        assert loaded("volume", "ls", "-q").stdout.split() == ["pyt_site"]
        network = json.loads(loaded("network", "inspect", "pyt_default").stdout)[0]
        assert len(network["Containers"]) == 2
        assert network["Labels"]["com.docker.compose.project"] == "pyt"
    finally:
        compose_run("down", "-v")
    assert loaded("ps", "-aq").stdout == ""
    assert loaded("volume", "ls", "-q").stdout == ""
    assert loaded("network", "ls", "--filter", "type=custom", "-q").stdout == ""
