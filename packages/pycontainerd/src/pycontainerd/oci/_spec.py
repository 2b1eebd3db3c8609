"""The default container spec and :func:`generate_spec`, which applies the opts to it.

The defaults are Docker's for ``docker run`` (moby ``daemon/pkg/oci/defaults.go``,
``caps/defaults.go``, and the spec dockerd hands to runc): its 14 capabilities, masked and read-only
paths, mounts, device rules and seccomp profile. Docker resolves its seccomp profile against the
container's final capabilities, so it is resolved here after every opt has run.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from pycontainerd._errors import InvalidArgumentError
from pycontainerd._record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    import os
    from pathlib import Path
    from typing import Any, Final

__all__ = [
    "DEFAULT_PATH_ENV",
    "MASKED_PATHS",
    "READONLY_PATHS",
    "SpecContext",
    "SpecOpt",
    "default_seccomp",
    "generate_spec",
    "linux_of",
    "process_of",
]

OCI_VERSION = "1.0.2"
DEFAULT_PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

MASKED_PATHS = (
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
)
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")

_MOUNTS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("/proc", "proc", "proc", ("nosuid", "noexec", "nodev")),
    ("/dev", "tmpfs", "tmpfs", ("nosuid", "strictatime", "mode=755", "size=65536k")),
    (
        "/dev/pts",
        "devpts",
        "devpts",
        ("nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"),
    ),
    ("/sys", "sysfs", "sysfs", ("nosuid", "noexec", "nodev", "ro")),
    ("/sys/fs/cgroup", "cgroup", "cgroup", ("ro", "nosuid", "noexec", "nodev")),
    ("/dev/mqueue", "mqueue", "mqueue", ("nosuid", "noexec", "nodev")),
    ("/dev/shm", "tmpfs", "shm", ("nosuid", "noexec", "nodev", "mode=1777", "size=65536k")),
)

# Device cgroup rules of dockerd's spec: deny everything, then allow /dev/zero, null, urandom,
# random, tty and console, and deny fuse. The runtime adds its own defaults after these (runc's
# AllowedDevices: mknod of anything, /dev/full, pts and ptmx).
_DEVICE_RULES: tuple[tuple[bool, int, int], ...] = (
    (True, 1, 5),
    (True, 1, 3),
    (True, 1, 9),
    (True, 1, 8),
    (True, 5, 0),
    (True, 5, 1),
    (False, 10, 229),
)

_NAMESPACES = ("pid", "ipc", "uts", "mount", "network")


class SpecContext(Record):
    """What the opts may need to know about the container they shape.

    ``rootfs`` is the host path of the container's root filesystem, readable: users are resolved
    through its ``/etc/passwd`` and ``/etc/group``. ``mount``, if given, is called once, when an opt
    first reads ``rootfs``, to mount it there (most specs never look: only a user does). The spec's
    ``root.path`` stays ``"rootfs"`` (relative to the bundle) unless ``with_rootfs`` sets it.
    """

    __slots__ = ("id", "namespace", "_rootfs", "_mount")
    _compared = ("id", "namespace", "_rootfs")

    def __init__(
        self,
        id: str,
        namespace: str,
        rootfs: str | os.PathLike[str],
        *,
        mount: Callable[[], object] | None = None,
    ) -> None:
        from pathlib import Path  # here, not at the top: importing pycontainerd.oci stays cheap

        self.id: Final = id
        self.namespace: Final = namespace
        self._rootfs: Final = Path(rootfs)
        self._mount = mount

    @property
    def rootfs(self) -> Path:
        if self._mount is not None:
            mount, self._mount = self._mount, None
            mount()
        return self._rootfs


# "dict[str, Any]" is quoted: Any is imported for type checking only (typing is slow to import).
SpecOpt = Callable[[SpecContext, "dict[str, Any]"], None]
"""One step of building a spec: mutates the JSON-ready spec dict in place (containerd's SpecOpts)."""


def process_of(spec: dict[str, Any]) -> dict[str, Any]:
    """``spec["process"]``, created empty if missing."""
    process: dict[str, Any] = spec.setdefault("process", {})
    return process


def linux_of(spec: dict[str, Any]) -> dict[str, Any]:
    """``spec["linux"]``, created empty if missing."""
    linux: dict[str, Any] = spec.setdefault("linux", {})
    return linux


def default_seccomp(capabilities: list[str]) -> dict[str, Any]:
    """Docker's default seccomp profile resolved for this host and ``capabilities`` (bounding set)."""
    import pyrunc

    return pyrunc.docker_default_seccomp(capabilities)


def _base_spec(context: SpecContext) -> dict[str, Any]:
    caps = list(_docker_capabilities())
    return {
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0},
            "args": [],
            "env": [DEFAULT_PATH_ENV],
            "cwd": "/",
            "capabilities": {
                "bounding": caps,
                "effective": list(caps),
                "permitted": list(caps),
                "inheritable": [],
            },
            "noNewPrivileges": False,
            "oomScoreAdj": 0,
        },
        "root": {"path": "rootfs", "readonly": False},
        "hostname": context.id[:12],
        "mounts": [
            {"destination": dest, "type": kind, "source": source, "options": list(options)}
            for dest, kind, source, options in _MOUNTS
        ],
        "linux": {
            "resources": {
                "devices": [
                    {"allow": False, "access": "rwm"},
                    *(
                        {"allow": allow, "type": "c", "major": major, "minor": minor, "access": "rwm"}
                        for allow, major, minor in _DEVICE_RULES
                    ),
                ]
            },
            "cgroupsPath": f"/pycontainerd/{context.namespace}/{context.id}",
            "namespaces": [{"type": kind} for kind in _NAMESPACES],
            "seccomp": default_seccomp(caps),
            "maskedPaths": list(MASKED_PATHS),
            "readonlyPaths": list(READONLY_PATHS),
        },
    }


