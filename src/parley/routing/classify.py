"""Is a question light or hard? A cheap local heuristic, no model call.

Routing must not add latency before the first token (the benchmark's budget is
2 ms p99 for the whole routing step), so this is a handful of regular
expressions and counts, not a model. It scores what makes a question need a
heavy model: length, code, several questions or steps, and words that ask for
reasoning (prove, design, debug, compare...); and what makes one light: a short
lookup (what is, define, translate), greetings. The weights and the threshold
were set on the training half of a small labelled set and are checked on the
held-out half (``bench/routing_questions.py``; ``python -m bench routing`` prints
both accuracies, a test keeps the held-out one above its floor).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

__all__ = ["THRESHOLD", "Difficulty", "classify", "score"]

THRESHOLD = 1  # a score at or above it is "hard" (chosen on the training half)

_HARD_WORDS = re.compile(
    r"\b(prove|proof|derive|derivation|analy[sz]e|analysis|design|architect\w*|optimi[sz]e|"
    r"algorithm\w*|complexity|debug\w*|refactor\w*|implement\w*|trade-?offs?|compare|"
    r"comparison|step[- ]by[- ]step|theorem|integral|equation|strategy|evaluate|critique|"
    r"migrate|migration|concurren\w*|race condition|deadlock|scal(e|ing|ability)|"
    r"in detail|detailed|thorough\w*|essay|plan|proposal|why does|why do|how would you)\b",
    re.IGNORECASE,
)
_LIGHT_START = re.compile(
    r"^\s*(hi|hello|hey|thanks|thank you|what is|what's|who is|who was|when (is|was|did)|"
    r"where is|define|translate|spell|how do you say|what does .{1,30} mean|capital of)\b",
    re.IGNORECASE,
)
_CODE = re.compile(r"```|\bdef |\bclass |\bSELECT\b|\bfunction\b|=>|;\s*$|\{\s*$|Traceback")
_MATH = re.compile(r"\d\s*[-+*/^=]\s*\d|\\frac|\bsqrt\b|∫|∑")


@dataclass(frozen=True, slots=True)
class Difficulty:
    level: Literal["light", "hard"]
    score: int
    reason: str  # a few words the message shows: "short question", "code question"...


def score(text: str) -> tuple[int, str]:
    """The question's score and the main reason it got it."""
    words = len(text.split())
    points = 0
    why = "complex question"
    if words > 80:
        points += 3
        why = "long question"
    elif words > 35:
        points += 2
    elif words > 18:
        points += 1
    hard = len(_HARD_WORDS.findall(text))
    points += min(hard, 2) * 2
    if _CODE.search(text):
        points += 3
        why = "code question"
    if _MATH.search(text):
        points += 1
    if text.count("?") > 1:
        points += 1
    if text.count("\n") >= 3:
        points += 1
    if _LIGHT_START.search(text) and hard == 0:
        points -= 2
    if words <= 6 and hard == 0:
        points -= 1
    return points, why


def classify(text: str) -> Difficulty:
    points, why = score(text)
    if points >= THRESHOLD:
        return Difficulty("hard", points, why)
    words = len(text.split())
    return Difficulty("light", points, "short question" if words <= 15 else "simple question")
