"""Helpers shared by pyrunc's container tests (test_isolation, test_lifecycle, test_bad_input,
test_vs_runc): build a busybox bundle and edit its config, call a runtime's CLI with its own
``--root`` and clean up every container it made, and check that nothing was left on the host.

The test modules run in pytest's importlib mode, which puts nothing on ``sys.path``: they load this
file with :func:`importlib.util.spec_from_file_location` under a name of its own.
"""

from __future__ import annotations

import ctypes
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyrunc.testing import HostSnapshot, make_busybox_bundle

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    Edit = Callable[[dict[str, Any]], object]
    Result = subprocess.CompletedProcess[str]

PYRUNC = Path(sys.executable).parent / "pyrunc"
RUNC = Path("/usr/sbin/runc")
MiB = 1 << 20

# -- config.json -----------------------------------------------------------------------------------


def read_config(bundle: Path) -> dict[str, Any]:
    config: dict[str, Any] = json.loads((bundle / "config.json").read_text())
    return config


def write_config(bundle: Path, config: dict[str, Any]) -> None:
    (bundle / "config.json").write_text(json.dumps(config, indent=2) + "\n")


def edit_config(bundle: Path, *edits: Edit) -> dict[str, Any]:
    """Apply each edit (a function changing the parsed config in place) and write it back."""
    config = read_config(bundle)
    for edit in edits:
        edit(config)
    write_config(bundle, config)
    return config


_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def setting(path: str, value: object) -> Edit:
    """An edit that sets ``path`` (``"process.user"``, ``"linux.namespaces[0].type"``) to ``value``,
    creating missing objects on the way."""
    steps: list[str | int] = [name if name else int(index) for name, index in _STEP.findall(path)]

    def edit(config: dict[str, Any]) -> None:
        node: Any = config
        for step, following in itertools.pairwise(steps):
            if isinstance(step, str) and step not in node:
                node[step] = [] if isinstance(following, int) else {}
            node = node[step]
        node[steps[-1]] = value

    return edit


def removing(path: str) -> Edit:
    """An edit that deletes the member at the dotted ``path`` (``"process.capabilities"``)."""

    def edit(config: dict[str, Any]) -> None:
        node: Any = config
        names = path.split(".")
        for name in names[:-1]:
            node = node[name]
        del node[names[-1]]

    return edit


def appending(path: str, item: object) -> Edit:
    """An edit that appends ``item`` to the list at ``path`` (created if missing)."""

    def edit(config: dict[str, Any]) -> None:
        node: Any = config
        names = path.split(".")
        for name in names[:-1]:
            node = node.setdefault(name, {})
        node.setdefault(names[-1], []).append(item)

    return edit


def without_namespace(ns_type: str) -> Edit:
    def edit(config: dict[str, Any]) -> None:
        namespaces = config["linux"]["namespaces"]
        namespaces[:] = [ns for ns in namespaces if ns["type"] != ns_type]

    return edit


# -- bundles ---------------------------------------------------------------------------------------


def make_bundle(directory: Path, args: list[str], *edits: Edit, hostname: str = "pyrunc") -> Path:
    """A busybox bundle (pyrunc's default spec, no terminal) running ``args``, with ``edits`` applied."""
    bundle = make_busybox_bundle(directory, args, terminal=False, hostname=hostname)
    edit_config(bundle, *edits)
    return bundle


def make_runc_bundle(directory: Path, args: list[str], *edits: Edit) -> Path:
    """A busybox rootfs with the config.json written by ``runc spec`` itself, then terminal off,
    ``args`` set and ``edits`` applied."""
    bundle = make_busybox_bundle(directory, ["true"])
    (bundle / "config.json").unlink()
    subprocess.run([str(RUNC), "spec"], cwd=bundle, check=True, timeout=30)
    edit_config(bundle, setting("process.terminal", False), setting("process.args", list(args)), *edits)
    return bundle


_bundles = [0]


def next_bundle_dir(tmp_path: Path) -> Path:
    _bundles[0] += 1
    return tmp_path / f"bundle{_bundles[0]}"


# -- running a runtime ---------------------------------------------------------------------------


