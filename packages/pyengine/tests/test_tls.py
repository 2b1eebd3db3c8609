"""The engine on TCP, over TLS: mutual TLS with ``--tlsverify`` (the docker CLI by flags and by its
environment, docker-py), TLS alone with ``--tls``, plain TCP on loopback only when asked; clients
without a certificate of the engine's CA are refused. Everything listens on 127.0.0.1 only."""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import socket
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import attrs
import docker
import docker.tls
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pyengine import ConfigError, Daemon, DaemonConfig, DaemonError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from conftest import DockerCLI


# -- certificates ----------------------------------------------------------------------------------


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    path.chmod(0o600)


def _write_cert(cert: x509.Certificate, path: Path) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


@attrs.frozen
class Authority:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @classmethod
    def make(cls, common: str) -> Authority:
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(common))
            .issuer_name(_name(common))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(key, hashes.SHA256())
        )
        return cls(key, cert)

    def issue(self, common: str, *, server: bool) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
        return key, builder.sign(self.key, hashes.SHA256())


@attrs.frozen
class Certs:
    """The engine's CA, its server certificate, and client certificates: one of its CA in
    ``client/`` (named as DOCKER_CERT_PATH wants them), and one of another CA in ``stranger/``."""

    root: Path

    @property
    def ca(self) -> Path:
        return self.root / "ca.pem"

    @property
    def server_cert(self) -> Path:
        return self.root / "server-cert.pem"

    @property
    def server_key(self) -> Path:
        return self.root / "server-key.pem"

    @property
    def client(self) -> Path:
        return self.root / "client"

    @property
    def stranger(self) -> Path:
        return self.root / "stranger"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    root = tmp_path_factory.mktemp("certs")
    certs = Certs(root)
    authority, other = Authority.make("pyengine test CA"), Authority.make("another CA")
    _write_cert(authority.cert, certs.ca)
    key, cert = authority.issue("pyengine", server=True)
    _write_key(key, certs.server_key)
    _write_cert(cert, certs.server_cert)
    for directory, issuer in ((certs.client, authority), (certs.stranger, other)):
        directory.mkdir()
        key, cert = issuer.issue("client", server=False)
        _write_key(key, directory / "key.pem")
        _write_cert(cert, directory / "cert.pem")
        _write_cert(authority.cert, directory / "ca.pem")  # both trust the engine's server
    return certs


# -- engines ---------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def port() -> int:
    return _free_port()


@pytest.fixture
def config(scratch: Path, certs: Certs, port: int) -> DaemonConfig:
    """The engine on its unix socket (first: the fixtures' cleanup speaks to it) and on
    127.0.0.1:PORT with mutual TLS."""
    return DaemonConfig(
        hosts=[f"unix://{scratch}/engine.sock", f"tcp://127.0.0.1:{port}"],
        data_root=scratch / "data",
        exec_root=scratch / "run",
        tlsverify=True,
        tlscacert=certs.ca,
        tlscert=certs.server_cert,
        tlskey=certs.server_key,
    )


@pytest.fixture
def tls_cli(engine: Daemon, docker_cli: DockerCLI, port: int) -> DockerCLI:
    """The docker CLI on the engine's TCP address (the TLS flags are the test's to give)."""
    return type(docker_cli)(f"tcp://127.0.0.1:{port}", Path(docker_cli.env["HOME"]))


def _flags(directory: Path, *, verify: bool = True) -> list[str]:
    return [
        "--tlsverify" if verify else "--tls",
        "--tlscacert",
        str(directory / "ca.pem"),
        "--tlscert",
        str(directory / "cert.pem"),
        "--tlskey",
        str(directory / "key.pem"),
    ]


# -- mutual TLS ------------------------------------------------------------------------------------


def test_docker_cli_with_a_client_certificate_runs_a_container(
    tls_cli: DockerCLI, certs: Certs, docker_archive: Path
) -> None:
    flags = _flags(certs.client)
    version = tls_cli(*flags, "version", "--format", "{{.Server.APIVersion}} {{.Server.Os}}")
    assert version.stdout.split() == ["1.44", "linux"]
    tls_cli(*flags, "load", "-i", str(docker_archive))
    done = tls_cli(*flags, "run", "--rm", "--network", "none", "busybox", "echo", "hi")
    assert done.stdout == "hi\n"
    # attached, with stdin over the hijacked TLS connection, and an exit code back
    done = tls_cli(*flags, "run", "-i", "--rm", "--network", "none", "busybox", "sh", "-c", "cat; exit 3",
                   input="through tls\n", check=False)  # fmt: skip
    assert (done.returncode, done.stdout) == (3, "through tls\n")
    assert tls_cli(*flags, "ps", "-a", "-q").stdout == ""


