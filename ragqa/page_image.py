"""The cited page of a PDF as a picture, with the cited passage boxed.

The chat page shows it beside the passage's text, so a user can see the passage
where it stands in the document: in its column, under its heading, by its table.

The passage is found on the page by its letters and digits only, compared
case-insensitively after NFKC: the stored text went through pypdf and ragqa's
normaliser, the page's text through PDFium, and the two differ in spaces, line
breaks, hyphenation, ligatures and quotes, but not in the letters themselves.

Rendering uses pypdfium2 (the ``ui`` extra); nothing is written to disk.

Example:
    >>> png = render_cited_page("report.pdf", 3, ["Revenue rose 4% in 2023."])  # doctest: +SKIP
    >>> png[:8] == b"\\x89PNG\\r\\n\\x1a\\n"                                      # doctest: +SKIP
    True
"""

from __future__ import annotations

import ctypes
import io
import os
import unicodedata
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from ragqa.errors import LoaderError

__all__ = ["DEFAULT_WIDTH", "Box", "render_cited_page", "span_boxes"]

#: The rendered page's width in pixels: sharp beside a passage, small as a PNG.
DEFAULT_WIDTH = 800
# A span whose head and tail are found this far apart (relative to its own length)
# is two unrelated matches, not one passage.
_MAX_STRETCH = 1.5
# The head and tail looked up when the whole span is not found as one run.
_ANCHOR_CHARS = 24
# A shorter common run than this share of the span is not the span.
_MIN_SHARE = 0.5
# Boxes: a soft fill, a strong outline, a little room around the letters.
_FILL = (255, 214, 0, 80)
_OUTLINE = (214, 69, 0, 255)
_OUTLINE_PX = 3
_PAD_PX = 3

Box = tuple[int, int, int, int]
"""``(left, top, right, bottom)`` in pixels of the rendered page."""


def render_cited_page(
    pdf_path: str | os.PathLike[str],
    page_number: int,
    spans: str | Sequence[str],
    *,
    width: int = DEFAULT_WIDTH,
    password: str | None = None,
) -> bytes:
    """Page ``page_number`` of a PDF as PNG bytes, each of ``spans`` boxed where it is found.

    Args:
        pdf_path: the PDF.
        page_number: 1-based, as ragqa's pages and citations count.
        spans: the cited text (one string, or several parts of a passage). A span
            that is not on the page is left unmarked; the page is drawn anyway.
        width: the image's width in pixels; the height follows the page.
        password: for an encrypted PDF.

    Raises:
        LoaderError: the file cannot be opened as a PDF (``reason`` ``encrypted``
            when it needs a password, else ``unreadable``).
        ValueError: there is no such page, or ``width`` is not positive.
    """
    from PIL import Image, ImageDraw

    with _page(pdf_path, page_number, password) as page:
        scale = _scale(page, width)
        image = page.render(scale=scale).to_pil().convert("RGBA")
        boxes = _boxes(page, scale, _as_list(spans))
    overlay = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    for left, top, right, bottom in boxes:
        draw.rectangle(
            (left - _PAD_PX, top - _PAD_PX, right + _PAD_PX, bottom + _PAD_PX),
            fill=_FILL,
            outline=_OUTLINE,
            width=_OUTLINE_PX,
        )
    marked = Image.alpha_composite(image, overlay).convert("RGB")
    out = io.BytesIO()
    # A 256-colour palette keeps a text page and its boxes intact at a third of the size.
    marked.quantize(colors=256).save(out, format="PNG", optimize=True)
    return out.getvalue()


def span_boxes(
    pdf_path: str | os.PathLike[str],
    page_number: int,
    spans: str | Sequence[str],
    *,
    width: int = DEFAULT_WIDTH,
    password: str | None = None,
) -> list[Box]:
    """Where :func:`render_cited_page` draws its boxes: one per line of each span found.

    Same arguments and errors as :func:`render_cited_page`; an empty list when no
    span is on the page.
    """
    with _page(pdf_path, page_number, password) as page:
        return _boxes(page, _scale(page, width), _as_list(spans))


# ------------------------------------------------------------------ internals


def _as_list(spans: str | Sequence[str]) -> list[str]:
    return [spans] if isinstance(spans, str) else [s for s in spans if s]


@contextmanager
def _page(
    pdf_path: str | os.PathLike[str], page_number: int, password: str | None
) -> Iterator[Any]:
    try:
        import pypdfium2 as pdfium
    except ImportError:
        raise ImportError(
            "showing cited pages needs pypdfium2: pip install pypdfium2 (or 'ragqa[ui]')"
        ) from None
    try:
        document = pdfium.PdfDocument(os.fspath(pdf_path), password=password)
    except pdfium.PdfiumError as error:
        # PDFium reports a missing or wrong password as its own error code.
        reason = "encrypted" if "password" in str(error).lower() else "unreadable"
        raise LoaderError(str(pdf_path), f"cannot render: {error}", reason=reason) from None
    try:
        if not 1 <= page_number <= len(document):
            raise ValueError(f"page {page_number} is not in the PDF (it has {len(document)})")
        page = document[page_number - 1]
        try:
            yield page
        finally:
            page.close()
    finally:
        document.close()


