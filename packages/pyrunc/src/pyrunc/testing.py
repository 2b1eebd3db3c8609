"""Helpers for testing a container stack on a real host; they ship with pyrunc.

Every layer of the stack (pyrunc, pycontainerd, pyengine, pycli), the demo and the benchmark use them,
so they live in the package rather than in one conftest:

- :func:`make_busybox_bundle` builds an OCI bundle offline: a root filesystem made of Debian's static
  busybox and its applets, and a ``config.json`` with runc's default spec.
- :class:`HostSnapshot` records what a test run could leave behind on the host (mounts, cgroups,
  network namespaces and links, child processes) so a suite can fail when something was not
  cleaned up.

Only the standard library is used, and ``subprocess`` is imported when needed, so importing this
module costs next to nothing.
"""

from __future__ import annotations

import os
import shutil
import struct
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from typing import Any

__all__ = [
    "BusyboxError",
    "HostSnapshot",
    "make_busybox_bundle",
    "register_module",
]

_ROOTFS_DIRS = ("bin", "dev", "etc", "proc", "sys", "tmp", "root", "home", "var")

_PASSWD = """\
root:x:0:0:root:/root:/bin/sh
app:x:1000:1000:app:/home/app:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
"""

_GROUP = """\
root:x:0:
tty:x:5:
app:x:1000:
nogroup:x:65534:
"""


class BusyboxError(RuntimeError):
    """Debian's static busybox is missing or unusable, so no bundle can be built."""


# --------------------------------------------------------------------------------------------------
# Test suites


def register_module(name: str, path: str | os.PathLike[str]) -> None:
    """Load the helper module at ``path`` and register it as ``name``, once, so that test files can
    ``import name``: pytest's importlib mode puts no test directory on ``sys.path``."""
    import importlib.util
    import sys

    if name in sys.modules:
        return
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)


# --------------------------------------------------------------------------------------------------
# Bundles


def _is_static_elf(path: Path) -> bool:
    """True if ``path`` is an ELF executable without a program interpreter (statically linked)."""
    with path.open("rb") as f:
        header = f.read(64)
        if len(header) < 52 or header[:4] != b"\x7fELF":
            return False
        bits, order = header[4], "<" if header[5] == 1 else ">"
        if bits == 2:
            (phoff,) = struct.unpack_from(order + "Q", header, 0x20)
            phentsize, phnum = struct.unpack_from(order + "HH", header, 0x36)
        else:
            (phoff,) = struct.unpack_from(order + "I", header, 0x1C)
            phentsize, phnum = struct.unpack_from(order + "HH", header, 0x2A)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    pt_interp = 3
    return all(
        struct.unpack_from(order + "I", table, i * phentsize)[0] != pt_interp
        for i in range(phnum)
        if (i + 1) * phentsize <= len(table)
    )


def _check_busybox(busybox: str | os.PathLike[str]) -> Path:
    path = Path(busybox)
    if not path.is_file():
        raise BusyboxError(
            f"{path} not found: install busybox-static (apt-get install -y busybox-static) to build "
            "busybox bundles"
        )
    if not _is_static_elf(path):
        raise BusyboxError(
            f"{path} is not a statically linked busybox and would not run inside a bare rootfs: "
            "install busybox-static (apt-get install -y busybox-static)"
        )
    return path


def _busybox_applets(busybox: Path) -> list[str]:
    import subprocess

    listing = subprocess.run(
        [str(busybox), "--list"], check=True, capture_output=True, text=True, timeout=30
    ).stdout
    return sorted(
        {name for name in listing.split() if name and "/" not in name and name not in ("busybox", ".", "..")}
    )


