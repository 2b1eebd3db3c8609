"""Fixtures for pycontainerd's tests (run against the installed packages, as root): the session
fails if they leave mounts, cgroups, network namespaces or links, or processes on the host."""

from __future__ import annotations

from pyrunc.pytest_plugin import host_is_left_clean

__all__ = ["host_is_left_clean"]  # the fixture for the tests here
