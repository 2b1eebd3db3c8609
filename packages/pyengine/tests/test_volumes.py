"""Volumes through the real docker CLI and docker-py: the local driver's named and anonymous volumes,
filled from the image on first use, shared, kept across container removals and daemon restarts and
SIGKILLs; ``docker volume`` create/inspect/ls/rm/prune; tmpfs and bind volumes of the driver's options,
mounted only while used; ``--volumes-from``, read-only, ``volume-nocopy``, ``rm -v``; ``system df``,
``docker cp`` and events; dockerd's errors, leaving nothing half-made."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import docker
import pytest

from pyengine import DaemonConfig

TYPE_CHECKING = False
if TYPE_CHECKING:
    from conftest import DockerCLI, Pyengined


def _mounted_below(path: Path) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(str(path))]


def _error(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode != 0, done.stdout
    return done.stderr


def test_a_volume_outlives_its_writer_a_restart_and_a_sigkill(
    pyengined: Pyengined, docker_cli: DockerCLI, docker_archive: Path, config: DaemonConfig
) -> None:
    pyengined.start()
    docker_cli("load", "-i", str(docker_archive))
    docker_cli("run", "--name", "writer", "-v", "data:/d", "busybox", "sh", "-c", "echo hello > /d/f")
    docker_cli("rm", "writer")
    read = ("run", "--rm", "-v", "data:/d", "busybox", "cat", "/d/f")
    assert docker_cli(*read).stdout == "hello\n"
    created = json.loads(docker_cli("volume", "inspect", "data").stdout)[0]
    assert created["Mountpoint"] == str(config.data_root / "volumes" / "data" / "_data")

    pyengined.stop()
    pyengined.start()
    assert docker_cli(*read).stdout == "hello\n"
    assert json.loads(docker_cli("volume", "inspect", "data").stdout)[0] == created

    # Written, and a new volume made, right before the daemon dies.
    docker_cli("run", "--name", "late", "-v", "data:/d", "-v", "late:/l", "busybox", "sh", "-c",
               "echo again >> /d/f; echo late > /l/f")  # fmt: skip
    # A tmpfs volume mounted for a running container: the next daemon knows it is held, and
    # unmounts it when that container stops.
    docker_cli("volume", "create", "--opt", "type=tmpfs", "--opt", "device=tmpfs", "mem")
    docker_cli("run", "-d", "--name", "holder", "-v", "mem:/m", "busybox", "sleep", "60")
    mem = config.data_root / "volumes" / "mem" / "_data"
    assert _mounted_below(mem) == [str(mem)]
    pyengined.kill()
    pyengined.start()
    assert _mounted_below(mem) == [str(mem)]
    docker_cli("stop", "-t", "0", "holder")
    assert _mounted_below(mem) == []
    docker_cli("rm", "holder")
    docker_cli("volume", "rm", "mem")
    assert docker_cli(*read).stdout == "hello\nagain\n"
    assert docker_cli("run", "--rm", "-v", "late:/l", "busybox", "cat", "/l/f").stdout == "late\n"
    assert docker_cli("volume", "ls", "-q").stdout.split() == ["data", "late"]
    assert "volume is in use" in _error(docker_cli("volume", "rm", "late", check=False))
    docker_cli("rm", "late")
    docker_cli("volume", "rm", "data", "late")
    assert list((config.data_root / "volumes").iterdir()) == []


@pytest.mark.parametrize(
    ("host_config", "message"),
    [
        ({"Binds": ["vol:/x:rshared"]}, 'type "volume": field BindOptions must not be specified'),
        ({"Binds": ["vol:/x:bogus"]}, "invalid mode: bogus"),
        ({"Binds": ["v:/x"]}, '"v" includes invalid characters for a local volume name'),
        ({"Binds": ["vol:x"]}, "invalid mount path: 'x' mount path must be absolute"),
        ({"Mounts": [{"Type": "volume", "Target": "/x", "ReadOnly": True}]}, "must not set ReadOnly mode"),
        (
            {
                "Mounts": [
                    {
                        "Type": "volume",
                        "Source": "vol",
                        "Target": "/x",
                        "BindOptions": {"Propagation": "shared"},
                    }
                ]
            },
            "field BindOptions must not be specified",
        ),
        (
            {
                "Mounts": [
                    {
                        "Type": "volume",
                        "Source": "vol",
                        "Target": "/x",
                        "VolumeOptions": {"DriverConfig": {"Name": "nfs"}},
                    }
                ]
            },
            'error looking up volume plugin nfs: plugin "nfs" not found',
        ),
        ({"VolumeDriver": "flocker"}, 'error looking up volume plugin flocker: plugin "flocker" not found'),
        ({"VolumesFrom": ["donor:rshared"]}, "invalid mode: rshared"),
        ({"Binds": ["vol:/x"], "Tmpfs": {"/x": ""}}, "Duplicate mount point: /x"),
    ],
)
def test_mount_requests_are_checked_in_dockerds_words(host_config: dict[str, Any], message: str) -> None:
    from pyengine import InvalidParameter, NotFound
    from pyengine._volumes import plan_mounts

    with pytest.raises((InvalidParameter, NotFound), match=re.escape(message)):
        plan_mounts({"HostConfig": host_config}, (), lambda name: [])


def test_the_mounts_of_a_request_and_its_image() -> None:
    from pyengine._volumes import VolumeMount, plan_mounts

    donor = [VolumeMount("/shared", name="s"), VolumeMount("/over", name="o")]
    body = {
        "Volumes": {"/anon": {}, "/named": {}},
        "HostConfig": {
            "Binds": ["named:/named:ro,nocopy", "/host:/host"],
            "VolumesFrom": ["donor:ro"],
            "Mounts": [{"Type": "volume", "Source": "over", "Target": "/over"}],
        },
    }
    mounts, creating = plan_mounts(body, ("/image", "/host"), lambda name: donor)
    by_destination = {m.destination: m for m in mounts}
    assert sorted(by_destination) == ["/anon", "/image", "/named", "/over", "/shared"]  # /host: a bind
    assert by_destination["/shared"] == VolumeMount("/shared", name="s", rw=False, mode="ro", copy=False)
    assert by_destination["/over"].name == "over"  # Mounts wins over --volumes-from
    assert by_destination["/named"] == VolumeMount(
        "/named", name="named", rw=False, mode="ro,nocopy", copy=False
    )
    assert by_destination["/anon"].anonymous and re.fullmatch("[0-9a-f]{64}", by_destination["/anon"].name)
    assert creating == {"over": ({}, {})}


def test_a_creation_cut_short_is_complete_or_gone(
    pyengined: Pyengined, docker_cli: DockerCLI, config: DaemonConfig
) -> None:
    volumes = config.data_root / "volumes"
    pyengined.start()
    docker_cli("volume", "create", "--label", "kept=1", "kept")
    pyengined.kill()
    # What a daemon killed between making the directory and renaming the record over leaves.
    (volumes / "half" / "_data").mkdir(parents=True)
    (volumes / "half" / ".volume.json.tmp").write_text('{"name": "ha')
    pyengined.start()
    assert docker_cli("volume", "ls", "-q").stdout.split() == ["kept"]
    assert sorted(p.name for p in volumes.iterdir()) == ["kept"]
    assert json.loads(docker_cli("volume", "inspect", "kept").stdout)[0]["Labels"] == {"kept": "1"}
    docker_cli("volume", "rm", "kept")


def test_image_content_is_copied_into_a_new_volume(loaded: DockerCLI, config: DaemonConfig) -> None:
    loaded("run", "--name", "base", "busybox", "sh", "-c",
           "mkdir -m 750 /data && echo image > /data/x && chown -R 1000:100 /data && chmod 640 /data/x "
           "&& ln -s x /data/link")  # fmt: skip
    loaded("commit", "--change", "VOLUME /data", "base", "withvolume")
    loaded("rm", "base")
    listing = "ls -ln /data | sed 1d | awk '{print $1, $3, $4, $NF}'; stat -c '%a %u %g' /data; cat /data/x"
    # The image's VOLUME: an anonymous volume, filled with the image's files, owners and modes.
    out = loaded("run", "--name", "anon", "withvolume", "sh", "-c", listing).stdout
    assert out == "lrwxrwxrwx 0 0 x\n-rw-r----- 1000 100 x\n750 1000 100\nimage\n"
    mounts = json.loads(loaded("inspect", "anon").stdout)[0]["Mounts"]
    assert len(mounts) == 1
    name = mounts[0]["Name"]
    assert re.fullmatch("[0-9a-f]{64}", name)
    assert mounts[0] == {
        "Type": "volume",
        "Name": name,
        "Source": str(config.data_root / "volumes" / name / "_data"),
        "Destination": "/data",
        "Driver": "local",
        "Mode": "",
        "RW": True,
        "Propagation": "",
    }
    volume = json.loads(loaded("volume", "inspect", name).stdout)[0]
    assert volume["Labels"] == {"com.docker.volume.anonymous": ""}
    assert volume["Scope"] == "local" and volume["Driver"] == "local"

    # A named volume is filled on its first mount only; nocopy leaves it empty; a volume that is
    # not empty keeps its own files.
    assert loaded("run", "--rm", "-v", "named:/data", "withvolume", "cat", "/data/x").stdout == "image\n"
    loaded("run", "--rm", "-v", "named:/data", "busybox", "sh", "-c", "echo mine > /data/x")
    assert loaded("run", "--rm", "-v", "named:/data", "withvolume", "cat", "/data/x").stdout == "mine\n"
    nocopy = loaded("run", "--rm", "--mount", "type=volume,src=empty,dst=/data,volume-nocopy", "withvolume",
                    "ls", "-A", "/data")  # fmt: skip
    assert nocopy.stdout == ""
    assert loaded("run", "--rm", "-v", "empty2:/data:nocopy", "withvolume", "ls", "-A", "/data").stdout == ""
    # /etc of busybox, into a named volume on a path the image has without VOLUME.
    assert "root:" in loaded("run", "--rm", "-v", "etc:/etc", "busybox", "cat", "/etc/passwd").stdout

    # rm -v removes the anonymous volumes, never a named one.
    loaded("run", "--name", "both", "-v", "named:/n", "-v", "/anon", "busybox", "true")
    both = json.loads(loaded("inspect", "both").stdout)[0]["Mounts"]
    anonymous = next(m["Name"] for m in both if m["Destination"] == "/anon")
    loaded("rm", "-v", "both", "anon")
    remaining = loaded("volume", "ls", "-q").stdout.split()
    assert name not in remaining and anonymous not in remaining
    assert sorted(remaining) == ["empty", "empty2", "etc", "named"]
    # --rm takes its anonymous volumes with it.
    loaded("run", "--rm", "-v", "/gone", "busybox", "true")
    assert sorted(loaded("volume", "ls", "-q").stdout.split()) == ["empty", "empty2", "etc", "named"]
    for name in remaining:
        loaded("volume", "rm", name)
    loaded("rmi", "withvolume")


def test_volume_commands_filters_labels_and_prune(loaded: DockerCLI, config: DaemonConfig) -> None:
    loaded("volume", "create", "--label", "tier=db", "--label", "keep", "alpha")
    loaded("volume", "create", "beta")
    loaded("run", "--name", "user", "-v", "beta:/b", "-v", "/anon", "busybox", "true")
    anonymous = next(
        m["Name"]
        for m in json.loads(loaded("inspect", "user").stdout)[0]["Mounts"]
        if m["Destination"] == "/anon"
    )
    ls = lambda *f: sorted(loaded("volume", "ls", "-q", *f).stdout.split())  # noqa: E731
    assert ls() == sorted(["alpha", "beta", anonymous])
    assert ls("-f", "label=tier=db") == ["alpha"]
    assert ls("-f", "label=keep") == ["alpha"]
    assert ls("-f", "name=et") == ["beta"]
    assert ls("-f", "dangling=true") == ["alpha"]
    assert ls("-f", "dangling=false") == sorted(["beta", anonymous])
    assert ls("-f", "driver=local") == sorted(["alpha", "beta", anonymous])
    assert "invalid filter 'bogus'" in _error(loaded("volume", "ls", "-f", "bogus=1", check=False))
    inspected = json.loads(loaded("volume", "inspect", "alpha").stdout)[0]
    assert set(inspected) == {"CreatedAt", "Driver", "Labels", "Mountpoint", "Name", "Options", "Scope"}
    assert inspected["Labels"] == {"tier": "db", "keep": ""}
    assert loaded("volume", "inspect", "-f", "{{.Mountpoint}}", "alpha").stdout.strip() == str(
        config.data_root / "volumes" / "alpha" / "_data"
    )

    # In use (by a stopped container): 409 with dockerd's message; missing: 404.
    user = loaded("inspect", "-f", "{{.Id}}", "user").stdout.strip()
    assert f"remove beta: volume is in use - [{user}]" in _error(loaded("volume", "rm", "beta", check=False))
    # (Debian's docker 20.10 words a 404 of its own way.)
    missing = "get nosuch: no such volume|No such volume: nosuch"
    assert re.search(missing, _error(loaded("volume", "rm", "nosuch", check=False)))
    loaded("volume", "rm", "-f", "nosuch")
    assert re.search(missing, _error(loaded("volume", "inspect", "nosuch", check=False)))
    assert (config.data_root / "volumes" / "beta" / "_data").is_dir()

    # Prune: the unused anonymous volumes only, unless all=true (API 1.42's rule; before it, every
    # unused volume); with label filters. docker-py, since Debian's docker 20.10 has no --all.
    loaded("rm", "user")
    client = docker.APIClient(base_url=config.hosts[0], version="1.44")
    try:
        assert client.prune_volumes()["VolumesDeleted"] == [anonymous]
        assert ls() == ["alpha", "beta"]
        assert client.prune_volumes({"all": "true", "label!": "keep"})["VolumesDeleted"] == ["beta"]
        assert ls() == ["alpha"]
        old = docker.APIClient(base_url=config.hosts[0], version="1.41")
        assert old.prune_volumes({"label": "tier=db"})["VolumesDeleted"] == ["alpha"]
        old.close()
    finally:
        client.close()
    assert ls() == []
    assert list((config.data_root / "volumes").iterdir()) == []


def test_bad_requests_leave_nothing(loaded: DockerCLI, config: DaemonConfig) -> None:
    volumes = config.data_root / "volumes"
    for bad in ("no/slash", "x"):  # dockerd's names have two characters at least
        assert "includes invalid characters for a local volume name" in _error(
            loaded("volume", "create", bad, check=False)
        )
    assert 'error looking up volume plugin nfs: plugin "nfs" not found' in _error(
        loaded("volume", "create", "-d", "nfs", "xy", check=False)
    )
    assert "quota size requested but no quota support" in _error(
        loaded("volume", "create", "--opt", "size=1", "xy", check=False)
    )
    bogus = _error(loaded("volume", "create", "--opt", "bogus=1", "xy", check=False))
    assert "invalid option" in bogus and "bogus" in bogus
    missing = _error(loaded("volume", "create", "--opt", "type=tmpfs", "xy", check=False))
    assert "missing required option" in missing and "device" in missing
    assert "must not set ReadOnly mode when using anonymous volumes" in _error(
        loaded("run", "--mount", "type=volume,dst=/x,readonly", "busybox", "true", check=False)
    )
    assert "Duplicate mount point: /x" in _error(
        loaded("run", "-v", "aa:/x", "-v", "bb:/x", "busybox", "true", check=False)
    )
    # A container whose creation fails after its volumes were made takes them with it.
    failed = loaded("run", "-u", "nosuchuser", "-v", "made:/m", "-v", "/anon", "busybox", "true", check=False)
    assert "nosuchuser" in _error(failed)
    assert "Duplicate mount point: /m" in _error(
        loaded("create", "--name", "x", "-v", "made:/m", "--tmpfs", "/m", "busybox", check=False)
    )
    client = docker.APIClient(base_url=config.hosts[0], version="auto")
    try:
        host_config = client.create_host_config(binds=["made:/m"], volumes_from=["nosuch"])
        with pytest.raises(docker.errors.NotFound, match="No such container: nosuch"):
            client.create_container("busybox", "true", host_config=host_config)
    finally:
        client.close()
    assert loaded("volume", "ls", "-q").stdout == ""
    assert loaded("ps", "-aq").stdout == ""
    assert list(volumes.iterdir()) == []


def test_tmpfs_and_bind_volumes_are_mounted_while_used(
    loaded: DockerCLI, config: DaemonConfig, scratch: Path
) -> None:
    tmpfs = ("--opt", "type=tmpfs", "--opt", "device=tmpfs", "--opt", "o=size=10m,mode=1770")
    loaded("volume", "create", *tmpfs, "scratchpad")
    options = json.loads(loaded("volume", "inspect", "scratchpad").stdout)[0]["Options"]
    assert options == {"type": "tmpfs", "device": "tmpfs", "o": "size=10m,mode=1770"}
    data = config.data_root / "volumes" / "scratchpad" / "_data"
    loaded("run", "-d", "--name", "one", "-v", "scratchpad:/s", "busybox", "sleep", "60")
    loaded("run", "-d", "--name", "two", "-v", "scratchpad:/s", "busybox", "sleep", "60")
    seen = loaded("exec", "one", "sh", "-c", "grep ' /s ' /proc/mounts; echo shared > /s/f").stdout
    assert seen.startswith("tmpfs /s tmpfs") and "size=10240k" in seen and "mode=1770" in seen
    assert loaded("exec", "two", "cat", "/s/f").stdout == "shared\n"
    assert _mounted_below(data) == [str(data)]
    loaded("rm", "-f", "one")
    assert _mounted_below(data) == [str(data)]  # two still uses it
    loaded("stop", "-t", "0", "two")
    assert _mounted_below(data) == []  # the last one stopped
    loaded("start", "two")
    assert loaded("exec", "two", "ls", "-A", "/s").stdout == ""  # a fresh tmpfs
    loaded("rm", "-f", "two")
    assert _mounted_below(data) == []

    host = scratch / "hostdir"
    host.mkdir()
    loaded("volume", "create", "--opt", "type=none", "--opt", "o=bind", "--opt", f"device={host}", "bound")
    loaded("run", "--rm", "-v", "bound:/b", "busybox", "sh", "-c", "echo from-container > /b/f")
    assert (host / "f").read_text() == "from-container\n"
    assert _mounted_below(config.data_root) == []
    loaded(
        "volume", "create", "--opt", "type=none", "--opt", "o=bind", "--opt", "device=/no/such/dir", "broken"
    )
    failed = loaded("run", "--rm", "-v", "broken:/b", "busybox", "true", check=False)
    assert "failed to mount local volume" in _error(failed) and "/no/such/dir" in failed.stderr
    loaded("volume", "rm", "scratchpad", "bound", "broken")
    assert (host / "f").exists()  # a bind volume's removal leaves its device alone
    assert _mounted_below(config.data_root) == []


def test_volumes_from_read_only_and_cp(loaded: DockerCLI, scratch: Path) -> None:
    host = scratch / "shared"
    host.mkdir()
    loaded("create", "--name", "donor", "-v", "kept:/kept", "-v", "/anon", "-v", f"{host}:/host", "busybox")
    loaded("run", "--rm", "--volumes-from", "donor", "busybox", "sh", "-c",
           "echo k > /kept/f; echo a > /anon/f; echo h > /host/f")  # fmt: skip
    assert (host / "f").read_text() == "h\n"
    out = loaded("run", "--rm", "--volumes-from", "donor:ro", "busybox", "sh", "-c",
                 "cat /kept/f /anon/f /host/f; touch /kept/g 2>&1 || true")  # fmt: skip
    assert out.stdout.startswith("k\na\nh\n") and "Read-only file system" in out.stdout
    loaded("run", "-d", "--name", "ro", "-v", "kept:/kept:ro", "busybox", "sleep", "60")
    mounts = {m["Destination"]: m for m in json.loads(loaded("inspect", "ro").stdout)[0]["Mounts"]}
    assert mounts["/kept"]["RW"] is False and mounts["/kept"]["Mode"] == "ro"
    assert "Read-only file system" in _error(loaded("exec", "ro", "touch", "/kept/x", check=False))

    # docker cp into and out of a volume, of a running and of a stopped container.
    (scratch / "in.txt").write_text("copied in\n")
    loaded("cp", str(scratch / "in.txt"), "donor:/kept/in.txt")
    assert loaded("run", "--rm", "-v", "kept:/kept", "busybox", "cat", "/kept/in.txt").stdout == "copied in\n"
    loaded("cp", "donor:/kept/f", str(scratch / "out.txt"))
    assert (scratch / "out.txt").read_text() == "k\n"
    loaded("cp", "ro:/kept/in.txt", str(scratch / "out2.txt"))
    assert (scratch / "out2.txt").read_text() == "copied in\n"
    assert "marked read-only" in _error(loaded("cp", str(scratch / "in.txt"), "ro:/kept/x", check=False))
    # export leaves the volumes out, as dockerd's does: only the mount point is there.
    exported = subprocess.run(
        [loaded.binary, "-H", loaded.host, "export", "ro"], env=loaded.env, capture_output=True, check=True
    ).stdout
    listed = subprocess.run(["tar", "-t"], input=exported, capture_output=True, check=True).stdout.decode()
    assert "kept/\n" in listed and "kept/f" not in listed and "kept/in.txt" not in listed
    loaded("rm", "-f", "ro")
    loaded("rm", "-v", "donor")
    assert loaded("volume", "ls", "-q").stdout.split() == ["kept"]
    loaded("volume", "rm", "kept")


def test_docker_py_df_and_events(loaded: DockerCLI, config: DaemonConfig) -> None:
    client = docker.DockerClient(base_url=config.hosts[0], version="auto")
    try:
        since = time.time()
        volume = client.volumes.create("measured", labels={"by": "docker-py"})
        assert volume.attrs["Labels"] == {"by": "docker-py"}
        client.containers.run(
            "busybox", ["sh", "-c", "head -c 12345 /dev/zero > /m/f"], volumes={"measured": {"bind": "/m"}},
            name="measurer",
        )  # fmt: skip
        df = client.df()
        entry = next(v for v in df["Volumes"] if v["Name"] == "measured")
        assert entry["UsageData"] == {"Size": 12345, "RefCount": 1}
        verbose = loaded("system", "df", "-v").stdout
        assert re.search(r"measured\s+1\s+12.35kB", verbose), verbose
        assert [v.name for v in client.volumes.list(filters={"label": "by=docker-py"})] == ["measured"]
        client.containers.get("measurer").remove()
        volume.remove()
        events = client.events(since=since, until=time.time(), decode=True, filters={"type": "volume"})
        seen = [(e["Action"], e["Actor"]["ID"]) for e in events]
        assert seen == [
            ("create", "measured"),
            ("mount", "measured"),
            ("unmount", "measured"),
            ("destroy", "measured"),
        ]
    finally:
        client.close()


def test_bind_propagation_applies(loaded: DockerCLI, scratch: Path) -> None:
    """A bind with ``rslave`` sees what the host mounts below it later; an ``rprivate`` one does not."""
    host = scratch / "prop"
    host.mkdir()
    subprocess.run(["mount", "--bind", str(host), str(host)], check=True)
    try:
        subprocess.run(["mount", "--make-rshared", str(host)], check=True)
        (host / "sub").mkdir()
        loaded("run", "-d", "--name", "slave", "-v", f"{host}:/p:rslave", "busybox", "sleep", "60")
        loaded("run", "-d", "--name", "private", "-v", f"{host}:/p", "busybox", "sleep", "60")
        subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(host / "sub")], check=True)
        try:
            (host / "sub" / "marker").write_text("x")
            assert loaded("exec", "slave", "ls", "/p/sub").stdout == "marker\n"
            assert loaded("exec", "private", "ls", "/p/sub").stdout == ""
        finally:
            loaded("rm", "-f", "slave", "private")
            subprocess.run(["umount", str(host / "sub")], check=True)
    finally:
        subprocess.run(["umount", str(host)], check=True)
