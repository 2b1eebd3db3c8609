"""pyengined against dockerd, side by side, with the docker CLI as the client: the engine's performance
targets.

Two sides, each with everything it keeps in a temporary directory:

- ``dockerd``: tests/peers.py's private dockerd 20.10 (own data root, exec root, socket, a bridge of
  its own, its own managed containerd, a ``containerd-shim-runc-v2`` per container, runc) at its
  default log level, with ``--iptables=false`` (its iptables mode would rewrite the host's FORWARD
  policy) and so with no firewall rule to write, and docker-proxy (its default) carrying every
  published port;
- ``pyengined``: ``pyengined`` (next to this Python) on a data root, exec root and socket of its own
  (an empty configuration file: never the host's), its default bridge named ``pybenchN`` (the first
  name free; its nftables table has the same name), a ``pycontainerd-monitor`` per container, pyrunc.
  It writes its nftables table for every container on a bridge (and the DNAT of each published
  port): more firewall work than dockerd does here.

The client is the same docker CLI binary for both (``--docker``, default the one on PATH), with ``-H
unix://…`` and a private DOCKER_CONFIG. The busybox image is written offline by tests/oci_images.py
and loaded into both with ``docker load`` as ``bench.local/busybox:latest``; every run says ``--pull
never``: nothing contacts a registry. The measurements (``--target``, all by default), each warmed up
(``--warmup``, 3) and then run ``--iterations`` times (20), interleaved (the side going first
alternates from one iteration to the next):

- ``run``: ``docker run --rm --network none IMAGE true``: the engine alone;
- ``run-bridge``: ``docker run --rm IMAGE true`` on each side's default bridge (a veth pair, an
  address);
- ``run-user``: the same with ``--network bench-net``, a user-defined network each side creates once
  (``docker network create``, untimed; its embedded DNS server too);
- ``run-p``: the same on the default bridge with ``-p 127.0.0.1::80`` (a free host port each run);
- ``run-d``: ``docker run -d IMAGE sleep 1000``, on the default bridge and with ``--network none``;
  the containers are removed after each iteration, untimed;
- ``exec``: ``docker exec C true`` in one running container per side;
- ``ps``: ``docker ps`` with ``--running`` (20) running containers per side;
- ``logs``: ``docker logs C > /dev/null`` of a container that printed ``--lines`` (100000) lines
  (``seq``) and exited (the count is checked once, untimed);
- ``http``: a busybox ``httpd`` per side publishing its port 80 on a free port of 127.0.0.1, asked
  by a client in this process (bench_net.py, the same for both sides) for a small file, a new
  connection per request: per iteration, ``--requests`` (100) sequential ``GET``s, each one's time
  (the latency), then ``--clients`` (4) threads sending them for ``--seconds`` (1), the requests
  per second (the throughput). dockerd's path is docker-proxy (a userland copy), pyengined's the
  kernel's DNAT; httpd forks a process per request on both;
- ``dns``: on ``bench-net`` per side, a container ``target`` and one ``asker``; a UDP socket made in
  asker's network namespace sends ``--queries`` (100) queries per iteration for ``target`` A to the
  embedded DNS server (127.0.0.11:53), one after the other: each one's time; every answer must hold
  target's address (checked untimed);
- ``memory``: ``--containers`` (50) ``sleep 1000`` containers started per side (interleaved, untimed);
  after ``--settle`` seconds, the summed Pss (/proc/PID/smaps_rollup) of dockerd + its containerd +
  the shims (``containerd-shim-runc-v2`` whose ``-address`` is this dockerd's containerd) against
  pyengined + its monitors (the ``pycontainerd-monitor`` processes named by the ``monitor.pid`` files
  under its exec root), before and after, total and per container, and each daemon alone.

The containers of ``exec``, ``ps``, ``logs`` and ``memory`` run with ``--network none`` on both
sides: those measure the engine, the ``run-*``, ``http`` and ``dns`` targets the networks.
Reported: median and p90 (nearest rank) per side (of the throughput: the median and p10, its slow
end), the ratio of the medians pyengined/dockerd and their difference, and a verdict line per row:
every ``run --rm`` at most half of dockerd's, the HTTP throughput at least dockerd's, every other
time no slower than dockerd, the memory with every container running at most dockerd's. A miss is
reported, not an error; so is a failure: a command that gets no answer in 30 s fails its row, and
nothing more is asked of that engine (the other side goes on). ``--side dockerd|pyengined``
measures one side alone (to check the harness).

Everything is undone at the end, also on error or Ctrl-C: the containers (``docker rm --force``),
the user-defined networks (``docker network rm``), pyengined (SIGTERM, by pid; the containers it
did not remove are then deleted with pyrunc, each named, and their root filesystems unmounted; its
bridge and nftables table, which a clean stop removes, are checked for and deleted if left, each
named), dockerd and its containerd and bridge (peers.py), the temporary directory. Run as root,
with a Python that has pyrunc, pycontainerd, pyengine and pytest (peers.py imports it) installed:
``.nox/bench/bin/python benchmarks/bench_pyengine.py --iterations 10``.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench_engines import _ignore_interrupts, _interrupt, _load, _load_peers, _mounts_below, remove_workdir
from bench_net import BadAnswer, dns_latencies, http_latencies, http_throughput, udp_socket_in, wait_for_http
from bench_pyrunc import percentile, print_table, run_exact
from bench_tasks import _own_cgroup_dirs, smaps_rollup

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

SIDES = ("dockerd", "pyengined")
TARGETS = ("run", "run-bridge", "run-user", "run-p", "run-d", "exec", "ps", "logs", "http", "dns", "memory")
IMAGE = "bench.local/busybox:latest"
#: pyengined/dockerd at most, per target (the issues': run --rm in half the time, the rest no slower);
#: of a throughput, at least.
TARGET_RATIOS = {
    "run": 0.5,
    "run-bridge": 0.5,
    "run-user": 0.5,
    "run-p": 0.5,
    "run-d": 1.0,
    "exec": 1.0,
    "ps": 1.0,
    "logs": 1.0,
    "http": 1.0,
    "dns": 1.0,
    "memory": 1.0,
}
COMMAND_TIMEOUT = 30.0  # seconds for one docker command (the slowest takes about 1 s)
START_TIMEOUT = 30.0  # seconds for pyengined to answer
STOP_TIMEOUT = 30.0  # seconds for pyengined to exit after SIGTERM
IDLE_COMMAND = ("sleep", "1000")
#: The network of the containers that only exist to be listed, exec'd into, logged and weighed.
QUIET_NETWORK = ("--network", "none")
#: The user-defined network each side makes for run-user and dns.
USER_NETWORK = "bench-net"
#: A published port on a free port of 127.0.0.1.
PUBLISH = ("-p", "127.0.0.1::80")
#: What the http target's server serves, and where.
HTTP_PATH, HTTP_BODY = "/f", b"bench\n"
HTTPD_SCRIPT = "mkdir /www && echo bench > /www/f && exec httpd -f -p 80 -h /www"
HTTP_READY_TIMEOUT = 10.0  # seconds for the server to answer through its published port
#: pyengined's default bridge, and its nftables table: the first of pybench0, pybench1… free.
BRIDGE_PREFIX = "pybench"
#: The processes' names as the kernel shows them (comm: 15 characters at most).
SHIM_COMM, MONITOR_COMM = "containerd-shim", "pycontainerd-mo"
#: pyengined's pycontainerd namespace (its cgroups: <own cgroup>/pyrunc/moby@<id>).
ENGINE_NAMESPACE = "moby"


class OperationFailed(Exception):
    """A docker command failed or an engine did not start; the message says which and why."""


# --------------------------------------------------------------------------------------------------
# The two sides


@dataclass
class Side:
    """One engine and the docker CLI pointed at it."""

    name: str  # "dockerd" or "pyengined"
    docker: str  # the CLI binary, the same for both sides
    host: str  # unix://…
    env: dict[str, str]
    log: Path  # the last timed command's output
    failures: dict[str, str] = field(default_factory=dict)  # row -> first error; not tried again
    seen: set[str] = field(default_factory=set)  # the ids of the containers it made (--rm ones aside)
    stuck: str = ""  # the command the engine did not answer: nothing is asked of it after that
    seen_last: str = ""  # the id of the last container started with start()
    networks: set[str] = field(default_factory=set)  # the networks it made, until removed
    bridges: set[str] = field(default_factory=set)  # the bridges of every network it made

    def _no_answer(self, args: tuple[str, ...]) -> OperationFailed:
        self.stuck = f"docker {shlex.join(args)}"
        return OperationFailed(f"{self.name}: {self.stuck}: no answer in {COMMAND_TIMEOUT:g} s")

    def _check_answering(self) -> None:
        if self.stuck:
            raise OperationFailed(f"{self.name}: not asked: it did not answer {self.stuck}")

    def argv(self, *args: str) -> list[str]:
        return [self.docker, "-H", self.host, *args]

    def timed(self, *args: str, discard: bool = False) -> tuple[float, str]:
        """Run ``docker ARGS``: (its wall time in ms, its output); ``discard``: the output goes to
        /dev/null (none is returned). OperationFailed with its last line of output on a non-zero exit."""
        self._check_answering()
        argv = self.argv(*args)
        target = Path(os.devnull) if discard else self.log
        with target.open("w+b" if not discard else "wb") as out:
            try:
                code, elapsed = run_exact(argv, stdout=out, timeout=COMMAND_TIMEOUT, env=self.env)
            except subprocess.TimeoutExpired:
                raise self._no_answer(args) from None
            except OSError as exc:
                raise OperationFailed(f"cannot execute {argv[0]}: {exc}") from None
            output = ""
            if not discard:
                out.seek(0)
                output = out.read().decode(errors="replace")
        if code != 0:
            if discard:  # again, to see why
                output = self.cli(*args, check=False).stderr
            lines = [line for line in output.strip().splitlines() if not line.startswith("WARNING")]
            last = lines[-1] if lines else "no output"
            raise OperationFailed(f"{self.name}: docker {shlex.join(args)} exited with {code}: {last}")
        return elapsed, output

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``docker ARGS``, untimed, its output captured; ``check``: OperationFailed on a non-zero exit."""
        self._check_answering()
        try:
            done = subprocess.run(
                self.argv(*args),
                env=self.env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=COMMAND_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise self._no_answer(args) from None
        if check and done.returncode != 0:
            raise OperationFailed(
                f"{self.name}: docker {shlex.join(args)} exited with {done.returncode}: {done.stderr.strip()}"
            )
        return done

    def start(self, *command: str, network: tuple[str, ...] = QUIET_NETWORK) -> str:
        """``docker run -d`` a container, untimed; its id."""
        out = self.cli("run", "-d", "--pull", "never", *network, IMAGE, *command).stdout.split()
        if not out:
            raise OperationFailed(f"{self.name}: docker run -d printed no id")
        self.seen.add(out[-1])
        self.seen_last = out[-1]
        return out[-1]

    def remove(self, ids: list[str]) -> None:
        """``docker rm --force`` the containers, untimed (a failure is a warning: the teardown goes on)."""
        if not ids:
            return
        try:
            done = self.cli("rm", "--force", *ids, check=False)
        except OperationFailed as exc:
            print(f"warning: {exc}", file=sys.stderr)
            return
        if done.returncode != 0:
            print(f"warning: {self.name}: docker rm --force: {done.stderr.strip()}", file=sys.stderr)

    def remove_all(self) -> None:
        """Every container, then the networks it made (a network with containers cannot go)."""
        try:
            ids = self.cli("ps", "--all", "--quiet", "--no-trunc").stdout.split()
        except OperationFailed as exc:
            print(f"warning: {exc}", file=sys.stderr)
            return
        self.seen.update(ids)
        self.remove(ids)
        for network in sorted(self.networks):
            self.remove_network(network)

    def create_network(self, name: str) -> None:
        """``docker network create NAME``, untimed."""
        network_id = self.cli("network", "create", name).stdout.strip()
        self.networks.add(name)
        self.bridges.add(f"br-{network_id[:12]}")  # both engines' name for a network's bridge

    def remove_network(self, name: str) -> None:
        """``docker network rm NAME``, untimed (a failure is a warning: the teardown goes on)."""
        try:
            done = self.cli("network", "rm", name, check=False)
        except OperationFailed as exc:
            print(f"warning: {exc}", file=sys.stderr)
            return
        if done.returncode != 0:
            print(f"warning: {self.name}: docker network rm {name}: {done.stderr.strip()}", file=sys.stderr)
        else:
            self.networks.discard(name)

    def inspect(self, container: str, template: str) -> str:
        """``docker inspect --format TEMPLATE C``, untimed."""
        return self.cli("inspect", "--format", template, container).stdout.strip()

    def processes(self) -> dict[str, list[int]]:
        """The side's processes by role: ``daemon``, ``containerd`` (dockerd's), ``supervisors``."""
        raise NotImplementedError


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _start_time(pid: int) -> str:
    """Field 22 of /proc/PID/stat (the process's start time, in clock ticks since boot)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat[stat.rindex(")") + 2 :].split()[19]


class Dockerd(Side):
    def __init__(self, peer: Any, docker: str, workdir: Path) -> None:
        super().__init__("dockerd", docker, peer.host, peer.env(), workdir / "dockerd-cli.log")
        self.peer = peer
        self.exec_root = peer.socket.parent / "exec"

    def processes(self) -> dict[str, list[int]]:
        pidfile = self.exec_root / "containerd" / "containerd.pid"
        containerd = [int(pidfile.read_text())] if pidfile.exists() else []
        marker = str(self.exec_root).encode()
        shims = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and _comm(int(entry.name)) == SHIM_COMM:
                with contextlib.suppress(OSError):
                    if marker in (entry / "cmdline").read_bytes():  # -address <exec-root>/containerd/…
                        shims.append(int(entry.name))
        return {"daemon": [self.peer.process.pid], "containerd": containerd, "supervisors": shims}


class Pyengined(Side):
    def __init__(
        self, process: subprocess.Popen[bytes], docker: str, root: Path, workdir: Path, seen: set[str]
    ) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        env["DOCKER_CONFIG"] = str(root / "cli")
        host = f"unix://{root / 'sock'}"
        super().__init__("pyengined", docker, host, env, workdir / "pyengined-cli.log", seen=seen)
        self.process = process
        self.exec_root = root / "e"

    def processes(self) -> dict[str, list[int]]:
        return {"daemon": [self.process.pid], "containerd": [], "supervisors": monitor_pids(self.exec_root)}


def monitor_pids(exec_root: Path) -> list[int]:
    """The monitors alive that the ``monitor.pid`` files under pyengined's exec root name (``PID
    STARTTIME``: a pid reused since is not one)."""
    monitors = []
    for pidfile in (exec_root / "containerd").rglob("monitor.pid"):
        with contextlib.suppress(OSError, ValueError):
            pid, start_time = pidfile.read_text().split()
            if _comm(int(pid)) == MONITOR_COMM and _start_time(int(pid)) == start_time:
                monitors.append(int(pid))
    return monitors


@contextlib.contextmanager
def pyengined(binary: Path, root: Path, bridge: str) -> Iterator[subprocess.Popen[bytes]]:
    """pyengined on ``root``'s socket ``sock``, data root ``d`` and exec root ``e`` (short: a task's
    sockets must fit 108 bytes), with an empty configuration file and ``bridge`` as its default
    bridge, in a session of its own (a Ctrl-C in the terminal must not stop it before its
    containers are removed). Stopped with SIGTERM; what its containers left (it keeps them running
    when it stops: live restore) is then undone, and the bridge and table if it left them."""
    root.mkdir()
    (root / "daemon.json").write_text("{}\n")
    log = root / "pyengined.log"
    argv = [str(binary), "--config-file", str(root / "daemon.json"), "-H", f"unix://{root / 'sock'}"]
    argv += ["--data-root", str(root / "d"), "--exec-root", str(root / "e"), "--bridge", bridge]
    # pycontainerd finds pyrunc and its monitor on PATH first: this Python's, not another install.
    env = {**os.environ, "PATH": f"{binary.parent}:{os.environ.get('PATH', '/usr/bin:/bin')}"}
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                print(f"warning: pyengined did not stop in {STOP_TIMEOUT:g} s: killed", file=sys.stderr)
                process.kill()
                process.wait()
        elif process.returncode:
            print(f"warning: pyengined exited with {process.returncode}: {_tail(log)}", file=sys.stderr)
        _undo_leftovers(root)
        _undo_network_leftovers(bridge)


def free_bridge_name() -> str:
    """The first of pybench0, pybench1… that names neither a link nor an nftables table."""
    tables = _nft_tables()
    for n in range(100):
        name = f"{BRIDGE_PREFIX}{n}"
        if not Path("/sys/class/net", name).exists() and ("inet", name) not in tables:
            return name
    raise OperationFailed(f"no free bridge name {BRIDGE_PREFIX}N")


def _nft_tables() -> set[tuple[str, str]]:
    """The host's nftables tables, (family, name)."""
    listing = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, check=False)
    return {(words[1], words[2]) for words in map(str.split, listing.stdout.splitlines()) if len(words) == 3}


