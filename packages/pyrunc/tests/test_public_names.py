"""pyrunc's public names: exactly these, each importable from the package (they load lazily)."""

from __future__ import annotations

import pyrunc

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
