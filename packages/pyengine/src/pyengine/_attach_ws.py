"""``GET /containers/{id}/attach/ws``: a container's streams over a websocket, as dockerd serves them.

Each write of the container's output is one message: the bytes as they are, stdout and stderr
alike (never multiplexed: a websocket has no room for stdcopy's headers), in binary messages (text
messages for API versions before 1.28, as dockerd sends them). What the client sends, in text or
binary messages, goes to the container's stdin when it asked for ``stdin`` and the container keeps
one open; the detach keys end the attachment and leave the container running. Before API 1.42 the
``stdin``, ``stdout`` and ``stderr`` parameters are ignored and all three are attached, as dockerd
does. ``logs`` sends the container's log first; ``stream`` (default false, as dockerd's) goes on with
its live output, waiting for its next start if it is not running.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable

from aiohttp import WSMsgType, web

import pycontainerd
from pyengine._container_api import Attaching, Supervisor, log_lines
from pyengine._containers import ContainerRecord
from pyengine._errors import InvalidParameter
from pyengine._http import Route, blocking, flag
from pyengine._streams import detach_keys, each_frame, scan_detach
from pyengine._versions import API_VERSION, parse_version

__all__ = ["add_routes"]

Send = Callable[[bytes], Awaitable[None]]


def add_routes(route: Route, supervisor: Callable[[web.Request], Supervisor]) -> None:
    """Route the websocket attach through ``route(method, path, handler)``."""

    async def attach_ws(request: web.Request) -> web.StreamResponse:
        sup = supervisor(request)
        record = await blocking(sup.containers.get, request.match_info["id"])
        keys = detach_keys(request.query.get("detachKeys"))
        version = parse_version(request.match_info.get("version") or API_VERSION)
        if version >= (1, 42):
            streams = {n for n, name in ((1, "stdout"), (2, "stderr")) if flag(request, name)}
            wants_stdin = flag(request, "stdin")
        else:
            streams, wants_stdin = {1, 2}, True
        # As for the hijacked attach: stdin only of a container that keeps one open.
        stdin = wants_stdin and bool(record.config.get("OpenStdin"))
        ws = web.WebSocketResponse()
        if not ws.can_prepare(request).ok:
            raise InvalidParameter("attach/ws: not a websocket handshake (Upgrade: websocket is missing)")
        await ws.prepare(request)
        sup.containers.events.container(record, "attach")
        if version >= (1, 28):
            send: Send = ws.send_bytes
        else:
            send = functools.partial(ws.send_frame, opcode=WSMsgType.TEXT)
        try:
            if flag(request, "logs"):
                batches = await blocking(sup.containers.logs, record.id)  # every run's, as attach's
                async for stream, data in each_frame(log_lines(batches)):
                    if stream in streams:
                        await send(data)
            if flag(request, "stream"):
                attachment = await _attach(sup, record, stdin)
                if attachment is not None:
                    try:
                        close_at_eof = bool(record.config.get("StdinOnce"))
                        await _carry(ws, send, attachment, streams, stdin, keys, close_at_eof)
                    finally:
                        attachment.close()
        except ConnectionResetError:
            pass  # the client went away
        await ws.close()
        return ws

    route("GET", "/containers/{id}/attach/ws", attach_ws)


async def _attach(sup: Supervisor, record: ContainerRecord, stdin: bool) -> pycontainerd.Attachment | None:
    """The container's streams now, or from its next start if it is not running; None if it
    exited meanwhile."""
    if record.state.status != "running":
        waiter = Attaching(stdin)
        sup.of(record.id).attaching.append(waiter)
        return await waiter.attachment
    task = await blocking(sup.containers.task, record)
    try:
        return await blocking(functools.partial(task.attach, stdin=stdin))
    except pycontainerd.FailedPreconditionError:
        return None


async def _carry(
    ws: web.WebSocketResponse,
    send: Send,
    attachment: pycontainerd.Attachment,
    streams: set[int],
    stdin: bool,
    keys: bytes,
    close_at_eof: bool,
) -> None:
    """The output to the client until the process exits, the client's messages to its stdin,
    until the client closes the websocket or types the detach keys."""

    async def output() -> None:
        async for stream, data in each_frame(attachment.frames()):
            if stream in streams:
                await send(data)

    async def input() -> None:
        matched = 0
        async for message in ws:
            if message.type is WSMsgType.TEXT:
                data = str(message.data).encode()
            elif message.type is WSMsgType.BINARY:
                data = bytes(message.data)
            else:
                continue
            if not stdin:
                continue  # not attached: what the client sends goes nowhere, as in dockerd
            detached = False
            if keys:
                data, detached, matched = scan_detach(keys, matched, data)
            if data:
                await blocking(attachment.write_stdin, data)
            if detached:
                return
        if stdin and close_at_eof:
            await blocking(attachment.close_stdin)

    tasks = (asyncio.create_task(output()), asyncio.create_task(input()))
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
