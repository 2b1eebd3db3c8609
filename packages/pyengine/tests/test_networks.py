"""Networks end to end through the real docker CLI: the default bridge, user-defined networks with
their addresses and names, isolation, published ports, network modes, and dockerd's answers to bad
requests."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from typing import TYPE_CHECKING

import docker
import pytest
from pyroute2 import netns

from pyengine import Daemon

if TYPE_CHECKING:
    from conftest import DockerCLI


def links() -> set[str]:
    """The host's network interfaces but veths (those of exited containers go with their namespace,
    which the kernel tears down a little later)."""
    with open("/proc/net/dev") as dev:
        names = {line.split(":")[0].strip() for line in dev.readlines()[2:]}
    return {name for name in names if not name.startswith("veth")}


def run(cli: DockerCLI, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return cli("run", "--pull", "never", *args, check=check)


def http_get(host: str, path: str = "/hostname") -> str:
    """A shell line that prints the body of an HTTP GET, or nothing (busybox-static's wget crashes
    in the static C library's resolver: nc it is)."""
    return f"printf 'GET {path} HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {host} 80 | sed '1,/^\\r$/d'"


def inspect(cli: DockerCLI, name: str) -> dict[str, object]:
    found: dict[str, object] = json.loads(cli("inspect", name).stdout)[0]
    return found


def address_of(cli: DockerCLI, name: str, network: str) -> str:
    return str(
        json.loads(cli("inspect", name).stdout)[0]["NetworkSettings"]["Networks"][network]["IPAddress"]
    )


def hostname_of(cli: DockerCLI, name: str) -> str:
    return str(json.loads(cli("inspect", name).stdout)[0]["Config"]["Hostname"])


@contextlib.contextmanager
def bound_in(pid: int, kind: socket.SocketKind, port: int) -> Iterator[socket.socket]:
    """A socket bound to ``port`` in the network namespace of process ``pid`` (made by a thread
    that enters it: a namespace is per thread)."""
    made: list[socket.socket] = []

    def make() -> None:
        host = os.open("/proc/self/ns/net", os.O_RDONLY)
        target = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
        try:
            netns.setns(target, fork=False)
            try:
                sock = socket.socket(socket.AF_INET, kind)
                sock.bind(("0.0.0.0", port))
                made.append(sock)
            finally:
                netns.setns(host, fork=False)
        finally:
            os.close(host)
            os.close(target)

    thread = threading.Thread(target=make)
    thread.start()
    thread.join()
    assert made, "could not bind in the container's namespace"
    with made[0] as sock:
        yield sock


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_default_bridge_gives_an_address_and_a_way_out(engine: Daemon, loaded: DockerCLI) -> None:
    assert engine.config.bridge in links()
    network = json.loads(loaded("network", "inspect", "bridge").stdout)[0]
    subnet = network["IPAM"]["Config"][0]["Subnet"]
    gateway = network["IPAM"]["Config"][0]["Gateway"]
    script = f"ip -4 -o addr show eth0; ip route; ping -c1 -W2 {gateway} >/dev/null && echo ok"
    out = run(loaded, "--rm", "busybox", "sh", "-c", script).stdout
    assert "inet " in out and f"default via {gateway}" in out and out.endswith("ok\n"), out
    address = out.split("inet ")[1].split("/")[0]
    assert ipaddress.ip_address(address) in ipaddress.ip_network(subnet)


def test_a_container_on_the_default_bridge_reaches_a_server_on_the_bridge_address(
    engine: Daemon, loaded: DockerCLI
) -> None:
    gateway = json.loads(loaded("network", "inspect", "bridge").stdout)[0]["IPAM"]["Config"][0]["Gateway"]
    with socket.socket() as server:
        server.bind((gateway, 0))
        server.listen()
        port = server.getsockname()[1]
        client = subprocess.Popen(
            [loaded.binary, "-H", loaded.host, "run", "--rm", "--pull", "never", "busybox", "sh", "-c",
             f"echo hi from the container | nc -w 5 {gateway} {port}"],
            env=loaded.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        server.settimeout(30)
        connection, (peer, _) = server.accept()
        with connection:
            assert connection.makefile().readline() == "hi from the container\n"
        assert ipaddress.ip_address(peer) in ipaddress.ip_network(f"{gateway}/16", strict=False)
        assert client.wait(timeout=30) == 0


def test_user_networks_crud_and_dockerds_answers_to_bad_input(engine: Daemon, loaded: DockerCLI) -> None:
    before = links()
    created = loaded(
        "network",
        "create",
        "--subnet",
        "10.231.0.0/24",
        "--gateway",
        "10.231.0.254",
        "--label",
        "team=a",
        "front",
    ).stdout.strip()
    network = json.loads(loaded("network", "inspect", "front").stdout)[0]
    assert network["Id"] == created and network["Driver"] == "bridge" and network["Labels"] == {"team": "a"}
    assert network["IPAM"]["Config"] == [{"Subnet": "10.231.0.0/24", "Gateway": "10.231.0.254"}]
    assert f"br-{created[:12]}" in links()
    listed = loaded("network", "ls", "--format", "{{.Name}} {{.Driver}}").stdout.split("\n")
    assert {"bridge bridge", "host host", "none null", "front bridge"} <= set(listed)
    assert loaded("network", "ls", "-q", "--filter", "label=team=a").stdout.strip() == created[:12]
    assert loaded("network", "ls", "-q", "--filter", "type=custom").stdout.split() == [created[:12]]
    # dockerd's answers, and nothing made by a refused request
    for args, message in [
        (("--subnet", "10.231.0.128/25", "overlap"), "Pool overlaps with other one on this address space"),
        (("--subnet", "10.232.0.0/33", "badcidr"), "invalid CIDR address: 10.232.0.0/33"),
        (
            ("--subnet", "10.233.0.0/24", "--gateway", "10.9.9.9", "badgw"),
            "no matching subnet for gateway 10.9.9.9",
        ),
        (("front",), "network with name front already exists"),
        (("--driver", "host", "second-host"), 'only one instance of "host" network is allowed'),
    ]:
        done = loaded("network", "create", *args, check=False)
        assert done.returncode != 0 and message in done.stderr, (args, done.stderr)
    assert links() == before | {f"br-{created[:12]}"}
    assert len(loaded("network", "ls", "-q").stdout.split()) == 4  # bridge, host, none, front
    done = run(loaded, "--rm", "--network", "front", "--ip", "10.99.0.5", "busybox", "true", check=False)
    assert done.returncode != 0 and "does not belong to any of this network's subnets" in done.stderr
    # (through docker-py: the 20.10 CLI sends no endpoint for the default network, --ip and all)
    client = docker.APIClient(base_url=engine.config.hosts[0], version="1.44")
    config = client.create_networking_config(
        {"bridge": client.create_endpoint_config(ipv4_address="172.17.0.5")}
    )
    with pytest.raises(docker.errors.APIError) as refused:
        client.create_container("busybox", ["true"], networking_config=config)
    client.close()
    assert refused.value.status_code == 400
    assert "user specified IP address is supported on user defined networks only" in str(refused.value)
    loaded("network", "create", "--label", "keep=no", "unused")
    pruned = loaded("network", "prune", "-f", "--filter", "label=keep=no").stdout
    assert "unused" in pruned and "front" not in pruned
    loaded("network", "rm", "front")
    assert f"br-{created[:12]}" not in links()
    done = loaded("network", "rm", "front", check=False)
    # dockerd's 404 (the 20.10 CLI words it its own way)
    assert done.returncode != 0 and (
        "network front not found" in done.stderr or "No such network: front" in done.stderr
    )
    done = loaded("network", "rm", "bridge", check=False)
    assert "bridge is a pre-defined network and cannot be removed" in done.stderr


def test_containers_on_a_network_reach_each_other_and_not_another_network(
    engine: Daemon, loaded: DockerCLI
) -> None:
    loaded("network", "create", "--subnet", "10.241.0.0/24", "one")
    loaded("network", "create", "--subnet", "10.242.0.0/24", "two")
    server = ("busybox", "httpd", "-f", "-p", "80", "-h", "/etc")
    run(loaded, "-d", "--name", "server", "--network", "one", "--ip", "10.241.0.10", *server)
    run(loaded, "-d", "--name", "other", "--network", "two", *server)
    other = address_of(loaded, "other", "two")
    script = f"{http_get('10.241.0.10')}; {http_get(other)} | grep . || echo isolated"
    out = run(loaded, "--rm", "--network", "one", "busybox", "sh", "-c", script).stdout
    assert out.split() == [hostname_of(loaded, "server"), "isolated"], out
    done = loaded("network", "rm", "one", check=False)
    assert done.returncode != 0 and "has active endpoints" in done.stderr
    # connected to both, a container reaches both
    loaded("network", "connect", "two", "server")
    networks = json.loads(loaded("inspect", "server").stdout)[0]["NetworkSettings"]["Networks"]
    assert set(networks) == {"one", "two"} and networks["two"]["IPAddress"].startswith("10.242.0.")
    out = loaded("exec", "server", "sh", "-c", f"{http_get(other)}; ip -o -4 addr").stdout
    assert out.startswith(hostname_of(loaded, "other"))
    assert "eth1" in out and "10.242.0." in out
    loaded("network", "disconnect", "two", "server")
    assert "eth1" not in loaded("exec", "server", "ip", "-o", "link").stdout
    loaded("rm", "-f", "server", "other")
    loaded("network", "rm", "one", "two")


def test_names_and_aliases_resolve_on_a_user_network(engine: Daemon, loaded: DockerCLI) -> None:
    loaded("network", "create", "names")
    run(
        loaded,
        "-d",
        "--name",
        "db",
        "--network",
        "names",
        "--network-alias",
        "database",
        "busybox",
        "sleep",
        "60",
    )
    address = address_of(loaded, "db", "names")
    names = ["db", "database", "db.names", "linked", "$HOSTNAME", "nothing-of-ours.invalid"]
    script = "; ".join(
        f"nslookup {n} | grep -A1 '^Name:' | grep Address | head -1 | cut -d' ' -f2 | grep . || echo -"
        for n in names
    )
    # --dns: the embedded server's upstream for this container, where none answers: no query leaves the host
    out = run(
        loaded,
        "--rm",
        "--network",
        "names",
        "--link",
        "db:linked",
        "--dns",
        "127.0.0.1",
        "busybox",
        "sh",
        "-c",
        script,
    ).stdout
    found = out.split()
    assert found[:4] == [address] * 4 and found[5] == "-", out
    assert found[4] != address and ipaddress.ip_address(found[4]) in ipaddress.ip_network(
        f"{address}/16", strict=False
    )
    resolv = run(loaded, "--rm", "--network", "names", "busybox", "cat", "/etc/resolv.conf").stdout
    assert "nameserver 127.0.0.11\n" in resolv and "ndots:0" in resolv
    # on the default bridge, the host's resolvers (none local) and no embedded server
    resolv = run(loaded, "--rm", "busybox", "cat", "/etc/resolv.conf").stdout
    assert "127.0.0.11" not in resolv
    loaded("rm", "-f", "db")
    loaded("network", "rm", "names")


def test_network_modes_host_none_and_container(engine: Daemon, loaded: DockerCLI) -> None:
    out = run(loaded, "--rm", "--network", "none", "busybox", "ip", "-o", "link").stdout
    assert "eth0" not in out and "lo" in out
    out = run(loaded, "--rm", "--network", "host", "busybox", "ip", "-o", "link").stdout
    assert engine.config.bridge in out
    run(loaded, "-d", "--name", "donor", "busybox", "sleep", "60")
    donor = address_of(loaded, "donor", "bridge")
    out = run(loaded, "--rm", "--network", "container:donor", "busybox", "ip", "-o", "-4", "addr").stdout
    assert donor in out
    loaded("rm", "-f", "donor")


def test_published_ports_reach_a_server_in_a_container(engine: Daemon, loaded: DockerCLI) -> None:
    port, udp_port, all_port = free_port(), free_port(), free_port()
    script = "echo hello > /tmp/index.html; httpd -p 81 -h /tmp; exec httpd -f -p 80 -h /tmp"
    run(loaded, "-d", "--name", "web", "-p", f"127.0.0.1:{port}:80", "-p", f"{udp_port}:53/udp",
        "-p", f"{all_port}:81", "--expose", "8080", "-P", "busybox", "sh", "-c", script)  # fmt: skip
    for _ in range(50):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=2) as response:
                assert response.read() == b"hello\n"
            break
        except OSError:
            time.sleep(0.1)
    else:
        raise AssertionError("the published port never answered")
    # UDP: busybox has no UDP server, so the test listens inside the container's namespace itself
    pid = inspect(loaded, "web")["State"]["Pid"]  # type: ignore[index]
    with (
        bound_in(int(pid), socket.SOCK_DGRAM, 53) as inside,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp,
    ):
        inside.settimeout(5)
        udp.sendto(b"ping", ("127.0.0.1", udp_port))
        data, (source, _) = inside.recvfrom(100)
        assert data == b"ping"
        inside.sendto(b"pong", (source, _))
        udp.settimeout(5)
        assert udp.recv(100) == b"pong"
    # on every address: IPv4 by DNAT, ::1 (which DNAT cannot reach) by the engine's relay
    for host in ("127.0.0.1", "::1"):
        with socket.create_connection((host, all_port), timeout=5) as connection:
            connection.sendall(b"GET /index.html HTTP/1.0\r\n\r\n")
            assert connection.makefile("rb").read().endswith(b"\r\n\r\nhello\n"), host
    ports = loaded("port", "web").stdout
    assert f"80/tcp -> 127.0.0.1:{port}" in ports and f"53/udp -> 0.0.0.0:{udp_port}" in ports
    random = loaded("port", "web", "8080/tcp").stdout.split("\n")[0].rpartition(":")[2]
    assert int(random) > 1024
    listed = loaded("ps", "--format", "{{.Ports}}", "--filter", "name=web").stdout
    assert f"127.0.0.1:{port}->80/tcp" in listed
    # the port is taken: dockerd's message, and the container is left created, nothing else
    done = run(
        loaded, "-d", "--name", "web2", "-p", f"127.0.0.1:{port}:80", "busybox", "sleep", "5", check=False
    )
    assert done.returncode != 0 and "port is already allocated" in done.stderr, done.stderr
    state = json.loads(loaded("inspect", "web2").stdout)[0]
    assert (
        state["State"]["Status"] == "created"
        and state["NetworkSettings"]["Networks"]["bridge"]["IPAddress"] == ""
    )
    loaded("rm", "-f", "web", "web2")


def test_ipv6_internal_and_several_networks_at_create(engine: Daemon, loaded: DockerCLI) -> None:
    loaded("network", "create", "--ipv6", "--subnet", "fd7a:51::/64", "--subnet", "10.243.0.0/24", "six")
    loaded("network", "create", "--internal", "--subnet", "10.244.0.0/24", "inner")
    loaded("network", "create", "--subnet", "10.245.0.0/24", "--ip-range", "10.245.0.64/26",
           "--opt", "com.docker.network.driver.mtu=1400", "narrow")  # fmt: skip
    out = run(loaded, "--rm", "--network", "narrow", "busybox", "ip", "-o", "addr", "show", "eth0").stdout
    assert (
        "mtu 1400"
        in run(loaded, "--rm", "--network", "narrow", "busybox", "ip", "link", "show", "eth0").stdout
    )
    assert "10.245.0.64/24" in out, out  # the first address of the range
    loaded("network", "rm", "narrow")
    script = "ip -o addr show eth0; ip -6 route; ping6 -c1 -W2 fd7a:51::1 >/dev/null && echo ok6"
    out = run(loaded, "--rm", "--network", "six", "busybox", "sh", "-c", script).stdout
    assert "fd7a:51::2/64" in out and "10.243.0.2/24" in out and "default via fd7a:51::1" in out, out
    assert out.endswith("ok6\n"), out
    out = run(loaded, "--rm", "--network", "inner", "busybox", "ip", "route").stdout
    assert "default" not in out and "10.244.0.0/24" in out
    # two networks at create (API 1.44; docker-py: the 20.10 CLI takes one --network)
    client = docker.APIClient(base_url=engine.config.hosts[0], version="1.44")
    networking = client.create_networking_config(
        {"inner": client.create_endpoint_config(), "six": client.create_endpoint_config()}
    )
    created = client.create_container(
        "busybox", ["sh", "-c", "ip -o -4 addr; ip route"], networking_config=networking,
        host_config=client.create_host_config(network_mode="inner"),
    )  # fmt: skip
    client.start(created["Id"])
    assert client.wait(created["Id"])["StatusCode"] == 0
    out = client.logs(created["Id"]).decode()
    client.remove_container(created["Id"])
    client.close()
    assert "eth0" in out and "10.244.0." in out and "eth1" in out and "10.243.0." in out, out
    assert "default" not in out  # the first network (internal) gives the gateway: none
    loaded("network", "rm", "six", "inner")


def test_a_host_port_range_takes_the_first_free_port(engine: Daemon, loaded: DockerCLI) -> None:
    first = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", first))
        taken.listen()
        run(
            loaded,
            "-d",
            "--name",
            "ranged",
            "-p",
            f"127.0.0.1:{first}-{first + 5}:80",
            "busybox",
            "sleep",
            "60",
        )
        published = int(loaded("port", "ranged", "80").stdout.strip().rpartition(":")[2])
        assert first < published <= first + 5
    loaded("rm", "-f", "ranged")
