"""``linux.seccomp``: validate it, build the filter with libseccomp, and export it as BPF.

Everything here runs in the parent (pyrunc create/run/exec), and only when a spec has a
``linux.seccomp``: the plan (:mod:`.process`) imports this module lazily. The container's
child never calls libseccomp (it may share our memory and must not allocate): it receives the
finished BPF program in one ``SECCOMP`` op and hands it to seccomp(2) (see native.c).

What the filter does follows runc 1.1 (libcontainer/seccomp/seccomp_linux.go):

- ``SCMP_ACT_KILL`` is ``KILL_THREAD``; ``ERRNO`` and ``TRACE`` return ``errnoRet`` (EPERM when
  absent); ``errnoRet`` on any other action is ignored; ``SCMP_ACT_NOTIFY`` is refused (pyrunc has
  no seccomp agent support: ``listenerPath``).
- A rule whose action equals the default action is skipped (libseccomp refuses it).
- Syscall names libseccomp does not know are skipped (the profile may be newer than the host).
- The conditions of one rule are ANDed; rules naming the same syscall are alternatives. A rule
  with two conditions on the same argument is split into one rule per condition (libseccomp
  cannot AND two comparisons of one argument; runc does the same).
- More than 32 syscall names turn on libseccomp's binary-tree optimization.

- Unless the default action lets syscalls through (ALLOW, LOG, TRACE), a stub in front of the
  program makes syscalls numbered above the largest one the profile names (per architecture
  listed in ``architectures``) fail with ENOSYS rather than the default action, as runc's
  "patchbpf" does: a syscall newer than the profile (or than libseccomp) then looks absent, and
  libcs fall back to older ones instead of failing with EPERM.

Compiling is the expensive part of a create with Docker's default profile (bench_pyrunc.py shows
it), and a host compiles the same few profiles for every container: as crun does, create, run and
exec keep the compiled programs on disk, per state root (``<root>/@seccomp``: ``@`` cannot be in
a container id), keyed by the profile, the libseccomp, the kernel and pyrunc (see
:func:`_cache_key`). A hit skips libseccomp only; the profile is validated every time.

Docker's default profile, resolved for a capability set, is :mod:`pyrunc._spec.docker`'s.
"""

from __future__ import annotations

import os