def test_docker_cli_takes_the_engine_and_certificates_from_its_environment(
    tls_cli: DockerCLI, certs: Certs, port: int
) -> None:
    env = {
        **tls_cli.env,
        "DOCKER_HOST": f"tcp://127.0.0.1:{port}",
        "DOCKER_TLS_VERIFY": "1",
        "DOCKER_CERT_PATH": str(certs.client),
    }
    done = subprocess.run(
        [tls_cli.binary, "info", "--format", "{{.ServerVersion}} {{json .Warnings}}"],
        env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    version, warnings = done.stdout.split(" ", 1)
    assert version and json.loads(warnings) == []  # verified: nothing to warn of
    env["DOCKER_CERT_PATH"] = str(certs.stranger)
    refused = subprocess.run(
        [tls_cli.binary, "version"], env=env, capture_output=True, text=True, timeout=60,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert refused.returncode == 1 and "Server:" not in refused.stdout


def test_docker_py_with_a_client_certificate(engine: Daemon, certs: Certs, port: int) -> None:
    tls = docker.tls.TLSConfig(
        client_cert=(str(certs.client / "cert.pem"), str(certs.client / "key.pem")),
        ca_cert=str(certs.ca),
        verify=True,
    )
    client = docker.DockerClient(base_url=f"https://127.0.0.1:{port}", tls=tls, version="auto")
    try:
        assert client.version()["ApiVersion"] == "1.44"
        assert client.containers.list(all=True) == []
    finally:
        client.close()


def test_a_client_without_a_certificate_is_refused(tls_cli: DockerCLI, certs: Certs, port: int) -> None:
    done = tls_cli("--tlsverify", "--tlscacert", str(certs.ca), "version", check=False)
    assert done.returncode == 1 and "Server:" not in done.stdout
    assert "certificate" in done.stderr or "tls" in done.stderr.lower(), done.stderr
    # The same, by hand: the handshake, or the first read after it (TLS 1.3), fails.
    context = ssl.create_default_context(cafile=str(certs.ca))
    with (
        pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)),
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as conn,
    ):
        conn.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
        conn.recv(1024)
    # Nor is plain HTTP served on the TLS port.
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        raw.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
        assert b"OK" not in raw.recv(1024)


def test_a_certificate_of_another_ca_is_refused(tls_cli: DockerCLI, certs: Certs) -> None:
    done = tls_cli(*_flags(certs.stranger), "version", check=False)
    assert done.returncode == 1 and "Server:" not in done.stdout
    assert "certificate" in done.stderr, done.stderr
    tls = docker.tls.TLSConfig(
        client_cert=(str(certs.stranger / "cert.pem"), str(certs.stranger / "key.pem")),
        ca_cert=str(certs.ca),
        verify=True,
    )
    client = docker.APIClient(base_url=tls_cli.host.replace("tcp://", "https://"), tls=tls, version="1.44")
    try:
        with pytest.raises(Exception, match=r"(?i)ssl|certificate|connection"):
            client.version()
    finally:
        client.close()


# -- TLS without client verification, plain TCP, refusals ------------------------------------------


def test_tls_without_verify_serves_any_client_and_warns(scratch: Path, certs: Certs, port: int) -> None:
    config = DaemonConfig(
        hosts=[f"tcp://127.0.0.1:{port}"],
        data_root=scratch / "data",
        exec_root=scratch / "run",
        tls=True,
        tlscert=certs.server_cert,
        tlskey=certs.server_key,
    )
    with Daemon(config):
        context = ssl.create_default_context(cafile=str(certs.ca))
        with (
            socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
            context.wrap_socket(raw, server_hostname="127.0.0.1") as conn,
        ):
            conn.sendall(b"GET /v1.44/info HTTP/1.0\r\n\r\n")
            response = b"".join(iter(lambda: conn.recv(65536), b""))
    info = json.loads(response.split(b"\r\n\r\n", 1)[1])
    assert info["Warnings"] == [
        f"API is accessible on https://127.0.0.1:{port} without TLS client verification. Access to the "
        "remote API is equivalent to root access on the host: use --tlsverify"
    ]


