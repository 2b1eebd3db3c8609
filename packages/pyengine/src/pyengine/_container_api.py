"""The container endpoints, and the live side of each container: its attach requests waiting for
the start, its watcher, and the requests waiting for it to exit or go."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import threading
import time
from collections.abc import Callable, Coroutine, Iterable, Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

import pycontainerd
from pyengine._containers import ContainerRecord, Containers, NotModified
from pyengine._errors import InvalidParameter
from pyengine._health import HealthConfig
from pyengine._http import Route, blocking, flag, json_body, json_response, waiting
from pyengine._stats import StatsSampler
from pyengine._streams import MULTIPLEXED, RAW, Hijacked, detach_keys, send, stream_process

if TYPE_CHECKING:
    from pyengine._exec_api import Exec

__all__ = ["Live", "Supervisor", "add_routes"]

log = logging.getLogger("pyengine.containers")


#: Docker's restart backoff: 100 ms, doubled at each restart up to a minute, and back to 100 ms
#: after a run of 10 seconds or more.
_FIRST_BACKOFF = 0.1
_MAX_BACKOFF = 60.0
_STEADY_RUN = 10.0


class Attaching:
    """An attach request waiting for the container's next start, with stdin or without."""

    def __init__(self, stdin: bool) -> None:
        self.stdin = stdin
        #: Its stream once the process is made; None if no start is coming (the start failed,
        #: the container was removed, or the daemon is going): the request then ends.
        self.attachment: asyncio.Future[pycontainerd.Attachment | None] = (
            asyncio.get_running_loop().create_future()
        )

    def end(self) -> None:
        if not self.attachment.done():
            self.attachment.set_result(None)


class Live:
    """What waits on one container in this daemon's life."""

    def __init__(self) -> None:
        self.attaching: list[Attaching] = []
        self.exited: list[asyncio.Future[int]] = []
        self.removed: list[asyncio.Future[int]] = []
        #: The restart policy's pending start, and the delay before the next one (doubling).
        self.restart: asyncio.Task[None] | None = None
        self.backoff = _FIRST_BACKOFF
        #: Held by a start or a stop, so that a client's stop and the policy's start never cross.
        self.lock = asyncio.Lock()

    def cancel_restart(self) -> None:
        if self.restart is not None:
            self.restart.cancel()
            self.restart = None


