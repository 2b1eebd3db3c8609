"""The image endpoints: list, inspect, history, tag, remove, prune, load, save, pull and push, on
the engine's pycontainerd store. Names are shown as Docker shows them (``busybox:latest`` for
``docker.io/library/busybox:latest``); an image's ID is the digest of its config.

An image whose last name moves to another image (a pull, load or tag of that name) stays, as
dockerd's containerd store keeps it: named ``moby-dangling@<target digest>``, listed as
``<none>:<none>``, until ``docker image prune`` or ``docker rmi`` of its ID removes it."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import fnmatch
import ipaddress
import json
import re
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterable, Sequence
from typing import IO, Any

import attrs
from aiohttp import web

import pycontainerd
from pyengine._errors import ApiError, Conflict, InvalidParameter, NotFound, Unauthorized
from pyengine._events import EventBus, parse_time
from pyengine._http import Route, blocking, flag, json_response, parse_filters
from pyengine._times import unix

__all__ = [
    "ImageSummary",
    "ImageUser",
    "Images",
    "add_routes",
    "auth_config",
    "familiar_name",
    "labels_match",
    "until_filter",
]


_DOCKER_HUB = "docker.io/"
_LIBRARY = "docker.io/library/"
#: The store name of a dangling image, before its target's digest (dockerd's containerd store's).
_DANGLING = "docker.io/library/moby-dangling@"


def _dangling(name: str) -> bool:
    return name.startswith(_DANGLING)


def _short(image_id: str) -> str:
    return image_id.removeprefix("sha256:")[:12]


@attrs.frozen
class ImageUser:
    """A container using an image, as the image endpoints need to know it."""

    id: str
    running: bool


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

    @property
    def dangling(self) -> bool:
        """Whether every name it has is a dangling one (it has no tag)."""
        return all(_dangling(n) for n in self.names)

    @property
    def tags(self) -> list[str]:
        return [familiar_name(n) for n in self.names if not _dangling(n)]

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.config.config.labels)

    def to_api(self, shared_size: int = -1, containers: int = -1) -> dict[str, Any]:
        return {
            "Id": self.id,
            "ParentId": "",
            "RepoTags": self.tags,
            "RepoDigests": sorted(
                {
                    f"{_repository(familiar_name(n))}@{t}"
                    for n, t in zip(self.names, self.targets, strict=True)
                    if not _dangling(n)
                }
            ),
            "Created": unix(self.config.created or ""),
            "Size": self.size,
            "SharedSize": shared_size,
            "Labels": self.labels,  # the spec's ImageSummary has no null here
            "Containers": containers,
        }

    def inspect(self) -> dict[str, Any]:
        c = self.config.config
        return {
            "Id": self.id,
            "RepoTags": self.tags,
            "RepoDigests": self.to_api()["RepoDigests"],
            "Parent": "",
            "Comment": "",
            "Created": self.config.created or "",
            "DockerVersion": "",
            "Author": self.config.author or "",
            "Config": {
                "User": c.user or "",
                "Env": list(c.env or ()),
                # The spec has no null for these: empty lists and maps say none.
                "Cmd": list(c.cmd or ()),
                "Entrypoint": list(c.entrypoint or ()),
                "WorkingDir": c.working_dir or "",
                "Labels": dict(c.labels),
                "ExposedPorts": {port: {} for port in c.exposed_ports or ()} or None,
                "Volumes": {volume: {} for volume in c.volumes or ()},
                "StopSignal": c.stop_signal or "",
            },
            "Architecture": self.config.architecture,
            "Variant": self.config.variant or "",
            "Os": self.config.os,
            "Size": self.size,
            "GraphDriver": {"Name": "overlayfs", "Data": {}},
            "RootFS": {"Type": "layers", "Layers": list(self.config.rootfs.diff_ids)},
            "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"},
        }


class Images:
    """What the handlers ask of the store, each call blocking (run it off the event loop).

    ``users(image_id)`` gives the containers using an image (the daemon sets it to its containers'):
    an image in use is removed or pruned only as dockerd allows."""

    def __init__(
        self,
        store: pycontainerd.Client,
        insecure: Iterable[str],
        events: EventBus,
        mirrors: Iterable[str] = (),
    ) -> None:
        self.store = store
        self.insecure = tuple(insecure)
        self.events = events
        #: The hosts of the registry mirrors (``http://h:p/`` gives ``h:p``), and those spoken to
        #: over plain HTTP.
        urls = [urllib.parse.urlsplit(mirror) for mirror in mirrors]
        self.mirrors = [url.netloc for url in urls]
        self._http_mirrors = [url.netloc for url in urls if url.scheme == "http"]
        self.users: Callable[[str], Sequence[ImageUser]] = lambda image_id: ()

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
        if full is not None and not _dangling(full):
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

    def _named(self) -> dict[str, pycontainerd.Image]:
        """Every name and the image it names: what :meth:`_keep_dangling` compares with."""
        return {image.name: image for image in self.store.images()}

    def _keep_dangling(self, before: dict[str, pycontainerd.Image]) -> None:
        """Name ``moby-dangling@…`` each image of ``before`` that lost its last name meanwhile."""
        kept = {image.target.digest for image in self.store.images()}
        for image in before.values():
            if image.target.digest not in kept:
                dangling = pycontainerd.Image(f"{_DANGLING}{image.target.digest}", image.target)
                self.store.metadata.images.create(self.store.namespace, dangling)
                kept.add(image.target.digest)

    def tag(self, name: str, repo: str, tag: str) -> None:
        summary, found = self.find(name)
        source = found if found is not None else summary.names[0]
        target = f"{repo}:{tag or 'latest'}" if "@" not in repo else repo
        before = self._named()
        try:
            image = self.store.tag(source, target)
        except pycontainerd.InvalidArgumentError as exc:
            raise InvalidParameter(str(exc)) from None
        self._keep_dangling(before)
        self.events.image(summary.id, "tag", name=familiar_name(image.name), labels=summary.labels)

    def remove(self, name: str, force: bool) -> list[dict[str, str]]:
        """``docker rmi``: a name is untagged (the image goes with its last name), an ID removes the
        image with all its names; an image containers use is kept as dockerd keeps it."""
        summary, found = self.find(name)
        users = list(self.users(summary.id))
        tags = [n for n in summary.names if not _dangling(n)]
        done: list[dict[str, str]] = []
        if found is not None:
            if not force and len(tags) == 1 and users:
                raise Conflict(
                    f'conflict: unable to remove repository reference "{name}" (must force) - container '
                    f"{users[0].id[:12]} is using its referenced image {_short(summary.id)}"
                )
            before = {found: self.store.image(found)}
            self._untag(summary, found, done)
            if len(tags) > 1:
                return done
            if users:  # forced: the image stays for its containers, dangling
                self._keep_dangling(before)
                return done
        else:
            running = next((u for u in users if u.running), None)
            if running is not None:
                raise Conflict(
                    f"conflict: unable to delete {_short(summary.id)} (cannot be forced) - "
                    f"image is being used by running container {running.id[:12]}"
                )
            if len(tags) > 1 and not force:
                raise Conflict(
                    f"conflict: unable to delete {_short(summary.id)} (must be forced) - "
                    "image is referenced in multiple repositories"
                )
            if users and not force:
                raise Conflict(
                    f"conflict: unable to delete {_short(summary.id)} (must be forced) - "
                    f"image is being used by stopped container {users[0].id[:12]}"
                )
        for each in summary.names:
            if each != found:
                self._untag(summary, each, done)
        self.store.gc()
        done.append({"Deleted": summary.id})
        self.events.image(summary.id, "delete", labels=summary.labels)
        return done

    def _untag(self, summary: ImageSummary, name: str, done: list[dict[str, str]]) -> None:
        with contextlib.suppress(pycontainerd.NotFoundError):
            self.store.remove_image(name)
        if not _dangling(name):
            done.append({"Untagged": familiar_name(name)})
            self.events.image(summary.id, "untag", labels=summary.labels)

    def prune(self, filters: dict[str, list[str]]) -> dict[str, Any]:
        """``POST /images/prune``: the dangling images (every image with ``dangling=false``) that no
        container uses, created before ``until``, with (or without) the ``label``s given."""
        only_dangling = _dangling_filter(filters)
        before = until_filter(filters)
        deleted: list[dict[str, str]] = []
        reclaimed = 0
        for summary in self.summaries():
            if only_dangling and not summary.dangling:
                continue
            if before is not None and unix(summary.config.created or "") * 1_000_000_000 >= before:
                continue
            if not labels_match(summary.labels, filters) or self.users(summary.id):
                continue
            for name in summary.names:
                self._untag(summary, name, deleted)
            freed = self.store.gc().bytes_freed
            reclaimed += freed
            deleted.append({"Deleted": summary.id})
            self.events.image(summary.id, "delete", labels=summary.labels)
        self.events.publish("image", "prune", "", {"reclaimed": str(reclaimed)})
        return {"ImagesDeleted": deleted, "SpaceReclaimed": reclaimed}  # the spec's list, never null

    def history(self, name: str) -> list[dict[str, Any]]:
        """``docker history``: the config's history, newest first, with each layer's unpacked size."""
        summary, _ = self.find(name)
        config = summary.config
        diff_ids = list(config.rootfs.diff_ids)
        snapshotter = self.store.snapshotter()
        entries: list[dict[str, Any]] = []
        layer = 0
        for item in config.history or ():
            size = 0
            if not item.empty_layer and layer < len(diff_ids):
                layer += 1
                try:
                    size = snapshotter.usage(pycontainerd.chain_id(diff_ids[:layer])).size
                except pycontainerd.NotFoundError:
                    size = 0  # not unpacked
            entries.append(
                {
                    "Id": "<missing>",
                    "Created": unix(item.created or ""),
                    "CreatedBy": item.created_by or "",
                    "Tags": None,
                    "Size": size,
                    "Comment": item.comment or "",
                }
            )
        if not entries:
            entries.append(
                {
                    "Id": "",
                    "Created": unix(config.created or ""),
                    "CreatedBy": "",
                    "Tags": None,
                    "Size": 0,
                    "Comment": "",
                }
            )
        entries.reverse()
        entries[0]["Id"] = summary.id
        entries[0]["Tags"] = summary.tags or None
        return entries

    def load(self, archive: IO[bytes]) -> list[str]:
        """Import a docker-archive or an OCI layout; the lines docker load prints."""
        before = self._named()
        try:
            images = self.store.import_archive(archive)
        except pycontainerd.PycontainerdError as exc:
            raise InvalidParameter(f"loading the archive: {exc}") from None
        self._keep_dangling(before)
        lines = []
        for image in images:
            desc, config = self.store.config(image)
            self.events.image(desc.digest, "load", labels=config.config.labels)
            if image.name.startswith("import-"):
                lines.append(f"Loaded image ID: {desc.digest}")
            else:
                lines.append(f"Loaded image: {familiar_name(image.name)}")
        return lines

    def save(self, names: list[str], stream: IO[bytes]) -> None:
        resolved: list[str] = []
        summaries: list[ImageSummary] = []
        for name in names:
            summary, found = self.find(name)
            resolved.extend([found] if found is not None else summary.names)
            summaries.append(summary)
        self.store.export(stream, resolved)
        for summary in summaries:
            self.events.image(summary.id, "save", labels=summary.labels)

    def pull(
        self,
        ref: str,
        platform: str | None,
        credentials: pycontainerd.Credentials | None,
        progress: Callable[[pycontainerd.Progress], None],
    ) -> pycontainerd.Image:
        before = self._named()
        image = self.store.pull(
            ref,
            platform=platform,
            credentials=credentials,
            insecure_hosts=[*self.insecure_hosts(ref), *self._http_mirrors],
            progress=progress,
            mirrors=self.mirrors,
        )
        self._keep_dangling(before)
        _, config = self.store.config(image)
        shown = familiar_name(image.name)
        self.events.image(shown, "pull", name=_repository(shown), labels=config.config.labels)
        return image

    def push_names(self, name: str, tag: str) -> list[str]:
        """The store's names ``docker push`` of ``name`` (a repository) and ``tag`` pushes: that tag,
        or every tag of the repository when none is given."""
        try:
            reference = pycontainerd.Reference.parse(name if not tag else f"{name}:{tag}")
        except pycontainerd.InvalidArgumentError as exc:
            raise InvalidParameter(f"invalid reference format: {exc}") from None
        if tag:
            try:
                return [self.store.image(str(reference)).name]
            except pycontainerd.NotFoundError:
                raise NotFound(f"No such image: {familiar_name(str(reference))}") from None
        repository = _repository(str(reference))
        names = [
            i.name for i in self.store.images() if _repository(i.name) == repository and "@" not in i.name
        ]
        if not names:
            raise NotFound(f"An image does not exist locally with the tag: {familiar_name(repository)}")
        return names

    def push(
        self,
        name: str,
        credentials: pycontainerd.Credentials | None,
        progress: Callable[[pycontainerd.Progress], None],
    ) -> pycontainerd.Descriptor:
        summary, _ = self.find(name)
        root = self.store.push(
            name, credentials=credentials, insecure_hosts=self.insecure_hosts(name), progress=progress
        )
        shown = familiar_name(name)
        self.events.image(shown, "push", name=_repository(shown), labels=summary.labels)
        return root

    def layers(self, name: str) -> list[pycontainerd.Descriptor]:
        """The blobs a push of ``name`` sends before its manifests (layers and config)."""
        image = self.store.image(name)
        return [
            d
            for d in self.store.descriptors(image)
            if "manifest" not in d.media_type and "index" not in d.media_type
        ]

    def login(self, server: str, credentials: pycontainerd.Credentials) -> None:
        """Check ``credentials`` against the registry ``server`` (``host[:port]``)."""
        url = (
            f"{'http' if self.insecure_hosts(f'{server}/x') or _loopback(server) else 'https'}://{server}/v2/"
        )
        try:
            with pycontainerd.Resolver(
                credentials=lambda host: credentials, insecure_hosts=self.insecure_hosts(f"{server}/x")
            ) as resolver:
                resolver.login(server)
        except pycontainerd.AuthenticationError as exc:
            # dockerd's words; the registry's (or the token server's) follow.
            raise Unauthorized(
                f"login attempt to {url} failed with status: 401 Unauthorized ({exc})"
            ) from None
        except pycontainerd.RegistryError as exc:
            raise ApiError(f"login to {server}: {exc}") from None

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


def _loopback(server: str) -> bool:
    """Whether ``host[:port]`` is loopback, which registries are spoken to over plain HTTP."""
    host = server[1 : server.index("]")] if server.startswith("[") else server.split(":", 1)[0]
    return host in ("localhost", "127.0.0.1", "::1")


def auth_config(body: object) -> tuple[str, pycontainerd.Credentials]:
    """The registry host and the credentials of a ``POST /auth`` body (Docker's AuthConfig)."""
    if not isinstance(body, dict):
        raise InvalidParameter("the request body is not a JSON object")
    server = str(body.get("serveraddress") or "")
    if not server:
        raise InvalidParameter("serveraddress is required: pyengine has no default registry to log in to")
    host = server.split("://", 1)[-1].split("/", 1)[0]
    if body.get("identitytoken"):
        raise InvalidParameter("logging in with an identity token is not supported by pyengine yet")
    username, password = str(body.get("username") or ""), str(body.get("password") or "")
    if not username:
        raise InvalidParameter("username is required")
    return host, pycontainerd.Credentials(username, password)


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


async def _push_one(
    response: web.StreamResponse, images: Images, name: str, credentials: pycontainerd.Credentials | None
) -> bool:
    """Push the image ``name``, writing its progress as dockerd does; False if it failed."""
    loop = asyncio.get_running_loop()
    repository = _repository(familiar_name(name))
    layers = await blocking(images.layers, name)
    ids = {d.digest: d.digest.removeprefix("sha256:")[:12] for d in layers}
    for short in ids.values():
        await response.write(_json_line({"status": "Preparing", "progressDetail": {}, "id": short}))
    queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

    def progress(event: pycontainerd.Progress) -> None:
        short = ids.get(event.digest)
        if short is None:
            return  # a manifest: the digest line reports it
        if event.state is pycontainerd.ProgressState.UPLOADING:
            line: dict[str, Any] = {
                "status": "Pushing",
                "progressDetail": {"current": event.done, "total": event.total},
                "progress": _bar(event.done, event.total),
                "id": short,
            }
        elif event.state is pycontainerd.ProgressState.MOUNTED:
            line = {"status": f"Mounted from {repository}", "progressDetail": {}, "id": short}
        elif event.state is pycontainerd.ProgressState.EXISTS:
            line = {"status": "Layer already exists", "progressDetail": {}, "id": short}
        else:
            line = {"status": "Pushed", "progressDetail": {}, "id": short}
        loop.call_soon_threadsafe(queue.put_nowait, line)

    def work() -> pycontainerd.Descriptor:
        try:
            return images.push(name, credentials, progress)
        finally:
            loop.call_soon_threadsafe(queue.put_nowait, None)

    pushing = loop.run_in_executor(None, work)
    while (line := await queue.get()) is not None:
        await response.write(_json_line(line))
    try:
        root = await pushing
    except pycontainerd.PycontainerdError as exc:
        # dockerd's word first, so that the reason reads the same whatever the registry's auth.
        message = f"unauthorized: {exc}" if isinstance(exc, pycontainerd.AuthenticationError) else str(exc)
        await response.write(_json_line({"errorDetail": {"message": message}, "error": message}))
        return False
    tag = pycontainerd.Reference.parse(name).tag or "latest"
    await response.write(
        _json_line({"status": f"{tag}: digest: {root.digest} size: {root.size}", "progressDetail": {}})
    )
    await response.write(
        _json_line({"progressDetail": {}, "aux": {"Tag": tag, "Digest": root.digest, "Size": root.size}})
    )
    return True


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
            if not _is_layer(event.media_type):
                return  # dockerd shows the layers; the digest line says the rest
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
                return engine_images.pull(str(reference), platform, credentials, progress)
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

    async def history(request: web.Request) -> web.Response:
        return json_response(await blocking(images(request).history, request.match_info["name"]))

    async def prune(request: web.Request) -> web.Response:
        filters = _filters(request, _PRUNE_FILTERS)
        return json_response(await blocking(images(request).prune, filters))

    async def push(request: web.Request) -> web.StreamResponse:
        engine_images = images(request)
        names = await blocking(
            engine_images.push_names, request.match_info["name"], request.query.get("tag", "")
        )
        credentials = _credentials(request.headers.get("X-Registry-Auth"))
        response = await _stream(request)
        shown = familiar_name(names[0])
        await response.write(_json_line({"status": f"The push refers to repository [{_repository(shown)}]"}))
        for name in names:
            if not await _push_one(response, engine_images, name, credentials):
                break
        await response.write_eof()
        return response

    async def search(request: web.Request) -> web.Response:
        """``docker search``: refused, saying why, after dockerd's own checks of the query."""
        limit = request.query.get("limit", "")
        if limit and (not limit.isdigit()):
            raise InvalidParameter(f"invalid limit specified: {limit!r} is not a number of results")
        parse_filters(request.query.get("filters"), _SEARCH_FILTERS)
        term = request.query.get("term", "")
        raise InvalidParameter(
            f"searching for {term!r}: image search is not supported by pyengine: it has no default "
            "registry (Docker Hub is not reachable from it), and the registries it pulls from speak "
            "the distribution API, which has no search"
        )

    route("GET", "/images/json", list_images)
    route("GET", "/images/search", search)
    route("GET", "/images/{name:.+}/history", history)
    route("POST", "/images/prune", prune)
    route("POST", "/images/{name:.+}/push", push)
    route("GET", "/images/get", save)
    route("GET", "/images/{name:.+}/get", save)
    route("GET", "/images/{name:.+}/json", inspect)
    route("POST", "/images/{name:.+}/tag", tag)
    route("DELETE", "/images/{name:.+}", remove)
    route("POST", "/images/load", load)
    route("POST", "/images/create", pull)


_LIST_FILTERS = frozenset({"reference", "dangling", "label"})
_SEARCH_FILTERS = frozenset({"is-automated", "is-official", "stars"})
_PRUNE_FILTERS = frozenset({"dangling", "until", "label", "label!"})


def _filters(request: web.Request, allowed: frozenset[str] = _LIST_FILTERS) -> dict[str, list[str]]:
    return parse_filters(request.query.get("filters"), allowed)


def _dangling_filter(filters: dict[str, list[str]], default: bool = True) -> bool:
    """The ``dangling`` filter's value (``true``/``1`` or ``false``/``0``)."""
    values = filters.get("dangling", [])
    if not values:
        return default
    if len(set(values)) > 1:
        raise InvalidParameter("invalid filter 'dangling': more than one value")
    value = values[0].lower()
    if value not in ("true", "1", "false", "0"):
        raise InvalidParameter(f"invalid filter 'dangling={values[0]}'")
    return value in ("true", "1")


_DURATION = re.compile(r"(\d+(?:\.\d*)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def until_filter(filters: dict[str, list[str]]) -> int | None:
    """The ``until`` filter as nanoseconds since the epoch: a time (unix or RFC 3339) or a Go
    duration before now (``24h``, ``1h30m``), as dockerd's prune reads it."""
    values = filters.get("until", [])
    if not values:
        return None
    if len(values) > 1:
        raise InvalidParameter("more than one until filter specified")
    text = values[0]
    parts = _DURATION.findall(text)
    if parts and "".join(number + unit for number, unit in parts) == text:
        seconds = sum(float(number) * _UNITS[unit] for number, unit in parts)
        return time.time_ns() - int(seconds * 1e9)
    return parse_time(text, "until")


def labels_match(labels: dict[str, str], filters: dict[str, list[str]]) -> bool:
    """``label`` filters all match (``key`` or ``key=value``) and no ``label!`` filter does."""

    def has(label: str) -> bool:
        key, sep, wanted = label.partition("=")
        return key in labels and (not sep or labels[key] == wanted)

    return all(has(label) for label in filters.get("label", [])) and not any(
        has(label) for label in filters.get("label!", [])
    )


def _keep(summary: ImageSummary, filters: dict[str, list[str]]) -> bool:
    for pattern in filters.get("reference", []):
        names = summary.tags
        if not any(
            fnmatch.fnmatchcase(n, pattern) or fnmatch.fnmatchcase(_repository(n), pattern) for n in names
        ):
            return False
    if "dangling" in filters and _dangling_filter(filters) != summary.dangling:
        return False
    return labels_match(summary.labels, filters)


def _is_layer(media_type: str) -> bool:
    """A layer's media type: OCI's (``…image.layer.v1.tar…``) or Docker's (``…rootfs.diff.tar…``)."""
    return ".layer." in media_type or ".rootfs." in media_type
