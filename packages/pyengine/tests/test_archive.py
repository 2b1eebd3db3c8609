"""A container's files through the real docker CLI and docker-py: docker cp both ways (running,
created and exited containers, hostile archives and symlinks pointing out of the container), the
stat header, docker export, docker diff, docker commit and a run of the committed image."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import tarfile
import time
from pathlib import Path

import docker
import pytest

from pyengine import Daemon, DaemonConfig

TYPE_CHECKING = False
if TYPE_CHECKING:
    from conftest import DockerCLI


@pytest.fixture
def client(config: DaemonConfig) -> docker.DockerClient:
    return docker.DockerClient(base_url=config.hosts[0], version="1.44")


def _tar(*entries: tuple[str, bytes | str | None]) -> bytes:
    """Entries: (name, bytes) a file, (name, None) a directory, (name, "->target") a symlink."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, content in entries:
            info = tarfile.TarInfo(name)
            if content is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                t.addfile(info)
            elif isinstance(content, str):
                info.type, info.linkname = tarfile.SYMTYPE, content.removeprefix("->")
                t.addfile(info)
            else:
                info.size, info.mode = len(content), 0o644
                t.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def test_cp_both_ways_with_a_running_container(loaded: DockerCLI, tmp_path: Path) -> None:
    loaded("run", "-d", "--name", "c", "--network", "none", "--tmpfs", "/scratch", "busybox", "sleep", "60")
    loaded("cp", "c:/etc/hostname", str(tmp_path / "hostname"))
    assert (tmp_path / "hostname").read_text().strip() == loaded(
        "inspect", "-f", "{{.Config.Hostname}}", "c"
    ).stdout.strip()
    source = tmp_path / "dir"
    (source / "sub").mkdir(parents=True)
    (source / "sub" / "f").write_text("payload")
    loaded("cp", str(source), "c:/tmp/")
    assert loaded("exec", "c", "cat", "/tmp/dir/sub/f").stdout == "payload"
    loaded("cp", str(source), "c:/scratch/")  # the container's tmpfs mount, as dockerd sees it
    assert loaded("exec", "c", "cat", "/scratch/dir/sub/f").stdout == "payload"
    # From stdin, and to stdout as a tar.
    loaded("cp", "-", "c:/tmp", input=_tar(("fromstdin", b"in")).decode("latin-1"))
    assert loaded("exec", "c", "cat", "/tmp/fromstdin").stdout == "in"
    out = subprocess.run(
        [loaded.binary, "-H", loaded.host, "cp", "c:/tmp", "-"],
        env=loaded.env,
        capture_output=True,
        check=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(out)) as listed:
        names = listed.getnames()
    assert {"tmp", "tmp/dir/sub/f", "tmp/fromstdin"} <= {n.rstrip("/") for n in names}
    copied = tmp_path / "back"
    loaded("cp", "c:/tmp/dir", str(copied))
    assert (copied / "sub" / "f").read_text() == "payload"
    missing = loaded("cp", "c:/nope", str(tmp_path), check=False)
    assert missing.returncode != 0
    # The 28 CLI shows the daemon's message; the 20.10 CLI asks with HEAD first, which has no body.
    assert (
        "Could not find the file /nope in container c" in missing.stderr
        or "No such container:path: c:/nope" in missing.stderr
    )


def test_cp_with_created_and_exited_containers(loaded: DockerCLI, tmp_path: Path) -> None:
    loaded("create", "--name", "made", "busybox", "true")
    (tmp_path / "f").write_text("before start")
    loaded("cp", str(tmp_path / "f"), "made:/f")
    loaded("cp", "made:/bin/busybox", str(tmp_path / "bb"))
    assert (tmp_path / "bb").stat().st_size > 100_000
    loaded("run", "--name", "ran", "--network", "none", "busybox", "sh", "-c", "echo gone > /left")
    loaded("cp", "ran:/left", str(tmp_path / "left"))
    assert (tmp_path / "left").read_text() == "gone\n"
    loaded("cp", str(tmp_path / "f"), "ran:/tmp/")
    loaded("start", "-a", "made")  # the file copied in before the start is there
    assert loaded("diff", "made").stdout.splitlines() == ["A /f"]


