"""What an API key may do: its scopes.

A key may be limited to some endpoint groups of the OpenAI-compatible API
(``models``, ``chat``, ``responses``, ``conversations``, ``embeddings``,
``images``, ``audio``) and to
some models (by ref, ``provider/model``). and to some assistants (by id or slug:
``assistant/<slug>`` as a ``/v1`` model). Projects are stored and shown but not
enforced yet. An empty list
means "everything": a key made without scopes can do what its owner can.

A key with any limit is a ``/v1`` key: the native API (``/api/...``) refuses it,
because the native routes are not grouped this way and would otherwise be a way
around the limits (``parley.http.deps``).

The rules live here, without HTTP, so every ``/v1`` router (chat completions,
embeddings, and the Responses package) asks the same questions:
``scopes.allows_endpoint(group)`` and ``scopes.allows_model(ref)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, get_args

__all__ = ["ENDPOINT_GROUPS", "EndpointGroup", "KeyScopes"]

EndpointGroup = Literal[
    "models", "chat", "responses", "conversations", "embeddings", "images", "audio"
]
ENDPOINT_GROUPS: tuple[str, ...] = get_args(EndpointGroup)

_LISTS = ("endpoints", "models", "assistants", "projects")


def _strings(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list | tuple):
        return ()
    return tuple(dict.fromkeys(str(item) for item in value if isinstance(item, str) and item))


@dataclass(frozen=True, slots=True)
class KeyScopes:
    endpoints: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    assistants: tuple[str, ...] = ()  # ids or slugs
    projects: tuple[str, ...] = ()  # reserved: stored and shown, enforced later

    @classmethod
    def from_stored(cls, value: Any) -> KeyScopes:
        """From the key row's JSON (``None`` or a bad value: no limits)."""
        if not isinstance(value, dict):
            return cls()
        return cls(**{name: _strings(value.get(name)) for name in _LISTS})

    def to_stored(self) -> dict[str, list[str]] | None:
        """The row's JSON; ``None`` when the key is not limited at all."""
        if self.unlimited:
            return None
        return {name: list(getattr(self, name)) for name in _LISTS}

    @property
    def unlimited(self) -> bool:
        return not (self.endpoints or self.models or self.assistants or self.projects)

    def allows_endpoint(self, group: str) -> bool:
        return not self.endpoints or group in self.endpoints

    def allows_model(self, ref: str) -> bool:
        return not self.models or ref in self.models

    def allows_assistant(self, assistant_id: str, slug: str) -> bool:
        """An assistant (listed by id or slug) is usable through the assistant: the
        key's model list does not apply to the assistant's own model."""
        return not self.assistants or assistant_id in self.assistants or slug in self.assistants
