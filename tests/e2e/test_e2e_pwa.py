"""Installable app: a valid manifest Chromium accepts, a service worker that controls
the page after a reload, and an offline shell that says the server is unreachable
(instead of signing the user out) and recovers when it is back.

The offline test runs its own ``parley serve`` so it can stop it (really offline)
and start it again on the same port and data dir.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2ehelpers import (
    PARLEY,
    PageLog,
    Proc,
    Upstream,
    api_signup,
    base_env,
    free_port,
    new_context,
    sign_in,
    watch,
)
from playwright.sync_api import Browser, Page, expect

pytestmark = pytest.mark.e2e


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def test_manifest_is_valid_and_chromium_finds_the_app_installable(page: Page, server: str) -> None:
    page.goto("/")
    href = page.locator("link[rel=manifest]").get_attribute("href")
    assert href == "/manifest.webmanifest"
    r = page.request.get(href)
    assert r.ok and r.headers["content-type"].startswith("application/manifest+json")
    manifest = r.json()
    assert manifest["name"] and manifest["short_name"]
    assert manifest["start_url"] == "/" and manifest["scope"] == "/"
    assert manifest["display"] in ("standalone", "fullscreen", "minimal-ui")
    pngs = {}
    for icon in manifest["icons"]:
        res = page.request.get(icon["src"])
        assert res.ok, icon
        assert res.headers["content-type"] == icon["type"], icon
        if icon["type"] == "image/png":
            w, h = png_size(res.body())
            assert icon["sizes"] == f"{w}x{h}", icon  # the declared size is the real one
            pngs[(icon["sizes"], icon.get("purpose", "any"))] = True
    assert ("192x192", "any") in pngs and ("512x512", "any") in pngs
    assert ("512x512", "maskable") in pngs
    # Chromium's own checks: the manifest parses and nothing blocks installing.
    cdp = page.context.new_cdp_session(page)
    parsed = cdp.send("Page.getAppManifest")
    assert parsed["errors"] == [], parsed["errors"]
    page.evaluate("async () => { await navigator.serviceWorker.ready; }")
    errors = cdp.send("Page.getInstallabilityErrors")["installabilityErrors"]
    # Playwright's contexts are incognito-like, which Chromium always reports; any
    # other reason (manifest, icons, service worker, scope) would block installing.
    assert [e for e in errors if e["errorId"] != "in-incognito"] == [], errors


@pytest.fixture
def own_server(
    e2e_tmp: Path, upstream: Upstream
) -> Iterator[tuple[str, list[str], dict[str, str], Path]]:
    """A server only this test uses: (base URL, command, environment, log dir). It has
    a model (the scripted upstream), so its first admin is not sent to the setup."""
    port = free_port()
    data = e2e_tmp / f"pwa-{port}"
    env = base_env()
    env.update(
        {
            "OPENAI_BASE_URL": upstream.base_url,
            "OPENAI_API_KEY": "sk-e2e-dummy",
            "PARLEY_DATA_DIR": str(data),
            "PARLEY_LOG_LEVEL": "warning",
            "PARLEY_LOCAL_MODEL_ENABLED": "false",
            "PARLEY_MEMORY_AUTO": "false",
        }
    )
    args = [str(PARLEY), "serve", "--host", "127.0.0.1", "--port", str(port)]
    yield f"http://127.0.0.1:{port}", args, env, e2e_tmp


def _serve(args: list[str], env: dict[str, str], log_dir: Path, base: str, n: int) -> Proc:
    proc = Proc(f"pwa-parley-{n}", args, env, log_dir / f"pwa-parley-{n}.log")
    proc.wait_http(f"{base}/api/health", timeout=60)
    return proc


def test_service_worker_controls_the_page_and_the_shell_works_offline(
    browser: Browser, own_server: tuple[str, list[str], dict[str, str], Path], page_log: PageLog
) -> None:
    base, args, env, log_dir = own_server
    proc = _serve(args, env, log_dir, base, 1)
    ctx = new_context(browser, base)
    try:
        account = api_signup(base, name="Offline Otto")
        sign_in(ctx, account, base)
        page = ctx.new_page()
        watch(page, page_log)
        page.goto("/")
        expect(page.get_by_test_id("composer")).to_be_visible()
        scope = page.evaluate("async () => (await navigator.serviceWorker.ready).scope")
        assert scope == f"{base}/"
        page.reload()
        expect(page.get_by_test_id("composer")).to_be_visible()
        controller = page.evaluate("() => navigator.serviceWorker.controller?.scriptURL")
        assert controller == f"{base}/sw.js"
        cached = page.evaluate(
            "async () => { const out = []; for (const name of await caches.keys()) {"
            " const c = await caches.open(name);"
            " for (const r of await c.keys()) out.push(new URL(r.url).pathname); } return out; }"
        )
        assert "/" in cached and any(p.startswith("/assets/") for p in cached), cached
        assert not [p for p in cached if p.startswith(("/api", "/v1"))], cached  # never cached

        proc.stop()  # really offline: nothing answers on that port now
        page.reload()
        offline = page.get_by_test_id("offline")
        expect(offline).to_be_visible()
        expect(offline).to_contain_text("can’t be reached")
        assert page.url == f"{base}/", "offline must not be treated as signed out"
        expect(page.get_by_test_id("composer")).to_have_count(0)

        proc = _serve(args, env, log_dir, base, 2)  # same port and data dir
        page.get_by_test_id("offline-retry").click()
        expect(page.get_by_test_id("composer")).to_be_visible()
        expect(offline).to_have_count(0)
    finally:
        ctx.close()
        proc.stop()
    problems = page_log.problems()
    assert not problems, problems
