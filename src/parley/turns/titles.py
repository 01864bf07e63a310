"""Automatic conversation titles.

Two steps, so the answer never waits for a title:

1. When the first answer is stored, the title is the first line of the question,
   cleaned of Markdown (``heuristic_title``: no model call, so there is a title
   even when the model fails or is the tiny starter).
2. Then, in the background, a model (``title_model``, default the chat's own)
   is asked for a short summary title (``model_title``). Its answer is kept only
   when it is plausible (``clean_model_title``: one line, at most 60 characters,
   no quotes or Markdown, not an echo of the prompt); otherwise the first line
   stays. The user can rename either.
"""

from __future__ import annotations

import asyncio
import logging
import re

from parley.messages import Message, TextDelta
from parley.providers.base import ChatModel, ChatRequest

log = logging.getLogger(__name__)

MAX_WORDS = 8
MAX_CHARS = 60
TITLE_TIMEOUT_S = 20.0
# What the model reads: the start of the question and of the answer is enough.
EXCERPT_CHARS = 1500

TITLE_PROMPT = (
    "Write a short title (3 to 6 words) for the conversation below. Answer with the "
    "title only: no quotes, no Markdown, no trailing period."
)

_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_LINE_MARKER = re.compile(r"^\s*(?:#{1,6}|>|[-+*]|\d+[.)])\s+")
_EMPHASIS = re.compile(r"\*\*|__|`+")
_ITALIC = re.compile(r"(?<![\w*])\*(\S(?:[^*]*\S)?)\*(?![\w*])")
_QUOTES = "\"'`“”‘’«»"


def _cut(text: str) -> str:
    words = text.split(" ")[:MAX_WORDS]
    title = " ".join(words)
    if len(title) > MAX_CHARS:
        title = title[:MAX_CHARS].rsplit(" ", 1)[0] or title[:MAX_CHARS]
    return title


def _plain(line: str) -> str:
    """One line without Markdown markup; a lone ``*`` (as in ``2*3``) is kept."""
    line = _LINK.sub(r"\1", line)
    line = _LINE_MARKER.sub("", line)
    line = _EMPHASIS.sub("", line)
    line = _ITALIC.sub(r"\1", line)
    return re.sub(r"\s+", " ", line).strip(" .:-")


def heuristic_title(text: str) -> str:
    """First line of the message, markup stripped, cut at a word boundary."""
    line = next((ln for ln in text.splitlines() if ln.strip()), "").strip()
    line = _plain(line)
    if not line:
        return "New chat"
    title = _cut(line)
    return title[0].upper() + title[1:]


def clean_model_title(raw: str) -> str | None:
    """A model's answer made a title, or None when it does not look like one."""
    lines = [ln.strip() for ln in raw.strip().splitlines() if ln.strip()]
    if len(lines) != 1:
        return None
    # "Title: X", "Sure! Here is a title for you: X" -> "X"
    line = re.sub(r"^[^:]*\btitle\b[^:]*:\s*", "", lines[0], flags=re.I)
    line = _plain(line).strip(_QUOTES).strip(" .:-")
    line = re.sub(r"[<>{}\[\]|#]", "", line).strip()
    words = line.split(" ")
    if not line or len(line) > MAX_CHARS or len(words) > 12:
        return None
    if not any(ch.isalnum() for ch in line):
        return None
    if line.lower().startswith(("write a short title", "answer with the title")):
        return None  # the prompt echoed back (a small model does this)
    return line[0].upper() + line[1:]


async def model_title(model: ChatModel, question: str, answer: str) -> str | None:
    """Ask ``model`` for a title of the exchange; None when it fails, is slow or
    answers junk (the caller keeps the first-line title then)."""
    excerpt = (
        f"User: {question[:EXCERPT_CHARS].strip()}\n\nAssistant: {answer[:EXCERPT_CHARS].strip()}"
    )
    request = ChatRequest(
        messages=[Message("system", TITLE_PROMPT), Message("user", excerpt)],
        temperature=0.2,
        max_tokens=24,
    )

    async def collect() -> str:
        parts: list[str] = []
        async for event in model.stream(request):
            if isinstance(event, TextDelta):
                parts.append(event.text)
        return "".join(parts)

    try:
        raw = await asyncio.wait_for(collect(), TITLE_TIMEOUT_S)
    except Exception as exc:  # any provider failure: the first-line title stays
        log.info("no model title (%s): %s", type(exc).__name__, exc)
        return None
    return clean_model_title(raw)
