"""The vendored Engine API swagger (``spec/docker-engine-api-v1.44.yaml``) for tests: raw HTTP to an
engine's unix socket, each answer checked against the schema its operation documents; and the
operations' parameters, for a fuzz to draw requests from.

Swagger 2.0 schemas are JSON Schema draft 4 with a few additions; one matters here:
``x-nullable: true`` lets a value be null, which JSON Schema says with a type. :func:`to_json_schema`
translates it: ``type: X`` becomes ``type: [X, "null"]`` (an ``enum`` gains null), and a schema
without a type (a ``$ref``, an ``allOf``) becomes ``anyOf: [that schema, {type: null}]``. Swagger's
other additions (``x-go-name``, ``example``, ``discriminator``) change nothing a validator checks
and are left to be ignored. A field without ``x-nullable`` must not be null, and
``additionalProperties`` means what it means in JSON Schema (a map's values; absent: any extra
field is allowed), as in the spec. The translated definitions are one resource of a
:mod:`referencing` registry, under :data:`URI`, which every ``#/definitions/…`` reference resolves
in.
"""

from __future__ import annotations

import functools
import http.client
import json
import socket
import urllib.parse
from pathlib import Path
from typing import Any

import jsonschema
import referencing
import referencing.jsonschema
import yaml

SPEC_PATH = Path(__file__).resolve().parents[3] / "spec" / "docker-engine-api-v1.44.yaml"
URI = "urn:docker-engine-api:v1.44"

#: Fields dockerd itself sends as null where the spec does not say so; the peer's behaviour wins:
#: an exec's ExitCode while it runs (dockerd's ``*int``; docker-py users poll it for None).
_PEER_NULLABLE = {("/exec/{id}/json", "get", 200): ("ExitCode",)}

#: The keywords whose value is a schema, a list of schemas, or a map of names to schemas.
_ONE = ("items", "additionalProperties", "not")
_MANY = ("allOf", "anyOf", "oneOf")
_NAMED = ("properties", "definitions")


@functools.cache
def spec() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(SPEC_PATH.read_text())
    return loaded


def to_json_schema(node: Any) -> Any:
    """A swagger schema as JSON Schema (draft 4): ``x-nullable`` said as a type."""
    if not isinstance(node, dict):
        return node  # additionalProperties: true/false
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "x-nullable" or key in ("example", "examples"):
            continue
        if key in _ONE:
            out[key] = to_json_schema(value)
        elif key in _MANY:
            out[key] = [to_json_schema(v) for v in value]
        elif key in _NAMED:
            out[key] = {name: to_json_schema(v) for name, v in value.items()}
        else:
            out[key] = value
    if node.get("x-nullable") is True:
        if "type" in out and "$ref" not in out:
            kinds = out["type"] if isinstance(out["type"], list) else [out["type"]]
            out["type"] = [*kinds, "null"]
            if "enum" in out:
                out["enum"] = [*out["enum"], None]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


@functools.cache
def _document() -> tuple[dict[str, Any], dict[tuple[str, str, int], int]]:
    """The translated definitions and every operation's response schema (under ``responses``,
    by index: a path is no JSON pointer's friend), and each (path, method, status)'s index."""
    responses: dict[str, Any] = {}
    index: dict[tuple[str, str, int], int] = {}
    for path, operations in spec()["paths"].items():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            for status, response in operation["responses"].items():
                if "schema" in response:
                    index[(path, method, int(status))] = len(responses)
                    schema = to_json_schema(response["schema"])
                    for field in _PEER_NULLABLE.get((path, method, int(status)), ()):
                        kind = schema["properties"][field]["type"]
                        schema["properties"][field]["type"] = [kind, "null"]
                    responses[str(len(responses))] = schema
    document = {"definitions": to_json_schema({"definitions": spec()["definitions"]})["definitions"]}
    document["responses"] = responses
    return document, index


