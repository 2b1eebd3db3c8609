"""A container's Config and HostConfig as pycontainerd spec opts, as dockerd builds its OCI spec.

:func:`translate` is pure: what it needs of the host (its resolv.conf, hosts file, hostname, CPUs,
an init binary) comes in a :class:`Host`, read once per request by :meth:`Host.read`, and a running
container whose namespaces are joined (``--pid container:web``) through a lookup. Its result, a
:class:`Plan`, says what to do before the spec is made (host directories the legacy ``Binds`` form
creates, the files dockerd keeps in the container's directory: ``hostname``, ``hosts`` and
``resolv.conf``) and gives the opts once they exist. :func:`mount_points` is inspect's ``Mounts``.

Refusals carry dockerd's words where it has some, so that ``docker run`` prints what it prints.
"""

from __future__ import annotations

import ipaddress
import json
import os
import posixpath
import shutil
import socket
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs

import pycontainerd
from pycontainerd import oci
from pyengine._errors import InvalidParameter

__all__ = [
    "ETC_FILES",
    "NETWORK_KINDS",
    "Donor",
    "Host",
    "Plan",
    "hostname_of",
    "hosts_file",
    "mount_points",
    "translate",
    "upstreams",
]

#: The files dockerd writes in the container's directory and bind-mounts, by their names there.
ETC_FILES = {"hostname": "/etc/hostname", "hosts": "/etc/hosts", "resolv.conf": "/etc/resolv.conf"}
DEFAULT_SHM_SIZE = 64 << 20  # Docker's /dev/shm
MIN_MEMORY = 6 << 20
_INIT_PATH = "/sbin/docker-init"  # where dockerd mounts its init in the container
_INITS = ("docker-init", "tini-static")  # Debian's docker.io and tini packages
_DEFAULT_HOSTS = (
    "127.0.0.1\tlocalhost\n"
    "::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::0\tip6-localnet\n"
    "ff00::0\tip6-mcastprefix\n"
    "ff02::1\tip6-allnodes\n"
    "ff02::2\tip6-allrouters\n"
)
DNS_ADDRESS = "127.0.0.11"  # the embedded DNS server, as in dockerd
_DEFAULT_DNS = "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"  # Docker's when the host's are all local
_PROPAGATIONS = frozenset({"shared", "rshared", "slave", "rslave", "private", "rprivate"})
_BIND_MODES = frozenset({"ro", "rw", "z", "Z"}) | _PROPAGATIONS
_CPU_PERIOD = 100_000


@attrs.frozen
class Donor:
    """A running container whose namespaces another joins (``container:<name|id>``)."""

    id: str
    pid: int
    ipc_mode: str
    directory: str  # where its hostname, hosts and resolv.conf files are


@attrs.frozen
class Host:
    """What the translation reads of the host."""

    hostname: str
    hosts: str  # /etc/hosts
    resolv_conf: str  # /etc/resolv.conf, or systemd-resolved's upstream file when that is local
    cpu_count: int
    cpus: frozenset[int]  # the CPUs and memory nodes a cpuset may name
    mems: frozenset[int]
    swap_limit: bool  # whether the memory cgroup limits swap (memory.memsw.*)
    init: str | None  # the host path of docker-init, if installed

    @classmethod
    def read(cls) -> Host:
        resolv = _read("/etc/resolv.conf")
        if _nameservers(resolv) == ["127.0.0.53"]:  # systemd-resolved: dockerd reads its upstream file
            resolv = _read("/run/systemd/resolve/resolv.conf") or resolv
        cpus = _read("/sys/fs/cgroup/cpuset/cpuset.cpus") or _read("/sys/fs/cgroup/cpuset.cpus.effective")
        mems = _read("/sys/fs/cgroup/cpuset/cpuset.mems") or _read("/sys/fs/cgroup/cpuset.mems.effective")
        init = next((found for name in _INITS if (found := shutil.which(name))), None)
        return cls(
            hostname=socket.gethostname(),
            hosts=_read("/etc/hosts"),
            resolv_conf=resolv,
            cpu_count=os.cpu_count() or 1,
            cpus=_cpu_set(cpus.strip()) or frozenset(os.sched_getaffinity(0)),
            mems=_cpu_set(mems.strip()) or frozenset({0}),
            swap_limit=os.path.exists("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes")
            or os.path.exists("/sys/fs/cgroup/cgroup.controllers"),
            init=os.path.realpath(init) if init else None,
        )


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def _nameservers(resolv: str) -> list[str]:
    return [
        line.split()[1]
        for line in resolv.splitlines()
        if line.split()[:1] == ["nameserver"] and len(line.split()) > 1
    ]


