"""The standard library's C modules, for the modules that ``pyctr``'s path loads.

``signal``, ``threading`` and ``socket`` wrap ``_signal``, ``_thread`` and ``_socket`` in Python that
builds enums and loads further modules when imported, which every ``pyctr`` command (a fresh
interpreter) would pay for, and the modules on its path use none of it: they take the few names
they need from here. Everything off that path imports the public modules. What this earns, as
measured, and how the path is checked: ARCHITECTURE.md, "Start-up".
"""

from __future__ import annotations

from _thread import _local as local
from _thread import allocate_lock as Lock  # what threading.Lock is
from _thread import start_new_thread

TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal
    import socket
else:
    import _signal as signal
    import _socket as socket

__all__ = ["Lock", "local", "signal", "socket", "start_new_thread"]
