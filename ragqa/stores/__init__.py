"""Where a knowledge base keeps its chunks, vectors and lexical index.

Only the embedded store exists today: SQLite for the catalog, FAISS for vectors and a
BM25 index for words, all in one directory (see :mod:`ragqa.stores.local`).
"""

from __future__ import annotations

from ragqa.stores.local import FORMAT_VERSION, LocalStore, Manifest, NewDocument

__all__ = ["FORMAT_VERSION", "LocalStore", "Manifest", "NewDocument"]
