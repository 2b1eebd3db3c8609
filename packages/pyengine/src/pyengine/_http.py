"""Responses as dockerd writes them."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

__all__ = ["json_response"]


def json_response(data: Any, status: int = 200) -> web.Response:
    """``data`` as JSON, typed exactly ``application/json``: the docker CLI reads an error's
    message only from a body of that type, and a charset parameter hides it."""
    return web.Response(body=json.dumps(data).encode(), status=status, content_type="application/json")
