"""An assistant's definition (one version's ``config``) and the diff between two.

The definition is one JSON document so a version is a single immutable row and a
restore is a copy. The diff is for people: the instructions as a line diff, the
other fields as "was / now" (tools, knowledge and starters as added / removed).
"""

from __future__ import annotations

import difflib
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

MemoryMode = Literal["off", "user", "scoped"]
MAX_STARTERS = 4
SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
Id = str


class AssistantConfig(BaseModel):
    """Everything a version holds. ``model`` empty: the instance's default model;
    ``memory``: ``off``, ``user`` (the user's own memories) or ``scoped`` (memories
    made in its chats stay there; the user's global ones are still read)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=80)
    avatar: str = Field(default="", max_length=16, description="An emoji (or empty).")
    description: str = Field(default="", max_length=500)
    instructions: str = Field(default="", max_length=20_000)
    starters: list[str] = Field(default_factory=list, max_length=MAX_STARTERS)
    model: str = Field(default="", max_length=300)
    collection_ids: list[Id] = Field(default_factory=list, max_length=50)
    file_ids: list[Id] = Field(default_factory=list, max_length=200)
    tools: list[str] = Field(default_factory=list, max_length=100)
    memory: MemoryMode = "user"
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)

    @field_validator("name", "description", "instructions", "model")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()

    @field_validator("avatar")
    @classmethod
    def _avatar(cls, value: str) -> str:
        value = value.strip()
        if any(ch in value for ch in "<>&\"'/\\") or any(ch.isspace() for ch in value):
            raise ValueError("the avatar is an emoji or a few letters, without markup")
        return value

    @field_validator("starters")
    @classmethod
    def _starters(cls, value: list[str]) -> list[str]:
        out = [" ".join(s.split())[:300] for s in value]
        return [s for s in dict.fromkeys(out) if s]

    @field_validator("collection_ids", "file_ids", "tools")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        for item in value:
            if not item or len(item) > 200:
                raise ValueError("each entry is a non-empty id or name")
        return list(dict.fromkeys(value))


def slugify(name: str) -> str:
    """A slug from a name: lowercase ASCII letters, digits and dashes."""
    text = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return text[:48].strip("-") or "assistant"


class FieldChange(BaseModel):
    field: str
    before: Any = None
    after: Any = None
    added: list[str] = Field(default_factory=list)
    removed: list[str] = Field(default_factory=list)


class DiffLine(BaseModel):
    op: Literal[" ", "+", "-"]
    text: str


def instructions_diff(before: str, after: str) -> list[DiffLine]:
    """Every line of both texts, marked kept, added or removed (no context cut)."""
    out: list[DiffLine] = []
    for line in difflib.ndiff(before.splitlines(), after.splitlines()):
        tag, text = line[:1], line[2:]
        if tag == "?":
            continue
        out.append(DiffLine(op="+" if tag == "+" else "-" if tag == "-" else " ", text=text))
    return out


LISTS = ("starters", "tools", "collection_ids", "file_ids")
SCALARS = ("name", "avatar", "description", "model", "memory", "temperature")


def changes(before: AssistantConfig, after: AssistantConfig) -> list[FieldChange]:
    """What differs besides the instructions, in a fixed field order."""
    out: list[FieldChange] = []
    for name in SCALARS:
        a, b = getattr(before, name), getattr(after, name)
        if a != b:
            out.append(FieldChange(field=name, before=a, after=b))
    for name in LISTS:
        a, b = getattr(before, name), getattr(after, name)
        if a != b:
            out.append(
                FieldChange(
                    field=name,
                    before=a,
                    after=b,
                    added=[x for x in b if x not in a],
                    removed=[x for x in a if x not in b],
                )
            )
    return out
