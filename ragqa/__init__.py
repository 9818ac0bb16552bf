"""ragqa: ask questions of your own documents, in Chinese and English.

Everything a program needs is here::

    from ragqa import KnowledgeBase

    kb = KnowledgeBase.open_or_create("my-kb")
    kb.add(["papers/", "notes.md"])
    for hit in kb.search("what is retrieval-augmented generation?", k=3):
        print(hit.file_name, hit.page, hit.score)

Importing ragqa is cheap: torch, FAISS and the embedding model load on first use.
"""

from __future__ import annotations

from ragqa.config import Settings
from ragqa.embeddings.sentence_transformers import set_openmp_waiting
from ragqa.errors import (
    ConfigError,
    IndexCorruptError,
    IndexMismatchError,
    KnowledgeBaseBusyError,
    LLMError,
    LoaderError,
    RagqaError,
)
from ragqa.knowledge_base import IngestProgress, KnowledgeBase
from ragqa.types import Chunk, DocumentInfo, FileResult, Hit, IngestReport, Page

# Before any OpenMP runtime starts (torch and FAISS each bring their own, and both
# are imported lazily, after this).
set_openmp_waiting()

__version__ = "0.1.0"

__all__ = [
    "Chunk",
    "ConfigError",
    "DocumentInfo",
    "FileResult",
    "Hit",
    "IndexCorruptError",
    "IndexMismatchError",
    "IngestProgress",
    "IngestReport",
    "KnowledgeBase",
    "KnowledgeBaseBusyError",
    "LLMError",
    "LoaderError",
    "Page",
    "RagqaError",
    "Settings",
]
