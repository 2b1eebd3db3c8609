"""Bad bundles and flags: ``pyrunc create`` and ``pyrunc run`` refuse each with a clear, one-line
error on stderr and exit status 1, and leave nothing behind.

"Nothing" is checked for every case: no state directory ``<root>/<id>``, no cgroup
``<own cgroup>/pyrunc/<id>`` in any hierarchy, no new mount in this mount namespace, and no
leftover process. For the last one the test process is made a child subreaper while pyrunc runs,
so whatever pyrunc would leave running is re-parented to it and seen among its descendants.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable


import pyrunc_tests_helpers as h

setting, appending = h.setting, h.appending

pytestmark = [
    pytest.mark.integration,
    pytest.mark.cgroup,
]


@pytest.fixture
def rt(pyrunc_bin: Path, pyrunc_root: Path) -> Any:
    runtime = h.Runtime(pyrunc_bin, pyrunc_root)
    yield runtime
    runtime.cleanup()


def refuse(rt: Any, verb: str, bundle: Path, *flags: str) -> str:
    """``verb`` (create or run) the bundle; assert a clean refusal and that nothing is left behind.
    Returns the error message."""
    container_id = rt.new_id("bad")
    with h.subreaper(), h.nothing_left_behind(rt.root, container_id):
        result = rt(verb, *flags, "--bundle", bundle, container_id, timeout=30)
    assert result.returncode == 1, f"exit {result.returncode}: {result.stderr}"
    assert result.stdout == ""
    message = str(result.stderr)
    assert "Traceback" not in message
    assert message.endswith("\n") and message.count("\n") == 1 and message.strip(), repr(message)
    return message.strip()


def bundle_with(tmp_path: Path, *edits: Any, args: list[str] | None = None) -> Path:
    return h.make_bundle(h.next_bundle_dir(tmp_path), args or ["true"], *edits)


VERBS = pytest.mark.parametrize("verb", ["create", "run"])


# -- the bundle itself ---------------------------------------------------------------------------


@VERBS
def test_missing_bundle_dir(rt: Any, tmp_path: Path, verb: str) -> None:
    message = refuse(rt, verb, tmp_path / "nope")
    assert message == f"bundle {tmp_path / 'nope'}: no such directory"


@VERBS
def test_bundle_without_config(rt: Any, tmp_path: Path, verb: str) -> None:
    bundle = bundle_with(tmp_path)
    (bundle / "config.json").unlink()
    assert refuse(rt, verb, bundle) == f"bundle {bundle}: no config.json"


@VERBS
def test_malformed_json_names_line_and_column(rt: Any, tmp_path: Path, verb: str) -> None:
    bundle = bundle_with(tmp_path)
    (bundle / "config.json").write_text('{"ociVersion": "1.0.2",\n  "process": }\n')
    message = refuse(rt, verb, bundle)
    assert message.startswith(f"{bundle / 'config.json'}: invalid JSON")
    assert "line 2 column 14" in message


@VERBS
def test_missing_rootfs(rt: Any, tmp_path: Path, verb: str) -> None:
    bundle = bundle_with(tmp_path, setting("root.path", "nope"))
    assert refuse(rt, verb, bundle).startswith("root.path: ")


# -- schema violations: the message starts with the field's path ---------------------------------

SCHEMA_CASES = {
    "args-a-string": (setting("process.args", "sh"), "process.args: "),
    "args-empty": (setting("process.args", []), "process.args: "),
    "namespace-bogus": (setting("linux.namespaces[0].type", "bogus"), "linux.namespaces[0].type: "),
    "cwd-relative": (setting("process.cwd", "tmp"), "process.cwd: "),
    "capability-not-a-string": (
        setting("process.capabilities.bounding", ["CAP_KILL", 7]),
        "process.capabilities.bounding[1]: ",
    ),
    "rlimit-unknown": (
        setting("process.rlimits", [{"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}]),
        "process.rlimits[0].type: ",
    ),
    "uid-negative": (setting("process.user.uid", -1), "process.user.uid: "),
}


@VERBS
@pytest.mark.parametrize("case", SCHEMA_CASES)
def test_schema_violation_names_the_field(rt: Any, tmp_path: Path, verb: str, case: str) -> None:
    edit, prefix = SCHEMA_CASES[case]
    assert refuse(rt, verb, bundle_with(tmp_path, edit)).startswith(prefix)


def _mount(**fields: object) -> Callable[[dict[str, Any]], object]:
    return appending("mounts", {"type": "tmpfs", "source": "tmpfs", **fields})


@VERBS
@pytest.mark.parametrize("destination", ["/a/../../x", "../x", "/proc/.."])
def test_mount_destination_with_dotdot(rt: Any, tmp_path: Path, verb: str, destination: str) -> None:
    bundle = bundle_with(tmp_path, _mount(destination=destination))
    index = len(h.read_config(bundle)["mounts"]) - 1
    assert refuse(rt, verb, bundle).startswith(f"mounts[{index}].destination: ")


@VERBS
def test_bind_mount_source_missing(rt: Any, tmp_path: Path, verb: str) -> None:
    missing = tmp_path / "missing"
    bundle = bundle_with(
        tmp_path,
        appending(
            "mounts", {"destination": "/x", "type": "bind", "source": str(missing), "options": ["bind"]}
        ),
    )
    index = len(h.read_config(bundle)["mounts"]) - 1
    message = refuse(rt, verb, bundle)
    assert message.startswith(f"mounts[{index}].source: ") and str(missing) in message


# -- the process ---------------------------------------------------------------------------------


@VERBS
def test_executable_not_found(rt: Any, tmp_path: Path, verb: str) -> None:
    message = refuse(rt, verb, bundle_with(tmp_path, args=["nope"]))
    assert message.startswith('exec: "nope": executable file not found in $PATH')


def _not_executable(tmp_path: Path) -> Path:
    bundle = bundle_with(tmp_path, args=["/bin/notexec"])
    (bundle / "rootfs/bin/notexec").write_text("#!/bin/sh\necho should not run\n")
    (bundle / "rootfs/bin/notexec").chmod(0o644)
    return bundle


@VERBS
def test_executable_without_x_bit(rt: Any, tmp_path: Path, verb: str) -> None:
    message = refuse(rt, verb, _not_executable(tmp_path))
    assert message.startswith('exec: "/bin/notexec": ')
    assert "permission denied" in message.lower()  # runc: exec: "/bin/notexec": permission denied
    assert "not found" not in message  # it was found


@VERBS
def test_cwd_is_a_file(rt: Any, tmp_path: Path, verb: str) -> None:
    message = refuse(rt, verb, bundle_with(tmp_path, setting("process.cwd", "/etc/passwd")))
    assert "/etc/passwd" in message and "Not a directory" in message


@VERBS
@pytest.mark.parametrize("fd", [3, 4, 5, 6, 7])
def test_cwd_through_an_inherited_fd(rt: Any, tmp_path: Path, verb: str, fd: int) -> None:
    """CVE-2024-21626: a cwd of /proc/self/fd/N must not reach a directory of the host through an
    fd the runtime still holds while it sets up the container."""
    message = refuse(rt, verb, bundle_with(tmp_path, setting("process.cwd", f"/proc/self/fd/{fd}")))
    assert message.startswith(f"create cwd /proc/self/fd/{fd}: ")


# -- valid OCI that pyrunc does not implement: the message names the field -----------------------

UNSUPPORTED_CASES = {
    "io-priority": (
        setting("process.ioPriority", {"class": "IOPRIO_CLASS_BE", "priority": 4}),
        "process.ioPriority",
    ),
}


@VERBS
@pytest.mark.parametrize("case", UNSUPPORTED_CASES)
def test_unsupported_field_is_named(rt: Any, tmp_path: Path, verb: str, case: str) -> None:
    edit, field = UNSUPPORTED_CASES[case]
    message = refuse(rt, verb, bundle_with(tmp_path, edit))
    assert message.startswith(field) and "not supported" in message


@VERBS
def test_console_socket_without_a_terminal_is_refused(rt: Any, tmp_path: Path, verb: str) -> None:
    message = refuse(rt, verb, bundle_with(tmp_path), "--console-socket", str(tmp_path / "console.sock"))
    assert message == "cannot use console socket if runc will not detach or allocate tty"  # runc's words


# -- failures inside the container's init, after cgroups, namespaces and mounts were made --------


@VERBS
def test_unknown_filesystem_type(rt: Any, tmp_path: Path, verb: str) -> None:
    bundle = bundle_with(tmp_path, _mount(destination="/x", type="bogusfs"))
    index = len(h.read_config(bundle)["mounts"]) - 1
    message = refuse(rt, verb, bundle)
    assert f"mounts[{index}]" in message and "No such device" in message


@VERBS
def test_unknown_sysctl(rt: Any, tmp_path: Path, verb: str) -> None:
    message = refuse(rt, verb, bundle_with(tmp_path, setting("linux.sysctl", {"net.ipv4.bogus": "1"})))
    assert "net.ipv4.bogus" in message and "No such file or directory" in message


@VERBS
def test_memory_limit_too_low_is_explained(rt: Any, tmp_path: Path, verb: str) -> None:
    """The init is OOM-killed (or an allocation fails) during set-up: the message says why."""
    message = refuse(rt, verb, bundle_with(tmp_path, setting("linux.resources.memory", {"limit": 4096})))
    assert "linux.resources.memory.limit" in message


# -- a mount over a symlink that points outside the rootfs ---------------------------------------


def _evil_bundle(tmp_path: Path, relative: bool, script: str = "true") -> tuple[Path, Path]:
    """A bundle whose rootfs has ``/evil`` -> the host directory ``host_target`` (made, empty) and a
    tmpfs mount on ``/evil``. Returns (bundle, host_target)."""
    host_target = tmp_path / "host-target"
    host_target.mkdir()
    bundle = bundle_with(tmp_path, _mount(destination="/evil"), args=["sh", "-c", script])
    link = bundle / "rootfs/evil"
    link.symlink_to(("../" * 12 + str(host_target).lstrip("/")) if relative else host_target)
    return bundle, host_target


@VERBS
@pytest.mark.parametrize("relative", [False, True], ids=["absolute-link", "relative-link"])
def test_symlinked_mount_target_outside_the_rootfs(
    rt: Any, tmp_path: Path, verb: str, relative: bool
) -> None:
    bundle, host_target = _evil_bundle(tmp_path, relative)
    index = len(h.read_config(bundle)["mounts"]) - 1
    host_mounts = h.mount_points()
    message = refuse(rt, verb, bundle)
    assert f"mounts[{index}] /evil" in message
    assert os.listdir(host_target) == []
    assert h.mount_points() == host_mounts
    assert str(host_target) not in Path("/proc/self/mountinfo").read_text()


@pytest.mark.parametrize("relative", [False, True], ids=["absolute-link", "relative-link"])
def test_symlinked_mount_target_resolves_inside_the_rootfs(rt: Any, tmp_path: Path, relative: bool) -> None:
    """When the link's target also exists inside the rootfs, the mount lands there, in the rootfs."""
    bundle, host_target = _evil_bundle(
        tmp_path, relative, "echo pwned > /evil/file && cat /proc/self/mountinfo && ls -A /evil"
    )
    inside = bundle / "rootfs" / str(host_target).lstrip("/")
    inside.mkdir(parents=True)
    container_id = rt.new_id()
    with h.subreaper(), h.nothing_left_behind(rt.root, container_id):
        result = rt.run(bundle, container_id)
    assert result.returncode == 0, result.stderr
    points = {line.split()[4]: line.split(" - ")[1].split()[0] for line in result.stdout.splitlines()[:-1]}
    assert points.get(str(host_target)) == "tmpfs"  # the container's own path, inside its root
    assert result.stdout.splitlines()[-1] == "file"
    assert os.listdir(host_target) == []  # the host's directory never saw the mount nor the file
    assert os.listdir(inside) == []  # and the rootfs's directory only had the tmpfs over it


