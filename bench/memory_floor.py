"""memory_floor: where the recall relevance floor (``memory_recall_floor``) sits.

A memory is recalled only if the cosine between the question and the memory
(all-MiniLM-L6-v2) reaches the floor, or they share a keyword. This prints the
cosine of labelled (question, memory) pairs, the errors of each candidate floor
on a tuning set, and then the chosen floor's errors on a held-out set it was
not chosen on. Misses (a relevant memory left out) cost a worse answer; false
hits (an unrelated memory injected) cost tokens and a confusing "Memories
used"; the floor leans toward recall.

Since issue 13 the floor applies to the recall *score* (the cosine plus
keyword, topic and profile parts, ``parley.memory.recall``), so a pair whose
cosine alone is under the floor can still be recalled: this bench shows the
cosine part; ``bench.memory_recall`` measures the whole (empty-when-nothing-
relevant and recall on its dev and held-out splits).

    .venv/bin/python -m bench.memory_floor
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

from parley.config import Settings
from parley.embeddings.minilm import MiniLM, default_model_dir

Pair = tuple[str, str, bool]  # question, memory, relevant

TUNE: list[Pair] = [
    ("suggest a dinner", "Is vegetarian.", True),
    ("What should I cook tonight?", "I'm vegetarian.", True),
    ("Recommend a snack", "I am allergic to peanuts.", True),
    ("What is the weather like where I live?", "I live in Berlin.", True),
    ("Any tips for walking my pet?", "I have a dog named Rex.", True),
    ("Plan a restaurant outing for me", "I'm vegetarian.", True),
    ("What is 1234*5678?", "Is vegetarian.", False),
    ("What is 1234*5678?", "My favourite colour is green.", False),
    ("How do I reverse a list in Python?", "I live in Berlin.", False),
    ("Translate hello to French", "I live in Berlin.", False),
    ("What is the capital of Peru?", "Is vegetarian.", False),
    ("Explain recursion", "I have a dog named Rex.", False),
    ("Write a haiku about the sea", "I work as a nurse.", False),
    ("What is 2+2?", "I am allergic to peanuts.", False),
]

HELD_OUT: list[Pair] = [
    ("Any dinner ideas for tonight?", "I'm vegetarian.", True),
    ("What job do I do?", "I work as a nurse.", True),
    ("Where should I go on holiday?", "I am afraid of flying.", True),
    ("Gift ideas for my wife?", "My wife loves gardening.", True),
    ("What should I name my puppy?", "I have a dog named Rex.", True),
    ("Recommend a book", "I love science fiction.", True),
    ("What should I eat for lunch?", "I am allergic to peanuts.", True),
    ("What time zone am I in?", "I live in Berlin.", True),
    ("What is 1234*5678?", "I'm vegetarian.", False),
    ("What is 17 squared?", "I live in Berlin.", False),
    ("Write a SQL query to count rows", "I have two cats.", False),
    ("How do I center a div?", "I'm vegetarian.", False),
    ("Sort this list: 3,1,2", "My favourite colour is green.", False),
    ("What's 15% of 80?", "I work as a nurse.", False),
    ("Convert 5 km to miles", "I live in Berlin.", False),
    ("Explain TCP handshake", "I have two cats.", False),
]


def cosines(model: MiniLM, pairs: list[Pair]) -> np.ndarray:
    questions = model.encode([q for q, _, _ in pairs])
    memories = model.encode([m for _, m, _ in pairs])
    return np.asarray((questions * memories).sum(axis=1))


def errors(sims: np.ndarray, pairs: list[Pair], floor: float) -> tuple[int, int]:
    """(misses, false hits) at ``floor``."""
    misses = sum(1 for s, (_, _, rel) in zip(sims, pairs, strict=True) if rel and s < floor)
    false = sum(1 for s, (_, _, rel) in zip(sims, pairs, strict=True) if not rel and s >= floor)
    return misses, false


def main() -> None:
    model = MiniLM(default_model_dir())
    chosen = Settings.model_fields["memory_recall_floor"].default
    for name, pairs in (("tuning", TUNE), ("held-out", HELD_OUT)):
        sims = cosines(model, pairs)
        print(f"\n{name} pairs (cosine, relevant?):")
        for s, (q, m, rel) in sorted(zip(sims, pairs, strict=True), key=lambda x: -x[0]):
            print(f"  {s:6.3f} {'yes' if rel else 'no ':3s}  {q!r} / {m!r}")
        if name == "tuning":
            print("\n  floor  misses  false hits")
            for floor in np.arange(0.10, 0.26, 0.01):
                misses, false = errors(sims, pairs, float(floor))
                print(f"  {floor:5.2f}  {misses:6d}  {false:10d}")
        misses, false = errors(sims, pairs, chosen)
        print(
            f"  default floor {chosen} on the cosine alone: {misses} misses, "
            f"{false} false hits of {len(pairs)} (the score adds keyword/topic/profile parts)"
        )


if __name__ == "__main__":
    main()
