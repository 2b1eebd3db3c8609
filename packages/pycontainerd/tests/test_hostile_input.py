"""Hostile and malformed input, generated (hypothesis): image documents, layers, image archives,
references, image names and identifiers. Each property is that the input gets either a contained
success or a pycontainerd error that names the field or entry at fault: never another exception, a
hang, or a write outside the root. The issue's own inputs (a deeply nested ``index.json`` and
``manifest.json``, a 300-character container id) also go through ``pyctr`` end to end.

The examples are derandomized (the same every run, no flakes) and bounded, so the module runs in
well under a minute.
"""

from __future__ import annotations

import contextlib
import copy
import gzip
import hashlib
import io
import json
import re
import shutil
import stat
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from pycontainerd import (
    AlreadyExistsError,
    Client,
    InvalidArgumentError,
    LayerError,
    PycontainerdError,
    UnsafeLayerError,
    apply_layer,
)
from pycontainerd._content import ContentStore
from pycontainerd._images import ImageConfig, Index, Manifest
from pycontainerd._images.archive import import_archive
from pycontainerd._images.types import MAX_JSON_DEPTH
from pycontainerd._metadata import check_container_id
from pycontainerd._remotes.reference import Reference, ReferenceError

# derandomize: the same examples every run (CI must not flake); database=None: nothing written to
# the working tree; deadline: a hang fails the example instead of waiting for pytest's timeout.
FAST = settings(max_examples=300, derandomize=True, database=None, deadline=10_000)
SLOW = settings(
    max_examples=120,
    derandomize=True,
    database=None,
    deadline=20_000,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

DIGEST = "sha256:" + "a" * 64
OTHER = "sha256:" + "b" * 64
MANIFEST = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": DIGEST, "size": 7},
    "layers": [
        {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": OTHER, "size": 12},
        {
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": DIGEST,
            "size": 3,
            "urls": ["http://example.com/x"],
            "annotations": {"a": "b"},
        },
    ],
    "annotations": {"org.opencontainers.image.created": "2024-01-01T00:00:00Z"},
}
INDEX = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.index.v1+json",
    "manifests": [
        {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": DIGEST,
            "size": 100,
            "platform": {"architecture": "amd64", "os": "linux", "os.features": ["x"], "variant": "v2"},
            "annotations": {"org.opencontainers.image.ref.name": "latest"},
        },
        {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": OTHER, "size": 10},
    ],
}
CONFIG = {
    "architecture": "amd64",
    "os": "linux",
    "created": "2024-01-01T00:00:00Z",
    "config": {
        "Env": ["PATH=/bin"],
        "Cmd": ["sh"],
        "Entrypoint": ["/bin/entry"],
        "WorkingDir": "/w",
        "User": "1:1",
        "ExposedPorts": {"80/tcp": {}},
        "Volumes": {"/data": {}},
        "Labels": {"k": "v"},
        "StopSignal": "SIGTERM",
        "Healthcheck": {"Test": ["CMD", "true"], "Interval": 1, "Retries": 3},
    },
    "rootfs": {"type": "layers", "diff_ids": [DIGEST, OTHER]},
    "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "x", "empty_layer": True}],
}
DOCUMENTS = {"manifest": (MANIFEST, Manifest), "index": (INDEX, Index), "config": (CONFIG, ImageConfig)}

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["", DIGEST, "sha256:zz", "application/vnd.oci.image.manifest.v1+json", "\x00"]),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def _paths(value: object, path: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """Every path to a value inside ``value`` (not the root itself)."""
    found = []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        found.append((*path, key))
        found += _paths(child, (*path, key))
    return found


def _spelled(path: tuple[str | int, ...]) -> str:
    """A path as the errors spell it: ``layers[1].digest``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else part
    return text


def _related(a: str, b: str) -> bool:
    """Whether one of two spelled paths is the other or lies inside it."""
    return a == b or any(x.startswith((y + ".", y + "[")) for x, y in ((a, b), (b, a)))


def _parse(kind: str, document: object) -> object:
    cls = DOCUMENTS[kind][1]
    return cls.parse(json.dumps(document).encode())


# -- image documents -----------------------------------------------------------------------------


@FAST
@given(kind=st.sampled_from(sorted(DOCUMENTS)), data=st.data())
def test_a_document_with_one_field_changed_parses_or_names_that_field(kind: str, data: st.DataObject) -> None:
    document = copy.deepcopy(DOCUMENTS[kind][0])
    path = data.draw(st.sampled_from(_paths(document)), label="path")
    parent = document
    for part in path[:-1]:
        parent = parent[part]  # type: ignore[index]
    if data.draw(st.booleans(), label="delete"):
        del parent[path[-1]]  # type: ignore[attr-defined]
    else:
        parent[path[-1]] = data.draw(json_values, label="value")  # type: ignore[index]
    try:
        _parse(kind, document)
    except InvalidArgumentError as exc:
        field = str(exc).split(": ", 1)[0]
        assert _related(field, _spelled(path)), f"{exc} does not name {_spelled(path)}"


@FAST
@given(kind=st.sampled_from(sorted(DOCUMENTS)), document=json_values)
def test_any_json_parses_or_is_refused_cleanly(kind: str, document: object) -> None:
    try:
        _parse(kind, document)
    except InvalidArgumentError:
        pass


@FAST
@given(kind=st.sampled_from(sorted(DOCUMENTS)), data=st.binary(max_size=200))
def test_any_bytes_parse_or_are_refused_cleanly(kind: str, data: bytes) -> None:
    try:
        DOCUMENTS[kind][1].parse(data)
    except InvalidArgumentError:
        pass


@settings(max_examples=40, derandomize=True, database=None, deadline=10_000)
@given(kind=st.sampled_from(sorted(DOCUMENTS)), depth=st.integers(1, 3 * MAX_JSON_DEPTH), array=st.booleans())
def test_nesting_is_bounded(kind: str, depth: int, array: bool) -> None:
    # Nested in a field nothing reads: only the depth itself can make the document bad.
    document = copy.deepcopy(DOCUMENTS[kind][0])
    nested: object = 1
    for _ in range(depth):
        nested = [nested] if array else {"x": nested}
    document["unknown"] = nested  # the document itself is one level more
    if depth + 1 <= MAX_JSON_DEPTH:
        _parse(kind, document)
    else:
        with pytest.raises(InvalidArgumentError, match=f"nested more than {MAX_JSON_DEPTH} levels"):
            _parse(kind, document)


@pytest.mark.parametrize("depth", [2_000, 400_000])
def test_nesting_past_the_recursion_limit_is_refused(depth: int) -> None:
    for opening, closing in (b"[", b"]"), (b'{"a":', b"}"):
        with pytest.raises(InvalidArgumentError, match="nested more than"):
            Index.parse(b'{"schemaVersion":2,"manifests":' + opening * depth + b"1" + closing * depth + b"}")


def test_gc_walks_past_a_deeply_nested_blob(tmp_path: Path) -> None:
    # A pull holds what it fetched under its lease before it parses it: a GC meanwhile reads it.
    from pycontainerd._metadata import LeaseResource

    data = b'{"a":' * 50_000 + b"1" + b"}" * 50_000
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    with Client(tmp_path / "root", tmp_path / "state") as client:
        client.content.write_blob("deep", data, len(data), digest)
        with client.lease() as lease_id:
            client.metadata.leases.add_resource(client.namespace, lease_id, LeaseResource.content(digest))
            client.metadata.content.add(client.namespace, digest, len(data))
            assert client.gc().errors == ()
            client.content.info(digest)  # held by the lease


def test_oversized_documents_are_refused_before_they_are_decoded() -> None:
    with pytest.raises(InvalidArgumentError, match=r"^manifest: \d+ bytes, more than the 4393216 accepted"):
        Manifest.parse(b" " * (4 * 1048 * 1048 + 1))
    with pytest.raises(InvalidArgumentError, match="image config: 8388609 bytes"):
        ImageConfig.parse(b" " * ((8 << 20) + 1))


# -- layers --------------------------------------------------------------------------------------

_NAMES = st.sampled_from(
    [
        "a",
        "dir/a",
        "dir",
        "../x",
        "/abs/x",
        "a/../../b",
        "./.",
        "",
        ".wh.a",
        "dir/.wh.a",
        ".wh..wh..opq",
        "dir/.wh..wh..opq",
        ".wh..",
        "x" * 300,
        "y" * 255,
        "/".join(["d" * 200] * 25),
        "link/escape",
        "sym/x",
        "é/\udcff",
    ]
) | st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=30)
_LINKS = _NAMES | st.sampled_from(["/", "..", "../../../../etc", "/etc/passwd", "SENTINEL", "c" * 5000])
_TYPES = st.sampled_from(
    [
        *(tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE),
        *(tarfile.FIFOTYPE, tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.CONTTYPE, tarfile.GNUTYPE_SPARSE),
        *(b"Z", b"x", b"g"),  # unknown, and pax headers as entries of their own
    ]
)
_PAX = st.dictionaries(
    st.sampled_from(
        [
            "SCHILY.xattr.user.k",
            "SCHILY.xattr.trusted.overlay.opaque",
            "SCHILY.xattr.",
            "SCHILY.xattr." + "n" * 300,
            "GNU.sparse.map",
            "GNU.sparse.size",
            "GNU.sparse.realsize",
            "GNU.sparse.major",
            "size",
            "mtime",
            "uid",
            "path",
            "linkpath",
            "comment",
        ]
    ),
    st.sampled_from(["1", "-5", "nan", "1e400", "0,10,20", "abc", "", "x" * 70_000, "/etc/passwd"]),
    max_size=3,
)


@st.composite
def _entries(draw: st.DrawFn) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(draw(_NAMES))
    info.type = draw(_TYPES)
    info.linkname = draw(_LINKS)
    info.mode = draw(st.integers(0, 0o7777777) | st.sampled_from([0o4755, 0o1777, -1, 1 << 30]))
    info.uid = draw(st.integers(0, 70_000) | st.sampled_from([-1, (1 << 32) - 1, 1 << 40]))
    info.gid = draw(st.integers(0, 70_000))
    info.mtime = draw(
        st.integers(-(2**40), 2**40) | st.floats(allow_nan=True) | st.sampled_from([0, 1 << 70, 1.5])
    )
    info.devmajor = draw(st.integers(0, 300) | st.sampled_from([1 << 32]))
    info.devminor = draw(st.integers(0, 300))
    info.pax_headers = draw(_PAX)
    data = draw(st.binary(max_size=64)) if info.type in tarfile.REGULAR_TYPES else b""
    info.size = len(data)
    return info, data


def _layer(entries: list[tuple[tarfile.TarInfo, bytes]], fmt: int) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _tree(directory: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every path under ``directory`` (itself included) with its mode, inode and content."""
    found = {}
    for where in [directory, *directory.rglob("*")]:
        st_ = where.lstat()
        content = where.read_bytes() if stat.S_ISREG(st_.st_mode) else b""
        found[str(where)] = (st_.st_mode, st_.st_ino, content)
    return found


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding sentinels next to where the layers go: ``etc/passwd``, ``SENTINEL``."""
    where = tmp_path_factory.mktemp("sandbox")
    (where / "etc").mkdir()
    (where / "etc" / "passwd").write_text("outside\n")
    (where / "SENTINEL").write_text("outside\n")
    return where


def _outside(tree: dict[str, tuple[int, int, bytes]], root: Path) -> dict[str, tuple[int, int, bytes]]:
    return {
        path: what for path, what in tree.items() if path != str(root) and not path.startswith(f"{root}/")
    }


def _apply_contained(sandbox: Path, blob: bytes, **options: Any) -> None:
    """Apply ``blob`` to a fresh root in ``sandbox``: a result or a LayerError, and the sandbox untouched."""
    root = sandbox / "root"
    root.mkdir()
    before = _outside(_tree(sandbox), root)
    try:
        apply_layer(root, io.BytesIO(blob), **options)
    except LayerError as exc:
        assert len(str(exc)) < 1000, "a message must stay readable however long the name"
    finally:
        after = _outside(_tree(sandbox), root)
        shutil.rmtree(root)
    assert after == before


@SLOW
@given(
    entries=st.lists(_entries(), min_size=1, max_size=6),
    fmt=st.sampled_from([tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT]),
    overlay=st.booleans(),
    devices=st.booleans(),
    compress=st.booleans(),
)
def test_any_layer_is_applied_inside_the_root_or_refused_naming_the_entry(
    sandbox: Path,
    entries: list[tuple[tarfile.TarInfo, bytes]],
    fmt: int,
    overlay: bool,
    devices: bool,
    compress: bool,
) -> None:
    for info, _ in entries:
        if info.linkname == "SENTINEL":
            info.linkname = str(sandbox / "SENTINEL")
    try:
        blob = _layer(entries, fmt)
    except (ValueError, OverflowError, UnicodeError, tarfile.TarError):
        reject()  # tarfile cannot write it: no such layer
    if compress:
        blob = gzip.compress(blob, mtime=0)
    _apply_contained(sandbox, blob, whiteout_format="overlay" if overlay else "native", allow_devices=devices)


def _directory(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode = tarfile.DIRTYPE, 0o755
    return info


_GOOD_LAYER = _layer(
    [
        (_directory("dir"), b""),
        (tarfile.TarInfo("dir/file"), b"hello"),
        (tarfile.TarInfo("dir/.wh.gone"), b""),
        (tarfile.TarInfo("x" * 150), b"long name"),
    ],
    tarfile.PAX_FORMAT,
)


@SLOW
@given(
    flips=st.lists(st.tuples(st.integers(0, len(_GOOD_LAYER) - 1), st.integers(0, 255)), max_size=8),
    cut=st.integers(0, len(_GOOD_LAYER)),
    compress=st.sampled_from([None, "gzip-before", "gzip-after"]),
)
def test_a_corrupted_layer_is_applied_inside_the_root_or_refused(
    sandbox: Path, flips: list[tuple[int, int]], cut: int, compress: str | None
) -> None:
    blob = bytearray(gzip.compress(_GOOD_LAYER, mtime=0) if compress == "gzip-after" else _GOOD_LAYER)
    for where, value in flips:
        blob[where % len(blob)] = value
    data = bytes(blob[: max(cut, 1)] if cut < len(blob) else blob)
    _apply_contained(sandbox, gzip.compress(data, mtime=0) if compress == "gzip-before" else data)


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        (
            [(tarfile.TarInfo("a" * 300), b"x")],
            r"layer entry 'a{100}'\.\.\. \(300 characters\): .* over NAME_MAX",
        ),
        ([(tarfile.TarInfo("/".join(["b" * 200] * 25)), b"x")], "over PATH_MAX"),
        ([(tarfile.TarInfo("f"), b"")], None),
    ],
)
def test_long_names_are_refused_naming_the_entry(
    sandbox: Path, entries: list[tuple[tarfile.TarInfo, bytes]], message: str | None
) -> None:
    root = sandbox / "named"
    root.mkdir()
    try:
        blob = _layer(entries, tarfile.PAX_FORMAT)
        if message is None:
            apply_layer(root, io.BytesIO(blob))
        else:
            with pytest.raises(LayerError, match=message):
                apply_layer(root, io.BytesIO(blob))
    finally:
        shutil.rmtree(root)


def test_a_gzip_bomb_inflates_a_chunk_at_a_time(sandbox: Path) -> None:
    # 1 GiB of zeros in one entry: ~1 MiB of gzip, refused by the byte limit without holding it.
    import tracemalloc

    header = tarfile.TarInfo("bomb")
    header.size = 1 << 30
    tar = header.tobuf(tarfile.PAX_FORMAT)
    compressor = gzip.compress(tar + b"\0" * (1 << 30), compresslevel=9, mtime=0)
    root = sandbox / "bomb"
    root.mkdir()
    tracemalloc.start()
    try:
        from pycontainerd._archive.apply import ApplyLimits

        with pytest.raises(LayerError, match="'bomb': its 1073741824 bytes take the layer over"):
            apply_layer(root, io.BytesIO(compressor), limits=ApplyLimits(max_bytes=1 << 20))
        assert tracemalloc.get_traced_memory()[1] < 64 << 20
    finally:
        tracemalloc.stop()
        import shutil

        shutil.rmtree(root)


def _block(kind: bytes, name: str, size: int) -> bytes:
    """A header of type ``kind`` whose size field says ``size`` (GNU's format: base-256 for a large one)."""
    info = tarfile.TarInfo(name)
    info.type, info.size = kind, size
    return info.tobuf(tarfile.GNU_FORMAT)


def _blocks(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 512)


def _pax(records: dict[str, str], kind: bytes = b"x") -> bytes:
    """A pax extended header (``x``, or ``g``: global) holding ``records``."""
    body = b""
    for key, value in records.items():
        rest = f" {key}={value}\n".encode()
        length = len(rest)
        while length != len(str(length)) + len(rest):  # the length counts its own digits
            length = len(str(length)) + len(rest)
        body += str(length).encode() + rest
    return _block(kind, "PaxHeader", len(body)) + _blocks(body)


_FILE = _block(tarfile.REGTYPE, "f", 1) + _blocks(b"x")
_END = b"\0" * 1024


@pytest.mark.parametrize(
    ("layer", "error", "message"),
    [
        # Extended headers are read whole: their size is bounded before a byte of them is read.
        (
            _block(tarfile.GNUTYPE_LONGNAME, "././@LongLink", 5000) + _FILE,
            LayerError,
            r"of 5000 bytes: over 4096",
        ),
        (_block(b"x", "PaxHeader", 1 << 40) + _FILE, LayerError, r"of 1099511627776 bytes: over 16777216"),
        # Each extended header applies to the next header: a chain of them is bounded.
        (_pax({"comment": "x"}) * 9 + _FILE, LayerError, r"more than 8 extended tar headers in a row"),
        # Sparse files, in the header's form and in pax's (1.0 keeps its map in the data, which ends
        # here before the map does: a parser waiting for the rest of it would wait for ever).
        (_block(tarfile.GNUTYPE_SPARSE, "holes", 0) + _END, UnsafeLayerError, r"'holes': sparse files"),
        (
            _pax({"GNU.sparse.major": "1", "GNU.sparse.minor": "0", "GNU.sparse.name": "holes"})
            + _block(tarfile.REGTYPE, "GNUSparseFile.0/holes", 512)
            + b"99999\n1",
            UnsafeLayerError,
            r"'holes': sparse files are not supported",
        ),
        (_pax({"GNU.sparse.map": "0,x"}) + _FILE, UnsafeLayerError, r"'f': sparse files are not supported"),
        # Global headers would apply to every entry after them (Go's tar ignores them).
        (_pax({"comment": "x"}, b"g") + _FILE + _END, None, None),
        (_pax({"path": "elsewhere"}, b"g") + _FILE, LayerError, r"a global pax header sets \['path'\]"),
        # A field given in a pax header must parse: it is no zero when it does not.
        (_pax({"size": "12abc"}) + _FILE, LayerError, r"layer entry 'f': its pax size '12abc' is not valid"),
        (_pax({"uid": " 7"}) + _FILE, LayerError, r"its pax uid ' 7' is not valid"),
        (_pax({"size": "-3"}) + _FILE, LayerError, r"layer entry 'f': negative size -3"),
        (
            _block(b"x", "PaxHeader", 9) + _blocks(b"8 path=x\n") + _FILE,
            LayerError,
            r"corrupt extended tar header",
        ),
        (_block(b"x", "PaxHeader", 6) + _blocks(b"6 xyz\n") + _FILE, LayerError, r"not KEY=VALUE"),
        # Truncations: after an extended header, inside its data, inside an entry's data.
        (_pax({"path": "x"}), LayerError, r"without its end-of-archive marker"),
        (_pax({"path": "x"}) + _END, LayerError, r"ends after an extended header, without its entry"),
        (_block(b"x", "PaxHeader", 100) + b"10 a", LayerError, r"'PaxHeader': its data ends early"),
        (_block(tarfile.REGTYPE, "f", 4096) + b"abc", LayerError, r"'f': its data ends early"),
    ],
)
def test_extended_and_sparse_headers_are_bounded_or_refused_naming_the_entry(
    tmp_path: Path, layer: bytes, error: type[Exception] | None, message: str | None
) -> None:
    if error is None:
        assert apply_layer(tmp_path, io.BytesIO(layer)).entries == 1
        assert (tmp_path / "f").read_bytes() == b"x"
    else:
        with pytest.raises(error, match=message):
            apply_layer(tmp_path, io.BytesIO(layer))


# -- image archives ------------------------------------------------------------------------------


def _archive(members: dict[str, bytes]) -> io.BytesIO:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buffer.seek(0)
    return buffer


def _blob(data: bytes) -> tuple[str, bytes]:
    return f"blobs/sha256/{hashlib.sha256(data).hexdigest()}", data


@SLOW
@given(
    index=json_values | st.builds(lambda: copy.deepcopy(INDEX)),
    manifest=json_values | st.builds(lambda: copy.deepcopy(MANIFEST)),
    docker=st.booleans(),
    layout=st.sampled_from([b'{"imageLayoutVersion":"1.0.0"}', b"[]", b"{", b'{"imageLayoutVersion":2}']),
)
def test_any_image_archive_imports_or_is_refused_leaving_no_ingest(
    tmp_path_factory: pytest.TempPathFactory, index: object, manifest: object, docker: bool, layout: bytes
) -> None:
    store = ContentStore(tmp_path_factory.mktemp("store"))
    manifest_path, manifest_bytes = _blob(json.dumps(manifest).encode())
    members = dict([_blob(json.dumps(CONFIG).encode()), (manifest_path, manifest_bytes)])
    if docker:
        members["manifest.json"] = json.dumps(index if not isinstance(index, dict) else [index]).encode()
    else:
        if isinstance(index, dict) and isinstance(index.get("manifests"), list) and index["manifests"]:
            first = index["manifests"][0]
            if isinstance(first, dict):
                first["digest"] = "sha256:" + manifest_path.rsplit("/", 1)[1]
                first["size"] = len(manifest_bytes)
        members |= {"oci-layout": layout, "index.json": json.dumps(index).encode()}
    try:
        import_archive(store, _archive(members))
    except PycontainerdError:
        pass
    assert store.list_statuses() == []


# -- references and names ------------------------------------------------------------------------

_REFERENCE_PARTS = st.sampled_from(
    [
        *("", "a", "A", "busybox", "127.0.0.1:5000", "localhost", "[::1]:5000", "x.y", "..", "/", ":"),
        *("@", "-", "_", "__", "---", "latest", "v1.0", "sha256:" + "a" * 64, "http:", "//"),
        *("é", "İ", "٣", " ", "\t", "\x00"),
    ]
)
_REFERENCES = st.lists(_REFERENCE_PARTS, max_size=6).map("".join) | st.text(max_size=40)


@FAST
@given(text=_REFERENCES)
def test_a_reference_parses_normalised_or_is_refused(text: str) -> None:
    try:
        reference = Reference.parse(text)
    except ReferenceError as exc:
        assert isinstance(exc, InvalidArgumentError)
        return
    full = str(reference)
    assert full.isascii() and full.isprintable() and " " not in full
    assert Reference.parse(full) == reference  # already normal: parsing it again changes nothing
    assert ".." not in reference.path.split("/")


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("names")
    with Client(root / "root", root / "state") as opened:
        yield opened


@settings(max_examples=150, derandomize=True, database=None, deadline=10_000)
@given(name=_REFERENCES | st.sampled_from(["../../../etc/passwd", "a b", "http://evil/x", "UP/x", "x:y:z"]))
def test_every_image_name_goes_through_the_reference_grammar(client: Any, name: str) -> None:
    from pycontainerd import Image
    from pycontainerd._metadata import Descriptor as Target

    source = "example.com/names/source:latest"
    with contextlib.suppress(AlreadyExistsError):
        target = Target("application/vnd.oci.image.manifest.v1+json", DIGEST, 1)
        client.metadata.images.create(client.namespace, Image(source, target))
    try:
        image = client.tag(source, name)
    except InvalidArgumentError as exc:
        assert str(exc).startswith("tag target: ")
        with pytest.raises(InvalidArgumentError):
            Reference.parse(name)
        return
    assert image.name == str(Reference.parse(name))
    assert client.image(name) == image
    client.remove_image(image.name)


# -- identifiers ---------------------------------------------------------------------------------

_CONTAINERD_ID = re.compile(r"^[A-Za-z0-9]+(?:[._-](?:[A-Za-z0-9]+))*$", re.ASCII)  # identifiers.Validate


@FAST
@given(
    text=st.text(max_size=90)
    | st.lists(st.sampled_from(["a", "Z", "0", ".", "_", "-", "é", "/", "\n"]), max_size=80).map("".join)
)
def test_ids_are_containerds_identifiers(text: str) -> None:
    valid = bool(_CONTAINERD_ID.match(text)) and len(text) <= 76 and not text.endswith("\n")
    try:
        check_container_id(text)
    except InvalidArgumentError:
        assert not valid
    else:
        assert valid


@pytest.mark.parametrize("namespace", ["../x", "a" * 77, "", "a/b", "-a", "a..b", "\u0661"])
def test_a_bad_namespace_is_refused_before_anything_is_opened(tmp_path: Path, namespace: str) -> None:
    with pytest.raises(InvalidArgumentError, match="invalid namespace"):
        Client(tmp_path / "root", tmp_path / "state", namespace)
    assert not (tmp_path / "root").exists()


# -- end to end ----------------------------------------------------------------------------------


def pyctr(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pycontainerd._cli",
            "--root",
            str(root),
            "--state",
            str(root / "state"),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _deep(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize(
    ("members", "message"),
    [
        (
            {
                "oci-layout": b'{"imageLayoutVersion":"1.0.0"}',
                "index.json": b'{"manifests":' + _deep(100_000) + b"}",
            },
            "index.json: index: JSON nested more than 64 levels deep",
        ),
        ({"manifest.json": _deep(100_000)}, "manifest.json: JSON nested more than 64 levels deep"),
        ({"manifest.json": b'[{"Config": 1}]'}, r"manifest.json\[0\].Config: expected a path"),
        (
            {"manifest.json": b'[{"Config": "c.json", "Layers": []}]', "c.json": b'{"rootfs": 5}'},
            r"manifest.json\[0\].Config 'c.json': image config sha256:\w+: architecture: missing",
        ),
        (
            {
                "oci-layout": b"{}",
                "index.json": json.dumps({"schemaVersion": 2, "manifests": [{"size": 1}]}).encode(),
            },
            r"oci-layout: unsupported imageLayoutVersion None",
        ),
        (
            {
                "index.json": json.dumps(
                    {"schemaVersion": 2, "manifests": [{"mediaType": "x", "size": -1}]}
                ).encode()
            },
            r"index.json: manifests\[0\].digest: missing",
        ),
    ],
)
def test_pyctr_import_of_a_hostile_archive_is_one_line_naming_the_field(
    tmp_path: Path, members: dict[str, bytes], message: str
) -> None:
    archive = tmp_path / "hostile.tar"
    archive.write_bytes(_archive(members).getvalue())
    result = pyctr(tmp_path / "root", "images", "import", str(archive))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert re.fullmatch(f"pyctr: {message}\n", result.stderr), result.stderr
    assert pyctr(tmp_path / "root", "images", "ls", "-q").stdout == ""
    assert not any((tmp_path / "root" / "content" / "ingest").iterdir())


@pytest.mark.parametrize(
    "args",
    [
        ["run", "--rm", "docker.io/library/busybox:latest", "a" * 300, "true"],
        ["containers", "rm", "a" * 300],
        ["tasks", "kill", "a" * 300],
        ["-n", "a" * 300, "images", "ls"],
        ["-n", "../../etc", "containers", "ls"],
    ],
)
def test_pyctr_refuses_a_300_character_id_or_namespace_in_one_line(tmp_path: Path, args: list[str]) -> None:
    result = pyctr(tmp_path / "root", *args)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert re.fullmatch(r"pyctr: (invalid container id|invalid namespace|container) [^\n]*\n", result.stderr)
    assert "Errno" not in result.stderr
    assert not any(len(path.name) > 76 for path in tmp_path.rglob("*"))  # nothing named by it