# -- the log file of a refusal -------------------------------------------------------------------


def test_refusal_is_logged_as_json(pyrunc_bin: Path, pyrunc_root: Path, tmp_path: Path) -> None:
    log = tmp_path / "log.json"
    rt = h.Runtime(pyrunc_bin, pyrunc_root, log=log)
    try:
        message = refuse(rt, "create", bundle_with(tmp_path, setting("process.args", "sh")))
        (line,) = log.read_text().splitlines()
        entry = json.loads(line)
        assert (entry["level"], entry["msg"]) == ("error", message)
    finally:
        rt.cleanup()


# -- malformed JSON: the position, never a traceback ----------------------------------------------


@VERBS
@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("{not json", "Expecting property name enclosed in double quotes at line 1 column 2"),
        ('{"ociVersion": "1.0.2", ', "Expecting property name enclosed in double quotes at line 1 column 25"),
        ('{"ociVersion": "1.0.2"', "Expecting ',' delimiter at line 1 column 23"),
        ('{"ociVersion": "1.0.2"}}', "extra data at line 1 column 24"),
        ('{"ociVersion": "\\q"}', "Invalid \\escape at line 1 column 17"),
        ("[" * 50_000, "nested too deeply"),
        ("\ufeff{}", "expecting a value at line 1 column 1"),
    ],
    ids=["unquoted-key", "truncated", "unclosed", "extra", "bad-escape", "deep", "bom"],
)
def test_malformed_json_names_the_position(rt: Any, tmp_path: Path, verb: str, text: str, where: str) -> None:
    bundle = bundle_with(tmp_path)
    (bundle / "config.json").write_text(text)
    assert refuse(rt, verb, bundle) == f"{bundle / 'config.json'}: invalid JSON: {where}"


