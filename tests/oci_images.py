"""A busybox OCI image, written offline and byte for byte the same every time, for the drop-in tests.

The image has one layer: Debian's static busybox (busybox-static) as ``/bin/busybox`` with a symlink
per applet, ``/etc/passwd``, ``/etc/group`` and the usual top-level directories. Everything that
could vary between two writes is fixed: tar entries are sorted, every entry has the same mtime,
uid/gid 0 and no user or group names, the gzip header carries mtime 0 and no file name, and the
JSON documents are written with sorted keys and no spaces. So the layer, config and manifest
digests depend only on the busybox binary and its applet list.

    image = write_busybox_layout(tmp / "oci")                   # an OCI image layout directory
    write_oci_archive(image, tmp / "busybox.oci.tar")           # ``ctr images import`` takes this
    to_docker_archive(image, tmp / "busybox.tar")               # ``docker load -i`` takes this
    push_to_registry(image, "127.0.0.1:5000", "busybox")        # a registry started by the test

Nothing here contacts a network service other than the registry address it is given.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

from pyrunc.testing import BusyboxError

__all__ = [
    "CONFIG_MEDIA_TYPE",
    "INDEX_MEDIA_TYPE",
    "LAYER_MEDIA_TYPE",
    "MANIFEST_MEDIA_TYPE",
    "OCIImage",
    "layer_tar",
    "push_to_registry",
    "to_docker_archive",
    "write_busybox_layout",
    "write_oci_archive",
]

MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
INDEX_MEDIA_TYPE = "application/vnd.oci.image.index.v1+json"
CONFIG_MEDIA_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
REF_NAME = "org.opencontainers.image.ref.name"

#: mtime of every tar entry (2024-01-01T00:00:00Z), and the image's creation time.
EPOCH = 1704067200
CREATED = "2024-01-01T00:00:00Z"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

_DIRS = {  # directory -> mode
    "bin": 0o755,
    "dev": 0o755,
    "etc": 0o755,
    "home": 0o755,
    "proc": 0o755,
    "root": 0o700,
    "sys": 0o755,
    "tmp": 0o1777,
    "usr": 0o755,
    "usr/bin": 0o755,
    "usr/sbin": 0o755,
    "sbin": 0o755,
    "var": 0o755,
}
_PASSWD = b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
_GROUP = b"root:x:0:\ntty:x:5:\nnogroup:x:65534:\n"


@dataclass(frozen=True)
class OCIImage:
    """An image layout on disk and the digests of what it holds."""

    directory: Path
    tag: str
    manifest_digest: str
    config_digest: str
    layer_digest: str
    diff_id: str

    def blob(self, digest: str) -> Path:
        algorithm, _, hexdigest = digest.partition(":")
        return self.directory / "blobs" / algorithm / hexdigest

    def read_json(self, digest: str) -> dict[str, object]:
        document: dict[str, object] = json.loads(self.blob(digest).read_bytes())
        return document


def _dumps(document: object) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _applets(busybox: Path) -> list[str]:
    listing = subprocess.run(
        [str(busybox), "--list"], check=True, capture_output=True, text=True, timeout=30
    ).stdout
    return sorted({name for name in listing.split() if name and "/" not in name and name != "busybox"})


def _entry(name: str, kind: bytes, mode: int, size: int = 0, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.size = size
    info.linkname = linkname
    info.mtime = EPOCH
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def layer_tar(busybox: str | os.PathLike[str] = "/bin/busybox") -> bytes:
    """The uncompressed layer: busybox, its applet symlinks, passwd/group and directories, sorted."""
    source = Path(busybox)
    if not source.is_file():
        raise BusyboxError(f"{source} not found: install busybox-static (run scripts/bootstrap)")
    files = {"bin/busybox": (source.read_bytes(), 0o755), "etc/passwd": (_PASSWD, 0o644)}
    files["etc/group"] = (_GROUP, 0o644)
    links = {f"bin/{applet}": "busybox" for applet in _applets(source)}
    names = sorted({*_DIRS, *files, *links})

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name in names:
            if name in _DIRS:
                tar.addfile(_entry(name + "/", tarfile.DIRTYPE, _DIRS[name]))
            elif name in files:
                data, mode = files[name]
                tar.addfile(_entry(name, tarfile.REGTYPE, mode, len(data)), io.BytesIO(data))
            else:
                tar.addfile(_entry(name, tarfile.SYMTYPE, 0o777, linkname=links[name]))
    return buffer.getvalue()


def _gzip(data: bytes) -> bytes:
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, compresslevel=6, mtime=0) as f:
        f.write(data)
    return buffer.getvalue()


def _write_blob(blobs: Path, data: bytes) -> tuple[str, int]:
    digest = _digest(data)
    (blobs / digest.removeprefix("sha256:")).write_bytes(data)
    return digest, len(data)


def write_busybox_layout(
    directory: str | os.PathLike[str],
    *,
    tag: str = "latest",
    busybox: str | os.PathLike[str] = "/bin/busybox",
) -> OCIImage:
    """Write an OCI image layout of a busybox image into ``directory`` (created; must not exist).

    ``index.json`` lists the one manifest with ``org.opencontainers.image.ref.name`` set to ``tag``;
    the config is linux/amd64 with ``Cmd ["sh"]`` and ``PATH`` in ``Env``.
    """
    root = Path(directory)
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    tar = layer_tar(busybox)
    diff_id = _digest(tar)
    layer_digest, layer_size = _write_blob(blobs, _gzip(tar))
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": CREATED,
        "config": {"Env": [PATH_ENV], "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": CREATED, "created_by": "tests/oci_images.py: busybox-static"}],
    }
    config_digest, config_size = _write_blob(blobs, _dumps(config))
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": {"mediaType": CONFIG_MEDIA_TYPE, "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": LAYER_MEDIA_TYPE, "digest": layer_digest, "size": layer_size}],
    }
    manifest_digest, manifest_size = _write_blob(blobs, _dumps(manifest))
    index = {
        "schemaVersion": 2,
        "mediaType": INDEX_MEDIA_TYPE,
        "manifests": [
            {
                "mediaType": MANIFEST_MEDIA_TYPE,
                "digest": manifest_digest,
                "size": manifest_size,
                "platform": {"architecture": "amd64", "os": "linux"},
                "annotations": {REF_NAME: tag},
            }
        ],
    }
    (root / "index.json").write_bytes(_dumps(index))
    (root / "oci-layout").write_bytes(_dumps({"imageLayoutVersion": "1.0.0"}))
    return OCIImage(root, tag, manifest_digest, config_digest, layer_digest, diff_id)


def write_oci_archive(image: OCIImage, archive: str | os.PathLike[str]) -> Path:
    """Tar the layout (``oci-layout``, ``index.json``, ``blobs/...``), deterministically, into ``archive``."""
    names = ["oci-layout", "index.json", "blobs", "blobs/sha256"]
    names += sorted(f"blobs/sha256/{p.name}" for p in (image.directory / "blobs" / "sha256").iterdir())
    path = Path(archive)
    with tarfile.open(path, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name in names:
            source = image.directory / name
            if source.is_dir():
                tar.addfile(_entry(name + "/", tarfile.DIRTYPE, 0o755))
            else:
                data = source.read_bytes()
                tar.addfile(_entry(name, tarfile.REGTYPE, 0o644, len(data)), io.BytesIO(data))
    return path


def _skopeo(*args: str, tmpdir: Path) -> None:
    # --insecure-policy: no dependency on the host's /etc/containers/policy.json; the only
    # sources and destinations are files and a registry the test started on loopback.
    skopeo = shutil.which("skopeo")
    if skopeo is None:
        raise RuntimeError("skopeo not found: run scripts/bootstrap (it installs Debian's skopeo)")
    result = subprocess.run(
        [skopeo, "--insecure-policy", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TMPDIR": str(tmpdir)},
    )
    if result.returncode != 0:
        raise RuntimeError(f"skopeo {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")


def to_docker_archive(
    image: OCIImage, archive: str | os.PathLike[str], reference: str = "busybox:latest"
) -> Path:
    """``skopeo copy oci:DIR:TAG docker-archive:FILE:REFERENCE``: a tar that ``docker load -i`` takes."""
    path = Path(archive)
    _skopeo(
        "copy",
        "--quiet",
        f"oci:{image.directory}:{image.tag}",
        f"docker-archive:{path}:{reference}",
        tmpdir=path.parent,
    )
    return path


def push_to_registry(image: OCIImage, registry: str, repository: str = "busybox") -> str:
    """Push the image, digests unchanged, to ``registry`` (``127.0.0.1:PORT``, plain HTTP).

    Returns the reference pushed, ``REGISTRY/REPOSITORY:TAG``.
    """
    if not registry.startswith(("127.", "localhost:", "[::1]:")):
        raise ValueError(f"{registry}: tests push only to a registry they started on loopback")
    reference = f"{registry}/{repository}:{image.tag}"
    _skopeo(
        "copy",
        "--quiet",
        "--preserve-digests",
        "--dest-tls-verify=false",
        f"oci:{image.directory}:{image.tag}",
        f"docker://{reference}",
        tmpdir=image.directory.parent,
    )
    return reference
