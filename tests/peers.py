"""The real peers pyrunc must drop in under, started privately for a test module and stopped by pid.

- :func:`registry`: ``docker-registry serve`` with a config of its own (``127.0.0.1:<free port>``,
  storage in a temporary directory), never Debian's stock config (every interface, htpasswd);
- :func:`containerd`: containerd 1.6 with its own ``root``, ``state``, ``opt`` directory and socket,
  no CRI plugin, the overlayfs snapshotter; :meth:`Containerd.ctr` drives it in a namespace of its
  own (``ctr run`` puts containers in the cgroup ``/<namespace>/<id>``);
- :func:`dockerd`: dockerd 20.10 with its own ``--data-root``, ``--exec-root``, socket, pidfile,
  config file and a bridge of its own (never ``--bridge=none``: that deletes the host's docker0),
  ``--iptables=false --ip-masq=false --ip-forward=false`` (no host firewall or sysctl changes),
  containers under a cgroup parent of its own, the managed containerd dockerd starts itself, and
  ``--add-runtime pyrunc=<the installed pyrunc>``; :meth:`Dockerd.docker` drives it with the
  machine's docker CLI and a private ``DOCKER_CONFIG``;
- :func:`run_in_pty`: a command with a pseudo-terminal for its stdio, as a person types into it;
- :data:`PROBES`, :func:`probe_script`, :func:`diff_answers`: shell probes of what a runtime set up
  (capabilities, seccomp, mounts, masked paths, /dev, limits), to compare runc and pyrunc.

Each context manager undoes all its peer did: containers removed, the daemon stopped by its pid
(SIGTERM, then SIGKILL), the cgroups it made removed, its bridge deleted, the directories it created
outside its temporary directory (``/run/containerd``, ``/run/docker``, ``/opt/containerd``,
``/etc/docker/key.json``) removed when they did not exist before and hold nothing else, and its
temporary directory deleted once no mount is left below it. What could not be undone fails the
teardown, listed. A peer's binary that is missing fails the test with "run scripts/bootstrap":
these tests never skip.
"""

from __future__ import annotations

import contextlib
import difflib
import fcntl
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import termios
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

__all__ = [
    "PROBES",
    "Containerd",
    "Dockerd",
    "PeerError",
    "Registry",
    "containerd",
    "diff_answers",
    "dockerd",
    "probe_script",
    "registry",
    "require",
    "run_in_pty",
]

#: PATH for the daemons: Debian puts runc in /usr/sbin, containerd and its shims in /usr/bin.
DAEMON_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
LOG_TAIL = 40  # lines of a peer's log quoted in an error
#: Where containerd 1.6's shims put their sockets (``s``) and ctr its fifos whatever the config says.
CONTAINERD_RUN_DIRS = ("/run/containerd", "/run/containerd/fifo", "/run/containerd/s", "/run/containerd/runc")


class PeerError(AssertionError):
    """A peer did not start, a command against it failed, or its teardown left something behind."""


def require(binary: str) -> str:
    """The path of ``binary`` on PATH (or in /usr/sbin, /usr/bin); a missing one fails the test."""
    path = shutil.which(binary) or shutil.which(binary, path=DAEMON_PATH)
    if path is None:
        pytest.fail(
            f"{binary} not found: run scripts/bootstrap (it installs the peers' Debian packages)",
            pytrace=False,
        )
    return path


# --------------------------------------------------------------------------------------------------
# Plumbing shared by the peers


def _tail(path: Path, lines: int = LOG_TAIL) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return f"({path} does not exist)"
    return "\n".join(text.splitlines()[-lines:])


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_until(
    ready: Callable[[], bool], process: subprocess.Popen[bytes], what: str, log: Path, timeout: float = 30.0
) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if process.poll() is not None:
            raise PeerError(f"{what} exited with {process.returncode} while starting; its log:\n{_tail(log)}")
        if time.monotonic() > deadline:
            raise PeerError(f"{what} not ready after {timeout:.0f}s; its log:\n{_tail(log)}")
        time.sleep(0.05)


