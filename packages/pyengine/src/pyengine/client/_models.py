"""The Engine API's request and response models, as the client reads and writes them.

Each response model is a frozen attrs class made by ``from_api(dict)`` from the daemon's JSON:
fields it does not know are ignored (a newer daemon adds some), and a field the answer leaves
out, or sends as ``null``, takes its default (an older daemon, or pyengined, omits some), so a
model never fails on a well-formed answer. Names are the API's in snake case (``RepoTags`` ->
``repo_tags``); lists become tuples, objects stay mappings.

The request side (:class:`ContainerCreateConfig` and its :class:`HostConfig`) goes the other way,
with ``to_api()``; a field left at None is not sent, so the daemon applies its own default, as it
does for the docker CLI.

Only the fields a CLI shows or acts on are modelled; ``raw`` keeps each answer whole for the rest.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

__all__ = [
    "AuthConfig",
    "AuthResponse",
    "ComponentVersion",
    "ContainerConfig",
    "ContainerCreateConfig",
    "ContainerInspect",
    "ContainerState",
    "ContainerSummary",
    "ContainerTop",
    "EndpointSettings",
    "Event",
    "ExecInspect",
    "Healthcheck",
    "HostConfig",
    "ImageConfig",
    "ImageDeleteItem",
    "ImageInspect",
    "ImageSummary",
    "LogConfig",
    "Mount",
    "MountPoint",
    "NetworkSettings",
    "Ping",
    "Port",
    "ProgressMessage",
    "RestartPolicy",
    "SystemInfo",
    "Version",
]

_Json = Mapping[str, Any]


def _strings(value: Iterable[str] | None) -> tuple[str, ...]:
    return tuple(value or ())


def _optional_strings(value: Iterable[str] | None) -> tuple[str, ...] | None:
    return None if value is None else tuple(value)


def _mapping(value: Mapping[str, str] | None) -> Mapping[str, str]:
    return dict(value or {})


def _object(data: _Json, key: str) -> _Json:
    """``data[key]`` when it is an object, else an empty one (absent or null)."""
    value = data.get(key)
    return value if isinstance(value, Mapping) else {}


def _raw() -> Any:
    """The whole answer, kept for what is not modelled; not compared, not shown."""
    return attrs.field(factory=dict, eq=False, repr=False)


# -- system ----------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Ping:
    """``GET /_ping``'s headers: the API version the daemon speaks, its OS, its builder."""

    api_version: str
    os_type: str = ""
    experimental: bool = False
    builder_version: str = ""


@attrs.frozen(kw_only=True)
class ComponentVersion:
    name: str
    version: str


@attrs.frozen(kw_only=True)
class Version:
    """``GET /version``."""

    version: str
    api_version: str
    min_api_version: str = ""
    os: str = ""
    arch: str = ""
    kernel_version: str = ""
    git_commit: str = ""
    go_version: str = ""
    build_time: str = ""
    experimental: bool = False
    platform_name: str = ""
    components: tuple[ComponentVersion, ...] = ()
    raw: Mapping[str, Any] = _raw()

    @classmethod
    def from_api(cls, data: _Json) -> Version:
        return cls(
            version=data.get("Version") or "",
            api_version=data.get("ApiVersion") or "",
            min_api_version=data.get("MinAPIVersion") or "",
            os=data.get("Os") or "",
            arch=data.get("Arch") or "",
            kernel_version=data.get("KernelVersion") or "",
            git_commit=data.get("GitCommit") or "",
            go_version=data.get("GoVersion") or "",
            build_time=data.get("BuildTime") or "",
            experimental=bool(data.get("Experimental")),
            platform_name=_object(data, "Platform").get("Name") or "",
            components=tuple(
                ComponentVersion(name=c.get("Name") or "", version=c.get("Version") or "")
                for c in data.get("Components") or ()
            ),
            raw=data,
        )


