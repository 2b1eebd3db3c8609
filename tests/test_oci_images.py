"""tests/oci_images.py writes a valid, reproducible busybox OCI image that the real tools accept.

Validated against the OCI image-spec JSON schemas (vendored in the repository's ``spec/``); read
back by skopeo and umoci; pushed to a private registry on loopback; and unpacked by umoci into a
bundle that pyrunc runs.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import subprocess
import tarfile
import urllib.request
from pathlib import Path
from typing import Any

import jsonschema
import pyrunc_acceptance_oci_images as oci
import pyrunc_acceptance_peers as peers
import pyrunc_acceptance_specs as specs
import pytest

SCHEMAS = {
    "image-layout": "image-layout-schema.json",
    "image-index": "image-index-schema.json",
    "image-manifest": "image-manifest-schema.json",
    "config": "config-schema.json",
    "content-descriptor": "content-descriptor.json",
}


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return oci.write_busybox_layout(tmp_path_factory.mktemp("oci") / "busybox")


@pytest.fixture(scope="module")
def schemas() -> dict[str, jsonschema.Draft4Validator]:
    """A validator per image-spec schema (vendored in the repository's spec/)."""
    return {name: specs.image_spec_validator(file) for name, file in SCHEMAS.items()}


def _assert_valid(validator: jsonschema.Draft4Validator, document: object) -> None:
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)]
    assert not errors, "\n".join(errors)


def _tree(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()
    }


# --------------------------------------------------------------------------------------------------
# The layout


def test_layout_validates_against_the_image_spec_schemas(image: Any, schemas: dict[str, Any]) -> None:
    layout = json.loads((image.directory / "oci-layout").read_text())
    _assert_valid(schemas["image-layout"], layout)
    index = json.loads((image.directory / "index.json").read_text())
    _assert_valid(schemas["image-index"], index)
    manifest = image.read_json(image.manifest_digest)
    _assert_valid(schemas["image-manifest"], manifest)
    _assert_valid(schemas["config"], image.read_json(image.config_digest))
    for descriptor in [*index["manifests"], manifest["config"], *manifest["layers"]]:
        _assert_valid(schemas["content-descriptor"], descriptor)


def test_the_schemas_catch_a_broken_manifest(image: Any, schemas: dict[str, Any]) -> None:
    manifest = image.read_json(image.manifest_digest)
    manifest["config"]["digest"] = "no-algorithm"
    del manifest["layers"][0]["size"]
    errors = list(schemas["image-manifest"].iter_errors(manifest))
    assert len(errors) == 2, [e.message for e in errors]


def test_every_descriptor_matches_its_blob_and_every_blob_is_referenced(image: Any) -> None:
    index = json.loads((image.directory / "index.json").read_text())
    assert [m["annotations"] for m in index["manifests"]] == [{"org.opencontainers.image.ref.name": "latest"}]
    manifest = image.read_json(image.manifest_digest)
    descriptors = [*index["manifests"], manifest["config"], *manifest["layers"]]
    for descriptor in descriptors:
        data = image.blob(descriptor["digest"]).read_bytes()
        assert descriptor["size"] == len(data)
        assert descriptor["digest"] == "sha256:" + hashlib.sha256(data).hexdigest()
    blobs = {p.name for p in (image.directory / "blobs" / "sha256").iterdir()}
    assert blobs == {d["digest"].removeprefix("sha256:") for d in descriptors}
    assert json.loads((image.directory / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}


def test_config_is_linux_amd64_running_sh(image: Any) -> None:
    config = image.read_json(image.config_digest)
    assert (config["architecture"], config["os"]) == ("amd64", "linux")
    assert config["config"] == {
        "Cmd": ["sh"],
        "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
    }
    assert config["rootfs"] == {"type": "layers", "diff_ids": [image.diff_id]}


def test_layer_holds_busybox_applets_passwd_and_directories_with_fixed_metadata(image: Any) -> None:
    compressed = image.blob(image.layer_digest).read_bytes()
    assert compressed[:2] == b"\x1f\x8b" and compressed[4:8] == b"\0\0\0\0", "gzip mtime must be 0"
    assert not compressed[3] & 0x08, "the gzip header must not name a file"
    tar_bytes = gzip.decompress(compressed)
    assert "sha256:" + hashlib.sha256(tar_bytes).hexdigest() == image.diff_id
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        members = tar.getmembers()
        names = [m.name for m in members]
        assert names == sorted(names)
        assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members} == {(oci.EPOCH, 0, 0, "", "")}
        by_name = {m.name: m for m in members}
        busybox = tar.extractfile("bin/busybox")
        assert busybox is not None and busybox.read() == Path("/bin/busybox").read_bytes()
        assert by_name["bin/busybox"].mode == 0o755
        assert by_name["bin/sh"].issym() and by_name["bin/sh"].linkname == "busybox"
        assert by_name["tmp"].isdir() and by_name["tmp"].mode == 0o1777
        passwd = tar.extractfile("etc/passwd")
        assert passwd is not None and passwd.read().startswith(b"root:x:0:0:root:/root:/bin/sh\n")
        assert tar.extractfile("etc/group") is not None
        for directory in ("dev", "proc", "sys", "root", "var"):
            assert by_name[directory].isdir(), directory


