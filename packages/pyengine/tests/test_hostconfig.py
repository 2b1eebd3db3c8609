"""Config and HostConfig into the OCI spec (pyengine._spec): the option → spec mapping and the
refusals as unit tests, then end to end through the real docker CLI, checking inside the container
what each option did."""

from __future__ import annotations

import json
import os
import secrets
import socket
from pathlib import Path
from typing import Any

import attrs
import pytest

from pycontainerd import oci
from pyengine import DaemonConfig
from pyengine._errors import InvalidParameter
from pyengine._spec import Donor, Host, Plan, hostname_of, mount_points, translate

TYPE_CHECKING = False
if TYPE_CHECKING:
    from conftest import DockerCLI

CID = "c0ffee" * 10 + "abcd"
HOST = Host(
    hostname="hosthost",
    hosts="127.0.0.1 localhost\n10.1.1.1 build\n",
    resolv_conf="# comment\nnameserver 127.0.0.53\nnameserver ::1\nnameserver 10.9.9.9\nsearch example.com\n",
    cpu_count=2,
    cpus=frozenset({0, 1}),
    mems=frozenset({0}),
    swap_limit=True,
    init="/usr/bin/tini-static",
)


def no_donor(name: str) -> Donor:
    raise AssertionError(f"no container is joined here: {name}")


def plan_of(host_config: dict[str, Any], host: Host = HOST, **config: Any) -> Plan:
    body = {**config, "HostConfig": host_config}
    return translate(
        body, ["sh"], container_id=CID, hostname=hostname_of(body, CID, host), host=host, donor=no_donor
    )


def spec_of(plan: Plan, tmp_path: Path) -> dict[str, Any]:
    directory = tmp_path / "ctr"
    directory.mkdir(exist_ok=True)
    for name, content in plan.files.items():
        (directory / name).write_text(content)
    rootfs = tmp_path / "rootfs"
    (rootfs / "etc").mkdir(parents=True, exist_ok=True)
    (rootfs / "etc/group").write_text("root:x:0:\naudio:x:29:\n")
    return oci.generate_spec(oci.SpecContext(CID[:24], "moby", rootfs), *plan.spec_opts(directory))


def mounts_by_destination(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["destination"]: m for m in spec["mounts"]}


# -- unit: the mapping ---------------------------------------------------------------------------------


def test_resources_map_as_dockerd_maps_them(tmp_path: Path) -> None:
    spec = spec_of(
        plan_of(
            {
                "Memory": 64 << 20,
                "NanoCpus": 500_000_000,
                "CpuShares": 1,
                "CpusetCpus": "1",
                "PidsLimit": 30,
                "Ulimits": [{"Name": "nofile", "Soft": 100, "Hard": 200}],
                "CgroupParent": "/pyengine-parent",
            }
        ),
        tmp_path,
    )
    linux = spec["linux"]
    assert linux["resources"]["memory"] == {
        "limit": 64 << 20,
        "swap": 128 << 20,
    }  # dockerd: swap = 2 x memory
    assert linux["resources"]["cpu"] == {"quota": 50_000, "period": 100_000, "shares": 2, "cpus": "1"}
    assert linux["resources"]["pids"] == {"limit": 30}
    assert linux["cgroupsPath"] == f"/pyengine-parent/{CID}"
    assert spec["process"]["rlimits"] == [{"type": "RLIMIT_NOFILE", "hard": 200, "soft": 100}]
    unlimited = spec_of(plan_of({"Memory": 64 << 20, "MemorySwap": -1, "PidsLimit": -1}), tmp_path)
    assert unlimited["linux"]["resources"]["memory"]["swap"] == -1
    assert "pids" not in unlimited["linux"]["resources"]
    no_swap = plan_of({"Memory": 64 << 20}, host=attrs.evolve(HOST, swap_limit=False))
    assert no_swap.warnings == [
        "Your kernel does not support swap limit capabilities or the cgroup is not mounted. "
        "Memory limited without swap."
    ]


