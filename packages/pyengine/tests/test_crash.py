"""A pyengined killed with SIGKILL loses nothing: its containers run on and are controllable from the
next daemon, no log line is lost, a pull it was streaming completes when asked again, and what it
was half-way through making or removing is finished (never listed)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyrunc_acceptance_oci_images as oci_images  # registered by conftest.py

import pycontainerd
from pyengine import Daemon, DaemonConfig
from pyrunc.testing import register_module

TYPE_CHECKING = False
if TYPE_CHECKING:
    from conftest import DockerCLI, Pyengined

REPO_ROOT = Path(__file__).resolve().parents[3]
register_module(
    "pycontainerd_test_registries", REPO_ROOT / "packages" / "pycontainerd" / "tests" / "conftest.py"
)
import pycontainerd_test_registries as registries  # noqa: E402

build_layered = registries.build_layered


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_containers_logs_and_pulls_survive_a_sigkill(
    pyengined: Pyengined,
    docker_cli: DockerCLI,
    docker_archive: Path,
    registry: Any,
    build_layered: Any,
    tmp_path: Path,
) -> None:
    big = build_layered(tmp_path / "big", [24 << 20, 24 << 20], seed=3)
    ref = oci_images.push_to_registry(big.image, registry.address, "crash/big")
    pyengined.start()
    docker_cli("load", "-i", str(docker_archive))
    docker_cli(
        "run", "-d", "--name", "counter", "--restart", "always", "busybox", "sh", "-c",
        "i=0; while :; do i=$((i+1)); echo $i; usleep 2000; done",
    )  # fmt: skip
    pid = int(docker_cli("inspect", "-f", "{{.State.Pid}}", "counter").stdout)
    follow = subprocess.Popen(
        [docker_cli.binary, "-H", docker_cli.host, "logs", "-f", "counter"],
        env=docker_cli.env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    pull = subprocess.Popen(
        [docker_cli.binary, "-H", docker_cli.host, "pull", ref],
        env=docker_cli.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    time.sleep(0.5)
    pyengined.kill()
    followed, _ = follow.communicate(timeout=30)  # the stream ends with the daemon
    pulled, _ = pull.communicate(timeout=30)
    assert pull.returncode != 0 or b"Downloaded newer image" in pulled
    assert _alive(pid)  # the container runs on without its daemon

    pyengined.start()
    listed = docker_cli("ps", "-a", "--format", "{{.Names}} {{.State}}").stdout.split("\n")
    assert listed == ["counter running", ""]
    assert docker_cli("inspect", "-f", "{{.State.Pid}}", "counter").stdout.strip() == str(pid)
    docker_cli("pull", ref)  # the interrupted pull completes
    assert docker_cli("images", "-q", ref).stdout.strip()
    time.sleep(0.2)
    docker_cli("stop", "-t", "1", "counter")  # controllable: stopped, and its policy rests
    lines = docker_cli("logs", "counter").stdout.split()
    assert lines == [str(n) for n in range(1, len(lines) + 1)]  # not a line lost, none twice
    assert followed.decode().split() == lines[: len(followed.split())]
    assert not _alive(pid)
    docker_cli("rm", "counter")


def test_a_create_or_a_removal_cut_short_is_finished_by_the_next_daemon(
    config: DaemonConfig, docker_cli: DockerCLI, docker_archive: Path, removes_containers: Callable[..., Any]
) -> None:
    removes_containers(config)
    with Daemon(config):
        docker_cli("load", "-i", str(docker_archive))
        docker_cli("create", "--name", "kept", "busybox", "true")
        docker_cli("create", "--name", "half-removed", "busybox", "true")
    records = config.data_root / "containers"
    half_removed = next(
        path.parent
        for path in records.glob("*/container.json")
        if json.loads(path.read_text())["name"] == "half-removed"
    )
    store = pycontainerd.Client(
        root=config.data_root / "containerd", state=config.exec_root / "containerd", namespace="moby"
    )
    try:
        # A removal cut short after the container went, before its record; a create cut short
        # after pycontainerd's container, before the engine's record.
        store.containers.delete(half_removed.name[:24], force=True)
        image = store.images()[0].name
        store.containers.create("0123456789abcdef01234567", image, labels={"io.pyengine.name": "half-made"})
    finally:
        store.close()
    (records / ("f" * 64)).mkdir()  # a create's directory, cut short before its record
    with Daemon(config):
        assert docker_cli("ps", "-a", "--format", "{{.Names}}").stdout.split() == ["kept"]
        docker_cli("rm", "kept")
    store = pycontainerd.Client(
        root=config.data_root / "containerd", state=config.exec_root / "containerd", namespace="moby"
    )
    try:
        assert store.containers.list() == []
    finally:
        store.close()
    assert list(records.iterdir()) == []


def test_networks_survive_a_sigkill_and_a_clean_stop_leaves_nothing(
    pyengined: Pyengined, docker_cli: DockerCLI, docker_archive: Path
) -> None:
    pyengined.start()
    docker_cli("load", "-i", str(docker_archive))
    bridge = pyengined.config.bridge
    network = docker_cli("network", "create", "--subnet", "10.251.0.0/24", "kept").stdout.strip()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    docker_cli(
        "run", "-d", "--pull", "never", "--name", "web", "--network", "kept", "--network-alias", "site",
        "-p", f"127.0.0.1:{port}:80", "busybox", "sh", "-c", "echo up > /tmp/up; httpd -f -p 80 -h /tmp",
    )  # fmt: skip
    address = docker_cli(
        "inspect", "-f", "{{.NetworkSettings.Networks.kept.IPAddress}}", "web"
    ).stdout.strip()

    def fetch() -> str:
        for _ in range(50):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=2) as connection:
                    connection.sendall(b"GET /up HTTP/1.0\r\n\r\n")
                    return connection.makefile("rb").read().decode().rpartition("\r\n\r\n")[2]
            except OSError:
                time.sleep(0.1)
        raise AssertionError("the published port never answered")

    assert fetch() == "up\n"
    pyengined.kill()
    assert fetch() == "up\n"  # the kernel's DNAT serves on without the daemon
    pyengined.start()
    assert fetch() == "up\n"
    assert docker_cli("port", "web").stdout.strip() == f"80/tcp -> 127.0.0.1:{port}"
    # the restored embedded DNS server answers, and a new container gets another address
    out = docker_cli(
        "run", "--rm", "--pull", "never", "--network", "kept", "--dns", "127.0.0.1", "busybox", "sh", "-c",
        "nslookup site | grep -A1 '^Name:' | grep Address | head -1 | cut -d' ' -f2; ip -o -4 addr show eth0",
    ).stdout.split("\n")  # fmt: skip
    assert out[0] == address and f"{address}/" not in out[1], out
    # the port the daemon holds again is taken for another container
    done = docker_cli(
        "run", "-d", "--pull", "never", "-p", f"127.0.0.1:{port}:80", "busybox", "true", check=False
    )
    assert done.returncode != 0 and "port is already allocated" in done.stderr
    docker_cli("rm", "-f", "web")
    docker_cli("container", "prune", "-f")
    docker_cli("network", "rm", "kept")
    pyengined.stop()
    with open("/proc/net/dev") as dev:
        left = {line.split(":")[0].strip() for line in dev.readlines()[2:]}
    assert bridge not in left and f"br-{network[:12]}" not in left
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, check=True).stdout
    assert f"inet {bridge}" not in tables
