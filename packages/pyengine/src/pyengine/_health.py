"""Health checks: Config.Healthcheck (or the image's), probed by exec in the running container,
reported in ``State.Health`` and told as ``health_status`` events, as dockerd does.

A probe's exit code 0 is healthy; any other, or running past the timeout, is a failure; after
``Retries`` failures in a row the container is unhealthy. Failures during the start period do not
count until a probe has succeeded; probes then run every ``StartInterval`` instead of every
``Interval``. The last five results are kept with their output (its first 4 KiB)."""

from __future__ import annotations

import contextlib
import secrets
import signal
import threading
from typing import Any

import attrs

import pycontainerd
from pycontainerd import Healthcheck
from pyengine._errors import InvalidParameter
from pyengine._times import rfc3339

__all__ = ["HealthConfig", "merged_healthcheck", "probe", "record_result"]

_SECOND = 1_000_000_000
#: dockerd's defaults, and the least it takes for a duration that is set.
_DEFAULT_INTERVAL = 30 * _SECOND
_DEFAULT_TIMEOUT = 30 * _SECOND
_DEFAULT_START_INTERVAL = 5 * _SECOND
_DEFAULT_RETRIES = 3
_MIN_DURATION = _SECOND // 1000
_MAX_OUTPUT = 4096
_KEPT_RESULTS = 5
#: The exit code dockerd records for a probe that could not run, and for one that timed out.
_PROBE_ERROR = -1


def merged_healthcheck(given: object, image: Healthcheck | None) -> dict[str, Any] | None:
    """The container's Healthcheck as dockerd merges it at create: what the request set, the
    image's for what it left unset (a test, or a zero duration); None for none at all."""
    if given is not None and not isinstance(given, dict):
        raise InvalidParameter(f"Config.Healthcheck: not a JSON object: {given!r}")
    merged: dict[str, Any] = dict(given or {})
    if image is not None:
        if not merged.get("Test"):
            merged["Test"] = list(image.test)
        for key, value in (
            ("Interval", image.interval),
            ("Timeout", image.timeout),
            ("StartPeriod", image.start_period),
            ("Retries", image.retries),
        ):
            if not merged.get(key) and value:
                merged[key] = value
    if not merged.get("Test"):
        return None
    _check(merged)
    return merged


def _check(healthcheck: dict[str, Any]) -> None:
    test = healthcheck["Test"]
    if not isinstance(test, list) or not all(isinstance(part, str) for part in test):
        raise InvalidParameter(f"Config.Healthcheck.Test: a list of strings, not {test!r}")
    if test[0] not in ("NONE", "CMD", "CMD-SHELL"):
        raise InvalidParameter(f"Config.Healthcheck.Test: unknown type {test[0]!r} (NONE, CMD or CMD-SHELL)")
    if test[0] != "NONE" and len(test) < 2:
        raise InvalidParameter(f"Config.Healthcheck.Test: {test[0]} without a command")
    for key in ("Interval", "Timeout", "StartPeriod", "StartInterval"):
        value = healthcheck.get(key) or 0
        if not isinstance(value, int) or value < 0:
            raise InvalidParameter(f"Config.Healthcheck.{key} can't be negative")
        if 0 < value < _MIN_DURATION:
            raise InvalidParameter(f"Config.Healthcheck.{key} in nanoseconds, at least 1ms: {value}")
    retries = healthcheck.get("Retries") or 0
    if not isinstance(retries, int) or retries < 0:
        raise InvalidParameter("Config.Healthcheck.Retries can't be negative")


@attrs.frozen
class HealthConfig:
    """A container's health check, its durations in seconds."""

    argv: list[str]
    interval: float
    timeout: float
    start_period: float
    start_interval: float
    retries: int

    @classmethod
    def of(cls, config: dict[str, Any]) -> HealthConfig | None:
        """The check of a container's Config; None without one (or with ``NONE``)."""
        healthcheck = config.get("Healthcheck") or {}
        test = healthcheck.get("Test") or []
        if not test or test[0] == "NONE":
            return None
        argv = ["/bin/sh", "-c", test[1]] if test[0] == "CMD-SHELL" else list(test[1:])
        return cls(
            argv=argv,
            interval=(healthcheck.get("Interval") or _DEFAULT_INTERVAL) / _SECOND,
            timeout=(healthcheck.get("Timeout") or _DEFAULT_TIMEOUT) / _SECOND,
            start_period=(healthcheck.get("StartPeriod") or 0) / _SECOND,
            start_interval=(healthcheck.get("StartInterval") or _DEFAULT_START_INTERVAL) / _SECOND,
            retries=healthcheck.get("Retries") or _DEFAULT_RETRIES,
        )


def probe(task: pycontainerd.Task, check: HealthConfig) -> dict[str, Any]:
    """Run one probe in ``task`` (blocking): its result as ``State.Health.Log`` holds it."""
    start = rfc3339()
    try:
        process = task.exec(f"health-{secrets.token_hex(6)}", check.argv, attach=True)
    except pycontainerd.PycontainerdError as exc:
        return {"Start": start, "End": rfc3339(), "ExitCode": _PROBE_ERROR, "Output": str(exc)}
    attachment = process.attachment
    assert attachment is not None
    timed_out = threading.Event()

    def expire() -> None:
        timed_out.set()
        process.kill(signal.SIGKILL)

    timer = threading.Timer(check.timeout, expire)
    timer.start()
    output = bytearray()
    try:
        with attachment:
            for _, data in attachment.frames():
                output += data[: _MAX_OUTPUT - len(output)]
    except pycontainerd.PycontainerdError as exc:
        output += f"\n{exc}".encode()
    finally:
        timer.cancel()
    with contextlib.suppress(pycontainerd.PycontainerdError):
        process.delete()  # a container probed for ever keeps no trail of its probes
    if timed_out.is_set():
        return {
            "Start": start,
            "End": rfc3339(),
            "ExitCode": _PROBE_ERROR,
            "Output": f"Health check exceeded timeout ({check.timeout:g}s)",
        }
    code = attachment.exit.status if attachment.exit is not None else _PROBE_ERROR
    return {"Start": start, "End": rfc3339(), "ExitCode": code, "Output": output.decode(errors="replace")}


def record_result(
    health: dict[str, Any], result: dict[str, Any], check: HealthConfig, starting: bool
) -> bool:
    """Fold a probe's ``result`` into ``State.Health``; True when its Status changed. ``starting``:
    the start period has not ended."""
    before: str = health["Status"]
    health["Log"] = [*health["Log"], result][-_KEPT_RESULTS:]
    if result["ExitCode"] == 0:
        health["FailingStreak"] = 0
        health["Status"] = "healthy"
    elif not (starting and before == "starting"):  # a failure in the start period does not count
        health["FailingStreak"] += 1
        if health["FailingStreak"] >= check.retries:
            health["Status"] = "unhealthy"
    return bool(health["Status"] != before)


def fresh() -> dict[str, Any]:
    """``State.Health`` of a container that has just started."""
    return {"Status": "starting", "FailingStreak": 0, "Log": []}
