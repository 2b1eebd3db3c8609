"""Terminals, for real: the console socket (what containerd's shim uses) and ``run``/``exec``
bridging a pty to their own stdio, checked side by side with runc where both can run."""

from __future__ import annotations

import fcntl
import os
import select
import socket
import struct
import subprocess
import termios
import time
from pathlib import Path
from typing import Any

import pyrunc_tests_helpers as h
import pytest

PROBE = "tty; stty size; echo TERM=$TERM"


@pytest.fixture(params=["pyrunc", "runc"])
def rt(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    binary = h.PYRUNC if request.param == "pyrunc" else h.RUNC
    assert binary.exists(), f"{binary} is missing: run scripts/bootstrap"
    runtime = h.Runtime(binary, tmp_path / f"{request.param}-root")
    yield runtime
    runtime.cleanup()


def terminal_bundle(tmp_path: Path, args: list[str], rows: int = 33, cols: int = 101) -> Path:
    return h.make_bundle(
        h.next_bundle_dir(tmp_path),
        args,
        h.setting("process.terminal", True),
        h.setting("process.consoleSize", {"height": rows, "width": cols}),
    )


def read_until_closed(fd: int, timeout: float = 20.0) -> bytes:
    out = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if not ready:
            continue
        try:
            data = os.read(fd, 65536)
        except OSError:  # EIO: the other side is gone
            break
        if not data:
            break
        out += data
    return out


def run_under_pty(argv: list[str], send: bytes = b"") -> tuple[int, str]:
    """Run ``argv`` with a 40x120 pty as its stdio (as a terminal user would); return (status,
    output)."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    if send:
        time.sleep(0.3)
        os.write(master, send)
    out = read_until_closed(master)
    os.close(master)
    return proc.wait(timeout=20), out.decode(errors="replace").replace("\r\n", "\n")


def test_run_bridges_the_pty_to_our_terminal(rt: Any, tmp_path: Path) -> None:
    bundle = terminal_bundle(tmp_path, ["sh", "-c", PROBE + "; exit 3"])
    status, out = run_under_pty(rt.argv("run", "--bundle", str(bundle), rt.new_id()))
    assert status == 3, out
    assert "/dev/pts/0" in out and "TERM=xterm" in out
    # The caller's terminal size wins over consoleSize. pyrunc sets it before the process starts;
    # runc resizes once the process runs, so the process may still see consoleSize.
    assert "40 120" in out if rt.name == "pyrunc" else ("40 120" in out or "33 101" in out), out


def test_interactive_shell_through_run(rt: Any, tmp_path: Path) -> None:
    bundle = terminal_bundle(tmp_path, ["sh"])
    status, out = run_under_pty(
        rt.argv("run", "--bundle", str(bundle), rt.new_id()), b"echo hi-$((6*7)); exit 4\n"
    )
    assert status == 4, out
    assert "hi-42" in out


def receive_master(listener: socket.socket) -> int:
    conn, _ = listener.accept()
    with conn:
        _, fds, _, _ = socket.recv_fds(conn, 1024, 1)
    assert len(fds) == 1
    return fds[0]


def test_console_socket_gets_the_master(rt: Any, tmp_path: Path) -> None:
    bundle = terminal_bundle(tmp_path, ["sh", "-c", PROBE])
    path = str(tmp_path / "console.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(path)
        listener.listen(1)
        container_id = rt.new_id()
        with open(os.devnull, "rb") as null:
            create = subprocess.Popen(
                rt.argv("create", "--console-socket", path, "--bundle", str(bundle), container_id),
                stdin=null,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            master = receive_master(listener)
            _, err = create.communicate(timeout=30)
        assert create.returncode == 0, err
    try:
        assert rt("start", container_id).returncode == 0
        out = read_until_closed(master).decode(errors="replace")
    finally:
        os.close(master)
    assert "/dev/pts/0" in out and "33 101" in out, out
    rt.wait_status(container_id, "stopped")


def test_exec_with_a_terminal(rt: Any, tmp_path: Path) -> None:
    bundle = h.make_bundle(h.next_bundle_dir(tmp_path), ["sleep", "30"])
    container_id = rt.new_id()
    with open(os.devnull, "rb") as null:
        subprocess.run(
            rt.argv("run", "-d", "--bundle", str(bundle), container_id),
            stdin=null,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=True,
            timeout=30,
        )
    status, out = run_under_pty(rt.argv("exec", "-t", container_id, "sh", "-c", "tty; exit 6"))
    assert status == 6, out
    assert "/dev/pts/" in out


@pytest.mark.parametrize(
    ("terminal", "flags", "message"),
    [
        (True, [], "cannot allocate tty if runc will detach without setting console socket"),
        (False, ["--console-socket", "/nonexistent.sock"], "cannot use console socket"),
    ],
)
def test_refusals(rt: Any, tmp_path: Path, terminal: bool, flags: list[str], message: str) -> None:
    bundle = h.make_bundle(h.next_bundle_dir(tmp_path), ["true"], h.setting("process.terminal", terminal))
    container_id = rt.new_id()
    with h.nothing_left_behind(rt.root, container_id):
        result = rt("create", *flags, "--bundle", bundle, container_id)
    assert result.returncode != 0
    assert message in result.stderr