def _cpu_set(text: str) -> frozenset[int] | None:
    """``0-2,4`` as {0, 1, 2, 4}; None if it is not such a list."""
    found: set[int] = set()
    for part in text.split(","):
        low, sep, high = part.partition("-")
        if not low.isdigit() or (sep and (not high.isdigit() or int(high) < int(low))):
            return None
        found.update(range(int(low), int(high if sep else low) + 1))
    return frozenset(found)


@attrs.define
class Plan:
    """What :func:`translate` made of a request."""

    opts: list[oci.SpecOpt] = attrs.Factory(list)  # applied before the mounts
    mounts: list[oci.ContainerMount] = attrs.Factory(list)  # binds, tmpfs, /dev/shm, the init
    etc_options: tuple[str, ...] = ()  # of the hostname, hosts and resolv.conf binds
    files: dict[str, str] = attrs.Factory(dict)  # name in the container's directory -> content
    #: Where the container's hostname, hosts and resolv.conf are when not its own directory: those
    #: of the container whose network namespace it joins.
    etc_directory: str = ""
    make_dirs: list[str] = attrs.Factory(list)  # missing sources of legacy binds, which dockerd creates
    late_opts: list[oci.SpecOpt] = attrs.Factory(list)  # after the rest: they read the final capabilities
    warnings: list[str] = attrs.Factory(list)

    def spec_opts(self, directory: Path) -> list[oci.SpecOpt]:
        """Every opt, once ``files`` are in ``directory`` and ``make_dirs`` exist (a bind's source is
        checked when its opt is made)."""
        if self.etc_directory:
            etc = [
                oci.ContainerMount(path, f"{self.etc_directory}/{name}", options=self.etc_options)
                for name, path in ETC_FILES.items()
            ]
        else:
            etc = [
                oci.ContainerMount(ETC_FILES[name], str(directory / name), options=self.etc_options)
                for name in self.files
            ]
        return [*self.opts, _checked(oci.with_mounts, [*etc, *self.mounts]), *self.late_opts]


def hostname_of(body: dict[str, Any], container_id: str, host: Host) -> str:
    """The container's hostname: Config.Hostname, else the host's for host networking or the host's
    UTS namespace, else the ID's first 12 digits (as dockerd)."""
    config_host = body.get("HostConfig") or {}
    if body.get("Hostname"):
        return str(body["Hostname"])
    if config_host.get("NetworkMode") == "host" or config_host.get("UTSMode") == "host":
        return host.hostname
    return container_id[:12]


def translate(
    body: dict[str, Any],
    argv: list[str],
    *,
    container_id: str,
    hostname: str,
    host: Host,
    donor: Callable[[str], Donor],
    network: str = "bridge",
    host_gateway: str | None = None,
    volumes: Sequence[oci.ContainerMount] = (),
) -> Plan:
    """The spec opts for a ``POST /containers/create`` body that ``_check_request`` passed; raises
    :class:`InvalidParameter` (or what ``donor`` raises) for what dockerd refuses. ``volumes`` are the
    mounts of the container's volumes (``pyengine._volumes``), mounted after its binds."""
    hc: dict[str, Any] = body.get("HostConfig") or {}
    plan = Plan()
    init = bool(hc.get("Init"))
    if init and host.init is None:
        raise InvalidParameter(
            "HostConfig.Init: no docker-init on this machine (Debian's docker.io or tini package has one)"
        )
    plan.opts.append(oci.with_args([_INIT_PATH, "--", *argv] if init else argv))
    if body.get("Env"):
        plan.opts.append(oci.with_env(body["Env"]))
    if body.get("WorkingDir"):
        plan.opts.append(oci.with_cwd(body["WorkingDir"]))
    if body.get("User"):
        plan.opts.append(oci.with_user(body["User"]))
    if body.get("Tty"):
        plan.opts.append(oci.with_tty())  # TERM=xterm, as Docker
    if hc.get("GroupAdd"):
        plan.opts.append(oci.with_additional_gids(_strings(hc["GroupAdd"], "GroupAdd")))
    _namespaces(hc, hostname, donor, plan)
    _resources(hc, host, plan)
    parent = hc.get("CgroupParent") or ""
    if parent:  # dockerd's cgroupfs driver: <parent>/<id>, relative to the runtime's cgroup if relative
        if not isinstance(parent, str) or ".." in parent.split("/") or "\0" in parent:
            raise InvalidParameter(f"HostConfig.CgroupParent: {parent!r} is not a cgroup path")
        plan.opts.append(oci.with_cgroups_path(posixpath.join(parent, container_id)))
    _security(hc, plan)
    _mounts(hc, plan, volumes)
    if init:
        plan.mounts.append(oci.ContainerMount(_INIT_PATH, host.init, options=("bind", "ro")))
    mode = hc.get("NetworkMode") or "default"
    if mode in ("host", "none") or mode.startswith("container:"):
        network = mode.partition(":")[0]
    _etc_files(hc, hostname, host, plan, network, host_gateway)
    return plan


