"""pyrunc as the runc binary of a real containerd 1.6 (``ctr run --runc-binary``).

A private containerd (tests/peers.py) is started once for this module; the busybox image is written
offline (tests/oci_images.py) and imported as an OCI archive. containerd-shim-runc-v2 then calls
pyrunc exactly as it calls runc: ``create --bundle B --pid-file B/init.pid ID``, ``start``,
``exec --process F --detach --pid-file P``, ``kill``, ``pause``, ``resume``, ``ps --format json``,
``delete``, with ``--root <the module's runc root> --log B/log.json --log-format json`` first.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator


import pyrunc_acceptance_oci_images as oci
import pyrunc_acceptance_peers as peers

pytestmark = [pytest.mark.dropin, pytest.mark.integration, pytest.mark.cgroup]

IMAGE = "pyrunc.test/busybox:latest"
_ids = itertools.count()


class Ctr:
    """``ctr`` against the module's containerd, with pyrunc as the runc binary of every container."""

    def __init__(self, peer: Any, pyrunc: Path, fifo_dir: Path) -> None:
        self.peer = peer
        self.pyrunc = pyrunc
        self.fifo_dir = fifo_dir

    def new_id(self, what: str) -> str:
        return f"{what}-{os.getpid()}-{next(_ids)}"

    def run_args(
        self,
        *options: str,
        container_id: str,
        args: tuple[str, ...],
        image: str = IMAGE,
        runtime: Path | str | None = None,
    ) -> list[str]:
        """The arguments of ``ctr run`` (after ctr's global flags); the runtime is pyrunc by default."""
        return [
            "run",
            "--runc-binary",
            str(runtime or self.pyrunc),
            "--runc-root",
            str(self.peer.runc_root),
            "--fifo-dir",
            str(self.fifo_dir),
            *options,
            image,
            container_id,
            *args,
        ]

    def run(self, *args: str, options: tuple[str, ...] = ("--rm",), runtime: Path | str | None = None) -> Any:
        """``ctr run --rm ... IMAGE ID ARGS``; returns the CompletedProcess (exit code not checked)."""
        run_args = self.run_args(*options, container_id=self.new_id("run"), args=args, runtime=runtime)
        return self.peer.ctr(*run_args, check=False)

    def __call__(self, *args: str, check: bool = True) -> Any:
        return self.peer.ctr(*args, check=check)

    def status(self, container_id: str) -> str:
        for line in self.peer.ctr("tasks", "list").stdout.splitlines()[1:]:
            name, _pid, status = line.split()
            if name == container_id:
                return status
        return "absent"

    def wait_for_status(self, container_id: str, status: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while (now := self.status(container_id)) != status:
            assert time.monotonic() < deadline, f"task {container_id} is {now}, not {status}"
            time.sleep(0.05)

    @contextlib.contextmanager
    def detached(self, *args: str, options: tuple[str, ...] = ()) -> Iterator[str]:
        """``ctr run -d``: a running task for the duration; killed and deleted afterwards."""
        container_id = self.new_id("bg")
        self.peer.ctr(*self.run_args("--detach", *options, container_id=container_id, args=args))
        try:
            yield container_id
        finally:
            self.peer.ctr("tasks", "kill", "--all", "--signal", "SIGKILL", container_id, check=False)
            deadline = time.monotonic() + 10
            while True:  # the test may have deleted the task already ("not found")
                deleted = self.peer.ctr("tasks", "delete", container_id, check=False)
                if deleted.returncode == 0 or "not found" in deleted.stderr:
                    break
                if time.monotonic() > deadline:
                    self.peer.ctr("tasks", "delete", "--force", container_id, check=False)
                    break
                time.sleep(0.05)
            self.peer.ctr("containers", "delete", container_id)


@pytest.fixture(scope="module")
def ctr(tmp_path_factory: pytest.TempPathFactory, pyrunc_bin: Path) -> Iterator[Ctr]:
    """A private containerd with the busybox image imported, for the whole module."""
    image = oci.write_busybox_layout(tmp_path_factory.mktemp("image") / "oci")
    archive = oci.write_oci_archive(image, image.directory.parent / "busybox.oci.tar")
    with peers.containerd(tmp_path_factory.mktemp("containerd")) as peer:
        peer.ctr("images", "import", "--base-name", IMAGE.rpartition(":")[0], str(archive))
        fifo_dir = tmp_path_factory.mktemp("fifo")
        yield Ctr(peer, pyrunc_bin, fifo_dir)


def _cgroup_dir(ctr: Ctr, controller: str, container_id: str) -> Path:
    # ctr's default cgroupsPath is /<namespace>/<id>
    return Path("/sys/fs/cgroup") / controller / ctr.peer.namespace / container_id


# --------------------------------------------------------------------------------------------------


def test_the_image_is_imported_under_its_name(ctr: Ctr) -> None:
    listing = ctr("images", "list", "--quiet").stdout.split()
    assert IMAGE in listing


def test_run_echo_hi(ctr: Ctr) -> None:
    result = ctr.run("echo", "hi")
    assert (result.returncode, result.stdout, result.stderr) == (0, "hi\n", "")


def test_nonzero_exit_code_passes_through(ctr: Ctr) -> None:
    result = ctr.run("sh", "-c", "exit 3")
    assert result.returncode == 3, result.stderr


def test_the_container_sees_its_own_namespaces_and_image(ctr: Ctr) -> None:
    result = ctr.run("sh", "-c", "echo $$; id -u; cat /etc/passwd | head -1; echo $PATH")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "1",
        "0",
        "root:x:0:0:root:/root:/bin/sh",
        oci.PATH_ENV.removeprefix("PATH="),
    ]


