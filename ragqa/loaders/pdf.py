"""PDF files, read with pypdf: one page of normalised text per PDF page that has text.

Real PDFs are often damaged, encrypted, scanned or badly encoded, and pypdf reports
each of those in its own way (an exception type, a log message, an empty string, or
glyph names where the text should be). This module turns every one of them into a
:class:`~ragqa.errors.LoaderError` with a ``reason`` tag and a cause the user can act
on, and keeps whatever pages it can:

- a page that fails to extract is skipped and logged, as long as another page works;
- a page without text (a scan, a drawing) is simply not emitted;
- glyph names such as ``/uni64CD`` are decoded to the characters they name (older
  pypdf versions emit them for fonts without a ToUnicode map);
- pypdf's own log warnings are kept out of the user's terminal and summarised in
  one line on the ``ragqa.loaders.pdf`` logger.

pypdf is imported on first use, so ``import ragqa`` stays cheap.

Example:
    >>> decode_glyph_names("OP(/uni64CD/uni4F5C)")
    'OP(操作)'
"""

from __future__ import annotations

import logging
import re
import threading
import time
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragqa.config import Settings
from ragqa.errors import LoaderError
from ragqa.loaders.base import Loader, content_hash, read_file, source_of
from ragqa.normalize import normalize_text
from ragqa.types import Page

if TYPE_CHECKING:
    from pypdf import PdfReader

__all__ = ["PdfLoader", "decode_glyph_names", "looks_garbled"]

logger = logging.getLogger(__name__)

# A glyph name of the form uniXXXX names exactly one Unicode character (Adobe Glyph
# List specification). One group of four digits only: pypdf writes names back to
# back, so "/uni4E002024" is more likely 一 followed by the text "2024" than two
# characters. Surrogates are not characters and stay as they are.
_UNI_GLYPH_RE = re.compile(r"/uni([0-9A-F]{4})")

# Two or more glyph names in a row ("/g12/g13", "/cid7/cid8") or pdfminer-style
# "(cid:12)": what extraction gives for a font that says nothing about its text.
_GLYPH_NAME_RUN_RE = re.compile(r"(?:/[A-Za-z][A-Za-z0-9._]*){2,}|\(cid:\d+\)")

# A page counts as garbled when at least this share of its visible characters is
# glyph names, replacement characters or private-use code points.
_GARBLED_SHARE = 0.5

_PDF_HEADER = b"%PDF-"

# A page's index, its normalised text, and why it failed (None when it did not).
PageText = tuple[int, str, "str | None"]


class PdfLoader(Loader):
    """Reads ``.pdf`` files with pypdf, page by page."""

    extensions = frozenset({".pdf"})

    def load(self, path: Path, *, password: str | None, settings: Settings) -> list[Page]:
        """Read a PDF; see :meth:`Loader.load`.

        A file that opens with the empty password (common for PDFs that are only
        "protected" against printing or copying) loads without one.

        Raises:
            LoaderError: with reason ``encrypted`` (no or wrong password),
                ``unreadable`` (pypdf cannot parse it), ``no_text`` (no page has
                text: a scan), ``garbled`` (the text layer is glyph names),
                ``too_large`` (over ``max_pages`` or ``max_chars_per_file``),
                ``timeout`` (over ``max_seconds_per_file``), or those of
                :func:`~ragqa.loaders.base.read_file`.
        """
        data = read_file(path, settings)
        deadline = _Deadline(path, settings.max_seconds_per_file)
        with _pypdf_warnings.collecting() as pypdf_warnings:
            pages = _PdfReading(path, data, settings, deadline).pages(password)
        if pypdf_warnings:
            logger.info(
                "%s: pypdf worked around %d problem(s) in the file, first: %s",
                path,
                len(pypdf_warnings),
                pypdf_warnings[0],
            )
        return pages


def decode_glyph_names(text: str) -> str:
    """Replace ``/uniXXXX`` glyph names with the characters they name.

    Args:
        text: text extracted from a PDF.

    Returns:
        ``text`` with every ``/uni`` + four upper-case hex digits replaced; anything
        else, including surrogate code points, is left alone.

    Example:
        >>> decode_glyph_names("TO: /uni5929/uni6D25 2024/8/22")
        'TO: 天津 2024/8/22'
    """
    return _UNI_GLYPH_RE.sub(_glyph_char, text)


