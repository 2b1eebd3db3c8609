"""The pyengine distribution installs, imports, and pins the layer below it."""

from __future__ import annotations

import re
from importlib import metadata

import pytest

import pyengine


def test_imports_with_a_docstring() -> None:
    assert pyengine.__doc__
    assert "pycontainerd" in pyengine.__doc__


def test_version_matches_the_distribution() -> None:
    assert pyengine.__version__ == metadata.version("pyengine") == "0.1.0"


def test_unknown_attribute_raises() -> None:
    with pytest.raises(AttributeError, match="no_such_attribute"):
        _ = pyengine.no_such_attribute


def test_depends_on_the_layer_below_pinned_to_0_1_and_its_libraries() -> None:
    requirements = metadata.requires("pyengine") or []
    pinned: dict[str, set[str]] = {}
    for requirement in requirements:
        match = re.fullmatch(r"\s*([A-Za-z0-9_.-]+)\s*([^;]*?)\s*(;.*)?", requirement)
        assert match, requirement
        pinned[match.group(1).lower()] = {part.strip() for part in match.group(2).split(",")}
    assert pinned == {
        "pycontainerd": {">=0.1", "<0.2"},
        "aiohttp": {">=3.9", "<4"},
        "attrs": {">=23.1"},
        "cffi": {">=1.15"},
        "dnspython": {">=2.6"},
        "pyroute2": {">=0.9", "<0.10"},
    }
