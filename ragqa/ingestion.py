"""Turning files into chunks ready to embed: the steps of an ingest that need no store.

:meth:`ragqa.KnowledgeBase.add` runs these in one process; ``ingest/ray_ingest.py``
runs the same functions in Ray tasks across a cluster, so both cut every file into
exactly the same chunks.

Example:
    >>> from ragqa import Settings
    >>> doc = prepare_text("faq/warranty", "The warranty lasts two years.", Settings())
    >>> [c.text for c in doc.chunks]
    ['The warranty lasts two years.']
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ragqa.config import Settings
from ragqa.errors import LoaderError
from ragqa.types import Chunk, DocumentInfo, FileResult, Page

__all__ = [
    "PreparedDocument",
    "collect_files",
    "file_hash",
    "prepare_file",
    "prepare_text",
    "read_file",
    "source_key",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PreparedDocument:
    """A file read and split, and perhaps already embedded, waiting to be stored.

    ``vectors`` is ``None`` until the chunks are embedded; a knowledge base embeds
    what arrives without them.
    """

    source: str
    content_hash: str
    pages: int
    chunks: tuple[Chunk, ...]
    page_texts: tuple[tuple[int, str], ...] = ()
    vectors: np.ndarray | None = None

    def with_vectors(self, vectors: np.ndarray) -> PreparedDocument:
        """A copy carrying one vector per chunk."""
        if len(vectors) != len(self.chunks):
            raise ValueError(f"{self.source}: {len(self.chunks)} chunks, {len(vectors)} vectors")
        return replace(self, vectors=np.asarray(vectors, dtype=np.float32))


def source_key(path: str | os.PathLike[str]) -> str:
    """How a file is identified in a knowledge base: its absolute path."""
    return str(Path(path).expanduser().resolve())


def file_hash(path: str | os.PathLike[str]) -> str:
    """The SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def split(pages: Sequence[Page], settings: Settings) -> list[Chunk]:
    """Cut pages into chunks with the settings' size and overlap."""
    from ragqa.splitting import split_pages

    return split_pages(pages, chunk_size=settings.chunk_size, chunk_overlap=settings.chunk_overlap)


def prepare_text(source: str, text: str, settings: Settings) -> PreparedDocument:
    """Normalise and split a text that is not a file, under a source name.

    Raises:
        LoaderError: the text has nothing to index.
    """
    from ragqa.normalize import normalize_text

    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    page = Page(source, 1, normalize_text(text), digest)
    chunks = split([page], settings)
    if not chunks:
        raise LoaderError(source, "no text", reason="empty")
    return PreparedDocument(source, digest, 1, tuple(chunks), ((1, page.text),))


def prepare_file(
    path: str | os.PathLike[str],
    settings: Settings,
    *,
    password: str | None = None,
    source: str | None = None,
    content_hash: str | None = None,
) -> PreparedDocument:
    """Read one file and split it into chunks.

    Args:
        path: the file.
        settings: chunking and the limits on what a file may cost.
        password: tried if the file is an encrypted PDF.
        source: its name in the knowledge base; :func:`source_key` by default.
        content_hash: its :func:`file_hash`, if already computed.

    Raises:
        LoaderError: the file cannot be read, or has no text (the message says why).
        OSError: the file could not be opened at all.
    """
    from ragqa.loaders import load_document

    source = source or source_key(path)
    digest = content_hash or file_hash(path)
    pages = load_document(Path(path), password=password, settings=settings)
    chunks = split(pages, settings)
    if not chunks:
        raise LoaderError(source, "no text to index", reason="no_text")
    page_texts = tuple((page.page, page.text) for page in pages)
    return PreparedDocument(source, digest, len(pages), tuple(chunks), page_texts)


def read_file(
    path: str | os.PathLike[str],
    settings: Settings,
    *,
    password: str | None = None,
    stored: DocumentInfo | None = None,
) -> PreparedDocument | FileResult:
    """One file's outcome in an ingest: unchanged, failed with its cause, or prepared.

    Never raises for a bad file: the batch goes on and the report says why.

    Args:
        path: the file.
        settings: chunking and limits.
        password: for encrypted PDFs.
        stored: what the knowledge base holds for this file, if anything; when
            its content hash matches, the file is not read beyond its bytes.
    """
    source = source_key(path)
    try:
        digest = file_hash(path)
        if stored is not None and digest == stored.content_hash:
            return FileResult(source, "unchanged", stored.chunks, stored.pages)
        return prepare_file(path, settings, password=password, source=source, content_hash=digest)
    except LoaderError as exc:
        return FileResult(source, "failed", error=str(exc), reason=exc.reason)
    except OSError as exc:
        return FileResult(source, "failed", error=f"{source}: {exc.strerror}", reason="io")
    except Exception as exc:  # a bug, not bad input: keep the batch going, but log it
        log.exception("unexpected error while reading %s", source)
        return FileResult(
            source, "failed", error=f"{source}: internal error: {exc!r}", reason="internal"
        )


def collect_files(
    paths: Iterable[str | os.PathLike[str]],
) -> tuple[list[Path], list[FileResult]]:
    """Expand folders into files, in a stable order, and report what cannot be used.

    A file named explicitly with an unsupported extension is a failure; inside a
    folder, such files (images, spreadsheets) are skipped silently, as are hidden ones.
    """
    from ragqa.loaders import SUPPORTED_EXTENSIONS, is_supported

    files: list[Path] = []
    problems: list[FileResult] = []
    seen: set[Path] = set()
    for given in paths:
        path = Path(given).expanduser()
        if path.is_dir():
            found = sorted(
                p
                for p in path.rglob("*")
                if p.is_file()
                and is_supported(p)
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
        elif path.is_file():
            if not is_supported(path):
                problems.append(
                    FileResult(
                        source_key(path),
                        "failed",
                        error=f"{path}: unsupported file type {path.suffix or '(none)'!r}; "
                        f"supported: {', '.join(sorted(SUPPORTED_EXTENSIONS))}",
                        reason="unsupported",
                    )
                )
                continue
            found = [path]
        else:
            problems.append(
                FileResult(
                    str(path), "failed", error=f"{path}: no such file or folder", reason="not_found"
                )
            )
            continue
        for item in found:
            key = item.resolve()
            if key not in seen:
                seen.add(key)
                files.append(item)
    return files, problems
