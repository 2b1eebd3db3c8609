"""Fixtures for the cross-layer tests under tests/ (run against the installed packages, as root).

The session fails if the tests leave anything behind on the host: mounts, cgroups under this
process's own cgroups, network namespaces or links, or child processes. The snapshot and the
comparison live in :class:`pyrunc.testing.HostSnapshot`, shared with every package's conftest.
"""

from __future__ import annotations

from pathlib import Path

from pyrunc.pytest_plugin import busybox_bundle, host_is_left_clean, pyrunc_bin, pyrunc_root
from pyrunc.testing import register_module

# Helper modules of the acceptance tests and the benchmark, imported by these names.
register_module("pyrunc_acceptance_oci_images", Path(__file__).with_name("oci_images.py"))
register_module("pyrunc_acceptance_peers", Path(__file__).with_name("peers.py"))
register_module("pyrunc_acceptance_specs", Path(__file__).with_name("specs.py"))

__all__ = ["busybox_bundle", "host_is_left_clean", "pyrunc_bin", "pyrunc_root"]  # fixtures for the tests here
