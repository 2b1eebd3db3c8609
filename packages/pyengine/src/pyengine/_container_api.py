"""The container endpoints, and the live side of each container: its attach requests waiting for
the start, its watcher, and the requests waiting for it to exit or go."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

from aiohttp import web

import pycontainerd
from pyengine._containers import ContainerRecord, Containers, NotModified
from pyengine._errors import InvalidParameter
from pyengine._http import Route, blocking, flag, json_response

__all__ = ["Live", "Supervisor", "add_routes"]


#: The content type of an attach stream and of logs without a terminal (API 1.42+).
_MULTIPLEXED = "application/vnd.docker.multiplexed-stream"


def frame(stream: int, data: bytes) -> bytes:
    """Docker's stdcopy frame: the stream (1 stdout, 2 stderr), three zeros, the length, the data."""
    return bytes((stream, 0, 0, 0)) + len(data).to_bytes(4, "big") + data


class Live:
    """What waits on one container in this daemon's life."""

    def __init__(self) -> None:
        self.attaching: list[asyncio.Future[pycontainerd.Attachment]] = []
        self.exited: list[asyncio.Future[int]] = []
        self.removed: list[asyncio.Future[int]] = []


class Supervisor:
    """The asyncio side of the containers: each started container has a watcher, which records the
    exit, answers the waiters and removes an AutoRemove container."""

    def __init__(self, containers: Containers) -> None:
        self.containers = containers
        self.live: dict[str, Live] = {}
        self._watchers: set[asyncio.Task[None]] = set()
        self._closing = threading.Event()

    def of(self, container_id: str) -> Live:
        return self.live.setdefault(container_id, Live())

    def watch(self, record: ContainerRecord) -> None:
        watcher = asyncio.create_task(self._watch(record), name=f"watch {record.id[:12]}")
        self._watchers.add(watcher)
        watcher.add_done_callback(self._watchers.discard)

    async def _watch(self, record: ContainerRecord) -> None:
        state = await blocking(self.containers.wait_exit, record, self._closing)
        if state is None:
            return  # the daemon is shutting down; the container goes on
        live = self.of(record.id)
        for waiter in live.exited:
            if not waiter.done():
                waiter.set_result(state.exit_code)
        live.exited.clear()
        if record.auto_remove:
            await self.remove(record.id, force=True)

    async def remove(self, name: str, *, force: bool) -> None:
        record = await blocking(self.containers.get, name)
        await blocking(self.containers.remove, record.id, force)
        live = self.live.pop(record.id, Live())
        for waiter in live.removed:
            if not waiter.done():
                waiter.set_result(record.state.exit_code)

    def resume(self) -> None:
        """Watch again the containers a previous daemon left running (live restore)."""
        for record in self.containers.running_records():
            self.watch(record)

    async def stop_all(self) -> None:
        """Stop every running container, as a daemon without live restore does when it shuts down."""
        for record in await blocking(self.containers.records):
            with contextlib.suppress(NotModified):
                await blocking(self.containers.stop, record.id, None)

    async def close(self) -> None:
        """Let the watchers go (their blocking waits return within half a second), and end the
        requests still waiting on a container: their connections close with the daemon."""
        self._closing.set()
        await asyncio.gather(*self._watchers, return_exceptions=True)
        for live in self.live.values():
            waiters: list[asyncio.Future[Any]] = [*live.attaching, *live.exited, *live.removed]
            for waiter in waiters:
                waiter.cancel()


