"""Fixtures for pyrunc's tests (run against the installed package, as root).

The session fails if the tests leave anything behind on the host: mounts, cgroups under this
process's own cgroups, network namespaces or links, or child processes. The snapshot and the
comparison live in :class:`pyrunc.testing.HostSnapshot`, shared with the top-level conftest.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pyrunc.testing import HostSnapshot, make_busybox_bundle, register_module

# The container tests share _helpers.py; they import it under this name.
register_module("pyrunc_tests_helpers", Path(__file__).with_name("_helpers.py"))

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture(scope="session", autouse=True)
def _host_is_left_clean() -> Iterator[None]:
    """Fail the session, at its end, listing whatever the tests left on the host."""
    before = HostSnapshot.take()
    yield
    leaks = HostSnapshot.wait_until_clean(before)
    if leaks:
        pytest.fail("pyrunc's tests left these behind on the host:\n  " + "\n  ".join(leaks), pytrace=False)


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
    """The installed ``pyrunc`` console script, next to this interpreter; fails if it is absent."""
    path = Path(sys.executable).parent / "pyrunc"
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(
            f"the pyrunc console script is not installed at {path}: install the package into this "
            "environment (pip install ./packages/pyrunc) or run the suite with scripts/test",
            pytrace=False,
        )
    return path
