"""More of the SSRF corpus: allow-listed names that (re)bind to the metadata
service, redirect hops to names that resolve inward, and search back ends that
answer too much (a long body or a compression bomb)."""

from __future__ import annotations

import gzip
import ipaddress
import json
import tracemalloc
from pathlib import Path

import pytest
from webtools_helpers import LocalWeb, Page

from parley.config import load_settings
from parley.net import AddressPolicy, FetchBlocked, FetchError, SafeFetcher
from parley.web_tools.search import BraveSearch, SearxngSearch, make_search_provider

LOCAL = AddressPolicy.from_entries(["127.0.0.1"])


class Resolver:
    """Fixed DNS answers per name; records every lookup."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.calls: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append(host)
        return self.answers[host]


@pytest.mark.parametrize(
    "address", ["169.254.169.254", "169.254.170.2", "fd00:ec2::254", "::ffff:169.254.169.254"]
)
def test_an_allowed_name_never_opens_a_metadata_address(address: str) -> None:
    ip = ipaddress.ip_address(address)
    by_name = AddressPolicy.from_entries(["wiki.corp"])
    with pytest.raises(FetchBlocked) as caught:
        by_name.check_address("wiki.corp", ip)
    assert "metadata" in caught.value.message
    by_name.check_address("wiki.corp", ipaddress.ip_address("10.1.2.3"))  # internal: allowed
    # Listing the address itself (an explicit admin decision) does open it.
    AddressPolicy.from_entries([address]).check_address("x", ip)


async def test_allowed_name_rebinding_to_metadata_is_refused_at_connect(web: LocalWeb) -> None:
    """The admin allowed ``wiki.corp``; its DNS now says 169.254.169.254."""
    resolver = Resolver({"wiki.corp": ["169.254.169.254"]})
    fetcher = SafeFetcher(AddressPolicy.from_entries(["wiki.corp"]), resolver=resolver)
    try:
        with pytest.raises(FetchBlocked) as caught:
            await fetcher.fetch("http://wiki.corp/latest/meta-data/")
    finally:
        await fetcher.aclose()
    assert resolver.calls == ["wiki.corp"]
    assert "cloud metadata address" in caught.value.message


async def test_searxng_host_resolving_to_metadata_is_refused(tmp_path: Path) -> None:
    """The admin's SearxNG host is trusted as internal, never as the metadata service."""
    resolver = Resolver({"searx.corp": ["169.254.169.254"]})
    settings = load_settings(data_dir=tmp_path, searxng_url="http://searx.corp:8888")
    base = SafeFetcher(resolver=resolver)
    provider = make_search_provider(settings, base)
    assert isinstance(provider, SearxngSearch)
    try:
        with pytest.raises(FetchBlocked):
            await provider.search("q", 3)
    finally:
        await provider.aclose()
        await base.aclose()
    assert resolver.calls == ["searx.corp"]


@pytest.mark.parametrize(
    ("name", "answer"),
    [
        ("inner.test", ["10.0.0.5"]),
        ("inner.test", ["::ffff:127.0.0.1"]),
        ("inner.test", ["64:ff9b::a9fe:a9fe"]),  # NAT64 form of 169.254.169.254
        ("inner.test", ["100.64.0.1"]),
    ],
)
async def test_redirect_hop_to_a_name_resolving_inward(
    web: LocalWeb, name: str, answer: list[str]
) -> None:
    web.route("/start", Page("", 302, "text/plain", headers={"Location": f"http://{name}/x"}))
    resolver = Resolver({"public.test": ["127.0.0.1"], name: answer})
    fetcher = SafeFetcher(AddressPolicy.from_entries(["public.test"]), resolver=resolver)
    try:
        with pytest.raises(FetchBlocked):
            await fetcher.fetch(f"http://public.test:{web.port}/start")
    finally:
        await fetcher.aclose()
    assert resolver.calls == ["public.test", name]  # resolved, checked, never connected
    assert [s.path for s in web.seen] == ["/start"]


async def test_search_answers_are_read_under_the_byte_limit(web: LocalWeb) -> None:
    results = {"results": [{"url": "https://a.example/", "title": "A", "content": "x" * 100}]}
    small = json.dumps(results).encode()
    huge = json.dumps({"results": [], "pad": "y" * 300_000}).encode()
    web.route("/ok/search", Page(gzip.compress(small), content_type="application/json",
                                 headers={"Content-Encoding": "gzip"}))  # fmt: skip
    web.route("/big/search", Page(huge, content_type="application/json", chunks=30))
    bomb = gzip.compress(b"[" + b" " * 40_000_000 + b"]")
    web.route("/bomb/search", Page(bomb, content_type="application/json",
                                   headers={"Content-Encoding": "gzip"}))  # fmt: skip
    web.route("/denied", Page(b"z" * 300_000, 401, "application/json"))
    fetcher = SafeFetcher(LOCAL, max_bytes=50_000)
    try:
        found = await SearxngSearch(fetcher, f"{web.base}/ok").search("q", 3)
        assert [r.url for r in found] == ["https://a.example/"]
        for prefix in ("big", "bomb"):
            tracemalloc.start()
            try:
                with pytest.raises(FetchError) as caught:
                    await SearxngSearch(fetcher, f"{web.base}/{prefix}").search("q", 3)
                peak = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
            assert "too large" in caught.value.message
            assert peak < 8_000_000, f"{prefix}: {peak:,} bytes held (the bomb inflates to 40 MB)"
        with pytest.raises(FetchError) as denied:
            await BraveSearch(fetcher, "k", f"{web.base}/denied").search("q", 3)
        assert "refused the API key" in denied.value.message
    finally:
        await fetcher.aclose()
    assert web.hits("/ok/search")[0].headers["accept-encoding"] == "gzip, deflate"
