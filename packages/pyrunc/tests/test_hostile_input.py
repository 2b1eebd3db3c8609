"""Property-based tests of what a user or a registry controls: config.json, as text and as values.

Generated inputs (hypothesis): malformed JSON, a wrong value at every field path of a config that
uses most fields, and hostile values where pyrunc meets the kernel (sysctl keys, paths, names,
strings with NUL bytes). Whatever comes, pyrunc answers with a :class:`~pyrunc.PyruncError` whose
message names the field, or the container works; never another exception, a hang, a traceback on
the command line, a host setting changed, or a mount left on the host. The example counts keep the
whole module well under a minute.
"""

from __future__ import annotations

import copy
import json
import os
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from pyrunc import Container, CreateOptions, PyruncError
from pyrunc._errors import SpecError
from pyrunc._plan.compile import compile_init
from pyrunc._spec.config import RuntimeSpec, load_spec
from pyrunc.testing import HostSnapshot, make_busybox_bundle

if TYPE_CHECKING:
    from collections.abc import Iterator

import pyrunc_tests_helpers as h

pytestmark = [pytest.mark.integration, pytest.mark.cgroup]

# No example database (it would be written into the working tree), no deadline (containers take
# their time on a busy machine); the function-scoped fixtures are the shared bundle and root.
FAST = settings(max_examples=300, deadline=None, database=None)
SLOW = settings(
    max_examples=25, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

# Host settings a hostile config must not change (read before and after each container example).
HOST_SYSCTLS = (
    "kernel/core_pattern",
    "kernel/printk_ratelimit",
    "kernel/shmmni",
    "kernel/hostname",
    "kernel/domainname",
    "net/ipv4/ip_forward",
    "vm/swappiness",
)


def host_state(base: tuple[Path, dict[str, Any]]) -> tuple[dict[str, str], list[str], list[str]]:
    """The host's sysctls above; its mounts, but those of other test runs in /tmp (this machine runs
    several at once): outside /tmp, and in this module's own temporary directory; and what is in /
    and beside the shared rootfs (where a mount target escaping it would land)."""
    sysctls = {key: Path("/proc/sys", key).read_text() for key in HOST_SYSCTLS}
    ours = base[0].parent.parent
    mounts = [m for m in HostSnapshot.take().mounts if not m.startswith("/tmp/") or m.startswith(str(ours))]
    beside = base[0].parent  # the bundle and each example's own directory
    files = sorted(os.listdir("/")) + sorted(str(p) for p in beside.rglob("*") if "rootfs" not in p.parts)
    return sysctls, sorted(mounts), files


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """A busybox bundle running ``true`` and a config that uses most fields pyrunc implements."""
    bundle = make_busybox_bundle(tmp_path_factory.mktemp("hostile") / "bundle", ["true"], terminal=False)
    config = json.loads((bundle / "config.json").read_text())
    config["domainname"] = "example.org"
    config["annotations"] = {"org.example": "yes"}
    config["hooks"] = {
        "createRuntime": [{"path": "/bin/true", "args": ["true"], "env": ["A=1"], "timeout": 5}]
    }
    process = config["process"]
    process["env"].append("HOME=/root")
    process["rlimits"].append({"type": "RLIMIT_CORE", "hard": 0, "soft": 0})
    process["user"]["additionalGids"] = [5]
    process["consoleSize"] = {"height": 24, "width": 80}
    process["oomScoreAdj"] = 100
    linux = config["linux"]
    linux["sysctl"] = {"net.ipv4.ip_forward": "1", "kernel.shmmni": "4000"}
    linux["devices"] = [{"path": "/dev/fuse-like", "type": "c", "major": 1, "minor": 7, "fileMode": 0o600}]
    linux["resources"].update({"memory": {"limit": 64 << 20}, "pids": {"limit": 64}, "cpu": {"shares": 512}})
    linux["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [{"names": ["syslog"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
    }
    (bundle / "config.json").write_text(json.dumps(config))
    return bundle, config


def field_paths(node: object, at: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    """Every member and item of a JSON document, as key paths."""
    yield at
    if isinstance(node, dict):
        for key, value in node.items():
            yield from field_paths(value, (*at, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from field_paths(value, (*at, index))


def replaced(config: dict[str, Any], at: tuple[str | int, ...], value: object) -> object:
    if not at:
        return value
    out = copy.deepcopy(config)
    node: Any = out
    for step in at[:-1]:
        node = node[step]
    if isinstance(node, list) and at[-1] == len(node):
        node.append(value)  # one more item
    else:
        node[at[-1]] = value
    return out


ODD_TEXT = st.sampled_from(["", "\0", "a\0b", "\ud800", "..", "/", "/../../etc", "a" * 5000, "é", "\n"])
TEXT = st.text(alphabet=st.characters(), max_size=20) | ODD_TEXT
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | TEXT
    | st.sampled_from([0, -1, 2**32, 2**63, 2**64, 1.5, 1e300])
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)


def top_field(at: tuple[str | int, ...]) -> str:
    return str(at[0]) if at else "config.json"


def named_field(error: SpecError) -> str:
    """The top-level member a SpecError's field path starts with."""
    return error.field.split(".", 1)[0].split("[", 1)[0]


# -- config.json as text -----------------------------------------------------------------------------


@FAST
@given(data=st.data())
def test_malformed_json_is_a_precise_spec_error(
    base: tuple[Path, dict[str, Any]], data: st.DataObject
) -> None:
    bundle, config = base
    text = json.dumps(config, indent=1)
    edit = data.draw(st.sampled_from(["truncate", "insert", "replace", "any"]))
    if edit == "any":
        text = data.draw(st.text(max_size=200))
    else:
        at = data.draw(st.integers(min_value=0, max_value=len(text) - 1))
        piece = data.draw(
            st.sampled_from(["{", "}", "[", "]", ",", ":", '"', "\\", "\0", "x", "nul", "1e999", "NaN"])
        )
        text = {
            "truncate": text[:at],
            "insert": text[:at] + piece + text[at:],
            "replace": text[:at] + piece + text[at + 1 :],
        }[edit]
    directory = bundle.parent / f"text-{uuid.uuid4().hex[:8]}"
    directory.mkdir()
    try:
        (directory / "config.json").write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            json.loads(text)
            valid = True
        except ValueError:
            valid = False
        try:
            load_spec(str(directory))
        except SpecError as exc:
            if not valid:
                assert str(exc).startswith(f"{directory / 'config.json'}: invalid JSON: "), exc
                assert "line" in str(exc) or "nested too deeply" in str(exc) or "not UTF-8" in str(exc), exc
    finally:
        (directory / "config.json").unlink()
        directory.rmdir()


# -- a wrong value at every field path ---------------------------------------------------------------


@FAST
@given(data=st.data())
def test_a_wrong_value_anywhere_is_refused_naming_its_field(
    base: tuple[Path, dict[str, Any]], data: st.DataObject
) -> None:
    bundle, config = base
    at = data.draw(st.sampled_from(list(field_paths(config))))
    value = data.draw(JSON_VALUES)
    mutated = replaced(config, at, value)
    try:
        spec = RuntimeSpec.from_json(mutated)
    except SpecError as exc:
        event("refused by the parser")
        assert exc.field, (at, value, str(exc))
        if at:  # a whole config replaced may be refused for any of its members
            assert named_field(exc) == top_field(at), (at, value, str(exc))
        return
    try:
        compile_init(spec, bundle=str(bundle), fifo_fd=3, container_id="hostile")
    except PyruncError as exc:
        event("refused by the plan")
        assert str(exc).strip() and "\n" not in str(exc), exc
    else:
        event("compiled")


# -- hostile values, created for real ----------------------------------------------------------------

NAME = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_-0123456789", min_size=1, max_size=12)
SEGMENT = NAME | st.sampled_from(
    ["", ".", "..", "/", "//", "net", "kernel", "ipv4", "core_pattern", "a/../b"]
)
SYSCTL_KEY = st.lists(SEGMENT, min_size=1, max_size=6).flatmap(
    lambda parts: st.sampled_from([".", "/"]).map(lambda sep: sep.join(parts))
)
PATH = st.lists(SEGMENT | st.just("a" * 300), min_size=1, max_size=5).map(lambda parts: "/" + "/".join(parts))
MOUNT = st.fixed_dictionaries(
    {
        "destination": PATH,
        "type": st.sampled_from(["tmpfs", "bind", "proc"]),
        "source": PATH | TEXT,
        "options": st.lists(TEXT | st.sampled_from(["bind", "ro", "rbind", "rshared"]), max_size=3),
    }
)
RLIMIT = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["RLIMIT_NOFILE", "RLIMIT_NPROC", "RLIMIT_BOGUS"]),
        "hard": st.integers(0, 2**64 - 1),
        "soft": st.integers(0, 2**64 - 1),
    }
)
NAMESPACE = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["cgroup", "user", "network"]),
        "path": PATH | st.sampled_from(["/proc/self/ns/net", "/proc/1/ns/cgroup"]),
    }
)
SYSCTLS = st.dictionaries(SYSCTL_KEY, st.sampled_from(["1", "|/tmp/x", "\0"]), min_size=1, max_size=3)
HOSTILE_EDITS = st.one_of(
    st.tuples(st.just(("linux", "sysctl")), SYSCTLS),
    st.tuples(st.just(("hostname",)), TEXT | st.text(max_size=80)),
    st.tuples(st.just(("process", "cwd")), PATH),
    st.tuples(st.just(("process", "args")), st.lists(TEXT, min_size=1, max_size=3)),
    st.tuples(st.just(("process", "env")), st.lists(TEXT, max_size=3)),
    st.tuples(st.just(("mounts", 7)), MOUNT),  # one more mount
    st.tuples(st.just(("linux", "maskedPaths")), st.lists(PATH, max_size=3)),
    st.tuples(st.just(("linux", "readonlyPaths")), st.lists(PATH, max_size=3)),
    st.tuples(st.just(("process", "rlimits")), st.lists(RLIMIT, max_size=2)),
    st.tuples(st.just(("linux", "namespaces", 1)), NAMESPACE),  # in place of the network namespace
)


