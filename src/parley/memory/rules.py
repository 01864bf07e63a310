"""Whether a new fact merges into, replaces or may change a memory: the decisions alone.

Split from ``service.py`` so the rules its docstring states can be read (and
tuned against ``bench/``'s labelled sets) apart from the database, the locks
and the embedder: given the candidates with their word overlap and cosine,
these functions say which memory a fact duplicates (merge), states a new value
of (same attribute key: update), or may change (a proposal for the user), or
that it is new. Pure functions: no I/O.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt

from parley.memory.attributes import attribute_key
from parley.memory.index import WriteIndex
from parley.memory.tables import Memory
from parley.memory.text import content_words, jaccard, normalized, signals_change

__all__ = ["Action", "judge_named", "match", "similar"]

DUPLICATE_JACCARD = 0.8
DUPLICATE_COSINE = 0.9
CHANGE_JACCARD = 0.25
CHANGE_COSINE = 0.6
# Without attribute keys, an update the model names replaces the memory only when the
# two say nearly the same thing ("Lea starts school in September" / "... October").
SAME_FACT_JACCARD = 0.4
SAME_FACT_COSINE = 0.8

Action = Literal["added", "merged", "updated", "proposed"]


def _contained(a: set[str], b: set[str]) -> bool:
    """One fact's words all appear in the other's ("I live in Paris" / "I live in
    Paris with Sam"): the same fact, restated; the newest wording wins."""
    small, large = sorted((a, b), key=len)
    return len(small) >= 2 and small <= large


def _duplicate(row: Memory, text: str, overlap: float, cosine: float) -> bool:
    """Nearly the same words or meaning: the same fact, reworded."""
    return overlap >= DUPLICATE_JACCARD or cosine >= DUPLICATE_COSINE


def similar(
    index: WriteIndex,
    rows: list[Memory],
    text: str,
    vector: npt.NDArray[np.float32] | None,
    cosines: dict[str, float],
) -> list[tuple[Memory, float, float]]:
    """(memory, word overlap, cosine) for each candidate, most similar first."""
    words = content_words(text)
    found = []
    for row in rows:
        entry = index.entries.get(row.id)
        row_words = entry.words if entry is not None else content_words(row.text)
        found.append((row, jaccard(words, row_words), cosines.get(row.id, 0.0)))
    found.sort(key=lambda item: max(item[1], item[2]), reverse=True)
    return found


def judge_named(
    named: Memory,
    text: str,
    attribute: str | None,
    ranked: list[tuple[Memory, float, float]],
) -> tuple[Memory | None, Action]:
    """The chat model says ``text`` changes ``named``: believe it only when the
    attribute keys agree; unsure (no key on either side) -> a proposal; keys
    that disagree (or only one side keyed) -> added beside it."""
    if normalized(named.text) == normalized(text):
        return named, "merged"
    old = named.attribute if named.attribute is not None else attribute_key(named.text)
    if attribute is not None and attribute == old:
        return named, "updated"
    if attribute is None and old is None:
        for row, overlap, cosine in ranked:
            if row.id != named.id:
                continue
            if _duplicate(row, text, overlap, cosine):
                return named, "merged"
            if overlap >= SAME_FACT_JACCARD or cosine >= SAME_FACT_COSINE:
                return named, "updated"  # the same sentence with another value
        return named, "proposed"
    return None, "added"


def match(
    ranked: list[tuple[Memory, float, float]],
    text: str,
    attribute: str | None,
    changed: bool,
) -> tuple[Memory | None, Action]:
    """The memory ``text`` duplicates (merge), replaces (same attribute key) or
    may change (a proposal), if any."""
    key = normalized(text)
    for row, overlap, _ in ranked:
        if (
            normalized(row.text) == key
            or overlap >= DUPLICATE_JACCARD
            or _contained(content_words(row.text), content_words(text))
        ):
            return row, "merged"  # the same words: whatever the keys, a restatement
    if attribute is not None:
        for row, _, _ in ranked:
            old = row.attribute if row.attribute is not None else attribute_key(row.text)
            if old == attribute:
                return row, "updated"
    for row, overlap, cosine in ranked:
        old = row.attribute if row.attribute is not None else attribute_key(row.text)
        if (old is None or attribute is None) and _duplicate(row, text, overlap, cosine):
            return row, "merged"
    if (changed or signals_change(text)) and ranked and attribute is None:
        row, overlap, cosine = ranked[0]
        old = row.attribute if row.attribute is not None else attribute_key(row.text)
        if old is None and (overlap >= CHANGE_JACCARD or cosine >= CHANGE_COSINE):
            return row, "proposed"
    return None, "added"
