"""libseccomp for the parent (seccomp.c beside this module): a filter built rule by rule and exported
as a BPF program, and the names of syscalls and architectures. With :mod:`.kernel`, the only module
that touches the cffi library. The child never calls it: it gets the finished program in a
``SECCOMP`` op (see native.h).
"""

from __future__ import annotations

import os

from pyrunc._native._lib import ffi, lib

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import TracebackType

__all__ = ["Filter", "arch_token", "flag_supported", "syscall_number", "version"]

_E2BIG = 7
_MAX_ARGS = 6  # a syscall's arguments, each compared at most once per rule


class Filter:
    """A filter being built (``seccomp_init`` to ``seccomp_export``); close it, or use ``with``."""

    __slots__ = ("_ctx",)

    def __init__(self, default_action: int) -> None:
        """ValueError when libseccomp refuses ``default_action``."""
        self._ctx = lib.pyrunc_seccomp_new(default_action)
        if self._ctx == ffi.NULL:
            raise ValueError(f"libseccomp refused the default action {default_action:#x}")

    def add_arch(self, arch: str) -> bool:
        """Add libseccomp's architecture ``arch`` (``"x86_64"``...); False when it does not know it."""
        return bool(lib.pyrunc_seccomp_arch_add(self._ctx, arch.encode()) >= 0)

    def optimize(self) -> None:
        """Ask for the binary-tree layout (best effort, as runc: an older libseccomp lacks it)."""
        lib.pyrunc_seccomp_optimize(self._ctx, 2)

    def add_rule(self, action: int, syscall: int, conditions: Sequence[tuple[int, int, int, int]]) -> None:
        """``action`` for ``syscall`` when every condition (argument index, operator, value, second
        value) holds. OSError with libseccomp's errno when it refuses the rule."""
        if len(conditions) > _MAX_ARGS:
            raise ValueError(f"{len(conditions)} conditions, more than a syscall's {_MAX_ARGS} arguments")
        cmps = ffi.new("struct pyrunc_seccomp_cmp[]", max(len(conditions), 1))
        for cmp, (index, op, value, value_two) in zip(cmps, conditions, strict=False):
            cmp.arg, cmp.op, cmp.datum_a, cmp.datum_b = index, op, value, value_two
        rc = lib.pyrunc_seccomp_rule_add(self._ctx, action, syscall, len(conditions), cmps)
        if rc < 0:
            raise OSError(-rc, os.strerror(-rc))

    def export(self, limit: int) -> bytes | None:
        """The BPF program, None when it is longer than ``limit`` bytes."""
        buf = ffi.new("char[]", limit)
        size: int = lib.pyrunc_seccomp_export(self._ctx, buf, limit)
        if size == -_E2BIG:
            return None
        if size < 0:
            raise OSError(-size, f"exporting the seccomp filter: {os.strerror(-size)}")
        return bytes(ffi.buffer(buf, size))

    def close(self) -> None:
        if self._ctx != ffi.NULL:
            lib.pyrunc_seccomp_release(self._ctx)
            self._ctx = ffi.NULL

    def __enter__(self) -> Filter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def syscall_number(name: str, arch: str | None = None) -> int | None:
    """The number of syscall ``name`` on the native architecture or on ``arch``; None when libseccomp
    does not know it."""
    if arch is None:
        number: int = lib.pyrunc_seccomp_syscall(name.encode())
    else:
        number = lib.pyrunc_seccomp_syscall_arch(arch.encode(), name.encode())
    return None if number == lib.PYRUNC_SCMP_UNKNOWN_SYSCALL else number


def arch_token(arch: str) -> int:
    """The AUDIT_ARCH_* value of libseccomp's architecture ``arch``; 0 when it does not know it."""
    return int(lib.pyrunc_seccomp_arch_token(arch.encode()))


def flag_supported(flag: int) -> bool:
    """Whether the running kernel takes the SECCOMP_FILTER_FLAG_* ``flag``."""
    return bool(lib.pyrunc_seccomp_flag_supported(flag))


def version() -> str:
    """The version of the libseccomp the process runs with."""
    return str(ffi.string(lib.pyrunc_seccomp_version()).decode())
