"""Sniffing, limits, parsing and chunking on real files the tests make (no database)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from docfactory import (
    docx_bytes,
    pdf_bytes,
    pptx_bytes,
    scanned_pdf_bytes,
    xlsx_bytes,
    zip_bomb_docx,
)

from parley.knowledge.chunking import Chunker, chunk_segments
from parley.knowledge.parsers import Segment, parse
from parley.knowledge.sniff import UploadRejected, check_limits, detect, safe_filename

LIMITS = {"max_pages": 50, "max_unzipped_bytes": 50 * 1024 * 1024, "max_ratio": 200}


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / "blob"
    path.write_bytes(data)
    return path


def _chunks(tmp_path: Path, name: str, data: bytes, target: int = 1000) -> list:
    path = _write(tmp_path, name, data)
    detected = detect(path, name)
    check_limits(path, detected, name, **LIMITS)
    return list(chunk_segments(parse(path, detected.kind, detected.encoding), target))


def test_pdf_pages_become_citation_pages(tmp_path: Path) -> None:
    chunks = _chunks(tmp_path, "r.pdf", pdf_bytes(["Alpha page text.", "", "Gamma on three."]))
    assert [(c.page, c.text) for c in chunks] == [(1, "Alpha page text."), (3, "Gamma on three.")]


def test_docx_headings_sections_and_tables(tmp_path: Path) -> None:
    data = docx_bytes(
        [
            ("h1", "Guide"),
            ("p", "Intro text."),
            ("h2", "Install"),
            ("p", "Run the installer."),
            ("table", [["os", "command"], ["linux", "apt install x"], ["mac", "brew install x"]]),
        ]
    )
    chunks = _chunks(tmp_path, "g.docx", data)
    assert chunks[0].section == "Guide" and chunks[0].text.startswith("Guide")
    install = chunks[1]
    assert install.section == "Guide > Install"
    assert "| linux | apt install x |" in install.text  # the table stayed whole
    assert install.text.count("| os | command |") == 1


def test_pptx_slides_are_pages(tmp_path: Path) -> None:
    chunks = _chunks(tmp_path, "d.pptx", pptx_bytes([("Welcome", "Hi all"), ("Plan", "Ship")]))
    assert [(c.page, c.section) for c in chunks] == [(1, "Welcome"), (2, "Plan")]
    assert "Ship" in chunks[1].text


def test_xlsx_and_csv_tables_repeat_their_header(tmp_path: Path) -> None:
    rows: list[list[object]] = [["region", "amount"]] + [[f"r{i}", i] for i in range(200)]
    chunks = _chunks(tmp_path, "s.xlsx", xlsx_bytes({"Sales": rows}), target=400)
    assert len(chunks) > 2
    assert all(c.text.count("| region | amount |") == 1 for c in chunks)
    assert all(c.section == "Sheet: Sales" for c in chunks)
    csv_text = "\n".join(",".join(map(str, r)) for r in rows).encode()
    csv_chunks = _chunks(tmp_path, "s.csv", csv_text, target=400)
    assert len(csv_chunks) > 2
    assert all(c.text.startswith("| region | amount |") for c in csv_chunks)


def test_html_drops_scripts_and_styles(tmp_path: Path) -> None:
    html = (
        b"<html><head><title>t</title><script>alert('x')</script><style>p{}</style></head>"
        b"<body><h1>Top</h1><p>Hello <b>there</b><img src=x onerror=alert(1)></p>"
        b"<noscript>nojs</noscript><table><tr><th>a</th></tr><tr><td>1</td></tr></table>"
        b"<script>document.cookie</script></body></html>"
    )
    chunks = _chunks(tmp_path, "p.html", html)
    text = "\n".join(c.text for c in chunks)
    assert "Hello there" in text and "| a |" in text
    for bad in ("alert", "cookie", "onerror", "<", "nojs", "p{}"):
        assert bad not in text


def test_markdown_code_and_json(tmp_path: Path) -> None:
    md = b"# Title\n\nPara.\n\n## Sub\n\n```py\nx = 1\n\ny = 2\n```\n"
    chunks = _chunks(tmp_path, "n.md", md)
    assert chunks[-1].section == "Title > Sub"
    assert "x = 1\n\ny = 2" in chunks[-1].text  # the code block was not split
    assert _chunks(tmp_path, "a.py", b"def f():\n    return 1\n")[0].text.startswith("def f")
    assert _chunks(tmp_path, "d.json", b'{"k": [1, 2]}')[0].text == '{"k": [1, 2]}'


def test_spans_index_the_extracted_text() -> None:
    segments = [
        Segment("Head", "heading", level=1),
        Segment("First paragraph."),
        Segment("Second paragraph."),
        Segment("Other", "heading", level=1),
        Segment("Third."),
    ]
    full = "\n\n".join(s.text for s in segments)
    chunks = list(chunk_segments(segments))
    assert len(chunks) == 2
    for chunk in chunks:
        assert full[chunk.char_start : chunk.char_end] == chunk.text


def test_long_text_is_split_at_sentences_and_tables_too_big_are_split_by_rows() -> None:
    sentence = "This sentence is about retrieval quality. "
    chunker = Chunker(target=300)
    out = chunker.feed(Segment(sentence * 40)) + chunker.finish()
    assert len(out) > 3 and all(len(c.text) <= 300 for c in out)
    assert all(c.text.endswith(".") for c in out)
    table = "\n".join(["| h1 | h2 |"] + [f"| row {i} | value {i} |" for i in range(100)])
    parts = list(chunk_segments([Segment(table, "table", header="| h1 | h2 |")], target=300))
    assert len(parts) > 3
    assert all(p.text.startswith("| h1 | h2 |\n| row") for p in parts)
    rows = [line for p in parts for line in p.text.split("\n")[1:]]
    assert len(rows) == 100  # every row once


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("name", "data", "code"),
    [
        ("empty.txt", b"", "empty_file"),
        ("fake.pdf", b"just some text, not a PDF", "content_mismatch"),
        ("real.txt", b"%PDF-1.7\n" + b"x" * 100, "content_mismatch"),
        ("pic.png", b"plain text pretending", "content_mismatch"),
        ("old.doc", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600, "unsupported_type"),
        ("locked.docx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600, "encrypted_file"),
        ("prog.exe", b"MZ\x90\x00\x03\x00\x00\x00\x04\x00" + b"\0\xff" * 300, "unsupported_type"),
        ("archive.zip", b"", "empty_file"),
    ],
)
def test_detect_refuses_bad_files(tmp_path: Path, name: str, data: bytes, code: str) -> None:
    with pytest.raises(UploadRejected) as info:
        detect(_write(tmp_path, name, data), name)
    assert info.value.code == code
    assert info.value.detail  # a sentence for the user


def test_plain_zip_and_mismatched_office_files_are_refused(tmp_path: Path) -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("a.txt", "hello")
    with pytest.raises(UploadRejected) as info:
        detect(_write(tmp_path, "x.docx", out.getvalue()), "x.docx")
    assert info.value.code == "unsupported_type"
    with pytest.raises(UploadRejected) as info:
        detect(_write(tmp_path, "x.xlsx", docx_bytes([("p", "hi")])), "x.xlsx")
    assert info.value.code == "content_mismatch"


def test_encrypted_corrupt_and_long_pdfs(tmp_path: Path) -> None:
    locked = _write(tmp_path, "l.pdf", pdf_bytes(["secret"], password="pw"))
    with pytest.raises(UploadRejected) as info:
        check_limits(locked, detect(locked, "l.pdf"), "l.pdf", **LIMITS)
    assert info.value.code == "encrypted_file"
    broken = _write(tmp_path, "b.pdf", b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\ngarbage")
    with pytest.raises(UploadRejected) as info:
        check_limits(broken, detect(broken, "b.pdf"), "b.pdf", **LIMITS)
    assert info.value.code == "corrupt_file"
    long = _write(tmp_path, "long.pdf", pdf_bytes(["p"] * 6))
    with pytest.raises(UploadRejected) as info:
        check_limits(long, detect(long, "long.pdf"), "long.pdf", **{**LIMITS, "max_pages": 5})
    assert info.value.code == "too_many_pages"


def test_zip_bomb_is_refused_before_parsing(tmp_path: Path) -> None:
    bomb = _write(tmp_path, "bomb.docx", zip_bomb_docx(100 * 1024 * 1024))
    assert bomb.stat().st_size < 1024 * 1024
    detected = detect(bomb, "bomb.docx")
    with pytest.raises(UploadRejected) as info:
        check_limits(bomb, detected, "bomb.docx", **LIMITS)
    assert info.value.code == "zip_bomb"


def test_invalid_json_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "d.json", b'{"a": ')
    with pytest.raises(UploadRejected) as info:
        check_limits(path, detect(path, "d.json"), "d.json", **LIMITS)
    assert info.value.code == "corrupt_file"


def test_scanned_pdf_has_no_text(tmp_path: Path) -> None:
    assert _chunks(tmp_path, "scan.pdf", scanned_pdf_bytes(3)) == []


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\system.ini", "system.ini"),
        ("re\x00po\x1b[31mrt\n.pdf", "repo[31mrt.pdf"),
        ("\u202eexe.pdf", "exe.pdf"),  # right-to-left override (format character)
        ("..", "file"),
        ("", "file"),
        ("  .hidden  ", "hidden"),
        ("a" * 300 + ".txt", "a" * 196 + ".txt"),
    ],
)
def test_safe_filename(raw: str, expected: str) -> None:
    assert safe_filename(raw) == expected
