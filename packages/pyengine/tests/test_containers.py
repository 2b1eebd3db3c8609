"""Containers through the real docker CLI and docker-py: run, create and start, logs, wait, ps,
inspect, stop, kill and rm, on a private engine with busybox loaded offline."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import docker

from pyengine import Daemon, DaemonConfig

TYPE_CHECKING = False
if TYPE_CHECKING:
    from conftest import DockerCLI


def test_run_rm_prints_and_leaves_nothing(loaded: DockerCLI) -> None:
    done = loaded("run", "--rm", "busybox", "echo", "hello")
    assert done.stdout == "hello\n"
    assert done.stderr == ""
    assert loaded("ps", "-a", "-q").stdout == ""


def test_run_attached_separates_the_streams_and_returns_the_exit_code(loaded: DockerCLI) -> None:
    done = loaded(
        "run",
        "--name",
        "c1",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (3, "out\n", "err\n")
    listed = loaded(
        "ps", "-a", "--no-trunc", "--format", "{{.Names}}|{{.Status}}|{{.Command}}"
    ).stdout.strip()
    name, status, command = listed.split("|")
    assert (name, status.split(" ")[:2], command) == (
        "c1",
        ["Exited", "(3)"],
        "\"sh -c 'echo out; echo err >&2; exit 3'\"",
    )
    logs = loaded("logs", "c1")
    assert (logs.stdout, logs.stderr) == ("out\n", "err\n")
    assert loaded("logs", "--tail", "1", "c1").stdout == ""  # the last line is stderr's
    state = loaded("inspect", "c1", "--format", "{{.State.Status}} {{.State.ExitCode}} {{.Name}} {{.Path}}")
    assert state.stdout.split() == ["exited", "3", "/c1", "sh"]
    assert loaded("rm", "c1").stdout.strip() == "c1"
    assert loaded("ps", "-a", "-q").stdout == ""


def test_detached_container_is_listed_stopped_and_removed(loaded: DockerCLI) -> None:
    container_id = loaded("run", "-d", "--name", "sleeper", "busybox", "sleep", "1000").stdout.strip()
    assert len(container_id) == 64
    assert loaded("ps", "--format", "{{.ID}} {{.Names}}").stdout.split() == [container_id[:12], "sleeper"]
    refused = loaded("rm", "sleeper", check=False)
    assert refused.returncode == 1 and "cannot remove a running container" in refused.stderr
    # sleep, as a container's init, ignores SIGTERM: stop falls back to SIGKILL after -t.
    loaded("stop", "-t", "1", "sleeper")
    assert loaded("inspect", "sleeper", "--format", "{{.State.ExitCode}}").stdout.strip() == "137"
    loaded("start", "sleeper")
    assert loaded("inspect", "sleeper", "--format", "{{.State.Running}}").stdout.strip() == "true"
    loaded("kill", "sleeper")
    assert loaded("wait", "sleeper").stdout.strip() == "137"
    loaded("rm", "sleeper")


def test_create_then_start_attached(loaded: DockerCLI) -> None:
    loaded(
        "create",
        "--name",
        "later",
        "-e",
        "WHO=world",
        "-w",
        "/tmp",
        "busybox",
        "sh",
        "-c",
        'echo "$WHO in $PWD"',
    )
    assert loaded("start", "-a", "later").stdout == "world in /tmp\n"
    assert loaded("start", "-a", "later").stdout == "world in /tmp\n"  # exited, and run again
    loaded("rm", "later")


def test_name_conflicts_and_refusals_name_what_is_wrong(loaded: DockerCLI) -> None:
    loaded("create", "--name", "taken", "busybox", "true")
    conflict = loaded("create", "--name", "taken", "busybox", "true", check=False)
    assert conflict.returncode == 1 and 'The container name "/taken" is already in use' in conflict.stderr
    syslog = loaded("run", "--log-driver", "syslog", "busybox", "true", check=False)
    assert (
        syslog.returncode == 125
        and "HostConfig.LogConfig.Type 'syslog' is not supported by pyengine yet" in syslog.stderr
    )
    missing = loaded("rm", "nosuch", check=False)
    assert missing.returncode == 1 and "No such container: nosuch" in missing.stderr


def test_docker_py_runs_and_reads_back(loaded: DockerCLI, config: DaemonConfig) -> None:
    client = docker.DockerClient(base_url=config.hosts[0], version="auto")
    try:
        assert client.containers.run("busybox", ["echo", "hi"], remove=True) == b"hi\n"
        container = client.containers.run("busybox", ["sh", "-c", "echo a; exit 4"], detach=True)
        assert container.wait()["StatusCode"] == 4
        assert container.logs() == b"a\n"
        container.reload()
        assert container.status == "exited"
        container.remove()
        assert client.containers.list(all=True) == []
    finally:
        client.close()


def _pid(docker_cli: DockerCLI, name: str) -> int:
    return int(docker_cli("inspect", name, "--format", "{{.State.Pid}}").stdout)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_containers_outlive_a_restart_with_live_restore(
    config: DaemonConfig,
    docker_cli: DockerCLI,
    docker_archive: Path,
    removes_containers: Callable[[DaemonConfig], DaemonConfig],
) -> None:
    removes_containers(config)
    with Daemon(config):
        docker_cli("load", "-i", str(docker_archive))
        docker_cli("run", "-d", "--name", "kept", "busybox", "sh", "-c", "echo before; exec sleep 1000")
        docker_cli("run", "-d", "--name", "revived", "--restart", "always", "busybox", "sleep", "1000")
        pid, revived = _pid(docker_cli, "kept"), _pid(docker_cli, "revived")
    assert _alive(pid)  # the daemon went, the container stayed
    os.kill(revived, 9)  # exits while no daemon watches: the next one applies its policy
    with Daemon(config):
        deadline = time.monotonic() + 20
        while docker_cli("inspect", "-f", "{{.State.Running}}", "revived").stdout.strip() != "true":
            assert time.monotonic() < deadline, "revived was not started again"
            time.sleep(0.05)
        assert docker_cli("ps", "--format", "{{.Names}} {{.State}}").stdout.split() == [
            "revived", "running", "kept", "running",
        ]  # fmt: skip
        assert docker_cli("exec", "kept", "echo", "exec works").stdout == "exec works\n"
        assert docker_cli("logs", "kept").stdout == "before\n"
        assert _pid(docker_cli, "revived") != revived
        assert docker_cli("inspect", "-f", "{{.RestartCount}}", "revived").stdout.strip() == "1"
        docker_cli("kill", "kept")
        assert docker_cli("wait", "kept").stdout.strip() == "137"  # the new daemon saw the exit
        docker_cli("rm", "-f", "kept", "revived")
    assert not _alive(pid)


def test_without_live_restore_the_shutdown_stops_containers(
    scratch: Path,
    docker_cli: DockerCLI,
    docker_archive: Path,
    removes_containers: Callable[[DaemonConfig], DaemonConfig],
) -> None:
    config = removes_containers(
        DaemonConfig(
            hosts=[f"unix://{scratch}/engine.sock"],
            data_root=scratch / "data",
            exec_root=scratch / "run",
            live_restore=False,
        )
    )
    with Daemon(config):
        docker_cli("load", "-i", str(docker_archive))
        docker_cli("run", "-d", "--name", "stopped", "--stop-timeout", "1", "busybox", "sleep", "1000")
        pid = _pid(docker_cli, "stopped")
    assert not _alive(pid)
    with Daemon(config):
        listed = docker_cli("ps", "-a", "--format", "{{.Names}} {{.State}}").stdout.split()
        assert listed == ["stopped", "exited"]
        docker_cli("rm", "stopped")


def test_entrypoint_user_and_following_logs(loaded: DockerCLI) -> None:
    done = loaded(
        "run", "--rm", "--network", "none", "--entrypoint", "/bin/sh", "-u", "1000", "busybox", "-c", "id -u"
    )
    assert done.stdout == "1000\n"
    loaded(
        "run", "-d", "--name", "counter", "busybox", "sh", "-c", "for i in 1 2 3; do echo $i; sleep 0.2; done"
    )
    assert loaded("logs", "-f", "counter").stdout == "1\n2\n3\n"  # follows until the exit
    loaded("rm", "counter")


def test_a_command_that_cannot_start_is_reported_and_rm_removes_it(loaded: DockerCLI) -> None:
    missing = loaded("run", "--rm", "busybox", "nosuchcommand", check=False)
    assert missing.returncode == 127  # the docker CLI's code for "executable file not found"
    assert 'exec: "nosuchcommand": executable file not found in $PATH' in missing.stderr
    assert loaded("ps", "-a", "-q").stdout == ""  # --rm: removed although it never ran
    loaded("create", "--name", "broken", "busybox", "/etc")
    denied = loaded("start", "broken", check=False)
    assert denied.returncode == 1 and "permission denied" in denied.stderr
    assert loaded("inspect", "-f", "{{.State.Status}}", "broken").stdout == "created\n"
    loaded("rm", "broken")
