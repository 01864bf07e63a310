"""The safe fetcher against a real local server: redirects, DNS answers,
limits, and what it never sends. Blocking is proved with the default policy
(nothing internal allowed); reaching the test server uses the allow-list or an
injected resolver, exactly as an admin or a test would."""

from __future__ import annotations

import asyncio
import gzip

import httpx2
import pytest
from webtools_helpers import LocalWeb, Page, article

from parley.net import AddressPolicy, FetchBlocked, FetchError, SafeFetcher

LOCAL = AddressPolicy.from_entries(["127.0.0.1"])


def redirect(to: str, status: int = 302) -> Page:
    return Page("", status, "text/plain", headers={"Location": to})


class Resolver:
    """DNS in a test: fixed answers per name, and a count of lookups."""

    def __init__(self, answers: dict[str, list[list[str]]]) -> None:
        self.answers = answers
        self.calls: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append(host)
        queue = self.answers[host]
        return queue.pop(0) if len(queue) > 1 else queue[0]


async def test_allowed_local_page_is_fetched(web: LocalWeb) -> None:
    web.route("/a", Page(article("Otters", "Otters are mustelids.")))
    fetcher = SafeFetcher(LOCAL)
    try:
        result = await fetcher.fetch(f"{web.base}/a")
    finally:
        await fetcher.aclose()
    assert result.status == 200 and result.content_type == "text/html"
    assert "Otters are mustelids." in result.text()
    assert result.url == f"{web.base}/a" and not result.truncated


async def test_loopback_is_blocked_without_the_allow_list(web: LocalWeb) -> None:
    web.route("/a", Page("secret"))
    fetcher = SafeFetcher()
    for url in (f"{web.base}/a", f"http://[::ffff:127.0.0.1]:{web.port}/a", "http://localhost/"):
        with pytest.raises(FetchBlocked):
            await fetcher.fetch(url)
    await fetcher.aclose()
    assert web.hits("/a") == []


@pytest.mark.parametrize(
    "target",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://127.0.0.1:1/admin",
        "http://[::1]/",
        "http://2130706433/",
        "http://0x7f.1/",
        "http://[::ffff:169.254.169.254]/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "file:///etc/passwd",
        "gopher://127.0.0.1:6379/_FLUSHALL",
        "http://user@example.com/",
    ],
)
async def test_every_redirect_hop_is_checked(web: LocalWeb, target: str) -> None:
    """A public site (the test server under an allowed *name*) redirecting inward is refused."""
    web.route("/start", redirect("/hop"))
    web.route("/hop", redirect(target, 307))
    resolver = Resolver({"public.test": [["127.0.0.1"]]})
    fetcher = SafeFetcher(AddressPolicy.from_entries(["public.test"]), resolver=resolver)
    try:
        with pytest.raises(FetchBlocked):
            await fetcher.fetch(f"http://public.test:{web.port}/start")
    finally:
        await fetcher.aclose()
    assert len(web.hits("/hop")) == 1  # the first hops were fetched, the inward one was not
    assert len(web.seen) == 2


async def test_redirect_to_loopback_from_a_public_name(web: LocalWeb) -> None:
    """DNS says public for the first host; the redirect's target is loopback: refused."""
    web.route("/go", redirect(f"http://127.0.0.1:{web.port}/secret"))
    web.route("/secret", Page("token=hunter2"))
    resolver = Resolver({"public.test": [["127.0.0.1"]]})
    # Allow only the *name* public.test (as if it were a public site), never 127.0.0.1 itself.
    fetcher = SafeFetcher(AddressPolicy.from_entries(["public.test"]), resolver=resolver)
    try:
        with pytest.raises(FetchBlocked) as caught:
            await fetcher.fetch(f"http://public.test:{web.port}/go")
    finally:
        await fetcher.aclose()
    assert "127.0.0.1" in caught.value.message
    assert len(web.hits("/go")) == 1 and web.hits("/secret") == []


@pytest.mark.parametrize(
    "answer",
    [["127.0.0.1"], ["10.0.0.5"], ["169.254.169.254"], ["::1"], ["93.184.215.14", "192.168.0.1"]],
)
async def test_names_resolving_to_internal_addresses_are_blocked(answer: list[str]) -> None:
    resolver = Resolver({"evil.test": [answer]})
    fetcher = SafeFetcher(resolver=resolver)
    try:
        with pytest.raises(FetchBlocked) as caught:
            await fetcher.fetch("http://evil.test/")
    finally:
        await fetcher.aclose()
    assert resolver.calls == ["evil.test"]
    assert "evil.test" in caught.value.message


