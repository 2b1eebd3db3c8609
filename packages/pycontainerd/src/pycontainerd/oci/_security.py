"""Opts for the container's security: capabilities, seccomp, ``--privileged``.

Capability names are Docker's (moby ``caps.NormalizeLegacyCapabilities``): any case, with or
without ``CAP_``, and ``ALL``; they are checked against pyrunc's capability table, which is in
kernel order (``CAP_CHOWN`` is 0).
"""

from __future__ import annotations

import functools
import os
import stat

from pycontainerd._errors import InvalidArgumentError
from pycontainerd.oci._spec import linux_of, process_of

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from typing import Any

    from pycontainerd.oci._spec import SpecContext, SpecOpt

__all__ = ["all_capabilities", "with_capabilities", "with_docker_seccomp", "with_privileged", "with_seccomp"]

# What runc's HostDevices skips under /dev: other filesystems' trees and the container's own nodes.
_SKIP_DEV_DIRS = frozenset({"pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"})
# The runtime creates these itself in every container (the OCI default devices).
_RUNTIME_DEVICES = frozenset(
    {
        "/dev/console",
        "/dev/null",
        "/dev/zero",
        "/dev/full",
        "/dev/random",
        "/dev/urandom",
        "/dev/tty",
        "/dev/ptmx",
    }
)


@functools.cache
def _known_capabilities() -> tuple[str, ...]:
    """Every capability pyrunc knows (``CAP_CHOWN``...), in kernel order."""
    import pyrunc

    linux = pyrunc.features()["linux"]
    assert isinstance(linux, dict)
    return tuple(linux["capabilities"])


def all_capabilities() -> tuple[str, ...]:
    """Every capability pyrunc knows that this host can grant: those in this process's bounding set.
    A host that withholds some (a container host without ``CAP_SYS_MODULE``...) cannot hand them
    on, so ``--privileged`` and ``ALL`` leave them out, as podman does."""
    with open("/proc/self/status", encoding="ascii") as f:
        bounding = next(int(line.split()[1], 16) for line in f if line.startswith("CapBnd:"))
    return tuple(cap for number, cap in enumerate(_known_capabilities()) if bounding >> number & 1)


def _normalize(names: Iterable[str], opt: str, what: str) -> list[str]:
    if isinstance(names, str):
        raise InvalidArgumentError(
            f"{opt}: {what} must be a list of capability names, not the string {names!r}"
        )
    known = set(_known_capabilities())
    out: list[str] = []
    for name in names:
        if not isinstance(name, str):
            raise InvalidArgumentError(
                f"{opt}: {what} holds {type(name).__name__} {name!r}, not a capability name"
            )
        upper = name.upper()
        cap = upper if upper == "ALL" or upper.startswith("CAP_") else "CAP_" + upper
        if cap != "ALL" and cap not in known:
            raise InvalidArgumentError(f"{opt}: unknown capability {name!r} in {what}")
        if cap not in out:
            out.append(cap)
    return out


def _set_capabilities(spec: dict[str, Any], caps: list[str]) -> None:
    process_of(spec)["capabilities"] = {
        "bounding": list(caps),
        "effective": list(caps),
        "permitted": list(caps),
        "inheritable": [],
    }


def with_capabilities(add: Iterable[str] = (), drop: Iterable[str] = ()) -> SpecOpt:
    """Add and drop capabilities from the current set, as ``docker run --cap-add/--cap-drop``: ``ALL``
    in ``add`` gives every capability but those dropped; ``ALL`` in ``drop`` keeps only those added;
    otherwise ``drop`` is applied first, then ``add`` (so a capability in both is kept). Bounding,
    effective and permitted get the result; Docker's seccomp profile is resolved against it at the end."""
    adds = _normalize(add, "with_capabilities", "add")
    drops = _normalize(drop, "with_capabilities", "drop")

    def opt(context: SpecContext, spec: dict[str, Any]) -> None:
        if "ALL" in adds:
            caps = [c for c in all_capabilities() if c not in drops]
        elif "ALL" in drops:
            caps = list(adds)
        else:
            current = (process_of(spec).get("capabilities") or {}).get("bounding") or []
            caps = [c for c in current if c not in drops]
            caps += [c for c in adds if c not in caps]
        _set_capabilities(spec, caps)

    return opt


