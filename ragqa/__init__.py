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
