"""Resolve, fetch and push against one registry: containerd's Resolver, Fetcher and Pusher, in Python.

    resolver = Resolver(credentials=lambda host: Credentials("user", "secret"))
    name, desc = resolver.resolve("127.0.0.1:5000/app:1.0")       # Reference, manifest Descriptor
    with resolver.fetcher(name).fetch(desc) as stream:             # verified as it is read
        manifest = stream.read()
    pusher = resolver.pusher("127.0.0.1:5000/copy:1.0")
    pusher.push_blob(layer, open(path, "rb"), mount_from=["app"])  # HEAD, mount, or upload
    pusher.push_manifest(desc, manifest)                           # last, under the tag

What to push and in which order is the caller's: blobs before the manifests that name them.
"""

from __future__ import annotations

import hashlib
import io
import json
from typing import TYPE_CHECKING
from urllib.parse import quote

from urllib3.response import BaseHTTPResponse

from pycontainerd._errors import DigestMismatchError, RegistryError, SizeMismatchError
from pycontainerd._remotes.http import CredentialsFunc, Transport
from pycontainerd._remotes.reference import Reference
from pycontainerd._remotes.stream import ProgressFunc, VerifyingReader, hasher
from pycontainerd._remotes.types import MANIFEST_MEDIA_TYPES, Descriptor, Progress, ProgressState

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence
    from typing import IO

    from pycontainerd._remotes.http import Body

__all__ = ["Fetcher", "Pusher", "Resolver"]

_ACCEPT = ", ".join(MANIFEST_MEDIA_TYPES)
_MANIFEST_LIMIT = 4 * 1048 * 1048  # containerd's MaxManifestSize, as _images bounds manifests
_DEFAULT_CHUNK = 8 * 1024 * 1024


def _as_reference(ref: Reference | str) -> Reference:
    return ref if isinstance(ref, Reference) else Reference.parse(ref)


class Resolver:
    """The entry point: one connection pool and token cache for every registry it talks to.

    ``credentials(host)`` gives the user name and password for a registry host (``host[:port]``), or
    None for anonymous access. Plain HTTP is used for localhost, 127.0.0.1 and ::1, and for the
    ``insecure_hosts`` the caller names; HTTPS with verified certificates for every other host.
    """

    def __init__(
        self,
        *,
        credentials: CredentialsFunc | None = None,
        insecure_hosts: Iterable[str] = (),
        timeout: float = 30.0,
        retries: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 10.0,
    ) -> None:
        self._transport = Transport(
            credentials=credentials,
            insecure_hosts=insecure_hosts,
            timeout=timeout,
            retries=retries,
            backoff=backoff,
            max_backoff=max_backoff,
        )

    def close(self) -> None:
        """Close the pooled connections."""
        self._transport.close()

    def __enter__(self) -> Resolver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def resolve(self, ref: Reference | str) -> tuple[Reference, Descriptor]:
        """The descriptor of the manifest or index ``ref`` names, and ``ref`` pinned to its digest.

        HEAD first (it does not count against pull limits); when the registry leaves out the
        digest, type or size, GET the manifest and take them from its bytes, checking them against
        ``Docker-Content-Digest`` and a digest in ``ref``.
        """
        reference = _as_reference(ref)
        fetcher = self.fetcher(reference)
        path = f"/v2/{reference.path}/manifests/{quote(reference.object, safe=':')}"
        try:
            head = fetcher.request("HEAD", path, headers={"Accept": _ACCEPT}, ok=(200,))
        except RegistryError as exc:
            if exc.status != 404:
                raise
            raise RegistryError(f"{reference}: not found in the registry {reference.domain}", 404) from exc
        head.release_conn()
        digest = head.headers.get("Docker-Content-Digest")
        media_type = (head.headers.get("Content-Type") or "").split(";")[0].strip()
        length = head.headers.get("Content-Length")
        if reference.digest and digest and digest != reference.digest:
            raise DigestMismatchError(reference.digest, digest)
        if digest and media_type in MANIFEST_MEDIA_TYPES and length and length.isdigit():
            descriptor = Descriptor(media_type, digest, int(length))
        else:
            descriptor = self._resolve_by_get(fetcher, reference, path)
        return reference.with_digest(descriptor.digest), descriptor

    def _resolve_by_get(self, fetcher: Fetcher, reference: Reference, path: str) -> Descriptor:
        response = fetcher.request("GET", path, headers={"Accept": _ACCEPT}, ok=(200,))
        try:
            data = response.read(_MANIFEST_LIMIT + 1)
        finally:
            response.release_conn()
        if len(data) > _MANIFEST_LIMIT:
            raise RegistryError(f"{reference}: manifest larger than {_MANIFEST_LIMIT} bytes")
        header = response.headers.get("Docker-Content-Digest")
        algorithm = (reference.digest or header or "sha256:").partition(":")[0]
        actual = f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"
        for expected in (reference.digest, header):
            if expected and expected.partition(":")[0] == algorithm and expected != actual:
                raise DigestMismatchError(expected, actual)
        media_type = (response.headers.get("Content-Type") or "").split(";")[0].strip()
        if media_type not in MANIFEST_MEDIA_TYPES:
            try:
                media_type = str(json.loads(data).get("mediaType") or "")
            except (ValueError, AttributeError, RecursionError):  # a registry's bytes: anything
                media_type = ""
        if media_type not in MANIFEST_MEDIA_TYPES:
            raise RegistryError(f"{reference}: unsupported manifest media type {media_type!r}")
        return Descriptor(media_type, actual, len(data))

    def login(self, host: str) -> None:
        """Check the credentials for the registry ``host`` (``host[:port]``) as ``docker login`` does:
        ``GET /v2/`` through the auth flow (a Bearer token asked for no scope).

        A registry without auth accepts any credentials, as it does for docker. AuthenticationError
        if the registry or its token server refuses them; RegistryError for any other failure.
        """
        response = self._transport.request("GET", host, "/v2/", scopes=(), ok=(200,))
        response.drain_conn()
        response.release_conn()

    def fetcher(self, ref: Reference | str) -> Fetcher:
        """Reads manifests and blobs of ``ref``'s repository."""
        return Fetcher(self._transport, _as_reference(ref))

    def pusher(self, ref: Reference | str) -> Pusher:
        """Writes blobs and manifests into ``ref``'s repository (manifests under its tag by default)."""
        return Pusher(self._transport, _as_reference(ref))


