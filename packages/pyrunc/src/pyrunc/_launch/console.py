"""Terminals: the console socket, and bridging a container's pty to our own stdio.

The container's init makes its pty inside the container (see native.c ``op_console``) and sends
the master over a unix socket, as runc does. Whoever created the container with
``--console-socket`` receives it there (containerd's shim does); ``pyrunc run`` and ``exec``
without a socket receive it themselves and copy between the pty and their own stdin/stdout,
in raw mode when stdin is a terminal, passing window size changes on.
"""

from __future__ import annotations

import _socket
import os
import sys

from pyrunc._errors import PyruncError

__all__ = ["bridge", "connect", "receive_master", "socketpair", "terminal_size"]

_SCM_RIGHTS = 1
_TIOCGWINSZ = 0x5413
_TIOCSWINSZ = 0x5414


def connect(path: str) -> _socket.socket:
    """Connect to a console socket (a unix stream socket someone listens on)."""
    if "\0" in path:  # the kernel would take the path up to it: another socket's
        raise PyruncError(f"--console-socket {path!r}: a path cannot hold a NUL byte")
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    try:
        sock.connect(path)
    except OSError as exc:
        sock.close()
        raise PyruncError(f"--console-socket {path}: {exc.strerror}") from None
    return sock


def socketpair() -> tuple[_socket.socket, _socket.socket]:
    """A pair for receiving the master ourselves: (ours, the init's)."""
    return _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)


def receive_master(sock: _socket.socket) -> int:
    """The pty master the init sent on ``sock`` (one fd in SCM_RIGHTS)."""
    _, ancillary, _, _ = sock.recvmsg(64, _socket.CMSG_SPACE(4))
    for level, kind, data in ancillary:
        if level == _socket.SOL_SOCKET and kind == _SCM_RIGHTS and len(data) >= 4:
            fd = int.from_bytes(data[:4], sys.byteorder, signed=True)  # the first of the ints sent
            os.set_inheritable(fd, False)
            return fd
    raise PyruncError("the container's init did not send its terminal")


def terminal_size() -> tuple[int, int] | None:
    """(rows, columns) of the terminal on our stdin, if it is one of known size."""
    import fcntl

    try:
        size = fcntl.ioctl(sys.stdin.fileno(), _TIOCGWINSZ, b"\0" * 8)
    except (OSError, ValueError):
        return None
    rows, cols = int.from_bytes(size[0:2], sys.byteorder), int.from_bytes(size[2:4], sys.byteorder)
    return (rows, cols) if rows and cols else None


def _copy_window_size(source: int, target: int) -> None:
    import fcntl

    try:
        size = fcntl.ioctl(source, _TIOCGWINSZ, b"\0" * 8)
        if size[:4] != b"\0\0\0\0":  # a terminal of unknown size keeps the spec's consoleSize
            fcntl.ioctl(target, _TIOCSWINSZ, size)
    except OSError:
        pass


def bridge(master: int, pid: int) -> int:
    """Copy stdin to the pty and the pty to stdout until the container's side closes, then
    reap ``pid`` and return its status (128+signal if killed)."""
    import select

    from pyrunc._signals import signal

    stdin, stdout = sys.stdin.fileno(), sys.stdout.fileno()
    interactive = os.isatty(stdin)
    saved = None
    previous_winch = None
    if interactive:
        import termios
        import tty

        saved = termios.tcgetattr(stdin)
        tty.setraw(stdin)
        _copy_window_size(stdin, master)
        previous_winch = signal.signal(signal.SIGWINCH, lambda *_: _copy_window_size(stdin, master))
    try:
        poller = select.poll()
        poller.register(master, select.POLLIN)
        reading_stdin = True
        try:
            poller.register(stdin, select.POLLIN)
        except (OSError, ValueError):
            reading_stdin = False
        while True:
            try:
                events = poller.poll()
            except InterruptedError:
                continue
            done = False
            for fd, event in events:
                if fd == master:
                    try:
                        data = os.read(master, 65536)
                    except OSError:  # EIO: every holder of the pty's other end has exited
                        data = b""
                    if not data:
                        done = True
                        break
                    os.write(stdout, data)
                elif reading_stdin:
                    data = os.read(stdin, 65536) if event & select.POLLIN else b""
                    if data:
                        os.write(master, data)
                    else:
                        poller.unregister(stdin)
                        reading_stdin = False
            if done:
                break
    finally:
        if saved is not None:
            import termios

            termios.tcsetattr(stdin, termios.TCSADRAIN, saved)
            signal.signal(signal.SIGWINCH, previous_winch)
        os.close(master)
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except InterruptedError:
            continue
    return 128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