@attrs.frozen(kw_only=True)
class SystemInfo:
    """``GET /info``: what ``docker info`` shows."""

    id: str
    name: str = ""
    server_version: str = ""
    containers: int = 0
    containers_running: int = 0
    containers_paused: int = 0
    containers_stopped: int = 0
    images: int = 0
    driver: str = ""
    docker_root_dir: str = ""
    operating_system: str = ""
    os_type: str = ""
    architecture: str = ""
    ncpu: int = 0
    mem_total: int = 0
    kernel_version: str = ""
    cgroup_driver: str = ""
    cgroup_version: str = ""
    logging_driver: str = ""
    default_runtime: str = ""
    runtimes: tuple[str, ...] = ()
    live_restore_enabled: bool = False
    debug: bool = False
    experimental_build: bool = False
    index_server_address: str = ""
    insecure_registry_cidrs: tuple[str, ...] = ()
    registry_mirrors: tuple[str, ...] = ()
    security_options: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    http_proxy: str = ""
    https_proxy: str = ""
    no_proxy: str = ""
    system_time: str = ""
    raw: Mapping[str, Any] = _raw()

    @classmethod
    def from_api(cls, data: _Json) -> SystemInfo:
        registry = _object(data, "RegistryConfig")
        return cls(
            id=data.get("ID") or "",
            name=data.get("Name") or "",
            server_version=data.get("ServerVersion") or "",
            containers=data.get("Containers") or 0,
            containers_running=data.get("ContainersRunning") or 0,
            containers_paused=data.get("ContainersPaused") or 0,
            containers_stopped=data.get("ContainersStopped") or 0,
            images=data.get("Images") or 0,
            driver=data.get("Driver") or "",
            docker_root_dir=data.get("DockerRootDir") or "",
            operating_system=data.get("OperatingSystem") or "",
            os_type=data.get("OSType") or "",
            architecture=data.get("Architecture") or "",
            ncpu=data.get("NCPU") or 0,
            mem_total=data.get("MemTotal") or 0,
            kernel_version=data.get("KernelVersion") or "",
            cgroup_driver=data.get("CgroupDriver") or "",
            cgroup_version=data.get("CgroupVersion") or "",
            logging_driver=data.get("LoggingDriver") or "",
            default_runtime=data.get("DefaultRuntime") or "",
            runtimes=tuple(sorted(_object(data, "Runtimes"))),
            live_restore_enabled=bool(data.get("LiveRestoreEnabled")),
            debug=bool(data.get("Debug")),
            experimental_build=bool(data.get("ExperimentalBuild")),
            index_server_address=data.get("IndexServerAddress") or "",
            insecure_registry_cidrs=_strings(registry.get("InsecureRegistryCIDRs")),
            registry_mirrors=_strings(registry.get("Mirrors")),
            security_options=_strings(data.get("SecurityOptions")),
            labels=_strings(data.get("Labels")),
            warnings=_strings(data.get("Warnings")),
            http_proxy=data.get("HttpProxy") or "",
            https_proxy=data.get("HttpsProxy") or "",
            no_proxy=data.get("NoProxy") or "",
            system_time=data.get("SystemTime") or "",
            raw=data,
        )


@attrs.frozen(kw_only=True)
class Event:
    """One line of ``GET /events``: what happened (``action``) to what (``type``, ``actor_id``)."""

    type: str
    action: str
    actor_id: str = ""
    actor_attributes: Mapping[str, str] = attrs.field(factory=dict, converter=_mapping)
    scope: str = ""
    time: int = 0
    time_nano: int = 0

    @classmethod
    def from_api(cls, data: _Json) -> Event:
        actor = _object(data, "Actor")
        return cls(
            type=data.get("Type") or "",
            action=data.get("Action") or data.get("status") or "",
            actor_id=actor.get("ID") or data.get("id") or "",
            actor_attributes=actor.get("Attributes"),
            scope=data.get("scope") or "",
            time=data.get("time") or 0,
            time_nano=data.get("timeNano") or 0,
        )


