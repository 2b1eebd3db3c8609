"""The main job runs: scripts/demo.py starts a private pyengined, loads a busybox image built offline
with the docker CLI and runs it with ``docker run --rm``, then stops the daemon."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

DEMO = Path(__file__).resolve().parents[1] / "scripts" / "demo.py"


def test_the_demo_runs_a_container_through_the_engine() -> None:
    done = subprocess.run(
        [sys.executable, str(DEMO), "--timeout", "120"], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "$ docker run --rm pyengine.demo/busybox:latest sh -c '…'"
    assert lines[1].startswith("hello from ") and lines[1].endswith("pid 1 in its own namespaces")
    assert "seccomp mode 2" in done.stdout and "00000000a80425fb" in done.stdout  # Docker's 14 capabilities
    assert lines[-1] == "container exited with code 0"
    assert "could not remove" not in done.stderr  # the daemon's directory is gone
