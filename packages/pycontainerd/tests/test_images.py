"""Images: parsing manifests, indexes and configs, platform selection, walking, import and export."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pyrunc_acceptance_oci_images as oci_images
import pytest

from pycontainerd._content import ContentStore
from pycontainerd._errors import DigestMismatchError, InvalidArgumentError, NotFoundError
from pycontainerd._images import (
    OCI_CONFIG,
    OCI_LAYER_GZIP,
    ImageConfig,
    Index,
    Manifest,
    PlatformMatcher,
    children,
    config_for,
    format_platform,
    host_platform,
    layers,
    manifest_descriptor_for,
    manifest_for,
    parse_platform,
)
from pycontainerd._images import platforms as _platforms
from pycontainerd._images.archive import export, import_archive
from pycontainerd._remotes import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_INDEX,
    OCI_MANIFEST,
    Descriptor,
    Platform,
)


def dumps(document: object) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def put(store: ContentStore, data: bytes, media_type: str, **extra: Any) -> Descriptor:
    digest = digest_of(data)
    store.write_blob(f"test-{digest}", data, len(data), digest)
    return Descriptor(media_type, digest, len(data), **extra)


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)


# -- fixtures ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def busybox(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return oci_images.write_busybox_layout(tmp_path_factory.mktemp("layout") / "oci")


@pytest.fixture
def store(tmp_path: Path) -> ContentStore:
    return ContentStore(tmp_path / "content")


@pytest.fixture
def imported(busybox: Any, store: ContentStore, tmp_path: Path) -> tuple[str, Descriptor]:
    archive = oci_images.write_oci_archive(busybox, tmp_path / "busybox.oci.tar")
    with open(archive, "rb") as stream:
        images = import_archive(store, stream)
    assert len(images) == 1
    return images[0]


# -- real documents ------------------------------------------------------------------------------
def test_walk_a_real_busybox_image(
    busybox: Any, store: ContentStore, imported: tuple[str, Descriptor]
) -> None:
    name, desc = imported
    # The layout names its manifest by tag alone; names come back through the reference grammar.
    assert name == "docker.io/library/latest:latest"
    assert desc.digest == busybox.manifest_digest and desc.media_type == OCI_MANIFEST
    manifest = manifest_for(store, desc)
    assert manifest.config.digest == busybox.config_digest and manifest.config.media_type == OCI_CONFIG
    assert [layer.digest for layer in manifest.layers] == [busybox.layer_digest]
    config = config_for(store, desc)
    assert (config.os, config.architecture) == ("linux", "amd64")
    assert config.config.cmd == ("sh",) and config.config.env == (oci_images.PATH_ENV,)
    assert config.rootfs.diff_ids == (busybox.diff_id,)
    assert config.history[0].created_by == "tests/oci_images.py: busybox-static"
    (layer,) = layers(store, desc)
    assert (layer.descriptor.digest, layer.descriptor.media_type) == (busybox.layer_digest, OCI_LAYER_GZIP)
    assert layer.diff_id == busybox.diff_id
    assert [c.digest for c in children(store, desc)] == [busybox.config_digest, busybox.layer_digest]
    assert children(store, manifest.config) == []


def test_parse_docker_schema2_documents() -> None:
    digest = "sha256:" + "a" * 64
    manifest_list = {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST_LIST,
        "manifests": [
            {
                "mediaType": DOCKER_MANIFEST,
                "digest": digest,
                "size": 7,
                "platform": {"architecture": "arm", "os": "linux", "variant": "v7"},
            }
        ],
    }
    index = Index.parse(dumps(manifest_list))
    assert index.media_type == DOCKER_MANIFEST_LIST
    assert index.manifests[0].platform == Platform("linux", "arm", "v7")
    manifest = Manifest.parse(
        dumps(
            {
                "schemaVersion": 2,
                "mediaType": DOCKER_MANIFEST,
                "config": {
                    "mediaType": "application/vnd.docker.container.image.v1+json",
                    "digest": digest,
                    "size": 1,
                },
                "layers": [
                    {
                        "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                        "digest": digest,
                        "size": 2,
                    }
                ],
            }
        )
    )
    assert manifest.media_type == DOCKER_MANIFEST and manifest.layers[0].size == 2
    # OCI lets the mediaType field out; the descriptor's type is used then
    assert Manifest.parse(dumps({"schemaVersion": 2, "config": manifest.config.to_json(), "layers": []}))


def test_parse_full_image_config() -> None:
    raw = {
        "architecture": "arm64",
        "os": "linux",
        "variant": "v8",
        "created": "2024-01-01T00:00:00Z",
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "b" * 64]},
        "history": [{"created_by": "ADD x /", "empty_layer": False}, {"comment": "c", "empty_layer": True}],
        "config": {
            "Env": ["A=1"],
            "Cmd": ["sh", "-c", "true"],
            "Entrypoint": ["/init"],
            "WorkingDir": "/srv",
            "User": "nobody:nogroup",
            "ExposedPorts": {"80/tcp": {}, "53/udp": {}},
            "Volumes": {"/data": {}},
            "Labels": {"org.example": "yes"},
            "Healthcheck": {"Test": ["CMD", "true"], "Interval": 30_000_000_000, "Retries": 3},
            "StopSignal": "SIGQUIT",
        },
    }
    config = ImageConfig.parse(dumps(raw))
    c = config.config
    assert (c.env, c.cmd, c.entrypoint) == (("A=1",), ("sh", "-c", "true"), ("/init",))
    assert (c.working_dir, c.user, c.stop_signal) == ("/srv", "nobody:nogroup", "SIGQUIT")
    assert c.exposed_ports == ("53/udp", "80/tcp") and c.volumes == ("/data",)
    assert c.labels == {"org.example": "yes"}
    assert c.healthcheck is not None and c.healthcheck.test == ("CMD", "true")
    assert (c.healthcheck.interval, c.healthcheck.retries) == (30_000_000_000, 3)
    assert config.history[1].empty_layer and config.platform == Platform("linux", "arm64", "v8")
    bare = ImageConfig.parse(dumps({"architecture": "amd64", "os": "linux", "rootfs": {"diff_ids": []}}))
    assert bare.config.cmd is None and bare.config.env == ()


_GOOD = "sha256:" + "c" * 64
_DESC = {"mediaType": OCI_MANIFEST, "digest": _GOOD, "size": 1}


@pytest.mark.parametrize(
    ("kind", "document", "field"),
    [
        (Index, {"schemaVersion": 1, "manifests": []}, "schemaVersion"),
        (Index, {"schemaVersion": 2}, "manifests: missing"),
        (
            Index,
            {"schemaVersion": 2, "manifests": [_DESC, {**_DESC, "digest": "sha256:xyz"}]},
            "manifests[1].digest",
        ),
        (Index, {"schemaVersion": 2, "manifests": [{**_DESC, "size": -1}]}, "manifests[0].size"),
        (Index, {"schemaVersion": 2, "manifests": [{"digest": _GOOD, "size": 1}]}, "manifests[0].mediaType"),
        (
            Index,
            {"schemaVersion": 2, "manifests": [{**_DESC, "platform": {"os": "linux"}}]},
            "manifests[0].platform.architecture",
        ),
        (Index, {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "manifests": []}, "mediaType"),
        (Manifest, {"schemaVersion": 2, "layers": []}, "config: missing"),
        (
            Manifest,
            {"schemaVersion": 2, "config": _DESC, "layers": [_DESC, {**_DESC, "size": "1"}]},
            "layers[1].size",
        ),
        (
            Manifest,
            {"schemaVersion": 2, "config": _DESC, "layers": [], "annotations": {"a": 1}},
            "annotations.a",
        ),
        (ImageConfig, {"os": "linux", "rootfs": {"diff_ids": []}}, "architecture: missing"),
        (ImageConfig, {"architecture": "amd64", "os": "linux"}, "rootfs: missing"),
        (
            ImageConfig,
            {"architecture": "amd64", "os": "linux", "rootfs": {"diff_ids": ["md5:0"]}},
            "rootfs.diff_ids[0]",
        ),
        (
            ImageConfig,
            {"architecture": "amd64", "os": "linux", "rootfs": {"diff_ids": []}, "config": {"Env": [1]}},
            "config.Env[0]",
        ),
        (
            ImageConfig,
            {
                "architecture": "amd64",
                "os": "linux",
                "rootfs": {"diff_ids": []},
                "config": {"Healthcheck": {"Interval": "30s"}},
            },
            "config.Healthcheck.Interval",
        ),
        (
            ImageConfig,
            {
                "architecture": "amd64",
                "os": "linux",
                "rootfs": {"diff_ids": []},
                "history": [{"empty_layer": "yes"}],
            },
            "history[0].empty_layer",
        ),
    ],
)
def test_bad_documents_name_the_field(kind: Any, document: object, field: str) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        kind.parse(dumps(document))
    assert str(caught.value).startswith(field), str(caught.value)


def test_not_json_is_an_invalid_argument() -> None:
    with pytest.raises(InvalidArgumentError, match="manifest: not JSON"):
        Manifest.parse(b"{")
    with pytest.raises(InvalidArgumentError, match="expected an object"):
        Index.parse(b"[]")


# -- platforms -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("linux/amd64", Platform("linux", "amd64")),
        ("linux/x86_64", Platform("linux", "amd64")),
        ("linux/arm64/v8", Platform("linux", "arm64")),
        ("linux/aarch64", Platform("linux", "arm64")),
        ("linux/arm", Platform("linux", "arm", "v7")),
        ("linux/arm/6", Platform("linux", "arm", "v6")),
        ("Linux/ARM64", Platform("linux", "arm64")),
        ("arm64", Platform("linux", "arm64")),
        ("windows", Platform("windows", "amd64")),
    ],
)
def test_parse_platform(text: str, expected: Platform) -> None:
    assert parse_platform(text) == expected


@pytest.mark.parametrize("text", ["", "linux/", "a/b/c/d", "linux/amd 64", "linux//v7"])
def test_parse_platform_refuses(text: str) -> None:
    with pytest.raises(InvalidArgumentError, match="invalid platform"):
        parse_platform(text)


@pytest.mark.parametrize(
    ("machine", "expected"),
    [
        ("x86_64", "linux/amd64"),
        ("aarch64", "linux/arm64"),
        ("armv7l", "linux/arm/v7"),
        ("armv6l", "linux/arm/v6"),
        ("i686", "linux/386"),
        ("ppc64le", "linux/ppc64le"),
        ("s390x", "linux/s390x"),
    ],
)
def test_host_platform(monkeypatch: pytest.MonkeyPatch, machine: str, expected: str) -> None:
    uname = os.uname_result(("Linux", "host", "6.1.0", "#1", machine))
    monkeypatch.setattr(_platforms.os, "uname", lambda: uname)
    assert format_platform(host_platform()) == expected


def test_host_platform_here() -> None:
    assert format_platform(host_platform()) == "linux/amd64"  # the CI machines are x86-64


def _multi_platform_index(store: ContentStore, platforms: list[Platform | None]) -> Descriptor:
    entries = []
    layer_tar = _tar({"hello": b"world"}).getvalue()
    layer = put(store, layer_tar, "application/vnd.oci.image.layer.v1.tar")
    for i, p in enumerate(platforms):
        arch = p.architecture if p is not None else "amd64"
        rootfs = {"type": "layers", "diff_ids": [layer.digest]}
        config = put(
            store, dumps({"architecture": arch, "os": "linux", "rootfs": rootfs, "n": i}), OCI_CONFIG
        )
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config.to_json(),
            "layers": [layer.to_json()],
        }
        entries.append(put(store, dumps(manifest), OCI_MANIFEST, platform=p).to_json())
    return put(store, dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}), OCI_INDEX)


_ALL = [
    Platform("linux", "386"),
    Platform("linux", "amd64"),
    Platform("linux", "arm", "v5"),
    Platform("linux", "arm", "v6"),
    Platform("linux", "arm", "v7"),
    Platform("linux", "arm64", "v8"),
    Platform("windows", "amd64"),
]


@pytest.mark.parametrize(
    ("available", "wanted", "chosen"),
    [
        (_ALL, "linux/amd64", "linux/amd64"),
        (_ALL, "linux/arm64", "linux/arm64/v8"),
        (_ALL, "linux/arm/v7", "linux/arm/v7"),
        (_ALL, "linux/arm", "linux/arm/v7"),
        (_ALL, "linux/arm/v6", "linux/arm/v6"),
        (_ALL, "windows/amd64", "windows/amd64"),
        (_ALL, "linux/386", "linux/386"),
        (_ALL[2:4], "linux/arm/v7", "linux/arm/v6"),  # v7 runs v6, the closest
        (_ALL[2:4], "linux/arm64", "linux/arm/v6"),  # arm64 runs 32-bit arm
        ([Platform("linux", "386")], "linux/amd64", "linux/386"),
        ([Platform("linux", "arm", "v7"), Platform("linux", "arm64")], "linux/arm64/v8", "linux/arm64"),
        ([Platform("linux", "aarch64")], "linux/arm64", "linux/aarch64"),
        ([Platform("linux", "arm64"), Platform("linux", "amd64")], "linux/arm/v7", None),
        ([Platform("linux", "arm", "v7")], "linux/arm/v6", None),  # v6 cannot run v7
        ([Platform("linux", "amd64")], "linux/arm64", None),
        ([Platform("windows", "amd64")], "linux/amd64", None),
    ],
)
def test_index_selection(
    store: ContentStore, available: list[Platform], wanted: str, chosen: str | None
) -> None:
    index = _multi_platform_index(store, list(available))
    if chosen is None:
        with pytest.raises(NotFoundError, match="no manifest for platform"):
            manifest_for(store, index, parse_platform(wanted))
        return
    desc, _manifest = manifest_descriptor_for(store, index, parse_platform(wanted))
    assert desc.platform is not None and format_platform(desc.platform) == chosen


def test_index_entry_without_platform_is_checked_against_its_config(store: ContentStore) -> None:
    index = _multi_platform_index(store, [None])  # the config says linux/amd64
    assert manifest_for(store, index, parse_platform("linux/amd64"))
    with pytest.raises(NotFoundError):
        manifest_for(store, index, parse_platform("linux/arm64"))


def test_default_platform_is_the_hosts(store: ContentStore) -> None:
    index = _multi_platform_index(store, _ALL)
    desc, _ = manifest_descriptor_for(store, index)
    assert desc.platform == Platform("linux", "amd64")
    assert config_for(store, index).architecture == "amd64"
    assert PlatformMatcher(host_platform()).match(Platform("linux", "x86_64"))


def test_missing_blob_is_not_found(store: ContentStore) -> None:
    with pytest.raises(NotFoundError):
        manifest_for(store, Descriptor(OCI_MANIFEST, _GOOD, 1))


# -- export --------------------------------------------------------------------------------------
def _export(store: ContentStore, path: Path, images: list[tuple[str, Descriptor]], **kw: Any) -> Path:
    with open(path, "wb") as out:
        export(store, out, images, **kw)
    return path


def _extract(archive: Path, into: Path) -> Path:
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    return into


def test_export_is_an_oci_layout_and_a_docker_archive(
    busybox: Any, store: ContentStore, imported: tuple[str, Descriptor], tmp_path: Path
) -> None:
    _name, desc = imported
    archive = _export(store, tmp_path / "out.tar", [("docker.io/library/busybox:latest", desc)])
    layout = _extract(archive, tmp_path / "layout")
    index = json.loads((layout / "index.json").read_bytes())
    (entry,) = index["manifests"]
    assert entry["digest"] == busybox.manifest_digest
    assert entry["annotations"] == {
        "io.containerd.image.name": "docker.io/library/busybox:latest",
        "org.opencontainers.image.ref.name": "latest",
    }
    (docker,) = json.loads((layout / "manifest.json").read_bytes())
    hexes = lambda d: "blobs/sha256/" + d.removeprefix("sha256:")  # noqa: E731
    assert docker == {
        "Config": hexes(busybox.config_digest),
        "RepoTags": ["busybox:latest"],
        "Layers": [hexes(busybox.layer_digest)],
    }
    result = run("oci-image-tool", "validate", "--type", "image", "--ref", "name=latest", str(layout))
    assert result.returncode == 0, result.stdout + result.stderr
    for transport in ("oci-archive", "docker-archive"):
        result = run("skopeo", "--insecure-policy", "inspect", f"{transport}:{archive}")
        assert result.returncode == 0, f"{transport}: {result.stderr}"
        inspected = json.loads(result.stdout)
        assert inspected["Layers"] == [busybox.layer_digest] or transport == "docker-archive"
        assert (inspected["Architecture"], inspected["Os"]) == ("amd64", "linux")
    config = json.loads(
        run("skopeo", "--insecure-policy", "inspect", "--config", f"docker-archive:{archive}").stdout
    )
    assert config["rootfs"]["diff_ids"] == [busybox.diff_id]


def test_export_is_deterministic_and_sorted(
    store: ContentStore, imported: tuple[str, Descriptor], tmp_path: Path
) -> None:
    _name, desc = imported
    first = _export(store, tmp_path / "a.tar", [("busybox:1", desc)]).read_bytes()
    second = _export(store, tmp_path / "b.tar", [("busybox:1", desc)]).read_bytes()
    assert first == second
    with tarfile.open(fileobj=io.BytesIO(first)) as tar:
        members = tar.getmembers()
    names = [m.name.rstrip("/") for m in members]
    assert names == sorted(names)
    assert {m.mtime for m in members} == {0} and {m.uid for m in members} == {0}


def test_export_import_round_trip(
    busybox: Any, store: ContentStore, imported: tuple[str, Descriptor], tmp_path: Path
) -> None:
    _name, desc = imported
    images = [("docker.io/library/busybox:latest", desc), ("example.com/x/busybox:v1", desc)]
    archive = _export(store, tmp_path / "out.tar", images)
    other = ContentStore(tmp_path / "other")
    with open(archive, "rb") as stream:
        back = import_archive(other, stream)
    assert [(name, d.digest, d.size, d.media_type) for name, d in back] == [
        (name, d.digest, d.size, d.media_type) for name, d in images
    ]
    assert sorted(i.digest for i in other.walk()) == sorted(
        [busybox.manifest_digest, busybox.config_digest, busybox.layer_digest]
    )
    (docker,) = json.loads(_extract(archive, tmp_path / "x").joinpath("manifest.json").read_bytes())
    assert docker["RepoTags"] == ["busybox:latest", "example.com/x/busybox:v1"]  # one image, two names


def test_export_multi_platform(store: ContentStore, tmp_path: Path) -> None:
    index = _multi_platform_index(store, _ALL)
    whole = _export(store, tmp_path / "all.tar", [("multi:latest", index)])
    layout = _extract(whole, tmp_path / "all")
    assert json.loads((layout / "index.json").read_bytes())["manifests"][0]["digest"] == index.digest
    assert len(list((layout / "blobs" / "sha256").iterdir())) == 1 + 2 * len(_ALL) + 1  # one shared layer
    result = run("oci-image-tool", "validate", "--type", "image", "--ref", "name=latest", str(layout))
    assert result.returncode == 0, result.stdout + result.stderr
    # one platform: index.json points at that platform's manifest alone
    arm = _export(
        store, tmp_path / "arm.tar", [("multi:latest", index)], platform=parse_platform("linux/arm64")
    )
    layout = _extract(arm, tmp_path / "arm")
    (entry,) = json.loads((layout / "index.json").read_bytes())["manifests"]
    assert entry["platform"]["architecture"] == "arm64"
    assert len(list((layout / "blobs" / "sha256").iterdir())) == 3


def test_export_missing_blob_is_not_found(store: ContentStore, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        _export(store, tmp_path / "x.tar", [("x:1", Descriptor(OCI_MANIFEST, _GOOD, 1))])


# -- import --------------------------------------------------------------------------------------
def test_import_a_skopeo_docker_archive(busybox: Any, store: ContentStore, tmp_path: Path) -> None:
    archive = oci_images.to_docker_archive(busybox, tmp_path / "busybox.tar", "busybox:stable")
    with open(archive, "rb") as stream:
        (image,) = import_archive(store, stream)
    name, desc = image
    assert name == "docker.io/library/busybox:stable"
    assert desc.media_type == OCI_MANIFEST and desc.platform == Platform("linux", "amd64")
    assert config_for(store, desc).rootfs.diff_ids == (busybox.diff_id,)
    (layer,) = layers(store, desc)
    assert layer.diff_id == busybox.diff_id
    data = store.read_blob(layer.descriptor.digest)
    assert digest_of(data) == layer.descriptor.digest and layer.descriptor.size == len(data)
    # the synthesised manifest is stored under the digest of its bytes
    assert digest_of(store.read_blob(desc.digest)) == desc.digest
    # and the image exports again, readable by skopeo
    out = _export(store, tmp_path / "again.tar", [(name, desc)])
    result = run("skopeo", "--insecure-policy", "inspect", f"oci-archive:{out}")
    assert result.returncode == 0, result.stderr


def _tar(members: dict[str, bytes]) -> io.BytesIO:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buffer.seek(0)
    return buffer


def test_import_refuses_a_blob_that_is_not_its_name(store: ContentStore) -> None:
    with pytest.raises(DigestMismatchError):
        import_archive(store, _tar({"blobs/sha256/" + "d" * 64: b"not that"}))
    assert list(store.walk()) == [] and store.list_statuses() == []


def test_import_refuses_an_index_pointing_at_missing_blobs(store: ContentStore) -> None:
    index = dumps({"schemaVersion": 2, "manifests": [_DESC]})
    with pytest.raises(NotFoundError):
        import_archive(store, _tar({"oci-layout": b'{"imageLayoutVersion":"1.0.0"}', "index.json": index}))


def test_import_refuses_what_is_not_an_image_archive(store: ContentStore) -> None:
    with pytest.raises(InvalidArgumentError, match=r"neither index\.json"):
        import_archive(store, _tar({"hello": b"x"}))
    with pytest.raises(InvalidArgumentError, match="not a readable image archive"):
        import_archive(store, io.BytesIO(b"garbage" * 100))
    with pytest.raises(InvalidArgumentError, match="escapes"):
        import_archive(store, _tar({"../evil": b"x"}))
    with pytest.raises(InvalidArgumentError, match=r"manifest.json\[0\].Config"):
        import_archive(store, _tar({"manifest.json": b'[{"Layers": []}]'}))


def test_import_a_legacy_docker_save_archive(busybox: Any, store: ContentStore) -> None:
    """``docker save`` before OCI layouts: ``<id>.json`` configs, ``<id>/layer.tar``, layers linked."""
    layer = oci_images.layer_tar()
    top = _tar({"etc/motd": b"hi\n"}).getvalue()
    diff_ids = [digest_of(layer), digest_of(top), digest_of(layer)]
    config = dumps(
        {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": diff_ids}}
    )
    config_name = digest_of(config).removeprefix("sha256:") + ".json"
    manifest = [
        {
            "Config": config_name,
            "RepoTags": ["busybox:old", "example.com/a/b:c"],
            "Layers": ["aaa/layer.tar", "bbb/layer.tar", "ccc/layer.tar"],
        }
    ]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in [
            ("aaa/layer.tar", layer),
            ("bbb/layer.tar", top),
            (config_name, config),
            ("manifest.json", dumps(manifest)),
            ("repositories", b"{}"),
        ]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("ccc/layer.tar")
        link.type, link.linkname = tarfile.SYMTYPE, "../aaa/layer.tar"
        tar.addfile(link)
    buffer.seek(0)
    images = import_archive(store, buffer)
    assert [name for name, _ in images] == ["docker.io/library/busybox:old", "example.com/a/b:c"]
    desc = images[0][1]
    assert images[1][1] == desc
    found = layers(store, desc)
    assert [layer.diff_id for layer in found] == diff_ids
    assert [layer.descriptor.digest for layer in found] == diff_ids  # uncompressed: blob digest is diff ID
    assert {layer.descriptor.media_type for layer in found} == {"application/vnd.oci.image.layer.v1.tar"}
    assert config_for(store, desc).rootfs.diff_ids == tuple(diff_ids)
