"""Platforms: the host's, ``os/arch[/variant]`` specifiers, and which index entries may run here.

Modelled on containerd's ``platforms`` package: names are normalised (``x86_64`` is ``amd64``,
``aarch64`` is ``arm64``, a bare ``arm`` is ``arm/v7``), and :class:`PlatformMatcher` is
``platforms.Only``: it accepts the platform itself and the ones it can also run (``arm/v7`` runs
``v6`` and ``v5``; ``arm64`` runs ``arm/v8`` down to ``arm/v5``; ``amd64`` runs ``386``), and ranks
them in that order so the closest match wins.
"""

from __future__ import annotations

import os
import re
import sys

from pycontainerd._errors import InvalidArgumentError
from pycontainerd._remotes import Platform

__all__ = ["PlatformMatcher", "format_platform", "host_platform", "normalize", "parse_platform"]

_COMPONENT = re.compile(r"[A-Za-z0-9_.-]+")

# platform.machine() (uname -m) and other spellings -> (OCI architecture, variant)
_ARCH_ALIASES: dict[str, tuple[str, str | None]] = {
    "x86_64": ("amd64", None),
    "x86-64": ("amd64", None),
    "amd64": ("amd64", None),
    "i386": ("386", None),
    "i486": ("386", None),
    "i586": ("386", None),
    "i686": ("386", None),
    "386": ("386", None),
    "aarch64": ("arm64", None),
    "arm64": ("arm64", None),
    "armhf": ("arm", "v7"),
    "armel": ("arm", "v6"),
    "armv5l": ("arm", "v5"),
    "armv6l": ("arm", "v6"),
    "armv7l": ("arm", "v7"),
    "armv8l": ("arm", "v8"),
    "ppc64le": ("ppc64le", None),
    "s390x": ("s390x", None),
    "riscv64": ("riscv64", None),
    "mips64": ("mips64", None),
    "mips64le": ("mips64le", None),
    "loongarch64": ("loong64", None),
}


_DEFAULT_VARIANTS = {("amd64", "v1"), ("amd64", "1"), ("arm64", "8"), ("arm64", "v8"), ("arm64", "v8.0")}


def _with(p: Platform, os_: str, arch: str, variant: str | None) -> Platform:
    """``p`` with another os, architecture and variant (its os version and features kept)."""
    return Platform(os_, arch, variant, p.os_version, p.os_features)


def normalize(p: Platform) -> Platform:
    """``p`` in containerd's canonical names: ``amd64``, ``arm64`` (no ``v8``), ``arm/vN``, lower case."""
    os_ = p.os.lower()
    arch, variant = p.architecture.lower(), (p.variant or None)
    if arch in _ARCH_ALIASES:
        arch, default_variant = _ARCH_ALIASES[p.architecture.lower()]
        variant = variant or default_variant
    if variant is not None:
        variant = variant.lower()
    if (arch, variant) in _DEFAULT_VARIANTS:
        variant = None
    elif arch == "arm":
        if variant is None:
            variant = "v7"
        elif variant in ("5", "6", "7", "8"):
            variant = "v" + variant
    return _with(p, os_, arch, variant)


def host_platform() -> Platform:
    """The platform of this machine: ``linux/amd64`` on x86-64, ``linux/arm/v7`` on armv7l..."""
    machine = os.uname().machine.lower()  # not the platform module, which pyctr's path does not load
    arch, variant = _ARCH_ALIASES.get(machine, (machine, None))
    os_ = "linux" if sys.platform.startswith("linux") else sys.platform
    return normalize(Platform(os=os_, architecture=arch, variant=variant))


def parse_platform(text: str) -> Platform:
    """Parse ``os/arch[/variant]`` (``--platform``), or a bare ``os`` or ``arch`` as containerd does.

    A lone ``linux`` means linux on the host's architecture; a lone ``arm64`` means that architecture
    on linux. The result is normalised. InvalidArgumentError for anything else.
    """
    parts = text.split("/")
    if not text or len(parts) > 3 or not all(_COMPONENT.fullmatch(part) for part in parts):
        raise InvalidArgumentError(f"invalid platform {text!r}: expected os/arch[/variant]")
    if len(parts) == 1:
        word = parts[0].lower()
        if word in _ARCH_ALIASES:
            return normalize(Platform(os="linux", architecture=word))
        host = host_platform()
        return _with(host, word, host.architecture, host.variant)
    variant = parts[2] if len(parts) == 3 else None
    return normalize(Platform(os=parts[0], architecture=parts[1], variant=variant))


def format_platform(p: Platform) -> str:
    """``os/arch[/variant]``."""
    return "/".join(part for part in (p.os, p.architecture, p.variant) if part)


def _vector(p: Platform) -> list[Platform]:
    """``p`` and what it can also run, best first (containerd's ``platformVector``)."""
    vector = [p]
    if p.architecture == "amd64":
        level = _variant_number(p.variant)
        for n in range(level - 1, 0, -1) if level > 1 else ():
            vector.append(_with(p, p.os, p.architecture, None if n == 1 else f"v{n}"))
        vector.append(_with(p, p.os, "386", None))
    elif p.architecture == "arm":
        level = _variant_number(p.variant)
        vector += [_with(p, p.os, p.architecture, f"v{n}") for n in range(level - 1, 4, -1)]
    elif p.architecture == "arm64":
        vector += _vector(_with(p, p.os, "arm", "v8"))
    return vector


def _variant_number(variant: str | None) -> int:
    try:
        return int((variant or "v1").removeprefix("v").split(".")[0])
    except ValueError:
        return 0


def _same(a: Platform, b: Platform) -> bool:
    return (a.os, a.architecture, a.variant or None) == (b.os, b.architecture, b.variant or None)


class PlatformMatcher:
    """Which platforms an image may be run on here, and which is best (containerd's ``platforms.Only``)."""

    def __init__(self, target: Platform) -> None:
        self.target = normalize(target)
        self._vector = _vector(self.target)

    def __repr__(self) -> str:
        return f"PlatformMatcher({format_platform(self.target)!r})"

    def rank(self, p: Platform) -> int | None:
        """0 for the target itself, higher for less close matches, None if ``p`` cannot run here."""
        candidate = normalize(p)
        for i, wanted in enumerate(self._vector):
            if _same(candidate, wanted):
                return i
        return None

    def match(self, p: Platform) -> bool:
        return self.rank(p) is not None
