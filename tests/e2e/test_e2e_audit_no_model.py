"""A server with no model at all (no provider, the embedded model off): the composer is
disabled and says why, differently for the admin (who can fix it) and for a user."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from e2ehelpers import (
    PASSWORD,
    PageLog,
    api_signup,
    new_context,
    sign_in,
    start_parley,
    unique_email,
    watch,
)
from playwright.sync_api import Browser, expect

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def bare_server(e2e_tmp: Path) -> Iterator[str]:
    env = {"PARLEY_LOCAL_MODEL_ENABLED": "false", "PARLEY_MEMORY_AUTO": "false"}
    proc, base = start_parley("parley-no-model", e2e_tmp / "data-no-model", env, e2e_tmp)
    try:
        yield base
    finally:
        proc.stop()


def test_composer_is_disabled_with_a_reason_without_models(
    browser: Browser, bare_server: str
) -> None:
    log = PageLog()
    ctx = new_context(browser, bare_server)
    try:
        page = ctx.new_page()
        watch(page, log)
        page.goto("/signup")  # the first account: the admin
        page.fill("#auth-name", "Ada NoModel")
        page.get_by_test_id("auth-email").fill(unique_email("nomodel-admin"))
        page.get_by_test_id("auth-password").fill(PASSWORD)
        page.get_by_test_id("auth-submit").click()
        expect(page.get_by_test_id("nav-admin")).to_be_visible()
        models = page.request.get("/api/models").json()
        assert models["items"] == [] and models["default"] is None, models
        # with no model at all the admin meets the first-run setup; "Not now" leaves it
        setup = page.get_by_test_id("setup")
        expect(setup).to_contain_text("no model yet")
        page.get_by_test_id("setup-close").click()

        composer = page.get_by_test_id("composer")
        expect(composer).to_be_disabled()
        expect(page.get_by_test_id("attach")).to_be_disabled()
        expect(page.get_by_test_id("send")).to_be_disabled()
        reason = page.get_by_test_id("composer-disabled-reason")
        expect(reason).to_be_visible()
        expect(reason).to_contain_text("No model is available")
        expect(reason).to_contain_text("Admin")  # the admin is told where to fix it
        # The reason is tied to the text box for screen readers.
        expect(composer).to_have_attribute("aria-describedby", "composer-reason")
        expect(page.get_by_test_id("model-picker")).to_have_count(0)
        # Admin > Providers says so too, and shows the embedded model is off.
        page.goto("/admin/providers")
        expect(page.get_by_text("No models are available. Add a provider below.")).to_be_visible()
        expect(page.get_by_test_id("local-model-status")).to_contain_text("turned off")
    finally:
        ctx.close()
    assert not log.problems(), log.problems()

    account = api_signup(bare_server, name="Una User")
    ctx = new_context(browser, bare_server)
    try:
        sign_in(ctx, account, bare_server)
        page = ctx.new_page()
        page.goto("/")
        expect(page.get_by_test_id("composer")).to_be_disabled()
        reason = page.get_by_test_id("composer-disabled-reason")
        expect(reason).to_contain_text("Ask an administrator")
        # Sending is refused by the server as well, with a clear problem.
        with account.api(bare_server) as api:
            conv = api.post("/api/conversations", json={}).json()["id"]
            r = api.post(f"/api/conversations/{conv}/messages", json={"content": "hi"})
            assert r.status_code >= 400 or "No model" in r.text, r.text
    finally:
        ctx.close()
