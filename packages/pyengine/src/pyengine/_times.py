"""Times as the Engine API writes them: RFC 3339 in UTC, with ``Z``."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["rfc3339", "unix"]


def rfc3339(moment: datetime | None = None) -> str:
    """``moment`` (default: now) as ``2026-12-07T20:00:00.123456Z``."""
    return (moment or datetime.now(UTC)).astimezone(UTC).isoformat().replace("+00:00", "Z")


def unix(stamp: str) -> int:
    """Seconds since the epoch of an RFC 3339 time (0 for an empty one)."""
    return int(datetime.fromisoformat(stamp).timestamp()) if stamp else 0
