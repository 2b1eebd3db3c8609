"""``GET /containers/{id}/attach/ws`` through aiohttp's websocket client on the engine's unix socket:
output as binary messages (text before API 1.28), stdin from messages, detach keys, logs, and a
wait for the container's start."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import aiohttp
import pytest

from pyengine import Daemon, DaemonConfig

TYPE_CHECKING = False
if TYPE_CHECKING:
    from conftest import DockerCLI

_T = TypeVar("_T")


def _run(config: DaemonConfig, talk: Callable[[aiohttp.ClientSession], Awaitable[_T]]) -> _T:
    async def main() -> _T:
        connector = aiohttp.UnixConnector(path=str(config.socket_paths[0]))
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as s:
            return await talk(s)

    return asyncio.run(main())


async def _messages(ws: aiohttp.ClientWebSocketResponse) -> list[tuple[aiohttp.WSMsgType, bytes]]:
    """Every message until the engine closes the websocket."""
    got = []
    async for message in ws:
        data = message.data if message.type is aiohttp.WSMsgType.BINARY else str(message.data).encode()
        got.append((message.type, data))
    return got


def test_stdin_in_and_output_out_until_the_detach_keys(loaded: DockerCLI, config: DaemonConfig) -> None:
    cid = loaded("run", "-d", "-i", "--network", "none", "busybox", "cat").stdout.strip()

    async def talk(session: aiohttp.ClientSession) -> bytes:
        url = f"http://engine/v1.44/containers/{cid}/attach/ws?stream=1&stdin=1&stdout=1&stderr=1"
        async with session.ws_connect(url) as ws:
            await ws.send_bytes(b"hello\n")
            first = await ws.receive(timeout=30)
            assert first.type is aiohttp.WSMsgType.BINARY
            await ws.send_str("typed\n")  # text messages reach stdin too
            second = await ws.receive(timeout=30)
            await ws.send_bytes(b"\x10\x11")  # ctrl-p ctrl-q: detached, the container goes on
            rest = await _messages(ws)
            assert rest == []
            return bytes(first.data) + bytes(second.data)

    assert _run(config, talk) == b"hello\ntyped\n"
    assert loaded("inspect", cid, "--format", "{{.State.Running}}").stdout.strip() == "true"
    loaded("rm", "-f", cid)


def test_logs_then_the_live_output_of_the_next_start(loaded: DockerCLI, config: DaemonConfig) -> None:
    cid = loaded(
        "create", "--network", "none", "busybox", "sh", "-c", "echo out; echo err >&2"
    ).stdout.strip()
    loaded("start", cid)
    assert loaded("wait", cid).stdout.strip() == "0"

    async def logs(session: aiohttp.ClientSession) -> list[tuple[aiohttp.WSMsgType, bytes]]:
        async with session.ws_connect(f"http://engine/containers/{cid}/attach/ws?logs=1&stdout=1") as ws:
            return await _messages(ws)

    assert _run(config, logs) == [(aiohttp.WSMsgType.BINARY, b"out\n")]

    async def stream(session: aiohttp.ClientSession) -> bytes:
        url = f"http://engine/v1.44/containers/{cid}/attach/ws?stream=1&stdout=1&stderr=1"
        async with session.ws_connect(url) as ws:
            await asyncio.to_thread(loaded, "start", cid)  # attached first, as docker start -a is
            return b"".join(data for _, data in await _messages(ws))

    assert sorted(_run(config, stream).splitlines()) == [b"err", b"out"]
    loaded("rm", cid)


def test_before_api_1_28_text_messages_and_every_stream(loaded: DockerCLI, config: DaemonConfig) -> None:
    cid = loaded(
        "run", "-d", "--network", "none", "busybox", "sh", "-c", "echo out; echo err >&2"
    ).stdout.strip()
    loaded("wait", cid)

    async def talk(session: aiohttp.ClientSession) -> list[tuple[aiohttp.WSMsgType, bytes]]:
        # Before 1.42, stdout and stderr are attached whatever the query says.
        async with session.ws_connect(f"http://engine/v1.27/containers/{cid}/attach/ws?logs=1") as ws:
            return await _messages(ws)

    got = _run(config, talk)
    assert {kind for kind, _ in got} == {aiohttp.WSMsgType.TEXT}
    assert sorted(b"".join(data for _, data in got).splitlines()) == [b"err", b"out"]
    loaded("rm", cid)


def test_a_missing_container_is_refused_before_the_upgrade(engine: Daemon, config: DaemonConfig) -> None:
    async def talk(session: aiohttp.ClientSession) -> tuple[int, int, str]:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect("http://engine/v1.44/containers/nosuch/attach/ws?stream=1")
        async with session.get("http://engine/v1.44/containers/nosuch/attach/ws") as response:
            return refused.value.status, response.status, (await response.json())["message"]

    assert _run(config, talk) == (404, 404, "No such container: nosuch")


def test_a_request_without_the_websocket_handshake_is_refused(
    loaded: DockerCLI, config: DaemonConfig
) -> None:
    cid = loaded("create", "--network", "none", "busybox", "true").stdout.strip()

    async def talk(session: aiohttp.ClientSession) -> tuple[int, str]:
        async with session.get(f"http://engine/v1.44/containers/{cid}/attach/ws?stream=1") as response:
            return response.status, (await response.json())["message"]

    assert _run(config, talk) == (400, "attach/ws: not a websocket handshake (Upgrade: websocket is missing)")
    loaded("rm", cid)
