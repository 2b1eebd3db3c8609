"""HTTP to registries: connection pooling, plain HTTP policy, redirects, retries and authentication.

Why urllib3 and not :mod:`http.client`: a pull opens many requests to one host (manifests, then
several blobs in parallel) and a push many more (HEAD, POST, PATCH..., PUT per blob). urllib3 gives
a thread-safe pool of keep-alive connections per host, streaming bodies both ways
(``preload_content=False`` for reads, file objects for uploads), separate connect and read timeouts,
and certificate verification against the system's CAs by default; with http.client we would write
and maintain that pool ourselves. It is small, has no dependencies, is typed, and is the most used
HTTP library in Python (requests is built on it). We turn its own retries and redirects off and do
both here: the distribution spec needs control over which requests may be replayed, over 429's
Retry-After, and over where credentials go when a blob redirects to another host (never).

Authentication follows the distribution spec's token flow, like containerd's ``docker/authorizer``:
a request goes out anonymously (or with what an earlier challenge from that host asked for); a 401
carries ``WWW-Authenticate``: ``Basic`` is answered with the caller's credentials, ``Bearer
realm=...,service=...,scope=...`` by fetching a token from the realm (with those credentials as basic
auth when there are any) and retrying once. Tokens are cached per host and scope set.
"""

from __future__ import annotations

import base64
import email.utils
import io
import json
import random
import re
import threading
import time
import urllib.parse
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, TypeAlias

import urllib3
from urllib3.response import BaseHTTPResponse

from pycontainerd._errors import AuthenticationError, RegistryError
from pycontainerd._record import Record
from pycontainerd._remotes.types import Credentials

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from typing import Final

__all__ = ["Body", "CredentialsFunc", "Transport", "is_loopback"]

#: What a request may send: bytes, or a stream of them.
Body: TypeAlias = bytes | IO[bytes] | io.RawIOBase | None
CredentialsFunc = Callable[[str], "Credentials | None"]


_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})
_TRANSIENT_STATUS = frozenset({429, 500, 502, 503, 504})
_REDIRECT_STATUS = frozenset({301, 302, 303, 307, 308})
_MAX_REDIRECTS = 5
_USER_AGENT = "pycontainerd/0.1"
_CHALLENGE_PARAM = re.compile(r'([a-zA-Z0-9_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


def is_loopback(host: str) -> bool:
    """True for ``localhost``, ``127.0.0.1``, ``::1`` (with or without a port, IPv6 in brackets)."""
    name = urllib.parse.urlsplit(f"//{host}").hostname or ""
    return name in _LOOPBACK


class _Challenge(Record):
    __slots__ = ("scheme", "params")

    def __init__(self, scheme: str, params: Mapping[str, str]) -> None:
        self.scheme: Final = scheme  # "basic" or "bearer", lower case
        self.params: Final = params


def parse_challenge(header: str) -> _Challenge | None:
    """The first Basic or Bearer challenge of a ``WWW-Authenticate`` header, or None."""
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() not in ("basic", "bearer"):
        return None
    params = {m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3) for m in
              _CHALLENGE_PARAM.finditer(rest)}  # fmt: skip
    return _Challenge(scheme.lower(), {k: v.replace('\\"', '"') for k, v in params.items()})


