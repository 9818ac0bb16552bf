from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from ragqa.embeddings import HashingEmbedder
from ragqa.embeddings.closeness import UnitCloseness


class CountingEmbedder(HashingEmbedder):
    """Counts the texts it embeds, so a test can see what the cache saved."""

    meaning_weight = 0.5

    def __init__(self) -> None:
        super().__init__(dimension=64)
        self.embedded: list[str] = []

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        self.embedded += list(texts)
        return super().embed_batch(texts)

    def embed_query(self, text: str) -> np.ndarray:
        return super().embed_batch([text])[0]  # not counted: only units are cached


def test_the_closer_text_scores_higher_and_values_stay_in_range() -> None:
    closeness = UnitCloseness(CountingEmbedder())
    values = closeness("tea from china", ["tea from china", "stock market prices", "china"])
    assert values[0] > values[2] > values[1]
    assert all(0.0 <= v <= 1.0 for v in values)
    assert closeness.weight == 0.5


def test_cosines_are_mapped_from_the_models_range() -> None:
    embedder = CountingEmbedder()
    embedder.cosine_range = (0.5, 1.0)
    same, other = UnitCloseness(embedder)("tea from china", ["tea from china", "stock prices"])
    raw = embedder.embed(["tea from china", "stock prices"]) @ embedder.embed_query(
        "tea from china"
    )
    assert same == pytest.approx((raw[0] - 0.5) / 0.5)
    assert other == pytest.approx(max(0.0, (raw[1] - 0.5) / 0.5))


def test_units_already_seen_are_not_embedded_again() -> None:
    embedder = CountingEmbedder()
    closeness = UnitCloseness(embedder, cache_size=3)
    first = closeness("q", ["a b", "c d", "a b"])
    assert embedder.embedded == ["a b", "c d"]  # a repeated unit is embedded once
    assert first[0] == first[2]
    closeness("another question", ["c d", "e f"])
    assert embedder.embedded == ["a b", "c d", "e f"]
    closeness("q", ["g h", "i j"])  # evicts the least recently used ("a b")
    closeness("q", ["a b"])
    assert embedder.embedded[-1] == "a b"
    assert closeness("q", []) == []