class _Repository:
    def __init__(self, transport: Transport, reference: Reference, scopes: tuple[str, ...]) -> None:
        self._transport = transport
        self.reference = reference
        self._scopes = scopes

    def request(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        body: Body = None,
        ok: Iterable[int] = (200,),
        scopes: tuple[str, ...] | None = None,
    ) -> BaseHTTPResponse:
        return self._transport.request(
            method,
            self.reference.endpoint_host,
            path,
            scopes=scopes or self._scopes,
            headers=headers,
            body=body,
            ok=ok,
        )

    def _blob_path(self, descriptor: Descriptor) -> str:
        kind = "manifests" if descriptor.is_manifest else "blobs"
        return f"/v2/{self.reference.path}/{kind}/{descriptor.digest}"


class Fetcher(_Repository):
    """Reads from one repository; every stream it returns is checked against its descriptor."""

    def __init__(self, transport: Transport, reference: Reference) -> None:
        super().__init__(transport, reference, (f"repository:{reference.path}:pull",))

    def fetch(
        self, descriptor: Descriptor, *, progress: ProgressFunc | None = None, verify_digest: bool = True
    ) -> VerifyingReader:
        """A readable stream of the blob or manifest ``descriptor`` names.

        Redirects are followed; a dropped connection is resumed with a Range request. Reading to the
        end raises SizeMismatchError or DigestMismatchError when the bytes are not what the
        descriptor says (more bytes than its size raise as soon as they arrive); with
        ``verify_digest=False`` the digest is the caller's to check (a content store writer does).
        """
        path = self._blob_path(descriptor)
        headers = {"Accept": descriptor.media_type if descriptor.is_manifest else "*/*"}
        response = self.request("GET", path, headers=headers)

        def reopen(offset: int) -> BaseHTTPResponse | None:
            if descriptor.is_manifest:
                return None
            fresh = self.request("GET", path, headers={**headers, "Range": f"bytes={offset}-"}, ok=(200, 206))
            if fresh.status == 206:
                return fresh
            fresh.close()  # the registry ignored the Range: it would send the blob again from 0
            fresh.release_conn()
            return None

        return VerifyingReader(
            descriptor, response, reopen=reopen, progress=progress, verify_digest=verify_digest
        )

    def fetch_bytes(self, descriptor: Descriptor) -> bytes:
        """The whole of a small blob or manifest, verified."""
        with self.fetch(descriptor) as stream:
            return stream.read()


