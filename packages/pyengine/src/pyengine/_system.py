"""The system endpoints: ``/_ping``, ``/version`` and ``/info``, with their response models."""

from __future__ import annotations

import os
import platform
import socket
import sys
from typing import Any

import attrs

import pyengine
from pyengine._times import rfc3339
from pyengine._versions import API_VERSION, MIN_API_VERSION

__all__ = ["PING_HEADERS", "StoreCounts", "SystemInfo", "VersionInfo", "host_memory"]

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
                "Mirrors": [],  # --registry-mirror is refused until pulls use mirrors
            },
            "SecurityOptions": ["name=seccomp,profile=builtin"],
            "Plugins": {"Volume": [], "Network": [], "Authorization": None, "Log": []},
            "Swarm": {"LocalNodeState": "inactive", "NodeID": "", "NodeAddr": "", "ControlAvailable": False},
            "ExperimentalBuild": False,
            "HttpProxy": "",
            "HttpsProxy": "",
            "NoProxy": "",
            "Labels": [],
            "Warnings": [],
            "SystemTime": rfc3339(),
            "PythonVersion": sys.version.split()[0],
        }
