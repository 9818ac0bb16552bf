"""The values that cross ragqa's boundaries: frozen dataclasses, never dicts.

A loader turns a file into :class:`Page` records, the splitter cuts pages into
:class:`Chunk` values, search returns :class:`Hit` values, and answering returns an
``Answer`` (see :mod:`ragqa.answering`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Chunk", "DocumentInfo", "FileResult", "Hit", "IngestReport", "Page"]


@dataclass(frozen=True)
class Page:
    """The normalised text of one page of a source file.

    Text and Markdown files are a single page, numbered 1. ``content_hash`` is the
    SHA-256 of the whole file's bytes, the same on every page of a file; it is how a
    knowledge base tells an unchanged file from a changed one.
    """

    source: str
    page: int
    text: str
    content_hash: str


@dataclass(frozen=True)
class Chunk:
    """A piece of one page, small enough to embed.

    ``start`` and ``end`` are character offsets into the page's normalised text, so
    ``page.text[chunk.start:chunk.end] == chunk.text`` always holds and a UI can
    highlight the passage in its page.
    """

    text: str
    source: str
    page: int
    start: int
    end: int
    #: The headings above the chunk, outermost first, joined by " › ".
    heading: str = ""
    #: What is embedded and indexed for the chunk, when that is not ``text``: the
    #: heading path, then the text without page furniture (see ragqa.structure).
    indexed: str = ""

    @property
    def index_text(self) -> str:
        """The text retrieval sees: ``indexed`` if set, else ``text``."""
        return self.indexed or self.text


@dataclass(frozen=True)
class Hit:
    """One search result.

    ``score`` is higher for better matches; its scale depends on the retrieval
    mode (cosine similarity for dense search, a fused score for hybrid).
    ``chunk_id`` identifies the chunk inside its knowledge base.

    ``heading`` is the path of headings above the chunk (" › " between them), and
    ``focus`` the ``(start, end)`` offsets into ``text`` of the units (items,
    Q&A items, rows, sentences) that match the query best, best first; both are
    filled in by :class:`ragqa.retrieval.Retriever`.
    """

    text: str
    score: float
    source: str
    page: int
    start: int
    end: int
    chunk_id: int = -1
    heading: str = ""
    focus: tuple[tuple[int, int], ...] = ()

    @property
    def file_name(self) -> str:
        """The source's file name without its folder, for display."""
        return Path(self.source).name

    def to_dict(self, rank: int) -> dict[str, object]:
        """The hit as ``ragqa search --json`` and the HTTP API's search show it.

        Example:
            >>> Hit("Tea.", 0.5, "/d/tea.md", 1, 0, 4).to_dict(1)["file_name"]
            'tea.md'
        """
        return {
            "rank": rank,
            "score": round(float(self.score), 6),
            "source": self.source,
            "file_name": self.file_name,
            "page": self.page,
            "start": self.start,
            "end": self.end,
            "chunk_id": self.chunk_id,
            "text": self.text,
        }


@dataclass(frozen=True)
class DocumentInfo:
    """What a knowledge base knows about one stored document."""

    source: str
    content_hash: str
    pages: int
    chunks: int
    added_at: float


@dataclass(frozen=True)
class FileResult:
    """The outcome of ingesting one file.

    ``status`` is one of ``added``, ``unchanged``, ``replaced`` or ``failed``. A
    failed file carries the error message and its short ``reason`` tag (see
    :class:`ragqa.errors.LoaderError`).
    """

    source: str
    status: str
    chunks: int = 0
    pages: int = 0
    error: str | None = None
    reason: str | None = None
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class IngestReport:
    """The outcome of one ``KnowledgeBase.add`` call, file by file."""

    files: tuple[FileResult, ...] = ()
    seconds: float = 0.0
    warnings: tuple[str, ...] = field(default=())

    def _count(self, status: str) -> int:
        return sum(1 for f in self.files if f.status == status)

    @property
    def added(self) -> int:
        return self._count("added")

    @property
    def unchanged(self) -> int:
        return self._count("unchanged")

    @property
    def replaced(self) -> int:
        return self._count("replaced")

    @property
    def failed(self) -> int:
        return self._count("failed")

    @property
    def chunks(self) -> int:
        """Chunks written by this call (unchanged files add none)."""
        return sum(f.chunks for f in self.files if f.status in ("added", "replaced"))

    def summary(self) -> str:
        """One line for a terminal: counts and time."""
        return (
            f"{self.added} added, {self.unchanged} unchanged, {self.replaced} replaced, "
            f"{self.failed} failed; {self.chunks} chunks in {self.seconds:.1f}s"
        )
