"""The exec endpoints: a process added to a running container (``docker exec``), made by
``POST /containers/{id}/exec``, run by ``POST /exec/{id}/start`` (attached over a hijacked
connection, or detached), resized, and inspected for its exit code.

Exec instances live in the daemon's memory, as dockerd's do: a restart forgets them (their
processes go on in their containers)."""

from __future__ import annotations

import contextlib
import functools
import secrets
from collections.abc import Callable
from typing import Any

import attrs
from aiohttp import web

import pycontainerd
from pyengine._container_api import Supervisor
from pyengine._errors import Conflict, InvalidParameter, NotFound
from pyengine._http import Route, blocking, json_body, json_response
from pyengine._streams import Hijacked, detach_keys, frame, stream_process

__all__ = ["Exec", "add_routes"]

#: The exit code of an exec whose process could not be started, as dockerd reports it.
_CANNOT_START = 126
#: What an exec request may hold; Detach and Container are what older clients repeat of the start
#: and the path.
_EXEC_FIELDS = {
    "AttachStdin", "AttachStdout", "AttachStderr", "DetachKeys", "ConsoleSize", "Tty", "Env", "Cmd",
    "Privileged", "User", "WorkingDir", "Detach", "Container",
}  # fmt: skip


@attrs.define
class Exec:
    """One exec instance: what was asked, and what became of it."""

    id: str
    container_id: str
    cmd: list[str]
    env: list[str]
    user: str
    working_dir: str
    tty: bool
    stdin: bool
    stdout: bool
    stderr: bool
    detach_keys: str
    console_size: tuple[int, int] | None
    process: pycontainerd.ExecProcess | None = None
    running: bool = False
    exit_code: int | None = None

    @property
    def runtime_id(self) -> str:
        """The process's id in its task: short, since a terminal's socket path carries it."""
        return self.id[:16]

    def inspect(self) -> dict[str, Any]:
        return {
            "ID": self.id,
            "Running": self.running,
            "ExitCode": self.exit_code,  # null until it exits, as dockerd (the spec says integer)
            "ProcessConfig": {
                "tty": self.tty,
                "entrypoint": self.cmd[0],
                "arguments": self.cmd[1:],
                "privileged": False,
                "user": self.user,
            },
            "OpenStdin": self.stdin,
            "OpenStderr": self.stderr,
            "OpenStdout": self.stdout,
            "CanRemove": False,
            "ContainerID": self.container_id,
            "DetachKeys": self.detach_keys,
            "Pid": self.process.pid if self.process is not None else 0,
        }


def _strings(body: dict[str, Any], key: str) -> list[str]:
    value = body.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidParameter(f"{key}: a list of strings, not {value!r}")
    return value


def _parse(body: dict[str, Any], container_id: str) -> Exec:
    for key, value in body.items():
        if key not in _EXEC_FIELDS and value not in (None, "", False, [], {}):
            raise InvalidParameter(f"exec: {key} is not supported by pyengine yet")
    if body.get("Privileged"):
        raise InvalidParameter("exec: Privileged is not supported by pyengine yet")
    cmd = _strings(body, "Cmd")
    if not cmd:
        raise InvalidParameter("No exec command specified")
    size = body.get("ConsoleSize")
    keys = body.get("DetachKeys") or ""
    detach_keys(keys)  # checked now, used at the start
    return Exec(
        id=secrets.token_hex(32),
        container_id=container_id,
        cmd=cmd,
        env=_strings(body, "Env"),
        user=str(body.get("User") or ""),
        working_dir=str(body.get("WorkingDir") or ""),
        tty=bool(body.get("Tty")),
        stdin=bool(body.get("AttachStdin")),
        stdout=bool(body.get("AttachStdout")),
        stderr=bool(body.get("AttachStderr")),
        detach_keys=keys,
        console_size=(int(size[0]), int(size[1])) if size and size[0] and size[1] else None,
    )


