"""The recall evaluation's corpus: a reference manual of the standard library, made at bench time.

Nothing is downloaded: the manual is rendered from what this Python installs
(docstrings, signatures, module constants), so a fresh CI machine without
internet builds the same files. It is one collection of ~90 documents in three
formats, parsed by Parley's own parsers:

- Markdown chapters (most modules): ``#`` module, ``##`` classes and functions,
  ``###`` methods, the signature as a code block, then the docstring; each chapter
  opens with two reference tables, module constants (name | value) and parameter
  defaults (callable | parameter | default).
- A PDF "print edition" (fpdf2, built-in fonts) of a set of modules: real pages
  with no headings for the parser to find, tables drawn as rows of cells.
- Word documents (python-docx) for a few modules, with real heading styles and
  tables, plus an appendix of reference tables (errno, HTTP status, signals, MIME
  types) that exact-value questions are asked about.

Which passage answers a question is not fixed by ids (chunking is one of the
levers measured): each question names strings that a passage containing the
answer must hold (``bench.knowledge_questions``).
"""

from __future__ import annotations

import contextlib
import errno
import http
import importlib
import inspect
import io
import mimetypes
import os
import signal
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Modules per format. Chosen for breadth (files, text, data, network, concurrency),
# not for the questions: the questions were written afterwards, against the corpus.
MARKDOWN = """json os shutil glob re textwrap string random math statistics itertools
functools collections heapq bisect datetime calendar hashlib base64 binascii zlib gzip
bz2 lzma zipfile tarfile csv html shlex subprocess tempfile fnmatch difflib copy pprint
uuid secrets hmac platform operator enum dataclasses contextlib unicodedata pathlib
decimal fractions struct array ipaddress locale codecs argparse configparser queue
traceback warnings weakref colorsys smtplib poplib imaplib ftplib http.client
http.cookies urllib.parse urllib.request email.utils mimetypes sched selectors
filecmp plistlib netrc getopt unittest.mock doctest optparse mailbox email.message
http.server http.cookiejar socketserver xmlrpc.client concurrent.futures multiprocessing.pool
ast dis tokenize importlib.metadata pkgutil runpy code cmd quopri""".split()  # noqa: SIM905
PDF = """socket ssl threading asyncio logging sqlite3 io time inspect typing pickle
shelve dbm wave cmath numbers timeit cProfile pstats gettext""".split()  # noqa: SIM905
DOCX = """xml.dom.minidom xml.etree.ElementTree html.parser zipimport graphlib
reprlib""".split()  # noqa: SIM905

MAX_DOC = 2500  # characters of a docstring kept (long ones still make several passages)


@dataclass(slots=True)
class Entry:
    """One documented object: heading level (2 class/function, 3 member), title, body."""

    level: int
    title: str
    signature: str
    doc: str


@dataclass(slots=True)
class Chapter:
    module: str
    intro: str
    constants: list[tuple[str, str]] = field(default_factory=list)
    defaults: list[tuple[str, str, str]] = field(default_factory=list)
    entries: list[Entry] = field(default_factory=list)


def _signature(obj: Any) -> str:
    try:
        return str(inspect.signature(obj))
    except (TypeError, ValueError):
        return ""


def _defaults(name: str, obj: Any) -> list[tuple[str, str, str]]:
    try:
        params = inspect.signature(obj).parameters.values()
    except (TypeError, ValueError):
        return []
    out = []
    for p in params:
        if p.default is inspect.Parameter.empty:
            continue
        shown = repr(p.default)
        if len(shown) <= 40 and " object at " not in shown:
            out.append((name, p.name, shown))
    return out