def call(
    argv: list[str], *, input: str | None = None, timeout: float = 60, cwd: Path | None = None
) -> Result:
    """Run ``argv`` and return the CompletedProcess (text). Output goes through temporary files, not
    pipes: a container left running by ``create`` or ``run -d`` inherits them, and a pipe would keep
    ``communicate`` waiting for an EOF that never comes."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.run(
            argv,
            input=input.encode() if input is not None else None,
            stdin=None if input is not None else subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            timeout=timeout,
            cwd=cwd,
            check=False,
        )
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(
            argv, proc.returncode, out.read().decode(errors="replace"), err.read().decode(errors="replace")
        )


class Runtime:
    """One runtime binary (pyrunc or runc) with its own ``--root``. Every id handed out by
    :meth:`new_id` is deleted with ``delete --force`` by :meth:`cleanup`."""

    def __init__(self, binary: Path, root: Path, *, log: Path | None = None) -> None:
        self.binary = Path(binary)
        self.root = Path(root)
        self.log = log
        self.ids: list[str] = []

    @property
    def name(self) -> str:
        return self.binary.name

    def new_id(self, prefix: str = "t") -> str:
        """A container id unique on this host: the cgroup path ``<own cgroup>/pyrunc/<id>`` does not
        depend on ``--root``, so a fixed id could meet another suite's container."""
        container_id = f"{prefix}-{uuid.uuid4().hex[:12]}"
        self.ids.append(container_id)
        return container_id

    def argv(self, *args: str) -> list[str]:
        argv = [str(self.binary), "--root", str(self.root)]
        if self.log is not None:
            argv += ["--log", str(self.log), "--log-format", "json"]
        return argv + [str(a) for a in args]

    def __call__(self, *args: str | Path, input: str | None = None, timeout: float = 60) -> Result:
        return call(self.argv(*map(str, args)), input=input, timeout=timeout)

    def run(self, bundle: Path, container_id: str | None = None, *flags: str, timeout: float = 60) -> Result:
        """``run [flags] --bundle B ID``: the CompletedProcess of the runtime."""
        container_id = container_id or self.new_id()
        return self("run", *flags, "--bundle", bundle, container_id, timeout=timeout)

    def create(self, bundle: Path, container_id: str | None = None, *flags: str) -> str:
        """``create [flags] --bundle B ID``, asserting success; returns the id."""
        container_id = container_id or self.new_id()
        result = self("create", *flags, "--bundle", bundle, container_id)
        assert result.returncode == 0, f"{self.name} create failed: {result.stderr}"
        return container_id

    def state(self, container_id: str) -> dict[str, Any]:
        result = self("state", container_id)
        assert result.returncode == 0, f"{self.name} state {container_id}: {result.stderr}"
        state: dict[str, Any] = json.loads(result.stdout)
        return state

    def status(self, container_id: str) -> str:
        return str(self.state(container_id)["status"])

    def wait_status(self, container_id: str, wanted: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while (status := self.status(container_id)) != wanted:
            assert time.monotonic() < deadline, f"{container_id} is still {status}, not {wanted}"
            time.sleep(0.02)

    def cleanup(self) -> None:
        """``delete --force`` every container this runtime was given, then SIGKILL and remove
        whatever is still in their cgroups; fail if either step had anything to do."""
        failures = []
        for container_id in self.ids:
            result = call(
                [str(self.binary), "--root", str(self.root), "delete", "--force", container_id], timeout=60
            )
            if result.returncode != 0:
                failures.append(f"{self.name} delete --force {container_id}: {result.stderr.strip()}")
            left = container_cgroups(container_id)
            if left:
                failures.append(f"{self.name} left cgroups of {container_id} behind: {left}")
                purge_container_cgroups(container_id)
        self.ids.clear()
        assert not failures, "\n".join(failures)


def run_container(runtime: Runtime, tmp_path: Path, args: list[str], *edits: Edit) -> Result:
    """Make a busybox bundle running ``args`` with ``edits``, ``run`` it, and return the
    CompletedProcess (the container is deleted when ``run`` returns, as with runc)."""
    bundle = make_bundle(next_bundle_dir(tmp_path), args, *edits)
    return runtime.run(bundle)


def sh(script: str) -> list[str]:
    return ["sh", "-c", script]


# -- what a container leaves on the host ---------------------------------------------------------


def own_cgroup_dirs() -> list[Path]:
    """This process's own cgroup directory in every mounted hierarchy (v1 ones and the v2 one)."""
    own: dict[str, str] = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        own[controllers] = path
    dirs: list[Path] = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        fields, fs = left.split(), right.split()
        if len(fs) < 3 or fs[0] not in ("cgroup", "cgroup2"):
            continue
        options = set(fs[2].split(","))
        for controllers, path in own.items():
            if (fs[0] == "cgroup2") == (controllers == "") and set(controllers.split(",")) <= options | {""}:
                root = fields[3].rstrip("/")
                dirs.append(Path(fields[4] + path[len(root) :]))
                break
    return dirs


def container_cgroups(container_id: str) -> list[Path]:
    """The cgroup directories ``<own cgroup>/pyrunc/<id>`` that exist, in any hierarchy."""
    return [d / "pyrunc" / container_id for d in own_cgroup_dirs() if (d / "pyrunc" / container_id).exists()]


def purge_container_cgroups(container_id: str, timeout: float = 5.0) -> None:
    """Last resort when the runtime failed to clean up: SIGKILL every process in the cgroups of
    this test's container (its id is unique, so they are this test's) and remove the cgroups."""
    dirs = container_cgroups(container_id)
    for directory in dirs:
        for pid in (directory / "cgroup.procs").read_text().split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + timeout
    for directory in dirs:
        while True:
            try:
                directory.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.02)


