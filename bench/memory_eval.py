"""memory_eval: does the right memory reach the model, and do stale ones stay out?

A scripted, model-independent scenario run through the real app (in-process,
SQLite in a temp dir): one user states facts in a first session (explicit
"remember that..." requests and facts that an oracle extractor returns as
labelled JSON operations), among 220 distractor memories; a second session
updates and deletes some (fast path and extractor updates); a third session
asks questions. For each question we read the ``<saved_memories>`` block the
model actually received and measure recall@k of the memories the answer needs,
and that outdated or deleted facts are absent. A second user with conflicting
facts checks that nothing crosses users. Recall is run three ways: keyword +
recency only, a hashing embedder, and all-MiniLM-L6-v2 when installed.

With ``--model provider/model`` (resolved from the usual settings, so any
configured provider, or the embedded ``local/smollm2-135m-instruct``),
extraction precision/recall of that model on the labelled messages of
``bench.memory_extraction`` is reported too.

    .venv/bin/python -m bench.memory_eval [--model local/smollm2-135m-instruct]
"""

from __future__ import annotations

import os

# One BLAS thread: MiniLM's small matrices gain nothing from more, and on a busy
# machine OpenBLAS's spinning threads turn a 6 ms question embedding into ~700 ms.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import asyncio
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench import memory_extraction as extraction
from bench.common import Table
from parley.api.app import create_app
from parley.config import load_settings
from parley.embeddings import Embedder
from parley.memory.feature import MemoryFeature, default_embedder
from parley.memory.store import MemoryStore
from parley.memory.testing import HashingEmbedder
from parley.providers.base import ChatRequest
from parley.providers.scripted import ScriptedModel, ScriptedProvider
from parley.storage.db import Database
from parley.turns import TurnService

K = 8
DISTRACTORS = 220

SESSION1_EXPLICIT = [
    "Remember that I'm vegetarian",
    "Remember that I live in Paris",
    "Remember that my daughter is called Lea",
    "Remember that I have a cat named Tom",
    "Remember that I work as a nurse at Saint-Louis hospital",
]
# user message -> operations the oracle extractor returns ("match": the memory it changes)
SESSION1_AUTO: dict[str, list[dict[str, Any]]] = {
    "I'm training for the Berlin marathon in April, any tips?": [
        {"action": "add", "fact": "I am training for the Berlin marathon in April"}
    ],
    "My partner Sam is allergic to shellfish, so we avoid it.": [
        {"action": "add", "fact": "My partner Sam is allergic to shellfish"}
    ],
    "I prefer answers with metric units, I'm in Europe.": [
        {"action": "add", "fact": "I prefer metric units"}
    ],
    "I drive a 2012 blue Toyota Corolla, how often should I change the oil?": [
        {"action": "add", "fact": "I drive a 2012 blue Toyota Corolla"}
    ],
    # A bad extractor invents facts; the support guard must drop them.
    "Can you recommend me a good book on Roman history?": [
        {"action": "add", "fact": "I love Roman history and live in Rome"}
    ],
}
SESSION2 = [
    "Remember that I now live in Lyon",
    "Forget that I have a cat named Tom",
]
SESSION2_AUTO: dict[str, list[dict[str, Any]]] = {
    "Actually I switched jobs, I now work as a teacher at a primary school.": [
        {
            "action": "update",
            "fact": "I now work as a teacher at a primary school",
            "match": "nurse",
        }
    ],
    "I'm no longer vegetarian, I eat fish now.": [
        {"action": "update", "fact": "I eat fish now, no longer vegetarian", "match": "vegetarian"}
    ],
}


@dataclass
class Question:
    text: str
    needs: list[str]  # substrings of memories that must be in context
    absent: list[str] = field(default_factory=list)  # substrings that must not
    kind: str = "keyword"  # keyword: shares words with the memory; paraphrase: does not


QUESTIONS = [
    Question("Where do I live these days?", ["Lyon"], ["Paris"]),
    Question("What is my daughter's name?", ["Lea"]),
    Question("Any dinner ideas for tonight?", ["eat fish"], ["I'm vegetarian."], "paraphrase"),
    Question("Do I have any pets to feed while I travel?", [], ["cat named Tom"]),
    Question("What job do I do?", ["teacher"], ["nurse"], "paraphrase"),
    Question("How should I prepare for my race this week?", ["marathon"], [], "paraphrase"),
    Question("Suggest a restaurant for Sam and me.", ["Sam is allergic"]),
    Question("How far is ten miles?", ["metric"], [], "paraphrase"),
    Question("When should I service my car?", ["Toyota"], [], "paraphrase"),
    Question("Recommend me a history book.", [], ["Rome"]),
]
OTHER_USER = ["Remember that I live in Madrid", "Remember that my daughter is called Zoe"]

