"""Structure-aware chunking: segments in, passages with citation metadata out.

Rules, in order:

- A heading closes the current passage and opens a section; the section path
  ("Guide > Install > Linux") is kept on every passage under it, and the heading
  text starts the passage so it is searchable and readable on its own.
- A page boundary closes the passage: a citation names exactly one page.
- A table that fits (``max_chars``, twice the target) stays whole in one passage;
  a longer one is split between rows, repeating the header row in every part.
- Text fills passages up to ``target`` characters, split at paragraph, line,
  sentence, then word boundaries.

Offsets (``char_start``/``char_end``) index the document's extracted text: every
segment joined with a blank line, in order. Passages do not overlap, so the
whole document is their concatenation (which is how a small file goes whole).
The chunker is incremental (``feed``/``finish``), so memory stays bounded.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from parley.engine.tokens import estimate_tokens
from parley.knowledge.parsers import Segment

__all__ = ["Chunk", "Chunker", "chunk_segments"]

SEPARATOR = "\n\n"
_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+")


@dataclass(slots=True)
class Chunk:
    text: str
    page: int | None
    section: str | None
    char_start: int
    char_end: int

    @property
    def tokens(self) -> int:
        return estimate_tokens(self.text)


def _split_long(text: str, limit: int) -> list[tuple[int, int]]:
    """(start, end) spans of ``text`` no longer than ``limit``, cut at natural boundaries."""
    spans: list[tuple[int, int]] = []
    start = 0
    n = len(text)
    while n - start > limit:
        window = text[start : start + limit]
        cut = -1
        for pattern in ("\n\n", "\n"):
            cut = window.rfind(pattern)
            if cut > limit // 3:
                cut += len(pattern)
                break
            cut = -1
        if cut < 0:
            ends = [m.end() for m in _SENTENCE_END.finditer(window) if m.end() > limit // 3]
            cut = ends[-1] if ends else -1
        if cut < 0:
            space = window.rfind(" ")
            cut = space + 1 if space > limit // 3 else limit
        spans.append((start, start + cut))
        start += cut
    if start < n:
        spans.append((start, n))
    return spans


class Chunker:
    def __init__(self, target: int = 1000, max_chars: int | None = None) -> None:
        self.target = max(200, target)
        self.max_chars = max_chars or self.target * 2
        self.pos = 0  # offset of the next segment in the extracted text
        self.first = True
        self.sections: list[tuple[int, str]] = []
        self.parts: list[str] = []
        self.start = 0
        self.end = 0
        self.page: int | None = None
        self.only_headings = True

    @property
    def section(self) -> str | None:
        return " > ".join(title for _, title in self.sections) or None

    def _place(self, text: str) -> int:
        """Reserve ``text``'s span in the extracted text; returns its start."""
        if not self.first:
            self.pos += len(SEPARATOR)
        self.first = False
        start = self.pos
        self.pos += len(text)
        return start

    def _flush(self) -> list[Chunk]:
        if not self.parts:
            return []
        text = SEPARATOR.join(self.parts)
        chunk = Chunk(text, self.page, self.section, self.start, self.end)
        self.parts = []
        self.only_headings = True
        return [chunk]

    def _add(self, text: str, start: int, end: int, *, heading: bool = False) -> None:
        if not self.parts:
            self.start = start
        self.parts.append(text)
        self.end = end
        if not heading:
            self.only_headings = False

    def _size_with(self, text: str) -> int:
        current = sum(len(p) for p in self.parts) + len(SEPARATOR) * len(self.parts)
        return current + len(text)

    def feed(self, segment: Segment) -> list[Chunk]:
        out: list[Chunk] = []
        text = segment.text.strip("\n") if segment.kind == "code" else segment.text.strip()
        if segment.page != self.page:
            out += self._flush()
            self.page = segment.page
        if not text:
            return out
        start = self._place(text)
        end = start + len(text)
        if segment.kind == "heading":
            if not self.only_headings:
                out += self._flush()
            level = max(1, segment.level)
            while self.sections and self.sections[-1][0] >= level:
                self.sections.pop()
            self.sections.append((level, " ".join(text.split())[:200]))
            self._add(text, start, end, heading=True)
            return out
        if segment.kind == "table":
            if len(text) <= self.max_chars:
                if self.parts and self._size_with(text) > self.max_chars:
                    out += self._flush()
                self._add(text, start, end)
                if self._size_with("") >= self.target:
                    out += self._flush()
                return out
            out += self._flush()
            out += self._split_table(text, start, segment.header)
            return out
        if self.parts and self._size_with(text) > self.target:
            out += self._flush()
        if len(text) <= self.target:
            self._add(text, start, end)
            return out
        for a, b in _split_long(text, self.target):
            piece = text[a:b].strip()
            if not piece:
                continue
            if self.parts and self._size_with(piece) > self.target:
                out += self._flush()
            self._add(piece, start + a, start + b)
        return out

    def _split_table(self, text: str, start: int, header: str | None) -> list[Chunk]:
        lines = text.split("\n")
        head_lines = header.split("\n") if header else lines[:1]
        head = "\n".join(head_lines)
        body_from = len(head_lines) if lines[: len(head_lines)] == head_lines else 0
        out: list[Chunk] = []
        offset = sum(len(line) + 1 for line in lines[:body_from])
        group: list[str] = []
        group_start = start + offset
        size = len(head)
        for line in lines[body_from:]:
            if group and size + len(line) + 1 > self.target:
                body = "\n".join(group)
                out.append(
                    Chunk(
                        f"{head}\n{body}",
                        self.page,
                        self.section,
                        group_start,
                        group_start + len(body),
                    )
                )
                group_start += len(body) + 1
                group, size = [], len(head)
            group.append(line[: self.max_chars])
            size += len(line) + 1
        if group:
            body = "\n".join(group)
            out.append(
                Chunk(
                    f"{head}\n{body}", self.page, self.section, group_start, group_start + len(body)
                )
            )
        return out

    def finish(self) -> list[Chunk]:
        return self._flush()


def chunk_segments(segments: Iterable[Segment], target: int = 1000) -> Iterator[Chunk]:
    chunker = Chunker(target)
    for segment in segments:
        yield from chunker.feed(segment)
    yield from chunker.finish()