class _Authorizer:
    """What to send in ``Authorization`` to each registry host, learnt from its challenges."""

    def __init__(self, transport: Transport, credentials: CredentialsFunc | None) -> None:
        self._transport = transport
        self._credentials = credentials
        self._lock = threading.Lock()
        self._challenges: dict[str, _Challenge] = {}
        self._tokens: dict[tuple[str, tuple[str, ...]], str] = {}

    def _creds(self, host: str) -> Credentials | None:
        return self._credentials(host) if self._credentials is not None else None

    def header(self, host: str, scopes: tuple[str, ...]) -> str | None:
        with self._lock:
            challenge = self._challenges.get(host)
            token = self._tokens.get((host, scopes))
        if challenge is None:
            return None
        if challenge.scheme == "basic":
            creds = self._creds(host)
            return _basic(creds) if creds is not None else None
        if token is None:
            token = self._fetch_token(host, challenge, scopes)
            with self._lock:
                self._tokens[(host, scopes)] = token
        return f"Bearer {token}"

    def challenged(self, host: str, header: str | None, scopes: tuple[str, ...], url: str) -> None:
        """Learn from a 401; raise AuthenticationError if no retry can help."""
        challenge = parse_challenge(header or "")
        if challenge is None:
            raise AuthenticationError(f"{url}: 401 without a Basic or Bearer challenge ({header!r})", 401)
        if challenge.scheme == "basic" and self._creds(host) is None:
            raise AuthenticationError(f"{url}: the registry {host} requires credentials, none given", 401)
        with self._lock:
            self._challenges[host] = challenge
            self._tokens.pop((host, scopes), None)  # expired, or issued for fewer actions

    def _fetch_token(self, host: str, challenge: _Challenge, scopes: tuple[str, ...]) -> str:
        realm = challenge.params.get("realm")
        if not realm:
            raise AuthenticationError(f"{host}: Bearer challenge without a realm", 401)
        wanted = list(scopes)
        for scope in challenge.params.get("scope", "").split():
            if scope not in wanted:
                wanted.append(scope)
        query: list[tuple[str, str]] = []
        if "service" in challenge.params:
            query.append(("service", challenge.params["service"]))
        query += [("scope", scope) for scope in wanted]
        url = realm + ("&" if "?" in realm else "?") + urllib.parse.urlencode(query)
        headers = {}
        creds = self._creds(host)
        if creds is not None:
            headers["Authorization"] = _basic(creds)
        response = self._transport.send("GET", url, headers=headers, realm=True)
        try:
            body = response.read()
        finally:
            response.release_conn()
        if response.status in (401, 403):
            raise AuthenticationError(
                f"token server {realm} refused the credentials ({response.status})", 401
            )
        if response.status != 200:
            raise AuthenticationError(f"token server {realm} answered {response.status}", response.status)
        try:
            document = json.loads(body)
            token = document.get("token") or document.get("access_token")
        except (ValueError, AttributeError, RecursionError) as exc:  # a server's bytes: anything
            raise AuthenticationError(f"token server {realm} sent no JSON: {exc}", 401) from exc
        if not isinstance(token, str) or not token:
            raise AuthenticationError(f"token server {realm} sent neither token nor access_token", 401)
        return token


def _basic(creds: Credentials) -> str:
    return "Basic " + base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    if value.strip().isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - time.time())