class Supervisor:
    """The asyncio side of the containers: each started container has a watcher, which records the
    exit, answers the waiters and removes an AutoRemove container."""

    def __init__(self, containers: Containers) -> None:
        self.containers = containers
        self.live: dict[str, Live] = {}
        self.execs: dict[str, Exec] = {}
        self._watchers: set[asyncio.Task[None]] = set()
        self._closing = threading.Event()
        self._closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def of(self, container_id: str) -> Live:
        return self.live.setdefault(container_id, Live())

    def watch(self, record: ContainerRecord) -> None:
        self.spawn(self._watch(record), f"watch {record.id[:12]}")
        check = HealthConfig.of(record.config)
        if check is not None:
            self.spawn(self._check_health(record, check), f"health {record.id[:12]}")

    async def _check_health(self, record: ContainerRecord, check: HealthConfig) -> None:
        """Probe the container's health until its process exits (or the daemon closes)."""
        started = record.state.started_at
        begun = asyncio.get_running_loop().time()
        while True:
            starting = asyncio.get_running_loop().time() - begun < check.start_period
            pause = check.start_interval if starting else check.interval
            try:
                await asyncio.wait_for(asyncio.shield(self._closed), pause)
                return
            except TimeoutError:
                pass
            if record.state.status != "running" or record.state.started_at != started:
                return  # exited (and maybe started again, with a prober of its own)
            if not record.state.paused:
                await waiting(self.containers.probe_health, record, check, starting)

    def spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        """Run ``work`` in the background; :meth:`close` waits for it."""
        task = asyncio.create_task(work, name=name)
        self._watchers.add(task)
        task.add_done_callback(self._watchers.discard)

    async def wait_process(
        self, wait: Callable[[float], pycontainerd.ExitStatus]
    ) -> pycontainerd.ExitStatus | None:
        """``wait(timeout)``'s exit status, waited for in a thread of its own; None when the
        daemon closes first (the process goes on)."""

        def until_closing() -> pycontainerd.ExitStatus | None:
            while not self._closing.is_set():
                try:
                    return wait(0.5)
                except TimeoutError:
                    continue
            return None

        return await waiting(until_closing)

    async def _watch(self, record: ContainerRecord) -> None:
        state = await waiting(self.containers.wait_exit, record, self._closing)
        if state is None:
            return  # the daemon is shutting down; the container goes on
        live = self.of(record.id)
        for waiter in live.exited:
            if not waiter.done():
                waiter.set_result(state.exit_code)
        live.exited.clear()
        if record.auto_remove:  # as dockerd, with its anonymous volumes
            await self.remove(record.id, force=True, volumes=True)
        elif record.restarts_after(state.exit_code):
            self.restart_later(record)

    def restart_later(self, record: ContainerRecord) -> None:
        """Start the container again by its restart policy, after the backoff."""
        live = self.of(record.id)
        ran = (_parse_time(record.state.finished_at) - _parse_time(record.state.started_at)).total_seconds()
        if ran >= _STEADY_RUN:
            live.backoff = _FIRST_BACKOFF
        delay, live.backoff = live.backoff, min(live.backoff * 2, _MAX_BACKOFF)
        self.containers.restarting(record, True)
        live.cancel_restart()
        live.restart = asyncio.create_task(self._restart(record, delay), name=f"restart {record.id[:12]}")

    async def _restart(self, record: ContainerRecord, delay: float) -> None:
        await asyncio.sleep(delay)
        self.of(record.id).restart = None
        try:
            await self.start(record.id, by_policy=True)
        except Exception:  # logged; the container stays exited, as dockerd leaves it
            log.exception("restarting container %s by its restart policy failed", record.id[:12])
            await blocking(self.containers.restarting, record, False)

    async def start(self, name: str, *, by_policy: bool = False) -> bool:
        """Start the container; False if it is running already. The attach requests waiting for
        the start get their streams before its process runs: nothing of its output is missed."""
        record = await blocking(self.containers.get, name)
        live = self.of(record.id)
        try:
            async with live.lock:
                if by_policy and not record.state.restarting:
                    return False  # a client stopped it meanwhile
                return await self._start(record, live, by_policy)
        except Exception:
            if record.auto_remove:  # as dockerd: an AutoRemove container whose start failed goes
                await self.remove(record.id, force=True, volumes=True)
            raise

    async def _start(self, record: ContainerRecord, live: Live, by_policy: bool) -> bool:
        waiting, live.attaching = live.attaching, []
        given: list[pycontainerd.Attachment] = []
        try:
            try:
                record, task = await blocking(self.containers.prepare_start, record.id)
            except NotModified:
                live.attaching += waiting  # for its next start
                return False
            if not by_policy:  # a client's start: the policy's pending one is moot, its backoff anew
                live.cancel_restart()
                live.backoff = _FIRST_BACKOFF
            for waiter in waiting:
                attachment = await blocking(functools.partial(task.attach, stdin=waiter.stdin))
                if waiter.attachment.done():
                    attachment.close()
                else:
                    given.append(attachment)
                    waiter.attachment.set_result(attachment)
            await blocking(functools.partial(self.containers.started, record, task, by_policy=by_policy))
        except BaseException:
            # As dockerd: a failed start ends the attach requests waiting for it.
            for attachment in given:
                attachment.close()
            for waiter in waiting:
                waiter.end()
            raise
        self.watch(record)
        return True

    async def stop(self, name: str, timeout: float | None, sig: str | None = None) -> bool:
        """Stop the container as a client asks (its restart policy then leaves it stopped), with
        ``sig`` instead of its stop signal if given; False if it was not running."""
        record = await blocking(self.containers.get, name)
        live = self.of(record.id)
        live.cancel_restart()
        async with live.lock:
            try:
                await blocking(functools.partial(self.containers.stop, record.id, timeout, sig=sig))
            except NotModified:
                return False
            return True

    async def remove(self, name: str, *, force: bool, volumes: bool = False) -> None:
        record = await blocking(self.containers.get, name)
        await blocking(self.containers.remove, record.id, force, volumes)
        live = self.live.pop(record.id, Live())
        live.cancel_restart()
        for exec_id in [i for i, e in self.execs.items() if e.container_id == record.id]:
            del self.execs[exec_id]  # as dockerd: a container's execs go with it
        for attaching in live.attaching:  # their streams end with the container, as in dockerd
            attaching.end()
        for waiter in live.removed:
            if not waiter.done():
                waiter.set_result(record.state.exit_code)

    def resume(self) -> None:
        """Watch again the containers a previous daemon left running (live restore), and start
        those whose restart policy wants them running: they exited meanwhile, or were stopped
        with that daemon."""
        for record in self.containers.running_records():
            self.watch(record)
        for record in self.containers.records(all=True):
            if record.state.status == "running":
                continue
            # always: even after a client's stop, as dockerd starts them when it starts.
            policy = record.restart_policy[0]
            if policy == "always" or (policy == "unless-stopped" and not record.manually_stopped):
                self.restart_later(record)

    async def stop_all(self) -> None:
        """Stop every running container, as a daemon without live restore does when it shuts down."""
        for record in await blocking(self.containers.records):
            with contextlib.suppress(NotModified):
                await blocking(functools.partial(self.containers.stop, record.id, None, manual=False))

    async def close(self) -> None:
        """Let the watchers go (their blocking waits return within half a second), and end the
        requests still waiting on a container: their connections close with the daemon."""
        self._closing.set()
        self._closed.set_result(None)
        await asyncio.gather(*self._watchers, return_exceptions=True)
        for live in self.live.values():
            live.cancel_restart()
            for attaching in live.attaching:  # ended, not cancelled: the request then ends as usual
                attaching.end()
            for waiter in (*live.exited, *live.removed):
                waiter.cancel()


