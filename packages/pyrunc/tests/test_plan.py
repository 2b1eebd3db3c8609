"""The spec-to-ops compiler, checked as data (no kernel): order, flags, refusals."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

import pyrunc._native
from pyrunc._errors import SpecError, UnsupportedFieldError
from pyrunc._native._lib import ffi
from pyrunc._native.kernel import ARGUMENTS, CloneFlags, MountFlags, OpKind, c_ops
from pyrunc._plan.compile import compile_exec, compile_init
from pyrunc._plan.plan import Plan
from pyrunc._plan.rootfs import mount_flags
from pyrunc._spec.config import RuntimeSpec, default_spec


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    (tmp_path / "rootfs").mkdir()
    return tmp_path


def spec_with(**changes: object) -> RuntimeSpec:
    raw = default_spec().to_json()
    raw["process"]["terminal"] = False  # type: ignore[index]
    for dotted, value in changes.items():
        node = raw
        *parents, last = dotted.split("__")
        for key in parents:
            node = node.setdefault(key, {})  # type: ignore[assignment]
        node[last] = value
    return RuntimeSpec.from_json(raw)


def without_uts(spec: RuntimeSpec) -> RuntimeSpec:
    assert spec.linux is not None
    return spec.replace(
        linux=spec.linux.replace(namespaces=[ns for ns in spec.linux.namespaces if ns.type != "uts"])
    )


def kinds(plan_ops: list) -> list[int]:  # type: ignore[type-arg]
    return [op.kind for op in plan_ops]


def joined(plan: Plan) -> list[str]:
    """The namespace files the SETNS ops join, in order (each opened first into its slot)."""
    opened = {op.args["slot"]: op.args["path"] for op in plan.ops if op.kind == OpKind.OPEN_SOURCE}
    return [str(opened[op.args["slot"]]) for op in plan.ops if op.kind == OpKind.SETNS]


def test_op_numbers_and_arguments_match_native_header() -> None:
    header = Path(pyrunc._native.__file__).with_name("native.h").read_text()
    defines = re.findall(r"#define PYRUNC_OP_(\w+) (\d+) +/\* (?:(\w+): )?", header)
    assert {name: int(number) for name, number, _ in defines} == {
        name: value for name, value in vars(OpKind).items() if name.isupper()
    }
    assert {getattr(OpKind, name): member for name, _, member in defines if member} == ARGUMENTS
    members = {name for name, _ in ffi.typeof("struct pyrunc_op").fields}
    assert members == {"kind", *ARGUMENTS.values()}


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"process__terminal": True},
        {"hooks": {"createContainer": [{"path": "/bin/true", "args": ["true"], "timeout": 3}]}},
        {"linux__seccomp": {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}},
        {"linux__uidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
         "linux__gidMappings": [{"containerID": 0, "hostID": 100000, "size": 65536}],
         "mounts": [{"destination": "/data", "type": "bind", "source": "/tmp", "options": ["rbind", "ro"]}]},
    ],
)  # fmt: skip
def test_every_op_a_plan_makes_converts_to_its_c_struct(bundle: Path, changes: dict[str, object]) -> None:
    if "linux__uidMappings" in changes:
        namespaces = default_spec().to_json()["linux"]["namespaces"]  # type: ignore[index]
        changes = {**changes, "linux__namespaces": [*namespaces, {"type": "user"}]}
    plan = compile_init(
        spec_with(**changes), bundle=str(bundle), fifo_fd=5, stdio=(7, 8, 9), console_fd=6, keyring="k"
    )
    keep: list[object] = []
    array = c_ops(plan.ops, keep)
    for op, c in zip(plan.ops, array, strict=True):  # type: ignore[call-overload]
        assert c.kind == op.kind
        if op.kind in ARGUMENTS:
            member = getattr(c, ARGUMENTS[op.kind])
            for name, value in op.args.items():
                if isinstance(value, str):
                    assert ffi.string(getattr(member, name)).decode() == value, (op, name)
                elif isinstance(value, int):
                    assert getattr(member, name) == value, (op, name)


def test_default_spec_order_follows_runc(bundle: Path) -> None:
    plan = compile_init(spec_with(), bundle=str(bundle), fifo_fd=5)
    order = kinds(plan.ops)
    first = order.index
    assert order[:3] == [OpKind.SET_DUMPABLE, OpKind.CLOEXEC_FROM, OpKind.WAIT]
    assert first(OpKind.OPEN_ROOT) < first(OpKind.PIVOT_ROOT) < first(OpKind.SETHOSTNAME)
    assert first(OpKind.PIVOT_ROOT) < first(OpKind.READONLY) < first(OpKind.MASK)
    assert first(OpKind.MASK) < first(OpKind.REMOUNT_RO) < first(OpKind.SETRESUID) < first(OpKind.CHDIR)
    assert order[-4:] == [OpKind.FIND_EXEC, OpKind.READY, OpKind.FIFO, OpKind.EXEC]
    # every namespace of runc's default spec is created by clone3, none joined
    expected = CloneFlags.NEWPID | CloneFlags.NEWNET | CloneFlags.NEWIPC
    expected |= CloneFlags.NEWUTS | CloneFlags.NEWNS
    assert plan.clone_flags & expected == expected
    assert plan.joins == {}


def test_run_mode_waits_on_the_socket_not_the_fifo(bundle: Path) -> None:
    plan = compile_init(spec_with(), bundle=str(bundle))
    assert kinds(plan.ops)[-3:] == [OpKind.READY, OpKind.WAIT, OpKind.EXEC]


def test_mount_targets_resolve_inside_the_root(bundle: Path) -> None:
    plan = compile_init(spec_with(), bundle=str(bundle))
    pivot = kinds(plan.ops).index(OpKind.PIVOT_ROOT)
    spec_mounts = [
        op
        for op in plan.ops[:pivot]
        if op.kind == OpKind.MOUNT and op.args["target"] != "/" and op.args["source"] != op.args["target"]
    ]
    assert spec_mounts and all(op.args["in_root"] for op in spec_mounts)


def test_cgroup_ns_is_unshared_after_joining_the_cgroup(bundle: Path) -> None:
    spec = spec_with()
    assert spec.linux is not None
    from pyrunc._spec.config import Namespace

    spec = spec.replace(
        linux=spec.linux.replace(namespaces=[*spec.linux.namespaces, Namespace(type="cgroup")])
    )
    plan = compile_init(spec, bundle=str(bundle))
    assert not plan.clone_flags & CloneFlags.NEWCGROUP
    order = kinds(plan.ops)
    assert order.index(OpKind.WAIT) < order.index(OpKind.UNSHARE)


def test_joined_namespaces_become_setns(bundle: Path) -> None:
    spec = spec_with()
    assert spec.linux is not None
    paths = {"network": "/proc/1/ns/net", "pid": "/proc/1/ns/pid"}
    namespaces = [ns.replace(path=paths.get(ns.type)) for ns in spec.linux.namespaces]
    plan = compile_init(spec.replace(linux=spec.linux.replace(namespaces=namespaces)), bundle=str(bundle))
    assert not plan.clone_flags & (CloneFlags.NEWNET | CloneFlags.NEWPID)
    assert plan.joins == {"network": "/proc/1/ns/net", "pid": "/proc/1/ns/pid"}
    assert joined(plan) == ["/proc/1/ns/net"]  # pid is joined by the parent
    assert OpKind.LOOPBACK_UP not in kinds(plan.ops)


def test_capabilities_and_user(bundle: Path) -> None:
    spec = spec_with(process__user={"uid": 1000, "gid": 1000, "additionalGids": [5, 6]})
    plan = compile_init(spec, bundle=str(bundle))
    by_kind = {op.kind: op for op in plan.ops}
    assert by_kind[OpKind.SETGROUPS].args["gids"] == (5, 6)
    assert by_kind[OpKind.SETRESUID].args["id"] == 1000
    # runc's default: CAP_AUDIT_WRITE(29), CAP_KILL(5), CAP_NET_BIND_SERVICE(10)
    mask = 1 << 29 | 1 << 5 | 1 << 10
    assert by_kind[OpKind.CAPBSET].args["keep"] == mask
    capset = by_kind[OpKind.CAPSET].args
    assert (capset["effective"], capset["permitted"]) == (mask, mask)
    order = kinds(plan.ops)
    assert order.index(OpKind.PRCTL) < order.index(OpKind.SETRESUID) < order.index(OpKind.CAPSET)


def test_mount_options() -> None:
    options = ["nosuid", "noexec", "ro", "rw", "rslave", "mode=755", "size=1m"]
    flags, propagation, data = mount_flags(options, "m")
    assert flags == MountFlags.NOSUID | MountFlags.NOEXEC
    assert propagation == MountFlags.SLAVE | MountFlags.REC
    assert data == "mode=755,size=1m"
    with pytest.raises(UnsupportedFieldError, match=r"mounts\[0\]\.options.*rro"):
        mount_flags(["rro"], "mounts[0].options")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"linux__intelRdt": {"closID": "c1"}}, "linux.intelRdt"),
        ({"process__apparmorProfile": "docker-default"}, "process.apparmorProfile"),
        ({"windows": {}}, "windows"),
    ],
)
def test_unsupported_fields_are_refused_by_name(bundle: Path, changes: dict[str, object], field: str) -> None:
    with pytest.raises(UnsupportedFieldError, match=re.escape(field)):
        compile_init(spec_with(**changes), bundle=str(bundle))


def test_mount_destination_with_dotdot_is_refused(bundle: Path) -> None:
    spec = spec_with()
    spec.mounts[0].destination = "/../../etc"
    with pytest.raises(SpecError, match=r"mounts\[0\]\.destination"):
        compile_init(spec, bundle=str(bundle))


def test_hostname_needs_uts_namespace(bundle: Path) -> None:
    spec = without_uts(spec_with(hostname="box"))
    with pytest.raises(SpecError, match=r"^hostname"):
        compile_init(spec, bundle=str(bundle))


@pytest.mark.parametrize("field", ["hostname", "domainname"])
def test_an_empty_hostname_is_none_to_set(bundle: Path, field: str) -> None:
    """Without a uts namespace, sethostname("") would have emptied the host's name (runc, too, sets
    only a name that is not empty)."""
    spec = without_uts(spec_with(**{field: ""}))
    if field == "domainname":
        spec = spec.replace(hostname=None)
    plan = compile_init(spec, bundle=str(bundle))
    assert not {OpKind.SETHOSTNAME, OpKind.SETDOMAINNAME} & set(kinds(plan.ops))


def test_missing_rootfs(bundle: Path) -> None:
    os.rmdir(bundle / "rootfs")
    with pytest.raises(SpecError, match=r"^root\.path"):
        compile_init(spec_with(), bundle=str(bundle))


def test_exec_joins_every_namespace_mount_last() -> None:
    process = spec_with().process
    assert process is not None
    namespaces = ["mount", "pid", "network", "uts", "ipc"]
    plan = compile_exec(process, namespaces=namespaces, init_pid=42, rootfs="/nonexistent")
    assert joined(plan) == ["/proc/42/ns/ipc", "/proc/42/ns/uts", "/proc/42/ns/net", "/proc/42/ns/mnt"]
    assert plan.joins["pid"] == "/proc/42/ns/pid"
    assert kinds(plan.ops)[-2:] == [OpKind.READY, OpKind.EXEC]
