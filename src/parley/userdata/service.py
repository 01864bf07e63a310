"""Export, import and deletion of one user's data, across the core and the features.

- ``export_user``: the profile and settings, API key metadata and every
  conversation with all its messages (``ConversationStore.all_for_export``), then
  each feature's share from its ``UserData`` hook.
- ``import_user``: what an export produced, into this account, with new ids
  throughout (importing twice, or into another account, never collides; a
  memory or file keeps pointing at its conversation through the id map). All
  or nothing: one transaction.
- ``delete_account``: the features' hooks, then the user's rows.

These take the session and commit it themselves (then run the hooks'
after-commit work): each is one unit of work. HTTP concerns (the body, the
download) stay in the router; archives are ``parley.userdata.archive``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from parley.errors import InvalidImport
from parley.jsonshape import PREFERENCES, shape_error
from parley.storage.conversations import INTERRUPTED_MESSAGE, ConversationStore
from parley.storage.db import scrub
from parley.storage.tables import ApiKey, Conversation, Message, User, new_id, utcnow
from parley.timezones import find_zone
from parley.usage.tables import UsageEvent
from parley.userdata.document import (
    FORMAT,
    ConversationRecord,
    ExportDocument,
    conversation_record,
    iso,
    key_record,
    profile_record,
    usage_record,
)
from parley.userdata.hooks import AfterCommit, DeleteJob, ExportJob, ImportJob, UserDataHooks

__all__ = ["Export", "ImportReport", "delete_account", "export_user", "import_user"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Export:
    """The export document and, for a ZIP export, the bytes to put beside it."""

    document: dict[str, Any]
    files: dict[str, Path] = field(default_factory=dict)


class ImportReport(BaseModel):
    """What an import added to the account."""

    conversations: int
    messages: int
    settings: bool
    features: dict[str, dict[str, int]]
    ignored: list[str]


# ---------------------------------------------------------------- export


async def export_user(
    session: AsyncSession, user: User, hooks: UserDataHooks, *, with_files: bool = False
) -> Export:
    keys = await session.scalars(
        select(ApiKey).where(ApiKey.user_id == user.id).order_by(ApiKey.created_at.desc())
    )
    conversations = await ConversationStore(session, user.id).all_for_export()
    usage = await session.scalars(
        select(UsageEvent).where(UsageEvent.user_id == user.id).order_by(UsageEvent.at)
    )
    job = ExportJob(with_files=with_files)
    features = {hook.name: await hook.export(session, user.id, job) for hook in hooks.hooks}
    document = {
        "format": FORMAT,
        "exported_at": iso(utcnow()),
        "files_included": with_files,
        "user": profile_record(user),
        "api_keys": [key_record(k) for k in keys],
        "conversations": [conversation_record(c, ms) for c, ms in conversations],
        "usage": [usage_record(event) for event in usage],
        "features": features,
    }
    return Export(document, job.files if with_files else {})


# ---------------------------------------------------------------- import


def read_document(data: Any) -> ExportDocument:
    """Validate an export's core part (``InvalidImport`` says what is wrong)."""
    if not isinstance(data, dict) or "format" not in data:
        raise InvalidImport("This is not a Parley export (no 'format' field).")
    try:
        return ExportDocument.model_validate(data)
    except ValidationError as exc:
        raise InvalidImport(f"The export is not valid: {_first_error(exc)}.") from None


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error.get("loc", ()))
    return f"{where}: {error.get('msg', 'invalid')}" if where else str(error.get("msg"))


def _check_tree(conv: ConversationRecord) -> None:
    """Every parent is in the same conversation and no chain loops (the tree
    ``active_path`` walks must be a tree)."""
    parents = {m.id: m.parent_id for m in conv.messages}
    if len(parents) != len(conv.messages):
        raise InvalidImport(f"Conversation {conv.id!r} has two messages with the same id.")
    done: set[str] = set()
    for start in parents:
        seen: set[str] = set()
        node: str | None = start
        while node is not None and node not in done:
            if node in seen:
                raise InvalidImport(f"The messages of conversation {conv.id!r} form a loop.")
            seen.add(node)
            if node not in parents:
                raise InvalidImport(
                    f"A message of conversation {conv.id!r} answers one that is not in it."
                )
            node = parents[node]
        done |= seen


def _newest_leaf(conv: ConversationRecord, ids: dict[str, str], now: datetime) -> str | None:
    """The branch to show when the export does not name one: its newest leaf."""
    parents = {m.parent_id for m in conv.messages}
    leaves = [m for m in conv.messages if m.id not in parents]
    if not leaves:
        return None
    newest = max(reversed(leaves), key=lambda m: _stamp(m.created_at, now))
    return ids[newest.id]


def _tools(names: list[str] | None) -> list[str]:
    """The stored form of a tool choice (see ``ConversationPublic.tools``)."""
    if names is None:
        return []
    return [n for n in dict.fromkeys(names) if n] or [""]


def _stamp(value: datetime | None, default: datetime) -> datetime:
    return value if value is not None else default


