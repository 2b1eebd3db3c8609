"""Containers: Docker's container records over pycontainerd's containers and tasks.

pycontainerd keeps what runs (the container record with its snapshot and OCI spec, the task with
its monitor and exit record; the container's log, which outlives its tasks, as dockerd's json-file);
the engine keeps what Docker adds on top, per container, in ``<data root>/containers/<id>/
container.json``: the name, the Config and HostConfig as created, and the state Docker reports
(status, exit code, times). A task stays after its process exits, so that its exit status remains,
until the container is started again or removed; its log stays until the container is removed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import secrets
import shlex
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs

import pycontainerd
from pyengine import _spec
from pyengine._errors import ApiError, Conflict, InvalidParameter, NotFound
from pyengine._events import EventBus
from pyengine._health import HealthConfig, merged_healthcheck, probe, record_result
from pyengine._health import fresh as fresh_health
from pyengine._images import Images, familiar_name
from pyengine._network.endpoints import Networking
from pyengine._times import rfc3339, unix
from pyengine._volumes import VolumeMount, Volumes, mount_points, plan_mounts

__all__ = ["ContainerRecord", "Containers", "State"]

log = logging.getLogger("pyengine.containers")

#: What Docker's name generator is made of: an adjective and a name, joined by ``_``.
_ADJECTIVES = (
    "admiring", "bold", "brave", "calm", "clever", "eager", "focused", "gentle", "happy", "jolly",
    "keen", "lucid", "modest", "nifty", "quirky", "serene", "sharp", "stoic", "tender", "vibrant",
)  # fmt: skip
_NAMES = (
    "babbage", "curie", "dijkstra", "euler", "feynman", "galois", "hopper", "knuth", "lamarr",
    "lovelace", "meitner", "noether", "pascal", "ritchie", "shannon", "thompson", "torvalds",
    "turing", "wozniak", "yonath",
)  # fmt: skip
RUNTIME_ID_LENGTH = 24
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")

#: Config fields that this engine takes, and HostConfig fields; any other that is set to something
#: other than its zero value is refused, naming it.
_CONFIG_FIELDS = {
    "Hostname", "Domainname", "User", "AttachStdin", "AttachStdout", "AttachStderr", "Tty",
    "OpenStdin", "StdinOnce", "Env", "Cmd", "Entrypoint", "Image", "WorkingDir", "Labels",
    "StopSignal", "StopTimeout", "ExposedPorts", "Volumes", "NetworkDisabled", "OnBuild",
    "ArgsEscaped", "HostConfig", "NetworkingConfig", "MacAddress", "Healthcheck", "Shell",
}  # fmt: skip
_HOST_DEFAULTS: dict[str, Any] = {
    "NetworkMode": "default",
    "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
    "AutoRemove": False,
    "LogConfig": {"Type": "json-file", "Config": {}},
    "Binds": None,
    "PortBindings": {},
    "Privileged": False,
    "ReadonlyRootfs": False,
}
#: The lists and maps of HostConfig and Config that the Engine API's spec never has null (dockerd
#: writes null for Go's nil ones): inspect shows them empty instead, as the spec says them.
_HOST_LISTS = (
    "Binds", "BlkioDeviceReadBps", "BlkioDeviceReadIOps", "BlkioDeviceWriteBps", "BlkioDeviceWriteIOps",
    "BlkioWeightDevice", "CapAdd", "CapDrop", "DeviceCgroupRules", "DeviceRequests", "Devices", "Dns",
    "DnsOptions", "DnsSearch", "ExtraHosts", "GroupAdd", "Links", "MaskedPaths", "Mounts", "ReadonlyPaths",
    "SecurityOpt", "Ulimits", "VolumesFrom",
)  # fmt: skip
_HOST_MAPS = ("Annotations", "StorageOpt", "Sysctls", "Tmpfs")
_CONFIG_LISTS = ("Cmd", "Entrypoint", "Env")
_CONFIG_MAPS = ("Labels", "Volumes")


def _no_nulls(view: dict[str, Any], lists: tuple[str, ...], maps: tuple[str, ...]) -> dict[str, Any]:
    """``view`` with the null ``lists`` and ``maps`` empty."""
    return {
        key: ([] if key in lists else {} if key in maps else None) if value is None else value
        for key, value in view.items()
    }


_HOST_FIELDS = {
    "AutoRemove", "NetworkMode", "LogConfig", "RestartPolicy", "ConsoleSize",
    # Translated into the spec by pyengine._spec:
    "Binds", "Mounts", "Tmpfs", "Memory", "MemorySwap", "NanoCpus", "CpuShares", "CpusetCpus",
    "CpusetMems", "PidsLimit", "Ulimits", "CgroupParent", "CapAdd", "CapDrop", "Privileged",
    "ReadonlyRootfs", "SecurityOpt", "ShmSize", "Sysctls", "PidMode", "IpcMode", "UTSMode", "Devices",
    "GroupAdd", "ExtraHosts", "Init",
    # Networking (pyengine._network):
    "PortBindings", "PublishAllPorts", "Links", "Dns", "DnsSearch", "DnsOptions",
    # Made by pyengine._volumes:
    "VolumesFrom", "VolumeDriver",
}  # fmt: skip


def _zero(value: object) -> bool:
    return value in (None, "", 0, False, [], {}) or value == {"Name": "", "MaximumRetryCount": 0}


def _check_request(body: dict[str, Any]) -> None:
    """Refuse what this engine does not do yet, by its field's name, rather than ignore it."""
    # HostConfig first: -p is named as PortBindings, not as the ExposedPorts the CLI derives from it.
    host = body.get("HostConfig") or {}
    if not isinstance(host, dict):
        raise InvalidParameter("HostConfig: not a JSON object")
    for key, value in host.items():
        if key == "MemorySwappiness" and value in (None, -1):
            continue  # -1: the kernel's default, what the docker CLI sends when not asked
        if key not in _HOST_FIELDS and not _zero(value):
            raise InvalidParameter(f"HostConfig.{key} is not supported by pyengine yet")
    _check_restart_policy(host)
    log_options(host)
    for key, value in body.items():
        if key not in _CONFIG_FIELDS and not _zero(value):
            raise InvalidParameter(f"Config.{key} is not supported by pyengine yet")
    volumes = body.get("Volumes") or {}
    if not isinstance(volumes, dict) or not all(isinstance(v, str) for v in volumes):
        raise InvalidParameter("Config.Volumes: an object of container paths")
    for key in ("OnBuild", "Shell"):
        if not _zero(body.get(key)):
            raise InvalidParameter(f"Config.{key} is not supported by pyengine yet")
    if body.get("NetworkDisabled"):
        raise InvalidParameter(
            "Config.NetworkDisabled is not supported by pyengine yet (the network none is)"
        )
    for key in ("Env", "Cmd", "Entrypoint"):
        value = body.get(key)
        if value is not None and (not isinstance(value, list) or not all(isinstance(v, str) for v in value)):
            raise InvalidParameter(f"Config.{key}: a list of strings, not {value!r}")


