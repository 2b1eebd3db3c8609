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
:class:`NativeSnapshotter`), :class:`Mount` and :func:`unmount`, :func:`remove_tree` (which never
deletes through a mount), :func:`apply_layer` / :func:`write_diff`, and the registry client
(:class:`Resolver`, :class:`Reference`). Its command line is ``pyctr``. It sits on :mod:`pyrunc`,
the layer below, which the task service drives.

Its names are loaded on first use (PEP 562): ``import pycontainerd``, which every ``pyctr`` command
does, loads none of the modules behind them.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pycontainerd._archive import WhiteoutFormat
    from pycontainerd._archive.apply import ApplyResult, apply_layer
    from pycontainerd._archive.diff import DiffResult, write_diff
    from pycontainerd._archive.extract import extract_tar
    from pycontainerd._client import Client
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
    from pycontainerd._images import (
        Healthcheck,
        ImageConfig,
        Index,
        Manifest,
        format_platform,
        parse_platform,
    )
    from pycontainerd._metadata import Container, GCResult, Image, Lease, MetadataStore, collect
    from pycontainerd._monitor import Attachment, ExitStatus
    from pycontainerd._remotes import Credentials, Descriptor, Platform, Progress, ProgressState
    from pycontainerd._remotes.reference import Reference
    from pycontainerd._remotes.resolver import Resolver
    from pycontainerd._snapshots import (
        SNAPSHOTTERS,
        Mount,
        NativeSnapshotter,
        OverlaySnapshotter,
        chain_id,
        remove_tree,
        unmount,
    )
    from pycontainerd._snapshots.protocol import Snapshotter
    from pycontainerd._tasks import (
        BlkioMetrics,
        ContainerService,
        CpuMetrics,
        ExecProcess,
        MemoryMetrics,
        Metrics,
        PidsMetrics,
        Resources,
        Task,
        TaskService,
        TaskStatus,
    )
    from pycontainerd.oci import SpecContext, generate_spec

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_ROOT",
    "DEFAULT_STATE",
    "SNAPSHOTTERS",
    "AlreadyExistsError",
    "ApplyResult",
    "Attachment",
    "AuthenticationError",
    "BlkioMetrics",
    "Client",
    "Container",
    "ContainerService",
    "ContentError",
    "ContentStore",
    "CpuMetrics",
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
    "Healthcheck",
    "Image",
    "ImageConfig",
    "Index",
    "InvalidArgumentError",
    "LayerError",
    "Lease",
    "LockedError",
    "Manifest",
    "MemoryMetrics",
    "MetadataStore",
    "Metrics",
    "MonitorError",
    "Mount",
    "NativeSnapshotter",
    "NotFoundError",
    "OverlaySnapshotter",
    "PidsMetrics",
    "Platform",
    "Progress",
    "ProgressState",
    "PycontainerdError",
    "Reference",
    "RegistryError",
    "Resolver",
    "ResourceExhaustedError",
    "Resources",
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
    "extract_tar",
    "format_platform",
    "generate_spec",
    "parse_platform",
    "remove_tree",
    "unmount",
    "write_diff",
]

#: The module that defines each public name, loaded when the name is first asked for.
_MODULES = {
    **dict.fromkeys(["ApplyResult", "apply_layer"], "pycontainerd._archive.apply"),
    **dict.fromkeys(["DiffResult", "write_diff"], "pycontainerd._archive.diff"),
    "extract_tar": "pycontainerd._archive.extract",
    "WhiteoutFormat": "pycontainerd._archive",
    "Client": "pycontainerd._client",
    "ContentStore": "pycontainerd._content",
    **dict.fromkeys(["DEFAULT_ROOT", "DEFAULT_STATE"], "pycontainerd._defaults"),
    **dict.fromkeys(
        [
            "AlreadyExistsError",
            "AuthenticationError",
            "ContentError",
            "DigestMismatchError",
            "FailedPreconditionError",
            "InvalidArgumentError",
            "LayerError",
            "LockedError",
            "MonitorError",
            "NotFoundError",
            "PycontainerdError",
            "RegistryError",
            "ResourceExhaustedError",
            "SizeMismatchError",
            "TaskError",
            "UnsafeLayerError",
        ],
        "pycontainerd._errors",
    ),
    **dict.fromkeys(["Event", "EventLog"], "pycontainerd._events"),
    **dict.fromkeys(
        ["Healthcheck", "ImageConfig", "Index", "Manifest", "format_platform", "parse_platform"],
        "pycontainerd._images",
    ),
    **dict.fromkeys(
        ["Container", "GCResult", "Image", "Lease", "MetadataStore", "collect"], "pycontainerd._metadata"
    ),
    **dict.fromkeys(["Attachment", "ExitStatus"], "pycontainerd._monitor"),
    **dict.fromkeys(
        ["Credentials", "Descriptor", "Platform", "Progress", "ProgressState"], "pycontainerd._remotes"
    ),
    "Reference": "pycontainerd._remotes.reference",
    "Resolver": "pycontainerd._remotes.resolver",
    **dict.fromkeys(
        [
            "SNAPSHOTTERS",
            "Mount",
            "NativeSnapshotter",
            "OverlaySnapshotter",
            "chain_id",
            "remove_tree",
            "unmount",
        ],
        "pycontainerd._snapshots",
    ),
    "Snapshotter": "pycontainerd._snapshots.protocol",
    **dict.fromkeys(
        [
            "BlkioMetrics",
            "ContainerService",
            "CpuMetrics",
            "ExecProcess",
            "MemoryMetrics",
            "Metrics",
            "PidsMetrics",
            "Resources",
            "Task",
            "TaskService",
            "TaskStatus",
        ],
        "pycontainerd._tasks",
    ),
    **dict.fromkeys(["SpecContext", "generate_spec"], "pycontainerd.oci"),
}


def __getattr__(name: str) -> object:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module 'pycontainerd' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
