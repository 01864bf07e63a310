"""Automatic conversation titles.

A title is made from the first user message at once (no extra model call, so
it works with the small local model and costs nothing); the user can rename.
"""

from __future__ import annotations

import re

MAX_WORDS = 8
MAX_CHARS = 60


def heuristic_title(text: str) -> str:
    """First line of the message, markup stripped, cut at a word boundary."""
    line = next((ln for ln in text.splitlines() if ln.strip()), "").strip()
    line = re.sub(r"[`*_#>\[\]()<>]+", "", line)
    line = re.sub(r"\s+", " ", line).strip(" .:-")
    if not line:
        return "New chat"
    words = line.split(" ")[:MAX_WORDS]
    title = " ".join(words)
    if len(title) > MAX_CHARS:
        title = title[:MAX_CHARS].rsplit(" ", 1)[0] or title[:MAX_CHARS]
    return title[0].upper() + title[1:]
