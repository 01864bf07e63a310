"""Helpers shared by the end-to-end tests (processes, accounts, chat actions, axe)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
PARLEY = VENV_BIN / "parley"
CHROMIUM = os.environ.get("PARLEY_E2E_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = ROOT / "test-output" / "screenshots"
AXE_JS = ROOT / "web" / "node_modules" / "axe-core" / "axe.min.js"
PASSWORD = "correct horse battery staple"
UPSTREAM_MODELS = ["scripted-model", "scripted-mini"]
DEFAULT_REPLY = "Hello from the scripted upstream."
DESKTOP = {"width": 1280, "height": 850}
MOBILE = {"width": 375, "height": 812}
# Auto-waiting expectations: streams are scripted to last a few seconds at most.
TIMEOUT_MS = 30_000


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def unique_email(prefix: str = "e2e") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"


# ---------------------------------------------------------------- processes


class Proc:
    """A child process logging to a file, so a failure to start says why."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        self.log = log
        self._fh = log.open("wb")
        self.popen = subprocess.Popen(
            args, env=env, stdout=self._fh, stderr=subprocess.STDOUT, cwd=str(ROOT)
        )

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def wait_http(self, url: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            code = self.popen.poll()
            if code is not None:
                self.stop()
                pytest.fail(
                    f"{self.name} exited with code {code} before answering {url}.\n"
                    f"--- {self.log} ---\n{self.tail()}",
                    pytrace=False,
                )
            try:
                r = httpx.get(url, timeout=2)
                if r.status_code == 200:
                    return
                last = f"HTTP {r.status_code}"
            except httpx.HTTPError as exc:
                last = repr(exc)
            time.sleep(0.1)
        self.stop()
        pytest.fail(
            f"{self.name} did not answer {url} within {timeout:.0f} s ({last}).\n"
            f"--- {self.log} ---\n{self.tail()}",
            pytrace=False,
        )

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=5)
        if not self._fh.closed:
            self._fh.close()


def base_env() -> dict[str, str]:
    """This environment without any Parley or provider settings of the caller."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PARLEY_", "OPENAI_", "ANTHROPIC_"))
    }
    env["PYTHONUNBUFFERED"] = "1"
    env["HF_HUB_OFFLINE"] = "1"
    return env


def start_parley(
    name: str, data_dir: Path, extra_env: dict[str, str], log_dir: Path
) -> tuple[Proc, str]:
    if not PARLEY.exists():
        pytest.fail(f"{PARLEY} is missing: install the project into the venv", pytrace=False)
    port = free_port()
    env = base_env()
    # Model-made titles call the model after a turn and would take replies a test
    # scripted for its own turns: off unless a test turns them on (the papercuts journey).
    defaults = {"PARLEY_LOG_LEVEL": "warning", "PARLEY_TITLE_MODEL": "none"}
    env.update({**defaults, "PARLEY_DATA_DIR": str(data_dir), **extra_env})
    args = [str(PARLEY), "serve", "--host", "127.0.0.1", "--port", str(port)]
    proc = Proc(name, args, env, log_dir / f"{name}.log")
    base = f"http://127.0.0.1:{port}"
    proc.wait_http(f"{base}/api/health", timeout=60)
    return proc, base


@contextlib.contextmanager
def running_parley(
    name: str, data_dir: Path, extra_env: dict[str, str], log_dir: Path
) -> Iterator[str]:
    """``start_parley`` for a fixture: yields the base URL, stops the server after."""
    proc, base = start_parley(name, data_dir, extra_env, log_dir)
    try:
        yield base
    finally:
        proc.stop()


def upstream_env(upstream: Upstream) -> dict[str, str]:
    """A server's environment with ``upstream`` as its ``openai`` provider and nothing
    that would call the model behind a test's back."""
    return {
        "OPENAI_BASE_URL": upstream.base_url,
        "OPENAI_API_KEY": "sk-e2e-dummy",
        "PARLEY_LOCAL_MODEL_ENABLED": "false",
        # Automatic memory extraction calls the model after every turn, which would
        # take the scripted replies meant for the tests' turns.
        "PARLEY_MEMORY_AUTO": "false",
        # Likewise model-made titles (the papercuts journey runs its own server with them).
        "PARLEY_TITLE_MODEL": "none",
    }


