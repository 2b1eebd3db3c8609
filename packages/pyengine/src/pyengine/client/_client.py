"""``pyengine.Client``: the Engine API's endpoints as blocking methods, one per endpoint, shaped
after the Go client of moby (``client/``): the same names in snake case, the same options.

Where it connects: the ``host`` argument, else ``DOCKER_HOST``, else pyengined's socket
(``unix:///run/pyengine.sock``), the docker CLI's order (``-H``, then the environment, then the
default). The API version: the ``version`` argument, else ``DOCKER_API_VERSION``, else negotiated
as the Go client negotiates, once, before the first request: the lower of ``/_ping``'s
``Api-Version`` and this client's 1.44 (1.24 when the daemon does not say). Negotiating costs one
small request; it lets the same client drive pyengined and an older dockerd (20.10 speaks 1.41).
"""

from __future__ import annotations

import http.client
import json
import os
from collections.abc import Generator, Iterable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from pyengine._errors import ApiError
from pyengine.client._transport import (
    DEFAULT_HOST,
    Hijacked,
    ProgressError,
    Response,
    Transport,
    json_lines,
    read_frames,
)

if TYPE_CHECKING:
    from pyengine.client._container_models import (
        ContainerInspect,
        ContainerSummary,
        ContainerTop,
        ExecInspect,
    )
    from pyengine.client._create_models import ContainerCreateConfig
    from pyengine.client._image_models import ImageDeleteItem, ImageInspect, ImageSummary, ProgressMessage
    from pyengine.client._system_models import AuthConfig, AuthResponse, Event, Ping, SystemInfo, Version


__all__ = ["API_VERSION", "Client"]

#: The newest API version this client speaks (pyengined's).
API_VERSION = "1.44"
#: What the Go client assumes of a daemon whose ``/_ping`` names no version.
_FALLBACK_VERSION = "1.24"
#: The Content-Types of a container's output (API 1.42+): with a terminal, and without.
_RAW = "application/vnd.docker.raw-stream"
_MULTIPLEXED = "application/vnd.docker.multiplexed-stream"

Filters = Mapping[str, str | Iterable[str]]
Time = int | float | str | datetime


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def _filters(filters: Filters | None) -> str | None:
    """``filters`` as the API takes them: ``{"key": {"value": true}}`` in JSON."""
    if not filters:
        return None
    encoded: dict[str, dict[str, bool]] = {}
    for key, values in filters.items():
        encoded[key] = {values: True} if isinstance(values, str) else dict.fromkeys(values, True)
    return json.dumps(encoded)


def _time(value: Time | None) -> str | None:
    """A time of the query: seconds since the epoch (with nanoseconds, as the docker CLI sends
    them), or a string passed on as it is (RFC 3339, or the API's own seconds)."""
    if value is None or isinstance(value, str):
        return value
    seconds = value.timestamp() if isinstance(value, datetime) else value
    return f"{seconds:.9f}"


def _split_reference(ref: str) -> tuple[str, str]:
    """``name[:tag][@digest]`` as the API's ``fromImage`` and ``tag`` (a digest goes as the
    tag; no tag is ``latest``), as the Go client's ImagePull splits it."""
    name, at, digest = ref.partition("@")
    if at:
        return name, digest
    head, colon, tag = name.rpartition(":")
    if colon and "/" not in tag:
        return head, tag
    return name, "latest"


def _auth_header(auth: AuthConfig | Mapping[str, str] | None) -> dict[str, str]:
    from pyengine.client._system_models import AuthConfig

    if auth is None:
        return {}
    if not isinstance(auth, AuthConfig):  # docker-py's auth_config dict
        auth = AuthConfig(
            username=auth.get("username", ""),
            password=auth.get("password", ""),
            server_address=auth.get("serveraddress", ""),
            identity_token=auth.get("identitytoken", ""),
        )
    return {"X-Registry-Auth": auth.header()}


def _events(objects: Generator[dict[str, Any]]) -> Iterator[Event]:
    from pyengine.client._system_models import Event

    try:
        for data in objects:
            yield Event.from_api(data)
    finally:
        objects.close()


def _progress(messages: Iterator[dict[str, Any]]) -> Iterator[ProgressMessage]:
    from pyengine.client._image_models import ProgressMessage

    for data in messages:
        message = ProgressMessage.from_api(data)
        if message.error:
            raise ProgressError(message.error)
        yield message


