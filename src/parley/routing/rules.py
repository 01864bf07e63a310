"""A routing policy and how it picks a model: ordered rules, first match wins.

Pure: ``choose(policy, need, usable)`` takes what the request needs (``Need``:
images, tools, its size in tokens, the question, how much of a budget is used)
and a way to tell whether a model ref is usable by this caller (it exists, is
offered to the user, is in an API key's scope), and returns the model and the
reason shown on the message (``Route``). A rule whose model is not usable is
skipped, so a policy naming a model that was removed degrades to the next rule,
then to the policy's default, then to the instance's default model.

Rule kinds, each matching when the request:

- ``vision``: carries images (attached to the chat, or sent to ``/v1``);
- ``tools``: asks for tools (the caller's functions, tools the chat turned on,
  the composer's web search);
- ``long_context``: is longer than ``min_tokens`` (default: three quarters of the
  default model's context window: more than fits comfortably);
- ``light`` / ``heavy``: is a light or a hard question (``classify``);
- ``budget``: has used ``at`` (default 0.8) or more of a budget that applies
  (read through ``parley.routing.service.BUDGET_STATE``, provided by the budgets
  feature; without it the rule never matches).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from parley.providers.base import ModelInfo
from parley.routing.classify import classify

__all__ = [
    "AUTO",
    "KINDS",
    "Need",
    "Policy",
    "Route",
    "Rule",
    "RuleKind",
    "choose",
    "is_auto",
    "need_of_request",
]

AUTO = "auto"  # the model name users and API callers pick
RuleKind = Literal["vision", "tools", "long_context", "light", "heavy", "budget"]
KINDS: tuple[str, ...] = get_args(RuleKind)
LONG_SHARE = 0.75  # long_context's default: more than this share of the default's window
BUDGET_AT = 0.8  # budget's default: from 80% used (when users are warned)


def is_auto(ref: str | None) -> bool:
    """Whether ``ref`` names the Auto model (``auto``, or ``parley/auto`` from /v1)."""
    return ref is not None and ref.strip().lower() in (AUTO, f"parley/{AUTO}")


@dataclass(frozen=True, slots=True)
class Rule:
    kind: RuleKind
    model: str  # the ref answering when the rule matches
    min_tokens: int | None = None  # long_context only
    at: float | None = None  # budget only: the share of a budget used

    def public(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "model": self.model,
            "min_tokens": self.min_tokens,
            "at": self.at,
        }

    @classmethod
    def of(cls, raw: Mapping[str, Any]) -> Rule:
        kind = str(raw.get("kind", ""))
        if kind not in KINDS:
            raise ValueError(f"unknown rule kind {kind!r}; one of: {', '.join(KINDS)}")
        model = str(raw.get("model") or "").strip()
        if not model or is_auto(model):
            raise ValueError(f"the {kind} rule needs a model (not Auto itself)")
        min_tokens = raw.get("min_tokens")
        at = raw.get("at")
        return cls(
            kind,  # type: ignore[arg-type]
            model,
            int(min_tokens) if min_tokens not in (None, "") else None,
            float(at) if at not in (None, "") else None,
        )


@dataclass(frozen=True, slots=True)
class Policy:
    """Ordered rules and the model answering when none matches (None: the
    instance's default model)."""

    rules: tuple[Rule, ...] = ()
    default: str | None = None

    def public(self) -> dict[str, Any]:
        return {"rules": [r.public() for r in self.rules], "default": self.default}

    @classmethod
    def of(cls, rules: Sequence[Mapping[str, Any]], default: str | None) -> Policy:
        if default is not None and is_auto(default):
            raise ValueError("the default model of a routing policy cannot be Auto itself")
        return cls(tuple(Rule.of(r) for r in rules), (default or "").strip() or None)

    @property
    def needs_question(self) -> bool:
        return any(r.kind in ("light", "heavy") for r in self.rules)

    @property
    def needs_budget(self) -> bool:
        return any(r.kind == "budget" for r in self.rules)


@dataclass(frozen=True, slots=True)
class Need:
    """What one request needs, measured before the model is chosen."""

    images: int = 0
    tools: bool = False
    tokens: int = 0  # the history and the question, estimated
    question: str = ""
    budget_used: float | None = None  # the largest share used of the budgets that apply


@dataclass(frozen=True, slots=True)
class Route:
    """The routed model, why (shown on the message), and the rule that matched
    (``default`` when none did)."""

    model: str
    reason: str
    rule: str
    scope: str = "instance"  # whose policy: instance, assistant or project
    skipped: tuple[str, ...] = field(default=())  # matching rules whose model was unusable

    def public(self) -> dict[str, Any]:
        return {"auto": True, "rule": self.rule, "reason": self.reason, "scope": self.scope}


def _matches(rule: Rule, need: Need, default_window: int) -> str | None:
    """The reason when ``rule`` matches ``need``, else None."""
    if rule.kind == "vision" and need.images:
        return "image attached" if need.images == 1 else f"{need.images} images attached"
    if rule.kind == "tools" and need.tools:
        return "tools requested"
    if rule.kind == "long_context":
        limit = rule.min_tokens or int(default_window * LONG_SHARE)
        if need.tokens > limit:
            return f"long context (~{need.tokens:,} tokens)"
    if rule.kind in ("light", "heavy") and need.question.strip():
        verdict = classify(need.question)
        if (verdict.level == "light") == (rule.kind == "light"):
            return verdict.reason
    used = need.budget_used
    if rule.kind == "budget" and used is not None and used >= (rule.at or BUDGET_AT):
        return f"budget {round(used * 100)}% used"
    return None


def choose(
    policy: Policy,
    need: Need,
    usable: Callable[[str], ModelInfo | None],
    instance_default: str | None,
    scope: str = "instance",
) -> Route | None:
    """The first matching rule whose model is usable, else the policy's default,
    else ``instance_default``; None when none of them is usable."""
    default_ref = next(
        (ref for ref in (policy.default, instance_default) if ref and usable(ref)), None
    )
    default_info = usable(default_ref) if default_ref else None
    window = default_info.context_window if default_info else 8192
    skipped: list[str] = []
    for rule in policy.rules:
        reason = _matches(rule, need, window)
        if reason is None:
            continue
        if usable(rule.model) is None:
            skipped.append(rule.kind)
            continue
        return Route(rule.model, reason, rule.kind, scope, tuple(skipped))
    if default_ref is None:
        return None
    reason = "no rule matched" if policy.rules else "no routing rules"
    return Route(default_ref, reason, "default", scope, tuple(skipped))


def need_of_request(messages: Sequence[Any], tools: bool, budget_used: float | None = None) -> Need:
    """What a ``/v1`` request needs, from its messages (``parley.messages.Message``)."""
    from parley.engine.tokens import messages_tokens

    question = next((m.content for m in reversed(messages) if m.role == "user"), "")
    return Need(
        images=sum(len(m.images) for m in messages),
        tools=tools,
        tokens=messages_tokens(messages),
        question=question,
        budget_used=budget_used,
    )
