"""Zip bombs in every Office format (DOCX, XLSX and PPTX are ZIPs): declared ones are
refused at upload, parts that lie about their size fail while parsing with bounded
memory, and the rest of the library keeps working."""

from __future__ import annotations

import io
import struct
import tracemalloc
import zipfile
from pathlib import Path
from typing import Any

import pytest
from docfactory import docx_bytes, pptx_bytes, xlsx_bytes
from knhelpers import Upload, wait_ready

from apihelpers import Client
from parley.knowledge.feature import KnowledgeFeature
from parley.knowledge.parsers import ParseError, parse
from parley.knowledge.sniff import UploadRejected, check_limits, detect

MiB = 1024 * 1024
LIMITS = {"max_pages": 50, "max_unzipped_bytes": 50 * MiB, "max_ratio": 200}
MARKER = {"docx": "word/document.xml", "xlsx": "xl/workbook.xml", "pptx": "ppt/presentation.xml"}
# The part each parser reads first (a lie there is what a library would inflate).
MAIN_PART = {
    "docx": "word/document.xml",
    "xlsx": "xl/worksheets/sheet1.xml",
    "pptx": "ppt/slides/slide1.xml",
}


@pytest.fixture
def overrides() -> dict[str, Any]:
    return {"knowledge_wait_s": 2.0, "files_max_unzipped_bytes": 50 * MiB}


def declared_bomb(kind: str, uncompressed: int = 100 * MiB) -> bytes:
    """An Office-shaped ZIP whose one padding part honestly declares ``uncompressed`` bytes."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr(MARKER[kind], "<x/>")
        with archive.open(f"{kind}/media/padding.bin", "w", force_zip64=True) as fh:
            block = b"\0" * MiB
            for _ in range(uncompressed // MiB):
                fh.write(block)
    return out.getvalue()


def many_parts(kind: str, parts: int = 10_001) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr(MARKER[kind], "<x/>")
        for n in range(parts):
            archive.writestr(f"p/{n}", b"")
    return out.getvalue()


def lying_bomb(kind: str, real_extra: int = 256 * MiB, declared: int = 1000) -> bytes:
    """A real document whose main part really inflates to ``real_extra`` more bytes but
    declares ``declared`` in both the local header and the central directory."""
    base = {
        "docx": lambda: docx_bytes([("p", "hello")]),
        "xlsx": lambda: xlsx_bytes({"S": [["a", 1]]}),
        "pptx": lambda: pptx_bytes([("Title", "body")]),
    }[kind]()
    part = MAIN_PART[kind]
    source = zipfile.ZipFile(io.BytesIO(base))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename != part:
                archive.writestr(info.filename, data)
                continue
            with archive.open(part, "w") as fh:
                fh.write(data)
                block = b" " * MiB
                for _ in range(real_extra // MiB):
                    fh.write(block)
    raw = bytearray(out.getvalue())
    name = part.encode()
    for signature, size_at, name_len_at, name_at in (
        (b"PK\x03\x04", 22, 26, 30),  # local file header
        (b"PK\x01\x02", 24, 28, 46),  # central directory entry
    ):
        at, patched = 0, 0
        while (at := raw.find(signature, at)) >= 0:
            length = struct.unpack_from("<H", raw, at + name_len_at)[0]
            if bytes(raw[at + name_at : at + name_at + length]) == name:
                struct.pack_into("<I", raw, at + size_at, declared)
                patched += 1
            at += 4
        assert patched == 1
    return bytes(raw)


def bzip2_part(kind: str) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr(MARKER[kind], "<x/>", compress_type=zipfile.ZIP_BZIP2)
    return out.getvalue()


def _path(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "blob"
    path.write_bytes(data)
    return path


# ------------------------------------------------------------------ without the database


@pytest.mark.parametrize("kind", ["docx", "xlsx", "pptx"])
def test_declared_bombs_and_part_floods_are_refused_before_parsing(
    tmp_path: Path, kind: str
) -> None:
    name = f"bomb.{kind}"
    for data in (declared_bomb(kind), many_parts(kind)):
        path = _path(tmp_path, data)
        assert path.stat().st_size < 2 * MiB
        with pytest.raises(UploadRejected) as info:
            check_limits(path, detect(path, name), name, **LIMITS)
        assert info.value.code == "zip_bomb" and info.value.status == 413


@pytest.mark.parametrize("kind", ["docx", "xlsx", "pptx"])
def test_parts_compressed_without_an_output_bound_are_refused(tmp_path: Path, kind: str) -> None:
    path = _path(tmp_path, bzip2_part(kind))
    with pytest.raises(UploadRejected) as info:
        check_limits(path, detect(path, f"x.{kind}"), f"x.{kind}", **LIMITS)
    assert info.value.code == "unsupported_type"


@pytest.mark.parametrize("kind", ["docx", "xlsx", "pptx"])
def test_a_part_lying_about_its_size_fails_with_bounded_memory(tmp_path: Path, kind: str) -> None:
    path = _path(tmp_path, lying_bomb(kind))
    name = f"liar.{kind}"
    detected = detect(path, name)
    check_limits(path, detected, name, **LIMITS)  # the declared sizes look harmless
    __import__("docx"), __import__("openpyxl"), __import__("pptx")  # before measuring
    tracemalloc.start()
    try:
        with pytest.raises(ParseError) as info:
            list(parse(path, detected.kind))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert info.value.code == "corrupt_file" and "declared size" in info.value.message
    assert peak < 64 * MiB, f"{peak / MiB:.0f} MiB held while refusing a 256 MiB part"


# ------------------------------------------------------------------ through the API


@pytest.mark.parametrize("kind", ["xlsx", "pptx"])
async def test_bombs_of_each_office_type_get_a_problem_and_leave_nothing(
    client: Client, user: dict[str, Any], upload: Upload, feature: KnowledgeFeature, kind: str
) -> None:
    for data in (declared_bomb(kind), many_parts(kind)):
        response = await upload(f"bomb.{kind}", data)
        assert response.status_code == 413, response.text
        assert response.json()["code"] == "zip_bomb"
    assert (await client.get("/api/files")).json()["items"] == []
    assert [p for p in feature.blobs.root.rglob("*") if p.is_file()] == []


async def test_a_lying_part_fails_the_file_with_a_reason_and_nothing_else_breaks(
    client: Client, user: dict[str, Any], upload: Upload
) -> None:
    liar = await upload("liar.docx", lying_bomb("docx", real_extra=64 * MiB))
    assert liar.status_code == 201, liar.text
    state = await wait_ready(client, liar.json()["id"])
    assert state["status"] == "failed" and state["error_code"] == "corrupt_file"
    assert "declared size" in state["error"] and state["chunk_count"] == 0
    fine = await upload("fine.txt", b"Narwhals have a single long tusk.\n")
    assert (await wait_ready(client, fine.json()["id"]))["status"] == "ready"
    hits = (await client.post("/api/knowledge/search", json={"query": "narwhal tusk"})).json()
    assert [h["filename"] for h in hits["items"]] == ["fine.txt"]