async def import_user(
    session: AsyncSession,
    user: User,
    hooks: UserDataHooks,
    data: Any,
    *,
    files: Mapping[str, Path] | None = None,
) -> ImportReport:
    """Add an export's content to ``user``'s account and commit (all or nothing)."""
    document = await asyncio.to_thread(read_document, data)  # large: off the event loop
    for conv in document.conversations:
        _check_tree(conv)
    job = ImportJob(files=files or {})
    now = utcnow()
    conversation_rows: list[dict[str, Any]] = []
    message_rows: list[dict[str, Any]] = []
    for conv in document.conversations:
        conv_id = job.conversations[conv.id] = new_id()
        ids = {m.id: new_id() for m in conv.messages}
        job.messages.update(ids)
        leaf = ids.get(conv.active_leaf_id or "") or _newest_leaf(conv, ids, now)
        until = ids.get(conv.summary_until_id or "")
        conversation_rows.append(
            {
                "id": conv_id,
                "user_id": user.id,
                "title": conv.title or "New chat",
                "title_generated": conv.title_generated,
                "model": conv.model,
                "tools": _tools(conv.tools),
                "pinned": conv.pinned,
                "archived": conv.archived,
                "temporary": conv.temporary,
                "project_id": conv.project_id,
                "assistant_id": conv.assistant_id,
                "active_leaf_id": leaf,
                "summary": conv.summary if until else None,
                "summary_until_id": until,
                "created_at": _stamp(conv.created_at, now),
                "updated_at": _stamp(conv.updated_at, now),
            }
        )
        for m in conv.messages:
            interrupted = m.status == "streaming"  # cut off when exported: failed, retryable
            created = _stamp(m.created_at, now)
            message_rows.append(
                {
                    "id": ids[m.id],
                    "conversation_id": conv_id,
                    "user_id": user.id,
                    "parent_id": ids[m.parent_id] if m.parent_id else None,
                    "role": m.role,
                    "content": m.content,
                    "reasoning": m.reasoning,
                    "steps": m.steps,
                    "sources": m.sources,
                    "status": "failed" if interrupted else m.status,
                    "provider": m.provider,
                    "model": m.model,
                    "input_tokens": m.input_tokens,
                    "output_tokens": m.output_tokens,
                    "latency_ms": m.latency_ms,
                    "ttft_ms": m.ttft_ms,
                    "finish_reason": m.finish_reason,
                    "cost": m.cost,
                    "error_code": "interrupted" if interrupted else m.error_code,
                    "error_message": INTERRUPTED_MESSAGE if interrupted else m.error_message,
                    "feedback": m.feedback,
                    "pinned": m.pinned,
                    "created_at": created,
                    "updated_at": _stamp(m.updated_at, created),
                }
            )
    for rows, table in ((conversation_rows, Conversation), (message_rows, Message)):
        for start in range(0, len(rows), 1000):
            await session.execute(insert(table), rows[start : start + 1000])
    settings = _restore_settings(user, document)
    by_name = {hook.name: hook for hook in hooks.hooks}
    features: dict[str, dict[str, int]] = {}
    for name, part in document.features.items():
        hook = by_name.get(name)
        if hook is not None and part is not None:
            features[name] = await hook.import_data(session, user.id, part, job)
    await session.commit()
    await _run_after_commit(job.after_commit)
    return ImportReport(
        conversations=len(conversation_rows),
        messages=len(message_rows),
        settings=settings,
        features=features,
        ignored=sorted(set(document.features) - set(by_name)),
    )


def _restore_settings(user: User, document: ExportDocument) -> bool:
    """Custom instructions, time zone and preferences; not the name, email or role
    (they belong to the account imported into). False when nothing was exported."""
    if not document.user.id:
        return False
    profile = document.user
    if find_zone(profile.timezone) is not None:  # else the account keeps its own zone
        user.timezone = profile.timezone
    # Text the export has replaces the account's; an empty field never erases it.
    if profile.about_me.strip():
        user.about_me = profile.about_me
    if profile.response_style.strip():
        user.response_style = profile.response_style
    preferences = {**(user.stored_preferences() or {}), **profile.preferences}
    if shape_error(preferences, PREFERENCES) is None:  # else the account keeps its own
        user.preferences = preferences
    return True


async def _run_after_commit(work: Iterable[AfterCommit]) -> None:
    for step in work:
        try:
            await step()
        except Exception:
            log.exception("work after a user-data commit failed")


# ---------------------------------------------------------------- deletion


async def delete_account(session: AsyncSession, user: User, hooks: UserDataHooks) -> None:
    """Delete the account and everything in it, then commit. The caller checks the
    password and that an administrator remains (``accounts.ensure_an_admin_remains``)."""
    job = DeleteJob()
    for hook in reversed(hooks.hooks):
        await hook.delete(session, user.id, job)
    await session.execute(delete(Message).where(Message.user_id == user.id))
    await session.execute(delete(Conversation).where(Conversation.user_id == user.id))
    await session.delete(user)  # sessions, keys and feature rows go by ON DELETE CASCADE
    await session.commit()
    await _run_after_commit(job.after_commit)
    await scrub(session)  # and out of the database's own files