def looks_garbled(text: str) -> bool:
    """True when most of ``text`` is glyph names or characters with no meaning.

    This is what a PDF whose fonts have no Unicode map extracts to: runs of glyph
    names ("/g23/g7/g41"), ``(cid:12)`` codes, U+FFFD replacement characters or
    private-use code points. A path such as "/usr/local/bin" in ordinary text does
    not tip the balance, because the rest of the page is real words.

    Example:
        >>> looks_garbled("/g23/g7/g41/g41/g50 /g12/g50")
        True
        >>> looks_garbled("See /usr/local/bin for the installed tools.")
        False
    """
    visible = sum(1 for char in text if not char.isspace())
    if not visible:
        return False
    junk = sum(len(match.group(0)) for match in _GLYPH_NAME_RUN_RE.finditer(text))
    junk += sum(1 for char in text if char == "\ufffd" or unicodedata.category(char) == "Co")
    return junk / visible >= _GARBLED_SHARE


def _glyph_char(match: re.Match[str]) -> str:
    code = int(match.group(1), 16)
    return match.group(0) if 0xD800 <= code <= 0xDFFF else chr(code)


class _OutOfTime(Exception):
    """Raised from inside pypdf's extraction loop when the deadline has passed."""

    def __init__(self, pages_done: int = 0) -> None:
        super().__init__(pages_done)
        self.pages_done = pages_done


class _Deadline:
    """The moment by which a file must be read (``max_seconds_per_file``).

    It is checked between pages and, through pypdf's operator callback, between the
    drawing operators of a page, so one huge page cannot run far past it. pypdf
    cannot be interrupted while it parses the file's cross-reference table or a
    single operator.
    """

    def __init__(self, path: Path, seconds: float) -> None:
        self.path = path
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def passed(self) -> bool:
        return time.monotonic() >= self.end

    def check_in_pypdf(self, *_operator: Any) -> None:
        if self.passed():
            raise _OutOfTime

    def error(self, pages_done: int, pages_total: int) -> LoaderError:
        return LoaderError(
            str(self.path),
            f"reading took over {self.seconds:g} s (stopped after {pages_done} of "
            f"{pages_total} pages; raise max_seconds_per_file to allow more)",
            reason="timeout",
        )


class _PdfReading:
    """One attempt to read one PDF: open, decrypt, then extract page by page."""

    def __init__(self, path: Path, data: bytes, settings: Settings, deadline: _Deadline) -> None:
        self.path = path
        self.data = data
        self.settings = settings
        self.deadline = deadline
        self.password: str | None = None  # the one that opened it, once decrypted

    def fail(self, cause: str, reason: str) -> LoaderError:
        return LoaderError(str(self.path), cause, reason=reason)

    def pages(self, password: str | None) -> list[Page]:
        reader = self.open()
        self.decrypt(reader, password)
        try:
            total = len(reader.pages)
        except Exception as exc:
            raise self.fail(f"not a readable PDF: {_summary(exc)}", "unreadable") from exc
        if total == 0:
            raise self.fail("PDF has no pages", "empty")
        if total > self.settings.max_pages:
            raise self.fail(
                f"{total:,} pages is over the limit of {self.settings.max_pages:,} "
                "(raise max_pages to load it)",
                "too_large",
            )
        return self.extract(reader, total)

    def open(self) -> PdfReader:
        try:
            import pypdf
        except ImportError as exc:  # pragma: no cover - pypdf is a dependency
            raise self.fail("reading PDFs needs pypdf: pip install pypdf", "unsupported") from exc
        try:
            # strict=False lets pypdf repair what it can (a broken xref table, a
            # wrong offset), which rescues many files that viewers open fine.
            return pypdf.PdfReader(BytesIO(self.data), strict=False)
        except Exception as exc:
            cause = f"not a readable PDF: {_summary(exc)}"
            if _PDF_HEADER not in self.data[:1024]:
                cause = f"not a PDF file (no {_PDF_HEADER.decode()} header): {_summary(exc)}"
            raise self.fail(cause, "unreadable") from exc

    def decrypt(self, reader: PdfReader, password: str | None) -> None:
        from pypdf import PasswordType

        try:
            if not reader.is_encrypted:
                return
            # Try the given password first, then the empty one: a batch of files
            # shares one password, and files that open without one must still load.
            for attempt in (password, ""):
                if attempt is not None and reader.decrypt(attempt) != PasswordType.NOT_DECRYPTED:
                    self.password = attempt
                    return
        except NotImplementedError as exc:
            raise self.fail(
                f"encrypted with a method pypdf cannot open ({_summary(exc)})", "unreadable"
            ) from exc
        except Exception as exc:
            # pypdf raises DependencyError when AES needs the cryptography package.
            raise self.fail(f"cannot decrypt PDF: {_summary(exc)}", "unreadable") from exc
        if password is None:
            raise self.fail("encrypted PDF: pass --pdf-password", "encrypted")
        raise self.fail("wrong password for encrypted PDF", "encrypted")

    def extract(self, reader: PdfReader, total: int) -> list[Page]:
        source = source_of(self.path)
        digest = content_hash(self.data)
        pages: list[Page] = []
        failed: list[str] = []
        garbled = 0
        chars = 0
        for index, text, failure in self.page_texts(reader, total):
            if failure is not None:
                failed.append(f"page {index + 1}: {failure}")
                continue
            if not text:
                continue
            if looks_garbled(text):
                garbled += 1
                continue
            chars += len(text)
            if chars > self.settings.max_chars_per_file:
                raise self.fail(
                    f"over {self.settings.max_chars_per_file:,} characters of text by page "
                    f"{index + 1} of {total} (raise max_chars_per_file to load it)",
                    "too_large",
                )
            pages.append(Page(source, index + 1, text, digest))
        if not pages:
            raise self.no_pages_error(total, failed, garbled)
        if failed or garbled:
            logger.warning(
                "%s: skipped %d of %d pages that could not be read%s",
                self.path,
                len(failed) + garbled,
                total,
                f" ({'; '.join(failed[:3])})" if failed else " (garbled text)",
            )
        return pages

    def page_texts(self, reader: PdfReader, total: int) -> Iterator[PageText]:
        """Every page's normalised text, or why it failed, in page order: read
        in-process (lazily, so that a limit stops it early), or split across
        processes for a long file (see :mod:`ragqa.loaders.pdf_parallel`).

        Raises:
            LoaderError: with reason ``timeout``, while iterating.
        """
        from ragqa.loaders import pdf_parallel

        workers = pdf_parallel.worker_count(total, self.settings)
        try:
            if workers > 1:
                yield from pdf_parallel.page_texts_in_processes(self, reader, total, workers)
            else:
                yield from extract_pages(reader, range(total), self.deadline)
        except _OutOfTime as exc:
            raise self.deadline.error(exc.pages_done, total) from None

    def no_pages_error(self, total: int, failed: list[str], garbled: int) -> LoaderError:
        if failed:
            return self.fail(
                f"text extraction failed on {len(failed)} of {total} pages ({failed[0]})",
                "unreadable",
            )
        if garbled:
            return self.fail(
                "the text layer is unreadable (fonts without a Unicode map give glyph "
                "names instead of text); OCR it first",
                "garbled",
            )
        return self.fail("no text layer (scanned or image-only PDF); OCR it first", "no_text")


