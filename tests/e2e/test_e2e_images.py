"""Images from nothing to an edited picture, in Chromium against a real ``parley serve``.

The admin adds the scripted image server (OpenAI's images API, a real HTTP server
this module runs) in Admin → Images. A member turns on the composer's image mode,
asks for a picture and sees it inline; clicks Edit under it and asks for a change;
reloads and still sees both, with the edit's history (original -> edit); downloads
the edit, then deletes it (the original stays). Every request the page makes goes
to Parley (the page log fails the test on any other host): the provider's pictures
are stored and served by Parley. The test has a server of its own.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2ehelpers import (
    PageLog,
    Upstream,
    api_signup,
    new_context,
    running_parley,
    shot,
    sign_in,
    upstream_env,
    watch,
)
from playwright.sync_api import Browser, Page, expect

from parley.images.testing import ScriptedImages

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def image_server() -> Iterator[ScriptedImages]:
    with ScriptedImages(api_key="img-secret") as server:
        yield server


@pytest.fixture(scope="module")
def images_server(upstream: Upstream, e2e_tmp: Path) -> Iterator[str]:
    """A server of its own: once it has an image provider, every chat offers the
    image tools, which the shared server's other tests do not expect."""
    with running_parley(
        "parley-images", e2e_tmp / "images-data", upstream_env(upstream), e2e_tmp
    ) as base:
        yield base


def _loaded(page: Page, index: int) -> None:
    """The index-th generated picture has loaded (its pixels came from Parley)."""
    picture = page.get_by_test_id("generated-image").nth(index)
    expect(picture).to_be_visible()
    expect(picture).to_have_attribute("src", re.compile(r"^/api/images/\w+/content$"))
    page.wait_for_function(
        "([i]) => { const el = document.querySelectorAll('[data-testid=generated-image]')[i];"
        " return el && el.complete && el.naturalWidth > 0; }",
        arg=[index],
    )


def test_admin_sets_up_images_and_a_member_creates_edits_reloads_and_downloads(
    browser: Browser, images_server: str, image_server: ScriptedImages
) -> None:
    server = images_server
    log = PageLog()
    admin_context = new_context(browser, server)
    sign_in(admin_context, api_signup(server, "Ada Admin"), server)  # the first account
    admin = admin_context.new_page()
    watch(admin, log)
    admin.goto("/admin/images")
    expect(admin.get_by_test_id("image-providers-empty")).to_be_visible()
    admin.get_by_test_id("image-provider-name").fill("drawer")
    admin.get_by_test_id("image-provider-url").fill(image_server.base_url)
    admin.get_by_test_id("image-provider-key").fill("img-secret")
    admin.get_by_test_id("image-provider-model").fill("scripted-image")
    admin.get_by_test_id("image-provider-price").fill("0.04")
    admin.get_by_test_id("image-provider-add").click()
    expect(admin.get_by_test_id("image-provider-row")).to_have_count(1)
    expect(admin.get_by_test_id("image-provider-row")).to_contain_text("drawer")
    expect(admin.get_by_test_id("image-provider-row")).to_contain_text("default")
    # the price is edited in place and applies from now on
    admin.get_by_test_id("image-provider-row-price").fill("0.05")
    admin.get_by_test_id("image-provider-save-price").click()
    expect(admin.get_by_test_id("image-provider-save-price")).to_have_count(0)
    admin.reload()
    expect(admin.get_by_test_id("image-provider-row-price")).to_have_value("0.05")
    shot(admin, "images-admin")
    admin_context.close()

    context = new_context(browser, server, accept_downloads=True)
    try:
        sign_in(context, api_signup(server, "Mia Member"), server)
        page = context.new_page()
        watch(page, log)
        page.set_viewport_size({"width": 1100, "height": 900})
        page.goto("/")
        toggle = page.get_by_test_id("image-toggle")
        expect(toggle).to_be_enabled()
        toggle.click()
        expect(toggle).to_have_attribute("aria-pressed", "true")
        page.get_by_test_id("composer").fill("a lighthouse on a cliff at sunset")
        page.get_by_test_id("composer").press("Enter")
        _loaded(page, 0)
        expect(page.get_by_text("a lighthouse on a cliff at sunset").first).to_be_visible()

        page.get_by_test_id("image-edit").first.click()
        expect(page.get_by_test_id("image-edit-target")).to_be_visible()
        page.get_by_test_id("composer").fill("add a full moon")
        page.get_by_test_id("composer").press("Enter")
        expect(page.get_by_test_id("generated-image")).to_have_count(2)
        _loaded(page, 1)
        expect(page.get_by_text("Edit: add a full moon")).to_be_visible()

        page.reload()
        expect(page.get_by_test_id("generated-image")).to_have_count(2)
        _loaded(page, 1)
        page.get_by_test_id("image-history").nth(1).click()
        lineage = page.get_by_test_id("image-lineage")
        expect(lineage.get_by_test_id("lineage-item")).to_have_count(2)
        expect(lineage).to_contain_text("Original")
        expect(lineage).to_contain_text("Edit")
        shot(page, "images-thread")

        with page.expect_download() as info:
            page.get_by_test_id("image-download").nth(1).click()
        download = info.value
        assert download.suggested_filename.endswith(".png")
        path = download.path()
        assert path is not None and path.read_bytes().startswith(b"\x89PNG")

        # the edit is deleted (its bytes with it); the original stays
        page.get_by_test_id("image-delete").nth(1).click()
        page.get_by_test_id("image-delete-confirm").click()
        expect(page.get_by_test_id("image-gone")).to_have_count(1)
        page.reload()
        expect(page.get_by_test_id("image-gone")).to_have_count(1)
        expect(page.get_by_test_id("generated-image")).to_have_count(1)
        _loaded(page, 0)
    finally:
        context.close()
    assert not log.problems(), log.problems()
    # the provider was called by Parley only (with its key), never by the browser
    assert [r["path"] for r in image_server.requests] == [
        "/v1/images/generations",
        "/v1/images/edits",
    ]
