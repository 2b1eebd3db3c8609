"""pyengine.Client against a real private pyengined: every method at least once, its streams
(logs followed to the exit, pull progress, attach and exec with stdin), its errors (the daemon's
404 and 409 messages, a socket with no daemon), and its import staying off aiohttp and asyncio.

Images come from the offline busybox archive (loaded with the client) and the loopback registry;
what each test made is removed by the ``engine`` fixture (containers) and the scratch directory."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyrunc_acceptance_oci_images as oci_images  # registered by conftest.py
import pytest

from pyengine import (
    Client,
    Conflict,
    Daemon,
    DaemonConfig,
    DaemonUnreachable,
    InvalidParameter,
    NotFound,
    ProgressError,
    Unauthorized,
)
from pyengine.client import AuthConfig, ContainerCreateConfig, HostConfig, LogConfig
from pyrunc.testing import register_module

TYPE_CHECKING = False
if TYPE_CHECKING:
    from conftest import DockerCLI

REPO_ROOT = Path(__file__).resolve().parents[3]
register_module(
    "pycontainerd_test_registries", REPO_ROOT / "packages" / "pycontainerd" / "tests" / "conftest.py"
)
import pycontainerd_test_registries as registries  # noqa: E402

basic_registry = registries.basic_registry  # pycontainerd's htpasswd registry, used as it is


@pytest.fixture
def client(engine: Daemon, config: DaemonConfig) -> Iterator[Client]:
    with Client(config.hosts[0]) as client:
        yield client


@pytest.fixture
def busybox(client: Client, docker_archive: Path) -> Client:
    """The client, with busybox:latest loaded from the offline archive (by path)."""
    messages = list(client.image_load(docker_archive))
    assert [m.stream for m in messages] == ["Loaded image: busybox:latest\n"]
    return client


def _create(client: Client, *cmd: str, name: str | None = None, **options: Any) -> str:
    config = ContainerCreateConfig(image="busybox", cmd=cmd, **options)
    container_id, _ = client.container_create(config, name=name)
    assert len(container_id) == 64
    return container_id


def _until_accepted(resize: Callable[[], None]) -> None:
    """Resize as the docker CLI does, again while the daemon says the process is not made yet:
    the hijacked answer comes before it is."""
    deadline = time.monotonic() + 10
    while True:
        try:
            return resize()
        except Conflict:
            assert time.monotonic() < deadline
            time.sleep(0.02)


def test_system_endpoints_and_version_negotiation(client: Client, config: DaemonConfig) -> None:
    ping = client.ping()
    assert (ping.api_version, ping.os_type) == ("1.44", "linux")
    assert client.api_version == "1.44"
    version = client.version()
    assert (version.api_version, version.min_api_version, version.os) == ("1.44", "1.24", "linux")
    assert version.components[0].name == "Engine"
    info = client.info()
    assert info.docker_root_dir == str(config.data_root)
    assert (info.containers, info.images, info.os_type) == (0, 0, "linux")
    # A version given is used as it is, without a ping; the daemon checks it.
    old = Client(config.hosts[0], version="1.41")
    assert old.api_version == "1.41" and old.version().api_version == "1.44"
    too_old = Client(config.hosts[0], version="1.12")
    with pytest.raises(InvalidParameter, match=r"client version 1\.12 is too old"):
        too_old.info()


def test_host_precedence_argument_then_docker_host_then_default(
    config: DaemonConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    assert Client().host == "unix:///run/pyengine.sock"
    monkeypatch.setenv("DOCKER_HOST", config.hosts[0])
    assert Client().host == config.hosts[0]
    assert Client("unix:///elsewhere.sock").host == "unix:///elsewhere.sock"
    with pytest.raises(ValueError, match="unix:///PATH sockets only"):
        Client("tcp://127.0.0.1:2375")


def test_an_unreachable_socket_says_so_as_docker_does(scratch: Path) -> None:
    host = f"unix://{scratch}/nobody.sock"
    with pytest.raises(DaemonUnreachable) as raised:
        Client(host).ping()
    assert (
        str(raised.value) == f"Cannot connect to the Docker daemon at {host}. Is the docker daemon running?"
    )
    assert isinstance(raised.value, ConnectionError)
    with pytest.raises(DaemonUnreachable):
        Client(host, version="1.44").container_attach("x")  # a hijack connects its own way


def test_errors_carry_the_daemons_status_and_message(busybox: Client) -> None:
    with pytest.raises(NotFound) as missing:
        busybox.container_inspect("nosuch")
    assert (missing.value.status, missing.value.message) == (404, "No such container: nosuch")
    with pytest.raises(NotFound, match="No such image: nosuch"):
        busybox.image_inspect("nosuch")
    _create(busybox, "true", name="taken")
    with pytest.raises(Conflict) as conflict:
        busybox.container_create(ContainerCreateConfig(image="busybox", cmd=["true"]), name="taken")
    assert conflict.value.status == 409
    assert 'The container name "/taken" is already in use' in conflict.value.message
    # What pyengined refuses is refused through the client too, by the field's name.
    with pytest.raises(InvalidParameter, match=r"HostConfig.LogConfig.Type 'syslog' is not supported"):
        busybox.container_create(
            ContainerCreateConfig(
                image="busybox", host_config=HostConfig(log_config=LogConfig(type="syslog"))
            )
        )
    busybox.container_remove("taken")


def test_images_list_inspect_tag_save_remove(busybox: Client) -> None:
    (image,) = busybox.images()
    assert image.repo_tags == ("busybox:latest",)
    inspected = busybox.image_inspect("busybox")
    assert inspected.id == image.id and inspected.os == "linux"
    assert inspected.config.cmd == ("sh",)
    busybox.image_tag("busybox", "example.test/mine:v1")
    assert {t for i in busybox.images() for t in i.repo_tags} == {"busybox:latest", "example.test/mine:v1"}
    assert [i.id for i in busybox.images(filters={"reference": "example.test/*"})] == [image.id]
    assert busybox.images(filters={"reference": "nomatch/*"}) == []
    archive = b"".join(busybox.image_save(["busybox"]))
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert manifest[0]["RepoTags"] == ["busybox:latest"]
    removed = busybox.image_remove("example.test/mine:v1")
    assert [item.untagged for item in removed] == ["example.test/mine:v1"]
    user = _create(busybox, "true")
    with pytest.raises(Conflict, match="must force"):  # a container uses it
        busybox.image_remove("busybox")
    busybox.container_remove(user)
    assert [(i.untagged, i.deleted) for i in busybox.image_remove("busybox")] == [
        ("busybox:latest", None),
        (None, image.id),
    ]
    assert busybox.images() == []
    # Loaded again from a file object (sent chunked).
    with io.BytesIO(archive) as stream:
        assert [m.stream for m in busybox.image_load(stream)] == ["Loaded image: busybox:latest\n"]


def test_run_wait_logs_inspect_and_remove(busybox: Client) -> None:
    container_id = _create(
        busybox, "sh", "-c", "echo out; echo err >&2; exit 3", env=["WHO=me"], labels={"k": "v"}
    )
    waiting = busybox.container_wait_begin(container_id, "next-exit")
    busybox.container_start(container_id)
    assert waiting() == 3
    assert busybox.container_wait(container_id) == 3
    assert list(busybox.container_logs(container_id)) == [(1, b"out\n"), (2, b"err\n")]
    assert list(busybox.container_logs(container_id, stderr=False)) == [(1, b"out\n")]
    stamped = list(busybox.container_logs(container_id, timestamps=True, tail=1))
    assert len(stamped) == 1 and stamped[0][1].endswith(b"Z err\n")
    inspected = busybox.container_inspect(container_id)
    assert (inspected.state.status, inspected.state.exit_code, inspected.path) == ("exited", 3, "sh")
    assert inspected.config.env[0] == "WHO=me" and inspected.config.labels == {"k": "v"}
    assert inspected.host_config.restart_policy is not None
    (summary,) = busybox.containers(all=True)
    assert summary.id == container_id and summary.state == "exited" and summary.labels == {"k": "v"}
    assert busybox.containers() == []
    busybox.container_remove(container_id)
    assert busybox.containers(all=True, limit=1) == []


def test_logs_follow_to_the_exit_and_tty_logs_come_raw(busybox: Client) -> None:
    container_id = _create(busybox, "sh", "-c", "echo a; sleep 0.5; echo b >&2")
    busybox.container_start(container_id)
    started = time.monotonic()
    assert list(busybox.container_logs(container_id, follow=True)) == [(1, b"a\n"), (2, b"b\n")]
    assert time.monotonic() - started >= 0.3  # it waited for b, and ended with the container
    tty = _create(busybox, "sh", "-c", "echo hi", tty=True)
    busybox.container_start(tty)
    assert busybox.container_wait(tty) == 0
    assert b"".join(data for _, data in busybox.container_logs(tty)) == b"hi\r\n"
    assert {stream for stream, _ in busybox.container_logs(tty, tty=True)} == {1}


def test_lifecycle_stop_restart_kill_pause_top_stats_resize(busybox: Client) -> None:
    container_id = _create(busybox, "sleep", "1000", stop_timeout=1)
    busybox.container_start(container_id)
    busybox.container_start(container_id)  # already running: 304, not an error
    top = busybox.container_top(container_id)
    assert "PID" in top.titles and any("sleep" in " ".join(row) for row in top.processes)
    (sample,) = list(busybox.container_stats(container_id))
    assert sample["id"] == container_id and sample["memory_stats"]["usage"] > 0
    busybox.container_pause(container_id)
    assert busybox.container_inspect(container_id).state.paused
    with pytest.raises(Conflict):
        busybox.exec_create(container_id, ["true"])
    busybox.container_unpause(container_id)
    with pytest.raises(Conflict):
        busybox.container_remove(container_id)
    busybox.container_restart(container_id, timeout=0)
    assert busybox.container_inspect(container_id).state.running
    busybox.container_stop(container_id, timeout=0)
    assert busybox.container_inspect(container_id).state.exit_code == 137
    # Streamed, a stopped container's stats end after one sample (of zeros).
    assert [s["memory_stats"] for s in busybox.container_stats(container_id, stream=True)] == [{}]
    tty = _create(busybox, "sleep", "1000", tty=True)
    busybox.container_start(tty)
    busybox.container_resize(tty, 40, 100)
    busybox.container_kill(tty, "SIGKILL")
    assert busybox.container_wait(tty) == 137
    busybox.container_remove(tty)
    busybox.container_remove(container_id, force=True)


def test_attach_with_stdin_echoes_and_ends_at_the_exit(busybox: Client) -> None:
    container_id = _create(
        busybox, "sh", "-c", "cat; echo done >&2", open_stdin=True, stdin_once=True, attach_stdin=True
    )
    with busybox.container_attach(container_id, stdin=True) as attached:  # before the start
        busybox.container_start(container_id)
        attached.write(b"hello\n")
        attached.close_write()
        assert attached.output() == (b"hello\n", b"done\n")
    assert busybox.container_wait(container_id) == 0


def test_exec_attached_with_stdin_detached_and_its_exit_code(busybox: Client) -> None:
    container_id = _create(busybox, "sleep", "1000")
    busybox.container_start(container_id)
    exec_id = busybox.exec_create(container_id, ["sh", "-c", "tr a-z A-Z; exit 5"], stdin=True)
    attached = busybox.exec_start(exec_id)
    assert attached is not None
    with attached:
        attached.write(b"shout\n")
        attached.close_write()
        assert attached.output() == (b"SHOUT\n", b"")
    inspected = busybox.exec_inspect(exec_id)
    assert (inspected.exit_code, inspected.running, inspected.container_id) == (5, False, container_id)
    terminal = busybox.exec_create(container_id, ["sh", "-c", "read go; stty size"], stdin=True, tty=True)
    with busybox.exec_start(terminal, tty=True) as shown:  # type: ignore[union-attr]
        _until_accepted(lambda: busybox.exec_resize(terminal, 30, 90))
        shown.write(b"go\n")
        assert b"".join(data for _, data in shown.frames()) == b"go\r\n30 90\r\n"
    detached = busybox.exec_create(container_id, ["sh", "-c", "exit 7"])
    assert busybox.exec_start(detached, detach=True) is None
    deadline = time.monotonic() + 10
    while busybox.exec_inspect(detached).running or busybox.exec_inspect(detached).exit_code is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert busybox.exec_inspect(detached).exit_code == 7
    with pytest.raises(NotFound, match="No such exec instance: nosuch"):
        busybox.exec_inspect("nosuch")
    busybox.container_remove(container_id, force=True)


def test_events_since_until_filtered(busybox: Client) -> None:
    since = time.time()
    container_id = _create(busybox, "true", name="evented")
    busybox.container_remove(container_id)
    events = list(busybox.events(since=since, until=time.time(), filters={"type": "container"}))
    assert [(e.type, e.action, e.actor_id) for e in events] == [
        ("container", "create", container_id),
        ("container", "destroy", container_id),
    ]
    assert events[0].actor_attributes["name"] == "evented" and events[0].time_nano > 0
    live = busybox.events(filters={"event": "create"})
    created = _create(busybox, "true")
    assert next(live).actor_id == created
    live.close()  # type: ignore[attr-defined]


def test_pull_progress_and_its_error(client: Client, registry: Any, layout: Any) -> None:
    ref = oci_images.push_to_registry(layout, registry.address, "client/busybox")
    messages = list(client.image_pull(ref))
    assert messages[0].status == f"Pulling from {registry.address}/client/busybox"
    assert any(m.status == "Downloading" and m.total for m in messages)
    assert any(m.status == "Pull complete" for m in messages)
    assert messages[-1].status == f"Status: Downloaded newer image for {ref}"
    assert client.image_inspect(ref).repo_tags == (ref,)
    with pytest.raises(ProgressError, match="client/busybox:nope"):
        list(client.image_pull(f"{registry.address}/client/busybox:nope"))


def test_auth_and_push_with_credentials(busybox: Client, basic_registry: Any) -> None:
    address, user, password = basic_registry.address, basic_registry.user, basic_registry.password
    with pytest.raises(Unauthorized, match="401 Unauthorized"):
        busybox.auth(user, "wrong", address)
    assert busybox.auth(user, password, address).status == "Login Succeeded"
    ref = f"{address}/pushed/busybox:v1"
    busybox.image_tag("busybox", ref)
    with pytest.raises(ProgressError, match="unauthorized: "):
        list(busybox.image_push(ref))
    credentials = AuthConfig(username=user, password=password, server_address=address)
    pushed = list(busybox.image_push(ref, auth=credentials))
    assert pushed[0].status == f"The push refers to repository [{address}/pushed/busybox]"
    assert pushed[-1].aux is not None and pushed[-1].aux["Tag"] == "v1"
    busybox.image_remove(ref)
    # docker-py's auth_config dict works too.
    auth = {"username": user, "password": password, "serveraddress": address}
    assert list(busybox.image_pull(ref, auth=auth))[-1].status.startswith("Status: Downloaded newer image")


def test_importing_the_client_loads_neither_aiohttp_nor_asyncio() -> None:
    """The client is on pydocker's start-up path: the daemon's aiohttp and asyncio stay out, and
    so do the models (attrs) until a method needs one."""
    code = (
        "import sys, pyengine; pyengine.Client;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('aiohttp', 'asyncio', 'attr', 'attrs', 'pycontainerd', 'pyrunc', 'multidict', 'yarl')"
        " or m.startswith('pyengine._') or m.endswith('_models')))"
    )
    done = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout == "['pyengine._errors']\n"


def test_the_client_and_the_docker_cli_see_the_same_containers(
    busybox: Client, docker_cli: DockerCLI
) -> None:
    """What the client makes, the docker CLI shows, and the other way round."""
    made = _create(busybox, "sh", "-c", "echo from-client", name="by-client")
    busybox.container_start(made)
    assert docker_cli("wait", "by-client").stdout.strip() == "0"
    assert docker_cli("logs", "by-client").stdout == "from-client\n"
    run = docker_cli("run", "-d", "--name", "by-cli", "-e", "X=1", "busybox", "sleep", "1000").stdout.strip()
    inspected = busybox.container_inspect("by-cli")
    assert (inspected.id, inspected.name, inspected.state.running) == (run, "/by-cli", True)
    assert "X=1" in inspected.config.env
    assert {c.names for c in busybox.containers(all=True)} == {("/by-client",), ("/by-cli",)}
    exec_id = busybox.exec_create("by-cli", ["sh", "-c", "echo $X"])
    with busybox.exec_start(exec_id) as attached:  # type: ignore[union-attr]
        assert attached.output() == (b"1\n", b"")
    busybox.container_remove("by-cli", force=True)
    assert docker_cli("ps", "-a", "--format", "{{.Names}}").stdout == "by-client\n"


def test_a_kept_connection_the_daemon_closed_is_replaced(config: DaemonConfig) -> None:
    """The client keeps its connection between requests; a daemon that went away and came back
    closed it, and the next request goes on a new one, not to an error."""
    client = Client(config.hosts[0])
    with Daemon(config):
        first = client.info().id
        assert len(client._transport._idle) == 1  # kept, for the next request
    with Daemon(config):
        assert client.info().id == first and client.api_version == "1.44"
    with pytest.raises(DaemonUnreachable):
        client.info()
    client.close()