_NAMES_TEXT = "Ana Ben Chloe Dario Elif Femi Greta Hugo Ines Jonas Kiri Luca Maya Nils Omar Pia"
_NAMES = _NAMES_TEXT.split()
_THINGS_TEXT = (
    "stamps vinyl records old maps postcards fountain pens teapots comics chess sets "
    "kites seashells coins lanterns"
)
_THINGS = _THINGS_TEXT.split()
_PLACES_TEXT = "Oslo Lima Hanoi Quito Porto Tunis Riga Cusco Bergen Dakar Perth Sapporo"
_PLACES = _PLACES_TEXT.split()


def distractors(n: int) -> list[str]:
    """Plausible, distinct facts about the user, some sharing words with questions."""
    facts: list[str] = [
        "My friend Marco lives in Naples",
        "My neighbour's car is a red van",
        "My sister has a dog called Biscuit",
        "My colleague Sam Lee runs the cafeteria",
        "I read a book about Egyptian history last year",
    ]
    templates: list[Callable[[int], str]] = [
        lambda i: f"My friend {_NAMES[i % 16]} collects {_THINGS[i % 13]}",
        lambda i: f"I visited {_PLACES[i % 12]} in {1990 + i % 30}",
        lambda i: (
            f"My cousin {_NAMES[(i * 7) % 16]} studies {_THINGS[(i * 5) % 13]} in {_PLACES[i % 12]}"
        ),
        lambda i: f"I keep {_THINGS[(i * 3) % 13]} from {_PLACES[(i * 5) % 12]} on my shelf",
        lambda i: (
            f"{_NAMES[(i * 3) % 16]} gave me {_THINGS[(i * 11) % 13]}"
            f" for my birthday in {2000 + i % 24}"
        ),
    ]
    i = 0
    seen = set(facts)
    while len(facts) < n:
        fact = templates[i % len(templates)](i // len(templates))
        i += 1
        if fact not in seen:
            seen.add(fact)
            facts.append(fact)
    return facts


def oracle(labels: dict[str, list[dict[str, Any]]]) -> Callable[[ChatRequest], Any]:
    """The memory model: labelled operations for a known message, numbered like the prompt."""

    def answer(request: ChatRequest) -> Any:
        prompt = request.messages[-1].content
        if request.response_format is None:
            return "Summary."
        said = prompt.split("<user_message>\n", 1)[-1].split("\n</user_message>", 1)[0]
        numbered = dict(
            (text.lower(), int(n)) for n, text in re.findall(r"^(\d+)\. (.+)$", prompt, re.M)
        )
        ops = []
        for op in labels.get(said, []):
            index = 0
            if "match" in op:
                index = next((n for t, n in numbered.items() if op["match"] in t), 0)
            ops.append({"action": op["action"], "fact": op["fact"], "memory": index})
        return {"memories": ops}

    return answer


def saved_block(model: ScriptedModel) -> list[str]:
    system = model.requests[-1].messages[0].content
    match = re.search(r"<saved_memories>\n(.*?)\n</saved_memories>", system, re.S)
    if not match:
        return []
    return [line[2:] for line in match.group(1).splitlines() if line.startswith("- ")]


async def run_scenario(label: str, embedder: Embedder | None) -> dict[str, Any]:
    chat = ScriptedModel(default="OK.")
    memory = ScriptedModel(default=oracle({**SESSION1_AUTO, **SESSION2_AUTO}))
    with tempfile.TemporaryDirectory(prefix="parley-memeval-") as tmp:
        settings = load_settings(
            data_dir=Path(tmp),
            local_model_enabled=False,
            providers=[],
            default_model="scripted/chat",
            memory_model="scripted/memory",
            memory_recall_k=K,
            memory_budget_tokens=2000,
            memory_embed_timeout_s=30.0,
        )
        app = create_app(
            settings,
            extra_providers=[ScriptedProvider("scripted", {"chat": chat, "memory": memory})],
            features=[lambda s: MemoryFeature(s, embedder=embedder)],
        )
        async with app.router.lifespan_context(app):
            feature: MemoryFeature = app.state.features["memory"]
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as a:

                async def say(client: httpx.AsyncClient, text: str) -> None:
                    csrf = {"X-CSRF-Token": client.cookies.get("parley_csrf") or ""}
                    conv = (await client.post("/api/conversations", json={}, headers=csrf)).json()
                    r = await client.post(
                        f"/api/conversations/{conv['id']}/messages",
                        json={"content": text},
                        headers=csrf,
                    )
                    assert r.status_code == 200, r.text
                    while app.state.services.require(
                        TurnService
                    )._tasks:  # after-turn hooks (extraction)
                        await asyncio.wait(
                            set(app.state.services.require(TurnService)._tasks), timeout=30
                        )

                signup = {"email": "a@example.com", "password": "correct horse", "name": "A"}
                user = (await a.post("/api/auth/signup", json=signup)).json()["user"]
                facts = distractors(DISTRACTORS)
                vectors = await feature.service.embed(facts)
                async with app.state.services.require(Database).session() as session:
                    store = MemoryStore(session, user["id"])
                    for n, fact in enumerate(facts):
                        extra: dict[str, Any] = {}
                        if vectors is not None:
                            extra = {
                                "embedding": vectors[n].tobytes(),
                                "embedding_model": feature.service.model_name,
                            }
                        await store.create(fact + ".", source="auto", **extra)
                    await session.commit()
                for text in [*SESSION1_EXPLICIT, *SESSION1_AUTO]:
                    await say(a, text)
                for text in [*SESSION2, *SESSION2_AUTO]:
                    await say(a, text)
                async with httpx.AsyncClient(transport=transport, base_url="http://bench") as b:
                    other = {"email": "b@example.com", "password": "correct horse", "name": "B"}
                    await b.post("/api/auth/signup", json=other)
                    for text in OTHER_USER:
                        await say(b, text)
                stored = (await a.get("/api/memories", params={"q": "rome"})).json()
                total = stored["counts"].get("active", 0)
                results = []
                for q in QUESTIONS:
                    await say(a, q.text)
                    block = saved_block(chat)
                    joined = "\n".join(block)
                    hits = [n for n in q.needs if n in joined]
                    stale = [s for s in q.absent if s in joined]
                    leaks = [s for s in ("Madrid", "Zoe") if s in joined]
                    results.append((q, len(hits), stale, leaks, len(block)))
    needs = sum(len(q.needs) for q, *_ in results)
    found = sum(n for _, n, *_ in results)
    by_kind: dict[str, list[int]] = {}
    for q, n, *_ in results:
        tally = by_kind.setdefault(q.kind, [0, 0])
        tally[0] += n
        tally[1] += len(q.needs)
    absent_checks = sum(len(q.absent) for q in QUESTIONS)
    stale_hits = sum(len(s) for _, _, s, _, _ in results)
    return {
        "label": label,
        "memories": total,
        "recall": found / needs if needs else 1.0,
        "by_kind": {k: v[0] / v[1] for k, v in by_kind.items() if v[1]},
        "stale_absent": 1 - stale_hits / absent_checks if absent_checks else 1.0,
        "leaks": sum(len(x) for *_, x, _ in results),
        "block_size": sum(r[4] for r in results) / len(results),
        "rome_saved": any("Rome" in m["text"] for m in stored["items"]),
        "per_question": [(q.text, n, len(q.needs), s) for q, n, s, _, _ in results],
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description="memory recall and extraction evaluation")
    parser.add_argument(
        "--model",
        default=os.environ.get("MEMORY_EVAL_MODEL"),
        help="provider/model (from the usual settings, e.g. local/smollm2-135m-instruct) "
        "whose extraction precision/recall to measure on bench.memory_extraction's cases",
    )
    args = parser.parse_args()
    configs: list[tuple[str, Embedder | None]] = [
        ("keyword + recency", None),
        ("+ hashing embedder", HashingEmbedder()),
    ]
    minilm = default_embedder(load_settings(local_model_enabled=False))
    if minilm is not None:
        configs.append((f"+ {minilm.name}", minilm))
    runs = [await run_scenario(label, emb) for label, emb in configs]

    table = Table("memory_eval", f"Memory recall (k={K}, {runs[0]['memories']} memories/user)")
    for run in runs:
        table.add(
            f"recall@{K} of needed memories [{run['label']}]",
            f"{run['recall']:.0%}",
            target=">= 80%" if "MiniLM" in run["label"] else "-",
            ok=run["recall"] >= 0.8 if "MiniLM" in run["label"] else None,
        )
        for kind, value in sorted(run["by_kind"].items()):
            table.add(f"  {kind} questions", f"{value:.0%}")
        table.add(
            "  outdated/deleted absent",
            f"{run['stale_absent']:.0%}",
            target="100%",
            ok=run["stale_absent"] == 1.0,
        )
        table.add(
            "  other user's facts in context", str(run["leaks"]), target="0", ok=run["leaks"] == 0
        )
        table.add(
            "  fabricated fact saved",
            "yes" if run["rome_saved"] else "no",
            target="no",
            ok=not run["rome_saved"],
        )
        table.add("  memories in the block (mean)", f"{run['block_size']:.1f}")
    quality = await extraction.evaluate(args.model) if args.model else None
    if quality is not None:
        extraction.add_rows(table, quality)
    else:
        table.notes.append(
            "extraction P/R not measured: pass --model provider/model (any configured "
            "model, or local/smollm2-135m-instruct)"
        )
    table.notes.append(
        "keyword questions share words with the memory; paraphrase ones need "
        "semantic recall (or the recency fillers)"
    )
    print(table.render())
    for run in runs:
        misses = [(q, f, n) for q, f, n, _ in run["per_question"] if f < n]
        if misses:
            print(f"  misses [{run['label']}]: " + "; ".join(q for q, _, _ in misses))


if __name__ == "__main__":
    asyncio.run(main())
