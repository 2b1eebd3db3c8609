"""``linux.sysctl``: which kernel parameters a container may set, and where they are written.

/proc/sys is not namespaced as a whole: most of it is the host's, whichever namespaces the writer is
in. A container may set exactly what runc's validator lets it set (libcontainer/configs/validate),
with runc's words for a refusal:

=================================================  ===========================================
sysctl                                             allowed when the container has
=================================================  ===========================================
kernel.msgmax msgmnb msgmni sem shmall shmmax      an ipc namespace, new or joined
shmmni shm_rmid_forced, fs.mqueue.*
net.*                                              a network namespace, new or joined, that is
                                                   not the runtime's own (a joined path is
                                                   compared with /proc/self/ns/net)
kernel.domainname                                  a uts namespace, new or joined
kernel.hostname                                    never: the ``hostname`` field sets it
anything else                                      never
=================================================  ===========================================

A key is written with dots (``net.ipv4.ip_forward``) or, as sysctl(8) also takes it, with slashes
(``net/ipv4/conf/eth0.100/rp_filter``: then a dot is part of a name). Each name must be a plain
path component, so that no key reaches outside /proc/sys. The init writes the value itself, once in
its namespaces and its root (see native.c ``op_sysctl``: beneath /proc/sys, which must be a procfs,
following no symlink and crossing no mount): the kernel applies a namespaced sysctl to the namespace
of the process that writes it.
"""

from __future__ import annotations

import os

from pyrunc._errors import SpecError
from pyrunc._jsonio import dumps as _quoted  # a JSON string: quotes and escapes, as Go's %q
from pyrunc._native.kernel import OpKind
from pyrunc._spec.readers import path_of_key

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyrunc._plan.plan import Plan
    from pyrunc._spec.config import Linux

__all__ = ["check_sysctls", "sysctl_ops"]

_IPC_SYSCTLS = frozenset(
    f"kernel.{name}"
    for name in ("msgmax", "msgmnb", "msgmni", "sem", "shmall", "shmmax", "shmmni", "shm_rmid_forced")
)
_SLASHED = str.maketrans("./", "/.")


def _dotted(key: str) -> str:
    """``key`` with dots between its names (runc's convertSysctlVariableToDotsSeparator): a key
    whose first separator is a slash has its slashes and dots swapped."""
    for ch in key:
        if ch == ".":
            return key
        if ch == "/":
            return key.translate(_SLASHED)
    return key


def _relative_path(key: str, dotted: str, field: str) -> str:
    """The path of the sysctl below /proc/sys; SpecError unless every name is a plain component."""
    names = [name.replace("/", ".") for name in dotted.split(".")]
    for name in names:
        if name in ("", ".", ".."):
            raise SpecError(
                field,
                f"{_quoted(key)} is not a sysctl name: each of its names must be a plain file name "
                "below /proc/sys (no empty name, '.' or '..')",
            )
    return "/".join(names)


def _is_host_netns(path: str, field: str) -> bool:
    """Whether the network namespace file ``path`` is the runtime's own (runc's isHostNetNS)."""
    try:
        own = os.stat("/proc/self/ns/net")
        joined = os.stat(path)
    except OSError as exc:
        raise SpecError(field, f"invalid netns path: stat {exc.filename}: {exc.strerror}") from None
    return (own.st_dev, own.st_ino) == (joined.st_dev, joined.st_ino)


def check_sysctls(linux: Linux, new: set[str], joins: dict[str, str]) -> None:
    """Refuse every key of ``linux.sysctl`` the container may not set (see the module docstring),
    given the namespace types it creates (``new``) and joins (type -> path)."""
    if not linux.sysctl:
        return
    host_net: bool | None = None
    for key in linux.sysctl:
        field = path_of_key("linux.sysctl", key)
        dotted = _dotted(key)
        _relative_path(key, dotted, field)
        shown = _quoted(dotted)
        if dotted in _IPC_SYSCTLS or dotted.startswith("fs.mqueue."):
            if "ipc" not in new and "ipc" not in joins:
                raise SpecError(field, f"sysctl {shown} is not allowed in the hosts ipc namespace")
        elif dotted.startswith("net."):
            if host_net is None:
                if "network" in new:
                    host_net = False
                elif "network" in joins:
                    index = next(i for i, ns in enumerate(linux.namespaces) if ns.type == "network")
                    host_net = _is_host_netns(joins["network"], f"linux.namespaces[{index}].path")
                else:
                    host_net = True
            if host_net:
                raise SpecError(field, f"sysctl {shown} not allowed in host network namespace")
        elif dotted == "kernel.domainname" and ("uts" in new or "uts" in joins):
            continue
        elif dotted == "kernel.hostname" and ("uts" in new or "uts" in joins):
            raise SpecError(
                field, f'sysctl {shown} is not allowed as it conflicts with the OCI "hostname" field'
            )
        else:
            raise SpecError(field, f"sysctl {shown} is not in a separate kernel namespace")


def sysctl_ops(plan: Plan, linux: Linux) -> None:
    """The init's writes of the sysctls (checked by :func:`check_sysctls`)."""
    for key, value in linux.sysctl.items():
        field = path_of_key("linux.sysctl", key)
        path = _relative_path(key, _dotted(key), field)
        plan.add(OpKind.SYSCTL, f"write sysctl {key}={value}", path=path, text=value)
