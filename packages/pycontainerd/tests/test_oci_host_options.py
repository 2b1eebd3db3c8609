"""The spec opts for what ``docker run`` asks of the host: resource limits (rlimits, memory plus
swap, cpusets), sysctls, devices, supplementary groups and a seccomp profile in Docker's format.
Each gives a spec that the OCI schema and pyrunc's model take; pyengine's tests run them."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import jsonschema
import pyrunc_acceptance_specs as specs  # registered by conftest.py
import pytest

import pyrunc
from pycontainerd._errors import InvalidArgumentError, NotFoundError
from pycontainerd.oci import (
    RLIMIT_NAMES,
    SpecContext,
    generate_spec,
    with_additional_gids,
    with_args,
    with_capabilities,
    with_cpuset,
    with_devices,
    with_docker_seccomp,
    with_memory_limit,
    with_memory_swap,
    with_rlimits,
    with_sysctls,
    with_user,
)

GROUP = "root:x:0:\nstaff:x:50:app\naudio:x:63:\napp:x:1000:\n"
PASSWD = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n"


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft4Validator:
    return specs.runtime_spec_validator("config-schema.json")


@pytest.fixture
def context(tmp_path: Path) -> SpecContext:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/group").write_text(GROUP)
    (tmp_path / "etc/passwd").write_text(PASSWD)
    return SpecContext(id="0123456789abcdef0123", namespace="testing", rootfs=tmp_path)


def spec_of(context: SpecContext, validator: jsonschema.Draft4Validator, *opts: Any) -> dict[str, Any]:
    spec = generate_spec(context, with_args(["sh"]), *opts)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(spec)]
    assert not errors, "\n".join(errors)
    pyrunc.RuntimeSpec.from_json(spec)
    return spec


def test_rlimits_by_ulimit_or_kernel_name_replace_their_kind(
    context: SpecContext, validator: jsonschema.Draft4Validator
) -> None:
    spec = spec_of(
        context,
        validator,
        with_rlimits([("nofile", 100, 200), ("RLIMIT_CORE", 0, -1)]),
        with_rlimits([("NOFILE", 10, 20)]),
    )
    assert spec["process"]["rlimits"] == [
        {"type": "RLIMIT_CORE", "hard": 2**64 - 1, "soft": 0},
        {"type": "RLIMIT_NOFILE", "hard": 20, "soft": 10},
    ]
    assert "as" in RLIMIT_NAMES and "nofile" in RLIMIT_NAMES


def test_memory_swap_needs_a_memory_limit_below_it(
    context: SpecContext, validator: jsonschema.Draft4Validator
) -> None:
    spec = spec_of(context, validator, with_memory_limit(64 << 20), with_memory_swap(128 << 20))
    assert spec["linux"]["resources"]["memory"] == {"limit": 64 << 20, "swap": 128 << 20}
    unlimited = spec_of(context, validator, with_memory_limit(64 << 20), with_memory_swap(-1))
    assert unlimited["linux"]["resources"]["memory"]["swap"] == -1
    with pytest.raises(InvalidArgumentError, match="a swap limit needs a memory limit"):
        generate_spec(context, with_args(["sh"]), with_memory_swap(64 << 20))
    with pytest.raises(InvalidArgumentError, match=r"memory plus swap \(8388608\) is below the memory limit"):
        generate_spec(context, with_args(["sh"]), with_memory_limit(64 << 20), with_memory_swap(8 << 20))


def test_cpuset_sets_cpus_and_mems(context: SpecContext, validator: jsonschema.Draft4Validator) -> None:
    spec = spec_of(context, validator, with_cpuset("0-1,3"), with_cpuset(mems="0"))
    assert spec["linux"]["resources"]["cpu"] == {"cpus": "0-1,3", "mems": "0"}


def test_sysctls_merge(context: SpecContext, validator: jsonschema.Draft4Validator) -> None:
    spec = spec_of(
        context,
        validator,
        with_sysctls({"net.ipv4.ip_forward": "1", "kernel.shm_rmid_forced": "0"}),
        with_sysctls({"kernel.shm_rmid_forced": "1"}),
    )
    assert spec["linux"]["sysctl"] == {"net.ipv4.ip_forward": "1", "kernel.shm_rmid_forced": "1"}


def test_a_device_is_created_and_allowed(context: SpecContext, validator: jsonschema.Draft4Validator) -> None:
    spec = spec_of(context, validator, with_devices([("/dev/null", "/dev/xnull", "rw")]))
    info = os.stat("/dev/null")
    assert spec["linux"]["devices"] == [
        {
            "path": "/dev/xnull",
            "type": "c",
            "major": 1,
            "minor": 3,
            "fileMode": 0o666,
            "uid": info.st_uid,
            "gid": info.st_gid,
        }
    ]
    # After Docker's rules (deny all first): the allow comes last, so it wins.
    assert spec["linux"]["resources"]["devices"][-1] == {
        "allow": True,
        "type": "c",
        "major": 1,
        "minor": 3,
        "access": "rw",
    }


def test_additional_gids_by_name_or_number_follow_the_users_own(
    context: SpecContext, validator: jsonschema.Draft4Validator
) -> None:
    spec = spec_of(context, validator, with_user("app"), with_additional_gids(["audio", 4242, "50"]))
    assert spec["process"]["user"] == {"uid": 1000, "gid": 1000, "additionalGids": [50, 63, 4242]}
    with pytest.raises(
        NotFoundError, match="with_additional_gids: no group 'video' in the image's /etc/group"
    ):
        generate_spec(context, with_args(["sh"]), with_additional_gids(["video"]))


def test_numeric_groups_never_read_the_rootfs(tmp_path: Path) -> None:
    mounted: list[bool] = []
    context = SpecContext("c1", "testing", tmp_path / "absent", mount=lambda: mounted.append(True))
    spec = generate_spec(context, with_args(["sh"]), with_additional_gids([7]))
    assert spec["process"]["user"]["additionalGids"] == [7] and not mounted


PROFILE = {
    "defaultAction": "SCMP_ACT_ERRNO",
    "defaultErrnoRet": 1,
    "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]}],
    "syscalls": [
        {"names": ["read", "write", "exit_group"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
    ],
}


def test_a_docker_profile_is_resolved_against_the_final_capabilities(
    context: SpecContext, validator: jsonschema.Draft4Validator
) -> None:
    plain = spec_of(context, validator, with_docker_seccomp(PROFILE))["linux"]["seccomp"]
    assert [rule["names"] for rule in plain["syscalls"]] == [["read", "write", "exit_group"]]
    assert plain["defaultAction"] == "SCMP_ACT_ERRNO" and plain["defaultErrnoRet"] == 1
    if os.uname().machine == "x86_64":
        assert plain["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    admin = spec_of(
        context,
        validator,
        with_capabilities(add=["SYS_ADMIN"]),
        with_docker_seccomp(json.loads(json.dumps(PROFILE))),
    )
    assert ["mount"] in [rule["names"] for rule in admin["linux"]["seccomp"]["syscalls"]]


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (
            lambda: with_rlimits([("files", 1, 1)]),
            InvalidArgumentError,
            "with_rlimits: unknown resource limit 'files'",
        ),
        (
            lambda: with_rlimits([("nofile", 20, 10)]),
            InvalidArgumentError,
            r"with_rlimits: the soft limit of nofile \(20\) is above its hard limit \(10\)",
        ),
        (
            lambda: with_rlimits([("nofile", -2, 10)]),
            InvalidArgumentError,
            "the soft limit of nofile must be -1",
        ),
        (lambda: with_rlimits(["nofile"]), InvalidArgumentError, "is not a .name, soft, hard. tuple"),
        (lambda: with_memory_swap(1024), InvalidArgumentError, "with_memory_swap: the limit in bytes"),
        (
            lambda: with_cpuset("1-0"),
            InvalidArgumentError,
            "with_cpuset: cpus '1-0' is not a list like 0-2,4",
        ),
        (lambda: with_cpuset(mems="a"), InvalidArgumentError, "with_cpuset: mems 'a' is not a list"),
        (lambda: with_cpuset(), InvalidArgumentError, "with_cpuset: give cpus, mems or both"),
        (
            lambda: with_sysctls({"": "1"}),
            InvalidArgumentError,
            "with_sysctls: '': '1': keys must be sysctl names",
        ),
        (lambda: with_sysctls({"a.b": 1}), InvalidArgumentError, "with_sysctls: 'a.b': 1: keys must be"),
        (
            lambda: with_devices([("/dev/nosuch", "/dev/x", "rwm")]),
            NotFoundError,
            "with_devices: device '/dev/nosuch' does not exist on the host",
        ),
        (
            lambda: with_devices([("/etc/hostname", "/dev/x", "rwm")]),
            InvalidArgumentError,
            "with_devices: device '/etc/hostname' is not a device node",
        ),
        (
            lambda: with_devices([("/dev/null", "/dev/x", "rx")]),
            InvalidArgumentError,
            "permissions 'rx' are not some of r, w and m",
        ),
        (
            lambda: with_devices([("/dev/null", "x", "r")]),
            InvalidArgumentError,
            "container path 'x' is not an absolute",
        ),
        (
            lambda: with_additional_gids("audio"),
            InvalidArgumentError,
            "groups must be a list, not the string",
        ),
        (lambda: with_additional_gids(["a:b"]), InvalidArgumentError, "'a:b' is not a group name or gid"),
        (
            lambda: with_docker_seccomp({"syscalls": []}),
            InvalidArgumentError,
            "with_docker_seccomp: the profile is not a Docker seccomp profile",
        ),
        (
            lambda: with_docker_seccomp(
                {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"]}]}
            ),
            InvalidArgumentError,
            "a syscalls entry without an action",
        ),
    ],
)
def test_bad_arguments_are_refused_when_the_opt_is_made(
    make: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        make()
