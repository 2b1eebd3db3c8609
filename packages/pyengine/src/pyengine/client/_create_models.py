"""The request side of a container: ``POST /containers/create``'s body and its HostConfig.
A field left at None is not sent: the daemon applies its default, as for the docker CLI."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from pyengine.client._fields import Json, mapping, obj, optional_strings, strings

__all__ = [
    "ContainerCreateConfig",
    "Healthcheck",
    "HostConfig",
    "LogConfig",
    "Mount",
    "RestartPolicy",
]


@attrs.frozen(kw_only=True)
class RestartPolicy:
    name: str = "no"  # no, always, unless-stopped, on-failure
    maximum_retry_count: int = 0

    def to_api(self) -> dict[str, Any]:
        return {"Name": self.name, "MaximumRetryCount": self.maximum_retry_count}

    @classmethod
    def from_api(cls, data: Json) -> RestartPolicy:
        return cls(name=data.get("Name") or "no", maximum_retry_count=data.get("MaximumRetryCount") or 0)


@attrs.frozen(kw_only=True)
class LogConfig:
    type: str = "json-file"
    config: Mapping[str, str] = attrs.field(factory=dict, converter=mapping)

    def to_api(self) -> dict[str, Any]:
        return {"Type": self.type, "Config": dict(self.config)}

    @classmethod
    def from_api(cls, data: Json) -> LogConfig:
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
    def from_api(cls, data: Json) -> Mount:
        return cls(
            target=data.get("Target") or "",
            source=data.get("Source") or "",
            type=data.get("Type") or "bind",
            read_only=bool(data.get("ReadOnly")),
        )


@attrs.frozen(kw_only=True)
class Healthcheck:
    """``Config.Healthcheck``; durations in nanoseconds, as the API counts them."""

    test: tuple[str, ...] = attrs.field(default=(), converter=strings)
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

    binds: tuple[str, ...] = attrs.field(default=(), converter=strings)
    mounts: tuple[Mount, ...] = ()
    auto_remove: bool = False
    restart_policy: RestartPolicy | None = None
    network_mode: str = ""
    memory: int = 0
    nano_cpus: int = 0
    pids_limit: int | None = None
    cap_add: tuple[str, ...] = attrs.field(default=(), converter=strings)
    cap_drop: tuple[str, ...] = attrs.field(default=(), converter=strings)
    privileged: bool = False
    read_only: bool = False
    security_opt: tuple[str, ...] = attrs.field(default=(), converter=strings)
    tmpfs: Mapping[str, str] = attrs.field(factory=dict, converter=mapping)
    extra_hosts: tuple[str, ...] = attrs.field(default=(), converter=strings)
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
    def from_api(cls, data: Json) -> HostConfig:
        return cls(
            binds=data.get("Binds"),
            mounts=tuple(Mount.from_api(m) for m in data.get("Mounts") or ()),
            auto_remove=bool(data.get("AutoRemove")),
            restart_policy=RestartPolicy.from_api(obj(data, "RestartPolicy")),
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
            log_config=LogConfig.from_api(obj(data, "LogConfig")),
            init=data.get("Init"),
            shm_size=data.get("ShmSize") or 0,
        )


@attrs.frozen(kw_only=True)
class ContainerCreateConfig:
    """``POST /containers/create``'s body: the container's config and its :class:`HostConfig`.
    ``cmd`` and ``entrypoint`` left at None take the image's."""

    image: str
    cmd: tuple[str, ...] | None = attrs.field(default=None, converter=optional_strings)
    entrypoint: tuple[str, ...] | None = attrs.field(default=None, converter=optional_strings)
    env: tuple[str, ...] = attrs.field(default=(), converter=strings)
    working_dir: str = ""
    user: str = ""
    labels: Mapping[str, str] = attrs.field(factory=dict, converter=mapping)
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
