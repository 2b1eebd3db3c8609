"""The Engine API versions this daemon speaks, and how a request's ``/vX.Y`` prefix is checked."""

from __future__ import annotations

import re

from pyengine._errors import InvalidParameter

__all__ = ["API_VERSION", "MIN_API_VERSION", "check_version", "parse_version"]

API_VERSION = "1.44"
MIN_API_VERSION = "1.24"

_VERSION = re.compile(r"v?([0-9]+)\.([0-9]+)")


def parse_version(text: str) -> tuple[int, int]:
    match = _VERSION.fullmatch(text)
    if match is None:
        raise InvalidParameter(f"invalid API version {text!r}: expected vMAJOR.MINOR, as v1.44")
    return int(match.group(1)), int(match.group(2))


def check_version(text: str) -> str:
    """The version a request names (``v1.41`` or ``1.41``), refused as dockerd refuses it when it is
    outside the range this daemon serves; returned without the ``v``."""
    version = parse_version(text)
    number = text.removeprefix("v")
    if version > parse_version(API_VERSION):
        raise InvalidParameter(
            f"client version {number} is too new. Maximum supported API version is {API_VERSION}"
        )
    if version < parse_version(MIN_API_VERSION):
        raise InvalidParameter(
            f"client version {number} is too old. Minimum supported API version is "
            f"{MIN_API_VERSION}, please upgrade your client to a newer version"
        )
    return number
