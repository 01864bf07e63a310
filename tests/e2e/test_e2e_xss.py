"""Hostile text stays inert: model output (streamed in tiny chunks, and from history),
a conversation title and a user name. No dialog, no script, no request off
127.0.0.1, external images only on click."""

from __future__ import annotations

import base64

import pytest
from e2ehelpers import (
    PageLog,
    Upstream,
    last_assistant,
    new_context,
    send,
    sign_in,
    ui_signup,
    unique_email,
    wait_done,
    watch,
)
from playwright.sync_api import Browser, Locator, Page, expect

pytestmark = pytest.mark.e2e

TRACKER_HOST = "tracker.example.com"
SVG_ALERT = base64.b64encode(
    b'<svg xmlns="http://www.w3.org/2000/svg" onload="window.__pwned=20;alert(20)"/>'
).decode()
HTML_ALERT = base64.b64encode(b"<script>window.__pwned=21;alert(21)</script>").decode()

CORPUS = f"""XSS corpus start.

<script>window.__pwned = 1; alert('script')</script>

<img src=x onerror="window.__pwned=2;alert('img')">

[js link](javascript:window.__pwned=3) and <a href="javascript:alert('a')">raw js link</a>
and [spaced js](  JaVaScRiPt:alert(3)) and <a href="jav&#x09;ascript:alert(4)">entity js</a>

<svg><script>window.__pwned=4</script></svg> <svg onload="window.__pwned=5"></svg>

<math><mtext><table><mglyph><style><img src=x onerror="window.__pwned=12">
</style></mglyph></table></mtext></math>

[data link](data:text/html;base64,{HTML_ALERT})

![data image](data:image/svg+xml;base64,{SVG_ALERT})

![x" onerror=alert(1)](y)

![tracker pixel](https://{TRACKER_HOST}/pixel.png?user=alice&session=42)

```html
<script>window.__pwned=6</script><img src=x onerror="window.__pwned=7">
```

<iframe src="javascript:alert('iframe')"></iframe> <object data="javascript:alert(1)"></object>
<embed src="javascript:alert(1)"> <form action="javascript:alert(1)"><button>go</button></form>

<details open ontoggle="window.__pwned=8">toggle</details>

<a href="https://example.org/ok" onclick="window.__pwned=13">plain link</a>

XSS corpus end. Broken tail: <img src=x onerror="window.__pwned=9"
"""

TITLE = "<img src=x onerror=alert('title')><script>window.__pwned=10</script> title"
NAME = "<svg onload=alert('name')><img src=x onerror=window.__pwned=11> Mallory"

INERT_JS = """(root) => {
  const bad = [];
  for (const el of root.querySelectorAll('*')) {
    const tag = el.tagName.toLowerCase();
    if (['script', 'iframe', 'object', 'embed', 'form', 'img', 'svg', 'math', 'style',
         'base', 'meta', 'link'].includes(tag)) bad.push('<' + tag + '>');
    for (const a of el.attributes) {
      if (a.name.startsWith('on')) bad.push(tag + '[' + a.name + ']');
      if (['href', 'src', 'action', 'formaction', 'data', 'xlink:href'].includes(a.name)) {
        const v = a.value.trim().toLowerCase();
        if (!/^(https?:|mailto:|#)/.test(v)) bad.push(tag + '[' + a.name + '=' + a.value + ']');
      }
    }
    if (tag === 'a' && el.getAttribute('href')) {
      if (el.getAttribute('target') === '_blank' && !/noopener/.test(el.getAttribute('rel') || ''))
        bad.push('a without rel=noopener');
    }
  }
  return bad;
}"""


def assert_inert(root: Locator, allow_img_host: str | None = None) -> None:
    bad = root.evaluate(INERT_JS)
    if allow_img_host:
        bad = [b for b in bad if b != "<img>"]
    assert not bad, f"active content rendered: {bad}"


def assert_not_pwned(page: Page, log: PageLog) -> None:
    assert page.evaluate("typeof window.__pwned") == "undefined", page.evaluate("window.__pwned")
    assert not log.dialogs, log.dialogs
    assert not log.foreign_requests(), log.foreign_requests()


