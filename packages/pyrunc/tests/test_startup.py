"""What each ``pyrunc`` invocation loads: containerd's shim runs create, start and delete for every
container, and each pays for its imports. The verbs on a container that exists load neither ``os``
nor the create machinery; :mod:`pyrunc._fs` stands in for the ``os.path`` functions they need."""

from __future__ import annotations

import ast
import itertools
import json
import os.path
import subprocess
import sys
from pathlib import Path

import pytest

import pyrunc
from pyrunc import _fs

PACKAGE_PARENT = str(Path(pyrunc.__file__).resolve().parents[1])
# What create, run and exec load, and what the verbs on an existing container must not.
HEAVY = ["os", "select", "pyrunc._spawn", "pyrunc._spec", "pyrunc._launch", "pyrunc._kernel", "_cffi_backend"]


def loaded_by(*modules: str) -> list[str]:
    """The modules of HEAVY that importing ``modules`` loads, in a fresh ``python -I -S``."""
    loaded = loaded_running(f"for name in {list(modules)!r}:\n    __import__(name)\n")
    return [m for m in loaded if m in HEAVY]


def loaded_running(code: str) -> list[str]:
    """The modules that running ``code`` loads, in a fresh ``python -I -S``."""
    program = (
        "import sys\n"
        f"sys.path.insert(0, {PACKAGE_PARENT!r})\n"
        "already = set(sys.modules)\n"
        f"{code}"
        "print(sorted(set(sys.modules) - already))\n"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-S", "-c", program], capture_output=True, text=True, check=True, timeout=60
    )
    loaded: list[str] = ast.literal_eval(out.stdout)
    return loaded


def test_lifecycle_verbs_load_neither_os_nor_the_create_machinery() -> None:
    assert loaded_by("pyrunc._cli", "pyrunc._cli_lifecycle", "pyrunc._container") == []


def test_removing_cgroups_does_not_load_os() -> None:
    assert loaded_by("pyrunc._cgroups", "pyrunc._cgroups._v1", "pyrunc._cgroups._v2") == []


def test_create_loads_the_create_machinery() -> None:
    # the guard above means something: the same check sees what create does load
    assert "pyrunc._spawn" in loaded_by("pyrunc._cli_create", "pyrunc._spawn")


def test_what_a_container_manager_reads_loads_only_the_docker_defaults() -> None:
    # pycontainerd reads these for every container and hands preload on to the child it forks
    # to create the container: none of them may cost the create machinery's imports.
    code = "import pyrunc\npyrunc.preload\npyrunc.docker_default_seccomp(pyrunc.DOCKER_CAPABILITIES)\n"
    loaded = loaded_running(code)
    ours = [m for m in loaded if m.startswith("pyrunc")]
    assert ours == ["pyrunc", "pyrunc._docker", "pyrunc._fs", "pyrunc._jsonio"]
    assert [m for m in loaded if m in HEAVY] == []


_PARTS = ["", "/", "//", "///", "a", "b", ".", "..", "a/", "./", "../"]
_PATHS = sorted({"".join(p) for n in range(4) for p in itertools.product(_PARTS, repeat=n)})


@pytest.mark.parametrize("name", ["dirname", "basename"])
def test_path_functions_answer_as_os_path(name: str) -> None:
    ours, theirs = getattr(_fs, name), getattr(os.path, name)
    assert [p for p in _PATHS if ours(p) != theirs(p)] == []


def test_is_clean_absolute_is_isabs_and_normalized() -> None:
    wrong = [p for p in _PATHS if _fs.is_clean_absolute(p) != (os.path.isabs(p) and os.path.normpath(p) == p)]
    assert wrong == []


def test_exists_and_isdir_answer_as_os_path(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    (tmp_path / "dir").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "dir")
    (tmp_path / "dangling").symlink_to(tmp_path / "nothing")
    for name in ("file", "dir", "link", "dangling", "nothing", "file/below"):
        path = str(tmp_path / name)
        assert (_fs.exists(path), _fs.isdir(path)) == (os.path.exists(path), os.path.isdir(path)), name
    assert not _fs.exists("a\0b") and not _fs.isdir("a\0b")


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
container = pyrunc.Container.create(
    "preload-" + uuid.uuid4().hex[:8], str(bundle), root=base + "/root",
    console_socket=base + "/console.sock" if terminal else None,
)
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
    from pyrunc.testing import make_busybox_bundle

    bundle = make_busybox_bundle(tmp_path / "bundle", ["sleep", "10"])
    container = pyrunc.Container.create("managed", str(bundle), root=str(tmp_path / "root"))
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
