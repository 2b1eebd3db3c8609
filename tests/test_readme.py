"""The READMEs work as written: their shell and Python examples, run in order as a reader runs them.

The repository's README promises that after its two set-up commands every other command and example
in it works as written, in order. :func:`test_the_readme_runs` holds it to that: the README's fenced
``sh`` and ``python`` blocks, less the set-up block (``scripts/test`` is what runs this test and
test_demo.py runs the demo), become one bash script with ``set -euo pipefail``, each Python block
fed to the active environment's ``python``. It runs as root in a scratch directory that stands for
the top of the clone: ``scripts`` there links to the repository's scripts, and ``.venv`` to this
test's environment, where the packages under test are installed. So that it touches nothing of
the machine's own, the test changes the README's text in these ways, and no other:

- ``127.0.0.1:5000`` becomes ``127.0.0.1:<a free port>`` (``scripts/registry`` starts its registry
  there);
- ``/var/lib/pycontainerd``, ``/run/pycontainerd`` and ``/run/pyrunc`` become directories in the
  scratch directory, and a command line that starts with ``pyctr`` gets those as ``--root`` and
  ``--state`` (the README uses pyctr's defaults);
- likewise ``/var/lib/pyengine`` and ``/run/pyengine`` (so ``/run/pyengine.sock`` too), and a
  command line that starts with ``pyengined`` gets them as ``--data-root``, ``--exec-root`` and
  ``-H``.

What the README prints is checked against what it says it prints (``print(...)  # TEXT``: an output
line starts with TEXT) and against what its commands are there to show. Afterwards, also when the
README fails, everything it started is undone: containers removed with pyctr and pyrunc, the
registry stopped with its script, the engine's containers removed, what is left of the script's
process group killed.

:func:`test_a_package_readme_runs` does the same for each package's README (its one example, in
Python), in the activated environment and, where the example pulls, with the registry its text
says to start.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
PACKAGES = ("pyrunc", "pycontainerd", "pyengine", "pycli")
SETUP = ["scripts/demo", "scripts/test"]
REGISTRY = "127.0.0.1:5000"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.M | re.S)


@dataclass(frozen=True)
class Block:
    language: str
    text: str


def blocks(readme: Path) -> list[Block]:
    """The fenced blocks, in order; a block in a language the test cannot run fails it."""
    found = [Block(language, text) for language, text in FENCE.findall(readme.read_text())]
    unknown = {block.language for block in found} - {"sh", "python", ""}  # "": diagrams
    assert not unknown, f"{readme}: the README test runs sh and python blocks only, not {unknown}"
    return found


def commands(block: Block) -> list[str]:
    """A shell block's command lines, without comments."""
    lines = (line.split(" #")[0].strip() for line in block.text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def expected_prints(block: Block) -> list[str]:
    """What a Python block says it prints: the comment after each ``print(...)``."""
    return re.findall(r"^\s*print\(.*\)  # (.+)$", block.text, re.M)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Scratch:
    """The scratch top of a clone, with the state directories the README's paths are moved to."""

    def __init__(self, directory: Path) -> None:
        self.top = directory / "clone"
        self.top.mkdir()
        (self.top / "scripts").symlink_to(REPO / "scripts")
        (self.top / ".venv").symlink_to(sys.prefix)
        self.root, self.state, self.pyrunc_root = (directory / name for name in ("root", "state", "pyrunc"))
        self.engine_data = directory / "engine-data"
        # Short: the unix sockets of its tasks' directories must fit in 108 bytes.
        self.engine_run = Path(tempfile.mkdtemp(prefix="readme-", dir="/tmp"))
        self.registry = f"127.0.0.1:{_free_port()}"
        self.bin = Path(sys.prefix) / "bin"
        if not (self.bin / "activate").is_file():
            pytest.fail(
                f"{sys.prefix} is not a virtual environment: run the tests through nox", pytrace=False
            )

    def adapt(self, text: str) -> str:
        text = text.replace(REGISTRY, self.registry)
        for path, scratch in (
            ("/var/lib/pycontainerd", self.root),
            ("/run/pycontainerd", self.state),
            ("/run/pyrunc", self.pyrunc_root),
            ("/var/lib/pyengine", self.engine_data),
            ("/run/pyengine", self.engine_run),  # and /run/pyengine.sock: beside it
        ):
            text = text.replace(path, str(scratch))
        return text

    def script(self, readme_blocks: list[Block]) -> str:
        lines = ["set -euo pipefail", "PS4='+ README: '", "set -x"]
        for number, block in enumerate(readme_blocks):
            if block.language == "sh":
                for line in commands(block):
                    assert "pyctr" not in line or line.startswith("pyctr "), (
                        f"{line!r}: the README test gives --root and --state to a pyctr at the start of a"
                        " line only"
                    )
                pyctr = f"pyctr --root {self.root} --state {self.state} "
                pyengined = (
                    f"pyengined --data-root {self.engine_data} --exec-root {self.engine_run}"
                    f" -H unix://{self.engine_run}.sock "
                )
                text = re.sub(r"^pyctr ", pyctr, self.adapt(block.text), flags=re.M)
                lines.append(re.sub(r"^pyengined ", pyengined, text, flags=re.M))
            elif block.language == "python":
                end = f"README_PYTHON_{number}"
                lines += [f"python - <<'{end}'", self.adapt(block.text).rstrip("\n"), end]
        return "\n".join(lines) + "\n"

    def run(self, script: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
        """Run ``script`` in the scratch top, in a process group of its own; then undo what it left,
        and say what that was."""
        path, out, err = (self.top.parent / name for name in ("readme.sh", "stdout", "stderr"))
        path.write_text(script)
        env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "DOCKER_HOST")}
        env["DOCKER_CONFIG"] = str(self.top.parent / "docker-config")  # not the machine's ~/.docker
        # Output to files, not pipes: a background command the script leaves running would hold a
        # pipe open, and only the script's own end is waited for.
        with out.open("w") as stdout, err.open("w") as stderr:
            process = subprocess.Popen(
                ["bash", str(path)],
                cwd=self.top,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                start_new_session=True,
            )
        try:
            code = process.wait(timeout=300)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            code = -1
            with err.open("a") as stderr:
                stderr.write("\n(the README test killed the script after 300 s)\n")
        finally:
            leftovers = self.clean_up(process.pid)
        done = subprocess.CompletedProcess(process.args, code, out.read_text(), err.read_text())
        return done, leftovers

    def clean_up(self, group: int) -> list[str]:
        """Remove what the script left: containers, the registry, processes of its group."""
        leftovers = []
        if self.root.exists():
            pyctr = [str(self.bin / "pyctr"), "--root", str(self.root), "--state", str(self.state)]
            for container in _quiet([*pyctr, "containers", "ls", "--quiet"]).stdout.split():
                leftovers.append(f"pycontainerd container {container}")
                _quiet([*pyctr, "containers", "rm", "--force", container])
        if self.pyrunc_root.exists():
            for container in self.pyrunc_root.iterdir():
                if container.is_dir() and not container.name.startswith("@"):  # @seccomp: a cache
                    leftovers.append(f"pyrunc container {container.name}")
                    pyrunc = [str(self.bin / "pyrunc"), "--root", str(self.pyrunc_root)]
                    _quiet([*pyrunc, "delete", "--force", container.name])
        if (self.engine_data / "containerd").exists():
            engine = [
                str(self.bin / "pyctr"), "--root", str(self.engine_data / "containerd"),
                "--state", str(self.engine_run / "containerd"), "--namespace", "moby",
            ]  # fmt: skip
            for container in _quiet([*engine, "containers", "ls", "--quiet"]).stdout.split():
                leftovers.append(f"engine container {container}")
                _quiet([*engine, "containers", "rm", "--force", container])
        stop = _quiet([str(REPO / "scripts" / "registry"), "stop", self.registry], VIRTUAL_ENV=sys.prefix)
        if "stopped" in stop.stdout:
            leftovers.append(f"registry {self.registry}")
        # A background command the script did not end, or ended only just now (SIGTERM: a moment).
        deadline = time.monotonic() + 5
        while (members := _live_members(group)) and time.monotonic() < deadline:
            time.sleep(0.05)
        for pid, command in members.items():
            leftovers.append(f"process {pid} ({command})")
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        Path(f"{self.engine_run}.sock").unlink(missing_ok=True)
        shutil.rmtree(self.engine_run)  # nothing is mounted there once the containers are gone
        return leftovers


