"""The monitor's wire format on ``DIR/monitor.sock``: frames, requests and the error type.

Every message either way is a frame: an 8-byte header (kind, three zero bytes, payload length as a
big-endian uint32), then the payload. The kinds match ``monitor.h``:

===== =========== ========================================================================
kind  direction   payload
===== =========== ========================================================================
0     to monitor  stdin data of the attached process; an empty payload closes its stdin
1     from        output of the process: its stdout, or all a terminal shows
2     from        output of the process: its stderr (with a terminal: the runtime's only)
3     from        the exit record, JSON (last frame of an attach stream, then the close)
4     from        the reply to a request: ``ok[ DETAIL]`` or ``error MESSAGE``
5     to monitor  a request: its fields, each ending in a NUL byte
===== =========== ========================================================================

Requests (fields separated by NUL): ``status``; ``attach PROC STDIN``; ``wait PROC``; ``watch
PROC``; ``resize PROC ROWS COLS``; ``close_stdin PROC``; ``exec PROC TTY STDIN ATTACH ARGV...``
(flags are ``0`` or ``1``). A connection takes one request at a time. After a successful ``attach``
(or ``exec`` with ATTACH) it is an attach stream: output frames, then the exit frame, then the
monitor closes it; the client sends only stdin frames on it. After ``wait`` only the exit frame
comes (at once if the process is recorded already), and after ``watch`` empty output frames (one
whenever output reached the log and none was pending on the connection) before it: a waiter and a
log follower sleep on the socket rather than poll the files.
"""

from __future__ import annotations

import struct

from pycontainerd._errors import MonitorError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import BinaryIO

__all__ = [
    "FRAME_EXIT",
    "FRAME_REPLY",
    "FRAME_REQUEST",
    "FRAME_STDERR",
    "FRAME_STDIN",
    "FRAME_STDOUT",
    "HEADER",
    "MonitorError",
    "encode_frame",
    "encode_request",
    "read_frame",
]

FRAME_STDIN = 0
FRAME_STDOUT = 1
FRAME_STDERR = 2
FRAME_EXIT = 3
FRAME_REPLY = 4
FRAME_REQUEST = 5

HEADER = struct.Struct(">B3xI")


def encode_frame(kind: int, payload: bytes) -> bytes:
    return HEADER.pack(kind, len(payload)) + payload


def encode_request(*fields: str) -> bytes:
    for field in fields:
        if "\0" in field:
            raise MonitorError(f"a request field cannot hold a NUL byte: {field!r}")
    return encode_frame(FRAME_REQUEST, b"".join(field.encode() + b"\0" for field in fields))


def read_frame(stream: BinaryIO) -> tuple[int, bytes] | None:
    """The next frame of ``stream``, or None at its end (a partial frame counts as the end)."""
    header = stream.read(HEADER.size)
    if len(header) < HEADER.size:
        return None
    kind, length = HEADER.unpack(header)
    payload = stream.read(length) if length else b""
    if len(payload) < length:
        return None
    return kind, payload
