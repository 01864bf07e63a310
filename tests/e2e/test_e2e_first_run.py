"""The first run: a fresh Parley with only the demo starter model, and an Ollama-shaped
model server on this machine (a scripted upstream answering ``/api/tags`` too, on the
port ``PARLEY_LOCAL_SERVERS`` names, beside a port where nothing listens).

Journey: sign up as the first user -> the setup appears -> close it for now -> the
welcome screen labels the demo model, its limits, its state and a call to action ->
reopen the setup -> the detected server is offered with its models -> connect it ->
chat with it -> reopen the setup from Admin (the server now shows as added); and a
user who is not an admin is told to ask the admin. The embedded model is never
asked to answer (it would load llama.cpp): the journey only looks at its label.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2ehelpers import (
    PASSWORD,
    PageLog,
    Proc,
    Upstream,
    api_signup,
    base_env,
    chat,
    content,
    free_port,
    new_context,
    open_admin,
    shot,
    sign_in,
    start_parley,
    unique_email,
    watch,
)
from playwright.sync_api import Browser, Page, expect

MODELS = ["llama3.2:3b", "qwen2.5:7b"]
REPLY = "Hello from the model on this machine."


@pytest.fixture(scope="module")
def ollama(e2e_tmp: Path) -> Iterator[Upstream]:
    port = free_port()
    args = [sys.executable, "-m", "parley.providers.testing", "--port", str(port), "--ollama"]
    args += ["--models", ",".join(MODELS), "--default-text", REPLY]
    proc = Proc("ollama-like", args, base_env(), e2e_tmp / "ollama-like.log")
    root = f"http://127.0.0.1:{port}"
    try:
        proc.wait_http(f"{root}/api/tags", timeout=30)
        yield Upstream(root)
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def fresh_server(ollama: Upstream, e2e_tmp: Path) -> Iterator[str]:
    """A Parley with no provider: the embedded demo model only (never loaded here)."""
    closed = socket.socket()  # bound, never listening: held so nothing else takes it
    closed.bind(("127.0.0.1", 0))
    silent = closed.getsockname()[1]
    env = {
        "PARLEY_LOCAL_MODEL_ENABLED": "true",
        "PARLEY_MEMORY_AUTO": "false",
        "PARLEY_LOCAL_SERVERS": f"127.0.0.1:{ollama.root.rsplit(':', 1)[1]},127.0.0.1:{silent}",
    }
    proc, base = start_parley("parley-first-run", e2e_tmp / "first-run-data", env, e2e_tmp)
    try:
        yield base
    finally:
        proc.stop()
        closed.close()


@pytest.fixture
def fresh_page(browser: Browser, fresh_server: str) -> Iterator[Page]:
    ctx = new_context(browser, fresh_server)
    log = PageLog()
    page = ctx.new_page()
    watch(page, log)
    try:
        yield page
        problems = log.problems()
        if problems:
            pytest.fail("; ".join(problems), pytrace=False)
    finally:
        ctx.close()


def test_first_run_connects_a_local_server_and_chats(
    fresh_page: Page, fresh_server: str, ollama: Upstream, browser: Browser
) -> None:
    page = fresh_page
    page.goto("/signup")
    page.fill("#auth-name", "Ada Admin")
    page.get_by_test_id("auth-email").fill(unique_email("first"))
    page.get_by_test_id("auth-password").fill(PASSWORD)
    page.get_by_test_id("auth-submit").click()

    # the setup appears by itself: only the demo model is there
    setup = page.get_by_test_id("setup")
    expect(setup).to_be_visible()
    expect(page).to_have_url(f"{fresh_server}/admin/setup")
    expect(setup).to_contain_text("demo model")
    server = page.get_by_test_id("setup-server")
    expect(server).to_have_count(1)
    expect(server).to_contain_text("Ollama")
    expect(server.get_by_test_id("setup-server-model").locator("option")).to_have_text(MODELS)
    shot(page, "first-run-1-setup")

    # not now: the welcome screen says what the demo model is, and how to get a real one
    page.get_by_test_id("setup-close").click()
    notice = page.get_by_test_id("starter-notice")
    expect(notice).to_be_visible()
    expect(notice).to_contain_text("Demo model")
    expect(notice).to_contain_text("arithmetic")
    expect(page.get_by_test_id("starter-state")).to_contain_text("loads on first message")
    expect(page.get_by_test_id("model-demo-badge")).to_be_visible()
    expect(page.get_by_text("not loaded")).to_have_count(0)
    shot(page, "first-run-2-welcome-demo")
    # the demo model cannot call tools, so the globe says so instead of lighting up
    globe = page.get_by_test_id("websearch-toggle")
    expect(globe).to_have_attribute("data-state", "no-tools")
    globe.click()
    no_tools = page.get_by_test_id("websearch-no-tools")
    expect(no_tools).to_contain_text("cannot search the web: choose another model")
    expect(globe).not_to_have_attribute("aria-pressed", "true")
    shot(page, "first-run-2b-globe-demo")
    globe.click()
    expect(no_tools).to_have_count(0)
    # closed once, it does not come back by itself
    page.reload()
    expect(page.get_by_test_id("starter-notice")).to_be_visible()
    expect(page).to_have_url(f"{fresh_server}/")

    # the call to action opens the setup again; connect the server with its second model
    page.get_by_test_id("starter-connect").click()
    expect(page.get_by_test_id("setup")).to_be_visible()
    server = page.get_by_test_id("setup-server")
    server.get_by_test_id("setup-server-model").select_option(MODELS[1])
    server.get_by_test_id("setup-server-connect").click()
    connected = page.get_by_test_id("setup-connected")
    expect(connected).to_contain_text(f"ollama/{MODELS[1]}")
    expect(server).to_contain_text("added as ollama")
    shot(page, "first-run-3-connected")

    # chat with it: the answer comes from the local server, with the chosen model
    page.get_by_test_id("setup-start-chatting").click()
    expect(page.get_by_test_id("composer")).to_be_visible()
    expect(page.get_by_test_id("starter-notice")).to_have_count(0)
    expect(page.get_by_test_id("model-picker")).to_contain_text(MODELS[1])
    # the globe follows the picker: this model could search (search is not set up here)
    expect(globe).to_have_attribute("data-state", "unavailable")
    demo = next(m for m in page.request.get("/api/models").json()["items"] if m["demo"])
    page.get_by_test_id("model-picker").select_option(demo["ref"])
    expect(globe).to_have_attribute("data-state", "no-tools")
    globe.click()
    expect(no_tools).to_contain_text(f"{demo['display_name']} cannot search the web")
    shot(page, "first-run-3b-globe-picker-demo")
    page.get_by_test_id("model-picker").select_option("")  # back to the default, the new one
    expect(globe).to_have_attribute("data-state", "unavailable")
    expect(no_tools).to_have_count(0)
    reply = chat(page, "Hello there")
    expect(content(reply)).to_contain_text(REPLY)
    asked = [r for r in ollama.chat_requests() if r["json"]["model"] == MODELS[1]]
    assert asked, "the connected server was not asked"
    shot(page, "first-run-4-chat")

    # reopen the setup from Admin
    page.get_by_test_id("nav-admin").click()
    open_admin(page, "setup")
    expect(page.get_by_test_id("setup")).to_be_visible()
    expect(page.get_by_test_id("setup-server")).to_contain_text("added as ollama")
    shot(page, "first-run-5-admin-setup")

    # any OpenAI-compatible URL with a key: a wrong URL says why, a right one lists models
    page.get_by_test_id("setup-hosted-other").click()
    page.get_by_test_id("setup-url").fill(f"http://127.0.0.1:{free_port()}/v1")
    page.get_by_test_id("setup-key").fill("sk-local-test")
    page.get_by_test_id("setup-check").click()
    expect(page.get_by_test_id("setup-check-error")).to_be_visible()
    page.get_by_test_id("setup-url").fill(ollama.base_url)
    page.get_by_test_id("setup-check").click()
    expect(page.get_by_test_id("setup-model").locator("option")).to_have_text(MODELS)
    shot(page, "first-run-5b-other-url")
    page.get_by_test_id("setup-connect").click()
    expect(page.get_by_test_id("setup-connected")).to_contain_text(f"custom/{MODELS[0]}")

    # a user who is not an admin: the demo model says to ask the admin
    account = api_signup(fresh_server, "Bo User")
    ctx = new_context(browser, fresh_server)
    try:
        sign_in(ctx, account, fresh_server)
        other = ctx.new_page()
        other.goto("/")
        picker = other.get_by_test_id("model-picker")
        expect(picker).to_be_visible()
        demo = other.locator("#model-picker option", has_text="demo")
        picker.select_option(demo.get_attribute("value") or "")
        notice = other.get_by_test_id("starter-notice")
        expect(notice).to_contain_text("ask your Parley administrator")
        expect(other.get_by_test_id("starter-connect")).to_have_count(0)
        shot(other, "first-run-6-user-demo")
    finally:
        ctx.close()