def add_routes(route: Route, supervisor: Callable[[web.Request], Supervisor]) -> None:
    """Route the exec endpoints through ``route(method, path, handler)``."""

    def find(request: web.Request) -> Exec:
        name = request.match_info["id"]
        found = supervisor(request).execs.get(name)
        if found is None:
            raise NotFound(f"No such exec instance: {name}")
        return found

    async def create(request: web.Request) -> web.Response:
        sup = supervisor(request)
        body = await json_body(request)
        record = await blocking(sup.containers.get, request.match_info["id"])
        if record.state.status != "running":
            raise Conflict(f"Container {record.id} is not running")
        if record.state.paused:
            raise Conflict(f"Container {record.id} is paused, unpause the container before exec")
        instance = _parse(body, record.id)
        sup.execs[instance.id] = instance
        sup.containers.events.container(record, f"exec_create: {' '.join(instance.cmd)}", execID=instance.id)
        return json_response({"Id": instance.id}, status=201)

    async def start(request: web.Request) -> web.StreamResponse:
        sup = supervisor(request)
        instance = find(request)
        body = await json_body(request, optional=True)
        if instance.running or instance.exit_code is not None:
            raise Conflict(f"Error: Exec command {instance.id} is already running")
        record = await blocking(sup.containers.get, instance.container_id)
        if record.state.status != "running":
            raise Conflict(f"Container {record.id} is not running")
        task = await blocking(sup.containers.task, record)
        run = functools.partial(
            task.exec,
            instance.runtime_id,
            instance.cmd,
            tty=instance.tty,
            stdin=instance.stdin,
            env=instance.env or None,
            cwd=instance.working_dir or None,
            user=instance.user or None,
        )
        instance.running = True
        sup.containers.events.container(record, f"exec_start: {' '.join(instance.cmd)}", execID=instance.id)
        if body.get("Detach"):
            try:
                instance.process = await blocking(run)
            except pycontainerd.PycontainerdError as exc:
                instance.running, instance.exit_code = False, _CANNOT_START
                raise _start_error(exc) from None
            sup.spawn(_await_exit(sup, instance), f"exec {instance.id[:12]}")
            return web.Response(status=200)
        hijacked = await Hijacked.start(request, tty=instance.tty)
        streams = {n for n, on in ((1, instance.stdout), (2, instance.stderr)) if on}
        try:
            instance.process = await blocking(functools.partial(run, attach=True))
        except pycontainerd.PycontainerdError as exc:
            instance.running, instance.exit_code = False, _CANNOT_START
            message = f"{_start_error(exc).message}\r\n".encode()
            await hijacked.response.write(message if instance.tty else frame(1, message))
            await hijacked.close()
            return hijacked.response
        attachment = instance.process.attachment
        assert attachment is not None
        try:
            if instance.console_size is not None and instance.tty:
                await blocking(instance.process.resize, *instance.console_size)
            await stream_process(
                hijacked,
                attachment,
                streams,
                tty=instance.tty,
                stdin=instance.stdin,
                keys=detach_keys(instance.detach_keys),
                close_at_eof=True,
            )
        finally:
            attachment.close()
        if attachment.exit is not None:
            _exec_died(sup, instance, attachment.exit.status)
        else:  # detached by the client: the process goes on
            sup.spawn(_await_exit(sup, instance), f"exec {instance.id[:12]}")
        await hijacked.close()
        return hijacked.response

    async def resize(request: web.Request) -> web.Response:
        instance = find(request)
        try:
            rows, cols = int(request.query["h"]), int(request.query["w"])
        except (KeyError, ValueError):
            raise InvalidParameter("resize: h and w must be given as numbers") from None
        if instance.process is None or not instance.running:
            raise Conflict(f"Exec {instance.id} is not running")
        if not instance.tty:
            raise InvalidParameter(f"Exec {instance.id} has no terminal to resize")
        try:
            await blocking(instance.process.resize, rows, cols)
        except pycontainerd.PycontainerdError as exc:
            raise InvalidParameter(f"resize exec {instance.id}: {exc}") from None
        return web.Response(status=200)

    async def inspect(request: web.Request) -> web.Response:
        return json_response(find(request).inspect())

    route("POST", "/containers/{id}/exec", create)
    route("POST", "/exec/{id}/start", start)
    route("POST", "/exec/{id}/resize", resize)
    route("GET", "/exec/{id}/json", inspect)


def _start_error(exc: pycontainerd.PycontainerdError) -> InvalidParameter:
    """What the client is told when the exec's process could not start."""
    if isinstance(exc, pycontainerd.NotFoundError):  # the user is not in the image
        return InvalidParameter(f"unable to find user: {exc}")
    return InvalidParameter(f"OCI runtime exec failed: {exc}")


async def _await_exit(sup: Supervisor, instance: Exec) -> None:
    assert instance.process is not None
    status = await sup.wait_process(instance.process.wait)
    if status is not None:
        _exec_died(sup, instance, status.status)


def _exec_died(sup: Supervisor, instance: Exec, code: int) -> None:
    """Record the exit; pycontainerd's process is deleted (its exit code is kept here)."""
    instance.running, instance.exit_code = False, code
    if instance.process is not None:
        sup.spawn(_forget(instance.process), f"forget exec {instance.id[:12]}")
    with contextlib.suppress(NotFound):  # removed meanwhile
        record = sup.containers.get(instance.container_id)
        sup.containers.events.container(record, "exec_die", execID=instance.id, exitCode=str(code))


async def _forget(process: pycontainerd.ExecProcess) -> None:
    with contextlib.suppress(pycontainerd.PycontainerdError):
        await blocking(process.delete)
