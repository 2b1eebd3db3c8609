"""Fixtures for pycontainerd's tests (run against the installed packages, as root): the session
fails if they leave mounts, cgroups, network namespaces or links, or processes on the host.

Registries are private docker-registry processes on 127.0.0.1, one per module, stopped by pid:
anonymous (``registry``), htpasswd (``basic_registry``) and token auth with a token server run in a
thread (``token_registry``). ``write_layered_layout`` builds a multi-layer image of incompressible
data offline, for the pulls that must take long enough to be interrupted.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import hashlib
import io
import json
import os
import random
import shutil
import socket
import subprocess
import tarfile
import threading
import time
import urllib.parse
import uuid
import warnings
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pyrunc.pytest_plugin import host_is_left_clean
from pyrunc.testing import register_module

# The repository's helpers for peers (docker-registry), offline images and the vendored
# specifications, imported by these names.
REPO_ROOT = Path(__file__).resolve().parents[3]
register_module("pyrunc_acceptance_peers", REPO_ROOT / "tests" / "peers.py")
register_module("pyrunc_acceptance_oci_images", REPO_ROOT / "tests" / "oci_images.py")
register_module("pyrunc_acceptance_specs", REPO_ROOT / "tests" / "specs.py")
import pyrunc_acceptance_oci_images as oci_images  # noqa: E402
import pyrunc_acceptance_peers as peers  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from pycontainerd import Credentials

__all__ = [  # fixtures for the tests here, and the image builder
    "AuthRegistry",
    "LayeredImage",
    "basic_registry",
    "build_layered",
    "host_is_left_clean",
    "layout",
    "registry",
    "token_registry",
    "write_layered_layout",
]

USER, PASSWORD = "tester", "s3cret-pw"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A private docker-registry on 127.0.0.1 for the module, stopped by pid afterwards."""
    with peers.registry(tmp_path_factory.mktemp("registry")) as running:
        yield running


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """busybox as an OCI image layout, built offline."""
    return oci_images.write_busybox_layout(tmp_path_factory.mktemp("layout") / "busybox")


# --------------------------------------------------------------------------------------------------
# Registries with authentication


@dataclass(frozen=True)
class AuthRegistry:
    """A running registry that wants ``user``:``password`` (directly, or from ``token_server``)."""

    address: str
    user: str
    password: str
    token_server: _TokenServer | None = None

    @property
    def credentials(self) -> Credentials:
        from pycontainerd import Credentials

        return Credentials(self.user, self.password)


@contextlib.contextmanager
def _auth_registry(tmp: Path, auth: str) -> Iterator[str]:
    """docker-registry on 127.0.0.1 with ``auth`` (a YAML block) in its config; yields its address."""
    binary = peers.require("docker-registry")
    tmp.mkdir(parents=True, exist_ok=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config, log = tmp / "config.yml", tmp / "registry.log"
    config.write_text(
        "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {tmp / 'data'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n  secret: remotes-tests-{os.getpid()}\n" + auth
    )
    with log.open("wb") as out:
        process = subprocess.Popen(
            [binary, "serve", str(config)], stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise peers.PeerError(f"docker-registry did not start: {log.read_text()[-2000:]}")
            time.sleep(0.05)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def basic_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthRegistry]:
    """A private docker-registry on 127.0.0.1 behind htpasswd (basic auth) for USER:PASSWORD."""
    tmp = tmp_path_factory.mktemp("basic")
    htpasswd = tmp.parent / f"{tmp.name}.htpasswd"
    htpasswd.write_text(f"{USER}:{_bcrypt(PASSWORD)}\n")
    auth = f"auth:\n  htpasswd:\n    realm: test\n    path: {htpasswd}\n"
    try:
        with _auth_registry(tmp, auth) as address:
            yield AuthRegistry(address, USER, PASSWORD)
    finally:
        htpasswd.unlink()


def _bcrypt(password: str) -> str:
    """A bcrypt hash for htpasswd: the bcrypt package when installed, else glibc's crypt ($2b$)."""
    try:
        import bcrypt  # type: ignore[import-not-found, unused-ignore]

        return str(bcrypt.hashpw(password.encode(), bcrypt.gensalt()).decode())
    except ImportError:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import crypt

            hashed = crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH))
        if not hashed or not hashed.startswith("$2"):
            pytest.fail("no bcrypt: pip install bcrypt (libcrypt lacks $2b$)", pytrace=False)
        return hashed


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class _TokenServer:
    """A token server in a thread on 127.0.0.1: JWTs signed with a key whose self-signed cert the
    registry trusts (``rootcertbundle``), granting every action asked for, to ``USER`` only."""

    SERVICE, ISSUER = "remotes-test-registry", "remotes-test-issuer"

    def __init__(self, tmp: Path) -> None:
        import datetime

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "remotes-test-token-signer")])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self._key, hashes.SHA256())
        )
        self.cert_path = tmp / "token-signer.pem"
        self.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self._x5c = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
        self.requests: list[dict[str, list[str]]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                server.requests.append(query)
                expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
                if self.headers.get("Authorization") != expected:
                    self.send_response(401)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = json.dumps({"access_token": server.token(query.get("scope", []))}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.realm = f"http://127.0.0.1:{self._httpd.server_address[1]}/token"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def token(self, scopes: list[str]) -> str:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self._x5c]}
        claims = {
            "iss": self.ISSUER,
            "sub": USER,
            "aud": self.SERVICE,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        signature = self._key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64url(signature)}"

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(10)


