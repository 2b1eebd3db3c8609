"""Opts for ``process``: what runs (args, env, cwd), as whom, and on which terminal.

Arguments are checked when the opt is made, so a bad value fails before any spec is built; a user
is resolved when the opt runs, against the container's rootfs.
"""

from __future__ import annotations

import posixpath

from pycontainerd._errors import InvalidArgumentError
from pycontainerd.oci._spec import process_of
from pycontainerd.oci._users import resolve_group, resolve_user

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from typing import Any

    from pycontainerd._images import ImageConfig
    from pycontainerd.oci._spec import SpecContext, SpecOpt

__all__ = [
    "RLIMIT_NAMES",
    "with_additional_gids",
    "with_args",
    "with_cwd",
    "with_env",
    "with_image_config",
    "with_no_new_privileges",
    "with_rlimits",
    "with_tty",
    "with_user",
]

#: The resource limits setrlimit(2) knows, by the names ``ulimit`` and Docker's ``--ulimit`` use.
RLIMIT_NAMES = (
    "as", "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile", "nproc",
    "rss", "rtprio", "rttime", "sigpending", "stack",
)  # fmt: skip
_RLIM_INFINITY = 2**64 - 1
_MAX_GID = 2**32 - 2


def _strings(values: Iterable[str], opt: str, what: str) -> list[str]:
    if isinstance(values, str):
        raise InvalidArgumentError(f"{opt}: {what} must be a list of strings, not the string {values!r}")
    out = list(values)
    for i, value in enumerate(out):
        if not isinstance(value, str):
            raise InvalidArgumentError(
                f"{opt}: {what}[{i}] is {type(value).__name__} {value!r}, not a string"
            )
        if "\0" in value:
            raise InvalidArgumentError(f"{opt}: {what}[{i}] {value!r} contains a NUL byte")
    return out


def _checked_env(env: Iterable[str], opt: str) -> list[str]:
    entries = _strings(env, opt, "env")
    for i, entry in enumerate(entries):
        key, sep, _ = entry.partition("=")
        if not sep or not key:
            raise InvalidArgumentError(f"{opt}: env[{i}] {entry!r} is not of the form KEY=VALUE")
    return entries


def _merge_env(current: list[str], entries: list[str]) -> list[str]:
    """``current`` with each of ``entries`` replacing the entry of the same key, or appended."""
    merged = list(current)
    index = {entry.partition("=")[0]: i for i, entry in enumerate(merged)}
    for entry in entries:
        key = entry.partition("=")[0]
        if key in index:
            merged[index[key]] = entry
        else:
            index[key] = len(merged)
            merged.append(entry)
    return merged


def _checked_cwd(path: str, opt: str) -> str:
    if not path.startswith("/") or "\0" in path:
        raise InvalidArgumentError(f"{opt}: the working directory {path!r} is not an absolute path")
    return posixpath.normpath(path).replace("//", "/", 1)


def with_args(args: Sequence[str]) -> SpecOpt:
    """Replace ``process.args`` with ``args``, verbatim (``args[0]`` is looked up in the container's
    ``PATH`` by the runtime)."""
    checked = _strings(args, "with_args", "args")
    if not checked:
        raise InvalidArgumentError("with_args: args is empty: a container needs a command")

    def opt(context: SpecContext, spec: dict[str, Any]) -> None:
        process_of(spec)["args"] = list(checked)

    return opt


def with_env(env: Iterable[str]) -> SpecOpt:
    """Set environment variables (``KEY=VALUE``): each replaces the entry of the same key, or is
    appended."""
    entries = _checked_env(env, "with_env")

    def opt(context: SpecContext, spec: dict[str, Any]) -> None:
        process = process_of(spec)
        process["env"] = _merge_env(process.get("env") or [], entries)

    return opt


def with_cwd(path: str) -> SpecOpt:
    """Set the working directory of the process (an absolute path in the container)."""
    cwd = _checked_cwd(path, "with_cwd")

    def opt(context: SpecContext, spec: dict[str, Any]) -> None:
        process_of(spec)["cwd"] = cwd

    return opt


def _apply_user(context: SpecContext, spec: dict[str, Any], user: str) -> None:
    resolved = resolve_user(context.rootfs, user)
    process = process_of(spec)
    process["user"] = {"uid": resolved.uid, "gid": resolved.gid}
    if resolved.additional_gids:
        process["user"]["additionalGids"] = list(resolved.additional_gids)
    env = process.get("env") or []
    if not any(entry.startswith("HOME=") for entry in env):
        process["env"] = [*env, f"HOME={resolved.home}"]


def with_user(user: str) -> SpecOpt:
    """Run the process as ``user``: ``name``, ``uid``, ``name:group``, ``uid:gid``, ``name:gid``...,
    resolved through the rootfs's ``/etc/passwd`` and ``/etc/group`` (see :mod:`._users`): uid, gid,
    supplementary groups (when no group is given), and ``HOME`` from passwd unless the env has one.
    Raises :class:`NotFoundError` for a user or group name the image lacks."""
    if not user:
        raise InvalidArgumentError(f"with_user: the user must be a non-empty string, not {user!r}")

    def opt(context: SpecContext, spec: dict[str, Any]) -> None:
        _apply_user(context, spec, user)

    return opt


