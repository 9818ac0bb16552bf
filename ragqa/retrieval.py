"""Find the chunks that answer a query: dense, lexical, or both fused.

Dense search understands paraphrase, but only in the languages its model knows: the
default model maps most Chinese characters to ``[UNK]``, and the vector of a text
that is mostly ``[UNK]`` says almost nothing about it. BM25 over the terms of
:func:`ragqa.lexical.tokenize` finds Chinese passages reliably and English ones by
their rarer words. Hybrid search (the default) runs both and fuses their scores.

How hybrid search scores a chunk. Both searches contribute their best
``FUSION_DEPTH`` chunks; over the union, the cosine similarities and the BM25
scores are each min-max normalised to [0, 1] and combined as
``w * dense + (1 - w) * bm25``. The dense weight ``w`` is ``settings.dense_weight`` (by default the
embedding model's own, ``Embedder.dense_weight``), scaled by the share of the query's tokens the embedding model knows and by the
same share of the chunk's, so an all-``[UNK]`` query is ranked by BM25 alone and a
mostly-``[UNK]`` chunk by little else. Measured on the tuning halves of the shared
sets (recall@5, recall@1; dense / BM25 / reciprocal rank fusion / this): SQuAD
0.850, 0.612 / 0.907, 0.740 / 0.919, 0.706 / 0.946, 0.777; DRCD 0.245, 0.108 /
0.991, 0.937 / 0.765, 0.356 / 0.992, 0.937. Rank fusion throws away how far apart
the scores are and lets the near-blind dense ranking pull Chinese results down by
as much as the good BM25 ranking pushes them up. Equal weights (0.5) were chosen
as the neutral prior and confirmed: 0.4 to 0.6 measure within 0.006 of each other.

After fusion, the best ``FOCUS_DEPTH`` candidates are looked at unit by unit
("small to big", :mod:`ragqa.focus`): each one's best-matching item, Q&A item, row or
sentence gives ``settings.focus_weight`` of its rank in hybrid search, so the chunk
with the one line that answers beats a chunk that merely mentions the question's
words often, and every hit says which of its units matched (``Hit.focus``) and
which headings stand above it (``Hit.heading``).

Then three optional stages run in this order:

* a relevance gate (``settings.min_relevance``): when none of the best few
  candidates is relevant enough, the search returns no hits, so that an answerer
  can say that nothing relevant was found;
* a cross-encoder (``settings.reranker_model``, see :mod:`ragqa.reranking`) that
  re-scores the best ``settings.rerank_depth`` candidates;
* maximal marginal relevance (``settings.mmr``) that trades a little relevance
  for hits that do not repeat each other.

Example:
    >>> retriever = Retriever(store, embedder, Settings())          # doctest: +SKIP
    >>> [h.file_name for h in retriever.search("茶的起源", k=2)]      # doctest: +SKIP
    ['茶的歷史.md', '茶的歷史.md']
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

from ragqa.config import RETRIEVAL_MODES, Settings
from ragqa.embeddings import Embedder
from ragqa.errors import ConfigError
from ragqa.stores import Store
from ragqa.types import Hit

__all__ = [
    "FOCUS_DEPTH",
    "FUSION_DEPTH",
    "GATE_DEPTH",
    "Retriever",
    "convex_fusion",
    "maximal_marginal_relevance",
    "reciprocal_rank_fusion",
    "term_coverage",
]

# Candidates taken from each of dense and BM25 search before fusing. A chunk that
# only one search found still needs a fair score from the other; 100 each was the
# smallest depth at which SQuAD recall@5 stopped rising (30: 0.940, 50: 0.942,
# 100: 0.946, 200: 0.946), and both lists cost well under a millisecond more.
FUSION_DEPTH = 100
# The relevance gate asks whether any of this many best candidates is relevant:
# the first-ranked chunk is not always the one that covers the question best.
GATE_DEPTH = 5
# Candidates whose units are scored (ragqa.focus) in hybrid search. All questions
# of both shared sets, focus_weight 0.3, depth 10 / 20: SQuAD recall@1 0.794 / 0.794,
# recall@5 0.949 / 0.951; DRCD 0.950 / 0.949, 0.994 / 0.994; 10 costs half as much.
FOCUS_DEPTH = 10
# MMR chooses among this many candidates per hit wanted (at least 20).
_MMR_POOL_FACTOR = 4
# What retrieval derives from a chunk's text (its [UNK] share, its lexical terms)
# is computed once per chunk: chunk ids are never reused, so a cache by id cannot
# go stale. Tokenizing a 600-character Chinese chunk takes about 3 ms, so the
# relevance gate and MMR would otherwise pay that on every query. Bounded so that
# a huge knowledge base cannot grow them without limit (an [UNK] share costs about
# 100 bytes, a term set a few kilobytes).
_UNKNOWN_CACHE_LIMIT = 200_000
_TERMS_CACHE_LIMIT = 20_000
# A unit counts as a focus of its hit when it scores this share of the best one.
_FOCUS_NEAR_BEST = 0.8

V = TypeVar("V")

_dense_pool: ThreadPoolExecutor | None = None
_dense_pool_lock = threading.Lock()


def _dense_side() -> ThreadPoolExecutor:
    """The threads that embed a hybrid query and search FAISS, made on first use."""
    global _dense_pool
    with _dense_pool_lock:
        if _dense_pool is None:
            _dense_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="ragqa-dense")
        return _dense_pool


def _forget_dense_side() -> None:
    # A forked child inherits the pool object but none of its threads: work handed
    # to it would wait forever. The child makes a pool of its own instead.
    global _dense_pool, _dense_pool_lock
    _dense_pool, _dense_pool_lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_dense_side)


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[int]], *, weights: Sequence[float] | None = None, k: int = 60
) -> list[tuple[int, float]]:
    """Fuse ranked id lists: each list gives ``weight / (k + rank)`` to its ids.

    Kept for comparison; hybrid search uses :func:`convex_fusion`, which measured
    better (see the module notes).

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


