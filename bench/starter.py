"""starter: time to first token of the embedded starter model with a 3-page PDF attached.

What a newcomer does on a fresh install: sign up, attach a short PDF to a new
chat, ask about it, then ask a follow-up. Parley (``bench/_server.py``, the
local model on, nothing else configured, llama.cpp's thread default) answers on
the web app's route ``POST /api/conversations/{id}/messages``; TTFT = request
sent -> first ``text`` event. Each round is a new conversation: upload the PDF
(waited until indexed, not timed), ask question 1, then a follow-up
(question 2) right after the first answer's ``done``, like a user who reads
fast: whatever work Parley queues on the model after an answer (a title,
memory extraction) is in the follow-up's wait. A third chat has every tool
ticked in its Tools menu before question 1 (the case where a model without
native tools used to get a JSON tool-decision pass first).

The baseline is ``bench/_llama_direct.py`` in its own process: the same GGUF
with the same ``n_ctx`` and threads, asked the same question with the PDF's
whole text in the system message (what the model itself must read), a fresh
prompt each time (no prompt cache hit). Runs alternate Parley / direct.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import Table, fmt, median, pct, start_parley, temp_dir
from bench.local import N_CTX, Direct

QUESTIONS = [
    ("What does the report say about the delivery schedule?", "Who approved the budget?"),
    ("Summarize the second page.", "What risks are listed?"),
    ("What is the total cost mentioned?", "When is the next review?"),
    ("Which teams are involved?", "What did the pilot show?"),
    ("What is the main recommendation?", "Who wrote the report?"),
    ("What happened in March?", "What is planned for next year?"),
]
TARGET_S = 3.0

_PARAGRAPHS = [
    "The northern warehouse project moved from planning to construction in March. "
    "The delivery schedule slipped by two weeks because the steel supplier changed "
    "its shipping dates, but the concrete work finished early and absorbed most of the delay.",
    "The budget of 4.2 million euros was approved by the regional board on 12 February. "
    "It covers the building, the loading docks, a solar roof and the first year of "
    "maintenance. Contingency is held at eight percent of the total cost.",
    "Three teams are involved: logistics, facilities and the software group that runs "
    "the inventory system. Each team reports weekly to the steering committee, which "
    "meets on Thursdays and keeps minutes in the shared drive.",
    "The pilot in the southern depot showed that automated picking reduced errors by a "
    "third and cut the average order time from eleven to seven minutes. Staff asked for "
    "better training material and quieter conveyor belts.",
    "Risks listed by the committee: supplier delays, a shortage of certified electricians, "
    "winter weather during the roof work, and the integration of the old inventory "
    "database, which still runs on a server from 2009.",
    "The main recommendation is to start the software migration before the building is "
    "finished, so that the new system can be tested with real orders in the southern "
    "depot first. The next review is planned for the end of September.",
]


def pdf_pages() -> list[str]:
    """Three pages of plain report text (about 600-900 prompt tokens in all)."""
    pages = []
    for n in range(3):
        body = " ".join(_PARAGRAPHS[(n * 2 + i) % len(_PARAGRAPHS)] for i in range(4))
        pages.append(f"Warehouse report, page {n + 1}.\n\n{body}")
    return pages


def make_pdf(path: Path) -> str:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_auto_page_break(auto=False)
    pages = pdf_pages()
    for text in pages:
        pdf.add_page()
        pdf.set_font("Helvetica", size=10)
        pdf.set_xy(15, 15)
        pdf.multi_cell(180, 5, text)
    pdf.output(str(path))
    return "\n\n".join(pages)


class Browser:
    """A signed-in web-app session (cookies + CSRF header)."""

    def __init__(self, url: str) -> None:
        self.client = httpx.Client(base_url=url, timeout=300, trust_env=False)
        body = {"email": "starter@example.com", "password": "bench-password-123", "name": "b"}
        self.client.post("/api/auth/signup", json=body).raise_for_status()
        self.headers = {"X-CSRF-Token": self.client.cookies.get("parley_csrf") or ""}

    def new_chat_with(self, pdf: Path) -> str:
        r = self.client.post("/api/conversations", json={}, headers=self.headers)
        r.raise_for_status()
        conv = str(r.json()["id"])
        with pdf.open("rb") as fh:
            files = {"file": (pdf.name, fh, "application/pdf")}
            r = self.client.post(
                "/api/files", files=files, data={"conversation_id": conv}, headers=self.headers
            )
        r.raise_for_status()
        file_id = r.json()["id"]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            status = self.client.get(f"/api/files/{file_id}").json()["status"]
            if status in ("ready", "failed"):
                break
            time.sleep(0.1)
        return conv

    def tick_all_tools(self, conv: str) -> None:
        """What a user does in the Tools menu: every tool on for this chat."""
        names = [t["name"] for t in self.client.get("/api/tools").json()["items"]]
        r = self.client.patch(
            f"/api/conversations/{conv}", json={"tools": names}, headers=self.headers
        )
        r.raise_for_status()

    def ask(self, conv: str, text: str) -> dict[str, Any]:
        start = time.perf_counter()
        first: float | None = None
        event = ""
        done: dict[str, Any] = {}
        chunks: list[str] = []
        with self.client.stream(
            "POST",
            f"/api/conversations/{conv}/messages",
            json={"content": text},
            headers=self.headers,
        ) as r:
            r.raise_for_status()
            for line in r.iter_lines():
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    data = json.loads(line[6:])
                    if event == "text" and data.get("text"):
                        first = first or time.perf_counter()
                        chunks.append(data["text"])
                    elif event == "done":
                        done = data
        message = done.get("message") or {}
        return {
            "ttft": (first - start) if first else None,
            "total": time.perf_counter() - start,
            "input_tokens": message.get("input_tokens"),
            "text": "".join(chunks)[:200],
        }

    def close(self) -> None:
        self.client.close()


def run(quick: bool = False) -> Table:
    from bench.local import threads
    from parley.providers.local import bundled_model_path

    rounds = 3 if quick else 6
    table = Table("starter", "starter: first token with a 3-page PDF attached", "direct")
    path = bundled_model_path()
    if path is None:
        table.add("bundled GGUF", "missing", "-", "installed", False)
        return table
    work = temp_dir("starter")
    pdf = work / "report.pdf"
    text = make_pdf(pdf)
    parley = direct = browser = None
    first: list[dict[str, Any]] = []
    follow: list[dict[str, Any]] = []
    ticked: list[dict[str, Any]] = []
    base: list[dict[str, Any]] = []
    try:
        parley = start_parley(work, env={"PARLEY_LOCAL_MODEL_ENABLED": "true"})
        browser = Browser(parley.url)
        direct = Direct(str(path), work)
        system = "You are a helpful assistant. The user's file follows; answer from it.\n\n" + text
        for i in range(rounds):
            q1, q2 = QUESTIONS[i % len(QUESTIONS)]
            order = ("parley", "direct") if i % 2 == 0 else ("direct", "parley")
            for name in order:
                if name == "parley":
                    conv = browser.new_chat_with(pdf)
                    first.append(browser.ask(conv, q1))
                    follow.append(browser.ask(conv, q2))
                    conv = browser.new_chat_with(pdf)
                    browser.tick_all_tools(conv)
                    ticked.append(browser.ask(conv, q1))
                else:
                    job = {
                        "messages": [
                            {"role": "system", "content": f"[{i}] {system}"},
                            {"role": "user", "content": q1},
                        ],
                        "max_tokens": 64,
                        "temperature": 0.0,
                        "repeat_penalty": 1.1,
                    }
                    assert direct.proc.stdin is not None and direct.proc.stdout is not None
                    direct.proc.stdin.write(json.dumps(job) + "\n")
                    direct.proc.stdin.flush()
                    base.append(json.loads(direct.proc.stdout.readline()))
    finally:
        if browser is not None:
            browser.close()
        if direct is not None:
            direct.stop()
        if parley is not None:
            parley.stop()

    def ttfts(runs: list[dict[str, Any]]) -> list[float]:
        return [r["ttft"] for r in runs if r["ttft"] is not None]

    t1, t2, tb = ttfts(first), ttfts(follow), ttfts(base)
    p50_1, p50_2 = median(t1), median(t2)
    table.add(
        "TTFT, first question (p50)",
        fmt(p50_1, "s", 2),
        fmt(median(tb), "s", 2),
        f"<= {TARGET_S:.0f} s",
        p50_1 <= TARGET_S,
    )
    table.add(
        "TTFT, first question (max)",
        fmt(max(t1, default=float("nan")), "s", 2),
        fmt(max(tb, default=float("nan")), "s", 2),
    )
    table.add(
        "TTFT, follow-up right after (p50)",
        fmt(p50_2, "s", 2),
        "-",
        f"<= {TARGET_S:.0f} s",
        p50_2 <= TARGET_S,
    )
    table.add("TTFT, follow-up (max)", fmt(max(t2, default=float("nan")), "s", 2))
    t3 = ttfts(ticked)
    p50_3 = median(t3)
    table.add(
        "TTFT, first question, every tool ticked (p50)",
        fmt(p50_3, "s", 2),
        "-",
        f"<= {TARGET_S:.0f} s",
        p50_3 <= TARGET_S,
    )
    table.add(
        "whole answer, first question (p50)",
        fmt(median([r["total"] for r in first]), "s", 2),
        fmt(median([r["total"] for r in base]), "s", 2),
    )
    tokens = [r["input_tokens"] for r in first if r["input_tokens"]]
    table.add("prompt tokens, first question (p50)", fmt(median(tokens), "", 0))
    table.add("TTFT p90 (all questions)", fmt(pct(t1 + t2 + t3, 90), "s", 2))
    table.notes.append(
        f"{rounds} rounds; n_ctx {N_CTX}, threads {threads()} (llama-cpp-python's default); "
        "direct = the PDF's whole text as the system message, max_tokens 64"
    )
    table.raw.update(first=first, follow=follow, ticked=ticked, direct=base)
    return table
