"""The public names of pycontainerd: exactly ``__all__``, each importable, none from a private module."""

from __future__ import annotations

import pycontainerd

EXPECTED = {
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
    "ResourceExhaustedError",
    "Resolver",
    "Resources",
    "SizeMismatchError",
    "SpecContext",
    "Snapshotter",
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
}


def test_all_is_the_expected_public_api() -> None:
    assert set(pycontainerd.__all__) == EXPECTED
    assert sorted(dir(pycontainerd)) == sorted(EXPECTED)


def test_every_public_name_resolves() -> None:
    for name in pycontainerd.__all__:
        assert getattr(pycontainerd, name) is not None, name


def test_errors_share_one_root() -> None:
    for name in pycontainerd.__all__:
        value = getattr(pycontainerd, name)
        if isinstance(value, type) and issubclass(value, Exception):
            assert issubclass(value, pycontainerd.PycontainerdError), name


def test_unknown_names_raise_attribute_error() -> None:
    try:
        pycontainerd.NoSuchThing  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchThing" in str(exc)
    else:
        raise AssertionError("expected AttributeError")
