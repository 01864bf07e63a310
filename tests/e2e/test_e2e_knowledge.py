"""Files and knowledge in the browser: attach a PDF and a spreadsheet with the paper
clip, watch them get indexed, ask about each, and open the answer's citations.

The documents are made here (fpdf2, openpyxl). The PDF is larger than the context
budget, so it is *retrieved* from (its passages carry pages); the spreadsheet is
small, so it goes to the model *whole*. The scripted upstream answers with fixed
citation numbers: the test then checks that those numbers point at the right file
and page, that the prompt really carried that passage, and that the viewer opens it.
"""

from __future__ import annotations

import io
import re

import pytest
from e2ehelpers import Upstream, chat, content, messages
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e

INGEST_TIMEOUT_MS = 120_000  # the first file also loads the embedding model
FACT = (
    "The emergency shutoff valve of the Harbor Lighthouse sits behind the blue door "
    "in room 4B, and the valve key hangs on hook number seven."
)
TOPICS = [
    "the history of the coastal railway and its timber bridges",
    "the quarterly budget of the municipal library and its reading rooms",
    "the migration of grey herons across the northern marshes",
    FACT,
    "the recipe archive of the old bakery on Mill Street",
    "the pruning calendar for the apple orchard on the hill",
]
FILLER = (
    "Records describe {topic}. Volunteers kept notes every season, compared them with "
    "earlier years, and wrote short summaries for the town newsletter. "
)


def _pdf() -> bytes:
    """Six text pages, ~1,800 characters each; page 4 holds the fact."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_auto_page_break(auto=False)
    for number, topic in enumerate(TOPICS, start=1):
        pdf.add_page()
        pdf.set_font("Helvetica", size=10)
        pdf.set_xy(15, 15)
        if topic == FACT:
            body = FACT + " " + FILLER.format(topic="the lighthouse maintenance log") * 8
        else:
            body = FILLER.format(topic=topic) * 9
        pdf.multi_cell(180, 5, f"Section {number}. {body}")
    return bytes(pdf.output())


def _xlsx() -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Sales"
    rows = [
        ["region", "month", "units"],
        ["North", "March", 4210],
        ["West", "March", 9120],
        ["South", "March", 3075],
        ["East", "March", 5560],
    ]
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _attach(page: Page, files: list[dict[str, object]]) -> None:
    """Through the paper clip button's file chooser, like a user."""
    page.get_by_test_id("attach").click()  # the paper clip: upload or knowledge
    with page.expect_file_chooser() as chooser:
        page.get_by_test_id("attach-upload").click()
    chooser.value.set_files(files)  # type: ignore[arg-type]


def _sources(page: Page) -> list[dict[str, object]]:
    conversation = re.search(r"/c/([0-9a-f]+)", page.url)
    assert conversation, page.url
    data = page.request.get(f"/api/conversations/{conversation.group(1)}").json()
    return list(data["messages"][-1]["sources"] or [])


def test_upload_pdf_and_spreadsheet_then_open_cited_passages(
    page: Page, user, upstream: Upstream
) -> None:
    page.goto("/")
    expect(page.get_by_test_id("composer")).to_be_enabled()
    _attach(
        page,
        [
            {"name": "lighthouse.pdf", "mimeType": "application/pdf", "buffer": _pdf()},
            {
                "name": "sales.xlsx",
                "mimeType": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                "buffer": _xlsx(),
            },
        ],
    )
    chips = page.get_by_test_id("attachment")
    expect(chips).to_have_count(2)
    expect(chips.filter(has_text="lighthouse.pdf")).to_be_visible()
    expect(chips.filter(has_text="sales.xlsx")).to_be_visible()
    # Background ingestion reaches "ready" for both, shown on the chips.
    expect(page.locator("[data-testid=attachment][data-status=ready]")).to_have_count(
        2, timeout=INGEST_TIMEOUT_MS
    )

    # --- a question about the PDF: retrieved passages, [1] is the spreadsheet (whole)
    upstream.script({"text": "It is behind the blue door in room 4B [2]."})
    reply = chat(page, "Where is the emergency shutoff valve of the Harbor Lighthouse?")
    expect(reply).to_have_attribute("data-status", "complete")
    expect(content(reply)).to_contain_text("room 4B")
    # The question shows the files it came with.
    question = messages(page, "user").last
    expect(question.get_by_test_id("message-files")).to_contain_text("lighthouse.pdf")
    expect(question.get_by_test_id("message-files")).to_contain_text("sales.xlsx")

    sources = {s["ref"]: s for s in _sources(page) if s.get("kind") == "file"}
    assert sources[1]["filename"] == "sales.xlsx" and sources[1]["mode"] == "whole"
    cited = sources[2]
    assert cited["filename"] == "lighthouse.pdf", sources
    assert cited["mode"] == "retrieved" and cited["page"] == 4, cited
    # The model was given that passage, numbered as cited.
    prompt = str(upstream.chat_requests()[-1]["json"]["messages"])
    assert "[2] lighthouse.pdf — page 4" in prompt and "room 4B" in prompt
    assert "West" in prompt and "9120" in prompt  # the spreadsheet, whole

    # The answer lists the cited file passage, and [2] in the text is a button.
    expect(reply.get_by_test_id("file-source").filter(has_text="[2]")).to_contain_text(
        "lighthouse.pdf"
    )
    cite = reply.locator("button.cite[data-ref='2']")
    expect(cite).to_have_attribute("title", "lighthouse.pdf, page 4")
    cite.click()
    viewer = page.get_by_test_id("citation-viewer")
    expect(viewer).to_be_visible()
    expect(viewer).to_contain_text("Page 4 of 6")
    expect(viewer.get_by_test_id("citation-text")).to_contain_text("behind the blue door")
    expect(viewer.get_by_test_id("citation-text")).to_contain_text("Section 4.")
    viewer.get_by_role("button", name="Close").click()
    expect(viewer).to_be_hidden()

    # --- a question about the spreadsheet: cited whole, opened from the source list
    upstream.script({"text": "West sold the most units in March: 9120 [1]."})
    reply = chat(page, "Which region sold the most units in March?")
    expect(content(reply)).to_contain_text("9120")
    sources = {s["ref"]: s for s in _sources(page) if s.get("kind") == "file"}
    assert sources[1]["filename"] == "sales.xlsx" and sources[1]["mode"] == "whole"
    entry = reply.get_by_test_id("file-source").filter(has_text="[1]")
    expect(entry).to_contain_text("sales.xlsx")
    expect(reply.get_by_test_id("file-sources")).to_contain_text("whole document")
    entry.click()
    expect(viewer).to_be_visible()
    text = viewer.get_by_test_id("citation-text")
    expect(text).to_contain_text("West")
    expect(text).to_contain_text("9120")
    expect(viewer).to_contain_text("whole document")
    page.keyboard.press("Escape")
    expect(viewer).to_be_hidden()
