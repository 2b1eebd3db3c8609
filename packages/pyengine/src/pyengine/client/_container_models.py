"""The containers' models as the daemon answers: list, inspect, top, and exec inspect."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from pyengine.client._create_models import HostConfig
from pyengine.client._fields import Json, mapping, obj, optional_strings, raw, strings

__all__ = [
    "ContainerConfig",
    "ContainerInspect",
    "ContainerState",
    "ContainerSummary",
    "ContainerTop",
    "EndpointSettings",
    "ExecInspect",
    "MountPoint",
    "NetworkSettings",
    "Port",
]


@attrs.frozen(kw_only=True)
class Port:
    private_port: int
    type: str = "tcp"
    public_port: int | None = None
    ip: str = ""

    @classmethod
    def from_api(cls, data: Json) -> Port:
        return cls(
            private_port=data.get("PrivatePort") or 0,
            type=data.get("Type") or "tcp",
            public_port=data.get("PublicPort"),
            ip=data.get("IP") or "",
        )


@attrs.frozen(kw_only=True)
class ContainerSummary:
    """One container of ``GET /containers/json``: what ``docker ps`` shows."""

    id: str
    names: tuple[str, ...] = ()
    image: str = ""
    image_id: str = ""
    command: str = ""
    created: int = 0
    state: str = ""
    status: str = ""
    ports: tuple[Port, ...] = ()
    labels: Mapping[str, str] = attrs.field(factory=dict, converter=mapping)
    size_rw: int | None = None
    size_root_fs: int | None = None
    network_mode: str = ""

    @classmethod
    def from_api(cls, data: Json) -> ContainerSummary:
        return cls(
            id=data.get("Id") or "",
            names=strings(data.get("Names")),
            image=data.get("Image") or "",
            image_id=data.get("ImageID") or "",
            command=data.get("Command") or "",
            created=data.get("Created") or 0,
            state=data.get("State") or "",
            status=data.get("Status") or "",
            ports=tuple(Port.from_api(p) for p in data.get("Ports") or ()),
            labels=data.get("Labels"),
            size_rw=data.get("SizeRw"),
            size_root_fs=data.get("SizeRootFs"),
            network_mode=obj(data, "HostConfig").get("NetworkMode") or "",
        )


@attrs.frozen(kw_only=True)
class ContainerState:
    """``State`` of a container's inspect."""

    status: str
    running: bool = False
    paused: bool = False
    restarting: bool = False
    oom_killed: bool = False
    dead: bool = False
    pid: int = 0
    exit_code: int = 0
    error: str = ""
    started_at: str = ""
    finished_at: str = ""
    health_status: str | None = None  # starting, healthy, unhealthy; None without a health check

    @classmethod
    def from_api(cls, data: Json) -> ContainerState:
        health = data.get("Health")
        return cls(
            status=data.get("Status") or "",
            running=bool(data.get("Running")),
            paused=bool(data.get("Paused")),
            restarting=bool(data.get("Restarting")),
            oom_killed=bool(data.get("OOMKilled")),
            dead=bool(data.get("Dead")),
            pid=data.get("Pid") or 0,
            exit_code=data.get("ExitCode") or 0,
            error=data.get("Error") or "",
            started_at=data.get("StartedAt") or "",
            finished_at=data.get("FinishedAt") or "",
            health_status=health.get("Status") if isinstance(health, Mapping) else None,
        )


@attrs.frozen(kw_only=True)
class ContainerConfig:
    """``Config`` of a container's inspect (a subset): what it was created with."""

    image: str = ""
    cmd: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    env: tuple[str, ...] = ()
    working_dir: str = ""
    user: str = ""
    labels: Mapping[str, str] = attrs.field(factory=dict, converter=mapping)
    hostname: str = ""
    tty: bool = False
    open_stdin: bool = False
    stdin_once: bool = False
    attach_stdin: bool = False
    attach_stdout: bool = False
    attach_stderr: bool = False
    stop_signal: str = ""
    stop_timeout: int | None = None

    @classmethod
    def from_api(cls, data: Json) -> ContainerConfig:
        return cls(
            image=data.get("Image") or "",
            cmd=optional_strings(data.get("Cmd")),
            entrypoint=optional_strings(data.get("Entrypoint")),
            env=strings(data.get("Env")),
            working_dir=data.get("WorkingDir") or "",
            user=data.get("User") or "",
            labels=data.get("Labels"),
            hostname=data.get("Hostname") or "",
            tty=bool(data.get("Tty")),
            open_stdin=bool(data.get("OpenStdin")),
            stdin_once=bool(data.get("StdinOnce")),
            attach_stdin=bool(data.get("AttachStdin")),
            attach_stdout=bool(data.get("AttachStdout")),
            attach_stderr=bool(data.get("AttachStderr")),
            stop_signal=data.get("StopSignal") or "",
            stop_timeout=data.get("StopTimeout"),
        )


