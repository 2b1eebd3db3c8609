"""Users of an image: ``"name"``, ``"uid"``, ``"name:group"``, ``"uid:gid"``... resolved through the
root filesystem's ``/etc/passwd`` and ``/etc/group``, as Docker does (moby/sys/user ``GetExecUser``).

- The user is matched by name or by uid; a numeric uid that passwd lacks is used as is, with gid 0
  and home ``/``. A name that passwd lacks is an error.
- An explicit group is matched by name or by gid; a numeric gid that the group file lacks is used as
  is. Without one, the gid is the user's primary group and every group that lists the user's name
  among its members becomes a supplementary group.

The files are read as if the rootfs were ``/``: symlinks are followed one component at a time, an
absolute target restarts at the rootfs and ``..`` stops at it, so a link that points outside (an
image's ``/etc/passwd -> /etc/shadow``, ``../../../etc/passwd``) never reaches the host's files. Every
component is opened with ``O_NOFOLLOW`` relative to its parent's descriptor.
"""

from __future__ import annotations

import errno
import os
import stat

from pycontainerd._errors import InvalidArgumentError, NotFoundError
from pycontainerd._record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Final

__all__ = ["ResolvedUser", "read_in_root", "resolve_group", "resolve_user"]

_MAX_SYMLINKS = 40  # the kernel's limit (ELOOP) for one path walk
_MAX_FILE = 16 << 20  # a passwd or group file larger than this is not one we want to parse
_MAX_ID = 2**32 - 2  # (uid_t)-1 means "no change" to the kernel: not a usable id


class ResolvedUser(Record):
    """What a user string of an image resolves to."""

    __slots__ = ("uid", "gid", "additional_gids", "home")

    def __init__(self, uid: int, gid: int, additional_gids: tuple[int, ...] = (), home: str = "/") -> None:
        self.uid: Final = uid
        self.gid: Final = gid
        self.additional_gids: Final = additional_gids
        self.home: Final = home


class _PasswdEntry(Record):
    __slots__ = ("name", "uid", "gid", "home")

    def __init__(self, name: str, uid: int, gid: int, home: str) -> None:
        self.name: Final = name
        self.uid: Final = uid
        self.gid: Final = gid
        self.home: Final = home


class _GroupEntry(Record):
    __slots__ = ("name", "gid", "members")

    def __init__(self, name: str, gid: int, members: tuple[str, ...]) -> None:
        self.name: Final = name
        self.gid: Final = gid
        self.members: Final = members


def read_in_root(root: Path, path: str) -> bytes | None:
    """The contents of the regular file ``path`` inside ``root``, resolved as if ``root`` were ``/``;
    ``None`` when it does not exist. Raises :class:`InvalidArgumentError` when it is not a regular
    file or its symlinks loop, :class:`NotFoundError` when ``root`` is missing."""
    where = f"{path} in {root}"
    pending = [p for p in path.split("/") if p and p != "."]
    pending.reverse()  # a stack: the next component last
    try:
        stack = [os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)]
    except (FileNotFoundError, NotADirectoryError):
        raise NotFoundError(f"the container's rootfs {root} is not a directory on the host") from None
    links = 0
    try:
        while pending:
            part = pending.pop()
            if part == "..":
                if len(stack) > 1:
                    os.close(stack.pop())
                continue
            try:
                info = os.stat(part, dir_fd=stack[-1], follow_symlinks=False)
            except FileNotFoundError:
                return None
            if stat.S_ISLNK(info.st_mode):
                links += 1
                if links > _MAX_SYMLINKS:
                    raise InvalidArgumentError(f"{where}: too many levels of symbolic links")
                target = os.readlink(part, dir_fd=stack[-1])
                if target.startswith("/"):
                    while len(stack) > 1:
                        os.close(stack.pop())
                pending.extend(reversed([p for p in target.split("/") if p and p != "."]))
                continue
            if pending:
                if not stat.S_ISDIR(info.st_mode):
                    return None
                stack.append(
                    os.open(part, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=stack[-1])
                )
                continue
            if not stat.S_ISREG(info.st_mode):
                raise InvalidArgumentError(f"{where}: not a regular file")
            fd = os.open(part, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=stack[-1])
            try:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    raise InvalidArgumentError(f"{where}: not a regular file")
                data = os.read(fd, _MAX_FILE + 1)
            finally:
                os.close(fd)
            if len(data) > _MAX_FILE:
                raise InvalidArgumentError(f"{where}: larger than {_MAX_FILE} bytes")
            return data
        return None  # the path names the root itself, a directory
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):  # swapped for a symlink while we walked
            raise InvalidArgumentError(f"{where}: changed while being read") from None
        raise
    finally:
        for fd in stack:
            os.close(fd)


