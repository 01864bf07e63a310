"""An assistant as a file: exported from one Parley, imported into another.

The document is the published version's definition (``AssistantConfig``) plus
the names of its knowledge files: ids mean nothing on another instance, so they
are left out and the importer is told which files to upload again. Tools the
importing instance lacks and a model it does not offer are dropped (and listed
in ``dropped``) instead of refusing the whole file.
"""

from __future__ import annotations

from typing import Any, Literal

import sqlalchemy as sa
from pydantic import BaseModel, Field
from sqlalchemy import select

from parley.assistants.spec import AssistantConfig

__all__ = ["FORMAT", "AssistantDocument", "knowledge_names", "portable"]

FORMAT = 1
_FILES = sa.table("knowledge_files", sa.column("id"), sa.column("filename"))
_COLLECTIONS = sa.table("knowledge_collections", sa.column("id"), sa.column("name"))


class AssistantDocument(BaseModel):
    """``parley: "assistant"``, ``format: 1``; what ``GET .../export`` writes."""

    parley: Literal["assistant"] = "assistant"
    format: int = Field(default=FORMAT, ge=1, le=FORMAT)
    slug: str = Field(default="", max_length=64)
    config: AssistantConfig
    files: list[str] = Field(
        default_factory=list, max_length=500, description="Knowledge to upload again."
    )
    collections: list[str] = Field(default_factory=list, max_length=100)


def portable(config: AssistantConfig) -> AssistantConfig:
    """The definition without instance-local ids."""
    return config.model_copy(update={"file_ids": [], "collection_ids": []})


async def knowledge_names(session: Any, config: AssistantConfig) -> tuple[list[str], list[str]]:
    files = (
        list(
            await session.scalars(select(_FILES.c.filename).where(_FILES.c.id.in_(config.file_ids)))
        )
        if config.file_ids
        else []
    )
    collections = (
        list(
            await session.scalars(
                select(_COLLECTIONS.c.name).where(_COLLECTIONS.c.id.in_(config.collection_ids))
            )
        )
        if config.collection_ids
        else []
    )
    return [str(f) for f in files], [str(c) for c in collections]