@attrs.frozen(kw_only=True)
class MountPoint:
    """One of a container's ``Mounts`` as inspect reports them."""

    type: str
    source: str = ""
    destination: str = ""
    mode: str = ""
    rw: bool = True

    @classmethod
    def from_api(cls, data: Json) -> MountPoint:
        return cls(
            type=data.get("Type") or "",
            source=data.get("Source") or "",
            destination=data.get("Destination") or "",
            mode=data.get("Mode") or "",
            rw=bool(data.get("RW", True)),
        )


@attrs.frozen(kw_only=True)
class EndpointSettings:
    """A container's place on one network."""

    network_id: str = ""
    ip_address: str = ""
    gateway: str = ""
    mac_address: str = ""

    @classmethod
    def from_api(cls, data: Json) -> EndpointSettings:
        return cls(
            network_id=data.get("NetworkID") or "",
            ip_address=data.get("IPAddress") or "",
            gateway=data.get("Gateway") or "",
            mac_address=data.get("MacAddress") or "",
        )


@attrs.frozen(kw_only=True)
class NetworkSettings:
    """``NetworkSettings`` of a container's inspect (a subset)."""

    ip_address: str = ""
    gateway: str = ""
    mac_address: str = ""
    networks: Mapping[str, EndpointSettings] = attrs.field(factory=dict)
    ports: Mapping[str, Any] = attrs.field(factory=dict)

    @classmethod
    def from_api(cls, data: Json) -> NetworkSettings:
        return cls(
            ip_address=data.get("IPAddress") or "",
            gateway=data.get("Gateway") or "",
            mac_address=data.get("MacAddress") or "",
            networks={
                name: EndpointSettings.from_api(value or {}) for name, value in obj(data, "Networks").items()
            },
            ports=dict(obj(data, "Ports")),
        )


@attrs.frozen(kw_only=True)
class ContainerInspect:
    """``GET /containers/{id}/json`` (a subset)."""

    id: str
    name: str = ""
    created: str = ""
    path: str = ""
    args: tuple[str, ...] = ()
    state: ContainerState = attrs.field(factory=lambda: ContainerState(status=""))
    image: str = ""
    restart_count: int = 0
    config: ContainerConfig = attrs.field(factory=ContainerConfig)
    host_config: HostConfig = attrs.field(factory=HostConfig)
    mounts: tuple[MountPoint, ...] = ()
    network_settings: NetworkSettings = attrs.field(factory=NetworkSettings)
    log_path: str = ""
    raw: Mapping[str, Any] = raw()

    @classmethod
    def from_api(cls, data: Json) -> ContainerInspect:
        return cls(
            id=data.get("Id") or "",
            name=data.get("Name") or "",
            created=data.get("Created") or "",
            path=data.get("Path") or "",
            args=strings(data.get("Args")),
            state=ContainerState.from_api(obj(data, "State")),
            image=data.get("Image") or "",
            restart_count=data.get("RestartCount") or 0,
            config=ContainerConfig.from_api(obj(data, "Config")),
            host_config=HostConfig.from_api(obj(data, "HostConfig")),
            mounts=tuple(MountPoint.from_api(m) for m in data.get("Mounts") or ()),
            network_settings=NetworkSettings.from_api(obj(data, "NetworkSettings")),
            log_path=data.get("LogPath") or "",
            raw=data,
        )


@attrs.frozen(kw_only=True)
class ContainerTop:
    """``GET /containers/{id}/top``: ps's column titles and one row per process."""

    titles: tuple[str, ...]
    processes: tuple[tuple[str, ...], ...]

    @classmethod
    def from_api(cls, data: Json) -> ContainerTop:
        return cls(
            titles=strings(data.get("Titles")),
            processes=tuple(tuple(row) for row in data.get("Processes") or ()),
        )


@attrs.frozen(kw_only=True)
class ExecInspect:
    """``GET /exec/{id}/json``: whether the exec runs, and its exit code once it has exited."""

    id: str
    container_id: str = ""
    running: bool = False
    exit_code: int | None = None
    pid: int = 0
    tty: bool = False
    entrypoint: str = ""
    arguments: tuple[str, ...] = ()
    user: str = ""
    open_stdin: bool = False
    open_stdout: bool = False
    open_stderr: bool = False
    detach_keys: str = ""

    @classmethod
    def from_api(cls, data: Json) -> ExecInspect:
        process = obj(data, "ProcessConfig")
        return cls(
            id=data.get("ID") or "",
            container_id=data.get("ContainerID") or "",
            running=bool(data.get("Running")),
            exit_code=data.get("ExitCode"),
            pid=data.get("Pid") or 0,
            tty=bool(process.get("tty")),
            entrypoint=process.get("entrypoint") or "",
            arguments=strings(process.get("arguments")),
            user=process.get("user") or "",
            open_stdin=bool(data.get("OpenStdin")),
            open_stdout=bool(data.get("OpenStdout")),
            open_stderr=bool(data.get("OpenStderr")),
            detach_keys=data.get("DetachKeys") or "",
        )