@pytest.fixture
def state_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    root.mkdir(mode=0o700)
    return root


@pytest.fixture
def no_stdin() -> Iterator[None]:
    """/dev/null as fd 0 meanwhile: a container run in this process inherits it, and a program a
    hostile config names (``sh``, ``cat``) must not wait on a terminal."""
    saved = os.dup(0)
    null = os.open(os.devnull, os.O_RDONLY)
    try:
        os.dup2(null, 0)
        yield
    finally:
        os.dup2(saved, 0)
        os.close(saved)
        os.close(null)


@SLOW
@given(edit=HOSTILE_EDITS)
def test_hostile_values_through_the_api(
    base: tuple[Path, dict[str, Any]],
    state_root: Path,
    no_stdin: None,
    edit: tuple[tuple[str | int, ...], object],
) -> None:
    """``Container.run`` (create, start, wait, delete) with one hostile value: a PyruncError that
    names something, or a container that ran; the host's settings and mounts as they were."""
    bundle, config = base
    at, value = edit
    directory = bundle.parent / f"api-{uuid.uuid4().hex[:8]}"
    directory.mkdir()
    (directory / "rootfs").symlink_to(bundle / "rootfs")
    mutated = replaced(config, at, value)
    assert isinstance(mutated, dict)
    mutated["hooks"] = {}
    (directory / "config.json").write_text(json.dumps(mutated))
    container_id = f"hostile-{uuid.uuid4().hex[:12]}"
    before = host_state(base)
    try:
        event(
            f"exit status {Container.run(container_id, CreateOptions(str(directory)), root=str(state_root))}"
        )
    except PyruncError as exc:
        event(f"refused: {type(exc).__name__}")
        assert str(exc).strip(), exc
    finally:
        assert not (state_root / container_id).exists()
        assert not h.container_cgroups(container_id)
        assert host_state(base) == before
        (directory / "config.json").unlink()
        (directory / "rootfs").unlink()
        directory.rmdir()