def test_config_that_is_not_utf8(rt: Any, tmp_path: Path) -> None:
    bundle = bundle_with(tmp_path)
    (bundle / "config.json").write_bytes(b'{"ociVersion": "\xff"}')
    assert refuse(rt, "create", bundle).startswith(f"{bundle / 'config.json'}: invalid JSON: not UTF-8")


# -- strings the kernel gets as C strings: a NUL is refused, never cut at ------------------------


def _hook(**fields: object) -> dict[str, object]:
    return {"path": "/bin/true", **fields}


MKDIR_X = {"names": ["mkdir\0x"], "action": "SCMP_ACT_ERRNO"}

NUL_CASES = {
    "args": (setting("process.args", ["echo", "a\0b"]), "process.args[1]"),
    "env": (setting("process.env", ["PATH=/bin", "A=b\0c"]), "process.env[1]"),
    "cwd": (setting("process.cwd", "/tmp\0/x"), "process.cwd"),
    "hostname": (setting("hostname", "box\0evil"), "hostname"),
    "domainname": (setting("domainname", "a\0b"), "domainname"),
    "root": (setting("root.path", "rootfs\0/x"), "root.path"),
    "mount-source": (_mount(destination="/x", source="tmp\0fs"), "mounts[7].source"),
    "mount-destination": (_mount(destination="/x\0/y"), "mounts[7].destination"),
    "mount-option": (_mount(destination="/x", options=["size=1m\0,mode=777"]), "mounts[7].options[0]"),
    "mount-type": (_mount(destination="/x", type="tmp\0fs"), "mounts[7].type"),
    "hook-path": (
        setting("hooks.createContainer", [_hook(path="/bin/true\0x")]),
        "hooks.createContainer[0].path",
    ),
    "hook-arg": (setting("hooks.prestart", [_hook(args=["true", "\0"])]), "hooks.prestart[0].args[1]"),
    "hook-env": (setting("hooks.poststart", [_hook(env=["A=\0"])]), "hooks.poststart[0].env[0]"),
    "namespace-path": (
        appending("linux.namespaces", {"type": "cgroup", "path": "/proc/1/ns/cgroup\0x"}),
        "linux.namespaces[5].path",
    ),
    "device-path": (
        setting("linux.devices", [{"path": "/dev/x\0y", "type": "c", "major": 1, "minor": 3}]),
        "linux.devices[0].path",
    ),
    "masked-path": (setting("linux.maskedPaths", ["/proc/kcore\0"]), "linux.maskedPaths[0]"),
    "readonly-path": (setting("linux.readonlyPaths", ["/proc\0/sys"]), "linux.readonlyPaths[0]"),
    "sysctl-key": (
        setting("linux.sysctl", {"kernel.shmmni\0x": "1"}),
        'linux.sysctl["kernel.shmmni\\u0000x"]',
    ),
    "sysctl-value": (setting("linux.sysctl", {"kernel.shmmni": "1\0 2"}), 'linux.sysctl["kernel.shmmni"]'),
    "seccomp-name": (
        setting("linux.seccomp", {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [MKDIR_X]}),
        "linux.seccomp.syscalls[0].names[0]",
    ),
    "cgroups-path": (setting("linux.cgroupsPath", "/pyrunc-test\0x"), "linux.cgroupsPath"),
    "annotation": (setting("annotations", {"a": "\0"}), "annotations.a"),
}


