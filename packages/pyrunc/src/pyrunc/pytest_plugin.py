"""pytest fixtures for suites that run containers on a real host: import them into a conftest.

    from pyrunc.pytest_plugin import busybox_bundle, host_is_left_clean, pyrunc_bin, pyrunc_root

``host_is_left_clean`` (session, autouse) fails the session, at its end, listing what the tests left
on the host: mounts, cgroups under this process's own cgroups, network namespaces and links, child
processes (see :class:`pyrunc.testing.HostSnapshot`). Only test suites import this module; pytest
is not a dependency of pyrunc.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pyrunc.testing import HostSnapshot, make_busybox_bundle

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["busybox_bundle", "host_is_left_clean", "pyrunc_bin", "pyrunc_root"]


@pytest.fixture(scope="session", autouse=True)
def host_is_left_clean() -> Iterator[None]:
    """Fail the session, at its end, listing whatever the tests left on the host."""
    before = HostSnapshot.take()
    yield
    leaks = HostSnapshot.wait_until_clean(before)
    if leaks:
        pytest.fail("the tests left these behind on the host:\n  " + "\n  ".join(leaks), pytrace=False)


@pytest.fixture
def busybox_bundle(tmp_path: Path) -> Path:
    """A fresh busybox OCI bundle whose process runs ``true``."""
    return make_busybox_bundle(tmp_path / "bundle", ["true"])


@pytest.fixture
def pyrunc_root(tmp_path: Path) -> Path:
    """A private state directory to pass as ``pyrunc --root``."""
    root = tmp_path / "pyrunc-root"
    root.mkdir(mode=0o700)
    return root


@pytest.fixture(scope="session")
def pyrunc_bin() -> Path:
    """The installed ``pyrunc`` command, next to this interpreter; fails (never skips) if absent."""
    path = Path(sys.executable).parent / "pyrunc"
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(
            f"the pyrunc command is not installed at {path}: install the package into this "
            "environment (pip install ./packages/pyrunc) or run the suite with scripts/test",
            pytrace=False,
        )
    return path
