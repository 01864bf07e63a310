"""Pure units: explicit requests, the support guard, ranking, summary planning."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np

from parley.memory.extract import mentions_self, parse_operations, plausible
from parley.memory.recall import Scope, Snapshot, rank_memories
from parley.memory.summaries import plan_summary
from parley.memory.text import clean_fact, parse_request, signals_change, supported_by
from parley.turns.history import split_summarized


def test_explicit_requests_are_recognised_and_questions_are_not() -> None:
    assert parse_request("Remember that I'm vegetarian") == parse_request(
        "remember: i'm vegetarian"
    )
    request = parse_request("Please remember that I'm vegetarian.")
    assert request is not None and request.action == "remember"
    assert request.fact == "I'm vegetarian."
    # Forgetting is asked in the chat first (parley.memory.forget_words), never at once.
    assert parse_request("Forget that I live in Paris") is None
    dont = parse_request("Don't forget that my sister is Ana")
    assert dont is not None and dont.action == "remember"
    assert parse_request("Do you remember what I said about Paris?") is None
    assert parse_request("remember?") is None
    assert parse_request("What should I cook tonight?") is None


def test_support_guard_keeps_only_what_the_user_said() -> None:
    said = "By the way, I'm vegetarian and my dog is called Rex."
    assert supported_by("The user is vegetarian.", said)
    assert supported_by("User's dog is called Rex.", said)
    assert not supported_by("The user lives in Tokyo.", said)
    assert not supported_by("The user is allergic to peanuts.", said)
    assert not supported_by("The user.", said)  # nothing meaningful to check


def test_change_markers_and_first_person_gate() -> None:
    assert signals_change("I now live in Berlin")
    assert signals_change("I'm not vegetarian anymore")
    assert not signals_change("I live in Berlin")
    assert mentions_self("My daughter starts school in September")
    assert not mentions_self("What is the capital of France?")
    assert clean_fact('  "i like tea"  ') == "I like tea."


def test_malformed_operations_are_skipped() -> None:
    text = (
        '{"memories": [{"action": "add", "fact": "I like tea", "memory": 0},'
        ' {"action": "explode", "fact": "x", "memory": 0}, "nonsense",'
        ' {"action": "update", "fact": "I like green tea", "memory": true}]}'
    )
    ops = parse_operations(text)
    assert [(o.action, o.fact, o.memory) for o in ops] == [
        ("add", "I like tea.", 0),
        ("update", "I like green tea.", 0),
    ]
    assert parse_operations("not json") == []
    assert plausible("I write Rust.")
    assert not plausible("Max turns 8 next week, gift ideas?")
    assert not plausible("The user's message is about Rust.")
    assert not plausible("The user has updated the fact that they are allergic to nuts.")
    assert parse_operations('{"other": 1}') == []


def _row(i: int, text: str, scope: tuple[str | None, str | None] = (None, None)) -> Any:
    return SimpleNamespace(
        id=f"m{i}",
        text=text,
        scope_type=scope[0],
        scope_id=scope[1],
        updated_at=i,  # larger = newer
        embedding=None,
        embedding_model=None,
    )


def test_ranking_prefers_matches_then_recent_and_respects_scopes() -> None:
    rows = [
        _row(1, "I live in Paris"),
        _row(2, "My dog is called Rex"),
        _row(3, "I prefer short answers"),
        _row(4, "The launch codename is Falcon", ("project", "p1")),
        _row(5, "My bot persona is a pirate", ("assistant", "a1")),
        *[_row(10 + n, f"Filler fact number {n} about gardening") for n in range(10)],
    ]
    snap = Snapshot.build((len(rows), "v"), rows, None)
    ids = [snap.ids[i] for i in rank_memories(snap, "what is my dog called?", None, Scope(), 5)]
    assert ids[0] == "m2"
    assert len(ids) <= 4  # one match plus at most three recent fillers
    everything = rank_memories(snap, "launch codename falcon pirate persona", None, Scope(), 20)
    assert {"m4", "m5"}.isdisjoint(snap.ids[i] for i in everything)
    in_project = rank_memories(snap, "launch codename", None, Scope(project_id="p1"), 3)
    assert snap.ids[in_project[0]] == "m4"
    other_project = rank_memories(snap, "launch codename", None, Scope(project_id="p2"), 20)
    assert "m4" not in {snap.ids[i] for i in other_project}


def test_semantic_ranking_uses_vectors_above_threshold() -> None:
    rows = [_row(1, "alpha"), _row(2, "beta"), _row(3, "gamma")]
    snap = Snapshot.build((3, "v"), rows, "test")
    snap.set_vectors([0, 1, 2], np.eye(3, dtype=np.float32))
    query = np.full(3, 0.05, dtype=np.float32)
    query[snap.ids.index("m3")] = 0.99  # rows are stored newest first
    order = rank_memories(snap, "unrelated words", query, Scope(), 1)
    assert [snap.ids[i] for i in order] == ["m3"]


def _msg(i: int, role: str, size: int, pinned: bool = False) -> Any:
    return SimpleNamespace(
        id=f"r{i}", role=role, content="x" * size, steps=[], pinned=pinned, parent_id=None
    )


def test_plan_summary_waits_until_needed_and_cuts_before_a_user_message() -> None:
    rows = [_msg(i, "user" if i % 2 == 0 else "assistant", 400) for i in range(10)]
    assert plan_summary(rows[:2], 1000, trigger=0.7, keep=0.4) is None
    assert plan_summary(rows, 2000, trigger=0.7, keep=0.4) is None  # 1,040 tokens: fits
    cut = plan_summary(rows, 1000, trigger=0.7, keep=0.4)
    assert cut is not None and 0 < cut < len(rows)
    assert rows[cut].role == "user"
    kept = sum(len(r.content) // 4 + 4 for r in rows[cut:])
    assert kept <= 0.4 * 1000


def test_split_summarized_keeps_pinned_and_ignores_other_branches() -> None:
    path = [_msg(0, "user", 10, pinned=True), _msg(1, "assistant", 10), _msg(2, "user", 10)]
    rows, summary = split_summarized(path, "S", "r1")
    assert summary == "S" and [r.id for r in rows] == ["r0", "r2"]
    rows, summary = split_summarized(path, "S", "elsewhere")
    assert summary is None and len(rows) == 3
    rows, summary = split_summarized(path, None, "r1")
    assert summary is None and len(rows) == 3