def _scale(page: Any, width: int) -> float:
    if width <= 0:
        raise ValueError(f"width must be positive, not {width}")
    # PDFium's size is the page as shown, already turned by its /Rotate.
    return width / page.get_size()[0]


def _boxes(page: Any, scale: float, spans: list[str]) -> list[Box]:
    import pypdfium2.raw as raw

    text_page = page.get_textpage()
    try:
        count = text_page.count_chars()
        letters, owners = _letters(text_page, count, raw)
        width_px, height_px = (round(v * scale) for v in page.get_size())
        boxes: list[Box] = []
        for span in spans:
            found = _locate(letters, _fold(span))
            if found is None:
                continue
            first, last = owners[found[0]], owners[found[1] - 1]
            for line in _lines(text_page, first, last, raw):
                boxes.append(_to_pixels(page, line, width_px, height_px, raw))
        return boxes
    finally:
        text_page.close()


def _fold(text: str) -> str:
    """Letters and digits only, compatibility-decomposed and case-folded."""
    return "".join(c for c in unicodedata.normalize("NFKC", text).casefold() if c.isalnum())


def _letters(text_page: Any, count: int, raw: Any) -> tuple[str, list[int]]:
    """The page's folded letters, and for each the index of the PDFium character it
    came from (a ligature gives several letters from one character)."""
    letters: list[str] = []
    owners: list[int] = []
    for index in range(count):
        code = raw.FPDFText_GetUnicode(text_page.raw, index)
        if not code or raw.FPDFText_IsGenerated(text_page.raw, index) == 1:
            continue
        try:
            folded = _fold(chr(code))
        except (ValueError, OverflowError):
            continue
        letters.append(folded)
        owners.extend([index] * len(folded))
    return "".join(letters), owners


def _locate(letters: str, span: str) -> tuple[int, int] | None:
    """``(start, end)`` of ``span`` in ``letters``: as a whole, else from its head to
    its tail, else its longest run in common if that is most of it."""
    if not span:
        return None
    start = letters.find(span)
    if start >= 0:
        return start, start + len(span)
    if len(span) > 2 * _ANCHOR_CHARS:
        head = letters.find(span[:_ANCHOR_CHARS])
        tail = letters.find(span[-_ANCHOR_CHARS:], max(head, 0))
        if 0 <= head < tail and tail + _ANCHOR_CHARS - head <= _MAX_STRETCH * len(span):
            return head, tail + _ANCHOR_CHARS
    from difflib import SequenceMatcher

    match = SequenceMatcher(None, letters, span, autojunk=False).find_longest_match(
        0, len(letters), 0, len(span)
    )
    if match.size >= max(4, _MIN_SHARE * len(span)):
        return match.a, match.a + match.size
    return None


def _lines(
    text_page: Any, first: int, last: int, raw: Any
) -> list[tuple[float, float, float, float]]:
    """The characters ``first..last`` grouped into lines, each as one box in page
    space ``(left, bottom, right, top)``: a new line starts where a character no
    longer overlaps the current line's height, or jumps back to the left."""
    lines: list[list[float]] = []
    for index in range(first, last + 1):
        if raw.FPDFText_IsGenerated(text_page.raw, index) == 1:
            continue
        code = raw.FPDFText_GetUnicode(text_page.raw, index)
        if not code or chr(code).isspace():
            continue
        left, bottom, right, top = text_page.get_charbox(index)
        if right <= left or top <= bottom:
            continue
        if lines:
            line = lines[-1]
            overlaps = bottom < line[3] and top > line[1]
            if overlaps and left >= line[0] - (line[3] - line[1]):
                line[0], line[1] = min(line[0], left), min(line[1], bottom)
                line[2], line[3] = max(line[2], right), max(line[3], top)
                continue
        lines.append([left, bottom, right, top])
    return [(a, b, c, d) for a, b, c, d in lines]


def _to_pixels(
    page: Any, box: tuple[float, float, float, float], width_px: int, height_px: int, raw: Any
) -> Box:
    """A page-space box in pixels of the rendered image, through PDFium's own transform
    (it knows the crop box and the page's rotation)."""
    left, bottom, right, top = box
    xs, ys = [], []
    for x, y in ((left, bottom), (right, top)):
        device_x, device_y = ctypes.c_int(), ctypes.c_int()
        raw.FPDF_PageToDevice(page.raw, 0, 0, width_px, height_px, 0, x, y, device_x, device_y)
        xs.append(device_x.value)
        ys.append(device_y.value)
    return min(xs), min(ys), max(xs), max(ys)
