"""The image endpoints: list, inspect, tag, remove, load, save and pull, on the engine's
pycontainerd store. Names are shown as Docker shows them (``busybox:latest`` for
``docker.io/library/busybox:latest``); an image's ID is the digest of its config."""

from __future__ import annotations

import asyncio
import base64
import binascii
import fnmatch
import ipaddress
import json
import tempfile
from collections.abc import Callable, Iterable
from typing import IO, Any

import attrs
from aiohttp import web

import pycontainerd
from pyengine._errors import Conflict, InvalidParameter, NotFound
from pyengine._http import Route, blocking, flag, json_response
from pyengine._times import unix

__all__ = ["ImageSummary", "add_routes", "familiar_name"]


_DOCKER_HUB = "docker.io/"
_LIBRARY = "docker.io/library/"


def familiar_name(name: str) -> str:
    """``docker.io/library/busybox:latest`` -> ``busybox:latest``; other registries' names as they are."""
    if name.startswith(_LIBRARY):
        return name.removeprefix(_LIBRARY)
    return name.removeprefix(_DOCKER_HUB)


def _repository(name: str) -> str:
    """The name without its tag or digest: ``busybox`` of ``busybox:latest``."""
    name = name.split("@", 1)[0]
    head, _, tail = name.rpartition(":")
    return head if head and "/" not in tail else name


@attrs.frozen
class ImageSummary:
    """One image of ``GET /images/json``: every name of one config digest."""

    id: str
    names: tuple[str, ...]
    targets: tuple[str, ...]
    config: pycontainerd.ImageConfig
    size: int

    def to_api(self) -> dict[str, Any]:
        return {
            "Id": self.id,
            "ParentId": "",
            "RepoTags": [familiar_name(n) for n in self.names],
            "RepoDigests": sorted(
                {
                    f"{_repository(familiar_name(n))}@{t}"
                    for n, t in zip(self.names, self.targets, strict=True)
                }
            ),
            "Created": unix(self.config.created or ""),
            "Size": self.size,
            "SharedSize": -1,
            "Labels": dict(self.config.config.labels) or None,
            "Containers": -1,
        }

    def inspect(self) -> dict[str, Any]:
        c = self.config.config
        return {
            "Id": self.id,
            "RepoTags": [familiar_name(n) for n in self.names],
            "RepoDigests": self.to_api()["RepoDigests"],
            "Parent": "",
            "Comment": "",
            "Created": self.config.created or "",
            "DockerVersion": "",
            "Author": self.config.author or "",
            "Config": {
                "User": c.user or "",
                "Env": list(c.env or ()),
                "Cmd": list(c.cmd) if c.cmd is not None else None,
                "Entrypoint": list(c.entrypoint) if c.entrypoint is not None else None,
                "WorkingDir": c.working_dir or "",
                "Labels": dict(c.labels) or None,
                "ExposedPorts": {port: {} for port in c.exposed_ports or ()} or None,
                "Volumes": {volume: {} for volume in c.volumes or ()} or None,
                "StopSignal": c.stop_signal or "",
            },
            "Architecture": self.config.architecture,
            "Variant": self.config.variant or "",
            "Os": self.config.os,
            "Size": self.size,
            "GraphDriver": {"Name": "overlayfs", "Data": None},
            "RootFS": {"Type": "layers", "Layers": list(self.config.rootfs.diff_ids)},
            "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"},
        }