@settings(
    max_examples=8, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(edit=HOSTILE_EDITS, verb=st.sampled_from(["create", "run"]))
def test_hostile_values_through_the_command_line(
    base: tuple[Path, dict[str, Any]],
    pyrunc_bin: Path,
    state_root: Path,
    edit: tuple[tuple[str | int, ...], object],
    verb: str,
) -> None:
    """``pyrunc create`` or ``run`` of a bundle with one hostile value: exit status 0, or 1 with one
    line on stderr; never a traceback."""
    bundle, config = base
    at, value = edit
    directory = bundle.parent / f"cli-{uuid.uuid4().hex[:8]}"
    directory.mkdir()
    (directory / "rootfs").symlink_to(bundle / "rootfs")
    mutated = replaced(config, at, value)
    assert isinstance(mutated, dict)
    mutated["hooks"] = {}
    (directory / "config.json").write_text(json.dumps(mutated))
    runtime = h.Runtime(pyrunc_bin, state_root)
    container_id = runtime.new_id("hostile")
    before = host_state(base)
    try:
        result = runtime(verb, "--bundle", directory, container_id, timeout=30)
        event(f"{verb}: exit status {result.returncode}")
        assert "Traceback" not in result.stderr, result.stderr
        assert result.returncode == 0 or result.stderr.count("\n") == 1, result.stderr
    finally:
        runtime.cleanup()
        assert host_state(base) == before
        (directory / "config.json").unlink()
        (directory / "rootfs").unlink()
        directory.rmdir()
