"""The registry client (pycontainerd._remotes) against real docker-registry processes on 127.0.0.1.

Three private registries, each started for this module with its own config and storage in a temporary
directory and stopped by pid: anonymous, htpasswd (basic auth), and token auth with a token server
this module runs in a thread. Nothing here contacts any other registry: every name is 127.0.0.1:PORT.
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyrunc_acceptance_oci_images as oci_images
import pyrunc_acceptance_peers as peers
import pytest

from pycontainerd._errors import AuthenticationError, DigestMismatchError, RegistryError
from pycontainerd._remotes import (
    OCI_MANIFEST,
    Credentials,
    Descriptor,
    Progress,
    ProgressState,
)
from pycontainerd._remotes.reference import Reference, ReferenceError
from pycontainerd._remotes.resolver import Resolver

if TYPE_CHECKING:
    pass

CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar"
USER, PASSWORD = "tester", "s3cret-pw"  # for the repr test; the auth registries have their own

# --------------------------------------------------------------------------------------------------
# References


@pytest.mark.parametrize(
    ("text", "expected", "domain", "path", "tag"),
    [
        ("busybox", "docker.io/library/busybox:latest", "docker.io", "library/busybox", "latest"),
        ("busybox:1.36", "docker.io/library/busybox:1.36", "docker.io", "library/busybox", "1.36"),
        ("user/app", "docker.io/user/app:latest", "docker.io", "user/app", "latest"),
        ("docker.io/library/x:tag", "docker.io/library/x:tag", "docker.io", "library/x", "tag"),
        ("index.docker.io/x", "docker.io/library/x:latest", "docker.io", "library/x", "latest"),
        ("localhost/app", "localhost/app:latest", "localhost", "app", "latest"),
        ("localhost:5000/a/b:v1", "localhost:5000/a/b:v1", "localhost:5000", "a/b", "v1"),
        ("127.0.0.1:5000/app", "127.0.0.1:5000/app:latest", "127.0.0.1:5000", "app", "latest"),
        ("[::1]:5000/app:x", "[::1]:5000/app:x", "[::1]:5000", "app", "x"),
        ("quay.io/org/sub/app:1", "quay.io/org/sub/app:1", "quay.io", "org/sub/app", "1"),
        ("a__b/c-d.e_f", "docker.io/a__b/c-d.e_f:latest", "docker.io", "a__b/c-d.e_f", "latest"),
    ],
)
def test_references_normalise_like_docker(text: str, expected: str, domain: str, path: str, tag: str) -> None:
    ref = Reference.parse(text)
    assert (str(ref), ref.domain, ref.path, ref.tag, ref.digest) == (expected, domain, path, tag, None)


def test_a_digest_reference_gets_no_tag_and_keeps_a_given_one() -> None:
    digest = "sha256:" + "a" * 64
    ref = Reference.parse(f"127.0.0.1:5000/app@{digest}")
    assert (ref.tag, ref.digest, ref.object) == (None, digest, digest)
    both = Reference.parse(f"app:1.0@{digest}")
    assert str(both) == f"docker.io/library/app:1.0@{digest}"
    assert both.object == digest


def test_docker_hub_names_map_to_its_api_host_without_contacting_it() -> None:
    assert Reference.parse("busybox").endpoint_host == "registry-1.docker.io"
    assert Reference.parse("127.0.0.1:5000/x").endpoint_host == "127.0.0.1:5000"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("Busybox", "lowercase"),
        ("app:", "invalid tag"),
        ("app:-x", "invalid tag"),
        ("app:" + "t" * 129, "invalid tag"),
        ("app@sha256:abc", "sha256 needs 64"),
        ("app@md5:" + "a" * 32, "unsupported algorithm"),
        ("app@sha256:" + "A" * 64, "lowercase hex"),
        ("a" * 64, "image ID"),
        ("host:5000/", "invalid repository"),
        ("-bad.host/app", "invalid registry host"),
        ("a//b", "invalid repository"),
        ("app/", "invalid repository"),
        ("x/" + "a" * 260, "longer than 255"),
        ("127.0.0.1:5000/App", "lowercase"),
    ],
)
def test_bad_references_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ReferenceError, match=message):
        Reference.parse(text)


def test_descriptors_check_their_digest_and_round_trip_through_json() -> None:
    raw = {
        "mediaType": OCI_MANIFEST,
        "digest": "sha256:" + "b" * 64,
        "size": 7,
        "annotations": {"k": "v"},
        "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"},
    }
    descriptor = Descriptor.from_json(raw)
    assert descriptor.to_json() == raw
    assert descriptor.is_manifest
    with pytest.raises(ValueError, match="invalid digest"):
        Descriptor(LAYER_TYPE, "sha256:xyz", 1)
    with pytest.raises(ValueError, match="invalid descriptor"):
        Descriptor.from_json({"mediaType": OCI_MANIFEST})
    assert "s3cret" not in repr(Credentials(USER, PASSWORD))


def test_plain_http_only_for_loopback_and_insecure_hosts() -> None:
    with Resolver(insecure_hosts=["registry.test:5000"]) as resolver:
        transport = resolver._transport
        assert transport.base_url("127.0.0.1:5000") == "http://127.0.0.1:5000"
        assert transport.base_url("localhost") == "http://localhost"
        assert transport.base_url("[::1]:80") == "http://[::1]:80"
        assert transport.base_url("registry.test:5000") == "http://registry.test:5000"
        assert transport.base_url("registry.test") == "https://registry.test"
        assert transport.base_url("127.0.0.1.example.com") == "https://127.0.0.1.example.com"
        with pytest.raises(RegistryError, match="plain HTTP"):
            transport.send("GET", "http://registry.test/v2/")  # refused before any lookup


# --------------------------------------------------------------------------------------------------
# Registries


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------------------------------
# A small image, made here


class _Image:
    def __init__(self, marker: str) -> None:
        self.layer = f"a layer's bytes for {marker}\n".encode() * 1000
        config = {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["sh"], "Labels": {"marker": marker}},
            "rootfs": {"type": "layers", "diff_ids": [_digest(self.layer)]},
        }
        self.config = json.dumps(config, sort_keys=True).encode()
        self.config_desc = Descriptor(CONFIG_TYPE, _digest(self.config), len(self.config))
        self.layer_desc = Descriptor(LAYER_TYPE, _digest(self.layer), len(self.layer))
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": self.config_desc.to_json(),
            "layers": [self.layer_desc.to_json()],
        }
        self.manifest = json.dumps(manifest, sort_keys=True).encode()
        self.manifest_desc = Descriptor(OCI_MANIFEST, _digest(self.manifest), len(self.manifest))

    def push(self, resolver: Resolver, ref: str, *, chunk_size: int | None = None) -> list[Progress]:
        events: list[Progress] = []
        pusher = resolver.pusher(ref)
        for desc, data in ((self.config_desc, self.config), (self.layer_desc, self.layer)):
            pusher.push_blob(desc, io.BytesIO(data), chunk_size=chunk_size, progress=events.append)
        assert pusher.push_manifest(self.manifest_desc, self.manifest) == self.manifest_desc.digest
        return events

    def pull_and_compare(self, resolver: Resolver, ref: str) -> None:
        name, desc = resolver.resolve(ref)
        assert desc == self.manifest_desc
        assert name.digest == self.manifest_desc.digest
        fetcher = resolver.fetcher(name)
        assert fetcher.fetch_bytes(desc) == self.manifest
        manifest = json.loads(fetcher.fetch_bytes(desc))
        config = Descriptor.from_json(manifest["config"])
        layer = Descriptor.from_json(manifest["layers"][0])
        assert fetcher.fetch_bytes(config) == self.config
        events: list[Progress] = []
        with fetcher.fetch(layer, progress=events.append) as stream:
            assert stream.read() == self.layer
        assert events[-1] == Progress(
            layer.digest, layer.size, layer.size, ProgressState.DONE, layer.media_type
        )
        assert all(e.state is ProgressState.DOWNLOADING for e in events[:-1])


def _blob_file(registry_root: Path, digest: str) -> Path:
    hexdigest = digest.removeprefix("sha256:")
    return registry_root / "data/docker/registry/v2/blobs/sha256" / hexdigest[:2] / hexdigest / "data"


# --------------------------------------------------------------------------------------------------
# Anonymous registry


def test_push_then_resolve_and_pull_back_the_same_bytes(registry: Any) -> None:
    image = _Image("monolithic")
    ref = f"{registry.address}/remotes/app:1.0"
    with Resolver() as resolver:
        events = image.push(resolver, ref)
        assert [e.state for e in events if e.state is not ProgressState.UPLOADING] == [ProgressState.DONE] * 2
        assert any(e.state is ProgressState.UPLOADING for e in events)
        image.pull_and_compare(resolver, ref)
        image.pull_and_compare(resolver, f"{registry.address}/remotes/app@{image.manifest_desc.digest}")
        assert resolver.pusher(ref).blob_exists(image.layer_desc)


def test_a_chunked_upload_gives_the_same_image(registry: Any) -> None:
    image = _Image("chunked")
    ref = f"{registry.address}/remotes/chunked:v1"
    with Resolver() as resolver:
        events = image.push(resolver, ref, chunk_size=1000)
        uploading = [e.done for e in events if e.digest == image.layer_desc.digest]
        assert len(uploading) > 5 and uploading[-1] == image.layer_desc.size
        image.pull_and_compare(resolver, ref)
        # pushed again: every blob is found by HEAD, nothing is read from the streams
        pusher = resolver.pusher(ref)
        assert pusher.push_blob(image.layer_desc, io.BytesIO(b"")) is ProgressState.EXISTS


def test_blobs_mount_across_repositories_and_fall_back_to_upload(registry: Any) -> None:
    image = _Image("mount")
    with Resolver() as resolver:
        image.push(resolver, f"{registry.address}/remotes/source:1")
        target = resolver.pusher(f"{registry.address}/remotes/target:1")
        assert not target.blob_exists(image.layer_desc)
        events: list[Progress] = []
        state = target.push_blob(
            image.layer_desc, io.BytesIO(b""), mount_from=["remotes/source"], progress=events.append
        )
        assert state is ProgressState.MOUNTED
        assert events == [
            Progress(
                image.layer_desc.digest,
                image.layer_desc.size,
                image.layer_desc.size,
                state,
                image.layer_desc.media_type,
            )
        ]
        assert target.blob_exists(image.layer_desc)
        # a source that lacks the blob: the registry opens an upload (202) and the bytes go up
        state = target.push_blob(image.config_desc, io.BytesIO(image.config), mount_from=["remotes/nowhere"])
        assert state is ProgressState.DONE
        target.push_manifest(image.manifest_desc, image.manifest)
        image.pull_and_compare(resolver, f"{registry.address}/remotes/target:1")


def test_a_corrupted_blob_is_detected_on_fetch(registry: Any) -> None:
    image = _Image("corrupt")
    ref = f"{registry.address}/remotes/corrupt:1"
    with Resolver() as resolver:
        image.push(resolver, ref)
        stored = _blob_file(registry.root, image.layer_desc.digest)
        data = bytearray(stored.read_bytes())
        data[100] ^= 0xFF  # same size, other bytes
        stored.write_bytes(bytes(data))
        with resolver.fetcher(ref).fetch(image.layer_desc) as stream, pytest.raises(DigestMismatchError):
            stream.read()


def test_a_missing_tag_and_a_lying_manifest_are_errors(registry: Any) -> None:
    image = _Image("errors")
    with Resolver() as resolver:
        with pytest.raises(RegistryError) as missing:
            resolver.resolve(f"{registry.address}/remotes/none:nope")
        assert missing.value.status == 404
        pusher = resolver.pusher(f"{registry.address}/remotes/errors:1")
        liar = Descriptor(OCI_MANIFEST, "sha256:" + "0" * 64, len(image.manifest))
        with pytest.raises(DigestMismatchError):
            pusher.push_manifest(liar, image.manifest)
        with pytest.raises(RegistryError, match=r"MANIFEST_BLOB_UNKNOWN|BLOB_UNKNOWN"):
            pusher.push_manifest(image.manifest_desc, image.manifest)  # its blobs were never pushed


def test_skopeo_sees_what_we_pushed(registry: Any) -> None:
    image = _Image("skopeo-inspect")
    ref = f"{registry.address}/remotes/inspected:2.0"
    with Resolver() as resolver:
        image.push(resolver, ref)
    result = subprocess.run(
        [peers.require("skopeo"), "inspect", "--tls-verify=false", f"docker://{ref}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    inspected = json.loads(result.stdout)
    assert inspected["Digest"] == image.manifest_desc.digest
    assert inspected["Labels"] == {"marker": "skopeo-inspect"}
    assert inspected["Layers"] == [image.layer_desc.digest]


def test_we_pull_what_skopeo_pushed(registry: Any, tmp_path: Path) -> None:
    layout = oci_images.write_busybox_layout(tmp_path / "oci")
    ref = oci_images.push_to_registry(layout, registry.address, "remotes/busybox")
    with Resolver() as resolver:
        name, desc = resolver.resolve(ref)
        assert desc.digest == layout.manifest_digest
        fetcher = resolver.fetcher(name)
        manifest = fetcher.fetch_bytes(desc)
        assert manifest == layout.blob(layout.manifest_digest).read_bytes()
        for raw in [json.loads(manifest)["config"], *json.loads(manifest)["layers"]]:
            blob = Descriptor.from_json(raw)
            with fetcher.fetch(blob) as stream:
                assert stream.read() == layout.blob(blob.digest).read_bytes()


# --------------------------------------------------------------------------------------------------
# Basic auth (htpasswd)


def test_basic_auth_push_and_pull(basic_registry: Any) -> None:
    image = _Image("basic")
    ref = f"{basic_registry.address}/remotes/basic:1"
    asked: list[str] = []

    def credentials(host: str) -> Credentials:
        asked.append(host)
        given: Credentials = basic_registry.credentials
        return given

    with Resolver(credentials=credentials) as resolver:
        image.push(resolver, ref)
        image.pull_and_compare(resolver, ref)
    assert set(asked) == {basic_registry.address}


def test_basic_auth_without_or_with_wrong_credentials_fails_clearly(basic_registry: Any) -> None:
    ref = f"{basic_registry.address}/remotes/basic:1"
    with Resolver() as resolver, pytest.raises(AuthenticationError, match="requires credentials") as exc:
        resolver.resolve(ref)
    assert exc.value.status == 401
    with (
        Resolver(credentials=lambda host: Credentials(basic_registry.user, "wrong")) as resolver,
        pytest.raises(AuthenticationError) as exc,
    ):
        resolver.resolve(ref)
    assert exc.value.status == 401


def test_login_checks_basic_credentials(basic_registry: Any) -> None:
    with Resolver(credentials=lambda host: basic_registry.credentials) as resolver:
        resolver.login(basic_registry.address)
    with (
        Resolver(credentials=lambda host: Credentials(basic_registry.user, "wrong")) as resolver,
        pytest.raises(AuthenticationError, match="401") as exc,
    ):
        resolver.login(basic_registry.address)
    assert exc.value.status == 401


# --------------------------------------------------------------------------------------------------
# Bearer tokens


def test_bearer_token_flow_push_pull_and_mount(token_registry: Any) -> None:
    address, server = token_registry.address, token_registry.token_server
    image = _Image("bearer")
    with Resolver(credentials=lambda host: token_registry.credentials) as resolver:
        image.push(resolver, f"{address}/remotes/bearer:1")
        image.pull_and_compare(resolver, f"{address}/remotes/bearer:1")
        before = len(server.requests)
        image.pull_and_compare(resolver, f"{address}/remotes/bearer:1")
        assert len(server.requests) == before  # tokens are cached per scope
        target = resolver.pusher(f"{address}/remotes/bearer-copy:1")
        state = target.push_blob(image.layer_desc, io.BytesIO(b""), mount_from=["remotes/bearer"])
        assert state is ProgressState.MOUNTED
    scopes = {scope for request in server.requests for scope in request.get("scope", [])}
    assert "repository:remotes/bearer:pull,push" in scopes
    assert "repository:remotes/bearer:pull" in scopes
    assert all(request["service"] == [server.SERVICE] for request in server.requests)


def test_bearer_token_refused_without_credentials(token_registry: Any) -> None:
    address = token_registry.address
    with Resolver() as resolver, pytest.raises(AuthenticationError, match="token server"):
        resolver.resolve(f"{address}/remotes/bearer:1")


def test_login_gets_a_token_for_no_scope(token_registry: Any) -> None:
    address, server = token_registry.address, token_registry.token_server
    before = len(server.requests)
    with Resolver(credentials=lambda host: token_registry.credentials) as resolver:
        resolver.login(address)
    assert [request.get("scope") for request in server.requests[before:]] == [None]
    with (
        Resolver(credentials=lambda host: Credentials(token_registry.user, "wrong")) as resolver,
        pytest.raises(AuthenticationError, match="refused the credentials"),
    ):
        resolver.login(address)


# --------------------------------------------------------------------------------------------------
# Transient failures


def test_5xx_and_429_are_retried_with_backoff_then_given_up() -> None:
    """A fake registry on 127.0.0.1 answers 503, 429 (Retry-After: 0), then the manifest."""
    manifest = b'{"schemaVersion":2}'
    answers: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        def do_HEAD(self) -> None:
            status = [503, 429][len(answers)] if len(answers) < 2 else 200
            if self.path.startswith("/v2/always/"):
                status = 502
            answers.append(status)
            self.send_response(status)
            if status == 429:
                self.send_header("Retry-After", "0")
            self.send_header("Content-Type", OCI_MANIFEST)
            self.send_header("Docker-Content-Digest", _digest(manifest))
            self.send_header("Content-Length", str(len(manifest)))
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    address = f"127.0.0.1:{httpd.server_address[1]}"
    try:
        with Resolver(retries=2, backoff=0.01) as resolver:
            _, desc = resolver.resolve(f"{address}/flaky:1")
            assert desc == Descriptor(OCI_MANIFEST, _digest(manifest), len(manifest))
            assert answers == [503, 429, 200]
            with pytest.raises(RegistryError) as exc:
                resolver.resolve(f"{address}/always:1")
            assert exc.value.status == 502
            assert answers[3:] == [502, 502, 502]  # the first try and two retries, no more
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(10)


def test_mirrors_are_asked_in_turn_for_docker_io_names_only() -> None:
    from pycontainerd._client import _resolve

    class Fake:
        """Answers for the hosts in ``has``; records what it was asked (nothing is contacted)."""

        def __init__(self, *has: str) -> None:
            self.has = has
            self.asked: list[str] = []

        def resolve(self, ref: Reference) -> tuple[Reference, Any]:
            self.asked.append(str(ref))
            if ref.domain in self.has:
                return ref, None
            raise RegistryError(f"{ref}: not found", 404)

    mirrors = ["127.0.0.1:5001", "127.0.0.1:5002"]
    second = Fake("127.0.0.1:5002")
    assert (
        str(_resolve(second, Reference.parse("busybox"), mirrors)[0])
        == "127.0.0.1:5002/library/busybox:latest"
    )
    assert second.asked == ["127.0.0.1:5001/library/busybox:latest", "127.0.0.1:5002/library/busybox:latest"]
    upstream = Fake("docker.io")
    assert (
        str(_resolve(upstream, Reference.parse("busybox"), mirrors)[0]) == "docker.io/library/busybox:latest"
    )
    assert upstream.asked[-1] == "docker.io/library/busybox:latest"  # after both mirrors failed
    other = Fake("127.0.0.1:5000")
    _resolve(other, Reference.parse("127.0.0.1:5000/app:1"), mirrors)
    assert other.asked == ["127.0.0.1:5000/app:1"]  # a name of another registry: no mirror