@attrs.frozen(kw_only=True)
class AuthConfig:
    """Credentials for a registry: ``POST /auth``'s body, and (as base64url JSON) the
    ``X-Registry-Auth`` header of a pull or a push, as docker-py sends them."""

    username: str = ""
    password: str = attrs.field(default="", repr=False)
    server_address: str = ""
    identity_token: str = attrs.field(default="", repr=False)

    def to_api(self) -> dict[str, str]:
        fields = {
            "username": self.username,
            "password": self.password,
            "serveraddress": self.server_address,
            "identitytoken": self.identity_token,
        }
        return {key: value for key, value in fields.items() if value}

    def header(self) -> str:
        """The ``X-Registry-Auth`` value."""
        import base64
        import json

        return base64.urlsafe_b64encode(json.dumps(self.to_api()).encode()).decode()


@attrs.frozen(kw_only=True)
class AuthResponse:
    """``POST /auth``'s answer."""

    status: str
    identity_token: str = ""

    @classmethod
    def from_api(cls, data: _Json) -> AuthResponse:
        return cls(status=data.get("Status") or "", identity_token=data.get("IdentityToken") or "")


# -- images ----------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class ImageSummary:
    """One image of ``GET /images/json``."""

    id: str
    repo_tags: tuple[str, ...] = ()
    repo_digests: tuple[str, ...] = ()
    parent_id: str = ""
    created: int = 0
    size: int = 0
    shared_size: int = -1
    containers: int = -1
    labels: Mapping[str, str] = attrs.field(factory=dict, converter=_mapping)

    @classmethod
    def from_api(cls, data: _Json) -> ImageSummary:
        return cls(
            id=data.get("Id") or "",
            repo_tags=_strings(data.get("RepoTags")),
            repo_digests=_strings(data.get("RepoDigests")),
            parent_id=data.get("ParentId") or "",
            created=data.get("Created") or 0,
            size=data.get("Size") or 0,
            shared_size=data.get("SharedSize", -1),
            containers=data.get("Containers", -1),
            labels=data.get("Labels"),
        )


@attrs.frozen(kw_only=True)
class ImageConfig:
    """The part of an image's config a container starts from."""

    cmd: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    env: tuple[str, ...] = ()
    working_dir: str = ""
    user: str = ""
    labels: Mapping[str, str] = attrs.field(factory=dict, converter=_mapping)

    @classmethod
    def from_api(cls, data: _Json) -> ImageConfig:
        return cls(
            cmd=_optional_strings(data.get("Cmd")),
            entrypoint=_optional_strings(data.get("Entrypoint")),
            env=_strings(data.get("Env")),
            working_dir=data.get("WorkingDir") or "",
            user=data.get("User") or "",
            labels=data.get("Labels"),
        )


@attrs.frozen(kw_only=True)
class ImageInspect:
    """``GET /images/{name}/json`` (a subset)."""

    id: str
    repo_tags: tuple[str, ...] = ()
    repo_digests: tuple[str, ...] = ()
    created: str = ""
    size: int = 0
    config: ImageConfig = attrs.field(factory=ImageConfig)
    architecture: str = ""
    os: str = ""
    raw: Mapping[str, Any] = _raw()

    @classmethod
    def from_api(cls, data: _Json) -> ImageInspect:
        return cls(
            id=data.get("Id") or "",
            repo_tags=_strings(data.get("RepoTags")),
            repo_digests=_strings(data.get("RepoDigests")),
            created=data.get("Created") or "",
            size=data.get("Size") or 0,
            config=ImageConfig.from_api(_object(data, "Config")),
            architecture=data.get("Architecture") or "",
            os=data.get("Os") or "",
            raw=data,
        )


@attrs.frozen(kw_only=True)
class ImageDeleteItem:
    """One line of ``DELETE /images/{name}``'s answer: a name untagged or an image deleted."""

    untagged: str | None = None
    deleted: str | None = None

    @classmethod
    def from_api(cls, data: _Json) -> ImageDeleteItem:
        return cls(untagged=data.get("Untagged"), deleted=data.get("Deleted"))


