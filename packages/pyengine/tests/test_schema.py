"""Every answer of a representative set of endpoints, checked against the vendored swagger: the
system's, the images', the containers' through a container's life, exec's, and the errors (400,
401/400 of auth, 404, 409) in ErrorResponse's shape. Raw HTTP over the engine's unix socket, so that
what is checked is the engine's bytes, not a client's reading of them."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from pyengine import Daemon, DaemonConfig
from pyrunc.testing import register_module

register_module("pyengine_swagger", Path(__file__).with_name("engine_swagger.py"))
import pyengine_swagger as swagger  # noqa: E402

TYPE_CHECKING = False
if TYPE_CHECKING:
    from conftest import DockerCLI


@pytest.fixture
def sock(engine: Daemon, config: DaemonConfig, docker_cli: DockerCLI, docker_archive: Path) -> Path:
    docker_cli("load", "-i", str(docker_archive))
    return config.socket_paths[0]


def test_the_translation_says_nullable_as_json_schema_does() -> None:
    assert swagger.to_json_schema({"type": "string", "x-nullable": True}) == {"type": ["string", "null"]}
    assert swagger.to_json_schema({"$ref": "#/definitions/X", "x-nullable": True}) == {
        "anyOf": [{"$ref": "#/definitions/X"}, {"type": "null"}]
    }
    assert swagger.to_json_schema(
        {"type": "object", "properties": {"type": {"type": "string", "enum": ["a"], "x-nullable": True}}}
    ) == {"type": "object", "properties": {"type": {"type": ["string", "null"], "enum": ["a", None]}}}
    # And the checks bite: a null where the spec has none, a missing required field, a wrong type.
    for body in ({"Id": "x", "Warnings": None}, {"Warnings": []}, {"Id": 1, "Warnings": []}):
        with pytest.raises(AssertionError, match="disagrees with the spec"):
            swagger.check("/containers/create", "post", 201, body)
    swagger.check("/containers/create", "post", 201, {"Id": "x", "Warnings": []})


def test_system_endpoints(sock: Path) -> None:
    status, _, body = swagger.call(sock, "GET", "/_ping")
    assert (status, body) == (200, b"OK")  # the spec's schema: a string, given as text/plain
    swagger.checked(sock, "GET", "/version", expect=200)
    swagger.checked(sock, "GET", "/info", expect=200)
    swagger.checked(sock, "GET", "/system/df", expect=200)
    swagger.checked(sock, "GET", "/system/df", query={"type": "container"}, expect=200)
    swagger.checked(sock, "GET", "/system/df", query={"type": "nonsense"}, expect=400)


def test_image_endpoints(sock: Path, docker_cli: DockerCLI) -> None:
    images = swagger.checked(sock, "GET", "/images/json", query={"all": "1"}, expect=200)
    assert [i["RepoTags"] for i in images] == [["busybox:latest"]]
    swagger.checked(sock, "GET", "/images/{name}/json", {"name": "busybox"}, expect=200)
    swagger.checked(sock, "GET", "/images/{name}/history", {"name": "busybox"}, expect=200)
    swagger.checked(sock, "GET", "/images/{name}/json", {"name": "nosuch"}, expect=404)
    docker_cli("tag", "busybox", "other:1")
    swagger.checked(sock, "DELETE", "/images/{name}", {"name": "other:1"}, expect=200)
    swagger.checked(sock, "POST", "/images/prune", expect=200)
    swagger.checked(sock, "POST", "/images/prune", query={"filters": json.dumps({"dangling": ["false"]})},
                    expect=200)  # fmt: skip
    swagger.checked(sock, "POST", "/images/prune", query={"filters": "{bad"}, expect=400)


def test_a_container_through_its_life(sock: Path) -> None:
    started = time.time()
    created = swagger.checked(
        sock, "POST", "/containers/create", query={"name": "life"},
        body={"Image": "busybox", "Cmd": ["sleep", "30"], "Labels": {"a": "b"}}, expect=201,
    )  # fmt: skip
    cid = created["Id"]
    ids = {"id": cid}
    swagger.checked(sock, "POST", "/containers/create", query={"name": "life"}, body={"Image": "busybox"},
                    expect=409)  # fmt: skip
    swagger.checked(sock, "GET", "/containers/json", query={"all": "1"}, expect=200)
    swagger.checked(sock, "GET", "/containers/{id}/json", ids, expect=200)
    swagger.checked(sock, "POST", "/containers/{id}/start", ids, expect=204)
    swagger.checked(sock, "POST", "/containers/{id}/start", ids, expect=304)
    listed = swagger.checked(sock, "GET", "/containers/json", expect=200)
    assert [c["Id"] for c in listed] == [cid]
    swagger.checked(sock, "GET", "/containers/{id}/json", ids, expect=200)
    swagger.checked(sock, "GET", "/containers/{id}/top", ids, expect=200)
    swagger.checked(sock, "GET", "/containers/{id}/stats", ids, {"stream": "0", "one-shot": "1"}, expect=200)
    swagger.checked(sock, "GET", "/system/df", expect=200)
    exec_id = swagger.checked(
        sock, "POST", "/containers/{id}/exec", ids, body={"Cmd": ["true"], "AttachStdout": True}, expect=201
    )["Id"]
    swagger.checked(sock, "GET", "/exec/{id}/json", {"id": exec_id}, expect=200)
    swagger.checked(sock, "GET", "/exec/{id}/json", {"id": "nosuch"}, expect=404)
    swagger.checked(sock, "DELETE", "/containers/{id}", ids, expect=409)  # running
    swagger.checked(sock, "POST", "/containers/{id}/pause", ids, expect=204)
    swagger.checked(sock, "GET", "/containers/{id}/json", ids, expect=200)
    swagger.checked(sock, "POST", "/containers/{id}/unpause", ids, expect=204)
    swagger.checked(sock, "POST", "/containers/{id}/kill", ids, expect=204)
    wait = swagger.checked(sock, "POST", "/containers/{id}/wait", ids, expect=200)
    assert wait["StatusCode"] == 137
    swagger.checked(sock, "GET", "/containers/{id}/json", ids, expect=200)
    swagger.checked(sock, "POST", "/containers/{id}/kill", ids, expect=409)  # not running
    swagger.checked(sock, "GET", "/containers/{id}/stats", ids, {"stream": "0", "one-shot": "1"}, expect=200)
    swagger.checked(sock, "POST", "/containers/{id}/exec", ids, body={"Cmd": ["true"]}, expect=409)
    events = {
        "since": str(int(started)),
        "until": str(int(time.time()) + 1),
        "filters": '{"type":["container"]}',
    }
    first = swagger.checked(sock, "GET", "/events", query=events, expect=200, first_line=True)
    assert (first["Action"], first["Actor"]["ID"]) == ("create", cid)
    pruned = swagger.checked(sock, "POST", "/containers/prune", expect=200)
    assert pruned["ContainersDeleted"] == [cid]
    swagger.checked(sock, "GET", "/containers/{id}/json", ids, expect=404)
    assert swagger.checked(sock, "POST", "/containers/prune", expect=200)["ContainersDeleted"] == []


def test_containers_the_docker_cli_creates(sock: Path, docker_cli: DockerCLI) -> None:
    """The CLI sends every field, most null or empty: what inspect and the list show of them."""
    cid = docker_cli(
        "create", "--name", "cli", "-e", "A=1", "--label", "l=v", "--restart", "on-failure:2", "-t",
        "--network", "none", "busybox", "true",
    ).stdout.strip()  # fmt: skip
    swagger.checked(sock, "GET", "/containers/{id}/json", {"id": cid}, expect=200)
    docker_cli("start", "-a", "cli")
    swagger.checked(sock, "GET", "/containers/{id}/json", {"id": cid}, expect=200)
    swagger.checked(sock, "GET", "/containers/json", query={"all": "1", "size": "1"}, expect=200)
    swagger.checked(sock, "GET", "/system/df", expect=200)
    swagger.checked(sock, "DELETE", "/containers/{id}", {"id": cid}, expect=204)


def test_errors_have_the_error_shape(sock: Path, docker_cli: DockerCLI) -> None:
    def error(method: str, target: str, body: bytes | None, status: int) -> str:
        got, _, data = swagger.call(sock, method, target, body)
        assert got == status, data
        decoded: dict[str, Any] = json.loads(data)
        swagger.check(target.split("?")[0].removeprefix("/v1.44").replace("nosuch", "{id}"), method.lower(),
                      status, decoded)  # fmt: skip
        return str(decoded["message"])

    assert error("POST", "/v1.44/containers/create", b"{not json", 400) == "the request body is not JSON"
    assert "is not supported by pyengine" in error(
        "POST", "/v1.44/containers/create", b'{"Image": "busybox", "Shell": ["sh"]}', 400
    )
    assert error("GET", "/v1.44/containers/nosuch/json", None, 404) == "No such container: nosuch"
    assert error("POST", "/v1.44/auth", b'{"serveraddress": "127.0.0.1:5000"}', 400) == "username is required"
    # docker search: refused, saying why, as an error docker prints.
    status, _, data = swagger.call(sock, "GET", swagger.url("/images/search", query={"term": "busybox"}))
    assert status == 400
    swagger.check("/images/search", "get", 400, json.loads(data))
    done = docker_cli("search", "busybox", check=False)
    assert done.returncode == 1 and "image search is not supported by pyengine" in done.stderr
    status, _, _ = swagger.call(sock, "GET", swagger.url("/images/search", query={"term": "x", "limit": "x"}))
    assert status == 400