def extract_pages(reader: PdfReader, indices: range, deadline: _Deadline) -> Iterator[PageText]:
    """``(index, text, None)`` for each page in ``indices`` that extracts, with its
    text normalised (empty for a page without text), or ``(index, "", cause)`` for
    one that fails.

    Raises:
        _OutOfTime: with the number of pages done, once ``deadline`` has passed.
    """
    for done, index in enumerate(indices):
        if deadline.passed():
            raise _OutOfTime(done)
        try:
            raw = reader.pages[index].extract_text(visitor_operand_before=deadline.check_in_pypdf)
        except _OutOfTime:
            raise _OutOfTime(done) from None
        except Exception as exc:
            yield index, "", _summary(exc)
            continue
        yield index, normalize_text(decode_glyph_names(raw or "")), None


def _summary(exc: BaseException) -> str:
    """pypdf's message on one short line, with the exception type when it is bare."""
    message = " ".join(str(exc).split())
    if not message:
        return type(exc).__name__
    return message if len(message) <= 120 else message[:119] + "…"


class _PypdfWarningCollector(logging.Handler):
    """Catches what pypdf logs while this thread reads a PDF; passes the rest on.

    pypdf logs every repair it makes under ``strict=False`` ("incorrect startxref
    pointer(1)"), which floods a terminal during a batch ingest. The collector sits
    on the ``pypdf`` logger with propagation turned off, keeps the records of the
    threads that are inside :meth:`collecting`, and hands every other record to the
    root logger, as propagation would have. Threads matter because the UI may read
    several files at once.
    """

    def __init__(self) -> None:
        super().__init__(logging.NOTSET)
        self._local = threading.local()
        self._install_lock = threading.Lock()

    @contextmanager
    def collecting(self) -> Iterator[list[str]]:
        """Collect this thread's pypdf warnings into the list it yields."""
        with self._install_lock:
            pypdf_logger = logging.getLogger("pypdf")
            if self not in pypdf_logger.handlers:
                pypdf_logger.addHandler(self)
                pypdf_logger.propagate = False
        bucket: list[str] = []
        self._local.bucket = bucket
        try:
            yield bucket
        finally:
            self._local.bucket = None

    def emit(self, record: logging.LogRecord) -> None:
        bucket: list[str] | None = getattr(self._local, "bucket", None)
        if bucket is None:
            logging.getLogger().handle(record)
        elif record.levelno >= logging.WARNING:
            bucket.append(record.getMessage())


_pypdf_warnings = _PypdfWarningCollector()
