"""The network clients of bench_pyengine.py: the same for both engines, in the bench process.

- HTTP through a published port on 127.0.0.1: a ``GET`` per connection (busybox ``httpd`` closes it
  after each answer, and forks per request), over a raw socket so that the client's own cost stays
  small and the same for both sides; every answer checked (status 200, the body expected).
  ``http_latencies``: sequential requests, the time of each from ``connect`` to the answer's end;
  ``http_throughput``: requests per second of ``clients`` threads for a given time.
- DNS from inside a container: ``udp_socket_in`` makes a UDP socket in the network namespace of a
  process (a thread enters it: a namespace is per thread, and a socket keeps the namespace it was made
  in); ``dns_latencies`` times queries sent on it to the embedded DNS server at 127.0.0.11:53, and
  checks every answer (untimed) for the address expected.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import threading
import time
from typing import TYPE_CHECKING

import dns.message
import dns.rcode
import dns.rdatatype
from pyroute2 import netns

if TYPE_CHECKING:
    from collections.abc import Iterator

LOOPBACK = "127.0.0.1"
EMBEDDED_DNS = ("127.0.0.11", 53)
TIMEOUT = 5.0  # seconds for one request or query: a loaded machine answers in milliseconds


class BadAnswer(Exception):
    """A request or query got an answer other than the one expected; the message says what."""


def _get(port: int, request: bytes, body: bytes) -> None:
    """One ``GET`` on a new connection, read to its end; BadAnswer unless it is a 200 with ``body``."""
    with socket.create_connection((LOOPBACK, port), timeout=TIMEOUT) as conn:
        conn.sendall(request)
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    answer = b"".join(chunks)
    status = answer.split(b"\r\n", 1)[0]
    if not status.endswith(b" 200 OK") or not answer.endswith(b"\r\n\r\n" + body):
        raise BadAnswer(f"GET on port {port}: {status.decode(errors='replace') or 'no answer'}")


def _request(path: str) -> bytes:
    return f"GET {path} HTTP/1.0\r\nHost: {LOOPBACK}\r\n\r\n".encode()


def wait_for_http(port: int, path: str, body: bytes, timeout: float) -> None:
    """Until a ``GET`` is answered as expected (a proxy accepts before its server listens); the last
    error after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            _get(port, _request(path), body)
            return
        except (OSError, BadAnswer):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def http_latencies(port: int, path: str, body: bytes, count: int) -> list[float]:
    """``count`` sequential ``GET``s: each one's time in ms, connection included."""
    request = _request(path)
    times = []
    for _ in range(count):
        start = time.perf_counter_ns()
        _get(port, request, body)
        times.append((time.perf_counter_ns() - start) / 1e6)
    return times


def http_throughput(port: int, path: str, body: bytes, clients: int, seconds: float) -> float:
    """Requests per second answered to ``clients`` threads each sending ``GET``s one after the other
    for ``seconds``; the first failure is raised once all threads stopped."""
    request = _request(path)
    done = [0] * clients
    errors: list[Exception] = []
    start = time.perf_counter()
    deadline = start + seconds

    def client(index: int) -> None:
        try:
            while time.perf_counter() < deadline and not errors:
                _get(port, request, body)
                done[index] += 1
        except (OSError, BadAnswer) as exc:
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start  # past the deadline by the last requests under way
    if errors:
        raise errors[0]
    return sum(done) / elapsed


@contextlib.contextmanager
def udp_socket_in(pid: int) -> Iterator[socket.socket]:
    """A UDP socket in the network namespace of process ``pid``, connected to 127.0.0.11:53 there."""
    made: list[socket.socket] = []
    failed: list[OSError] = []

    def make() -> None:
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        try:
            target = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
            try:
                netns.setns(target, fork=False)
                try:
                    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                    made.append(sock)
                    sock.settimeout(TIMEOUT)
                    sock.connect(EMBEDDED_DNS)
                finally:
                    netns.setns(own, fork=False)
            finally:
                os.close(target)
        except OSError as exc:
            failed.append(exc)
        finally:
            os.close(own)

    thread = threading.Thread(target=make)
    thread.start()
    thread.join()
    if failed:
        for sock in made:
            sock.close()
        raise failed[0]
    with made[0] as sock:
        yield sock


def dns_latencies(sock: socket.socket, name: str, address: str, count: int) -> list[float]:
    """``count`` queries for ``name`` A on ``sock``, one after the other: each one's time in ms from
    sending to the answer; BadAnswer unless every answer holds ``address``."""
    query = dns.message.make_query(name, dns.rdatatype.A)
    wire = query.to_wire()
    times, answers = [], []
    for _ in range(count):
        start = time.perf_counter_ns()
        sock.send(wire)
        answers.append(sock.recv(65535))
        times.append((time.perf_counter_ns() - start) / 1e6)
    expected = ipaddress.IPv4Address(address)
    for data in answers:
        reply = dns.message.from_wire(data)
        found = [
            ipaddress.IPv4Address(item.address)
            for rrset in reply.answer
            if rrset.rdtype == dns.rdatatype.A
            for item in rrset
        ]
        if reply.id != query.id or reply.rcode() != dns.rcode.NOERROR or expected not in found:
            raise BadAnswer(
                f"{name} A: {dns.rcode.to_text(reply.rcode())} {', '.join(map(str, found)) or 'no address'}"
                f" (expected {address})"
            )
    return times
