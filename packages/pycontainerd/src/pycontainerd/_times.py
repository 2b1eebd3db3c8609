"""Times as the monitors and the event log write them: RFC 3339, UTC, with a ``Z``."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["format_time", "parse_time"]


def format_time(moment: datetime) -> str:
    """``moment`` in UTC with microseconds: ``2026-01-02T03:04:05.123456Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> datetime:
    """An RFC 3339 UTC time with up to nanoseconds (``2026-01-02T03:04:05.123456789Z``); datetime keeps
    microseconds. ValueError for anything else."""
    if not text.endswith("Z") or len(text) < 20:
        raise ValueError(f"not an RFC 3339 UTC time: {text!r}")
    seconds, dot, fraction = text[:-1].partition(".")
    # fromisoformat rather than strptime, whose first call imports _strptime, calendar and locale,
    # which pyctr's path does not load; the checks keep it to exactly YYYY-MM-DDTHH:MM:SS.
    if (
        len(seconds) != 19
        or seconds[10] != "T"
        or not seconds[:4].isdigit()
        or (dot and not fraction.isdigit())
    ):
        raise ValueError(f"not an RFC 3339 UTC time: {text!r}")
    when = datetime.fromisoformat(seconds).replace(tzinfo=UTC)
    return when.replace(microsecond=int((fraction + "000000")[:6])) if fraction else when
