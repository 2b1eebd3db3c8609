"""The README's Python examples run as written (with the paths filled in)."""

from __future__ import annotations

import re
from pathlib import Path

import pyrunc_acceptance_oci_images as oci_images  # registered by conftest.py
import pyrunc_acceptance_peers as peers
import pytest

import pyrunc
from pyrunc.testing import make_busybox_bundle

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def test_readme_has_the_api_examples() -> None:
    assert len(python_blocks()) == 3


def test_run_example(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bundle = make_busybox_bundle(tmp_path / "bundle", ["true"])
    code = python_blocks()[0].replace("/path/to/rootfs", str(bundle / "rootfs"))
    exec(compile(code, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert out.startswith("0 hello from pyrunc\n")
    assert "lo" in out


def test_container_example(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bundle = make_busybox_bundle(tmp_path / "bundle", ["sleep", "30"])
    code = (
        python_blocks()[1]
        .replace("/path/to/bundle", str(bundle))
        .replace("/run/pyrunc", str(tmp_path / "root"))
    )
    exec(compile(code, "README.md", "exec"), {"pyrunc": pyrunc})  # the first block imports it
    assert capsys.readouterr().out == "running\n"
    assert not (tmp_path / "root" / "web").exists()


def test_pycontainerd_example(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    image = oci_images.write_busybox_layout(tmp_path / "layout")
    with peers.registry(tmp_path / "registry") as registry:
        oci_images.push_to_registry(image, registry.address, "busybox")
        code = (
            python_blocks()[2]
            .replace("127.0.0.1:5000", registry.address)
            .replace("/var/lib/pycontainerd", str(tmp_path / "root"))
            .replace("/run/pycontainerd", str(tmp_path / "state"))
        )
        exec(compile(code, "README.md", "exec"), {})
    assert capsys.readouterr().out == "0 hello from a task\n"
    assert list((tmp_path / "state" / "tasks" / "default").iterdir()) == []
