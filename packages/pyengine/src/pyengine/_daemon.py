"""The daemon: one engine per data root, served on its unix sockets and TCP addresses (over TLS,
mutual with ``tlsverify``) until SIGTERM, SIGINT or :meth:`Daemon.stop`.

Everything an instance keeps lives under its data root (the store, the engine's id, the lock) and
its exec root (the pidfile by default, the store's runtime state), so that private instances never
meet. A second daemon on the same data root is refused while the first holds its lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import grp
import logging
import os
import signal
import socket
import ssl
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Self

import attrs
from aiohttp import web

import pycontainerd
from pyengine._api import make_app
from pyengine._config import DaemonConfig, TcpAddress
from pyengine._container_api import Supervisor
from pyengine._containers import Containers
from pyengine._errors import DaemonError
from pyengine._events import EventBus
from pyengine._http import blocking
from pyengine._images import Images, ImageUser
from pyengine._network.endpoints import Networking
from pyengine._network.netlink import Netlink
from pyengine._network.networks import Networks
from pyengine._network.nft import EngineTable, ip_forward
from pyengine._network.ports import PortPublisher
from pyengine._network_api import NetworkService
from pyengine._system import StoreCounts
from pyengine._tls import serve_tls
from pyengine._volumes import Volumes

__all__ = ["Daemon", "Engine"]

log = logging.getLogger("pyengine")

#: The pycontainerd namespace the engine keeps its images and containers in (dockerd's is "moby").
NAMESPACE = "moby"
_EXECUTOR_THREADS = 32


@attrs.define
class Engine:
    """What the API handlers work on: the configuration, the engine's id and its store."""

    config: DaemonConfig
    id: str
    store: pycontainerd.Client
    images: Images
    supervisor: Supervisor
    events: EventBus
    networks: NetworkService

    @property
    def snapshotter(self) -> str:
        return self.store.snapshotter_name

    def counts(self) -> StoreCounts:
        """The store's images and the engine's containers, counted now (blocking: run it off the
        event loop)."""
        records = self.supervisor.containers.records(all=True)
        return StoreCounts(
            images=len(self.images.summaries()),
            containers=len(records),
            running=sum(r.state.status == "running" for r in records),
            paused=0,
        )


def _engine_id(data_root: Path) -> str:
    """The engine's id, made once and kept in ``<data root>/engine-id``."""
    path = data_root / "engine-id"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        value = str(uuid.uuid4())
        tmp = path.with_name(".engine-id.tmp")
        tmp.write_text(value + "\n")
        tmp.replace(path)
        return value


