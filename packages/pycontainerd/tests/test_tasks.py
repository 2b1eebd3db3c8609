"""Containers and tasks end to end: real containers (pyrunc) under real monitors, on a busybox image built
offline and imported; the manager is this process, or a child process killed to show tasks outlive it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyrunc_acceptance_oci_images as oci_images  # registered by conftest.py
import pytest

from pycontainerd import (
    AlreadyExistsError,
    Client,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    Resources,
    TaskError,
)
from pycontainerd._tasks import Task, TaskStatus
from pycontainerd.oci import with_args, with_env, with_memory_limit, with_rlimits, with_user

if TYPE_CHECKING:
    from collections.abc import Iterator

    from pycontainerd.oci import SpecOpt


@pytest.fixture(scope="module")
def archive(layout: object, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path: Path = oci_images.write_oci_archive(layout, tmp_path_factory.mktemp("archive") / "busybox.tar")
    return path


@pytest.fixture
def client(tmp_path: Path, archive: Path) -> Iterator[Client]:
    with Client(root=tmp_path / "root", state=tmp_path / "state") as opened:
        with archive.open("rb") as f:
            opened.import_archive(f)
        yield opened
        for task in opened.tasks.list():
            task.delete(force=True)
        for container in opened.containers.list():
            opened.containers.delete(container.id, force=True)
        assert not any((tmp_path / "state" / "tasks").glob("*/*")), "task directories left behind"


def _image(client: Client) -> str:
    return client.images()[0].name


def _task(client: Client, container_id: str, *opts: SpecOpt, stdin: bool = False) -> Task:
    client.containers.create(container_id, _image(client), *opts)
    return client.tasks.create(container_id, stdin=stdin)


def _run(client: Client, container_id: str, *args: str) -> tuple[bytes, bytes, int]:
    task = _task(client, container_id, with_args(list(args)))
    out: dict[int, bytes] = {1: b"", 2: b""}
    with task.attach() as attachment:
        task.start()
        for stream, data in attachment.frames():
            out[stream] += data
    status = task.wait(timeout=30).status
    task.delete()
    return out[1], out[2], status


def test_a_task_runs_and_reports_its_output_and_exit(client: Client) -> None:
    assert _run(client, "hello", "sh", "-c", "echo hello; echo oops >&2; exit 3") == (
        b"hello\n",
        b"oops\n",
        3,
    )
    topics = [e.topic for e in client.events.history("id==hello")]
    # the monitor may record the exit before this process has published the start: both are there
    assert topics[:2] == ["/containers/create", "/tasks/create"] and topics[-1] == "/tasks/delete"
    assert sorted(topics[2:4]) == ["/tasks/exit", "/tasks/start"]


def test_signals_give_128_plus_n(client: Client) -> None:
    task = _task(client, "sleeper", with_args(["sleep", "60"]))
    task.start()
    assert task.status() is TaskStatus.RUNNING
    task.kill(signal.SIGKILL)
    assert task.wait(timeout=30).status == 137
    assert task.status() is TaskStatus.STOPPED
    task.delete()
    task = client.tasks.create("sleeper")
    task.start()
    task.kill(signal.SIGTERM)  # sleep as its namespace's init has no handler: the kernel drops it
    time.sleep(0.3)
    assert task.status() is TaskStatus.RUNNING
    task.kill(signal.SIGKILL, all=True)
    assert task.wait(timeout=30).status == 137


def test_environment_user_and_stdin(client: Client) -> None:
    task = _task(
        client, "reader", with_env(["GREETING=hi"]), with_user("nobody"),
        with_args(["sh", "-c", 'read line; echo "$GREETING $line $(id -u)"']), stdin=True,
    )  # fmt: skip
    with task.attach(stdin=True) as attachment:
        task.start()
        attachment.write_stdin(b"there\n")
        attachment.close_stdin()
        output = b"".join(data for _, data in attachment.frames())
    assert output == b"hi there 65534\n"
    assert task.wait(timeout=30).status == 0


def test_pause_resume_exec_ps_metrics(client: Client) -> None:
    task = _task(client, "busy", with_args(["sh", "-c", "while true; do sleep 0.05; done"]))
    task.start()
    task.pause()
    assert task.status() is TaskStatus.PAUSED
    task.resume()
    assert task.status() is TaskStatus.RUNNING
    process = task.exec("probe", ["sh", "-c", "echo from-exec; exit 5"], attach=True)
    assert process.attachment is not None
    with process.attachment as attachment:
        assert b"".join(data for _, data in attachment.frames()) == b"from-exec\n"
    assert process.wait(timeout=30).status == 5
    assert task.pid in task.processes()
    task.update(Resources(memory_limit=48 << 20, pids_limit=40))
    metrics = task.metrics()
    assert (metrics.memory.limit, metrics.pids.limit) == (48 << 20, 40)
    assert metrics.pids.current >= 2 and metrics.memory.usage > 0
    with pytest.raises(InvalidArgumentError, match=r"Resources\.memory_limit: an integer, not .lots."):
        Resources(memory_limit="lots")  # type: ignore[arg-type]
    with pytest.raises(TaskError, match=r"^update task busy: .*cpuset\.cpus"):
        task.update(Resources(cpuset_cpus="4096"))  # no such CPU: the kernel refuses it
    with pytest.raises(AlreadyExistsError, match="exec probe already exists"):
        task.exec("probe", ["true"])
    with pytest.raises(FailedPreconditionError, match="running"):
        task.delete()
    assert task.delete(force=True).status == 137


def test_resources_are_the_oci_fields_they_set_and_refuse_what_is_not_of_their_type() -> None:
    assert Resources().to_oci() == {}
    assert Resources(memory_limit=64 << 20, cpu_shares=512, cpuset_cpus="0-1", pids_limit=-1).to_oci() == {
        "memory": {"limit": 64 << 20},
        "cpu": {"shares": 512, "cpus": "0-1"},
        "pids": {"limit": -1},
    }
    for field, value in (
        ("pids_limit", True),
        ("cpu_shares", -1),
        ("cpuset_mems", "0;1"),
        ("memory_swap", 1 << 63),
    ):
        with pytest.raises(InvalidArgumentError, match=rf"^Resources\.{field}: "):
            Resources(**{field: value})


def test_a_detached_tasks_output_is_kept_in_its_log(client: Client) -> None:
    task = _task(
        client, "logger", with_args(["sh", "-c", "for i in 1 2 3; do echo line $i; done; echo err >&2"])
    )
    task.start()
    task.wait(timeout=30)
    logged = list(task.logs())
    assert b"".join(data for stream, data in logged if stream == 1) == b"line 1\nline 2\nline 3\n"
    assert b"".join(data for stream, data in logged if stream == 2) == b"err\n"


def test_oom_is_reported_in_the_status_and_as_an_event(client: Client) -> None:
    task = _task(client, "hog", with_memory_limit(16 << 20), with_args(["sh", "-c", "tail /dev/zero"]))
    task.start()
    status = task.wait(timeout=60)
    assert (status.status, status.oom_killed) == (137, True)
    ooms = client.events.history("topic==/tasks/oom")
    assert ooms and {e.fields["id"] for e in ooms} == {"hog"}  # one per kernel notice, as containerd


def test_bad_input_leaves_nothing_behind(client: Client, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="nosuchuser"):
        client.containers.create("baduser", _image(client), with_user("nosuchuser"))
    with pytest.raises(NotFoundError):
        client.containers.get("baduser")
    assert [s.key for s in client.metadata.snapshots.list(client.namespace) if "baduser" in s.key] == []
    client.containers.create("dup", _image(client))
    with pytest.raises(AlreadyExistsError, match="container dup already exists"):
        client.containers.create("dup", _image(client))
    client.tasks.create("dup")
    with pytest.raises(AlreadyExistsError, match="task dup already exists"):
        client.tasks.create("dup")
    client.containers.create("noexe", _image(client), with_args(["/no/such/program"]))
    with pytest.raises(TaskError, match=r"create task noexe: .*/no/such/program"):
        client.tasks.create("noexe")
    assert not (tmp_path / "state" / "tasks" / "default" / "noexe").exists()


_MANAGER = textwrap.dedent(
    """
    import sys
    from pycontainerd import Client
    from pycontainerd.oci import with_args

    root, state, image = sys.argv[1:4]
    with Client(root=root, state=state) as client:
        for n, code in enumerate((0, 7, 42)):
            script = f"for i in $(seq 1 30); do echo tick $i; sleep 0.1; done; exit {code}"
            client.containers.create(f"t{n}", image, with_args(["sh", "-c", script]))
            client.tasks.create(f"t{n}").start()
    print("started", flush=True)
    import time
    time.sleep(600)
    """
)


def test_tasks_outlive_a_manager_killed_with_sigkill(client: Client, tmp_path: Path) -> None:
    manager = subprocess.Popen(
        [sys.executable, "-c", _MANAGER, str(client.root), str(client.state), _image(client)],
        stdout=subprocess.PIPE,
    )
    try:
        assert manager.stdout is not None
        assert manager.stdout.readline() == b"started\n"
    finally:
        manager.kill()  # SIGKILL: it never cleans up
        manager.wait()
    with Client(root=client.root, state=client.state) as fresh:  # a new manager
        tasks = fresh.tasks.list()
        assert [t.id for t in tasks] == ["t0", "t1", "t2"]
        assert all(t.status() is TaskStatus.RUNNING for t in tasks)
        before = len(b"".join(d for _, d in tasks[0].logs()))
        time.sleep(0.5)
        assert len(b"".join(d for _, d in tasks[0].logs())) > before  # output still flows to the log
        assert [t.wait(timeout=60).status for t in tasks] == [0, 7, 42]
        assert b"tick 30\n" in b"".join(d for _, d in tasks[2].logs())
        for t in tasks:
            t.delete()


def test_a_task_whose_monitor_died_is_reconciled(client: Client) -> None:
    task = _task(client, "orphan", with_args(["sleep", "60"]))
    task.start()
    monitor_pid = int((task.directory / "monitor.pid").read_text().split()[0])
    os.kill(monitor_pid, signal.SIGKILL)
    time.sleep(0.2)
    again = client.tasks.get("orphan")
    assert again.status() is TaskStatus.STOPPED
    assert again.wait(timeout=10).status == 255
    assert again.delete().status == 255
    exits = client.events.history("topic==/tasks/exit", "id==orphan")
    assert any(e.fields.get("reason") == "monitor died" for e in exits)


def test_fifty_tasks_started_from_threads(client: Client) -> None:
    image = _image(client)
    errors: list[BaseException] = []
    codes: dict[int, int] = {}

    def one(n: int) -> None:
        try:
            with Client(root=client.root, state=client.state) as own:
                own.containers.create(f"many{n}", image, with_args(["sh", "-c", f"exit {n % 7}"]))
                task = own.tasks.create(f"many{n}")
                task.start()
                codes[n] = task.wait(timeout=120).status
                task.delete()
                own.containers.delete(f"many{n}")
        except BaseException as exc:  # noqa: BLE001 -- reported below
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(n,)) for n in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not errors, errors[:3]
    assert codes == {n: n % 7 for n in range(50)}
    assert client.containers.list() == []
    # No zombie that this process or a monitor should have reaped (a monitor that has exited is the
    # host init's to reap: it reparents there, as a shim does).
    table = subprocess.run(
        ["ps", "-eo", "pid=,ppid=,stat="], capture_output=True, text=True, check=True
    ).stdout
    rows = [line.split() for line in table.splitlines()]
    assert [r for r in rows if r[2].startswith("Z") and r[1] != "1" and _ours(int(r[1]))] == []


def _ours(pid: int) -> bool:
    """Whether ``pid`` is this test process or a pycontainerd monitor."""
    if pid == os.getpid():
        return True
    try:
        return "pycontainerd-monitor" in Path(f"/proc/{pid}/cmdline").read_text()
    except OSError:
        return False


def test_container_records_are_gc_roots(client: Client) -> None:
    client.containers.create("keep", _image(client))
    client.remove_image(_image(client))
    client.gc()
    container = client.containers.get("keep")
    snapshotter = client.snapshotter(container.snapshotter)
    assert snapshotter.stat(container.snapshot_key).parent is not None  # the chain survived the GC
    info = json.dumps(container.spec)
    assert '"cgroupsPath": "pyrunc/default@keep"' in info


def test_an_unpacked_image_is_not_unpacked_again(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    unpacked: list[str] = []
    unpack = client.unpack

    def counted(name: str, **kwargs: Any) -> str:
        unpacked.append(name)
        return unpack(name, **kwargs)

    monkeypatch.setattr(client, "unpack", counted)
    first = client.containers.create("first", _image(client))
    second = client.containers.create("second", _image(client))
    assert unpacked == [_image(client)]  # imported, not unpacked: the first container unpacked it
    parents = {client.snapshotter().stat(c.snapshot_key).parent for c in (first, second)}
    assert len(parents) == 1 and None not in parents
    # A snapshot that is gone (removed by hand) is noticed, and the image unpacked again.
    for container_id in ("first", "second"):
        client.containers.delete(container_id)
    (chain,) = parents
    assert chain is not None
    client.remove_snapshot(chain)
    client.containers.create("third", _image(client))
    assert unpacked == [_image(client)] * 2
    assert client.snapshotter().stat(chain).kind.value == "committed"


def test_the_rootfs_is_mounted_for_a_user_only(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    from pycontainerd._tasks import containers as _containers

    mounted: list[str] = []
    mount_all = _containers.mount_all

    def recorded(mounts: Any, target: Path) -> None:
        mounted.append(target.name)
        mount_all(mounts, target)

    monkeypatch.setattr(_containers, "mount_all", recorded)
    plain = client.containers.create("plain", _image(client))
    assert mounted == []
    assert plain.spec["process"]["user"] == {"uid": 0, "gid": 0}
    named = client.containers.create("named", _image(client), with_user("nobody"))
    assert len(mounted) == 1 and mounted[0].startswith("rootfs-")
    assert named.spec["process"]["user"] == {"uid": 65534, "gid": 65534}
    assert list((client.state / "tmp").iterdir()) == []  # unmounted and removed
    assert mounted[0] not in Path("/proc/self/mountinfo").read_text()


def test_attach_detach_and_reattach_while_it_runs(client: Client) -> None:
    task = _task(
        client, "ticker", with_args(["sh", "-c", "i=0; while true; do i=$((i+1)); echo $i; sleep 0.02; done"])
    )
    task.start()
    for _ in range(2):
        with task.attach() as attachment:
            frames = attachment.frames()
            seen = b""
            while seen.count(b"\n") < 5:
                seen += next(frames)[1]
        assert seen.split(b"\n")[0].isdigit()
    assert task.status() is TaskStatus.RUNNING  # detaching never stopped it
    logged = b"".join(data for _, data in task.logs())
    numbers = [int(n) for n in logged.split()]
    assert numbers == list(range(1, len(numbers) + 1))  # the log kept everything, in order
    task.delete(force=True)


def test_exec_with_a_terminal_and_a_resize(client: Client) -> None:
    task = _task(client, "term", with_args(["sleep", "60"]))
    task.start()
    process = task.exec("shell", ["sh", "-c", "read x; stty size; tty"], tty=True, stdin=True, attach=True)
    assert process.attachment is not None
    with process.attachment as attachment:
        process.resize(33, 99)
        attachment.write_stdin(b"go\n")
        output = b"".join(data for _, data in attachment.frames())
    assert b"33 99" in output and b"/dev/pts/" in output
    assert process.wait(timeout=30).status == 0
    task.delete(force=True)


def test_exec_as_another_user_in_another_directory(client: Client) -> None:
    task = _task(client, "u", with_args(["sleep", "60"]))
    task.start()
    process = task.exec(
        "who",
        ["sh", "-c", "id -u; id -g; pwd; echo $EXTRA"],
        user="nobody",
        cwd="/tmp",
        env=["EXTRA=1"],
        attach=True,
    )
    assert process.attachment is not None
    with process.attachment as attachment:
        output = b"".join(data for _, data in attachment.frames())
    assert output.split() == [b"65534", b"65534", b"/tmp", b"1"]
    numeric = task.exec("n", ["id", "-u"], user="123:45", attach=True)
    assert numeric.attachment is not None
    with numeric.attachment as attachment:
        assert b"".join(data for _, data in attachment.frames()) == b"123\n"
    with pytest.raises(NotFoundError, match="no user 'nosuchuser'"):
        task.exec("m", ["true"], user="nosuchuser")
    task.delete(force=True)


def test_the_init_and_monitor_inherit_none_of_the_creators_descriptors(client: Client) -> None:
    # An engine creates tasks with many descriptors open; an init limited to 16 must still start.
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(64)]
    try:
        task = _task(
            client,
            "fds",
            with_args(["sh", "-c", "ls /proc/self/fd | wc -l"]),
            with_rlimits([("nofile", 16, 16)]),
        )
        monitor = int((task.directory / "monitor.pid").read_text().split()[0])
        monitor_fds = {int(fd) for fd in os.listdir(f"/proc/{monitor}/fd")}
        assert not monitor_fds & set(held)
        with task.attach() as attachment:
            task.start()
            output = b"".join(data for _, data in attachment.frames())
        assert task.wait(timeout=30).status == 0 and int(output) <= 5  # stdio, and ls's own
        task.delete()
    finally:
        for fd in held:
            os.close(fd)


def test_an_exited_exec_is_deleted_with_its_files_and_its_id_is_free_again(client: Client) -> None:
    task = _task(client, "x", with_args(["sleep", "60"]))
    task.start()
    running = task.exec("slow", ["sleep", "60"])
    with pytest.raises(FailedPreconditionError, match="is running"):
        running.delete()
    for round in range(2):  # the same id, again once deleted
        process = task.exec("probe", ["sh", "-c", f"echo {round}; exit 3"])
        assert process.wait(timeout=30).status == 3
        assert process.delete().status == 3
        assert not list(task.directory.glob("probe.*"))
    running.kill(signal.SIGKILL)
    running.wait(timeout=30)
    running.delete()
    assert not list(task.directory.glob("slow.*"))
    task.delete(force=True)


def test_a_containers_resources_are_updated_for_its_next_task(client: Client) -> None:
    client.containers.create("upd", _image(client), with_args(["sleep", "60"]), with_memory_limit(64 << 20))
    client.containers.update_resources("upd", Resources(pids_limit=20))
    resources = client.containers.get("upd").spec["linux"]["resources"]
    assert (resources["memory"]["limit"], resources["pids"]["limit"]) == (64 << 20, 20)  # merged
    with pytest.raises(InvalidArgumentError, match=r"update container upd: linux\.resources\.blockIO"):
        client.containers.update_resources("upd", Resources(blkio_weight=70000))  # a u16 in the spec
    task = client.tasks.create("upd")
    task.start()
    assert task.metrics().pids.limit == 20
    task.delete(force=True)
    client.containers.delete("upd")