def test_no_runtime_state_is_left_after_run_rm(ctr: Ctr) -> None:
    assert ctr.run("true").returncode == 0
    state = ctr.peer.runc_root / ctr.peer.namespace
    assert not state.exists() or list(state.iterdir()) == []


def test_exec_in_a_detached_task(ctr: Ctr) -> None:
    with ctr.detached("sleep", "300") as cid:
        assert ctr.status(cid) == "RUNNING"
        result = ctr("tasks", "exec", "--exec-id", "e1", cid, "sh", "-c", "echo in")
        assert result.stdout == "in\n"
        failed = ctr("tasks", "exec", "--exec-id", "e2", cid, "sh", "-c", "exit 5", check=False)
        assert failed.returncode == 5, failed.stderr
        # the exec runs in the container's pid namespace, next to its init
        ps = ctr("tasks", "exec", "--exec-id", "e3", cid, "ps", "-o", "pid,args").stdout
        assert any(line.split()[:3] == ["1", "sleep", "300"] for line in ps.splitlines()), ps


def test_kill_sigkill_stops_the_task(ctr: Ctr) -> None:
    with ctr.detached("sleep", "300") as cid:
        pid = int(ctr("tasks", "list").stdout.split(cid, 1)[1].split()[0])
        ctr("tasks", "kill", "--signal", "SIGKILL", cid)
        ctr.wait_for_status(cid, "STOPPED")
        assert "non-zero exit code 137" in ctr("tasks", "delete", cid).stderr
        assert not Path(f"/proc/{pid}").exists()


def test_kill_sigterm_reaches_a_handler(ctr: Ctr) -> None:
    script = "trap 'exit 0' TERM; while :; do sleep 0.05; done"
    with ctr.detached("sh", "-c", script) as cid:
        time.sleep(0.2)  # let sh install its trap
        ctr("tasks", "kill", "--signal", "SIGTERM", cid)
        ctr.wait_for_status(cid, "STOPPED")
        deleted = ctr("tasks", "delete", cid)
        assert "non-zero exit code" not in deleted.stderr, deleted.stderr  # the trap's exit 0


