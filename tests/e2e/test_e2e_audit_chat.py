"""Chat and composer items of issue 3 the other chat tests leave out: copy (message and
code block), thumbs stored with the message, a model per conversation, the thinking
state, tokens/cost/model on hover, opening at the latest message, Shift+Enter, and
drag-and-drop attaching a file."""

from __future__ import annotations

import re

import pytest
from e2ehelpers import (
    Account,
    Upstream,
    api_chat,
    chat,
    content,
    last_assistant,
    messages,
    send,
    wait_done,
)
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e

CODE = "def area(r):\n    return 3.14159 * r * r"
REPLY_WITH_CODE = f"Here is the function:\n\n```python\n{CODE}\n```\n\nUse it wisely."


def clipboard(page: Page) -> str:
    return str(page.evaluate("() => navigator.clipboard.readText()"))


def conversation_id(page: Page) -> str:
    m = re.search(r"/c/([0-9a-f]+)", page.url)
    assert m, page.url
    return m.group(1)


def test_copy_message_and_code_block(
    page: Page, user: Account, upstream: Upstream, server: str
) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server)
    upstream.script({"text": REPLY_WITH_CODE})
    page.goto("/")
    reply = chat(page, "Write an area function")
    expect(reply.locator(".code-block")).to_have_count(1)

    page.evaluate("() => navigator.clipboard.writeText('nothing yet')")
    reply.locator("button.copy-code").click()
    assert _wait_clipboard(page, CODE) == CODE

    reply.get_by_test_id("copy-message").click()
    assert _wait_clipboard(page, REPLY_WITH_CODE) == REPLY_WITH_CODE  # the markdown source

    question = messages(page, "user").first
    question.hover()
    question.get_by_test_id("copy-message").click()
    assert _wait_clipboard(page, "Write an area function") == "Write an area function"


def _wait_clipboard(page: Page, want: str) -> str:
    """The clipboard once it holds ``want`` (the copy is asynchronous), else its text."""
    page.wait_for_function("want => navigator.clipboard.readText().then(t => t === want)", arg=want)
    return clipboard(page)


def test_thumbs_are_stored_with_the_message(
    page: Page, user: Account, upstream: Upstream, server: str
) -> None:
    page.goto("/")
    reply = chat(page, "Rate this answer")
    message_id = reply.get_attribute("data-message-id")
    up, down = reply.get_by_test_id("thumbs-up"), reply.get_by_test_id("thumbs-down")
    expect(up).to_have_attribute("aria-pressed", "false")

    def stored() -> object:
        data = page.request.get(f"/api/conversations/{conversation_id(page)}").json()
        return next(m["feedback"] for m in data["messages"] if m["id"] == message_id)

    up.click()
    expect(up).to_have_attribute("aria-pressed", "true")
    expect(down).to_have_attribute("aria-pressed", "false")
    page.wait_for_function(
        "([c, id]) => fetch(`/api/conversations/${c}`).then(r => r.json())"
        ".then(d => d.messages.find(m => m.id === id).feedback === 1)",
        arg=[conversation_id(page), message_id],
    )
    assert stored() == 1
    page.reload()
    reply = last_assistant(page)
    expect(reply.get_by_test_id("thumbs-up")).to_have_attribute("aria-pressed", "true")

    reply.get_by_test_id("thumbs-down").click()
    expect(reply.get_by_test_id("thumbs-down")).to_have_attribute("aria-pressed", "true")
    expect(reply.get_by_test_id("thumbs-up")).to_have_attribute("aria-pressed", "false")
    page.reload()
    reply = last_assistant(page)
    expect(reply.get_by_test_id("thumbs-down")).to_have_attribute("aria-pressed", "true")
    assert stored() == -1

    # Clicking the pressed thumb again clears it.
    reply.get_by_test_id("thumbs-down").click()
    expect(reply.get_by_test_id("thumbs-down")).to_have_attribute("aria-pressed", "false")
    page.reload()
    expect(last_assistant(page).get_by_test_id("thumbs-down")).to_have_attribute(
        "aria-pressed", "false"
    )
    assert stored() in (0, None)


