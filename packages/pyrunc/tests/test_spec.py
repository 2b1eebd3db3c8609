"""pyrunc._spec: the runtime-spec models against the OCI JSON schemas and against ``runc spec``."""

from __future__ import annotations

import copy
import json
import os
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import jsonschema
import pyrunc_acceptance_specs as specs  # registered by conftest.py
import pytest
from jsonschema.exceptions import best_match

from pyrunc._errors import SpecError
from pyrunc._model import Model
from pyrunc._spec import config, process, resources
from pyrunc._spec.config import Mount, Namespace, RuntimeSpec, default_spec, load_spec
from pyrunc._spec.process import Capabilities, IOPriority, Process, User

if TYPE_CHECKING:
    from collections.abc import Iterator

RUNC = "/usr/sbin/runc"


@pytest.fixture(scope="session")
def validator() -> jsonschema.Draft4Validator:
    """The OCI runtime-spec's config-schema.json (vendored in the repository's spec/)."""
    return specs.runtime_spec_validator("config-schema.json")


def _assert_valid(validator: jsonschema.Draft4Validator, instance: object) -> None:
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(instance)]
    assert not errors, "\n".join(errors)


def _schema_error_path(validator: jsonschema.Draft4Validator, instance: object) -> str | None:
    """The JSON path, written the way SpecError writes it, of the schema's best error (None: valid)."""
    error = best_match(validator.iter_errors(instance))
    if error is None:
        return None
    parts: list[str | int] = list(error.absolute_path)
    if error.validator == "required":  # reported on the parent: "'cwd' is a required property"
        parts.append(error.message.split("'")[1])
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part.isidentifier():
            path += f".{part}" if path else part
        else:
            path += f'["{part}"]'
    return path or "config.json"


