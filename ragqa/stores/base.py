"""The store interface: what a knowledge base needs from where its chunks live.

A store keeps, for one knowledge base, its documents, their page texts and chunks
(text, page, offsets), one vector per chunk and each chunk's lexical terms, and it
answers two kinds of search over them: nearest vectors and BM25 over the terms.
:class:`~ragqa.knowledge_base.KnowledgeBase` and
:class:`~ragqa.retrieval.Retriever` talk to this interface only, so the same API,
CLI and hybrid retrieval run on every backend:

* :class:`~ragqa.stores.local.LocalStore`, the embedded default: SQLite, FAISS and
  ragqa's BM25 index in one directory;
* :class:`~ragqa.stores.milvus.MilvusStore`: a Milvus collection (Milvus Lite in a
  file, or a Milvus server or cluster), with Milvus's own BM25 full-text search.

:func:`ragqa.stores.open_store` picks the backend from a location string.

Chunk ids are integers chosen by the store and never reused, so a cache keyed by
chunk id (see :mod:`ragqa.retrieval`) can never go stale.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import numpy as np

from ragqa.types import Chunk, DocumentInfo, Hit

__all__ = ["FORMAT_VERSION", "Manifest", "NewDocument", "Store", "text_hash"]

# The layout of what a store keeps. Bump it when that changes incompatibly: a store
# of another format is refused on open, with a message that says to rebuild.
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Manifest:
    """What a knowledge base records about itself (``manifest.json`` on disk)."""

    format_version: int
    embedding_model: str
    dimension: int
    documents: int
    chunks: int
    generation: int
    created_at: float
    updated_at: float

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class NewDocument:
    """A fully processed document, ready to be written in one step."""

    source: str
    content_hash: str
    pages: int
    chunks: Sequence[Chunk]
    vectors: np.ndarray  # (len(chunks), dimension), unit rows
    tokens: Sequence[Sequence[str]]  # lexical terms per chunk, from ragqa.lexical.tokenize
    page_texts: Sequence[tuple[int, str]] = ()  # (page number, normalised text)
    # Each chunk's share of tokens the embedding model cannot represent
    # (Embedder.unknown_token_shares), or None if the embedder cannot tell.
    unknown_shares: Sequence[float] | None = None


def text_hash(text: str) -> str:
    """A short, stable key for a chunk's text, used to reuse its vector.

    Example:
        >>> text_hash("tea")
        '833ede412aad05219a1b924c1fe8a5cd'
    """
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


class Store(ABC):
    """Where one knowledge base keeps its documents, vectors and lexical terms.

    Readers may use a store from several threads (Streamlit does); writes happen
    inside :meth:`writing`, which also keeps two processes from writing at once.
    """

    #: Where the store is, for messages: a directory or a URI.
    location: str
    #: Which engine answers :meth:`lexical_search`, for ``ragqa info``.
    lexical_engine: str

    # ------------------------------------------------------------- identity

    @property
    @abstractmethod
    def manifest(self) -> Manifest:
        """The format version, embedding model, dimension and counts."""

    @property
    def embedding_model(self) -> str:
        return self.manifest.embedding_model

    @property
    def dimension(self) -> int:
        return self.manifest.dimension

    # -------------------------------------------------------------- reading

    @abstractmethod
    def documents(self) -> list[DocumentInfo]:
        """Every stored document, sorted by source."""

    @abstractmethod
    def document(self, source: str) -> DocumentInfo | None:
        """One stored document, or None."""

    @abstractmethod
    def page_text(self, source: str, page: int) -> str | None:
        """The normalised text of one stored page; chunk offsets index into it."""

    @abstractmethod
    def counts(self) -> tuple[int, int]:
        """(documents, chunks) as stored now."""

    @abstractmethod
    def known_vectors(self, hashes: Iterable[str]) -> dict[str, np.ndarray]:
        """Vectors already stored for chunk texts with these :func:`text_hash` keys."""

    @abstractmethod
    def chunks_by_id(self, ids: Sequence[int]) -> dict[int, tuple[str, str, int, int, int]]:
        """``id -> (text, source, page, start, end)`` for the ids that exist."""

    @abstractmethod
    def vectors_by_id(self, ids: Sequence[int]) -> np.ndarray:
        """The exact stored vectors of these chunks, in the given order."""

    @abstractmethod
    def dense_search(self, query_vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        """``(chunk id, cosine similarity)`` of the ``k`` nearest chunks, best first."""

    @abstractmethod
    def lexical_search(self, query_tokens: Sequence[str], k: int) -> list[tuple[int, float]]:
        """``(chunk id, BM25 score)`` of the ``k`` best lexical matches, best first."""

    def unknown_shares(self, ids: Sequence[int]) -> dict[int, float]:
        """The stored ``[UNK]`` shares of these chunks, for those that have one.

        Retrieval weighs each candidate's cosine by how much of it the model can
        read; stored at ingest, the share costs a lookup instead of tokenizing
        every candidate on every query.
        """
        del ids
        return {}

    def chunk_terms(self, ids: Sequence[int]) -> dict[int, list[str]]:
        """The lexical terms stored with these chunks, for those that have them.

        The relevance gate measures how much of a query each top hit covers; stored
        terms spare it tokenizing five passages per query (jieba: milliseconds).
        Stores that keep no usable terms return ``{}`` and the text is tokenized.
        """
        del ids
        return {}

    def headings(self, ids: Sequence[int]) -> dict[int, str]:
        """The heading path above each of these chunks (" › " between headings).

        Derived here from the stored page text, which every store keeps; a store
        that records the path with each chunk answers faster.
        """
        from ragqa.splitting import HEADING_SEPARATOR
        from ragqa.structure import heading_path, parse_blocks

        out: dict[int, str] = {}
        parsed: dict[tuple[str, int], tuple[str, list[Any]] | None] = {}
        for cid, (_text, source, page, start, _end) in self.chunks_by_id(ids).items():
            if (source, page) not in parsed:
                page_text = self.page_text(source, page)
                parsed[source, page] = (
                    (page_text, parse_blocks(page_text)) if page_text is not None else None
                )
            entry = parsed[source, page]
            if entry is not None:
                out[cid] = HEADING_SEPARATOR.join(heading_path(entry[0], entry[1], start))
        return out

    def hits(self, scored: Sequence[tuple[int, float]]) -> list[Hit]:
        """Turn ``(chunk id, score)`` pairs into Hits, keeping their order."""
        rows = self.chunks_by_id([cid for cid, _ in scored])
        return [
            Hit(
                text=r[0],
                score=float(score),
                source=r[1],
                page=r[2],
                start=r[3],
                end=r[4],
                chunk_id=cid,
            )
            for cid, score in scored
            if (r := rows.get(cid)) is not None
        ]

    def refresh(self) -> bool:
        """Pick up what another process committed; True if anything changed."""
        return False

    def __len__(self) -> int:
        return self.counts()[1]

    # -------------------------------------------------------------- writing

    @abstractmethod
    def writing(self, timeout: float) -> AbstractContextManager[None]:
        """Hold the store's writer lock for a batch of writes.

        Raises:
            KnowledgeBaseBusyError: another process held it for ``timeout`` seconds.
        """

    @abstractmethod
    def write_documents(self, documents: Sequence[NewDocument]) -> None:
        """Add or replace whole documents; a reader sees each one old or new."""

    @abstractmethod
    def remove_document(self, source: str) -> bool:
        """Delete a document and its chunks. False if it was not stored."""

    # ------------------------------------------------------------ lifecycle

    def recover(self) -> None:  # noqa: B027 - optional hook, nothing to do by default
        """Repair what an interrupted writer left behind, if the store can."""

    def describe(self) -> dict[str, Any]:
        """What ``ragqa info`` shows about the backend beyond the manifest."""
        return {"location": self.location, "lexical search": self.lexical_engine}

    @abstractmethod
    def close(self) -> None:
        """Release connections and files."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()
