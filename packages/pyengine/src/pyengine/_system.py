"""The system endpoints: ``/_ping``, ``/version``, ``/info`` and ``/system/df``, with their
response models; and ``POST /containers/prune``, which works on every container as df does."""

from __future__ import annotations

import contextlib
import os
import platform
import socket
import sys
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import attrs

import pycontainerd
import pyengine
from pyengine._container_api import Supervisor
from pyengine._containers import Containers
from pyengine._errors import InvalidParameter
from pyengine._images import Images, labels_match, until_filter
from pyengine._times import rfc3339
from pyengine._versions import API_VERSION, MIN_API_VERSION

__all__ = [
    "PING_HEADERS",
    "StoreCounts",
    "SystemInfo",
    "VersionInfo",
    "disk_usage",
    "host_memory",
    "prune_containers",
]

#: What dockerd sends with every ``/_ping`` answer (the docker CLI negotiates with Api-Version).
PING_HEADERS = {
    "Api-Version": API_VERSION,
    "Builder-Version": "1",
    "Docker-Experimental": "false",
    "Ostype": "linux",
    "Cache-Control": "no-cache, no-store, must-revalidate",
    "Pragma": "no-cache",
}

#: uname's machine -> the Go architecture names Docker reports.
_ARCHES = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386", "ppc64le": "ppc64le"}


def _arch() -> str:
    machine = platform.machine()
    return _ARCHES.get(machine, machine)


def host_memory() -> int:
    """MemTotal of /proc/meminfo, in bytes."""
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("/proc/meminfo has no MemTotal")


def _operating_system() -> str:
    try:
        with open("/etc/os-release") as f:
            fields = dict(line.rstrip("\n").split("=", 1) for line in f if "=" in line)
    except OSError:
        return "Linux"
    return fields.get("PRETTY_NAME", "Linux").strip('"')


@attrs.frozen
class VersionInfo:
    """``GET /version``."""

    version: str = pyengine.__version__
    kernel: str = attrs.field(factory=lambda: platform.release())

    def to_api(self) -> dict[str, Any]:
        details = {
            "ApiVersion": API_VERSION,
            "MinAPIVersion": MIN_API_VERSION,
            "Os": "linux",
            "Arch": _arch(),
            "KernelVersion": self.kernel,
            "PythonVersion": platform.python_version(),
        }
        return {
            "Platform": {"Name": f"pyengine {self.version}"},
            "Components": [{"Name": "Engine", "Version": self.version, "Details": details}],
            "Version": self.version,
            "ApiVersion": API_VERSION,
            "MinAPIVersion": MIN_API_VERSION,
            "GitCommit": "",
            "GoVersion": "",
            "Os": "linux",
            "Arch": _arch(),
            "KernelVersion": self.kernel,
            "BuildTime": "",
        }


@attrs.frozen
class StoreCounts:
    """What the engine's store holds, as ``/info`` counts it."""

    images: int
    containers: int
    running: int
    paused: int


@attrs.frozen(kw_only=True)
class SystemInfo:
    """``GET /info``: the fields the docker CLI and docker-py read."""

    id: str
    counts: StoreCounts
    data_root: str
    snapshotter: str
    live_restore: bool
    insecure_registries: tuple[str, ...]
    registry_mirrors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()  # of the daemon's configuration: a TCP host without TLS, say

    def to_api(self) -> dict[str, Any]:
        counts = self.counts
        return {
            "ID": self.id,
            "Containers": counts.containers,
            "ContainersRunning": counts.running,
            "ContainersPaused": counts.paused,
            "ContainersStopped": counts.containers - counts.running - counts.paused,
            "Images": counts.images,
            "Driver": self.snapshotter,
            "DriverStatus": [["driver-type", "io.containerd.snapshotter.v1"]],
            "DockerRootDir": self.data_root,
            "Name": socket.gethostname(),
            "OperatingSystem": _operating_system(),
            "OSType": "linux",
            "OSVersion": "",
            "Architecture": platform.machine(),
            "NCPU": os.cpu_count() or 1,
            "MemTotal": host_memory(),
            "KernelVersion": platform.release(),
            "ServerVersion": pyengine.__version__,
            "CgroupDriver": "cgroupfs",
            "CgroupVersion": "1",
            "LoggingDriver": "json-file",
            "DefaultRuntime": "pyrunc",
            "Runtimes": {"pyrunc": {"path": "pyrunc"}},
            "LiveRestoreEnabled": self.live_restore,
            "Debug": False,
            "IndexServerAddress": "https://index.docker.io/v1/",
            "RegistryConfig": {
                "InsecureRegistryCIDRs": [r for r in self.insecure_registries if "/" in r],
                "IndexConfigs": {},
                "Mirrors": list(self.registry_mirrors),
            },
            "SecurityOptions": ["name=seccomp,profile=builtin"],
            "Plugins": {"Volume": [], "Network": [], "Authorization": [], "Log": []},
            "Swarm": {"LocalNodeState": "inactive", "NodeID": "", "NodeAddr": "", "ControlAvailable": False},
            "ExperimentalBuild": False,
            "HttpProxy": "",
            "HttpsProxy": "",
            "NoProxy": "",
            "Labels": [],
            "Warnings": list(self.warnings),
            "SystemTime": rfc3339(),
            "PythonVersion": sys.version.split()[0],
        }


