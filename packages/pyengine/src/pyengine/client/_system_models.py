"""The system's models: ``/_ping``, ``/version``, ``/info``, ``/events`` and ``/auth``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from pyengine.client._fields import Json, mapping, obj, raw, strings

__all__ = [
    "AuthConfig",
    "AuthResponse",
    "ComponentVersion",
    "Event",
    "Ping",
    "SystemInfo",
    "Version",
]


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
    raw: Mapping[str, Any] = raw()

    @classmethod
    def from_api(cls, data: Json) -> Version:
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
            platform_name=obj(data, "Platform").get("Name") or "",
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
    raw: Mapping[str, Any] = raw()

    @classmethod
    def from_api(cls, data: Json) -> SystemInfo:
        registry = obj(data, "RegistryConfig")
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
            runtimes=tuple(sorted(obj(data, "Runtimes"))),
            live_restore_enabled=bool(data.get("LiveRestoreEnabled")),
            debug=bool(data.get("Debug")),
            experimental_build=bool(data.get("ExperimentalBuild")),
            index_server_address=data.get("IndexServerAddress") or "",
            insecure_registry_cidrs=strings(registry.get("InsecureRegistryCIDRs")),
            registry_mirrors=strings(registry.get("Mirrors")),
            security_options=strings(data.get("SecurityOptions")),
            labels=strings(data.get("Labels")),
            warnings=strings(data.get("Warnings")),
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
    actor_attributes: Mapping[str, str] = attrs.field(factory=dict, converter=mapping)
    scope: str = ""
    time: int = 0
    time_nano: int = 0

    @classmethod
    def from_api(cls, data: Json) -> Event:
        actor = obj(data, "Actor")
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
    def from_api(cls, data: Json) -> AuthResponse:
        return cls(status=data.get("Status") or "", identity_token=data.get("IdentityToken") or "")
