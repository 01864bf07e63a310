"""Documents as streams of structured segments: text, headings, tables, code.

Every parser is a generator over a file on disk, so a 500-page PDF or a large
spreadsheet is read piece by piece (a page, a batch of rows) and never held
whole in memory. Segments carry what citations need: the page (PDF pages,
PowerPoint slides) and headings (which the chunker turns into sections).

Libraries: pypdfium2 (Apache-2.0/BSD) for PDF text layers, python-docx,
python-pptx, openpyxl (read-only streaming) and the standard library for CSV,
HTML (scripts, styles and other non-content elements are dropped) and text.
PDFium is not thread-safe: every call into it holds ``PDFIUM_LOCK``.

Office files are ZIPs. ``sniff.check_limits`` refuses those whose *declared*
sizes give them away as zip bombs; ``check_archive`` then reads every part in
bounded steps before python-docx / python-pptx / openpyxl open the file (they
inflate a part in one call), so a part that lies about its size fails here
(``zipfile`` stops at the declared size and the checksum no longer matches)
having cost one step of memory, instead of being inflated whole.
"""

from __future__ import annotations

import csv
import io
import re
import threading
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Literal

__all__ = ["PDFIUM_LOCK", "ParseError", "Segment", "check_archive", "parse"]

PDFIUM_LOCK = threading.Lock()
ROWS_PER_TABLE = 40  # spreadsheet rows per table segment (the header is repeated)
MAX_ROWS = 200_000  # per file: beyond this a spreadsheet is truncated (and says so)
MAX_CELL_CHARS = 500
_READ = 1 << 16

SegmentKind = Literal["text", "heading", "table", "code"]


