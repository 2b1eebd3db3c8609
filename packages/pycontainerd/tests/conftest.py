"""Fixtures for pycontainerd's tests (run against the installed packages, as root): the session
fails if they leave mounts, cgroups, network namespaces or links, or processes on the host."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pyrunc.pytest_plugin import host_is_left_clean
from pyrunc.testing import register_module

# The repository's helpers for peers (docker-registry) and offline images, imported by these names.
REPO_ROOT = Path(__file__).resolve().parents[3]
register_module("pyrunc_acceptance_peers", REPO_ROOT / "tests" / "peers.py")
register_module("pyrunc_acceptance_oci_images", REPO_ROOT / "tests" / "oci_images.py")
import pyrunc_acceptance_oci_images as oci_images  # noqa: E402
import pyrunc_acceptance_peers as peers  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["host_is_left_clean", "layout", "registry"]  # fixtures for the tests here


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A private docker-registry on 127.0.0.1 for the module, stopped by pid afterwards."""
    with peers.registry(tmp_path_factory.mktemp("registry")) as running:
        yield running


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """busybox as an OCI image layout, built offline."""
    return oci_images.write_busybox_layout(tmp_path_factory.mktemp("layout") / "busybox")
