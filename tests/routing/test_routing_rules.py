"""Auto's rules without a server: each rule kind picks its model, rules are tried
in order, an unusable model is skipped, and the light/hard classifier holds its
accuracy on the held-out half of the labelled set."""

from __future__ import annotations

import pytest
from bench.routing_questions import split

from parley.messages import ImagePart, Message
from parley.providers.base import ModelInfo
from parley.routing.classify import classify
from parley.routing.rules import Need, Policy, choose, is_auto, need_of_request

MODELS = {
    "p/light": ModelInfo("p", "light", context_window=8_000),
    "p/heavy": ModelInfo("p", "heavy", context_window=32_000),
    "p/eyes": ModelInfo("p", "eyes", supports_vision=True),
    "p/tools": ModelInfo("p", "tools"),
    "p/long": ModelInfo("p", "long", context_window=200_000),
    "p/cheap": ModelInfo("p", "cheap"),
}

POLICY = Policy.of(
    [
        {"kind": "budget", "model": "p/cheap"},
        {"kind": "vision", "model": "p/eyes"},
        {"kind": "tools", "model": "p/tools"},
        {"kind": "long_context", "model": "p/long"},
        {"kind": "light", "model": "p/light"},
        {"kind": "heavy", "model": "p/heavy"},
    ],
    "p/heavy",
)


def route(
    need: Need, policy: Policy = POLICY, usable: dict[str, ModelInfo] = MODELS
) -> tuple[str, str, str]:
    found = choose(policy, need, usable.get, "p/light")
    assert found is not None
    return found.model, found.rule, found.reason


@pytest.mark.parametrize(
    ("need", "expected"),
    [
        (Need(images=1, question="what is this?"), ("p/eyes", "vision", "image attached")),
        (Need(images=2, question="compare"), ("p/eyes", "vision", "2 images attached")),
        (Need(tools=True, question="hi"), ("p/tools", "tools", "tools requested")),
        (
            Need(tokens=30_000, question="hi"),
            ("p/long", "long_context", "long context (~30,000 tokens)"),
        ),
        (Need(question="What is the capital of France?"), ("p/light", "light", "short question")),
        (
            Need(question="Prove that there are infinitely many primes, step by step."),
            ("p/heavy", "heavy", "complex question"),
        ),
        (Need(question="hi", budget_used=0.85), ("p/cheap", "budget", "budget 85% used")),
        (Need(question="hi", budget_used=0.5), ("p/light", "light", "short question")),
    ],
)
def test_each_rule_picks_its_model(need: Need, expected: tuple[str, str, str]) -> None:
    assert route(need) == expected


def test_the_first_matching_rule_wins() -> None:
    # an image and tools: vision comes first in the policy
    assert route(Need(images=1, tools=True))[0] == "p/eyes"


def test_long_context_defaults_to_three_quarters_of_the_default_window() -> None:
    policy = Policy.of([{"kind": "long_context", "model": "p/long"}], "p/light")
    assert route(Need(tokens=5_900), policy)[1] == "default"  # 8,000 * 0.75 = 6,000
    assert route(Need(tokens=6_100), policy)[1] == "long_context"
    explicit = Policy.of([{"kind": "long_context", "model": "p/long", "min_tokens": 100}], None)
    assert route(Need(tokens=101), explicit)[0] == "p/long"


def test_an_unusable_model_is_skipped_to_the_next_rule() -> None:
    without_eyes = {ref: info for ref, info in MODELS.items() if ref != "p/eyes"}
    found = choose(POLICY, Need(images=1, tools=True), without_eyes.get, "p/light")
    assert found is not None
    assert (found.model, found.rule, found.skipped) == ("p/tools", "tools", ("vision",))


def test_no_rule_matching_falls_to_the_policy_default_then_the_instance_default() -> None:
    policy = Policy.of([{"kind": "vision", "model": "p/eyes"}], "p/heavy")
    assert route(Need(question="hello"), policy) == ("p/heavy", "default", "no rule matched")
    bare = Policy()
    assert route(Need(question="hello"), bare) == ("p/light", "default", "no routing rules")
    assert choose(bare, Need(), {}.get, "p/light") is None


def test_bad_policies_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown rule kind"):
        Policy.of([{"kind": "astrology", "model": "p/light"}], None)
    with pytest.raises(ValueError, match="needs a model"):
        Policy.of([{"kind": "vision", "model": "auto"}], None)
    with pytest.raises(ValueError, match="cannot be Auto"):
        Policy.of([], "auto")
    assert is_auto("Auto") and is_auto("parley/auto") and not is_auto("p/auto-x")


def test_a_v1_request_is_measured_from_its_messages() -> None:
    image = ImagePart(url="data:image/png;base64,AAAA")
    messages = [
        Message("system", "Be brief."),
        Message("user", "What is in this picture?", images=[image]),
    ]
    need = need_of_request(messages, tools=False)
    assert need.images == 1 and need.question == "What is in this picture?"
    assert need.tokens > 0 and not need.tools


def test_the_classifier_holds_on_the_held_out_half() -> None:
    train, held_out = split()
    assert {label for _, label in held_out} == {"light", "hard"}
    right = sum(classify(text).level == label for text, label in held_out)
    assert right / len(held_out) >= 0.85, f"{right}/{len(held_out)} held-out questions"
    assert sum(classify(text).level == label for text, label in train) == len(train)