def _undo_network_leftovers(bridge: str) -> None:
    """After pyengined stopped: its bridge and its table, which a clean stop removes; each one left
    is named and deleted."""
    if Path("/sys/class/net", bridge).exists():
        print(f"warning: pyengined: bridge {bridge} left: deleted", file=sys.stderr)
        subprocess.run(["ip", "link", "delete", bridge], capture_output=True, check=False)
    if ("inet", bridge) in _nft_tables():
        print(f"warning: pyengined: nftables table inet {bridge} left: deleted", file=sys.stderr)
        subprocess.run(["nft", "delete", "table", "inet", bridge], capture_output=True, check=False)


def _links_left(bridges: set[str]) -> None:
    """After both engines stopped: the bridges of the networks made that are still there (a network
    not removed), each named and deleted."""
    for bridge in sorted(bridges):
        if Path("/sys/class/net", bridge).exists():
            print(f"warning: bridge {bridge} left: deleted", file=sys.stderr)
            subprocess.run(["ip", "link", "delete", bridge], capture_output=True, check=False)


def _undo_leftovers(root: Path) -> None:
    """After pyengined stopped: the containers it did not remove (each named: a leak, or an engine
    that stopped answering) killed and deleted with pyrunc, their monitors gone, their mounts
    unmounted, so that the temporary directory can go."""
    monitors = {pid: _start_time(pid) for pid in monitor_pids(root / "e")}  # before their files go
    pyrunc = str(Path(sys.executable).parent / "pyrunc")
    runtime_root = root / "e" / "containerd" / "runc" / ENGINE_NAMESPACE
    if runtime_root.is_dir():
        listing = subprocess.run(
            [pyrunc, "--root", str(runtime_root), "list", "--quiet"],
            capture_output=True,
            text=True,
            check=False,
        )
        for left in listing.stdout.split():
            print(f"warning: pyengined: container {left} left: deleted with pyrunc", file=sys.stderr)
            subprocess.run(
                [pyrunc, "--root", str(runtime_root), "delete", "--force", left],
                capture_output=True,
                check=False,
            )
    deadline = time.monotonic() + 10
    while monitors and time.monotonic() < deadline:
        time.sleep(0.1)  # a monitor exits once its container's init is gone
        monitors = {pid: start for pid, start in monitors.items() if _start_time(pid) == start}
    for pid in monitors:
        print(f"warning: pyengined: monitor {pid} left: killed", file=sys.stderr)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for point in sorted(_mounts_below(root), key=len, reverse=True):
        print(f"warning: pyengined: {point} left mounted: unmounted", file=sys.stderr)
        subprocess.run(["umount", point], capture_output=True, check=False)


