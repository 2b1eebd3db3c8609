"""pyrunc as an OCI runtime of a real dockerd 20.10 (``--add-runtime pyrunc=...``, ``docker run --runtime``).

A private dockerd (tests/peers.py) is started once for this module, on a bridge of its own, with its
own managed containerd; the busybox image is written offline (tests/oci_images.py), turned into a
docker-archive by skopeo and loaded with ``docker load``: nothing contacts a registry. dockerd asks
containerd-shim-runc-v2 to call pyrunc (``BinaryName``) with a spec that has Docker's defaults: the
default seccomp profile, Docker's capability set, masked and read-only paths, a cgroup parent, and
for bridge networking a ``prestart`` hook (``/proc/<dockerd>/exe libnetwork-setkey ...``).

Side by side with runc, the same probes (capabilities, seccomp, no_new_privs, mount table, masked
paths, /dev, rlimits) must give the same answers under ``--runtime runc`` and ``--runtime pyrunc``.
"""

from __future__ import annotations

import ipaddress
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator


import pyrunc_acceptance_oci_images as oci
import pyrunc_acceptance_peers as peers

pytestmark = [pytest.mark.dropin, pytest.mark.integration, pytest.mark.cgroup]

IMAGE = "busybox:latest"


class Docker:
    """The docker CLI against the module's dockerd."""

    def __init__(self, peer: Any) -> None:
        self.peer = peer

    def __call__(self, *args: str, check: bool = True, timeout: float = 60.0) -> Any:
        return self.peer.docker(*args, check=check, timeout=timeout)

    def run(self, *args: str, runtime: str = "pyrunc", network: str = "none") -> Any:
        """``docker run --rm --runtime RUNTIME --network NETWORK ARGS`` (exit code not checked).

        ``--network none`` by default: bridge networking is tested on its own below.
        """
        return self.peer.docker("run", "--rm", "--runtime", runtime, "--network", network, *args, check=False)

    def side_by_side(self, *args: str, network: str = "none") -> dict[str, Any]:
        """:meth:`run` under ``--runtime runc`` and under ``--runtime pyrunc``: name -> result."""
        return {runtime: self.run(*args, runtime=runtime, network=network) for runtime in ("runc", "pyrunc")}

    def detached(self, *args: str, runtime: str = "pyrunc", network: str = "none") -> _Detached:
        return _Detached(self, ("run", "--detach", "--runtime", runtime, "--network", network, *args))


class _Detached:
    """``docker run -d``: the container id for the duration; ``docker rm -f`` afterwards."""

    def __init__(self, docker: Docker, argv: tuple[str, ...]) -> None:
        self.docker = docker
        self.argv = argv
        self.id = ""

    def __enter__(self) -> str:
        self.id = self.docker(*self.argv).stdout.strip()
        return self.id

    def __exit__(self, *exc: object) -> None:
        if self.id:
            self.docker("rm", "--force", self.id)


@pytest.fixture(scope="module")
def docker(tmp_path_factory: pytest.TempPathFactory, pyrunc_bin: Path) -> Iterator[Docker]:
    """A private dockerd with ``busybox:latest`` loaded from a docker-archive, for the whole module."""
    image = oci.write_busybox_layout(tmp_path_factory.mktemp("image") / "oci")
    archive = oci.to_docker_archive(image, image.directory.parent / "busybox.docker.tar", IMAGE)
    with peers.dockerd(tmp_path_factory.mktemp("dockerd"), runtimes={"pyrunc": pyrunc_bin}) as peer:
        peer.docker("load", "--input", str(archive))
        yield Docker(peer)


# --------------------------------------------------------------------------------------------------
# The basics, with Docker's default spec (seccomp profile, capabilities, masked paths) and no network


def test_the_daemon_knows_the_pyrunc_runtime(docker: Docker, pyrunc_bin: Path) -> None:
    info = json.loads(docker("info", "--format", "{{json .Runtimes}}").stdout)
    assert info["pyrunc"]["path"] == str(pyrunc_bin)
    assert (
        docker("image", "inspect", "--format", "{{.Os}}/{{.Architecture}}", IMAGE).stdout == "linux/amd64\n"
    )


def test_run_echo_hi(docker: Docker) -> None:
    result = docker.run("busybox", "echo", "hi")
    assert (result.returncode, result.stdout) == (0, "hi\n"), result.stderr


def test_nonzero_exit_code_passes_through(docker: Docker) -> None:
    result = docker.run("busybox", "sh", "-c", "exit 3")
    assert result.returncode == 3, result.stderr


