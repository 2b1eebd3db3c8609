"""A test seam: the points of a container's or a task's creation where the creating process stops
itself (SIGSTOP) when ``PYCONTAINERD_TEST_STOP_AT`` names one, so that a test can SIGKILL it there.
Each point is a moment a real crash can hit (the tests also kill ``pyctr run`` after random delays).
"""

from __future__ import annotations

import os

from pycontainerd._stdlib import signal

__all__ = ["stop_point"]

_STOP_AT = os.environ.get("PYCONTAINERD_TEST_STOP_AT")


def stop_point(name: str) -> None:
    """Stop this process here if the test seam ``PYCONTAINERD_TEST_STOP_AT`` names ``name``."""
    if name == _STOP_AT:
        os.kill(os.getpid(), signal.SIGSTOP)