class Upstream:
    """Client for the scripted upstream's control routes (``/_script``, ``/_requests``)."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.base_url = f"{root}/v1"

    def script(self, *replies: dict[str, Any]) -> None:
        httpx.post(f"{self.root}/_script", json=list(replies), timeout=5).raise_for_status()

    def reset(self) -> None:
        httpx.delete(f"{self.root}/_requests", timeout=5).raise_for_status()

    def requests(self) -> list[dict[str, Any]]:
        r = httpx.get(f"{self.root}/_requests", timeout=5)
        r.raise_for_status()
        return list(r.json())

    def chat_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.requests() if r["path"].endswith("/chat/completions")]


# ---------------------------------------------------------------- browser


@dataclass
class PageLog:
    """What a page did: dialogs, request hosts, console output, uncaught errors."""

    dialogs: list[str] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)
    console: list[tuple[str, str]] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    allowed_hosts: set[str] = field(default_factory=lambda: {"127.0.0.1"})

    def hosts(self) -> list[str]:
        return [urlsplit(u).hostname or "" for u in self.urls]

    def csp_violations(self) -> list[str]:
        return [t for _, t in self.console if "Content Security Policy" in t]

    def foreign_requests(self, allowed: set[str] | None = None) -> list[str]:
        ok = self.allowed_hosts if allowed is None else allowed
        return [u for u in self.urls if (urlsplit(u).hostname or "") not in ok]

    def problems(self) -> list[str]:
        out = []
        if self.dialogs:
            out.append(f"dialogs opened: {self.dialogs}")
        if self.csp_violations():
            out.append(f"CSP violations logged: {self.csp_violations()}")
        if self.foreign_requests():
            out.append(f"requests left 127.0.0.1: {self.foreign_requests()}")
        if self.page_errors:
            out.append(f"uncaught page errors: {self.page_errors}")
        return out


def watch(page: Page, log: PageLog) -> None:
    def on_dialog(dialog: Any) -> None:
        log.dialogs.append(f"{dialog.type}: {dialog.message}")
        with contextlib.suppress(Exception):
            dialog.dismiss()

    def on_request(request: Any) -> None:
        if not request.url.startswith(("data:", "blob:", "about:", "chrome")):
            log.urls.append(request.url)

    page.on("dialog", on_dialog)
    page.on("request", on_request)
    page.on("console", lambda m: log.console.append((m.type, m.text)))
    page.on("pageerror", lambda e: log.page_errors.append(str(e)))


def new_context(browser: Browser, base: str, **kwargs: Any) -> BrowserContext:
    options: dict[str, Any] = {"viewport": DESKTOP, "base_url": base}
    options.update(kwargs)
    ctx = browser.new_context(**options)
    ctx.set_default_timeout(TIMEOUT_MS)
    return ctx


def shot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


# ---------------------------------------------------------------- accounts


@dataclass
class Account:
    email: str
    password: str
    name: str

    @contextlib.contextmanager
    def api(self, base: str) -> Iterator[httpx.Client]:
        """An httpx client signed in as this account (cookies + CSRF header)."""
        with httpx.Client(base_url=base, timeout=30) as client:
            r = client.post(
                "/api/auth/login", json={"email": self.email, "password": self.password}
            )
            assert r.status_code == 200, f"sign-in failed: {r.status_code} {r.text}"
            client.headers["X-CSRF-Token"] = client.cookies["parley_csrf"]
            yield client


def browser_cookies(client: httpx.Client, base: str) -> list[dict[str, Any]]:
    return [
        {
            "name": c.name,
            "value": c.value or "",
            "url": base,
            "httpOnly": c.name == "parley_session",
            "sameSite": "Lax",
        }
        for c in client.cookies.jar
    ]


def api_signup(base: str, name: str = "E2E User", email: str | None = None) -> Account:
    email = email or unique_email()
    with httpx.Client(base_url=base, timeout=15) as client:
        r = client.post(
            "/api/auth/signup", json={"email": email, "password": PASSWORD, "name": name}
        )
        assert r.status_code == 201, f"sign-up failed: {r.status_code} {r.text}"
    return Account(email, PASSWORD, name)


def sign_in(context: BrowserContext, account: Account, base: str) -> None:
    """Put a fresh session for ``account`` into the browser context."""
    with account.api(base) as client:
        context.add_cookies(browser_cookies(client, base))  # type: ignore[arg-type]


def submit_signup(page: Page, name: str, email: str, password: str = PASSWORD) -> None:
    """Fill and send the sign-up form (the first account lands in the setup)."""
    page.goto("/signup")
    page.fill("#auth-name", name)
    page.get_by_test_id("auth-email").fill(email)
    page.get_by_test_id("auth-password").fill(password)
    page.get_by_test_id("auth-submit").click()


def ui_signup(page: Page, name: str, email: str, password: str = PASSWORD) -> None:
    submit_signup(page, name, email, password)
    expect(page.get_by_test_id("composer")).to_be_visible()


# ---------------------------------------------------------------- admin

# The Admin page's groups and their sections (as in Admin.svelte): a phone shows
# one group's sections at a time, under a row of group tabs.
ADMIN_GROUPS = {
    "people": ("users", "groups"),
    "models": ("providers", "models", "setup"),
    "spending": ("usage", "prices", "budgets"),
    "tools": ("websearch", "mcp", "images", "voice"),
    "system": ("jobs",),
}


def open_admin(page: Page, section: str) -> Locator:
    """Open an Admin section through the page's navigation, as a user would: on a
    phone its group's tab first. Off the Admin page, ``/admin`` is opened first."""
    if not urlsplit(page.url).path.startswith("/admin"):
        page.goto("/admin")
    expect(page.get_by_test_id("admin-nav")).to_be_visible()
    link = page.get_by_test_id(f"admin-tab-{section}")
    if not link.is_visible():
        group = next(g for g, sections in ADMIN_GROUPS.items() if section in sections)
        page.get_by_test_id(f"admin-group-{group}").click()
    link.click()
    expect(link).to_have_attribute("aria-current", "page")
    return link


