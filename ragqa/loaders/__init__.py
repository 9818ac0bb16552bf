"""Turn files into pages of normalised text: the one entry point is :func:`load_document`.

The backend is chosen by the file's extension: :class:`~ragqa.loaders.pdf.PdfLoader`
for ``.pdf`` and :class:`~ragqa.loaders.text.TextLoader` for ``.txt``, ``.md`` and
``.markdown``. Whatever goes wrong, the caller sees a
:class:`~ragqa.errors.LoaderError` whose ``reason`` tag says what kind of problem it
was (``not_found``, ``unsupported``, ``encrypted``, ``no_text``, ...).

Example:
    >>> import tempfile
    >>> notes = Path(tempfile.mkdtemp()) / "notes.md"
    >>> _ = notes.write_text("# Tea\\n\\nGreen  tea is not fermented.\\n")
    >>> pages = load_document(notes)
    >>> pages[0].page, pages[0].text
    (1, '# Tea\\n\\nGreen tea is not fermented.')
    >>> is_supported("report.PDF"), is_supported("sheet.xlsx")
    (True, False)
"""

from __future__ import annotations

from pathlib import Path

from ragqa.config import Settings
from ragqa.errors import LoaderError
from ragqa.loaders.base import Loader
from ragqa.loaders.pdf import PdfLoader
from ragqa.loaders.text import TextLoader
from ragqa.types import Page

__all__ = ["SUPPORTED_EXTENSIONS", "Loader", "is_supported", "load_document"]

_LOADERS: tuple[type[Loader], ...] = (PdfLoader, TextLoader)
_LOADER_BY_EXTENSION: dict[str, type[Loader]] = {
    extension: loader for loader in _LOADERS for extension in loader.extensions
}

SUPPORTED_EXTENSIONS: frozenset[str] = frozenset(_LOADER_BY_EXTENSION)
"""The extensions :func:`load_document` reads, lower case with their dot."""


def is_supported(path: str | Path) -> bool:
    """True when ``path``'s extension (in any case) is one ragqa can read.

    Only the name is looked at; the file need not exist.

    Example:
        >>> is_supported("thesis.pdf"), is_supported("README"), is_supported("a.Markdown")
        (True, False, True)
    """
    return Path(path).suffix.lower() in SUPPORTED_EXTENSIONS


def load_document(
    path: str | Path,
    *,
    password: str | None = None,
    settings: Settings | None = None,
) -> list[Page]:
    """Read one file into pages of normalised text.

    Args:
        path: the file. Pages carry it as ``source``, made absolute and resolved.
        password: for an encrypted PDF. Files that need none ignore it, so one
            password can be passed for a whole batch.
        settings: the size and time limits to respect; defaults to ``Settings()``.

    Returns:
        The pages that have text, in order: one page numbered 1 for a text or
        Markdown file, and the PDF's own 1-based page numbers for a PDF (pages with
        no text are left out, so there may be gaps).

    Raises:
        LoaderError: the file cannot be read; ``reason`` is one of ``not_found``,
            ``io``, ``unsupported``, ``empty``, ``too_large``, ``binary``,
            ``encrypted``, ``unreadable``, ``no_text``, ``garbled`` or ``timeout``.

    Example:
        >>> load_document("slides.pptx")
        Traceback (most recent call last):
        ...
        ragqa.errors.LoaderError: slides.pptx: no such file
    """
    given = str(path)
    path = Path(path).expanduser()
    settings = settings if settings is not None else Settings()
    if not path.exists():
        raise LoaderError(given, "no such file", reason="not_found")
    loader = _LOADER_BY_EXTENSION.get(path.suffix.lower())
    if loader is None:
        raise LoaderError(
            given,
            f"unsupported file type {path.suffix or '(no extension)'!r}; "
            f"supported: {', '.join(sorted(SUPPORTED_EXTENSIONS))}",
            reason="unsupported",
        )
    return loader().load(path, password=password, settings=settings)