_RESTART_POLICIES = ("no", "always", "unless-stopped", "on-failure")

#: The options of the log drivers kept in pycontainerd's container log (dockerd's json-file and
#: local), and the drivers dockerd has that this engine does not.
_LOG_DRIVER_OPTS = {
    "json-file": {"max-size", "max-file", "compress", "labels", "labels-regex", "env", "env-regex", "tag"},
    "local": {"max-size", "max-file", "compress"},
}
_OTHER_LOG_DRIVERS = {
    "syslog", "journald", "gelf", "fluentd", "awslogs", "splunk", "etwlogs", "gcplogs", "logentries",
}  # fmt: skip
#: The local driver's rotation when not told (dockerd's): 5 files of 20 MB.
_LOCAL_DEFAULTS = {"max-size": "20m", "max-file": "5"}
_SIZE_UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12, "p": 10**15}


def log_options(host: dict[str, Any]) -> dict[str, Any] | None:
    """What pycontainerd's ``tasks.create`` is told of the container's log by HostConfig.LogConfig:
    its rotation, or None for the ``none`` driver (nothing kept). The checks and messages are
    dockerd's; an option that would change what is kept but is not done here is refused by name."""
    config = host.get("LogConfig") or {}
    if not isinstance(config, dict):
        raise InvalidParameter("HostConfig.LogConfig: not a JSON object")
    driver = config.get("Type") or "json-file"
    opts = config.get("Config") or {}
    if not isinstance(opts, dict) or not all(isinstance(v, str) for v in opts.values()):
        raise InvalidParameter("HostConfig.LogConfig.Config: an object of strings")
    if driver == "none":
        return None
    if driver in _OTHER_LOG_DRIVERS:
        raise InvalidParameter(f"HostConfig.LogConfig.Type {driver!r} is not supported by pyengine yet")
    if driver not in _LOG_DRIVER_OPTS:
        raise InvalidParameter(f"logger: no log driver named '{driver}' is registered")
    for key in opts:
        if key not in _LOG_DRIVER_OPTS[driver]:
            raise InvalidParameter(f"unknown log opt '{key}' for {driver} log driver")
        if key not in ("max-size", "max-file", "compress"):  # they name what each entry carries
            raise InvalidParameter(f"HostConfig.LogConfig.Config: {key} is not supported by pyengine yet")
    if driver == "local":
        opts = {**_LOCAL_DEFAULTS, **opts}
    if opts.get("compress", "false").lower() not in ("false", "0", "f"):
        raise InvalidParameter("HostConfig.LogConfig.Config: compress is not supported by pyengine yet")
    max_size = 0
    if "max-size" in opts:
        max_size = _human_size(opts["max-size"])
        if max_size <= 0:
            raise InvalidParameter("max-size must be a positive number")
    max_files = 1
    if "max-file" in opts:
        text = opts["max-file"]
        if not text.lstrip("+-").isdigit():
            raise InvalidParameter(f'strconv.Atoi: parsing "{text}": invalid syntax')
        max_files = int(text)
        if max_files < 1:
            raise InvalidParameter("max-file cannot be less than 1")
    if not max_size:
        max_files = 1  # as dockerd: max-file only counts with max-size
    return {"log_max_size": max_size, "log_max_files": max_files}


def _human_size(text: str) -> int:
    """A size as docker's go-units reads it for max-size (decimal: ``10k`` is 10,000 bytes)."""
    number = text.strip()
    body = number.lower().removesuffix("b").removesuffix("i")
    unit = body[-1:] if body[-1:] in _SIZE_UNITS and body[-1:] else ""
    digits = body[: len(body) - len(unit)].strip()
    try:
        value = float(digits)
    except ValueError:
        raise InvalidParameter(f"invalid size: '{text}'") from None
    if not digits or not digits.replace(".", "", 1).isdigit():
        raise InvalidParameter(f"invalid size: '{text}'")
    return int(value * _SIZE_UNITS[unit])


def _check_restart_policy(host: dict[str, Any]) -> None:
    """dockerd's checks of HostConfig.RestartPolicy, with its messages."""
    policy = host.get("RestartPolicy") or {}
    if not isinstance(policy, dict):
        raise InvalidParameter("HostConfig.RestartPolicy: not a JSON object")
    name = policy.get("Name") or "no"
    count = policy.get("MaximumRetryCount") or 0
    if name not in _RESTART_POLICIES:
        raise InvalidParameter(f"invalid restart policy: unknown policy '{name}'; use one of "
                               "'no', 'always', 'on-failure', or 'unless-stopped'")  # fmt: skip
    if not isinstance(count, int) or count < 0:
        raise InvalidParameter("invalid restart policy: maximum retry count must be a positive integer")
    if count and name != "on-failure":
        raise InvalidParameter(
            "invalid restart policy: maximum retry count can only be used with 'on-failure'"
        )
    if name != "no" and host.get("AutoRemove"):
        raise InvalidParameter("Conflicting options: cannot specify both --restart and --rm")