def _tail(path: Path, lines: int = 5) -> str:
    try:
        return " / ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _wait_for_engine(side: Pyengined, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while side.cli("version", check=False).returncode != 0:
        if side.process.poll() is not None:
            raise OperationFailed(f"pyengined exited with {side.process.returncode}: {_tail(log)}")
        if time.monotonic() > deadline:
            raise OperationFailed(f"pyengined did not answer in {START_TIMEOUT:g} s: {_tail(log)}")
        time.sleep(0.1)


def _cgroups_left(known: set[str], created_parents: list[Path]) -> None:
    """rmdir the cgroups pyrunc left for the containers this run made (a leak: say so), and the
    ``pyrunc`` directories this run created, when empty (another engine may use them meanwhile)."""
    for base in _own_cgroup_dirs():
        for directory in base.glob(f"pyrunc/{ENGINE_NAMESPACE}@*"):
            name = directory.name.partition("@")[2]
            if not any(full.startswith(name) for full in known):  # pycontainerd's id: a prefix
                continue
            print(f"warning: pyengined: cgroup left: {directory}", file=sys.stderr)
            for _ in range(20):
                try:
                    directory.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:  # EBUSY while the last processes exit
                    time.sleep(0.1)
    for parent in created_parents:
        with contextlib.suppress(OSError):
            parent.rmdir()


