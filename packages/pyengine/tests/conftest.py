"""A private pyengined per test: its data root, exec root and socket in a scratch directory."""

from __future__ import annotations

import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from pyengine import Daemon, DaemonConfig
from pyengine._network.nft import Nftables
from pyrunc.testing import register_module


@pytest.fixture(scope="session", autouse=True)
def no_nftables_left() -> Iterator[None]:
    """Fail the run if an ``inet`` table that was not there at its start (the engines' and the
    tests' own) is left on the host at its end."""
    nft = Nftables()
    before = {table for table in nft.tables() if table[0] == "inet"}
    yield
    left = sorted(name for family, name in set(nft.tables()) - before if family == "inet")
    assert not left, f"nftables tables left: {left}"


@pytest.fixture
def scratch() -> Iterator[Path]:
    # Not tmp_path: a unix socket's path must stay under 108 bytes.
    directory = Path(tempfile.mkdtemp(prefix="pyengine-", dir="/tmp"))
    try:
        yield directory
    finally:
        # Never delete through a mount: a container left running keeps its root filesystem there.
        with open("/proc/self/mountinfo") as mountinfo:
            mounted = [line.split()[4] for line in mountinfo if line.split()[4].startswith(f"{directory}/")]
        assert not mounted, f"left mounted (a container was not removed): {mounted}"
        shutil.rmtree(directory)


def remove_all_containers(config: DaemonConfig) -> None:
    """Force-remove every container of the engine serving ``config``."""
    client = docker.APIClient(base_url=config.hosts[0], version="auto")
    try:
        for container in client.containers(all=True):
            client.remove_container(container["Id"], force=True)
        client.prune_networks()
    finally:
        client.close()


@pytest.fixture
def removes_containers() -> Iterator[Callable[[DaemonConfig], DaemonConfig]]:
    """For a test that starts and stops engines itself: the configurations handed to the function
    this gives get, whatever happens, an engine at the end that removes every container."""
    configs: list[DaemonConfig] = []

    def register(config: DaemonConfig) -> DaemonConfig:
        configs.append(config)
        return config

    try:
        yield register
    finally:
        for config in configs:
            with Daemon(config):
                remove_all_containers(config)


@pytest.fixture
def config(scratch: Path) -> DaemonConfig:
    # A default bridge (and nftables table) of its own: engines of several tests may run at once.
    return DaemonConfig(
        hosts=[f"unix://{scratch}/engine.sock"],
        data_root=scratch / "data",
        exec_root=scratch / "run",
        bridge=f"pyt{secrets.token_hex(4)}",
    )


@pytest.fixture
def engine(config: DaemonConfig) -> Iterator[Daemon]:
    """A running engine; the containers a test left are removed (killed first) before it stops."""
    with Daemon(config) as daemon:
        try:
            yield daemon
        finally:
            remove_all_containers(config)


class DockerCLI:
    """The real docker CLI pointed at one engine, its configuration in a scratch directory and
    nothing of the caller's environment."""

    def __init__(self, host: str, scratch: Path) -> None:
        self.host = host
        self.env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "DOCKER_CONFIG": str(scratch / "docker-config"),
            "HOME": str(scratch),
        }
        binary = shutil.which("docker", path=self.env["PATH"])
        assert binary, "the docker CLI is missing: scripts/bootstrap installs docker.io"
        self.binary = binary

    def __call__(
        self, *args: str, check: bool = True, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [self.binary, "-H", self.host, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
        )
        if check:
            assert done.returncode == 0, done.stderr
        return done


@pytest.fixture
def docker_cli(config: DaemonConfig, scratch: Path) -> DockerCLI:
    return DockerCLI(config.hosts[0], scratch)


REPO_ROOT = Path(__file__).resolve().parents[3]
register_module("pyrunc_acceptance_peers", REPO_ROOT / "tests" / "peers.py")
register_module("pyrunc_acceptance_oci_images", REPO_ROOT / "tests" / "oci_images.py")
import pyrunc_acceptance_oci_images as oci_images  # noqa: E402
import pyrunc_acceptance_peers as peers  # noqa: E402


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """busybox as an OCI image layout, built offline."""
    return oci_images.write_busybox_layout(tmp_path_factory.mktemp("layout") / "busybox")


@pytest.fixture(scope="module")
def docker_archive(layout: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The layout as a docker-archive naming busybox:latest, as ``docker save`` writes one."""
    path: Path = oci_images.to_docker_archive(layout, tmp_path_factory.mktemp("archive") / "busybox.tar")
    return path


@pytest.fixture
def loaded(engine: Daemon, docker_cli: DockerCLI, docker_archive: Path) -> DockerCLI:
    """The engine's docker CLI, with busybox (the archive) loaded."""
    docker_cli("load", "-i", str(docker_archive))
    return docker_cli


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A private docker-registry on 127.0.0.1 for the module, stopped by pid afterwards."""
    with peers.registry(tmp_path_factory.mktemp("registry")) as running:
        yield running


class Pyengined:
    """``pyengined`` as a process of its own, so that it can be killed."""

    def __init__(self, config: DaemonConfig, log: Path) -> None:
        self.config = config
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        pyengined = Path(sys.executable).parent / "pyengined"
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [str(pyengined), "-H", self.config.hosts[0], "--data-root", str(self.config.data_root),
                 "--exec-root", str(self.config.exec_root), "--bridge", self.config.bridge],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            )  # fmt: skip
        path = self.config.hosts[0].removeprefix("unix://")
        deadline = time.monotonic() + 30
        while True:
            assert self.process.poll() is None, self.log.read_text()
            with socket.socket(socket.AF_UNIX) as probe:
                try:
                    probe.connect(path)
                    return
                except OSError:
                    assert time.monotonic() < deadline, "pyengined never listened"
                    time.sleep(0.05)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()
        self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=60)
            self.process = None


@pytest.fixture
def pyengined(
    config: DaemonConfig, scratch: Path, removes_containers: Callable[..., Any]
) -> Iterator[Pyengined]:
    removes_containers(config)
    daemon = Pyengined(config, scratch / "pyengined.log")
    try:
        yield daemon
    finally:
        daemon.stop()