class Daemon:
    """``pyengined`` as an object: :meth:`run` serves in this thread until stopped; as a context
    manager it serves in a thread of its own (for tests and embedders)."""

    def __init__(self, config: DaemonConfig) -> None:
        self.config = config
        self._lock_fd = -1
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None

    # -- the data root and the pidfile -----------------------------------------------------------

    def _lock(self) -> None:
        root = self.config.data_root
        root.mkdir(mode=0o711, parents=True, exist_ok=True)
        fd = os.open(root / "pyengined.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise DaemonError(
                f"data root {root} is in use by another pyengined (pid {holder}): "
                "stop it, or give this one another --data-root"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock_fd = fd

    def _unlock(self) -> None:
        if self._lock_fd >= 0:
            os.ftruncate(self._lock_fd, 0)
            os.close(self._lock_fd)  # releases the lock
            self._lock_fd = -1

    def _write_pidfile(self) -> None:
        path = self.config.effective_pidfile
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(f"{os.getpid()}\n")
        tmp.replace(path)

    # -- sockets ---------------------------------------------------------------------------------

    def _listen(self, path: Path) -> socket.socket:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_socket():
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(str(path))
            except OSError:
                path.unlink()  # left by a daemon that died: nobody answers on it
            else:
                raise DaemonError(f"{path}: another daemon is listening on this socket")
            finally:
                probe.close()
        elif path.exists():
            raise DaemonError(f"{path}: exists and is not a socket")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(str(path))
        except OSError as exc:
            sock.close()
            raise DaemonError(f"listen on {path}: {exc.strerror}") from None
        os.chmod(path, 0o660)
        try:
            os.chown(path, 0, grp.getgrnam(self.config.group).gr_gid)
        except KeyError:
            log.warning("group %s not found: the socket %s stays root's group", self.config.group, path)
        sock.listen(128)
        return sock

    def _listen_tcp(self, address: TcpAddress) -> socket.socket:
        try:
            infos = socket.getaddrinfo(address.host, address.port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise DaemonError(f"listen tcp {address}: {exc.strerror}") from None
        family, kind, proto, _, where = infos[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(where)
        except OSError as exc:
            sock.close()
            raise DaemonError(f"listen tcp {address}: {exc.strerror}") from None
        sock.listen(128)
        return sock

    def _tls_context(self) -> ssl.SSLContext | None:
        """The TCP listeners' TLS, as dockerd's: TLS 1.2 at least; with ``tlsverify``, clients must
        show a certificate signed by ``tlscacert`` (that CA only, not the system's)."""
        config = self.config
        if not config.uses_tls:
            return None
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        cert, key = config.tls_file("tlscert"), config.tls_file("tlskey")
        try:
            context.load_cert_chain(cert, key)
        except (OSError, ssl.SSLError) as exc:
            raise DaemonError(
                f"invalid TLS configuration: could not load X509 key pair (cert: {cert}, key: {key}): {exc}"
            ) from None
        if config.tlsverify:
            ca = config.tls_file("tlscacert")
            try:
                context.load_verify_locations(cafile=ca)
            except (OSError, ssl.SSLError) as exc:
                raise DaemonError(
                    f"invalid TLS configuration: could not read CA certificate {ca}: {exc}"
                ) from None
            context.verify_mode = ssl.CERT_REQUIRED
        return context

    # -- serving ---------------------------------------------------------------------------------

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        # Requests that block (a pull, a push, a load, a commit) each hold one of these threads
        # while they last: more than the default handful, so that a few do not stall the rest.
        self._loop.set_default_executor(
            ThreadPoolExecutor(max_workers=_EXECUTOR_THREADS, thread_name_prefix="pyengine")
        )
        self._stopping = asyncio.Event()
        config = self.config
        config.exec_root.mkdir(mode=0o700, parents=True, exist_ok=True)
        tls = self._tls_context()  # before anything starts: a bad certificate stops the daemon here
        store = pycontainerd.Client(
            root=config.data_root / "containerd", state=config.exec_root / "containerd", namespace=NAMESPACE
        )
        events = EventBus()
        images = Images(store, config.insecure_registries, events, config.registry_mirrors)
        volumes = Volumes(config.data_root / "volumes", events)
        networking = await blocking(self._networking, self._loop)
        containers = Containers(store, images, config.data_root / "containers", events, volumes, networking)
        for record in await blocking(containers.running_records):  # left running by a previous daemon
            await blocking(networking.restore, record, record.state.pid)
        images.users = lambda image_id: [
            ImageUser(r.id, r.state.status == "running")
            for r in containers.records(all=True)
            if r.image_id == image_id
        ]
        supervisor = Supervisor(containers)
        engine = Engine(
            config=config,
            id=_engine_id(config.data_root),
            store=store,
            images=images,
            supervisor=supervisor,
            events=events,
            networks=NetworkService(containers, networking, events),
        )
        supervisor.resume()
        # handler_cancellation: a client that goes away (docker run -d drops its wait) ends the
        # request waiting for it.
        runner = web.AppRunner(
            make_app(engine), access_log=None, handle_signals=False, handler_cancellation=True
        )
        await runner.setup()
        paths: list[Path] = []
        tls_servers: list[asyncio.Server] = []
        try:
            for path in config.socket_paths:
                sock = self._listen(path)
                paths.append(path)
                await web.SockSite(runner, sock).start()
                log.info("API listen on %s", path)
            for address in config.tcp_addresses:
                if not config.tlsverify:  # dockerd's words
                    log.warning(
                        "Binding to IP address without --tlsverify is insecure and gives root access on "
                        "this machine to everyone who has access to your network. host=tcp://%s",
                        address,
                    )
                sock = self._listen_tcp(address)
                if tls is None:
                    await web.SockSite(runner, sock).start()
                else:
                    assert runner.server is not None
                    tls_servers.append(await serve_tls(sock, tls, runner.server))
                log.info("API listen on %s", address)
            self._write_pidfile()
            log.info("daemon has completed initialization (data root %s)", config.data_root)
            self._ready.set()
            await self._stopping.wait()
            log.info("processing signal or stop request: shutting down")
        finally:
            # The watchers first: aiohttp's cleanup waits for what the handlers started.
            if not config.live_restore:
                await supervisor.stop_all()
            await supervisor.close()
            await blocking(self._close_networking, networking, containers)
            events.close()  # the event streams end, so that the cleanup need not wait for them
            for server in tls_servers:
                server.close()  # no new connections; those open close with the HTTP server's side
            await runner.cleanup()
            for path in paths:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            with contextlib.suppress(FileNotFoundError):
                config.effective_pidfile.unlink()
            store.close()
            log.info("daemon shut down cleanly")

    def _networking(self, loop: asyncio.AbstractEventLoop) -> Networking:
        """The networks made ready: the engine's nftables table, the bridges (blocking)."""
        config = self.config
        if ip_forward():
            log.info(
                "net.ipv4.ip_forward was off: turned on for containers on bridge networks (as dockerd does)"
            )
        netlink = Netlink()
        table = EngineTable(config.bridge)
        networks = Networks(
            config.data_root / "network",
            netlink,
            table,
            default_bridge=config.bridge,
            bip=config.bip,
            pools=config.default_address_pools,
        )
        networks.start()
        return Networking(networks, netlink, PortPublisher(table, loop), loop)

    @staticmethod
    def _close_networking(networking: Networking, containers: Containers) -> None:
        """At a clean shutdown: the networks' bridges and rules go, but those that containers left
        running use."""
        in_use = {
            settings.get("NetworkID", "")
            for record in containers.records()
            for settings in record.networks.values()
        }
        networking.close()
        networking.networks.stop(in_use)
        networking.netlink.close()

    def run(self) -> None:
        """Serve until :meth:`stop`, or SIGTERM or SIGINT when this is the main thread."""
        self._lock()
        try:
            asyncio.run(self._main())
        finally:
            self._unlock()

    async def _main(self) -> None:
        if threading.current_thread() is threading.main_thread():
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, self._request_stop)
        await self._serve()

    def _request_stop(self) -> None:
        if self._stopping is not None:
            self._stopping.set()

    def stop(self) -> None:
        """Ask the daemon to shut down (from any thread); :meth:`run` then returns."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._request_stop)

    # -- in a thread -----------------------------------------------------------------------------

    def _thread_main(self) -> None:
        try:
            self.run()
        except BaseException as exc:  # noqa: BLE001 -- handed to the thread that started us
            self._failure = exc
        finally:
            self._ready.set()

    def __enter__(self) -> Self:
        self._thread = threading.Thread(target=self._thread_main, name="pyengined", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._failure is not None:
            self._thread.join()
            raise self._failure
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
        if self._thread is not None:
            self._thread.join()
        if self._failure is not None and kind is None:
            raise self._failure
