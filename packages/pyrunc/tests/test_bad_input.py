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
    "capability-unknown": (
        setting("process.capabilities.bounding", ["CAP_BOGUS"]),
        "process.capabilities.bounding[0]: ",
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