def _live_members(group: int) -> dict[int, str]:
    """The processes of process group ``group`` that have not exited (zombies are not counted)."""
    members = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        command, _, rest = stat.partition(" (")[2].rpartition(") ")
        state, _ppid, pgrp = rest.split()[:3]
        if int(pgrp) == group and state != "Z":
            members[int(entry.name)] = command
    return members


def _quiet(argv: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=60, check=False, env={**os.environ, **env}
    )


def assert_in_order(output: str, patterns: list[str]) -> None:
    """Each pattern matches a line of ``output``, after the line the one before it matched."""
    position = 0
    for pattern in patterns:
        found = re.compile(pattern, re.M).search(output, position)
        assert found, f"not found after what came before: {pattern!r}\n--- output:\n{output}"
        position = found.end()


def assert_ran(done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == 0, f"--- output:\n{done.stdout}\n--- trace and errors:\n{done.stderr[-6000:]}"


def test_the_setup_is_two_commands_run_as_root() -> None:
    setup = [block for block in blocks(README) if block.language == "sh" and "scripts/test" in block.text]
    assert [commands(block) for block in setup] == [SETUP]
    for readme in (README, *(REPO / "packages" / name / "README.md" for name in PACKAGES)):
        text = readme.read_text()
        code = [line for block in blocks(readme) for line in block.text.splitlines()]
        code += re.findall(r"`([^`\n]+)`", FENCE.sub("", text))  # inline code
        assert not [c for c in code if re.match(r"\s*sudo\s+\S", c)], f"{readme}: a fresh Debian has no sudo"


def test_the_readme_runs(tmp_path: Path) -> None:
    scratch = Scratch(tmp_path)
    readme = [block for block in blocks(README) if block.language and commands(block) != SETUP]
    done, leftovers = scratch.run(scratch.script(readme))
    assert_ran(done)
    registry = re.escape(scratch.registry)
    python = [block for block in readme if block.language == "python"]
    engine = ["DockerClient" in block.text for block in python].index(True)  # docker-py's example
    prints = [[rf"^{re.escape(scratch.adapt(text))}" for text in expected_prints(block)] for block in python]
    assert_in_order(
        done.stdout,
        [
            rf"^registry: {registry} serves {registry}/busybox:latest ",
            rf"^{registry}/busybox:latest +application/vnd\.oci\.image\.manifest\.v1\+json ",  # images ls
            r"^hello$",  # run --rm
            r"^web +\d+ +RUNNING +-$",  # tasks ls
            r"^ +1 root +sh -c while true; do date; sleep 1; done$",  # tasks exec ... ps
            *(pattern for block in prints[:engine] for pattern in block),
            r"^hello from the engine$",  # docker run --rm through pyengined
            r"^ +\d+ +sh$",  # docker exec ticker ps
            *(pattern for block in prints[engine:] for pattern in block),
            rf"^registry: {registry} stopped$",
        ],
    )
    # The events printed in the background (the first task's may come before the printer is ready):
    # web's end, and the task of the Python example, named hello too.
    assert re.search(r' /tasks/exit \{.*"id": "hello", .*"status": 0\}$', done.stdout, re.M), done.stdout
    assert re.search(r' /tasks/exit \{.*"id": "web", .*"proc": "init", "status": 137\}$', done.stdout, re.M)
    # The README undoes what it does: only the exported archive stays, where it was written.
    assert leftovers == []
    assert sorted(p.name for p in scratch.top.iterdir()) == [".venv", "busybox.tar", "scripts"]


@pytest.mark.parametrize("package", PACKAGES)
def test_a_package_readme_runs(package: str, tmp_path: Path) -> None:
    scratch = Scratch(tmp_path)
    readme = blocks(REPO / "packages" / package / "README.md")
    examples = [block for block in readme if block.language]
    assert [block.language for block in examples] == ["python"], "one example, in Python"
    setup = [Block("sh", ". .venv/bin/activate\n")]  # where the package is installed
    if REGISTRY in examples[0].text:  # its text says to start one first, and how
        setup.append(Block("sh", f"scripts/registry start {REGISTRY}\n"))
        examples.append(Block("sh", f"scripts/registry stop {REGISTRY}\n"))
    done, leftovers = scratch.run(scratch.script([*setup, *examples]))
    assert_ran(done)
    expected = [text for block in examples for text in expected_prints(block)]
    assert expected, "the example says what it prints"
    assert_in_order(done.stdout, [rf"^{re.escape(text)}" for text in expected])
    assert leftovers == []