def test_security_maps_as_dockerd_maps_it(tmp_path: Path) -> None:
    spec = spec_of(
        plan_of(
            {
                "CapAdd": ["sys_admin"],
                "CapDrop": ["CAP_NET_RAW", "mknod"],
                "SecurityOpt": ["no-new-privileges"],
            }
        ),
        tmp_path,
    )
    bounding = spec["process"]["capabilities"]["bounding"]
    assert "CAP_SYS_ADMIN" in bounding and "CAP_NET_RAW" not in bounding and "CAP_MKNOD" not in bounding
    assert spec["process"]["noNewPrivileges"] is True
    assert ["mount"] in [r["names"][:1] for r in spec["linux"]["seccomp"]["syscalls"]] or any(
        "mount" in r["names"] for r in spec["linux"]["seccomp"]["syscalls"]
    )  # SYS_ADMIN's syscalls: the profile follows the capabilities
    only = spec_of(plan_of({"CapDrop": ["ALL"], "CapAdd": ["CHOWN"]}), tmp_path)
    assert only["process"]["capabilities"]["bounding"] == ["CAP_CHOWN"]
    privileged = spec_of(
        plan_of({"Privileged": True, "CapDrop": ["ALL"], "SecurityOpt": ["seccomp={}"]}), tmp_path
    )
    assert "CAP_SYS_ADMIN" in privileged["process"]["capabilities"]["bounding"]  # drops ignored, as dockerd
    assert "seccomp" not in privileged["linux"]
    unconfined = spec_of(
        plan_of({"SecurityOpt": ["seccomp=unconfined", "no-new-privileges=false"]}), tmp_path
    )
    assert "seccomp" not in unconfined["linux"] and unconfined["process"]["noNewPrivileges"] is False
    profile = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}],
    }
    custom = spec_of(plan_of({"SecurityOpt": [f"seccomp={json.dumps(profile)}"]}), tmp_path)
    assert custom["linux"]["seccomp"]["syscalls"] == [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]
    readonly = spec_of(plan_of({"ReadonlyRootfs": True}), tmp_path)
    assert readonly["root"]["readonly"] is True
    assert "ro" in mounts_by_destination(readonly)["/etc/hosts"]["options"]


def test_namespaces_and_the_etc_files(tmp_path: Path) -> None:
    default = plan_of({"ShmSize": 32 << 20, "ExtraHosts": ["db:10.0.0.5", "v6=::1"]}, Hostname="web")
    assert default.files == {
        "hostname": "web\n",
        "hosts": (
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n"
            "ff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n"
            "10.0.0.5\tdb\n::1\tv6\n"  # its own address is written when it starts, on a bridge
        ),
        # Local nameservers dropped: the container cannot reach the host's loopback.
        "resolv.conf": "# comment\nnameserver 10.9.9.9\nsearch example.com\n",
    }
    spec = spec_of(default, tmp_path)
    mounts = mounts_by_destination(spec)
    assert mounts["/etc/hosts"] == {
        "destination": "/etc/hosts",
        "type": "bind",
        "source": str(tmp_path / "ctr/hosts"),
        "options": ["rbind", "rprivate"],
    }
    assert mounts["/dev/shm"]["options"] == ["nosuid", "noexec", "nodev", "mode=1777", f"size={32 << 20}"]
    assert spec["hostname"] == "web"
    host = plan_of({"NetworkMode": "host", "PidMode": "host", "IpcMode": "host", "UTSMode": "host"})
    assert host.files == {"hostname": "hosthost\n", "hosts": HOST.hosts, "resolv.conf": HOST.resolv_conf}
    host_spec = spec_of(host, tmp_path)
    assert [ns["type"] for ns in host_spec["linux"]["namespaces"]] == ["mount"]
    assert (
        "hostname" not in host_spec and mounts_by_destination(host_spec)["/dev/shm"]["source"] == "/dev/shm"
    )
    only_local = plan_of(
        {"NetworkMode": "none"}, host=attrs.evolve(HOST, resolv_conf="nameserver 127.0.0.1\n")
    )
    assert only_local.files["resolv.conf"] == "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"
    assert "web" not in only_local.files["hosts"] and CID[:12] not in only_local.files["hosts"]
    # On a user-defined network: the embedded DNS server, the host's search list, ndots:0; --dns
    # is then the server's upstream, not the container's nameserver.
    body = {"HostConfig": {"Dns": ["10.1.1.1"], "DnsOptions": ["timeout:2"]}}
    user = translate(body, ["sh"], container_id=CID, hostname="x", host=HOST, donor=no_donor, network="user")
    assert user.files["resolv.conf"] == (
        "# comment\nsearch example.com\nnameserver 127.0.0.11\noptions timeout:2 ndots:0\n"
    )
    bridge = translate(
        body, ["sh"], container_id=CID, hostname="x", host=HOST, donor=no_donor, network="bridge"
    )
    assert (
        bridge.files["resolv.conf"]
        == "# comment\nsearch example.com\nnameserver 10.1.1.1\noptions timeout:2\n"
    )
    body = {"HostConfig": {"ExtraHosts": ["gw:host-gateway"]}}
    gateway = translate(
        body, ["sh"], container_id=CID, hostname="x", host=HOST, donor=no_donor, host_gateway="172.17.0.1"
    )
    assert gateway.files["hosts"].endswith("172.17.0.1\tgw\n")


