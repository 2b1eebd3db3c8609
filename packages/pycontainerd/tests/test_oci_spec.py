"""Container specs (pycontainerd.oci): Docker's defaults, the opts, user resolution in the image,
seccomp resolved against the final capabilities, and the specs run for real by pyrunc."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pyrunc_acceptance_specs as specs  # registered by conftest.py
import pytest

import pyrunc
from pycontainerd._errors import InvalidArgumentError, NotFoundError
from pycontainerd._images import ImageConfig
from pycontainerd.oci import (
    ContainerMount,
    SpecContext,
    SpecOpt,
    all_capabilities,
    generate_spec,
    resolve_user,
    with_annotations,
    with_args,
    with_capabilities,
    with_cgroups_path,
    with_cpu_shares,
    with_cpus,
    with_cwd,
    with_env,
    with_host_namespace,
    with_hostname,
    with_image_config,
    with_memory_limit,
    with_mounts,
    with_namespace_path,
    with_no_new_privileges,
    with_pids_limit,
    with_privileged,
    with_readonly_rootfs,
    with_rootfs,
    with_seccomp,
    with_tty,
    with_user,
)
from pyrunc.testing import make_busybox_bundle

PYRUNC = Path(sys.executable).parent / "pyrunc"
DOCKER_MASKED = (
    "/proc/acpi",
    "/proc/asound",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/sys/devices/virtual/powercap",
    "/sys/firmware",
)
DOCKER_READONLY = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]

PASSWD = """\
root:x:0:0:root:/root:/bin/sh
app:x:1000:1000:app:/home/app:/bin/sh
# a comment, then a user whose primary group is not in /etc/group
ghost:x:1001:4242::/home/ghost:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
"""
GROUP = """\
root:x:0:
tty:x:5:app
staff:x:50:app,ghost
app:x:1000:
audio:x:63:ghost
nogroup:x:65534:
"""


# -- helpers --------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def validator() -> jsonschema.Draft4Validator:
    """The OCI runtime-spec's config-schema.json (vendored in the repository's spec/)."""
    return specs.runtime_spec_validator("config-schema.json")


def assert_valid(validator: jsonschema.Draft4Validator, spec: dict[str, Any]) -> None:
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(spec)]
    assert not errors, "\n".join(errors)
    pyrunc.RuntimeSpec.from_json(spec)


def make_rootfs(root: Path, passwd: str | None = PASSWD, group: str | None = GROUP) -> Path:
    (root / "etc").mkdir(parents=True)
    if passwd is not None:
        (root / "etc/passwd").write_text(passwd)
    if group is not None:
        (root / "etc/group").write_text(group)
    return root


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    return make_rootfs(tmp_path / "rootfs")


@pytest.fixture
def context(rootfs: Path) -> SpecContext:
    return SpecContext(id="0123456789abcdef0123", namespace="testing", rootfs=rootfs)


def seccomp_allows(spec: dict[str, Any], syscall: str) -> bool:
    return any(
        syscall in rule["names"] and rule["action"] == "SCMP_ACT_ALLOW" and not rule.get("args")
        for rule in spec["linux"]["seccomp"]["syscalls"]
    )


def cap_mask(caps: list[str] | tuple[str, ...]) -> int:
    numbers = {name: number for number, name in enumerate(pyrunc.features()["linux"]["capabilities"])}  # type: ignore[index]
    return sum(1 << numbers[cap] for cap in caps)


# -- Docker's defaults ----------------------------------------------------------------------------


def test_default_spec_is_dockers(context: SpecContext, validator: jsonschema.Draft4Validator) -> None:
    spec = generate_spec(context, with_args(["sh"]))
    assert_valid(validator, spec)
    process = spec["process"]
    assert process["args"] == ["sh"]
    assert process["env"] == ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
    assert (process["cwd"], process["user"], process["terminal"]) == ("/", {"uid": 0, "gid": 0}, False)
    caps = process["capabilities"]
    for kind in ("bounding", "effective", "permitted"):
        assert sorted(caps[kind]) == sorted(pyrunc.DOCKER_CAPABILITIES)
    assert caps["inheritable"] == [] and "ambient" not in caps
    assert "rlimits" not in process and "apparmorProfile" not in process
    assert (process["noNewPrivileges"], process["oomScoreAdj"]) == (False, 0)
    assert spec["root"] == {"path": "rootfs", "readonly": False}
    assert spec["hostname"] == "0123456789ab"
    mounts = {m["destination"]: m for m in spec["mounts"]}
    assert list(mounts) == ["/proc", "/dev", "/dev/pts", "/sys", "/sys/fs/cgroup", "/dev/mqueue", "/dev/shm"]
    assert "ro" in mounts["/sys"]["options"] and "ro" in mounts["/sys/fs/cgroup"]["options"]
    assert {"nosuid", "noexec", "nodev"} <= set(mounts["/proc"]["options"])
    assert "mode=755" in mounts["/dev"]["options"] and "size=65536k" in mounts["/dev/shm"]["options"]
    linux = spec["linux"]
    assert sorted(ns["type"] for ns in linux["namespaces"]) == ["ipc", "mount", "network", "pid", "uts"]
    assert not any("path" in ns for ns in linux["namespaces"])
    assert sorted(linux["maskedPaths"]) == sorted(DOCKER_MASKED)
    assert sorted(linux["readonlyPaths"]) == sorted(DOCKER_READONLY)
    assert linux["cgroupsPath"] == "/pycontainerd/testing/0123456789abcdef0123"
    rules = [
        (r["allow"], r.get("type"), r.get("major"), r.get("minor"), r["access"])
        for r in linux["resources"]["devices"]
    ]
    assert rules[0] == (False, None, None, None, "rwm")
    assert {(major, minor) for allow, _, major, minor, _ in rules[1:] if allow} == {
        (1, 3),
        (1, 5),
        (1, 8),
        (1, 9),
        (5, 0),
        (5, 1),
    }
    assert (False, "c", 10, 229, "rwm") in rules
    assert linux["seccomp"] == pyrunc.docker_default_seccomp(pyrunc.DOCKER_CAPABILITIES)
    assert linux["seccomp"]["defaultAction"] == "SCMP_ACT_ERRNO"
    assert not seccomp_allows(spec, "mount") and not seccomp_allows(spec, "unshare")


def test_every_opt_together_gives_a_valid_spec(
    context: SpecContext, validator: jsonschema.Draft4Validator, tmp_path: Path
) -> None:
    spec = generate_spec(
        context,
        with_args(["sh", "-c", "true"]),
        with_env(["A=1"]),
        with_user("app:staff"),
        with_cwd("/tmp//x/"),
        with_mounts(
            [
                ContainerMount("/data", str(tmp_path), options=("ro",)),
                {"destination": "/run", "type": "tmpfs"},
            ]
        ),
        with_memory_limit(64 << 20),
        with_pids_limit(20),
        with_cpu_shares(512),
        with_cpus(0.5),
        with_capabilities(add=["net_admin"], drop=["CAP_MKNOD"]),
        with_tty(rows=24, cols=80),
        with_hostname("web"),
        with_namespace_path("network", "/proc/1/ns/net"),
        with_readonly_rootfs(),
        with_rootfs("/srv/rootfs"),
        with_cgroups_path("pycontainerd/web"),
        with_annotations({"org.example.role": "web"}),
        with_no_new_privileges(),
    )
    assert_valid(validator, spec)
    process = spec["process"]
    assert process["env"][1:] == ["A=1", "HOME=/home/app", "TERM=xterm"]
    assert process["user"] == {"uid": 1000, "gid": 50}
    assert (process["cwd"], process["terminal"], process["consoleSize"]) == (
        "/tmp/x",
        True,
        {"height": 24, "width": 80},
    )
    assert "CAP_NET_ADMIN" in process["capabilities"]["effective"]
    assert "CAP_MKNOD" not in process["capabilities"]["bounding"]
    assert process["noNewPrivileges"] is True
    assert spec["root"] == {"path": "/srv/rootfs", "readonly": True}
    assert spec["hostname"] == "web"
    assert spec["annotations"] == {"org.example.role": "web"}
    mounts = {m["destination"]: m for m in spec["mounts"]}
    assert mounts["/data"] == {
        "destination": "/data",
        "type": "bind",
        "source": str(tmp_path),
        "options": ["rbind", "ro", "rprivate"],
    }
    assert mounts["/run"] == {"destination": "/run", "type": "tmpfs", "source": "tmpfs", "options": []}
    linux = spec["linux"]
    assert {"type": "network", "path": "/proc/1/ns/net"} in linux["namespaces"]
    assert linux["cgroupsPath"] == "pycontainerd/web"
    resources = linux["resources"]
    assert resources["memory"] == {"limit": 64 << 20}
    assert resources["pids"] == {"limit": 20}
    assert resources["cpu"] == {"shares": 512, "quota": 50_000, "period": 100_000}


def test_privileged_lifts_dockers_restrictions(
    context: SpecContext, validator: jsonschema.Draft4Validator
) -> None:
    spec = generate_spec(context, with_args(["sh"]), with_privileged())
    assert_valid(validator, spec)
    caps = spec["process"]["capabilities"]
    assert caps["bounding"] == caps["effective"] == caps["permitted"] == list(all_capabilities())
    assert set(pyrunc.DOCKER_CAPABILITIES) < set(caps["bounding"])
    linux = spec["linux"]
    assert "seccomp" not in linux and "maskedPaths" not in linux and "readonlyPaths" not in linux
    assert linux["resources"]["devices"] == [{"allow": True, "access": "rwm"}]
    paths = {d["path"] for d in linux["devices"]}
    assert "/dev/null" not in paths  # the runtime makes it: listing it too would create it twice
    assert all(d["type"] in ("b", "c") and d["path"].startswith("/dev/") for d in linux["devices"])
    mounts = {m["destination"]: m for m in spec["mounts"]}
    assert "ro" not in mounts["/sys"]["options"] and "ro" not in mounts["/sys/fs/cgroup"]["options"]


def test_all_capabilities_are_those_this_host_can_grant() -> None:
    with open("/proc/self/status") as f:
        bounding = next(int(line.split()[1], 16) for line in f if line.startswith("CapBnd:"))
    assert cap_mask(all_capabilities()) == bounding


# -- seccomp against the final capabilities -------------------------------------------------------


def test_seccomp_is_resolved_after_the_capabilities_change(context: SpecContext) -> None:
    spec = generate_spec(context, with_args(["sh"]), with_capabilities(add=["SYS_ADMIN"]))
    assert seccomp_allows(spec, "mount") and seccomp_allows(spec, "unshare") and seccomp_allows(spec, "setns")
    assert spec["linux"]["seccomp"] == pyrunc.docker_default_seccomp(
        spec["process"]["capabilities"]["bounding"]
    )
    clone3 = [rule for rule in spec["linux"]["seccomp"]["syscalls"] if "clone3" in rule["names"]]
    assert all(rule["action"] == "SCMP_ACT_ALLOW" for rule in clone3)
    default = generate_spec(context, with_args(["sh"]))
    assert any(
        rule.get("errnoRet") == 38
        for rule in default["linux"]["seccomp"]["syscalls"]
        if "clone3" in rule["names"]
    )


def test_dropping_a_capability_drops_its_syscalls(context: SpecContext) -> None:
    assert seccomp_allows(generate_spec(context, with_args(["sh"])), "chroot")
    spec = generate_spec(context, with_args(["sh"]), with_capabilities(drop=["sys_chroot"]))
    assert not seccomp_allows(spec, "chroot")


def test_capabilities_follow_dockers_add_and_drop(context: SpecContext) -> None:
    def bounding(*opts: SpecOpt) -> list[str]:
        caps: list[str] = generate_spec(context, with_args(["sh"]), *opts)["process"]["capabilities"][
            "bounding"
        ]
        return caps

    assert bounding(with_capabilities(drop=["ALL"], add=["chown", "Cap_Kill"])) == ["CAP_CHOWN", "CAP_KILL"]
    assert bounding(with_capabilities(add=["ALL"], drop=["CHOWN"])) == [
        c for c in all_capabilities() if c != "CAP_CHOWN"
    ]
    assert bounding(with_capabilities(add=["KILL"], drop=["KILL"])).count("CAP_KILL") == 1
    assert bounding(with_privileged(), with_capabilities(drop=["SYS_ADMIN"])) == [
        c for c in all_capabilities() if c != "CAP_SYS_ADMIN"
    ]


def test_an_explicit_profile_or_none_is_kept(context: SpecContext) -> None:
    profile = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mount"], "action": "SCMP_ACT_ERRNO"}],
    }
    spec = generate_spec(
        context, with_args(["sh"]), with_seccomp(profile), with_capabilities(add=["SYS_ADMIN"])
    )
    assert spec["linux"]["seccomp"] == profile
    spec = generate_spec(context, with_args(["sh"]), with_seccomp(None), with_capabilities(add=["SYS_ADMIN"]))
    assert "seccomp" not in spec["linux"]


# -- process opts ---------------------------------------------------------------------------------


def image_config(**config: Any) -> ImageConfig:
    return ImageConfig.from_json(
        {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": []},
            "config": config,
        }
    )


def test_image_config_gives_env_args_cwd_and_user(context: SpecContext) -> None:
    config = image_config(
        Env=["PATH=/opt/bin:/bin", "LANG=C.UTF-8"],
        Entrypoint=["/bin/sh", "-c"],
        Cmd=["echo hi"],
        WorkingDir="/srv",
        User="app",
    )
    spec = generate_spec(context, with_image_config(config), with_env(["LANG=fr_FR.UTF-8", "X=1"]))
    process = spec["process"]
    assert process["args"] == ["/bin/sh", "-c", "echo hi"]
    assert process["env"] == ["PATH=/opt/bin:/bin", "LANG=fr_FR.UTF-8", "HOME=/home/app", "X=1"]
    assert process["cwd"] == "/srv"
    assert process["user"] == {"uid": 1000, "gid": 1000, "additionalGids": [5, 50]}
    replaced = generate_spec(context, with_image_config(config), with_args(["ls", "-l"]))
    assert replaced["process"]["args"] == ["ls", "-l"]


def test_a_container_without_a_command_is_refused(context: SpecContext) -> None:
    with pytest.raises(
        InvalidArgumentError, match="no command: the image config has neither Entrypoint nor Cmd"
    ):
        generate_spec(context, with_image_config(image_config(Env=["A=1"])))


def test_env_replaces_the_same_key_and_appends_others(context: SpecContext) -> None:
    spec = generate_spec(
        context, with_args(["sh"]), with_env(["PATH=/bin", "A=1", "A=2", "B="]), with_env(["A=3"])
    )
    assert spec["process"]["env"] == ["PATH=/bin", "A=3", "B="]


def test_home_from_the_env_is_kept(context: SpecContext) -> None:
    spec = generate_spec(context, with_args(["sh"]), with_env(["HOME=/work"]), with_user("app"))
    assert "HOME=/work" in spec["process"]["env"] and "HOME=/home/app" not in spec["process"]["env"]


def test_tty_off_removes_the_console_size(context: SpecContext) -> None:
    spec = generate_spec(context, with_args(["sh"]), with_tty(rows=10, cols=20), with_tty(False))
    assert spec["process"]["terminal"] is False and "consoleSize" not in spec["process"]


# -- users ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user", "uid", "gid", "groups", "home"),
    [
        ("app", 1000, 1000, (5, 50), "/home/app"),
        ("1000", 1000, 1000, (5, 50), "/home/app"),  # a uid in passwd is that user
        ("app:staff", 1000, 50, (), "/home/app"),  # an explicit group: no supplementary groups
        ("app:63", 1000, 63, (), "/home/app"),
        ("app:777", 1000, 777, (), "/home/app"),  # a gid the group file lacks is used as is
        ("ghost", 1001, 4242, (50, 63), "/home/ghost"),
        ("0:0", 0, 0, (), "/root"),
        ("root", 0, 0, (), "/root"),
        ("5000", 5000, 0, (), "/"),  # a uid passwd lacks: gid 0, home /
        ("5000:audio", 5000, 63, (), "/"),
        ("nobody:nogroup", 65534, 65534, (), "/nonexistent"),
    ],
)
def test_users_resolve_as_docker_does(
    context: SpecContext, user: str, uid: int, gid: int, groups: tuple[int, ...], home: str
) -> None:
    resolved = resolve_user(context.rootfs, user)
    assert (resolved.uid, resolved.gid, resolved.additional_gids, resolved.home) == (uid, gid, groups, home)
    process = generate_spec(context, with_args(["id"]), with_user(user))["process"]
    assert process["user"] == {"uid": uid, "gid": gid, **({"additionalGids": list(groups)} if groups else {})}
    assert f"HOME={home}" in process["env"]


@pytest.mark.parametrize(
    ("user", "error", "message"),
    [
        (
            "nosuchuser",
            NotFoundError,
            r"no user 'nosuchuser' in the image's /etc/passwd \(.*/rootfs/etc/passwd\)",
        ),
        (
            "app:nosuchgroup",
            NotFoundError,
            r"no group 'nosuchgroup' in the image's /etc/group \(.*/etc/group\)",
        ),
        ("1000:nosuchgroup", NotFoundError, r"no group 'nosuchgroup'"),
        ("app:", InvalidArgumentError, r"'app:' is not of the form user\[:group\]"),
        (":app", InvalidArgumentError, r"':app' is not of the form user\[:group\]"),
        ("a:b:c", InvalidArgumentError, r"'a:b:c' is not of the form user\[:group\]"),
        ("99999999999", InvalidArgumentError, r"uid '99999999999' of '99999999999' is out of range"),
    ],
)
def test_bad_users_are_refused_with_the_user_and_the_file(
    context: SpecContext, user: str, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match="with_user: " + message):
        generate_spec(context, with_args(["id"]), with_user(user))


def test_an_image_without_passwd_takes_numeric_users_only(tmp_path: Path) -> None:
    rootfs = make_rootfs(tmp_path / "bare", passwd=None, group=None)
    assert resolve_user(rootfs, "123:456").uid == 123
    with pytest.raises(NotFoundError, match="no user 'app'"):
        resolve_user(rootfs, "app")


def test_passwd_symlinked_out_of_the_rootfs_stays_in_the_rootfs(tmp_path: Path) -> None:
    outside = tmp_path / "host-etc"
    outside.mkdir()
    (outside / "passwd").write_text("evil:x:0:0::/:/bin/sh\n")
    rootfs = make_rootfs(tmp_path / "rootfs", passwd=None)
    (rootfs / "etc/real").write_text("inner:x:1234:1234::/home/inner:/bin/sh\n")
    for target in (
        "../../host-etc/passwd",
        str(outside / "passwd"),
        "/../../../../../../" + str(outside / "passwd"),
    ):
        (rootfs / "etc/passwd").unlink(missing_ok=True)
        (rootfs / "etc/passwd").symlink_to(target)
        with pytest.raises(NotFoundError, match="no user 'evil'"):
            resolve_user(rootfs, "evil")
    # An absolute link is followed inside the rootfs, ``..`` stops at its top.
    for target in ("/etc/real", "../../../../etc/real", "/../etc/./real"):
        (rootfs / "etc/passwd").unlink()
        (rootfs / "etc/passwd").symlink_to(target)
        assert resolve_user(rootfs, "inner").uid == 1234


def test_etc_symlinked_to_the_hosts_etc_is_not_read(tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    (rootfs / "etc").symlink_to("/etc")  # resolves to rootfs/etc itself: a loop
    with pytest.raises(InvalidArgumentError, match="too many levels of symbolic links"):
        resolve_user(rootfs, "root")
    (rootfs / "etc").unlink()
    (rootfs / "etc").symlink_to(str(tmp_path / "elsewhere"))
    with pytest.raises(NotFoundError, match="no user 'root'"):
        resolve_user(rootfs, "root")


def test_the_rootfs_is_mounted_when_an_opt_first_reads_it(tmp_path: Path) -> None:
    rootfs = make_rootfs(tmp_path / "rootfs")
    calls: list[int] = []
    context = SpecContext(id="c1", namespace="testing", rootfs=rootfs, mount=lambda: calls.append(1))
    generate_spec(context, with_args(["id"]))
    assert calls == []  # no user: nothing reads the rootfs
    spec = generate_spec(context, with_args(["id"]), with_user("app"), with_user("0"))
    assert calls == [1]  # once, however many opts read it
    assert spec["process"]["user"]["uid"] == 0
    assert context == SpecContext(id="c1", namespace="testing", rootfs=rootfs)


def test_a_missing_rootfs_is_named(tmp_path: Path) -> None:
    context = SpecContext(id="c1", namespace="testing", rootfs=tmp_path / "gone")
    with pytest.raises(NotFoundError, match=f"the container's rootfs {tmp_path}/gone is not a directory"):
        generate_spec(context, with_args(["id"]), with_user("app"))


def test_a_passwd_that_is_not_a_file_is_refused(tmp_path: Path) -> None:
    rootfs = make_rootfs(tmp_path / "rootfs", passwd=None)
    (rootfs / "etc/passwd").mkdir()
    with pytest.raises(InvalidArgumentError, match=r"/etc/passwd in .*: not a regular file"):
        resolve_user(rootfs, "app")


# -- bad arguments --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: with_args([]), InvalidArgumentError, "with_args: args is empty"),
        (
            lambda: with_args("ls -l"),
            InvalidArgumentError,
            "with_args: args must be a list of strings, not the string",
        ),
        (
            lambda: with_args(["ls", 3]),  # type: ignore[list-item]
            InvalidArgumentError,
            r"with_args: args\[1\] is int 3, not a string",
        ),
        (
            lambda: with_env(["NOVALUE"]),
            InvalidArgumentError,
            r"with_env: env\[0\] 'NOVALUE' is not of the form KEY=VALUE",
        ),
        (lambda: with_env(["=x"]), InvalidArgumentError, r"with_env: env\[0\] '=x' is not of the form"),
        (
            lambda: with_cwd("relative"),
            InvalidArgumentError,
            "with_cwd: the working directory 'relative' is not an absolute path",
        ),
        (lambda: with_user(""), InvalidArgumentError, "with_user: the user must be a non-empty string"),
        (
            lambda: with_memory_limit(1024),
            InvalidArgumentError,
            "with_memory_limit: the limit in bytes must be an integer of at least 6291456, not 1024",
        ),
        (
            lambda: with_pids_limit(0),
            InvalidArgumentError,
            "with_pids_limit: the limit must be an integer of at least 1, not 0",
        ),
        (lambda: with_pids_limit(True), InvalidArgumentError, "with_pids_limit: .* not True"),
        (
            lambda: with_cpu_shares(1),
            InvalidArgumentError,
            "with_cpu_shares: the shares must be an integer from 2 to 262144, not 1",
        ),
        (lambda: with_cpus(0), InvalidArgumentError, "with_cpus: 0 is out of range: this host has 0.01 to"),
        (lambda: with_cpus(10_000.0), InvalidArgumentError, "with_cpus: 10000.0 is out of range"),
        (
            lambda: with_capabilities(add=["FLY"]),
            InvalidArgumentError,
            "with_capabilities: unknown capability 'FLY' in add",
        ),
        (
            lambda: with_capabilities(drop="KILL"),
            InvalidArgumentError,
            "with_capabilities: drop must be a list of capability names",
        ),
        (lambda: with_tty(rows=10), InvalidArgumentError, "with_tty: give both rows and cols or neither"),
        (
            lambda: with_tty(False, rows=1, cols=1),
            InvalidArgumentError,
            "with_tty: a console size needs a terminal",
        ),
        (
            lambda: with_tty(rows=0, cols=80),
            InvalidArgumentError,
            "with_tty: rows must be an integer from 1 to 65535, not 0",
        ),
        (lambda: with_hostname("x" * 65), InvalidArgumentError, "with_hostname: 'x{65}' is not a hostname"),
        (
            lambda: with_host_namespace("net"),
            InvalidArgumentError,
            "with_host_namespace: unknown namespace 'net'",
        ),
        (
            lambda: with_host_namespace("mount"),
            InvalidArgumentError,
            "with_host_namespace: a container cannot share the host's mount namespace",
        ),
        (
            lambda: with_namespace_path("network", "ns/net"),
            InvalidArgumentError,
            "with_namespace_path: the network namespace path 'ns/net' is not an absolute path",
        ),
        (lambda: with_rootfs(""), InvalidArgumentError, "with_rootfs: '' is not a path"),
        (lambda: with_cgroups_path("/"), InvalidArgumentError, "with_cgroups_path: '/' is not a cgroup path"),
        (
            lambda: with_annotations({"k": 1}),  # type: ignore[dict-item]
            InvalidArgumentError,
            "with_annotations: 'k': 1: keys must be non-empty strings",
        ),
        (
            lambda: with_seccomp({"syscalls": []}),
            InvalidArgumentError,
            "with_seccomp: the profile must be a linux.seccomp object with a defaultAction",
        ),
        (
            lambda: with_mounts([ContainerMount("/data", "/no/such/dir")]),
            NotFoundError,
            "with_mounts: mount on /data: bind source /no/such/dir does not exist on the host",
        ),
        (
            lambda: with_mounts([ContainerMount("data", "/tmp")]),
            InvalidArgumentError,
            "with_mounts: mount destination 'data' is not an absolute path",
        ),
        (
            lambda: with_mounts([ContainerMount("/data", "tmp")]),
            InvalidArgumentError,
            "with_mounts: mount on /data: bind source 'tmp' is not an absolute path",
        ),
        (
            lambda: with_mounts([{"destination": "/x", "type": "tmpfs", "readonly": True}]),
            InvalidArgumentError,
            r"with_mounts: mount .* has unsupported keys \['readonly'\]",
        ),
        (
            lambda: with_mounts([{"type": "tmpfs"}]),
            InvalidArgumentError,
            "with_mounts: mount .* has no destination string",
        ),
        (
            lambda: with_mounts([ContainerMount("/x", type="tmpfs"), ContainerMount("/x/", type="tmpfs")]),
            InvalidArgumentError,
            "with_mounts: more than one mount on /x",
        ),
    ],
)
def test_bad_arguments_are_refused_when_the_opt_is_made(
    make: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        make()


def test_a_hostname_needs_a_uts_namespace(context: SpecContext) -> None:
    spec = generate_spec(context, with_args(["sh"]), with_host_namespace("uts"))
    assert "hostname" not in spec and "uts" not in [ns["type"] for ns in spec["linux"]["namespaces"]]
    with pytest.raises(
        InvalidArgumentError, match="hostname 'web' needs a UTS namespace of the container's own"
    ):
        generate_spec(context, with_args(["sh"]), with_host_namespace("uts"), with_hostname("web"))


def test_a_mount_replaces_the_default_on_its_destination(context: SpecContext) -> None:
    shm = ContainerMount("/dev/shm", type="tmpfs", options=("size=1g",))
    spec = generate_spec(context, with_args(["sh"]), with_mounts([shm]))
    shms = [m for m in spec["mounts"] if m["destination"] == "/dev/shm"]
    assert shms == [{"destination": "/dev/shm", "type": "tmpfs", "source": "tmpfs", "options": ["size=1g"]}]


def test_an_oci_bind_mount_dict_keeps_its_options(context: SpecContext, tmp_path: Path) -> None:
    raw = {
        "destination": "/data",
        "type": "none",
        "source": str(tmp_path),
        "options": ["bind", "ro", "rslave"],
    }
    spec = generate_spec(context, with_args(["sh"]), with_mounts([raw]))
    assert spec["mounts"][-1] == {**raw, "type": "bind"}


# -- end to end: the specs run by pyrunc ----------------------------------------------------------

PROBE = r"""
echo "id=$(id)"
echo "pwd=$(pwd)"
echo "hostname=$(hostname)"
grep -E '^(CapEff|CapBnd|Seccomp):' /proc/self/status | tr -d '\t' | sed 's/:/=/'
for p in /proc/keys /proc/timer_list /proc/kcore /proc/sched_debug; do
  [ -e "$p" ] && echo "masked $p=$(cat $p 2>&1 | wc -c)"
