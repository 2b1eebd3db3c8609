"""The spawn call (native.c beside this module) with its typed flags and ops: with
:mod:`.libseccomp`, the only module that touches the cffi library.

Everything the container's init does between clone and exec is a list of :class:`Op` values
(built by :mod:`pyrunc._plan.compile`) that :func:`spawn` hands to C in one call.
"""

from __future__ import annotations

import os
import sys

from pyrunc._model import Model

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Final

    from cffi import FFI

    #: What an argument of an op may be: a string (or bytes: binary data such as a BPF program) or
    #: None for a ``char *``, strings for a ``char **``, integers for an array with its ``n_``
    #: count, an integer (a bool too) for a number.
    Argument = str | bytes | int | Sequence[str] | Sequence[int] | None

__all__ = [
    "ARGUMENTS",
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


_FS_ENCODING = sys.getfilesystemencoding()
_FS_ERRORS = sys.getfilesystemencodeerrors()

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


#: Op kind -> the member of ``struct pyrunc_op``'s union that holds its arguments (native.h; a unit
#: test keeps them in sync). A kind without one takes no arguments.
ARGUMENTS = {
    OpKind.SETNS: "setns",
    OpKind.UNSHARE: "unshare",
    OpKind.OPEN_ROOT: "path",
    OpKind.MOUNT: "mount",
    OpKind.MKDIRS: "mkdirs",
    OpKind.MKFILE: "path",
    OpKind.MKNOD: "mknod",
    OpKind.SYMLINK: "symlink",
    OpKind.PIVOT_ROOT: "path",
    OpKind.MOVE_ROOT: "path",
    OpKind.SETHOSTNAME: "name",
    OpKind.SETDOMAINNAME: "name",
    OpKind.WRITE_FILE: "write",
    OpKind.RLIMIT: "rlimit",
    OpKind.PRCTL: "prctl",
    OpKind.CAPBSET: "capbset",
    OpKind.SETGROUPS: "setgroups",
    OpKind.SETRESGID: "setresid",
    OpKind.SETRESUID: "setresid",
    OpKind.CAPSET: "capset",
    OpKind.UMASK: "umask",
    OpKind.CHDIR: "path",
    OpKind.MASK: "path",
    OpKind.READONLY: "path",
    OpKind.REMOUNT_RO: "path",
    OpKind.FIFO: "fifo",
    OpKind.CLOEXEC_FROM: "cloexec_from",
    OpKind.SET_DUMPABLE: "dumpable",
    OpKind.DUP2: "dup2",
    OpKind.JOIN_KEYRING: "name",
    OpKind.HOOK: "hook",
    OpKind.SECCOMP: "seccomp",
    OpKind.CONSOLE: "console",
    OpKind.OPEN_SOURCE: "open_source",
    OpKind.BIND_REMOUNT: "bind_remount",
    OpKind.SYSCTL: "write",
    OpKind.MKTARGET: "mktarget",
}


class Op(Model):
    """One set-up step for the child: its kind, the words to report it by if it fails, and its
    arguments, named as the fields of its member of ``struct pyrunc_op`` (see :data:`ARGUMENTS`;
    a field left out is zero, or NULL)."""

    __slots__ = ("args", "kind", "step")

    def __init__(self, kind: int, step: str, **args: Argument) -> None:
        self.kind: Final = kind
        self.step: Final = step
        self.args: Final = args

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


class SpawnRequest(Model):
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
        self.ops: Final = list(ops)
        self.argv: Final = list(argv)
        self.envp: Final = list(envp)
        self.ctl_fd: Final = ctl_fd
        self.clone_flags: Final = clone_flags
        self.join_pidns_fd: Final = join_pidns_fd
        self.join_timens_fd: Final = join_timens_fd
        self.time_offsets: Final = time_offsets
        self.vfork: Final = vfork


def _encode(text: str | bytes, what: str) -> bytes:
    """``text`` for C; a string with a NUL byte is refused (the spec readers and the plan refuse one
    first, naming its field: this keeps any other from being cut short in silence)."""
    if isinstance(text, bytes):
        return text  # binary data (a BPF program), passed with its length
    data = text.encode(_FS_ENCODING, _FS_ERRORS)  # os.fsencode, without its Python-level checks
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
    s = ffi.new("struct pyrunc_spawn *")
    s.ops = c_ops(request.ops, keep)
    s.n_ops = len(request.ops)
    s.clone_flags = request.clone_flags
    s.ctl_fd = request.ctl_fd
    s.join_pidns_fd = request.join_pidns_fd
    s.join_timens_fd = request.join_timens_fd
    s.time_offsets = _c_string(ffi, request.time_offsets, "time offsets", keep)
    s.argv = _c_strings(ffi, request.argv, "the program's arguments", keep)
    s.envp = _c_strings(ffi, request.envp, "the program's environment", keep)
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


def c_ops(ops: Sequence[Op], keep: list[object]) -> object:
    """``ops`` as a C array of ``struct pyrunc_op``, each op's arguments in its member of the union;
    what the array points to is appended to ``keep``, which must outlive it. ValueError (naming the
    step) for a string with a NUL byte, AttributeError or TypeError for an argument the op's member
    does not hold."""
    from pyrunc._native._lib import ffi

    array = ffi.new("struct pyrunc_op[]", max(len(ops), 1))
    keep.append(array)
    for c, op in zip(array, ops, strict=False):
        c.kind = op.kind
        if not op.args:
            continue
        member = getattr(c, ARGUMENTS[op.kind])
        for name, value in op.args.items():
            if value is None or value == 0:
                continue  # ffi.new zeroes the array: NULL, 0
            if isinstance(value, str | bytes):
                setattr(member, name, _c_string(ffi, value, op.step, keep))
            elif isinstance(value, int):
                setattr(member, name, value)
            elif ffi.typeof(getattr(member, name)).item.kind == "pointer":  # char *const *
                setattr(member, name, _c_strings(ffi, [str(item) for item in value], op.step, keep))
            else:
                numbers = ffi.new(
                    f"{ffi.typeof(getattr(member, name)).item.cname}[]", [int(v) for v in value]
                )
                keep.append(numbers)
                setattr(member, name, numbers)
                setattr(member, f"n_{name}", len(value))
    return array


def _c_string(ffi: FFI, text: str | bytes | None, what: str, keep: list[object]) -> object:
    if text is None:
        return ffi.NULL
    buf = ffi.new("char[]", _encode(text, what))
    keep.append(buf)
    return buf


def _c_strings(ffi: FFI, items: Sequence[str], what: str, keep: list[object]) -> object:
    array = ffi.new("char *[]", len(items) + 1)
    for i, item in enumerate(items):
        array[i] = _c_string(ffi, item, what, keep)
    keep.append(array)
    return array
