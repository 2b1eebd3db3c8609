"""pyrunc: an OCI runtime in Python.

Two ways in:

- :func:`run` spawns a program isolated in a root filesystem and returns its output, with
  optional memory and pids limits; no daemon, no state on disk.
- :class:`Container` mirrors runc's verbs (create, start, kill, delete, state, exec, pause,
  resume, update, ps) on a state directory; the ``pyrunc`` command is a thin shell around it.

Names are loaded on first use, so that ``pyrunc state`` does not pay for what ``pyrunc run``
needs; a program that forks and creates containers in the child calls :func:`preload` first.
"""

from __future__ import annotations

__version__ = "0.1.0"  # the one place: pyproject.toml reads it (setuptools attr:)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyrunc._api import CompletedProcess, TimeoutExpired, run
    from pyrunc._cgroups.manager import cgroup_paths
    from pyrunc._cgroups.stats import Stats
    from pyrunc._container.container import DEFAULT_ROOT, Container, ContainerState
    from pyrunc._container.options import CreateOptions
    from pyrunc._container.status import ContainerStatus
    from pyrunc._errors import (
        CgroupError,
        ContainerError,
        ContainerExistsError,
        ContainerNotFoundError,
        InitError,
        InvalidStateError,
        PyruncError,
        SpecError,
        UnsupportedFieldError,
    )
    from pyrunc._features import features
    from pyrunc._spec.config import RuntimeSpec, default_spec, load_spec
    from pyrunc._spec.docker import DOCKER_CAPABILITIES, docker_default_seccomp
    from pyrunc._spec.resources import Resources

__all__ = [
    "DEFAULT_ROOT",
    "DOCKER_CAPABILITIES",
    "CgroupError",
    "CompletedProcess",
    "Container",
    "ContainerError",
    "ContainerExistsError",
    "ContainerNotFoundError",
    "ContainerState",
    "ContainerStatus",
    "CreateOptions",
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

_WHERE = {
    "CompletedProcess": "_api",
    "TimeoutExpired": "_api",
    "run": "_api",
    "Stats": "_cgroups.stats",
    "cgroup_paths": "_cgroups.manager",
    "DEFAULT_ROOT": "_container.container",
    "Container": "_container.container",
    "ContainerState": "_container.container",
    "CreateOptions": "_container.options",
    "ContainerStatus": "_container.status",
    "features": "_features",
    "RuntimeSpec": "_spec.config",
    "default_spec": "_spec.config",
    "load_spec": "_spec.config",
    "docker_default_seccomp": "_spec.docker",
    "DOCKER_CAPABILITIES": "_spec.docker",
    "Resources": "_spec.resources",
}


def preload(*, create: bool = True) -> None:
    """Import now what creating a container or exec'ing a process (``create=False``: starting,
    signalling, waiting for and deleting a container that exists) would import on first use.

    For a program that forks and creates containers in the child (pycontainerd's monitors): an
    import in a forked child can wait forever on a module lock that another thread of the parent
    held at the fork. And for one that has time to spare before it needs them.
    """
    # Defined here rather than loaded on first use like the other names: a manager that only
    # hands ``pyrunc.preload`` on to its forked child loads none of the create machinery.
    if create:
        from pyrunc._container.create import import_on_use_modules

        import_on_use_modules()
    else:
        for name in _MANAGING:
            __import__(name)


#: What the verbs on an existing container load on first use (both cgroup drivers: any host).
_MANAGING = (
    "select",
    "pyrunc._container.container",
    "pyrunc._container.status",
    "pyrunc._cgroups.manager",
    "pyrunc._cgroups.v1",
    "pyrunc._cgroups.v2",
)


def __getattr__(name: str) -> object:
    module = _WHERE.get(name)
    if module is None:
        if name in __all__:
            module = "_errors"
        else:
            raise AttributeError(f"module 'pyrunc' has no attribute {name!r}")
    import sys  # built in; importlib would load warnings too

    qualified = f"pyrunc.{module}"
    __import__(qualified)
    value = getattr(sys.modules[qualified], name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