@attrs.frozen(kw_only=True)
class ProgressMessage:
    """One message of the JSON stream of a pull, a push or a load (Docker's JSONMessage):
    a layer's ``status`` and progress, a line of text (``stream``), or the ``error`` that ended
    the operation (the client raises it)."""

    id: str = ""
    status: str = ""
    progress: str = ""
    current: int | None = None
    total: int | None = None
    stream: str = ""
    error: str = ""
    aux: Mapping[str, Any] | None = None

    @classmethod
    def from_api(cls, data: _Json) -> ProgressMessage:
        detail = _object(data, "progressDetail")
        error = data.get("error") or _object(data, "errorDetail").get("message") or ""
        return cls(
            id=data.get("id") or "",
            status=data.get("status") or "",
            progress=data.get("progress") or "",
            current=detail.get("current"),
            total=detail.get("total"),
            stream=data.get("stream") or "",
            error=error,
            aux=data.get("aux"),
        )


# -- containers: the request side ------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class RestartPolicy:
    name: str = "no"  # no, always, unless-stopped, on-failure
    maximum_retry_count: int = 0

    def to_api(self) -> dict[str, Any]:
        return {"Name": self.name, "MaximumRetryCount": self.maximum_retry_count}

    @classmethod
    def from_api(cls, data: _Json) -> RestartPolicy:
        return cls(name=data.get("Name") or "no", maximum_retry_count=data.get("MaximumRetryCount") or 0)


@attrs.frozen(kw_only=True)
class LogConfig:
    type: str = "json-file"
    config: Mapping[str, str] = attrs.field(factory=dict, converter=_mapping)

    def to_api(self) -> dict[str, Any]:
        return {"Type": self.type, "Config": dict(self.config)}

    @classmethod
    def from_api(cls, data: _Json) -> LogConfig:
        return cls(type=data.get("Type") or "json-file", config=data.get("Config"))


@attrs.frozen(kw_only=True)
class Mount:
    """One of ``HostConfig.Mounts`` (``docker run --mount``): a bind, a volume or a tmpfs."""

    target: str
    source: str = ""
    type: str = "bind"
    read_only: bool = False

    def to_api(self) -> dict[str, Any]:
        return {"Target": self.target, "Source": self.source, "Type": self.type, "ReadOnly": self.read_only}

    @classmethod
    def from_api(cls, data: _Json) -> Mount:
        return cls(
            target=data.get("Target") or "",
            source=data.get("Source") or "",
            type=data.get("Type") or "bind",
            read_only=bool(data.get("ReadOnly")),
        )


@attrs.frozen(kw_only=True)
class Healthcheck:
    """``Config.Healthcheck``; durations in nanoseconds, as the API counts them."""

    test: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    interval: int = 0
    timeout: int = 0
    retries: int = 0
    start_period: int = 0
    start_interval: int = 0

    def to_api(self) -> dict[str, Any]:
        return {
            "Test": list(self.test),
            "Interval": self.interval,
            "Timeout": self.timeout,
            "Retries": self.retries,
            "StartPeriod": self.start_period,
            "StartInterval": self.start_interval,
        }


