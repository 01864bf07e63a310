"""Fetching URLs chosen by users or models without reaching internal services.

Every server-side fetch of an untrusted URL (the ``fetch_page`` tool, web
search back ends, MCP over HTTP, and later RAG URL loaders and ``image_url``)
goes through here. The rules, and where each is enforced:

- ``parse_url`` (``parley.net.urls``) accepts only unambiguous http(s) URLs
  and canonicalises numeric hosts; the HTTP client must read the canonical
  URL back with the same host and port, or the fetch is refused.
- ``GuardedBackend`` is the httpcore network backend: it resolves the name
  once (through an injectable resolver), checks *every* resolved address
  against the ``AddressPolicy`` and opens the TCP connection to exactly that
  checked address. TLS still verifies (and SNI names) the original host, and
  the Host header is the original host. There is no second resolution for
  DNS rebinding to exploit, and no proxy from the environment.
- ``SafeFetcher.fetch`` follows redirects itself, re-validating each hop
  (so a public page that redirects to 127.0.0.1 or 169.254.169.254 is caught
  by the same code), with a hop limit, a total time limit and a byte limit
  enforced while streaming (compressed bodies are inflated under the same
  limit). No cookies, credentials or caller headers are ever sent.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
import ssl
import time
import zlib
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import httpcore2
import httpx2

from parley import __version__
from parley.net.urls import AddressPolicy, FetchBlocked, FetchError, IPAddress, parse_url

__all__ = [
    "FetchResult",
    "GuardedBackend",
    "GuardedTransport",
    "Resolver",
    "SafeFetcher",
    "read_limited",
    "system_resolver",
]

Resolver = Callable[[str, int], Awaitable[list[str]]]

USER_AGENT = f"Parley/{__version__} (+https://github.com/parley; page reader)"
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


async def system_resolver(host: str, port: int) -> list[str]:
    """Addresses for ``host`` from the operating system's resolver."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class GuardedBackend(httpcore2.AsyncNetworkBackend):
    """Resolve once, check every address, connect to the checked address only."""

    def __init__(self, policy: AddressPolicy, resolver: Resolver | None = None) -> None:
        self.policy = policy
        self.resolver = resolver or system_resolver
        self._inner = httpcore2.AnyIOBackend()

    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        """The addresses ``host`` may be contacted at; ``FetchBlocked`` if any is internal.

        One blocked address refuses the whole name: a record set that mixes a
        public and a private address is an attack, not a configuration.
        """
        host = host.strip("[]")
        try:
            literal: IPAddress | None = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None:
            self.policy.check_address(host, literal)
            return [literal]
        self.policy.check_name(host)
        try:
            found = await self.resolver(host, port)
        except OSError as exc:
            raise FetchError(f"Cannot resolve '{host}': {exc}.") from exc
        if not found:
            raise FetchError(f"'{host}' has no address.")
        addresses: list[IPAddress] = []
        for text in found:
            ip = ipaddress.ip_address(text.split("%", 1)[0])
            self.policy.check_address(host, ip)
            addresses.append(ip)
        return addresses

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        addresses = await self.resolve(host, port)
        last: Exception | None = None
        for ip in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(ip), port, timeout=timeout, local_address=local_address,
                    socket_options=socket_options,
                )  # fmt: skip
            except (httpcore2.ConnectError, httpcore2.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        raise FetchBlocked("Unix sockets are not fetched.")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One certificate-verifying context for every guarded transport: loading the
    system's CA store costs tens of milliseconds, once is enough."""
    return httpx2.create_ssl_context(trust_env=False)


class GuardedTransport(httpx2.AsyncHTTPTransport):
    """An httpx2 transport whose every connection goes through ``GuardedBackend``.

    For libraries that take an ``httpx2.AsyncClient`` (the MCP client): give
    them ``httpx2.AsyncClient(transport=GuardedTransport(policy))``. Proxies
    from the environment are ignored on purpose (they would connect for us).
    """

    def __init__(
        self,
        policy: AddressPolicy,
        resolver: Resolver | None = None,
        *,
        max_connections: int = 20,
    ) -> None:
        tls = _tls_context()
        super().__init__(verify=tls, trust_env=False)
        self.backend = GuardedBackend(policy, resolver)
        # The pool is the only thing AsyncHTTPTransport reads; swap in one with our backend.
        self._pool = httpcore2.AsyncConnectionPool(
            ssl_context=tls,
            max_connections=max_connections,
            max_keepalive_connections=max_connections // 2,
            keepalive_expiry=5.0,
            network_backend=self.backend,
        )


@dataclass(slots=True)
class FetchResult:
    """A fetched body (possibly cut at the byte limit) and where it came from."""

    url: str  # the final URL, after redirects
    status: int
    content_type: str
    charset: str | None
    body: bytes
    truncated: bool
    redirects: list[str]
    elapsed_ms: float

    def text(self) -> str:
        return self.body.decode(self.charset or "utf-8", errors="replace")


def _content_type(value: str) -> tuple[str, str | None]:
    kind, *params = (p.strip() for p in value.split(";"))
    charset = None
    for param in params:
        key, _, val = param.partition("=")
        if key.strip().lower() == "charset" and val.strip():
            charset = val.strip().strip('"').lower()
            try:
                "".encode(charset)
            except LookupError:
                charset = None
    return kind.lower(), charset


class _Inflater:
    """gzip/deflate bodies inflated under the byte limit (no decompression bombs)."""

    def __init__(self, encoding: str) -> None:
        if encoding not in ("", "identity", "gzip", "x-gzip", "deflate"):
            raise FetchError(f"The server sent an unsupported encoding '{encoding}'.")
        self.inflate = encoding not in ("", "identity")
        wbits = 31 if "gzip" in encoding else 15
        self._zlib = zlib.decompressobj(wbits) if self.inflate else None
        self._raw_deflate = encoding == "deflate"

    def feed(self, chunk: bytes, room: int) -> bytes:
        if self._zlib is None:
            return chunk[:room]
        try:
            return self._zlib.decompress(chunk, room)
        except zlib.error:
            if self._raw_deflate:  # some servers send raw deflate without the zlib header
                self._zlib, self._raw_deflate = zlib.decompressobj(-15), False
                return self.feed(chunk, room)
            raise FetchError("The server sent a corrupt compressed body.") from None


class SafeFetcher:
    """GET untrusted URLs safely (see the module docstring for every rule).

    ``policy`` and ``resolver`` are injectable so tests can map names to local
    servers; production uses the OS resolver and the admin allow-list.
    """

    def __init__(
        self,
        policy: AddressPolicy | None = None,
        *,
        resolver: Resolver | None = None,
        max_bytes: int = 5_000_000,
        timeout_s: float = 15.0,
        max_redirects: int = 5,
        user_agent: str = USER_AGENT,
    ) -> None:
        self.policy = policy or AddressPolicy()
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s
        self.max_redirects = max_redirects
        self.user_agent = user_agent
        self.transport = GuardedTransport(self.policy, resolver)

    async def aclose(self) -> None:
        await self.transport.aclose()

    def client(self, **kwargs: Any) -> httpx2.AsyncClient:
        """An ``httpx2.AsyncClient`` over the guarded transport that never follows
        redirects by itself (for API clients that build their own requests)."""
        kwargs.setdefault("timeout", self.timeout_s)
        return httpx2.AsyncClient(
            transport=self.transport, follow_redirects=False, trust_env=False, **kwargs
        )

    async def fetch(
        self,
        url: str,
        *,
        accept: str = "text/html,application/xhtml+xml,text/plain;q=0.9,*/*;q=0.5",
        max_bytes: int | None = None,
    ) -> FetchResult:
        """GET ``url`` following at most ``max_redirects`` re-checked redirects.

        Raises ``FetchBlocked`` for refused URLs or addresses and ``FetchError``
        for everything else (time limit, network, HTTP error status).
        """
        limit = self.max_bytes if max_bytes is None else max_bytes
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout_s):
                return await self._follow(url, accept, limit, started)
        except TimeoutError:
            raise FetchError(f"Fetching {url} took longer than {self.timeout_s:g} s.") from None

    async def _follow(self, url: str, accept: str, limit: int, started: float) -> FetchResult:
        redirects: list[str] = []
        current = parse_url(url)
        while True:
            request = self._request(current.url, accept)
            try:
                response = await self.transport.handle_async_request(request)
            except httpx2.TransportError as exc:  # FetchBlocked from the backend passes as is
                reason = str(exc) or type(exc).__name__
                raise FetchError(f"Could not fetch {current.url}: {reason}.") from exc
            try:
                if response.status_code in _REDIRECTS:
                    location = response.headers.get("location", "")
                    if not location:
                        raise FetchError(f"{current.url} redirected without a Location header.")
                    if len(redirects) >= self.max_redirects:
                        raise FetchError(
                            f"Too many redirects (more than {self.max_redirects}) from {url}."
                        )
                    nxt = parse_url(str(httpx2.URL(current.url).join(location)))
                    redirects.append(nxt.url)
                    current = nxt
                    continue
                if response.status_code >= 400:
                    raise FetchError(f"{current.url} answered HTTP {response.status_code}.")
                body, truncated = await self._read(response, limit)
                kind, charset = _content_type(response.headers.get("content-type", ""))
                return FetchResult(
                    url=current.url,
                    status=response.status_code,
                    content_type=kind,
                    charset=charset,
                    body=body,
                    truncated=truncated,
                    redirects=redirects,
                    elapsed_ms=(time.perf_counter() - started) * 1000,
                )
            finally:
                await response.aclose()

    def _request(self, url: str, accept: str) -> httpx2.Request:
        request = httpx2.Request(
            "GET",
            url,
            headers={
                "User-Agent": self.user_agent,
                "Accept": accept,
                "Accept-Encoding": "gzip, deflate",
            },
        )
        # Parser agreement: the client must see the host and port we checked.
        parsed = parse_url(url)
        seen = request.url.raw_host.decode("ascii").strip("[]")
        if (seen, request.url.port or parsed.port) != (parsed.host, parsed.port):
            raise FetchBlocked(f"The URL {url} is ambiguous (parsers disagree on its host).")
        timeout = max(self.timeout_s, 0.1)
        request.extensions["timeout"] = {
            "connect": timeout,
            "read": timeout,
            "write": timeout,
            "pool": timeout,
        }
        return request

    @staticmethod
    async def _read(response: httpx2.Response, limit: int) -> tuple[bytes, bool]:
        return await read_limited(response, limit)


async def read_limited(response: httpx2.Response, limit: int) -> tuple[bytes, bool]:
    """A streamed response's body, inflated and cut at ``limit`` bytes; whether it was cut.

    Reads raw bytes and inflates gzip/deflate itself under the limit, so neither a
    long body nor a decompression bomb is ever held in memory whole. Send
    ``Accept-Encoding: gzip, deflate`` (other encodings are refused).
    """
    inflater = _Inflater(response.headers.get("content-encoding", "").strip().lower())
    parts: list[bytes] = []
    size = 0
    async for chunk in response.aiter_raw():
        piece = inflater.feed(chunk, limit - size + 1)
        parts.append(piece)
        size += len(piece)
        if size > limit:
            return b"".join(parts)[:limit], True
    return b"".join(parts), False