def _min_max(scores: np.ndarray) -> np.ndarray:
    """Scale to [0, 1]; all-equal scores become 0 (they tell the candidates apart not at all)."""
    scores = np.asarray(scores, dtype=np.float64)
    if not len(scores):
        return scores
    low, high = float(scores.min()), float(scores.max())
    if high <= low:
        return np.zeros_like(scores)
    return (scores - low) / (high - low)


def convex_fusion(
    dense_scores: Sequence[float] | np.ndarray,
    lexical_scores: Sequence[float] | np.ndarray,
    dense_weight: float | Sequence[float] | np.ndarray,
) -> np.ndarray:
    """Fuse two score lists over the same candidates: ``w * dense + (1 - w) * lexical``.

    Each list is min-max normalised over the candidates first, so that cosine
    similarities and BM25 scores are on one scale. A candidate that one search did
    not return should be given that search's lowest possible score (0 for BM25).

    Args:
        dense_scores: one score per candidate, e.g. cosine similarities.
        lexical_scores: one score per candidate, e.g. BM25 scores.
        dense_weight: the weight of the dense score, between 0 and 1, either one
            number or one per candidate.

    Returns:
        The fused scores, between 0 and 1, in candidate order.

    Example:
        >>> # dense 0.9, 0.5, 0.7 -> 1, 0, 0.5; BM25 0, 10, 5 -> 0, 1, 0.5
        >>> convex_fusion([0.9, 0.5, 0.7], [0.0, 10.0, 5.0], 0.25).round(3).tolist()
        [0.25, 0.75, 0.5]
        >>> convex_fusion([0.9, 0.5, 0.7], [0.0, 10.0, 5.0], [1.0, 0.0, 0.5]).round(3).tolist()
        [1.0, 1.0, 0.5]
    """
    dense = _min_max(np.asarray(dense_scores, dtype=np.float64))
    lexical = _min_max(np.asarray(lexical_scores, dtype=np.float64))
    if dense.shape != lexical.shape:
        raise ValueError(f"{len(dense)} dense scores but {len(lexical)} lexical scores")
    weight = np.broadcast_to(np.asarray(dense_weight, dtype=np.float64), dense.shape)
    return weight * dense + (1.0 - weight) * lexical


