"""Extraction precision and recall of a real model on labelled dialogue.

Each case is a user message (some follow saved memories, for updates and
"no longer true") with the facts a careful reader would keep. It runs through
the real pipeline: the first-person gate, ``MemoryExtractor.extract`` (the
schema-constrained request, the support guard, the merge/update rules) on a
fresh SQLite store seeded with the case's memories. Scored on what is stored
afterwards:

- a *stored fact* is a memory that is new or whose text changed;
- it is correct when it contains every key term of one expected fact (each
  expected fact matches at most one stored fact);
- precision = correct / stored facts, recall = matched / expected facts;
- replacements: of the seeded memories a case says must change or go, the
  share that did (an update must rewrite, not add a second memory);
- raw: the same precision/recall on the model's own proposals, before the
  guard and rules, to show what the guard removes.

Then the labelled dialogue (``bench.memory_dialogue``: five users, 110 turns of
new facts, changes, requests to forget and chat without facts) through the whole
pipeline (``bench.memory_dialogue_run``), with the model beside the oracle (a
scripted extractor answering with the labels): precision and recall of new
facts, updates (the right memory replaced) and deletions.

    .venv/bin/python -m bench.memory_eval --model local/smollm2-135m-instruct
    .venv/bin/python -m bench.memory_extraction --model openai/gpt-4.1-mini
    .venv/bin/python -m bench.memory_extraction --model local/smollm2-135m-instruct
    .venv/bin/python -m bench.memory_extraction          # the oracle alone
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import Table
from bench.memory_dialogue_run import DialogueScore, oracle_model, run_dialogue
from parley.config import load_settings
from parley.memory.extract import MemoryExtractor, mentions_self, parse_operations
from parley.memory.feature import default_embedder
from parley.memory.service import MemoryService
from parley.memory.store import MemoryStore
from parley.memory.text import content_words, jaccard, parse_request
from parley.messages import TextDelta
from parley.providers.base import ChatModel, ChatRequest
from parley.providers.registry import ModelRegistry
from parley.storage.db import Database
from parley.storage.tables import User
from parley.turns.hooks import TurnInfo

USER_ID = "u" * 32


@dataclass(frozen=True)
class Case:
    message: str
    expect: list[tuple[str, ...]] = field(default_factory=list)  # key terms per fact
    seed: list[str] = field(default_factory=list)  # memories saved before the message
    replaced: list[str] = field(default_factory=list)  # seeded memories that must change/go


C = Case
CASES: list[Case] = [
    # New facts about the user.
    C("I'm vegetarian, what should I cook tonight?", [("vegetarian",)]),
    C("My son Max turns 8 next week, any gift ideas?", [("max", "8")]),
    C("I moved to Toronto last month and need a dentist.", [("toronto",)]),
    C("I'm a software engineer and I mostly write Rust.", [("software engineer",), ("rust",)]),
    C("I hate cilantro, give me a salsa recipe without it.", [("cilantro",)]),
    C("My wife Priya and I are planning a trip to Japan in May.", [("priya",), ("japan",)]),
    C("I have type 1 diabetes, so watch the sugar in recipes.", [("diabetes",)]),
    C("I'm learning Portuguese because my partner is Brazilian.", [("portuguese",)]),
    C("We have two cats, Miso and Tofu. How often should they see a vet?", [("miso", "tofu")]),
    C("I run a small bakery in Leeds; how do I price wedding cakes?", [("bakery",)]),
    C("I'm allergic to penicillin. Is amoxicillin safe?", [("penicillin",)]),
    C("My name is Oskar, by the way.", [("oskar",)]),
    C("I prefer short answers with bullet points.", [("short",)]),
    C("I work night shifts at the airport, so I sleep during the day.", [("night shift",)]),
    C("I'm training for my first half marathon in October.", [("half marathon",)]),
    C("My daughter Lea is allergic to peanuts.", [("lea", "peanut")]),
    C("I drive an electric Renault Zoe. Where can I charge it in Lyon?", [("zoe",)]),
    C("I'm 34 and I just started learning the piano.", [("piano",), ("34",)]),
    # Nothing durable about the user.
    C("What is the capital of Australia?"),
    C("Explain how vaccines work."),
    C("Can you summarize this article about elections for me?"),
    C("Translate 'good morning' to German."),
    C("If I were a millionaire, what car should I buy?"),
    C("Write a poem about the sea, please."),
    C("My code throws a KeyError, can you help me debug it?"),
    C("Should I learn Go or Rust first?"),
    C("I wonder how tall the Eiffel Tower is."),
    C("Please give me three ideas for a birthday party."),
    C("What do you think I should name a fictional dragon?"),
    # Changes to what is saved.
    C(
        "I moved again, I now live in Berlin.",
        [("berlin",)],
        seed=["I live in Paris."],
        replaced=["I live in Paris."],
    ),
    C(
        "I switched jobs: I'm now a teacher at a primary school.",
        [("teacher",)],
        seed=["I work as a nurse."],
        replaced=["I work as a nurse."],
    ),
    C(
        "I'm no longer vegetarian, I eat fish now.",
        [("fish",)],
        seed=["I'm vegetarian."],
        replaced=["I'm vegetarian."],
    ),
    C(
        "I sold my car, so I don't drive anymore.",
        [],
        seed=["I drive a blue Toyota Corolla."],
        replaced=["I drive a blue Toyota Corolla."],
    ),
    C(
        "My son Max is 9 now, not 8.",
        [("max", "9")],
        seed=["My son Max is 8."],
        replaced=["My son Max is 8."],
    ),
    # Restating a saved fact keeps one memory (nothing new to store).
    C("As I said, I live in Lisbon. Any museum tips?", [], seed=["I live in Lisbon."]),
    C("Yes, I'm still a nurse; what shoes are best for long shifts?", [], seed=["I'm a nurse."]),
]


def stored_fact(seed: str | None, text: str, case: Case) -> bool:
    """New memories count, and seeded ones the message changed; a restatement
    merged into its seed (same words, newest wording) stores nothing new."""
    if seed is None:
        return True
    if text == seed:
        return False
    return seed in case.replaced or jaccard(content_words(seed), content_words(text)) < 0.5


def correct(fact: str, keys: tuple[str, ...]) -> bool:
    low = fact.lower()
    return all(k in low for k in keys)


@dataclass
class Tally:
    stored: int = 0
    correct: int = 0
    expected: int = 0
    matched: int = 0
    replaced: int = 0
    to_replace: int = 0

    def score(self, facts: list[str], case: Case) -> None:
        self.expected += len(case.expect)
        free = list(case.expect)
        for fact in facts:
            self.stored += 1
            hit = next((keys for keys in free if correct(fact, keys)), None)
            if hit is not None:
                free.remove(hit)
                self.correct += 1
        self.matched += len(case.expect) - len(free)

    @property
    def precision(self) -> float:
        return self.correct / self.stored if self.stored else 1.0

    @property
    def recall(self) -> float:
        return self.matched / self.expected if self.expected else 1.0


class Recording:
    """The model, with the text of its last answer kept (the raw proposals)."""

    def __init__(self, model: ChatModel) -> None:
        self.model = model
        self.info = model.info
        self.last = ""

    async def stream(self, request: ChatRequest) -> AsyncIterator[Any]:
        parts: list[str] = []
        async for event in self.model.stream(request):
            if isinstance(event, TextDelta):
                parts.append(event.text)
            yield event
        self.last = "".join(parts)


async def evaluate(ref: str, cases: list[Case] = CASES) -> dict[str, Any] | None:
    """Run the labelled cases with model ``ref`` (None when it cannot be resolved)."""
    settings = load_settings()
    registry = ModelRegistry(settings)
    try:
        model = Recording(await registry.resolve(ref))
    except Exception as exc:
        print(f"extraction eval skipped: {ref} unavailable ({exc})")
        await registry.aclose()
        return None
    system, raw = Tally(), Tally()
    calls, seconds, failures = 0, 0.0, 0
    examples: list[str] = []
    with tempfile.TemporaryDirectory(prefix="parley-memext-") as tmp:
        db = Database(f"sqlite+aiosqlite:///{Path(tmp) / 'x.db'}")
        await db.migrate()
        async with db.session() as session:
            session.add(User(id=USER_ID, email="x@example.com", password_hash="x"))
            await session.commit()
        service = MemoryService(db, None)

        async def resolve(_: TurnInfo) -> Any:
            return model

        extractor = MemoryExtractor(service, resolve)
        for n, case in enumerate(cases):
            async with db.session() as session:
                store = MemoryStore(session, USER_ID)
                await store.delete_all()
                seeded = {(await store.create(t, source="explicit")).id: t for t in case.seed}
                await session.commit()
            # No conversation row exists here: the memory is saved without a link.
            info = TurnInfo(USER_ID, None, f"m{n}", f"a{n}", case.message, model.info)  # type: ignore[arg-type]
            proposals: list[str] = []
            if mentions_self(case.message) and parse_request(case.message) is None:
                model.last = ""
                calls += 1
                start = time.perf_counter()
                try:
                    await extractor.extract(info)
                except Exception as exc:
                    failures += 1
                    print(f"extraction failed on {case.message!r}: {exc}")
                seconds += time.perf_counter() - start
                ops = parse_operations(model.last)
                proposals = [op.fact for op in ops if op.action != "delete" and op.fact]
            async with db.session() as session:
                after = {m.id: m.text for m in await MemoryStore(session, USER_ID).active()}
            facts = [t for i, t in after.items() if stored_fact(seeded.get(i), t, case)]
            system.score(facts, case)
            raw.score(proposals, case)
            system.to_replace += len(case.replaced)
            system.replaced += sum(1 for s in case.replaced if s not in after.values())
            if len(examples) < 8 and (facts or proposals):
                examples.append(f"{case.message!r} -> stored {facts}, proposed {proposals}")
        await db.dispose()
    await registry.aclose()
    return {
        "model": ref,
        "cases": len(cases),
        "system": system,
        "raw": raw,
        "calls": calls,
        "failures": failures,
        "mean_s": seconds / calls if calls else 0.0,
        "examples": examples,
    }


def add_rows(table: Table, result: dict[str, Any]) -> None:
    system: Tally = result["system"]
    raw: Tally = result["raw"]
    ref = result["model"]
    table.add(
        f"extraction precision [{ref}]",
        f"{system.precision:.0%} ({system.correct}/{system.stored})",
    )
    table.add(
        f"extraction recall [{ref}]", f"{system.recall:.0%} ({system.matched}/{system.expected})"
    )
    table.add(
        "  replaced/removed when the user said so",
        f"{system.replaced}/{system.to_replace}",
    )
    table.add(
        "  raw proposals: precision / recall",
        f"{raw.precision:.0%} / {raw.recall:.0%} ({raw.stored} proposed)",
    )
    table.add(
        "  model calls (gate skips the rest) / failed",
        f"{result['calls']}/{result['cases']} / {result['failures']}",
    )
    table.add("  mean extraction time", f"{result['mean_s']:.2f} s")


def dialogue_table(ref: str | None, mine: DialogueScore | None, oracle: DialogueScore) -> Table:
    """The dialogue's scores: the model's column beside the oracle's."""
    table = Table(
        "memory_dialogue",
        f"Memory on {oracle.turns} turns of labelled dialogue ({ref or 'oracle only'})",
        "oracle extractor",
    )
    r = DialogueScore.ratio

    def row(metric: str, value: Callable[[DialogueScore], str]) -> None:
        table.add(metric, value(mine) if mine is not None else "-", value(oracle))

    row(
        "new facts: precision",
        lambda s: f"{r(s.new_correct, s.new_stored):.2f} ({s.new_correct}/{s.new_stored})",
    )
    row(
        "new facts: recall",
        lambda s: f"{r(s.new_matched, s.new_expected):.2f} ({s.new_matched}/{s.new_expected})",
    )
    row(
        "updates: precision (right memory)",
        lambda s: f"{r(s.updates_right, s.rewritten):.2f} ({s.updates_right}/{s.rewritten})",
    )
    row(
        "updates: recall (replaced in place)",
        lambda s: (
            f"{r(s.updates_right, s.updates_expected):.2f} ({s.updates_right}/{s.updates_expected})"
        ),
    )
    row("  updates waiting as a proposal", lambda s: f"{s.updates_proposed}/{s.updates_expected}")
    row(
        "deletions: precision",
        lambda s: f"{r(s.deletes_right, s.deleted):.2f} ({s.deletes_right}/{s.deleted})",
    )
    row(
        "deletions: recall",
        lambda s: (
            f"{r(s.deletes_right, s.deletes_expected):.2f} ({s.deletes_right}/{s.deletes_expected})"
        ),
    )
    row(
        "model calls / mean time",
        lambda s: f"{s.model_calls} / {s.seconds / max(1, s.model_calls):.2f} s",
    )
    return table


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="provider/model, e.g. local/smollm2-135m-instruct")
    parser.add_argument("--skip-cases", action="store_true", help="only the dialogue")
    args = parser.parse_args()
    if args.model and not args.skip_cases:
        result = await evaluate(args.model)
        if result is None:
            raise SystemExit(1)
        table = Table(
            "memory_extraction", f"Memory extraction on {result['cases']} labelled messages"
        )
        add_rows(table, result)
        print(table.render())
        for line in result["examples"]:
            print("  " + line)
    embedder = default_embedder(load_settings(local_model_enabled=False))
    oracle = oracle_model()
    oracle_score = await run_dialogue(oracle.model, embedder, oracle)
    mine = None
    if args.model:
        registry = ModelRegistry(load_settings())
        try:
            model = await registry.resolve(args.model)
        except Exception as exc:
            print(f"dialogue skipped: {args.model} unavailable ({exc})")
            raise SystemExit(1) from exc
        mine = await run_dialogue(model, embedder)
        await registry.aclose()
    print(dialogue_table(args.model, mine, oracle_score).render())


if __name__ == "__main__":
    asyncio.run(main())
