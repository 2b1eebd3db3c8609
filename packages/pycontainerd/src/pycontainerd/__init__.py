"""pycontainerd: the container supervisor of the stack, the layer that containerd is in Docker.

No daemon: a :class:`Client` opens a root directly and does containerd's image work on it:

    from pycontainerd import Client

    with Client(root="/var/lib/pycontainerd") as client:
        image = client.pull("127.0.0.1:5000/busybox:latest")   # fetched, recorded, unpacked
        client.push("127.0.0.1:5000/copy:latest", source=image.name)

Containers and tasks run without a daemon too: a container is a record (image, snapshot, and an OCI
spec made by the composable options of :mod:`pycontainerd.oci`), a task is its live processes, each
task supervised by its own small monitor that outlives the process that started it:

    from pycontainerd import Client
    from pycontainerd.oci import with_args

    with Client() as client:
        client.containers.create("hello", "127.0.0.1:5000/busybox:latest", with_args(["echo", "hi"]))
        task = client.tasks.create("hello")
        with task.attach() as io:
            task.start()
            output = b"".join(data for _, data in io.frames())
        task.delete()

Below it, usable alone: :class:`ContentStore` (blobs), :class:`MetadataStore` (namespaces, images,
leases, records; :func:`collect` is the GC), the snapshotters (:class:`OverlaySnapshotter`,
:class:`NativeSnapshotter`), :func:`apply_layer` / :func:`write_diff`, and the registry client
(:class:`Resolver`, :class:`Reference`). Its command line is ``pyctr``. It sits on :mod:`pyrunc`,
the layer below, which the task service drives.

Names are loaded on first use, so that ``import pycontainerd`` stays cheap.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pycontainerd._archive import ApplyResult, DiffResult, WhiteoutFormat, apply_layer, write_diff
    from pycontainerd._client import SNAPSHOTTERS, Client
    from pycontainerd._content import ContentStore
    from pycontainerd._defaults import DEFAULT_ROOT, DEFAULT_STATE
    from pycontainerd._errors import (
        AlreadyExistsError,
        AuthenticationError,
        ContentError,
        DigestMismatchError,
        FailedPreconditionError,
        InvalidArgumentError,
        LayerError,
        LockedError,
        MonitorError,
        NotFoundError,
        PycontainerdError,
        RegistryError,
        ResourceExhaustedError,
        SizeMismatchError,
        TaskError,
        UnsafeLayerError,
    )
    from pycontainerd._events import Event, EventLog
    from pycontainerd._images import ImageConfig, Index, Manifest, format_platform, parse_platform
    from pycontainerd._metadata import Container, GCResult, Image, Lease, MetadataStore, collect
    from pycontainerd._monitor import ExitStatus
    from pycontainerd._remotes import (
        Credentials,
        Descriptor,
        Platform,
        Progress,
        ProgressState,
        Reference,
        Resolver,
    )
    from pycontainerd._snapshots import Mount, NativeSnapshotter, OverlaySnapshotter, Snapshotter, chain_id
    from pycontainerd._tasks import ContainerService, ExecProcess, Task, TaskService, TaskStatus
    from pycontainerd.oci import SpecContext, generate_spec

__all__ = [
    "DEFAULT_ROOT",
    "DEFAULT_STATE",
    "SNAPSHOTTERS",
    "AlreadyExistsError",
    "ApplyResult",
    "AuthenticationError",
    "Client",
    "Container",
    "ContainerService",
    "ContentError",
    "ContentStore",
    "Credentials",
    "Descriptor",
    "DiffResult",
    "DigestMismatchError",
    "Event",
    "EventLog",
    "ExecProcess",
    "ExitStatus",
    "FailedPreconditionError",
    "GCResult",
    "Image",
    "ImageConfig",
    "Index",
    "InvalidArgumentError",
    "LayerError",
    "Lease",
    "LockedError",
    "Manifest",
    "MetadataStore",
    "MonitorError",
    "Mount",
    "NativeSnapshotter",
    "NotFoundError",
    "OverlaySnapshotter",
    "Platform",
    "Progress",
    "ProgressState",
    "PycontainerdError",
    "Reference",
    "RegistryError",
    "Resolver",
    "ResourceExhaustedError",
    "SizeMismatchError",
    "Snapshotter",
    "SpecContext",
    "Task",
    "TaskError",
    "TaskService",
    "TaskStatus",
    "UnsafeLayerError",
    "WhiteoutFormat",
    "__version__",
    "apply_layer",
    "chain_id",
    "collect",
    "format_platform",
    "generate_spec",
    "parse_platform",
    "write_diff",
]

_WHERE = {
    "ApplyResult": "_archive",
    "DiffResult": "_archive",
    "WhiteoutFormat": "_archive",
    "apply_layer": "_archive",
    "write_diff": "_archive",
    "DEFAULT_ROOT": "_defaults",
    "DEFAULT_STATE": "_defaults",
    "SNAPSHOTTERS": "_client",
    "Client": "_client",
    "ContentStore": "_content",
    "ImageConfig": "_images",
    "Index": "_images",
    "Manifest": "_images",
    "format_platform": "_images",
    "parse_platform": "_images",
    "GCResult": "_metadata",
    "Image": "_metadata",
    "Lease": "_metadata",
    "MetadataStore": "_metadata",
    "collect": "_metadata",
    "Credentials": "_remotes",
    "Descriptor": "_remotes",
    "Platform": "_remotes",
    "Progress": "_remotes",
    "ProgressState": "_remotes",
    "Reference": "_remotes",
    "Resolver": "_remotes",
    "Mount": "_snapshots",
    "Container": "_metadata",
    "ContainerService": "_tasks",
    "ExecProcess": "_tasks",
    "Task": "_tasks",
    "TaskService": "_tasks",
    "TaskStatus": "_tasks",
    "Event": "_events",
    "EventLog": "_events",
    "ExitStatus": "_monitor",
    "SpecContext": "oci",
    "generate_spec": "oci",
    "NativeSnapshotter": "_snapshots",
    "OverlaySnapshotter": "_snapshots",
    "Snapshotter": "_snapshots",
    "chain_id": "_snapshots",
}


def __getattr__(name: str) -> object:
    if name == "__version__":
        # From the installed distribution's metadata, read on first use only.
        from importlib.metadata import version

        return version("pycontainerd")
    module = _WHERE.get(name)
    if module is None:
        if name in __all__:
            module = "_errors"
        else:
            raise AttributeError(f"module 'pycontainerd' has no attribute {name!r}")
    import sys  # built in; importlib would load warnings too

    qualified = f"pycontainerd.{module}"
    __import__(qualified)
    value = getattr(sys.modules[qualified], name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