# --------------------------------------------------------------------------------------------------
# Measurements


@dataclass
class Row:
    """One timed docker command, on each side: ``args(side)`` gives its arguments after ``-H``."""

    target: str
    label: str
    args: Callable[[Side], list[str]]
    discard: bool = False  # output to /dev/null
    samples: dict[str, list[float]] = field(default_factory=dict)  # side -> ms

    def once(self, side: Side, record: bool) -> str:
        """Run it on ``side``; its output. A failure is noted on the side and the row not run again."""
        if self.label in side.failures:
            return ""
        try:
            elapsed, output = side.timed(*self.args(side), discard=self.discard)
        except OperationFailed as exc:
            side.failures[self.label] = str(exc)
            return ""
        if record:
            self.samples.setdefault(side.name, []).append(elapsed)
        return output


def measure(
    rows: list[Row],
    sides: list[Side],
    iterations: int,
    warmup: int,
    after: Callable[[Side, str], None] | None = None,
    iteration_done: Callable[[], None] | None = None,
) -> None:
    """Every row on every side, ``warmup`` times unrecorded then ``iterations`` times; the side going
    first alternates. ``after(side, output)`` is called after each command and ``iteration_done()``
    after each iteration (untimed)."""
    what = rows[0].target
    for index in range(warmup + iterations):
        for row in rows:
            for side in sides if index % 2 == 0 else sides[::-1]:
                output = row.once(side, record=index >= warmup)
                if after is not None:
                    after(side, output)
        if iteration_done is not None:
            iteration_done()
        _progress(what, index, warmup, iterations)


#: The options of each run --rm target, and what its row adds when they do not name the network.
RUN_OPTIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "run": (QUIET_NETWORK, ""),
    "run-bridge": ((), " (default bridge)"),
    "run-user": (("--network", USER_NETWORK), ""),
    "run-p": (PUBLISH, " (default bridge)"),
}


def measure_run(target: str, sides: list[Side], iterations: int, warmup: int) -> list[Row]:
    """``docker run --rm`` with the target's options; run-user's network made first on each side."""
    options, network = RUN_OPTIONS[target]
    label = shlex.join(["run", "--rm", *options, "IMAGE", "true"]) + network
    row = Row(target, label, lambda s: ["run", "--rm", "--pull", "never", *options, IMAGE, "true"])
    with user_network(sides, row.label) if target == "run-user" else contextlib.nullcontext():
        measure([row], sides, iterations, warmup)
    return [row]