def with_image_config(config: ImageConfig) -> SpecOpt:
    """What the image asks for: its ``Env`` (each entry replaces the same key, as :func:`with_env`),
    ``Entrypoint`` + ``Cmd`` as the args, ``WorkingDir`` and ``User`` (as :func:`with_user`). Apply it
    before the opts that should override it."""
    container = config.config
    env = _checked_env(container.env, "with_image_config")
    args = [*(container.entrypoint or ()), *(container.cmd or ())]
    cwd = _checked_cwd(container.working_dir, "with_image_config") if container.working_dir else None

    def opt(context: SpecContext, spec: dict[str, Any]) -> None:
        process = process_of(spec)
        process["env"] = _merge_env(process.get("env") or [], env)
        if args:
            process["args"] = list(args)
        if cwd is not None:
            process["cwd"] = cwd
        if container.user:
            _apply_user(context, spec, container.user)

    return opt


def with_tty(enabled: bool = True, *, rows: int | None = None, cols: int | None = None) -> SpecOpt:
    """Give the process a terminal (``TERM=xterm`` unless set, as Docker), of ``rows`` x ``cols``
    when both are given; ``enabled=False`` takes it away."""
    if (rows is None) != (cols is None):
        raise InvalidArgumentError(f"with_tty: give both rows and cols or neither (rows={rows}, cols={cols})")
    for name, value in (("rows", rows), ("cols", cols)):
        if value is not None and not 0 < value < 65536:
            raise InvalidArgumentError(f"with_tty: {name} must be an integer from 1 to 65535, not {value!r}")
    if not enabled and rows is not None:
        raise InvalidArgumentError("with_tty: a console size needs a terminal (enabled=False was given)")

    def opt(context: SpecContext, spec: dict[str, Any]) -> None:
        process = process_of(spec)
        process["terminal"] = enabled
        process.pop("consoleSize", None)
        if not enabled:
            return
        if rows is not None:
            process["consoleSize"] = {"height": rows, "width": cols}
        env = process.get("env") or []
        if not any(entry.startswith("TERM=") for entry in env):
            process["env"] = [*env, "TERM=xterm"]

    return opt


def with_no_new_privileges() -> SpecOpt:
    """Set ``no_new_privs``: setuid binaries and file capabilities no longer raise privileges."""

    def opt(context: SpecContext, spec: dict[str, Any]) -> None:
        process_of(spec)["noNewPrivileges"] = True

    return opt


def with_rlimits(limits: Iterable[tuple[str, int, int]]) -> SpecOpt:
    """Set resource limits (``process.rlimits``), each ``(name, soft, hard)``: ``name`` as ``nofile``
    or ``RLIMIT_NOFILE``, any case; ``-1`` is unlimited. One replaces an earlier limit of its kind."""
    entries: dict[str, dict[str, Any]] = {}
    given: list[object] = list(limits)  # checked at run time too: JSON and CLI callers
    for item in given:
        if not isinstance(item, tuple) or len(item) != 3:
            raise InvalidArgumentError(f"with_rlimits: {item!r} is not a (name, soft, hard) tuple")
        name, soft, hard = item
        short = str(name).lower().removeprefix("rlimit_")
        if short not in RLIMIT_NAMES:
            raise InvalidArgumentError(
                f"with_rlimits: unknown resource limit {name!r} (one of {', '.join(RLIMIT_NAMES)})"
            )
        values: list[int] = []
        for what, value in (("soft", soft), ("hard", hard)):
            if isinstance(value, bool) or not isinstance(value, int) or not -1 <= value <= _RLIM_INFINITY:
                raise InvalidArgumentError(
                    f"with_rlimits: the {what} limit of {short} must be -1 (unlimited) or a number of 0 "
                    f"and more, not {value!r}"
                )
            values.append(_RLIM_INFINITY if value == -1 else value)
        if values[0] > values[1]:
            raise InvalidArgumentError(
                f"with_rlimits: the soft limit of {short} ({soft}) is above its hard limit ({hard})"
            )
        kind = f"RLIMIT_{short.upper()}"
        entries[kind] = {"type": kind, "hard": values[1], "soft": values[0]}

    def opt(context: SpecContext, spec: dict[str, Any]) -> None:
        process = process_of(spec)
        kept = [r for r in process.get("rlimits") or [] if r.get("type") not in entries]
        process["rlimits"] = [*kept, *(dict(entry) for entry in entries.values())]

    return opt


def with_additional_gids(groups: Iterable[str | int]) -> SpecOpt:
    """Add supplementary groups to the process (``docker run --group-add``): gids, or group names
    resolved through the image's ``/etc/group`` when the opt runs (apply it after the user, whose
    own groups it keeps). Raises :class:`NotFoundError` for a name the image lacks."""
    if isinstance(groups, str):
        raise InvalidArgumentError(f"with_additional_gids: groups must be a list, not the string {groups!r}")
    given: list[object] = list(groups)  # checked at run time too: JSON and CLI callers
    wanted: list[str] = []
    for group in given:
        if isinstance(group, int) and not isinstance(group, bool):
            group = str(group)
        if not isinstance(group, str) or not group or ":" in group or "\0" in group:
            raise InvalidArgumentError(f"with_additional_gids: {group!r} is not a group name or gid")
        wanted.append(group)

    def opt(context: SpecContext, spec: dict[str, Any]) -> None:
        user = process_of(spec).setdefault("user", {"uid": 0, "gid": 0})
        gids: list[int] = list(user.get("additionalGids") or [])
        for group in wanted:
            # A gid is taken as is: the rootfs is read (and mounted) only for a name.
            gid = (
                int(group)
                if group.isdigit() and int(group) <= _MAX_GID
                else resolve_group(context.rootfs, group)
            )
            if gid not in gids:
                gids.append(gid)
        if gids:
            user["additionalGids"] = gids

    return opt
