"""The ``signal`` module as pyrunc uses it on the command line's paths: the C module ``_signal`` that it
wraps, typed as ``signal``.

``signal`` turns numbers into enums, and importing it imports ``enum``, which the lifecycle verbs
would pay for on every call (see ARCHITECTURE.md, start-up); ``_signal`` has the same names, numbers
and ``signal()``. This is the one module that makes that choice.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal as signal
else:
    import _signal as signal

__all__ = ["signal"]
