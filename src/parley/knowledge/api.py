"""HTTP routes of files and knowledge (see docs/ARCHITECTURE.md, "Files and knowledge").

Every handler takes ``CurrentUser`` and goes through ``KnowledgeStore`` (scoped
by user id): another user's file, chunk, collection or conversation is a 404,
exactly like one that does not exist.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, Query, Response, UploadFile
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from parley.http.deps import DB, CurrentUser, service
from parley.http.problems import Problem, not_found
from parley.knowledge.blobs import TooLarge
from parley.knowledge.service import KnowledgeService
from parley.knowledge.sniff import UploadRejected, check_limits, detect, safe_filename
from parley.knowledge.store import KnowledgeStore
from parley.knowledge.tables import KnowledgeCollection, KnowledgeFile

router = APIRouter(tags=["files"])

# What a download is served as: never HTML or SVG (they would run in our origin).
_SAFE_DOWNLOAD = {
    "pdf": "application/pdf",
    "image": None,  # the sniffed image type (png, jpeg, gif, webp)
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


Knowledge = Annotated[KnowledgeService, Depends(service(KnowledgeService))]


def file_json(row: KnowledgeFile) -> dict[str, Any]:
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


def collection_json(row: KnowledgeCollection, file_count: int = 0) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "description": row.description,
        "file_count": file_count,
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
    }


# ------------------------------------------------------------------ files


@router.post("/api/files", status_code=201)
async def upload_file(
    knowledge: Knowledge,
    response: Response,
    user: CurrentUser,
    db: DB,
    file: Annotated[UploadFile, File(description="the file")],
    conversation_id: Annotated[str | None, Form()] = None,
    collection_id: Annotated[str | None, Form()] = None,
) -> dict[str, Any]:
    """Upload a file to a conversation (attach), a collection, or your library."""
    config = knowledge.config
    store = KnowledgeStore(db, user.id)
    conversation_id = conversation_id or None
    collection_id = collection_id or None
    project_id = assistant_id = None
    if conversation_id is not None:
        conv = await store.conversation(conversation_id)
        if conv is None:
            raise not_found("conversation")
        project_id, assistant_id = conv.project_id, conv.assistant_id
    if collection_id is not None and await store.collection(collection_id) is None:
        raise not_found("collection")
    name = safe_filename(file.filename)
    try:
        tmp, sha256, size = await asyncio.to_thread(
            knowledge.blobs.spool, file.file, config.files_max_bytes
        )
    except TooLarge:
        raise Problem(
            413,
            f"'{name}' is larger than the {config.files_max_bytes:,}-byte limit for files.",
            "file_too_large",
        ) from None
    try:
        detected = await asyncio.to_thread(detect, tmp, name)
        pages = await asyncio.to_thread(
            check_limits,
            tmp,
            detected,
            name,
            max_pages=config.files_max_pages,
            max_unzipped_bytes=config.files_max_unzipped_bytes,
            max_ratio=config.files_max_zip_ratio,
        )
    except UploadRejected as exc:
        knowledge.blobs.discard(tmp)
        raise Problem(exc.status, exc.detail, exc.code) from None
    except BaseException:
        knowledge.blobs.discard(tmp)
        raise
    try:
        existing = await store.duplicate(sha256, conversation_id, collection_id)
    except BaseException:
        knowledge.blobs.discard(tmp)
        raise
    if existing is not None and knowledge.blobs.exists(sha256):
        knowledge.blobs.discard(tmp)
        response.status_code = 200
        return {**file_json(existing), "duplicate": True}
    is_image = detected.kind == "image"
    # The record is committed before the bytes move into place, so a concurrent
    # delete of another record of the same bytes sees this one and keeps the blob.
    try:
        row = await store.add_file(
            conversation_id=conversation_id,
            collection_id=collection_id,
            project_id=project_id,
            assistant_id=assistant_id,
            sha256=sha256,
            filename=name,
            media_type=detected.media_type,
            kind=detected.kind,
            size_bytes=size,
            status="ready" if is_image else "queued",
            pages=pages,
        )
        await db.commit()
    except BaseException:
        knowledge.blobs.discard(tmp)
        raise
    await asyncio.to_thread(knowledge.blobs.commit, tmp, sha256)
    if not is_image:
        knowledge.ingestor.enqueue(row.id)
    return {**file_json(row), "duplicate": False}


@router.get("/api/files")
async def list_files(
    user: CurrentUser,
    db: DB,
    conversation_id: str | None = None,
    collection_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> dict[str, Any]:
    rows = await KnowledgeStore(db, user.id).files(
        conversation_id=conversation_id, collection_id=collection_id, limit=limit
    )
    return {"items": [file_json(r) for r in rows]}


@router.get("/api/files/{file_id}")
async def get_file(file_id: str, user: CurrentUser, db: DB) -> dict[str, Any]:
    row = await KnowledgeStore(db, user.id).file(file_id)
    if row is None:
        raise not_found("file")
    return file_json(row)


@router.get("/api/files/{file_id}/content")
async def download_file(file_id: str, knowledge: Knowledge, user: CurrentUser, db: DB) -> Response:
    """The original bytes, as an attachment with a content type that cannot run."""
    row = await KnowledgeStore(db, user.id).file(file_id)
    if row is None:
        raise not_found("file")
    path = knowledge.blobs.path(row.sha256)
    if not path.is_file():
        raise Problem(410, "The stored bytes of this file are missing.", "file_missing")
    if row.kind == "image":
        media_type = row.media_type
    else:
        media_type = _SAFE_DOWNLOAD.get(row.kind) or (
            "text/plain; charset=utf-8"
            if row.media_type.startswith(("text/", "application/json"))
            else "application/octet-stream"
        )
    return FileResponse(
        path,
        media_type=media_type,
        filename=row.filename,
        content_disposition_type="attachment",
        # X-Content-Type-Options: nosniff comes with every response (SecurityHeaders).
        headers={
            "Content-Security-Policy": "sandbox; default-src 'none'",
            "Cache-Control": "private, no-store",
        },
    )


@router.get("/api/files/{file_id}/chunks/{chunk_id}")
async def get_chunk(file_id: str, chunk_id: str, user: CurrentUser, db: DB) -> dict[str, Any]:
    """One passage (what a citation points at), with its place in the document."""
    if not chunk_id.isdigit() or len(chunk_id) > 18:
        raise not_found("passage")
    store = KnowledgeStore(db, user.id)
    chunk = await store.chunk(file_id, int(chunk_id))
    row = await store.file(file_id) if chunk is not None else None
    if chunk is None or row is None:
        raise not_found("passage")
    return {
        "id": chunk.id,
        "file_id": row.id,
        "filename": row.filename,
        "kind": row.kind,
        "page": chunk.page,
        "pages": row.pages,
        "section": chunk.section,
        "ordinal": chunk.ordinal,
        "text": chunk.text,
        "char_start": chunk.char_start,
        "char_end": chunk.char_end,
    }


@router.delete("/api/files/{file_id}", status_code=204)
async def delete_file(file_id: str, knowledge: Knowledge, user: CurrentUser, db: DB) -> Response:
    """Delete a file with its passages and vectors (and its bytes, if no one else has them)."""
    store = KnowledgeStore(db, user.id)
    row = await store.file(file_id)
    if row is None:
        raise not_found("file")
    sha256 = row.sha256
    await store.delete_file(row)
    await db.commit()
    knowledge.index.invalidate(user.id)
    await knowledge.release_blob(sha256)
    return Response(status_code=204)


# ------------------------------------------------------------------ collections


class CollectionCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=4000)


class CollectionUpdate(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=4000)


@router.get("/api/collections", tags=["knowledge"])
async def list_collections(user: CurrentUser, db: DB) -> dict[str, Any]:
    rows = await KnowledgeStore(db, user.id).collections()
    return {"items": [collection_json(c, n) for c, n in rows]}


@router.post("/api/collections", status_code=201, tags=["knowledge"])
async def create_collection(body: CollectionCreate, user: CurrentUser, db: DB) -> dict[str, Any]:
    row = await KnowledgeStore(db, user.id).add_collection(
        " ".join(body.name.split()), body.description
    )
    await db.commit()
    return collection_json(row)


@router.get("/api/collections/{collection_id}", tags=["knowledge"])
async def get_collection(collection_id: str, user: CurrentUser, db: DB) -> dict[str, Any]:
    store = KnowledgeStore(db, user.id)
    row = await store.collection(collection_id)
    if row is None:
        raise not_found("collection")
    files = await store.files(collection_id=row.id, limit=1000)
    return {**collection_json(row, len(files)), "files": [file_json(f) for f in files]}


@router.patch("/api/collections/{collection_id}", tags=["knowledge"])
async def update_collection(
    collection_id: str, body: CollectionUpdate, user: CurrentUser, db: DB
) -> dict[str, Any]:
    store = KnowledgeStore(db, user.id)
    row = await store.collection(collection_id)
    if row is None:
        raise not_found("collection")
    changes = body.model_dump(exclude_none=True)
    if "name" in changes:
        changes["name"] = " ".join(changes["name"].split())
    await store.update_collection(row, **changes)
    await db.commit()
    return collection_json(row)


@router.delete("/api/collections/{collection_id}", status_code=204, tags=["knowledge"])
async def delete_collection(
    collection_id: str, knowledge: Knowledge, user: CurrentUser, db: DB
) -> Response:
    """Delete a collection with its files (passages, vectors, and unshared bytes)."""
    store = KnowledgeStore(db, user.id)
    row = await store.collection(collection_id)
    if row is None:
        raise not_found("collection")
    blobs = await store.collection_blobs(row.id)
    await store.delete_collection(row)
    await db.commit()
    knowledge.index.invalidate(user.id)
    for sha256 in set(blobs):
        await knowledge.release_blob(sha256)
    return Response(status_code=204)


@router.get("/api/conversations/{conversation_id}/knowledge", tags=["knowledge"])
async def conversation_knowledge(conversation_id: str, user: CurrentUser, db: DB) -> dict[str, Any]:
    """What a conversation can draw on: its attached files and collections."""
    store = KnowledgeStore(db, user.id)
    if await store.conversation(conversation_id) is None:
        raise not_found("conversation")
    files = await store.files(conversation_id=conversation_id, limit=1000)
    collections = await store.attached_collections(conversation_id)
    return {
        "files": [file_json(f) for f in files],
        "collections": [collection_json(c) for c in collections],
    }


@router.put(
    "/api/conversations/{conversation_id}/collections/{collection_id}",
    status_code=204,
    tags=["knowledge"],
)
async def attach_collection(
    conversation_id: str, collection_id: str, user: CurrentUser, db: DB
) -> Response:
    store = KnowledgeStore(db, user.id)
    if await store.conversation(conversation_id) is None:
        raise not_found("conversation")
    if await store.collection(collection_id) is None:
        raise not_found("collection")
    await store.attach(conversation_id, collection_id)
    await db.commit()
    return Response(status_code=204)


@router.delete(
    "/api/conversations/{conversation_id}/collections/{collection_id}",
    status_code=204,
    tags=["knowledge"],
)
async def detach_collection(
    conversation_id: str, collection_id: str, user: CurrentUser, db: DB
) -> Response:
    store = KnowledgeStore(db, user.id)
    if await store.conversation(conversation_id) is None:
        raise not_found("conversation")
    if await store.collection(collection_id) is None:
        raise not_found("collection")
    await store.detach(conversation_id, collection_id)
    await db.commit()
    return Response(status_code=204)


# ------------------------------------------------------------------ search


class SearchBody(BaseModel):
    query: str = Field(min_length=1, max_length=2000)
    conversation_id: str | None = None
    collection_id: str | None = None
    file_ids: list[str] | None = Field(default=None, max_length=1000)
    limit: int = Field(default=8, ge=1, le=50)
    mode: Literal["hybrid", "keyword", "dense"] = "hybrid"


@router.post("/api/knowledge/search", tags=["knowledge"])
async def search(
    body: SearchBody, knowledge: Knowledge, user: CurrentUser, db: DB
) -> dict[str, Any]:
    """Passages of your files for a query (the same retrieval answers use)."""
    store = KnowledgeStore(db, user.id)
    scope: list[str] | None = None
    if body.conversation_id is not None:
        if await store.conversation(body.conversation_id) is None:
            raise not_found("conversation")
        scope = [f.id for f in await store.scope_files(body.conversation_id)]
    if body.collection_id is not None:
        if await store.collection(body.collection_id) is None:
            raise not_found("collection")
        ids = [f.id for f in await store.files(collection_id=body.collection_id, limit=100_000)]
        scope = ids if scope is None else [i for i in scope if i in set(ids)]
    if body.file_ids is not None:
        owned = {f.id for f in await store.files_by_ids(body.file_ids)}
        scope = [i for i in body.file_ids if i in owned and (scope is None or i in scope)]
    await db.close()
    hits = await knowledge.retriever.search(
        user.id, body.query, file_ids=scope, limit=body.limit, mode=body.mode
    )
    return {
        "items": [
            {
                "chunk_id": h.chunk_id,
                "file_id": h.file_id,
                "filename": h.filename,
                "page": h.page,
                "section": h.section,
                "text": h.text,
                "char_start": h.char_start,
                "char_end": h.char_end,
                "score": h.score,
                "ranks": h.ranks,
            }
            for h in hits
        ]
    }
