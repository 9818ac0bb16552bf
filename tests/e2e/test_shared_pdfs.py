"""Every real PDF in the shared data loads, or fails, the way MANIFEST.md says it should.

The files come from the public test suites of PDF libraries (clean, large,
multi-column, encrypted, broken, scanned, CJK). The table below is keyed by file
name; the passwords are the published ones listed in MANIFEST.md. A file added to
the folder later without an entry here must still load or raise LoaderError.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from ragqa.errors import LoaderError
from ragqa.loaders import load_document
from ragqa.normalize import normalize_text

pytestmark = pytest.mark.shared_data


@dataclass(frozen=True)
class Expected:
    """What loading one shared PDF must give.

    Attributes:
        pages: the page numbers that load (with ``password`` when it is set).
        fragments: text that must appear in those pages.
        reason: the LoaderError reason when the file is loaded without a password;
            ``None`` when it loads.
        password: the password that opens an encrypted file.
        cause: a fragment of the LoaderError's cause.
    """

    pages: tuple[int, ...] = ()
    fragments: tuple[str, ...] = ()
    reason: str | None = None
    password: str | None = None
    cause: str = ""


EXPECTED: dict[str, Expected] = {
    "samplefiles__minimal-document.pdf": Expected(
        pages=(1,), fragments=("Lorem ipsum dolor sit amet",)
    ),
    "samplefiles__multicolumn.pdf": Expected(
        pages=(1, 2, 3),
        # "filled" is set with an fi ligature in the PDF.
        fragments=("Two-Column Document with Lorem Ipsum", "two columns filled"),
    ),
    "samplefiles__GeoTopo-komprimiert.pdf": Expected(
        pages=tuple(range(1, 118)),
        fragments=("Geometrie und Topologie", "Fundamentalgruppe", "Auflage"),
    ),
    "samplefiles__libreoffice-writer-password.pdf": Expected(
        pages=(1,),
        fragments=("Lorem ipsum",),
        reason="encrypted",
        password="openpassword",
        cause="--pdf-password",
    ),
    "pypdf__crazyones-encrypted-256.pdf": Expected(
        pages=(1,),
        fragments=("The Crazy Ones", "Here"),
        reason="encrypted",
        password="password",
        cause="--pdf-password",
    ),
    # Encrypted, but the owner password is empty, so it opens without asking.
    "pypdf__r6-user-password.pdf": Expected(
        pages=(1,), fragments=("pdf encryption test",), password="asdfzxcv"
    ),
    # A broken xref table that strict=False repairs.
    "pypdf__issue-297.pdf": Expected(pages=(1,), fragments=("test example",)),
    "pdfminer__simple3.pdf": Expected(reason="unreadable", cause="startxref not found"),
    "pdfminer__pdf-with-jbig2.pdf": Expected(reason="no_text", cause="OCR"),
    # Encrypted with an empty user password, and a scan.
    "pypdf__encrypted_doc_no_id.pdf": Expected(reason="no_text", cause="OCR"),
    # SimSun without a usable ToUnicode map: older pypdf gives /uniXXXX glyph names.
    "pymupdf__test_3854.pdf": Expected(
        pages=(1,), fragments=("OP(操作): 李雅惠", "天津外代货运有限公司", "出口货物托运单")
    ),
    "pdfminer__issue_566_test_2.pdf": Expected(
        pages=(1,), fragments=("甲方：中国饮料有限公司（盖章）",)
    ),
    "pypdf__multilang.pdf": Expected(
        pages=(1,),
        fragments=("Hello World", "你好世界", "こんにちは世界", "Привет, мир", "مرحبا بالعالم"),
    ),
}


def shared_pdf(shared_data: Path, name: str) -> Path:
    path = shared_data / "pdfs" / name
    if not path.is_file():
        pytest.skip(f"{name} is not in the shared data at {path.parent}")
    return path


def check_pages(path: Path, expected: Expected, password: str | None) -> None:
    pages = load_document(path, password=password)
    assert tuple(p.page for p in pages) == expected.pages
    text = "\n".join(p.text for p in pages)
    for fragment in expected.fragments:
        assert fragment in text, f"{fragment!r} not in {path.name}"
    for page in pages:
        assert page.source == str(path.resolve())
        assert normalize_text(page.text) == page.text
        assert "/uni" not in page.text


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_shared_pdf_without_password(shared_data: Path, name: str) -> None:
    path = shared_pdf(shared_data, name)
    expected = EXPECTED[name]
    if expected.reason is None:
        check_pages(path, expected, password=None)
        return
    with pytest.raises(LoaderError) as caught:
        load_document(path)
    assert caught.value.reason == expected.reason
    assert expected.cause in caught.value.cause
    assert caught.value.path == str(path)


@pytest.mark.parametrize("name", sorted(n for n, e in EXPECTED.items() if e.password))
def test_encrypted_shared_pdf_loads_with_its_password(shared_data: Path, name: str) -> None:
    path = shared_pdf(shared_data, name)
    check_pages(path, EXPECTED[name], password=EXPECTED[name].password)


@pytest.mark.parametrize(
    "name", sorted(n for n, e in EXPECTED.items() if e.password and e.reason == "encrypted")
)
def test_encrypted_shared_pdf_refuses_a_wrong_password(shared_data: Path, name: str) -> None:
    path = shared_pdf(shared_data, name)
    with pytest.raises(LoaderError) as caught:
        load_document(path, password="not-the-password")
    assert caught.value.reason == "encrypted"
    assert caught.value.cause == "wrong password for encrypted PDF"


def test_every_shared_pdf_loads_or_raises_loader_error(shared_data: Path) -> None:
    """Every file in the folder, including any added after this table was written."""
    folder = shared_data / "pdfs"
    assert folder.is_dir(), f"no pdfs folder in the shared data at {shared_data}"
    files = sorted(folder.glob("*.pdf"))
    assert files
    problems: list[str] = []
    for path in files:
        try:
            pages = load_document(path)
        except LoaderError:
            continue
        except Exception as exc:  # the point of the test: nothing else may escape
            problems.append(f"{path.name}: {type(exc).__name__}: {exc}")
            continue
        if not pages or not all(p.text for p in pages):
            problems.append(f"{path.name}: loaded without text")
    assert not problems, "\n".join(problems)
