"""A registry on loopback for the README's tour: ``docker-registry`` holding ``busybox:latest``.

    scripts/registry start [127.0.0.1:5000]   # starts it in the background, pushes busybox:latest
    scripts/registry stop [127.0.0.1:5000]    # stops it by its pid and deletes what it stored

The image is the one the tests and the demo use (tests/oci_images.py: Debian's busybox-static in one
deterministic layer), written offline and pushed with skopeo, so nothing is fetched from the
internet. The registry listens on the loopback address given (never on another interface), without
authentication, with its config, storage, log and pid file in ``/run/loopback-registry/HOST-PORT``,
which ``stop`` removes. Both commands are idempotent: ``start`` leaves a running registry as it is,
``stop`` does nothing when none runs.
"""

from __future__ import annotations

import argparse
import importlib.util
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
STATE = Path("/run/loopback-registry")
DEFAULT_ADDRESS = "127.0.0.1:5000"


class RegistryError(Exception):
    """The registry could not be started or stopped; the message says why."""


def oci_images() -> ModuleType:
    """tests/oci_images.py, the offline image writer the tests (and scripts/demo.py) use."""
    spec = importlib.util.spec_from_file_location("registry_oci_images", ROOT / "tests" / "oci_images.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def loopback_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` with HOST an IPv4 loopback address: the only place this registry listens."""
    host, _, port = text.rpartition(":")
    try:
        if not ipaddress.IPv4Address(host).is_loopback:
            raise ValueError(host)
        number = int(port)
        if not 0 < number < 65536:
            raise ValueError(port)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give a loopback address and port, e.g. {DEFAULT_ADDRESS}"
        ) from None
    return host, number


def _answers(host: str, port: int) -> bool:
    """Whether an HTTP server answers ``GET /v2/`` at the address."""
    with socket.socket() as s:
        s.settimeout(1)
        try:
            s.connect((host, port))
            s.sendall(b"GET /v2/ HTTP/1.0\r\n\r\n")
            return s.recv(16).startswith(b"HTTP/1.")
        except OSError:
            return False


def _running_pid(directory: Path) -> int | None:
    """The pid in ``directory``'s pid file when that process is still the registry serving its config."""
    try:
        pid = int((directory / "pid").read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (FileNotFoundError, ValueError):
        return None
    return pid if str(directory / "config.yml").encode() in cmdline else None


def _log_tail(directory: Path) -> str:
    try:
        return "\n".join((directory / "registry.log").read_text(errors="replace").splitlines()[-20:])
    except FileNotFoundError:
        return "(no log)"


def start(host: str, port: int) -> None:
    address = f"{host}:{port}"
    directory = STATE / f"{host}-{port}"
    if _running_pid(directory) is not None:
        print(f"registry: {address} is already running (scripts/registry stop {address} stops it)")
        return
    binary = shutil.which("docker-registry") or shutil.which("docker-registry", path="/usr/bin:/usr/sbin")
    if binary is None:
        raise RegistryError("docker-registry not found: run scripts/bootstrap (it installs it)")
    if _answers(host, port):
        raise RegistryError(f"something else already serves {address}: pick another port")
    shutil.rmtree(directory, ignore_errors=True)  # what a registry that died left
    directory.mkdir(mode=0o700, parents=True)
    (directory / "config.yml").write_text(
        "version: 0.1\n"
        "log:\n  level: warn\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {directory / 'data'}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: {address}\n  secret: loopback-registry-{port}\n"
    )
    with (directory / "registry.log").open("wb") as log:
        process = subprocess.Popen(
            [binary, "serve", str(directory / "config.yml")],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # outlives this script, and a Ctrl-C in its terminal
        )
    (directory / "pid").write_text(f"{process.pid}\n")
    try:
        deadline = time.monotonic() + 30
        while not _answers(host, port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RegistryError(f"docker-registry did not start on {address}:\n{_log_tail(directory)}")
            time.sleep(0.05)
        images = oci_images()
        layout = images.write_busybox_layout(directory / "layout", tag="latest")
        reference = images.push_to_registry(layout, address, "busybox")
        shutil.rmtree(directory / "layout")
    except BaseException:
        stop(host, port)
        raise
    print(f"registry: {address} serves {reference} (pid {process.pid}); scripts/registry stop {address}")


def stop(host: str, port: int) -> None:
    address = f"{host}:{port}"
    directory = STATE / f"{host}-{port}"
    pid = _running_pid(directory)
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while _running_pid(directory) == pid and time.monotonic() < deadline:
            time.sleep(0.05)
        if _running_pid(directory) == pid:
            os.kill(pid, signal.SIGKILL)
        try:  # reaped here only when it is still this process's child (started by a failed start)
            os.waitpid(pid, 0)
        except ChildProcessError:
            deadline = time.monotonic() + 10
            while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
                time.sleep(0.05)
        print(f"registry: {address} stopped")
    else:
        print(f"registry: {address} is not running")
    shutil.rmtree(directory, ignore_errors=True)
    if directory.exists():
        raise RegistryError(f"could not remove {directory}")
    try:
        STATE.rmdir()  # unless another registry still runs
    except OSError:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/registry", description=__doc__.splitlines()[0] if __doc__ else None
    )
    parser.add_argument("command", choices=("start", "stop"))
    parser.add_argument(
        "address",
        nargs="?",
        default=DEFAULT_ADDRESS,
        type=loopback_address,
        help=f"loopback HOST:PORT (default {DEFAULT_ADDRESS})",
    )
    options = parser.parse_args(argv)
    host, port = options.address
    try:
        (start if options.command == "start" else stop)(host, port)
    except (RegistryError, OSError, RuntimeError) as exc:  # RuntimeError: skopeo's, from oci_images
        print(f"registry: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