def test_exec_in_a_detached_container_then_stop(docker: Docker) -> None:
    with docker.detached("busybox", "sleep", "300") as cid:
        assert docker("exec", cid, "sh", "-c", "echo in").stdout == "in\n"
        assert docker("exec", cid, "sh", "-c", "exit 5", check=False).returncode == 5
        assert docker("exec", "--user", "65534", cid, "id", "-u").stdout == "65534\n"
        ps = docker("exec", cid, "ps", "-o", "pid,args").stdout
        assert any(line.split()[:3] == ["1", "sleep", "300"] for line in ps.splitlines()), ps
        # sleep as pid 1 has no handler for SIGTERM, which the kernel then ignores: stop waits -t 2
        # seconds and sends SIGKILL.
        started = time.monotonic()
        docker("stop", "--time", "2", cid)
        took = time.monotonic() - started
        state = docker("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", cid).stdout
        assert state == "exited 137\n"
        assert 1.8 < took < 15, took


def test_stop_sends_sigterm_first(docker: Docker) -> None:
    script = "trap 'exit 7' TERM; while :; do sleep 0.05; done"
    with docker.detached("busybox", "sh", "-c", script) as cid:
        time.sleep(0.3)  # let sh install its trap
        started = time.monotonic()
        docker("stop", "--time", "10", cid)
        assert time.monotonic() - started < 5
        assert docker("inspect", "--format", "{{.State.ExitCode}}", cid).stdout == "7\n"


def test_memory_limit(docker: Docker) -> None:
    result = docker.run("--memory", "64m", "busybox", "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes")
    assert (result.returncode, result.stdout) == (0, f"{64 << 20}\n"), result.stderr


def test_pids_limit(docker: Docker) -> None:
    result = docker.run("--pids-limit", "20", "busybox", "cat", "/sys/fs/cgroup/pids/pids.max")
    assert (result.returncode, result.stdout) == (0, "20\n"), result.stderr


def test_cap_drop_all(docker: Docker) -> None:
    result = docker.run("--cap-drop", "ALL", "busybox", "grep", "^Cap", "/proc/self/status")
    assert result.returncode == 0, result.stderr
    caps = dict(line.split(":\t") for line in result.stdout.splitlines())
    assert caps["CapEff"] == caps["CapPrm"] == caps["CapBnd"] == "0000000000000000", caps


def test_read_only_rootfs(docker: Docker) -> None:
    result = docker.run("--read-only", "busybox", "touch", "/x")
    assert result.returncode == 1
    assert "Read-only file system" in result.stderr
    writable = docker.run("--read-only", "--tmpfs", "/tmp", "busybox", "touch", "/tmp/x")
    assert writable.returncode == 0, writable.stderr


def test_pause_unpause_and_top(docker: Docker) -> None:
    with docker.detached("busybox", "sleep", "300") as cid:
        docker("pause", cid)
        assert docker("inspect", "--format", "{{.State.Status}}", cid).stdout == "paused\n"
        docker("unpause", cid)
        assert docker("inspect", "--format", "{{.State.Status}}", cid).stdout == "running\n"
        top = docker("top", cid).stdout  # dockerd asks the shim for the pids: runc ps --format json
        assert "sleep 300" in top, top


def test_update_memory_of_a_running_container(docker: Docker) -> None:
    with docker.detached("--memory", "64m", "busybox", "sleep", "300") as cid:
        docker("update", "--memory", "96m", "--memory-swap", "-1", cid)  # runc update --resources=-
        limit = docker("exec", cid, "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes").stdout
        assert limit == f"{96 << 20}\n"


@pytest.mark.tty
def test_run_interactive_with_a_terminal(docker: Docker) -> None:
    argv = docker.peer.docker_argv(
        "run", "-it", "--rm", "--runtime", "pyrunc", "--network", "none", IMAGE, "sh"
    )
    code, screen = peers.run_in_pty(
        argv, script=[(b"# ", b"tty; echo typed-$((6*7)); exit 5\r")], env=docker.peer.env()
    )
    assert b"/dev/pts/0" in screen, screen
    assert b"typed-42" in screen, screen
    assert code == 5, screen


# --------------------------------------------------------------------------------------------------
# Side by side with runc: the same probes give the same answers


def _assert_same_answers(results: dict[str, Any]) -> None:
    for runtime, result in results.items():
        assert result.returncode == 0, f"{runtime}: {result.stderr}"
    answers = {runtime: result.stdout for runtime, result in results.items()}
    assert answers["pyrunc"] == answers["runc"], peers.diff_answers(answers)


@pytest.mark.runc
@pytest.mark.parametrize(
    "options",
    [
        pytest.param((), id="defaults"),
        pytest.param(("--cap-drop", "ALL", "--security-opt", "no-new-privileges"), id="no-caps-nnp"),
        pytest.param(
            ("--cap-add", "SYS_ADMIN", "--pids-limit", "50", "--memory", "48m"), id="sys-admin-limits"
        ),
        pytest.param(("--user", "1000:1000", "--read-only"), id="user-read-only"),
        pytest.param(
            ("--pid", "host", "--ipc", "host", "--uts", "host", "--init"), id="host-namespaces-init"
        ),
    ],
)
def test_same_answers_as_runc(docker: Docker, options: tuple[str, ...]) -> None:
    results = docker.side_by_side(*options, "busybox", "sh", "-c", peers.probe_script())
    _assert_same_answers(results)