def test_joining_a_container_uses_its_namespaces(tmp_path: Path) -> None:
    donor_files = tmp_path / "donor"
    donor_files.mkdir()
    for name in ("hostname", "hosts", "resolv.conf"):
        (donor_files / name).write_text("")

    def donor(name: str) -> Donor:
        return Donor(
            id=CID,
            pid=4242,
            ipc_mode="shareable" if name == "shared" else "private",
            directory=str(donor_files),
        )

    body = {"HostConfig": {"PidMode": "container:web", "IpcMode": "container:shared"}}
    plan = translate(body, ["sh"], container_id=CID, hostname="x", host=HOST, donor=donor)
    namespaces = spec_of(plan, tmp_path)["linux"]["namespaces"]
    assert {"type": "pid", "path": "/proc/4242/ns/pid"} in namespaces
    assert {"type": "ipc", "path": "/proc/4242/ns/ipc"} in namespaces
    # the network's: its namespace and its hostname, hosts and resolv.conf files
    body = {"HostConfig": {"NetworkMode": "container:web"}}
    plan = translate(
        body, ["sh"], container_id=CID, hostname="x", host=HOST, donor=donor, network="container"
    )
    spec = spec_of(plan, tmp_path)
    assert {"type": "network", "path": "/proc/4242/ns/net"} in spec["linux"]["namespaces"]
    assert mounts_by_destination(spec)["/etc/resolv.conf"]["source"] == f"{donor_files}/resolv.conf"
    assert plan.files == {}
    with pytest.raises(
        InvalidParameter, match=r"container web: non-shareable IPC \(hint: use IpcMode:shareable"
    ):
        translate(
            {"HostConfig": {"IpcMode": "container:web"}},
            ["sh"],
            container_id=CID,
            hostname="x",
            host=HOST,
            donor=donor,
        )


