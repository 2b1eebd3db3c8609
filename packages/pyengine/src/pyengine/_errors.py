"""pyengine's errors: each maps to the HTTP status the Engine API gives it."""

from __future__ import annotations

__all__ = [
    "ApiError",
    "ConfigError",
    "Conflict",
    "DaemonError",
    "Forbidden",
    "InvalidParameter",
    "NotFound",
    "Unauthorized",
]


class DaemonError(Exception):
    """The daemon cannot start or go on: a data root in use, a socket it cannot bind."""


class ConfigError(DaemonError):
    """A flag or the configuration file is wrong; the message names the option."""


class ApiError(Exception):
    """An error an API request ends with: ``{"message": …}`` and the status."""

    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidParameter(ApiError):
    status = 400


class NotFound(ApiError):
    status = 404


class Forbidden(ApiError):
    status = 403


class Conflict(ApiError):
    status = 409


class Unauthorized(ApiError):
    status = 401