class ParseError(Exception):
    """The file cannot be read; ``code`` and ``message`` are shown to the user."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@dataclass(slots=True)
class Segment:
    text: str
    kind: SegmentKind = "text"
    page: int | None = None
    level: int = 0  # heading level (1 = top)
    header: str | None = None  # tables: the header line(s), repeated when split


def parse(path: Path, kind: str, encoding: str | None = None) -> Iterator[Segment]:
    """The segments of the file at ``path`` of ``kind`` (see ``sniff.detect``)."""
    if kind == "pdf":
        return parse_pdf(path)
    if kind == "docx":
        return parse_docx(path)
    if kind == "pptx":
        return parse_pptx(path)
    if kind == "xlsx":
        return parse_xlsx(path)
    if kind == "csv":
        return parse_csv(path, encoding or "utf-8")
    if kind == "html":
        return parse_html(path, encoding or "utf-8")
    if kind == "markdown":
        return parse_markdown(path, encoding or "utf-8")
    if kind in {"text", "code", "json"}:
        return parse_text(path, encoding or "utf-8", code=kind != "text")
    raise ParseError("unsupported_type", f"Files of kind '{kind}' have no text to index.")


def check_archive(path: Path, label: str) -> None:
    """Read every part of the Office file at ``path`` in ``_READ``-byte steps; a part
    that is damaged or larger than it declares raises ``ParseError("corrupt_file")``."""
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                with archive.open(info) as fh:
                    while fh.read(_READ):
                        pass
    except (
        zipfile.BadZipFile,
        NotImplementedError,
        OSError,
        ValueError,
        EOFError,
        zlib.error,
    ) as exc:
        raise ParseError(
            "corrupt_file",
            f"The {label} file is damaged: a part does not match its declared size or "
            f"checksum ({exc}).",
        ) from exc


# ------------------------------------------------------------------ PDF


def pdf_page_count(path: Path) -> int:
    import pypdfium2 as pdfium

    with PDFIUM_LOCK:
        pdf = pdfium.PdfDocument(str(path))
        try:
            return len(pdf)
        finally:
            pdf.close()


def parse_pdf(path: Path) -> Iterator[Segment]:
    import pypdfium2 as pdfium

    with PDFIUM_LOCK:
        try:
            pdf = pdfium.PdfDocument(str(path))
        except pdfium.PdfiumError as exc:
            if "password" in str(exc).lower():
                raise ParseError("encrypted_file", "The PDF is password-protected.") from exc
            raise ParseError("corrupt_file", f"The PDF is damaged ({exc}).") from exc
        count = len(pdf)
    try:
        for index in range(count):
            with PDFIUM_LOCK:
                page = pdf[index]
                try:
                    textpage = page.get_textpage()
                    try:
                        raw = textpage.get_text_range()
                    finally:
                        textpage.close()
                finally:
                    page.close()
            text = _clean_pdf_text(raw)
            if text:
                yield Segment(text, "text", page=index + 1)
            else:
                yield Segment("", "text", page=index + 1)  # keeps page progress visible
    finally:
        with PDFIUM_LOCK:
            pdf.close()


_HYPHEN_BREAK = re.compile(r"(\w)-\n(\w)")


def _clean_pdf_text(raw: str) -> str:
    text = raw.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    text = text.replace("\ufffe", "").replace("\x02", "")
    text = _HYPHEN_BREAK.sub(r"\1\2", text)
    lines = [" ".join(line.split()) for line in text.split("\n")]
    # collapse runs of blank lines to one paragraph break
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip()


# ------------------------------------------------------------------ Office


def _table_text(rows: Iterable[list[str]]) -> tuple[str, str | None]:
    """Rows as a Markdown-style table; returns (text, header line)."""
    lines: list[str] = []
    header: str | None = None
    for row in rows:
        cells = [" ".join(str(c).split())[:MAX_CELL_CHARS].replace("|", "\\|") for c in row]
        if not any(cells):
            continue
        line = "| " + " | ".join(cells) + " |"
        if header is None:
            header = line
        lines.append(line)
    return "\n".join(lines), header


def parse_docx(path: Path) -> Iterator[Segment]:
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    check_archive(path, "Word")
    try:
        document = docx.Document(str(path))
    except Exception as exc:
        raise ParseError("corrupt_file", f"The Word file is damaged ({exc}).") from exc
    body = document.element.body
    for child in body.iterchildren():
        tag = child.tag.rsplit("}", 1)[-1]
        if tag == "p":
            paragraph = Paragraph(child, document)
            text = paragraph.text.strip()
            if not text:
                continue
            style = (paragraph.style.name if paragraph.style is not None else "") or ""
            level = _heading_level(style)
            if level:
                yield Segment(text, "heading", level=level)
            elif style.lower().startswith("list"):
                yield Segment("- " + text)
            else:
                yield Segment(text)
        elif tag == "tbl":
            table = Table(child, document)
            rows = ([cell.text for cell in row.cells] for row in table.rows)
            text, header = _table_text(rows)
            if text:
                yield Segment(text, "table", header=header)


def _heading_level(style: str) -> int:
    lowered = style.lower()
    if lowered == "title":
        return 1
    match = re.match(r"heading\s*(\d)", lowered)
    return int(match.group(1)) if match else 0


def parse_pptx(path: Path) -> Iterator[Segment]:
    from pptx import Presentation

    check_archive(path, "PowerPoint")
    try:
        deck = Presentation(str(path))
    except Exception as exc:
        raise ParseError("corrupt_file", f"The PowerPoint file is damaged ({exc}).") from exc
    for number, slide in enumerate(deck.slides, start=1):
        title_shape = slide.shapes.title
        title = (title_shape.text_frame.text.strip() if title_shape is not None else "") or (
            f"Slide {number}"
        )
        yield Segment(title, "heading", page=number, level=1)
        for shape in slide.shapes:
            if title_shape is not None and shape.shape_id == title_shape.shape_id:
                continue
            if getattr(shape, "has_table", False) and shape.has_table:
                rows = ([cell.text for cell in row.cells] for row in shape.table.rows)
                text, header = _table_text(rows)
                if text:
                    yield Segment(text, "table", page=number, header=header)
            elif getattr(shape, "has_text_frame", False) and shape.has_text_frame:
                text = shape.text_frame.text.strip()
                if text:
                    yield Segment(text, page=number)
        if slide.has_notes_slide:
            notes = slide.notes_slide.notes_text_frame
            if notes is not None and notes.text.strip():
                yield Segment("Notes: " + notes.text.strip(), page=number)


def _row_groups(rows: Iterator[list[str]], page: int | None = None) -> Iterator[Segment]:
    """Table segments of ``ROWS_PER_TABLE`` rows, each repeating the header row."""
    header_line: str | None = None
    batch: list[list[str]] = []
    seen = 0
    for row in rows:
        if not any(str(c).strip() for c in row):
            continue
        seen += 1
        if seen > MAX_ROWS:
            yield Segment(f"(The table continues; only the first {MAX_ROWS:,} rows were read.)")
            break
        if header_line is None:
            header_line, _ = _table_text([row])
            continue
        batch.append(row)
        if len(batch) >= ROWS_PER_TABLE:
            body, _ = _table_text(batch)
            yield Segment(f"{header_line}\n{body}", "table", page=page, header=header_line)
            batch = []
    if batch or (header_line is not None and seen == 1):
        body, _ = _table_text(batch)
        text = f"{header_line}\n{body}" if body else header_line or ""
        yield Segment(text, "table", page=page, header=header_line)


def parse_xlsx(path: Path) -> Iterator[Segment]:
    import openpyxl

    check_archive(path, "Excel")
    with path.open("rb") as fh:  # a file object: openpyxl judges paths by their extension
        try:
            workbook = openpyxl.load_workbook(fh, read_only=True, data_only=True)
        except Exception as exc:
            raise ParseError("corrupt_file", f"The Excel file is damaged ({exc}).") from exc
        try:
            for sheet in workbook.worksheets:
                yield Segment(f"Sheet: {sheet.title}", "heading", level=1)
                rows = (
                    ["" if v is None else str(v) for v in values]
                    for values in sheet.iter_rows(values_only=True)
                )
                yield from _row_groups(rows)
        finally:
            workbook.close()


def parse_csv(path: Path, encoding: str) -> Iterator[Segment]:
    with path.open("r", encoding=encoding, errors="replace", newline="") as fh:
        sample = fh.read(8192)
        fh.seek(0)
        try:
            dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;\t|")
        except csv.Error:
            dialect = csv.excel
        csv.field_size_limit(1 << 20)
        try:
            yield from _row_groups(iter(csv.reader(fh, dialect)))
        except csv.Error as exc:
            raise ParseError("corrupt_file", f"The CSV file is malformed ({exc}).") from exc


# ------------------------------------------------------------------ text


def _paragraphs(fh: io.TextIOBase) -> Iterator[str]:
    lines: list[str] = []
    size = 0
    for line in fh:
        if line.strip():
            lines.append(line.rstrip("\n"))
            size += len(line)
            if size > 20_000:  # a huge block without blank lines: emit in pieces
                yield "\n".join(lines)
                lines, size = [], 0
        elif lines:
            yield "\n".join(lines)
            lines, size = [], 0
    if lines:
        yield "\n".join(lines)


def parse_text(path: Path, encoding: str, code: bool = False) -> Iterator[Segment]:
    with path.open("r", encoding=encoding, errors="replace") as fh:
        for paragraph in _paragraphs(fh):
            text = paragraph.rstrip() if code else paragraph.strip()
            if text.strip():
                yield Segment(text, "code" if code else "text")


_MD_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def parse_markdown(path: Path, encoding: str) -> Iterator[Segment]:
    with path.open("r", encoding=encoding, errors="replace") as fh:
        block: list[str] = []
        block_kind: SegmentKind = "text"
        fence: str | None = None

        def flush() -> Iterator[Segment]:
            nonlocal block, block_kind
            text = "\n".join(block).strip("\n")
            if text.strip():
                header = block[0] if block_kind == "table" else None
                if block_kind == "table" and len(block) > 1 and set(block[1]) <= set("|-: "):
                    header = block[0] + "\n" + block[1]
                yield Segment(text, block_kind, header=header)
            block, block_kind = [], "text"

        for raw in fh:
            line = raw.rstrip("\n")
            if fence is not None:
                block.append(line)
                if line.strip().startswith(fence):
                    fence = None
                    yield from flush()
                continue
            stripped = line.strip()
            if stripped.startswith(("```", "~~~")):
                yield from flush()
                fence = stripped[:3]
                block, block_kind = [line], "code"
                continue
            heading = _MD_HEADING.match(line)
            if heading:
                yield from flush()
                yield Segment(heading.group(2), "heading", level=len(heading.group(1)))
                continue
            is_table_line = stripped.startswith("|")
            if block and (block_kind == "table") != is_table_line:
                yield from flush()
            if not stripped:
                yield from flush()
                continue
            if is_table_line:
                block_kind = "table"
            block.append(line)
        yield from flush()


# ------------------------------------------------------------------ HTML

_SKIP = {
    "script",
    "style",
    "noscript",
    "template",
    "iframe",
    "object",
    "embed",
    "svg",
    "math",
    "head",
    "canvas",
    "select",
    "button",
}
_BLOCK = {
    "p",
    "div",
    "section",
    "article",
    "header",
    "footer",
    "main",
    "aside",
    "nav",
    "blockquote",
    "ul",
    "ol",
    "li",
    "dl",
    "dt",
    "dd",
    "figure",
    "figcaption",
    "form",
    "fieldset",
    "address",
    "hr",
    "br",
    "body",
    "html",
}
_VOID = {"br", "hr", "img", "input", "meta", "link", "area", "base", "col", "source", "wbr"}


class _HtmlSegments(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[Segment] = []
        self.skip_depth = 0
        self.text: list[str] = []
        self.heading: int = 0
        self.pre = 0
        self.table_depth = 0
        self.rows: list[list[str]] = []
        self.cell: list[str] | None = None
        self.row: list[str] | None = None

    def _flush(self) -> None:
        text = "".join(self.text)
        self.text = []
        if self.pre:
            if text.strip():
                self.out.append(Segment(text.strip("\n"), "code"))
            return
        text = " ".join(text.split())
        if not text:
            return
        if self.heading:
            self.out.append(Segment(text, "heading", level=self.heading))
        else:
            self.out.append(Segment(text))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.skip_depth or tag in _SKIP:
            if tag not in _VOID:
                self.skip_depth += 1
            return
        if self.table_depth and tag not in {"table", "tr", "td", "th"}:
            if tag in _BLOCK and self.cell is not None:
                self.cell.append(" ")
            return
        if tag == "table":
            if self.table_depth == 0:
                self._flush()
                self.rows = []
            self.table_depth += 1
        elif tag == "tr" and self.table_depth == 1:
            self.row = []
        elif tag in {"td", "th"} and self.table_depth == 1:
            self.cell = []
        elif re.fullmatch(r"h[1-6]", tag):
            self._flush()
            self.heading = int(tag[1])
        elif tag == "pre":
            self._flush()
            self.pre += 1
        elif tag in _BLOCK:
            self._flush()
            if tag == "li":
                self.text.append("- ")

    def handle_endtag(self, tag: str) -> None:
        if self.skip_depth:
            if tag not in _VOID:
                self.skip_depth -= 1
            return
        if self.table_depth:
            if tag in {"td", "th"} and self.table_depth == 1 and self.cell is not None:
                if self.row is not None:
                    self.row.append("".join(self.cell))
                self.cell = None
            elif tag == "tr" and self.table_depth == 1 and self.row is not None:
                self.rows.append(self.row)
                self.row = None
            elif tag == "table":
                self.table_depth -= 1
                if self.table_depth == 0:
                    text, header = _table_text(self.rows)
                    if text:
                        self.out.append(Segment(text, "table", header=header))
                    self.rows = []
            return
        if re.fullmatch(r"h[1-6]", tag):
            self._flush()
            self.heading = 0
        elif tag == "pre":
            self._flush()
            self.pre = max(0, self.pre - 1)
        elif tag in _BLOCK:
            self._flush()

    def handle_data(self, data: str) -> None:
        if self.skip_depth:
            return
        if self.table_depth:
            if self.cell is not None:
                self.cell.append(data)
            return
        self.text.append(data)


def parse_html(path: Path, encoding: str) -> Iterator[Segment]:
    parser = _HtmlSegments()
    with path.open("r", encoding=encoding, errors="replace") as fh:
        while True:
            data = fh.read(_READ)
            if not data:
                break
            parser.feed(data)
            if parser.out:
                segments, parser.out = parser.out, []
                yield from segments
    parser.close()
    parser._flush()
    yield from parser.out
