"""A private pyengined per test: its data root, exec root and socket in a scratch directory."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyengine import Daemon, DaemonConfig


@pytest.fixture
def scratch() -> Iterator[Path]:
    # Not tmp_path: a unix socket's path must stay under 108 bytes.
    directory = Path(tempfile.mkdtemp(prefix="pyengine-", dir="/tmp"))
    try:
        yield directory
    finally:
        shutil.rmtree(directory)


@pytest.fixture
def config(scratch: Path) -> DaemonConfig:
    return DaemonConfig(
        hosts=[f"unix://{scratch}/engine.sock"], data_root=scratch / "data", exec_root=scratch / "run"
    )


@pytest.fixture
def engine(config: DaemonConfig) -> Iterator[Daemon]:
    with Daemon(config) as daemon:
        yield daemon


@pytest.fixture
def docker_env(scratch: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The environment for the docker CLI: its configuration in the scratch directory, no host
    from the outside."""
    (scratch / "docker-config").mkdir()
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "DOCKER_CONFIG": str(scratch / "docker-config"),
        "HOME": str(scratch),
    }