@attrs.define
class State:
    """What Docker reports of a container's life."""

    status: str = "created"  # created, running, exited, removing
    paused: bool = False  # while running
    restarting: bool = False  # exited, and its restart policy starts it again soon
    health: dict[str, Any] | None = None  # State.Health, with a health check
    pid: int = 0
    exit_code: int = 0
    oom_killed: bool = False
    started_at: str = "0001-01-01T00:00:00Z"
    finished_at: str = "0001-01-01T00:00:00Z"
    error: str = ""

    def to_api(self) -> dict[str, Any]:
        health = {"Health": self.health} if self.health is not None else {}
        return health | {
            "Status": "paused" if self.paused else "restarting" if self.restarting else self.status,
            "Running": self.status == "running",
            "Paused": self.paused,
            "Restarting": self.restarting,
            "OOMKilled": self.oom_killed,
            "Dead": False,
            "Pid": self.pid,
            "ExitCode": self.exit_code,
            "Error": self.error,
            "StartedAt": self.started_at,
            "FinishedAt": self.finished_at,
        }


@attrs.define
class ContainerRecord:
    """A container as the engine keeps it (``container.json``)."""

    id: str
    name: str
    created: str
    image: str  # as the request named it
    image_id: str
    path: str
    args: list[str]
    config: dict[str, Any]
    host_config: dict[str, Any]
    state: State = attrs.Factory(State)
    restart_count: int = 0  # starts by the restart policy since the last start by a client
    manually_stopped: bool = False  # by a client: the restart policy leaves it stopped
    directory: str = ""  # <data root>/containers/<id>: its hostname, hosts and resolv.conf files
    #: Its networks' EndpointSettings by network name (NetworkSettings.Networks), their addresses
    #: set while it runs; and NetworkSettings.Ports of its run.
    networks: dict[str, dict[str, Any]] = attrs.Factory(dict)
    ports: dict[str, Any] = attrs.Factory(dict)
    volumes: list[dict[str, Any]] = attrs.Factory(list)  # its VolumeMounts (pyengine._volumes)

    def to_json(self) -> dict[str, Any]:
        return attrs.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ContainerRecord:
        return cls(**{**data, "state": State(**data["state"])})

    @property
    def runtime_id(self) -> str:
        """The id of its pycontainerd container and task: the ID's first 24 digits (96 bits), short
        enough for the unix socket paths in the task's directory under any sensible exec root."""
        return self.id[:RUNTIME_ID_LENGTH]

    @property
    def volume_mounts(self) -> list[VolumeMount]:
        return [VolumeMount.from_json(v) for v in self.volumes]

    @property
    def auto_remove(self) -> bool:
        return bool(self.host_config.get("AutoRemove"))

    @property
    def restart_policy(self) -> tuple[str, int]:
        """The restart policy's name (``no`` for none) and its maximum retry count."""
        policy = self.host_config.get("RestartPolicy") or {}
        return policy.get("Name") or "no", int(policy.get("MaximumRetryCount") or 0)

    def restarts_after(self, exit_code: int) -> bool:
        """Whether its restart policy starts it again after an exit with ``exit_code``."""
        name, maximum = self.restart_policy
        if self.manually_stopped or name == "no":
            return False
        if name == "on-failure":
            return exit_code != 0 and (maximum == 0 or self.restart_count < maximum)
        return True  # always, unless-stopped

    def host_config_view(self) -> dict[str, Any]:
        """The HostConfig as inspect shows it: what was given, with the defaults it left out filled
        in (docker-py reads LogConfig.Type, for one)."""
        view = {**_HOST_DEFAULTS, **self.host_config}
        log = view.get("LogConfig") or {}
        if not log.get("Type"):  # the CLI sends the options of --log-opt without a driver
            view["LogConfig"] = {"Type": "json-file", "Config": log.get("Config") or {}}
        if not view.get("CgroupnsMode"):
            view["CgroupnsMode"] = "host"  # the container shares the host's: pyrunc makes no cgroup namespace
        if view.get("MemorySwappiness") in (
            None,
            -1,
        ):  # -1: unset, as the docker CLI says; the spec has 0-100
            view.pop("MemorySwappiness", None)
        return _no_nulls(view, _HOST_LISTS, _HOST_MAPS)

    def summary(self, sizes: tuple[int, int] | None = None) -> dict[str, Any]:
        """The container in ``GET /containers/json``; with ``sizes`` (``size=1``), its SizeRw and
        SizeRootFs."""
        summary: dict[str, Any] = {
            "Id": self.id,
            "Names": [f"/{self.name}"],
            "Image": self.image,
            "ImageID": self.image_id,
            # dockerd's rendering: an argument with a space in single quotes, nothing escaped.
            "Command": " ".join([self.path, *(f"'{a}'" if " " in a else a for a in self.args)]),
            "Created": unix(self.created),
            "Ports": _port_list(self.ports),
            "Labels": self.config.get("Labels") or {},
            "State": self.state.status,
            "Status": _status_line(self.state),
            "HostConfig": {"NetworkMode": self.host_config.get("NetworkMode") or "default"},
            "NetworkSettings": {"Networks": self.networks},
            "Mounts": self.mount_points(),
        }
        if sizes is not None:
            summary["SizeRw"], summary["SizeRootFs"] = sizes
        return summary

    def mount_points(self) -> list[dict[str, Any]]:
        """inspect's ``Mounts``: its binds, tmpfs mounts and volumes."""
        return _spec.mount_points(self.host_config) + mount_points(self.volume_mounts)

    def _etc_path(self, name: str) -> str:
        return f"{self.directory}/{name}" if self.directory else ""

    def inspect(self) -> dict[str, Any]:
        return {
            "Id": self.id,
            "Created": self.created,
            "Path": self.path,
            "Args": self.args,
            "State": self.state.to_api(),
            "Image": self.image_id,
            "ResolvConfPath": self._etc_path("resolv.conf"),
            "HostnamePath": self._etc_path("hostname"),
            "HostsPath": self._etc_path("hosts"),
            "LogPath": "",
            "Name": f"/{self.name}",
            "RestartCount": self.restart_count,
            "Driver": "overlayfs",
            "Platform": "linux",
            "MountLabel": "",
            "ProcessLabel": "",
            "AppArmorProfile": "",
            "HostConfig": self.host_config_view(),
            "Config": _no_nulls(self.config, _CONFIG_LISTS, _CONFIG_MAPS),
            "Mounts": self.mount_points(),
            "NetworkSettings": self._network_settings(),
        }

    def _network_settings(self) -> dict[str, Any]:
        """NetworkSettings: the networks, and (deprecated, still read by clients) the primary
        network's addresses at the top level, as dockerd shows them."""
        primary = self.networks.get("bridge") or {}
        running = self.state.status == "running"
        return {
            "Bridge": "",
            "SandboxID": "",
            "SandboxKey": f"/proc/{self.state.pid}/ns/net" if running and self.networks else "",
            "Ports": self.ports if running else {},
            "HairpinMode": False,
            "LinkLocalIPv6Address": "",
            "LinkLocalIPv6PrefixLen": 0,
            "SecondaryIPAddresses": None,
            "SecondaryIPv6Addresses": None,
            "EndpointID": primary.get("EndpointID", ""),
            "Gateway": primary.get("Gateway", ""),
            "GlobalIPv6Address": primary.get("GlobalIPv6Address", ""),
            "GlobalIPv6PrefixLen": primary.get("GlobalIPv6PrefixLen", 0),
            "IPAddress": primary.get("IPAddress", ""),
            "IPPrefixLen": primary.get("IPPrefixLen", 0),
            "IPv6Gateway": primary.get("IPv6Gateway", ""),
            "MacAddress": primary.get("MacAddress", ""),
            "Networks": self.networks,
        }


