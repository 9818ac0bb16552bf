"""Re-embedding a knowledge base with another embedding model.

Vectors of two models cannot be compared, so a knowledge base keeps the model it was
built with, and adding to it with another is refused. To move to a new model,
:func:`reindex` builds the knowledge base again from what it stores: every page's
text is read back from the catalog and split again with the current settings, then
embedded with the new model. No file is read or parsed again, so it works when the
original files are gone, and an encrypted PDF needs no password.

The new knowledge base is built in a sibling directory while the old one stays as it
was (its writer lock is held throughout, so nothing is added to it meanwhile). Only
when the new one is complete are the two swapped, each with one rename; until then a
crash leaves the old one untouched, and the half-built one is cleared on the next try.

Example:
    >>> report = reindex("kb", "multilingual-e5-small")      # doctest: +SKIP
    >>> report.chunks, report.embedding_model                 # doctest: +SKIP
    (1520, 'multilingual-e5-small')
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ragqa.config import Settings
from ragqa.errors import ConfigError
from ragqa.ingestion import PreparedDocument, split
from ragqa.knowledge_base import KnowledgeBase, ProgressCallback
from ragqa.types import DocumentInfo, Page

__all__ = ["ReindexReport", "reindex"]

BUILDING = ".reindex"  # suffix of the directory the new knowledge base is built in
REPLACED = ".before-reindex"  # suffix of the old one while the two are swapped


@dataclass(frozen=True)
class ReindexReport:
    """What :func:`reindex` did."""

    directory: str
    old_model: str
    embedding_model: str
    documents: int
    chunks: int
    seconds: float
    skipped: tuple[str, ...] = ()  # documents with no stored page text to split


def reindex(
    directory: str | os.PathLike[str],
    embedding_model: str,
    *,
    settings: Settings | None = None,
    progress: ProgressCallback | None = None,
    lock_timeout: float = 60.0,
) -> ReindexReport:
    """Re-embed every document in the local knowledge base at ``directory`` with
    ``embedding_model``, in place.

    Raises:
        ConfigError: ``directory`` is not a local knowledge base (a Milvus store is
            rebuilt by ingesting again), or it already uses ``embedding_model``.
    """
    settings = settings or Settings.from_env()
    root = Path(directory).expanduser()
    if "://" in str(directory) or not root.is_dir():
        raise ConfigError(
            f"{directory} is not a local knowledge base directory; reindex works on those "
            "only (ingest the files again into a new store instead)"
        )
    old = KnowledgeBase.open(root, settings=settings)
    try:
        old_model = old.manifest.embedding_model
        if old_model == embedding_model:
            raise ConfigError(f"{root} already uses embedding model {embedding_model!r}")
        building = root.with_name(root.name + BUILDING)
        shutil.rmtree(building, ignore_errors=True)  # a try that did not finish
        with old.store.writing(lock_timeout):
            documents = old.documents()
            skipped: list[str] = []
            new = KnowledgeBase.create(
                building, settings=settings.replace(embedding_model=embedding_model)
            )
            try:
                report = new.add_prepared(
                    _prepared(old, documents, settings, skipped),
                    total=len(documents),
                    progress=progress,
                    lock_timeout=lock_timeout,
                )
                chunks = len(new)
            finally:
                new.close()
        # The writer lock lives in the directory that is about to move, so it is let
        # go first; a write that slipped in since is caught here.
        changed = old.documents() != documents
        failed = [r for r in report.files if r.status == "failed"]
    finally:
        old.close()
    if failed or changed:
        shutil.rmtree(building, ignore_errors=True)
        cause = failed[0].error if failed else "documents were added or removed meanwhile"
        raise ConfigError(f"reindex of {root} stopped, the knowledge base is unchanged: {cause}")
    _swap(root, building)
    return ReindexReport(
        str(root),
        old_model,
        embedding_model,
        len(documents) - len(skipped),
        chunks,
        report.seconds,
        tuple(skipped),
    )


def _prepared(
    kb: KnowledgeBase, documents: list[DocumentInfo], settings: Settings, skipped: list[str]
) -> Iterator[PreparedDocument]:
    """Each stored document, split again from its stored pages."""
    for info in documents:
        pages = [
            Page(info.source, number, text, info.content_hash)
            for number in range(1, info.pages + 1)
            if (text := kb.page_text(info.source, number)) is not None
        ]
        chunks = split(pages, settings)
        if not chunks:
            skipped.append(info.source)
            continue
        page_texts = tuple((page.page, page.text) for page in pages)
        yield PreparedDocument(
            info.source, info.content_hash, info.pages, tuple(chunks), page_texts
        )


def _swap(root: Path, building: Path) -> None:
    """Put ``building`` where ``root`` is, with the old one removed only after."""
    replaced = root.with_name(root.name + REPLACED)
    shutil.rmtree(replaced, ignore_errors=True)
    os.replace(root, replaced)
    try:
        os.replace(building, root)
    except OSError:
        os.replace(replaced, root)  # put the old one back
        raise
    shutil.rmtree(replaced, ignore_errors=True)