async def test_connects_to_the_checked_address_without_resolving_again(web: LocalWeb) -> None:
    """DNS rebinding: a second lookup would answer 10.0.0.1; there is no second lookup."""
    web.route("/r", Page("rebind ok", content_type="text/plain"))
    resolver = Resolver({"rebind.test": [["127.0.0.1"], ["10.0.0.1"]]})
    fetcher = SafeFetcher(LOCAL, resolver=resolver)
    try:
        result = await fetcher.fetch(f"http://rebind.test:{web.port}/r")
    finally:
        await fetcher.aclose()
    assert result.text() == "rebind ok"
    assert resolver.calls == ["rebind.test"]
    assert web.hits("/r")[0].headers["host"] == f"rebind.test:{web.port}"  # Host is the name


async def test_guarded_transport_blocks_even_when_the_client_follows_redirects(
    web: LocalWeb,
) -> None:
    web.route("/x", redirect("http://169.254.169.254/latest"))
    fetcher = SafeFetcher(LOCAL)
    async with httpx2.AsyncClient(transport=fetcher.transport, follow_redirects=True) as client:
        with pytest.raises(FetchBlocked):
            await client.get(f"{web.base}/x")
    await fetcher.aclose()


async def test_no_cookies_or_credentials_are_forwarded(web: LocalWeb) -> None:
    web.route(
        "/login",
        Page("", 302, headers={"Set-Cookie": "session=abc; Path=/", "Location": "/home"}),
    )
    web.route("/home", Page("home"))
    fetcher = SafeFetcher(LOCAL)
    try:
        await fetcher.fetch(f"{web.base}/login")
        await fetcher.fetch(f"{web.base}/home")
    finally:
        await fetcher.aclose()
    for seen in web.seen:
        assert "cookie" not in seen.headers
        assert "authorization" not in seen.headers
    assert len(web.hits("/home")) == 2


async def test_redirect_limit(web: LocalWeb) -> None:
    for i in range(10):
        web.route(f"/loop{i}", redirect(f"/loop{i + 1}"))
    fetcher = SafeFetcher(LOCAL, max_redirects=3)
    try:
        with pytest.raises(FetchError) as caught:
            await fetcher.fetch(f"{web.base}/loop0")
    finally:
        await fetcher.aclose()
    assert "Too many redirects" in caught.value.message
    assert len(web.hits("/loop3")) == 1 and web.hits("/loop4") == []


async def test_size_limit_stops_reading(web: LocalWeb) -> None:
    web.route("/big", Page(b"x" * 200_000, content_type="text/plain", chunks=50))
    fetcher = SafeFetcher(LOCAL, max_bytes=10_000)
    try:
        result = await fetcher.fetch(f"{web.base}/big")
    finally:
        await fetcher.aclose()
    assert result.truncated and len(result.body) == 10_000


async def test_gzip_bomb_is_inflated_only_up_to_the_limit(web: LocalWeb) -> None:
    bomb = gzip.compress(b"\0" * 50_000_000)  # ~50 KB on the wire, 50 MB inflated
    web.route("/bomb", Page(bomb, content_type="text/plain", headers={"Content-Encoding": "gzip"}))
    web.route(
        "/gz",
        Page(gzip.compress(b"hello gzip"), content_type="text/plain",
             headers={"Content-Encoding": "gzip"}),
    )  # fmt: skip
    fetcher = SafeFetcher(LOCAL, max_bytes=100_000)
    try:
        result = await fetcher.fetch(f"{web.base}/bomb")
        plain = await fetcher.fetch(f"{web.base}/gz")
    finally:
        await fetcher.aclose()
    assert result.truncated and len(result.body) == 100_000
    assert plain.text() == "hello gzip"


async def test_time_limit(web: LocalWeb) -> None:
    web.route("/slow", Page(b"z" * 10, content_type="text/plain", delay_s=1.0, chunks=10))
    fetcher = SafeFetcher(LOCAL, timeout_s=0.5)
    try:
        with pytest.raises(FetchError) as caught:
            await fetcher.fetch(f"{web.base}/slow")
    finally:
        await fetcher.aclose()
    # The page takes 10 s to send; the fetch gave up at its own 0.5 s limit.
    assert "took longer than 0.5 s" in caught.value.message


async def test_http_errors_and_unreachable_hosts_are_clear(web: LocalWeb) -> None:
    fetcher = SafeFetcher(LOCAL, timeout_s=3)
    try:
        with pytest.raises(FetchError) as missing:
            await fetcher.fetch(f"{web.base}/nothing-here")
        with pytest.raises(FetchError) as refused:
            await fetcher.fetch("http://127.0.0.1:1/")
    finally:
        await fetcher.aclose()
    assert "HTTP 404" in missing.value.message
    assert not isinstance(refused.value, FetchBlocked)
    assert "Could not fetch" in refused.value.message


async def test_concurrent_fetches_share_the_pool(web: LocalWeb) -> None:
    web.route("/p", Page("ok", content_type="text/plain"))
    fetcher = SafeFetcher(LOCAL)
    try:
        results = await asyncio.gather(*(fetcher.fetch(f"{web.base}/p") for _ in range(20)))
    finally:
        await fetcher.aclose()
    assert {r.text() for r in results} == {"ok"}