@pytest.mark.runc
def test_privileged_like_runc(docker: Docker) -> None:
    """--privileged asks for every capability Docker knows; where this host's bounding set lacks one
    (CAP_SYS_RESOURCE on some sandboxes) runc refuses to start the container, and so must pyrunc."""
    results = docker.side_by_side("--privileged", "busybox", "sh", "-c", peers.probe_script())
    if results["runc"].returncode == 0:
        _assert_same_answers(results)
    else:
        assert results["pyrunc"].returncode == results["runc"].returncode, results["pyrunc"].stderr
        assert "OCI runtime create failed" in results["pyrunc"].stderr


@pytest.mark.runc
def test_a_tmpfs_keeps_the_mode_of_the_directory_it_covers(docker: Docker) -> None:
    script = "stat -c '%a %n' /root /var /sys/fs/cgroup; touch /sys/fs/cgroup/x 2>&1 | sed 's/.*: //'"
    options = ("--tmpfs", "/root", "--tmpfs", "/var", "--cap-drop", "ALL")
    answers = {
        name: result.stdout
        for name, result in docker.side_by_side(*options, "busybox", "sh", "-c", script).items()
    }
    assert answers["runc"] == "700 /root\n755 /var\n555 /sys/fs/cgroup\nPermission denied\n"
    assert answers["pyrunc"] == answers["runc"], peers.diff_answers(answers)


# --------------------------------------------------------------------------------------------------
# Bridge networking: dockerd puts a prestart hook (libnetwork-setkey) into the spec


@pytest.mark.network
def test_bridge_network_configures_eth0(docker: Docker) -> None:
    result = docker.run("busybox", "sh", "-c", "ip -o -4 addr show eth0; ip route", network="bridge")
    assert result.returncode == 0, result.stderr
    address = ipaddress.ip_interface(result.stdout.split("inet ", 1)[1].split()[0])
    assert address.network == ipaddress.ip_network(docker.peer.subnet), result.stdout
    gateway = str(next(ipaddress.ip_network(docker.peer.subnet).hosts()))
    assert f"default via {gateway} dev eth0" in result.stdout


@pytest.mark.network
@pytest.mark.runc
def test_bridge_network_same_as_runc(docker: Docker) -> None:
    script = "ip -o link | awk '{print $2, $3}' | sed 's/@if[0-9]*//'; ip route; tail -n +1 /etc/resolv.conf"
    _assert_same_answers(docker.side_by_side("busybox", "sh", "-c", script, network="bridge"))


@pytest.mark.network
def test_detached_on_the_bridge_gets_a_hosts_entry(docker: Docker) -> None:
    with docker.detached("busybox", "sleep", "300", network="bridge") as cid:
        ip = docker("inspect", "--format", "{{.NetworkSettings.IPAddress}}", cid).stdout.strip()
        assert ipaddress.ip_address(ip) in ipaddress.ip_network(docker.peer.subnet)
        assert f"{ip}\t{cid[:12]}" in docker("exec", cid, "cat", "/etc/hosts").stdout
        inside = docker("exec", cid, "ip", "-o", "-4", "addr", "show", "eth0").stdout
        assert f"inet {ip}/" in inside


# --------------------------------------------------------------------------------------------------
# pycontainerd's archives and docker's, both ways


def test_docker_save_imports_into_pyctr_and_pyctr_export_loads_into_docker(
    docker: Docker, tmp_path: Path
) -> None:
    from pycontainerd import Client

    saved = tmp_path / "saved.tar"
    docker("save", "--output", str(saved), IMAGE)
    client = Client(root=tmp_path / "ctr", state=tmp_path / "ctr-state", snapshotter="native")
    try:
        with saved.open("rb") as f:
            (imported,) = client.import_archive(f)
        assert imported.name == "docker.io/library/busybox:latest"
        client.tag(imported.name, "docker.io/library/pyctr-export:latest")
        exported = tmp_path / "exported.tar"
        with exported.open("wb") as f:
            client.export(f, ["docker.io/library/pyctr-export:latest"])
    finally:
        client.close()
    docker("load", "--input", str(exported))
    try:
        assert docker.run("pyctr-export:latest", "echo", "round trip").stdout == "round trip\n"
        ids = {
            docker("image", "inspect", "--format", "{{.Id}}", ref).stdout
            for ref in (IMAGE, "pyctr-export:latest")
        }
        assert len(ids) == 1, ids  # the same config digest: nothing was rewritten on the way
    finally:
        docker("rmi", "pyctr-export:latest")
