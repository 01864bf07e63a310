"""web_perf: the web app in headless Chromium against a real ``parley serve``.

    .venv/bin/python -m bench.web_perf [--quick]      (or: python -m bench web)

1. Streaming a 20,000-token markdown answer (paced by the scripted upstream):
   main-thread CPU time per 1,000 tokens (``ThreadTime`` over CDP)
   while the first and the last 10% of the answer render; their ratio shows
   whether per-token work grows with the answer. Frames dropped = rAF gaps
   over 50 ms; long tasks from ``PerformanceObserver``.
2. A 1,000-message conversation (bulk-inserted into the server's SQLite):
   time until its latest message is on screen, opened from the sidebar and
   by reloading its URL (medians).
3. JavaScript the chat route loads (every script response, the lazy KaTeX
   chunk included since the last answer has math), gzipped.

Needs the built web app (``make web``) and Chromium at /usr/bin/chromium.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench import _web_content as content
from bench.common import (
    PYTHON,
    ROOT,
    Proc,
    Table,
    base_env,
    fmt,
    free_port,
    median,
    save,
    spawn,
    start_upstream,
    temp_dir,
    wait_http,
)

CHROMIUM = os.environ.get("PARLEY_E2E_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"]
PASSWORD = "bench-password-123"
TOKENS = 20_000
RATE = 1000  # tokens/s: 10x a fast model, so rendering cost is not hidden by idle time
MESSAGES = 1000
OPEN_TARGET_MS = 1000.0
JS_TARGET_KB = 300.0
GROWTH_TARGET = 2.0


@dataclass
class Stack:
    upstream: Proc
    parley: Proc
    data: Path
    cookies: list[dict[str, Any]]
    user_id: str
    csrf: str


def start(work: Path) -> Stack:
    upstream = start_upstream(work, tokens=20)
    port = free_port()
    data = work / "data"
    env = base_env(
        PARLEY_DATA_DIR=str(data),
        PARLEY_LOG_LEVEL="warning",
        PARLEY_LOCAL_MODEL_ENABLED="false",
        PARLEY_MEMORY_AUTO="false",
        OPENAI_BASE_URL=upstream.url,
        OPENAI_API_KEY="sk-bench",
    )
    parley_bin = str(Path(PYTHON).parent / "parley")
    cmd = [parley_bin, "serve", "--host", "127.0.0.1", "--port", str(port)]
    parley = spawn("parley", cmd, env, work)
    parley.url = f"http://127.0.0.1:{port}"
    wait_http(parley, f"{parley.url}/api/health")
    with httpx.Client(base_url=parley.url, timeout=30) as client:
        body = {"email": "web-bench@example.com", "password": PASSWORD, "name": "Bench"}
        r = client.post("/api/auth/signup", json=body)
        r.raise_for_status()
        user_id = r.json()["user"]["id"]
        cookies = [
            {"name": c.name, "value": c.value or "", "url": parley.url} for c in client.cookies.jar
        ]
        csrf = client.cookies.get("parley_csrf") or ""
    return Stack(upstream, parley, data, cookies, user_id, csrf)


async def seed(data: Path, user_id: str, count: int) -> tuple[str, str]:
    """Bulk-insert a ``count``-message conversation; returns (its id, its last message id)."""
    from sqlalchemy import insert

    from parley.storage.db import Database
    from parley.storage.tables import Conversation, Message

    conv_id, msgs, conv = content.conversation_rows(user_id, count)
    db = Database(f"sqlite+aiosqlite:///{data / 'parley.db'}")
    try:
        async with db.engine.begin() as conn:
            await conn.execute(insert(Conversation), [conv])
            await conn.execute(insert(Message), msgs)
    finally:
        await db.dispose()
    return conv_id, str(msgs[-1]["id"])


# ------------------------------------------------------------------ measurements


def measure_open(page: Any, conv_id: str, reps: int) -> dict[str, Any]:
    """Reloads of ``/c/<id>`` and opens from the sidebar, until the latest message shows.

    The page carries ``content.visible_watcher`` as an init script."""
    scripts: dict[str, bytes] = {}

    def on_response(response: Any) -> None:
        if response.request.resource_type == "script" and response.ok:
            with contextlib.suppress(Exception):  # a response evicted before we read it
                scripts[response.url.split("?")[0]] = response.body()

    page.on("response", on_response)
    page.goto(f"/c/{conv_id}")
    page.wait_for_function("() => window.__pv && window.__pv.at !== null", timeout=60_000)
    first = float(page.evaluate("window.__pv.at"))
    page.wait_for_load_state("networkidle")
    page.remove_listener("response", on_response)
    reloads, spa = [], []
    for _ in range(reps):
        page.reload()
        page.wait_for_function("() => window.__pv && window.__pv.at !== null", timeout=60_000)
        reloads.append(float(page.evaluate("window.__pv.at")))
    for _ in range(reps):
        page.get_by_test_id("new-chat").first.click()
        page.wait_for_selector("[data-testid=message-list]", state="detached")
        page.evaluate(
            "(id) => { window.__pvArm();"
            ' document.querySelector(`[data-conversation-id="${id}"] a`).click(); }',
            conv_id,
        )
        page.wait_for_function("() => window.__pv.at !== null", timeout=60_000)
        spa.append(float(page.evaluate("window.__pv.at")))
    rendered = page.locator("[data-testid=message]").count()
    sizes = {
        url.rsplit("/", 1)[-1]: (len(b), len(gzip.compress(b, 6))) for url, b in scripts.items()
    }
    return {
        "first_ms": first,
        "reload_ms": reloads,
        "sidebar_ms": spa,
        "rendered": rendered,
        "js": sizes,
    }


def measure_stream(context: Any, server: Stack, text: str, ends: list[int]) -> dict[str, Any]:
    total = content.token_count(text)
    reply = {"text": text, "tokens_per_chunk": 2, "rate": RATE / 2}
    httpx.post(f"{server.upstream.url[:-3]}/_script", json=[reply], timeout=10).raise_for_status()
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("Performance.enable")
    page.goto("/")
    page.get_by_test_id("composer").fill("Write a very long answer.")
    page.evaluate(content.FRAME_MONITOR)

    def metrics() -> dict[str, float]:
        return {m["name"]: float(m["value"]) for m in cdp.send("Performance.getMetrics")["metrics"]}

    page.get_by_test_id("composer").press("Enter")
    samples: list[
        tuple[int, float, float]
    ] = []  # (tokens rendered, ThreadTime s, ScriptDuration s)
    deadline = time.monotonic() + 60 + 3 * total / RATE
    streaming_seen = False
    while time.monotonic() < deadline:
        state = page.evaluate(content.LAST_WORD)
        m = metrics()
        word = int(state["word"])
        rendered = ends[word] if 0 <= word < len(ends) else 0
        samples.append((rendered, m["ThreadTime"], m["ScriptDuration"]))
        streaming_seen = streaming_seen or state["streaming"]
        if streaming_seen and not state["streaming"]:
            break
        time.sleep(0.1)
    page.wait_for_timeout(500)  # let the finished message settle before stopping the monitor
    frames = page.evaluate(content.FRAME_STOP)
    end = metrics()
    final_words = int(page.evaluate(content.LAST_WORD)["word"])
    page.close()
    return {
        "tokens": total,
        "complete": final_words == len(ends) - 1,
        "samples": samples,
        "frames": frames,
        "finish_task_s": end["ThreadTime"] - samples[-1][1],
    }


def window_cost(samples: list[tuple[int, float, float]], lo: int, hi: int) -> float:
    """Main-thread CPU ms per 1,000 tokens while tokens lo..hi rendered (nan if unseen).

    The median over stretches of about 4 samples: other processes on a shared
    machine disturb single stretches, not the median."""
    inside = [s for s in samples if lo <= s[0] <= hi and s[0] > 0]
    costs = []
    for i in range(0, len(inside) - 1, 4):
        a, b = inside[i], inside[min(i + 4, len(inside) - 1)]
        if b[0] > a[0]:
            costs.append((b[1] - a[1]) * 1e6 / (b[0] - a[0]))
    return median(costs)


# ------------------------------------------------------------------ table


def run(quick: bool = False) -> Table:
    from playwright.sync_api import sync_playwright

    table = Table("web", "Web app in Chromium (parley serve + scripted upstream)", "-")
    if not (ROOT / "src/parley/static/index.html").is_file():
        raise RuntimeError("the web app is not built: run `make web`")
    work = temp_dir("web")
    stack = start(work)
    procs = [stack.parley, stack.upstream]
    try:
        conv_id, last_id = asyncio.run(seed(stack.data, stack.user_id, MESSAGES))
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            context = browser.new_context(
                base_url=stack.parley.url, viewport={"width": 1280, "height": 850}
            )
            context.set_default_timeout(60_000)
            context.add_cookies(stack.cookies)  # type: ignore[arg-type]
            page = context.new_page()
            page.add_init_script(content.visible_watcher(last_id))
            opened = measure_open(page, conv_id, 3 if quick else 5)
            page.close()
            tokens = 8000 if quick else TOKENS
            streams = {
                "mixed markdown": measure_stream(context, stack, *content.numbered_answer(tokens)),
                "one code block": measure_stream(context, stack, *content.numbered_code(tokens)),
            }
            browser.close()
    finally:
        for proc in procs:
            proc.stop()
    for label, streamed in streams.items():
        _stream_rows(table, label, streamed)
    _open_rows(table, opened)
    _size_rows(table, opened["js"])
    table.raw.update({"stream": streams, "open": opened})
    return table


def _stream_rows(table: Table, label: str, s: dict[str, Any]) -> None:
    n = s["tokens"]
    first = window_cost(s["samples"], 0, n // 10)
    last = window_cost(s["samples"], n - n // 10, n)
    growth = last / first if first == first and first > 0 else float("nan")
    f = s["frames"]
    dropped = sum(max(0, round(g / (1000 / 60)) - 1) for g in f["gaps"])
    done = "yes" if s["complete"] else "no"
    table.add(f"stream {n:,} tokens, {label}, {RATE}/s: all shown", done, ok=s["complete"])
    table.add("  main thread, first 10% of the answer", fmt(first, "ms/1k tok"))
    table.add("  main thread, last 10% of the answer", fmt(last, "ms/1k tok"))
    table.add(
        "  per-token cost growth (last / first)",
        fmt(growth, "x", 2),
        target=f"<= {GROWTH_TARGET:.1f}x",
        ok=growth <= GROWTH_TARGET,
    )
    table.add("  frames dropped (rAF gaps > 50 ms)", f"{dropped} of {f['frames'] + dropped}")
    longest = max(f["longtasks"], default=0.0)
    table.add("  long tasks (> 50 ms), longest", f"{len(f['longtasks'])}, {fmt(longest, 'ms', 0)}")
    table.add(
        "  finishing (stream -> stored message)",
        fmt(s["finish_task_s"] * 1000, "ms main thread", 0),
    )


def _open_rows(table: Table, o: dict[str, Any]) -> None:
    side, reload = median(o["sidebar_ms"]), median(o["reload_ms"])
    table.add(
        f"open {MESSAGES:,} messages from the sidebar (median)",
        fmt(side, "ms", 0),
        target=f"<= {OPEN_TARGET_MS:.0f} ms",
        ok=side <= OPEN_TARGET_MS,
    )
    table.add(
        "  reload of its URL (median)",
        fmt(reload, "ms", 0),
        target=f"<= {OPEN_TARGET_MS:.0f} ms",
        ok=reload <= OPEN_TARGET_MS,
    )
    table.add("  first visit (cold cache)", fmt(o["first_ms"], "ms", 0))
    table.add("  messages in the DOM", str(o["rendered"]))


def _size_rows(table: Table, sizes: dict[str, tuple[int, int]]) -> None:
    total = sum(gz for _, gz in sizes.values()) / 1024
    raw = sum(r for r, _ in sizes.values()) / 1024
    table.add(
        "JS on the chat route, gzipped",
        fmt(total, "KB"),
        target=f"<= {JS_TARGET_KB:.0f} KB",
        ok=total <= JS_TARGET_KB,
    )
    for name, (r, gz) in sorted(sizes.items(), key=lambda kv: -kv[1][1]):
        table.add(f"  {name}", f"{gz / 1024:.1f} KB ({r / 1024:.0f} KB raw)")
    table.notes.append(f"{len(sizes)} scripts, {raw:.0f} KB before gzip (level 6)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.web_perf", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="an 8,000-token answer, 3 opens")
    args = parser.parse_args(argv)
    start_t = time.perf_counter()
    table = run(args.quick)
    table.notes.append(f"took {time.perf_counter() - start_t:.0f} s")
    print(table.render())
    print(f"results: {save([table], args.quick)}")
    return 0 if all(r.ok is not False for r in table.rows) else 1


if __name__ == "__main__":
    sys.exit(main())
