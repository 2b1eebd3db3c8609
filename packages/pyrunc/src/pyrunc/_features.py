"""What ``pyrunc features`` reports: the OCI features document, true to what is implemented."""

from __future__ import annotations

import os

from pyrunc._plan import _MOUNT_OPTIONS, CAPABILITIES, NAMESPACE_FLAGS, PROPAGATION

__all__ = ["features"]

# Namespaces pyrunc can create or join today (user namespaces come with uid/gid mappings).
_NAMESPACES = [name for name in NAMESPACE_FLAGS if name != "user"]


def features() -> dict[str, object]:
    """The features document (schema: oci-runtime-spec features-schema.json)."""
    unified = os.path.exists("/sys/fs/cgroup/cgroup.controllers")
    return {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.1.0",
        "hooks": [],
        "mountOptions": sorted([*_MOUNT_OPTIONS, *PROPAGATION]),
        "linux": {
            "namespaces": _NAMESPACES,
            "capabilities": list(CAPABILITIES),
            "cgroup": {"v1": not unified, "v2": True, "systemd": False, "systemdUser": False, "rdma": False},
            "seccomp": {"enabled": False},
            "apparmor": {"enabled": False},
            "selinux": {"enabled": False},
            "intelRdt": {"enabled": False},
            "mountExtensions": {"idmap": {"enabled": False}},
        },
        "annotations": {"io.github.pyrunc.version": "0.1.0"},
    }
