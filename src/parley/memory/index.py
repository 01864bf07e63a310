"""The in-process index ``remember`` consults instead of scanning every memory.

Saving a memory must find the memories it duplicates or changes. Comparing it
with every row (loading them all, splitting each into words, one dot product
each) cost 30 ms per insert at first and over 100 ms at a few hundred memories.
Instead each user has a ``WriteIndex`` in the worker's memory:

- a float32 matrix of the vectors (one matrix product finds the nearest few),
- an inverted index from content word to memory ids (the few rows sharing a rare
  word), the normalized text to ids (exact duplicates), and the attribute key to
  ids (``parley.memory.attributes``: the memory an update replaces),

so a write looks at a few dozen candidates whatever the number of memories. The
index is trusted only while the user's rows have not changed behind it: every
write first reads ``MemoryStore.write_version`` (count and newest ``updated_at``
of all the user's rows, answered from an index) and a mismatch (another worker, a
route that deleted or edited a row) rebuilds the index from the table. A write
through ``remember`` updates the index in place and records the version it left.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from parley.memory.attributes import attribute_key
from parley.memory.tables import Memory
from parley.memory.text import content_words, normalized

__all__ = ["Entry", "WriteIndex"]

COMMON_WORD = 400  # words in more memories than this do not pick candidates
NEAREST = 12


@dataclass(slots=True)
class Entry:
    id: str
    text: str
    key: str
    words: set[str]
    attribute: str | None
    scope: tuple[str | None, str | None]
    status: str
    replaces_id: str | None
    slot: int  # row of the vector matrix, -1 without a vector


@dataclass(slots=True)
class WriteIndex:
    model: str | None
    dim: int | None = None
    version: object = None
    entries: dict[str, Entry] = field(default_factory=dict)
    by_key: dict[str, set[str]] = field(default_factory=dict)
    by_word: dict[str, set[str]] = field(default_factory=dict)
    by_attribute: dict[str, set[str]] = field(default_factory=dict)
    matrix: npt.NDArray[np.float32] | None = None
    slot_ids: list[str | None] = field(default_factory=list)
    used: int = 0

    @classmethod
    def build(cls, rows: list[Memory], model: str | None, version: object) -> WriteIndex:
        index = cls(model=model, version=version)
        for row in rows:
            index.put(row)
        return index

    # ---------------------------------------------------------------- changes

    def put(self, row: Memory) -> None:
        """Add ``row`` or replace what the index had for it."""
        self.remove(row.id)
        vector = None
        if row.embedding and row.embedding_model == self.model:
            vector = np.frombuffer(row.embedding, dtype=np.float32)
        slot = self._store_vector(row.id, vector) if vector is not None else -1
        entry = Entry(
            id=row.id,
            text=row.text,
            key=normalized(row.text),
            words=content_words(row.text),
            attribute=row.attribute if row.attribute is not None else attribute_key(row.text),
            scope=(row.scope_type, row.scope_id),
            status=row.status,
            replaces_id=row.replaces_id,
            slot=slot,
        )
        self.entries[row.id] = entry
        self.by_key.setdefault(entry.key, set()).add(row.id)
        for word in entry.words:
            self.by_word.setdefault(word, set()).add(row.id)
        if entry.attribute:
            self.by_attribute.setdefault(entry.attribute, set()).add(row.id)

    def remove(self, memory_id: str) -> None:
        entry = self.entries.pop(memory_id, None)
        if entry is None:
            return
        self.by_key.get(entry.key, set()).discard(memory_id)
        for word in entry.words:
            self.by_word.get(word, set()).discard(memory_id)
        if entry.attribute:
            self.by_attribute.get(entry.attribute, set()).discard(memory_id)
        if entry.slot >= 0 and self.matrix is not None:
            self.matrix[entry.slot] = 0.0
            self.slot_ids[entry.slot] = None

    def _store_vector(self, memory_id: str, vector: npt.NDArray[np.float32]) -> int:
        if self.dim is None:
            self.dim = int(vector.shape[0])
        if vector.shape[0] != self.dim:
            return -1
        if self.matrix is None or self.used == self.matrix.shape[0]:
            grown = np.zeros((max(64, self.used * 2), self.dim), dtype=np.float32)
            if self.matrix is not None:
                grown[: self.used] = self.matrix[: self.used]
            self.matrix = grown
        self.matrix[self.used] = vector
        self.slot_ids.append(memory_id)
        self.used += 1
        return self.used - 1

    # ---------------------------------------------------------------- lookups

    def candidates(
        self, text: str, vector: npt.NDArray[np.float32] | None, attribute: str | None
    ) -> dict[str, float]:
        """Ids of the memories worth comparing with ``text``, with their cosine."""
        found: dict[str, float] = {}
        for memory_id in self.by_key.get(normalized(text), ()):
            found[memory_id] = 0.0
        if attribute:
            for memory_id in self.by_attribute.get(attribute, ()):
                found[memory_id] = 0.0
        counts: dict[str, int] = {}
        for word in content_words(text):
            ids = self.by_word.get(word, ())
            if len(ids) <= COMMON_WORD:
                for memory_id in ids:
                    counts[memory_id] = counts.get(memory_id, 0) + 1
        for memory_id, _ in sorted(counts.items(), key=lambda kv: -kv[1])[:NEAREST]:
            found.setdefault(memory_id, 0.0)
        if vector is not None and self.matrix is not None and vector.shape[0] == self.dim:
            scores = self.matrix[: self.used] @ vector
            top = np.argsort(-scores)[:NEAREST]
            for slot in top:
                slot_id = self.slot_ids[int(slot)]
                if slot_id is not None:
                    found[slot_id] = float(scores[slot])
            for memory_id in found:
                entry = self.entries.get(memory_id)
                if entry is not None and entry.slot >= 0 and found[memory_id] == 0.0:
                    found[memory_id] = float(self.matrix[entry.slot] @ vector)
        return found

    def cosines(self, vector: npt.NDArray[np.float32]) -> dict[str, float]:
        """Every indexed memory's cosine with ``vector`` (forget requests)."""
        if self.matrix is None or vector.shape[0] != self.dim:
            return {}
        scores = self.matrix[: self.used] @ vector
        return {
            memory_id: float(scores[slot])
            for slot, memory_id in enumerate(self.slot_ids)
            if memory_id is not None
        }
