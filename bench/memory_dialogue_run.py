"""Runs ``bench.memory_dialogue`` through the memory pipeline and scores it.

Per turn, as a chat turn would: a request to forget is recognised and matched
(``ForgetContext``'s steps) and approved as the user would in the chip; an
explicit "remember that ..." is saved; otherwise the extractor runs (the
first-person gate, the model, the support guard, the attribute-keyed update
rules). What the turn changed is read from the database (new rows, rewritten
rows, deleted rows, pending proposals) and scored against the labels:

- new facts: precision (stored new memories containing an expected fact's terms)
  and recall (expected facts stored);
- updates: the labelled memory rewritten in place to contain the new terms
  (precision over every rewritten memory, recall over expected updates), and the
  share waiting as a proposal naming the right memory;
- deletions: the labelled memories gone (precision over every deleted memory).

The extractor is a model (``--model``) or the oracle: a scripted model that
answers each message with its labels (what a perfect model would propose), so
the difference between the two columns is the model's.
"""

from __future__ import annotations

import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.memory_dialogue import USERS, Turn
from parley.embeddings import Embedder
from parley.memory.extract import MemoryExtractor, mentions_self
from parley.memory.forget_words import parse_forget
from parley.memory.forgetting import ForgetService
from parley.memory.service import MemoryService
from parley.memory.store import MemoryStore
from parley.memory.tables import Memory
from parley.memory.text import parse_request, signals_change
from parley.providers.base import ChatModel, ChatRequest
from parley.providers.scripted import Reply, ScriptedModel
from parley.storage.db import Database
from parley.storage.tables import User, new_id
from parley.turns.hooks import TurnInfo

__all__ = ["DialogueScore", "oracle_model", "run_dialogue"]


@dataclass
class DialogueScore:
    new_stored: int = 0
    new_correct: int = 0
    new_expected: int = 0
    new_matched: int = 0
    rewritten: int = 0
    updates_right: int = 0
    updates_expected: int = 0
    updates_proposed: int = 0
    deleted: int = 0
    deletes_right: int = 0
    deletes_expected: int = 0
    turns: int = 0
    model_calls: int = 0
    seconds: float = 0.0

    @staticmethod
    def ratio(a: int, b: int) -> float:
        return a / b if b else float("nan")


def _has(text: str, terms: tuple[str, ...]) -> bool:
    low = text.lower().replace("é", "e")
    return all(t in low for t in terms)


class Oracle:
    """A perfect extractor: the labels of the message, as operations (an update names
    the labelled memory by its number in the list the prompt shows)."""

    def __init__(self) -> None:
        self.by_message = {t.message: t for u in USERS for t in u.turns}
        self.texts: dict[str, str] = {}  # label -> current text, kept by the runner
        self.model = ScriptedModel(default=self.answer)

    def answer(self, request: ChatRequest) -> Reply | dict[str, Any]:
        if request.response_format is None:
            return Reply(text="ok")
        prompt = request.messages[-1].content
        message = prompt.split("<user_message>\n", 1)[1].split("\n</user_message>", 1)[0]
        turn = self.by_message.get(message)
        if turn is None:
            return {"memories": []}
        numbered = {text: int(n) for n, text in re.findall(r"^(\d+)\. (.*)$", prompt, re.M)}
        ops: list[dict[str, Any]] = [
            {"action": "add", "fact": message, "memory": 0} for _ in turn.add[:1]
        ]
        for label, _ in turn.update:
            index = numbered.get(self.texts.get(label, ""), 0)
            ops.append({"action": "update" if index else "add", "fact": message, "memory": index})
        return {"memories": ops}


def oracle_model() -> Oracle:
    return Oracle()


async def _state(db: Database, user_id: str) -> dict[str, Memory]:
    async with db.session() as session:
        return {m.id: m for m in await MemoryStore(session, user_id).everything()}


