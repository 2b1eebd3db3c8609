"""Sessions for the whole stack; `scripts/test` calls these after `scripts/bootstrap`.

    nox -s lint typecheck tests     # what scripts/test (and so CI) runs
    nox -s tests -- -k bundle       # arguments after -- go to pytest
    nox -s bench -- --iterations 50 # pyrunc against runc, alone and under the engines; pyctr against
                                    # ctr; pyengined against dockerd

The packages are installed with plain, non-editable pip, lowest layer first, so the tests exercise what
a user gets (pyrunc compiles its cffi extension at install time). Run as root: the tests create
containers.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_venv = "yes"  # local packages are rebuilt and reinstalled on every run anyway
nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.error_on_external_run = True

ROOT = Path(__file__).resolve().parent
LAYERS = ("pyrunc", "pycontainerd", "pyengine", "pycli")  # lowest first
PACKAGES = [f"./packages/{name}" for name in LAYERS]
SOURCES = [f"packages/{name}/src/{name}" for name in LAYERS]
TEST_PATHS = [*(f"packages/{name}/tests" for name in LAYERS), "tests"]
TEST_DEPS = [
    "pytest>=8",
    "jsonschema>=4.18",
    "referencing>=0.30",
    "cryptography>=41",
    "hypothesis>=6.100",
    "docker>=7",
    "testcontainers>=4.10",
    "pyyaml>=6",
]  # cryptography: a test token server and the engine's TLS certificates; hypothesis: property-based
# tests of hostile input, and the engine's schema-driven fuzz; docker: docker-py, the Python client
# the engine's tests drive it with; testcontainers: a tool built on docker-py that people point at an
# engine (its generic container and log wait); pyyaml: reads the vendored Engine API swagger, which
# the engine's answers are checked against
RUFF = "ruff==0.17.6"
MYPY = ["mypy==2.4.1", "types-cffi", "pytest>=8"]  # cffi stubs (build script); pytest (pyrunc.pytest_plugin)


def _install_packages(session: nox.Session, *packages: str) -> None:
    # setuptools copies sources into packages/*/build/ and never prunes it: a module deleted from
    # src/ would otherwise still ship in the wheel.
    for package in packages:
        shutil.rmtree(ROOT / package / "build", ignore_errors=True)
    session.install(*packages)


@nox.session
def tests(session: nox.Session) -> None:
    """Install the four packages (non-editable) and run every package's tests and tests/."""
    _install_packages(session, *PACKAGES)
    session.install(*TEST_DEPS)
    # No test collected is pytest's exit code 5, and a failure here like any other non-zero code.
    # --durations: the slowest tests, on every run, against the suite's budget (20 min on 2 CPUs).
    session.run("pytest", "--durations=15", *(session.posargs or TEST_PATHS), success_codes=[0])


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check over the repository."""
    session.install(RUFF)
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the four packages' sources (installed first, so their dependencies resolve)."""
    _install_packages(session, *PACKAGES)
    session.install(*MYPY)
    # No posargs here: scripts/test forwards its arguments to every session, and they are pytest's.
    session.run(
        "mypy",
        "--strict",
        *SOURCES,
        "scripts/demo.py",
        "scripts/registry.py",
        "benchmarks/bench_pyrunc.py",
        "benchmarks/bench_engines.py",
        "benchmarks/bench_net.py",
        "benchmarks/bench_pycontainerd.py",
        "benchmarks/bench_tasks.py",
        "benchmarks/bench_pyengine.py",
    )


@nox.session
def bench(session: nox.Session) -> None:
    """Time pyrunc against runc: the bare verbs (bench_pyrunc.py), then under private engines, docker
    run --rm and ctr run --rm (bench_engines.py). Both take --iterations, --runc, --pyrunc, --only.
    Then pyctr against ctr on images (bench_pycontainerd.py: pull from a loopback registry, import) and
    on tasks (bench_tasks.py: run --rm, 50 detached starts, memory per running container). Last,
    pyengined against a private dockerd with the docker CLI as the client (bench_pyengine.py: run --rm
    without a network, on the default bridge, a user network and with -p, run -d, exec, ps with 20
    running, logs of 100k lines, HTTP through a published port, the embedded DNS, and the Pss of each
    stack with 50 running).
    Arguments after -- go to every script: bench_pyrunc.py and bench_engines.py refuse the others'."""
    _install_packages(session, *PACKAGES)
    session.run("python", "benchmarks/bench_pyrunc.py", *session.posargs)
    # bench_engines.py and bench_pyengine.py start dockerd and containerd through tests/peers.py, which
    # imports pytest; the others build their images with the tests' helpers, which read the vendored
    # schemas (jsonschema).
    session.install(*TEST_DEPS)
    # On Ctrl-C, give it time to stop its daemons, containers and bridge (nox's default is 0.3 s
    # before SIGTERM and then SIGKILL).
    session.run(
        "python",
        "benchmarks/bench_engines.py",
        *session.posargs,
        interrupt_timeout=120,
        terminate_timeout=60,
    )
    for script in (
        "benchmarks/bench_pycontainerd.py",
        "benchmarks/bench_tasks.py",
        "benchmarks/bench_pyengine.py",
    ):
        session.run("python", script, *session.posargs, interrupt_timeout=120, terminate_timeout=60)