# -- disk usage and container prune ---------------------------------------------------------------

#: What ``GET /system/df?type=…`` may ask for, and the key of each in the answer.
DF_TYPES = {"image": "Images", "container": "Containers", "volume": "Volumes", "build-cache": "BuildCache"}


def disk_usage(
    store: pycontainerd.Client, images: Images, containers: Containers, types: Iterable[str]
) -> dict[str, Any]:
    """``GET /system/df``: the images with their unique and shared bytes (blobs of the content
    store), the containers with their sizes, the volumes with theirs; no build cache exists yet."""
    wanted = set(types) or set(DF_TYPES)
    for kind in wanted - set(DF_TYPES):
        raise InvalidParameter(f"unknown object type: {kind}")
    answer: dict[str, Any] = {}
    records = containers.records(all=True)
    if "image" in wanted:
        summaries = images.summaries()
        blobs: dict[str, dict[str, int]] = {}  # image ID -> its blobs' digests and sizes
        for summary in summaries:
            owned: dict[str, int] = {}
            for name in summary.names:
                with contextlib.suppress(pycontainerd.NotFoundError):
                    owned.update({d.digest: d.size for d in store.descriptors(store.image(name))})
            blobs[summary.id] = owned
        holders: dict[str, int] = {}
        for owned in blobs.values():
            for digest in owned:
                holders[digest] = holders.get(digest, 0) + 1
        answer["LayersSize"] = sum({d: s for owned in blobs.values() for d, s in owned.items()}.values())
        answer["Images"] = [
            summary.to_api(
                shared_size=sum(size for digest, size in blobs[summary.id].items() if holders[digest] > 1),
                containers=sum(r.image_id == summary.id for r in records),
            )
            for summary in summaries
        ]
    if "container" in wanted:
        answer["Containers"] = []
        for record in records:
            rw, rootfs = containers.sizes(record)
            answer["Containers"].append({**record.summary(), "SizeRw": rw, "SizeRootFs": rootfs})
    if "volume" in wanted:
        references: dict[str, int] = {}
        for record in records:
            for name in {m.name for m in record.volume_mounts if m.is_volume}:
                references[name] = references.get(name, 0) + 1
        answer["Volumes"] = containers.volumes.usage(references)
    if "build-cache" in wanted:
        answer["BuildCache"] = []
    return answer


def _nanoseconds(stamp: str) -> int:
    return int(datetime.fromisoformat(stamp).timestamp() * 1e9) if stamp else 0


_CONTAINER_PRUNE_FILTERS = frozenset({"until", "label", "label!"})


async def prune_containers(supervisor: Supervisor, filters: dict[str, list[str]]) -> dict[str, Any]:
    """``POST /containers/prune``: remove the containers not running, created before ``until``,
    with (or without) the ``label``s given; each says destroy, and the prune says what it freed."""
    from pyengine._http import blocking

    for key in filters:
        if key not in _CONTAINER_PRUNE_FILTERS:
            raise InvalidParameter(f"invalid filter '{key}'")
    containers = supervisor.containers
    before = until_filter(filters)
    deleted: list[str] = []
    reclaimed = 0
    for record in await blocking(containers.records, True):
        if record.state.status == "running":
            continue
        if before is not None and _nanoseconds(record.created) >= before:
            continue
        if not labels_match(record.config.get("Labels") or {}, filters):
            continue
        rw, _ = await blocking(containers.sizes, record)
        await supervisor.remove(record.id, force=False)
        deleted.append(record.id)
        reclaimed += rw
    containers.events.publish("container", "prune", "", {"reclaimed": str(reclaimed)})
    return {"ContainersDeleted": deleted, "SpaceReclaimed": reclaimed}  # the spec's list, never null