def _fields(data: bytes | None, count: int) -> list[list[str]]:
    """The colon-separated lines of a passwd-format file with at least ``count`` fields; comments,
    blank lines and NIS ``+``/``-`` entries are skipped, as libc does."""
    if data is None:
        return []
    rows = []
    for line in data.decode("utf-8", errors="replace").splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "+", "-")):
            continue
        fields = line.split(":")
        if len(fields) >= count:
            rows.append(fields)
    return rows


def _parse_id(text: str) -> int | None:
    if not text.isascii() or not text.isdigit():
        return None
    value = int(text)
    return value if value <= _MAX_ID else None


def _passwd(data: bytes | None) -> list[_PasswdEntry]:
    entries = []
    for fields in _fields(data, 7):
        uid, gid = _parse_id(fields[2]), _parse_id(fields[3])
        if uid is not None and gid is not None:
            entries.append(_PasswdEntry(fields[0], uid, gid, fields[5]))
    return entries


def _groups(data: bytes | None) -> list[_GroupEntry]:
    entries = []
    for fields in _fields(data, 4):
        gid = _parse_id(fields[2])
        if gid is not None:
            members = tuple(m.strip() for m in fields[3].split(",") if m.strip())
            entries.append(_GroupEntry(fields[0], gid, members))
    return entries


def _numeric(text: str, what: str, spec: str) -> int | None:
    """``text`` as an id if it is all digits (and then in range), else ``None`` (a name)."""
    if not text.isascii() or not text.isdigit():
        return None
    value = _parse_id(text)
    if value is None:
        raise InvalidArgumentError(f"with_user: {what} {text!r} of {spec!r} is out of range (0 to {_MAX_ID})")
    return value


def resolve_user(rootfs: Path, spec: str) -> ResolvedUser:
    """Resolve ``spec`` (``user[:group]``, each a name or a number) in ``rootfs``'s ``/etc/passwd``
    and ``/etc/group``. Raises :class:`NotFoundError` for a name neither file has, naming the files,
    and :class:`InvalidArgumentError` for a malformed ``spec``."""
    user_part, sep, group_part = spec.partition(":")
    if not user_part or (sep and not group_part) or ":" in group_part:
        raise InvalidArgumentError(f"with_user: {spec!r} is not of the form user[:group]")
    uid_arg = _numeric(user_part, "uid", spec)
    gid_arg = _numeric(group_part, "gid", spec) if group_part else None

    passwd_file = rootfs / "etc/passwd"
    entry = next(
        (e for e in _passwd(read_in_root(rootfs, "/etc/passwd")) if e.name == user_part or e.uid == uid_arg),
        None,
    )
    if entry is None and uid_arg is None:
        raise NotFoundError(f"with_user: no user {user_part!r} in the image's /etc/passwd ({passwd_file})")
    uid = entry.uid if entry is not None else uid_arg
    assert uid is not None
    gid = entry.gid if entry is not None else 0
    home = entry.home if entry is not None and entry.home else "/"

    if not group_part and entry is None:
        return ResolvedUser(uid=uid, gid=gid, home=home)
    group_file = rootfs / "etc/group"
    groups = _groups(read_in_root(rootfs, "/etc/group"))
    if group_part:
        match = next((g for g in groups if g.name == group_part or g.gid == gid_arg), None)
        if match is None and gid_arg is None:
            raise NotFoundError(
                f"with_user: no group {group_part!r} in the image's /etc/group ({group_file})"
            )
        resolved_gid = match.gid if match is not None else gid_arg
        assert resolved_gid is not None
        return ResolvedUser(uid=uid, gid=resolved_gid, home=home)
    assert entry is not None
    additional: list[int] = []
    for group in groups:
        if entry.name in group.members and group.gid not in additional:
            additional.append(group.gid)
    return ResolvedUser(uid=uid, gid=gid, additional_gids=tuple(additional), home=home)


def resolve_group(rootfs: Path, group: str, opt: str = "with_additional_gids") -> int:
    """The gid of ``group`` (a name or a number) in ``rootfs``'s ``/etc/group``; a number is used as
    is, as Docker's ``--group-add`` does (the rootfs is then not read). Raises
    :class:`NotFoundError` for a name the file lacks, :class:`InvalidArgumentError` for a number
    out of range."""
    if group.isascii() and group.isdigit():
        gid = _parse_id(group)
        if gid is None:
            raise InvalidArgumentError(f"{opt}: gid {group!r} is out of range (0 to {_MAX_ID})")
        return gid
    match = next((g for g in _groups(read_in_root(rootfs, "/etc/group")) if g.name == group), None)
    if match is None:
        raise NotFoundError(f"{opt}: no group {group!r} in the image's /etc/group ({rootfs / 'etc/group'})")
    return match.gid