def test_mounts_binds_tmpfs_init_and_inspects_view(tmp_path: Path) -> None:
    host_config = {
        "Binds": [f"{tmp_path}:/data:ro", f"{tmp_path}/made:/made", f"{tmp_path}:/shared:rshared"],
        "Mounts": [
            {"Type": "bind", "Source": str(tmp_path), "Target": "/rw"},
            {"Type": "tmpfs", "Target": "/t2", "TmpfsOptions": {"SizeBytes": 2 << 20, "Mode": 0o1770}},
        ],
        "Tmpfs": {"/scratch": "size=1m,exec"},
        "Devices": [{"PathOnHost": "/dev/null", "PathInContainer": "/dev/xnull", "CgroupPermissions": "rwm"}],
        "GroupAdd": ["audio", "1234"],
        "Init": True,
    }
    plan = plan_of(host_config)
    assert plan.make_dirs == [f"{tmp_path}/made"]
    (tmp_path / "made").mkdir()
    spec = spec_of(plan, tmp_path)
    mounts = mounts_by_destination(spec)
    assert mounts["/data"]["options"] == ["rbind", "rprivate", "ro"]
    assert mounts["/shared"]["options"] == ["rbind", "rshared"]
    assert mounts["/rw"]["options"] == ["rbind", "rprivate"]
    assert mounts["/scratch"] == {
        "destination": "/scratch",
        "type": "tmpfs",
        "source": "tmpfs",
        "options": ["nosuid", "nodev", "size=1m", "exec"],
    }
    assert mounts["/t2"]["options"] == ["noexec", "nosuid", "nodev", "size=2m", "mode=1770"]
    assert mounts["/sbin/docker-init"] == {
        "destination": "/sbin/docker-init",
        "type": "bind",
        "source": "/usr/bin/tini-static",
        "options": ["bind", "ro", "rprivate"],
    }
    assert spec["process"]["args"] == ["/sbin/docker-init", "--", "sh"]
    assert spec["process"]["user"]["additionalGids"] == [29, 1234]
    assert spec["linux"]["devices"][-1]["path"] == "/dev/xnull"
    assert mount_points(host_config) == [
        {
            "Type": "bind",
            "Source": str(tmp_path),
            "Destination": "/data",
            "Mode": "ro",
            "RW": False,
            "Propagation": "rprivate",
        },
        {
            "Type": "bind",
            "Source": f"{tmp_path}/made",
            "Destination": "/made",
            "Mode": "",
            "RW": True,
            "Propagation": "rprivate",
        },
        {
            "Type": "bind",
            "Source": str(tmp_path),
            "Destination": "/shared",
            "Mode": "rshared",
            "RW": True,
            "Propagation": "rshared",
        },
        {
            "Type": "bind",
            "Source": str(tmp_path),
            "Destination": "/rw",
            "Mode": "",
            "RW": True,
            "Propagation": "rprivate",
        },
        {"Type": "tmpfs", "Source": "", "Destination": "/t2", "Mode": "", "RW": True, "Propagation": ""},
    ]


@pytest.mark.parametrize(
    ("host_config", "message"),
    [
        (
            {"Mounts": [{"Type": "bind", "Source": "/no/such/dir", "Target": "/x"}]},
            'invalid mount config for type "bind": bind source path does not exist: /no/such/dir',
        ),
        ({"Mounts": [{"Type": "bind", "Source": "/tmp"}]}, 'type "bind": field Target must not be empty'),
        (
            {"Mounts": [{"Type": "tmpfs", "Source": "x", "Target": "/x"}]},
            'type "tmpfs": field Source must not be specified',
        ),
        ({"Binds": ["/tmp:/x:rx"]}, "invalid mode: rx"),
        ({"Binds": ["/tmp:x"]}, "invalid mount path: 'x' mount path must be absolute"),
        ({"Binds": ["/tmp:/x", "/var:/x"]}, "Duplicate mount point: /x"),
        ({"Memory": 1 << 20}, "Minimum memory limit allowed is 6MB"),
        ({"MemorySwap": 64 << 20}, "You should always set the Memory limit when using Memoryswap limit"),
        (
            {"Memory": 64 << 20, "MemorySwap": 32 << 20},
            "Minimum memoryswap limit should be larger than memory limit",
        ),
        ({"NanoCpus": 3 * 10**9}, r"Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available"),
        ({"CpusetCpus": "5"}, "Requested CPUs are not available - requested 5, available: 0,1"),
        ({"CpusetCpus": "a"}, "Invalid value a for cpuset cpus"),
        ({"CapAdd": ["FLY"]}, 'unknown capability: "CAP_FLY"'),
        (
            {"SecurityOpt": ["apparmor=unconfined"]},
            "apparmor= is not supported by pyengine: this host has no AppArmor",
        ),
        ({"SecurityOpt": ["label=disable"]}, "label= is not supported by pyengine: this host has no SELinux"),
        ({"SecurityOpt": ["seccomp={"]}, "Decoding seccomp profile failed"),
        ({"SecurityOpt": ["bogus"]}, 'invalid --security-opt 1: "bogus"'),
        ({"SecurityOpt": ["no-new-privileges=maybe"]}, 'invalid --security-opt 2: "no-new-privileges=maybe"'),
        ({"UTSMode": "container:x"}, "invalid UTS mode: container:x"),
        ({"IpcMode": "none"}, "HostConfig.IpcMode 'none' is not supported by pyengine yet"),
        (
            {
                "Devices": [
                    {"PathOnHost": "/dev/nosuch", "PathInContainer": "/dev/x", "CgroupPermissions": "rwm"}
                ]
            },
            'error gathering device information while adding custom device "/dev/nosuch": no such file or '
            "directory",
        ),
        ({"ExtraHosts": ["gw:host-gateway"]}, "host-gateway: the engine has no default bridge"),
        ({"ExtraHosts": ["db:nope"]}, 'invalid IP address in add-host: "nope"'),
        ({"Ulimits": [{"Name": "files", "Soft": 1, "Hard": 1}]}, "unknown resource limit 'files'"),
    ],
)
def test_refusals_name_what_is_wrong_in_dockerds_words(host_config: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidParameter, match=message):
        plan_of(host_config)