def _docker_capabilities() -> tuple[str, ...]:
    import pyrunc

    return pyrunc.DOCKER_CAPABILITIES


def generate_spec(context: SpecContext, *opts: SpecOpt) -> dict[str, Any]:
    """The OCI runtime spec (a JSON-ready dict) of Docker's default container, shaped by ``opts`` in
    order.

    The base is what ``docker run`` gives: ``process`` as root in ``/`` with ``PATH`` set, Docker's
    14 capabilities (inheritable empty), no rlimits, ``noNewPrivileges`` false; ``root.path``
    ``"rootfs"``, writable; the hostname is the id's first 12 characters; ``/proc``, a ``/dev``
    tmpfs, ``/dev/pts``, read-only ``/sys`` and cgroupfs, ``/dev/mqueue``, a 64 MiB ``/dev/shm``;
    new pid, ipc, uts, mount and network namespaces; Docker's masked and read-only paths and device
    rules; ``cgroupsPath`` ``/pycontainerd/<namespace>/<id>``.

    Docker's seccomp profile is resolved last, against the final bounding capabilities, unless an
    opt replaced or removed it (``with_seccomp``, ``with_privileged``). Raises
    :class:`InvalidArgumentError` when the result cannot run: no ``process.args`` (the image has
    neither Entrypoint nor Cmd and no ``with_args`` was given), a hostname without a UTS namespace.
    """
    if not context.id:
        raise InvalidArgumentError("generate_spec: the container id is empty")
    spec = _base_spec(context)
    # The default profile as JSON text, to compare with: an opt may replace it or change it in place
    # (a deep copy would import copy, which pyctr's path does not load).
    untouched = json.dumps(spec["linux"]["seccomp"])
    for opt in opts:
        opt(context, spec)
    process = process_of(spec)
    if not process.get("args"):
        raise InvalidArgumentError(
            f"generate_spec: container {context.id!r} has no command: the image config has neither "
            "Entrypoint nor Cmd and no with_args() was given"
        )
    linux = linux_of(spec)
    namespaces = {ns.get("type") for ns in linux.get("namespaces", [])}
    if spec.get("hostname") and "uts" not in namespaces:
        raise InvalidArgumentError(
            f"generate_spec: hostname {spec['hostname']!r} needs a UTS namespace of the container's own "
            "(with_host_namespace('uts') drops it)"
        )
    if "seccomp" in linux and json.dumps(linux["seccomp"]) == untouched:
        bounding = list((process.get("capabilities") or {}).get("bounding") or [])
        if sorted(bounding) != sorted(_docker_capabilities()):
            linux["seccomp"] = default_seccomp(bounding)
    return spec
