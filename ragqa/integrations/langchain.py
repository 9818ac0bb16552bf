"""A knowledge base as a LangChain retriever.

LangChain stays here, at the edge: the core never imports it and never returns its
objects. :meth:`ragqa.KnowledgeBase.as_langchain_retriever` builds a
:class:`KnowledgeBaseRetriever` around the knowledge base's own search, so a chain
gets exactly the hits ``kb.search`` would give, as ``Document`` values.

Example:
    >>> retriever = kb.as_langchain_retriever(k=3)                     # doctest: +SKIP
    >>> doc = retriever.invoke("茶的起源")[0]                           # doctest: +SKIP
    >>> doc.metadata["file_name"], doc.metadata["page"]                # doctest: +SKIP
    ('茶的歷史.md', 1)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables.config import run_in_executor
from pydantic import ConfigDict, Field

from ragqa.config import RETRIEVAL_MODES
from ragqa.errors import ConfigError
from ragqa.types import Hit

__all__ = ["SEARCH_OPTIONS", "KnowledgeBaseRetriever", "check_search_options", "hit_to_document"]

#: The settings a retriever may change for its own searches: those that shape
#: retrieval. Anything else (the answerer, chunking, limits) has no effect on a
#: search, so passing it is more likely a mistake than a wish.
SEARCH_OPTIONS = (
    "dense_weight",
    "min_relevance",
    "reranker_model",
    "rerank_depth",
    "mmr",
    "mmr_lambda",
    "focus_weight",
)


def check_search_options(k: int | None, mode: str | None, options: Mapping[str, Any]) -> None:
    """Refuse a retriever that could only fail later, with a message that says why.

    Raises:
        ConfigError: ``k`` below 1, an unknown mode, or an option not in
            :data:`SEARCH_OPTIONS`.
    """
    if k is not None and k < 1:
        raise ConfigError(f"k must be at least 1, not {k}")
    if mode is not None and mode not in RETRIEVAL_MODES:
        raise ConfigError(f"mode must be one of {', '.join(RETRIEVAL_MODES)}, not {mode!r}")
    unknown = sorted(set(options) - set(SEARCH_OPTIONS))
    if unknown:
        raise ConfigError(
            f"unknown search option(s) {', '.join(unknown)}; a retriever accepts "
            f"k, mode and {', '.join(SEARCH_OPTIONS)}"
        )


def hit_to_document(hit: Hit, rank: int) -> Document:
    """A :class:`~ragqa.types.Hit` as a LangChain ``Document``.

    ``page_content`` is the chunk's text and ``metadata`` holds everything needed to
    cite it: ``source``, ``file_name``, ``page``, ``start``/``end`` (character
    offsets into the page), ``score``, ``chunk_id``, ``rank`` (from 1), ``heading``
    and ``focus`` (offsets into the text of its best-matching units). Values are
    plain JSON types, so documents can be serialised or sent over the wire.
    """
    return Document(
        id=str(hit.chunk_id),
        page_content=hit.text,
        metadata={
            "source": hit.source,
            "file_name": hit.file_name,
            "page": hit.page,
            "start": hit.start,
            "end": hit.end,
            "score": float(hit.score),
            "chunk_id": hit.chunk_id,
            "rank": rank,
            "heading": hit.heading,
            "focus": [list(span) for span in hit.focus],
        },
    )


class KnowledgeBaseRetriever(BaseRetriever):
    """A LangChain retriever over one knowledge base; build it with
    :meth:`ragqa.KnowledgeBase.as_langchain_retriever`.

    ``search`` is the knowledge base's search with ``k``, the mode and the options
    already bound, so this class holds no retrieval logic of its own and cannot
    drift from ``kb.search``. The knowledge base is thread-safe, which is what lets
    ``batch`` and ``ainvoke`` (run in LangChain's thread pool) search at once.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    search: Callable[[str], list[Hit]] = Field(repr=False)
    #: What the retriever was built with, for ``repr`` and LangChain's tracing.
    k: int
    mode: str
    options: dict[str, Any] = {}

    def _get_relevant_documents(
        self,
        query: str,
        *,
        run_manager: CallbackManagerForRetrieverRun,  # noqa: ARG002 - LangChain's signature
    ) -> list[Document]:
        return [hit_to_document(hit, rank) for rank, hit in enumerate(self.search(query), 1)]

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun
    ) -> list[Document]:
        # Search is blocking (ONNX Runtime, FAISS, SQLite); keep it off the event loop.
        return await run_in_executor(
            None, self._get_relevant_documents, query, run_manager=run_manager.get_sync()
        )