class Images:
    """What the handlers ask of the store, each call blocking (run it off the event loop)."""

    def __init__(self, store: pycontainerd.Client, insecure: Iterable[str]) -> None:
        self.store = store
        self.insecure = tuple(insecure)

    def summaries(self) -> list[ImageSummary]:
        grouped: dict[str, list[pycontainerd.Image]] = {}
        configs: dict[str, tuple[pycontainerd.ImageConfig, int]] = {}
        for image in self.store.images():
            try:
                desc, config = self.store.config(image)
            except pycontainerd.NotFoundError:
                continue  # not this platform's, or its content is gone
            grouped.setdefault(desc.digest, []).append(image)
            configs.setdefault(desc.digest, (config, self.store.size(image)))
        return [
            ImageSummary(
                id=digest,
                names=tuple(image.name for image in images),
                targets=tuple(image.target.digest for image in images),
                config=configs[digest][0],
                size=configs[digest][1],
            )
            for digest, images in grouped.items()
        ]

    def find(self, name: str) -> tuple[ImageSummary, str | None]:
        """The image ``name`` names (a name, an ID or an ID's prefix), and the store's name it was
        found by (None when found by ID)."""
        summaries = self.summaries()
        try:
            full = self.store.image(name).name
        except (pycontainerd.NotFoundError, pycontainerd.InvalidArgumentError):
            full = None
        if full is not None:
            for summary in summaries:
                if full in summary.names:
                    return summary, full
        hexa = name.removeprefix("sha256:")
        if hexa and all(ch in "0123456789abcdef" for ch in hexa):
            matches = [s for s in summaries if s.id.removeprefix("sha256:").startswith(hexa)]
            if len(matches) == 1:
                return matches[0], None
            if len(matches) > 1:
                raise InvalidParameter(f"ambiguous image ID prefix {name!r}: {len(matches)} images match")
        raise NotFound(f"No such image: {name}")

    def tag(self, name: str, repo: str, tag: str) -> None:
        summary, found = self.find(name)
        source = found if found is not None else summary.names[0]
        target = f"{repo}:{tag or 'latest'}" if "@" not in repo else repo
        try:
            self.store.tag(source, target)
        except pycontainerd.InvalidArgumentError as exc:
            raise InvalidParameter(str(exc)) from None

    def remove(self, name: str, force: bool) -> list[dict[str, str]]:
        summary, found = self.find(name)
        if found is None and len(summary.names) > 1 and not force:
            raise Conflict(
                f"conflict: unable to delete {summary.id.removeprefix('sha256:')[:12]} (must be forced) - "
                "image is referenced in multiple repositories"
            )
        names = [found] if found is not None else list(summary.names)
        done = []
        for each in names:
            self.store.remove_image(each)
            done.append({"Untagged": familiar_name(each)})
        if set(names) == set(summary.names):
            self.store.gc()
            done.append({"Deleted": summary.id})
        return done

    def load(self, archive: IO[bytes]) -> list[str]:
        """Import a docker-archive or an OCI layout; the lines docker load prints."""
        try:
            images = self.store.import_archive(archive)
        except pycontainerd.PycontainerdError as exc:
            raise InvalidParameter(f"loading the archive: {exc}") from None
        lines = []
        for image in images:
            if image.name.startswith("import-"):
                desc, _ = self.store.config(image)
                lines.append(f"Loaded image ID: {desc.digest}")
            else:
                lines.append(f"Loaded image: {familiar_name(image.name)}")
        return lines

    def save(self, names: list[str], stream: IO[bytes]) -> None:
        resolved: list[str] = []
        for name in names:
            summary, found = self.find(name)
            resolved.extend([found] if found is not None else summary.names)
        self.store.export(stream, resolved)

    def insecure_hosts(self, ref: str) -> list[str]:
        domain = pycontainerd.Reference.parse(ref).domain
        host = domain.rsplit(":", 1)[0] if domain.count(":") == 1 else domain
        for entry in self.insecure:
            if entry in (domain, host):
                return [domain]
            if "/" in entry:
                try:
                    if ipaddress.ip_address(host.strip("[]")) in ipaddress.ip_network(entry, strict=False):
                        return [domain]
                except ValueError:
                    continue
        return []


def _credentials(header: str | None) -> pycontainerd.Credentials | None:
    """X-Registry-Auth: base64url JSON of username and password (or an identity token)."""
    if not header:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    except (binascii.Error, ValueError):
        raise InvalidParameter("X-Registry-Auth: not base64-encoded JSON") from None
    if not isinstance(data, dict):
        raise InvalidParameter("X-Registry-Auth: not a JSON object")
    if data.get("identitytoken"):
        return pycontainerd.Credentials("<token>", str(data["identitytoken"]))
    if data.get("username"):
        return pycontainerd.Credentials(str(data["username"]), str(data.get("password", "")))
    return None


def _bar(done: int, total: int) -> str:
    width = 50
    filled = width * done // total if total else 0
    arrow = "=" * max(filled - 1, 0) + (">" if filled else "")
    return f"[{arrow:<{width}}] {done / 1e6:.4g}MB/{total / 1e6:.4g}MB"


def _json_line(value: dict[str, Any]) -> bytes:
    return json.dumps(value).encode() + b"\r\n"


