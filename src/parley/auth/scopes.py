"""What an API key may do: its scopes.

A key may be limited to some endpoint groups of the OpenAI-compatible API
(``models``, ``chat``, ``responses``, ``conversations``, ``embeddings``,
``images``, ``audio``), to some models (by ref, ``provider/model``), to some
assistants (by id or slug: ``assistant/<slug>`` as a ``/v1`` model) and to some
projects (by id). An empty list means "everything": a key made without scopes
can do what its owner can.

Projects. A ``/v1`` request that reaches chats (``chat``, ``responses``,
``conversations``, and ``images``, which a chat may have made) may name a
project in the ``X-Parley-Project`` header; it then runs *in* that project: new
chats are made there (the project's instructions, files and project-only memory
apply, as in a native chat of the project) and only chats of that project can be
read, continued or deleted (``parley.storage.inproject``). A key limited to
projects must name one of them, or runs in its only one when it lists exactly
one (``project_for``); it never reaches a chat outside them. Chat Completions
with a plain model is a relay without Parley's context, so it refuses to run in
a project (use ``/v1/responses`` or an ``assistant/<slug>`` model). Whether the
key's owner may still work in the project (owner or editor) is asked on every
request (``parley.http.deps.in_project``), never remembered: losing access
refuses the next request. An unlimited key that names no project works on all
of its owner's chats, as before.

A key with any limit is a ``/v1`` key: the native API (``/api/...``) refuses it,
because the native routes are not grouped this way and would otherwise be a way
around the limits (``parley.http.deps``).

The rules live here, without HTTP, so every ``/v1`` router (chat completions,
embeddings, and the Responses package) asks the same questions:
``scopes.allows_endpoint(group)``, ``scopes.allows_model(ref)`` and
``scopes.project_for(named)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, get_args

__all__ = ["ENDPOINT_GROUPS", "PROJECT_GROUPS", "EndpointGroup", "KeyScopes", "ProjectRefused"]

EndpointGroup = Literal[
    "models", "chat", "responses", "conversations", "embeddings", "images", "audio"
]
ENDPOINT_GROUPS: tuple[str, ...] = get_args(EndpointGroup)
# The endpoint groups whose requests reach chats or what they made (images), so run
# in a project when one is named.
PROJECT_GROUPS: frozenset[str] = frozenset({"chat", "responses", "conversations", "images"})


class ProjectRefused(Exception):
    """A request's project is outside the key's projects (the message says which)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


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
    projects: tuple[str, ...] = ()  # ids

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

    def project_for(self, named: str | None) -> str | None:
        """The project a request runs in: the one it names, else the key's only
        project, else none (an unlimited key). Raises ``ProjectRefused`` for a
        project the key is not limited to, or a key of several projects that
        names none."""
        named = (named or "").strip() or None
        if not self.projects:
            return named
        if named is None:
            if len(self.projects) == 1:
                return self.projects[0]
            raise ProjectRefused(
                "This API key is limited to several projects: name one in the "
                "X-Parley-Project header."
            )
        if named not in self.projects:
            raise ProjectRefused(
                f"This API key is limited to other projects than {named!r} "
                f"(it may use: {', '.join(self.projects)})."
            )
        return named