def add_routes(route: Route, supervisor: Callable[[web.Request], Supervisor]) -> None:
    """Route the container endpoints through ``route(method, path, handler)``."""

    async def create(request: web.Request) -> web.Response:
        body = await json_body(request)
        sup = supervisor(request)
        record, warnings = await blocking(sup.containers.create, body, request.query.get("name"))
        return json_response({"Id": record.id, "Warnings": warnings}, status=201)

    async def list_containers(request: web.Request) -> web.Response:
        from pyengine._container_list import list_containers as listed

        sup = supervisor(request)
        try:
            limit = int(request.query.get("limit") or -1)
        except ValueError:  # dockerd's words (Go's strconv), as a bad parameter
            raise InvalidParameter(
                f'strconv.Atoi: parsing "{request.query["limit"]}": invalid syntax'
            ) from None
        found = await blocking(
            listed, sup.containers, dict(request.query), flag(request, "all"), limit, flag(request, "size")
        )
        return json_response(found)

    async def inspect(request: web.Request) -> web.Response:
        sup = supervisor(request)
        record = await blocking(sup.containers.get, request.match_info["id"])
        return json_response({**record.inspect(), "LogPath": await blocking(sup.containers.log_path, record)})

    async def start(request: web.Request) -> web.Response:
        started = await supervisor(request).start(request.match_info["id"])
        return web.Response(status=204 if started else 304)

    async def restart(request: web.Request) -> web.Response:
        sup = supervisor(request)
        await sup.stop(request.match_info["id"], _timeout(request), request.query.get("signal") or None)
        await sup.start(request.match_info["id"])
        record = await blocking(sup.containers.get, request.match_info["id"])
        sup.containers.events.container(record, "restart")
        return web.Response(status=204)

    async def pause(request: web.Request) -> web.Response:
        await blocking(supervisor(request).containers.pause, request.match_info["id"])
        return web.Response(status=204)

    async def unpause(request: web.Request) -> web.Response:
        await blocking(supervisor(request).containers.unpause, request.match_info["id"])
        return web.Response(status=204)

    async def rename(request: web.Request) -> web.Response:
        new_name = request.query.get("name") or ""
        await blocking(supervisor(request).containers.rename, request.match_info["id"], new_name)
        return web.Response(status=204)

    async def top(request: web.Request) -> web.Response:
        ps_args = request.query.get("ps_args") or "-ef"
        return json_response(
            await blocking(supervisor(request).containers.top, request.match_info["id"], ps_args)
        )

    async def update(request: web.Request) -> web.Response:
        body = await json_body(request)
        warnings = await blocking(supervisor(request).containers.update, request.match_info["id"], body)
        return json_response({"Warnings": warnings})

    async def stats(request: web.Request) -> web.StreamResponse:
        sup = supervisor(request)
        name = request.match_info["id"]
        stream = flag(request, "stream", True)
        one_shot = flag(request, "one-shot")
        if one_shot and stream:
            raise InvalidParameter("cannot have stream=true and one-shot=true")
        sampler = StatsSampler()
        if not stream:
            sample = await blocking(sampler.sample, *await blocking(sup.containers.metrics, name))
            if not one_shot:  # two samples a second apart, so that the CPU's rate can be computed
                await asyncio.sleep(1)
                sample = await blocking(sampler.sample, *await blocking(sup.containers.metrics, name))
            return json_response(sample)
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        while True:
            record, metrics = await blocking(sup.containers.metrics, name)
            sample = await blocking(sampler.sample, record, metrics)
            await response.write(json.dumps(sample).encode() + b"\n")
            if metrics is None and record.state.status != "running":
                break  # dockerd ends the stream of a stopped container after one sample of zeros
            await asyncio.sleep(1)
        await response.write_eof()
        return response

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
        # No Error: dockerd's null is not the spec's (an object), and an object, even empty, is an
        # error to the docker CLI.
        await response.write(json.dumps({"StatusCode": code}).encode() + b"\n")
        await response.write_eof()
        return response

    async def attach(request: web.Request) -> web.StreamResponse:
        sup = supervisor(request)
        record = await blocking(sup.containers.get, request.match_info["id"])
        keys = detach_keys(request.query.get("detachKeys"))
        # As dockerd: stdin is taken only from a container that keeps one open.
        stdin = flag(request, "stdin") and bool(record.config.get("OpenStdin"))
        sup.containers.events.container(record, "attach")
        streams = _streams(request)
        tty = bool(record.config.get("Tty"))
        hijacked = await Hijacked.start(request, tty=tty)
        attachment: pycontainerd.Attachment | None = None
        if flag(request, "logs"):  # the whole log, of every run, then what comes
            batches = await blocking(sup.containers.logs, record.id)
            await hijacked.send(log_lines(batches), streams, tty=tty)
        if record.state.status != "running" and flag(request, "stream", True):
            # Until the next start (docker start -a attaches first, to created and exited alike).
            waiter = Attaching(stdin)
            sup.of(record.id).attaching.append(waiter)
            attachment = await waiter.attachment
        elif flag(request, "stream", True):
            task = await blocking(sup.containers.task, record)
            try:
                attachment = await blocking(functools.partial(task.attach, stdin=stdin))
            except pycontainerd.FailedPreconditionError:
                attachment = None  # it exited meanwhile
        if attachment is not None:
            try:
                await stream_process(
                    hijacked,
                    attachment,
                    streams,
                    tty=tty,
                    stdin=stdin,
                    keys=keys,
                    close_at_eof=bool(record.config.get("StdinOnce")),
                )
            finally:
                attachment.close()
        await hijacked.close()
        return hijacked.response

    async def resize(request: web.Request) -> web.Response:
        sup = supervisor(request)
        rows, cols = _size(request)
        await blocking(sup.containers.resize, request.match_info["id"], rows, cols)
        return web.Response(status=200)

    async def logs(request: web.Request) -> web.StreamResponse:
        streams = _streams(request)
        if not streams:
            raise InvalidParameter("You must choose at least one stream")
        since, until = _log_time(request, "since"), _log_time(request, "until")
        tail = request.query.get("tail", "all")
        # As dockerd: what is not a number (all, empty) is everything, and so is a negative one.
        lines = int(tail) if tail.lstrip("-").isdigit() and int(tail) >= 0 else None
        sup = supervisor(request)
        record = await blocking(sup.containers.get, request.match_info["id"])
        batches = await blocking(
            functools.partial(
                sup.containers.logs,
                record.id,
                follow=flag(request, "follow"),
                since=since,
                until=until,
                tail=lines,
            )
        )
        tty = bool(record.config.get("Tty"))
        response = web.StreamResponse(headers={"Content-Type": RAW if tty else MULTIPLEXED})
        await response.prepare(request)
        # Each batch goes as one write of its frames, made in the reading thread: a log of 100,000
        # lines is a few writes, not 100,000 hops through the event loop.
        chunks = _log_chunks(batches, streams, tty=tty, timestamps=flag(request, "timestamps"))
        await send(response, ((1, chunk) for chunk in chunks), {1}, tty=True)
        await response.write_eof()
        return response

    async def kill(request: web.Request) -> web.Response:
        sup = supervisor(request)
        await blocking(sup.containers.kill, request.match_info["id"], request.query.get("signal", "SIGKILL"))
        return web.Response(status=204)

    async def stop(request: web.Request) -> web.Response:
        sup = supervisor(request)
        stopped = await sup.stop(
            request.match_info["id"], _timeout(request), request.query.get("signal") or None
        )
        return web.Response(status=204 if stopped else 304)

    async def remove(request: web.Request) -> web.Response:
        await supervisor(request).remove(
            request.match_info["id"], force=flag(request, "force"), volumes=flag(request, "v")
        )
        return web.Response(status=204)

    route("POST", "/containers/create", create)
    route("GET", "/containers/json", list_containers)
    route("GET", "/containers/{id}/json", inspect)
    route("POST", "/containers/{id}/start", start)
    route("POST", "/containers/{id}/wait", wait)
    route("POST", "/containers/{id}/attach", attach)
    route("POST", "/containers/{id}/resize", resize)
    route("GET", "/containers/{id}/logs", logs)
    route("POST", "/containers/{id}/kill", kill)
    route("POST", "/containers/{id}/stop", stop)
    route("DELETE", "/containers/{id}", remove)
    route("POST", "/containers/{id}/restart", restart)
    route("POST", "/containers/{id}/pause", pause)
    route("POST", "/containers/{id}/unpause", unpause)
    route("POST", "/containers/{id}/rename", rename)
    route("GET", "/containers/{id}/top", top)
    route("POST", "/containers/{id}/update", update)
    route("GET", "/containers/{id}/stats", stats)


