"""forget_eval: are requests to forget recognised, and do they find the right memories?

Over ``bench.forget_set`` (one user's 37 memories; requests in many wordings,
topic-level ones that must match several memories, and messages that only
mention forgetting or deleting something else), in-process on SQLite:

- recognition: precision and recall of "this message is a request to forget";
- matching: precision and recall of the matched set against the labelled
  memories, per request (micro-averaged over memories), end to end (a request
  not recognised matched nothing) and exact-set rate;

for the split asked (``dev``: what the rules were tuned on; ``held_out``: written
with it, never tuned on), with all-MiniLM-L6-v2 and the hashing embedder, beside
the behaviour before (the old "forget that ..." pattern and single best match).

    .venv/bin/python -m bench.forget_eval [--split dev|held_out|both]
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import asyncio
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import Table
from bench.forget_set import DEV, HELD_OUT, MEMORIES, Case
from parley.config import load_settings
from parley.embeddings import Embedder
from parley.memory.feature import default_embedder
from parley.memory.forget_words import parse_forget
from parley.memory.forgetting import ForgetService
from parley.memory.service import FORGET_COSINE, FORGET_JACCARD, MemoryService
from parley.memory.store import MemoryStore
from parley.memory.testing import HashingEmbedder
from parley.memory.text import clean_fact, content_words, jaccard
from parley.storage.db import Database
from parley.storage.tables import User, new_id

# The request pattern before this change (memory/text.py), kept here to measure against.
_OLD_FORGET = re.compile(
    r"^(?:hey|ok|okay|so)?[\s,]*(?:please[\s,]+)?(?:can you |could you )?(?:please[\s,]+)?"
    r"(?:forget|stop remembering|delete the memory|remove the memory)"
    r"(?:\s+(?:that|about|the fact that))?[\s,:]+(?P<fact>.+)$",
    re.IGNORECASE | re.DOTALL,
)


def _old_parse(message: str) -> str | None:
    first = message.strip().splitlines()[0].strip()
    if first.endswith("?") or re.match(r"(?i)do you (remember|forget)", first):
        return None
    match = _OLD_FORGET.match(first)
    return clean_fact(match.group("fact")) if match else None


@dataclass
class Score:
    tp_recognised: int = 0
    fp_recognised: int = 0
    fn_recognised: int = 0
    tp: int = 0
    fp: int = 0
    fn: int = 0
    exact: int = 0
    positives: int = 0

    def add(self, case: Case, recognised: bool, found: set[str]) -> None:
        if case.expected is None:
            self.fp_recognised += recognised
            self.fp += len(found)
            return
        self.positives += 1
        self.tp_recognised += recognised
        self.fn_recognised += not recognised
        self.tp += len(found & case.expected)
        self.fp += len(found - case.expected)
        self.fn += len(case.expected - found)
        self.exact += found == case.expected

    @staticmethod
    def ratio(a: int, b: int) -> float:
        return a / b if b else float("nan")


async def _service(
    tmp: str, embedder: Embedder | None
) -> tuple[MemoryService, str, dict[str, str]]:
    db = Database(f"sqlite+aiosqlite:///{Path(tmp) / 'forget.db'}")
    await db.migrate()
    user_id = new_id()
    async with db.session() as session:
        session.add(User(id=user_id, email="f@example.com", name="F", password_hash="x"))
        await session.commit()
    service = MemoryService(db, embedder)
    ids: dict[str, str] = {}
    vectors = await service.embed(list(MEMORIES.values()))
    async with db.session() as session:
        store = MemoryStore(session, user_id)
        for n, (label, text) in enumerate(MEMORIES.items()):
            extra: dict[str, Any] = {}
            if vectors is not None:
                extra = {"embedding": vectors[n].tobytes(), "embedding_model": service.model_name}
            ids[(await store.create(text, **extra)).id] = label
        await session.commit()
    return service, user_id, ids


async def _old_match(service: MemoryService, user_id: str, phrase: str) -> set[str]:
    found = await service.embed([phrase])
    async with service.db.session() as session:
        rows = await MemoryStore(session, user_id).everything()
    best: tuple[float, str] | None = None
    for row in rows:
        cosine = 0.0
        if found is not None and row.embedding:
            import numpy as np

            cosine = float(np.frombuffer(row.embedding, dtype=np.float32) @ found[0])
        overlap = jaccard(content_words(phrase), content_words(row.text))
        if overlap >= FORGET_JACCARD or cosine >= FORGET_COSINE:
            score = max(overlap, cosine)
            if best is None or score > best[0]:
                best = (score, row.id)
    return {best[1]} if best else set()


async def evaluate(cases: list[Case], embedder: Embedder | None) -> tuple[Score, Score]:
    with tempfile.TemporaryDirectory(prefix="parley-forget-") as tmp:
        service, user_id, labels = await _service(tmp, embedder)
        forgets = ForgetService(service)
        new, old = Score(), Score()
        for case in cases:
            ask = parse_forget(case.message)
            found: set[str] = set()
            if ask is not None:
                found = {labels[m.memory.id] for m in await forgets.match(user_id, ask)}
            new.add(case, ask is not None, found)
            phrase = _old_parse(case.message)
            old_found: set[str] = set()
            if phrase is not None:
                old_found = {labels[i] for i in await _old_match(service, user_id, phrase)}
            old.add(case, phrase is not None, old_found)
            if os.environ.get("FORGET_EVAL_VERBOSE") and (
                (case.expected is None and found)
                or (case.expected is not None and found != case.expected)
            ):
                print(f"  miss: {case.message!r}: got {sorted(found)} want {case.expected}")
        await service.db.dispose()
    return new, old


def _table(split: str, label: str, new: Score, old: Score) -> Table:
    table = Table(f"forget_{split}_{label}", f"Forget requests, {split} split, {label}", "before")
    r = Score.ratio
    rows = [
        (
            "recognition precision",
            r(new.tp_recognised, new.tp_recognised + new.fp_recognised),
            r(old.tp_recognised, old.tp_recognised + old.fp_recognised),
            None,
        ),
        (
            "recognition recall",
            r(new.tp_recognised, new.positives),
            r(old.tp_recognised, old.positives),
            0.9,
        ),
        ("matched precision", r(new.tp, new.tp + new.fp), r(old.tp, old.tp + old.fp), 0.8),
        ("matched recall", r(new.tp, new.tp + new.fn), r(old.tp, old.tp + old.fn), 0.8),
        ("exact matched set", r(new.exact, new.positives), r(old.exact, old.positives), None),
    ]
    for metric, mine, before, target in rows:
        table.add(
            metric,
            f"{mine:.2f}",
            f"{before:.2f}",
            f">= {target}" if target else "-",
            None if target is None else mine >= target,
        )
    return table


async def main(split: str) -> None:
    splits = {"dev": DEV, "held_out": HELD_OUT}
    chosen = list(splits) if split == "both" else [split]
    embedders: list[tuple[str, Embedder | None]] = []
    minilm = default_embedder(load_settings(local_model_enabled=False))
    if minilm is not None:
        embedders.append(("MiniLM", minilm))
    embedders.append(("hashing", HashingEmbedder()))
    for name in chosen:
        for label, embedder in embedders:
            new, old = await evaluate(splits[name], embedder)
            table = _table(name, label, new, old)
            negatives = sum(1 for c in splits[name] if c.expected is None)
            table.notes.append(
                f"{new.positives} requests to forget, {negatives} messages that are not"
            )
            print(table.render())
            print()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--split", choices=["dev", "held_out", "both"], default="dev")
    asyncio.run(main(parser.parse_args().split))