@attrs.frozen(kw_only=True)
class HostConfig:
    """The commonly used fields of ``HostConfig``: what ``docker run``'s flags set. As a response
    (``ContainerInspect.host_config``) it is read back the same way."""

    binds: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    mounts: tuple[Mount, ...] = ()
    auto_remove: bool = False
    restart_policy: RestartPolicy | None = None
    network_mode: str = ""
    memory: int = 0
    nano_cpus: int = 0
    pids_limit: int | None = None
    cap_add: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    cap_drop: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    privileged: bool = False
    read_only: bool = False
    security_opt: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    tmpfs: Mapping[str, str] = attrs.field(factory=dict, converter=_mapping)
    extra_hosts: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    log_config: LogConfig | None = None
    init: bool | None = None
    shm_size: int = 0

    def to_api(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "Binds": list(self.binds) or None,
            "Mounts": [m.to_api() for m in self.mounts] or None,
            "AutoRemove": self.auto_remove,
            "NetworkMode": self.network_mode,
            "Memory": self.memory,
            "NanoCpus": self.nano_cpus,
            "PidsLimit": self.pids_limit,
            "CapAdd": list(self.cap_add) or None,
            "CapDrop": list(self.cap_drop) or None,
            "Privileged": self.privileged,
            "ReadonlyRootfs": self.read_only,
            "SecurityOpt": list(self.security_opt) or None,
            "Tmpfs": dict(self.tmpfs) or None,
            "ExtraHosts": list(self.extra_hosts) or None,
            "Init": self.init,
            "ShmSize": self.shm_size,
        }
        if self.restart_policy is not None:
            body["RestartPolicy"] = self.restart_policy.to_api()
        if self.log_config is not None:
            body["LogConfig"] = self.log_config.to_api()
        return {key: value for key, value in body.items() if value is not None}

    @classmethod
    def from_api(cls, data: _Json) -> HostConfig:
        return cls(
            binds=data.get("Binds"),
            mounts=tuple(Mount.from_api(m) for m in data.get("Mounts") or ()),
            auto_remove=bool(data.get("AutoRemove")),
            restart_policy=RestartPolicy.from_api(_object(data, "RestartPolicy")),
            network_mode=data.get("NetworkMode") or "",
            memory=data.get("Memory") or 0,
            nano_cpus=data.get("NanoCpus") or 0,
            pids_limit=data.get("PidsLimit"),
            cap_add=data.get("CapAdd"),
            cap_drop=data.get("CapDrop"),
            privileged=bool(data.get("Privileged")),
            read_only=bool(data.get("ReadonlyRootfs")),
            security_opt=data.get("SecurityOpt"),
            tmpfs=data.get("Tmpfs"),
            extra_hosts=data.get("ExtraHosts"),
            log_config=LogConfig.from_api(_object(data, "LogConfig")),
            init=data.get("Init"),
            shm_size=data.get("ShmSize") or 0,
        )


@attrs.frozen(kw_only=True)
class ContainerCreateConfig:
    """``POST /containers/create``'s body: the container's config and its :class:`HostConfig`.
    ``cmd`` and ``entrypoint`` left at None take the image's."""

    image: str
    cmd: tuple[str, ...] | None = attrs.field(default=None, converter=_optional_strings)
    entrypoint: tuple[str, ...] | None = attrs.field(default=None, converter=_optional_strings)
    env: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    working_dir: str = ""
    user: str = ""
    labels: Mapping[str, str] = attrs.field(factory=dict, converter=_mapping)
    hostname: str = ""
    domainname: str = ""
    tty: bool = False
    open_stdin: bool = False
    stdin_once: bool = False
    attach_stdin: bool = False
    attach_stdout: bool = False
    attach_stderr: bool = False
    stop_signal: str | None = None
    stop_timeout: int | None = None
    healthcheck: Healthcheck | None = None
    host_config: HostConfig = attrs.field(factory=HostConfig)

    def to_api(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "Image": self.image,
            "Cmd": None if self.cmd is None else list(self.cmd),
            "Entrypoint": None if self.entrypoint is None else list(self.entrypoint),
            "Env": list(self.env) or None,
            "WorkingDir": self.working_dir,
            "User": self.user,
            "Labels": dict(self.labels),
            "Hostname": self.hostname,
            "Domainname": self.domainname,
            "Tty": self.tty,
            "OpenStdin": self.open_stdin,
            "StdinOnce": self.stdin_once,
            "AttachStdin": self.attach_stdin,
            "AttachStdout": self.attach_stdout,
            "AttachStderr": self.attach_stderr,
            "StopSignal": self.stop_signal,
            "StopTimeout": self.stop_timeout,
            "Healthcheck": None if self.healthcheck is None else self.healthcheck.to_api(),
            "HostConfig": self.host_config.to_api(),
        }
        return {key: value for key, value in body.items() if value is not None}