@functools.cache
def _registry() -> referencing.Registry[Any]:
    document, _ = _document()
    resource = referencing.jsonschema.DRAFT4.create_resource(document)
    registry: referencing.Registry[Any] = referencing.Registry().with_resource(URI, resource)
    return registry


def documented(path: str, method: str, status: int) -> bool:
    """Whether the spec lists ``status`` for the operation (an error status may be undocumented:
    every error still has ErrorResponse's shape)."""
    responses = spec()["paths"][path][method.lower()]["responses"]
    return status in responses or str(status) in responses


def response_validator(path: str, method: str, status: int) -> jsonschema.Draft4Validator | None:
    """The validator of the operation's ``status`` answer; None for an answer without a body.
    An error status the operation does not list is checked as ErrorResponse."""
    _, index = _document()
    key = (path, method.lower(), status)
    if key in index:
        schema: dict[str, Any] = {"$ref": f"{URI}#/responses/{index[key]}"}
    elif status >= 400:
        schema = {"$ref": f"{URI}#/definitions/ErrorResponse"}
    else:
        assert documented(path, method, status), f"{method} {path}: {status} is not a documented answer"
        return None
    return jsonschema.Draft4Validator(schema, registry=_registry())


def check(path: str, method: str, status: int, body: Any) -> None:
    """Assert that ``body`` (decoded JSON) is what the spec says ``method path`` answers with
    ``status``; the message names every disagreement."""
    validator = response_validator(path, method, status)
    assert validator is not None, f"{method} {path} -> {status}: the spec documents no body"
    errors = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
    assert not errors, f"{method} {path} -> {status} disagrees with the spec:\n" + "\n".join(
        f"  at {'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in errors[:20]
    )


# -- raw HTTP over the unix socket -------------------------------------------------------------------


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str | Path, timeout: float = 60) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = str(path)

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.socket_path)


def url(template: str, path_params: dict[str, str] | None = None, query: dict[str, Any] | None = None) -> str:
    """``/v1.44`` and ``template`` with its ``{name}``s filled in (quoted), and the query."""
    path = template
    for name, value in (path_params or {}).items():
        path = path.replace("{" + name + "}", urllib.parse.quote(value, safe=""))
    text = f"/v1.44{path}"
    if query:
        text += "?" + urllib.parse.urlencode(query, doseq=True)
    return text


def call(
    socket_path: str | Path,
    method: str,
    target: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    *,
    timeout: float = 60,
    first_line: bool = False,
) -> tuple[int, dict[str, str], bytes]:
    """One request; the status, headers and body (only its first line with ``first_line``, for a
    stream that goes on)."""
    connection = UnixConnection(socket_path, timeout)
    try:
        all_headers = {"Content-Type": "application/json"} if body is not None else {}
        connection.request(method, target, body=body, headers={**all_headers, **(headers or {})})
        response = connection.getresponse()
        data = response.readline() if first_line else response.read()
        return response.status, dict(response.getheaders()), data
    finally:
        connection.close()


def checked(
    socket_path: str | Path,
    method: str,
    template: str,
    path_params: dict[str, str] | None = None,
    query: dict[str, Any] | None = None,
    body: Any = None,
    *,
    expect: int,
    first_line: bool = False,
) -> Any:
    """Call the operation, assert its status is ``expect`` and its body the spec's; the decoded
    body (None for none)."""
    raw = json.dumps(body).encode() if body is not None else None
    status, headers, data = call(
        socket_path, method, url(template, path_params, query), raw, first_line=first_line
    )
    assert status == expect, f"{method} {template}: {status} {data[:300]!r}"
    validator = response_validator(template, method, status)
    if validator is None:
        assert data == b"", f"{method} {template} -> {status}: a body the spec does not document: {data!r}"
        return None
    assert headers.get("Content-Type", "").startswith("application/json"), headers
    decoded = json.loads(data)
    check(template, method, status, decoded)
    return decoded