def _strings(value: object, field: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidParameter(f"HostConfig.{field}: a list of strings, not {value!r}")
    return value


# -- namespaces --------------------------------------------------------------------------------------


def _namespaces(hc: dict[str, Any], hostname: str, donor: Callable[[str], Donor], plan: Plan) -> None:
    network = hc.get("NetworkMode") or "default"
    if network == "host":
        plan.opts.append(oci.with_host_namespace("network"))
    elif network.startswith("container:"):
        joined = donor(network.removeprefix("container:"))
        plan.opts.append(oci.with_namespace_path("network", f"/proc/{joined.pid}/ns/net"))
        plan.etc_directory = joined.directory
    uts = hc.get("UTSMode") or ""
    if uts == "host":
        plan.opts.append(oci.with_host_namespace("uts"))
    elif uts:
        raise InvalidParameter(f"invalid UTS mode: {uts}")
    else:
        plan.opts.append(oci.with_hostname(hostname))
    pid = hc.get("PidMode") or ""
    if pid == "host":
        plan.opts.append(oci.with_host_namespace("pid"))
    elif pid.startswith("container:"):
        joined = donor(pid.removeprefix("container:"))
        plan.opts.append(oci.with_namespace_path("pid", f"/proc/{joined.pid}/ns/pid"))
    elif pid:
        raise InvalidParameter(f"invalid PID mode: {pid}")
    ipc = hc.get("IpcMode") or "private"
    if ipc == "host":
        plan.opts.append(oci.with_host_namespace("ipc"))
        plan.mounts.append(oci.ContainerMount("/dev/shm", "/dev/shm"))
    elif ipc.startswith("container:"):
        name = ipc.removeprefix("container:")
        joined = donor(name)
        if joined.ipc_mode != "shareable":
            raise InvalidParameter(
                f"container {name}: non-shareable IPC (hint: use IpcMode:shareable for the donor container)"
            )
        plan.opts.append(oci.with_namespace_path("ipc", f"/proc/{joined.pid}/ns/ipc"))
    elif ipc not in ("private", "shareable"):
        if ipc == "none":
            raise InvalidParameter("HostConfig.IpcMode 'none' is not supported by pyengine yet")
        raise InvalidParameter(f"invalid IPC mode: {ipc}")
    shm = hc.get("ShmSize") or 0
    if not isinstance(shm, int) or shm < 0:
        raise InvalidParameter("SHM size can not be less than 0")
    if ipc != "host":
        size = shm or DEFAULT_SHM_SIZE
        plan.mounts.append(
            oci.ContainerMount(
                "/dev/shm", "shm", "tmpfs", ("nosuid", "noexec", "nodev", "mode=1777", f"size={size}")
            )
        )
    if hc.get("Sysctls"):
        sysctls = hc["Sysctls"]
        if not isinstance(sysctls, dict) or not all(isinstance(v, str) for v in sysctls.values()):
            raise InvalidParameter(f"HostConfig.Sysctls: an object of strings, not {sysctls!r}")
        plan.opts.append(oci.with_sysctls(sysctls))


# -- resources ---------------------------------------------------------------------------------------


def _int(hc: dict[str, Any], key: str) -> int:
    value = hc.get(key) or 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidParameter(f"HostConfig.{key}: a number, not {value!r}")
    return value


def _resources(hc: dict[str, Any], host: Host, plan: Plan) -> None:
    memory, swap = _int(hc, "Memory"), _int(hc, "MemorySwap")
    if 0 < memory < MIN_MEMORY:
        raise InvalidParameter("Minimum memory limit allowed is 6MB")
    if swap > 0 and memory == 0:
        raise InvalidParameter(
            "You should always set the Memory limit when using Memoryswap limit, see usage"
        )
    if 0 < swap < memory:
        raise InvalidParameter("Minimum memoryswap limit should be larger than memory limit, see usage")
    if memory:
        plan.opts.append(oci.with_memory_limit(memory))
        if not host.swap_limit:
            plan.warnings.append(
                "Your kernel does not support swap limit capabilities or the cgroup is not mounted. "
                "Memory limited without swap."
            )
        else:  # dockerd's default: as much swap again as memory
            plan.opts.append(oci.with_memory_swap(swap if swap else 2 * memory))
    nano = _int(hc, "NanoCpus")
    if nano:
        if nano < 0 or nano > host.cpu_count * 10**9:
            raise InvalidParameter(
                f"Range of CPUs is from 0.01 to {host.cpu_count}.00, as there are only {host.cpu_count} CPUs "
                "available"
            )
        if _int(hc, "CpuPeriod") or _int(hc, "CpuQuota"):
            raise InvalidParameter("Conflicting options: Nano CPUs and CPU Period cannot both be set")
        plan.opts.append(oci.with_cpus(max(nano, 10**7) / 10**9))
    shares = _int(hc, "CpuShares")
    if shares < 0:
        raise InvalidParameter("shares: invalid argument")
    if shares:  # the kernel's range, as cgroup v1 clamps a write to cpu.shares
        plan.opts.append(oci.with_cpu_shares(min(max(shares, 2), 262_144)))
    cpuset: dict[str, str] = {}
    for key, what, nodes, available in (
        ("CpusetCpus", "cpus", "CPUs", host.cpus),
        ("CpusetMems", "mems", "memory nodes", host.mems),
    ):
        text = hc.get(key) or ""
        if not text:
            continue
        wanted = _cpu_set(text) if isinstance(text, str) else None
        if wanted is None:
            raise InvalidParameter(f"Invalid value {text} for cpuset {what}")
        if not wanted <= available:
            raise InvalidParameter(
                f"Requested {nodes} are not available - requested {text}, available: {_cpu_list(available)}"
            )
        cpuset[what] = text
    if cpuset:
        plan.opts.append(oci.with_cpuset(**cpuset))
    pids = _int(hc, "PidsLimit")
    if pids > 0:  # 0 and -1: unlimited
        plan.opts.append(oci.with_pids_limit(pids))
    ulimits = hc.get("Ulimits") or []
    limits = []
    for ulimit in ulimits if isinstance(ulimits, list) else [ulimits]:
        if not isinstance(ulimit, dict) or not isinstance(ulimit.get("Name"), str):
            raise InvalidParameter(f"HostConfig.Ulimits: {ulimit!r} is not a Name, Soft and Hard")
        limits.append((ulimit["Name"], ulimit.get("Soft", 0), ulimit.get("Hard", 0)))
    if limits:
        plan.opts.append(_checked(oci.with_rlimits, limits))
    devices = hc.get("Devices") or []
    mapped = []
    for device in devices if isinstance(devices, list) else [devices]:
        if not isinstance(device, dict) or not isinstance(device.get("PathOnHost"), str):
            raise InvalidParameter(f"HostConfig.Devices: {device!r} is not a device mapping")
        on_host = device["PathOnHost"]
        mapped.append(
            (on_host, device.get("PathInContainer") or on_host, device.get("CgroupPermissions") or "rwm")
        )
        try:
            oci.with_devices([mapped[-1]])
        except pycontainerd.NotFoundError:
            raise InvalidParameter(
                f'error gathering device information while adding custom device "{on_host}": no such file or '
                "directory"
            ) from None
        except pycontainerd.InvalidArgumentError as exc:
            raise InvalidParameter(
                f'error gathering device information while adding custom device "{on_host}": {exc}'
            ) from None
    if mapped:
        plan.opts.append(oci.with_devices(mapped))


def _cpu_list(cpus: frozenset[int]) -> str:
    return ",".join(str(c) for c in sorted(cpus))


def _checked(make: Callable[[Any], oci.SpecOpt], value: Any) -> oci.SpecOpt:
    try:
        return make(value)
    except pycontainerd.InvalidArgumentError as exc:
        raise InvalidParameter(str(exc)) from None


# -- security ----------------------------------------------------------------------------------------


def _capability(name: str) -> str:
    """Docker's normal form: upper case, ``CAP_`` prefixed, ``ALL`` as is."""
    upper = name.upper()
    return upper if upper == "ALL" or upper.startswith("CAP_") else f"CAP_{upper}"


def _security(hc: dict[str, Any], plan: Plan) -> None:
    privileged = bool(hc.get("Privileged"))
    if privileged:
        plan.opts.append(oci.with_privileged())  # every capability: CapAdd and CapDrop do nothing then
    else:
        adds = [_capability(c) for c in _strings(hc.get("CapAdd") or [], "CapAdd")]
        drops = [_capability(c) for c in _strings(hc.get("CapDrop") or [], "CapDrop")]
        for cap in (*adds, *drops):
            if cap != "ALL":
                try:
                    oci.with_capabilities(add=[cap])
                except pycontainerd.InvalidArgumentError:
                    raise InvalidParameter(f"unknown capability: {json.dumps(cap)}") from None
        if adds or drops:
            plan.opts.append(oci.with_capabilities(add=adds, drop=drops))
    if hc.get("ReadonlyRootfs"):
        plan.opts.append(oci.with_readonly_rootfs())
        plan.etc_options = ("ro",)
    for opt in _strings(hc.get("SecurityOpt") or [], "SecurityOpt"):
        if opt == "no-new-privileges":
            plan.opts.append(oci.with_no_new_privileges())
            continue
        key, sep, value = opt.partition("=")
        if not sep:
            key, sep, value = opt.partition(":")  # the legacy separator
        if not sep:
            raise InvalidParameter(f"invalid --security-opt 1: {json.dumps(opt)}")
        if key == "no-new-privileges":
            if value not in ("1", "t", "T", "true", "TRUE", "True", "0", "f", "F", "false", "FALSE", "False"):
                raise InvalidParameter(f"invalid --security-opt 2: {json.dumps(opt)}")
            if value.lower() in ("1", "t", "true"):
                plan.opts.append(oci.with_no_new_privileges())
        elif key == "seccomp":
            if privileged:
                continue  # dockerd runs a privileged container unconfined, whatever the profile
            if value == "unconfined":
                plan.late_opts.append(oci.with_seccomp(None))
                continue
            try:
                profile = json.loads(value)
            except ValueError as exc:
                raise InvalidParameter(f"Decoding seccomp profile failed: {exc}") from None
            plan.late_opts.append(_checked(oci.with_docker_seccomp, profile))
        elif key in ("apparmor", "label"):
            what = "AppArmor" if key == "apparmor" else "SELinux"
            raise InvalidParameter(
                f"SecurityOpt {json.dumps(opt)}: {key}= is not supported by pyengine: this host has no {what}"
            )
        else:
            raise InvalidParameter(f"invalid --security-opt 2: {json.dumps(opt)}")


# -- mounts ------------------------------------------------------------------------------------------


def _mount_error(kind: str, message: str) -> InvalidParameter:
    return InvalidParameter(f"invalid mount config for type {json.dumps(kind)}: {message}")


def _absolute(path: str, kind: str) -> str:
    if not path.startswith("/"):
        raise _mount_error(kind, f"invalid mount path: '{path}' mount path must be absolute")
    if posixpath.normpath(path) == "/":
        raise InvalidParameter("invalid specification: destination can't be '/'")
    return path


@attrs.frozen
class _Bind:
    """A bind of the legacy ``Binds`` form (``-v /host:/ctr:ro``) or of ``Mounts``."""

    source: str
    destination: str
    readonly: bool
    propagation: str
    mode: str  # as given in Binds; "" for Mounts
    create: bool  # a missing source is made (a directory): Binds, and Mounts that ask
    recursive: bool = True


def _parse_bind(spec: str) -> _Bind | None:
    """``/host:/ctr[:mode]`` (Docker's Linux parser); None for a volume (``name:/ctr``, ``/ctr``),
    which ``pyengine._volumes`` mounts."""
    parts = spec.split(":")
    if len(parts) == 1 or (parts[0] and not parts[0].startswith("/")):
        return None
    if len(parts) > 3 or not all(parts[:2]):
        raise InvalidParameter(f"invalid volume specification: '{spec}'")
    source, destination = parts[0], parts[1]
    mode = parts[2] if len(parts) == 3 else ""
    modes = mode.split(",") if mode else []
    if any(m not in _BIND_MODES for m in modes) or sum(m in ("ro", "rw") for m in modes) > 1:
        raise InvalidParameter(f"invalid mode: {mode}")
    _absolute(destination, "bind")
    propagation = next((m for m in modes if m in _PROPAGATIONS), "rprivate")
    return _Bind(posixpath.normpath(source), destination, "ro" in modes, propagation, mode, create=True)


def _mount_binds(hc: dict[str, Any]) -> tuple[list[_Bind], list[dict[str, Any]]]:
    """The binds of ``Binds`` and ``Mounts``, and the tmpfs mounts of ``Mounts`` (checked)."""
    binds = [b for spec in _strings(hc.get("Binds") or [], "Binds") if (b := _parse_bind(spec)) is not None]
    tmpfs: list[dict[str, Any]] = []
    for mount in hc.get("Mounts") or []:
        if not isinstance(mount, dict):
            raise InvalidParameter(f"HostConfig.Mounts: {mount!r} is not a mount")
        kind = mount.get("Type") or ""
        target = mount.get("Target") or ""
        if kind == "volume":
            continue  # pyengine._volumes's
        if kind not in ("bind", "tmpfs"):
            raise _mount_error(kind, "mount type unknown")
        if not target:
            raise _mount_error(kind, "field Target must not be empty")
        _absolute(target, kind)
        if mount.get("VolumeOptions"):
            raise _mount_error(kind, "field VolumeOptions must not be specified")
        if kind == "bind":
            if mount.get("TmpfsOptions"):
                raise _mount_error(kind, "field TmpfsOptions must not be specified")
            source = mount.get("Source") or ""
            if not source:
                raise _mount_error(kind, "field Source must not be empty")
            _absolute(source, kind)
            options = mount.get("BindOptions") or {}
            if not os.path.exists(source) and not options.get("CreateMountpoint"):
                raise _mount_error(kind, f"bind source path does not exist: {source}")
            propagation = options.get("Propagation") or "rprivate"
            if propagation not in _PROPAGATIONS:
                raise _mount_error(kind, f"invalid propagation mode: {propagation}")
            binds.append(
                _Bind(
                    posixpath.normpath(source),
                    target,
                    bool(mount.get("ReadOnly")),
                    propagation,
                    "",
                    create=bool(options.get("CreateMountpoint")),
                    recursive=not options.get("NonRecursive"),
                )
            )
        else:
            if mount.get("Source"):
                raise _mount_error(kind, "field Source must not be specified")
            if mount.get("BindOptions"):
                raise _mount_error(kind, "field BindOptions must not be specified")
            tmpfs.append(mount)
    return binds, tmpfs


def _tmpfs_options(data: str) -> tuple[str, ...]:
    """dockerd's options for a tmpfs: noexec, nosuid and nodev unless the data says otherwise, then
    the data's (a later flag replaces its opposite, a later key=value its key)."""
    opposite = {"exec": "noexec", "suid": "nosuid", "dev": "nodev", "ro": "rw"}
    opposite.update({v: k for k, v in list(opposite.items())})
    merged: list[str] = []
    for option in ["noexec", "nosuid", "nodev", *(o for o in data.split(",") if o)]:
        key = option.partition("=")[0]
        merged = [m for m in merged if m != opposite.get(option) and m.partition("=")[0] != key]
        merged.append(option)
    return tuple(merged)


def _size(size: int) -> str:
    """Docker's rendering of TmpfsOptions.SizeBytes: in the largest of g, m, k that divides it."""
    for suffix, unit in (("g", 1 << 30), ("m", 1 << 20), ("k", 1 << 10)):
        if size % unit == 0:
            return f"{size // unit}{suffix}"
    return str(size)


def _mounts(hc: dict[str, Any], plan: Plan, volumes: Sequence[oci.ContainerMount]) -> None:
    binds, tmpfs = _mount_binds(hc)
    tmpfs_data: dict[str, str] = {}
    raw = hc.get("Tmpfs") or {}
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        raise InvalidParameter(f"HostConfig.Tmpfs: an object of strings, not {raw!r}")
    for target, data in raw.items():
        _absolute(target, "tmpfs")
        tmpfs_data[target] = data
    for mount in tmpfs:
        options = mount.get("TmpfsOptions") or {}
        data = ["ro"] if mount.get("ReadOnly") else []
        if options.get("SizeBytes"):
            data.append(f"size={_size(int(options['SizeBytes']))}")
        if options.get("Mode"):
            data.append(f"mode={int(options['Mode']):o}")
        tmpfs_data[mount["Target"]] = ",".join(data)
    destinations = [posixpath.normpath(b.destination) for b in binds] + [
        posixpath.normpath(t) for t in tmpfs_data
    ]
    destinations += [posixpath.normpath(v.destination) for v in volumes]
    for destination in destinations:
        if destinations.count(destination) > 1:
            raise InvalidParameter(f"Duplicate mount point: {destination}")
    if "/dev/shm" in destinations:  # the user's replaces Docker's
        plan.mounts = [m for m in plan.mounts if m.destination != "/dev/shm"]
    for bind in binds:
        if bind.create and not os.path.exists(bind.source):
            plan.make_dirs.append(bind.source)
        options = ["rbind" if bind.recursive else "bind", bind.propagation]
        if bind.readonly:
            options.append("ro")
        plan.mounts.append(oci.ContainerMount(bind.destination, bind.source, options=options))
    for target, data in tmpfs_data.items():
        plan.mounts.append(oci.ContainerMount(target, "tmpfs", "tmpfs", _tmpfs_options(data)))
    plan.mounts.extend(volumes)


def mount_points(hc: dict[str, Any]) -> list[dict[str, Any]]:
    """Inspect's ``Mounts`` for a container's HostConfig: its binds and the tmpfs mounts of
    ``Mounts``, in Docker's shape (``--tmpfs`` mounts are not listed, as with dockerd)."""
    try:
        binds, tmpfs = _mount_binds({"Binds": hc.get("Binds"), "Mounts": _listed(hc.get("Mounts"))})
    except InvalidParameter:
        return []
    points = [
        {
            "Type": "bind",
            "Source": bind.source,
            "Destination": bind.destination,
            "Mode": bind.mode,
            "RW": not bind.readonly,
            "Propagation": bind.propagation,
        }
        for bind in binds
    ]
    points += [
        {
            "Type": "tmpfs",
            "Source": "",
            "Destination": mount["Target"],
            "Mode": "",
            "RW": not mount.get("ReadOnly"),
            "Propagation": "",
        }
        for mount in tmpfs
    ]
    return points


def _listed(mounts: object) -> list[Any]:
    """``Mounts`` as recorded, binds made on creation kept even if their source went away since."""
    if not isinstance(mounts, list):
        return []
    return [
        {**m, "BindOptions": {**(m.get("BindOptions") or {}), "CreateMountpoint": True}}
        if isinstance(m, dict) and m.get("Type") == "bind"
        else m
        for m in mounts
    ]


# -- /etc/hostname, /etc/hosts, /etc/resolv.conf -----------------------------------------------------


def _extra_hosts(hc: dict[str, Any], host_gateway: str | None) -> str:
    """HostConfig.ExtraHosts (``--add-host``) as /etc/hosts lines; ``host-gateway`` is the default
    bridge's address, as dockerd has it."""
    extra = []
    for entry in _strings(hc.get("ExtraHosts") or [], "ExtraHosts"):
        name, sep, address = entry.partition("=") if "=" in entry else entry.partition(":")
        if address == "host-gateway":
            if host_gateway is None:
                raise InvalidParameter(
                    f"HostConfig.ExtraHosts: {entry!r}: host-gateway: the engine has no default bridge"
                )
            address = host_gateway
        try:
            ipaddress.ip_address(address.strip("[]"))
        except ValueError:
            raise InvalidParameter(f"invalid IP address in add-host: {json.dumps(address)}") from None
        if not sep or not name:
            raise InvalidParameter(f"bad format for add-host: {json.dumps(entry)}")
        extra.append(f"{address.strip('[]')}\t{name}\n")
    return "".join(extra)


def hosts_file(hc: dict[str, Any], host_gateway: str | None, own: Sequence[str] = ()) -> str:
    """A container's /etc/hosts off the host's network: dockerd's defaults, the ``--add-host``
    entries, and ``own`` lines (its addresses with its name, those of its links)."""
    return _DEFAULT_HOSTS + _extra_hosts(hc, host_gateway) + "".join(f"{line}\n" for line in own)


#: The kinds of network a container's /etc files are written for: the host's, none, the default
#: bridge, a user-defined network (its resolver is the embedded DNS server), another container's.
#: ``translate`` is told the bridge's kind (``bridge`` or ``user``); it reads the others from
#: HostConfig.NetworkMode.
NETWORK_KINDS = ("host", "none", "bridge", "user", "container")


def _etc_files(
    hc: dict[str, Any], hostname: str, host: Host, plan: Plan, network: str, host_gateway: str | None
) -> None:
    if network == "container":
        _extra_hosts(hc, host_gateway)  # checked; the container shares the files of the one it joins
        return
    resolv = host.resolv_conf
    if network == "host":
        hosts = host.hosts if host.hosts.endswith("\n") or not host.hosts else host.hosts + "\n"
        hosts += _extra_hosts(hc, host_gateway)
    else:
        hosts = hosts_file(hc, host_gateway)
        if network == "user":  # the embedded DNS server answers, and forwards to the host's
            resolv = _lines_without(resolv, "nameserver") + f"nameserver {DNS_ADDRESS}\n"
        else:
            resolv = _without_local_nameservers(resolv)
    resolv = _dns_overrides(hc, resolv, network)
    mounted = {posixpath.normpath(m.destination) for m in plan.mounts}
    files = {"hostname": f"{hostname}\n", "hosts": hosts, "resolv.conf": resolv}
    plan.files = {name: content for name, content in files.items() if ETC_FILES[name] not in mounted}


def _dns_overrides(hc: dict[str, Any], resolv: str, network: str) -> str:
    """``--dns`` (on a user-defined network the embedded server's upstreams instead, as dockerd),
    ``--dns-search`` and ``--dns-option`` over a resolv.conf."""
    servers = _strings(hc.get("Dns") or [], "Dns")
    for server in servers:
        try:
            ipaddress.ip_address(server)
        except ValueError:
            raise InvalidParameter(f"{server} is not an ip address") from None
    if servers and network != "user":
        resolv = _lines_without(resolv, "nameserver") + "".join(f"nameserver {s}\n" for s in servers)
    search = _strings(hc.get("DnsSearch") or [], "DnsSearch")
    if search:
        resolv = _lines_without(resolv, "search", "domain")
        if search != ["."]:  # dockerd: "." clears the search list
            resolv += f"search {' '.join(search)}\n"
    options = _strings(hc.get("DnsOptions") or [], "DnsOptions") or _resolv_options(resolv)
    if network == "user" and not any(o.startswith("ndots:") for o in options):
        options = [*options, "ndots:0"]  # dockerd's: names with dots are asked of the server as they are
    if options:
        resolv = _lines_without(resolv, "options") + f"options {' '.join(options)}\n"
    return resolv


def _resolv_options(resolv: str) -> list[str]:
    return [o for line in resolv.splitlines() if line.split()[:1] == ["options"] for o in line.split()[1:]]


def _lines_without(resolv: str, *keys: str) -> str:
    kept = "".join(
        line for line in resolv.splitlines(keepends=True) if line.split()[:1] not in [[k] for k in keys]
    )
    return kept if not kept or kept.endswith("\n") else kept + "\n"


def upstreams(hc: dict[str, Any], host: Host) -> list[str]:
    """Where the embedded DNS server sends a container's other questions: its ``--dns`` servers,
    else the host's nameservers (reached from the daemon's namespace: local ones work)."""
    return list(hc.get("Dns") or []) or _nameservers(host.resolv_conf)


def _without_local_nameservers(resolv: str) -> str:
    """The host's resolv.conf less its localhost nameservers, which a container cannot reach (Docker's
    rule without a bridge); Google's when none is left."""
    kept = []
    for line in resolv.splitlines(keepends=True):
        fields = line.split()
        if fields[:1] == ["nameserver"] and len(fields) > 1:
            try:
                if ipaddress.ip_address(fields[1].partition("%")[0]).is_loopback:
                    continue
            except ValueError:
                pass
        kept.append(line)
    text = "".join(kept)
    if text and not text.endswith("\n"):
        text += "\n"
    if not _nameservers(text):
        text += _DEFAULT_DNS
    return text
