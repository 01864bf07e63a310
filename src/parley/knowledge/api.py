"""HTTP routes of files and knowledge (see docs/ARCHITECTURE.md, "Files and knowledge").

Every handler takes ``CurrentUser`` and goes through ``KnowledgeStore`` or
``KnowledgeService`` (both scoped by user id): another user's file, chunk,
collection or conversation is a 404, exactly like one that does not exist. The
rules (upload, download, delete, search) live in the service; this module is
the HTTP shape: multipart in, the response models below out.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from starlette.datastructures import FormData, UploadFile

from parley.errors import Invalid
from parley.http.deps import DB, CurrentUser, service
from parley.http.guard import GuardedRoute
from parley.http.problems import not_found
from parley.knowledge.service import KnowledgeService
from parley.knowledge.store import KnowledgeStore
from parley.knowledge.tables import KnowledgeChunk, KnowledgeCollection, KnowledgeFile

router = APIRouter(route_class=GuardedRoute, tags=["files"])


Knowledge = Annotated[KnowledgeService, Depends(service(KnowledgeService))]


# ------------------------------------------------------------------ responses
# Timestamps are ``datetime.isoformat()`` of UTC times (``+00:00``).


class FilePublic(BaseModel):
    id: str
    filename: str
    media_type: str
    kind: str = Field(description="pdf docx pptx xlsx csv html markdown text code json image")
    size_bytes: int
    sha256: str
    status: Literal["queued", "parsing", "embedding", "ready", "failed"]
    progress: float = Field(description="0 to 1: reading is the first half, indexing the second")
    error_code: str | None
    error: str | None
    pages: int | None
    pages_done: int
    chunk_count: int
    embedded_count: int
    tokens: int
    conversation_id: str | None
    collection_id: str | None
    message_id: str | None
    created_at: str
    updated_at: str

    @staticmethod
    def fields_of(row: KnowledgeFile) -> dict[str, object]:
        progress = 0.0
        if row.status == "ready":
            progress = 1.0
        elif row.status == "parsing" and row.pages:
            progress = 0.5 * row.pages_done / max(row.pages, 1)
        elif row.status == "embedding":
            progress = 0.5 + 0.5 * row.embedded_count / max(row.chunk_count, 1)
        return {
            "id": row.id,
            "filename": row.filename,
            "media_type": row.media_type,
            "kind": row.kind,
            "size_bytes": row.size_bytes,
            "sha256": row.sha256,
            "status": row.status,
            "progress": round(progress, 3),
            "error_code": row.error_code,
            "error": row.error,
            "pages": row.pages,
            "pages_done": row.pages_done,
            "chunk_count": row.chunk_count,
            "embedded_count": row.embedded_count,
            "tokens": row.tokens,
            "conversation_id": row.conversation_id,
            "collection_id": row.collection_id,
            "message_id": row.message_id,
            "created_at": row.created_at.isoformat(),
            "updated_at": row.updated_at.isoformat(),
        }

    @classmethod
    def from_row(cls, row: KnowledgeFile) -> FilePublic:
        return cls.model_validate(cls.fields_of(row))


class UploadedFile(FilePublic):
    duplicate: bool = Field(description="the same bytes were already here: this is that file")


class FileList(BaseModel):
    items: list[FilePublic]


class Passage(BaseModel):
    """One passage of a file (what a citation points at), with its place in the document."""

    id: int
    file_id: str
    filename: str
    kind: str
    page: int | None
    pages: int | None
    section: str | None
    ordinal: int
    text: str
    char_start: int
    char_end: int

    @classmethod
    def from_rows(cls, chunk: KnowledgeChunk, row: KnowledgeFile) -> Passage:
        return cls(
            id=chunk.id,
            file_id=row.id,
            filename=row.filename,
            kind=row.kind,
            page=chunk.page,
            pages=row.pages,
            section=chunk.section,
            ordinal=chunk.ordinal,
            text=chunk.text,
            char_start=chunk.char_start,
            char_end=chunk.char_end,
        )


class CollectionPublic(BaseModel):
    id: str
    name: str
    description: str
    file_count: int = Field(description="counted in lists and details only (0 elsewhere)")
    created_at: str
    updated_at: str

    @classmethod
    def from_row(cls, row: KnowledgeCollection, file_count: int = 0) -> CollectionPublic:
        return cls(
            id=row.id,
            name=row.name,
            description=row.description,
            file_count=file_count,
            created_at=row.created_at.isoformat(),
            updated_at=row.updated_at.isoformat(),
        )


class CollectionDetail(CollectionPublic):
    files: list[FilePublic]


class CollectionList(BaseModel):
    items: list[CollectionPublic]


class ConversationKnowledge(BaseModel):
    """What a conversation can draw on: its attached files and collections."""

    files: list[FilePublic] = Field(description="uploaded into this chat (they belong to it)")
    collections: list[CollectionPublic]
    library_files: list[FilePublic] = Field(
        description="picked from the library for this chat (they stay in the library)"
    )


class KnowledgeHit(BaseModel):
    chunk_id: int
    file_id: str
    filename: str
    page: int | None
    section: str | None
    text: str
    char_start: int
    char_end: int
    score: float
    ranks: dict[str, int] = Field(description="rank in each retriever that found it (1 = best)")


class KnowledgeHits(BaseModel):
    items: list[KnowledgeHit]


# ------------------------------------------------------------------ files


# A download is whatever the file is (``service.safe_media_type``): bytes of any type.
_BYTES = {"*/*": {"schema": {"type": "string", "format": "binary"}}}


_UPLOAD_FORM = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary", "description": "the file"},
                        "conversation_id": {"type": "string", "description": "attach to it"},
                        "collection_id": {"type": "string", "description": "add to it"},
                    },
                }
            }
        },
    }
}


def _field(form: FormData, name: str) -> str | None:
    value = form.get(name)
    if value is not None and not isinstance(value, str):
        raise Invalid(f"'{name}' must be a plain form field, not a file.")
    return value or None


@router.post(
    "/api/files",
    status_code=201,
    responses={200: {"model": UploadedFile, "description": "The same bytes were already here"}},
    openapi_extra=_UPLOAD_FORM,
)
async def upload_file(
    request: Request, knowledge: Knowledge, response: Response, user: CurrentUser
) -> UploadedFile:
    """Upload a file to a conversation (attach), a collection, or your library.

    201 with the new file; 200 with ``duplicate: true`` when the same bytes are
    already in the same place. The form is read here, after the caller is known
    and has room for one more upload (``Uploads.slot``), never before."""
    with knowledge.uploads.slot(user.id):
        form = await request.form(max_files=1, max_fields=4)
        try:
            file = form.get("file")
            if not isinstance(file, UploadFile):
                raise Invalid("Send the file in the multipart field 'file'.", "file_missing")
            uploaded = await knowledge.upload(
                user.id,
                file.file,
                file.filename,
                conversation_id=_field(form, "conversation_id"),
                collection_id=_field(form, "collection_id"),
            )
        finally:
            await form.close()  # the spooled body goes now, however this ends
    if uploaded.duplicate:
        response.status_code = 200
    return UploadedFile.model_validate(
        {**FilePublic.fields_of(uploaded.file), "duplicate": uploaded.duplicate}
    )


@router.get("/api/files")
async def list_files(
    user: CurrentUser,
    db: DB,
    conversation_id: str | None = None,
    collection_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> FileList:
    rows = await KnowledgeStore(db, user.id).files(
        conversation_id=conversation_id, collection_id=collection_id, limit=limit
    )
    return FileList(items=[FilePublic.from_row(r) for r in rows])


@router.get("/api/files/{file_id}")
async def get_file(file_id: str, user: CurrentUser, db: DB) -> FilePublic:
    row = await KnowledgeStore(db, user.id).file(file_id)
    if row is None:
        raise not_found("file")
    return FilePublic.from_row(row)


@router.get(
    "/api/files/{file_id}/content",
    response_class=FileResponse,
    responses={200: {"content": _BYTES, "description": "The file's bytes"}},
)
async def download_file(file_id: str, knowledge: Knowledge, user: CurrentUser) -> FileResponse:
    """The original bytes, as an attachment with a content type that cannot run."""
    found = await knowledge.download(user.id, file_id)
    return FileResponse(
        found.path,
        media_type=found.media_type,
        filename=found.filename,
        content_disposition_type="attachment",
        # X-Content-Type-Options: nosniff comes with every response (SecurityHeaders).
        headers={
            "Content-Security-Policy": "sandbox; default-src 'none'",
            "Cache-Control": "private, no-store",
        },
    )


@router.get("/api/files/{file_id}/chunks/{chunk_id}")
async def get_chunk(file_id: str, chunk_id: str, user: CurrentUser, db: DB) -> Passage:
    """One passage (what a citation points at), with its place in the document."""
    if not chunk_id.isdigit() or len(chunk_id) > 18:
        raise not_found("passage")
    store = KnowledgeStore(db, user.id)
    chunk = await store.chunk(file_id, int(chunk_id))
    row = await store.file(file_id) if chunk is not None else None
    if chunk is None or row is None:
        raise not_found("passage")
    return Passage.from_rows(chunk, row)


@router.delete("/api/files/{file_id}", status_code=204)
async def delete_file(file_id: str, knowledge: Knowledge, user: CurrentUser) -> Response:
    """Delete a file with its passages and vectors (and its bytes, if no one else has them)."""
    await knowledge.delete_file(user.id, file_id)
    return Response(status_code=204)


# ------------------------------------------------------------------ collections


class CollectionCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=4000)


class CollectionUpdate(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=4000)


@router.get("/api/collections", tags=["knowledge"])
async def list_collections(user: CurrentUser, db: DB) -> CollectionList:
    rows = await KnowledgeStore(db, user.id).collections()
    return CollectionList(items=[CollectionPublic.from_row(c, n) for c, n in rows])


@router.post("/api/collections", status_code=201, tags=["knowledge"])
async def create_collection(body: CollectionCreate, user: CurrentUser, db: DB) -> CollectionPublic:
    row = await KnowledgeStore(db, user.id).add_collection(
        " ".join(body.name.split()), body.description
    )
    await db.commit()
    return CollectionPublic.from_row(row)


@router.get("/api/collections/{collection_id}", tags=["knowledge"])
async def get_collection(collection_id: str, user: CurrentUser, db: DB) -> CollectionDetail:
    store = KnowledgeStore(db, user.id)
    row = await store.collection(collection_id)
    if row is None:
        raise not_found("collection")
    files = await store.files(collection_id=row.id, limit=1000)
    return CollectionDetail(
        **CollectionPublic.from_row(row, len(files)).model_dump(),
        files=[FilePublic.from_row(f) for f in files],
    )


@router.patch("/api/collections/{collection_id}", tags=["knowledge"])
async def update_collection(
    collection_id: str, body: CollectionUpdate, user: CurrentUser, db: DB
) -> CollectionPublic:
    store = KnowledgeStore(db, user.id)
    row = await store.collection(collection_id)
    if row is None:
        raise not_found("collection")
    changes = body.model_dump(exclude_none=True)
    if "name" in changes:
        changes["name"] = " ".join(changes["name"].split())
    await store.update_collection(row, **changes)
    await db.commit()
    return CollectionPublic.from_row(row)


@router.delete("/api/collections/{collection_id}", status_code=204, tags=["knowledge"])
async def delete_collection(
    collection_id: str, knowledge: Knowledge, user: CurrentUser
) -> Response:
    """Delete a collection with its files (passages, vectors, and unshared bytes)."""
    await knowledge.delete_collection(user.id, collection_id)
    return Response(status_code=204)


@router.get("/api/conversations/{conversation_id}/knowledge", tags=["knowledge"])
async def conversation_knowledge(
    conversation_id: str, user: CurrentUser, db: DB
) -> ConversationKnowledge:
    """What a conversation can draw on: its attached files and collections."""
    store = KnowledgeStore(db, user.id)
    if await store.conversation(conversation_id) is None:
        raise not_found("conversation")
    files = await store.files(conversation_id=conversation_id, limit=1000)
    collections = await store.attached_collections(conversation_id)
    linked = await store.linked_files(conversation_id)
    return ConversationKnowledge(
        files=[FilePublic.from_row(f) for f in files],
        collections=[CollectionPublic.from_row(c) for c in collections],
        library_files=[FilePublic.from_row(f) for f in linked],
    )


async def _link(
    db: DB,
    user_id: str,
    conversation_id: str,
    kind: Literal["collection", "file"],
    target: str,
    on: bool,
) -> Response:
    """Link (``on``) or unlink a collection or file and a conversation, once both are
    the caller's (404 for either otherwise, exactly like one that does not exist)."""
    store = KnowledgeStore(db, user_id)
    if await store.conversation(conversation_id) is None:
        raise not_found("conversation")
    change: Callable[[str, str], Awaitable[None]]
    if kind == "collection":
        if await store.collection(target) is None:
            raise not_found("collection")
        change = store.attach if on else store.detach
    else:
        if await store.file(target) is None:
            raise not_found("file")
        change = store.link_file if on else store.unlink_file
    await change(conversation_id, target)
    await db.commit()
    return Response(status_code=204)


