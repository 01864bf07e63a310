"""What an uploaded file really is, checked before anything parses it.

- ``safe_filename``: the client's name made harmless for display and headers
  (never used as a path: blobs are stored by content hash).
- ``detect``: the kind from magic bytes and content, checked against the
  extension; a mismatch (a ``.pdf`` that is a ZIP, a ``.txt`` that is a PDF) is
  refused rather than guessed.
- ``check_limits``: cheap structural checks that refuse hostile files up front:
  encrypted or corrupt PDFs, PDFs over the page limit, Office files (ZIPs)
  whose declared uncompressed size or compression ratio gives them away as zip
  bombs, legacy or encrypted Office containers.

Every refusal is an ``UploadRejected`` with an HTTP status, a stable code and a
sentence that says what to do; the API turns it into an RFC 9457 problem.
"""

from __future__ import annotations

import json
import os
import re
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "CODE_EXTENSIONS",
    "Detected",
    "UploadRejected",
    "check_limits",
    "detect",
    "safe_filename",
]

MAX_NAME_CHARS = 200
MAX_ZIP_ENTRIES = 10_000
ZIP_RATIO_FLOOR_BYTES = 20 * 1024 * 1024  # ratios only matter for big payloads

CODE_EXTENSIONS = frozenset(
    [
        ".py",
        ".pyi",
        ".js",
        ".mjs",
        ".cjs",
        ".ts",
        ".tsx",
        ".jsx",
        ".svelte",
        ".vue",
        ".java",
        ".kt",
        ".kts",
        ".scala",
        ".go",
        ".rs",
        ".c",
        ".h",
        ".cc",
        ".cpp",
        ".cxx",
        ".hpp",
        ".hh",
        ".cs",
        ".rb",
        ".php",
        ".pl",
        ".pm",
        ".swift",
        ".m",
        ".mm",
        ".r",
        ".jl",
        ".lua",
        ".sh",
        ".bash",
        ".zsh",
        ".fish",
        ".ps1",
        ".bat",
        ".sql",
        ".css",
        ".scss",
        ".sass",
        ".less",
        ".toml",
        ".yaml",
        ".yml",
        ".ini",
        ".cfg",
        ".conf",
        ".xml",
        ".svg",
        ".dockerfile",
        ".make",
        ".mk",
        ".cmake",
        ".gradle",
        ".tex",
        ".rst",
        ".proto",
        ".graphql",
        ".tf",
        ".hs",
        ".ml",
        ".ex",
        ".exs",
        ".erl",
        ".clj",
        ".dart",
        ".zig",
        ".nim",
        ".v",
        ".asm",
        ".s",
    ]
)
TEXT_EXTENSIONS = frozenset({".txt", ".text", ".log", ".tsv", ""})
MARKDOWN_EXTENSIONS = frozenset({".md", ".markdown", ".mdx"})
HTML_EXTENSIONS = frozenset({".html", ".htm", ".xhtml"})
IMAGE_TYPES = {
    "png": "image/png",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "webp": "image/webp",
}
_EXT_FOR_IMAGE = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".gif": "gif", ".webp": "webp"}
_OOXML = {".docx": "docx", ".pptx": "pptx", ".xlsx": "xlsx"}
_OOXML_MARKER = {
    "docx": "word/document.xml",
    "pptx": "ppt/presentation.xml",
    "xlsx": "xl/workbook.xml",
}
# Audio containers by their magic bytes (offset, magic, kind); speech to text reads them
# (the speech feature, through the seam's AUDIO_TRANSCRIBER).
AUDIO_TYPES = {
    "wav": "audio/wav",
    "mp3": "audio/mpeg",
    "ogg": "audio/ogg",
    "flac": "audio/flac",
    "webm": "audio/webm",
    "m4a": "audio/mp4",
}
MEDIA_TYPES = {
    "pdf": "application/pdf",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "csv": "text/csv",
    "html": "text/html",
    "markdown": "text/markdown",
    "text": "text/plain",
    "code": "text/plain",
    "json": "application/json",
    **{f"image-{k}": v for k, v in IMAGE_TYPES.items()},
    **{f"audio-{k}": v for k, v in AUDIO_TYPES.items()},
}
_AUDIO_MAGIC = [
    (0, b"ID3", "mp3"),
    (0, b"OggS", "ogg"),
    (0, b"fLaC", "flac"),
    (0, b"\x1a\x45\xdf\xa3", "webm"),
]
_AUDIO_EXTENSIONS = {".wav", ".mp3", ".ogg", ".oga", ".opus", ".flac", ".webm", ".m4a"}
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class UploadRejected(Exception):
    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail


@dataclass(slots=True, frozen=True)
class Detected:
    kind: str  # pdf docx pptx xlsx csv html markdown text code json image
    media_type: str
    encoding: str | None = None  # for text kinds


