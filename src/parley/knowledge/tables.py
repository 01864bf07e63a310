"""Tables of files and knowledge (on the shared ``Base``; see ``parley.schema``).

- ``KnowledgeFile``: one user's record of an uploaded file. The bytes live once
  per content hash under the data dir (``blobs.py``); two users uploading the
  same file get two records over one blob. Status and progress are columns, so
  any worker can answer "is it ready?".
- ``KnowledgeChunk``: a passage with its citation metadata (page, section,
  character span in the extracted text) and its vector (float32 bytes) with the
  name of the model that made it. Keyword search indexes are created by the
  migration (FTS5 on SQLite, a ``search_tsv`` column on PostgreSQL).
- ``KnowledgeCollection``: a named, reusable set of files; attached to
  conversations through ``KnowledgeConversationCollection``.
- ``KnowledgeConversationFile``: a library file used by a conversation by
  reference (the file stays in the library; detaching or deleting the chat
  leaves it there), unlike an upload into the chat, which belongs to it.

Everything carries ``user_id``; ``project_id``/``assistant_id`` are reserved scopes.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from parley.storage.tables import Base, UTCDateTime, new_id, utcnow

__all__ = [
    "KnowledgeChunk",
    "KnowledgeCollection",
    "KnowledgeConversationCollection",
    "KnowledgeConversationFile",
    "KnowledgeFile",
]

# SQLite makes "INTEGER PRIMARY KEY" the rowid (which FTS5 points at); BIGINT elsewhere.
ChunkId = BigInteger().with_variant(Integer(), "sqlite")


class KnowledgeCollection(Base):
    __tablename__ = "knowledge_collections"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    project_id: Mapped[str | None] = mapped_column(String(32))
    assistant_id: Mapped[str | None] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class KnowledgeFile(Base):
    __tablename__ = "knowledge_files"
    __table_args__ = (
        Index("ix_knowledge_files_user_created", "user_id", "created_at"),
        Index("ix_knowledge_files_sha256", "sha256"),
        Index("ix_knowledge_files_status", "status"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    conversation_id: Mapped[str | None] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    collection_id: Mapped[str | None] = mapped_column(
        ForeignKey("knowledge_collections.id", ondelete="CASCADE"), index=True
    )
    message_id: Mapped[str | None] = mapped_column(String(32))  # the question it came with
    project_id: Mapped[str | None] = mapped_column(String(32))
    assistant_id: Mapped[str | None] = mapped_column(String(32))
    sha256: Mapped[str] = mapped_column(String(64))
    filename: Mapped[str] = mapped_column(String(255))
    media_type: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16))  # pdf docx pptx xlsx csv html markdown ...
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    # queued | parsing | embedding | ready | failed
    status: Mapped[str] = mapped_column(String(16), default="queued")
    error_code: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(String(1000))
    pages: Mapped[int | None] = mapped_column(Integer)
    pages_done: Mapped[int] = mapped_column(Integer, default=0)
    chunk_count: Mapped[int] = mapped_column(Integer, default=0)
    embedded_count: Mapped[int] = mapped_column(Integer, default=0)
    chars: Mapped[int] = mapped_column(Integer, default=0)
    tokens: Mapped[int] = mapped_column(Integer, default=0)
    embed_model: Mapped[str | None] = mapped_column(String(200))
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class KnowledgeChunk(Base):
    __tablename__ = "knowledge_chunks"
    __table_args__ = (
        Index("ix_knowledge_chunks_file_ordinal", "file_id", "ordinal"),
        Index("ix_knowledge_chunks_user_model", "user_id", "embed_model"),
    )

    id: Mapped[int] = mapped_column(ChunkId, primary_key=True, autoincrement=True)
    file_id: Mapped[str] = mapped_column(ForeignKey("knowledge_files.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(String(32))
    ordinal: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    page: Mapped[int | None] = mapped_column(Integer)
    section: Mapped[str | None] = mapped_column(String(500))
    char_start: Mapped[int] = mapped_column(Integer)
    char_end: Mapped[int] = mapped_column(Integer)
    tokens: Mapped[int] = mapped_column(Integer)
    embedding: Mapped[bytes | None] = mapped_column(LargeBinary)
    embed_model: Mapped[str | None] = mapped_column(String(200))


class KnowledgeConversationCollection(Base):
    __tablename__ = "knowledge_conversation_collections"

    conversation_id: Mapped[str] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    collection_id: Mapped[str] = mapped_column(
        ForeignKey("knowledge_collections.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    user_id: Mapped[str] = mapped_column(String(32), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class KnowledgeConversationFile(Base):
    __tablename__ = "knowledge_conversation_files"

    conversation_id: Mapped[str] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    file_id: Mapped[str] = mapped_column(
        ForeignKey("knowledge_files.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    user_id: Mapped[str] = mapped_column(String(32), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
