"""Container logs through the real docker CLI and docker-py: the json-file driver kept by
pycontainerd across runs (since, until, tail, timestamps, follow, rotation), the none driver, and a
daemon killed with SIGKILL that loses nothing of it."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import docker

from pyengine import Daemon, DaemonConfig

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from conftest import DockerCLI

STAMPED = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z) (.*)$")


def _run_to_exit(loaded: DockerCLI, *args: str) -> str:
    container_id = loaded("run", "-d", *args).stdout.strip()
    assert loaded("wait", container_id).stdout == "0\n"
    return container_id


def test_since_until_tail_and_timestamps(loaded: DockerCLI) -> None:
    script = "echo early1; echo early2; echo oops >&2; sleep 1.2; echo late1; echo late2"
    _run_to_exit(loaded, "--name", "timed", "busybox", "sh", "-c", script)
    both = loaded("logs", "-t", "timed")
    out = [STAMPED.match(line) for line in both.stdout.splitlines()]
    assert all(out) and [m.group(2) for m in out if m] == ["early1", "early2", "late1", "late2"]
    err = STAMPED.match(both.stderr.strip())
    assert err is not None and err.group(2) == "oops"
    stamps = [datetime.fromisoformat(m.group(1).replace("Z", "+00:00")[:26] + "+00:00") for m in out if m]
    assert stamps == sorted(stamps) and stamps[2] - stamps[1] > timedelta(seconds=1)
    assert abs(datetime.now(UTC) - stamps[0]) < timedelta(minutes=1)
    between = (stamps[1] + timedelta(seconds=0.5)).isoformat().replace("+00:00", "Z")
    assert loaded("logs", "--since", between, "timed").stdout == "late1\nlate2\n"
    until = loaded("logs", "--until", between, "timed")
    assert (until.stdout, until.stderr) == ("early1\nearly2\n", "oops\n")
    assert loaded("logs", "--tail", "1", "timed").stdout == "late2\n"
    tail = loaded("logs", "--tail", "3", "timed")
    assert (tail.stdout, tail.stderr) == ("late1\nlate2\n", "oops\n")
    assert loaded("logs", "--tail", "0", "timed").stdout == ""
    assert loaded("logs", "--tail", "all", "timed").stdout == "early1\nearly2\nlate1\nlate2\n"
    # a terminal's output goes raw, its lines as the terminal made them
    _run_to_exit(loaded, "-t", "--name", "term", "busybox", "sh", "-c", "echo on-a-tty")
    client = docker.APIClient(base_url=loaded.host, version="auto")
    try:
        assert client.logs("term") == b"on-a-tty\r\n"
    finally:
        client.close()


def test_logs_after_a_restart_show_both_runs_and_follow_ends_at_the_exit(loaded: DockerCLI) -> None:
    loaded("run", "-d", "--name", "again", "busybox", "sh", "-c", "echo run $$; sleep 60")

    def logged(count: int) -> list[str]:
        """The log's lines once it has ``count`` (each run echoes when it gets to it)."""
        deadline = time.monotonic() + 10
        while len(found := loaded("logs", "again").stdout.splitlines()) < count:
            assert time.monotonic() < deadline, found
            time.sleep(0.05)
        return found

    logged(1)  # the first run has written its line before the restart kills it
    loaded("restart", "-t", "0", "again")
    lines = logged(2)
    assert [line.startswith("run ") for line in lines] == [True, True]
    follower = subprocess.Popen(
        [loaded.binary, "-H", loaded.host, "logs", "-f", "--tail", "1", "again"],
        env=loaded.env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(1)
        assert follower.poll() is None  # following the running container
        loaded("exec", "again", "sh", "-c", "echo from exec > /proc/1/fd/1")
        loaded("kill", "again")
        out, _ = follower.communicate(timeout=30)
    finally:
        follower.kill()
        follower.wait()
    assert out.splitlines() == [lines[1], "from exec"]
    assert loaded("logs", "-f", "again").stdout.count("run ") == 2  # stopped: follow returns at once
    # attach with logs replays all of it
    client = docker.APIClient(base_url=loaded.host, version="auto")
    try:
        replay = client.attach("again", stream=False, logs=True)
    finally:
        client.close()
    assert replay.decode().count("run ") == 2


def test_rotation_keeps_only_the_newest_data(loaded: DockerCLI) -> None:
    script = "i=0; while [ $i -lt 500 ]; do echo line$i; i=$((i+1)); done"
    opts = ("--log-opt", "max-size=1k", "--log-opt", "max-file=2")
    container_id = _run_to_exit(loaded, "--name", "rotated", *opts, "busybox", "sh", "-c", script)
    kept = loaded("logs", "rotated").stdout.splitlines()
    assert 20 < len(kept) < 100
    assert kept == [f"line{i}" for i in range(500 - len(kept), 500)]  # the newest, contiguous
    log_path = Path(loaded("inspect", "-f", "{{.LogPath}}", container_id).stdout.strip())
    assert log_path.is_file() and log_path.stat().st_size <= 1000
    assert sorted(p.name for p in log_path.parent.iterdir()) == [log_path.name, f"{log_path.name}.1"]
    assert loaded("inspect", "-f", "{{json .HostConfig.LogConfig}}", "rotated").stdout.strip() == (
        '{"Type":"json-file","Config":{"max-file":"2","max-size":"1k"}}'
    )
    loaded("rm", "rotated")
    assert not log_path.parent.exists()  # removed with the container


def test_log_drivers_none_local_and_the_refused(loaded: DockerCLI) -> None:
    _run_to_exit(loaded, "--name", "silent", "--log-driver", "none", "busybox", "echo", "unseen")
    refused = loaded("logs", "silent", check=False)
    assert refused.returncode == 1
    assert "configured logging driver does not support reading" in refused.stderr
    assert loaded("inspect", "-f", "{{.LogPath}}", "silent").stdout == "\n"
    _run_to_exit(loaded, "--name", "local", "--log-driver", "local", "busybox", "echo", "kept")
    assert loaded("logs", "local").stdout == "kept\n"
    for args, message in (
        (("--log-driver", "syslog"), "HostConfig.LogConfig.Type 'syslog' is not supported by pyengine yet"),
        (("--log-driver", "nope"), "logger: no log driver named 'nope' is registered"),
        (("--log-opt", "color=red"), "unknown log opt 'color' for json-file log driver"),
        (("--log-opt", "tag=x"), "HostConfig.LogConfig.Config: tag is not supported by pyengine yet"),
        (("--log-opt", "max-size=-1"), "invalid size: '-1'"),
        (("--log-opt", "max-file=0"), "max-file cannot be less than 1"),
        (("--log-opt", "compress=true"), "compress is not supported by pyengine yet"),
    ):
        done = loaded("create", *args, "busybox", "true", check=False)
        assert done.returncode != 0 and message in done.stderr, (args, done.stderr)


def test_docker_py_reads_timestamps_since_and_tail(loaded: DockerCLI) -> None:
    client = docker.DockerClient(base_url=loaded.host, version="auto")
    try:
        container = client.containers.run("busybox", ["sh", "-c", "echo a; sleep 1.1; echo b"], detach=True)
        assert container.wait()["StatusCode"] == 0
        stamped = container.logs(timestamps=True).decode().splitlines()
        assert [line.split(" ", 1)[1] for line in stamped] == ["a", "b"]
        first = datetime.fromisoformat(stamped[0].split(" ")[0][:26] + "+00:00")
        # docker-py sends whole seconds (of a naive UTC datetime): the second after "a", before "b"
        since = datetime.fromtimestamp(int(first.timestamp()) + 1, UTC).replace(tzinfo=None)
        assert container.logs(timestamps=True, since=since).decode().split(" ", 1)[1] == "b\n"
        assert container.logs(until=since) == b"a\n"
        assert container.logs(tail=1) == b"b\n"
        assert b"".join(container.logs(stream=True, follow=True)) == b"a\nb\n"
        container.remove()
    finally:
        client.close()


def test_a_daemon_killed_with_sigkill_loses_no_log_line(
    scratch: Path,
    config: DaemonConfig,
    docker_cli: DockerCLI,
    docker_archive: Path,
    removes_containers: Callable[[DaemonConfig], DaemonConfig],
) -> None:
    removes_containers(config)
    (scratch / "daemon.json").write_text(
        json.dumps(
            {"hosts": config.hosts, "data-root": str(config.data_root), "exec-root": str(config.exec_root)}
        )
    )
    pyengined = Path(sys.executable).parent / "pyengined"
    daemon = subprocess.Popen(
        [str(pyengined), "--config-file", str(scratch / "daemon.json")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not (scratch / "engine.sock").exists():
            assert daemon.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        docker_cli("load", "-i", str(docker_archive))
        script = "i=0; while [ $i -lt 30 ]; do echo tick$i; i=$((i+1)); sleep 0.05; done"
        docker_cli("run", "-d", "--name", "ticker", "busybox", "sh", "-c", script)
        time.sleep(0.3)
    finally:
        daemon.send_signal(signal.SIGKILL)
        daemon.wait()
    time.sleep(2)  # the container goes on, and ends, with no daemon
    with Daemon(config):
        assert docker_cli("logs", "ticker").stdout == "".join(f"tick{i}\n" for i in range(30))
