"""Tools in the browser against a real ``parley serve``: the code interpreter in
the real bubblewrap sandbox (upload a CSV, get the code, its output and a chart
inline), web search with cited links against a local SearxNG-shaped search
engine and page server, and an MCP tool that asks the user to allow or deny it.

The server is this module's own (the session one has no search back end):
``PARLEY_SEARXNG_URL`` points at :class:`LocalWeb` and ``PARLEY_FETCH_ALLOW_HOSTS``
lets page reading reach 127.0.0.1. The scripted upstream plays a model that calls
the tools; everything between it and Chromium is the product.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from e2ehelpers import (
    ROOT,
    Account,
    PageLog,
    Proc,
    Upstream,
    api_signup,
    chat,
    content,
    last_assistant,
    new_context,
    send,
    shot,
    sign_in,
    start_parley,
    wait_done,
    watch,
)
from localweb import LocalWeb
from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect

pytestmark = pytest.mark.e2e

MCP_FIXTURE = ROOT / "tests" / "tools_web" / "mcp_fixture_server.py"
CSV = (
    b"region,month,amount\nnorth,jan,120\nsouth,jan,80\nnorth,feb,150\nsouth,feb,95\neast,feb,40\n"
)
CHART_CODE = (
    "import pandas as pd\n"
    "import matplotlib.pyplot as plt\n"
    "df = pd.read_csv('sales.csv')\n"
    "totals = df.groupby('region')['amount'].sum()\n"
    "print(totals.to_string())\n"
    "totals.plot(kind='bar', title='Sales by region')\n"
    "plt.show()\n"
)


@pytest.fixture(scope="module")
def local_web() -> Iterator[LocalWeb]:
    web = LocalWeb()
    try:
        yield web
    finally:
        web.stop()


@dataclass
class ToolsServer:
    base: str
    admin: Account
    proc: Proc  # its log explains a failure


@pytest.fixture(scope="module")
def tools(upstream: Upstream, local_web: LocalWeb, e2e_tmp: Path) -> Iterator[ToolsServer]:
    env = {
        "OPENAI_BASE_URL": upstream.base_url,
        "OPENAI_API_KEY": "sk-e2e-dummy",
        "PARLEY_LOCAL_MODEL_ENABLED": "false",
        "PARLEY_MEMORY_AUTO": "false",
        "PARLEY_SEARXNG_URL": local_web.base,
        "PARLEY_FETCH_ALLOW_HOSTS": "127.0.0.1",
        # The real sandbox (bubblewrap + the kernel venv), one spare kernel kept warm.
        "PARLEY_SANDBOX_ENABLED": "true",
        "PARLEY_SANDBOX_SPARE_KERNELS": "1",
        "PARLEY_TOOL_TIMEOUT_S": "40",
        "PARLEY_TOOL_CONFIRM_TIMEOUT_S": "60",
    }
    proc, base = start_parley("parley-tools", e2e_tmp / "tools-data", env, e2e_tmp)
    try:
        # The first account is the admin (it registers the MCP server).
        yield ToolsServer(base, api_signup(base, name="Tools Admin"), proc)
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def tools_server(tools: ToolsServer) -> str:
    return tools.base


@pytest.fixture
def tools_page(
    browser: Browser, tools_server: str, page_log: PageLog
) -> Iterator[tuple[Page, Account]]:
    ctx: BrowserContext = new_context(browser, tools_server)
    account = api_signup(tools_server)
    sign_in(ctx, account, tools_server)
    page = ctx.new_page()
    watch(page, page_log)
    try:
        yield page, account
        problems = page_log.problems()
        if problems:
            pytest.fail("; ".join(problems), pytrace=False)
    finally:
        ctx.close()


def _tool_call(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"tool_calls": [[name, json.dumps(arguments)]]}


def _tool_messages(upstream: Upstream) -> list[str]:
    sent = upstream.chat_requests()[-1]["json"]["messages"]
    return [str(m.get("content")) for m in sent if m.get("role") == "tool"]


# ---------------------------------------------------------------- code interpreter


def test_csv_upload_chart_inline(
    tools_page: tuple[Page, Account], upstream: Upstream, tools_server: str
) -> None:
    page, _ = tools_page
    upstream.script(
        _tool_call("run_python", {"code": CHART_CODE}),
        {"text": "North sold the most (270), then south (175) and east (40)."},
    )
    page.goto("/")
    page.get_by_test_id("attach-input").set_input_files(
        files=[{"name": "sales.csv", "mimeType": "text/csv", "buffer": CSV}]
    )
    chip = page.get_by_test_id("attachment")
    expect(chip).to_contain_text("sales.csv")
    expect(chip).to_have_attribute("data-status", "ready", timeout=60_000)

    reply = chat(page, "Chart the total amount per region from sales.csv", timeout=90_000)
    expect(reply).to_have_attribute("data-status", "complete")
    expect(content(reply)).to_contain_text("North sold the most")

    step = reply.get_by_test_id("tool-step")
    expect(step).to_have_count(1)
    expect(step.locator("summary")).to_contain_text("run_python")
    step_class = step.get_attribute("class") or ""
    assert "err" not in step_class.split(), "\n".join(_tool_messages(upstream))
    # The chart is inline without opening the step; it is a real PNG from the sandbox.
    image = reply.get_by_test_id("python-image")
    expect(image).to_have_count(1)
    expect(image).to_be_visible()
    expect(image).to_have_attribute("src", re.compile(r"^/api/sandbox/outputs/[\w-]+$"))
    page.wait_for_function(
        "img => img.complete && img.naturalWidth > 100 && img.naturalHeight > 100",
        arg=image.element_handle(),
    )
    # The code and its output, in the step.
    step.locator("summary").click()
    expect(step.get_by_test_id("python-code")).to_contain_text("pd.read_csv('sales.csv')")
    output = step.get_by_test_id("python-output")
    expect(output).to_contain_text(re.compile(r"east\s+40"))
    expect(output).to_contain_text(re.compile(r"north\s+270"))
    expect(output).to_contain_text(re.compile(r"south\s+175"))
    expect(output).to_contain_text("figure-1.png")
    shot(page, "tools-chart")

    # The model read the sandbox's real output (the CSV was in the working directory).
    tool_out = "\n".join(_tool_messages(upstream))
    assert re.search(r"north\s+270", tool_out), tool_out
    # The image is the owner's download: PNG bytes, not scriptable.
    src = image.get_attribute("src")
    r = page.request.get(str(src))
    assert r.status == 200 and r.body()[:8] == b"\x89PNG\r\n\x1a\n"
    csp = r.headers.get("content-security-policy", "")
    assert csp.split(";")[0].strip() == "sandbox", csp

    # After a reload the stored step still shows code, output and chart.
    page.reload()
    reply = last_assistant(page)
    expect(reply.get_by_test_id("python-image")).to_be_visible()
    reply.get_by_test_id("tool-step").locator("summary").click()
    expect(reply.get_by_test_id("python-code")).to_contain_text("groupby('region')")
    expect(reply.get_by_test_id("python-output")).to_contain_text(re.compile(r"north\s+270"))


def test_sandbox_blocks_network_and_says_so(
    tools_page: tuple[Page, Account], upstream: Upstream, local_web: LocalWeb
) -> None:
    """The same real sandbox has no network: a hijacked model cannot reach the page server."""
    page, _ = tools_page
    fetched_before = len(local_web.fetched)
    code = (
        "import urllib.request\n"
        f"try:\n    urllib.request.urlopen('{local_web.base}/otters', timeout=3)\n"
        "    print('REACHED')\nexcept Exception as e:\n    print('BLOCKED', type(e).__name__)\n"
    )
    upstream.script(_tool_call("run_python", {"code": code}), {"text": "No network there."})
    page.goto("/")
    reply = chat(page, "Try the network from Python", timeout=90_000)
    step = reply.get_by_test_id("tool-step")
    step.locator("summary").click()
    expect(step.get_by_test_id("python-output")).to_contain_text("BLOCKED")
    expect(step.get_by_test_id("python-output")).not_to_contain_text("REACHED")
    assert len(local_web.fetched) == fetched_before


# ---------------------------------------------------------------- web search


def test_web_answer_with_cited_links(
    tools_page: tuple[Page, Account], upstream: Upstream, local_web: LocalWeb
) -> None:
    page, _ = tools_page
    otters = f"{local_web.base}/otters"
    fetched_before = len(local_web.fetched)
    upstream.script(
        _tool_call("web_search", {"query": "why do otters hold hands"}),
        _tool_call("fetch_page", {"url": otters}),
        {
            "text": (
                "Sea otters hold hands while sleeping so they do not drift apart "
                f"([Why otters hold hands]({otters}))."
            )
        },
    )
    page.goto("/")
    reply = chat(page, "Why do otters hold hands? Search the web.", timeout=60_000)
    expect(reply).to_have_attribute("data-status", "complete")

    # The search went to the local engine; the page was read through the guarded fetcher.
    assert local_web.queries[-1] == "why do otters hold hands"
    assert len(local_web.fetched) == fetched_before + 1
    steps = reply.get_by_test_id("tool-step")
    expect(steps).to_have_count(2)
    expect(steps.nth(0).locator("summary")).to_contain_text("web_search")
    expect(steps.nth(1).locator("summary")).to_contain_text("fetch_page")

    # The cited link in the answer renders as a link to the page.
    link = content(reply).get_by_role("link", name="Why otters hold hands")
    expect(link).to_have_attribute("href", otters)
    # The sources list: every http(s) result plus the page read, no javascript: URL.
    sources = reply.get_by_test_id("sources")
    expect(sources.locator("summary")).to_contain_text("Sources (2)")
    sources.locator("summary").click()
    listed = sources.get_by_role("link")
    expect(listed).to_have_count(2)
    expect(listed.nth(0)).to_have_attribute("href", otters)
    expect(listed.nth(0)).to_have_text("Why otters hold hands")
    expect(listed.nth(1)).to_have_attribute("href", f"{local_web.base}/rafts")
    expect(listed.nth(0)).to_have_attribute("rel", re.compile(r"noopener"))
    assert "javascript" not in (sources.inner_html() or "")
    shot(page, "tools-web-sources")

    # The model got the page text as untrusted tool output.
    tool_out = _tool_messages(upstream)
    assert any("drift apart on the" in t or "drift apart on" in t for t in tool_out), tool_out
    # Sources are stored with the answer: still there after a reload.
    page.reload()
    sources = last_assistant(page).get_by_test_id("sources")
    expect(sources.locator("summary")).to_contain_text("Sources (2)")


# ---------------------------------------------------------------- confirmations


def _register_mcp(base: str, admin: Account) -> None:
    with admin.api(base) as client:
        r = client.post(
            "/api/admin/mcp",
            json={
                "name": "notes",
                "transport": "stdio",
                "command": sys.executable,
                "args": [str(MCP_FIXTURE)],
            },
        )
        assert r.status_code in (201, 409), r.text
        for _ in range(150):
            items = client.get("/api/admin/mcp").json()["items"]
            server = next(s for s in items if s["name"] == "notes")
            if server["status"] == "connected":
                break
            time.sleep(0.2)
        assert server["status"] == "connected", server
        tools = client.get("/api/tools").json()["items"]
        note = next(t for t in tools if t["name"] == "notes__note")
        assert note["side_effecting"] and note["source"] == "mcp", note


def test_side_effecting_tool_asks_and_user_decides(
    tools_page: tuple[Page, Account], upstream: Upstream, tools: ToolsServer
) -> None:
    page, user = tools_page
    tools_server = tools.base
    _register_mcp(tools_server, tools.admin)
    upstream.script(
        _tool_call("notes__note", {"text": "buy oat milk"}),
        {"text": "Saved your note."},
    )
    page.goto("/")
    send(page, "Remember to buy oat milk")
    ask = page.get_by_test_id("tool-confirm")
    try:
        expect(ask).to_be_visible()
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- server log ---\n{tools.proc.tail(80)}") from exc
    expect(ask).to_contain_text("notes__note")
    expect(ask.get_by_test_id("tool-confirm-args")).to_contain_text('"text": "buy oat milk"')
    expect(ask).to_have_attribute("role", "alertdialog")
    reply = last_assistant(page)
    expect(reply).to_have_attribute("data-status", "streaming")
    # Nothing ran yet: the model has not been called back with a result.
    assert len(upstream.chat_requests()) == 1
    shot(page, "tools-confirm")
    ask.get_by_test_id("tool-allow").click()
    expect(page.get_by_test_id("tool-confirm")).to_have_count(0)
    reply = wait_done(page)
    expect(content(reply)).to_contain_text("Saved your note.")
    step = reply.get_by_test_id("tool-step")
    _open_step(page, step)
    expect(step).to_contain_text("noted buy oat milk")
    assert any("noted buy oat milk" in t for t in _tool_messages(upstream))

    # Deny: the tool does not run and the model is told so.
    upstream.script(
        _tool_call("notes__note", {"text": "delete everything"}),
        {"text": "Understood, I did not save it."},
    )
    send(page, "Now note: delete everything")
    ask = page.get_by_test_id("tool-confirm")
    expect(ask.get_by_test_id("tool-confirm-args")).to_contain_text("delete everything")
    ask.get_by_test_id("tool-deny").click()
    expect(page.get_by_test_id("tool-confirm")).to_have_count(0)
    reply = wait_done(page)
    expect(content(reply)).to_contain_text("I did not save it")
    step = reply.get_by_test_id("tool-step")
    expect(step).to_have_class(re.compile(r"\berr\b"))
    _open_step(page, step)
    expect(step).not_to_contain_text("noted delete everything")
    denied = _tool_messages(upstream)[-1]
    assert "noted delete everything" not in denied
    assert "did not approve" in denied, denied

    # The decisions are stored: nothing is left waiting for this user.
    with user.api(tools_server) as client:
        cid = page.url.rsplit("/", 1)[-1]
        assert client.get(f"/api/conversations/{cid}/tool-calls").json()["items"] == []


def _open_step(page: Page, step: Locator) -> None:
    """Expand a tool step, from the bottom of the list like a reader would (the
    floating "Jump to latest" button covers the lower edge while scrolled up)."""
    jump = page.get_by_test_id("jump-latest")
    if jump.is_visible():
        jump.click()
    step.locator("summary").click()