@pytest.mark.parametrize("case", NUL_CASES)
def test_a_nul_byte_is_refused_naming_the_field(rt: Any, tmp_path: Path, case: str) -> None:
    edit, field = NUL_CASES[case]
    message = refuse(rt, "create", bundle_with(tmp_path, edit))
    assert message.startswith(f"{field}: holds a NUL byte"), message


def test_a_nul_in_the_program_is_refused_not_cut(rt: Any, tmp_path: Path) -> None:
    """``echo a\\0b`` printed ``a``: runc refuses it, and so does pyrunc, before making anything."""
    message = refuse(rt, "run", bundle_with(tmp_path, args=["echo", "a\0b"]))
    assert message == "process.args[1]: holds a NUL byte (at index 1), which no C string can carry"


def test_a_lone_surrogate_is_refused(rt: Any, tmp_path: Path) -> None:
    message = refuse(rt, "create", bundle_with(tmp_path, args=["echo", "\ud800"]))
    assert message == "process.args[1]: holds the lone surrogate '\\ud800' (at 0): not text"


# -- values longer than the kernel takes: the field, not a bare ENAMETOOLONG ----------------------

LONG_PATH = "/" + "a" * 5000

LONG_CASES = {
    "cwd": (setting("process.cwd", LONG_PATH), "process.cwd: 5001 bytes long, more than the 4095 of a path"),
    "mount-destination": (_mount(destination=LONG_PATH), "mounts[7].destination: 5001 bytes long"),
    "bind-source": (
        appending("mounts", {"destination": "/x", "type": "bind", "source": LONG_PATH, "options": ["bind"]}),
        "mounts[7].source: 5001 bytes long",
    ),
    "hook-path": (
        setting("hooks.prestart", [_hook(path=LONG_PATH)]),
        "hooks.prestart[0].path: 5001 bytes long",
    ),
    "masked-path": (setting("linux.maskedPaths", [LONG_PATH]), "linux.maskedPaths[0]: 5001 bytes long"),
    "namespace-path": (
        appending("linux.namespaces", {"type": "cgroup", "path": LONG_PATH}),
        "linux.namespaces[5].path: 5001 bytes long",
    ),
    "hostname": (setting("hostname", "h" * 65), "hostname: 65 bytes long, more than the 64 the kernel takes"),
    "rlimit": (
        setting("process.rlimits", [{"type": "RLIMIT_" + "A" * 5000, "hard": 1, "soft": 1}]),
        "process.rlimits[0].type: unknown rlimit RLIMIT_AAAA",
    ),
    "groups": (
        setting("process.user", {"uid": 0, "gid": 0, "additionalGids": list(range(5000))}),
        "process.user.additionalGids: 5000 groups, more than the 1024 pyrunc sets",
    ),
}


