"""Persistence: the async database handle, migrations, scoped repositories, search.

``Database`` owns the engine; ``ConversationStore`` reads and writes one user's
conversations (every query scoped to that user); ``search_conversations`` is the
full-text search over that user's titles and messages.
"""

from parley.storage.conversations import (
    INTERRUPTED_MESSAGE,
    ConversationStore,
    InvalidCursor,
    NotFound,
    as_utc,
    fail_stale_streaming,
)
from parley.storage.db import Database
from parley.storage.search import SearchHit, rebuild_search_index, search_conversations

__all__ = [
    "INTERRUPTED_MESSAGE",
    "ConversationStore",
    "Database",
    "InvalidCursor",
    "NotFound",
    "SearchHit",
    "as_utc",
    "fail_stale_streaming",
    "rebuild_search_index",
    "search_conversations",
]