@router.put(
    "/api/conversations/{conversation_id}/collections/{collection_id}",
    status_code=204,
    tags=["knowledge"],
)
async def attach_collection(
    conversation_id: str, collection_id: str, user: CurrentUser, db: DB
) -> Response:
    return await _link(db, user.id, conversation_id, "collection", collection_id, on=True)


@router.delete(
    "/api/conversations/{conversation_id}/collections/{collection_id}",
    status_code=204,
    tags=["knowledge"],
)
async def detach_collection(
    conversation_id: str, collection_id: str, user: CurrentUser, db: DB
) -> Response:
    return await _link(db, user.id, conversation_id, "collection", collection_id, on=False)


@router.put(
    "/api/conversations/{conversation_id}/files/{file_id}",
    status_code=204,
    tags=["knowledge"],
)
async def attach_library_file(
    conversation_id: str, file_id: str, user: CurrentUser, db: DB
) -> Response:
    """Use one of your files in this chat by reference (it stays where it is)."""
    return await _link(db, user.id, conversation_id, "file", file_id, on=True)


@router.delete(
    "/api/conversations/{conversation_id}/files/{file_id}",
    status_code=204,
    tags=["knowledge"],
)
async def detach_library_file(
    conversation_id: str, file_id: str, user: CurrentUser, db: DB
) -> Response:
    """Stop using a library file in this chat (the file itself stays)."""
    return await _link(db, user.id, conversation_id, "file", file_id, on=False)


# ------------------------------------------------------------------ search


class SearchBody(BaseModel):
    query: str = Field(min_length=1, max_length=2000)
    conversation_id: str | None = None
    collection_id: str | None = None
    file_ids: list[str] | None = Field(default=None, max_length=1000)
    limit: int = Field(default=8, ge=1, le=50)
    mode: Literal["hybrid", "keyword", "dense"] = "hybrid"


@router.post("/api/knowledge/search", tags=["knowledge"])
async def search(body: SearchBody, knowledge: Knowledge, user: CurrentUser) -> KnowledgeHits:
    """Passages of your files for a query (the same retrieval answers use)."""
    hits = await knowledge.search(
        user.id,
        body.query,
        conversation_id=body.conversation_id,
        collection_id=body.collection_id,
        file_ids=body.file_ids,
        limit=body.limit,
        mode=body.mode,
    )
    return KnowledgeHits(items=[KnowledgeHit.model_validate(h, from_attributes=True) for h in hits])
