"""Find the chunks that answer a query: dense, lexical, or both fused.

Dense search understands paraphrase but only in the languages its model knows; the
default model maps most Chinese characters to ``[UNK]``. BM25 over jieba-segmented
words finds Chinese passages reliably and English ones by their rare words. Hybrid
search runs both and fuses their rankings.
"""

from __future__ import annotations

from collections.abc import Sequence

from ragqa.config import RETRIEVAL_MODES, Settings
from ragqa.embeddings import Embedder
from ragqa.errors import ConfigError
from ragqa.stores import LocalStore
from ragqa.types import Hit

__all__ = ["Retriever", "reciprocal_rank_fusion"]


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[int]], *, weights: Sequence[float] | None = None, k: int = 60
) -> list[tuple[int, float]]:
    """Fuse ranked id lists: each list gives ``weight / (k + rank)`` to its ids.

    Example:
        >>> reciprocal_rank_fusion([[1, 2, 3], [3, 1]], k=1)[:2]
        [(1, 0.8333333333333333), (3, 0.75)]
    """
    weights = weights or [1.0] * len(rankings)
    scores: dict[int, float] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + weight / (k + rank)
    return sorted(scores.items(), key=lambda pair: -pair[1])


class Retriever:
    """Search one store with one embedder, in the mode the settings choose."""

    def __init__(self, store: LocalStore, embedder: Embedder, settings: Settings) -> None:
        self.store = store
        self.embedder = embedder
        self.settings = settings

    def search(self, query: str, k: int, *, mode: str | None = None) -> list[Hit]:
        mode = mode or self.settings.retrieval_mode
        if mode not in RETRIEVAL_MODES:
            raise ConfigError(f"mode must be one of {', '.join(RETRIEVAL_MODES)}, not {mode!r}")
        if not query.strip():
            raise ConfigError("the query is empty")
        if mode == "dense":
            return self.store.hits(self._dense(query, k))
        if mode == "lexical":
            return self.store.hits(self._lexical(query, k))
        depth = max(k * 4, 20)
        fused = reciprocal_rank_fusion(
            [
                [cid for cid, _ in self._dense(query, depth)],
                [cid for cid, _ in self._lexical(query, depth)],
            ]
        )
        return self.store.hits(fused[:k])

    def _dense(self, query: str, k: int) -> list[tuple[int, float]]:
        return self.store.dense_search(self.embedder.embed_query(query), k)

    def _lexical(self, query: str, k: int) -> list[tuple[int, float]]:
        from ragqa.lexical import tokenize

        return self.store.lexical_search(tokenize(query), k)