# -- containers: the response side -----------------------------------------------------------------


@attrs.frozen(kw_only=True)
class Port:
    private_port: int
    type: str = "tcp"
    public_port: int | None = None
    ip: str = ""

    @classmethod
    def from_api(cls, data: _Json) -> Port:
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
    labels: Mapping[str, str] = attrs.field(factory=dict, converter=_mapping)
    size_rw: int | None = None
    size_root_fs: int | None = None
    network_mode: str = ""

    @classmethod
    def from_api(cls, data: _Json) -> ContainerSummary:
        return cls(
            id=data.get("Id") or "",
            names=_strings(data.get("Names")),
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
            network_mode=_object(data, "HostConfig").get("NetworkMode") or "",
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
    def from_api(cls, data: _Json) -> ContainerState:
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
    labels: Mapping[str, str] = attrs.field(factory=dict, converter=_mapping)
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
    def from_api(cls, data: _Json) -> ContainerConfig:
        return cls(
            image=data.get("Image") or "",
            cmd=_optional_strings(data.get("Cmd")),
            entrypoint=_optional_strings(data.get("Entrypoint")),
            env=_strings(data.get("Env")),
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
    def from_api(cls, data: _Json) -> MountPoint:
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
    def from_api(cls, data: _Json) -> EndpointSettings:
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
    def from_api(cls, data: _Json) -> NetworkSettings:
        return cls(
            ip_address=data.get("IPAddress") or "",
            gateway=data.get("Gateway") or "",
            mac_address=data.get("MacAddress") or "",
            networks={
                name: EndpointSettings.from_api(value or {})
                for name, value in _object(data, "Networks").items()
            },
            ports=dict(_object(data, "Ports")),
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
    raw: Mapping[str, Any] = _raw()

    @classmethod
    def from_api(cls, data: _Json) -> ContainerInspect:
        return cls(
            id=data.get("Id") or "",
            name=data.get("Name") or "",
            created=data.get("Created") or "",
            path=data.get("Path") or "",
            args=_strings(data.get("Args")),
            state=ContainerState.from_api(_object(data, "State")),
            image=data.get("Image") or "",
            restart_count=data.get("RestartCount") or 0,
            config=ContainerConfig.from_api(_object(data, "Config")),
            host_config=HostConfig.from_api(_object(data, "HostConfig")),
            mounts=tuple(MountPoint.from_api(m) for m in data.get("Mounts") or ()),
            network_settings=NetworkSettings.from_api(_object(data, "NetworkSettings")),
            log_path=data.get("LogPath") or "",
            raw=data,
        )


@attrs.frozen(kw_only=True)
class ContainerTop:
    """``GET /containers/{id}/top``: ps's column titles and one row per process."""

    titles: tuple[str, ...]
    processes: tuple[tuple[str, ...], ...]

    @classmethod
    def from_api(cls, data: _Json) -> ContainerTop:
        return cls(
            titles=_strings(data.get("Titles")),
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
    def from_api(cls, data: _Json) -> ExecInspect:
        process = _object(data, "ProcessConfig")
        return cls(
            id=data.get("ID") or "",
            container_id=data.get("ContainerID") or "",
            running=bool(data.get("Running")),
            exit_code=data.get("ExitCode"),
            pid=data.get("Pid") or 0,
            tty=bool(process.get("tty")),
            entrypoint=process.get("entrypoint") or "",
            arguments=_strings(process.get("arguments")),
            user=process.get("user") or "",
            open_stdin=bool(data.get("OpenStdin")),
            open_stdout=bool(data.get("OpenStdout")),
            open_stderr=bool(data.get("OpenStderr")),
            detach_keys=data.get("DetachKeys") or "",
        )