def test_without_an_init_binary_init_stays_refused() -> None:
    with pytest.raises(InvalidParameter, match=r"HostConfig\.Init: no docker-init on this machine"):
        plan_of({"Init": True}, host=attrs.evolve(HOST, init=None))


def test_the_host_is_read_not_written() -> None:
    before = Path("/etc/resolv.conf").read_bytes()
    host = Host.read()
    assert host.hostname == socket.gethostname() and host.cpu_count == os.cpu_count()
    assert host.init is not None and os.path.basename(host.init) in ("tini-static", "docker-init")
    assert Path("/etc/resolv.conf").read_bytes() == before


# -- end to end through the docker CLI -----------------------------------------------------------------


def lines(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def test_binds_tmpfs_and_the_etc_files(loaded: DockerCLI, scratch: Path, config: DaemonConfig) -> None:
    shared = scratch / "shared"
    shared.mkdir()
    (shared / "f").write_text("from the host\n")
    rw = scratch / "rw"
    rw.mkdir()
    made = scratch / "made" / "deep"
    script = (
        "echo f=$(cat /data/f); touch /data/x 2>/dev/null && echo ro=no || echo ro=yes;"
        "echo written > /rw/out; echo made=$(ls -d /made);"
        "echo scratch=$(grep ' /scratch ' /proc/self/mountinfo | grep -o 'size=[0-9]*k');"
        "echo t2=$(grep ' /t2 ' /proc/self/mountinfo | grep -o 'size=[0-9]*k');"
        "echo shm=$(grep ' /dev/shm ' /proc/self/mountinfo | grep -o 'size=[0-9]*k');"
        "echo hostname=$(hostname) etc_hostname=$(cat /etc/hostname);"
        "echo hosts=$(grep -E 'db|web' /etc/hosts | tr '\\t\\n' ' ');"
        "echo resolv=$(grep -c nameserver /etc/resolv.conf)"
    )
    done = loaded(
        "run", "--name", "m", "--network", "none", "--hostname", "web",
        "-v", f"{shared}:/data:ro", "-v", f"{made}:/made",
        "--mount", f"type=bind,src={rw},dst=/rw",
        "--tmpfs", "/scratch:size=1m", "--mount", "type=tmpfs,dst=/t2,tmpfs-size=2m",
        "--shm-size", "32m", "--add-host", "db:10.0.0.5",
        "busybox", "sh", "-c", script,
    )  # fmt: skip
    out = lines(done.stdout)
    assert out["f"] == "from the host" and out["ro"] == "yes" and out["made"] == "/made"
    assert (out["scratch"], out["t2"], out["shm"]) == ("size=1024k", "size=2048k", "size=32768k")
    assert out["hostname"] == "web etc_hostname=web"
    assert out["hosts"].split() == ["10.0.0.5", "db"]  # --network none: no address for the hostname
    assert int(out["resolv"]) >= 1
    assert (rw / "out").read_text() == "written\n" and made.is_dir()
    inspected = json.loads(loaded("inspect", "m").stdout)[0]
    directory = config.data_root / "containers" / inspected["Id"]
    assert inspected["HostsPath"] == str(directory / "hosts")
    assert inspected["ResolvConfPath"] == str(directory / "resolv.conf")
    assert Path(inspected["HostnamePath"]).read_text() == "web\n"
    assert sorted(inspected["HostConfig"]["Binds"]) == [f"{made}:/made", f"{shared}:/data:ro"]
    assert inspected["HostConfig"]["Tmpfs"] == {"/scratch": "size=1m"}
    assert sorted(inspected["Mounts"], key=lambda m: m["Destination"]) == [
        {
            "Type": "bind",
            "Source": str(shared),
            "Destination": "/data",
            "Mode": "ro",
            "RW": False,
            "Propagation": "rprivate",
        },
        {
            "Type": "bind",
            "Source": str(made),
            "Destination": "/made",
            "Mode": "",
            "RW": True,
            "Propagation": "rprivate",
        },
        {
            "Type": "bind",
            "Source": str(rw),
            "Destination": "/rw",
            "Mode": "",
            "RW": True,
            "Propagation": "rprivate",
        },
        {"Type": "tmpfs", "Source": "", "Destination": "/t2", "Mode": "", "RW": True, "Propagation": ""},
    ]
    listed = loaded("ps", "-a", "--no-trunc", "--format", "{{.Mounts}}").stdout.strip()
    assert sorted(listed.split(",")) == sorted([str(shared), str(made), str(rw), ""])
    loaded("rm", "m")
    assert not directory.exists() and (shared / "f").exists()


def test_resources_reach_the_cgroups_and_the_rlimits(loaded: DockerCLI) -> None:
    parent = f"pyengine-test-{secrets.token_hex(4)}"
    try:
        container_id = loaded(
            "run", "-d", "--memory", "64m", "--memory-swap", "96m", "--cpus", "0.5", "--cpu-shares", "512",
            "--cpuset-cpus", "0", "--pids-limit", "50", "--ulimit", "nofile=100:200",
            "--cgroup-parent", f"/{parent}",
            "busybox", "sh", "-c", "echo soft=$(ulimit -n) hard=$(ulimit -Hn); sleep 100",
        ).stdout.strip()  # fmt: skip

        def cgroup(controller: str, name: str) -> str:
            return Path(f"/sys/fs/cgroup/{controller}/{parent}/{container_id}/{name}").read_text().strip()

        assert cgroup("memory", "memory.limit_in_bytes") == str(64 << 20)
        assert cgroup("memory", "memory.memsw.limit_in_bytes") == str(96 << 20)
        assert (cgroup("cpu", "cpu.cfs_quota_us"), cgroup("cpu", "cpu.cfs_period_us")) == ("50000", "100000")
        assert cgroup("cpu", "cpu.shares") == "512"
        assert cgroup("cpuset", "cpuset.cpus") == "0"
        assert cgroup("pids", "pids.max") == "50"
        for _ in range(50):
            logs = loaded("logs", container_id).stdout
            if logs:
                break
        assert logs == "soft=100 hard=200\n"
        loaded("rm", "-f", container_id)
        assert not Path(f"/sys/fs/cgroup/memory/{parent}/{container_id}").exists()
    finally:
        for controller in os.listdir("/sys/fs/cgroup"):
            path = Path(f"/sys/fs/cgroup/{controller}/{parent}")
            if path.is_dir():
                path.rmdir()


STATUS = "grep -E '^(CapEff|CapBnd|Seccomp|NoNewPrivs):' /proc/self/status | tr -d '\\t' | sed 's/:/=/'"


def test_capabilities_seccomp_and_privileges(loaded: DockerCLI, scratch: Path) -> None:
    def status(*options: str, extra: str = "true") -> dict[str, str]:
        return lines(
            loaded(
                "run", "--rm", "--network", "none", *options, "busybox", "sh", "-c", f"{STATUS}; {extra}"
            ).stdout
        )

    default = status()
    dropped = status("--cap-drop", "ALL", "--cap-add", "chown", "--security-opt", "no-new-privileges")
    assert int(dropped["CapBnd"], 16) == 1 and dropped["NoNewPrivs"] == "1" and dropped["Seccomp"] == "2"
    admin = status(
        "--cap-add", "CAP_SYS_ADMIN", "--cap-drop", "NET_RAW", extra="mount -t tmpfs t /tmp && echo mount=ok"
    )
    sys_admin, net_raw = 1 << 21, 1 << 13
    assert int(admin["CapEff"], 16) == (int(default["CapEff"], 16) | sys_admin) & ~net_raw
    assert admin["mount"] == "ok"
    privileged = status("--privileged")
    assert privileged["Seccomp"] == "0" and int(privileged["CapEff"], 16) > int(admin["CapEff"], 16)
    assert status("--security-opt", "seccomp=unconfined")["Seccomp"] == "0"
    profile = scratch / "profile.json"
    profile.write_text(
        json.dumps(
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}],
            }
        )
    )
    custom = status(
        "--security-opt",
        f"seccomp={profile}",
        extra="mkdir /x 2>/dev/null && echo mkdir=ok || echo mkdir=refused",
    )
    assert custom["Seccomp"] == "2" and custom["mkdir"] == "refused"
    readonly = status(
        "--read-only",
        extra="touch /x 2>/dev/null && echo write=ok || echo write=refused; touch /tmp/y 2>&1 | head -c0",
    )
    assert readonly["write"] == "refused"
    assert loaded("ps", "-a", "-q").stdout == ""


