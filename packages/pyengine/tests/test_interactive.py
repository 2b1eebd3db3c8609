"""Input and terminals through the real docker CLI and docker-py: ``run -i`` and ``-it`` (driven
through a pty), the detach keys, ``attach``, and ``exec`` in all its forms."""

from __future__ import annotations

import fcntl
import os
import select
import socket
import struct
import subprocess
import termios
import time
from collections.abc import Iterator

import docker
import pytest

from pyengine import DaemonConfig

TYPE_CHECKING = False
if TYPE_CHECKING:
    from conftest import DockerCLI


class Terminal:
    """The docker CLI run on a pty of ``rows`` x ``cols``, as a person at a terminal runs it."""

    def __init__(self, cli: DockerCLI, *args: str, rows: int = 31, cols: int = 97) -> None:
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.process = subprocess.Popen(
            [cli.binary, "-H", cli.host, *args],
            env={**cli.env, "TERM": "xterm"},
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
        )
        os.close(slave)
        self.output = b""

    def expect(self, text: bytes, timeout: float = 30) -> bytes:
        """Read until ``text`` has appeared; everything read so far."""
        deadline = time.monotonic() + timeout
        while text not in self.output:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"{text!r} never came; got {self.output!r}"
            ready, _, _ = select.select([self.master], [], [], remaining)
            if ready:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:  # EIO: the CLI has exited and closed its side
                    chunk = b""
                assert chunk, f"the terminal closed before {text!r}; got {self.output!r}"
                self.output += chunk
        return self.output

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def wait(self, timeout: float = 30) -> int:
        return self.process.wait(timeout=timeout)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        os.close(self.master)


@pytest.fixture
def terminal(loaded: DockerCLI) -> Iterator[type[Terminal]]:
    opened: list[Terminal] = []

    class Opened(Terminal):
        def __init__(self, *args: str, **size: int) -> None:
            super().__init__(loaded, *args, **size)
            opened.append(self)

    try:
        yield Opened
    finally:
        for each in opened:
            each.close()


def test_run_i_feeds_stdin_and_closes_it_at_its_end(loaded: DockerCLI) -> None:
    done = loaded(
        "run",
        "-i",
        "--rm",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "cat; echo done >&2",
        input="one\ntwo\n",
    )
    assert (done.stdout, done.stderr) == ("one\ntwo\n", "done\n")
    counted = loaded("run", "-i", "--rm", "busybox", "wc", "-c", input="x" * 300_000)
    assert counted.stdout.strip() == "300000"
    # Without -i nothing is read: the process sees an empty stdin at once.
    assert loaded("run", "--rm", "busybox", "cat", input="ignored\n").stdout == ""


def test_run_it_through_a_pty_with_its_size_and_exit_code(
    loaded: DockerCLI, terminal: type[Terminal]
) -> None:
    shell = terminal("run", "-it", "--rm", "busybox", "sh", rows=31, cols=97)
    shell.expect(b"# ")
    shell.send(b"stty size; tty; echo TERM=$TERM; exit 3\r")
    output = shell.expect(b"TERM=xterm")
    assert shell.wait() == 3
    assert b"31 97" in output and b"/dev/pts/0" in output
    assert loaded("ps", "-aq").stdout == ""  # --rm


def test_detach_keys_leave_the_container_running_and_attach_comes_back(
    loaded: DockerCLI, terminal: type[Terminal]
) -> None:
    shell = terminal("run", "-it", "--name", "detached", "busybox", "sh")
    shell.expect(b"# ")
    shell.send(b"echo before\r")
    shell.expect(b"before")
    shell.send(b"\x10\x11")  # Ctrl-P Ctrl-Q
    assert shell.wait() == 0
    assert loaded("inspect", "-f", "{{.State.Running}}", "detached").stdout == "true\n"

    again = terminal("attach", "--detach-keys", "ctrl-x,x", "detached")
    again.send(b"echo back\r")
    again.expect(b"back")
    again.send(b"\x18x")
    # docker attach (unlike run) reports a detach as an error: "read escape sequence", status 1.
    again.expect(b"read escape sequence")
    again.wait()
    assert loaded("inspect", "-f", "{{.State.Running}}", "detached").stdout == "true\n"
    loaded("rm", "-f", "detached")