@pytest.fixture(scope="module")
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthRegistry]:
    """A private docker-registry on 127.0.0.1 behind a token server (Bearer) granting USER:PASSWORD."""
    keys = tmp_path_factory.mktemp("token-keys")
    server = _TokenServer(keys)
    auth = (
        f"auth:\n  token:\n    realm: {server.realm}\n    service: {server.SERVICE}\n"
        f"    issuer: {server.ISSUER}\n    rootcertbundle: {server.cert_path}\n"
    )
    try:
        with _auth_registry(tmp_path_factory.mktemp("token"), auth) as address:
            yield AuthRegistry(address, USER, PASSWORD, server)
    finally:
        server.stop()


# --------------------------------------------------------------------------------------------------
# A multi-layer image of incompressible data


@dataclass(frozen=True)
class LayeredImage:
    """An OCI layout of the busybox layer and then layers of random bytes, and what it holds."""

    image: Any  # oci_images.OCIImage: push it with oci_images.push_to_registry
    layers: tuple[str, ...]  # layer digests, bottom first
    diff_ids: tuple[str, ...]
    files: dict[str, bytes]  # path in the root filesystem -> content, for the random layers

    @property
    def manifest_digest(self) -> str:
        digest: str = self.image.manifest_digest
        return digest


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _random_layer(name: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        directory = tarfile.TarInfo("data")
        directory.type, directory.mode, directory.mtime = tarfile.DIRTYPE, 0o755, oci_images.EPOCH
        tar.addfile(directory)
        entry = tarfile.TarInfo(f"data/{name}")
        entry.size, entry.mode, entry.mtime = len(data), 0o644, oci_images.EPOCH
        tar.addfile(entry, io.BytesIO(data))
    return buffer.getvalue()


def write_layered_layout(
    directory: Path, sizes: Sequence[int], *, seed: int, tag: str = "latest"
) -> LayeredImage:
    """An OCI layout in ``directory``: busybox, then one gzip layer per size holding that many random
    bytes (``data/layer<N>``, from ``random.Random(seed)``), linux/amd64, ``index.json`` naming ``tag``."""
    busybox = oci_images.write_busybox_layout(directory, tag=tag)
    blobs = directory / "blobs" / "sha256"
    generator = random.Random(seed)
    manifest = busybox.read_json(busybox.manifest_digest)
    config = busybox.read_json(busybox.config_digest)
    layers, diff_ids, files = [busybox.layer_digest], [busybox.diff_id], {}
    for n, size in enumerate(sizes, start=1):
        data = generator.randbytes(size)
        files[f"data/layer{n}"] = data
        tar = _random_layer(f"layer{n}", data)
        # Level 1: random bytes do not shrink, and the test only needs gzip's framing.
        blob = gzip.compress(tar, compresslevel=1, mtime=0)
        (blobs / _sha256(blob).removeprefix("sha256:")).write_bytes(blob)
        layers.append(_sha256(blob))
        diff_ids.append(_sha256(tar))
        manifest["layers"].append(
            {"mediaType": oci_images.LAYER_MEDIA_TYPE, "digest": _sha256(blob), "size": len(blob)}
        )
    config["rootfs"] = {"type": "layers", "diff_ids": diff_ids}
    config_bytes = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    (blobs / _sha256(config_bytes).removeprefix("sha256:")).write_bytes(config_bytes)
    manifest["config"] = {**manifest["config"], "digest": _sha256(config_bytes), "size": len(config_bytes)}
    manifest_bytes = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    (blobs / _sha256(manifest_bytes).removeprefix("sha256:")).write_bytes(manifest_bytes)
    index = json.loads((directory / "index.json").read_bytes())
    index["manifests"][0].update(digest=_sha256(manifest_bytes), size=len(manifest_bytes))
    (directory / "index.json").write_text(json.dumps(index, sort_keys=True, separators=(",", ":")))
    for stale in (busybox.manifest_digest, busybox.config_digest):
        (blobs / stale.removeprefix("sha256:")).unlink()
    image = oci_images.OCIImage(
        directory, tag, _sha256(manifest_bytes), _sha256(config_bytes), busybox.layer_digest, busybox.diff_id
    )
    return LayeredImage(image, tuple(layers), tuple(diff_ids), files)


@pytest.fixture(scope="session")
def build_layered() -> Callable[..., LayeredImage]:
    """:func:`write_layered_layout`, for the test modules (under importlib mode they cannot import it)."""
    return write_layered_layout