@contextlib.contextmanager
def user_network(sides: list[Side], what: str) -> Iterator[None]:
    """USER_NETWORK made on each side (untimed) and removed afterwards; a side that cannot make it
    has ``what`` failed."""
    try:
        for side in sides:
            try:
                side.create_network(USER_NETWORK)
            except OperationFailed as exc:
                side.failures[what] = f"setting up: {exc}"
        yield
    finally:
        for side in sides:
            if USER_NETWORK in side.networks:
                side.remove_network(USER_NETWORK)


def measure_run_detached(sides: list[Side], iterations: int, warmup: int) -> list[Row]:
    rows = [
        Row(
            "run-d",
            "run -d IMAGE sleep 1000 (default bridge)",
            lambda s: ["run", "-d", "--pull", "never", IMAGE, *IDLE_COMMAND],
        ),
        Row(
            "run-d",
            "run -d --network none IMAGE sleep 1000",
            lambda s: ["run", "-d", "--pull", "never", *QUIET_NETWORK, IMAGE, *IDLE_COMMAND],
        ),
    ]
    started: dict[str, list[str]] = {side.name: [] for side in sides}

    def after(side: Side, output: str) -> None:
        if words := output.split():
            started[side.name].append(words[-1])
            side.seen.add(words[-1])

    def removed() -> None:
        for side in sides:
            side.remove(started[side.name])
            started[side.name].clear()

    try:
        measure(rows, sides, iterations, warmup, after, removed)
    finally:
        removed()
    return rows


def with_containers(
    row: Row,
    sides: list[Side],
    iterations: int,
    warmup: int,
    setup: Callable[[Side, list[str]], None],
) -> list[Row]:
    """``setup(side, ids)`` on each side (untimed: it starts the containers the row needs and appends
    their ids), then the row measured; the containers removed afterwards. A side whose set-up fails
    has the row reported as failed; the other side is measured."""
    containers: dict[str, list[str]] = {side.name: [] for side in sides}
    try:
        for side in sides:
            try:
                setup(side, containers[side.name])
            except OperationFailed as exc:
                side.failures[row.label] = f"setting up: {exc}"
        measure([row], sides, iterations, warmup)
    finally:
        for side in sides:
            side.remove(containers[side.name])
    return [row]


def measure_exec(sides: list[Side], iterations: int, warmup: int) -> list[Row]:
    def setup(side: Side, ids: list[str]) -> None:
        ids.append(side.start(*IDLE_COMMAND))

    row = Row("exec", "exec C true", lambda s: ["exec", s.seen_last, "true"])
    return with_containers(row, sides, iterations, warmup, setup)


def measure_ps(sides: list[Side], iterations: int, warmup: int, running: int) -> list[Row]:
    def setup(side: Side, ids: list[str]) -> None:
        for _ in range(running):
            ids.append(side.start(*IDLE_COMMAND))
        listed = len(side.cli("ps", "--quiet").stdout.split())
        if listed != running:
            raise OperationFailed(f"docker ps lists {listed} containers, not {running}")

    return with_containers(
        Row("ps", f"ps ({running} running)", lambda s: ["ps"]), sides, iterations, warmup, setup
    )


def measure_logs(sides: list[Side], iterations: int, warmup: int, lines: int) -> list[Row]:
    def setup(side: Side, ids: list[str]) -> None:
        ids.append(side.start("seq", str(lines)))
        side.cli("wait", ids[-1])
        printed = side.cli("logs", ids[-1]).stdout.count("\n")
        if printed != lines:
            raise OperationFailed(f"docker logs printed {printed} lines, not {lines}")

    row = Row("logs", f"logs C > /dev/null ({lines} lines)", lambda s: ["logs", s.seen_last], discard=True)
    return with_containers(row, sides, iterations, warmup, setup)


@dataclass
class Sampled:
    """A network measurement on each side, taken by a client in this process: its samples (``unit``);
    ``more_is_better`` for a rate. A failure is noted on the side under the target's name, and
    nothing of that target is measured on that side after it."""

    target: str
    label: str
    unit: str
    more_is_better: bool = False
    samples: dict[str, list[float]] = field(default_factory=dict)  # side -> values

    def take(self, side: Side, sample: Callable[[], list[float] | float], record: bool) -> None:
        """``sample()`` on ``side``: one value or several; kept when ``record``."""
        if self.target in side.failures:
            return
        try:
            values = sample()
        except (OSError, BadAnswer) as exc:
            side.failures[self.target] = f"{self.label}: {exc}"
            return
        if record:
            self.samples.setdefault(side.name, []).extend(values if isinstance(values, list) else [values])


def _in_turn(sides: list[Side], index: int) -> list[Side]:
    """The sides in iteration ``index``'s order: the one going first alternates."""
    return sides if index % 2 == 0 else sides[::-1]


def published_port(side: Side, container: str) -> int:
    """The host port of the container's 80/tcp (``docker port``: ``127.0.0.1:PORT``)."""
    shown = side.cli("port", container, "80/tcp").stdout.split()
    if not shown or not shown[0].rpartition(":")[2].isdigit():
        raise OperationFailed(f"{side.name}: docker port {container} 80/tcp printed {shown or 'nothing'}")
    return int(shown[0].rpartition(":")[2])