def test_model_picker_is_per_conversation(page: Page, user: Account, upstream: Upstream) -> None:
    page.goto("/")
    default = page.request.get("/api/models").json()["default"]
    assert default == "openai/scripted-mini", default  # the first model of the provider
    picker = page.get_by_test_id("model-picker")
    expect(picker).to_have_value("")  # "Default (...)"
    chat(page, "Answer with the default model")
    assert upstream.chat_requests()[-1]["json"]["model"] == "scripted-mini"
    default_url = page.url

    page.get_by_test_id("new-chat").click()
    picker.select_option("openai/scripted-model")
    chat(page, "Answer with the other model")
    assert upstream.chat_requests()[-1]["json"]["model"] == "scripted-model"
    other_url = page.url

    # Each conversation keeps its own model.
    page.goto(default_url)
    expect(content(last_assistant(page))).to_be_visible()
    expect(picker).to_have_value("")
    chat(page, "Still the default model?")
    assert upstream.chat_requests()[-1]["json"]["model"] == "scripted-mini"

    page.goto(other_url)
    expect(content(last_assistant(page))).to_be_visible()
    expect(picker).to_have_value("openai/scripted-model")
    chat(page, "Still the other model?")
    assert upstream.chat_requests()[-1]["json"]["model"] == "scripted-model"
    data = page.request.get(f"/api/conversations/{conversation_id(page)}").json()
    assert data["conversation"]["model"] == "openai/scripted-model"
    assert data["messages"][-1]["model"] == "openai/scripted-model"

    # Changing the model of an existing conversation is stored with it.
    page.goto(default_url)
    expect(content(last_assistant(page))).to_be_visible()
    picker.select_option("openai/scripted-model")
    page.wait_for_function(
        "c => fetch(`/api/conversations/${c}`).then(r => r.json())"
        ".then(d => d.conversation.model === 'openai/scripted-model')",
        arg=conversation_id(page),
    )
    page.reload()
    expect(page.get_by_test_id("model-picker")).to_have_value("openai/scripted-model")
    page.goto(other_url)
    expect(picker).to_have_value("openai/scripted-model")


def test_thinking_is_shown_while_and_after_reasoning(
    page: Page, user: Account, upstream: Upstream
) -> None:
    thoughts = " ".join(f"step{i:02d}" for i in range(24))
    upstream.script({"reasoning": thoughts, "text": "The answer is 12.", "rate": 12})
    page.goto("/")
    send(page, "Think before answering")
    reply = last_assistant(page)
    thinking = reply.get_by_test_id("thinking")
    expect(thinking.locator("summary")).to_have_text("Thinking…")
    expect(reply).to_have_attribute("data-status", "streaming")
    wait_done(page)
    expect(content(reply)).to_have_text("The answer is 12.")
    expect(thinking.locator("summary")).to_have_text("Thought process")
    # Collapsed; opening it shows the reasoning as text.
    expect(thinking).not_to_have_attribute("open", "")
    thinking.locator("summary").click()
    expect(thinking).to_contain_text("step00 step01")
    expect(thinking).to_contain_text("step23")
    page.reload()
    thinking = last_assistant(page).get_by_test_id("thinking")
    expect(thinking.locator("summary")).to_have_text("Thought process")
    thinking.locator("summary").click()
    expect(thinking).to_contain_text("step23")


def test_tokens_cost_and_model_on_hover(page: Page, user: Account, upstream: Upstream) -> None:
    upstream.script({"text": "Four words right here."})
    page.goto("/")
    reply = chat(page, "Say four words")
    meta = reply.get_by_test_id("message-meta")
    expect(meta).to_be_hidden()
    reply.get_by_role("button", name="Response details").hover()
    expect(meta).to_be_visible()
    model = page.request.get(f"/api/conversations/{conversation_id(page)}").json()["messages"][-1][
        "model"
    ]
    assert model and model.startswith("openai/scripted-"), model
    expect(meta).to_contain_text(model)
    expect(meta).to_contain_text(re.compile(r"\d+ in / \d+ out tokens"))
    expect(meta).to_contain_text("$")
    # Keyboard users get it on focus too, and it names the button (aria-describedby).
    page.mouse.move(0, 0)
    expect(meta).to_be_hidden()
    reply.get_by_role("button", name="Response details").focus()
    expect(meta).to_be_visible()