def test_hostile_archives_and_symlinks_stay_inside(
    engine: Daemon, client: docker.DockerClient, loaded: DockerCLI, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    container = client.containers.run(
        "busybox",
        ["sh", "-c", f"ln -s {outside} /out; ln -s / /root/up; sleep 60"],
        detach=True,
        network_mode="none",
    )
    loaded("exec", container.id, "sh", "-c", "while ! test -L /out; do sleep 0.05; done")
    for hostile in (
        _tar(("../../../../" + str(outside).lstrip("/") + "/dotdot", b"x")),
        _tar(("escape", f"->{outside}"), ("escape/through", b"x")),
        _tar(("rel", "->../../../../../../.."), (f"rel/{str(outside).lstrip('/')}/x", b"x")),
    ):
        try:
            container.put_archive("/tmp", hostile)
        except docker.errors.APIError:
            pass  # refused is fine too
    assert container.put_archive("/out", _tar(("via-symlink", b"x")))  # /out -> a path *inside* the container
    assert container.put_archive("/root/up/tmp", _tar(("up", b"x")))
    assert list(outside.iterdir()) == []
    assert loaded("exec", container.id, "ls", "/tmp/up", str(outside) + "/via-symlink").returncode == 0
    # Reading through a symlink pointing out of the container reads the container's file.
    (tmp_path / "secret").write_text("HOST-SECRET-42")
    loaded("exec", container.id, "sh", "-c", f"ln -s {tmp_path}/secret /peek")
    with pytest.raises(docker.errors.NotFound):
        container.get_archive("/peek/")
    stream, found = container.get_archive("/out")
    assert found["linkTarget"] == str(outside) and found["mode"] & (1 << 27)
    assert b"HOST-SECRET-42" not in b"".join(stream)
    peeked = b"".join(container.get_archive("/peek")[0])  # the symlink itself, not its target
    assert b"HOST-SECRET-42" not in peeked


def test_stat_header_and_errors(engine: Daemon, client: docker.DockerClient, loaded: DockerCLI) -> None:
    container = client.containers.create("busybox", ["true"], network_mode="none")
    stream, found = container.get_archive("/etc/passwd")
    data = b"".join(stream)
    with tarfile.open(fileobj=io.BytesIO(data)) as member:
        assert member.getnames() == ["passwd"]
        assert found["size"] == member.getmember("passwd").size
    assert (found["name"], found["mode"], found["linkTarget"]) == ("passwd", 0o644, "")
    _, directory = container.get_archive("/etc/")
    assert directory["name"] == "etc" and directory["mode"] == (1 << 31) | 0o755
    api = client.api
    head = api.head(api._url("/containers/{0}/archive", container.id), params={"path": "/bin/sh"})
    assert head.status_code == 200
    assert (
        json.loads(base64.b64decode(head.headers["X-Docker-Container-Path-Stat"]))["linkTarget"]
        == "/bin/busybox"
    )
    for path, status, message in (
        ("", 400, "bad parameter: pathcannot be empty"),
        ("/nope/x", 404, f"Could not find the file /nope/x in container {container.id}"),
    ):
        response = api._get(api._url("/containers/{0}/archive", container.id), params={"path": path})
        assert (response.status_code, response.json()["message"]) == (status, message)
    with pytest.raises(docker.errors.APIError, match="extraction point is not a directory"):
        container.put_archive("/etc/passwd", _tar(("x", b"x")))
    readonly = client.containers.create("busybox", ["true"], read_only=True, network_mode="none")
    with pytest.raises(docker.errors.APIError, match="container rootfs is marked read-only"):
        readonly.put_archive("/tmp", _tar(("x", b"x")))


def test_export_diff_commit_and_run(loaded: DockerCLI, tmp_path: Path, client: docker.DockerClient) -> None:
    loaded(
        "run",
        "--name",
        "src",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "echo v1 > /etc/added; rm /bin/ls; mkdir /new",
    )
    changes = loaded("diff", "src").stdout.splitlines()
    assert {"C /etc", "A /etc/added", "C /bin", "D /bin/ls", "A /new"} <= set(changes)
    assert changes.index("C /etc") < changes.index("A /etc/added")
    exported = tmp_path / "src.tar"
    loaded("export", "-o", str(exported), "src")
    with tarfile.open(exported) as t:
        names = {n.rstrip("/") for n in t.getnames()}
        added = t.extractfile("etc/added")
        assert added is not None and added.read() == b"v1\n"
    assert "bin/ls" not in names and "bin/sh" in names
    image_id = loaded(
        "commit",
        "-c",
        'CMD ["cat", "/etc/added"]',
        "-c",
        "ENV COMMITTED=yes",
        "-m",
        "why",
        "-a",
        "me",
        "src",
        "127.0.0.1:5000/committed:v1",
    ).stdout.strip()
    inspected = json.loads(loaded("image", "inspect", "127.0.0.1:5000/committed:v1").stdout)[0]
    assert inspected["Id"] == image_id
    assert (
        inspected["Config"]["Cmd"] == ["cat", "/etc/added"] and "COMMITTED=yes" in inspected["Config"]["Env"]
    )
    assert inspected["Author"] == "me"
    assert loaded("run", "--rm", "--network", "none", "127.0.0.1:5000/committed:v1").stdout == "v1\n"
    gone = loaded(
        "run",
        "--rm",
        "--network",
        "none",
        "127.0.0.1:5000/committed:v1",
        "busybox",
        "ls",
        "/bin",
        check=False,
    )
    assert gone.returncode == 0 and "busybox" in gone.stdout.split()
    assert "ls" not in gone.stdout.split()  # the whiteout came along
    # docker-py: an untagged commit, with its config in the body.
    src = client.containers.get("src")
    image = src.commit(conf={"Cmd": ["echo", "from-py"]})
    assert (
        image.tags == [] and client.containers.run(image.id, remove=True, network_mode="none") == b"from-py\n"
    )
    events = loaded(
        "events",
        "--since",
        "0",
        "--until",
        str(int(time.time()) + 1),
        "--filter",
        "type=container",
        "--format",
        "{{.Action}}",
    ).stdout
    assert {"commit", "export"} <= set(events.split())
