"""The registry client: pull and push images over the OCI distribution spec.

    from pycontainerd._remotes.reference import Reference
    from pycontainerd._remotes.resolver import Resolver

    with Resolver() as resolver:
        ref, desc = resolver.resolve("127.0.0.1:5000/busybox:latest")
        with resolver.fetcher(ref).fetch(desc) as stream:
            manifest = stream.read()

:class:`Resolver` turns a reference into a descriptor and hands out a :class:`Fetcher` (streams of
manifests and blobs, verified against their descriptors as they are read) and a :class:`Pusher`
(existence checks, cross-repository mounts, chunked or monolithic uploads, manifests last). Auth is
anonymous, basic, or the Bearer token flow; transient failures are retried, boundedly. Progress
arrives as :class:`Progress` events through a callback. Errors are :class:`~pycontainerd.RegistryError`
(HTTP status in ``.status``), :class:`~pycontainerd.AuthenticationError`, and the content errors
``DigestMismatchError`` / ``SizeMismatchError`` when bytes are not what a descriptor says.

The face holds the types (``types``), which the image code names. The network half (``resolver``,
``http``, ``stream``: urllib3, ssl, http.client) and the reference grammar (``reference``, whose
patterns compile at import) are imported by their paths, where a pull or a push uses them: a
command that only reads the store, or names an image exactly, never loads them.
"""

from __future__ import annotations

from pycontainerd._remotes.types import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    MANIFEST_MEDIA_TYPES,
    OCI_INDEX,
    OCI_MANIFEST,
    Credentials,
    Descriptor,
    Platform,
    Progress,
    ProgressState,
)

__all__ = [
    "DOCKER_MANIFEST",
    "DOCKER_MANIFEST_LIST",
    "MANIFEST_MEDIA_TYPES",
    "OCI_INDEX",
    "OCI_MANIFEST",
    "Credentials",
    "Descriptor",
    "Platform",
    "Progress",
    "ProgressState",
]