async def run_dialogue(
    model: ChatModel, embedder: Embedder | None, oracle: Oracle | None = None
) -> DialogueScore:
    score = DialogueScore()
    with tempfile.TemporaryDirectory(prefix="parley-dialogue-") as tmp:
        db = Database(f"sqlite+aiosqlite:///{Path(tmp) / 'd.db'}")
        await db.migrate()
        service = MemoryService(db, embedder)
        forgets = ForgetService(service)

        async def resolve(_: TurnInfo) -> ChatModel:
            return model

        extractor = MemoryExtractor(service, resolve, forgets=forgets)
        for dialogue in USERS:
            user_id = new_id()
            async with db.session() as session:
                session.add(
                    User(id=user_id, email=f"{dialogue.name}@example.com", password_hash="x")
                )
                await session.commit()
            labels: dict[str, str] = {}
            for label, text in dialogue.seed.items():
                saved = await service.remember(user_id, text, source="explicit")
                labels[label] = saved.memory.id
            for n, turn in enumerate(dialogue.turns):
                if oracle is not None:
                    state = await _state(db, user_id)
                    oracle.texts = {k: state[v].text for k, v in labels.items() if v in state}
                await _turn(score, service, forgets, extractor, model, user_id, n, turn, labels)
        await db.dispose()
    return score


async def _turn(
    score: DialogueScore,
    service: MemoryService,
    forgets: ForgetService,
    extractor: MemoryExtractor,
    model: ChatModel,
    user_id: str,
    n: int,
    turn: Turn,
    labels: dict[str, str],
) -> None:
    score.turns += 1
    before = await _state(service.db, user_id)
    info = TurnInfo(user_id, None, f"m{n}{user_id[:6]}", f"a{n}", turn.message, model.info)  # type: ignore[arg-type]
    handled = False
    ask = parse_forget(turn.message)
    if ask is not None:
        matches = await forgets.match(user_id, ask)
        if matches:
            request = await forgets.propose(user_id, ask, matches, message_id=info.user_message_id)
            await forgets.approve(user_id, request.id)  # the user approves the chip
            handled = True
    explicit = parse_request(turn.message)
    if explicit is not None:
        await service.remember(
            user_id, explicit.fact, source="explicit", changed=signals_change(explicit.fact)
        )
    elif not handled and mentions_self(turn.message):
        score.model_calls += 1
        start = time.perf_counter()
        try:
            await extractor.extract(info)
        except Exception as exc:  # a model failing counts as storing nothing
            print(f"extraction failed on {turn.message!r}: {exc}")
        score.seconds += time.perf_counter() - start
    after = await _state(service.db, user_id)
    _score_turn(score, turn, before, after, labels)


def _score_turn(
    score: DialogueScore,
    turn: Turn,
    before: dict[str, Memory],
    after: dict[str, Memory],
    labels: dict[str, str],
) -> None:
    # New active memories (and new pending ones that replace nothing).
    new = [m for i, m in after.items() if i not in before and m.replaces_id is None]
    free = list(turn.add)
    for memory in new:
        score.new_stored += 1
        hit = next((terms for terms in free if _has(memory.text, terms)), None)
        if hit is not None:
            free.remove(hit)
            score.new_correct += 1
            labels["+" + hit[0]] = memory.id
    score.new_expected += len(turn.add)
    score.new_matched += len(turn.add) - len(free)
    # Rewritten in place.
    rewritten = {i for i, m in after.items() if i in before and m.text != before[i].text}
    score.rewritten += len(rewritten)
    score.updates_expected += len(turn.update)
    for label, terms in turn.update:
        target = labels.get(label)
        if target in rewritten and _has(after[target].text, terms):
            score.updates_right += 1
        proposals = [m for m in after.values() if m.replaces_id == target and m.id not in before]
        if any(_has(p.text, terms) for p in proposals):
            score.updates_proposed += 1
    # Deleted.
    gone = {i for i in before if i not in after and before[i].replaces_id is None}
    score.deleted += len(gone)
    expected = {labels[label] for label in turn.forget if label in labels}
    score.deletes_expected += len(turn.forget)
    score.deletes_right += len(gone & expected)
