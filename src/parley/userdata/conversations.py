"""Deleting conversations with everything the features keep for them.

``delete_conversations`` is the one way a conversation is deleted (the
``DELETE /api/conversations/{id}`` route, the purge of expired temporary
chats): in one transaction, each feature's ``ConversationData`` hook removes
its share (attachments with their passages and vectors, code outputs), then
the messages and the conversation go; after the commit the hooks' work runs
(stored bytes, in-memory indexes, the conversation's kernel). Database
cascades alone would drop the feature rows but leave bytes on disk and a
kernel running.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from parley.storage.tables import Conversation, Message
from parley.userdata.hooks import DeleteJob, UserDataHooks
from parley.userdata.service import _run_after_commit

__all__ = ["delete_conversations"]


async def delete_conversations(
    session: AsyncSession,
    user_id: str,
    conversation_ids: Sequence[str],
    hooks: UserDataHooks,
) -> list[str]:
    """Delete those of ``conversation_ids`` that belong to ``user_id``, commit, then
    run the hooks' after-commit work. Returns the ids deleted (another user's id
    is left alone and not returned, like one that does not exist)."""
    if not conversation_ids:
        return []
    owned = list(
        (
            await session.scalars(
                select(Conversation.id).where(
                    Conversation.id.in_(list(dict.fromkeys(conversation_ids))),
                    Conversation.user_id == user_id,
                )
            )
        ).all()
    )
    if not owned:
        return []
    job = DeleteJob()
    for hook in reversed(hooks.conversations):
        await hook.delete_conversations(session, user_id, owned, job)
    await session.execute(
        delete(Message).where(Message.conversation_id.in_(owned), Message.user_id == user_id)
    )
    await session.execute(
        delete(Conversation).where(Conversation.id.in_(owned), Conversation.user_id == user_id)
    )
    await session.commit()
    await _run_after_commit(job.after_commit)
    return owned
