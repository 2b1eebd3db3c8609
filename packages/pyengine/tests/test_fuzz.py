"""A fuzz of the engine from its swagger: for each operation of the spec, hypothesis draws requests
from the operation's parameters and body schema (well typed, wrongly typed, missing, and bodies that
are not JSON at all) and sends them over the engine's unix socket. No answer may be a 500 (dockerd's
status for a failure of the server itself), and the engine must keep answering.

Bounded and deterministic: a few examples per operation, derandomized, no example database; the
whole module takes well under a minute. The operations that would reach beyond the machine (pull,
push and login name any registry) are not fuzzed; nor are starts (a fuzzed container would run), and
the binds and mounts of a fuzzed create are dropped (a bind's missing source is made on the host).
One engine serves the module; its containers are removed at the end and nothing stays mounted."""

from __future__ import annotations

import json
import shutil
import string
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyengine import Daemon, DaemonConfig
from pyrunc.testing import register_module

register_module("pyengine_swagger", Path(__file__).with_name("engine_swagger.py"))
import pyengine_swagger as swagger  # noqa: E402

#: Not fuzzed, and why.
EXCLUDED = {
    ("post", "/images/create"): "pulls from the registry a fuzzed reference names: any host",
    ("post", "/images/{name}/push"): "pushes to the registry a fuzzed name names: any host",
    ("post", "/auth"): "logs in to the fuzzed serveraddress: any host",
    ("post", "/containers/{id}/start"): "would run a fuzzed container",
    ("post", "/containers/{id}/restart"): "would run a fuzzed container",
    ("post", "/exec/{id}/start"): "would run a fuzzed process",
}
#: HostConfig fields a fuzzed create never sends: they make directories on the host.
_HOST_TOUCHING = ("Binds", "Mounts", "Tmpfs")
_MAX_EXAMPLES = 50  # per operation: about half a minute for the module on 2 CPUs


def _operations() -> list[tuple[str, str]]:
    found = []
    for path, operations in swagger.spec()["paths"].items():
        for method in operations:
            if method in ("get", "post", "put", "delete", "head") and (method, path) not in EXCLUDED:
                found.append((method, path))
    return found


# -- strategies from the swagger ---------------------------------------------------------------------