def _host_devices() -> list[dict[str, Any]]:
    """The host's device nodes under /dev as ``linux.devices`` entries, as runc's HostDevices lists
    them for Docker's ``--privileged``, less those the runtime creates anyway."""
    devices: list[dict[str, Any]] = []
    for directory, dirs, files in os.walk("/dev"):
        dirs[:] = sorted(d for d in dirs if not (directory == "/dev" and d in _SKIP_DEV_DIRS))
        for name in sorted(files):
            path = os.path.join(directory, name)
            if path in _RUNTIME_DEVICES:
                continue
            try:
                info = os.lstat(path)
            except FileNotFoundError:  # gone while we walked
                continue
            if stat.S_ISCHR(info.st_mode):
                kind = "c"
            elif stat.S_ISBLK(info.st_mode):
                kind = "b"
            else:
                continue
            devices.append(
                {
                    "path": path,
                    "type": kind,
                    "major": os.major(info.st_rdev),
                    "minor": os.minor(info.st_rdev),
                    "fileMode": stat.S_IMODE(info.st_mode),
                    "uid": info.st_uid,
                    "gid": info.st_gid,
                }
            )
    return devices


def with_privileged() -> SpecOpt:
    """``docker run --privileged``: every capability (:func:`all_capabilities`), no seccomp filter,
    no masked or read-only paths, ``/sys`` and cgroupfs writable, the host's devices created in the
    container and every device allowed."""

    def opt(context: SpecContext, spec: dict[str, Any]) -> None:
        _set_capabilities(spec, list(all_capabilities()))
        linux = linux_of(spec)
        for key in ("seccomp", "maskedPaths", "readonlyPaths"):
            linux.pop(key, None)
        linux["devices"] = _host_devices()
        linux.setdefault("resources", {})["devices"] = [{"allow": True, "access": "rwm"}]
        for mount in spec.get("mounts") or []:
            if mount.get("type") in ("sysfs", "cgroup"):
                mount["options"] = [o for o in mount.get("options") or [] if o != "ro"]

    return opt


def with_seccomp(profile: Mapping[str, Any] | None) -> SpecOpt:
    """Use ``profile`` (an OCI ``linux.seccomp`` object, kept as given) instead of Docker's default;
    ``None`` runs the container unconfined."""
    if profile is not None and (
        not hasattr(profile, "keys") or not isinstance(profile.get("defaultAction"), str)
    ):
        raise InvalidArgumentError(
            f"with_seccomp: the profile must be a linux.seccomp object with a defaultAction string, "
            f"not {type(profile).__name__}"
        )
    import copy

    chosen = copy.deepcopy(dict(profile)) if profile is not None else None

    def opt(context: SpecContext, spec: dict[str, Any]) -> None:
        linux = linux_of(spec)
        if chosen is None:
            linux.pop("seccomp", None)
        else:
            linux["seccomp"] = copy.deepcopy(chosen)

    return opt


def _resolve_docker_profile(profile: Mapping[str, Any], capabilities: Iterable[str]) -> dict[str, Any]:
    import pyrunc

    try:
        return pyrunc.docker_default_seccomp(capabilities, profile=profile)
    except (ValueError, TypeError, KeyError) as exc:
        raise InvalidArgumentError(
            f"with_docker_seccomp: the profile is not a Docker seccomp profile: {exc}"
        ) from None


def with_docker_seccomp(profile: Mapping[str, Any]) -> SpecOpt:
    """Use ``profile``, a seccomp profile in Docker's format (``archMap``, ``includes`` and
    ``excludes`` by capability, architecture and kernel: what ``docker run --security-opt
    seccomp=FILE`` sends), resolved as Docker resolves its own: against the container's bounding
    capabilities when the opt runs, so apply it after the opts that change them."""
    import copy

    chosen = copy.deepcopy(dict(profile)) if hasattr(profile, "keys") else profile
    _resolve_docker_profile(chosen, _known_capabilities())  # refuse a malformed profile now

    def opt(context: SpecContext, spec: dict[str, Any]) -> None:
        bounding = (process_of(spec).get("capabilities") or {}).get("bounding") or []
        linux_of(spec)["seccomp"] = _resolve_docker_profile(chosen, bounding)

    return opt