def measure_http(
    sides: list[Side], iterations: int, warmup: int, requests: int, clients: int, seconds: float
) -> list[Sampled]:
    """A busybox httpd per side on a published port; each iteration, per side, ``requests``
    sequential GETs timed one by one, then the requests per second of ``clients`` threads."""
    latency = Sampled("http", f"GET latency ({requests} one after the other, a connection each)", "ms")
    throughput = Sampled(
        "http", f"GET throughput ({clients} clients, {seconds:g} s)", "requests/s", more_is_better=True
    )
    ports: dict[str, int] = {}
    containers: dict[str, list[str]] = {side.name: [] for side in sides}
    try:
        for side in sides:
            try:
                containers[side.name].append(side.start("sh", "-c", HTTPD_SCRIPT, network=PUBLISH))
                ports[side.name] = published_port(side, side.seen_last)
                wait_for_http(ports[side.name], HTTP_PATH, HTTP_BODY, HTTP_READY_TIMEOUT)
            except (OperationFailed, OSError, BadAnswer) as exc:
                side.failures["http"] = f"setting up: {exc}"
        for index in range(warmup + iterations):
            for side in _in_turn(sides, index):
                if side.name not in ports:  # its set-up failed
                    continue
                port = ports[side.name]
                sequential = functools.partial(http_latencies, port, HTTP_PATH, HTTP_BODY, requests)
                latency.take(side, sequential, index >= warmup)
                rate = functools.partial(http_throughput, port, HTTP_PATH, HTTP_BODY, clients, seconds)
                throughput.take(side, rate, index >= warmup)
            _progress("http", index, warmup, iterations)
    finally:
        for side in sides:
            side.remove(containers[side.name])
    return [latency, throughput]


def _asking(side: Side, sockets: contextlib.ExitStack, ids: list[str]) -> tuple[socket.socket, str]:
    """``target`` and ``asker`` started on USER_NETWORK (their ids appended to ``ids``); a socket in
    asker's network namespace (kept open by ``sockets``) and target's address."""
    for name in ("target", "asker"):
        ids.append(side.start(*IDLE_COMMAND, network=("--network", USER_NETWORK, "--name", name)))
    pid = int(side.inspect("asker", "{{.State.Pid}}"))
    address = side.inspect("target", f'{{{{(index .NetworkSettings.Networks "{USER_NETWORK}").IPAddress}}}}')
    return sockets.enter_context(udp_socket_in(pid)), address


def measure_dns(sides: list[Side], iterations: int, warmup: int, queries: int) -> list[Sampled]:
    """On USER_NETWORK per side, ``target`` and ``asker``; each iteration, per side, ``queries``
    queries for target A from a socket in asker's network namespace, timed one by one."""
    answer = Sampled("dns", f"DNS answer (target A from asker, {queries} one after the other)", "ms")
    asking: dict[str, tuple[socket.socket, str]] = {}  # side -> (socket, target's address)
    containers: dict[str, list[str]] = {side.name: [] for side in sides}
    with user_network(sides, "dns"), contextlib.ExitStack() as sockets:
        try:
            for side in sides:
                if "dns" not in side.failures:
                    try:
                        asking[side.name] = _asking(side, sockets, containers[side.name])
                    except (OperationFailed, OSError, ValueError) as exc:
                        side.failures["dns"] = f"setting up: {exc}"
            for index in range(warmup + iterations):
                for side in _in_turn(sides, index):
                    if side.name in asking:  # else its set-up failed
                        sock, address = asking[side.name]
                        ask = functools.partial(dns_latencies, sock, "target", address, queries)
                        answer.take(side, ask, index >= warmup)
                _progress("dns", index, warmup, iterations)
        finally:
            for side in sides:
                side.remove(containers[side.name])
    return [answer]


def _progress(what: str, index: int, warmup: int, iterations: int) -> None:
    if index >= warmup:
        print(f"bench: {what}, iteration {index - warmup + 1}/{iterations}", file=sys.stderr, flush=True)


@dataclass
class Memory:
    """One side's Pss (kB) by role, before and after its containers started."""

    before: dict[str, dict[int, float]]  # role -> pid -> Pss
    after: dict[str, dict[int, float]]
    containers: int  # started

    def total(self, when: str, *roles: str) -> float:
        found = self.before if when == "before" else self.after
        return sum(sum(found[role].values()) for role in roles or found)


def pss(processes: dict[str, list[int]]) -> dict[str, dict[int, float]]:
    return {
        role: {pid: smaps_rollup(pid).get("Pss", 0.0) for pid in pids} for role, pids in processes.items()
    }


def measure_memory(sides: list[Side], count: int, settle: float) -> dict[str, Memory]:
    """``count`` idle containers per side, started interleaved (untimed), Pss read before and after."""
    before = {side.name: pss(side.processes()) for side in sides}
    started: dict[str, list[str]] = {side.name: [] for side in sides}
    results: dict[str, Memory] = {}
    try:
        for index in range(count):
            for side in sides if index % 2 == 0 else sides[::-1]:
                if "memory" in side.failures:
                    continue
                try:
                    started[side.name].append(side.start(*IDLE_COMMAND))
                except OperationFailed as exc:
                    side.failures["memory"] = str(exc)
            if (index + 1) % 10 == 0:
                print(f"bench: memory, {index + 1}/{count} started per side", file=sys.stderr, flush=True)
        time.sleep(settle)
        for side in sides:
            if "memory" not in side.failures:
                after = pss(side.processes())
                results[side.name] = Memory(before[side.name], after, len(started[side.name]))
    finally:
        print("bench: removing the memory containers", file=sys.stderr, flush=True)
        for side in sides:
            side.remove(started[side.name])
    return results


# --------------------------------------------------------------------------------------------------
# Report


def _cells(values: list[float]) -> list[str]:
    if not values:
        return ["-", "-"]
    return [f"{statistics.median(values):.1f}", f"{percentile(values, 0.9):.1f}"]


def _ratio(base: list[float], other: list[float]) -> float | None:
    if not base or not other or statistics.median(base) <= 0:
        return None
    return statistics.median(other) / statistics.median(base)


def _verdict(what: str, ratio: float, target: float, detail: str = "", at_least: bool = False) -> str:
    """A target met or MISSED: the ratio pyengined/dockerd at most ``target`` (``at_least``: of a rate)."""
    verdict = "met" if (ratio >= target if at_least else ratio <= target) else "MISSED"
    bound = ">=" if at_least else "<="
    return f"{what}: target pyengined/dockerd {bound} {target:.2f}x {verdict} ({ratio:.2f}x{detail})"