from pyrunc._errors import SpecError, UnsupportedFieldError
from pyrunc._model import Model
from pyrunc._spec.readers import (
    U32,
    U64,
    as_object,
    path_of,
    read_enum_list,
    read_int,
    read_list,
    read_str,
    read_str_list,
    require_enum,
    require_int,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Final

__all__ = [
    "ACTIONS",
    "ARCHES",
    "FLAGS",
    "OPERATORS",
    "SeccompFilter",
    "SeccompProfile",
    "build_filter",
    "parse_seccomp",
    "sha256_hex",
]

# Actions (pyrunc_seccomp.h: libseccomp's SCMP_ACT_*, the kernel's SECCOMP_RET_*); ERRNO and
# TRACE take a 16-bit datum in the low bits.
_ACT_KILL_PROCESS = 0x80000000
_ACT_KILL_THREAD = 0x00000000
_ACT_TRAP = 0x00030000
_ACT_ERRNO = 0x00050000
_ACT_TRACE = 0x7FF00000
_ACT_LOG = 0x7FFC0000
_ACT_ALLOW = 0x7FFF0000
ACTIONS = {
    "SCMP_ACT_ALLOW": _ACT_ALLOW,
    "SCMP_ACT_ERRNO": _ACT_ERRNO,
    "SCMP_ACT_KILL": _ACT_KILL_THREAD,
    "SCMP_ACT_KILL_PROCESS": _ACT_KILL_PROCESS,
    "SCMP_ACT_KILL_THREAD": _ACT_KILL_THREAD,
    "SCMP_ACT_LOG": _ACT_LOG,
    "SCMP_ACT_TRACE": _ACT_TRACE,
    "SCMP_ACT_TRAP": _ACT_TRAP,
}
_WITH_ERRNO = ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE")
_EPERM = 1
# Comparison operators (libseccomp's enum scmp_compare).
OPERATORS = {
    "SCMP_CMP_NE": 1,
    "SCMP_CMP_LT": 2,
    "SCMP_CMP_LE": 3,
    "SCMP_CMP_EQ": 4,
    "SCMP_CMP_GE": 5,
    "SCMP_CMP_GT": 6,
    "SCMP_CMP_MASKED_EQ": 7,
}
# OCI architecture -> libseccomp's name for it.
ARCHES = {
    "SCMP_ARCH_X86": "x86",
    "SCMP_ARCH_X86_64": "x86_64",
    "SCMP_ARCH_X32": "x32",
    "SCMP_ARCH_ARM": "arm",
    "SCMP_ARCH_AARCH64": "aarch64",
    "SCMP_ARCH_LOONGARCH64": "loongarch64",
    "SCMP_ARCH_M68K": "m68k",
    "SCMP_ARCH_MIPS": "mips",
    "SCMP_ARCH_MIPS64": "mips64",
    "SCMP_ARCH_MIPS64N32": "mips64n32",
    "SCMP_ARCH_MIPSEL": "mipsel",
    "SCMP_ARCH_MIPSEL64": "mipsel64",
    "SCMP_ARCH_MIPSEL64N32": "mipsel64n32",
    "SCMP_ARCH_PPC": "ppc",
    "SCMP_ARCH_PPC64": "ppc64",
    "SCMP_ARCH_PPC64LE": "ppc64le",
    "SCMP_ARCH_S390": "s390",
    "SCMP_ARCH_S390X": "s390x",
    "SCMP_ARCH_SH": "sh",
    "SCMP_ARCH_SHEB": "sheb",
    "SCMP_ARCH_PARISC": "parisc",
    "SCMP_ARCH_PARISC64": "parisc64",
    "SCMP_ARCH_RISCV64": "riscv64",
}
# seccomp(2) filter flags pyrunc passes on (SECCOMP_FILTER_FLAG_*).
FLAGS = {
    "SECCOMP_FILTER_FLAG_TSYNC": 1,
    "SECCOMP_FILTER_FLAG_LOG": 2,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 4,
}
_ALL_FLAGS = frozenset({*FLAGS, "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"})
_MAX_ARGS = 6  # a syscall has at most six arguments: index 0 to 5
_MAX_PROGRAM = 4096 * 8  # BPF_MAXINSNS instructions of 8 bytes: the most the kernel loads
_OPTIMIZE_ABOVE = 32  # syscall names; runc's threshold for libseccomp's binary tree


class SeccompRule(Model):
    """One entry of ``syscalls``, validated: ``conditions`` are (index, operator, value, valueTwo)."""

    __slots__ = ("action", "conditions", "names", "where")

    def __init__(
        self, names: list[str], action: int, conditions: list[tuple[int, int, int, int]], where: str
    ):
        self.names: Final = names
        self.action: Final = action
        self.conditions: Final = conditions
        self.where: Final = where


class SeccompProfile(Model):
    """A validated ``linux.seccomp``: actions as libseccomp values, arches in libseccomp's names."""

    __slots__ = ("arches", "default_action", "flags", "rules", "where")

    def __init__(
        self, default_action: int, arches: list[str], flags: int, rules: list[SeccompRule], where: str
    ) -> None:
        self.default_action: Final = default_action
        self.arches: Final = arches
        self.flags: Final = flags
        self.rules: Final = rules
        self.where: Final = where


class SeccompFilter(Model):
    """The compiled filter: the BPF program (``struct sock_filter[]``, native endianness) and the
    seccomp(2) flags to load it with."""

    __slots__ = ("flags", "program")

    def __init__(self, program: bytes, flags: int) -> None:
        self.program: Final = program
        self.flags: Final = flags

    def __len__(self) -> int:
        """The number of BPF instructions."""
        return len(self.program) // 8


def _action(o: dict[str, object], key: str, errno_key: str, where: str) -> int:
    name = require_enum(o, key, where, frozenset({*ACTIONS, "SCMP_ACT_NOTIFY"}), "seccomp action")
    if name == "SCMP_ACT_NOTIFY":
        raise UnsupportedFieldError(
            path_of(where, key), "SCMP_ACT_NOTIFY is not supported by pyrunc (no seccomp agent, listenerPath)"
        )
    errno = read_int(o, errno_key, where, U32)
    if name not in _WITH_ERRNO:
        return ACTIONS[name]  # runc ignores errnoRet here too
    if errno is None:
        errno = _EPERM
    elif errno > 0xFFFF:
        raise SpecError(path_of(where, errno_key), f"{errno} does not fit in seccomp's 16-bit return value")
    return ACTIONS[name] | errno


def parse_seccomp(raw: object, where: str = "linux.seccomp") -> SeccompProfile:
    """Validate a ``linux.seccomp`` object; errors name the field (``linux.seccomp.syscalls[3].action``)."""
    o = as_object(raw, where)
    for key in ("listenerPath", "listenerMetadata"):
        if read_str(o, key, where):
            raise UnsupportedFieldError(path_of(where, key), "seccomp agents are not supported by pyrunc")
    default = _action(o, "defaultAction", "defaultErrnoRet", where)
    arches: list[str] = []
    for name in read_enum_list(o, "architectures", where, frozenset(ARCHES), "seccomp architecture"):
        if ARCHES[name] not in arches:
            arches.append(ARCHES[name])
    flags = 0
    for i, name in enumerate(read_enum_list(o, "flags", where, _ALL_FLAGS, "seccomp flag")):
        if name not in FLAGS:
            raise UnsupportedFieldError(f"{where}.flags[{i}]", f"{name} is only used with seccomp agents")
        flags |= FLAGS[name]
    rules: list[SeccompRule] = []
    for i, item in enumerate(read_list(o, "syscalls", where)):
        at = f"{where}.syscalls[{i}]"
        syscall = as_object(item, at)
        names = read_str_list(syscall, "names", at)
        if not names:
            raise SpecError(path_of(at, "names"), "required (at least one name)")
        for j, name in enumerate(names):
            if not name:
                raise SpecError(f"{at}.names[{j}]", "must not be empty")
        action = _action(syscall, "action", "errnoRet", at)
        conditions: list[tuple[int, int, int, int]] = []
        for j, a in enumerate(read_list(syscall, "args", at)):
            arg_at = f"{at}.args[{j}]"
            arg = as_object(a, arg_at)
            index = require_int(arg, "index", arg_at, U32)
            if index >= _MAX_ARGS:
                raise SpecError(
                    path_of(arg_at, "index"), f"{index} is not an argument index (0 to {_MAX_ARGS - 1})"
                )
            value = require_int(arg, "value", arg_at, U64)
            value_two = read_int(arg, "valueTwo", arg_at, U64) or 0
            op = require_enum(arg, "op", arg_at, frozenset(OPERATORS), "seccomp operator")
            conditions.append((index, OPERATORS[op], value, value_two))
        rules.append(SeccompRule(names, action, conditions, at))
    return SeccompProfile(default, arches, flags, rules, where)


def build_filter(raw: object, where: str = "linux.seccomp", *, cache: str | None = None) -> SeccompFilter:
    """Validate ``raw`` (a ``linux.seccomp`` object) and compile it with libseccomp.

    ``cache`` is a directory of compiled programs (``<state root>/@seccomp`` for create, run and
    exec; see :func:`_cache_key`): on a hit the profile is still validated, and the kernel's
    support for its flags checked, but libseccomp is not called. None: compile, cache nothing.
    """
    profile = parse_seccomp(raw, where)
    from pyrunc._native import libseccomp

    for name, bit in FLAGS.items():
        if profile.flags & bit and not libseccomp.flag_supported(bit):
            raise UnsupportedFieldError(f"{where}.flags", f"the kernel does not support {name}")
    path = _cache_path(raw, cache) if cache is not None else None
    program = _cache_read(path) if path is not None else None
    if program is None:
        compiled = _compile(profile, where)
        program = _enosys_stub(profile) + compiled if compiled else b""
        if not 0 < len(program) <= _MAX_PROGRAM:
            raise SpecError(where, "the filter is longer than the kernel's limit of 4096 BPF instructions")
        if path is not None:
            _cache_write(path, program)
    return SeccompFilter(program, profile.flags)


def _compile(profile: SeccompProfile, where: str) -> bytes:
    """libseccomp's program for ``profile``; b"" when it is longer than :data:`_MAX_PROGRAM`."""
    from pyrunc._native import libseccomp

    try:
        compiled = libseccomp.Filter(profile.default_action)
    except ValueError:
        raise SpecError(f"{where}.defaultAction", "libseccomp refused the default action") from None
    with compiled:
        for arch in profile.arches:
            if not compiled.add_arch(arch):
                oci = next(k for k, v in ARCHES.items() if v == arch)
                raise UnsupportedFieldError(
                    f"{where}.architectures", f"{oci} is not known to this libseccomp"
                )
        if sum(len(rule.names) for rule in profile.rules) > _OPTIMIZE_ABOVE:
            compiled.optimize()
        for rule in profile.rules:
            if rule.action == profile.default_action:
                continue  # libseccomp refuses it, and it changes nothing
            groups = [rule.conditions]
            indexes = [c[0] for c in rule.conditions]
            if len(set(indexes)) != len(indexes):
                groups = [[c] for c in rule.conditions]  # one rule per condition (runc does so)
            for name in rule.names:
                number = libseccomp.syscall_number(name)
                if number is None:
                    continue  # unknown to libseccomp: skipped, as runc
                for group in groups:
                    try:
                        compiled.add_rule(rule.action, number, group)
                    except OSError as exc:
                        raise SpecError(
                            rule.where, f"libseccomp refused the rule for {name}: {exc.strerror}"
                        ) from None
        return compiled.export(_MAX_PROGRAM) or b""


# -- the cache of compiled programs ----------------------------------------------------------------
#
# Compiling Docker's default profile (~1100 rules: adding them, then exporting the program) is most
# of what pyrunc create spends in itself, and every container of a host compiles the same few
# profiles again. crun keeps compiled programs on disk too. Here: one file per profile,
# <cache>/<key>.bpf, holding exactly the program build_filter returns (the ENOSYS stub and
# libseccomp's program). A hit validates the profile, makes the key and reads the file; a miss
# compiles and writes (fsync included).
#
# The directory belongs to the state root (mode 0700, like the root itself): whoever can write it
# can choose the filter of the next container, so a cache directory that is not ours alone, or a
# file we do not own, is not used. Everything that goes wrong with the cache (a read-only root,
# ENOSPC, a corrupt file) costs a compilation, never a container.

_CACHE_ENTRIES = 64  # programs kept per cache directory; the oldest (by mtime) go first
_CACHE_FORMAT = "pyrunc-seccomp-bpf-1"  # changes when what build_filter compiles changes
_STALE_TEMP = 3600  # seconds after which a temporary file is a crashed writer's


def sha256_hex(data: bytes) -> str:
    """CPython's own SHA-256 (``_sha256``; ``_sha2`` from 3.12): ``import hashlib`` loads OpenSSL,
    which every create with a seccomp profile would pay for (see ARCHITECTURE.md, start-up).
    :func:`pyrunc.preload` calls this once."""
    import sys

    if TYPE_CHECKING:
        from hashlib import sha256
    else:
        try:
            if sys.version_info >= (3, 12):
                from _sha2 import sha256
            else:
                from _sha256 import sha256
        except ImportError:  # built without CPython's own hashes
            from hashlib import sha256
    return sha256(data).hexdigest()


def _cache_key(raw: object) -> str | None:
    """The sha256 (hex) of what decides the program: the profile as canonical JSON (sorted keys,
    no spaces: ``json.dumps(raw, sort_keys=True, separators=(",", ":"))``), the libseccomp run
    at run time, the kernel release and machine, and pyrunc's version (and cache format). None
    when ``raw`` has no JSON form (NaN, non-JSON types): such a profile is not cached.

    The JSON comes from :func:`pyrunc._jsonio.canonical` (see there why not ``json``)."""
    import posix

    from pyrunc import __version__
    from pyrunc._jsonio import canonical
    from pyrunc._native import libseccomp

    try:
        text = canonical(raw)
    except (TypeError, ValueError):
        return None
    uname = posix.uname()
    parts = (_CACHE_FORMAT, text, libseccomp.version(), uname.release, uname.machine, __version__)
    return sha256_hex("\0".join(parts).encode())


def _cache_path(raw: object, cache: str) -> str | None:
    """``<cache>/<key>.bpf``, making ``cache`` (mode 0700) when missing; None when the profile
    has no key or the directory cannot be trusted: not a directory of ours, or writable by
    group or others (the next container's filter would be theirs to choose)."""
    key = _cache_key(raw)
    if key is None:
        return None
    try:
        try:
            st = os.lstat(cache)
        except FileNotFoundError:
            os.mkdir(cache, 0o700)
            st = os.lstat(cache)
    except OSError:
        return None  # read-only root, ENOSPC, a missing parent: compile, cache nothing
    if (st.st_mode & 0o170000) != 0o040000 or st.st_uid != os.geteuid() or st.st_mode & 0o022:
        return None
    return os.path.join(cache, key + ".bpf")


def _cache_read(path: str) -> bytes | None:
    """The program cached at ``path``; None when there is none, or what is there is not one
    (empty, not whole 8-byte instructions, longer than the kernel loads, not a regular file of
    ours)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if (st.st_mode & 0o170000) != 0o100000 or st.st_uid != os.geteuid():
            return None
        data = b""
        while len(data) <= _MAX_PROGRAM:
            chunk = os.read(fd, _MAX_PROGRAM + 1 - len(data))
            if not chunk:
                break
            data += chunk
    except OSError:
        return None
    finally:
        os.close(fd)
    if not 0 < len(data) <= _MAX_PROGRAM or len(data) % 8:
        return None
    return data


def _cache_write(path: str, program: bytes) -> None:
    """Store ``program`` at ``path`` atomically (a temporary file in the same directory, fsync,
    rename: readers see the whole program or none), mode 0600; then keep the directory to
    :data:`_CACHE_ENTRIES` programs. Errors are swallowed: the caller has its program."""
    directory, name = os.path.split(path)
    temp = os.path.join(directory, f".{name}.{os.getpid()}.{os.urandom(8).hex()}.tmp")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        try:
            view = memoryview(program)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, path)
    except OSError:
        try:
            os.unlink(temp)
        except OSError:
            pass
        return
    _cache_trim(directory, path)


def _cache_trim(directory: str, keep: str) -> None:
    """Remove the oldest programs (by mtime) beyond :data:`_CACHE_ENTRIES`, never ``keep``, and
    temporary files a writer left more than :data:`_STALE_TEMP` seconds ago."""
    import time

    from pyrunc._mounts import is_mount_point

    programs: list[tuple[int, str]] = []
    stale = time.time() - _STALE_TEMP
    try:
        if is_mount_point(directory):
            return  # nothing is removed through a mount: a cache with one on it is not trimmed
        with os.scandir(directory) as entries:
            for entry in entries:
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue  # removed meanwhile (another create trimming)
                if entry.name.endswith(".bpf") and entry.path != keep:
                    programs.append((st.st_mtime_ns, entry.path))
                elif entry.name.startswith(".") and entry.name.endswith(".tmp") and st.st_mtime < stale:
                    programs.append((-1, entry.path))  # first to go, and not counted below
    except OSError:
        return
    programs.sort()
    temps = sum(1 for mtime, _ in programs if mtime < 0)
    excess = len(programs) - temps + 1 - _CACHE_ENTRIES  # + 1: keep
    for _, old in programs[: temps + max(0, excess)]:
        try:
            os.unlink(old)
        except OSError:
            pass


# Classic BPF, as struct sock_filter {u16 code; u8 jt; u8 jf; u32 k} in native byte order.
_LD_ABS = 0x20  # BPF_LD | BPF_W | BPF_ABS: A = seccomp_data[k] (0: syscall number, 4: arch)
_JA = 0x05  # BPF_JMP | BPF_JA
_JEQ = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
_JGT = 0x25  # BPF_JMP | BPF_JGT | BPF_K
_JSET = 0x45  # BPF_JMP | BPF_JSET | BPF_K
_RET = 0x06  # BPF_RET | BPF_K
_RET_ENOSYS = (_RET, 0, 0, _ACT_ERRNO | 38)
_AUDIT_ARCH_X86_64 = 0xC000003E
_AUDIT_ARCH_S390 = (0x16, 0x80000016)
_X32_SYSCALL_BIT = 0x40000000
_PERMISSIVE = (_ACT_ALLOW, _ACT_LOG, _ACT_TRACE)
_Insn = tuple[int, int, int, int]  # or ("ja", label): a jump resolved once the layout is known


def _enosys_stub(profile: SeccompProfile) -> bytes:
    """The instructions runc's patchbpf puts in front of the filter: per native architecture of
    ``architectures``, a syscall number above the largest the profile names returns ENOSYS;
    everything else jumps to libseccomp's program (which checks the architecture again)."""
    if profile.default_action & 0xFFFF0000 in _PERMISSIVE or not profile.arches:
        return b""
    import struct

    from pyrunc._native import libseccomp

    names = {name for rule in profile.rules for name in rule.names}
    largest: dict[int, dict[str, int]] = {}  # AUDIT_ARCH -> libseccomp arch -> syscall number
    for arch in profile.arches:
        known = (libseccomp.syscall_number(name, arch) for name in names)
        number = max((n for n in known if n is not None), default=-1)
        if number > 0:
            native = _AUDIT_ARCH_X86_64 if arch == "x32" else libseccomp.arch_token(arch)
            largest.setdefault(native, {})[arch] = number
    if not largest:
        return b""

    def limit(number: int | None) -> list[_Insn | tuple[str, int]]:
        return [(_JGT, 0, 1, number), _RET_ENOSYS] if number else []

    # Label -1 is the start of libseccomp's program, label n >= 0 the start of section n.
    sections: list[list[_Insn | tuple[str, int]]] = []
    for native, numbers in largest.items():
        body: list[_Insn | tuple[str, int]] = [(_LD_ABS, 0, 0, 0)]  # the syscall number
        if native == _AUDIT_ARCH_X86_64:  # x32 shares it: its syscall numbers have bit 30 set
            x86_64, x32 = limit(numbers.get("x86_64")), limit(numbers.get("x32"))
            body += [(_JSET, len(x86_64) + 1, 0, _X32_SYSCALL_BIT), *x86_64, ("ja", -1), *x32]
        elif native in _AUDIT_ARCH_S390:  # syscalls the kernel does not know arrive as 0 (setup)
            body += [(_JEQ, 0, 1, 0), _RET_ENOSYS, *limit(max(numbers.values()))]
        else:
            body += limit(max(numbers.values()))
        sections.append([*body, ("ja", -1)])
    code: list[_Insn | tuple[str, int]] = [(_LD_ABS, 0, 0, 4)]  # the architecture
    for i, native in enumerate(largest):
        code += [(_JEQ, 0, 1, native), ("ja", i)]
    code.append(("ja", -1))  # an architecture not listed: libseccomp's bad-arch action
    starts = []
    for body in sections:
        starts.append(len(code))
        code += body
    out = bytearray()
    for at, insn in enumerate(code):
        if insn[0] == "ja":
            target = len(code) if insn[1] == -1 else starts[insn[1]]
            out += struct.pack("=HBBI", _JA, 0, 0, target - at - 1)
        else:
            out += struct.pack("=HBBI", *insn)
    return bytes(out)


def supported_arches() -> list[str]:
    """The OCI architectures the installed libseccomp knows."""
    from pyrunc._native import libseccomp

    return [oci for oci, name in ARCHES.items() if libseccomp.arch_token(name)]


def supported_flags() -> list[str]:
    """The flags of :data:`FLAGS` the running kernel accepts."""
    from pyrunc._native import libseccomp

    return [name for name, bit in FLAGS.items() if libseccomp.flag_supported(bit)]