class Pusher(_Repository):
    """Writes into one repository: blobs first (checked, mounted or uploaded), manifests last."""

    def __init__(self, transport: Transport, reference: Reference) -> None:
        super().__init__(transport, reference, (f"repository:{reference.path}:pull,push",))

    def blob_exists(self, descriptor: Descriptor) -> bool:
        """HEAD the blob (or manifest): True when the repository has it at the descriptor's size."""
        response = self.request("HEAD", self._blob_path(descriptor), ok=(200, 404))
        response.release_conn()
        if response.status == 404:
            return False
        length = response.headers.get("Content-Length")
        return length is None or not length.isdigit() or int(length) == descriptor.size

    def push_blob(
        self,
        descriptor: Descriptor,
        stream: IO[bytes],
        *,
        mount_from: Sequence[str] = (),
        chunk_size: int | None = None,
        progress: ProgressFunc | None = None,
    ) -> ProgressState:
        """Put the blob ``descriptor`` names into the repository, reading its bytes from ``stream``.

        Returns how: EXISTS (HEAD found it: nothing read), MOUNTED (a cross-repository mount from one
        of ``mount_from``, repository paths of the same registry, succeeded), or DONE (uploaded: in
        ``chunk_size`` PATCHes then a PUT, or in one streamed PUT when ``chunk_size`` is None).
        """

        def report(done: int, state: ProgressState) -> None:
            if progress is not None:
                progress(Progress(descriptor.digest, done, descriptor.size, state, descriptor.media_type))

        if self.blob_exists(descriptor):
            report(descriptor.size, ProgressState.EXISTS)
            return ProgressState.EXISTS
        uploads = f"/v2/{self.reference.path}/blobs/uploads/"
        location = None
        for source in mount_from:
            if source == self.reference.path:
                continue
            scopes = (*self._scopes, f"repository:{source}:pull")
            query = f"?mount={descriptor.digest}&from={quote(source, safe='/')}"
            response = self.request("POST", uploads + query, ok=(201, 202), scopes=scopes)
            response.drain_conn()
            response.release_conn()
            if response.status == 201:
                report(descriptor.size, ProgressState.MOUNTED)
                return ProgressState.MOUNTED
            location = response.headers.get("Location")  # 202: an upload session was opened instead
            if location:
                break
        if not location:
            response = self.request("POST", uploads, ok=(202,))
            response.drain_conn()
            response.release_conn()
            location = response.headers.get("Location")
        if not location:
            raise RegistryError(f"POST {uploads}: 202 without a Location header", 202)
        counted = _CountingReader(stream, descriptor, lambda done: report(done, ProgressState.UPLOADING))
        if chunk_size is None:
            self._put(location, descriptor.digest, counted, descriptor.size)
            counted.check_end()
        else:
            location = self._patch_chunks(location, counted, chunk_size or _DEFAULT_CHUNK)
            counted.check_end()  # before the PUT commits the upload
            self._put(location, descriptor.digest, b"", 0)
        report(descriptor.size, ProgressState.DONE)
        return ProgressState.DONE

    def _patch_chunks(self, location: str, stream: _CountingReader, chunk_size: int) -> str:
        offset = 0
        while chunk := stream.read(chunk_size):
            headers = {
                "Content-Type": "application/octet-stream",
                "Content-Range": f"{offset}-{offset + len(chunk) - 1}",
                "Content-Length": str(len(chunk)),
            }
            response = self.request("PATCH", self._absolute(location), headers=headers, body=chunk, ok=(202,))
            response.drain_conn()
            response.release_conn()
            location = response.headers.get("Location") or location
            offset += len(chunk)
        return location

    def _put(self, location: str, digest: str, body: Body, size: int) -> None:
        url = self._absolute(location)
        url += ("&" if "?" in url else "?") + f"digest={quote(digest, safe='')}"
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
        response = self.request("PUT", url, headers=headers, body=body, ok=(201, 204))
        response.drain_conn()
        response.release_conn()

    def _absolute(self, location: str) -> str:
        if "://" in location:
            return location
        return self._transport.base_url(self.reference.endpoint_host) + location

    def push_manifest(self, descriptor: Descriptor, data: bytes, *, tag: str | None = None) -> str:
        """PUT a manifest or index (push it after the blobs it names) under ``tag``.

        ``tag`` defaults to the pusher's reference: its tag, else its digest. The bytes must hash to
        ``descriptor.digest``; they are sent with ``descriptor.media_type`` as Content-Type. Returns
        the digest the registry reports.
        """
        digest = hasher(descriptor.digest)
        digest.update(data)
        actual = f"{digest.name}:{digest.hexdigest()}"
        if actual != descriptor.digest:
            raise DigestMismatchError(descriptor.digest, actual)
        target = tag or self.reference.tag or self.reference.digest or descriptor.digest
        path = f"/v2/{self.reference.path}/manifests/{quote(target, safe=':')}"
        headers = {"Content-Type": descriptor.media_type}
        response = self.request("PUT", path, headers=headers, body=data, ok=(201, 200))
        response.drain_conn()
        response.release_conn()
        reported = response.headers.get("Docker-Content-Digest") or descriptor.digest
        if reported != descriptor.digest:
            raise DigestMismatchError(descriptor.digest, reported)
        return reported


class _CountingReader(io.RawIOBase):
    """The caller's stream as we upload it: counted and hashed, so a short or wrong stream raises."""

    def __init__(self, stream: IO[bytes], descriptor: Descriptor, report: Callable[[int], None]) -> None:
        super().__init__()
        self._stream = stream
        self.descriptor = descriptor
        self._report = report
        self._hash = hasher(descriptor.digest)
        self.done = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        size = -1 if size is None else size
        left = self.descriptor.size - self.done
        want = left if size < 0 else min(size, left)
        data = self._stream.read(want) if want > 0 else b""
        if data:
            self._hash.update(data)
            self.done += len(data)
            self._report(self.done)
        return data

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def check_end(self) -> None:
        if self.done != self.descriptor.size:
            raise SizeMismatchError(self.descriptor.size, self.done)
        actual = f"{self._hash.name}:{self._hash.hexdigest()}"
        if actual != self.descriptor.digest:
            raise DigestMismatchError(self.descriptor.digest, actual)