# ---------------------------------------------------------------- chat


def csrf(page: Page) -> str:
    """The page's CSRF token, for ``page.request`` calls that change something."""
    return next(c["value"] for c in page.context.cookies() if c["name"] == "parley_csrf")


def messages(page: Page, role: str | None = None) -> Locator:
    sel = "[data-testid=message]" + (f"[data-role={role}]" if role else "")
    return page.locator(sel)


def last_assistant(page: Page) -> Locator:
    return messages(page, "assistant").last


def send(page: Page, text: str) -> None:
    composer = page.get_by_test_id("composer")
    composer.fill(text)
    expect(page.get_by_test_id("send")).to_be_enabled()
    composer.press("Enter")


def wait_done(page: Page, timeout: float = TIMEOUT_MS) -> Locator:
    """Wait until the last reply is no longer streaming and the composer is idle."""
    msg = last_assistant(page)
    expect(msg).to_have_attribute(
        "data-status", _re(r"^(complete|failed|cancelled)$"), timeout=timeout
    )
    expect(page.get_by_test_id("send")).to_be_visible(timeout=timeout)
    return msg


def chat(page: Page, text: str, timeout: float = TIMEOUT_MS) -> Locator:
    """Send ``text`` and wait for the reply to finish."""
    before = messages(page, "assistant").count()
    send(page, text)
    expect(messages(page, "assistant")).to_have_count(before + 1, timeout=timeout)
    return wait_done(page, timeout)


def content(msg: Locator) -> Locator:
    return msg.get_by_test_id("message-content")


def _re(pattern: str) -> Any:
    import re

    return re.compile(pattern)


# ---------------------------------------------------------------- axe


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """Run axe-core in the page (injected from web/node_modules); serious/critical only."""
    if not AXE_JS.is_file():
        pytest.fail(f"{AXE_JS} is missing: run `make web` (npm ci)", pytrace=False)
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.add_script_tag(path=str(AXE_JS))
    result = page.evaluate(
        "async () => { const r = await window.axe.run(document, {resultTypes: ['violations']});"
        " return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.slice(0, 5).map(n => n.target.join(' '))})); }"
    )
    return [v for v in result if v["impact"] in ("serious", "critical")]


def api_chat(client: httpx.Client, text: str, conversation_id: str | None = None) -> str:
    """One turn through the native API (faster than the UI for setting up data);
    returns the conversation id. Fails unless the reply completes."""
    if conversation_id is None:
        r = client.post("/api/conversations", json={})
        assert r.status_code == 201, r.text
        conversation_id = str(r.json()["id"])
    events = []
    with client.stream(
        "POST", f"/api/conversations/{conversation_id}/messages", json={"content": text}
    ) as s:
        assert s.status_code == 200, s.read().decode()
        for line in s.iter_lines():
            if line.startswith("event: "):
                events.append(line[7:])
    assert "done" in events, f"the turn did not finish: {events}"
    return conversation_id