def chapter(module_name: str) -> Chapter | None:
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    intro = (inspect.getdoc(module) or "")[:MAX_DOC]
    book = Chapter(module_name, intro)
    seen: set[int] = set()
    for attr in sorted(dir(module)):
        if attr.startswith("_"):
            continue
        obj = getattr(module, attr)
        if attr.isupper() and isinstance(obj, int | float | str | bool):
            shown = repr(obj)
            if len(shown) <= 60:
                book.constants.append((f"{module_name}.{attr}", shown))
            continue
        if not (inspect.isroutine(obj) or inspect.isclass(obj)):
            continue
        if getattr(obj, "__module__", None) not in (module_name, None) and not getattr(
            obj, "__module__", ""
        ).lstrip("_").startswith(module_name.split(".")[0].lstrip("_")):
            continue  # re-exported from elsewhere: documented there
        doc = inspect.getdoc(obj)
        if not doc or len(doc) < 30 or id(obj) in seen:
            continue
        seen.add(id(obj))
        book.entries.append(
            Entry(2, f"{module_name}.{attr}", attr + _signature(obj), doc[:MAX_DOC])
        )
        book.defaults += _defaults(f"{module_name}.{attr}", obj)
        if inspect.isclass(obj):
            for member in sorted(vars(obj)):
                if member.startswith("_"):
                    continue
                value = getattr(obj, member, None)
                target = value.fget if isinstance(value, property) else value
                if not (inspect.isroutine(target) or isinstance(value, property)):
                    continue
                mdoc = inspect.getdoc(target)
                if not mdoc or len(mdoc) < 30:
                    continue
                book.entries.append(
                    Entry(
                        3,
                        f"{module_name}.{attr}.{member}",
                        member + _signature(target),
                        mdoc[:MAX_DOC],
                    )
                )
    return book if book.entries else None


# ------------------------------------------------------------------ appendix tables


def appendix() -> list[tuple[str, str, list[str], list[list[str]]]]:
    """(title, description, header, rows): reference tables from installed data."""
    errnos = [
        [name, str(code), os.strerror(code)] for code, name in sorted(errno.errorcode.items())
    ]
    statuses = [[str(s.value), s.phrase, s.description] for s in http.HTTPStatus]
    signals = []
    for sig in sorted(signal.Signals, key=lambda s: s.value):
        with contextlib.suppress(ValueError):
            signals.append([sig.name, str(sig.value), signal.strsignal(sig) or ""])
    mimetypes.init(files=[])  # the built-in table only: the same on every machine
    types = sorted(mimetypes.types_map.items())
    return [
        (
            "Error numbers",
            "Symbolic error names of the errno module, their numbers on this platform "
            "and the message the C library gives for them.",
            ["name", "number", "message"],
            errnos,
        ),
        (
            "HTTP status codes",
            "Every status code known to http.HTTPStatus with its reason phrase and a "
            "short description.",
            ["code", "phrase", "description"],
            statuses,
        ),
        (
            "Signals",
            "Signal names, numbers and descriptions on this platform.",
            ["signal", "number", "description"],
            signals,
        ),
        (
            "File extensions and media types",
            "The media type guessed for each file name extension by the mimetypes "
            "module's built-in table.",
            ["extension", "media type"],
            [[ext, kind] for ext, kind in types],
        ),
    ]


# ------------------------------------------------------------------ renderers


def _md_cell(value: str) -> str:
    return " ".join(value.split()).replace("|", "\\|")


def markdown(book: Chapter) -> str:
    out = [f"# The {book.module} module", "", book.intro, ""]
    if book.constants:
        out += [f"## Constants of {book.module}", "", "| name | value |", "|---|---|"]
        out += [f"| {_md_cell(n)} | {_md_cell(v)} |" for n, v in book.constants]
        out.append("")
    if book.defaults:
        out += [f"## Parameter defaults in {book.module}", "", "| callable | parameter | default |"]
        out.append("|---|---|---|")
        out += [f"| {_md_cell(c)} | {_md_cell(p)} | {_md_cell(d)} |" for c, p, d in book.defaults]
        out.append("")
    for entry in book.entries:
        out += ["#" * entry.level + " " + entry.title, ""]
        if entry.signature:
            out += ["```", entry.signature, "```", ""]
        out += [entry.doc, ""]
    return "\n".join(out)


def _latin1(value: str) -> str:
    return value.encode("latin-1", "replace").decode("latin-1")


