"""The model protocol every provider implements, and per-model capabilities.

A model is one async method, ``stream(request)``, yielding ``ProviderEvent``s
and ending with exactly one ``Finish``. Failures raise a ``ProviderError``
subclass (see ``parley.errors``) so callers handle one shape. Cancelling the
iterating task must stop the upstream request promptly.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from parley.messages import Message, ProviderEvent, ToolSpec


@dataclass(slots=True, frozen=True)
class ModelInfo:
    """What Parley knows about one model: identity, capabilities, prices.

    ``ref`` ("provider/model") is how users and the API name a model.
    Prices are USD per million tokens; local models cost 0.
    ``tool_use`` false: Parley offers this model no tools at all (neither natively
    nor through JSON decisions), for models too small to follow a tool schema.
    ``demo``: a starter model for trying Parley, not for real work (the web app
    says so and suggests connecting a real one).
    """

    provider: str
    name: str
    context_window: int = 8192
    max_output_tokens: int = 1024
    supports_tools: bool = True
    supports_vision: bool = False
    supports_reasoning: bool = False
    input_price: float = 0.0
    output_price: float = 0.0
    display_name: str | None = None
    cached_input_price: float = 0.0
    enabled: bool = True
    visible_to: tuple[str, ...] | None = None  # user ids; None: every user
    tool_use: bool = True
    demo: bool = False

    @property
    def ref(self) -> str:
        return f"{self.provider}/{self.name}"

    def offered_to(self, user_id: str | None) -> bool:
        """Whether this model is offered to ``user_id`` (``None``: no user, e.g. the CLI)."""
        if not self.enabled:
            return False
        return self.visible_to is None or user_id is None or user_id in self.visible_to

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        return (input_tokens * self.input_price + output_tokens * self.output_price) / 1_000_000


@dataclass(slots=True)
class ChatRequest:
    """One streaming request. ``response_format`` is a JSON schema the output
    must follow (providers that support grammars or structured output honour it)."""

    messages: list[Message]
    tools: list[ToolSpec] = field(default_factory=list)
    temperature: float | None = None
    max_tokens: int | None = None
    response_format: dict[str, Any] | None = None
    stop: list[str] | None = None
    # Which tools the model must (not) use: "auto", "none", "required", or
    # "function:<name>"; each adapter says it in its provider's terms.
    tool_choice: str | None = None
    # How hard a reasoning model thinks ("low", "medium", "high"...); adapters of
    # models without ``supports_reasoning`` leave it out.
    reasoning_effort: str | None = None
    # False: at most one tool call per model answer (None: the provider's default).
    parallel_tool_calls: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict)


ProviderKind = Literal["openai", "anthropic", "local", "scripted"]


@runtime_checkable
class ChatModel(Protocol):
    """A model that can stream a chat completion."""

    info: ModelInfo

    def stream(self, request: ChatRequest) -> AsyncIterator[ProviderEvent]:
        """Yield events for ``request``; raise ``ProviderError`` on failure."""
        ...


@runtime_checkable
class Provider(Protocol):
    """An authenticated endpoint serving one or more models."""

    name: str
    kind: ProviderKind

    async def list_models(self) -> list[ModelInfo]:
        """Models this provider offers (configured ones, or discovered)."""
        ...

    def model(self, name: str) -> ChatModel:
        """A handle for one model; raises ``ModelNotFound`` if unknown."""
        ...

    async def aclose(self) -> None:
        """Release connections and loaded weights."""
        ...