def _streams(request: web.Request) -> set[int]:
    """The streams a request asks for: 1 with ``stdout``, 2 with ``stderr``."""
    return {number for number, name in ((1, "stdout"), (2, "stderr")) if flag(request, name)}


def log_lines(batches: Iterable[Sequence[tuple[int, bytes, int]]]) -> Iterator[tuple[int, bytes]]:
    """A log's entries as ``(stream, line)``."""
    for batch in batches:
        for stream, data, _ in batch:
            yield stream, data


def _log_chunks(
    batches: Iterable[Sequence[tuple[int, bytes, int]]], streams: set[int], *, tty: bool, timestamps: bool
) -> Iterator[bytes]:
    """The bytes of ``GET /logs`` for each batch of the log: the lines of the streams asked for, as
    stdcopy frames (raw for a terminal), each after its time and a space with ``timestamps``
    (RFC 3339 with nanoseconds, as dockerd's RFC3339NanoFixed)."""
    second, prefix = -1, ""
    for batch in batches:
        out = bytearray()
        for stream, data, stamp in batch:
            if stream not in streams:
                continue
            if timestamps:
                seconds, nanos = divmod(stamp, 1_000_000_000)
                if seconds != second:
                    second, prefix = seconds, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
                data = f"{prefix}.{nanos:09d}Z ".encode() + data
            if not tty:
                out += bytes((stream, 0, 0, 0)) + len(data).to_bytes(4, "big")
            out += data
        if out:
            yield bytes(out)


