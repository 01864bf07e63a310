"""Reading and writing exports: a JSON document, or a ZIP with the files' bytes.

A plain export is one JSON document with complete metadata (conversations,
memories, files and collections, settings, key metadata) but no file bytes. The
ZIP form adds them: ``parley-export.json`` plus ``files/<sha256>`` for each
stored file, so files can be restored on another server too.

Reading is bounded everywhere, since an import is a file from outside: the
upload (``IMPORT_MAX_BYTES``, also the route's body limit), the JSON document
(``IMPORT_MAX_JSON_BYTES``), and the bytes unpacked from a ZIP
(``IMPORT_MAX_UNPACKED_BYTES``, counted as they are read, so a forged size in
the archive's directory does not help a zip bomb). Member names are never used
as paths: only ``files/<64 hex digits>`` is read, into a temporary file of our
own, and kept only when its content has that digest. Blocking; call from a thread.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from parley.errors import InvalidImport

__all__ = [
    "DOCUMENT_NAME",
    "IMPORT_MAX_BYTES",
    "IMPORT_MAX_JSON_BYTES",
    "IMPORT_MAX_UNPACKED_BYTES",
    "Unpacked",
    "read_import",
    "write_zip",
]

MiB = 1024 * 1024
IMPORT_MAX_BYTES = 1024 * MiB
IMPORT_MAX_JSON_BYTES = 128 * MiB
IMPORT_MAX_UNPACKED_BYTES = 2048 * MiB
DOCUMENT_NAME = "parley-export.json"
_BLOB = re.compile(r"^files/([0-9a-f]{64})$")
_CHUNK = MiB


@dataclass(slots=True)
class Unpacked:
    """An import read from its upload: the document and verified file bytes
    (``sha256 -> path``) in ``workdir``, which the caller removes (``close``)."""

    document: Any
    files: dict[str, Path] = field(default_factory=dict)
    workdir: Path | None = None

    def close(self) -> None:
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise InvalidImport("The export is not valid JSON.") from None


def read_import(upload: IO[bytes]) -> Unpacked:
    """The document (and bytes) of an uploaded export, JSON or ZIP (by content)."""
    head = upload.read(4)
    upload.seek(0)
    if head.startswith(b"PK"):
        return _read_zip(upload)
    raw = upload.read(IMPORT_MAX_JSON_BYTES + 1)
    if len(raw) > IMPORT_MAX_JSON_BYTES:
        raise InvalidImport(f"The export is larger than {IMPORT_MAX_JSON_BYTES:,} bytes.")
    return Unpacked(_json(raw))


def _read_zip(upload: IO[bytes]) -> Unpacked:
    try:
        archive = zipfile.ZipFile(upload)
    except (zipfile.BadZipFile, OSError):
        raise InvalidImport("The export is not a valid ZIP archive.") from None
    with archive:
        try:
            info = archive.getinfo(DOCUMENT_NAME)
        except KeyError:
            raise InvalidImport(f"The archive has no {DOCUMENT_NAME}.") from None
        budget = [IMPORT_MAX_UNPACKED_BYTES]
        with archive.open(info) as member:
            raw = member.read(IMPORT_MAX_JSON_BYTES + 1)
        if len(raw) > IMPORT_MAX_JSON_BYTES:
            raise InvalidImport(f"{DOCUMENT_NAME} is larger than {IMPORT_MAX_JSON_BYTES:,} bytes.")
        budget[0] -= len(raw)
        unpacked = Unpacked(_json(raw), workdir=Path(tempfile.mkdtemp(prefix="parley-import-")))
        try:
            for entry in archive.infolist():
                match = _BLOB.match(entry.filename)
                if match is None or match.group(1) in unpacked.files:
                    continue
                path = _extract(archive, entry, unpacked.workdir, match.group(1), budget)
                if path is not None:
                    unpacked.files[match.group(1)] = path
        except BaseException:
            unpacked.close()
            raise
        return unpacked


def _extract(
    archive: zipfile.ZipFile,
    entry: zipfile.ZipInfo,
    workdir: Path | None,
    sha256: str,
    budget: list[int],
) -> Path | None:
    """Copy one member out, hashing and counting; None when the digest differs."""
    assert workdir is not None
    target = workdir / sha256
    digest = hashlib.sha256()
    try:
        with archive.open(entry) as source, target.open("wb") as out:
            while block := source.read(_CHUNK):
                budget[0] -= len(block)
                if budget[0] < 0:
                    raise InvalidImport(
                        f"The archive unpacks to more than {IMPORT_MAX_UNPACKED_BYTES:,} bytes."
                    )
                digest.update(block)
                out.write(block)
    except (zipfile.BadZipFile, OSError, EOFError):
        raise InvalidImport(f"The archive's copy of {entry.filename} is damaged.") from None
    if digest.hexdigest() != sha256:
        target.unlink(missing_ok=True)
        return None
    return target


def write_zip(document: Mapping[str, Any], files: Mapping[str, Path], out: IO[bytes]) -> None:
    """An export with bytes: the document, then ``files/<sha256>`` for each blob
    that still exists (stored uncompressed: most are compressed formats already)."""
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
        archive.writestr(DOCUMENT_NAME, json.dumps(document, ensure_ascii=False))
        for sha256, path in sorted(files.items()):
            if path.is_file():
                archive.write(path, f"files/{sha256}", compress_type=zipfile.ZIP_STORED)
