"""The embedder interface: one abstract method, everything else built on it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed

import numpy as np

__all__ = ["Embedder"]


class Embedder(ABC):
    """Turns text into unit-length float32 vectors.

    Subclasses implement :meth:`embed_batch` only. ``name`` is what a knowledge base
    records in its manifest, so it must identify the model (not the machine's path to
    it) and ``dimension`` must be the vector length.
    """

    name: str
    dimension: int
    batch_size: int = 16
    # How many batches embed() runs at once, each in a thread of its own. A backend
    # that sets this above 1 must make embed_batch safe to call from several threads
    # at once, and should release the GIL while it computes.
    workers: int = 1
    # The weight hybrid search gives this model's cosines against BM25 scores, unless
    # Settings.dense_weight says otherwise (see ragqa.retrieval).
    dense_weight: float = 0.5
    # The cosines that mean "unrelated" and "as related as it gets" for this model,
    # mapped to 0 and 1 where relevance must be absolute (the relevance gate of
    # ragqa.retrieval). Some models, e5 among them, score any two texts 0.7 or more.
    cosine_range: tuple[float, float] = (0.0, 1.0)
    # The share of a unit's score that its closeness in meaning to the question makes
    # in the extractive answerer (ragqa.embeddings.closeness), against its words'.
    # 0 means words alone: a model must be measured before its cosines pick answers
    # (MiniLM reads most Chinese characters as [UNK]).
    meaning_weight: float = 0.0

    @abstractmethod
    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        """Embed a batch of texts into a ``(len(texts), dimension)`` float32 array.

        Rows must be L2-normalised: the FAISS index scores by inner product, and inner
        product equals cosine similarity on unit vectors.
        """

    def embed(
        self, texts: Sequence[str], *, progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        """Embed any number of texts in batches of ``batch_size``.

        Args:
            texts: the texts, in order.
            progress: called with the number of texts done after each batch.

        Example:
            >>> from ragqa.embeddings import HashingEmbedder
            >>> HashingEmbedder(dimension=8).embed(["a", "b", "c"]).shape
            (3, 8)
        """
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        # Length bucketing: a batch is padded to its longest text, so batches of
        # similar lengths waste little work on padding. Texts are embedded longest
        # first (the biggest batch shows at once whether memory suffices) and put
        # back in their order at the end.
        lengths = self.text_lengths(texts)
        order = sorted(range(len(texts)), key=lambda i: -lengths[i])
        batches = [order[s : s + self.batch_size] for s in range(0, len(order), self.batch_size)]
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        done = 0
        for batch, vectors in self._embed_batches(texts, batches):
            out[batch] = vectors
            done += len(batch)
            if progress is not None:
                progress(done)
        return out

    def text_lengths(self, texts: Sequence[str]) -> Sequence[int]:
        """How long each text is to the model, for length bucketing: characters,
        unless a backend can count what it really computes on (tokens)."""
        return [len(text) for text in texts]

    def _embed_batches(
        self, texts: Sequence[str], batches: list[list[int]]
    ) -> Iterator[tuple[list[int], np.ndarray]]:
        """Each batch of indices with its vectors, in the order they are done."""

        def run(batch: list[int]) -> tuple[list[int], np.ndarray]:
            return batch, self.embed_batch([texts[i] for i in batch])

        if self.workers <= 1 or len(batches) == 1:
            yield from map(run, batches)
            return
        pool = ThreadPoolExecutor(
            self.workers, thread_name_prefix="ragqa-embed", initializer=self.start_worker
        )
        try:
            for future in as_completed([pool.submit(run, batch) for batch in batches]):
                yield future.result()
        finally:
            # After an error (or a caller that stops early), batches not yet
            # started are dropped rather than computed for nothing.
            pool.shutdown(wait=True, cancel_futures=True)
            self.stop_workers()

    # Optional hooks, empty unless a backend needs them.
    def start_worker(self) -> None:  # noqa: B027
        """Called once in each thread that :meth:`embed` starts (``workers`` > 1)."""

    def stop_workers(self) -> None:  # noqa: B027
        """Called in the calling thread once those threads have finished."""

    def embed_query(self, text: str) -> np.ndarray:
        """Embed one query into a ``(dimension,)`` vector."""
        return self.embed_batch([text])[0]

    def unknown_token_counts(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray] | None:
        """For each text, how many of its tokens are ``[UNK]``, and how many tokens
        it has; ``None`` if the embedder has no notion of unknown tokens.

        A model whose vocabulary lacks a script maps its characters to ``[UNK]``, and
        its vectors for such text carry almost no meaning. Retrieval uses this to lean
        on lexical scores.
        """
        del texts
        return None

    def unknown_token_ratio(self, texts: Sequence[str]) -> float | None:
        """The share of all the texts' tokens that are ``[UNK]``, if the embedder can tell.

        Example:
            >>> from ragqa.embeddings import HashingEmbedder
            >>> HashingEmbedder(8).unknown_token_ratio(["a"]) is None
            True
        """
        counts = self.unknown_token_counts(texts)
        if counts is None:
            return None
        unknown, total = counts
        return float(unknown.sum() / total.sum()) if total.sum() else 0.0

    def unknown_token_shares(self, texts: Sequence[str]) -> np.ndarray | None:
        """Each text's share of ``[UNK]`` tokens (0 for an empty text), if known."""
        counts = self.unknown_token_counts(texts)
        if counts is None:
            return None
        unknown, total = counts
        return np.divide(unknown, total, out=np.zeros(len(total)), where=total > 0)


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    """Scale each row to unit length (zero rows stay zero)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return vectors / norms