def test_writing_twice_gives_the_same_bytes(image: Any, tmp_path: Path) -> None:
    again = oci.write_busybox_layout(tmp_path / "again")
    assert again.manifest_digest == image.manifest_digest
    assert _tree(again.directory) == _tree(image.directory)
    first = oci.write_oci_archive(image, tmp_path / "first.tar").read_bytes()
    second = oci.write_oci_archive(again, tmp_path / "second.tar").read_bytes()
    assert first == second


# --------------------------------------------------------------------------------------------------
# The real tools read it


def test_skopeo_reads_the_layout_and_writes_a_docker_archive(image: Any, tmp_path: Path) -> None:
    raw = subprocess.run(
        [peers.require("skopeo"), "--insecure-policy", "inspect", "--raw", f"oci:{image.directory}:latest"],
        check=True,
        capture_output=True,
        timeout=60,
    ).stdout
    assert raw == image.blob(image.manifest_digest).read_bytes()
    archive = oci.to_docker_archive(image, tmp_path / "busybox.tar")
    with tarfile.open(archive) as tar:
        member = tar.extractfile("manifest.json")
        assert member is not None
        (entry,) = json.loads(member.read())
    assert entry["RepoTags"] == ["docker.io/library/busybox:latest"]  # skopeo writes the normalized name
    assert entry["Config"].removesuffix(".json") == image.config_digest.removeprefix("sha256:")


def test_push_to_a_private_registry_keeps_the_digests(image: Any, tmp_path: Path) -> None:
    with peers.registry(tmp_path / "registry") as reg:
        reference = oci.push_to_registry(image, reg.address, "pyrunc/busybox")
        assert reference == f"{reg.address}/pyrunc/busybox:latest"
        request = urllib.request.Request(
            f"http://{reg.address}/v2/pyrunc/busybox/manifests/latest",
            headers={"Accept": oci.MANIFEST_MEDIA_TYPE},
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback, never a proxy
        with opener.open(request, timeout=10) as response:
            assert response.headers["Docker-Content-Digest"] == image.manifest_digest
            assert response.read() == image.blob(image.manifest_digest).read_bytes()
    assert not (tmp_path / "registry").exists()


def test_push_refuses_anything_but_loopback(image: Any) -> None:
    with pytest.raises(ValueError, match="loopback"):
        oci.push_to_registry(image, "registry.example:5000")


@pytest.mark.integration
def test_umoci_unpacks_it_into_a_bundle_pyrunc_runs(image: Any, tmp_path: Path, pyrunc_bin: Path) -> None:
    bundle = tmp_path / "bundle"
    subprocess.run(
        [peers.require("umoci"), "unpack", "--image", f"{image.directory}:latest", str(bundle)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    config = json.loads((bundle / "config.json").read_text())
    assert config["process"]["args"] == ["sh"]
    config["process"]["terminal"] = False
    config["process"]["args"] = ["sh", "-c", "echo $PATH; id -u; ls /bin/busybox"]
    (bundle / "config.json").write_text(json.dumps(config))
    result = subprocess.run(
        [
            str(pyrunc_bin),
            "--root",
            str(tmp_path / "state"),
            "run",
            "--bundle",
            str(bundle),
            f"umoci-{os.getpid()}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [oci.PATH_ENV.removeprefix("PATH="), "0", "/bin/busybox"]