def make_busybox_bundle(
    bundle_dir: str | os.PathLike[str],
    args: Sequence[str],
    *,
    hostname: str = "pyrunc",
    terminal: bool = False,
    busybox: str | os.PathLike[str] = "/bin/busybox",
) -> Path:
    """Build an OCI bundle whose root filesystem is a static busybox, without any network.

    ``<bundle_dir>/rootfs`` gets ``bin/busybox`` (copied from Debian's busybox-static) and a
    symlink per applet, the usual top-level directories (``/tmp`` with mode 1777), and
    ``/etc/passwd`` (root, ``app`` 1000, nobody 65534), ``/etc/group`` and ``/etc/hostname``.
    ``<bundle_dir>/config.json`` is the default runtime spec (pyrunc's ``default_spec()`` when
    available, else what ``runc spec`` writes) with ``process.args``, ``process.terminal`` and
    ``hostname`` set. ``bundle_dir`` may exist but must not already contain a ``rootfs``.

    Returns the bundle directory. Raises :class:`BusyboxError` when busybox-static is missing.
    """
    import json

    argv = [str(arg) for arg in args]
    if not argv:
        raise ValueError("args must name the program to run in the container")
    source = _check_busybox(busybox)
    applets = _busybox_applets(source)

    bundle = Path(bundle_dir)
    bundle.mkdir(parents=True, exist_ok=True)
    rootfs = bundle / "rootfs"
    rootfs.mkdir(mode=0o755)
    for name in _ROOTFS_DIRS:
        (rootfs / name).mkdir(mode=0o755)
    os.chmod(rootfs / "tmp", 0o1777)
    os.chmod(rootfs / "root", 0o700)
    home = rootfs / "home" / "app"
    home.mkdir(mode=0o755)
    if os.geteuid() == 0:
        os.chown(home, 1000, 1000)

    target = rootfs / "bin" / "busybox"
    shutil.copyfile(source, target)
    os.chmod(target, 0o755)
    for applet in applets:
        (rootfs / "bin" / applet).symlink_to("busybox")

    etc = rootfs / "etc"
    (etc / "passwd").write_text(_PASSWD)
    (etc / "group").write_text(_GROUP)
    (etc / "hostname").write_text(hostname + "\n")

    from pyrunc._spec.config import default_spec

    config: dict[str, Any] = default_spec().to_json()
    process = config.setdefault("process", {})
    process["args"] = argv
    process["terminal"] = terminal
    config["hostname"] = hostname
    (bundle / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    return bundle


# --------------------------------------------------------------------------------------------------
# Leak detection


def _unescape_mountinfo(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo octal.
    if "\\" not in field:
        return field
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and i + 4 <= len(field) and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


class _MountEntry:
    __slots__ = ("fstype", "mount_point", "root", "source", "super_options")

    def __init__(self, line: str) -> None:
        left, _, right = line.partition(" - ")
        fields = left.split()
        self.root = _unescape_mountinfo(fields[3])
        self.mount_point = _unescape_mountinfo(fields[4])
        right_fields = right.split()
        self.fstype = right_fields[0] if right_fields else "?"
        self.source = _unescape_mountinfo(right_fields[1]) if len(right_fields) > 1 else "?"
        self.super_options = right_fields[2].split(",") if len(right_fields) > 2 else []


def _read_mountinfo(pid: int | str = "self") -> list[_MountEntry]:
    with open(f"/proc/{pid}/mountinfo") as f:
        return [_MountEntry(line) for line in f if line.strip()]


def _own_cgroup_dirs(mounts: Iterable[_MountEntry], pid: int | str = "self") -> list[str]:
    """The directory of ``pid``'s own cgroup in every mounted hierarchy (v1 and v2), deduplicated."""
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            lines = [line.rstrip("\n") for line in f if line.strip()]
    except FileNotFoundError:
        return []
    cgroup_mounts = [m for m in mounts if m.fstype in ("cgroup", "cgroup2")]
    dirs: list[str] = []
    for line in lines:
        hierarchy_id, controllers, path = line.split(":", 2)
        wanted = {c for c in controllers.split(",") if c}
        for mount in cgroup_mounts:
            if hierarchy_id == "0" and controllers == "":
                matches = mount.fstype == "cgroup2"
            else:
                matches = mount.fstype == "cgroup" and wanted <= set(mount.super_options)
            if not matches:
                continue
            root = mount.root.rstrip("/")
            if root and not (path == root or path.startswith(root + "/")):
                continue  # this mount shows another part of the hierarchy
            directory = os.path.normpath(mount.mount_point + "/" + path[len(root) :])
            if directory not in dirs and os.path.isdir(directory):
                dirs.append(directory)
    return dirs


def _cgroup_tree(top: str) -> set[str]:
    found: set[str] = set()
    for dirpath, _dirnames, _files in os.walk(top, onerror=None):
        if dirpath != top:
            found.add(dirpath)
    return found


def _descendants(ancestor: int) -> dict[tuple[int, int], str]:
    """Every live or zombie descendant of ``ancestor``: (pid, start time) -> description."""
    parents: dict[int, int] = {}
    info: dict[int, tuple[int, str, str]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue  # exited meanwhile
        pid = int(entry)
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        rest = stat[stat.rindex(")") + 2 :].split()
        parents[pid] = int(rest[1])
        info[pid] = (int(rest[19]), comm, rest[0])
    children: dict[int, list[int]] = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    found: dict[tuple[int, int], str] = {}
    stack = list(children.get(ancestor, []))
    while stack:
        pid = stack.pop()
        start, comm, state = info[pid]
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            cmdline = ""
        found[(pid, start)] = f"pid {pid} ({comm}) state {state}: {cmdline or '[no cmdline]'}"
        stack.extend(children.get(pid, []))
    return found


class HostSnapshot:
    """What tests could leave behind on the host, recorded at one moment.

    - ``mounts``: one ``"<mount point> (<fstype> from <source>)"`` per line of /proc/self/mountinfo;
    - ``cgroups``: every cgroup directory below this process's own cgroup, in each hierarchy
      (v1 per controller under /sys/fs/cgroup/<controller>/<own path>, and v2);
    - ``netns``: the names under /run/netns;
    - ``links``: the network interfaces in /sys/class/net;
    - ``processes``: the descendants of the process that took the snapshot (zombies included).

    Take one before the tests and one after; :meth:`leaked_since` lists what is new::

        before = HostSnapshot.take()
        ...  # run tests
        leaks = HostSnapshot.wait_until_clean(before)
        assert not leaks, "\\n".join(leaks)
    """

    __slots__ = ("cgroups", "links", "mounts", "netns", "processes")

    def __init__(
        self,
        *,
        mounts: Sequence[str],
        cgroups: Iterable[str],
        netns: Iterable[str],
        links: Iterable[str],
        processes: dict[tuple[int, int], str],
    ) -> None:
        self.mounts = list(mounts)
        self.cgroups = frozenset(cgroups)
        self.netns = frozenset(netns)
        self.links = frozenset(links)
        self.processes = dict(processes)

    @classmethod
    def take(cls, pid: int | None = None) -> HostSnapshot:
        """Snapshot the host as seen by process ``pid`` (default: this process)."""
        owner = os.getpid() if pid is None else pid
        mounts = _read_mountinfo(owner)
        cgroups: set[str] = set()
        for top in _own_cgroup_dirs(mounts, owner):
            cgroups |= _cgroup_tree(top)
        try:
            netns = os.listdir("/run/netns")
        except FileNotFoundError:
            netns = []
        try:
            links = os.listdir("/sys/class/net")
        except FileNotFoundError:
            links = []
        return cls(
            mounts=[f"{m.mount_point} ({m.fstype} from {m.source})" for m in mounts],
            cgroups=cgroups,
            netns=netns,
            links=links,
            processes=_descendants(owner),
        )

    def leaked_since(self, before: HostSnapshot) -> list[str]:
        """One line per thing present now that was not in ``before``, grouped by kind."""
        from collections import Counter

        leaks: list[str] = []
        extra_mounts = Counter(self.mounts) - Counter(before.mounts)
        leaks += [f"mount: {m}" for m in sorted(extra_mounts.elements())]
        leaks += [f"cgroup: {c}" for c in sorted(self.cgroups - before.cgroups)]
        leaks += [f"network namespace: /run/netns/{n}" for n in sorted(self.netns - before.netns)]
        leaks += [f"network link: {n}" for n in sorted(self.links - before.links)]
        leaks += [
            f"process: {desc}" for key, desc in sorted(self.processes.items()) if key not in before.processes
        ]
        return leaks

    @classmethod
    def wait_until_clean(
        cls, before: HostSnapshot, timeout: float = 3.0, pid: int | None = None
    ) -> list[str]:
        """Re-take snapshots for up to ``timeout`` seconds while something new is still there.

        Teardown that is already under way (a child being reaped, a cgroup being removed) gets a
        moment to finish; whatever is still new at the end is returned (empty: the host is clean).
        """
        deadline = time.monotonic() + timeout
        while True:
            leaks = cls.take(pid).leaked_since(before)
            if not leaks or time.monotonic() >= deadline:
                return leaks
            time.sleep(0.1)
