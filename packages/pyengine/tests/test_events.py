"""Events, disk usage, history, container prune and image removal conflicts, through the real
docker CLI and docker-py against a private engine with busybox loaded offline."""

from __future__ import annotations

import subprocess
import time

import docker

from pyengine import DaemonConfig

TYPE_CHECKING = False
if TYPE_CHECKING:
    from conftest import DockerCLI

FORMAT = "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}"


def _events(cli: DockerCLI, since: float, *args: str, fmt: str = FORMAT) -> list[str]:
    """The events since ``since`` until now, replayed (``--until`` in the past ends the stream)."""
    until = time.time()
    done = cli("events", "--since", f"{since:.6f}", "--until", f"{until:.6f}", "--format", fmt, *args)
    return done.stdout.splitlines()


def test_a_container_life_is_told_in_order(loaded: DockerCLI) -> None:
    since = time.time()
    loaded("run", "--rm", "--name", "once", "--label", "team=a", "busybox", "true")
    assert _events(loaded, since, "--filter", "type=container") == [
        "container create once",
        "container attach once",
        "container start once",
        "container die once",
        "container destroy once",
    ]
    # sleep, as init, ignores SIGTERM: stop kills it after -t.
    since = time.time()
    loaded("run", "-d", "--name", "sleeper", "busybox", "sleep", "1000")
    loaded("stop", "-t", "1", "sleeper")
    loaded("start", "sleeper")
    loaded("kill", "-s", "USR1", "sleeper")
    loaded("rm", "-f", "sleeper")
    attributes = ("signal", "exitCode")
    fmt = "{{.Action}} " + "".join(
        f"{{{{with .Actor.Attributes.{a}}}}}{{{{.}}}}{{{{end}}}}" for a in attributes
    )
    assert _events(loaded, since, "--filter", "container=sleeper", fmt=fmt) == [
        "create ",
        "start ",
        "kill 15",
        "kill 9",
        "die 137",
        "stop ",
        "start ",
        "kill 10",  # USR1: sleep, as init, ignores it too
        "kill 9",  # rm -f
        "die 137",
        "destroy ",
    ]
    # Filters: by event, by label (the container's labels are its events' attributes), by image.
    assert _events(loaded, since, "--filter", "event=die", fmt="{{.Actor.Attributes.name}}") == [
        "sleeper",
        "sleeper",
    ]
    assert _events(loaded, since - 60, "--filter", "label=team=a", "--filter", "event=start") == [
        "container start once"
    ]
    assert len(_events(loaded, since, "--filter", "image=busybox", "--filter", "type=container")) == 11