def test_xss_corpus_is_inert(
    page: Page, page_log: PageLog, upstream: Upstream, admin, browser: Browser, server: str
) -> None:
    # A user whose name is hostile, signed up through the form.
    email = unique_email("mallory")
    ui_signup(page, NAME, email)
    who = page.get_by_test_id("sidebar").locator(".who")
    expect(who).to_have_text(NAME)
    assert_inert(who)

    # Model output streamed 3 characters per chunk, so tags are split across chunks.
    upstream.script({"text": CORPUS, "chunk_chars": 3, "rate": 200})
    send(page, "Please print the XSS corpus")
    reply = last_assistant(page)
    expect(reply).to_have_attribute("data-status", "streaming")
    expect(reply.get_by_test_id("message-content")).to_contain_text("window.__pwned = 1")
    assert_inert(reply.get_by_test_id("message-content"))  # mid-stream
    wait_done(page)
    expect(reply).to_have_attribute("data-status", "complete")
    body = reply.get_by_test_id("message-content")
    expect(body).to_contain_text("XSS corpus end.")
    # Raw HTML is shown as text, not dropped silently and not run.
    expect(body).to_contain_text("<script>window.__pwned = 1; alert('script')</script>")
    expect(body).to_contain_text('<img src=x onerror="window.__pwned=2')
    expect(body.locator("pre code")).to_contain_text("<script>window.__pwned=6</script>")
    assert_inert(body)
    assert_not_pwned(page, page_log)

    # The external image is a placeholder naming its host; nothing was fetched.
    placeholder = body.locator("button.img-load", has_text=TRACKER_HOST)
    expect(placeholder).to_have_count(1)
    assert body.locator("img").count() == 0
    assert TRACKER_HOST not in " ".join(page_log.hosts())

    # The same checks on the history rendering path (reload).
    page.reload()
    reply = last_assistant(page)
    body = reply.get_by_test_id("message-content")
    expect(body).to_contain_text("XSS corpus end.")
    assert_inert(body)
    assert_not_pwned(page, page_log)

    # Clicking the placeholder loads that image only, without a referrer.
    png = base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
    )
    page.route(
        f"https://{TRACKER_HOST}/**",
        lambda route: route.fulfill(status=200, content_type="image/png", body=png),
    )
    with page.expect_request(lambda r: TRACKER_HOST in r.url) as req:
        body.locator("button.img-load", has_text=TRACKER_HOST).click()
    assert req.value.url == f"https://{TRACKER_HOST}/pixel.png?user=alice&session=42"
    assert "referer" not in {k.lower() for k in req.value.headers}
    img = body.locator("img")
    expect(img).to_have_count(1)
    expect(img).to_have_attribute("referrerpolicy", "no-referrer")
    page_log.allowed_hosts.add(TRACKER_HOST)

    # A hostile conversation title (rename) is text in the sidebar and the header.
    item = page.get_by_test_id("sidebar-item").first
    item.get_by_test_id("sidebar-item-menu").click()
    page.get_by_test_id("menu-rename").click()
    item.get_by_test_id("rename-input").fill(TITLE)
    item.get_by_test_id("rename-input").press("Enter")
    expect(item).to_contain_text(TITLE)
    expect(page.get_by_test_id("page-title")).to_have_text(TITLE)
    assert_inert(item.locator(".title"))
    assert_inert(page.get_by_test_id("page-title"))
    page.reload()
    item = page.get_by_test_id("sidebar-item").first
    expect(item).to_contain_text(TITLE)
    assert_inert(item.locator(".title"))
    assert_inert(page.get_by_test_id("page-title"))

    # Search snippets built from the hostile text stay text.
    page.get_by_test_id("search-input").fill("corpus")
    hit = page.get_by_test_id("search-hit").first
    expect(hit).to_be_visible()
    expect(hit.locator("mark").first).to_have_text("corpus", ignore_case=True)
    assert_inert(hit)
    assert_not_pwned(page, page_log)

    # The admin sees the hostile name as text in the users table.
    ctx = new_context(browser, server)
    try:
        sign_in(ctx, admin.account, server)
        admin_view = ctx.new_page()
        admin_log = PageLog()
        watch(admin_view, admin_log)
        admin_view.goto("/admin/users")
        table = admin_view.get_by_test_id("users-table")
        expect(table).to_contain_text(NAME)
        row = table.get_by_test_id("user-row").filter(has_text="Mallory")
        expect(row).to_have_count(1)
        assert_inert(row.locator("td").first)
        assert_inert(row.locator("td").nth(1))
        assert_not_pwned(admin_view, admin_log)
    finally:
        ctx.close()
