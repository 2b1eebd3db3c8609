"""linux.sysctl: a container sets exactly what runc's validator lets it set, in its own namespaces
(new or joined), never the host's; a key cannot reach outside /proc/sys, and the init writes into
nothing but the container's own procfs. Every end-to-end case checks that the host's values are as
they were."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pyrunc._errors import SpecError
from pyrunc._native.kernel import CloneFlags, OpKind
from pyrunc._plan.compile import compile_init
from pyrunc._spec.config import Namespace, RuntimeSpec, default_spec
from pyrunc._spec.readers import path_of_key

if TYPE_CHECKING:
    from collections.abc import Iterator

import pyrunc_tests_helpers as h

setting, sh = h.setting, h.sh

# What a container must never change on the host, read before and after each end-to-end case.
HOST_SYSCTLS = (
    "kernel/core_pattern",
    "kernel/printk_ratelimit",
    "kernel/shmmni",
    "kernel/msgmax",
    "kernel/domainname",
    "kernel/hostname",
    "fs/mqueue/msg_max",
    "net/ipv4/ip_forward",
    "net/ipv4/ip_unprivileged_port_start",
    "vm/swappiness",
)


def field(key: str) -> str:
    """How a message names the entry ``key`` of linux.sysctl."""
    return path_of_key("linux.sysctl", key)


def host_sysctls() -> dict[str, str]:
    return {key: Path("/proc/sys", key).read_text() for key in HOST_SYSCTLS}


# -- the rules, on the plan (no kernel) ------------------------------------------------------------


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    (tmp_path / "rootfs").mkdir()
    return tmp_path


def spec_with(
    sysctl: dict[str, str], *, without: tuple[str, ...] = (), joined: dict[str, str] | None = None
) -> RuntimeSpec:
    """runc's default spec (new pid, network, ipc, uts and mount namespaces) with ``sysctl``, less
    the namespaces ``without``, with those of ``joined`` (type -> path) joined."""
    spec = default_spec()
    assert spec.linux is not None and spec.process is not None
    namespaces = [ns for ns in spec.linux.namespaces if ns.type not in without]
    for kind, path in (joined or {}).items():
        namespaces = [*(ns for ns in namespaces if ns.type != kind), Namespace(type=kind, path=path)]
    return spec.replace(
        process=spec.process.replace(terminal=False),
        linux=spec.linux.replace(sysctl=sysctl, namespaces=namespaces),
        hostname=None if "uts" in without else spec.hostname,
    )


def refusal(spec: RuntimeSpec, bundle: Path) -> str:
    with pytest.raises(SpecError) as caught:
        compile_init(spec, bundle=str(bundle))
    return str(caught.value)


NOT_NAMESPACED = [
    "kernel.printk_ratelimit",
    "kernel.core_pattern",
    "kernel.modprobe",
    "kernel.sysrq",
    "vm.swappiness",
    "fs.file-max",
    "fs.mqueue",  # the prefix is fs.mqueue. and a name after it
    "net",  # likewise net.
    "kernel.shm_next_id",  # ipc-like, not in runc's list
    "dev.tty.ldisc_autoload",
    "user.max_user_namespaces",
]


@pytest.mark.parametrize("key", NOT_NAMESPACED)
def test_a_sysctl_of_no_namespace_is_refused(bundle: Path, key: str) -> None:
    message = refusal(spec_with({key: "1"}), bundle)
    assert message == f'{field(key)}: sysctl "{key}" is not in a separate kernel namespace'


@pytest.mark.parametrize(
    "key", ["kernel.msgmax", "kernel.sem", "kernel.shm_rmid_forced", "fs.mqueue.msg_max"]
)
def test_an_ipc_sysctl_needs_an_ipc_namespace(bundle: Path, key: str) -> None:
    message = refusal(spec_with({key: "1"}, without=("ipc",)), bundle)
    assert message == f'{field(key)}: sysctl "{key}" is not allowed in the hosts ipc namespace'
    compile_init(
        spec_with({key: "1"}, without=("ipc",), joined={"ipc": "/proc/self/ns/ipc"}), bundle=str(bundle)
    )


def test_a_net_sysctl_needs_a_network_namespace_of_its_own(bundle: Path) -> None:
    key = "net.ipv4.ip_forward"
    expected = f'{field(key)}: sysctl "{key}" not allowed in host network namespace'
    assert refusal(spec_with({key: "1"}, without=("network",)), bundle) == expected
    for own in ("/proc/self/ns/net", f"/proc/{os.getpid()}/ns/net", "/proc/thread-self/ns/net"):
        assert refusal(spec_with({key: "1"}, joined={"network": own}), bundle) == expected


def test_a_net_sysctl_with_a_netns_path_that_does_not_exist(bundle: Path, tmp_path: Path) -> None:
    missing = tmp_path / "no-netns"
    message = refusal(spec_with({"net.core.somaxconn": "1"}, joined={"network": str(missing)}), bundle)
    assert re.fullmatch(
        rf"linux\.namespaces\[\d\]\.path: invalid netns path: stat {missing}: No such file or directory",
        message,
    ), message


def test_kernel_hostname_is_the_hostname_fields(bundle: Path) -> None:
    message = refusal(spec_with({"kernel.hostname": "box"}), bundle)
    assert message == (
        'linux.sysctl["kernel.hostname"]: sysctl "kernel.hostname" is not allowed as it conflicts with '
        'the OCI "hostname" field'
    )
    message = refusal(spec_with({"kernel.hostname": "box"}, without=("uts",)), bundle)
    assert message.endswith('sysctl "kernel.hostname" is not in a separate kernel namespace')


def test_kernel_domainname_needs_a_uts_namespace(bundle: Path) -> None:
    compile_init(spec_with({"kernel.domainname": "example"}), bundle=str(bundle))
    message = refusal(spec_with({"kernel.domainname": "example"}, without=("uts",)), bundle)
    assert message.endswith('sysctl "kernel.domainname" is not in a separate kernel namespace')


ESCAPES = [
    "net/../kernel/core_pattern",
    "net.ipv4.../../..",
    "net.ipv4.conf.all.forwarding/../../../../kernel/core_pattern",
    "net./../kernel.core_pattern",
    "net.//.kernel.core_pattern",
    "net/./ipv4/ip_forward",
    "/net/ipv4/ip_forward",
    "net..ipv4.ip_forward",
    "net.ipv4.ip_forward.",
    "fs.mqueue.../../kernel/core_pattern",
    "kernel.shmmni/..",
    "",
]


@pytest.mark.parametrize("key", ESCAPES)
def test_a_key_cannot_leave_proc_sys(bundle: Path, key: str) -> None:
    message = refusal(spec_with({key: "|/tmp/pwn"}), bundle)
    assert message.startswith(f"{field(key)}: ") and "not a sysctl name" in message, message


@pytest.mark.parametrize(
    ("key", "path"),
    [
        ("kernel.shmmni", "kernel/shmmni"),
        ("kernel/shm_rmid_forced", "kernel/shm_rmid_forced"),
        ("fs.mqueue.msg_max", "fs/mqueue/msg_max"),
        ("net.ipv4.ip_forward", "net/ipv4/ip_forward"),
        ("net/ipv4/ip_forward", "net/ipv4/ip_forward"),
        ("net.ipv4.conf.eth0/100.rp_filter", "net/ipv4/conf/eth0.100/rp_filter"),
        ("net/ipv4/conf/eth0.100/rp_filter", "net/ipv4/conf/eth0.100/rp_filter"),
        ("kernel.domainname", "kernel/domainname"),
    ],
)
def test_an_allowed_key_is_written_below_proc_sys(bundle: Path, key: str, path: str) -> None:
    plan = compile_init(spec_with({key: "1"}), bundle=str(bundle))
    (op,) = [op for op in plan.ops if op.kind == OpKind.SYSCTL]
    assert (op.args["path"], op.args["text"]) == (path, "1")
    assert not [op for op in plan.ops if op.kind == OpKind.WRITE_FILE and "/proc/sys" in str(op.args["path"])]


# -- on the kernel ---------------------------------------------------------------------------------


@pytest.fixture
def rt(pyrunc_bin: Path, pyrunc_root: Path) -> Iterator[Any]:
    runtime = h.Runtime(pyrunc_bin, pyrunc_root)
    before = host_sysctls()
    yield runtime
    runtime.cleanup()
    assert host_sysctls() == before


def refused_run(rt: Any, tmp_path: Path, *edits: Any) -> str:
    """``run`` a bundle with ``edits``: one line on stderr, exit status 1; the message."""
    container_id = rt.new_id()
    bundle = h.make_bundle(h.next_bundle_dir(tmp_path), ["true"], *edits)
    with h.subreaper(), h.nothing_left_behind(rt.root, container_id):
        result = rt.run(bundle, container_id)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    return str(result.stderr.strip())


def run_ok(rt: Any, tmp_path: Path, script: str, *edits: Any) -> str:
    result = h.run_container(rt, tmp_path, sh(script), *edits)
    assert result.returncode == 0, result.stderr
    return str(result.stdout)


@pytest.mark.parametrize(
    "sysctl",
    [
        {"kernel.printk_ratelimit": "6"},
        {"kernel.core_pattern": "|/tmp/pwn"},
        {"vm.swappiness": "1"},
        {"net/../kernel/core_pattern": "|/tmp/pwn"},
        {"net.ipv4.../../..": "x"},
        {"kernel.hostname": "pwned"},
    ],
    ids=lambda sysctl: next(iter(sysctl)),
)
def test_refused_end_to_end(rt: Any, tmp_path: Path, sysctl: dict[str, str]) -> None:
    (key,) = sysctl
    message = refused_run(rt, tmp_path, setting("linux.sysctl", sysctl))
    assert message.startswith(f"{field(key)}: ")


def test_ipc_and_net_sysctls_without_their_namespaces_end_to_end(rt: Any, tmp_path: Path) -> None:
    message = refused_run(
        rt, tmp_path, setting("linux.sysctl", {"kernel.shmmni": "100"}), h.without_namespace("ipc")
    )
    assert message.endswith('sysctl "kernel.shmmni" is not allowed in the hosts ipc namespace')
    message = refused_run(
        rt, tmp_path, setting("linux.sysctl", {"net.ipv4.ip_forward": "1"}), h.without_namespace("network")
    )
    assert message.endswith('sysctl "net.ipv4.ip_forward" not allowed in host network namespace')


def _other(value: str, *choices: str) -> str:
    """The first of ``choices`` that differs from ``value``: the test then sees where it was written."""
    return next(choice for choice in choices if choice != value.strip())


def test_allowed_sysctls_are_set_in_the_containers_own_namespaces(rt: Any, tmp_path: Path) -> None:
    host = host_sysctls()
    wanted = {
        "kernel.shmmni": _other(host["kernel/shmmni"], "1000", "1001"),
        "kernel/msgmax": _other(host["kernel/msgmax"], "4096", "4097"),
        "fs.mqueue.msg_max": _other(host["fs/mqueue/msg_max"], "20", "21"),
        "net/ipv4/ip_unprivileged_port_start": _other(
            host["net/ipv4/ip_unprivileged_port_start"], "80", "81"
        ),
        "kernel.domainname": "box.example",
    }
    files = (
        "kernel/shmmni kernel/msgmax fs/mqueue/msg_max net/ipv4/ip_unprivileged_port_start kernel/domainname"
    )
    out = run_ok(rt, tmp_path, f"cd /proc/sys && cat {files}", setting("linux.sysctl", wanted))
    assert out.split() == list(wanted.values())


def test_a_net_sysctl_in_a_joined_network_namespace(rt: Any, tmp_path: Path) -> None:
    """As the engine joins a network namespace it made (Docker sets ip_unprivileged_port_start so)."""
    key = "/proc/sys/net/ipv4/ip_unprivileged_port_start"
    with h.namespace_holder(CloneFlags.NEWNET) as holder:
        value = _other(holder.read(key), "0", "1")
        out = run_ok(
            rt,
            tmp_path,
            f"cat {key}",
            setting("linux.sysctl", {"net.ipv4.ip_unprivileged_port_start": value}),
            h.without_namespace("network"),
            h.appending("linux.namespaces", {"type": "network", "path": holder.ns("net")}),
        )
        assert out.strip() == value
        assert holder.read(key).strip() == value  # the joined namespace's own value


def test_a_net_sysctl_in_the_hosts_network_namespace_joined_by_path(rt: Any, tmp_path: Path) -> None:
    message = refused_run(
        rt,
        tmp_path,
        setting("linux.sysctl", {"net.ipv4.ip_forward": "1"}),
        h.without_namespace("network"),
        h.appending("linux.namespaces", {"type": "network", "path": f"/proc/{os.getpid()}/ns/net"}),
    )
    assert message.endswith('sysctl "net.ipv4.ip_forward" not allowed in host network namespace')


def test_an_ipc_sysctl_in_a_joined_ipc_namespace(rt: Any, tmp_path: Path) -> None:
    with h.namespace_holder(CloneFlags.NEWIPC) as holder:
        value = _other(holder.read("/proc/sys/kernel/shmmni"), "1000", "1001")
        out = run_ok(
            rt,
            tmp_path,
            "cat /proc/sys/kernel/shmmni",
            setting("linux.sysctl", {"kernel.shmmni": value}),
            h.without_namespace("ipc"),
            h.appending("linux.namespaces", {"type": "ipc", "path": holder.ns("ipc")}),
        )
        assert out.strip() == value == holder.read("/proc/sys/kernel/shmmni").strip()


def test_not_written_through_a_mount_over_proc_sys(rt: Any, tmp_path: Path) -> None:
    """A bind mount of a host file placed over a sysctl: the init writes into procfs or nothing."""
    decoy = tmp_path / "decoy"
    decoy.write_text("untouched\n")
    mount = {
        "destination": "/proc/sys/net/ipv4/ip_forward",
        "type": "bind",
        "source": str(decoy),
        "options": ["bind"],
    }
    message = refused_run(
        rt, tmp_path, h.appending("mounts", mount), setting("linux.sysctl", {"net.ipv4.ip_forward": "1"})
    )
    assert message.startswith("write sysctl net.ipv4.ip_forward=1: ") and "/proc/sys" in message, message
    assert decoy.read_text() == "untouched\n"


def test_not_written_into_a_proc_that_is_not_procfs(rt: Any, tmp_path: Path) -> None:
    """No proc mount: the rootfs's own /proc/sys is a plain directory, never written."""
    bundle = h.make_bundle(
        h.next_bundle_dir(tmp_path),
        ["true"],
        setting("linux.sysctl", {"net.ipv4.ip_forward": "1"}),
        lambda config: config.update(mounts=[m for m in config["mounts"] if m["destination"] != "/proc"]),
    )
    fake = bundle / "rootfs/proc/sys/net/ipv4/ip_forward"
    fake.parent.mkdir(parents=True)
    fake.write_text("untouched\n")
    result = rt.run(bundle)
    assert result.returncode == 1 and result.stderr.startswith("write sysctl net.ipv4.ip_forward=1: "), (
        result.stderr
    )
    assert fake.read_text() == "untouched\n"
