"""Docker's defaults, for the layers above that build specs the way ``docker run`` does: the
capability set a container gets and the default seccomp profile resolved for a capability set.

A container manager reads these for every container it makes, so this module loads neither
the spec models nor the seccomp compiler.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from typing import Any

__all__ = ["DOCKER_CAPABILITIES", "docker_default_seccomp"]

# Docker's default capability set (moby daemon/pkg/oci/caps/defaults.go): what a container gets
# unless it asks for more or fewer; docker_default_seccomp() resolves against it.
DOCKER_CAPABILITIES = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
)

# uname -m -> Docker's (Go's) architecture names, as used in the profile's includes/excludes.
_DOCKER_ARCH = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "i386": "x86",
    "i686": "x86",
    "x86": "x86",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv7l": "arm",
    "armv6l": "arm",
    "arm": "arm",
    "ppc64le": "ppc64le",
    "ppc64": "ppc64",
    "s390x": "s390x",
    "s390": "s390",
    "riscv64": "riscv64",
    "loongarch64": "loongarch64",
    "mips64": "mips64",
    "mips64el": "mipsel64",
}
# Docker's architecture name -> the profile's archMap key (moby's nativeToSeccomp).
_DOCKER_SECCOMP_ARCH = {
    "x86": "SCMP_ARCH_X86",
    "amd64": "SCMP_ARCH_X86_64",
    "arm": "SCMP_ARCH_ARM",
    "arm64": "SCMP_ARCH_AARCH64",
    "loongarch64": "SCMP_ARCH_LOONGARCH64",
    "mips64": "SCMP_ARCH_MIPS64",
    "mips64n32": "SCMP_ARCH_MIPS64N32",
    "mipsel64": "SCMP_ARCH_MIPSEL64",
    "mips3l64n32": "SCMP_ARCH_MIPSEL64N32",
    "mipsle": "SCMP_ARCH_MIPSEL",
    "ppc": "SCMP_ARCH_PPC",
    "ppc64": "SCMP_ARCH_PPC64",
    "ppc64le": "SCMP_ARCH_PPC64LE",
    "riscv64": "SCMP_ARCH_RISCV64",
    "s390": "SCMP_ARCH_S390",
    "s390x": "SCMP_ARCH_S390X",
}
_PROFILE = os.path.join(os.path.dirname(os.path.dirname(__file__)), "data", "seccomp-default.json")


def _kernel_version(release: str) -> tuple[int, int]:
    """``"6.1.0-18-amd64"`` -> (6, 1): only the first two numbers count, as in moby."""
    parts = release.split(".")
    try:
        return int(parts[0]), int("".join(c for c in parts[1].split("-")[0] if c.isdigit()) or "0")
    except (IndexError, ValueError):
        raise ValueError(f"cannot parse the kernel version {release!r}") from None


def docker_default_seccomp(
    capabilities: Iterable[str],
    arch: str | None = None,
    kernel: tuple[int, int] | None = None,
    *,
    profile: Mapping[str, Any] | None = None,
) -> dict[str, object]:
    """Docker's default seccomp profile (or ``profile``, one in Docker's format, as ``docker run
    --security-opt seccomp=FILE`` sends it) resolved into an OCI ``linux.seccomp`` object.

    As moby's ``setupSeccomp`` does for ``docker run``: an entry of the profile is kept when its
    ``includes`` hold and its ``excludes`` do not, judged against ``capabilities`` (the
    container's bounding set; ``"CAP_SYS_ADMIN"`` or ``"SYS_ADMIN"``), ``arch`` (Docker's name:
    ``amd64``, ``arm64``, ``x86``... or ``uname -m``'s; default the host's) and ``kernel``
    ((major, minor); default the running kernel's). ``archMap`` becomes ``architectures`` (the
    native architecture and its sub-architectures). With Docker's 14 default capabilities,
    ``mount``, ``unshare``, ``keyctl`` and the like fail with EPERM and ``clone3`` with ENOSYS.
    A malformed ``profile`` raises ValueError.
    """
    from pyrunc import _jsonio

    caps = {c.upper() if c.upper().startswith("CAP_") else "CAP_" + c.upper() for c in capabilities}
    machine = arch or os.uname().machine
    docker_arch = _DOCKER_ARCH.get(machine, machine)
    if kernel is None:
        kernel = _kernel_version(os.uname().release)
    if profile is None:
        with open(_PROFILE, encoding="utf-8") as f:
            loaded = _jsonio.loads(f.read())
        assert isinstance(loaded, dict)
        profile = loaded
    elif not hasattr(profile, "get") or not isinstance(profile.get("defaultAction"), str):
        raise ValueError("the profile is not a JSON object with a defaultAction")
    if profile.get("architectures") and profile.get("archMap"):
        raise ValueError("the profile has both architectures and archMap")
    out: dict[str, object] = {
        k: v for k, v in profile.items() if k not in ("archMap", "syscalls") and v is not None
    }
    native = _DOCKER_SECCOMP_ARCH.get(docker_arch)
    for entry in profile.get("archMap") or []:
        if native is not None and entry["architecture"] == native:
            out["architectures"] = [native, *(entry.get("subArchitectures") or [])]
            break

    def newer(version: str) -> bool:
        return kernel >= _kernel_version(version)

    syscalls: list[dict[str, object]] = []
    for entry in profile.get("syscalls") or []:
        excludes = entry.get("excludes") or {}
        includes = entry.get("includes") or {}
        if (
            docker_arch in (excludes.get("arches") or ())
            or any(c in caps for c in excludes.get("caps") or ())
            or (excludes.get("minKernel") and newer(excludes["minKernel"]))
            or (includes.get("arches") and docker_arch not in includes["arches"])
            or any(c not in caps for c in includes.get("caps") or ())
            or (includes.get("minKernel") and not newer(includes["minKernel"]))
        ):
            continue
        if not hasattr(entry, "get") or not isinstance(entry.get("action"), str):
            raise ValueError(f"a syscalls entry without an action: {entry!r}")
        if entry.get("name") and entry.get("names"):
            raise ValueError("a syscalls entry has both name and names")
        names = [entry["name"]] if entry.get("name") else list(entry.get("names") or ())
        syscall: dict[str, object] = {"names": names, "action": entry["action"]}
        for key in ("errnoRet", "args"):
            if entry.get(key) is not None:
                syscall[key] = entry[key]
        syscalls.append(syscall)
    out["syscalls"] = syscalls
    return out