@pytest.fixture(scope="session")
def runc_spec_json(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The config.json that ``runc spec`` writes (runc 1.1.5 at /usr/sbin/runc)."""
    if not os.access(RUNC, os.X_OK):
        pytest.skip(f"{RUNC} is not installed")
    bundle = tmp_path_factory.mktemp("runc-spec")
    subprocess.run([RUNC, "spec"], cwd=bundle, check=True, timeout=30)
    data: dict[str, Any] = json.loads((bundle / "config.json").read_text(encoding="utf-8"))
    return data


# -- runc spec and default_spec ---------------------------------------------------------------------


@pytest.mark.runc
def test_runc_spec_parses_round_trips_and_validates(
    runc_spec_json: dict[str, Any], validator: jsonschema.Draft4Validator
) -> None:
    spec = RuntimeSpec.from_json(runc_spec_json)
    assert RuntimeSpec.from_json(spec.to_json()) == spec
    assert spec.to_json() == runc_spec_json
    _assert_valid(validator, spec.to_json())
    assert spec.process is not None
    assert spec.process.args == ["sh"]
    assert spec.process.capabilities is not None
    assert spec.process.capabilities.inheritable == []  # absent in runc 1.1's output
    assert spec.linux is not None
    assert [ns.type for ns in spec.linux.namespaces] == ["pid", "network", "ipc", "uts", "mount"]


@pytest.mark.runc
def test_default_spec_is_what_runc_spec_writes(runc_spec_json: dict[str, Any]) -> None:
    assert default_spec().to_json() == runc_spec_json
    assert default_spec() == RuntimeSpec.from_json(runc_spec_json)


def test_default_spec_round_trips_validates_and_is_fresh(validator: jsonschema.Draft4Validator) -> None:
    spec = default_spec()
    _assert_valid(validator, spec.to_json())
    assert RuntimeSpec.from_json(spec.to_json()) == spec
    assert spec.process is not None
    spec.process.args.append("-x")
    assert default_spec().process is not None
    assert default_spec().process.args == ["sh"]  # type: ignore[union-attr]


def test_load_spec_reads_the_bundle(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps(default_spec().to_json()), encoding="utf-8")
    assert load_spec(str(tmp_path)) == default_spec()


# -- a config using every field of the contract -------------------------------------------------------


def _mapping() -> list[dict[str, int]]:
    return [{"containerID": 0, "hostID": 100000, "size": 65536}]


_CAPS = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SYS_ADMIN"]


def _hook(name: str) -> dict[str, Any]:
    return {"path": f"/usr/libexec/{name}", "args": [name, "--flag"], "env": ["HOOK=1"], "timeout": 5}


RICH: dict[str, Any] = {
    "ociVersion": "1.2.0",
    "process": {
        "terminal": True,
        "consoleSize": {"height": 24, "width": 80},
        "user": {"uid": 1000, "gid": 1000, "umask": 18, "additionalGids": [5, 6], "username": "alice"},
        "args": ["/bin/sh", "-c", "echo hi"],
        "commandLine": "sh -c 'echo hi'",
        "env": ["PATH=/usr/bin:/bin", "TERM=xterm"],
        "cwd": "/home/alice",
        "capabilities": {
            "bounding": list(_CAPS),
            "effective": _CAPS[:2],
            "inheritable": ["CAP_KILL"],
            "permitted": list(_CAPS),
            "ambient": ["CAP_NET_BIND_SERVICE"],
        },
        "rlimits": [
            {"type": "RLIMIT_NOFILE", "hard": 4096, "soft": 1024},
            {"type": "RLIMIT_CORE", "hard": 2**64 - 1, "soft": 0},
        ],
        "noNewPrivileges": True,
        "apparmorProfile": "docker-default",
        "oomScoreAdj": -500,
        "scheduler": {
            "policy": "SCHED_DEADLINE",
            "nice": -5,
            "priority": 1,
            "flags": ["SCHED_FLAG_RESET_ON_FORK", "SCHED_FLAG_RECLAIM"],
            "runtime": 100000,
            "deadline": 200000,
            "period": 300000,
        },
        "selinuxLabel": "system_u:system_r:container_t:s0:c1,c2",
        "ioPriority": {"class": "IOPRIO_CLASS_RT", "priority": 4},
        "execCPUAffinity": {"initial": "0-3, 7", "final": "4"},
    },
    "root": {"path": "/var/lib/rich/rootfs", "readonly": True},
    "hostname": "rich",
    "domainname": "example.org",
    "mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {
            "destination": "/data",
            "type": "bind",
            "source": "/srv/data",
            "options": ["rbind", "ro"],
            "uidMappings": _mapping(),
            "gidMappings": _mapping(),
        },
    ],
    "hooks": {
        "prestart": [_hook("prestart")],
        "createRuntime": [_hook("create-runtime")],
        "createContainer": [_hook("create-container")],
        "startContainer": [_hook("start-container")],
        "poststart": [_hook("poststart")],
        "poststop": [_hook("poststop"), {"path": "/bin/true"}],
    },
    "annotations": {"org.example.key": "value", "simple": ""},
    "linux": {
        "uidMappings": _mapping(),
        "gidMappings": [*_mapping(), {"containerID": 65536, "hostID": 1000, "size": 1}],
        "sysctl": {"net.ipv4.ip_forward": "1", "kernel.shmmax": "4096"},
        "resources": {
            "devices": [
                {"allow": False, "access": "rwm"},
                {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"},
            ],
            "memory": {
                "limit": 536870912,
                "reservation": 268435456,
                "swap": -1,
                "kernel": -1,
                "kernelTCP": 0,
                "swappiness": 60,
                "disableOOMKiller": True,
                "useHierarchy": False,
                "checkBeforeUpdate": True,
            },
            "cpu": {
                "shares": 1024,
                "quota": 50000,
                "burst": 10000,
                "period": 100000,
                "realtimeRuntime": 950000,
                "realtimePeriod": 1000000,
                "cpus": "0-3",
                "mems": "0",
                "idle": 1,
            },
            "pids": {"limit": 100},
            "blockIO": {
                "weight": 500,
                "leafWeight": 300,
                "weightDevice": [{"major": 8, "minor": 0, "weight": 500, "leafWeight": 300}],
                "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
                "throttleWriteBpsDevice": [{"major": 8, "minor": 16, "rate": 2097152}],
                "throttleReadIOPSDevice": [{"major": 8, "minor": 0, "rate": 1000}],
                "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 2000}],
            },
            "hugepageLimits": [{"pageSize": "2MB", "limit": 209715200}, {"pageSize": "1GB", "limit": 0}],
            "network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 500}]},
            "rdma": {"mlx5_1": {"hcaHandles": 3, "hcaObjects": 10000}},
            "unified": {"memory.high": "max", "io.weight": "default 100"},
        },
        "cgroupsPath": "/pyrunc/rich",
        "namespaces": [
            {"type": "pid"},
            {"type": "network", "path": "/var/run/netns/rich"},
            {"type": "ipc"},
            {"type": "uts"},
            {"type": "mount"},
            {"type": "user"},
            {"type": "cgroup"},
            {"type": "time"},
        ],
        "devices": [
            {
                "path": "/dev/fuse",
                "type": "c",
                "major": 10,
                "minor": 229,
                "fileMode": 438,
                "uid": 0,
                "gid": 0,
            },
            {"path": "/dev/sda", "type": "b", "major": 8, "minor": 0},
            {"path": "/dev/myfifo", "type": "p"},
        ],
        "netDevices": {"eth1": {"name": "ceth1"}, "eth2": {}},
        "seccomp": {
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 1,
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
            "flags": ["SECCOMP_FILTER_FLAG_LOG"],
            "listenerPath": "/run/seccomp-agent.sock",
            "listenerMetadata": "metadata",
            "syscalls": [
                {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
                {
                    "names": ["personality"],
                    "action": "SCMP_ACT_ERRNO",
                    "errnoRet": 1,
                    "args": [{"index": 0, "value": 8, "valueTwo": 0, "op": "SCMP_CMP_NE"}],
                },
            ],
        },
        "rootfsPropagation": "slave",
        "maskedPaths": ["/proc/kcore", "/sys/firmware"],
        "readonlyPaths": ["/proc/sys"],
        "mountLabel": "system_u:object_r:container_file_t:s0:c1,c2",
        "intelRdt": {
            "closID": "guaranteed_group",
            "l3CacheSchema": "L3:0=7f0;1=1f",
            "memBwSchema": "MB:0=20;1=70",
            "schemata": ["L2:0=ff"],
            "enableMonitoring": True,
        },
        "memoryPolicy": {"mode": "MPOL_INTERLEAVE", "nodes": "0-3", "flags": ["MPOL_F_STATIC_NODES"]},
        "personality": {"domain": "LINUX32", "flags": []},
        "timeOffsets": {"monotonic": {"secs": 10, "nanosecs": 500}, "boottime": {"secs": -2, "nanosecs": 0}},
    },
}


def _slots(cls: type) -> tuple[str, ...]:
    slots: tuple[str, ...] = cls.__dict__["__slots__"]
    return slots


def _walk(value: object) -> Iterator[Model]:
    """Every model reachable from ``value`` (through slots, lists and dict values)."""
    if isinstance(value, Model):
        yield value
        for name in _slots(type(value)):
            yield from _walk(getattr(value, name))
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _walk(item)


def test_rich_config_parses_round_trips_and_validates(validator: jsonschema.Draft4Validator) -> None:
    _assert_valid(validator, RICH)
    spec = RuntimeSpec.from_json(copy.deepcopy(RICH))
    assert spec.to_json() == RICH
    assert RuntimeSpec.from_json(spec.to_json()) == spec
    _assert_valid(validator, spec.to_json())

    # Every class of the contract was built, and every attribute of each was set at least once.
    seen: dict[type, set[str]] = {}
    for model in _walk(spec):
        filled = seen.setdefault(type(model), set())
        filled.update(name for name in _slots(type(model)) if getattr(model, name) not in (None, [], {}))
    classes = {
        obj
        for module in (config, process, resources)
        for obj in vars(module).values()
        if isinstance(obj, type) and issubclass(obj, Model)
    }
    assert classes - {Model} == set(seen), "RICH misses a model class"
    # other_platforms is left out: the schema of those platforms is not in spec/ (see the
    # other_platforms test).
    seen[RuntimeSpec].add("other_platforms")
    for cls, filled in seen.items():
        assert set(_slots(cls)) == filled, f"RICH never sets {cls.__name__}.{set(_slots(cls)) - filled}"

    # A few typed spot checks.
    assert spec.process is not None and spec.linux is not None and spec.linux.resources is not None
    assert spec.process.io_priority == IOPriority(class_="IOPRIO_CLASS_RT", priority=4)
    assert spec.process.user.additional_gids == [5, 6]
    assert spec.linux.resources.memory is not None and spec.linux.resources.memory.use_hierarchy is False
    assert spec.linux.resources.block_io is not None
    assert spec.linux.resources.block_io.throttle_write_iops_device[0].rate == 2000
    assert spec.linux.time_offsets["boottime"].secs == -2
    assert spec.linux.namespaces[1] == Namespace(type="network", path="/var/run/netns/rich")
    assert spec.linux.devices[2].major is None
    assert spec.linux.seccomp is not None and spec.linux.seccomp["defaultAction"] == "SCMP_ACT_ERRNO"


def test_unknown_keys_are_ignored_and_null_is_absent() -> None:
    config = {
        "ociVersion": "1.0.2",
        "futureField": {"x": 1},
        "hostname": None,
        "process": {"cwd": "/", "args": ["sh"], "noSuchThing": True, "env": None, "user": {"uid": 7}},
    }
    spec = RuntimeSpec.from_json(config)
    assert spec.hostname is None
    assert spec.process == Process(cwd="/", args=["sh"], user=User(uid=7))
    assert spec.to_json() == {
        "ociVersion": "1.0.2",
        "process": {"user": {"uid": 7, "gid": 0}, "args": ["sh"], "cwd": "/"},
    }


def test_integral_numbers_are_integers() -> None:
    spec = RuntimeSpec.from_json(
        {"ociVersion": "1", "process": {"cwd": "/", "args": ["a"], "user": {"uid": 5.0}}}
    )
    assert spec.process is not None
    assert spec.process.user.uid == 5
    assert type(spec.process.user.uid) is int


def test_other_platforms_are_recorded_not_refused(validator: jsonschema.Draft4Validator) -> None:
    spec = RuntimeSpec.from_json({"ociVersion": "1.0.2", "windows": {"layerFolders": ["C:\\l"]}, "vm": {}})
    assert spec.other_platforms == ["windows", "vm"]
    assert RuntimeSpec.from_json(spec.to_json()) == spec
    with pytest.raises(SpecError, match=r"^solaris: expected an object, got int$"):
        RuntimeSpec.from_json({"ociVersion": "1.0.2", "solaris": 1})


def test_from_json_copies_its_input() -> None:
    config = {"destination": "/a", "options": ["ro"]}
    mount = Mount.from_json(config)
    mount.options.append("nosuid")
    assert config["options"] == ["ro"]


# -- the Model base class -----------------------------------------------------------------------------


def test_model_eq_and_repr() -> None:
    assert Namespace(type="pid") == Namespace(type="pid")
    assert Namespace(type="pid") != Namespace(type="pid", path="/proc/1/ns/pid")
    assert Namespace(type="pid") != "pid"
    assert repr(Namespace(type="pid")) == "Namespace(type='pid', path=None)"
    assert repr(IOPriority()) == "IOPriority(class_='IOPRIO_CLASS_BE', priority=0)"
    assert Capabilities() == Capabilities(bounding=[], ambient=[])
    # Hashable when its fields are (Model's rules, as pycontainerd's Record's): a list field is not.
    assert hash(Namespace(type="pid")) == hash(Namespace(type="pid"))
    assert len({Namespace(type="pid"), Namespace(type="pid"), Namespace(type="ipc")}) == 2
    with pytest.raises(TypeError, match="unhashable type: 'list'"):
        hash(Capabilities())
    changed = Namespace(type="pid").replace(path="/proc/1/ns/pid")
    assert changed == Namespace(type="pid", path="/proc/1/ns/pid")
    with pytest.raises(TypeError):
        Namespace(type="pid").replace(kind="pid")

    class Sub(Namespace):
        __slots__ = ("extra",)

        def __init__(self, extra: int) -> None:
            super().__init__(type="pid")
            self.extra: Final = extra

    assert Sub(1) == Sub(1)
    assert Sub(1) != Sub(2)
    assert Sub(1) != Namespace(type="pid")
    assert repr(Sub(3)) == "Sub(type='pid', path=None, extra=3)"


# -- bad configs --------------------------------------------------------------------------------------

_DELETE = object()


def _with(value: object, *keys: str | int) -> dict[str, Any]:
    """A deep copy of RICH with the member at ``keys`` set to ``value`` (or deleted)."""
    config = copy.deepcopy(RICH)
    target: Any = config
    for key in keys[:-1]:
        target = target[key]
    if value is _DELETE:
        del target[keys[-1]]
    else:
        target[keys[-1]] = value
    return config


# (config, expected field path, rule): rule None means the JSON schema rejects the config; otherwise the
# schema accepts it and ``rule`` quotes the runtime-spec text that it breaks.
BAD: list[Any] = [
    pytest.param([RICH], "config.json", None, id="top-level-array"),
    pytest.param("config", "config.json", None, id="top-level-string"),
    pytest.param(_with(_DELETE, "ociVersion"), "ociVersion", None, id="ociVersion-missing"),
    pytest.param(_with(102, "ociVersion"), "ociVersion", None, id="ociVersion-int"),
    pytest.param(_with(5, "process", "args", 1), "process.args[1]", None, id="args-item-int"),
    pytest.param(_with("sh", "process", "args"), "process.args", None, id="args-string"),
    pytest.param(_with(_DELETE, "process", "cwd"), "process.cwd", None, id="cwd-missing"),
    pytest.param(
        _with("home/alice", "process", "cwd"),
        "process.cwd",
        "cwd: This value MUST be an absolute path",
        id="cwd-rel",
    ),
    pytest.param(_with("yes", "process", "terminal"), "process.terminal", None, id="terminal-string"),
    pytest.param(_with(-1, "process", "user", "uid"), "process.user.uid", None, id="uid-negative"),
    pytest.param(_with(2**32, "process", "user", "uid"), "process.user.uid", None, id="uid-too-big"),
    pytest.param(_with(True, "process", "user", "gid"), "process.user.gid", None, id="gid-bool"),
    pytest.param(
        _with(-5, "process", "user", "additionalGids", 1), "process.user.additionalGids[1]", None, id="gids"
    ),
    pytest.param(_with({}, "process", "consoleSize"), "process.consoleSize.height", None, id="console-empty"),
    pytest.param(
        _with("NOFILE", "process", "rlimits", 0, "type"), "process.rlimits[0].type", None, id="rlimit-type"
    ),
    pytest.param(
        _with(_DELETE, "process", "rlimits", 1, "soft"), "process.rlimits[1].soft", None, id="rlimit-soft"
    ),
    pytest.param(
        _with(-1, "process", "rlimits", 0, "hard"), "process.rlimits[0].hard", None, id="rlimit-hard"
    ),
    pytest.param(
        _with("RLIMIT_NOFILE", "process", "rlimits", 1, "type"),
        "process.rlimits",
        "rlimits: if config.json has duplicate entries of the same type the runtime MUST error out",
        id="rlimit-duplicate",
    ),
    pytest.param(
        _with(["CAP_KILL", 5], "process", "capabilities", "ambient"),
        "process.capabilities.ambient[1]",
        None,
        id="cap-int",
    ),
    pytest.param(
        _with(1.5, "process", "oomScoreAdj"), "process.oomScoreAdj", None, id="oomScoreAdj-fractional"
    ),
    pytest.param(
        _with("IOPRIO_CLASS_NONE", "process", "ioPriority", "class"),
        "process.ioPriority.class",
        None,
        id="ioprio",
    ),
    pytest.param(
        _with("SCHED_X", "process", "scheduler", "policy"), "process.scheduler.policy", None, id="policy"
    ),
    pytest.param(
        _with(["X"], "process", "scheduler", "flags"), "process.scheduler.flags[0]", None, id="sched-flag"
    ),
    pytest.param(
        _with(2**31, "process", "scheduler", "nice"), "process.scheduler.nice", None, id="nice-int32"
    ),
    pytest.param(
        _with("0-3;7", "process", "execCPUAffinity", "final"),
        "process.execCPUAffinity.final",
        None,
        id="affinity",
    ),
    pytest.param(_with(_DELETE, "root", "path"), "root.path", None, id="root-path-missing"),
    pytest.param(_with("true", "root", "readonly"), "root.readonly", None, id="root-readonly-string"),
    pytest.param(_with(5, "hostname"), "hostname", None, id="hostname-int"),
    pytest.param(_with({"a": 1}, "annotations"), "annotations.a", None, id="annotation-int"),
    pytest.param(_with(_DELETE, "mounts", 1, "destination"), "mounts[1].destination", None, id="mount-dest"),
    pytest.param(_with("ro", "mounts", 1, "options"), "mounts[1].options", None, id="mount-options-string"),
    pytest.param(
        _with(_DELETE, "mounts", 1, "uidMappings", 0, "size"),
        "mounts[1].uidMappings[0].size",
        None,
        id="idmap-size",
    ),
    pytest.param(
        _with(_DELETE, "hooks", "prestart", 0, "path"), "hooks.prestart[0].path", None, id="hook-path"
    ),
    pytest.param(
        _with(0, "hooks", "poststop", 0, "timeout"), "hooks.poststop[0].timeout", None, id="hook-timeout"
    ),
    pytest.param(
        _with("hook", "hooks", "createRuntime", 0, "path"),
        "hooks.createRuntime[0].path",
        "hooks: path ... This specification extends the IEEE standard in that path MUST be absolute",
        id="hook-path-relative",
    ),
    pytest.param(
        _with("foo", "linux", "namespaces", 3, "type"), "linux.namespaces[3].type", None, id="ns-type"
    ),
    pytest.param(_with({}, "linux", "namespaces", 3), "linux.namespaces[3].type", None, id="ns-type-missing"),
    pytest.param(
        _with("pid", "linux", "namespaces", 3, "type"),
        "linux.namespaces",
        "namespaces: duplicate namespaces (with the same type) are not permitted",
        id="ns-duplicate",
    ),
    pytest.param(
        _with("netns", "linux", "namespaces", 1, "path"),
        "linux.namespaces[1].path",
        "namespaces: path ... This value MUST be an absolute path",
        id="ns-path-relative",
    ),
    pytest.param(_with("x", "linux", "devices", 0, "type"), "linux.devices[0].type", None, id="device-type"),
    pytest.param(
        _with(512, "linux", "devices", 0, "fileMode"), "linux.devices[0].fileMode", None, id="file-mode"
    ),
    pytest.param(
        _with(_DELETE, "linux", "devices", 1, "minor"),
        "linux.devices[1].minor",
        "devices: major, minor (int64, REQUIRED unless type is p)",
        id="device-minor-missing",
    ),
    pytest.param(_with({}, "linux", "devices"), "linux.devices", None, id="devices-object"),
    pytest.param(
        _with("1000", "linux", "uidMappings", 0, "hostID"), "linux.uidMappings[0].hostID", None, id="hostID"
    ),
    pytest.param(_with({"net.x": 1}, "linux", "sysctl"), 'linux.sysctl["net.x"]', None, id="sysctl-int"),
    pytest.param(
        _with("rbogus", "linux", "rootfsPropagation"), "linux.rootfsPropagation", None, id="propagation"
    ),
    pytest.param(_with([1], "linux", "maskedPaths"), "linux.maskedPaths[0]", None, id="masked-int"),
    pytest.param(
        _with(-1, "linux", "timeOffsets", "monotonic", "nanosecs"),
        "linux.timeOffsets.monotonic.nanosecs",
        None,
        id="nanosecs",
    ),
    pytest.param(
        _with(5, "linux", "netDevices", "eth1", "name"), "linux.netDevices.eth1.name", None, id="netdev"
    ),
    pytest.param(
        _with("1g", "linux", "resources", "memory", "limit"),
        "linux.resources.memory.limit",
        None,
        id="memory-limit-string",
    ),
    pytest.param(
        _with(2**63, "linux", "resources", "memory", "limit"),
        "linux.resources.memory.limit",
        None,
        id="memory-limit-int64",
    ),
    pytest.param(
        _with(1, "linux", "resources", "memory", "disableOOMKiller"),
        "linux.resources.memory.disableOOMKiller",
        None,
        id="memory-bool",
    ),
    pytest.param(
        _with({}, "linux", "resources", "pids"), "linux.resources.pids.limit", None, id="pids-limit"
    ),
    pytest.param(
        _with(-1, "linux", "resources", "cpu", "shares"), "linux.resources.cpu.shares", None, id="shares"
    ),
    pytest.param(
        _with(_DELETE, "linux", "resources", "devices", 1, "allow"),
        "linux.resources.devices[1].allow",
        None,
        id="rule-allow",
    ),
    pytest.param(
        _with("rwx", "linux", "resources", "devices", 1, "access"),
        "linux.resources.devices[1].access",
        "devices: access ... a composition of r (read), w (write), and m (mknod)",
        id="rule-access",
    ),
    pytest.param(
        _with("z", "linux", "resources", "devices", 1, "type"),
        "linux.resources.devices[1].type",
        "devices: type ... a (all), c (char), or b (block)",
        id="rule-type",
    ),
    pytest.param(
        _with(70000, "linux", "resources", "blockIO", "weight"),
        "linux.resources.blockIO.weight",
        None,
        id="blkio-weight",
    ),
    pytest.param(
        _with(_DELETE, "linux", "resources", "blockIO", "throttleReadBpsDevice", 0, "major"),
        "linux.resources.blockIO.throttleReadBpsDevice[0].major",
        None,
        id="throttle-major",
    ),
    pytest.param(
        _with("2mb", "linux", "resources", "hugepageLimits", 0, "pageSize"),
        "linux.resources.hugepageLimits[0].pageSize",
        None,
        id="hugepage-size",
    ),
    pytest.param(
        _with({"memory.max": 5}, "linux", "resources", "unified"),
        'linux.resources.unified["memory.max"]',
        None,
        id="unified-int",
    ),
    pytest.param(
        _with({"mlx": {"hcaHandles": -1}}, "linux", "resources", "rdma"),
        "linux.resources.rdma.mlx.hcaHandles",
        None,
        id="rdma",
    ),
    pytest.param(
        _with([{"name": "eth0"}], "linux", "resources", "network", "priorities"),
        "linux.resources.network.priorities[0].priority",
        None,
        id="net-prio",
    ),
    pytest.param(_with({}, "linux", "seccomp"), "linux.seccomp.defaultAction", None, id="seccomp-default"),
    pytest.param(
        _with([], "linux", "seccomp", "syscalls", 0, "names"),
        "linux.seccomp.syscalls[0].names",
        None,
        id="seccomp-names-empty",
    ),
    pytest.param(
        _with("EQ", "linux", "seccomp", "syscalls", 1, "args", 0, "op"),
        "linux.seccomp.syscalls[1].args[0].op",
        None,
        id="seccomp-op",
    ),
    pytest.param(
        _with(["SCMP_ARCH_Z80"], "linux", "seccomp", "architectures"),
        "linux.seccomp.architectures[0]",
        None,
        id="seccomp-arch",
    ),
    pytest.param(
        _with("L3:0=1", "linux", "intelRdt", "memBwSchema"), "linux.intelRdt.memBwSchema", None, id="membw"
    ),
    pytest.param(
        _with("LINUX64", "linux", "personality", "domain"), "linux.personality.domain", None, id="persona"
    ),
    pytest.param(
        _with("MPOL_X", "linux", "memoryPolicy", "mode"), "linux.memoryPolicy.mode", None, id="mpol"
    ),
    pytest.param(_with([RICH["linux"]], "linux"), "linux", None, id="linux-array"),
]


@pytest.mark.parametrize(("config", "field", "rule"), BAD)
def test_bad_config_is_refused_with_its_path(
    config: object, field: str, rule: str | None, validator: jsonschema.Draft4Validator
) -> None:
    schema_path = _schema_error_path(validator, config)
    if rule is None:
        assert schema_path == field, "the schema should reject the config at the same place"
    else:
        assert schema_path is None, f"the schema accepts it; the spec text forbids it: {rule}"
    with pytest.raises(SpecError) as info:
        RuntimeSpec.from_json(config)
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}: ")


def test_error_messages() -> None:
    def message(config: object) -> str:
        with pytest.raises(SpecError) as info:
            RuntimeSpec.from_json(config)
        return str(info.value)

    assert message(_with(5, "process", "args", 1)) == "process.args[1]: expected a string, got int"
    assert message(_with("foo", "linux", "namespaces", 3, "type")) == (
        'linux.namespaces[3].type: unknown namespace type "foo"'
    )
    assert message(_with("pid", "linux", "namespaces", 3, "type")) == (
        'linux.namespaces: duplicate namespace type "pid"'
    )
    assert message(_with(_DELETE, "ociVersion")) == "ociVersion: required"
    assert message(_with("tmp", "process", "cwd")) == "process.cwd: must be an absolute path"
    assert message(_with("1g", "linux", "resources", "memory", "limit")) == (
        "linux.resources.memory.limit: expected an integer, got string"
    )
    assert (
        message(_with(True, "process", "user", "uid")) == "process.user.uid: expected an integer, got boolean"
    )
    assert message(_with(-1, "process", "user", "uid")) == (
        "process.user.uid: -1 is out of range for uint32 (0..4294967295)"
    )
    assert message([]) == "config.json: expected an object, got array"


def test_empty_args_are_refused() -> None:
    """config.md: args ... "at least one entry is REQUIRED (non-Windows)"; the schema cannot say it."""
    config = _with([], "process", "args")
    del config["process"]["commandLine"]
    with pytest.raises(SpecError, match=r"^process\.args: "):
        RuntimeSpec.from_json(config)


# -- load_spec ---------------------------------------------------------------------------------------


def test_load_spec_missing_bundle(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(SpecError) as info:
        load_spec(str(missing))
    assert str(info.value) == f"bundle {missing}: no such directory"


def test_load_spec_bundle_is_a_file(tmp_path: Path) -> None:
    path = tmp_path / "file"
    path.write_text("", encoding="utf-8")
    with pytest.raises(SpecError, match="not a directory"):
        load_spec(str(path))


def test_load_spec_missing_config(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        load_spec(str(tmp_path))
    assert str(info.value) == f"bundle {tmp_path}: no config.json"


def test_load_spec_bad_json_gives_line_and_column(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(
        '{\n  "ociVersion": "1.0.2",\n  "hostname": "a" "b"\n}\n', encoding="utf-8"
    )
    with pytest.raises(SpecError) as info:
        load_spec(str(tmp_path))
    assert str(info.value) == (
        f"{tmp_path / 'config.json'}: invalid JSON: Expecting ',' delimiter at line 3 column 19"
    )


def test_load_spec_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_bytes(b'{"ociVersion": "\xff"}')
    with pytest.raises(SpecError, match="invalid JSON"):
        load_spec(str(tmp_path))


def test_load_spec_top_level_not_an_object(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(SpecError) as info:
        load_spec(str(tmp_path))
    assert str(info.value) == "config.json: expected an object, got array"


def test_load_spec_schema_error(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps(_with("tmp", "process", "cwd")), encoding="utf-8")
    with pytest.raises(SpecError, match=r"^process\.cwd: must be an absolute path$"):
        load_spec(str(tmp_path))