def _port_list(ports: dict[str, Any]) -> list[dict[str, Any]]:
    """``GET /containers/json``'s Ports: one entry per published binding, and per exposed port."""
    listed: list[dict[str, Any]] = []
    for key, bindings in sorted(ports.items()):
        port, _, proto = key.partition("/")
        if not bindings:
            listed.append({"PrivatePort": int(port), "Type": proto})
        for binding in bindings or []:
            listed.append(
                {
                    "IP": binding["HostIp"],
                    "PrivatePort": int(port),
                    "PublicPort": int(binding["HostPort"]),
                    "Type": proto,
                }
            )
    return listed


def _status_line(state: State) -> str:
    """``docker ps``'s STATUS: ``Up 3 seconds``, ``Exited (0) 2 minutes ago``, ``Created``."""
    if state.restarting:
        return f"Restarting ({state.exit_code}) {_ago(state.finished_at)} ago"
    if state.status == "running":
        health = state.health["Status"] if state.health is not None else ""
        health = {"starting": " (health: starting)", "": ""}.get(health, f" ({health})")
        return f"Up {_ago(state.started_at)}{' (Paused)' if state.paused else health}"
    if state.status == "exited":
        return f"Exited ({state.exit_code}) {_ago(state.finished_at)} ago"
    return state.status.capitalize()


def _ago(stamp: str) -> str:
    seconds = max(0, int((datetime.now(UTC) - datetime.fromisoformat(stamp)).total_seconds()))
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'s' if count > 1 else ''}"
    return "Less than a second" if seconds < 1 else f"{seconds} second{'s' if seconds > 1 else ''}"


