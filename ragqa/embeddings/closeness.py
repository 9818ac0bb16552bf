"""How close in meaning the units of retrieved passages are to a question.

The extractive answerer picks one line (a list item, a Q&A answer, a sentence) out
of the retrieved passages. Scored by the question's words alone, it cannot see that
"转换器模型……由一个编码器和一个解码器组成" answers "transformer 架构由哪两部分构成？":
they share no word. :class:`UnitCloseness` embeds each unit with the knowledge
base's own model and gives its cosine to the question, mapped from the model's
``cosine_range`` onto 0..1, for the answerer to blend with the words' score.

Units are embedded at question time (a chunk's units are not stored), about 50 per
question, in batches. Their vectors are kept in a small cache, so a follow-up over
the same passages, or the same question asked again, embeds nothing new.

Example:
    >>> from ragqa.embeddings import HashingEmbedder
    >>> closeness = UnitCloseness(HashingEmbedder(dimension=64))
    >>> a, b = closeness("tea from china", ["tea from china", "stock prices"])
    >>> a > b
    True
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from ragqa.embeddings.base import Embedder

__all__ = ["UnitCloseness"]


class UnitCloseness:
    """A :data:`ragqa.llm.extractive.Similarity` built on an :class:`Embedder`.

    Args:
        embedder: the model that embedded the knowledge base.
        cache_size: how many units' vectors to keep.

    ``weight`` is the share of a unit's score its closeness should make in the
    answerer (the embedder's ``meaning_weight``).
    """

    def __init__(self, embedder: Embedder, *, cache_size: int = 4096) -> None:
        self.embedder = embedder
        self.weight = embedder.meaning_weight
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()
        self._last_query: tuple[str | None, np.ndarray] = (None, np.zeros(0, dtype=np.float32))

    def __call__(self, question: str, texts: Sequence[str]) -> list[float]:
        if not texts:
            return []
        query = self._query(question)
        cosines = self._vectors(texts) @ query
        low, high = self.embedder.cosine_range
        return np.clip((cosines - low) / (high - low), 0.0, 1.0).tolist()

    def _query(self, question: str) -> np.ndarray:
        # The answerer asks twice about one question (its units, then a table's
        # columns): the question is embedded once.
        with self._lock:
            if self._last_query[0] == question:
                return self._last_query[1]
        vector = self.embedder.embed_query(question)
        with self._lock:
            self._last_query = (question, vector)
        return vector

    def _vectors(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            known = {text: self._cache[text] for text in texts if text in self._cache}
            for text in known:
                self._cache.move_to_end(text)
        missing = list(dict.fromkeys(text for text in texts if text not in known))
        if missing:
            fresh = dict(zip(missing, self.embedder.embed(missing), strict=True))
            known.update(fresh)
            with self._lock:
                self._cache.update(fresh)
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return np.stack([known[text] for text in texts])
