"""The cited page as an image: real PDFs, spans as ragqa stores them, boxes on the ink."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from ragqa.errors import LoaderError
from ragqa.loaders import load_document
from ragqa.page_image import render_cited_page, span_boxes

pytest.importorskip("pypdfium2")
pytestmark = pytest.mark.shared_data

WIDTH = 800
# Where the two columns of samplefiles__multicolumn.pdf meet, in pixels at WIDTH.
COLUMNS_MEET = 410


@pytest.fixture
def pdfs(shared_data: Path) -> Path:
    return shared_data / "pdfs"


def page_text(path: Path, page: int) -> str:
    """The page's text as ragqa stores it (pypdf, then ragqa's normaliser)."""
    return next(p.text for p in load_document(path) if p.page == page)


def sentence(text: str, start: str, end: str) -> str:
    """The part of ``text`` from ``start`` to the end of ``end``."""
    i = text.index(start)
    return text[i : text.index(end, i) + len(end)]


def image(png: bytes):
    from PIL import Image

    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    return Image.open(io.BytesIO(png)).convert("RGB")


def ink_in(picture, box) -> int:
    """Dark pixels (text) inside ``box`` of an unmarked page."""
    left, top, right, bottom = box
    crop = picture.crop((left, top, right + 1, bottom + 1)).convert("L")
    return sum(1 for value in crop.tobytes() if value < 128)


def test_a_stored_sentence_is_boxed_where_it_is_printed(pdfs):
    pdf = pdfs / "samplefiles__multicolumn.pdf"
    text = page_text(pdf, 2)
    # Left column, over a line break: the stored text has "\n" where PDFium has none.
    left_span = sentence(text, "Suspendisse vel felis", "sit amet")
    boxes = span_boxes(pdf, 2, left_span, width=WIDTH)
    assert len(boxes) == 2  # two printed lines
    assert all(right < COLUMNS_MEET for _, _, right, _ in boxes)
    assert boxes[0][1] < boxes[1][1]  # the first line above the second
    # Right column.
    [right_box] = span_boxes(pdf, 2, "sit amet pede ac sem eleifend consectetuer", width=WIDTH)
    assert right_box[0] > COLUMNS_MEET

    plain = image(render_cited_page(pdf, 2, [], width=WIDTH))
    for box in [*boxes, right_box]:
        assert ink_in(plain, box) > 50, box  # the box is on the printed letters


def test_a_span_across_two_columns_is_boxed_in_both(pdfs):
    pdf = pdfs / "samplefiles__multicolumn.pdf"
    text = page_text(pdf, 2)
    span = sentence(text, "Vestibulum ante ipsum", "posuere cubilia Curae")
    boxes = span_boxes(pdf, 2, span, width=WIDTH)
    lefts = [b for b in boxes if b[2] < COLUMNS_MEET]
    rights = [b for b in boxes if b[0] > COLUMNS_MEET]
    assert lefts and rights and len(lefts) + len(rights) == len(boxes)
    # The span ends the left column and starts the right one.
    assert max(b[3] for b in lefts) > min(b[1] for b in rights)


def test_the_image_marks_the_boxes_and_nothing_else(pdfs):
    pdf = pdfs / "samplefiles__multicolumn.pdf"
    span = "sit amet pede ac sem eleifend consectetuer"
    plain = image(render_cited_page(pdf, 2, [], width=WIDTH))
    marked = image(render_cited_page(pdf, 2, [span], width=WIDTH))
    assert marked.size == plain.size and marked.width == WIDTH
    assert plain.height > WIDTH  # an A4 page, upright
    [(left, top, right, bottom)] = span_boxes(pdf, 2, span, width=WIDTH)
    # Inside the box, the white paper turns yellow (red and green high, blue low).
    inside = [marked.getpixel((x, (top + bottom) // 2)) for x in range(left, right)]
    yellow = [p for p in inside if p[0] > 200 and p[1] > 180 and p[2] < 200]
    assert len(yellow) > len(inside) / 3
    # Far from the box, the page is as it was.
    for point in [(20, 20), (WIDTH // 4, plain.height - 40), (WIDTH - 30, plain.height // 2)]:
        assert abs(sum(marked.getpixel(point)) - sum(plain.getpixel(point))) < 30, point


def test_hyphenation_case_and_spacing_do_not_hide_a_span(pdfs):
    pdf = pdfs / "samplefiles__minimal-document.pdf"
    text = page_text(pdf, 1)
    # Printed "taki-" / "mata" over two lines; stored as "takimata".
    span = sentence(text, "Stet clita kasd", "Lorem ipsum dolor sit amet.")
    assert "takimata" in span
    boxes = span_boxes(pdf, 1, span.upper().replace(" ", "  "))
    assert len(boxes) == 2
    plain = image(render_cited_page(pdf, 1, []))
    assert all(ink_in(plain, box) > 50 for box in boxes)


def test_chinese_text_is_found(pdfs):
    pdf = pdfs / "pypdf__multilang.pdf"
    [box] = span_boxes(pdf, 1, "你好世界")
    plain = image(render_cited_page(pdf, 1, []))
    assert ink_in(plain, box) > 20


def test_a_span_that_is_not_on_the_page_leaves_it_unmarked(pdfs):
    pdf = pdfs / "samplefiles__multicolumn.pdf"
    missing = "The lighthouse on Quillon Island was built in 1887 by Mara Velez."
    assert span_boxes(pdf, 2, missing) == []
    assert span_boxes(pdf, 2, "") == []
    assert image(render_cited_page(pdf, 2, [missing])) == image(render_cited_page(pdf, 2, []))


def test_a_rotated_page_is_drawn_upright_with_its_box_on_the_text(pdfs, tmp_path):
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    writer.add_page(PdfReader(pdfs / "samplefiles__minimal-document.pdf").pages[0])
    writer.pages[0].rotate(90)
    rotated = tmp_path / "rotated.pdf"
    with open(rotated, "wb") as fh:
        writer.write(fh)
    plain = image(render_cited_page(rotated, 1, []))
    assert plain.width == 800 and plain.width > plain.height  # landscape once turned
    boxes = span_boxes(rotated, 1, "Lorem ipsum dolor sit amet, consetetur")
    assert boxes
    for left, top, right, bottom in boxes:
        assert bottom - top > right - left  # the line now runs down the image
        assert ink_in(plain, (left, top, right, bottom)) > 50


def test_bad_pages_and_locked_files_are_errors(pdfs, tmp_path):
    pdf = pdfs / "samplefiles__multicolumn.pdf"
    with pytest.raises(ValueError, match="page 4 is not in the PDF"):
        render_cited_page(pdf, 4, "x")
    with pytest.raises(ValueError, match="page 0"):
        span_boxes(pdf, 0, "x")
    with pytest.raises(ValueError, match="width"):
        render_cited_page(pdf, 1, "x", width=0)
    locked = pdfs / "samplefiles__libreoffice-writer-password.pdf"
    with pytest.raises(LoaderError) as caught:
        render_cited_page(locked, 1, "x")
    assert caught.value.reason == "encrypted"
    assert image(render_cited_page(locked, 1, [], password="openpassword")).width == WIDTH
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4\nnot a PDF after all")
    with pytest.raises(LoaderError) as caught:
        render_cited_page(broken, 1, "x")
    assert caught.value.reason == "unreadable"