def test_long_conversation_opens_at_the_latest_message(
    page: Page, user: Account, server: str
) -> None:
    with user.api(server) as api:
        conv = api_chat(api, "Question number 00")
        for i in range(1, 24):
            api_chat(api, f"Question number {i:02d}", conv)
    page.goto(f"/c/{conv}")
    expect(messages(page, "user").last).to_contain_text("Question number 23")
    expect(last_assistant(page)).to_be_in_viewport()
    expect(messages(page, "user").filter(has_text="Question number 00")).not_to_be_in_viewport()
    assert (
        page.evaluate(
            "() => { const s = document.querySelector('[data-testid=message-list]');"
            " return s.scrollHeight - s.scrollTop - s.clientHeight; }"
        )
        < 80
    ), "the list was not scrolled to the end"


def test_shift_enter_adds_a_line_and_enter_sends(page: Page, user: Account) -> None:
    page.goto("/")
    composer = page.get_by_test_id("composer")
    composer.click()
    page.keyboard.type("line one")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("line two")
    expect(composer).to_have_value("line one\nline two")
    expect(messages(page)).to_have_count(0)  # nothing was sent
    page.keyboard.press("Enter")
    expect(content(messages(page, "user").first)).to_have_text("line one\nline two")
    wait_done(page)
    expect(composer).to_have_value("")


def test_drag_and_drop_attaches_a_file(page: Page, user: Account) -> None:
    page.goto("/")
    form = page.get_by_test_id("composer-form")
    expect(page.get_by_test_id("composer")).to_be_enabled()
    data = page.evaluate_handle(
        "() => { const dt = new DataTransfer();"
        " dt.items.add(new File(['The dropped note says: bring the blue umbrella.'],"
        " 'dropped-note.txt', {type: 'text/plain'})); return dt; }"
    )
    form.dispatch_event("dragenter", {"dataTransfer": data})
    expect(page.get_by_test_id("drop-zone")).to_be_visible()
    with page.expect_response(
        lambda r: r.url.endswith("/api/files") and r.request.method == "POST"
    ) as upload:
        form.dispatch_event("drop", {"dataTransfer": data})
    assert upload.value.status in (200, 201, 202), upload.value.text()
    expect(page.get_by_test_id("drop-zone")).to_have_count(0)
    chip = page.get_by_test_id("attachment").filter(has_text="dropped-note.txt")
    expect(chip).to_be_visible()
    expect(chip).not_to_have_attribute("data-status", re.compile("uploading|failed"))
    # Stored on the server for this (new) conversation.
    expect(page).to_have_url(re.compile(r"/c/[0-9a-f]+$"))
    listed = page.request.get(f"/api/files?conversation_id={conversation_id(page)}").json()
    assert [f["filename"] for f in listed["items"]] == ["dropped-note.txt"], listed


RICH = (
    "| planet | moons |\n|---|---|\n| Mars | 2 |\n| Earth | 1 |\n\n"
    "```python\nimport math\nprint(math.pi)\n```\n\n"
    "Inline $a^2 + b^2 = c^2$ and a display formula:\n\n"
    "$$\\int_0^1 x\\,dx = \\frac{1}{2}$$\n\nIt costs $5 and $10 today."
)


def test_markdown_table_highlighted_code_and_math_render_live_and_in_history(
    page: Page, user: Account, upstream: Upstream
) -> None:
    """GFM tables, highlighted code and KaTeX in a real browser under the app's CSP
    (the page fixture fails on CSP violations or requests leaving 127.0.0.1)."""
    upstream.script({"text": RICH, "rate": 30})
    page.goto("/")
    for phase in ("streamed", "history"):
        if phase == "streamed":
            reply = chat(page, "Show me rich formatting")
        else:
            page.reload()
            reply = last_assistant(page)
        body = content(reply)
        table = body.locator("table")
        expect(table).to_have_count(1)
        expect(table.locator("th")).to_have_text(["planet", "moons"])
        expect(table.locator("tbody tr")).to_have_count(2)
        code = body.locator("pre code.language-python")
        expect(code).to_contain_text("print(math.pi)")
        expect(code.locator("span[class^='hljs-']").first).to_be_attached()  # highlighted
        expect(body.locator(".katex")).to_have_count(2)
        expect(body.locator(".katex-display")).to_have_count(1)
        # KaTeX's own styles and fonts are bundled and applied (the TeX source stays
        # only in the hidden MathML annotation).
        expect(body.locator(".katex-display .katex-html")).to_be_visible()
        font = body.locator(".katex").first.evaluate("e => getComputedStyle(e).fontFamily")
        assert "KaTeX_Main" in font, font
        expect(body).to_contain_text("It costs $5 and $10 today.")  # currency is not math
