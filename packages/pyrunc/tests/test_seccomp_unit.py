"""linux.seccomp without a container: validation (errors name the field), compilation with
libseccomp, Docker's default profile resolved like moby does, and what ``features`` reports.

The containers that load these filters are in test_seccomp.py.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import struct
import subprocess
import time
from pathlib import Path
from typing import Any

import pyrunc_acceptance_specs as specs  # registered by conftest.py
import pytest

import pyrunc
import pyrunc._native
from pyrunc._errors import SpecError, UnsupportedFieldError
from pyrunc._features import features
from pyrunc._jsonio import canonical
from pyrunc._native._lib import ffi, lib
from pyrunc._native.kernel import OpKind
from pyrunc._plan import seccomp as _seccomp
from pyrunc._plan.compile import compile_exec, compile_init
from pyrunc._spec.config import RuntimeSpec, default_spec

DOCKER_CAPS = list(pyrunc.DOCKER_CAPABILITIES)


def allowed(profile: dict[str, Any]) -> set[str]:
    """Syscalls the resolved profile allows without conditions."""
    return {
        name
        for rule in profile["syscalls"]
        if rule["action"] == "SCMP_ACT_ALLOW" and not rule.get("args")
        for name in rule["names"]
    }


def rules_for(profile: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [rule for rule in profile["syscalls"] if name in rule["names"]]


# -- the numbers Python and C share ------------------------------------------------------------


def test_numbers_match_the_c_header() -> None:
    header = Path(pyrunc._native.__file__).with_name("pyrunc_seccomp.h").read_text()
    defines = {name: int(value, 0) for name, value in re.findall(r"#define PYRUNC_(\w+) (-?\w+)", header)}
    for name, value in _seccomp.ACTIONS.items():
        if name != "SCMP_ACT_KILL":  # an alias of KILL_THREAD
            assert defines[name] == value, name
    for name, value in _seccomp.OPERATORS.items():
        assert defines[name] == value, name
    native = Path(pyrunc._native.__file__).with_name("native.h").read_text()
    assert re.search(rf"#define PYRUNC_OP_SECCOMP {OpKind.SECCOMP}\b", native)


# -- validation: every error names the field ---------------------------------------------------

BASE: dict[str, Any] = {
    "defaultAction": "SCMP_ACT_ALLOW",
    "syscalls": [
        {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"},
        {
            "names": ["mkdir"],
            "action": "SCMP_ACT_ERRNO",
            "args": [{"index": 1, "value": 0, "op": "SCMP_CMP_EQ"}],
        },
    ],
}


def with_change(path: str, value: object) -> dict[str, Any]:
    profile = json.loads(json.dumps(BASE))
    node: Any = profile
    steps = [int(s) if s.isdigit() else s for s in re.findall(r"[^.\[\]]+", path)]
    for step in steps[:-1]:
        node = node[step]
    node[steps[-1]] = value
    return profile


@pytest.mark.parametrize(
    ("path", "value", "error", "field", "words"),
    [
        ("syscalls[1].action", "SCMP_ACT_BOGUS", SpecError, "linux.seccomp.syscalls[1].action", "unknown"),
        ("defaultAction", "SCMP_ACT_BOGUS", SpecError, "linux.seccomp.defaultAction", "unknown"),
        (
            "syscalls[1].args[0].op",
            "SCMP_CMP_BOGUS",
            SpecError,
            "linux.seccomp.syscalls[1].args[0].op",
            "unknown",
        ),
        ("syscalls[1].args[0].index", 6, SpecError, "linux.seccomp.syscalls[1].args[0].index", "0 to 5"),
        ("syscalls[1].args[0].value", -1, SpecError, "linux.seccomp.syscalls[1].args[0].value", "range"),
        (
            "syscalls[0].action",
            "SCMP_ACT_NOTIFY",
            UnsupportedFieldError,
            "linux.seccomp.syscalls[0].action",
            "NOTIFY",
        ),
        ("defaultAction", "SCMP_ACT_NOTIFY", UnsupportedFieldError, "linux.seccomp.defaultAction", "NOTIFY"),
        ("listenerPath", "/run/agent.sock", UnsupportedFieldError, "linux.seccomp.listenerPath", "agent"),
        ("syscalls[0].errnoRet", 70000, SpecError, "linux.seccomp.syscalls[0].errnoRet", "16-bit"),
        ("syscalls[0].names", [], SpecError, "linux.seccomp.syscalls[0].names", "required"),
        ("syscalls[0].names", [""], SpecError, "linux.seccomp.syscalls[0].names[0]", "empty"),
        ("architectures", ["SCMP_ARCH_VAX"], SpecError, "linux.seccomp.architectures[0]", "unknown"),
        (
            "flags",
            ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
            UnsupportedFieldError,
            "linux.seccomp.flags[0]",
            "",
        ),
        (
            "syscalls[1].args",
            [{"index": 0, "op": "SCMP_CMP_EQ"}],
            SpecError,
            "syscalls[1].args[0].value",
            "required",
        ),
    ],
)
def test_bad_profile_names_the_field(
    path: str, value: object, error: type[Exception], field: str, words: str
) -> None:
    with pytest.raises(error) as info:
        _seccomp.parse_seccomp(with_change(path, value))
    assert type(info.value) is error
    assert str(info.value).startswith(field) or f".{field}" in str(info.value), str(info.value)
    assert words in str(info.value)


def test_refused_by_compile_init_before_anything_runs(tmp_path: Path) -> None:
    (tmp_path / "rootfs").mkdir()
    raw = default_spec().to_json()
    raw["process"]["terminal"] = False  # type: ignore[index]
    raw["linux"]["seccomp"] = with_change("syscalls[1].args[0].index", 9)  # type: ignore[index]
    with pytest.raises(SpecError, match=re.escape("linux.seccomp.syscalls[1].args[0].index")):
        compile_init(RuntimeSpec.from_json(raw), bundle=str(tmp_path))


def test_actions_and_errno() -> None:
    profile = _seccomp.parse_seccomp(
        {
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 38,
            "syscalls": [
                {"names": ["a"], "action": "SCMP_ACT_ERRNO"},
                {"names": ["b"], "action": "SCMP_ACT_TRACE", "errnoRet": 5},
                {"names": ["c"], "action": "SCMP_ACT_KILL"},
                {"names": ["d"], "action": "SCMP_ACT_KILL_PROCESS", "errnoRet": 5},  # ignored, as runc
                {"names": ["e"], "action": "SCMP_ACT_LOG"},
            ],
        }
    )
    assert profile.default_action == 0x00050000 | 38
    assert [rule.action for rule in profile.rules] == [0x00050001, 0x7FF00005, 0, 0x80000000, 0x7FFC0000]


# -- compiling ----------------------------------------------------------------------------------


def test_docker_profile_compiles() -> None:
    program = _seccomp.build_filter(pyrunc.docker_default_seccomp(DOCKER_CAPS))
    assert len(program.program) % 8 == 0 and 50 < len(program) <= 4096
    assert program.flags == 0


def test_enosys_stub_only_when_the_default_refuses() -> None:
    """runc's patchbpf: in front of libseccomp's program, "load the architecture" (ld [4])."""
    load_arch = struct.pack("=HBBI", 0x20, 0, 0, 4)
    rules = [{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"}]
    refusing = {"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"], "syscalls": rules}
    stubbed = _seccomp.build_filter(refusing).program
    plain = _seccomp.build_filter({k: v for k, v in refusing.items() if k != "architectures"}).program
    assert stubbed.startswith(load_arch) and stubbed.endswith(plain) and len(stubbed) > len(plain)
    rules = [{"names": ["read", "write"], "action": "SCMP_ACT_ERRNO"}]
    permissive = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"], "syscalls": rules}
    plain = _seccomp.build_filter({k: v for k, v in permissive.items() if k != "architectures"}).program
    assert _seccomp.build_filter(permissive).program == plain


def test_unknown_syscall_names_are_skipped() -> None:
    plain = _seccomp.build_filter({"defaultAction": "SCMP_ACT_ALLOW"})
    unknown = _seccomp.build_filter(
        {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["no_such_syscall"], "action": "SCMP_ACT_ERRNO"}],
        }
    )
    assert unknown.program == plain.program


def test_rule_with_the_default_action_is_skipped() -> None:
    plain = _seccomp.build_filter({"defaultAction": "SCMP_ACT_ALLOW"})
    same = _seccomp.build_filter(
        {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ALLOW"}]}
    )
    assert same.program == plain.program


def test_two_conditions_on_one_argument_become_two_rules() -> None:
    """libseccomp refuses two comparisons of one argument in a rule; runc adds one rule each."""
    args = [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}, {"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}]
    split = _seccomp.build_filter(
        {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ERRNO", "args": args}],
        }
    )
    one = _seccomp.build_filter(
        {
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ERRNO", "args": [a]} for a in args],
        }
    )
    assert split.program == one.program


def test_flags_and_architectures() -> None:
    program = _seccomp.build_filter(
        {
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
            "syscalls": [{"names": ["socketcall", "mkdir"], "action": "SCMP_ACT_ERRNO"}],
        }
    )
    assert program.flags == 2 | 4


def test_plan_places_the_filter_as_runc_does(tmp_path: Path) -> None:
    """With no_new_privs: right before exec, after the start wait. Without: before the
    capabilities are dropped (loading needs CAP_SYS_ADMIN then)."""
    (tmp_path / "rootfs").mkdir()
    raw = default_spec().to_json()
    raw["process"]["terminal"] = False  # type: ignore[index]
    raw["linux"]["seccomp"] = BASE  # type: ignore[index]
    plan = compile_init(RuntimeSpec.from_json(raw), bundle=str(tmp_path), fifo_fd=5)
    kinds = [op.kind for op in plan.ops]
    assert kinds[-3:] == [OpKind.FIFO, OpKind.SECCOMP, OpKind.EXEC]
    raw["process"]["noNewPrivileges"] = False  # type: ignore[index]
    plan = compile_init(RuntimeSpec.from_json(raw), bundle=str(tmp_path), fifo_fd=5)
    kinds = [op.kind for op in plan.ops]
    assert kinds.count(OpKind.SECCOMP) == 1
    assert kinds.index(OpKind.SECCOMP) + 1 == kinds.index(OpKind.CAPBSET)
    op = plan.ops[kinds.index(OpKind.SECCOMP)]
    program = op.args["program"]
    assert isinstance(program, bytes) and op.args["length"] == len(program) > 0
    # Without linux.seccomp there is no op (and libseccomp is not called).
    del raw["linux"]["seccomp"]  # type: ignore[attr-defined]
    plan = compile_init(RuntimeSpec.from_json(raw), bundle=str(tmp_path), fifo_fd=5)
    assert OpKind.SECCOMP not in [op.kind for op in plan.ops]


def test_exec_gets_the_container_filter() -> None:
    process = default_spec().process
    assert process is not None
    process = process.replace(terminal=False)
    plan = compile_exec(process, namespaces=["mount"], init_pid=1, rootfs="/", seccomp=BASE)
    assert [op.kind for op in plan.ops][-3:] == [OpKind.READY, OpKind.SECCOMP, OpKind.EXEC]
    process = process.replace(no_new_privileges=False)
    plan = compile_exec(process, namespaces=["mount"], init_pid=1, rootfs="/", seccomp=BASE)
    kinds = [op.kind for op in plan.ops]
    assert kinds.index(OpKind.SECCOMP) + 1 == kinds.index(OpKind.CAPBSET)
    plan = compile_exec(process, namespaces=["mount"], init_pid=1, rootfs="/")
    assert OpKind.SECCOMP not in [op.kind for op in plan.ops]


# -- the cache of compiled programs ------------------------------------------------------------------


def cached(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.bpf"))


def other_profile(n: int) -> dict[str, Any]:
    return {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": n}],
    }


def test_cache_returns_what_compiling_returns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    raw = pyrunc.docker_default_seccomp(DOCKER_CAPS)
    directory = tmp_path / "@seccomp"
    first = _seccomp.build_filter(raw, cache=str(directory))
    assert directory.stat().st_mode & 0o7777 == 0o700
    [entry] = cached(directory)
    assert entry.stat().st_mode & 0o7777 == 0o600
    assert entry.read_bytes() == first.program
    assert [p.name for p in directory.iterdir()] == [entry.name]  # no temporary file left

    # A hit validates the profile again but does not compile it.
    def no_compiling(profile: object, where: str) -> bytes:
        raise AssertionError("compiled on a cache hit")

    parsed = []
    parse = _seccomp.parse_seccomp
    monkeypatch.setattr(_seccomp, "_compile", no_compiling)
    monkeypatch.setattr(_seccomp, "parse_seccomp", lambda *a: parsed.append(a) or parse(*a))
    second = _seccomp.build_filter(raw, cache=str(directory))
    assert len(parsed) == 1
    monkeypatch.undo()
    assert second.program == first.program == _seccomp.build_filter(raw).program
    assert second.flags == first.flags
    assert cached(directory) == [entry]


def test_cache_key(tmp_path: Path) -> None:
    """sha256 of the canonical JSON (what json.dumps gives with sorted keys and no spaces), the
    libseccomp and kernel, and pyrunc: key order in the profile does not matter, its content does."""
    raw = pyrunc.docker_default_seccomp(DOCKER_CAPS)
    text = json.dumps(raw, sort_keys=True, separators=(",", ":"))
    assert canonical(raw) == text
    version = ffi.string(lib.pyrunc_seccomp_version()).decode()
    assert re.fullmatch(r"\d+\.\d+\.\d+", version)
    uname = os.uname()
    parts = (_seccomp._CACHE_FORMAT, text, version, uname.release, uname.machine, pyrunc.__version__)
    assert _seccomp._cache_key(raw) == hashlib.sha256("\0".join(parts).encode()).hexdigest()
    reordered = dict(reversed(list(raw.items())))
    assert list(reordered) != list(raw) and _seccomp._cache_key(reordered) == _seccomp._cache_key(raw)
    assert _seccomp._cache_key(other_profile(1)) != _seccomp._cache_key(other_profile(2))
    assert _seccomp._cache_key({"defaultAction": float("nan")}) is None  # not JSON: not cached


def test_a_different_profile_gets_its_own_file(tmp_path: Path) -> None:
    one = _seccomp.build_filter(other_profile(1), cache=str(tmp_path))
    two = _seccomp.build_filter(other_profile(2), cache=str(tmp_path))
    assert one.program != two.program
    assert sorted(p.read_bytes() for p in cached(tmp_path)) == sorted([one.program, two.program])


@pytest.mark.parametrize("content", [b"12345", b"", b"\0" * 12, b"\0" * (4096 * 8 + 8)])
def test_a_bad_cache_file_is_rebuilt(tmp_path: Path, content: bytes) -> None:
    """Truncated, empty, not whole instructions, longer than the kernel loads: compiled again and
    rewritten."""
    raw = pyrunc.docker_default_seccomp(DOCKER_CAPS)
    good = _seccomp.build_filter(raw, cache=str(tmp_path)).program
    [entry] = cached(tmp_path)
    entry.write_bytes(content)
    assert _seccomp.build_filter(raw, cache=str(tmp_path)).program == good
    assert entry.read_bytes() == good and cached(tmp_path) == [entry]


def test_a_cache_file_that_is_not_ours_is_not_used(tmp_path: Path) -> None:
    raw = other_profile(1)
    good = _seccomp.build_filter(raw, cache=str(tmp_path)).program
    [entry] = cached(tmp_path)
    forged = struct.pack("=HBBI", 0x06, 0, 0, 0x7FFF0000)  # ret ALLOW
    entry.write_bytes(forged)
    os.chown(entry, 12345, 12345)
    assert _seccomp.build_filter(raw, cache=str(tmp_path)).program == good
    entry.unlink()
    entry.symlink_to(tmp_path / "elsewhere.bin")
    (tmp_path / "elsewhere.bin").write_bytes(forged)
    assert _seccomp.build_filter(raw, cache=str(tmp_path)).program == good


def test_a_cache_directory_others_can_write_is_not_used(tmp_path: Path) -> None:
    directory = tmp_path / "@seccomp"
    directory.mkdir(mode=0o700)
    directory.chmod(0o770)
    raw = other_profile(1)
    assert _seccomp.build_filter(raw, cache=str(directory)).program == _seccomp.build_filter(raw).program
    assert list(directory.iterdir()) == []


def test_the_cache_keeps_64_programs(tmp_path: Path) -> None:
    """Storing a program beyond 64 removes the oldest by mtime; the new one stays, and so do
    temporary files but those a writer left an hour ago."""
    old = time.time_ns() - 2 * 3600 * 10**9  # two hours ago
    for i in range(63):
        path = tmp_path / f"{i:02}.bpf"
        path.write_bytes(b"\0" * 8)
        os.utime(path, ns=(old + i * 10**9, old + i * 10**9))
    (tmp_path / ".stale.tmp").write_bytes(b"")
    os.utime(tmp_path / ".stale.tmp", ns=(old, old))
    (tmp_path / ".fresh.tmp").write_bytes(b"")
    _seccomp.build_filter(other_profile(1), cache=str(tmp_path))
    assert len(cached(tmp_path)) == 64  # 63 + 1: nothing to remove yet
    assert (tmp_path / "00.bpf").exists()
    assert not (tmp_path / ".stale.tmp").exists() and (tmp_path / ".fresh.tmp").exists()
    _seccomp.build_filter(other_profile(2), cache=str(tmp_path))
    _seccomp.build_filter(other_profile(3), cache=str(tmp_path))
    names = {p.name for p in cached(tmp_path)}
    assert len(names) == 64
    assert "00.bpf" not in names and "01.bpf" not in names and "02.bpf" in names
    for n in (1, 2, 3):
        assert f"{_seccomp._cache_key(other_profile(n))}.bpf" in names
    # A hit stores nothing, so it removes nothing either.
    _seccomp.build_filter(other_profile(3), cache=str(tmp_path))
    assert {p.name for p in cached(tmp_path)} == names


def test_an_unwritable_cache_still_gives_the_filter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    raw = pyrunc.docker_default_seccomp(DOCKER_CAPS)
    want = _seccomp.build_filter(raw).program
    # A read-only file system (we are root: file modes would not stop us).
    readonly = tmp_path / "ro"
    readonly.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "pyrunc-test", str(readonly)], check=True)
    try:
        assert _seccomp.build_filter(raw, cache=str(readonly / "@seccomp")).program == want
        assert os.listdir(readonly) == []
    finally:
        subprocess.run(["umount", str(readonly)], check=True)
    # Something else in the cache's place.
    (tmp_path / "file").write_bytes(b"")
    assert _seccomp.build_filter(raw, cache=str(tmp_path / "file")).program == want
    # The disk fills up while the program is written: nothing is left behind.
    directory = tmp_path / "@seccomp"

    def full(fd: int, data: bytes) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(_seccomp.os, "write", full)
    assert _seccomp.build_filter(raw, cache=str(directory)).program == want
    monkeypatch.undo()
    assert list(directory.iterdir()) == []


def test_compile_init_and_exec_pass_the_cache_on(tmp_path: Path) -> None:
    (tmp_path / "rootfs").mkdir()
    raw = default_spec().to_json()
    raw["process"]["terminal"] = False  # type: ignore[index]
    raw["linux"]["seccomp"] = BASE  # type: ignore[index]
    directory = tmp_path / "@seccomp"
    compile_init(RuntimeSpec.from_json(raw), bundle=str(tmp_path), fifo_fd=5)
    assert not directory.exists()  # no cache unless asked (pyrunc.run)
    plan = compile_init(
        RuntimeSpec.from_json(raw), bundle=str(tmp_path), fifo_fd=5, seccomp_cache=str(directory)
    )
    [entry] = cached(directory)
    [op] = [op for op in plan.ops if op.kind == OpKind.SECCOMP]
    assert op.args["program"] == entry.read_bytes()
    entry.unlink()
    process = RuntimeSpec.from_json(raw).process
    assert process is not None
    plan = compile_exec(
        process, namespaces=[], init_pid=1, rootfs="/", seccomp=BASE, seccomp_cache=str(directory)
    )
    [op] = [op for op in plan.ops if op.kind == OpKind.SECCOMP]
    assert [op.args["program"]] == [p.read_bytes() for p in cached(directory)]


# -- Docker's default profile --------------------------------------------------------------------


def test_shipped_profile_is_the_upstream_copy() -> None:
    shipped = Path(pyrunc.__file__).with_name("data") / "seccomp-default.json"
    assert shipped.read_bytes() == specs.spec_file("seccomp-default.json").read_bytes()  # unchanged
    assert "Apache" in (shipped.parent / "NOTICE").read_text()


def test_docker_default_without_sys_admin() -> None:
    profile = pyrunc.docker_default_seccomp(DOCKER_CAPS, arch="amd64", kernel=(6, 1))
    assert profile["defaultAction"] == "SCMP_ACT_ERRNO" and profile["defaultErrnoRet"] == 1
    assert profile["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    ok = allowed(profile)
    assert {"read", "write", "execve", "chroot", "arch_prctl", "ptrace"} <= ok
    assert not {"mount", "umount2", "unshare", "setns", "keyctl", "add_key", "clone3", "bpf", "reboot"} & ok
    # clone3 returns ENOSYS (so that libcs fall back to clone), clone only without namespace flags.
    assert rules_for(profile, "clone3") == [{"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38}]
    (clone,) = rules_for(profile, "clone")
    assert clone["args"] == [{"index": 0, "value": 2114060288, "op": "SCMP_CMP_MASKED_EQ"}]
    for rule in profile["syscalls"]:
        assert set(rule) <= {"names", "action", "errnoRet", "args"}


def test_docker_default_with_sys_admin_allows_more() -> None:
    without = pyrunc.docker_default_seccomp(DOCKER_CAPS, arch="amd64", kernel=(6, 1))
    with_admin = pyrunc.docker_default_seccomp([*DOCKER_CAPS, "SYS_ADMIN"], arch="amd64", kernel=(6, 1))
    gained = allowed(with_admin) - allowed(without)
    assert {"mount", "umount2", "unshare", "setns", "clone", "clone3", "bpf", "fsmount"} <= gained
    assert allowed(without) <= allowed(with_admin)
    assert not rules_for(with_admin, "clone3")[0].get("errnoRet")
    assert all(not rule.get("args") for rule in rules_for(with_admin, "clone"))


def test_docker_default_by_arch_and_kernel() -> None:
    arm = pyrunc.docker_default_seccomp(DOCKER_CAPS, arch="aarch64", kernel=(6, 1))
    assert arm["architectures"] == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    assert "arch_prctl" not in allowed(arm) and "set_tls" in allowed(arm)
    old = pyrunc.docker_default_seccomp(DOCKER_CAPS, arch="amd64", kernel=(4, 7))
    assert "ptrace" not in allowed(old)  # includes.minKernel 4.8
    ptrace = pyrunc.docker_default_seccomp([*DOCKER_CAPS, "CAP_SYS_PTRACE"], arch="amd64", kernel=(4, 7))
    assert "ptrace" in allowed(ptrace)


@pytest.mark.parametrize("caps", [DOCKER_CAPS, [*DOCKER_CAPS, "CAP_SYS_ADMIN"]], ids=["docker", "sys-admin"])
def test_docker_default_is_valid_oci(caps: list[str]) -> None:
    config = default_spec().to_json()
    config["linux"]["seccomp"] = pyrunc.docker_default_seccomp(caps)  # type: ignore[index]
    validator = specs.runtime_spec_validator("config-schema.json")
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(config)]
    assert not errors, errors[:5]
    spec = RuntimeSpec.from_json(json.loads(json.dumps(config)))  # pyrunc reads it, and compiles it
    assert spec.linux is not None and len(_seccomp.build_filter(spec.linux.seccomp)) > 0
    # ... and the schema does look into linux.seccomp:
    config["linux"]["seccomp"]["syscalls"][0]["action"] = "SCMP_ACT_BOGUS"  # type: ignore[index]
    assert list(validator.iter_errors(config))


# -- features -----------------------------------------------------------------------------------


def test_features_report_seccomp() -> None:
    linux = features()["linux"]
    assert isinstance(linux, dict)
    seccomp = linux["seccomp"]
    assert seccomp["enabled"] is True
    assert "SCMP_ACT_NOTIFY" not in seccomp["actions"]
    assert {"SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_TRACE"} <= set(
        seccomp["actions"]
    )
    assert len(seccomp["operators"]) == 7
    assert {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64"} <= set(
        seccomp["archs"]
    )
    assert set(seccomp["supportedFlags"]) <= set(seccomp["knownFlags"])
