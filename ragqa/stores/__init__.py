"""Where a knowledge base keeps its chunks, vectors and lexical index.

A location string picks the backend (see :mod:`ragqa.stores.base` for the interface):

* a directory, or ``faiss:///path/to/dir``: :class:`~ragqa.stores.local.LocalStore`,
  the embedded default (SQLite, FAISS and ragqa's BM25 index in one directory);
* ``milvus:///path/to/file.db``: Milvus Lite, embedded in one file;
* ``milvus://host:19530/name``: a Milvus server or cluster, with the knowledge base
  in collections named after ``name``.

Example:
    >>> parse_location("milvus://db.internal:19530/papers")
    ('milvus', 'db.internal:19530/papers')
    >>> parse_location("kbs/papers")
    ('local', 'kbs/papers')
"""

from __future__ import annotations

import os
from pathlib import Path

from ragqa.errors import ConfigError
from ragqa.stores.base import FORMAT_VERSION, Manifest, NewDocument, Store, text_hash
from ragqa.stores.local import LocalStore

__all__ = [
    "FORMAT_VERSION",
    "LocalStore",
    "Manifest",
    "NewDocument",
    "Store",
    "create_store",
    "open_store",
    "parse_location",
    "store_exists",
    "text_hash",
]

_SCHEMES = {"faiss": "local", "file": "local", "milvus": "milvus"}


def parse_location(location: str | os.PathLike[str]) -> tuple[str, str]:
    """Split a store location into ``(backend, rest)``; a plain path is local."""
    text = os.fspath(location)
    scheme, sep, rest = text.partition("://")
    if not sep or len(scheme) < 2:  # "C:\\..." is a path, not a scheme
        return "local", text
    backend = _SCHEMES.get(scheme.lower())
    if backend is None:
        raise ConfigError(
            f"unknown store {text!r}: use a directory, faiss:///DIR, milvus:///FILE.db "
            "or milvus://HOST:PORT/NAME"
        )
    return backend, rest


def store_exists(location: str | os.PathLike[str], *, token: str = "") -> bool:
    """Whether a knowledge base is already stored at ``location``.

    ``token`` authenticates to a Milvus server (``Settings.milvus_token``).
    """
    backend, rest = parse_location(location)
    if backend == "local":
        return LocalStore.exists(Path(rest).expanduser())
    from ragqa.stores.milvus import MilvusStore

    return MilvusStore.exists(rest, token=token)


def create_store(
    location: str | os.PathLike[str],
    *,
    embedding_model: str,
    dimension: int,
    token: str = "",
    vector_index: str = "",
) -> Store:
    """Create an empty store at ``location`` for vectors of ``embedding_model``.

    ``token`` authenticates to a Milvus server; ``vector_index`` picks the embedded
    store's FAISS index (see :class:`~ragqa.stores.local.LocalStore`).
    """
    backend, rest = parse_location(location)
    if backend == "local":
        return LocalStore.create(
            Path(rest).expanduser(),
            embedding_model=embedding_model,
            dimension=dimension,
            vector_index=vector_index,
        )
    from ragqa.stores.milvus import MilvusStore

    return MilvusStore.create(
        rest, embedding_model=embedding_model, dimension=dimension, token=token
    )


def open_store(
    location: str | os.PathLike[str], *, token: str = "", vector_index: str = ""
) -> Store:
    """Open the store at ``location``, checking that its parts belong together."""
    backend, rest = parse_location(location)
    if backend == "local":
        return LocalStore.open(Path(rest).expanduser(), vector_index=vector_index)
    from ragqa.stores.milvus import MilvusStore

    return MilvusStore.open(rest, token=token)
