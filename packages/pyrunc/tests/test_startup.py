"""The start-up rule of ARCHITECTURE.md, checked on the entry points themselves: what each ``pyrunc``
verb imports, run as the ``pyrunc`` launcher runs it (``python -I -S``), and what a program that
creates containers in forked children (pycontainerd's monitor launcher) imports there.

Every module named in ``NEVER`` was measured to cost a millisecond or more on these paths; the verbs
on a container that exists do not import ``os`` either, nor the create machinery. This test is what
keeps the measures: nothing else needs to be checked."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import pyrunc
from pyrunc.testing import make_busybox_bundle

PACKAGE_PARENT = str(Path(pyrunc.__file__).resolve().parents[1])

#: What no verb loads: each costs a millisecond or more (ARCHITECTURE.md, start-up).
NEVER = frozenset(
    {"typing", "enum", "signal", "threading", "json", "re", "socket", "subprocess", "hashlib", "argparse"}
    | {"shutil", "tempfile", "dataclasses", "inspect", "collections", "functools", "importlib.metadata"}
)
#: What create and run load, and the verbs on a container that exists do not.
CREATE_MACHINERY = frozenset(
    {"os", "_cffi_backend", "pyrunc._native._lib", "pyrunc._container.create"}
    | {"pyrunc._spec.config", "pyrunc._plan.compile", "pyrunc._launch.child", "pyrunc._plan.seccomp"}
)

# The launcher (scripts/pyrunc), but that it writes the names of the modules loaded to the file
# named by its first argument.
_LAUNCHER = f"""
import sys
sys.path.insert(0, {PACKAGE_PARENT!r})
record = sys.argv.pop(1)
from pyrunc._cli.main import main
code = main()
sys.stdout.flush()
sys.stderr.flush()
with open(record, "w") as f:
    f.write(repr(sorted(sys.modules)))
import posix
posix._exit(code)
"""


def verb(root: Path, *argv: str) -> set[str]:
    """The modules ``pyrunc --root ROOT ARGV`` loaded, run as the launcher runs it; it must succeed."""
    record, log = root.parent / "modules", root.parent / "verb.log"
    with log.open("w") as output:  # a file: the init of create keeps what it inherits open
        proc = subprocess.run(
            [sys.executable, "-I", "-S", "-c", _LAUNCHER, str(record), "--root", str(root), *argv],
            stdin=subprocess.DEVNULL, stdout=output, stderr=output, timeout=60,
        )  # fmt: skip
    assert proc.returncode == 0, log.read_text()
    names: list[str] = ast.literal_eval(record.read_text())
    return set(names)


@pytest.fixture
def docker_like_bundle(tmp_path: Path) -> Path:
    """A bundle as docker gives one: Docker's seccomp profile, and a prestart hook (networking's)."""
    bundle = make_busybox_bundle(tmp_path / "bundle", ["sleep", "10"])
    config = json.loads((bundle / "config.json").read_text())
    config["linux"]["seccomp"] = pyrunc.docker_default_seccomp(pyrunc.DOCKER_CAPABILITIES)
    config["hooks"] = {"prestart": [{"path": "/bin/true"}]}
    (bundle / "config.json").write_text(json.dumps(config))
    return bundle


def test_each_verb_loads_only_what_it_needs(tmp_path: Path, docker_like_bundle: Path) -> None:
    root = tmp_path / "root"
    created = verb(root, "create", "--bundle", str(docker_like_bundle), "c1")
    try:
        assert created & NEVER == set()
        assert created >= CREATE_MACHINERY  # the check sees what a verb loads
        for argv in (
            ["start", "c1"],
            ["state", "c1"],
            ["pause", "c1"],
            ["resume", "c1"],
            ["kill", "c1", "KILL"],
        ):
            loaded = verb(root, *argv)
            assert loaded & (NEVER | CREATE_MACHINERY) == set(), argv
    finally:
        deleted = verb(root, "delete", "--force", "c1")
    assert deleted & (NEVER | CREATE_MACHINERY) == set()
    ran = verb(root, "run", "--bundle", str(make_busybox_bundle(tmp_path / "true", ["true"])), "r1")
    assert ran & NEVER == set()


def test_what_a_container_manager_reads_loads_only_the_docker_defaults() -> None:
    # pycontainerd reads these for every container and hands preload on to the child it forks
    # to create the container: none of them may cost the create machinery's imports.
    code = (
        f"import sys\nsys.path.insert(0, {PACKAGE_PARENT!r})\nalready = set(sys.modules)\n"
        "import pyrunc\npyrunc.preload\npyrunc.docker_default_seccomp(pyrunc.DOCKER_CAPABILITIES)\n"
        "print(repr(sorted(set(sys.modules) - already)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    loaded: list[str] = ast.literal_eval(out.stdout)
    ours = [m for m in loaded if m.startswith("pyrunc")]
    assert ours == ["pyrunc", "pyrunc._jsonio", "pyrunc._spec", "pyrunc._spec.docker"]
    assert set(loaded) & (NEVER | CREATE_MACHINERY) == {"os"}  # which pycontainerd has loaded


_CREATE_AFTER_PRELOAD = """
import json, socket, sys, uuid
import pyrunc
from pyrunc.testing import make_busybox_bundle