class Transport:
    """A pool of HTTP connections to registries, with the retry, redirect and auth rules of the spec.

    ``insecure_hosts`` (``host[:port]``) may be spoken to over plain HTTP, as loopback always is;
    every other host gets HTTPS with certificates verified. ``retries`` bounds how often a
    replayable request is sent again after a connection error, a 5xx or a 429, waiting
    ``backoff * 2**attempt`` seconds (with jitter; a 429's Retry-After when it says more, up to
    ``max_backoff``).
    """

    def __init__(
        self,
        *,
        credentials: CredentialsFunc | None = None,
        insecure_hosts: Iterable[str] = (),
        timeout: float = 30.0,
        connect_timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 10.0,
        pool_size: int = 8,
    ) -> None:
        self._pool = urllib3.PoolManager(
            num_pools=16,
            maxsize=pool_size,
            retries=False,
            timeout=urllib3.Timeout(connect=connect_timeout, read=timeout),
            cert_reqs="CERT_REQUIRED",
        )
        self._insecure = frozenset(insecure_hosts)
        self.retries = retries
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._auth = _Authorizer(self, credentials)

    def close(self) -> None:
        self._pool.clear()

    def base_url(self, host: str) -> str:
        """``http://host`` for loopback and insecure hosts, ``https://host`` otherwise."""
        plain = is_loopback(host) or host in self._insecure
        return f"{'http' if plain else 'https'}://{host}"

    def _check_scheme(self, url: str) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme == "https":
            return
        if parts.scheme == "http" and (is_loopback(parts.netloc) or parts.netloc in self._insecure):
            return
        raise RegistryError(f"{url}: refusing plain HTTP to a host not marked insecure")

    def _sleep(self, attempt: int, at_least: float | None = None) -> None:
        delay = self._backoff * (2**attempt) * (0.5 + random.random() / 2)  # jitter: no crypto use
        if at_least is not None:
            delay = max(delay, at_least)
        time.sleep(min(delay, self._max_backoff))

    def send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: Body = None,
        realm: bool = False,
    ) -> BaseHTTPResponse:
        """One request, no auth, no redirects, no retries; the response body is not read yet."""
        self._check_scheme(url)
        all_headers = {"User-Agent": _USER_AGENT, **(headers or {})}
        try:
            return self._pool.request(
                method,
                url,
                headers=all_headers,
                body=body,
                preload_content=False,
                redirect=False,
                retries=False,
            )
        except urllib3.exceptions.HTTPError as exc:
            what = "token server" if realm else "registry"
            raise RegistryError(f"{method} {url}: {what} unreachable: {exc}") from exc

    def request(
        self,
        method: str,
        host: str,
        path: str,
        *,
        scopes: tuple[str, ...],
        headers: Mapping[str, str] | None = None,
        body: Body = None,
        ok: Iterable[int] = (200,),
    ) -> BaseHTTPResponse:
        """``method`` on ``path`` (or an absolute URL a registry gave, e.g. an upload Location) of ``host``.

        Answers 401 with the auth flow, follows redirects (credentials stay with ``host``), retries
        transient failures when ``body`` can be sent again (None or bytes), and raises
        :class:`RegistryError` for any status not in ``ok``. The caller reads and releases the
        response.
        """
        url = path if "://" in path else self.base_url(host) + path
        replayable = body is None or isinstance(body, bytes)
        accepted = frozenset(ok)
        attempt = redirects = 0
        authenticated = False
        while True:
            on_host = urllib.parse.urlsplit(url).netloc == host
            all_headers = dict(headers or {})
            if on_host and (authorization := self._auth.header(host, scopes)) is not None:
                all_headers["Authorization"] = authorization
            try:
                response = self.send(method, url, headers=all_headers, body=body)
            except RegistryError:
                if replayable and attempt < self.retries:
                    self._sleep(attempt)
                    attempt += 1
                    continue
                raise
            status = response.status
            if status in _REDIRECT_STATUS and (location := response.headers.get("Location")):
                _discard(response)
                redirects += 1
                if redirects > _MAX_REDIRECTS:
                    raise RegistryError(f"{method} {url}: more than {_MAX_REDIRECTS} redirects", status)
                url = urllib.parse.urljoin(url, location)
                if status == 303:
                    method, body = "GET", None
                continue
            if status == 401 and on_host and not authenticated:
                challenge = response.headers.get("WWW-Authenticate")
                _discard(response)
                self._auth.challenged(host, challenge, scopes, url)
                authenticated = True
                continue
            if status in _TRANSIENT_STATUS and replayable and attempt < self.retries:
                wait = _retry_after(response.headers.get("Retry-After"))
                _discard(response)
                self._sleep(attempt, wait)
                attempt += 1
                continue
            if status in accepted:
                return response
            raise _error(method, url, response)


def _discard(response: BaseHTTPResponse) -> None:
    try:
        response.drain_conn()
    finally:
        response.release_conn()


def _error(method: str, url: str, response: BaseHTTPResponse) -> RegistryError:
    """The registry's error body (``{"errors": [{"code", "message"}]}``) as an exception."""
    try:
        raw = response.read(64 * 1024) if method != "HEAD" else b""
    except urllib3.exceptions.HTTPError:
        raw = b""
    finally:
        response.release_conn()
    detail = ""
    try:
        errors = json.loads(raw).get("errors") or []
        detail = "; ".join(f"{e.get('code', '?')}: {e.get('message', '')}".strip() for e in errors)
    except (ValueError, AttributeError, TypeError, RecursionError):  # a registry's bytes: anything
        detail = raw[:200].decode(errors="replace").strip()
    text = f"{method} {url}: {response.status} {response.reason or ''}".rstrip()
    if detail:
        text += f" ({detail})"
    cls = AuthenticationError if response.status in (401, 403) else RegistryError
    return cls(text, response.status)