class Client:
    """A client of one daemon's Engine API. Blocking; not for use by two threads at once.

    Streams (events, logs, pulls) are iterators that hold a connection of their own until read
    to their end; ``close()`` one (it is a generator) to stop early. Errors: the daemon's answer
    raises :class:`~pyengine.NotFound` (404), :class:`~pyengine.Conflict` (409),
    :class:`~pyengine.InvalidParameter` (400), :class:`~pyengine.Unauthorized` (401) or
    :class:`~pyengine.ApiError` (any other; ``status`` says which), each with the daemon's
    ``message``; no daemon at the socket raises :class:`~pyengine.DaemonUnreachable`.
    """

    def __init__(self, host: str | None = None, *, version: str | None = None, timeout: float | None = None):
        self.host = host or os.environ.get("DOCKER_HOST") or DEFAULT_HOST
        self._transport = Transport(self.host, timeout)
        self._version = version or os.environ.get("DOCKER_API_VERSION") or None

    # -- plumbing ----------------------------------------------------------------------------------

    @property
    def api_version(self) -> str:
        """The API version the requests name, negotiated on first use."""
        if self._version is None:
            self._negotiate()
        assert self._version is not None
        return self._version

    def _negotiate(self) -> http.client.HTTPMessage:
        """``GET /_ping``'s headers; the API version taken from them when none was given."""
        response = self._transport.request("GET", "/_ping")
        try:
            response.read()
        finally:
            self._transport.done(response)
        if self._version is None:
            server = response.getheader("Api-Version") or _FALLBACK_VERSION
            self._version = min(server, API_VERSION, key=_version_tuple)
        return response.headers

    def _path(self, path: str) -> str:
        return f"/v{self.api_version}{path}"

    def _json(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, object] | None = None,
        body: object = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """A request with a JSON body (when given) whose JSON answer is read whole (None for an
        empty one)."""
        data = None if body is None else json.dumps(body).encode()
        _, answer = self._transport.call(method, self._path(path), query=query, body=data, headers=headers)
        return json.loads(answer) if answer.strip() else None

    def _stream(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, object] | None = None,
        body: bytes | IO[bytes] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Generator[dict[str, Any]]:
        """The JSON objects of a streamed answer. The request is sent now (its errors raised
        now); the objects come as the iterator is read."""
        response = self._transport.request(method, self._path(path), query=query, body=body, headers=headers)

        def objects() -> Generator[dict[str, Any]]:
            try:
                yield from json_lines(response)
            finally:
                self._transport.done(response)

        return objects()

    def close(self) -> None:
        """Close the idle connection (streams still read keep theirs)."""
        self._transport.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- system ------------------------------------------------------------------------------------

    def ping(self) -> Ping:
        """``GET /_ping``; when no version was given, the API version is negotiated from it."""
        from pyengine.client._system_models import Ping

        headers = self._negotiate()
        return Ping(
            api_version=headers.get("Api-Version") or "",
            os_type=headers.get("Ostype") or "",
            experimental=headers.get("Docker-Experimental") == "true",
            builder_version=headers.get("Builder-Version") or "",
        )

    def version(self) -> Version:
        """``GET /version``."""
        from pyengine.client._system_models import Version

        return Version.from_api(self._json("GET", "/version"))

    def info(self) -> SystemInfo:
        """``GET /info``."""
        from pyengine.client._system_models import SystemInfo

        return SystemInfo.from_api(self._json("GET", "/info"))

    def events(
        self, since: Time | None = None, until: Time | None = None, filters: Filters | None = None
    ) -> Iterator[Event]:
        """``GET /events``: the events since ``since`` (none of the past without it) and those to
        come, until ``until`` (for ever without it: close the iterator to stop)."""
        query = {"since": _time(since), "until": _time(until), "filters": _filters(filters)}
        return _events(self._stream("GET", "/events", query=query))

    def auth(self, username: str, password: str, server: str) -> AuthResponse:
        """``POST /auth``: check the credentials with the registry (``docker login``)."""
        from pyengine.client._system_models import AuthConfig, AuthResponse

        body = AuthConfig(username=username, password=password, server_address=server).to_api()
        return AuthResponse.from_api(self._json("POST", "/auth", body=body))

    # -- images ------------------------------------------------------------------------------------

    def images(self, all: bool = False, filters: Filters | None = None) -> list[ImageSummary]:
        """``GET /images/json``."""
        from pyengine.client._image_models import ImageSummary

        query = {"all": all, "filters": _filters(filters)}
        return [ImageSummary.from_api(data) for data in self._json("GET", "/images/json", query=query)]

    def image_inspect(self, name: str) -> ImageInspect:
        """``GET /images/{name}/json``."""
        from pyengine.client._image_models import ImageInspect

        return ImageInspect.from_api(self._json("GET", f"/images/{name}/json"))

    def image_pull(
        self, ref: str, auth: AuthConfig | Mapping[str, str] | None = None, platform: str | None = None
    ) -> Iterator[ProgressMessage]:
        """``POST /images/create?fromImage=…``: the pull's progress; its failure raises
        :class:`~pyengine.ProgressError` from the iterator."""
        image, tag = _split_reference(ref)
        query = {"fromImage": image, "tag": tag, "platform": platform}
        return _progress(self._stream("POST", "/images/create", query=query, headers=_auth_header(auth)))

    def image_push(
        self, name: str, tag: str | None = None, auth: AuthConfig | Mapping[str, str] | None = None
    ) -> Iterator[ProgressMessage]:
        """``POST /images/{name}/push``: the push's progress (a failure raises
        :class:`~pyengine.ProgressError`). X-Registry-Auth always goes (empty without ``auth``):
        dockerd refuses a push without it."""
        headers = _auth_header(auth or {})
        return _progress(self._stream("POST", f"/images/{name}/push", query={"tag": tag}, headers=headers))

    def image_tag(self, source: str, target: str) -> None:
        """``POST /images/{source}/tag``: name the image ``target`` (``repo[:tag]``)."""
        repo, tag = _split_reference(target)
        self._json("POST", f"/images/{source}/tag", query={"repo": repo, "tag": tag})

    def image_remove(self, name: str, force: bool = False, noprune: bool = False) -> list[ImageDeleteItem]:
        """``DELETE /images/{name}``: what was untagged and deleted."""
        from pyengine.client._image_models import ImageDeleteItem

        answer = self._json("DELETE", f"/images/{name}", query={"force": force, "noprune": noprune})
        return [ImageDeleteItem.from_api(item) for item in answer or ()]

    def image_load(self, source: str | Path | IO[bytes], quiet: bool = False) -> Iterator[ProgressMessage]:
        """``POST /images/load``: a docker-archive or OCI layout tar from a path or a binary file;
        the load's messages (``stream``: ``Loaded image: busybox:latest``)."""
        query = {"quiet": quiet}
        if isinstance(source, str | Path):
            with open(source, "rb") as archive:
                size = os.fstat(archive.fileno()).st_size
                headers = {"Content-Type": "application/x-tar", "Content-Length": str(size)}
                # The body is sent whole before the answer is read: the file can close then.
                messages = self._stream("POST", "/images/load", query=query, body=archive, headers=headers)
            return _progress(messages)
        headers = {"Content-Type": "application/x-tar"}  # sent chunked
        return _progress(self._stream("POST", "/images/load", query=query, body=source, headers=headers))

    def image_save(self, names: str | Iterable[str]) -> Iterator[bytes]:
        """``GET /images/get?names=…``: the images as a docker-archive tar, in chunks."""
        query = {"names": [names] if isinstance(names, str) else list(names)}
        response = self._transport.request("GET", self._path("/images/get"), query=query)

        def chunks() -> Iterator[bytes]:
            try:
                while chunk := response.read1(1 << 20):
                    yield chunk
            finally:
                self._transport.done(response)

        return chunks()

    # -- containers --------------------------------------------------------------------------------

    def containers(
        self, all: bool = False, limit: int | None = None, filters: Filters | None = None, size: bool = False
    ) -> list[ContainerSummary]:
        """``GET /containers/json``."""
        from pyengine.client._container_models import ContainerSummary

        query = {"all": all, "limit": limit, "size": size, "filters": _filters(filters)}
        return [
            ContainerSummary.from_api(data) for data in self._json("GET", "/containers/json", query=query)
        ]

    def container_create(
        self, config: ContainerCreateConfig, name: str | None = None, platform: str | None = None
    ) -> tuple[str, list[str]]:
        """``POST /containers/create``: the new container's ID and the daemon's warnings."""
        answer = self._json(
            "POST", "/containers/create", query={"name": name, "platform": platform}, body=config.to_api()
        )
        return answer["Id"], list(answer.get("Warnings") or ())

    def container_inspect(self, container: str) -> ContainerInspect:
        """``GET /containers/{id}/json``."""
        from pyengine.client._container_models import ContainerInspect

        return ContainerInspect.from_api(self._json("GET", f"/containers/{container}/json"))

    def container_start(self, container: str) -> None:
        """``POST /containers/{id}/start`` (a running container is left as it is)."""
        self._json("POST", f"/containers/{container}/start")

    def container_stop(self, container: str, timeout: int | None = None, signal: str | None = None) -> None:
        """``POST /containers/{id}/stop``: its stop signal, then SIGKILL after ``timeout``
        seconds (the container's StopTimeout, or 10, without it)."""
        self._json("POST", f"/containers/{container}/stop", query={"t": timeout, "signal": signal})

    def container_restart(self, container: str, timeout: int | None = None) -> None:
        """``POST /containers/{id}/restart``."""
        self._json("POST", f"/containers/{container}/restart", query={"t": timeout})

    def container_kill(self, container: str, signal: str = "SIGKILL") -> None:
        """``POST /containers/{id}/kill``."""
        self._json("POST", f"/containers/{container}/kill", query={"signal": signal})

    def container_remove(self, container: str, force: bool = False, volumes: bool = False) -> None:
        """``DELETE /containers/{id}``."""
        self._json("DELETE", f"/containers/{container}", query={"force": force, "v": volumes})

    def container_pause(self, container: str) -> None:
        """``POST /containers/{id}/pause``."""
        self._json("POST", f"/containers/{container}/pause")

    def container_unpause(self, container: str) -> None:
        """``POST /containers/{id}/unpause``."""
        self._json("POST", f"/containers/{container}/unpause")

    def container_top(self, container: str, ps_args: str | None = None) -> ContainerTop:
        """``GET /containers/{id}/top``."""
        from pyengine.client._container_models import ContainerTop

        return ContainerTop.from_api(
            self._json("GET", f"/containers/{container}/top", query={"ps_args": ps_args})
        )

    def container_resize(self, container: str, height: int, width: int) -> None:
        """``POST /containers/{id}/resize``: the terminal's size."""
        self._json("POST", f"/containers/{container}/resize", query={"h": height, "w": width})

    def container_stats(self, container: str, stream: bool = False) -> Iterator[dict[str, Any]]:
        """``GET /containers/{id}/stats``: one sample (``stream=False``; the daemon takes two, a
        second apart, for the CPU's rate) or one a second until the container stops."""
        return self._stream("GET", f"/containers/{container}/stats", query={"stream": stream})

    def container_wait(self, container: str, condition: str = "not-running") -> int:
        """``POST /containers/{id}/wait``: block until the container is ``not-running``, at its
        ``next-exit``, or ``removed``; its exit code."""
        return self.container_wait_begin(container, condition)()

    def container_wait_begin(self, container: str, condition: str = "not-running") -> _Wait:
        """The same request as :meth:`container_wait`, answered later: sent now (its head is
        answered once the daemon waits), the exit code read by calling what this returns. So a
        ``run`` waits before it starts the container, as the docker CLI does, and misses no exit."""
        response = self._transport.request(
            "POST", self._path(f"/containers/{container}/wait"), query={"condition": condition}
        )
        return _Wait(self._transport, response)

    def container_logs(
        self,
        container: str,
        *,
        follow: bool = False,
        stdout: bool = True,
        stderr: bool = True,
        since: Time | None = None,
        until: Time | None = None,
        tail: int | str = "all",
        timestamps: bool = False,
        tty: bool | None = None,
    ) -> Iterator[tuple[int, bytes]]:
        """``GET /containers/{id}/logs``: ``(stream, line)`` (1 stdout, 2 stderr), until the log's
        end, or with ``follow`` until the container stops. A terminal's log has no streams (all
        is stream 1): ``tty`` says whether the container has one; without it the answer's
        Content-Type tells (API 1.42+), or the container is inspected."""
        query = {
            "follow": follow,
            "stdout": stdout,
            "stderr": stderr,
            "since": _time(since),
            "until": _time(until),
            "tail": tail,
            "timestamps": timestamps,
        }
        response = self._transport.request("GET", self._path(f"/containers/{container}/logs"), query=query)
        try:
            raw = self._is_raw(container, tty, response.getheader("Content-Type") or "")
        except BaseException:
            response.close()
            self._transport.done(response)
            raise

        def frames() -> Iterator[tuple[int, bytes]]:
            try:
                yield from read_frames(response, raw=raw)
            finally:
                self._transport.done(response)

        return frames()

    def _is_raw(self, container: str, tty: bool | None, content_type: str) -> bool:
        if tty is not None:
            return tty
        if content_type in (_RAW, _MULTIPLEXED) and _version_tuple(self.api_version) >= (1, 42):
            return content_type == _RAW
        return self.container_inspect(container).config.tty

    def container_attach(
        self,
        container: str,
        *,
        stdin: bool = False,
        stdout: bool = True,
        stderr: bool = True,
        stream: bool = True,
        logs: bool = False,
        detach_keys: str | None = None,
        tty: bool | None = None,
    ) -> Hijacked:
        """``POST /containers/{id}/attach``, upgraded: the connection that carries the
        container's output (its log first with ``logs``) and, with ``stdin``, takes its input.
        Attached to a container not running, it waits for its next start."""
        query = {
            "stdin": stdin,
            "stdout": stdout,
            "stderr": stderr,
            "stream": stream,
            "logs": logs,
            "detachKeys": detach_keys,
        }
        sock, reader, content_type = self._transport.hijack(
            self._path(f"/containers/{container}/attach"), query=query
        )
        try:
            raw = self._is_raw(container, tty, content_type)
        except BaseException:
            sock.close()
            raise
        return Hijacked(sock, reader, tty=raw)

    # -- exec --------------------------------------------------------------------------------------

    def exec_create(
        self,
        container: str,
        cmd: Iterable[str],
        *,
        stdin: bool = False,
        stdout: bool = True,
        stderr: bool = True,
        tty: bool = False,
        env: Iterable[str] = (),
        user: str = "",
        working_dir: str = "",
        detach_keys: str | None = None,
        privileged: bool = False,
    ) -> str:
        """``POST /containers/{id}/exec``: the new exec instance's ID."""
        body = {
            "Cmd": list(cmd),
            "AttachStdin": stdin,
            "AttachStdout": stdout,
            "AttachStderr": stderr,
            "Tty": tty,
            "Env": list(env) or None,
            "User": user,
            "WorkingDir": working_dir,
            "DetachKeys": detach_keys,
            "Privileged": privileged,
        }
        answer = self._json("POST", f"/containers/{container}/exec", body=body)
        return str(answer["Id"])

    def exec_start(self, exec_id: str, detach: bool = False, tty: bool = False) -> Hijacked | None:
        """``POST /exec/{id}/start``: detached, None once it runs; attached, the upgraded
        connection carrying its streams (read to the end, then :meth:`exec_inspect` has the
        exit code)."""
        body = json.dumps({"Detach": detach, "Tty": tty}).encode()
        if detach:
            self._transport.call("POST", self._path(f"/exec/{exec_id}/start"), body=body)
            return None
        sock, reader, _ = self._transport.hijack(self._path(f"/exec/{exec_id}/start"), body=body)
        return Hijacked(sock, reader, tty=tty)

    def exec_inspect(self, exec_id: str) -> ExecInspect:
        """``GET /exec/{id}/json``."""
        from pyengine.client._container_models import ExecInspect

        return ExecInspect.from_api(self._json("GET", f"/exec/{exec_id}/json"))

    def exec_resize(self, exec_id: str, height: int, width: int) -> None:
        """``POST /exec/{id}/resize``: the exec's terminal size."""
        self._json("POST", f"/exec/{exec_id}/resize", query={"h": height, "w": width})


class _Wait:
    """A wait request answered later: call it for the exit code."""

    def __init__(self, transport: Transport, response: Response) -> None:
        self._transport = transport
        self._response = response

    def __call__(self) -> int:
        try:
            answer = json.loads(self._response.read())
        finally:
            self._transport.done(self._response)
        error = answer.get("Error")
        if error and error.get("Message"):
            raise ApiError(error["Message"])
        return int(answer["StatusCode"])
