"""The only module that touches the cffi library: typed flags, and the spawn call.

Everything the container's init does between clone and exec is a list of :class:`Op` values
(built by :mod:`pyrunc._plan`) that :func:`spawn` hands to C in one call.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "MAX_SOURCES",
    "NAMESPACE_FILES",
    "NAMESPACE_FLAGS",
    "CloneFlags",
    "MountFlags",
    "Op",
    "OpKind",
    "SpawnRequest",
    "StepFailed",
    "spawn",
]


#: How many files the child opens early into slots (OPEN_SOURCE): native.h's PYRUNC_MAX_SOURCES.
MAX_SOURCES = 1024


class CloneFlags:
    """Namespace flags of clone3(2) and unshare(2).

    Plain int constants rather than ``enum.IntFlag``: create does not import ``enum`` (see
    ARCHITECTURE.md, start-up).
    """

    NEWTIME = 0x00000080
    NEWNS = 0x00020000
    NEWCGROUP = 0x02000000
    NEWUTS = 0x04000000
    NEWIPC = 0x08000000
    NEWUSER = 0x10000000
    NEWPID = 0x20000000
    NEWNET = 0x40000000


# Spec namespace type -> its clone flag, and its file under /proc/<pid>/ns/.
NAMESPACE_FLAGS = {
    "pid": CloneFlags.NEWPID,
    "network": CloneFlags.NEWNET,
    "mount": CloneFlags.NEWNS,
    "ipc": CloneFlags.NEWIPC,
    "uts": CloneFlags.NEWUTS,
    "user": CloneFlags.NEWUSER,
    "cgroup": CloneFlags.NEWCGROUP,
    "time": CloneFlags.NEWTIME,
}

# /proc/<pid>/ns/<name> for each spec namespace type.
NAMESPACE_FILES = {
    "pid": "pid",
    "network": "net",
    "mount": "mnt",
    "ipc": "ipc",
    "uts": "uts",
    "user": "user",
    "cgroup": "cgroup",
    "time": "time",
}


class MountFlags:
    """mount(2) flags (plain ints, as CloneFlags)."""

    RDONLY = 1
    NOSUID = 2
    NODEV = 4
    NOEXEC = 8
    SYNCHRONOUS = 16
    REMOUNT = 32
    MANDLOCK = 64
    DIRSYNC = 128
    NOSYMFOLLOW = 256
    NOATIME = 1024
    NODIRATIME = 2048
    BIND = 4096
    MOVE = 8192
    REC = 16384
    SILENT = 32768
    UNBINDABLE = 1 << 17
    PRIVATE = 1 << 18
    SLAVE = 1 << 19
    SHARED = 1 << 20
    RELATIME = 1 << 21
    STRICTATIME = 1 << 24
    LAZYTIME = 1 << 25


class OpKind:
    """The steps the C side knows (native.h's PYRUNC_OP_*; a unit test keeps them in sync)."""

    WAIT = 1
    READY = 2
    SETNS = 3
    UNSHARE = 4
    OPEN_ROOT = 5
    MOUNT = 6
    MKDIRS = 7
    MKFILE = 8
    MKNOD = 9
    SYMLINK = 10
    PIVOT_ROOT = 11
    MOVE_ROOT = 12
    SETHOSTNAME = 13
    SETDOMAINNAME = 14
    WRITE_FILE = 15
    RLIMIT = 16
    PRCTL = 17
    CAPBSET = 18
    SETGROUPS = 19
    SETRESGID = 20
    SETRESUID = 21
    CAPSET = 22
    UMASK = 23
    CHDIR = 24
    MASK = 25
    READONLY = 26
    REMOUNT_RO = 27
    LOOPBACK_UP = 28
    FIND_EXEC = 29
    FIFO = 30
    CLOEXEC_FROM = 31
    EXEC = 32
    SET_DUMPABLE = 33
    DUP2 = 34
    JOIN_KEYRING = 35
    SYNC = 36
    HOOK = 37
    SECCOMP = 38
    CONSOLE = 39
    OPEN_SOURCE = 40
    BIND_REMOUNT = 41
    FORK = 42
    SYSCTL = 43
    MKTARGET = 44


class Op:
    """One set-up step for the child, and the words to report it by if it fails."""

    __slots__ = ("a", "argv", "b", "c", "d", "envp", "flags", "ids", "in_root", "kind", "num", "step")

    def __init__(
        self,
        kind: int,
        step: str,
        *,
        a: str | bytes | None = None,  # bytes: binary data (SECCOMP's program), length in num
        b: str | None = None,
        c: str | None = None,
        d: str | None = None,
        num: int = 0,
        flags: int = 0,
        ids: Sequence[int] = (),
        in_root: bool = False,
        argv: Sequence[str] | None = None,
        envp: Sequence[str] | None = None,
    ) -> None:
        self.kind = kind
        self.step = step
        self.a = a
        self.b = b
        self.c = c
        self.d = d
        self.num = num
        self.flags = flags
        self.ids = tuple(ids)
        self.in_root = in_root
        self.argv = argv
        self.envp = envp

    def __repr__(self) -> str:
        return f"Op({self.kind}, {self.step!r})"


class StepFailed(Exception):
    """In vfork mode, op number ``index`` failed in the child with ``errno``; index -1 means
    the child died before reaching exec (``wait_status`` says how)."""

    def __init__(self, index: int, errno: int, wait_status: int = 0) -> None:
        super().__init__(index, errno)
        self.index = index
        self.errno = errno
        self.wait_status = wait_status


class SpawnRequest:
    """What :func:`spawn` needs: namespaces to create or join, the ops, and the program.

    With ``vfork`` the child shares our memory until it execs and :func:`spawn` returns only
    then; the ops must not wait for the parent (no WAIT, READY or FIFO). Otherwise the child is
    a copy that talks to us on ``ctl_fd``.
    """

    __slots__ = (
        "argv",
        "clone_flags",
        "ctl_fd",
        "envp",
        "join_pidns_fd",
        "join_timens_fd",
        "ops",
        "time_offsets",
        "vfork",
    )

    def __init__(
        self,
        *,
        ops: Sequence[Op],
        argv: Sequence[str],
        envp: Sequence[str],
        ctl_fd: int,
        clone_flags: int = 0,
        join_pidns_fd: int = -1,
        join_timens_fd: int = -1,
        time_offsets: str | None = None,
        vfork: bool = False,
    ) -> None:
        self.ops = list(ops)
        self.argv = list(argv)
        self.envp = list(envp)
        self.ctl_fd = ctl_fd
        self.clone_flags = clone_flags
        self.join_pidns_fd = join_pidns_fd
        self.join_timens_fd = join_timens_fd
        self.time_offsets = time_offsets
        self.vfork = vfork


def _encode(text: str | bytes, what: str) -> bytes:
    """``text`` for C; a string with a NUL byte is refused (the spec readers and the plan refuse one
    first, naming its field: this keeps any other from being cut short in silence)."""
    if isinstance(text, bytes):
        return text  # binary data (a BPF program), passed with its length
    data = os.fsencode(text)
    if b"\0" in data:
        raise ValueError(f"{what}: a string for the kernel holds a NUL byte: {text!r}")
    return data


def spawn(request: SpawnRequest) -> int:
    """Clone the child and start it on ``request.ops``; return its pid.

    The child runs the ops in C and reports on ``request.ctl_fd`` (see pyrunc._launch.child for the
    conversation), or in vfork mode has exec'd by the time this returns; an op that failed
    there raises StepFailed (the child is reaped). Raises OSError if the clone itself fails.
    """
    from pyrunc._native._lib import ffi, lib

    keep: list[object] = []

    def cstr(text: str | bytes | None, what: str) -> object:
        if text is None:
            return ffi.NULL
        buf = ffi.new("char[]", _encode(text, what))
        keep.append(buf)
        return buf

    def cstrv(items: Sequence[str], what: str) -> object:
        arr = ffi.new("char *[]", len(items) + 1)
        for i, item in enumerate(items):
            arr[i] = cstr(item, what)
        keep.append(arr)
        return arr

    ops = ffi.new("struct pyrunc_op[]", max(len(request.ops), 1))
    for i, op in enumerate(request.ops):
        c = ops[i]
        c.kind = op.kind
        c.in_root = int(op.in_root)
        c.num = op.num
        c.flags = op.flags
        c.a = cstr(op.a, op.step)
        c.b = cstr(op.b, op.step)
        c.c = cstr(op.c, op.step)
        c.d = cstr(op.d, op.step)
        if op.argv is not None:
            c.argv = cstrv(op.argv, op.step)
            c.envp = cstrv(op.envp or (), op.step)
        if op.ids:
            ids = ffi.new("unsigned long long[]", list(op.ids))
            keep.append(ids)
            c.ids = ids
            c.n_ids = len(op.ids)
    s = ffi.new("struct pyrunc_spawn *")
    s.clone_flags = request.clone_flags
    s.ctl_fd = request.ctl_fd
    s.join_pidns_fd = request.join_pidns_fd
    s.join_timens_fd = request.join_timens_fd
    s.time_offsets = cstr(request.time_offsets, "time offsets")
    s.argv = cstrv(request.argv, "the program's arguments")
    s.envp = cstrv(request.envp, "the program's environment")
    s.ops = ops
    s.n_ops = len(request.ops)
    report = ffi.new("struct pyrunc_report *")
    report.index = -1
    if request.vfork:
        s.report = report
    pid: int = lib.pyrunc_spawn(s)
    if pid < 0:
        raise OSError(-pid, os.strerror(-pid), "clone")
    if request.vfork and report.index != -2:
        _, status = os.waitpid(pid, 0)
        raise StepFailed(report.index, report.err, status)
    return pid