def safe_filename(name: str | None) -> str:
    """A display name: no directories, no control or format characters, bounded length."""
    name = unicodedata.normalize("NFC", name or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if not unicodedata.category(ch).startswith("C") or ch == " ")
    name = _CONTROL.sub("", name)
    name = " ".join(name.split()).strip(" .")
    if not name or set(name) <= {"."}:
        name = "file"
    if len(name) > MAX_NAME_CHARS:
        stem, ext = os.path.splitext(name)
        ext = ext[:20]
        name = stem[: MAX_NAME_CHARS - len(ext)] + ext
    return name


def _extension(name: str) -> str:
    lowered = name.lower()
    if lowered in {"dockerfile", "makefile"}:
        return "." + lowered
    return os.path.splitext(lowered)[1]


def _image_kind(head: bytes) -> str | None:
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return None


def _audio_kind(head: bytes, ext: str) -> str | None:
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    for offset, magic, kind in _AUDIO_MAGIC:
        if head[offset : offset + len(magic)] == magic:
            return kind
    if head[4:8] == b"ftyp" and ext in {".m4a", ".mp4"}:
        return "m4a"
    if ext == ".mp3" and len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        return "mp3"
    return None


def _decode_sample(sample: bytes) -> str | None:
    """The text encoding of ``sample``, or None when it looks binary."""
    if sample.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    if b"\x00" in sample:
        return None
    if sample.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    try:
        sample.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as exc:
        if exc.start >= len(sample) - 3:  # a character cut by the sample's end
            return "utf-8"
    # Mostly-printable 8-bit text (Windows-1252, Latin-1); binary has many controls.
    controls = sum(1 for b in sample if b < 9 or 13 < b < 32)
    return "cp1252" if controls <= len(sample) // 100 else None


def _mismatch(name: str, actual: str) -> UploadRejected:
    return UploadRejected(
        415,
        "content_mismatch",
        f"'{name}' does not contain what its extension says (it looks like {actual}). "
        "Rename it with the right extension or upload the real file.",
    )


def detect(path: Path, name: str) -> Detected:
    """The kind of the file at ``path`` (named ``name`` by the client)."""
    ext = _extension(name)
    with path.open("rb") as fh:
        head = fh.read(65_536)
    if not head:
        raise UploadRejected(422, "empty_file", f"'{name}' is empty (0 bytes).")
    image = _image_kind(head)
    if image is not None:
        if ext and ext in _EXT_FOR_IMAGE and _EXT_FOR_IMAGE[ext] != image:
            pass  # .jpg that is a PNG: harmless, served with the sniffed type
        elif ext and ext not in _EXT_FOR_IMAGE:
            raise _mismatch(name, f"a {image.upper()} image")
        return Detected("image", IMAGE_TYPES[image])
    if ext in _EXT_FOR_IMAGE:
        raise _mismatch(name, "something other than an image")
    audio = _audio_kind(head, ext)
    if audio is not None:
        if ext and ext not in _AUDIO_EXTENSIONS and ext != ".mp4":
            raise _mismatch(name, "an audio recording")
        return Detected("audio", AUDIO_TYPES[audio])
    if ext in _AUDIO_EXTENSIONS:
        raise _mismatch(name, "not audio")
    if head.lstrip()[:5] == b"%PDF-" or head[:1024].find(b"%PDF-") >= 0:
        if ext not in {".pdf", ""}:
            raise _mismatch(name, "a PDF")
        return Detected("pdf", MEDIA_TYPES["pdf"])
    if ext == ".pdf":
        raise _mismatch(name, "not a PDF")
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        # OLE2: legacy .doc/.xls/.ppt, or an encrypted (password-protected) OOXML file.
        if ext in _OOXML:
            raise UploadRejected(
                422,
                "encrypted_file",
                f"'{name}' is password-protected. Remove the password and upload it again.",
            )
        raise UploadRejected(
            415,
            "unsupported_type",
            f"'{name}' is a legacy Office file (.doc/.xls/.ppt). Save it as .docx, .xlsx "
            "or .pptx and upload that.",
        )
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        kind = _ooxml_kind(path)
        if kind is None:
            raise UploadRejected(
                415,
                "unsupported_type",
                f"'{name}' is a ZIP archive that is not a Word, Excel or PowerPoint file; "
                "archives are not supported.",
            )
        if ext in _OOXML and _OOXML[ext] != kind:
            raise _mismatch(name, f"a .{kind} file")
        if ext not in _OOXML and ext != "":
            raise _mismatch(name, f"a .{kind} file")
        return Detected(kind, MEDIA_TYPES[kind])
    if ext in _OOXML:
        raise _mismatch(name, f"not a {ext} file (it is not a ZIP container)")
    encoding = _decode_sample(head)
    if encoding is None:
        raise UploadRejected(
            415,
            "unsupported_type",
            f"'{name}' is a binary file of a type Parley cannot read. Supported: PDF, "
            "Word, PowerPoint, Excel, CSV, HTML, Markdown, text, source code, JSON, images "
            "and audio.",
        )
    if ext == ".json":
        return Detected("json", MEDIA_TYPES["json"], encoding)
    if ext == ".csv":
        return Detected("csv", MEDIA_TYPES["csv"], encoding)
    if ext in HTML_EXTENSIONS:
        return Detected("html", MEDIA_TYPES["html"], encoding)
    if ext in MARKDOWN_EXTENSIONS:
        return Detected("markdown", MEDIA_TYPES["markdown"], encoding)
    if ext in CODE_EXTENSIONS:
        return Detected("code", MEDIA_TYPES["code"], encoding)
    if ext in TEXT_EXTENSIONS:
        lowered = head[:512].lstrip().lower()
        if ext == "" and lowered.startswith((b"<!doctype html", b"<html")):
            return Detected("html", MEDIA_TYPES["html"], encoding)
        return Detected("text", MEDIA_TYPES["text"], encoding)
    raise UploadRejected(
        415,
        "unsupported_type",
        f"Files of type '{ext}' are not supported. Supported: PDF, Word, PowerPoint, "
        "Excel, CSV, HTML, Markdown, text, source code, JSON and images.",
    )