class Containers:
    """The engine's containers: their records on disk and their pycontainerd containers and
    tasks. Methods block (the API runs them off the event loop); one lock keeps the records and
    names consistent, and is never held while a container runs or is waited for.

    Each action publishes its event on ``events`` once done, as dockerd does: one
    ``self.events.container(record, "<action>", **attributes)`` line where the action happens."""

    def __init__(
        self,
        store: pycontainerd.Client,
        images: Images,
        root: Path,
        events: EventBus,
        volumes: Volumes,
        networking: Networking,
    ) -> None:
        self.store = store
        self.networking = networking
        self.images = images
        self.events = events
        self.volumes = volumes
        volumes.users = self.volume_users
        self.root = root
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._records: dict[str, ContainerRecord] = {}
        for path in sorted(self.root.glob("*/container.json")):
            record = ContainerRecord.from_json(json.loads(path.read_text()))
            self._records[record.id] = record
        self._reconcile()

    def _reconcile(self) -> None:
        """Finish what a daemon killed half-way left: a pycontainerd container no record names (a
        create cut short before its record was written) is deleted, and a record whose container
        is gone (a removal cut short) is removed; neither is ever listed."""
        known = {record.runtime_id: record for record in self._records.values()}
        present = set()
        for container in self.store.containers.list():
            if container.labels.get("io.pyengine.name") is None:
                continue  # not one of the engine's
            present.add(container.id)
            if container.id not in known:
                log.warning("deleting container %s: its creation was cut short", container.id)
                with contextlib.suppress(pycontainerd.NotFoundError):
                    self.store.containers.delete(container.id, force=True)
        for runtime_id, record in known.items():
            if runtime_id not in present:
                log.warning("forgetting container %s: its removal was cut short", record.id[:12])
                del self._records[record.id]
                shutil.rmtree(self.root / record.id, ignore_errors=True)
        for leftover in self.root.iterdir():  # a directory made by a create that never recorded it
            if leftover.is_dir() and leftover.name not in self._records:
                shutil.rmtree(leftover, ignore_errors=True)

    # -- records ---------------------------------------------------------------------------------

    def _save(self, record: ContainerRecord) -> None:
        directory = self.root / record.id
        directory.mkdir(mode=0o700, exist_ok=True)
        tmp = directory / ".container.json.tmp"
        tmp.write_text(json.dumps(record.to_json()))
        tmp.replace(directory / "container.json")

    def volume_users(self, name: str) -> list[str]:
        """The IDs of the containers that mount the volume ``name``."""
        return [r.id for r in self.records(all=True) if any(m.name == name for m in r.volume_mounts)]

    def _volumes_from(self, name: str) -> list[VolumeMount]:
        """What ``--volumes-from name`` takes: the container's volumes and binds (dockerd's words)."""
        try:
            record = self.get(name)
        except NotFound as exc:
            raise NotFound(f"No such container: {name}") from exc
        binds = [
            VolumeMount(
                p["Destination"], source=p["Source"], rw=p["RW"], mode=p["Mode"], propagation=p["Propagation"]
            )
            for p in _spec.mount_points(record.host_config)
            if p["Type"] == "bind"
        ]
        return [*binds, *record.volume_mounts]

    def records(self, all: bool = False) -> list[ContainerRecord]:
        with self._lock:
            records = sorted(self._records.values(), key=lambda r: r.created, reverse=True)
        return [r for r in records if all or r.state.status == "running"]

    def get(self, name: str) -> ContainerRecord:
        """The container ``name`` names: its full ID, its name (with or without ``/``), or an ID prefix."""
        with self._lock:
            if name in self._records:
                return self._records[name]
            bare = name.removeprefix("/")
            for record in self._records.values():
                if record.name == bare:
                    return record
            matches = [r for r in self._records.values() if name and r.id.startswith(name)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise InvalidParameter(f"multiple IDs found with provided prefix: {name}")
        raise NotFound(f"No such container: {name}")

    def _new_name(self) -> str:
        taken = {r.name for r in self._records.values()}
        while True:
            name = f"{random.choice(_ADJECTIVES)}_{random.choice(_NAMES)}"
            if name in taken:
                name += f"{random.randrange(10)}"
            if name not in taken:
                return name

    # -- create, start, wait ---------------------------------------------------------------------

    def create(self, body: dict[str, Any], name: str | None) -> tuple[ContainerRecord, list[str]]:
        """Create a container from a ``POST /containers/create`` body; returns it and the warnings."""
        _check_request(body)
        image_ref = body.get("Image") or ""
        if not image_ref:
            raise InvalidParameter("Config.Image is required")
        try:
            summary, found = self.images.find(image_ref)
        except NotFound:
            raise NotFound(f"No such image: {familiar_name(self._full_name(image_ref))}") from None
        image_config = summary.config.config
        entrypoint = body.get("Entrypoint")
        cmd = body.get("Cmd")
        if entrypoint is None:
            entrypoint = list(image_config.entrypoint or ())
            if cmd is None:
                cmd = list(image_config.cmd or ())
        argv = [*entrypoint, *(cmd or [])]
        if not argv:
            raise InvalidParameter("No command specified")
        healthcheck = merged_healthcheck(body.get("Healthcheck"), image_config.healthcheck)
        if name is not None and (not name or not set(name.removeprefix("/")) <= _NAME_CHARS):
            raise InvalidParameter(
                f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )
        with self._lock:
            container_id = secrets.token_hex(32)
            while any(r.runtime_id == container_id[:RUNTIME_ID_LENGTH] for r in self._records.values()):
                container_id = secrets.token_hex(32)
        volumes, creating = plan_mounts(body, image_config.volumes, self._volumes_from)
        volumes = [
            attrs.evolve(v, source=str(self.volumes.data(v.name))) if v.is_volume else v for v in volumes
        ]
        host = _spec.Host.read()
        hostname = _spec.hostname_of(body, container_id, host)
        endpoints = self.networking.endpoints_for(body)
        plan = _spec.translate(
            body,
            argv,
            container_id=container_id,
            hostname=hostname,
            host=host,
            donor=self._donor,
            network=self.networking.kind(body.get("HostConfig") or {}),
            host_gateway=self.networking.host_gateway(),
            volumes=self.volumes.spec_mounts(volumes),
        )
        directory = self.root / container_id
        with self._lock:
            if name is not None:
                name = name.removeprefix("/")
                owner = next((r for r in self._records.values() if r.name == name), None)
                if owner is not None:
                    raise Conflict(
                        f'Conflict. The container name "/{name}" is already in use by container '
                        f'"{owner.id}". You have to remove (or rename) that container to be able to reuse '
                        "that name."
                    )
            else:
                name = self._new_name()
            record = ContainerRecord(
                id=container_id,
                name=name,
                created=rfc3339(),
                image=image_ref,
                image_id=summary.id,
                path=argv[0],
                args=argv[1:],
                config={
                    **{k: v for k, v in body.items() if k not in ("HostConfig", "NetworkingConfig")},
                    "Hostname": hostname,
                    "Cmd": cmd,
                    "Entrypoint": entrypoint or None,
                    **({"Healthcheck": healthcheck} if healthcheck is not None else {}),
                },
                host_config=body.get("HostConfig") or {},
                directory=str(directory),
                networks=endpoints,
                volumes=[v.to_json() for v in volumes],
            )
            self._records[container_id] = record  # the name is taken from here on
        made: list[str] = []
        try:
            made = self.volumes.prepare(volumes, creating)
            directory.mkdir(mode=0o700)
            for file_name, content in plan.files.items():
                (directory / file_name).write_text(content)
            for source in plan.make_dirs:  # dockerd makes a legacy bind's missing source
                Path(source).mkdir(mode=0o755, parents=True, exist_ok=True)
            self.store.containers.create(
                record.runtime_id,
                found if found is not None else summary.names[0],
                *plan.spec_opts(directory),
                labels={"io.pyengine.name": name},
            )
            if any(v.is_volume and v.copy for v in volumes):
                with self.store.containers.rootfs(record.runtime_id, mounts=False) as rootfs:
                    self.volumes.populate(rootfs, volumes)
            self._save(record)
        except BaseException as exc:
            with self._lock:
                del self._records[container_id]
            with contextlib.suppress(pycontainerd.NotFoundError):
                self.store.containers.delete(record.runtime_id, force=True)
            self.volumes.discard(made)
            shutil.rmtree(directory, ignore_errors=True)
            if isinstance(exc, pycontainerd.InvalidArgumentError | pycontainerd.NotFoundError):
                raise InvalidParameter(str(exc)) from None
            raise
        self.events.container(record, "create")
        warnings = list(plan.warnings)
        if record.host_config.get("NetworkMode") == "host" and record.host_config.get("PortBindings"):
            warnings.append("Published ports are discarded when using host network mode")
        return record, warnings

    def _donor(self, name: str) -> _spec.Donor:
        """The running container whose namespaces ``container:<name>`` joins; dockerd's errors."""
        try:
            record = self.get(name)
        except NotFound as exc:
            raise InvalidParameter(exc.message) from None
        if record.state.status != "running" or not record.state.pid:
            raise Conflict(f"Container {name} is not running")
        return _spec.Donor(
            id=record.id,
            pid=record.state.pid,
            ipc_mode=record.host_config.get("IpcMode") or "private",
            directory=record.directory,
        )

    def _full_name(self, ref: str) -> str:
        try:
            return str(pycontainerd.Reference.parse(ref))
        except pycontainerd.InvalidArgumentError:
            return ref

    def prepare_start(self, name: str) -> tuple[ContainerRecord, pycontainerd.Task]:
        """Make the container's task (its process made but not started), replacing the task of an
        earlier run; attachments made now see all of its output."""
        record = self.get(name)
        if record.state.status == "running":
            raise NotModified()
        with contextlib.suppress(pycontainerd.NotFoundError):
            self.task(record).delete(force=True)
        self.volumes.mount(record.id, record.volume_mounts)
        try:
            config = record.config
            log = log_options(record.host_config)
            task = self.store.tasks.create(
                record.runtime_id,
                tty=bool(config.get("Tty")),
                stdin=bool(config.get("OpenStdin")),
                **(log if log is not None else {"keep_log": False}),
            )
            rows, cols = record.host_config.get("ConsoleSize") or (0, 0)
            if record.config.get("Tty") and rows and cols:
                task.resize(rows, cols)
        except BaseException as exc:
            self.volumes.unmount(record.id, record.volume_mounts, events=False)
            if not isinstance(exc, pycontainerd.PycontainerdError):
                raise
            record.state.error = str(exc)
            self._save(record)
            if isinstance(exc, pycontainerd.TaskError):  # the runtime refused it: the request's fault
                # (the docker CLI finds "executable file not found" or "permission denied" in it)
                raise InvalidParameter(f"failed to create task for container: {exc}") from None
            raise
        try:
            self.networking.attach(record, task.pid)
        except BaseException as exc:
            with contextlib.suppress(pycontainerd.PycontainerdError):
                task.delete(force=True)
            record.state.error = str(exc.message if isinstance(exc, ApiError) else exc)
            self._save(record)
            raise
        return record, task

    def started(self, record: ContainerRecord, task: pycontainerd.Task, *, by_policy: bool = False) -> None:
        task.start()
        record.state = State(status="running", pid=task.pid, started_at=rfc3339())
        if HealthConfig.of(record.config) is not None:
            record.state.health = fresh_health()
        record.restart_count = record.restart_count + 1 if by_policy else 0
        record.manually_stopped = False
        self._save(record)
        self.events.container(record, "start")

    def restarting(self, record: ContainerRecord, restarting: bool) -> None:
        """Note that the restart policy is about to start it again (or no longer is)."""
        record.state.restarting = restarting
        self._save(record)

    def wait_exit(self, record: ContainerRecord, stop: threading.Event) -> State | None:
        """Block until the container's process exits, then record it and return the state; or
        until ``stop`` is set (the daemon is going and the container stays): None."""
        task = self.task(record)
        while True:
            try:
                status = task.wait(timeout=0.5)
                break
            except TimeoutError:
                if stop.is_set():
                    return None
        self._exited(record, status)
        return record.state

    def _exited(self, record: ContainerRecord, status: pycontainerd.ExitStatus) -> None:
        """Record the exit of the container's process, once: its watcher and a stop both may."""
        with self._lock:
            if record.state.status != "running":
                return
            # Said before it is recorded: whoever waits for the record speaks after it.
            self.events.container(record, "die", exitCode=str(status.status))
            record.state.status = "exited"
            if record.state.health is not None:  # no longer probed: dockerd says unhealthy
                record.state.health["Status"] = "unhealthy"
            record.state.paused = False
            record.state.pid = 0
            record.state.exit_code = status.status
            record.state.oom_killed = status.oom_killed
            record.state.finished_at = rfc3339(status.exited_at)
            self.networking.detach(record)
            self._save(record)
        # Outside the lock: the volumes' own lock asks for the records (who uses a volume).
        self.volumes.unmount(record.id, record.volume_mounts)

    # -- stop, kill, remove, logs ----------------------------------------------------------------

    def kill(self, name: str, sig: str | int = "SIGKILL") -> ContainerRecord:
        record = self.get(name)
        if record.state.status != "running":
            raise Conflict(f"Container {record.id} is not running")
        number = _signal_number(sig)
        if number in (signal.SIGKILL, _signal_number(record.config.get("StopSignal") or "SIGTERM")):
            record.manually_stopped = True  # a fatal signal: the restart policy rests until the next start
            self._save(record)
        task = self.task(record)
        try:
            task.kill(number)
        except pycontainerd.TaskError:
            if task.exit_status() is None:
                raise
            raise Conflict(f"Container {record.id} is not running") from None  # it exited just now
        self.events.container(record, "kill", signal=str(number))
        return record

    def stop(
        self, name: str, timeout: float | None, *, manual: bool = True, sig: str | None = None
    ) -> ContainerRecord:
        """Stop it: its stop signal, then SIGKILL after ``timeout`` seconds (its StopTimeout, or 10,
        for None). Stopped by a client (``manual``), its restart policy leaves it stopped."""
        record = self.get(name)
        if manual:
            record.manually_stopped = True
        if record.state.restarting:
            self.restarting(record, False)
        if record.state.status != "running":
            if manual:
                self._save(record)
            raise NotModified()
        task = self.task(record)
        stop_signal = _signal_number(sig or record.config.get("StopSignal") or "SIGTERM")
        try:
            task.kill(stop_signal)
        except pycontainerd.TaskError:
            exited = task.exit_status()
            if exited is None:
                raise
            self._exited(record, exited)  # it exited just now, before its watcher noticed
            self.events.container(record, "stop")
            return record
        self.events.container(record, "kill", signal=str(stop_signal))
        if record.state.paused:  # a frozen process gets its signal once thawed
            task.resume()
        default = record.config.get("StopTimeout")
        wait = timeout if timeout is not None else (10.0 if default is None else float(default))
        try:
            status = task.wait(timeout=wait)
        except TimeoutError:
            task.kill(signal.SIGKILL, all=True)
            self.events.container(record, "kill", signal=str(int(signal.SIGKILL)))
            status = task.wait()
        self._exited(record, status)  # stopped when the request returns, not when the watcher sees it
        self.events.container(record, "stop")
        return record

    def pause(self, name: str) -> ContainerRecord:
        record = self._running(name)
        if record.state.paused:
            raise Conflict(f"Container {record.id} is already paused")
        self.task(record).pause()
        record.state.paused = True
        self._save(record)
        self.events.container(record, "pause")
        return record

    def unpause(self, name: str) -> ContainerRecord:
        record = self._running(name)
        if not record.state.paused:
            raise Conflict(f"Container {record.id} is not paused")
        self.task(record).resume()
        record.state.paused = False
        self._save(record)
        self.events.container(record, "unpause")
        return record

    def rename(self, name: str, new_name: str) -> ContainerRecord:
        record = self.get(name)
        bare = new_name.removeprefix("/")
        if not bare or not set(bare) <= _NAME_CHARS or not bare[0].isalnum():
            raise InvalidParameter(
                f"Invalid container name ({new_name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )
        with self._lock:
            if bare == record.name:
                raise InvalidParameter("Renaming a container with the same name as its current name")
            owner = next((r for r in self._records.values() if r.name == bare), None)
            if owner is not None:
                raise Conflict(
                    f'Error when allocating new name: Conflict. The container name "/{bare}" is already in '
                    f'use by container "{owner.id}". You have to remove (or rename) that container to be '
                    "able to reuse that name."
                )
            old_name, record.name = record.name, bare
            self._save(record)
        self.events.container(record, "rename", oldName=f"/{old_name}")
        return record

    def top(self, name: str, ps_args: str) -> dict[str, Any]:
        """``ps ps_args`` on the host, keeping the container's processes (as dockerd does)."""
        record = self._running(name)
        pids = set(self.task(record).processes())
        try:
            done = subprocess.run(["ps", *shlex.split(ps_args)], capture_output=True, text=True, timeout=30)
        except (FileNotFoundError, ValueError) as exc:
            raise InvalidParameter(f"Error running ps: {exc}") from None
        if done.returncode != 0:
            raise InvalidParameter(f"ps: {done.stderr.strip()}")
        return _parse_ps(done.stdout, pids)

    def update(self, name: str, body: dict[str, Any]) -> list[str]:
        """Change the container's limits (``docker update``): those of its next runs, and those
        of the running one if it runs; returns the warnings."""
        record = self.get(name)
        resources = _resources(body)
        try:
            if record.state.status == "running":
                self.task(record).update(resources)
            self.store.containers.update_resources(record.runtime_id, resources)
        except pycontainerd.InvalidArgumentError as exc:
            raise InvalidParameter(str(exc)) from None
        except pycontainerd.TaskError as exc:
            raise InvalidParameter(f"Cannot update container {record.id}: {exc}") from None
        record.host_config.update({k: v for k, v in body.items() if k in _UPDATE_FIELDS})
        self._save(record)
        self.events.container(record, "update")
        return []

    def metrics(self, name: str) -> tuple[ContainerRecord, pycontainerd.Metrics | None]:
        """The container's cgroup counters now; None when it is not running."""
        record = self.get(name)
        if record.state.status != "running":
            return record, None
        try:
            return record, self.task(record).metrics()
        except (pycontainerd.TaskError, pycontainerd.NotFoundError):
            return record, None  # it exited meanwhile

    def probe_health(self, record: ContainerRecord, check: HealthConfig, starting: bool) -> None:
        """Run one health probe in the running container and record its result (blocking)."""
        try:
            task = self.task(record)
        except pycontainerd.NotFoundError:
            return
        result = probe(task, check)
        with self._lock:
            health = record.state.health
            if record.state.status != "running" or health is None:
                return  # it exited meanwhile: its health was settled then
            changed = record_result(health, result, check, starting)
            self._save(record)
        if changed:
            self.events.container(record, f"health_status: {health['Status']}")

    def change_networks(self, record: ContainerRecord, change: Callable[..., None]) -> None:
        """Connect it to a network or disconnect it: ``change(record, pid=...)`` with its process's
        pid (0 when it is not running), then keep the record."""
        with self._lock:
            pid = record.state.pid if record.state.status == "running" else 0
            change(record, pid=pid)
            self._save(record)

    def _running(self, name: str) -> ContainerRecord:
        record = self.get(name)
        if record.state.status != "running":
            raise Conflict(f"Container {record.id} is not running")
        return record

    def remove(self, name: str, force: bool, volumes: bool = False) -> None:
        """Remove the container; with ``volumes`` (``rm -v``), its anonymous volumes too, those no
        other container uses (dockerd's removeMountPoints)."""
        record = self.get(name)
        if record.state.status == "running" and not force:
            raise Conflict(
                f"You cannot remove a running container {record.id}. "
                "Stop the container before attempting removal or force remove"
            )
        if record.state.status == "running":
            self.events.container(record, "kill", signal=str(int(signal.SIGKILL)))
        with contextlib.suppress(pycontainerd.NotFoundError):
            self.store.containers.delete(record.runtime_id, force=True)
        _recorded(record)  # a running one's watcher says die first
        with self._lock:
            self._records.pop(record.id, None)
        shutil.rmtree(self.root / record.id, ignore_errors=True)
        self.events.container(record, "destroy")
        if volumes:
            for mount in record.volume_mounts:
                if mount.anonymous:
                    with contextlib.suppress(NotFound, Conflict):
                        self.volumes.remove(mount.name)

    def logs(
        self,
        name: str,
        *,
        follow: bool = False,
        since: int | None = None,
        until: int | None = None,
        tail: int | None = None,
    ) -> Iterator[Sequence[tuple[int, bytes, int]]]:
        """The container's json-file log, kept by pycontainerd across its runs (its monitor writes
        it: a daemon's crash loses nothing): ``(stream, line, time in ns)`` entries in batches, those
        from ``since`` to ``until`` (ns since the epoch), the last ``tail`` of them; with ``follow``
        (only while it runs, as dockerd) what comes until it exits. dockerd's 501 for ``none``."""
        record = self.get(name)
        if log_options(record.host_config) is None:
            raise LogsUnsupported("configured logging driver does not support reading")
        try:
            return self.store.containers.logs(
                record.runtime_id,
                since=since,
                until=until,
                tail=tail,
                follow=follow and record.state.status == "running",
            )
        except pycontainerd.NotFoundError:
            return iter(())

    def log_path(self, record: ContainerRecord) -> str:
        """inspect's LogPath: the file its log is in now, once it has one (dockerd's json-file path)."""
        if log_options(record.host_config) is None:
            return ""
        try:
            path = self.store.containers.log_path(record.runtime_id)
        except pycontainerd.NotFoundError:
            return ""
        return str(path) if path.exists() else ""

    def resize(self, name: str, rows: int, cols: int) -> None:
        """Set the size of the running container's terminal."""
        record = self.get(name)
        if record.state.status != "running":
            raise Conflict(f"Container {record.id} is not running")
        if not record.config.get("Tty"):
            raise InvalidParameter(f"Container {record.id} has no terminal to resize")
        self.task(record).resize(rows, cols)

    def sizes(self, record: ContainerRecord) -> tuple[int, int]:
        """The container's SizeRw (its writable layer, measured now) and SizeRootFs (that and the
        image layers below it); (0, 0) when it has no snapshot any more."""
        try:
            container = self.store.containers.get(record.runtime_id)
            snapshotter = self.store.snapshotter(container.snapshotter)
            rw = snapshotter.usage(container.snapshot_key).size
            total, parent = rw, snapshotter.stat(container.snapshot_key).parent
            while parent is not None:
                total += snapshotter.usage(parent).size
                parent = snapshotter.stat(parent).parent
        except pycontainerd.NotFoundError:
            return 0, 0
        return rw, total

    def task(self, record: ContainerRecord) -> pycontainerd.Task:
        """The task of the container's current (or last) run; NotFoundError if it has none."""
        return self.store.tasks.get(record.runtime_id)

    def running_records(self) -> list[ContainerRecord]:
        """The containers recorded as running, reconciled with their tasks: a task that is gone
        (the machine rebooted) leaves its container exited."""
        found = []
        for record in self.records():
            try:
                self.task(record)
            except pycontainerd.NotFoundError:
                record.state.status, record.state.pid = "exited", 0
                record.state.exit_code = record.state.exit_code or 255
                self._save(record)
                continue
            found.append(record)
        self.volumes.restore({record.id: record.volume_mounts for record in found})
        return found


def _recorded(record: ContainerRecord, timeout: float = 2.0) -> None:
    """Wait (boundedly) until the exit of the container's process is recorded."""
    deadline = time.monotonic() + timeout
    while record.state.status == "running" and time.monotonic() < deadline:
        time.sleep(0.01)


class NotModified(Exception):
    """The container is already in the state asked for (HTTP 304)."""


class LogsUnsupported(ApiError):
    """The container's log driver keeps nothing to read (dockerd's NotImplemented)."""

    status = 501


def _signal_number(sig: str | int) -> int:
    if isinstance(sig, int) or str(sig).isdigit():
        return int(sig)
    text = str(sig).upper()
    name = text if text.startswith("SIG") else f"SIG{text}"
    try:
        return int(signal.Signals[name])
    except KeyError:
        raise InvalidParameter(f"Invalid signal: {sig}") from None


#: The fields of ``POST /containers/{id}/update`` this engine applies, as pycontainerd's Resources.
_UPDATE_FIELDS = {
    "Memory": "memory_limit",
    "MemoryReservation": "memory_reservation",
    "MemorySwap": "memory_swap",
    "CpuShares": "cpu_shares",
    "CpuQuota": "cpu_quota",
    "CpuPeriod": "cpu_period",
    "CpusetCpus": "cpuset_cpus",
    "CpusetMems": "cpuset_mems",
    "PidsLimit": "pids_limit",
    "BlkioWeight": "blkio_weight",
    "NanoCpus": "",
}
_CPU_PERIOD = 100_000  # microseconds: what --cpus is a share of, as in Docker


def _resources(body: dict[str, Any]) -> pycontainerd.Resources:
    """pycontainerd's Resources for an update request; other fields set are refused by name."""
    fields: dict[str, Any] = {}
    for key, value in body.items():
        if key not in _UPDATE_FIELDS:
            if not _zero(value):
                raise InvalidParameter(f"update: {key} is not supported by pyengine yet")
            continue
        if _zero(value):
            continue
        if key == "NanoCpus":
            if not isinstance(value, int) or value < 0:
                raise InvalidParameter(f"update: NanoCpus must be a positive number, not {value!r}")
            fields["cpu_period"] = _CPU_PERIOD
            fields["cpu_quota"] = value * _CPU_PERIOD // 1_000_000_000
        else:
            fields[_UPDATE_FIELDS[key]] = value
    if "cpu_quota" in fields and body.get("CpuQuota"):
        raise InvalidParameter(
            "Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set"
        )
    if not fields:
        raise InvalidParameter("update: nothing to update (no resource given)")
    try:
        return pycontainerd.Resources(**fields)
    except pycontainerd.InvalidArgumentError as exc:
        raise InvalidParameter(f"update: {exc}") from None


def _parse_ps(output: str, pids: set[int]) -> dict[str, Any]:
    """``ps`` output as ``{"Titles": [...], "Processes": [[...], ...]}``, only the lines of ``pids``;
    the last column keeps its spaces (a command line)."""
    lines = output.splitlines()
    if not lines:
        raise InvalidParameter("ps printed nothing")
    titles = lines[0].split()
    if "PID" not in titles:
        raise InvalidParameter("Couldn't find PID field in ps output")
    index = titles.index("PID")
    processes = []
    for line in lines[1:]:
        fields = line.split(maxsplit=len(titles) - 1)
        if len(fields) > index and fields[index].isdigit() and int(fields[index]) in pids:
            processes.append(fields)
    return {"Titles": titles, "Processes": processes}
