"""pyrunc's Python API on real containers: :class:`pyrunc.Container` made from one
:class:`pyrunc.CreateOptions`, and :meth:`~pyrunc.Container.status` as a :class:`pyrunc.ContainerStatus`
that says which verbs apply, the same table the command line's verbs are guarded by."""

from __future__ import annotations

import os
import select
import time
from typing import TYPE_CHECKING

import pytest

import pyrunc
from pyrunc import ContainerStatus, CreateOptions
from pyrunc.testing import make_busybox_bundle

if TYPE_CHECKING:
    from pathlib import Path


def _read_until(fd: int, want: bytes, timeout: float = 10.0) -> bytes:
    data = b""
    deadline = time.monotonic() + timeout
    while want not in data:
        if not select.select([fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
            raise AssertionError(f"no {want!r} within {timeout} s, got {data!r}")
        chunk = os.read(fd, 4096)
        if not chunk:
            raise AssertionError(f"no {want!r} before EOF, got {data!r}")
        data += chunk
    return data


def _wait_for(container: pyrunc.Container, status: ContainerStatus, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while container.status() is not status:
        assert time.monotonic() < deadline, f"still {container.status()} after {timeout} s"
        time.sleep(0.01)


def test_a_container_through_its_statuses_with_its_own_stdio(tmp_path: Path) -> None:
    bundle = make_busybox_bundle(
        tmp_path / "bundle", ["sh", "-c", "read line; echo got:$line; echo oops >&2"]
    )
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    try:
        options = CreateOptions(str(bundle), pid_file=str(tmp_path / "init.pid"), stdio=(in_r, out_w, err_w))
        container = pyrunc.Container.create("api", options, root=str(tmp_path / "root"))
        for fd in (in_r, out_w, err_w):
            os.close(fd)
        try:
            assert int((tmp_path / "init.pid").read_text()) == container.pid
            status = container.status()
            assert status is ContainerStatus.CREATED and status.value == "created"
            assert container.state().status == status.value  # the string ``pyrunc state`` prints
            assert status.can_start() and status.can_kill() and status.can_delete()
            assert not status.can_resume()

            container.start()
            assert container.status() is ContainerStatus.RUNNING
            container.pause()
            status = container.status()
            assert status is ContainerStatus.PAUSED and status.can_resume() and not status.can_start()
            container.resume()
            assert container.status() is ContainerStatus.RUNNING

            os.write(in_w, b"hello\n")
            assert _read_until(out_r, b"got:hello\n") == b"got:hello\n"
            assert _read_until(err_r, b"oops\n") == b"oops\n"
            _wait_for(container, ContainerStatus.STOPPED)
            status = container.status()
            assert not status.can_kill() and status.can_delete() and not status.can_exec()
        finally:
            container.delete(force=True)
    finally:
        for fd in (in_w, out_r, err_r):
            os.close(fd)
    assert not (tmp_path / "root" / "api").exists()


@pytest.mark.parametrize(
    ("verb", "allowed"),
    [
        ("start", {"created"}),
        ("kill", {"created", "running", "paused"}),
        ("pause", {"created", "running"}),
        ("resume", {"paused"}),
        ("exec", {"created", "running"}),
        ("update", {"created", "running", "paused"}),
        ("delete", {"created", "stopped"}),
    ],
)
def test_what_each_status_allows_is_runcs_table(verb: str, allowed: set[str]) -> None:
    assert {status.value for status in ContainerStatus if getattr(status, f"can_{verb}")()} == allowed


def test_create_options_are_a_value(tmp_path: Path) -> None:
    options = CreateOptions("/b", pid_file="/b/pid", no_pivot=True)
    assert options == CreateOptions("/b", pid_file="/b/pid", no_pivot=True)
    assert len({options, CreateOptions("/b", pid_file="/b/pid", no_pivot=True)}) == 1
    assert options.replace(no_pivot=False) == CreateOptions("/b", pid_file="/b/pid")
    with pytest.raises(pyrunc.PyruncError, match=r"^preserve_fds: -1 is not 0 or more$"):
        pyrunc.Container.create("neg", CreateOptions("/b", preserve_fds=-1), root=str(tmp_path / "root"))
    assert not (tmp_path / "root").exists()
