"""pyrunc's public names: exactly these, each importable from the package (they load lazily)."""

from __future__ import annotations

from importlib import metadata

import pyrunc
from pyrunc._cli.main import version_text
from pyrunc._features import features

PUBLIC = [
    "CgroupError",
    "CompletedProcess",
    "Container",
    "ContainerError",
    "ContainerExistsError",
    "ContainerNotFoundError",
    "ContainerState",
    "ContainerStatus",
    "CreateOptions",
    "DEFAULT_ROOT",
    "DOCKER_CAPABILITIES",
    "InitError",
    "InvalidStateError",
    "PyruncError",
    "Resources",
    "RuntimeSpec",
    "SpecError",
    "Stats",
    "TimeoutExpired",
    "UnsupportedFieldError",
    "__version__",
    "cgroup_paths",
    "default_spec",
    "docker_default_seccomp",
    "features",
    "load_spec",
    "preload",
    "run",
]


def test_public_names_are_exactly_these() -> None:
    assert sorted(pyrunc.__all__) == PUBLIC


def test_every_public_name_resolves() -> None:
    for name in PUBLIC:
        assert getattr(pyrunc, name) is not None, name


def test_the_version_is_written_once() -> None:
    # pyproject.toml reads pyrunc.__version__; the CLI and the features document show it.
    assert pyrunc.__version__ == metadata.version("pyrunc")
    assert version_text().splitlines()[:2] == [
        f"runc version {pyrunc.__version__}",
        f"commit: pyrunc-{pyrunc.__version__}",
    ]
    assert features()["annotations"] == {"io.github.pyrunc.version": pyrunc.__version__}