_SCALAR_NOISE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
)
#: Any JSON at all: what a value of the wrong type looks like.
_NOISE = st.recursive(
    _SCALAR_NOISE,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema a ``$ref`` names; an ``allOf``'s parts merged into one object schema."""
    while "$ref" in schema:
        schema = swagger.spec()["definitions"][schema["$ref"].split("/")[-1]]
    if "allOf" in schema:
        merged: dict[str, Any] = {"type": "object", "properties": {}}
        for part in schema["allOf"]:
            part = _resolve(part)
            merged["properties"].update(part.get("properties", {}))
        return merged
    return schema


def values(schema: dict[str, Any], depth: int = 0) -> st.SearchStrategy[Any]:
    """Values for ``schema``: of its type (its enum's, its properties') or, as often, of another."""
    schema = _resolve(schema)
    kind = schema.get("type")
    typed: st.SearchStrategy[Any]
    if "enum" in schema:
        typed = st.sampled_from(schema["enum"])
    elif kind == "string":
        typed = st.text(max_size=16) | st.sampled_from(
            ["", "busybox", "0", "-1", "true", "{}", "../x", "a:b"]
        )
    elif kind == "integer":
        typed = st.integers(min_value=-(2**63), max_value=2**64) | st.sampled_from([0, -1, 1])
    elif kind == "number":
        typed = st.floats(allow_nan=False, allow_infinity=False)
    elif kind == "boolean":
        typed = st.booleans()
    elif depth >= 3:
        typed = _SCALAR_NOISE
    elif kind == "array":
        typed = st.lists(values(schema.get("items", {}), depth + 1), max_size=3)
    elif schema.get("properties"):
        typed = st.fixed_dictionaries(
            {}, optional={name: values(sub, depth + 1) for name, sub in schema["properties"].items()}
        )
    elif isinstance(schema.get("additionalProperties"), dict):
        typed = st.dictionaries(
            st.text(max_size=8), values(schema["additionalProperties"], depth + 1), max_size=3
        )
    else:
        typed = _NOISE
    return typed | _NOISE


def _query_text(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, str):
        return value
    return json.dumps(value)


#: Path parameters: names that exist in the engine (set up below), names that do not, and noise.
_PATH_VALUES = st.sampled_from(["fuzzed", "busybox", "busybox:latest", "nosuch", "sha256:0", "0"]) | st.text(
    alphabet=string.ascii_letters + string.digits + "-_.:@/%", min_size=1, max_size=16
)


@st.composite
def requests(draw: st.DrawFn, method: str, path: str) -> tuple[str, bytes | None]:
    """One request of the operation: its target (path and query) and body."""
    operation = swagger.spec()["paths"][path][method]
    parameters = [*swagger.spec()["paths"][path].get("parameters", []), *operation.get("parameters", [])]
    path_params: dict[str, str] = {}
    query: dict[str, Any] = {}
    body: bytes | None = None
    for parameter in parameters:
        where, name = parameter["in"], parameter["name"]
        if where == "path":
            path_params[name] = draw(_PATH_VALUES)
        elif where == "query" and draw(st.booleans()):
            if parameter.get("type") == "array":
                query[name] = [
                    _query_text(v) for v in draw(st.lists(values(parameter.get("items", {})), max_size=2))
                ]
            else:
                query[name] = _query_text(draw(values(parameter)))
        elif where == "body":
            schema = parameter.get("schema", {})
            if schema.get("type") == "string" and schema.get("format") == "binary":
                body = draw(st.binary(max_size=64))
            else:
                choice = draw(st.sampled_from(["schema", "schema", "noise", "bytes", "none"]))
                if choice == "schema":
                    value = draw(values(schema))
                    if path == "/containers/create" and isinstance(value, dict):
                        host = value.get("HostConfig")
                        if isinstance(host, dict):
                            value["HostConfig"] = {k: v for k, v in host.items() if k not in _HOST_TOUCHING}
                    body = json.dumps(value).encode()
                elif choice == "noise":
                    body = json.dumps(draw(_NOISE)).encode()
                elif choice == "bytes":
                    body = draw(st.binary(max_size=32))
    return swagger.url(path, path_params, query or None), body


# -- the engine --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fuzz_engine(docker_archive: Path) -> Iterator[Path]:
    """One engine for the module, busybox loaded and a container named ``fuzzed`` created (not
    started); every container removed at the end, nothing left mounted."""
    scratch = Path(tempfile.mkdtemp(prefix="pyengine-", dir="/tmp"))
    sock = scratch / "engine.sock"
    config = DaemonConfig(hosts=[f"unix://{sock}"], data_root=scratch / "data", exec_root=scratch / "run")
    try:
        with Daemon(config):
            client = docker.APIClient(base_url=f"unix://{sock}", version="1.44")
            try:
                with docker_archive.open("rb") as archive:
                    client.load_image(archive.read())
                client.create_container("busybox", ["true"], name="fuzzed")
                yield sock
            finally:
                for container in client.containers(all=True):
                    client.remove_container(container["Id"], force=True)
                client.close()
    finally:
        with open("/proc/self/mountinfo") as mountinfo:
            mounted = [line.split()[4] for line in mountinfo if line.split()[4].startswith(f"{scratch}/")]
        assert not mounted, f"left mounted by the fuzz: {mounted}"
        shutil.rmtree(scratch)


def _send(sock: Path, method: str, target: str, body: bytes | None) -> int:
    """The status of the answer (its headers are all a streaming answer is read for)."""
    connection = swagger.UnixConnection(sock, timeout=30)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        connection.request(method.upper(), target, body=body, headers=headers)
        return connection.getresponse().status
    finally:
        connection.close()


@pytest.mark.parametrize(("method", "path"), _operations(), ids=lambda v: str(v))
def test_no_operation_answers_malformed_requests_with_a_500(
    fuzz_engine: Path, method: str, path: str
) -> None:
    @settings(
        max_examples=_MAX_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
    )
    @given(request=requests(method, path))
    def fuzz(request: tuple[str, bytes | None]) -> None:
        target, body = request
        try:
            status = _send(fuzz_engine, method, target, body)
        except TimeoutError as exc:
            raise AssertionError(f"{method.upper()} {target}: no answer within 30 s") from exc
        assert status < 500, f"{method.upper()} {target} {body!r:.300} -> {status}"

    fuzz()
    status, _, data = swagger.call(fuzz_engine, "GET", "/_ping")
    assert (status, data) == (200, b"OK"), "the engine stopped answering"