def _stop(process: subprocess.Popen[bytes], timeout: float = 20.0) -> str | None:
    """SIGTERM the process by its pid, SIGKILL it after ``timeout``; say so if it had to be killed."""
    if process.poll() is not None:
        return None
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
        return None
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)
        return f"pid {process.pid} ({process.args[0]!r}) ignored SIGTERM for {timeout:.0f}s: killed"


def _stop_pid(pid: int, marker: str, timeout: float = 10.0) -> str | None:
    """Like :func:`_stop` for a process that is not our child (dockerd's managed containerd), if
    ``marker`` is still in its command line (else the pid is gone, or was reused since)."""
    try:
        if marker not in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"):
            return None
        os.kill(pid, signal.SIGTERM)
    except (FileNotFoundError, ProcessLookupError):
        return None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    return f"pid {pid} survived SIGTERM for {timeout:.0f}s: killed"


def _cgroup_mounts() -> list[str]:
    """The mount point of every cgroup hierarchy (v1 and v2) in this mount namespace."""
    points = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            if right.split()[0] in ("cgroup", "cgroup2"):
                points.append(left.split()[4])
    return points


def _remove_cgroup(relative: str, timeout: float = 5.0) -> list[str]:
    """rmdir ``relative`` (an absolute cgroup path like ``/name``) and what is below it, everywhere."""
    left: list[str] = []
    for mount in _cgroup_mounts():
        top = Path(mount + relative)
        if not top.is_dir():
            continue
        deadline = time.monotonic() + timeout
        while True:
            dirs = sorted((Path(d) for d, _, _ in os.walk(top)), key=lambda p: len(p.parts), reverse=True)
            busy = []
            for directory in dirs:
                try:
                    directory.rmdir()
                except FileNotFoundError:
                    pass
                except OSError as exc:  # EBUSY while the last tasks are still exiting
                    busy.append(f"{directory}: {exc.strerror}")
            if not busy or time.monotonic() > deadline:
                left += busy
                break
            time.sleep(0.05)
    return [f"cgroup left: {entry}" for entry in left]


def _mounts_below(directory: Path) -> list[str]:
    prefix = str(directory).rstrip("/") + "/"
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4].replace("\\040", " ")
            if point == str(directory) or point.startswith(prefix):
                found.append(point)
    return found


def _remove_tree(directory: Path) -> list[str]:
    """Delete a peer's temporary directory, unless something is still mounted below it (say so)."""
    mounts = _mounts_below(directory)
    if mounts:
        # Never rm -rf through a mount point: unmount (lazily) first, and report it as a leak.
        for point in sorted(mounts, key=len, reverse=True):
            subprocess.run(["umount", "-l", point], check=False, capture_output=True)
        return [f"mount left by the peer (now unmounted): {point}" for point in mounts]
    shutil.rmtree(directory, ignore_errors=True)
    return []


class _HostPaths:
    """Paths outside the peer's temporary directory that a peer creates when they are missing.

    Recorded before the peer starts; afterwards each one that did not exist then is removed: a file
    outright, a directory only when empty (another run's peer may be using it meanwhile).
    """

    def __init__(self, *paths: str) -> None:
        self.missing = [Path(p) for p in paths if not os.path.lexists(p)]

    def remove(self) -> None:
        for path in sorted(self.missing, key=lambda p: len(p.parts), reverse=True):
            try:
                if path.is_dir() and not path.is_symlink():
                    path.rmdir()
                else:
                    path.unlink()
            except OSError:
                pass  # gone already, or not empty: in use by someone else