async def _stream(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    return response


def add_routes(route: Route, images: Callable[[web.Request], Images]) -> None:
    """Route the image endpoints through ``route(method, path, handler)``."""

    async def list_images(request: web.Request) -> web.Response:
        filters = _filters(request)
        summaries = await blocking(images(request).summaries)
        return json_response([s.to_api() for s in summaries if _keep(s, filters)])

    async def inspect(request: web.Request) -> web.Response:
        summary, _ = await blocking(images(request).find, request.match_info["name"])
        return json_response(summary.inspect())

    async def tag(request: web.Request) -> web.Response:
        repo = request.query.get("repo", "")
        if not repo:
            raise InvalidParameter("repository name (repo) is required")
        await blocking(images(request).tag, request.match_info["name"], repo, request.query.get("tag", ""))
        return web.Response(status=201)

    async def remove(request: web.Request) -> web.Response:
        force = flag(request, "force")
        return json_response(await blocking(images(request).remove, request.match_info["name"], force))

    async def load(request: web.Request) -> web.StreamResponse:
        with tempfile.TemporaryFile() as archive:
            async for chunk in request.content.iter_chunked(1 << 20):
                await blocking(archive.write, chunk)
            archive.seek(0)
            lines = await blocking(images(request).load, archive)
        response = await _stream(request)
        for line in lines:
            await response.write(_json_line({"stream": line + "\n"}))
        await response.write_eof()
        return response

    async def save(request: web.Request) -> web.StreamResponse:
        names = request.query.getall("names", [])
        if "name" in request.match_info:
            names = [request.match_info["name"]]
        if not names:
            raise InvalidParameter("no image names given (names)")
        with tempfile.TemporaryFile() as archive:
            await blocking(images(request).save, names, archive)
            archive.seek(0)
            response = web.StreamResponse(headers={"Content-Type": "application/x-tar"})
            await response.prepare(request)
            while chunk := await blocking(archive.read, 1 << 20):
                await response.write(chunk)
        await response.write_eof()
        return response

    async def pull(request: web.Request) -> web.StreamResponse:
        if request.query.get("fromSrc"):
            raise InvalidParameter("importing a root filesystem (fromSrc) is not supported yet")
        source = request.query.get("fromImage", "")
        if not source:
            raise InvalidParameter("fromImage is required")
        tag = request.query.get("tag", "")
        ref = source if not tag else (f"{source}@{tag}" if tag.startswith("sha256:") else f"{source}:{tag}")
        try:
            reference = pycontainerd.Reference.parse(ref)
        except pycontainerd.InvalidArgumentError as exc:
            raise InvalidParameter(f"invalid reference format: {exc}") from None
        platform = request.query.get("platform") or None
        credentials = _credentials(request.headers.get("X-Registry-Auth"))
        engine_images = images(request)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

        def progress(event: pycontainerd.Progress) -> None:
            short = event.digest.removeprefix("sha256:")[:12]
            if event.state is pycontainerd.ProgressState.DONE:
                line: dict[str, Any] = {"status": "Pull complete", "progressDetail": {}, "id": short}
            elif event.state is pycontainerd.ProgressState.EXISTS:
                line = {"status": "Already exists", "progressDetail": {}, "id": short}
            else:
                line = {
                    "status": "Downloading",
                    "progressDetail": {"current": event.done, "total": event.total},
                    "progress": _bar(event.done, event.total),
                    "id": short,
                }
            loop.call_soon_threadsafe(queue.put_nowait, line)

        def work() -> pycontainerd.Image:
            try:
                return engine_images.store.pull(
                    str(reference),
                    platform=platform,
                    credentials=credentials,
                    insecure_hosts=engine_images.insecure_hosts(str(reference)),
                    progress=progress,
                )
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, None)

        pulling = loop.run_in_executor(None, work)
        response = await _stream(request)
        shown = familiar_name(str(reference))
        await response.write(
            _json_line({"status": f"Pulling from {_repository(shown)}", "id": reference.tag or "latest"})
        )
        while (line := await queue.get()) is not None:
            await response.write(_json_line(line))
        try:
            image = await pulling
        except pycontainerd.PycontainerdError as exc:
            message = f"pull {shown}: {exc}"
            await response.write(_json_line({"errorDetail": {"message": message}, "error": message}))
        else:
            await response.write(_json_line({"status": f"Digest: {image.target.digest}"}))
            await response.write(_json_line({"status": f"Status: Downloaded newer image for {shown}"}))
        await response.write_eof()
        return response

    route("GET", "/images/json", list_images)
    route("GET", "/images/get", save)
    route("GET", "/images/{name:.+}/get", save)
    route("GET", "/images/{name:.+}/json", inspect)
    route("POST", "/images/{name:.+}/tag", tag)
    route("DELETE", "/images/{name:.+}", remove)
    route("POST", "/images/load", load)
    route("POST", "/images/create", pull)


_FILTERS = {"reference", "dangling", "label"}


def _filters(request: web.Request) -> dict[str, list[str]]:
    text = request.query.get("filters")
    if not text:
        return {}
    try:
        raw = json.loads(text)
    except ValueError:
        raise InvalidParameter(f"filters: not JSON: {text!r}") from None
    if not isinstance(raw, dict):
        raise InvalidParameter("filters: not a JSON object")
    filters: dict[str, list[str]] = {}
    for key, value in raw.items():
        if key not in _FILTERS:
            raise InvalidParameter(f"invalid filter '{key}'")
        # Docker's clients send {"key": {"value": true}}; older ones {"key": ["value"]}.
        filters[key] = list(value) if isinstance(value, dict | list) else [str(value)]
    return filters


def _keep(summary: ImageSummary, filters: dict[str, list[str]]) -> bool:
    for pattern in filters.get("reference", []):
        names = [familiar_name(n) for n in summary.names]
        if not any(
            fnmatch.fnmatchcase(n, pattern) or fnmatch.fnmatchcase(_repository(n), pattern) for n in names
        ):
            return False
    for value in filters.get("dangling", []):
        if value in ("true", "1"):
            return False  # an image here always has a name: none dangles
    labels = summary.config.config.labels
    for label in filters.get("label", []):
        key, sep, wanted = label.partition("=")
        if key not in labels or (sep and labels[key] != wanted):
            return False
    return True