def test_plain_tcp_is_served_on_loopback_only_with_a_warning(scratch: Path, port: int) -> None:
    config = DaemonConfig(
        hosts=[f"tcp://127.0.0.1:{port}"], data_root=scratch / "data", exec_root=scratch / "run"
    )
    with Daemon(config):
        client = docker.APIClient(base_url=f"tcp://127.0.0.1:{port}", version="1.44")
        try:
            warnings = client.info()["Warnings"]
        finally:
            client.close()
    assert warnings == [
        f"API is accessible on http://127.0.0.1:{port} without encryption. Access to the remote API is "
        "equivalent to root access on the host: use --tlsverify"
    ]
    # Not on any other address, unless asked for on purpose (nothing is bound: refused before).
    with pytest.raises(ConfigError, match="listening on TCP without TLS gives root access"):
        DaemonConfig(hosts=["tcp://0.0.0.0:2375"], data_root=scratch / "data")
    for opt_out in ({"tls": False}, {"tlsverify": False}):
        assert DaemonConfig(hosts=["tcp://0.0.0.0"], **opt_out).tcp_addresses[0].port == 2375  # type: ignore[arg-type]
    assert DaemonConfig(hosts=["tcp://127.0.0.1"], tlsverify=True).tcp_addresses[0].port == 2376


def test_bad_tls_files_stop_the_daemon_naming_them(scratch: Path, certs: Certs, port: int) -> None:
    config = DaemonConfig(
        hosts=[f"unix://{scratch}/engine.sock", f"tcp://127.0.0.1:{port}"],
        data_root=scratch / "data",
        exec_root=scratch / "run",
        tlsverify=True,
        tlscacert=scratch / "absent-ca.pem",
        tlscert=certs.server_cert,
        tlskey=certs.server_key,
    )
    with pytest.raises(DaemonError, match=r"could not read CA certificate .*absent-ca\.pem"), Daemon(config):
        pass
    swapped = attrs.evolve(config, tlscacert=certs.ca, tlskey=certs.client / "key.pem")
    with pytest.raises(DaemonError, match="could not load X509 key pair"), Daemon(swapped):
        pass
    assert not (scratch / "engine.sock").exists()


@pytest.mark.parametrize(
    ("host", "message"),
    [
        ("tcp://127.0.0.1:99999", "invalid port '99999'"),
        ("tcp://:2376", "no address to listen on"),
        ("ssh://me@host", "only unix:///PATH sockets and tcp://HOST:PORT are supported"),
    ],
)
def test_bad_tcp_hosts_are_refused(host: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        DaemonConfig(hosts=[host], tlsverify=True)


def test_daemon_json_and_flags_take_the_tls_settings(scratch: Path, certs: Certs) -> None:
    from pyengine._config import load_config

    path = scratch / "daemon.json"
    path.write_text(
        json.dumps(
            {
                "hosts": ["tcp://127.0.0.1:2376"],
                "tlsverify": True,
                "tlscacert": str(certs.ca),
                "tlscert": str(certs.server_cert),
                "tlskey": str(certs.server_key),
            }
        )
    )
    config = load_config({}, path)
    assert (config.tlsverify, config.uses_tls, config.tls_file("tlscacert")) == (True, True, certs.ca)
    path.write_text(json.dumps({"tls": "yes"}))
    with pytest.raises(ConfigError, match="'tls' must be true or false"):
        load_config({}, path)
    from pyengine._main import _parser

    args = vars(
        _parser().parse_args(["--tlsverify", "--tls=false", "--tlscert", "/c.pem", "-H", "tcp://127.0.0.1"])
    )
    assert (args["tlsverify"], args["tls"], args["tlscert"]) == (True, False, "/c.pem")


@pytest.fixture(autouse=True)
def _no_docker_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The caller's DOCKER_* variables change neither the CLI nor the engine's default TLS files; nor
    do requests' CA bundles replace the CA given to docker-py (requests prefers them to a session's)."""
    for name in list(os.environ):
        if name.startswith("DOCKER_") or name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
            monkeypatch.delenv(name)
    yield