def term_coverage(query_terms: Sequence[str], chunk_terms: Sequence[str] | set[str]) -> float:
    """The share of the query's distinct terms that occur in the chunk.

    A language-neutral, absolute measure of lexical relevance: unlike a BM25
    score, it does not grow with the length of the query, so one threshold serves
    short and long questions.

    Example:
        >>> term_coverage(["tea", "origin", "tea"], ["tea", "china"])
        0.5
    """
    wanted = set(query_terms)
    if not wanted:
        return 0.0
    return len(wanted & set(chunk_terms)) / len(wanted)


def maximal_marginal_relevance(
    relevance: Sequence[float] | np.ndarray,
    similarity: np.ndarray,
    k: int,
    *,
    lambda_: float = 0.7,
) -> list[int]:
    """Pick ``k`` items, each time the one best at being relevant and new.

    The next item maximises ``lambda_ * relevance - (1 - lambda_) * (its highest
    similarity to an item already picked)`` (Carbonell and Goldstein, 1998). With
    ``lambda_ = 1`` this is plain ranking by relevance.

    Args:
        relevance: one score per item, on a scale comparable to similarity (0-1).
        similarity: the items' pairwise similarities, shape ``(n, n)``.
        k: how many to pick.
        lambda_: the weight of relevance against novelty.

    Returns:
        Indices of the picked items, in the order picked.

    Example:
        >>> sim = np.array([[1.0, 0.95, 0.1], [0.95, 1.0, 0.1], [0.1, 0.1, 1.0]])
        >>> maximal_marginal_relevance([0.9, 0.85, 0.6], sim, 2, lambda_=0.5)
        [0, 2]
    """
    relevance = np.asarray(relevance, dtype=np.float64)
    n = len(relevance)
    picked: list[int] = []
    if n == 0 or k <= 0:
        return picked
    redundancy = np.full(n, -np.inf)  # highest similarity to anything picked so far
    available = np.ones(n, dtype=bool)
    while len(picked) < min(k, n):
        penalty = np.where(np.isfinite(redundancy), redundancy, 0.0)
        value = lambda_ * relevance - (1.0 - lambda_) * penalty
        value[~available] = -np.inf
        best = int(np.argmax(value))  # the first of equals: keeps the input order
        picked.append(best)
        available[best] = False
        redundancy = np.maximum(redundancy, similarity[best])
    return picked


@dataclass
class _Query:
    """One query and what retrieval derives from it, each computed at most once."""

    text: str
    embedder: Embedder
    _vector: np.ndarray | None = None
    _terms: list[str] | None = None
    _content: list[str] | None = None
    _unknown: float | None = None

    @property
    def vector(self) -> np.ndarray:
        if self._vector is None:
            self._vector = np.asarray(self.embedder.embed_query(self.text), dtype=np.float32)
        return self._vector

    @property
    def terms(self) -> list[str]:
        if self._terms is None:
            from ragqa.lexical import tokenize

            self._terms = tokenize(self.text)
        return self._terms

    @property
    def content_terms(self) -> list[str]:
        """The question's words and characters without question words and without
        the character pairs that straddle two words ("用哪" of 用哪些): what a
        relevant chunk should hold (see Retriever._relevance)."""
        if self._content is None:
            from ragqa.focus import QUESTION_TERMS
            from ragqa.tokenizer import words

            self._content = [t for t in words(self.text) if t not in QUESTION_TERMS]
        return self._content

    @property
    def unknown_share(self) -> float:
        """The share of the query's tokens the embedding model cannot represent."""
        if self._unknown is None:
            self._unknown = _clip01(self.embedder.unknown_token_ratio([self.text]))
        return self._unknown


def _clip01(value: float | None) -> float:
    # None: the embedder has no notion of unknown tokens, so trust its vectors.
    return 0.0 if value is None else min(1.0, max(0.0, float(value)))


def _jaccard_matrix(term_sets: Sequence[frozenset[str]]) -> np.ndarray:
    """Pairwise ``|a & b| / |a | b|`` of term sets (1 on the diagonal)."""
    n = len(term_sets)
    out = np.eye(n)
    for i in range(n):
        for j in range(i + 1, n):
            union = len(term_sets[i] | term_sets[j])
            out[i, j] = out[j, i] = len(term_sets[i] & term_sets[j]) / union if union else 0.0
    return out


