"""Fixtures for pyrunc's tests (run against the installed package, as root).

The session fails if the tests leave anything behind on the host: mounts, cgroups under this
process's own cgroups, network namespaces or links, or child processes. The snapshot and the
comparison live in :class:`pyrunc.testing.HostSnapshot`, shared with the top-level conftest.
"""

from __future__ import annotations

from pathlib import Path

from pyrunc.pytest_plugin import busybox_bundle, host_is_left_clean, pyrunc_bin, pyrunc_root
from pyrunc.testing import register_module

# The container tests share _helpers.py; they import it under this name. The specifications they
# validate against are the repository's (spec/), read through tests/specs.py.
register_module("pyrunc_tests_helpers", Path(__file__).with_name("_helpers.py"))
register_module("pyrunc_acceptance_specs", Path(__file__).resolve().parents[3] / "tests" / "specs.py")

__all__ = ["busybox_bundle", "host_is_left_clean", "pyrunc_bin", "pyrunc_root"]  # fixtures for the tests here
