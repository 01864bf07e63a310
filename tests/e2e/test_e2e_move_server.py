"""Moving to another Parley (issue 12 item 9): a user exports everything, with files,
from one server and imports it into a fresh one they have just set up.

Journey: on the shared server, sign up, attach a file and ask about it, then say
"Remember that I keep bees" (saved by the memory feature, no extraction call) ->
Settings → Account → Export with files -> start a second, empty ``parley serve``
with its own data directory (on SQLite, or on an empty PostgreSQL database) -> sign
up there (the first account) -> Settings → Account → Import the ZIP -> the chat is
listed with its four messages, the file under the question downloads with the same
bytes, and Settings → Memory lists the memory, whose link opens the imported chat;
all of it still there after a reload.

Screenshots (``test-output/screenshots/move-*.png``): the chat before export, the
import result on the new server, the imported chat and the memory page there
(``-sqlite`` / ``-postgres``: the new server's database).
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2ehelpers import (
    PageLog,
    Upstream,
    chat,
    content,
    messages,
    new_context,
    running_parley,
    shot,
    ui_signup,
    unique_email,
    upstream_env,
    watch,
)
from playwright.sync_api import Browser, Page, expect

pytestmark = pytest.mark.e2e

QUESTION = "Which hive should I inspect first?"
REPLY = "Start with the hive by the hedge: it swarmed last spring."
REMEMBER = "Remember that I keep bees"
NOTED = "Noted: you keep bees."
HIVES = b"# Hives\n\n1. By the hedge (swarmed in May)\n2. Under the apple tree\n"
INGEST_TIMEOUT_MS = 120_000  # the first file may also load the embedding model


@pytest.fixture
def fresh_server(
    upstream: Upstream, backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[str]:
    """A second Parley with nothing in it: its own data directory (and, for the
    ``postgres`` backend, an empty PostgreSQL database), the same upstream. The old
    server is the shared one on SQLite, so ``[postgres]`` moves across backends."""
    env = upstream_env(upstream)
    if backend == "postgres":
        env["PARLEY_DATABASE_URL"] = request.getfixturevalue("empty_database_url")
    with running_parley("parley-fresh", tmp_path / "fresh-data", env, tmp_path) as base:
        yield base


def test_export_with_files_then_import_into_a_fresh_server(
    page: Page,
    browser: Browser,
    server: str,
    upstream: Upstream,
    admin: object,  # the shared server's first account exists: this user is ordinary
    fresh_server: str,
    backend: str,  # the new server's database
    tmp_path: Path,
) -> None:
    # ---- the old server: a chat with a file, and a memory saved in it
    ui_signup(page, "Bea Keeper", unique_email("bees"))
    upstream.script({"text": REPLY}, {"text": NOTED})
    expect(page.get_by_test_id("model-picker")).to_contain_text("scripted")  # page settled
    page.get_by_test_id("attach").click()
    expect(page.get_by_test_id("attach-menu")).to_be_visible()
    with page.expect_file_chooser() as chooser:
        page.get_by_test_id("attach-upload").click()
    chooser.value.set_files([{"name": "hives.md", "mimeType": "text/markdown", "buffer": HIVES}])
    expect(page.get_by_test_id("attachment")).to_have_attribute(
        "data-status", "ready", timeout=INGEST_TIMEOUT_MS
    )
    expect(content(chat(page, QUESTION))).to_contain_text(REPLY)
    told = chat(page, REMEMBER)
    expect(told.get_by_test_id("memory-updated")).to_contain_text("keep bees")
    shot(page, "move-01-old-server-chat")
    title = page.request.get("/api/conversations").json()["items"][0]["title"]
    assert title

    page.goto("/settings/account")
    with page.expect_download() as info:
        page.get_by_test_id("export-files").click()
    archive = tmp_path / info.value.suggested_filename
    info.value.save_as(archive)
    with zipfile.ZipFile(archive) as z:
        names = z.namelist()
    assert "parley-export.json" in names and any(n.startswith("files/") for n in names), names

    # ---- the new server: empty, its first account made here
    log = PageLog()
    ctx = new_context(browser, fresh_server)
    try:
        new = ctx.new_page()
        watch(new, log)
        ui_signup(new, "Bea Keeper", unique_email("bees-new"))
        expect(new.get_by_test_id("sidebar-item")).to_have_count(0)
        new.goto("/settings/account")
        with new.expect_file_chooser() as chooser:
            new.get_by_test_id("import-data").click()
        chooser.value.set_files(archive)
        result = new.get_by_test_id("import-result")
        expect(result).to_contain_text("Import complete", timeout=60_000)
        expect(result).to_contain_text("1 conversation (4 messages)")
        expect(result).to_contain_text("1 file")
        expect(result).to_contain_text("1 memory")
        result.scroll_into_view_if_needed()
        shot(new, f"move-02-import-result-{backend}")

        # The chat, after a reload (it is stored, not just shown)
        new.reload()
        item = new.get_by_test_id("sidebar-item")
        expect(item).to_have_count(1)
        expect(item).to_contain_text(title)
        item.get_by_role("link").first.click()
        expect(new).to_have_url(re.compile(r"/c/[0-9a-f]+$"))
        expect(messages(new, "user")).to_have_count(2)
        expect(content(messages(new, "user").first)).to_contain_text(QUESTION)
        expect(content(messages(new, "assistant").first)).to_contain_text(REPLY)
        expect(content(messages(new, "user").last)).to_contain_text(REMEMBER)
        expect(content(messages(new, "assistant").last)).to_contain_text(NOTED)

        # The file, under the question it came with: downloads with the same bytes
        link = (
            messages(new, "user")
            .first.get_by_test_id("message-files")
            .get_by_role("link", name="hives.md")
        )
        expect(link).to_be_visible()
        shot(new, f"move-03-imported-chat-{backend}")
        with new.expect_download() as info:
            link.click()
        copy = tmp_path / "downloaded-hives.md"
        info.value.save_as(copy)
        assert copy.read_bytes() == HIVES

        # The memory, on Settings → Memory
        new.goto("/settings/memory")
        memory = new.get_by_test_id("memory-item").filter(has_text="keep bees")
        expect(memory).to_have_count(1)
        shot(new, f"move-04-memory-page-{backend}")
        # its "from this chat" link leads to the imported chat on this server
        memory.get_by_test_id("memory-source-link").click()
        expect(new).to_have_url(re.compile(r"/c/[0-9a-f]+"))
        expect(content(messages(new, "user").last)).to_contain_text(REMEMBER)
    finally:
        ctx.close()
    assert not log.problems(), log.problems()
