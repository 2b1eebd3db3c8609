"""Container specs: an OCI runtime spec generated from an image config plus options, as composable
functions (containerd's ``oci.SpecOpts``). This is where a container's defaults live.

    from pycontainerd.oci import SpecContext, generate_spec, with_image_config, with_env, with_user

    context = SpecContext(id="web1", namespace="default", rootfs="/run/.../rootfs")
    spec = generate_spec(context, with_image_config(config), with_env(["DEBUG=1"]), with_user("app"))

:func:`generate_spec` starts from Docker's default container (its 14 capabilities, masked and
read-only paths, mounts, device rules, namespaces; see :mod:`._spec`), applies the opts in order,
and resolves Docker's seccomp profile last, against the final capabilities. An opt is a
``SpecOpt``: a function of the :class:`SpecContext` and the spec dict, which it mutates; the
``with_*`` functions here make them, checking their arguments at once. Bad arguments raise
:class:`~pycontainerd.InvalidArgumentError`, a user, group or bind source that does not exist
:class:`~pycontainerd.NotFoundError`, each naming the opt and the value.
"""

from __future__ import annotations

from pycontainerd.oci._linux import (
    NAMESPACE_KINDS,
    ContainerMount,
    with_annotations,
    with_cgroups_path,
    with_cpu_shares,
    with_cpus,
    with_cpuset,
    with_devices,
    with_host_namespace,
    with_hostname,
    with_memory_limit,
    with_memory_swap,
    with_mounts,
    with_namespace_path,
    with_pids_limit,
    with_readonly_rootfs,
    with_rootfs,
    with_sysctls,
)
from pycontainerd.oci._process import (
    RLIMIT_NAMES,
    with_additional_gids,
    with_args,
    with_cwd,
    with_env,
    with_image_config,
    with_no_new_privileges,
    with_rlimits,
    with_tty,
    with_user,
)
from pycontainerd.oci._security import (
    all_capabilities,
    with_capabilities,
    with_docker_seccomp,
    with_privileged,
    with_seccomp,
)
from pycontainerd.oci._spec import SpecContext, SpecOpt, generate_spec
from pycontainerd.oci._users import ResolvedUser, resolve_user

__all__ = [
    "NAMESPACE_KINDS",
    "RLIMIT_NAMES",
    "ContainerMount",
    "ResolvedUser",
    "SpecContext",
    "SpecOpt",
    "all_capabilities",
    "generate_spec",
    "resolve_user",
    "with_additional_gids",
    "with_annotations",
    "with_args",
    "with_capabilities",
    "with_cgroups_path",
    "with_cpu_shares",
    "with_cpus",
    "with_cpuset",
    "with_cwd",
    "with_devices",
    "with_docker_seccomp",
    "with_env",
    "with_host_namespace",
    "with_hostname",
    "with_image_config",
    "with_memory_limit",
    "with_memory_swap",
    "with_mounts",
    "with_namespace_path",
    "with_no_new_privileges",
    "with_pids_limit",
    "with_privileged",
    "with_readonly_rootfs",
    "with_rlimits",
    "with_rootfs",
    "with_seccomp",
    "with_sysctls",
    "with_tty",
    "with_user",
]