def report_times(rows: list[Row], sides: list[Side], iterations: int) -> list[str]:
    names = [side.name for side in sides]
    header = ["docker …", *(f"{name} {stat}" for name in names for stat in ("median", "p90"))]
    if len(names) == 2:
        header += ["pyengined/dockerd", "delta"]
    table: list[list[str]] = []
    notes: list[str] = []
    for row in rows:
        cells = [row.label]
        for name in names:
            cells += _cells(row.samples.get(name, []))
        if len(names) == 2:
            base, other = row.samples.get("dockerd", []), row.samples.get("pyengined", [])
            ratio = _ratio(base, other)
            cells += (
                [f"{ratio:.2f}x", f"{statistics.median(other) - statistics.median(base):+.1f}"]
                if ratio
                else ["-", "-"]
            )
        table.append(cells)
    print_table(f"Times, {iterations} iterations each, ms (delta: difference of the medians)", header, table)
    if len(names) != 2:
        return notes
    for row in rows:
        ratio = _ratio(row.samples.get("dockerd", []), row.samples.get("pyengined", []))
        if ratio is None:
            continue
        notes.append(_verdict(row.label, ratio, TARGET_RATIOS[row.target]))
    return notes


#: What the peer does less of, said beside every network figure.
FIREWALL_NOTE = (
    "dockerd runs with --iptables=false: it writes no firewall rule, and its published ports go"
    " through docker-proxy (userland); pyengined writes its nftables table for each container on a"
    " bridge, and its published ports go through the kernel's DNAT"
)


def report_network(results: list[Sampled], sides: list[Side], iterations: int) -> list[str]:
    names = [side.name for side in sides]
    header = ["", "unit", *(f"{name} {stat}" for name in names for stat in ("median", "p90/p10"))]
    if len(names) == 2:
        header.append("pyengined/dockerd")
    table = []
    for result in results:
        cells = [result.label, result.unit]
        digits = 0 if result.more_is_better else 2
        for name in names:
            values = result.samples.get(name, [])
            spread = 0.1 if result.more_is_better else 0.9  # the slow end of either
            cells += (
                [f"{statistics.median(values):.{digits}f}", f"{percentile(values, spread):.{digits}f}"]
                if values
                else ["-", "-"]
            )
        if len(names) == 2:
            ratio = _ratio(result.samples.get("dockerd", []), result.samples.get("pyengined", []))
            cells.append(f"{ratio:.2f}x" if ratio else "-")
        table.append(cells)
    print_table(
        f"Network paths, {iterations} iterations each (p10 of a rate: its slow end; dockerd with"
        " --iptables=false: docker-proxy)",
        header,
        table,
    )
    notes = []
    for result in results if len(names) == 2 else []:
        ratio = _ratio(result.samples.get("dockerd", []), result.samples.get("pyengined", []))
        if ratio is not None:
            target = TARGET_RATIOS[result.target]
            notes.append(_verdict(result.label, ratio, target, at_least=result.more_is_better))
    return notes


def report_memory(results: dict[str, Memory], count: int, settle: float) -> list[str]:
    names = list(results)
    header = ["Pss, kB", *names]
    if len(names) == 2:
        header.append("pyengined/dockerd")
    supervisor = {"dockerd": "shims", "pyengined": "monitors"}

    def row(label: str, values: dict[str, float | None]) -> list[str]:
        cells = [label] + [f"{values[name]:.0f}" if values.get(name) is not None else "-" for name in names]
        if len(names) == 2:
            a, b = values.get("dockerd"), values.get("pyengined")
            cells.append(f"{b / a:.2f}x" if a and b is not None else "-")
        return cells

    def per_side(compute: Callable[[Memory], float | None]) -> dict[str, float | None]:
        return {name: compute(results[name]) for name in names}

    def per_container(memory: Memory) -> float | None:
        n = len(memory.after["supervisors"])
        return memory.total("after", "supervisors") / n if n else None

    table = [
        row("daemon alone, before", per_side(lambda m: m.total("before", "daemon"))),
        row(f"daemon alone, {count} running", per_side(lambda m: m.total("after", "daemon"))),
        row("dockerd's containerd, before", per_side(lambda m: m.total("before", "containerd") or None)),
        row(
            f"dockerd's containerd, {count} running",
            per_side(lambda m: m.total("after", "containerd") or None),
        ),
        row(f"shims / monitors, {count} running: sum", per_side(lambda m: m.total("after", "supervisors"))),
        row("shims / monitors: each (mean)", per_side(per_container)),
        row("total, before", per_side(lambda m: m.total("before"))),
        row(f"total, {count} running", per_side(lambda m: m.total("after"))),
        row(
            "total growth per container",
            per_side(
                lambda m: (m.total("after") - m.total("before")) / m.containers if m.containers else None
            ),
        ),
    ]
    print_table(
        f"Memory: {count} idle containers per side (--network none, settled {settle:g} s), summed Pss",
        header,
        table,
    )
    notes = []
    for name, memory in results.items():
        found = len(memory.after["supervisors"])
        if found != memory.containers:
            notes.append(
                f"memory: {name}: {found} {supervisor[name]} found for {memory.containers} containers"
            )
    if len(names) == 2:
        a, b = results["dockerd"].total("after"), results["pyengined"].total("after")
        if a > 0:
            notes.append(
                _verdict(
                    f"memory, {count} running (dockerd + containerd + shims against pyengined + monitors)",
                    b / a,
                    TARGET_RATIOS["memory"],
                    f"; {b / 1024:.1f} MiB against {a / 1024:.1f} MiB",
                )
            )
    return notes


# --------------------------------------------------------------------------------------------------
# Set-up, the loop, the teardown


