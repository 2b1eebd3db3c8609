"""Tests of pycontainerd._archive: breakouts (containerd's TestBreakouts and REFERENCE.md), formats,
whiteouts (native and a real overlayfs mount), diff round trips, metadata."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
import zstandard

from pycontainerd._archive.apply import ApplyLimits, apply_layer
from pycontainerd._archive.diff import write_diff
from pycontainerd._errors import LayerError, UnsafeLayerError

Entry = tarfile.TarInfo | tuple[tarfile.TarInfo, bytes]


def d(name: str, mode: int = 0o755) -> tarfile.TarInfo:
    t = tarfile.TarInfo(name)
    t.type, t.mode, t.mtime = tarfile.DIRTYPE, mode, 1_600_000_000
    return t


def f(name: str, data: bytes = b"", mode: int = 0o644, **kw: object) -> tuple[tarfile.TarInfo, bytes]:
    t = tarfile.TarInfo(name)
    t.size, t.mode, t.mtime = len(data), mode, 1_600_000_000
    for k, v in kw.items():
        setattr(t, k, v)
    return t, data


def sym(target: str, name: str) -> tarfile.TarInfo:
    t = tarfile.TarInfo(name)
    t.type, t.linkname = tarfile.SYMTYPE, target
    return t


def link(target: str, name: str) -> tarfile.TarInfo:
    t = tarfile.TarInfo(name)
    t.type, t.linkname = tarfile.LNKTYPE, target
    return t


def tar(*entries: Entry) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for e in entries:
            if isinstance(e, tuple):
                t.addfile(e[0], io.BytesIO(e[1]))
            else:
                t.addfile(e)
    return buf.getvalue()


def snapshot(path: Path) -> dict[str, tuple[int, int, bytes]]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            p = Path(dirpath, name)
            st = p.lstat()
            data = (
                p.read_bytes()
                if stat.S_ISREG(st.st_mode)
                else os.readlink(p).encode()
                if p.is_symlink()
                else b""
            )
            out[str(p.relative_to(path))] = (
                st.st_mode,
                st.st_mtime_ns // 1_000_000,
                data,
            )  # float PAX mtime: ms
    return out


@pytest.fixture
def env(tmp_path: Path) -> tuple[Path, Path]:
    """A root and a sentinel tree next to it (named like the usual targets) that must not change."""
    root = tmp_path / "root"
    root.mkdir()
    victim = tmp_path / "etc"
    victim.mkdir()
    (victim / "passwd").write_text("outside")
    (victim / "unbroken").write_text("outside")
    (tmp_path / "perm400").write_text("...")
    (tmp_path / "perm400").chmod(0o400)
    return root, tmp_path


Setup = Callable[[Path], None]


def _base(root: Path) -> None:
    (root / "etc").mkdir()
    (root / "etc/passwd").write_text("inside")


def _base_link(root: Path) -> None:
    _base(root)
    os.symlink("/etc", root / "localetc")


def _base_dead(root: Path) -> None:
    _base(root)
    os.symlink("/dne", root / "localetc")


# (name, setup, layer, expectation): expectation is an exception type, or a check on the root.
CASES: list[tuple[str, Setup | None, bytes, type[Exception] | Callable[[Path], bool]]] = [
    ("DotDotName", None, tar(f("../x", b"bad")), UnsafeLayerError),
    ("DotDotInside", None, tar(f("a/../../x", b"bad")), UnsafeLayerError),
    ("AbsoluteName", None, tar(f("/abs", b"ok")), lambda r: (r / "abs").read_bytes() == b"ok"),
    (
        "SymlinkAbsolute",
        None,
        tar(d("etc"), sym("/etc", "localetc"), f("/localetc/unbroken", b"unbroken")),
        lambda r: (r / "etc/unbroken").read_bytes() == b"unbroken",
    ),
    (
        "SymlinkUpAndOut",
        None,
        tar(d("etc"), d("dummy"), sym("/dummy/../etc", "localetc"), f("/localetc/unbroken", b"unbroken")),
        lambda r: (r / "etc/unbroken").read_bytes() == b"unbroken",
    ),
    (
        "SymlinkRelativeUpAndOut",
        None,
        tar(d("etc"), sym("../../../../etc", "localetc"), f("localetc/unbroken", b"unbroken")),
        lambda r: (r / "etc/unbroken").read_bytes() == b"unbroken",
    ),
    (
        "SymlinkMultipleAbsolute",
        None,
        tar(
            d("etc"),
            d("dummy"),
            sym("/etc", "/dummy/etc"),
            sym("/dummy/etc", "localetc"),
            f("/dummy/etc/unbroken", b"unbroken"),
        ),
        lambda r: (r / "etc/unbroken").read_bytes() == b"unbroken",
    ),
    (
        "SymlinkChain",
        None,
        tar(sym("../../..", "a"), sym("a/etc", "b"), f("b/unbroken", b"unbroken")),
        lambda r: (r / "etc/unbroken").read_bytes() == b"unbroken",
    ),
    (
        "SymlinkEmptyFile",
        None,
        tar(d("etc"), f("etc/emptied", b"full"), sym("/etc", "localetc"), f("/localetc/emptied", b"")),
        lambda r: (r / "etc/emptied").read_bytes() == b"",
    ),
    (
        "FileReplacesSymlinkToOutside",
        None,
        tar(sym("/etc/passwd", "p"), f("p", b"new")),
        lambda r: (r / "p").read_bytes() == b"new" and not (r / "p").is_symlink(),
    ),
    ("SymlinkLoop", None, tar(sym("b", "a"), sym("a", "b"), f("a/x", b"")), UnsafeLayerError),
    (
        "HardlinkRelative",
        None,
        tar(
            d("etc"),
            f("/etc/passwd", b"inside"),
            d("breakouts"),
            sym("../../etc", "breakouts/d1"),
            link("/breakouts/d1/passwd", "breakouts/my"),
        ),
        lambda r: os.path.samefile(r / "breakouts/my", r / "etc/passwd"),
    ),
    (
        "HardlinkAbsolute",
        None,
        tar(
            d("etc"),
            f("/etc/passwd", b"inside"),
            sym("/etc", "localetc"),
            link("/localetc/passwd", "localpasswd"),
        ),
        lambda r: os.path.samefile(r / "localpasswd", r / "etc/passwd"),
    ),
    (
        "HardlinkDirectRelative",
        None,
        tar(d("etc"), f("/etc/passwd", b"inside"), link("../../../../../etc/passwd", "localpasswd")),
        UnsafeLayerError,
    ),
    (
        "HardlinkDirectAbsolute",
        None,
        tar(d("etc"), f("/etc/passwd", b"inside"), link("/etc/passwd", "lp")),
        lambda r: os.path.samefile(r / "lp", r / "etc/passwd"),
    ),
    ("HardlinkMissingTarget", None, tar(link("/etc/passwd", "lp")), LayerError),
    (
        "HardlinkSymlinkAbsolute",
        None,
        tar(d("etc"), f("/etc/passwd", b"inside"), sym("/etc/passwd", "pl"), link("/pl", "lp")),
        lambda r: (r / "lp").is_symlink() and os.readlink(r / "lp") == "/etc/passwd",
    ),
    (
        "HardlinkSymlinkChmod",
        None,
        tar(sym("{T}/perm400", "sketchy"), link("sketchy", "sk2"), f("sk2", b"x", mode=0o777)),
        lambda r: True,
    ),
    ("SymlinkParentDirectory", None, tar(d("etc"), sym("/etc/", "..")), UnsafeLayerError),
    ("SymlinkEmptyFilename", None, tar(d("etc"), sym("/etc/", "")), UnsafeLayerError),
    (
        "SymlinkParentRelative",
        None,
        tar(
            d("etc"),
            f("/etc/passwd", b"inside"),
            sym("/etc/", "localetc/sub/.."),
            link("/etc/passwd", "/localetc/lp"),
        ),
        lambda r: os.path.samefile(r / "etc/lp", r / "etc/passwd"),
    ),
    (
        "SymlinkOverrideDirectory",
        lambda r: (_base(r), (r / "localetc").mkdir()),
        tar(sym("/etc", "localetc"), link("/etc/passwd", "/localetc/lp")),
        lambda r: os.path.samefile(r / "etc/lp", r / "etc/passwd"),
    ),
    (
        "DirectoryOverrideSymlink",
        _base_link,
        tar(d("localetc"), f("/localetc/x", b"in")),
        lambda r: (
            (r / "localetc").is_dir() and not (r / "localetc").is_symlink() and (r / "localetc/x").exists()
        ),
    ),
    ("WhiteoutRootParent", _base, tar(f(".wh...")), UnsafeLayerError),
    ("WhiteoutParent", _base, tar(f("etc/.wh...")), UnsafeLayerError),
    ("WhiteoutRoot", _base, tar(f(".wh..")), UnsafeLayerError),
    ("WhiteoutCurrentDirectory", _base, tar(f("etc/.wh..")), UnsafeLayerError),
    (
        "WhiteoutSymlink",
        _base_link,
        tar(f(".wh.localetc")),
        lambda r: (r / "etc/passwd").read_text() == "inside" and not os.path.lexists(r / "localetc"),
    ),
    (
        "WhiteoutSymlinkPath",
        _base_link,
        tar(f("localetc/.wh.passwd")),
        lambda r: not (r / "etc/passwd").exists(),
    ),
    (
        "WhiteoutDeadSymlinkParent",
        _base_dead,
        tar(f("localetc/.wh.etc")),
        lambda r: (r / "etc/passwd").read_text() == "inside",
    ),
    ("WhiteoutRelativePath", _base_dead, tar(f("dne/../.wh.etc")), lambda r: not (r / "etc").exists()),
    ("WhiteoutDotDotEscape", _base, tar(f("../.wh.etc")), UnsafeLayerError),
    (
        "DeviceRefused",
        None,
        tar(f("dev/null", type=tarfile.CHRTYPE, devmajor=1, devminor=3)),
        UnsafeLayerError,
    ),
    (
        "OverlayXattrDropped",
        None,
        tar(f("x", b"", pax_headers={"SCHILY.xattr.trusted.overlay.redirect": "/etc"})),
        lambda r: "trusted.overlay.redirect" not in os.listxattr(r / "x"),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_breakout(env: tuple[Path, Path], case: tuple[str, Setup | None, bytes, object]) -> None:
    root, outside = env
    _, setup, layer, expect = case
    if b"{T}" in case[2]:
        layer = tar(sym(f"{outside}/perm400", "sketchy"), link("sketchy", "sk2"))
    if setup is not None:
        setup(root)
    before = snapshot(outside / "etc"), (outside / "perm400").stat()
    for fmt in ("native",):
        if isinstance(expect, type):
            with pytest.raises(expect) as info:
                apply_layer(root, io.BytesIO(layer), whiteout_format=fmt)
            if isinstance(info.value, UnsafeLayerError):
                assert isinstance(info.value.entry, str)
        else:
            apply_layer(root, io.BytesIO(layer), whiteout_format=fmt)
            assert callable(expect) and expect(root)
    assert (snapshot(outside / "etc"), (outside / "perm400").stat()) == before
    assert stat.S_IMODE((outside / "perm400").stat().st_mode) == 0o400
    assert sorted(p.name for p in outside.iterdir()) == ["etc", "perm400", "root"]


LAYER = tar(
    d("etc"), f("etc/hosts", b"127.0.0.1 localhost\n" * 100), sym("hosts", "etc/h"), link("etc/hosts", "hl")
)


@pytest.mark.parametrize("kind", ["plain", "gzip", "zstd"])
def test_compressions_and_digests(tmp_path: Path, kind: str) -> None:
    blob = {"plain": LAYER, "gzip": gzip.compress(LAYER), "zstd": zstandard.ZstdCompressor().compress(LAYER)}[
        kind
    ]
    res = apply_layer(tmp_path, io.BytesIO(blob))
    assert res.diff_id == "sha256:" + hashlib.sha256(LAYER).hexdigest()
    assert res.digest == "sha256:" + hashlib.sha256(blob).hexdigest()
    assert res.size == len(LAYER) and res.entries == 4
    assert (tmp_path / "etc/hosts").read_bytes().startswith(b"127.0.0.1")
    assert os.path.samefile(tmp_path / "hl", tmp_path / "etc/hosts")


@pytest.mark.parametrize("kind", ["plain", "gzip", "zstd"])
def test_truncated(tmp_path: Path, kind: str) -> None:
    big = tar(f("a", os.urandom(200_000)), f("b", b"x"))
    blob = {"plain": big, "gzip": gzip.compress(big), "zstd": zstandard.ZstdCompressor().compress(big)}[kind]
    # plain: mid-data, mid-header, and at an entry boundary with the end-of-archive marker missing
    cuts = (
        (len(blob) // 2, 700, 200_704 + 100, 201_728) if kind == "plain" else (len(blob) // 2, len(blob) - 3)
    )
    for cut in cuts:
        with pytest.raises(LayerError):
            apply_layer(tmp_path / f"r{cut}", io.BytesIO(blob[:cut])) if (
                tmp_path / f"r{cut}"
            ).mkdir() is None else None


def test_media_type_mismatch(tmp_path: Path) -> None:
    with pytest.raises(LayerError):
        apply_layer(tmp_path, io.BytesIO(LAYER), media_type="application/vnd.oci.image.layer.v1.tar+gzip")


def test_bomb_limits(tmp_path: Path) -> None:
    with pytest.raises(LayerError, match="bytes"):
        apply_layer(tmp_path, io.BytesIO(tar(f("a", b"x" * 1000))), limits=ApplyLimits(max_bytes=100))
    with pytest.raises(LayerError, match="entries"):
        apply_layer(
            tmp_path, io.BytesIO(tar(*[f(str(i)) for i in range(20)])), limits=ApplyLimits(max_entries=10)
        )


def test_metadata(tmp_path: Path) -> None:
    cap = b"\x01\x00\x00\x02\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
    layer = tar(
        d("dir", 0o750),
        f(
            "dir/suid",
            b"#!",
            mode=0o4755,
            uid=1234,
            gid=5678,
            pax_headers={
                "SCHILY.xattr.security.capability": cap.decode("utf-8", "surrogateescape"),
                "SCHILY.xattr.user.k": "v",
            },
        ),
    )
    apply_layer(tmp_path, io.BytesIO(layer))
    st = (tmp_path / "dir/suid").stat()
    assert stat.S_IMODE(st.st_mode) == 0o4755 and (st.st_uid, st.st_gid) == (1234, 5678)
    assert st.st_mtime == 1_600_000_000 and (tmp_path / "dir").stat().st_mtime == 1_600_000_000
    assert stat.S_IMODE((tmp_path / "dir").stat().st_mode) == 0o750
    assert os.getxattr(tmp_path / "dir/suid", "security.capability") == cap
    assert os.getxattr(tmp_path / "dir/suid", "user.k") == b"v"
    other = tmp_path / "o"
    other.mkdir()
    apply_layer(other, io.BytesIO(layer), strip_setuid=True)
    assert stat.S_IMODE((other / "dir/suid").stat().st_mode) == 0o755


def test_replacements(tmp_path: Path) -> None:
    apply_layer(tmp_path, io.BytesIO(tar(d("a"), f("a/x", b"1"), f("b", b"2"))), whiteout_format="native")
    apply_layer(tmp_path, io.BytesIO(tar(f("a", b"file"), d("b"), f("b/y", b"3"))), whiteout_format="native")
    assert (tmp_path / "a").read_bytes() == b"file" and (tmp_path / "b/y").read_bytes() == b"3"


L1 = tar(
    d("etc"),
    f("etc/passwd", b"root"),
    f("etc/gone", b"x"),
    d("opt"),
    d("opt/app"),
    f("opt/app/old", b"o"),
    d("var"),
    f("var/keep", b"k"),
)
L2 = tar(
    d("etc"), f("etc/.wh.gone"), d("opt"), d("opt/app"), f("opt/app/.wh..wh..opq"), f("opt/app/new", b"n")
)
L3 = tar(f(".wh.var"), f("var", b"now a file"), d("etc"), f("etc/added", b"a"))
EXPECTED = {"etc", "etc/passwd", "etc/added", "opt", "opt/app", "opt/app/new", "var"}


def _tree(path: Path) -> dict[str, bytes | None]:
    out: dict[str, bytes | None] = {}
    for dirpath, dirnames, filenames in os.walk(path):
        for n in dirnames + filenames:
            p = Path(dirpath, n)
            out[str(p.relative_to(path))] = p.read_bytes() if p.is_file() else None
    return out


def test_three_layers_native_and_overlay(tmp_path: Path) -> None:
    native = tmp_path / "native"
    native.mkdir()
    for layer in (L1, L2, L3):
        apply_layer(native, io.BytesIO(layer), whiteout_format="native")
    assert set(_tree(native)) == EXPECTED
    uppers = []
    for i, layer in enumerate((L1, L2, L3)):
        u = tmp_path / f"u{i}"
        u.mkdir()
        apply_layer(u, io.BytesIO(layer), whiteout_format="overlay")
        uppers.append(u)
    assert stat.S_ISCHR((uppers[1] / "etc/gone").lstat().st_mode)
    assert os.getxattr(uppers[1] / "opt/app", "trusted.overlay.opaque") == b"y"
    merged = tmp_path / "merged"
    merged.mkdir()
    lower = ":".join(str(u) for u in reversed(uppers))
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={lower}", str(merged)], check=True)
    try:
        assert _tree(merged) == _tree(native)
    finally:
        subprocess.run(["umount", str(merged)], check=True)
    # And back: the overlay upper dirs diff into layers that rebuild the same tree natively.
    again = tmp_path / "again"
    again.mkdir()
    for u in uppers:
        out = io.BytesIO()
        write_diff(None, u, out, whiteout_format="overlay")
        apply_layer(again, io.BytesIO(out.getvalue()), whiteout_format="native")
    assert _tree(again) == _tree(native)


def test_write_diff_native_round_trip(tmp_path: Path) -> None:
    lower, upper, dest = tmp_path / "lower", tmp_path / "upper", tmp_path / "dest"
    for p in (lower, upper, dest):
        p.mkdir()
    apply_layer(lower, io.BytesIO(L1), whiteout_format="native")
    apply_layer(upper, io.BytesIO(L1), whiteout_format="native")
    apply_layer(dest, io.BytesIO(L1), whiteout_format="native")
    for layer in (L2, L3):
        apply_layer(upper, io.BytesIO(layer), whiteout_format="native")
    os.link(upper / "etc/passwd", upper / "etc/passwd2")
    os.setxattr(upper / "etc/added", "user.x", b"1")
    out = io.BytesIO()
    res = write_diff(lower, upper, out, whiteout_format="native", compression="gzip")
    out2 = io.BytesIO()
    write_diff(lower, upper, out2, whiteout_format="native", compression="gzip")
    assert out.getvalue() == out2.getvalue()  # deterministic
    applied = apply_layer(dest, io.BytesIO(out.getvalue()), whiteout_format="native")
    assert applied.diff_id == res.diff_id and applied.digest == res.digest
    assert snapshot(dest) == snapshot(upper)
    assert os.getxattr(dest / "etc/added", "user.x") == b"1"
    # Known limitation: a new link to an unchanged lower file is written as a copy.
    assert (dest / "etc/passwd2").read_bytes() == (upper / "etc/passwd").read_bytes()
    full = io.BytesIO()
    write_diff(None, upper, full, whiteout_format="native")
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    apply_layer(fresh, io.BytesIO(full.getvalue()))
    assert snapshot(fresh) == snapshot(upper)
    assert os.path.samefile(fresh / "etc/passwd", fresh / "etc/passwd2")