def test_exec_runs_with_its_user_directory_environment_and_exit_code(loaded: DockerCLI) -> None:
    loaded("run", "-d", "--name", "host", "busybox", "sleep", "60")
    assert loaded("exec", "host", "echo", "hello").stdout == "hello\n"
    who = loaded(
        "exec", "-u", "nobody", "-w", "/tmp", "-e", "EXTRA=1", "host", "sh", "-c", "id -u; pwd; echo $EXTRA"
    )
    assert who.stdout.split() == ["65534", "/tmp", "1"]
    assert loaded("exec", "host", "sh", "-c", "exit 7", check=False).returncode == 7
    assert loaded("exec", "-i", "host", "tr", "a-z", "A-Z", input="shout\n").stdout == "SHOUT\n"
    loaded("exec", "-d", "host", "sh", "-c", "echo detached > /tmp/mark")
    deadline = time.monotonic() + 10
    while loaded("exec", "host", "cat", "/tmp/mark", check=False).stdout != "detached\n":
        assert time.monotonic() < deadline, "the detached exec never ran"
        time.sleep(0.1)

    missing = loaded("exec", "host", "nosuchcommand", check=False)
    assert missing.returncode == 126 and "nosuchcommand" in missing.stdout + missing.stderr
    nobody = loaded("exec", "-u", "nosuchuser", "host", "true", check=False)
    assert nobody.returncode != 0 and "nosuchuser" in nobody.stdout + nobody.stderr

    loaded("stop", "-t", "1", "host")
    stopped = loaded("exec", "host", "true", check=False)
    assert stopped.returncode != 0 and "is not running" in stopped.stderr
    loaded("rm", "host")


def test_exec_it_through_a_pty(loaded: DockerCLI, terminal: type[Terminal]) -> None:
    loaded("run", "-d", "--name", "host", "busybox", "sleep", "60")
    shell = terminal("exec", "-it", "host", "sh", rows=40, cols=120)
    shell.expect(b"# ")
    shell.send(b"stty size; exit 5\r")
    shell.expect(b"40 120")
    assert shell.wait() == 5
    loaded("rm", "-f", "host")


def test_docker_py_exec_and_attach_socket(loaded: DockerCLI, config: DaemonConfig) -> None:
    client = docker.DockerClient(base_url=config.hosts[0], version="auto")
    try:
        container = client.containers.run("busybox", ["sleep", "60"], detach=True)
        assert container.exec_run(["sh", "-c", "echo out; echo err >&2; exit 2"]) == (2, b"out\nerr\n")
        code, (out, err) = container.exec_run(["sh", "-c", "echo out; echo err >&2"], demux=True)
        assert (code, out, err) == (0, b"out\n", b"err\n")
        streamed = container.exec_run(["sh", "-c", "for i in 1 2 3; do echo $i; done"], stream=True)
        assert b"".join(streamed.output) == b"1\n2\n3\n"
        exec_id = client.api.exec_create(container.id, ["true"])["Id"]
        client.api.exec_start(exec_id)
        inspected = client.api.exec_inspect(exec_id)
        assert (inspected["ExitCode"], inspected["Running"], inspected["ContainerID"]) == (
            0,
            False,
            container.id,
        )
        container.remove(force=True)

        cat = client.containers.create("busybox", ["cat"], stdin_open=True)
        sock = cat.attach_socket(params={"stdin": 1, "stdout": 1, "stream": 1})
        cat.start()
        sock._sock.sendall(b"through the socket\n")
        received = b""
        while b"through the socket" not in received:
            chunk = sock._sock.recv(4096)
            assert chunk, received
            received += chunk
        assert received.startswith(b"\x01\x00\x00\x00")  # a stdout frame
        sock.close()
        cat.remove(force=True)
    finally:
        client.close()


def test_an_exec_whose_input_ends_as_it_exits_ends_cleanly(loaded: DockerCLI, config: DaemonConfig) -> None:
    """docker-compose's ``exec -T``: stdin attached and ended at once, while the process exits (its
    monitor connection going with it): each stream still ends as a stream, never with an error
    written into it. A race, so tried a few times."""
    client = docker.APIClient(base_url=config.hosts[0], version="auto")
    try:
        container = client.create_container("busybox", ["sleep", "60"])
        client.start(container["Id"])
        for _ in range(20):
            exec_id = client.exec_create(container["Id"], ["echo", "done"], stdin=True)["Id"]
            sock = client.exec_start(exec_id, socket=True)._sock
            sock.shutdown(socket.SHUT_WR)
            received = b""
            while chunk := sock.recv(4096):
                received += chunk
            sock.close()
            assert received == b"\x01\x00\x00\x00\x00\x00\x00\x05done\n"  # one stdout frame, nothing else
            assert client.exec_inspect(exec_id)["ExitCode"] == 0
        client.remove_container(container["Id"], force=True)
    finally:
        client.close()