class _PerChunk(Generic[V]):
    """Values derived from chunks, computed once per chunk id, thread-safe, bounded."""

    def __init__(self, limit: int) -> None:
        self._values: dict[int, V] = {}
        self._limit = limit
        self._lock = threading.Lock()

    def get_many(
        self, ids: Sequence[int], compute: Callable[[list[int]], dict[int, V]], *, default: V
    ) -> list[V]:
        """The values for ``ids``; ``compute`` is called once with the missing ones."""
        with self._lock:
            missing = [cid for cid in dict.fromkeys(ids) if cid not in self._values]
        fresh = compute(missing) if missing else {}
        with self._lock:
            if len(self._values) + len(fresh) > self._limit:
                self._values.clear()  # crude, but a rebuild costs only time
            self._values.update(fresh)
            return [self._values.get(cid, fresh.get(cid, default)) for cid in ids]


class Retriever:
    """Search one store with one embedder, in the mode the settings choose.

    Args:
        store: the knowledge base's store.
        embedder: the model the store's vectors were made with.
        settings: the defaults; :meth:`search` can take others per call.
    """

    def __init__(self, store: Store, embedder: Embedder, settings: Settings) -> None:
        self.store = store
        self.embedder = embedder
        self.settings = settings
        self._unknown_by_chunk: _PerChunk[float] = _PerChunk(_UNKNOWN_CACHE_LIMIT)
        self._terms_by_chunk: _PerChunk[frozenset[str]] = _PerChunk(_TERMS_CACHE_LIMIT)
        self._headings_by_chunk: _PerChunk[str] = _PerChunk(_UNKNOWN_CACHE_LIMIT)

    def search(
        self, query: str, k: int, *, mode: str | None = None, settings: Settings | None = None
    ) -> list[Hit]:
        """The ``k`` best chunks for ``query``, best first; ``[]`` if none is relevant.

        Args:
            query: a question or keywords.
            k: how many hits at most.
            mode: ``"dense"``, ``"lexical"`` or ``"hybrid"``; defaults to the
                settings' ``retrieval_mode``.
            settings: settings for this call (dense weight, relevance threshold,
                reranker, MMR); defaults to the retriever's.

        Returns:
            Hits whose ``score`` is the cosine similarity (dense), the BM25 score
            (lexical), the fused score in [0, 1] (hybrid) or the cross-encoder's
            score (with a reranker). With MMR the hits are in the order MMR picked
            them, so their scores need not be sorted.

        Raises:
            ConfigError: an unknown mode, an empty query, ``k`` below 1, or a
                reranker model that cannot be loaded.
        """
        settings = settings or self.settings
        mode = mode or settings.retrieval_mode
        if mode not in RETRIEVAL_MODES:
            raise ConfigError(f"mode must be one of {', '.join(RETRIEVAL_MODES)}, not {mode!r}")
        if not query.strip():
            raise ConfigError("the query is empty")
        if k < 1:
            raise ConfigError(f"k must be at least 1, not {k}")
        q = _Query(query, self.embedder)
        dense_weight = (
            self.embedder.dense_weight if settings.dense_weight is None else settings.dense_weight
        )

        pool = k
        if settings.min_relevance > 0:
            pool = max(pool, GATE_DEPTH)
        if settings.reranker_model:
            pool = max(pool, settings.rerank_depth)
        if settings.mmr:
            pool = max(pool, _MMR_POOL_FACTOR * k, 20)
        refocus = mode == "hybrid" and settings.focus_weight > 0
        if refocus:
            pool = max(pool, FOCUS_DEPTH)
        if mode == "dense":
            ranked = self.store.dense_search(q.vector, pool)
        elif mode == "lexical":
            ranked = self.store.lexical_search(q.terms, pool)
        else:
            ranked = self._hybrid(q, max(pool, FUSION_DEPTH), dense_weight)[:pool]
        hits = self.store.hits(ranked)
        if not hits:
            return []

        if settings.min_relevance > 0:
            # Lexical search is judged by its own terms alone: it must not load
            # the embedding model just to weigh a cosine it never used.
            gate_weight = 0.0 if mode == "lexical" else dense_weight
            best = max(self._relevance(q, hits[:GATE_DEPTH], gate_weight))
            if best < settings.min_relevance:
                return []
        hits = self._focus(q, hits, settings.focus_weight if refocus else 0.0)
        if settings.reranker_model:
            from ragqa.reranking import get_reranker

            reranker = get_reranker(settings.reranker_model, device=settings.embedding_device)
            hits = reranker.rerank(query, hits[: settings.rerank_depth])
        if settings.mmr:
            hits = self._diversify(hits, k, settings.mmr_lambda)
        return hits[:k]

    # ----------------------------------------------------------------- stages

    def _hybrid(self, q: _Query, depth: int, dense_weight: float) -> list[tuple[int, float]]:
        """Fuse the best ``depth`` chunks of each search; ``(chunk id, fused score)``."""
        # The two sides run at once: embedding the question (ONNX Runtime or torch)
        # and FAISS release the GIL, so on a second core they overlap with the
        # tokenizer and BM25 here (the store gives BM25 a lock of its own). Measured
        # at 100k chunks, interleaved over 200 questions with empty caches: p50
        # 12.3 ms against 13.8 one after the other, mean 13.7 against 15.4.

        def dense_side() -> list[tuple[int, float]]:
            found = self.store.dense_search(q.vector, depth)
            if dense_weight:
                # In the same thread as the embedding: a tokenizer must not be
                # configured in one thread while it encodes in another.
                q.unknown_share  # noqa: B018 (computed and kept for _dense_weights)
            return found

        dense_future = _dense_side().submit(dense_side)
        lexical = self.store.lexical_search(q.terms, depth)
        dense = dense_future.result()
        # Lexical results first, so that when the dense weight is 0 the stable
        # sort below reproduces the BM25 ranking exactly, ties included.
        ids = list(dict.fromkeys([cid for cid, _ in lexical] + [cid for cid, _ in dense]))
        if not ids:
            return []
        bm25 = dict(lexical)
        # Chunks BM25 did not return share no term with the query or rank below
        # its depth; 0, BM25's floor, is the fair score for either.
        lexical_scores = np.array([bm25.get(cid, 0.0) for cid in ids])
        # Every candidate's exact cosine, not only the dense list's: the stored
        # vectors are in memory and a dot product per candidate is cheap.
        cosines = self.store.vectors_by_id(ids) @ q.vector
        weights = self._dense_weights(q, ids, dense_weight)
        fused = convex_fusion(cosines, lexical_scores, weights)
        order = np.argsort(-fused, kind="stable")
        return [(ids[i], float(fused[i])) for i in order]

    def _dense_weights(self, q: _Query, ids: Sequence[int], dense_weight: float) -> np.ndarray:
        """``dense_weight`` scaled by how much of the query and of each chunk the
        embedding model can represent."""
        if dense_weight == 0:
            return np.zeros(len(ids))
        query_known = 1.0 - q.unknown_share
        if query_known == 0:
            return np.zeros(len(ids))
        return dense_weight * query_known * (1.0 - self._unknown_shares(ids))

    def _unknown_shares(self, ids: Sequence[int], texts: Sequence[str] | None = None) -> np.ndarray:
        """Each chunk's share of ``[UNK]`` tokens (0 if the embedder cannot tell).

        Stored with the chunk at ingest and cached here by chunk id. Chunks stored
        by an older ragqa have none; their share is computed from the text (about
        0.6 ms a chunk) on first sight.
        """
        known_texts = dict(zip(ids, texts, strict=True)) if texts is not None else {}

        def compute(missing: list[int]) -> dict[int, float]:
            found: dict[int, float] = self.store.unknown_shares(missing)
            rest = [cid for cid in missing if cid not in found]
            if not rest:
                return found
            texts_by_id = {cid: known_texts[cid] for cid in rest if cid in known_texts}
            if len(texts_by_id) < len(rest):
                rows = self.store.chunks_by_id([cid for cid in rest if cid not in texts_by_id])
                texts_by_id.update((cid, row[0]) for cid, row in rows.items())
            order = list(texts_by_id)
            shares = self.embedder.unknown_token_shares([texts_by_id[cid] for cid in order])
            if shares is not None:
                found.update(
                    (cid, _clip01(share)) for cid, share in zip(order, shares, strict=True)
                )
            return found

        return np.array(self._unknown_by_chunk.get_many(ids, compute, default=0.0))

    def _chunk_terms(self, hits: Sequence[Hit]) -> list[frozenset[str]]:
        """Each hit's distinct lexical terms, cached by chunk id."""
        from ragqa.lexical import tokenize

        texts = {h.chunk_id: h.text for h in hits}

        def compute(missing: list[int]) -> dict[int, frozenset[str]]:
            stored = self.store.chunk_terms(missing)
            return {
                cid: frozenset(stored[cid] if cid in stored else tokenize(texts[cid]))
                for cid in missing
            }

        ids = [h.chunk_id for h in hits]
        return self._terms_by_chunk.get_many(ids, compute, default=frozenset())

    def _focus(self, q: _Query, hits: Sequence[Hit], weight: float) -> list[Hit]:
        """Each hit with its heading path and best units; reordered when ``weight`` > 0.

        The new score is ``(1 - weight) * score + weight * best unit score``; both
        are in [0, 1] in hybrid search, the only mode that reorders.
        """
        from ragqa.focus import focus

        ids = [h.chunk_id for h in hits]
        headings = self._headings_by_chunk.get_many(ids, self.store.headings, default="")
        focused = focus(q.text, hits, headings)
        out = []
        for hit, heading, units in zip(hits, headings, focused, strict=True):
            best = units[0].score if units else 0.0
            # The units that match nearly as well as the best, at most three.
            spans = tuple((u.start, u.end) for u in units[:3] if u.score >= _FOCUS_NEAR_BEST * best)
            score = (1.0 - weight) * hit.score + weight * best if weight else hit.score
            out.append(dataclasses.replace(hit, score=score, heading=heading, focus=spans))
        if weight:
            out.sort(key=lambda h: -h.score)  # stable: ties keep the fused order
        return out

    def _relevance(self, q: _Query, hits: Sequence[Hit], dense_weight: float) -> list[float]:
        """An absolute relevance in [0, 1] for each hit, comparable across queries.

        ``w * cosine + (1 - w) * term coverage``, with the same coverage-aware dense
        weight ``w`` as fusion, and the cosine mapped from the model's
        ``cosine_range`` to [0, 1]. Fused hybrid scores cannot serve: min-max
        normalisation gives the best candidate of any query, relevant or not, a
        score near 1.
        """
        ids = [h.chunk_id for h in hits]
        weights = self._dense_weights(q, ids, dense_weight)
        if weights.any():
            low, high = self.embedder.cosine_range
            raw = self.store.vectors_by_id(ids) @ q.vector
            cosines = np.clip((raw - low) / (high - low), 0.0, 1.0)
        else:
            cosines = np.zeros(len(ids))
        terms = q.content_terms or q.terms
        coverage = np.array([term_coverage(terms, found) for found in self._chunk_terms(hits)])
        return (weights * cosines + (1.0 - weights) * coverage).tolist()

    def _diversify(self, hits: Sequence[Hit], k: int, lambda_: float) -> list[Hit]:
        """Reorder ``hits`` by maximal marginal relevance and keep ``k``.

        Similarity is the cosine of the stored vectors where the model can read
        both chunks, and the overlap of their lexical terms where it cannot: two
        mostly-[UNK] chunks have near-identical vectors whatever they say.
        """
        if len(hits) <= 1:
            return list(hits)
        ids = [h.chunk_id for h in hits]
        vectors = self.store.vectors_by_id(ids)
        cosines = np.clip(vectors @ vectors.T, 0.0, 1.0)
        known = 1.0 - self._unknown_shares(ids, [h.text for h in hits])
        readable = np.sqrt(np.outer(known, known))
        similarity = readable * cosines
        if (readable < 1.0).any():  # term overlap only where some chunk is unreadable
            similarity += (1.0 - readable) * _jaccard_matrix(self._chunk_terms(hits))
        scores = np.array([h.score for h in hits], dtype=np.float64)
        # Relevance on the 0-1 scale of similarity. Scaling by the best score keeps
        # 0 meaning "no match" for cosines, BM25 and fused scores; min-max would
        # call the pool's last candidate irrelevant however good it is. Only a
        # cross-encoder's logits can be negative, and need min-max.
        if scores.min() >= 0 and scores.max() > 0:
            relevance = scores / scores.max()
        else:
            relevance = _min_max(scores)
        picked = maximal_marginal_relevance(relevance, similarity, k, lambda_=lambda_)
        return [hits[i] for i in picked]
