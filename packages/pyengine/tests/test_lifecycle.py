"""A running container's life through the real docker CLI and docker-py: pause and unpause,
restart, rename, top, update and stats."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import docker
import pytest

from pyengine import Client, Daemon, DaemonConfig, InvalidParameter

TYPE_CHECKING = False
if TYPE_CHECKING:
    from conftest import DockerCLI


def _cgroup_value(cli: DockerCLI, name: str, controller: str, file: str) -> str:
    """A file of the container's cgroup, read on the host (its init's cgroup, from /proc)."""
    pid = cli("inspect", "-f", "{{.State.Pid}}", name).stdout.strip()
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return (Path("/sys/fs/cgroup") / controllers / path.lstrip("/") / file).read_text().strip()
    raise AssertionError(f"no {controller} cgroup for {name}")


def test_pause_unpause_and_what_paused_refuses(loaded: DockerCLI) -> None:
    loaded("run", "-d", "--name", "frozen", "busybox", "sleep", "60")
    loaded("pause", "frozen")
    assert loaded("inspect", "-f", "{{.State.Status}} {{.State.Paused}}", "frozen").stdout == "paused true\n"
    assert _cgroup_value(loaded, "frozen", "freezer", "freezer.state") == "FROZEN"
    assert "Up" in loaded("ps", "--format", "{{.Status}}").stdout
    again = loaded("pause", "frozen", check=False)
    assert again.returncode == 1 and "is already paused" in again.stderr
    refused = loaded("exec", "frozen", "true", check=False)
    assert refused.returncode != 0 and "is paused, unpause the container before exec" in refused.stderr
    loaded("unpause", "frozen")
    assert (
        loaded("inspect", "-f", "{{.State.Status}} {{.State.Paused}}", "frozen").stdout == "running false\n"
    )
    not_paused = loaded("unpause", "frozen", check=False)
    assert not_paused.returncode == 1 and "is not paused" in not_paused.stderr
    loaded("pause", "frozen")
    loaded("stop", "-t", "1", "frozen")  # a paused container stops too
    assert loaded("inspect", "-f", "{{.State.Status}} {{.State.Paused}}", "frozen").stdout == "exited false\n"
    loaded("rm", "frozen")


def test_restart_rename_and_top(loaded: DockerCLI) -> None:
    loaded("run", "-d", "--name", "first", "busybox", "sh", "-c", "echo started; exec sleep 60")
    pid = loaded("inspect", "-f", "{{.State.Pid}}", "first").stdout
    loaded("restart", "-t", "1", "first")
    assert loaded("inspect", "-f", "{{.State.Running}}", "first").stdout == "true\n"
    assert loaded("inspect", "-f", "{{.State.Pid}}", "first").stdout != pid
    assert loaded("logs", "first").stdout == "started\nstarted\n"  # the log of both runs, as dockerd

    loaded("rename", "first", "second")
    assert loaded("ps", "--format", "{{.Names}}").stdout == "second\n"
    loaded("run", "-d", "--name", "third", "busybox", "sleep", "60")
    clash = loaded("rename", "third", "second", check=False)
    assert clash.returncode == 1 and 'The container name "/second" is already in use' in clash.stderr
    bad = loaded("rename", "third", "no/slash", check=False)
    assert bad.returncode == 1 and "Invalid container name" in bad.stderr

    top = loaded("top", "second").stdout.splitlines()
    assert top[0].split()[:2] == ["UID", "PID"] and len(top) == 2 and top[1].endswith("sleep 60")
    custom = loaded("top", "second", "-o", "pid,comm").stdout.splitlines()
    assert custom[0].split() == ["PID", "COMMAND"] and custom[1].split()[1] == "sleep"
    loaded("stop", "-t", "1", "second")
    stopped = loaded("top", "second", check=False)
    assert stopped.returncode == 1 and "is not running" in stopped.stderr
    loaded("rm", "-f", "second", "third")


def test_update_changes_the_live_limits(loaded: DockerCLI) -> None:
    loaded("run", "-d", "--name", "limited", "busybox", "sleep", "60")
    loaded(
        "update", "--memory", "64m", "--memory-swap", "128m", "--cpus", "0.5", "--pids-limit", "50", "limited"
    )
    assert _cgroup_value(loaded, "limited", "memory", "memory.limit_in_bytes") == str(64 << 20)
    assert _cgroup_value(loaded, "limited", "cpu", "cpu.cfs_quota_us") == "50000"
    assert _cgroup_value(loaded, "limited", "pids", "pids.max") == "50"
    host_config = json.loads(loaded("inspect", "-f", "{{json .HostConfig}}", "limited").stdout)
    assert (host_config["Memory"], host_config["NanoCpus"], host_config["PidsLimit"]) == (
        64 << 20,
        500_000_000,
        50,
    )
    loaded("stop", "-t", "1", "limited")
    loaded("update", "--memory", "32m", "limited")  # stopped: for its next run, as dockerd keeps it
    loaded("start", "limited")
    assert _cgroup_value(loaded, "limited", "memory", "memory.limit_in_bytes") == str(32 << 20)
    assert _cgroup_value(loaded, "limited", "pids", "pids.max") == "50"  # what the first update set
    refused = loaded("update", "--cpuset-cpus", "4096", "limited", check=False)
    assert refused.returncode == 1 and "4096" in refused.stderr
    loaded("rm", "-f", "limited")


def test_stats_through_the_cli_and_docker_py(loaded: DockerCLI, config: DaemonConfig) -> None:
    loaded("run", "-d", "--name", "busy", "--network", "none", "busybox", "sh", "-c", "while :; do :; done")
    line = loaded("stats", "--no-stream", "--format", "{{.Name}} {{.CPUPerc}} {{.MemUsage}} {{.PIDs}}").stdout
    name, cpu, usage, _, limit, pids = line.split()
    assert name == "busy" and float(cpu.rstrip("%")) > 10 and pids == "1"
    assert usage.endswith(("B", "KiB", "MiB")) and limit.endswith(("MiB", "GiB"))

    client = docker.DockerClient(base_url=config.hosts[0], version="auto")
    try:
        container = client.containers.get("busy")
        one = container.stats(stream=False, one_shot=True)
        assert (
            one["id"] == container.id
            and one["name"] == "/busy"
            and one["cpu_stats"]["cpu_usage"]["total_usage"]
        )
        assert one["precpu_stats"]["cpu_usage"]["total_usage"] == 0  # one shot: nothing before it
        stream = container.stats(stream=True, decode=True)
        first, second = next(stream), next(stream)
        stream.close()
        assert second["precpu_stats"]["cpu_usage"] == first["cpu_stats"]["cpu_usage"]
        assert (
            second["cpu_stats"]["cpu_usage"]["total_usage"] > first["cpu_stats"]["cpu_usage"]["total_usage"]
        )
        container.remove(force=True)
    finally:
        client.close()


def _inspect(cli: DockerCLI, name: str, template: str) -> str:
    return cli("inspect", "-f", template, name).stdout.strip()


def _eventually(check: Callable[[], bool], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.1)


def test_restart_policies_with_their_backoff_and_a_clients_stop(loaded: DockerCLI) -> None:
    loaded(
        "run", "-d", "--name", "flaky", "--restart", "on-failure:2", "busybox", "sh", "-c", "echo run; exit 3"
    )
    _eventually(
        lambda: _inspect(loaded, "flaky", "{{.RestartCount}} {{.State.Status}}") == "2 exited", "two retries"
    )
    assert loaded("logs", "flaky").stdout == "run\nrun\nrun\n"  # every run's, as dockerd keeps it
    assert _inspect(loaded, "flaky", "{{.State.ExitCode}}") == "3"

    loaded("run", "-d", "--name", "fine", "--restart", "on-failure", "busybox", "true")
    assert loaded("wait", "fine").stdout == "0\n"
    time.sleep(0.5)
    assert (
        _inspect(loaded, "fine", "{{.RestartCount}} {{.State.Status}}") == "0 exited"
    )  # success: no restart

    loaded("run", "-d", "--name", "looping", "--restart", "always", "busybox", "sh", "-c", "sleep 0.2")
    _eventually(lambda: int(_inspect(loaded, "looping", "{{.RestartCount}}")) >= 3, "three restarts")
    loaded("stop", "-t", "1", "looping")
    assert _inspect(loaded, "looping", "{{.State.Status}} {{.State.Restarting}}") == "exited false"
    count = _inspect(loaded, "looping", "{{.RestartCount}}")
    time.sleep(1)
    assert _inspect(loaded, "looping", "{{.RestartCount}} {{.State.Status}}") == f"{count} exited"

    bad = loaded("run", "-d", "--restart", "sometimes", "busybox", "true", check=False)
    assert bad.returncode == 125 and "sometimes" in bad.stderr
    loaded("rm", "-f", "flaky", "fine", "looping")


def test_a_starting_daemon_starts_what_its_restart_policy_wants_running(
    config: DaemonConfig,
    docker_cli: DockerCLI,
    docker_archive: Path,
    removes_containers: Callable[[DaemonConfig], DaemonConfig],
) -> None:
    removes_containers(config)
    with Daemon(config):
        docker_cli("load", "-i", str(docker_archive))
        for policy in ("always", "unless-stopped", "no"):
            docker_cli("run", "-d", "--name", policy, "--restart", policy, "busybox", "sleep", "1000")
            docker_cli("stop", "-t", "0", policy)
    with Daemon(config):
        _eventually(
            lambda: _inspect(docker_cli, "always", "{{.State.Status}}") == "running", "always started"
        )
        time.sleep(0.5)
        assert _inspect(docker_cli, "unless-stopped", "{{.State.Status}}") == "exited"
        assert _inspect(docker_cli, "no", "{{.State.Status}}") == "exited"
        docker_cli("rm", "-f", "always", "unless-stopped", "no")


def test_the_life_of_a_running_container_is_told_in_events(loaded: DockerCLI) -> None:
    since = time.time()
    loaded("run", "-d", "--name", "told", "busybox", "sleep", "60")
    loaded("pause", "told")
    loaded("unpause", "told")
    loaded("rename", "told", "retold")
    loaded("update", "--pids-limit", "20", "retold")
    loaded("exec", "retold", "sh", "-c", "exit 4", check=False)
    loaded("restart", "-t", "0", "retold")
    loaded("rm", "-f", "retold")
    until = time.time()
    fmt = "{{.Action}} {{.Actor.Attributes.name}}{{with .Actor.Attributes.exitCode}} {{.}}{{end}}"
    done = loaded("events", "--since", f"{since:.6f}", "--until", f"{until:.6f}", "--format", fmt)
    assert done.stdout.splitlines() == [
        "create told",
        "start told",
        "pause told",
        "unpause told",
        "rename retold",
        "update retold",
        "exec_create: sh -c exit 4 retold",
        "exec_start: sh -c exit 4 retold",
        "exec_die retold 4",
        "kill retold",
        "kill retold",
        "die retold 137",
        "stop retold",
        "start retold",
        "restart retold",
        "kill retold",
        "die retold 137",
        "destroy retold",
    ]


def test_stop_with_a_signal_of_its_own(loaded: DockerCLI, config: DaemonConfig) -> None:
    loaded("run", "-d", "--name", "stubborn", "busybox", "sleep", "60")  # init ignores SIGTERM
    client = Client(config.hosts[0])
    try:
        started = time.monotonic()
        client.container_stop("stubborn", timeout=30, signal="SIGKILL")
        assert time.monotonic() - started < 10  # not the 30 s a SIGTERM would have waited
        assert _inspect(loaded, "stubborn", "{{.State.ExitCode}}") == "137"
        with pytest.raises(InvalidParameter, match="Invalid signal: SIGNOPE"):
            client.container_start("stubborn")
            client.container_stop("stubborn", signal="SIGNOPE")
    finally:
        client.close()
    loaded("rm", "-f", "stubborn")


def test_the_daemon_answers_with_more_running_containers_than_it_has_worker_threads(
    loaded: DockerCLI,
) -> None:
    # Each running container is waited for, and a health probe too while it runs: neither may hold
    # one of the executor's 32 threads. The probes of ten last longer than the test.
    for n in range(40):
        probed = ["--health-cmd", "sleep 60", "--health-interval", "100ms"] if n < 10 else []
        loaded("run", "-d", "--name", f"idle{n}", *probed, "busybox", "sleep", "60")
    assert len(loaded("ps", "-q").stdout.split()) == 40
    assert loaded("run", "--rm", "--network", "none", "busybox", "echo", "still answering").stdout == (
        "still answering\n"
    )
    loaded("rm", "-f", *(f"idle{n}" for n in range(40)))
