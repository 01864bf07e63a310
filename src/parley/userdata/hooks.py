"""The ``UserData`` hook: a feature's share of one user's export, import and deletion.

The core owns the account, its conversations, settings and API key metadata;
each feature owns its share (memories, files and collections...) and registers
a ``UserData`` hook through the seam (``FeatureContext.add_user_data``). The
services in ``parley.userdata.service`` walk the core's stores and then every
hook, so an export is complete without the core knowing any feature.

Each call gets a small job object for what crosses between the core and the
hooks: the bytes that go into (or came out of) a ZIP export, the new ids the
core gave the conversations and messages it imported (a memory or a file
points at them), and work to run once the transaction has committed (freeing
stored bytes, waking a background worker).

A feature that keeps data *per conversation* (attachments, code outputs, a
running kernel) also registers a ``ConversationData`` hook
(``FeatureContext.add_conversation_data``): deleting a conversation, by the
user or by the temporary-chat purge, goes through
``parley.userdata.conversations.delete_conversations``, which calls every such hook in
the same transaction, so what the feature keeps goes with the conversation
instead of waiting for a database cascade (rows only) or a restart (bytes).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

__all__ = [
    "AfterCommit",
    "ConversationData",
    "DeleteJob",
    "ExportJob",
    "ImportJob",
    "UserData",
    "UserDataHooks",
]

AfterCommit = Callable[[], Awaitable[None]]


@dataclass(slots=True)
class ExportJob:
    """``with_files``: the export is a ZIP that carries file bytes; a hook adds each
    blob it wants in it to ``files`` (``sha256 -> path on disk``)."""

    with_files: bool = False
    files: dict[str, Path] = field(default_factory=dict)


@dataclass(slots=True)
class ImportJob:
    """``conversations``/``messages``: the exported id -> the new id in this account
    (ids never collide: everything imported gets a fresh one). ``files``: bytes
    from a ZIP export, ``sha256 -> a file whose content has that digest``."""

    conversations: dict[str, str] = field(default_factory=dict)
    messages: dict[str, str] = field(default_factory=dict)
    files: Mapping[str, Path] = field(default_factory=dict)
    after_commit: list[AfterCommit] = field(default_factory=list)


@dataclass(slots=True)
class DeleteJob:
    """``after_commit``: work once the deletion has committed (removing bytes,
    killing a kernel). A hook that removes bytes there also records them in a
    ``parley.userdata.journal.DeletionJournal`` before the commit, so a crash
    between the commit and this work does not leave them on disk."""

    after_commit: list[AfterCommit] = field(default_factory=list)


class UserData(Protocol):
    """A feature's share of one user's data, for export, import and account deletion.

    ``export`` returns JSON-ready data, stored under the feature's ``name``;
    ``import_data`` takes what an export produced, validates it (raising
    ``parley.errors.InvalidImport``) and adds it to the user's account with new
    ids, returning counts for the report (``{"memories": 3}``); ``delete``
    removes what database cascades do not (bytes on disk, rows in other stores).
    Each runs inside the caller's session and unit of work; the caller commits,
    then runs the job's ``after_commit`` callbacks.
    """

    name: str

    async def export(self, session: AsyncSession, user_id: str, job: ExportJob) -> Any: ...

    async def import_data(
        self, session: AsyncSession, user_id: str, data: Any, job: ImportJob
    ) -> dict[str, int]: ...

    async def delete(self, session: AsyncSession, user_id: str, job: DeleteJob) -> None: ...


class ConversationData(Protocol):
    """A feature's share of some conversations, removed when they are deleted.

    ``delete_conversations`` runs inside the deleting session before the
    conversations' rows go (so the feature can still read what is attached to
    them); it deletes the feature's rows and puts the removal of bytes, caches
    and processes in ``job.after_commit``. ``conversation_ids`` all belong to
    ``user_id`` (the caller checked).
    """

    name: str

    async def delete_conversations(
        self,
        session: AsyncSession,
        user_id: str,
        conversation_ids: Sequence[str],
        job: DeleteJob,
    ) -> None: ...


@dataclass(slots=True)
class UserDataHooks:
    """Every feature's ``UserData`` and ``ConversationData``, in start order
    (provided under its class by the composition root)."""

    hooks: list[UserData] = field(default_factory=list)
    conversations: list[ConversationData] = field(default_factory=list)