def test_pause_and_resume(ctr: Ctr) -> None:
    with ctr.detached("sleep", "300") as cid:
        freezer = _cgroup_dir(ctr, "freezer", cid) / "freezer.state"
        ctr("tasks", "pause", cid)
        assert ctr.status(cid) == "PAUSED"
        assert freezer.read_text().strip() == "FROZEN"
        ctr("tasks", "resume", cid)
        assert ctr.status(cid) == "RUNNING"
        assert freezer.read_text().strip() == "THAWED"
        assert ctr("tasks", "exec", "--exec-id", "after", cid, "true").returncode == 0


def test_task_ps_lists_the_container_processes(ctr: Ctr) -> None:
    with ctr.detached("sh", "-c", "sleep 300 & exec sleep 301") as cid:
        procs = _cgroup_dir(ctr, "pids", cid) / "cgroup.procs"
        deadline = time.monotonic() + 5
        while len(procs.read_text().split()) < 2:
            assert time.monotonic() < deadline, procs.read_text()
            time.sleep(0.05)
        lines = ctr("tasks", "ps", cid).stdout.splitlines()
        assert lines[0].split() == ["PID", "INFO"]
        pids = {int(line.split()[0]) for line in lines[1:]}
        assert pids == {int(p) for p in procs.read_text().split()}
        assert len(pids) == 2


def test_memory_limit_reaches_the_cgroup(ctr: Ctr) -> None:
    # ctr's default spec mounts no cgroupfs in the container: read the limit from the host side
    with ctr.detached("sleep", "300", options=("--memory-limit", str(64 << 20))) as cid:
        limit = _cgroup_dir(ctr, "memory", cid) / "memory.limit_in_bytes"
        assert limit.read_text() == f"{64 << 20}\n"


@pytest.mark.tty
def test_run_with_a_terminal(ctr: Ctr) -> None:
    argv = ctr.peer.ctr_argv(*ctr.run_args("--rm", "--tty", container_id=ctr.new_id("tty"), args=("sh",)))
    code, screen = peers.run_in_pty(argv, script=[(b"# ", b"tty; echo typed-$((6*7)); exit 4\r")])
    assert b"/dev/pts/0" in screen, screen
    assert b"typed-42" in screen, screen
    assert code == 4, screen


def test_pulled_from_a_private_registry(ctr: Ctr, tmp_path: Path) -> None:
    image = oci.write_busybox_layout(tmp_path / "oci")
    with peers.registry(tmp_path / "registry") as reg:
        reference = oci.push_to_registry(image, reg.address, "pulled/busybox")
        ctr("images", "pull", "--plain-http", reference)
    try:
        args = ctr.run_args(
            "--rm", container_id=ctr.new_id("pulled"), args=("echo", "pulled"), image=reference
        )
        result = ctr.peer.ctr(*args, check=False)
        assert (result.returncode, result.stdout) == (0, "pulled\n"), result.stderr
    finally:
        ctr("images", "remove", "--sync", reference)


@pytest.mark.runc
@pytest.mark.parametrize(
    "options",
    [
        pytest.param((), id="defaults"),
        pytest.param(("--privileged",), id="privileged"),
        pytest.param(("--user", "1000:1000", "--read-only"), id="user-read-only"),
    ],
)
def test_same_answers_as_runc(ctr: Ctr, options: tuple[str, ...]) -> None:
    """containerd's default spec (no seccomp, its own capability set) gives the same answers."""
    results = {
        "runc": ctr.run(
            "sh", "-c", peers.probe_script(), options=("--rm", *options), runtime=peers.require("runc")
        ),
        "pyrunc": ctr.run("sh", "-c", peers.probe_script(), options=("--rm", *options)),
    }
    runc, pyrunc = results["runc"], results["pyrunc"]
    assert pyrunc.returncode == runc.returncode, f"runc: {runc.stderr}\npyrunc: {pyrunc.stderr}"
    answers = {name: result.stdout for name, result in results.items()}
    assert answers["pyrunc"] == answers["runc"], peers.diff_answers(answers)