base, terminal = sys.argv[1], sys.argv[2] == "tty"
bundle = make_busybox_bundle(base + "/bundle", ["true"], terminal=terminal)
config = json.loads((bundle / "config.json").read_text())
config["linux"]["seccomp"] = pyrunc.docker_default_seccomp(pyrunc.DOCKER_CAPABILITIES)
(bundle / "config.json").write_text(json.dumps(config))
console = socket.socket(socket.AF_UNIX)
console.bind(base + "/console.sock")
console.listen(1)
pyrunc.preload()
before = set(sys.modules)
options = pyrunc.CreateOptions(str(bundle), console_socket=base + "/console.sock" if terminal else None)
container = pyrunc.Container.create("preload-" + uuid.uuid4().hex[:8], options, root=base + "/root")
loaded = sorted(set(sys.modules) - before)
container.delete(force=True)
print(json.dumps(loaded))
"""


@pytest.mark.parametrize("stdio", ["pipes", "tty"])
def test_after_preload_creating_a_container_imports_nothing(tmp_path: Path, stdio: str) -> None:
    # pycontainerd creates containers in a forked child, where an import could deadlock.
    out = subprocess.run(
        [sys.executable, "-c", _CREATE_AFTER_PRELOAD, str(tmp_path), stdio],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    assert json.loads(out.stdout) == []


_MANAGE_AFTER_PRELOAD = """
import json, sys
import pyrunc

root, container_id = sys.argv[1], sys.argv[2]
pyrunc.preload(create=False)
before = set(sys.modules)
container = pyrunc.Container.load(container_id, root)
container.start()
container.status()
container.kill(9)
container.delete(force=True)
print(json.dumps(sorted(set(sys.modules) - before)))
"""


def test_after_preload_for_managing_the_verbs_import_nothing(tmp_path: Path) -> None:
    # pycontainerd loads these while the container is created in its forked child.
    bundle = make_busybox_bundle(tmp_path / "bundle", ["sleep", "10"])
    container = pyrunc.Container.create(
        "managed", pyrunc.CreateOptions(str(bundle)), root=str(tmp_path / "root")
    )
    try:
        out = subprocess.run(
            [sys.executable, "-c", _MANAGE_AFTER_PRELOAD, str(tmp_path / "root"), "managed"],
            capture_output=True, text=True, check=True, timeout=60,
        )  # fmt: skip
    finally:
        if Path(container.directory).exists():
            container.delete(force=True)
        os.waitpid(container.pid, 0)  # our child (created here), killed by the other process
    assert json.loads(out.stdout) == []