def test_events_stream_until_the_until_time(loaded: DockerCLI) -> None:
    """What happens while the stream is open arrives as it happens; the stream ends at until."""
    loaded("create", "--name", "before", "busybox", "true")
    since, until = time.time(), time.time() + 6
    window = ["--since", f"{since:.6f}", "--until", f"{until:.3f}"]
    watching = subprocess.Popen(
        [loaded.binary, "-H", loaded.host, "events", *window, "--format", FORMAT],
        env=loaded.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(1.5)  # the stream is open
        loaded("tag", "busybox", "example.test/events/busybox:v1")
        loaded("rm", "before")
        out, err = watching.communicate(timeout=30)  # ends by itself at until
    finally:
        if watching.poll() is None:
            watching.kill()
            watching.wait()
    assert watching.returncode == 0, err
    assert out.splitlines() == ["image tag example.test/events/busybox:v1", "container destroy before"]


def test_image_events_and_refusals_with_docker_py(loaded: DockerCLI, config: DaemonConfig) -> None:
    client = docker.APIClient(base_url=config.hosts[0], version="auto")
    try:
        since = time.time()
        client.tag("busybox", "example.test/py/busybox", "v2")
        client.remove_image("example.test/py/busybox:v2")
        image_id = client.inspect_image("busybox")["Id"]
        b"".join(client.get_image("busybox"))
        events = list(client.events(since=since, until=time.time(), decode=True))
        assert [(e["Type"], e["Action"], e["Actor"]["Attributes"]["name"]) for e in events] == [
            ("image", "tag", "example.test/py/busybox:v2"),
            ("image", "untag", image_id),
            ("image", "save", image_id),
        ]
        tag = events[0]
        # The old fields are still sent for images and containers, and the times agree.
        assert (tag["status"], tag["id"], tag["scope"]) == ("tag", image_id, "local")
        assert tag["time"] == tag["timeNano"] // 10**9 and since <= tag["timeNano"] / 1e9 <= time.time()
    finally:
        client.close()


def test_events_refuse_what_they_cannot_answer(loaded: DockerCLI) -> None:
    now = f"{time.time():.6f}"
    colour = loaded("events", "--until", now, "--filter", "colour=blue", check=False)
    assert colour.returncode == 1 and "invalid filter 'colour'" in colour.stderr
    backwards = loaded("events", "--since", now, "--until", "1", check=False)
    assert backwards.returncode == 1 and "cannot be after `until` time" in backwards.stderr


def test_system_df_counts_images_containers_and_their_layers(loaded: DockerCLI, config: DaemonConfig) -> None:
    loaded("run", "--name", "writer", "busybox", "dd", "if=/dev/zero", "of=/blob", "bs=1024", "count=300")
    loaded("create", "--name", "idle", "busybox", "true")
    client = docker.APIClient(base_url=config.hosts[0], version="auto")
    try:
        usage = client.df()
    finally:
        client.close()
    (image,) = usage["Images"]
    assert image["RepoTags"] == ["busybox:latest"] and image["Containers"] == 2
    assert usage["LayersSize"] == image["Size"] > 0 and image["SharedSize"] == 0
    sizes = {c["Names"][0]: (c["SizeRw"], c["SizeRootFs"]) for c in usage["Containers"]}
    writer_rw, writer_rootfs = sizes["/writer"]
    idle_rw, idle_rootfs = sizes["/idle"]
    assert 300 * 1024 <= writer_rw < 400 * 1024 and idle_rw < 64 * 1024
    assert writer_rootfs - writer_rw == idle_rootfs - idle_rw > 500 * 1024  # the busybox layer
    assert usage["Volumes"] == [] and usage["BuildCache"] == []

    summary = loaded("system", "df", "--format", "{{.Type}} {{.TotalCount}} {{.Active}}").stdout.splitlines()
    assert summary[:2] == ["Images 1 1", "Containers 2 0"]
    verbose = loaded("system", "df", "-v").stdout
    assert "busybox" in verbose and "writer" in verbose and "idle" in verbose


def test_history_shows_the_config_history(loaded: DockerCLI, config: DaemonConfig) -> None:
    loaded("create", "busybox")  # unpacks the layers, whose sizes history shows
    lines = loaded("history", "--no-trunc", "--format", "{{.ID}}|{{.CreatedBy}}|{{.Size}}", "busybox")
    image_id = loaded("image", "inspect", "busybox", "--format", "{{.Id}}").stdout.strip()
    (line,) = lines.stdout.splitlines()
    shown_id, created_by, size = line.split("|")
    assert (shown_id, created_by) == (image_id, "tests/oci_images.py: busybox-static")
    assert size.endswith(("MB", "kB"))
    client = docker.APIClient(base_url=config.hosts[0], version="auto")
    try:
        (entry,) = client.history("busybox")
        assert entry["Tags"] == ["busybox:latest"] and entry["Size"] > 500 * 1024
    finally:
        client.close()
    missing = loaded("history", "nosuch", check=False)
    assert missing.returncode == 1 and "No such image: nosuch" in missing.stderr


def test_container_prune_removes_the_stopped_ones(loaded: DockerCLI) -> None:
    loaded("run", "-d", "--name", "running", "busybox", "sleep", "1000")
    loaded("create", "--name", "kept", "--label", "keep=yes", "busybox", "true")
    loaded("create", "--name", "old", "busybox", "true")
    loaded("run", "--name", "stopped", "busybox", "true")
    stopped_id = loaded("inspect", "stopped", "--format", "{{.Id}}").stdout.strip()
    since = time.time()
    pruned = loaded("container", "prune", "-f", "--filter", "label!=keep=yes").stdout
    assert stopped_id in pruned and "Total reclaimed space:" in pruned
    names = loaded("ps", "-a", "--format", "{{.Names}}").stdout.split()
    assert sorted(names) == ["kept", "running"]
    assert _events(loaded, since, fmt="{{.Type}} {{.Action}} {{.Actor.Attributes.name}}") == [
        "container destroy stopped",  # the newest first, as listed
        "container destroy old",
        "container prune <no value>",  # a prune's actor has no name
    ]
    # until: only what was created before it.
    assert "kept" not in loaded("container", "prune", "-f", "--filter", "until=1h").stdout
    assert "kept" in loaded("ps", "-a", "--format", "{{.Names}}").stdout


def test_rmi_refuses_images_containers_use_as_dockerd_does(loaded: DockerCLI) -> None:
    image_id = loaded("image", "inspect", "busybox", "--format", "{{.Id}}").stdout.strip()
    short = image_id.removeprefix("sha256:")[:12]
    container_id = loaded("create", "--name", "user", "busybox", "true").stdout.strip()

    by_name = loaded("rmi", "busybox", check=False)
    assert by_name.returncode == 1
    assert (
        f'conflict: unable to remove repository reference "busybox" (must force) - container '
        f"{container_id[:12]} is using its referenced image {short}"
    ) in by_name.stderr
    by_id = loaded("rmi", short, check=False)
    assert by_id.returncode == 1
    assert f"(must be forced) - image is being used by stopped container {container_id[:12]}" in by_id.stderr

    loaded("run", "-d", "--name", "busy", "busybox", "sleep", "1000")
    forced = loaded("rmi", "-f", short, check=False)
    assert forced.returncode == 1 and "(cannot be forced) - image is being used by running container" in (
        forced.stderr
    )
    # Forced by name: the tag goes, the image stays (dangling) for its containers.
    assert loaded("rmi", "-f", "busybox").stdout.split() == ["Untagged:", "busybox:latest"]
    listed = loaded("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}").stdout.split("\n")
    assert listed[0] == f"<none>:<none> {short}"
    assert loaded("images", "-q", "--filter", "dangling=true").stdout.split() == [short]
    # Dangling but used: image prune leaves it.
    assert "Total reclaimed space: 0B" in loaded("image", "prune", "-f").stdout
    loaded("rm", "-f", "busy", "user")
    pruned = loaded("image", "prune", "-f").stdout
    assert f"deleted: {image_id}" in pruned
    assert loaded("images", "-q").stdout == ""
