"""Page fetching overhead: ``fetch_page`` versus a plain httpx GET of the same page.

``.venv/bin/python -m bench.tools_fetch [--quick]`` prints one table.

A static web server runs in its own process (``python -m http.server`` over a
temp dir holding a realistic ~30 KB article page). Four ways to get that page
are timed sequentially in alternating order, in the same process and run:

- baseline: ``httpx2.AsyncClient.get`` (no checks, no extraction);
- guarded fetch: ``SafeFetcher.fetch`` (URL parsing, resolution, address
  checks, redirect handling, streamed byte limit);
- fetch + extract: the above plus trafilatura's main-text extraction;
- the ``fetch_page`` tool as the engine runs it (argument validation,
  extraction, output formatting and cap).

The SSRF guard itself should be noise next to the network; extraction is the
real cost and is reported on its own.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx2

from bench.common import PYTHON, Table, fmt, free_port, median, pct, spawn, wait_http
from parley.messages import ToolCall
from parley.net import AddressPolicy, SafeFetcher
from parley.tools import ToolContext, ToolRegistry
from parley.web_tools.page import extract_page, make_fetch_page


def article_html(paragraphs: int = 120) -> str:
    menu = "".join(f"<li><a href='/s{i}'>Section {i}</a></li>" for i in range(40))
    body = "".join(
        f"<p>Paragraph {i}: sea otters (Enhydra lutris) live along the coasts of the North "
        "Pacific; they rest in groups called rafts, use stones as tools to open shellfish "
        "and keep warm with the densest fur of any animal.</p>"
        for i in range(paragraphs)
    )
    return (
        "<!doctype html><html><head><title>Sea otters</title>"
        "<meta name='description' content='All about sea otters'></head><body>"
        f"<header><nav><ul>{menu}</ul></nav></header><main><article><h1>Sea otters</h1>{body}"
        "</article></main><aside>Related: rivers, kelp, urchins</aside>"
        "<footer>Footer links and copyright</footer></body></html>"
    )


Sampler = Callable[[], Awaitable[object]]


async def _measure(samplers: dict[str, Sampler], rounds: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in samplers}
    names = list(samplers)
    for name in names:  # warm-up: connections, imports, caches
        await samplers[name]()
    for i in range(rounds):
        order = names[i % len(names) :] + names[: i % len(names)]
        for name in order:
            start = time.perf_counter()
            await samplers[name]()
            times[name].append((time.perf_counter() - start) * 1000)
    return times


async def _bench(url: str, rounds: int) -> dict[str, list[float]]:
    fetcher = SafeFetcher(AddressPolicy.from_entries(["127.0.0.1"]))
    registry = ToolRegistry([make_fetch_page(fetcher)])
    call = ToolCall("b", "fetch_page", json.dumps({"url": url}))
    async with httpx2.AsyncClient() as plain:

        async def baseline() -> object:
            response = await plain.get(url)
            return response.content

        async def guarded() -> object:
            return await fetcher.fetch(url)

        async def extracted() -> object:
            return await extract_page(await fetcher.fetch(url))

        async def as_tool() -> object:
            outcome = await registry.run(call, context=ToolContext())
            assert not outcome.is_error, outcome.output
            return outcome

        try:
            return await _measure(
                {
                    "baseline": baseline,
                    "guarded": guarded,
                    "extracted": extracted,
                    "tool": as_tool,
                },
                rounds,
            )
        finally:
            await fetcher.aclose()


def run(quick: bool = False) -> Table:
    rounds = 40 if quick else 200
    table = Table("tools_fetch", "fetch_page: fetch + extract vs a plain GET", "httpx GET")
    with tempfile.TemporaryDirectory(prefix="parley-bench-fetch-") as tmp:
        workdir = Path(tmp)
        page = article_html()
        (workdir / "article.html").write_text(page)
        port = free_port()
        server = spawn(
            "static",
            [PYTHON, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
            {"PATH": "/usr/bin:/bin"},
            workdir,
        )
        try:
            url = f"http://127.0.0.1:{port}/article.html"
            wait_http(server, url)
            times = asyncio.run(_bench(url, rounds))
        finally:
            server.stop()
    base = times["baseline"]
    p50 = {name: median(values) for name, values in times.items()}
    p95 = {name: pct(values, 95) for name, values in times.items()}

    def row(label: str, name: str, target: str = "-", ok: bool | None = None) -> None:
        table.add(
            f"{label} p50 / p95",
            f"{fmt(p50[name], 'ms', 2)} / {fmt(p95[name], 'ms', 2)}",
            f"{fmt(p50['baseline'], 'ms', 2)} / {fmt(pct(base, 95), 'ms', 2)}",
            target,
            ok,
        )

    guard = p50["guarded"] - p50["baseline"]
    row("guarded fetch (SSRF checks, streamed limit)", "guarded")
    table.add("guard overhead over plain GET, p50", fmt(guard, "ms", 2), "0", "< 2 ms", guard < 2)
    row("fetch + extract (trafilatura)", "extracted")
    extract = p50["extracted"] - p50["guarded"]
    table.add("extraction alone, p50", fmt(extract, "ms", 2), "-", "< 50 ms", extract < 50)
    row("fetch_page tool (as the engine runs it)", "tool")
    total = p50["tool"] - p50["baseline"]
    table.add("fetch_page overhead over plain GET, p50", fmt(total, "ms", 2), "0", "< 60 ms",
              total < 60)  # fmt: skip
    table.notes.append(
        f"{rounds} sequential rounds, alternating order; page {len(page) / 1000:.0f} KB of HTML "
        "from python -m http.server (one connection per request, for both)"
    )
    table.raw = {"ms": times, "page_bytes": len(page)}
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tools_fetch", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    args = parser.parse_args(argv)
    table = run(args.quick)
    print(table.render())
    return 0 if all(r.ok is not False for r in table.rows) else 1


if __name__ == "__main__":
    sys.exit(main())
