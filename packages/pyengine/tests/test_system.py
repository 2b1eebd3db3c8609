"""The system endpoints, driven by the real docker CLI, docker-py and raw HTTP."""

from __future__ import annotations

import http.client
import json
import socket
from pathlib import Path
from typing import Any

import docker
import pytest

import pyengine
from pyengine import Daemon, DaemonConfig, DaemonError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from conftest import DockerCLI


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: Path) -> None:
        super().__init__("localhost")
        self.path = str(path)

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


def request(config: DaemonConfig, method: str, path: str) -> tuple[int, dict[str, str], bytes]:
    connection = UnixConnection(config.socket_paths[0])
    try:
        connection.request(method, path)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def test_docker_version_negotiates_and_shows_the_engine(engine: Daemon, docker_cli: DockerCLI) -> None:
    out = docker_cli(
        "version", "--format", "{{.Server.Version}} {{.Server.APIVersion}} {{.Server.Os}}"
    ).stdout
    assert out.split() == [pyengine.__version__, "1.44", "linux"]


def test_docker_info_reports_the_store(engine: Daemon, config: DaemonConfig, docker_cli: DockerCLI) -> None:
    out = docker_cli(
        "info",
        "--format",
        "{{.ServerVersion}}|{{.Driver}}|{{.Images}}|{{.Containers}}|{{.DockerRootDir}}|{{.LiveRestoreEnabled}}",
    ).stdout
    assert out.strip().split("|") == [
        pyengine.__version__,
        "overlayfs",
        "0",
        "0",
        str(config.data_root),
        "true",
    ]


def test_docker_py_pings_and_reads_version_and_info(engine: Daemon, config: DaemonConfig) -> None:
    client = docker.DockerClient(base_url=config.hosts[0], version="auto")
    try:
        assert client.ping() is True
        assert client.api.api_version == "1.44"
        assert client.version()["ApiVersion"] == "1.44"
        info: dict[str, Any] = client.info()
        assert info["Images"] == 0
        assert info["ID"] == (config.data_root / "engine-id").read_text().strip()
        assert "127.0.0.0/8" in info["RegistryConfig"]["InsecureRegistryCIDRs"]
    finally:
        client.close()


def test_ping_answers_get_and_head_with_the_api_version(engine: Daemon, config: DaemonConfig) -> None:
    status, headers, body = request(config, "GET", "/_ping")
    assert (status, body, headers["Api-Version"], headers["Ostype"]) == (200, b"OK", "1.44", "linux")
    status, headers, body = request(config, "HEAD", "/v1.40/_ping")
    assert (status, body, headers["Api-Version"]) == (200, b"", "1.44")


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("/v1.99/version", 400, "client version 1.99 is too new. Maximum supported API version is 1.44"),
        ("/v1.12/version", 400, "client version 1.12 is too old. Minimum supported API version is 1.24"),
        ("/vbogus/version", 400, "invalid API version 'vbogus'"),
        ("/v1.44/no/such/thing", 404, "page not found"),
    ],
)
def test_bad_requests_get_dockers_status_and_a_message(
    engine: Daemon, config: DaemonConfig, path: str, status: int, message: str
) -> None:
    got, headers, body = request(config, "GET", path)
    assert got == status
    assert headers["Content-Type"].startswith("application/json")
    assert json.loads(body)["message"].startswith(message)


def test_a_wrong_method_is_refused_with_a_message(engine: Daemon, config: DaemonConfig) -> None:
    status, _, body = request(config, "POST", "/version")
    assert status == 405
    assert json.loads(body) == {"message": "method POST not allowed for /version"}


def test_the_socket_is_group_readable_only(engine: Daemon, config: DaemonConfig) -> None:
    assert config.socket_paths[0].stat().st_mode & 0o777 == 0o660


def test_a_second_daemon_on_the_same_data_root_is_refused(
    engine: Daemon, scratch: Path, config: DaemonConfig
) -> None:
    other = DaemonConfig(
        hosts=[f"unix://{scratch}/other.sock"], data_root=config.data_root, exec_root=scratch / "run2"
    )
    with pytest.raises(DaemonError, match=r"data root .* is in use by another pyengined"), Daemon(other):
        pass
    assert not (scratch / "other.sock").exists()


def test_a_second_daemon_on_the_same_socket_is_refused(
    engine: Daemon, scratch: Path, config: DaemonConfig
) -> None:
    other = DaemonConfig(hosts=config.hosts, data_root=scratch / "data2", exec_root=scratch / "run2")
    with pytest.raises(DaemonError, match="another daemon is listening on this socket"), Daemon(other):
        pass
    assert request(config, "GET", "/_ping")[0] == 200  # the first one still serves


def test_a_stale_socket_is_replaced_and_everything_goes_at_shutdown(
    scratch: Path, config: DaemonConfig
) -> None:
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(config.socket_paths[0]))
    stale.close()  # a socket file nobody listens on, as a killed daemon leaves it
    with Daemon(config):
        assert request(config, "GET", "/_ping")[0] == 200
        assert config.effective_pidfile.read_text().strip().isdigit()
    assert not config.socket_paths[0].exists()
    assert not config.effective_pidfile.exists()
    with Daemon(config):  # the data root's lock went with the first
        assert request(config, "GET", "/_ping")[0] == 200
