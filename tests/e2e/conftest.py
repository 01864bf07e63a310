"""End-to-end fixtures: a real ``parley serve``, a scripted upstream and Chromium.

Session-scoped (started once): ``upstream`` (``python -m parley.providers.testing``
as its own process), ``server`` (``parley serve`` on a temporary SQLite data dir,
the upstream as the ``openai`` provider, the embedded model off), ``browser``
(``/usr/bin/chromium`` through Playwright's bundled driver, headless) and
``admin`` (the first account, signed up through the web app: it becomes admin).

Per test: ``context``/``page`` (a fresh browser context; ``page_log`` records
dialogs, request URLs, console messages and uncaught errors, and teardown fails
the test on any dialog, request to a host other than 127.0.0.1, CSP violation or
uncaught error), ``user`` (a fresh account made through the API and signed in in
``context``), ``admin_page`` (``page`` signed in as the admin) and an empty
upstream script.

When a server or Chromium cannot start, the tests fail with the reason and the
process log (never skip).
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from e2ehelpers import (
    CHROMIUM,
    CHROMIUM_ARGS,
    PASSWORD,
    TIMEOUT_MS,
    UPSTREAM_MODELS,
    Account,
    PageLog,
    Proc,
    Upstream,
    api_signup,
    base_env,
    free_port,
    new_context,
    running_parley,
    sign_in,
    unique_email,
    upstream_env,
    watch,
)
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect, sync_playwright


@pytest.fixture(scope="session")
def e2e_tmp() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="parley-e2e-") as d:
        yield Path(d)


@pytest.fixture(scope="session")
def upstream(e2e_tmp: Path) -> Iterator[Upstream]:
    port = free_port()
    args = [
        sys.executable,
        "-m",
        "parley.providers.testing",
        "--port",
        str(port),
        "--models",
        ",".join(UPSTREAM_MODELS),
    ]
    proc = Proc("scripted-upstream", args, base_env(), e2e_tmp / "upstream.log")
    root = f"http://127.0.0.1:{port}"
    try:
        proc.wait_http(f"{root}/v1/models", timeout=30)
        yield Upstream(root)
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def server(upstream: Upstream, e2e_tmp: Path) -> Iterator[str]:
    with running_parley("parley", e2e_tmp / "data", upstream_env(upstream), e2e_tmp) as base:
        yield base


@pytest.fixture(scope="session")
def playwright_driver() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright_driver: Playwright) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"Chromium is missing at {CHROMIUM}: apt-get install chromium "
            "(or point PARLEY_E2E_CHROMIUM at a Chromium binary)",
            pytrace=False,
        )
    try:
        b = playwright_driver.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS, timeout=60_000
        )
    except Exception as exc:
        pytest.fail(f"Chromium at {CHROMIUM} failed to start: {exc}", pytrace=False)
    expect.set_options(timeout=TIMEOUT_MS)
    try:
        yield b
    finally:
        b.close()


@pytest.fixture(autouse=True)
def _admin_first(request: pytest.FixtureRequest) -> None:
    """On the shared server the session's admin signs up before any test does, so
    whatever order the tests run in, nobody else becomes the first account (the admin)."""
    if "server" in request.fixturenames:
        request.getfixturevalue("admin")


@pytest.fixture(autouse=True)
def _clean_upstream(request: pytest.FixtureRequest) -> None:
    """Every test that uses the upstream starts with an empty script and request log."""
    if "upstream" in request.fixturenames:
        up: Upstream = request.getfixturevalue("upstream")
        up.reset()


@pytest.fixture
def page_log() -> PageLog:
    return PageLog()


@pytest.fixture
def context(browser: Browser, server: str) -> Iterator[BrowserContext]:
    ctx = new_context(browser, server)
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.fixture
def page(context: BrowserContext, page_log: PageLog) -> Iterator[Page]:
    p = context.new_page()
    watch(p, page_log)
    yield p
    problems = page_log.problems()
    if problems:
        pytest.fail("; ".join(problems), pytrace=False)


@dataclass
class AdminSignup:
    """The first account, signed up through the web app, and what the app showed."""

    account: Account
    first_admin_notice: bool
    admin_nav_after_signup: bool
    role: str


@pytest.fixture(scope="session")
def admin(browser: Browser, server: str) -> AdminSignup:
    """The server's first account, made on the sign-up page (so it is the admin).

    Records what the page showed; ``test_first_signup_is_admin`` asserts it."""
    ctx = new_context(browser, server)
    try:
        page = ctx.new_page()
        email = unique_email("admin")
        page.goto("/signup")
        expect(page.get_by_test_id("auth-submit")).to_be_visible()
        notice = page.get_by_test_id("first-admin-notice")
        try:
            expect(notice).to_be_visible(timeout=10_000)
            first_notice = True
        except AssertionError:
            first_notice = False
        page.fill("#auth-name", "Ada Admin")
        page.get_by_test_id("auth-email").fill(email)
        page.get_by_test_id("auth-password").fill(PASSWORD)
        page.get_by_test_id("auth-submit").click()
        expect(page.get_by_test_id("composer")).to_be_visible()
        try:
            expect(page.get_by_test_id("nav-admin")).to_be_visible(timeout=10_000)
            nav = True
        except AssertionError:
            nav = False
        role = page.request.get("/api/auth/me").json()["user"]["role"]
        return AdminSignup(Account(email, PASSWORD, "Ada Admin"), first_notice, nav, role)
    finally:
        ctx.close()


@pytest.fixture
def user(server: str, context: BrowserContext, admin: AdminSignup) -> Account:
    """A fresh non-admin account signed in in this test's context (after the admin
    exists, so it never becomes the first account)."""
    account = api_signup(server)
    sign_in(context, account, server)
    return account


@pytest.fixture
def admin_page(server: str, context: BrowserContext, page: Page, admin: AdminSignup) -> Page:
    sign_in(context, admin.account, server)
    return page