def test_namespaces_devices_groups_sysctls_and_init(loaded: DockerCLI) -> None:
    loaded("run", "-d", "--name", "donor", "--ipc", "shareable", "busybox", "sleep", "100")
    donor_pid = int(loaded("inspect", "donor", "--format", "{{.State.Pid}}").stdout)
    script = (
        "echo pids=$(ls /proc | grep -c '^[0-9]'); echo me=$(ls -d /proc/"
        + str(os.getpid())
        + " 2>/dev/null);"
        "echo nets=$(ls /sys/class/net | tr '\\n' ' '); echo hostname=$(hostname);"
        "echo ipc=$(readlink /proc/self/ns/ipc)"
    )
    host = lines(
        loaded(
            "run",
            "--rm",
            "--pid",
            "host",
            "--network",
            "host",
            "--uts",
            "host",
            "busybox",
            "sh",
            "-c",
            script,
        ).stdout
    )
    assert host["me"] == f"/proc/{os.getpid()}" and int(host["pids"]) > 10
    assert (
        host["nets"].split() == sorted(os.listdir("/sys/class/net"))
        and host["hostname"] == socket.gethostname()
    )
    joined = lines(
        loaded(
            "run",
            "--rm",
            "--pid",
            "container:donor",
            "--ipc",
            "container:donor",
            "busybox",
            "sh",
            "-c",
            script,
        ).stdout
    )
    assert joined["me"] == "" and joined["ipc"] == os.readlink(f"/proc/{donor_pid}/ns/ipc")
    assert "sleep" in loaded("run", "--rm", "--pid", "container:donor", "busybox", "ps", "-o", "comm").stdout
    alone = lines(
        loaded(
            "run", "--rm", "--network", "none", "--device", "/dev/null:/dev/xnull:rwm", "--group-add", "1234",
            "--sysctl", "net.ipv4.ip_forward=1", "--sysctl", "kernel.shm_rmid_forced=1", "--init",
            "busybox", "sh", "-c",
            script + "; echo groups=$(id -G); echo x > /dev/xnull && echo dev=ok; ls -l /dev/xnull | cut -c1;"
            "echo forward=$(cat /proc/sys/net/ipv4/ip_forward) rmid=$(cat /proc/sys/kernel/shm_rmid_forced);"
            "echo init=$(cat /proc/1/cmdline | tr '\\0' ' ')",
        ).stdout
    )  # fmt: skip
    assert alone["nets"].split() == ["lo"] and alone["me"] == "" and int(alone["pids"]) < 10
    assert alone["groups"].split() == ["0", "10", "1234"] or "1234" in alone["groups"].split()
    assert alone["dev"] == "ok" and alone["forward"] == "1 rmid=1"
    assert alone["init"].split()[:4] == ["/sbin/docker-init", "--", "sh", "-c"]
    refused = loaded("run", "--ipc", "container:donor-less", "busybox", "true", check=False)
    assert refused.returncode == 125 and "No such container: donor-less" in refused.stderr
    loaded("run", "-d", "--name", "private", "busybox", "sleep", "100")
    private = loaded("run", "--ipc", "container:private", "busybox", "true", check=False)
    assert "container private: non-shareable IPC" in private.stderr
    loaded("kill", "donor")
    loaded("wait", "donor")
    stopped = loaded("run", "--pid", "container:donor", "busybox", "true", check=False)
    assert stopped.returncode == 125 and "Container donor is not running" in stopped.stderr
    loaded("rm", "-f", "donor", "private")
    assert loaded("ps", "-a", "-q").stdout == ""