def _ooxml_kind(path: Path) -> str | None:
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist()[: MAX_ZIP_ENTRIES + 1])
    except (zipfile.BadZipFile, OSError, ValueError):
        return None
    for kind, marker in _OOXML_MARKER.items():
        if marker in names:
            return kind
    return None


def check_limits(
    path: Path,
    detected: Detected,
    name: str,
    *,
    max_pages: int,
    max_unzipped_bytes: int,
    max_ratio: int,
) -> int | None:
    """Refuse hostile or oversized files; returns the page count when it is cheap to know."""
    if detected.kind in {"docx", "pptx", "xlsx"}:
        _check_zip(path, name, max_unzipped_bytes, max_ratio)
        return None
    if detected.kind == "pdf":
        return _check_pdf(path, name, max_pages)
    if detected.kind == "json":
        _check_json(path, name, detected.encoding or "utf-8")
    return None


def _check_zip(path: Path, name: str, max_unzipped: int, max_ratio: int) -> None:
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise UploadRejected(
            422, "corrupt_file", f"'{name}' is damaged and cannot be opened ({exc})."
        ) from exc
    if len(infos) > MAX_ZIP_ENTRIES:
        raise UploadRejected(
            413,
            "zip_bomb",
            f"'{name}' contains {len(infos):,} parts; the limit is {MAX_ZIP_ENTRIES:,}.",
        )
    total = sum(i.file_size for i in infos)
    packed = max(sum(i.compress_size for i in infos), 1)
    if total > max_unzipped:
        raise UploadRejected(
            413,
            "zip_bomb",
            f"'{name}' expands to {total:,} bytes, over the {max_unzipped:,}-byte limit "
            "for document contents.",
        )
    if total > ZIP_RATIO_FLOOR_BYTES and total / packed > max_ratio:
        raise UploadRejected(
            413,
            "zip_bomb",
            f"'{name}' is compressed {total / packed:,.0f} to 1, which is how zip bombs "
            "look; it was refused.",
        )
    for info in infos:
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            # Office writes stored or deflated parts only; bzip2 / LZMA parts would be
            # inflated without an output bound by ``zipfile``.
            raise UploadRejected(
                415,
                "unsupported_type",
                f"'{name}' uses a compression method Office files do not use; it was refused.",
            )
        if info.flag_bits & 0x1:
            raise UploadRejected(
                422, "encrypted_file", f"'{name}' contains encrypted parts; remove the password."
            )


def _check_pdf(path: Path, name: str, max_pages: int) -> int:
    import pypdfium2 as pdfium

    from parley.knowledge.parsers import PDFIUM_LOCK

    with PDFIUM_LOCK:
        try:
            pdf = pdfium.PdfDocument(str(path))
        except pdfium.PdfiumError as exc:
            message = str(exc).lower()
            if "password" in message:
                raise UploadRejected(
                    422,
                    "encrypted_file",
                    f"'{name}' is password-protected. Remove the password and upload it again.",
                ) from exc
            raise UploadRejected(
                422, "corrupt_file", f"'{name}' is damaged or not a valid PDF ({exc})."
            ) from exc
        try:
            pages = len(pdf)
        finally:
            pdf.close()
    if pages > max_pages:
        raise UploadRejected(
            413,
            "too_many_pages",
            f"'{name}' has {pages:,} pages; the limit is {max_pages:,}. Split it and upload "
            "the parts you need.",
        )
    if pages == 0:
        raise UploadRejected(422, "corrupt_file", f"'{name}' has no pages.")
    return pages


def _check_json(path: Path, name: str, encoding: str) -> None:
    try:
        json.loads(path.read_text(encoding=encoding))
    except (ValueError, UnicodeDecodeError) as exc:
        raise UploadRejected(422, "corrupt_file", f"'{name}' is not valid JSON ({exc}).") from exc