done
echo "firmware=$(ls /sys/firmware | wc -l)"
if echo x > /proc/sys/kernel/domainname 2>/dev/null; then echo procsys=rw; else echo procsys=ro; fi
if mount -t tmpfs probe /mnt 2>/dev/null; then echo mount=ok; else echo mount=refused; fi
env | sort | sed 's/^/env /'
"""


@pytest.fixture(scope="module")
def busybox_rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    bundle = make_busybox_bundle(tmp_path_factory.mktemp("oci") / "bundle", ["true"])
    rootfs = bundle / "rootfs"
    (rootfs / "etc/group").write_text("root:x:0:\ntty:x:5:app\nstaff:x:50:app\napp:x:1000:\n")
    (rootfs / "work").mkdir()
    (rootfs / "mnt").mkdir()
    return rootfs


def run_spec(
    tmp_path: Path, rootfs: Path, *opts: SpecOpt, name: str = "oci-spec-test"
) -> dict[str, list[str]]:
    """Run the spec made of ``opts`` with ``pyrunc run`` (cgroup below ours: the runtime's default)
    and return the probe's ``key=value`` lines as lists of values per key."""
    context = SpecContext(id=f"{name}-{os.getpid()}", namespace="testing", rootfs=rootfs)
    spec = generate_spec(
        context, with_args(["sh", "-c", PROBE]), *opts, with_rootfs(str(rootfs)), with_cgroups_path(None)
    )
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "config.json").write_text(json.dumps(spec))
    state = tmp_path / "state"
    result = subprocess.run(
        [str(PYRUNC), "--root", str(state), "run", "--bundle", str(bundle), context.id],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    # Nothing of the container is left; the root keeps its compiled seccomp programs.
    assert [entry.name for entry in state.iterdir()] in ([], ["@seccomp"])
    out: dict[str, list[str]] = {}
    for line in result.stdout.splitlines():
        key, _, value = line.partition("=")
        out.setdefault(key, []).append(value)
    return out


def test_a_default_container_has_dockers_security(tmp_path: Path, busybox_rootfs: Path) -> None:
    out = run_spec(
        tmp_path, busybox_rootfs, with_user("app"), with_cwd("/work"), with_env(["GREETING=hi there"])
    )
    assert out["id"] == ["uid=1000(app) gid=1000(app) groups=5(tty),50(staff)"]
    assert out["pwd"] == ["/work"]
    assert out["hostname"] == ["oci-spec-tes"]
    assert int(out["CapBnd"][0], 16) == cap_mask(pyrunc.DOCKER_CAPABILITIES)
    assert int(out["CapEff"][0], 16) == 0  # a non-root user keeps none in effect, as under Docker
    assert out["Seccomp"] == ["2"]
    assert out["env GREETING"] == ["hi there"] and out["env HOME"] == ["/home/app"]
    assert out["procsys"] == ["ro"] and out["mount"] == ["refused"] and out["firmware"] == ["0"]
    masked = {key: value for key, value in out.items() if key.startswith("masked ")}
    assert masked and all(value == ["0"] for value in masked.values()), masked


def test_a_default_root_container_has_dockers_14_capabilities(tmp_path: Path, busybox_rootfs: Path) -> None:
    out = run_spec(tmp_path, busybox_rootfs, with_hostname("probe"))
    assert out["id"] == ["uid=0(root) gid=0(root)"]
    assert int(out["CapEff"][0], 16) == int(out["CapBnd"][0], 16) == cap_mask(pyrunc.DOCKER_CAPABILITIES)
    assert out["Seccomp"] == ["2"] and out["hostname"] == ["probe"] and out["mount"] == ["refused"]


def test_sys_admin_lets_mount_through_dockers_seccomp_profile(tmp_path: Path, busybox_rootfs: Path) -> None:
    out = run_spec(tmp_path, busybox_rootfs, with_capabilities(add=["SYS_ADMIN"]))
    assert out["Seccomp"] == ["2"] and out["mount"] == ["ok"]
    assert int(out["CapEff"][0], 16) == cap_mask([*pyrunc.DOCKER_CAPABILITIES, "CAP_SYS_ADMIN"])


def test_a_privileged_container_has_every_capability_and_no_filter(
    tmp_path: Path, busybox_rootfs: Path
) -> None:
    out = run_spec(tmp_path, busybox_rootfs, with_privileged())
    assert int(out["CapEff"][0], 16) == cap_mask(all_capabilities())
    assert out["Seccomp"] == ["0"] and out["procsys"] == ["rw"] and out["mount"] == ["ok"]
    assert int(out["firmware"][0]) > 0 or not os.listdir("/sys/firmware")
    assert out["masked /proc/timer_list"] != ["0"]
