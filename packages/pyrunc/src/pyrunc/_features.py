"""What ``pyrunc features`` reports: the OCI features document, true to what is implemented."""

from __future__ import annotations

import os

from pyrunc import __version__
from pyrunc._native.kernel import NAMESPACE_FLAGS
from pyrunc._plan.process import CAPABILITIES
from pyrunc._plan.rootfs import MOUNT_OPTIONS, PROPAGATION

__all__ = ["features"]

# Namespaces pyrunc can create or join (each of them both ways).
_NAMESPACES = list(NAMESPACE_FLAGS)


def _seccomp_features() -> dict[str, object]:
    """What linux.seccomp may use: the actions (all but SCMP_ACT_NOTIFY, no seccomp agents) and
    operators pyrunc implements, the architectures of the installed libseccomp, the flags."""
    from pyrunc._plan import seccomp

    return {
        "enabled": True,
        "actions": sorted(seccomp.ACTIONS),
        "operators": sorted(seccomp.OPERATORS),
        "archs": seccomp.supported_arches(),
        "knownFlags": list(seccomp.FLAGS),
        "supportedFlags": seccomp.supported_flags(),
    }


def features() -> dict[str, object]:
    """The features document (schema: oci-runtime-spec features-schema.json)."""
    unified = os.path.exists("/sys/fs/cgroup/cgroup.controllers")
    return {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.1.0",
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": sorted([*MOUNT_OPTIONS, *PROPAGATION]),
        "linux": {
            "namespaces": _NAMESPACES,
            "capabilities": list(CAPABILITIES),
            "cgroup": {"v1": not unified, "v2": True, "systemd": False, "systemdUser": False, "rdma": False},
            "seccomp": _seccomp_features(),
            "apparmor": {"enabled": False},
            "selinux": {"enabled": False},
            "intelRdt": {"enabled": False},
            "mountExtensions": {"idmap": {"enabled": False}},
        },
        "annotations": {"io.github.pyrunc.version": __version__},
    }