def pdf(books: list[Chapter]) -> bytes:
    """The print edition: headings are only bigger type, tables are cells on a page."""
    from fpdf import FPDF

    doc = FPDF(format="A4")
    doc.set_auto_page_break(True, margin=15)
    doc.set_margins(15, 15, 15)
    width = doc.w - 30
    for book in books:
        doc.add_page()
        doc.set_font("Helvetica", "B", 16)
        doc.multi_cell(
            width, 8, _latin1(f"The {book.module} module"), new_x="LMARGIN", new_y="NEXT"
        )
        doc.set_font("Helvetica", "", 10)
        doc.multi_cell(width, 5, _latin1(book.intro), new_x="LMARGIN", new_y="NEXT")
        for title, header, rows in (
            (f"Constants of {book.module}", ["name", "value"], [list(r) for r in book.constants]),
            (
                f"Parameter defaults in {book.module}",
                ["callable", "parameter", "default"],
                [list(r) for r in book.defaults],
            ),
        ):
            if not rows:
                continue
            doc.ln(3)
            doc.set_font("Helvetica", "B", 12)
            doc.multi_cell(width, 6, _latin1(title), new_x="LMARGIN", new_y="NEXT")
            doc.set_font("Helvetica", "", 9)
            with doc.table(col_widths=tuple([3] * (len(header) - 1) + [2])) as table:
                for row in [header, *rows]:
                    cells = table.row()
                    for value in row:
                        cells.cell(_latin1(value))
        for entry in book.entries:
            doc.ln(2)
            doc.set_font("Helvetica", "B", 12 if entry.level == 2 else 11)
            doc.multi_cell(width, 6, _latin1(entry.title), new_x="LMARGIN", new_y="NEXT")
            if entry.signature:
                doc.set_font("Courier", "", 9)
                doc.multi_cell(width, 4.5, _latin1(entry.signature), new_x="LMARGIN", new_y="NEXT")
            doc.set_font("Helvetica", "", 10)
            doc.multi_cell(width, 5, _latin1(entry.doc), new_x="LMARGIN", new_y="NEXT")
    return bytes(doc.output())


def docx(title: str, books: list[Chapter], tables: Sequence[Any] = ()) -> bytes:
    import docx as python_docx

    document = python_docx.Document()
    document.add_heading(title, 0)

    def table(header: list[str], rows: list[list[str]]) -> None:
        grid = document.add_table(rows=1, cols=len(header))
        for cell, value in zip(grid.rows[0].cells, header, strict=True):
            cell.text = value
        for row in rows:
            cells = grid.add_row().cells
            for cell, value in zip(cells, row, strict=True):
                cell.text = value

    for book in books:
        document.add_heading(f"The {book.module} module", 1)
        document.add_paragraph(book.intro)
        if book.constants:
            document.add_heading(f"Constants of {book.module}", 2)
            table(["name", "value"], [list(r) for r in book.constants])
        if book.defaults:
            document.add_heading(f"Parameter defaults in {book.module}", 2)
            table(["callable", "parameter", "default"], [list(r) for r in book.defaults])
        for entry in book.entries:
            document.add_heading(entry.title, entry.level)
            if entry.signature:
                document.add_paragraph(entry.signature)
            for paragraph in entry.doc.split("\n\n"):
                document.add_paragraph(paragraph)
    for name, description, header, rows in tables:
        document.add_heading(name, 1)
        document.add_paragraph(description)
        table(header, rows)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def files() -> Iterator[tuple[str, bytes]]:
    """(filename, bytes) of every document of the manual, in a stable order."""
    for name in MARKDOWN:
        book = chapter(name)
        if book is not None:
            yield f"{name}.md", markdown(book).encode()
    books = [b for b in (chapter(n) for n in PDF) if b is not None]
    sizes = [len(b.entries) for b in books]
    half = next(i for i in range(len(books)) if sum(sizes[: i + 1]) * 2 >= sum(sizes)) + 1
    yield "library-print-edition-part1.pdf", pdf(books[:half])
    yield "library-print-edition-part2.pdf", pdf(books[half:])
    books = [b for b in (chapter(n) for n in DOCX) if b is not None]
    yield "markup-and-import-modules.docx", docx("Markup and import modules", books)
    yield "reference-tables.docx", docx("Appendix: reference tables", [], appendix())


def write(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    out = []
    for name, data in files():
        path = directory / name
        path.write_bytes(data)
        out.append(path)
    return out
