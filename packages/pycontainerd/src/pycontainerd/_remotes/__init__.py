"""The registry client: pull and push images over the OCI distribution spec.

    from pycontainerd._remotes import Resolver, Reference

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
"""

from __future__ import annotations

from pycontainerd._remotes._types import (
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

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pycontainerd._remotes._http import is_loopback
    from pycontainerd._remotes._reference import DEFAULT_DOMAIN, Reference, ReferenceError
    from pycontainerd._remotes._resolver import Fetcher, Pusher, Resolver
    from pycontainerd._remotes._stream import ProgressFunc, VerifyingReader

#: The network half, imported on first use: urllib3 (and ssl, http.client) cost a command that only
#: reads the store (``pyctr images ls``, ``pyctr run``) a tenth of a second. References too: their
#: grammar's patterns take ~1 ms to compile, and a command naming an image exactly needs none.
_LAZY = {
    "DEFAULT_DOMAIN": "_reference",
    "Reference": "_reference",
    "ReferenceError": "_reference",
    "is_loopback": "_http",
    "Fetcher": "_resolver",
    "Pusher": "_resolver",
    "Resolver": "_resolver",
    "ProgressFunc": "_stream",
    "VerifyingReader": "_stream",
}

__all__ = [
    "DEFAULT_DOMAIN",
    "DOCKER_MANIFEST",
    "DOCKER_MANIFEST_LIST",
    "MANIFEST_MEDIA_TYPES",
    "OCI_INDEX",
    "OCI_MANIFEST",
    "Credentials",
    "Descriptor",
    "Fetcher",
    "Platform",
    "Progress",
    "ProgressFunc",
    "ProgressState",
    "Pusher",
    "Reference",
    "ReferenceError",
    "Resolver",
    "VerifyingReader",
    "is_loopback",
]


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'pycontainerd._remotes' has no attribute {name!r}")
    import sys  # built in; importlib would load warnings too

    qualified = f"pycontainerd._remotes.{module}"
    __import__(qualified)
    value = getattr(sys.modules[qualified], name)
    globals()[name] = value
    return value