def mount_points() -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f]


@contextmanager
def subreaper() -> Iterator[None]:
    """Make this process a child subreaper meanwhile: whatever a runtime leaves running when it
    exits is re-parented to us, so that :class:`HostSnapshot` sees it among our descendants.
    Afterwards, SIGKILL and reap whatever new child is left (the test has reported it)."""
    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_child_subreaper = 36
    before = set(HostSnapshot.take().processes)
    assert libc.prctl(pr_set_child_subreaper, 1, 0, 0, 0) == 0, os.strerror(ctypes.get_errno())
    try:
        yield
    finally:
        libc.prctl(pr_set_child_subreaper, 0, 0, 0, 0)
        for pid, start in set(HostSnapshot.take().processes) - before:
            if _start_time(pid) == start:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break


def _start_time(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat[stat.rindex(")") + 2 :].split()[19])


@contextmanager
def nothing_left_behind(root: Path, container_id: str) -> Iterator[None]:
    """Assert that the block leaves no state dir ``<root>/<id>``, no cgroup ``<own>/pyrunc/<id>``, no
    new mount in this mount namespace and no new descendant process (use inside :func:`subreaper`)."""
    before = HostSnapshot.take()
    yield
    deadline = time.monotonic() + 2.0
    while True:  # teardown under way (a process being reaped) gets a moment to finish
        leaks = [
            line  # other suites' containers may come and go in the shared cgroup trees meanwhile
            for line in HostSnapshot.take().leaked_since(before)
            if line.startswith(("mount:", "process:")) or line.endswith(f"/{container_id}")
        ]
        if not leaks or time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    assert not leaks, "left behind:\n" + "\n".join(leaks)
    assert not (root / container_id).exists(), f"state dir {root / container_id} left behind"
    assert not container_cgroups(container_id), f"cgroups left: {container_cgroups(container_id)}"


# -- namespaces made on the host side, for a container to join --------------------------------------

_HOLDER = """
import ctypes, json, os, sys
libc = ctypes.CDLL(None, use_errno=True)
assert libc.unshare(int(sys.argv[1])) == 0, os.strerror(ctypes.get_errno())
exec(sys.argv[2])
print("ready", flush=True)
for line in sys.stdin:
    try:
        with open(line.rstrip("\\n")) as f:
            answer = f.read()
    except OSError as exc:
        answer = f"error: {exc.strerror}"
    print(json.dumps(answer), flush=True)
"""

# Run in a new mount namespace before anything is mounted in it: its mounts are copies of ours,
# peers of the shared ones, and what is mounted there must not propagate back.
MAKE_MOUNTS_PRIVATE = (
    "assert libc.mount(None, b'/', None, 1 << 14 | 1 << 18, None) == 0\n"  # MS_REC|MS_PRIVATE
)


class NamespaceHolder:
    """A process in namespaces of its own (made with unshare(2) on the host side, as ``unshare``
    makes them): ``ns(kind)`` is the path of one of them to join, ``read(path)`` a file as that process
    sees it (``/proc/sys/...`` gives the values of its namespaces)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.pid = proc.pid

    def ns(self, kind: str) -> str:
        return f"/proc/{self.pid}/ns/{kind}"

    def read(self, path: str | Path) -> str:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"{path}\n")
        self.proc.stdin.flush()
        answer: str = json.loads(self.proc.stdout.readline())
        return answer


@contextmanager
def namespace_holder(flags: int, setup: str = "") -> Iterator[NamespaceHolder]:
    """A :class:`NamespaceHolder` in new namespaces of ``flags`` (``CloneFlags.NEW*``), after it ran
    the Python code ``setup`` in them (``libc`` is ctypes' C library there); killed and reaped at the
    end."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(flags), setup],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "ready\n", "the namespace holder failed to start"
        yield NamespaceHolder(proc)
    finally:
        proc.kill()
        proc.wait()


# -- mounts a test makes itself ----------------------------------------------------------------------

MS_BIND = 1 << 12
MS_REC = 1 << 14


def mount(source: str | Path, target: str | Path, fstype: str | None = None, flags: int = 0) -> None:
    """mount(2), for a test's own mounts (unmount each with :func:`unmount`)."""
    libc = ctypes.CDLL(None, use_errno=True)
    kind = fstype.encode() if fstype else None
    if libc.mount(str(source).encode(), str(target).encode(), kind, flags, None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), str(target))


def unmount(target: str | Path) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.umount2(str(target).encode(), 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), str(target))


@contextmanager
def mounted(
    source: str | Path, target: str | Path, fstype: str | None = None, flags: int = 0
) -> Iterator[None]:
    mount(source, target, fstype, flags)
    try:
        yield
    finally:
        unmount(target)
