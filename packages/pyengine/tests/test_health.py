"""Health checks through the real docker CLI: State.Health, its status in ps, the timeout, the start
period, and the health_status events."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from pyengine import DaemonConfig

TYPE_CHECKING = False
if TYPE_CHECKING:
    from conftest import DockerCLI


def _health(cli: DockerCLI, name: str) -> Any:
    return json.loads(cli("inspect", "-f", "{{json .State.Health}}", name).stdout)


def _eventually(check: Callable[[], bool], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.05)


def test_unhealthy_then_healthy_with_its_log_and_events(loaded: DockerCLI, config: DaemonConfig) -> None:
    since = time.time()
    loaded(
        "run", "-d", "--name", "probed", "--health-cmd", "echo probing; test -f /tmp/ok",
        "--health-interval", "200ms", "--health-retries", "2", "--health-timeout", "5s",
        "busybox", "sleep", "60",
    )  # fmt: skip
    assert _health(loaded, "probed")["Status"] in ("starting", "unhealthy")
    _eventually(lambda: _health(loaded, "probed")["Status"] == "unhealthy", "two failures make it unhealthy")
    health = _health(loaded, "probed")
    assert health["FailingStreak"] >= 2 and len(health["Log"]) <= 5
    assert health["Log"][-1]["ExitCode"] == 1 and health["Log"][-1]["Output"] == "probing\n"
    assert "(unhealthy)" in loaded("ps", "--format", "{{.Status}}").stdout

    loaded("exec", "probed", "touch", "/tmp/ok")
    _eventually(lambda: _health(loaded, "probed")["Status"] == "healthy", "a success makes it healthy")
    assert _health(loaded, "probed")["FailingStreak"] == 0
    assert "(healthy)" in loaded("ps", "--format", "{{.Status}}").stdout

    # Each probe is forgotten once read: a container probed for ever keeps no trail of them.
    full_id = loaded("inspect", "-f", "{{.Id}}", "probed").stdout.strip()
    task = config.exec_root / "containerd" / "tasks" / "moby" / full_id[:24]
    _eventually(lambda: len(_health(loaded, "probed")["Log"]) == 5, "five probes kept")
    assert len(list(task.glob("health-*"))) <= 4  # at most the one running now
    loaded("stop", "-t", "0", "probed")
    assert _health(loaded, "probed")["Status"] == "unhealthy"  # no longer probed, as dockerd says
    until = time.time()
    events = loaded(
        "events", "--since", f"{since:.6f}", "--until", f"{until:.6f}", "--filter", "event=health_status",
        "--format", "{{.Action}}",
    ).stdout.splitlines()  # fmt: skip
    assert events == ["health_status: unhealthy", "health_status: healthy"]
    loaded("rm", "probed")


def test_timeout_start_period_and_no_healthcheck(loaded: DockerCLI) -> None:
    loaded(
        "run", "-d", "--name", "slow", "--health-cmd", "sleep 10", "--health-interval", "200ms",
        "--health-timeout", "300ms", "--health-retries", "1", "busybox", "sleep", "60",
    )  # fmt: skip
    loaded(
        "run", "-d", "--name", "patient", "--health-cmd", "false", "--health-interval", "200ms",
        "--health-retries", "1", "--health-start-period", "30s", "busybox", "sleep", "60",
    )  # fmt: skip
    _eventually(lambda: _health(loaded, "slow")["Status"] == "unhealthy", "the timeout counts as a failure")
    assert _health(loaded, "slow")["Log"][-1] == {
        **_health(loaded, "slow")["Log"][-1],
        "ExitCode": -1,
        "Output": "Health check exceeded timeout (0.3s)",
    }
    _eventually(lambda: len(_health(loaded, "patient")["Log"]) >= 2, "probes in the start period")
    patient = _health(loaded, "patient")
    assert patient["Status"] == "starting" and patient["FailingStreak"] == 0

    loaded("run", "-d", "--name", "unchecked", "--no-healthcheck", "busybox", "sleep", "60")
    assert loaded("inspect", "-f", "{{json .State.Health}}", "unchecked").stdout.strip() == "null"
    assert json.loads(loaded("inspect", "-f", "{{json .Config.Healthcheck}}", "unchecked").stdout)[
        "Test"
    ] == ["NONE"]
    bad = loaded(
        "run", "-d", "--health-cmd", "true", "--health-interval", "-1s", "busybox", "true", check=False
    )
    assert bad.returncode != 0 and "negative" in bad.stderr
    loaded("rm", "-f", "slow", "patient", "unchecked")
