"""The main job of the project, end to end: the docker CLI runs a container through ``pyengined``.

Starts a private ``pyengined`` (its data root, exec root and socket in a temporary directory),
writes a busybox image offline (tests/oci_images.py: Debian's busybox-static in one deterministic
layer, as a docker-archive), loads it with ``docker load`` and runs it with ``docker run --rm IMAGE
sh -c …``: the engine creates the container through pycontainerd, which unpacks the image into an
overlayfs snapshot, generates the spec (Docker's default security) and starts the container's
monitor, which has pyrunc create it; the docker CLI prints what the container shows of itself
(hostname, pid, mounts, capabilities, seccomp mode, processes). Then the daemon is stopped and the
temporary directory removed; the exit code is the container's. Run as root, through ``scripts/demo``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from registry import oci_images  # scripts/registry.py, beside this file

IMAGE = "pyengine.demo/busybox:latest"  # a registry host of its own: never Docker Hub's name
SCRIPT = "; ".join(
    [
        'echo "hello from $(hostname), pid $$ in its own namespaces"',
        'echo "  its root: $(ls / | tr "\\n" " ")"',
        'echo "  its $(wc -l < /proc/self/mountinfo) mounts: '
        '$(cut -d" " -f5 /proc/self/mountinfo | tr "\\n" " ")"',
        'echo "  its capabilities: $(grep CapEff /proc/self/status | cut -f2), seccomp mode'
        ' $(grep Seccomp: /proc/self/status | cut -f2)"',
        'echo "  its user: $(id)"',
        'echo "  the processes it can see:"',
        "ps -o pid,user,comm",
    ]
)


def wait_for_socket(path: Path, daemon: subprocess.Popen[bytes], timeout: float) -> None:
    """Until the daemon answers on ``path``; RuntimeError if it exits or the time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if daemon.poll() is not None:
            raise RuntimeError(f"pyengined exited with status {daemon.returncode}")
        with socket.socket(socket.AF_UNIX) as probe:
            try:
                probe.connect(str(path))
                return
            except OSError:
                time.sleep(0.05)
    raise RuntimeError(f"pyengined did not listen on {path} within {timeout:g} s")


def stop(daemon: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM, as an init system stops it; SIGKILL if it has not gone in ``timeout`` seconds."""
    if daemon.poll() is None:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds before giving up (default 60)")
    options = parser.parse_args(argv)

    pyengined = Path(sys.executable).parent / "pyengined"
    docker = shutil.which("docker")
    if os.geteuid() != 0:
        print("demo: containers need root: run it as root", file=sys.stderr)
        return 1
    if not pyengined.is_file():
        print(f"demo: {pyengined} is not installed: run scripts/bootstrap", file=sys.stderr)
        return 1
    if docker is None:
        print("demo: no docker CLI on PATH: scripts/bootstrap installs Debian's docker.io", file=sys.stderr)
        return 1

    workdir = Path(tempfile.mkdtemp(prefix="pyengine-demo-"))
    sock = workdir / "engine.sock"
    env = {**os.environ, "DOCKER_HOST": f"unix://{sock}", "DOCKER_CONFIG": str(workdir / "docker-config")}
    log = (workdir / "pyengined.log").open("wb")
    daemon = subprocess.Popen(
        [str(pyengined), "-H", f"unix://{sock}", "--data-root", str(workdir / "data"),
         "--exec-root", str(workdir / "run"), "--pidfile", str(workdir / "pyengined.pid")],
        stdin=subprocess.DEVNULL, stdout=log, stderr=log,
    )  # fmt: skip
    code = 1
    try:
        images = oci_images()
        layout = images.write_busybox_layout(workdir / "layout")
        archive = images.to_docker_archive(layout, workdir / "busybox.tar", reference=IMAGE)
        wait_for_socket(sock, daemon, options.timeout)
        subprocess.run([docker, "load", "-q", "-i", str(archive)], env=env, check=True,
                       timeout=options.timeout, stdout=subprocess.DEVNULL)  # fmt: skip
        print(f"$ docker run --rm {IMAGE} sh -c '…'", flush=True)
        try:
            code = subprocess.run(
                [docker, "run", "--rm", "--pull", "never", "--network", "none", IMAGE, "sh", "-c", SCRIPT],
                env=env,
                stdin=subprocess.DEVNULL,
                timeout=options.timeout,
            ).returncode
        except subprocess.TimeoutExpired:
            print(f"demo: the container did not finish in {options.timeout:g} s", file=sys.stderr)
            code = 124
        print(f"container exited with code {code}")
    except (RuntimeError, subprocess.SubprocessError, OSError) as exc:
        print(f"demo: {exc}", file=sys.stderr)
    finally:
        left = subprocess.run([docker, "ps", "-aq"], env=env, capture_output=True, text=True, check=False)
        if daemon.poll() is None and left.stdout.split():
            subprocess.run(
                [docker, "rm", "-f", *left.stdout.split()], env=env, capture_output=True, check=False
            )
        stop(daemon, options.timeout)
        log.close()
        if code != 0:
            sys.stderr.write((workdir / "pyengined.log").read_text(errors="replace")[-4000:])
        shutil.rmtree(workdir, ignore_errors=True)
        if workdir.exists():
            print(f"demo: could not remove {workdir}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
