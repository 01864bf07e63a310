"""Ranking levers on top of the two candidate lists: query variants and a cheap reranker.

Measured with ``bench/knowledge_recall.py`` (dev split; the held-out split only
scored): each lever is a ``Retriever`` option, and the ablation table shows what
each adds to hybrid search. What they do and why:

- **Query variants** (``content_query``): questions carry scaffolding ("which",
  "what is the", "how many", "by default") that a bi-encoder like MiniLM folds into
  the query vector. The dense side embeds the question *and* its content words and
  searches with their normalised mean; both are one batch, so the extra cost is a
  few tokens of the same forward pass.
- **Heading reranker** (``HeadingReranker``): a passage's own title line and
  section path are where a manual names what the passage is about ("Parameter
  defaults in bz2", "shutil.rmtree"). Candidates whose title or section shares the
  question's content words (compared by a crude stem, so "defaults" meets
  "default") move up, as do passages holding an identifier the question spells out
  verbatim ("gzip.open", ".svg"). Pure Python over the fused candidates: well under
  a millisecond for 50 of them. This is BM25's field weighting done after fusion,
  where it cannot be drowned by a long body.

No learned reranker ships: no cross-encoder weights are available from a package
registry (see docs/design/retrieval.md), and embedding each candidate's sentences at
query time with MiniLM costs hundreds of milliseconds per question.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from parley.knowledge.keyword import STOP_WORDS

if TYPE_CHECKING:
    from parley.knowledge.retrieval import Hit

__all__ = [
    "HeadingReranker",
    "content_query",
    "content_stems",
    "identifiers",
    "is_exact",
    "stem",
]

# Words that shape a question without saying what it is about (beyond STOP_WORDS).
SCAFFOLD = frozenset(
    """
    many much whether get gets give gives given find finds want wants need needs use
    used using way ways thing things something anything someone one ones kind also
    tell show let lets make makes like please python returned return returns value
    """.split()  # noqa: SIM905
)
_WORD = re.compile(r"[^\W_]+")
_IDENTIFIER = re.compile(
    r"(?<![\w.])(?:\.?[A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)+|\.[a-z0-9]{2,6}|\w+_\w+)"
)
_SUFFIXES = ("ations", "ation", "ings", "ing", "ies", "ied", "ers", "er", "es", "ed", "ly", "s")


def stem(word: str) -> str:
    """A crude English stem (lower case, common suffixes off, at most 6 characters): enough
    to meet "defaults"/"default" or "compression"/"compress" in titles, never stored."""
    word = word.casefold()
    for suffix in _SUFFIXES:
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            word = word[: -len(suffix)]
            break
    return word[:6]


def _content_words(query: str) -> list[str]:
    return [
        w
        for w in _WORD.findall(query)
        if w.casefold() not in STOP_WORDS and w.casefold() not in SCAFFOLD
    ]


def content_query(query: str) -> str | None:
    """The question without its scaffolding, or None when that changes nothing useful
    (nothing left, or nothing removed)."""
    words = _content_words(query)
    if not words or len(words) == len(_WORD.findall(query)):
        return None
    return " ".join(words)


def content_stems(query: str) -> set[str]:
    return {stem(w) for w in _content_words(query)}


def identifiers(query: str) -> list[str]:
    """Spelled-out names in the question: dotted (``gzip.open``), with underscores
    (``get_close_matches``), or a file extension (``.svg``)."""
    return [m.group(0) for m in _IDENTIFIER.finditer(query)]


def _title(hit: Hit) -> str:
    first = hit.text.lstrip().split("\n", 1)[0]
    return f"{hit.section or ''} {first[:200]}"


def _overlap(stems: set[str], text: str) -> float:
    if not stems:
        return 0.0
    found = {stem(w) for w in _WORD.findall(text)}
    return len(stems & found) / len(stems)


class HeadingReranker:
    """Reorders fused candidates by title/section overlap and verbatim identifiers.

    ``new score = fused score + top fused score * (title_weight * overlap +
    identifier_weight * share of the question's identifiers in the passage)``: a
    passage whose heading names every content word of the question gains what the
    best candidate has, so the lists' evidence still decides among the rest.
    """

    def __init__(self, title_weight: float = 0.5, identifier_weight: float = 0.5) -> None:
        self.title_weight = title_weight
        self.identifier_weight = identifier_weight

    async def rerank(self, query: str, hits: list[Hit]) -> list[Hit]:
        return rerank_by_headings(query, hits, self.title_weight, self.identifier_weight)


def rerank_by_headings(
    query: str, hits: list[Hit], title_weight: float, identifier_weight: float
) -> list[Hit]:
    if not hits:
        return hits
    stems = content_stems(query)
    names = identifiers(query)
    top = max(h.score for h in hits) or 1.0
    for hit in hits:
        bonus = title_weight * _overlap(stems, _title(hit))
        if names:
            bonus += identifier_weight * sum(n in hit.text for n in names) / len(names)
        hit.score += top * bonus
    return sorted(hits, key=lambda h: -h.score)


_DIGIT = re.compile(r"\d")


def is_exact(query: str) -> bool:
    """Does the question spell out something only a literal match finds: a name with a dot
    or underscore, a file extension, a number, or a quoted string?"""
    return bool(
        identifiers(query) or _DIGIT.search(query) or re.search(r"[\"'`][^\"'`]+[\"'`]", query)
    )