def test_a_refused_request_leaves_nothing(loaded: DockerCLI, config: DaemonConfig) -> None:
    def refused(*options: str) -> str:
        done = loaded("run", *options, "busybox", "true", check=False)
        assert done.returncode == 125, done.stderr
        return done.stderr

    missing = refused("--mount", "type=bind,src=/no/such/dir,dst=/x")
    assert (
        'invalid mount config for type \\"bind\\": bind source path does not exist: /no/such/dir' in missing
        or ('invalid mount config for type "bind": bind source path does not exist: /no/such/dir' in missing)
    )
    assert "bogus" in refused("--mount", "type=volume,src=vol,dst=/x,volume-opt=bogus=1")
    assert "this host has no AppArmor" in refused("--security-opt", "apparmor=unconfined")
    assert "Minimum memory limit allowed is 6MB" in refused("--memory", "1m")
    parent = f"pyengine-refused-{secrets.token_hex(4)}"
    assert "unknown capability" in refused("--cgroup-parent", parent, "--cap-add", "FLY")
    assert loaded("ps", "-a", "-q").stdout == ""
    assert [p.name for p in (config.data_root / "containers").iterdir()] == []
    assert [p.name for p in (config.data_root / "volumes").iterdir()] == []  # vol was not made
    assert not any(Path(f"/sys/fs/cgroup/{c}/{parent}").exists() for c in os.listdir("/sys/fs/cgroup"))