def add_routes(route: Route, supervisor: Callable[[web.Request], Supervisor]) -> None:
    """Route the container endpoints through ``route(method, path, handler)``."""

    async def create(request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            raise InvalidParameter("the request body is not JSON") from None
        if not isinstance(body, dict):
            raise InvalidParameter("the request body is not a JSON object")
        sup = supervisor(request)
        record, warnings = await blocking(sup.containers.create, body, request.query.get("name"))
        return json_response({"Id": record.id, "Warnings": warnings}, status=201)

    async def list_containers(request: web.Request) -> web.Response:
        sup = supervisor(request)
        if request.query.get("filters") not in (None, "", "{}"):
            raise InvalidParameter("filters on the container list are not supported by pyengine yet")
        records = await blocking(sup.containers.records, flag(request, "all"))
        limit = int(request.query.get("limit", "-1") or -1)
        if limit > 0:
            records = records[:limit]
        return json_response([r.summary() for r in records])

    async def inspect(request: web.Request) -> web.Response:
        sup = supervisor(request)
        record = await blocking(sup.containers.get, request.match_info["id"])
        return json_response(record.inspect())

    async def start(request: web.Request) -> web.Response:
        sup = supervisor(request)
        try:
            record, task = await blocking(sup.containers.prepare_start, request.match_info["id"])
        except NotModified:
            return web.Response(status=304)
        live = sup.of(record.id)
        waiting, live.attaching = live.attaching, []
        for waiter in waiting:  # attached before the process starts: nothing of its output is missed
            attachment = await blocking(task.attach)
            if waiter.done():
                attachment.close()
            else:
                waiter.set_result(attachment)
        await blocking(sup.containers.started, record, task)
        sup.watch(record)
        return web.Response(status=204)

    async def wait(request: web.Request) -> web.StreamResponse:
        sup = supervisor(request)
        record = await blocking(sup.containers.get, request.match_info["id"])
        condition = request.query.get("condition") or "not-running"  # the 20.10 CLI sends it empty
        live = sup.of(record.id)
        waiter: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        if condition == "removed":
            live.removed.append(waiter)
        elif condition == "next-exit" or (condition == "not-running" and record.state.status == "running"):
            live.exited.append(waiter)
        elif condition == "not-running":
            waiter.set_result(record.state.exit_code)
        else:
            raise InvalidParameter(f"invalid condition: {condition!r}")
        # The headers go now, the body at the exit: the docker CLI starts the container only once
        # its wait has been answered this far.
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        try:
            code = await waiter
        finally:  # also when the client has gone (the request is cancelled then)
            for waiters in (live.exited, live.removed):
                if waiter in waiters:
                    waiters.remove(waiter)
        await response.write(json.dumps({"StatusCode": code, "Error": None}).encode() + b"\n")
        await response.write_eof()
        return response

    async def attach(request: web.Request) -> web.StreamResponse:
        if flag(request, "stdin"):
            raise InvalidParameter("attaching to stdin is not supported by pyengine yet")
        sup = supervisor(request)
        record = await blocking(sup.containers.get, request.match_info["id"])
        sup.containers.events.container(record, "attach")
        streams = _streams(request)
        upgrade = request.headers.get("Upgrade", "").lower() == "tcp"
        response = web.StreamResponse(
            status=101 if upgrade else 200,
            headers={
                "Content-Type": _MULTIPLEXED,
                **({"Connection": "Upgrade", "Upgrade": "tcp"} if upgrade else {}),
            },
        )
        response.force_close()
        if upgrade and request.transport is not None:
            _keep_open_on_eof(request.transport)
        await response.prepare(request)
        attachment: pycontainerd.Attachment | None = None
        if flag(request, "logs"):
            await _send(response, await blocking(sup.containers.logs, record.id, False), streams)
        if record.state.status != "running" and flag(request, "stream", True):
            # Until the next start (docker start -a attaches first, to created and exited alike).
            waiter: asyncio.Future[pycontainerd.Attachment] = asyncio.get_running_loop().create_future()
            sup.of(record.id).attaching.append(waiter)
            attachment = await waiter
        elif flag(request, "stream", True):
            task = await blocking(sup.containers.task, record)
            try:
                attachment = await blocking(task.attach)
            except pycontainerd.FailedPreconditionError:
                attachment = None  # it exited meanwhile
        if attachment is not None:
            try:
                await _send(response, attachment.frames(), streams)
            finally:
                attachment.close()
        await response.write_eof()
        return response

    async def logs(request: web.Request) -> web.StreamResponse:
        for name in ("timestamps", "since", "until"):
            if request.query.get(name) not in (None, "", "0", "false"):
                raise InvalidParameter(f"logs: {name} is not supported by pyengine yet")
        streams = _streams(request)
        if not streams:
            raise InvalidParameter("You must choose at least one stream")
        sup = supervisor(request)
        frames = await blocking(sup.containers.logs, request.match_info["id"], flag(request, "follow"))
        tail = request.query.get("tail", "all")
        if tail not in ("all", ""):
            if not tail.isdigit():
                raise InvalidParameter(f"logs: tail {tail!r} is not a number or all")
            frames = iter(await blocking(_tail, frames, int(tail)))
        response = web.StreamResponse(headers={"Content-Type": _MULTIPLEXED})
        await response.prepare(request)
        await _send(response, frames, streams)
        await response.write_eof()
        return response

    async def kill(request: web.Request) -> web.Response:
        sup = supervisor(request)
        await blocking(sup.containers.kill, request.match_info["id"], request.query.get("signal", "SIGKILL"))
        return web.Response(status=204)

    async def stop(request: web.Request) -> web.Response:
        sup = supervisor(request)
        timeout = request.query.get("t")
        try:
            await blocking(sup.containers.stop, request.match_info["id"], float(timeout) if timeout else None)
        except NotModified:
            return web.Response(status=304)
        except ValueError:
            raise InvalidParameter(f"stop: t={timeout!r} is not a number of seconds") from None
        return web.Response(status=204)

    async def remove(request: web.Request) -> web.Response:
        await supervisor(request).remove(request.match_info["id"], force=flag(request, "force"))
        return web.Response(status=204)

    route("POST", "/containers/create", create)
    route("GET", "/containers/json", list_containers)
    route("GET", "/containers/{id}/json", inspect)
    route("POST", "/containers/{id}/start", start)
    route("POST", "/containers/{id}/wait", wait)
    route("POST", "/containers/{id}/attach", attach)
    route("GET", "/containers/{id}/logs", logs)
    route("POST", "/containers/{id}/kill", kill)
    route("POST", "/containers/{id}/stop", stop)
    route("DELETE", "/containers/{id}", remove)


class _KeepOpenOnEof(asyncio.Protocol):
    """A connection's protocol as it was, except that the peer's EOF leaves the connection open."""

    def __init__(self, inner: asyncio.BaseProtocol) -> None:
        self.inner = inner

    def connection_lost(self, exc: Exception | None) -> None:
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def data_received(self, data: bytes) -> None:
        if isinstance(self.inner, asyncio.Protocol):
            self.inner.data_received(data)

    def eof_received(self) -> bool:
        return True


def _keep_open_on_eof(transport: asyncio.Transport) -> None:
    """The docker CLI half-closes a hijacked connection when it has no input to send; asyncio then
    closes the transport unless its protocol asks to stay open, which aiohttp's does not. The
    container's output still has to go out on it, so this connection's protocol asks."""
    transport.set_protocol(_KeepOpenOnEof(transport.get_protocol()))


def _streams(request: web.Request) -> set[int]:
    """The streams a request asks for: 1 with ``stdout``, 2 with ``stderr``."""
    return {number for number, name in ((1, "stdout"), (2, "stderr")) if flag(request, name)}


def _tail(frames: Iterator[tuple[int, bytes]], lines: int) -> list[tuple[int, bytes]]:
    """The frames holding the last ``lines`` lines (a frame is a write: it may hold several)."""
    split = [(stream, line) for stream, data in frames for line in data.splitlines(keepends=True)]
    return split[-lines:] if lines else []


async def _send(response: web.StreamResponse, frames: Iterator[tuple[int, bytes]], streams: set[int]) -> None:
    """Copy ``frames`` (a blocking iterator, read in a thread) to ``response`` as stdcopy frames."""
    loop = asyncio.get_running_loop()
    # Unbounded: the reading thread never waits on the event loop, so it ends with the stream
    # even when the client has gone.
    queue: asyncio.Queue[tuple[int, bytes] | BaseException | None] = asyncio.Queue()

    def pump() -> None:
        try:
            for item in frames:
                loop.call_soon_threadsafe(queue.put_nowait, item)
        except BaseException as exc:  # noqa: BLE001 -- handed to the event loop
            loop.call_soon_threadsafe(queue.put_nowait, exc)
        else:
            loop.call_soon_threadsafe(queue.put_nowait, None)

    threading.Thread(target=pump, name="pyengine-stream", daemon=True).start()
    while (item := await queue.get()) is not None:
        if isinstance(item, BaseException):
            if isinstance(item, pycontainerd.PycontainerdError):
                break  # the monitor went away: the stream ends, as the process's did
            raise item
        stream, data = item
        if stream in streams:
            await response.write(frame(stream, data))