def _log_time(request: web.Request, name: str) -> int | None:
    """``since`` or ``until`` of a logs request, as the docker CLI and docker-py send them (seconds
    since the epoch, with up to nine decimals), in nanoseconds; None for none (0 or empty)."""
    text = request.query.get(name, "")
    seconds, _, fraction = text.partition(".")
    if not seconds.lstrip("-").isdigit() or (fraction and not fraction.isdigit()):
        if not text:
            return None
        raise InvalidParameter(f"invalid value for {name}: {text!r}: not seconds since the epoch")
    stamp = int(seconds) * 1_000_000_000 + int((fraction + "000000000")[:9])
    return stamp or None


def _size(request: web.Request) -> tuple[int, int]:
    """The ``h`` and ``w`` of a resize request."""
    try:
        rows, cols = int(request.query["h"]), int(request.query["w"])
    except (KeyError, ValueError):
        raise InvalidParameter("resize: h and w must be given as numbers") from None
    if not (0 < rows < 65536 and 0 < cols < 65536):
        raise InvalidParameter(f"resize: {rows}x{cols} is not a terminal size")
    return rows, cols


def _timeout(request: web.Request) -> float | None:
    """The ``t`` of a stop or restart request: seconds before SIGKILL."""
    timeout = request.query.get("t")
    try:
        return float(timeout) if timeout else None
    except ValueError:
        raise InvalidParameter(f"t={timeout!r} is not a number of seconds") from None


def _parse_time(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp)
