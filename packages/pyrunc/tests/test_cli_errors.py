"""Every failure of the ``pyrunc`` command that is not a bug: one clear line on stderr, nothing on
stdout, exit status 1 (runc's), never a traceback. The failure paths of each verb are driven here:
bad flags, a missing bundle, a bad config, an unknown container, the wrong state for the verb, a bad
id, unusable files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

import pyrunc_tests_helpers as h

pytestmark = [pytest.mark.integration, pytest.mark.cgroup]


@pytest.fixture
def rt(pyrunc_bin: Path, pyrunc_root: Path) -> Iterator[Any]:
    runtime = h.Runtime(pyrunc_bin, pyrunc_root)
    yield runtime
    runtime.cleanup()


def fails(result: Any, message: str) -> None:
    """One line on stderr that is ``message`` (or starts with it, when it ends with "..."), exit 1."""
    assert "Traceback" not in result.stderr, result.stderr
    assert (result.returncode, result.stdout) == (1, ""), result
    assert result.stderr.endswith("\n") and result.stderr.count("\n") == 1, repr(result.stderr)
    line = result.stderr.rstrip("\n")
    if message.endswith("..."):
        assert line.startswith(message[:-3]), line
    else:
        assert line == message


# -- the command line itself ---------------------------------------------------------------------

USAGE = [
    (["--bogus", "state", "x"], "pyrunc: flag provided but not defined: --bogus"),
    (["frob"], "pyrunc: No help topic for 'frob'"),
    (["state"], 'pyrunc: "container id" is required'),
    (["start"], 'pyrunc: "container id" is required'),
    (["create", "--bundle"], "pyrunc: flag needs an argument: --bundle"),
    (["run", "--bogus-flag", "x"], "pyrunc: flag provided but not defined: --bogus-flag"),
    (["create", "--preserve-fds", "many", "x"], "pyrunc: invalid --preserve-fds value 'many'"),
    (["--log-format", "xml", "state", "x"], "pyrunc: invalid log-format: xml"),
    (
        ["--systemd-cgroup", "state", "x"],
        "--systemd-cgroup is not supported: pyrunc manages cgroups through cgroupfs",
    ),
    (["--rootless", "true", "state", "x"], "--rootless is not supported by pyrunc yet"),
    (["list", "--format", "xml"], "pyrunc: invalid format option 'xml'"),
    (["spec", "--seccomp", "bogus"], "pyrunc: --seccomp: unknown profile 'bogus' (known: docker)"),
    (["state", "a/b"], "invalid container ID format: 'a/b' (an id is made of letters, digits and _ + , - .)"),
    (
        ["state", "a" * 300],
        "invalid container ID format: 300 characters, more than the 255 of a file name...",
    ),
]


@pytest.mark.parametrize(("argv", "message"), USAGE, ids=[" ".join(a)[:40] for a, _ in USAGE])
def test_usage_errors(rt: Any, argv: list[str], message: str) -> None:
    fails(rt(*argv), message)


def test_an_unusable_log_file(rt: Any, tmp_path: Path) -> None:
    fails(
        rt("--log", str(tmp_path / "no" / "log"), "state", "x"),
        f"--log {tmp_path}/no/log: No such file or directory",
    )
    fails(rt("--log", str(tmp_path), "state", "x"), f"--log {tmp_path}: Is a directory")


def test_an_unusable_root(rt: Any, tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("")
    fails(rt("--root", str(afile), "state", "x"), f"{afile}/x/state.json: Not a directory")
    bundle = h.make_bundle(tmp_path / "b", ["true"])
    fails(
        rt("--root", str(afile), "create", "--bundle", str(bundle), "x"),
        f"state root {afile}: not a directory",
    )


# -- bundles and configs -----------------------------------------------------------------------------


@pytest.mark.parametrize("verb", ["create", "run"])
def test_bundle_and_config_errors(rt: Any, tmp_path: Path, verb: str) -> None:
    fails(
        rt(verb, "--bundle", str(tmp_path / "nope"), rt.new_id()),
        f"bundle {tmp_path / 'nope'}: no such directory",
    )
    (tmp_path / "afile").write_text("")
    fails(
        rt(verb, "--bundle", str(tmp_path / "afile"), rt.new_id()),
        f"bundle {tmp_path / 'afile'}: not a directory",
    )
    bundle = h.make_bundle(tmp_path / "b", ["true"])
    (bundle / "config.json").write_text("{not json")
    fails(
        rt(verb, "--bundle", str(bundle), rt.new_id()),
        f"{bundle / 'config.json'}: invalid JSON: Expecting...",
    )
    (bundle / "config.json").write_text(
        json.dumps({"ociVersion": "1.0.2", "process": {"cwd": "/", "args": 5}})
    )
    fails(rt(verb, "--bundle", str(bundle), rt.new_id()), "process.args: expected an array, got int")
    (bundle / "config.json").unlink()
    fails(rt(verb, "--bundle", str(bundle), rt.new_id()), f"bundle {bundle}: no config.json")


def test_run_keep_and_console_socket_errors(rt: Any, tmp_path: Path) -> None:
    bundle = h.make_bundle(tmp_path / "b", ["true"])
    fails(rt("run", "--keep", "--bundle", str(bundle), rt.new_id()), "--keep is not supported by pyrunc yet")
    h.edit_config(bundle, h.setting("process.terminal", True))
    socket = tmp_path / "no.sock"
    fails(
        rt("create", "--console-socket", str(socket), "--bundle", str(bundle), rt.new_id()),
        f"--console-socket {socket}: No such file or directory",
    )
    fails(
        rt("create", "--bundle", str(bundle), rt.new_id()),
        "cannot allocate tty if runc will detach without setting console socket",
    )


@pytest.mark.parametrize("verb", ["create", "run"])
def test_a_pid_file_that_cannot_be_written(rt: Any, tmp_path: Path, verb: str) -> None:
    bundle = h.make_bundle(tmp_path / "b", ["true"])
    pid_file = tmp_path / "no" / "pid"
    container_id = rt.new_id()
    with h.subreaper(), h.nothing_left_behind(rt.root, container_id):
        result = rt(verb, "--pid-file", str(pid_file), "--bundle", str(bundle), container_id)
    fails(result, f"pid file {pid_file}: No such file or directory")


def test_spec_errors(rt: Any, tmp_path: Path) -> None:
    fails(
        rt("spec", "--bundle", str(tmp_path / "nope")),
        f"{tmp_path}/nope/config.json: No such file or directory",
    )
    assert rt("spec", "--bundle", str(tmp_path)).returncode == 0
    fails(rt("spec", "--bundle", str(tmp_path)), "File config.json exists. Remove it first.")


# -- containers that do not exist, or are in the wrong state -----------------------------------------

VERBS_ON_A_CONTAINER = [
    ["state"],
    ["start"],
    ["kill"],
    ["delete"],
    ["pause"],
    ["resume"],
    ["ps"],
    ["events", "--stats"],
    ["update", "--pids-limit", "10"],
    ["exec"],
]


@pytest.mark.parametrize("verb", VERBS_ON_A_CONTAINER, ids=lambda verb: verb[0])
def test_an_unknown_container(rt: Any, verb: list[str]) -> None:
    container_id = rt.new_id("unknown")
    extra = ["true"] if verb[0] == "exec" else []
    fails(rt(*verb, container_id, *extra), f"container {container_id} does not exist")


@pytest.fixture
def containers(rt: Any, tmp_path: Path) -> dict[str, str]:
    """A created, a running and a stopped container, by status."""
    sleeper = h.make_bundle(tmp_path / "sleeper", ["sleep", "300"])
    created = rt.create(sleeper)
    running = rt.create(sleeper)
    assert rt("start", running).returncode == 0
    stopped = rt.create(h.make_bundle(tmp_path / "quick", ["true"]))
    assert rt("start", stopped).returncode == 0
    rt.wait_status(stopped, "stopped")
    return {"created": created, "running": running, "stopped": stopped}


WRONG_STATE = [
    ("running", ["start"], "cannot start an already running container"),
    ("stopped", ["start"], "cannot start a container that has stopped"),
    ("stopped", ["kill"], "container not running"),
    ("stopped", ["pause"], "container not running"),
    ("running", ["resume"], "container not paused"),
    ("created", ["resume"], "container not paused"),
    ("stopped", ["exec", "{id}", "true"], "cannot exec in a stopped container"),
    ("stopped", ["update", "--pids-limit", "10"], "container not running"),
    ("running", ["delete"], "cannot delete container {id} that is not stopped: running"),
]


def test_the_wrong_state_for_the_verb(rt: Any, containers: dict[str, str]) -> None:
    for status, verb, message in WRONG_STATE:
        container_id = containers[status]
        argv = [arg.format(id=container_id) for arg in verb]
        if "{id}" not in verb:
            argv.append(container_id)
        fails(rt(*argv), message.format(id=container_id))


def test_bad_arguments_to_a_verb(rt: Any, containers: dict[str, str], tmp_path: Path) -> None:
    running = containers["running"]
    fails(rt("kill", running, "SIGBOGUS"), "pyrunc: unknown signal 'SIGBOGUS'")
    fails(rt("exec", running), "pyrunc: exec needs a command or --process")
    fails(
        rt("exec", "--user", "root", running, "true"), "pyrunc: --user takes uid[:gid] as numbers, got 'root'"
    )
    fails(
        rt("exec", "--process", str(tmp_path / "nope.json"), running),
        f"{tmp_path}/nope.json: No such file or directory",
    )
    bad = tmp_path / "bad.json"
    bad.write_text("[")
    fails(
        rt("exec", "--process", str(bad), running),
        f"process: {bad}: invalid JSON: expecting a value at line 1 column 2",
    )
    bad.write_text(json.dumps({"args": ["true"], "cwd": "relative"}))
    fails(rt("exec", "--process", str(bad), running), "process.cwd: ...")
    fails(rt("update", "--memory", "lots", running), "pyrunc: --memory: invalid value 'lots'")
    fails(rt("update", "--resources", "-", running, input="{"), "resources: -: invalid JSON: ...")
    fails(rt("events", running), "events: only --stats is supported by pyrunc yet")
    fails(rt("kill", running, "99999"), "pyrunc: unknown signal '99999'")
    fails(
        rt("exec", "--additional-gids", "wheel", running, "true"),
        "pyrunc: --additional-gids takes group ids as numbers, got ['wheel']",
    )
    assert rt.status(running) == "running"


@pytest.mark.parametrize(
    ("damage", "why"),
    [
        ('{"id": "x", "init_pid"', "Expecting ':' delimiter at line 1 column 23"),
        ("[]", "not a JSON object"),
        ('{"id": "x"}', "no 'annotations'"),
        ("\udcff", "'utf-8' codec can't decode byte 0xff in position 0: invalid start byte"),
    ],
    ids=["truncated", "array", "incomplete", "not-utf8"],
)
def test_a_damaged_state_file(rt: Any, tmp_path: Path, damage: str, why: str) -> None:
    container_id = rt.create(h.make_bundle(tmp_path / "b", ["sleep", "300"]))
    state = rt.root / container_id / "state.json"
    good = state.read_bytes()
    state.write_bytes(damage.encode(errors="surrogateescape"))
    try:
        for verb in (["state"], ["start"], ["delete", "--force"], ["kill"]):
            fails(rt(*verb, container_id), f"{state}: not a container state pyrunc wrote ({why})")
    finally:
        state.write_bytes(good)  # for the clean-up