def test_docker_py_takes_the_same_options(loaded: DockerCLI, config: DaemonConfig, scratch: Path) -> None:
    import docker

    shared = scratch / "v"  # not the scratch directory itself: the engine's state is there
    shared.mkdir()
    (shared / "f").write_text("py\n")
    client = docker.DockerClient(base_url=config.hosts[0], version="auto")
    try:
        out = client.containers.run(
            "busybox",
            ["sh", "-c", "cat /v/f; ulimit -n; hostname; " + STATUS],
            remove=True,
            network_mode="none",
            volumes={str(shared): {"bind": "/v", "mode": "ro"}},
            ulimits=[docker.types.Ulimit(name="nofile", soft=64, hard=64)],
            cap_drop=["ALL"],
            hostname="pyhost",
            extra_hosts={"db": "10.0.0.9"},
        )
        assert out.decode().splitlines()[:4] == ["py", "64", "pyhost", "CapEff=0000000000000000"]
        created = client.containers.create("busybox", ["true"], name="created")
        with pytest.raises(docker.errors.APIError) as refused:
            client.containers.run("busybox", ["true"], pid_mode="container:created")
        assert (
            refused.value.status_code == 409
            and refused.value.explanation == "Container created is not running"
        )
        created.remove()
        assert client.containers.list(all=True) == []
    finally:
        client.close()