@pytest.mark.parametrize("case", LONG_CASES)
def test_too_long_is_refused_naming_the_field(rt: Any, tmp_path: Path, case: str) -> None:
    edit, prefix = LONG_CASES[case]
    message = refuse(rt, "create", bundle_with(tmp_path, edit))
    assert message.startswith(prefix), message


def test_an_environment_too_long_for_execve(rt: Any, tmp_path: Path) -> None:
    bundle = bundle_with(tmp_path, setting("process.env", ["PATH=/bin", "A=" + "b" * 200_000]))
    message = refuse(rt, "run", bundle)
    assert message == "exec true: process.args and process.env are longer than execve(2) takes"


@VERBS
def test_a_bundle_path_too_long(rt: Any, tmp_path: Path, verb: str) -> None:
    bundle = tmp_path / ("b" * 300)
    assert refuse(rt, verb, bundle) == f"bundle {bundle}: File name too long"


def test_a_time_offset_of_an_unknown_clock(rt: Any, tmp_path: Path) -> None:
    bundle = bundle_with(
        tmp_path,
        appending("linux.namespaces", {"type": "time"}),
        setting("linux.timeOffsets", {"realtime\n0 0": {"secs": 1}}),
    )
    message = refuse(rt, "create", bundle)
    assert message == (
        'linux.timeOffsets["realtime\\n0 0"]: unknown clock (a time namespace offsets boottime and monotonic)'
    )


def test_a_nul_in_the_console_socket_path_through_the_api(tmp_path: Path, pyrunc_root: Path) -> None:
    """The kernel takes a socket path up to a NUL: the init would send its pty to another socket."""
    import socket

    from pyrunc import Container, CreateOptions, PyruncError

    bundle = bundle_with(tmp_path, setting("process.terminal", True))
    listening = tmp_path / "console.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(listening))
        server.listen(1)
        server.setblocking(False)
        container_id = f"nul-socket-{os.getpid()}"
        with pytest.raises(PyruncError, match=r"^--console-socket .*: a path cannot hold a NUL byte$"):
            Container.create(
                container_id,
                CreateOptions(str(bundle), console_socket=f"{listening}\0x"),
                root=str(pyrunc_root),
            )
        with pytest.raises(BlockingIOError):
            server.accept()  # nobody connected
    assert not (pyrunc_root / container_id).exists()
    assert not h.container_cgroups(container_id)