def run(options: argparse.Namespace, workdir: Path) -> None:
    """Start the engines, measure, report; everything is gone when this returns or raises."""
    oci = _load("oci_images")
    image = oci.write_busybox_layout(workdir / "image" / "oci")
    archive = oci.to_docker_archive(image, workdir / "image" / "busybox.docker.tar", IMAGE)
    sides: list[Side] = []

    bridges: set[str] = set()  # of the networks made, on either side: looked for once both stopped

    with contextlib.ExitStack() as stack:
        stack.callback(_links_left, bridges)  # callbacks run last in, first out: this one last
        if options.side in (None, "dockerd"):
            peers = _load_peers()
            print("bench: starting a private dockerd", file=sys.stderr)
            # dockerd's default log level: its debug log costs it time a user does not spend; its
            # default userland proxy: without iptables, what carries a published port.
            peer = stack.enter_context(
                peers.dockerd(workdir / "dockerd", runtimes={}, log_level="info", userland_proxy=True)
            )
            peer_side = Dockerd(peer, options.docker, workdir)
            peer_side.bridges = bridges
            stack.callback(peer_side.remove_all)  # its networks too, which peers.py leaves
            stack.callback(_ignore_interrupts)  # before each teardown
            sides.append(peer_side)
        if options.side in (None, "pyengined"):
            print("bench: starting pyengined", file=sys.stderr)
            parents = [d / "pyrunc" for d in _own_cgroup_dirs() if not (d / "pyrunc").exists()]
            seen: set[str] = set()  # the engine's, filled as it goes
            stack.callback(_cgroups_left, seen, parents)
            root = workdir / "pye"
            process = stack.enter_context(pyengined(options.pyengined, root, free_bridge_name()))
            engine = Pyengined(process, options.docker, root, workdir, seen=seen)
            engine.bridges = bridges
            stack.callback(engine.remove_all)
            stack.callback(_ignore_interrupts)
            _wait_for_engine(engine, root / "pyengined.log")
            sides.append(engine)
        for side in sides:
            side.cli("load", "--input", str(archive))

        rows: list[Row] = []
        n, warm = options.iterations, options.warmup
        for target in RUN_OPTIONS:
            if target in options.targets:
                rows += measure_run(target, sides, n, warm)
        if "run-d" in options.targets:
            rows += measure_run_detached(sides, n, warm)
        if "exec" in options.targets:
            rows += measure_exec(sides, n, warm)
        if "ps" in options.targets:
            rows += measure_ps(sides, n, warm, options.running)
        if "logs" in options.targets:
            rows += measure_logs(sides, n, warm, options.lines)
        paths: list[Sampled] = []
        if "http" in options.targets:
            paths += measure_http(sides, n, warm, options.requests, options.clients, options.seconds)
        if "dns" in options.targets:
            paths += measure_dns(sides, n, warm, options.queries)
        notes = report_times(rows, sides, n) if rows else []
        notes += report_network(paths, sides, n) if paths else []
        if len(sides) == 2 and (paths or any(row.target in RUN_OPTIONS for row in rows)):
            notes.append(FIREWALL_NOTE)
        if "memory" in options.targets:
            notes += report_memory(
                measure_memory(sides, options.containers, options.settle), options.containers, options.settle
            )
        for side in sides:
            notes += [f"{side.name}: {what} failed: {error}" for what, error in side.failures.items()]
        print()
        for note in notes:
            print(f"note: {note}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--iterations", type=int, default=20, help="measured runs per row and side (20)")
    parser.add_argument("--warmup", type=int, default=3, help="unmeasured runs per row and side first (3)")
    parser.add_argument("--side", choices=SIDES, help="measure one side alone")
    parser.add_argument(
        "--target", dest="targets", action="append", choices=TARGETS, help="measure only this (repeatable)"
    )
    parser.add_argument("--running", type=int, default=20, help="running containers during ps (20)")
    parser.add_argument("--lines", type=int, default=100_000, help="lines of the logged container (100000)")
    parser.add_argument("--containers", type=int, default=50, help="idle containers weighed per side (50)")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds before reading memory (2)")
    parser.add_argument("--requests", type=int, default=100, help="sequential GETs per iteration (100)")
    parser.add_argument("--clients", type=int, default=4, help="concurrent HTTP clients (4)")
    parser.add_argument("--seconds", type=float, default=1.0, help="seconds of each throughput run (1)")
    parser.add_argument("--queries", type=int, default=100, help="DNS queries per iteration (100)")
    parser.add_argument(
        "--docker", default=shutil.which("docker"), help="the docker CLI, for both sides (default: on PATH)"
    )
    parser.add_argument(
        "--pyengined",
        type=Path,
        default=Path(sys.executable).parent / "pyengined",
        help="pyengined's console script (default: next to this Python)",
    )
    # nox's bench session gives every benchmark the same arguments: the others' are ignored here.
    options, _ = parser.parse_known_args(argv)
    options.targets = options.targets or list(TARGETS)
    counts = (options.iterations, options.running, options.lines, options.containers, options.requests)
    if min(*counts, options.clients, options.queries) < 1 or options.warmup < 0 or options.seconds <= 0:
        parser.error(
            "--iterations, --running, --lines, --containers, --requests, --clients and --queries must be"
            " at least 1, --warmup 0, --seconds more than 0"
        )
    if os.geteuid() != 0:
        print("bench: the engines and containers need root", file=sys.stderr)
        return 1
    missing = [f"{options.pyengined} (--pyengined)"] if not os.access(options.pyengined, os.X_OK) else []
    missing += ["docker (--docker)"] if not options.docker else []
    missing += [
        name
        for name in ("dockerd", "containerd", "containerd-shim-runc-v2", "skopeo")
        if not shutil.which(name)
    ]
    if missing:
        print(f"bench: not installed: {', '.join(missing)} (run scripts/bootstrap)", file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, _interrupt)

    # Under /tmp, short: pyengined's task sockets must fit 108 bytes.
    workdir = Path(tempfile.mkdtemp(prefix="bench-pye-", dir="/tmp"))
    try:
        run(options, workdir)
        return 0
    except KeyboardInterrupt:
        print("\nbench: interrupted; everything it started is stopped", file=sys.stderr)
        return 130
    except (AssertionError, OperationFailed) as exc:  # peers.PeerError, or an engine's set-up
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    finally:
        remove_workdir(workdir)


if __name__ == "__main__":
    sys.exit(main())
