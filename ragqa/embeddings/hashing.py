"""A tiny deterministic embedder for tests and for trying ragqa without torch.

It hashes character n-grams into a fixed number of buckets. It understands nothing,
but similar strings get similar vectors, which is enough to test the plumbing
quickly and reproducibly.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from ragqa.embeddings.base import Embedder, l2_normalize

__all__ = ["HashingEmbedder"]


class HashingEmbedder(Embedder):
    """Bag of hashed character trigrams.

    Example:
        >>> e = HashingEmbedder(dimension=32)
        >>> v = e.embed(["hello world", "hello world", "something else"])
        >>> bool((v[0] == v[1]).all()), round(float(v[0] @ v[0]), 3)
        (True, 1.0)
    """

    def __init__(self, dimension: int = 64, *, ngram: int = 3) -> None:
        self.dimension = dimension
        self.ngram = ngram
        self.name = f"hashing:{dimension}"  # the spec get_embedder() takes

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            padded = f" {text.lower()} "
            for i in range(max(1, len(padded) - self.ngram + 1)):
                gram = padded[i : i + self.ngram].encode("utf-8")
                # blake2b rather than hash(): Python salts str hashes per process.
                digest = hashlib.blake2b(gram, digest_size=8).digest()
                bucket = int.from_bytes(digest[:4], "little") % self.dimension
                sign = 1.0 if digest[4] & 1 else -1.0
                out[row, bucket] += sign
        return l2_normalize(out)