def _run(
    argv: Sequence[str],
    *,
    what: str,
    log: Path,
    check: bool,
    timeout: float,
    input: str | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    try:
        result = subprocess.run(
            list(argv), input=input, capture_output=True, text=True, timeout=timeout, env=env
        )
    except subprocess.TimeoutExpired as exc:
        raise PeerError(f"{' '.join(argv)}: no answer after {timeout}s; {what}'s log:\n{_tail(log)}") from exc
    if check and result.returncode != 0:
        raise PeerError(
            f"{' '.join(argv)} exited {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
            f"\n{what}'s log (last lines):\n{_tail(log)}"
        )
    return result


def _raise_if(problems: list[str], what: str) -> None:
    if problems:
        raise PeerError(f"tearing down {what}:\n  " + "\n  ".join(problems))


# --------------------------------------------------------------------------------------------------
# docker-registry


@dataclass
class Registry:
    """A running private registry: push to and pull from ``address`` over plain HTTP."""

    address: str  # 127.0.0.1:PORT
    root: Path
    log: Path
    process: subprocess.Popen[bytes] = field(repr=False)


@contextlib.contextmanager
def registry(tmp: Path) -> Iterator[Registry]:
    """``docker-registry serve CONFIG`` on ``127.0.0.1:<free port>``, storing under ``tmp``."""
    binary = require("docker-registry")
    tmp.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    config, log = tmp / "config.yml", tmp / "registry.log"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: warn\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {tmp / 'data'}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n  secret: pyrunc-tests-{os.getpid()}\n"
    )

    def answers() -> bool:
        with socket.socket() as s:
            s.settimeout(1)
            try:
                s.connect(("127.0.0.1", port))
                s.sendall(b"GET /v2/ HTTP/1.0\r\n\r\n")
                return s.recv(16).startswith(b"HTTP/1.")
            except OSError:
                return False

    with log.open("wb") as out:
        process = subprocess.Popen(
            [binary, "serve", str(config)], stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    problems: list[str] = []
    try:
        _wait_until(answers, process, "docker-registry", log)
        yield Registry(f"127.0.0.1:{port}", tmp, log, process)
    finally:
        if note := _stop(process):
            problems.append(note)
        problems += _remove_tree(tmp)
    _raise_if(problems, "docker-registry")


# --------------------------------------------------------------------------------------------------
# containerd


@dataclass
class Containerd:
    """A running private containerd; :meth:`ctr` talks to it in :attr:`namespace`."""

    socket: Path
    namespace: str
    runc_root: Path  # give to ``ctr run --runc-root`` so the runtime's state stays in tmp too
    log: Path
    process: subprocess.Popen[bytes] = field(repr=False)

    def ctr_argv(self, *args: str) -> list[str]:
        return [require("ctr"), "--address", str(self.socket), "--namespace", self.namespace, *args]

    def ctr(
        self, *args: str, check: bool = True, timeout: float = 60.0, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """``ctr -a SOCK -n NS ARGS``; ``check``: a non-zero exit raises with containerd's log."""
        return _run(
            self.ctr_argv(*args), what="containerd", log=self.log, check=check, timeout=timeout, input=input
        )

    def remove_everything(self) -> list[str]:
        """Kill and delete every task and container in the namespace, then every image."""
        problems = []
        for line in self.ctr("containers", "list", "--quiet", check=False).stdout.split():
            self.ctr("tasks", "kill", "--all", "--signal", "SIGKILL", line, check=False)
            deleted = self.ctr("tasks", "delete", "--force", line, check=False)
            if deleted.returncode != 0 and "not found" not in deleted.stderr:
                problems.append(f"ctr tasks delete --force {line}: {deleted.stderr.strip()}")
            removed = self.ctr("containers", "delete", line, check=False)
            if removed.returncode != 0:
                problems.append(f"ctr containers delete {line}: {removed.stderr.strip()}")
        images = self.ctr("images", "list", "--quiet", check=False).stdout.split()
        if images:
            self.ctr("images", "remove", "--sync", *images, check=False)
        return problems


@contextlib.contextmanager
def containerd(tmp: Path, *, namespace: str | None = None) -> Iterator[Containerd]:
    """A private containerd 1.6 (no CRI, overlayfs) with everything it keeps under ``tmp``.

    containerd 1.6 still puts fifos and shim sockets under /run/containerd (``fifo``, ``s``): those
    directories are removed afterwards when this run created them and they are empty.
    """
    binary = require("containerd")
    require("ctr")
    require("containerd-shim-runc-v2")
    tmp.mkdir(parents=True, exist_ok=True)
    namespace = namespace or f"pyrunc-test-{os.getpid()}"
    sock, log, config = tmp / "containerd.sock", tmp / "containerd.log", tmp / "config.toml"
    config.write_text(
        f"""version = 2
root = "{tmp / "root"}"
state = "{tmp / "state"}"
# no CRI; overlayfs (ctr's default snapshotter) is the only snapshotter left
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
]

[grpc]
  address = "{sock}"
[ttrpc]
  address = "{sock}.ttrpc"
[debug]
  address = "{tmp / "debug.sock"}"
  level = "debug"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "{tmp / "opt"}"
[plugins."io.containerd.runtime.v1.linux"]
  runtime_root = "{tmp / "runtime-v1"}"
"""
    )
    host_paths = _HostPaths(*CONTAINERD_RUN_DIRS, f"/run/containerd/runc/{namespace}")
    with log.open("wb") as out:
        process = subprocess.Popen(
            [binary, "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "PATH": DAEMON_PATH},
        )
    peer = Containerd(sock, namespace, tmp / "runc-root", log, process)
    problems: list[str] = []
    try:
        _wait_until(
            lambda: peer.ctr("version", check=False, timeout=5).returncode == 0, process, "containerd", log
        )
        yield peer
    finally:
        if process.poll() is None:
            problems += peer.remove_everything()
        if note := _stop(process):
            problems.append(note)
        problems += _remove_cgroup(f"/{namespace}")
        host_paths.remove()
        problems += _remove_tree(tmp)
    _raise_if(problems, "containerd")


# --------------------------------------------------------------------------------------------------
# dockerd


@dataclass
class Dockerd:
    """A running private dockerd; :meth:`docker` is the machine's docker CLI pointed at it."""

    socket: Path
    bridge: str
    subnet: str  # of the bridge, e.g. 10.213.0.0/24
    log: Path
    config_dir: Path  # the CLI's DOCKER_CONFIG
    process: subprocess.Popen[bytes] = field(repr=False)

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    def docker_argv(self, *args: str) -> list[str]:
        return [require("docker"), "--host", self.host, *args]

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        env["DOCKER_CONFIG"] = str(self.config_dir)
        return env

    def docker(
        self, *args: str, check: bool = True, timeout: float = 60.0, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """The docker CLI against this daemon; ``check``: a non-zero exit raises with dockerd's log."""
        return _run(
            self.docker_argv(*args),
            what="dockerd",
            log=self.log,
            check=check,
            timeout=timeout,
            input=input,
            env=self.env(),
        )


def _add_bridge() -> tuple[str, int]:
    """Create a bridge ``pyrtbrN`` (``pyrtbr0`` first) whose 10.213.N.0/24 no route uses; return (name, N).

    Another test run on the machine may pick the same name at the same moment: ``ip link add`` then
    fails and the next N is tried.
    """
    routes = subprocess.run(["ip", "-4", "route", "show"], capture_output=True, text=True).stdout
    for n in range(256):
        name = f"pyrtbr{n}"
        if os.path.exists(f"/sys/class/net/{name}") or f"10.213.{n}." in routes:
            continue
        if subprocess.run(["ip", "link", "add", name, "type", "bridge"], capture_output=True).returncode == 0:
            return name, n
    raise PeerError("no free pyrtbrN bridge name / 10.213.N.0/24 subnet")


@contextlib.contextmanager
def dockerd(
    tmp: Path, *, runtimes: dict[str, Path], log_level: str = "debug", userland_proxy: bool = False
) -> Iterator[Dockerd]:
    """A private dockerd 20.10 on a bridge of its own, with extra ``--add-runtime NAME=PATH``; its
    log at ``log_level`` (debug, what a failing test shows; a benchmark asks for dockerd's default,
    info, whose time it then measures). Without iptables rules, a published port reaches its
    container only through docker-proxy: ``userland_proxy`` starts one per port (dockerd's default;
    off unless asked, as the tests publish nothing on it).

    dockerd starts and stops its own containerd under ``--exec-root``. Outside ``tmp`` it touches:
    the bridge (created here, deleted afterwards), ``/etc/docker/key.json`` (its trust key, written
    at start), ``/run/docker/plugins``, ``/opt/containerd`` (its containerd's default opt dir), and
    the shims' ``/run/containerd/s`` and the cgroups of its containers under
    ``/pyrunc-test-<pid>-docker``: all removed afterwards when they were not there before.
    """
    binary = require("dockerd")
    require("docker")
    require("containerd")
    tmp.mkdir(parents=True, exist_ok=True)
    sock, log, pidfile = tmp / "docker.sock", tmp / "dockerd.log", tmp / "docker.pid"
    config_file, config_dir = tmp / "daemon.json", tmp / "cli"
    config_file.write_text("{}\n")  # never the host's /etc/docker/daemon.json
    config_dir.mkdir(exist_ok=True)
    cgroup_parent = f"/pyrunc-test-{os.getpid()}-docker"
    host_paths = _HostPaths(
        *CONTAINERD_RUN_DIRS,
        "/etc/docker",
        "/etc/docker/key.json",
        "/run/docker",
        "/run/docker/plugins",
        "/opt/containerd",
        "/opt/containerd/bin",
        "/opt/containerd/lib",
    )

    bridge, n = _add_bridge()
    problems: list[str] = []
    try:
        subprocess.run(["ip", "addr", "add", f"10.213.{n}.1/24", "dev", bridge], check=True)
        subprocess.run(["ip", "link", "set", bridge, "up"], check=True)
        argv = [
            binary,
            f"--data-root={tmp / 'data'}",
            f"--exec-root={tmp / 'exec'}",
            f"--host=unix://{sock}",
            f"--pidfile={pidfile}",
            f"--config-file={config_file}",
            f"--bridge={bridge}",
            "--iptables=false",
            "--ip-masq=false",
            "--ip-forward=false",
            f"--userland-proxy={str(userland_proxy).lower()}",
            f"--cgroup-parent={cgroup_parent}",
            "--default-runtime=runc",
            *(f"--add-runtime={name}={path}" for name, path in runtimes.items()),
            f"--log-level={log_level}",
        ]
        with log.open("wb") as out:
            process = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, "PATH": DAEMON_PATH},
            )
        peer = Dockerd(sock, bridge, f"10.213.{n}.0/24", log, config_dir, process)
        try:
            _wait_until(
                lambda: sock.exists() and peer.docker("version", check=False, timeout=10).returncode == 0,
                process,
                "dockerd",
                log,
            )
            yield peer
        finally:
            if process.poll() is None:
                ids = peer.docker("ps", "--all", "--quiet", check=False).stdout.split()
                if ids:
                    removed = peer.docker("rm", "--force", "--volumes", *ids, check=False)
                    if removed.returncode != 0:
                        problems.append(f"docker rm --force {' '.join(ids)}: {removed.stderr.strip()}")
            managed = tmp / "exec" / "containerd" / "containerd.pid"
            containerd_pid = int(managed.read_text()) if managed.exists() else None
            if note := _stop(process, timeout=30):
                problems.append(note)
            if containerd_pid is not None and (note := _stop_pid(containerd_pid, str(tmp))):
                problems.append(f"dockerd's containerd: {note}")
    finally:
        subprocess.run(["ip", "link", "delete", bridge], check=False, capture_output=True)
        problems += _remove_cgroup(cgroup_parent)
        host_paths.remove()
        problems += _remove_tree(tmp)
    _raise_if(problems, "dockerd")


# --------------------------------------------------------------------------------------------------
# Comparing runtimes

#: Shell probes of what a runtime set up, run inside containers and compared between runtimes.
PROBES = {
    "status": "grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs|Seccomp|Seccomp_filters):' /proc/self/status",
    # mount point, per-mount options, fs type, super options without the per-boot values
    "mounts": ("awk '{ for (i = 7; $i != \"-\"; i++) ; print $5, $6, $(i+1) }' /proc/self/mountinfo | sort"),
    "masked": (
        "for p in /proc/acpi /proc/kcore /proc/keys /proc/latency_stats /proc/timer_list /proc/sched_debug "
        "/proc/scsi /sys/firmware /proc/asound /proc/interrupts; do "
        "  if [ -e $p ]; then echo $p $(ls -A $p 2>&1 | wc -l) $(head -c 64 $p 2>/dev/null | wc -c); fi; done"
    ),
    "readonly": (
        # /sys/fs/cgroup: see test_a_tmpfs_keeps_the_mode_of_the_directory_it_covers
        "for p in /proc/bus /proc/fs /proc/irq /proc/sys /proc/sysrq-trigger /sys /sys/fs/cgroup/pids; do "
        "  echo $p: $(touch $p/x 2>&1 | sed 's/.*: //'); done"
    ),
    "dev": "ls -la /dev | awk '{print $1, $3, $4, $5, $6, $NF}' | sort",
    "limits": "ulimit -a; id; umask; cat /proc/self/oom_score_adj; cat /proc/self/loginuid 2>&1 | tail -c 12",
    "cgroups": "cat /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/memory/memory.limit_in_bytes",
}


def probe_script(names: Sequence[str] = tuple(PROBES)) -> str:
    """One ``sh -c`` script running the named probes, each announced by a ``## NAME`` line."""
    return "; ".join(f"echo '## {name}'; {PROBES[name]}" for name in names)


def diff_answers(answers: dict[str, str]) -> str:
    """A unified diff of what runc and pyrunc answered, for an assertion message."""
    lines = difflib.unified_diff(
        answers["runc"].splitlines(), answers["pyrunc"].splitlines(), "runc", "pyrunc", lineterm=""
    )
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------
# A terminal


def run_in_pty(
    argv: Sequence[str],
    *,
    script: Sequence[tuple[bytes, bytes]] = (),
    env: dict[str, str] | None = None,
    timeout: float = 60.0,
) -> tuple[int, bytes]:
    """Run ``argv`` with a new pseudo-terminal (80x24) as its stdin, stdout and stderr.

    ``script`` is ``(expect, send)`` pairs: once ``expect`` has appeared in the output (after the
    previous match), ``send`` is typed. Returns the exit code and everything the terminal showed.
    The process is killed (and the test fails) if it has not exited after ``timeout`` seconds.
    """
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    try:
        process = subprocess.Popen(
            list(argv), stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True
        )
    finally:
        os.close(slave)
    output = b""
    pending = list(script)
    matched_up_to = 0
    deadline = time.monotonic() + timeout
    try:
        while True:
            if pending:
                expect, send = pending[0]
                at = output.find(expect, matched_up_to)
                if at >= 0:
                    matched_up_to = at + len(expect)
                    os.write(master, send)
                    pending.pop(0)
                    continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                process.kill()
                process.wait()
                raise PeerError(
                    f"{' '.join(argv)}: still running after {timeout}s; the terminal showed {output!r}"
                )
            ready, _, _ = select.select([master], [], [], min(remaining, 0.5))
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: every slave end is closed, the process is gone
                    break
                if not chunk:
                    break
                output += chunk
        return process.wait(timeout=max(deadline - time.monotonic(), 1)), output
    finally:
        os.close(master)
        if process.poll() is None:
            process.kill()
            process.wait()
