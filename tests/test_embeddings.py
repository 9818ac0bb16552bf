from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from ragqa import ConfigError
from ragqa.embeddings import HashingEmbedder, get_embedder
from ragqa.embeddings.sentence_transformers import resolve_model_path


def test_factory_picks_backend_from_config_string():
    assert isinstance(get_embedder("hashing:16"), HashingEmbedder)
    assert get_embedder("hashing:16").dimension == 16
    assert get_embedder("hashing").dimension == 64
    with pytest.raises(ConfigError, match="hashing:DIM"):
        get_embedder("hashing:big")
    with pytest.raises(ConfigError, match="empty"):
        get_embedder("  ")


def test_embed_batches_and_normalises():
    calls = []

    class Recording(HashingEmbedder):
        def embed_batch(self, texts):
            calls.append(len(texts))
            return super().embed_batch(texts)

    embedder = Recording(32)
    embedder.batch_size = 4
    done = []
    vectors = embedder.embed([f"text {i}" for i in range(10)], progress=done.append)
    assert calls == [4, 4, 2]
    assert done == [4, 8, 10]
    assert vectors.shape == (10, 32) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    assert embedder.embed([]).shape == (0, 32)


def test_embed_sorts_by_length_into_batches_and_keeps_the_order():
    batches = []

    class Recording(HashingEmbedder):
        def embed_batch(self, texts):
            batches.append([len(t) for t in texts])
            return super().embed_batch(texts)

    embedder = Recording(16)
    embedder.batch_size = 3
    texts = ["a" * n + " word" for n in (5, 40, 1, 30, 12, 3, 25)]
    vectors = embedder.embed(texts)
    flat = [n for batch in batches for n in batch]
    assert flat == sorted(flat, reverse=True)  # similar lengths share a batch
    for text, vector in zip(texts, vectors, strict=True):
        np.testing.assert_allclose(vector, HashingEmbedder(16).embed_query(text), atol=1e-6)


def test_hashing_embedder_is_deterministic_and_similarity_aware():
    e = HashingEmbedder(64)
    a, b, c = e.embed(["the oolong tea of Taiwan", "oolong tea from Taiwan", "Jupiter's storm"])
    assert float(a @ b) > float(a @ c)
    np.testing.assert_array_equal(e.embed_query("x"), HashingEmbedder(64).embed_query("x"))


def test_default_model_name_resolves_to_the_bundled_copy():
    path = resolve_model_path("sentence-transformers/all-MiniLM-L6-v2")
    assert path.endswith("model")
    assert resolve_model_path("BAAI/bge-m3") == "BAAI/bge-m3"


def test_unknown_model_gives_a_clear_error(tmp_path):
    embedder = get_embedder(str(tmp_path / "no-such-model"))
    with pytest.raises(ConfigError, match="cannot load embedding model"):
        embedder.embed(["x"])


class _Threaded(HashingEmbedder):
    """A hashing embedder that embeds in worker threads and records how."""

    def __init__(self, workers: int, fail_on: str | None = None) -> None:
        super().__init__(16)
        self.batch_size = 4
        self.workers = workers
        self.fail_on = fail_on
        self.threads: set[str] = set()
        self.started: list[str] = []
        self.stopped: list[str] = []
        self.calls = 0

    def embed_batch(self, texts):
        self.calls += 1
        self.threads.add(threading.current_thread().name)
        time.sleep(0.005)
        if self.fail_on in texts:
            raise RuntimeError("the model ran out of memory")
        return super().embed_batch(texts)

    def start_worker(self) -> None:
        self.started.append(threading.current_thread().name)

    def stop_workers(self) -> None:
        self.stopped.append(threading.current_thread().name)


def test_workers_give_the_same_vectors_in_the_same_order():
    texts = [f"text number {i} " * (i % 7 + 1) for i in range(25)]
    done: list[int] = []
    threaded = _Threaded(workers=3)
    vectors = threaded.embed(texts, progress=done.append)
    np.testing.assert_array_equal(vectors, _Threaded(workers=1).embed(texts))
    assert len(threaded.threads) > 1 and all(t.startswith("ragqa-embed") for t in threaded.threads)
    assert sorted(threaded.started) == sorted(threaded.threads)  # once per thread
    assert threaded.stopped == [threading.current_thread().name]
    assert done == sorted(done) and done[-1] == 25 and len(done) == 7  # one call a batch
    # One batch, or one worker: no threads at all.
    single = _Threaded(workers=1)
    single.embed(texts)
    assert single.threads == {threading.current_thread().name} and not single.stopped


def test_an_error_in_a_worker_reaches_the_caller_and_drops_the_batches_not_started():
    texts = [f"text {i:03d}" for i in range(80)]  # 20 batches
    threaded = _Threaded(workers=2, fail_on=texts[0])
    with pytest.raises(RuntimeError, match="out of memory"):
        threaded.embed(texts)
    assert threaded.calls < 20
    assert threaded.stopped == [threading.current_thread().name]


def test_batches_follow_the_backends_own_lengths():
    batches = []

    class CountsWords(HashingEmbedder):
        def text_lengths(self, texts):
            return [len(t.split()) for t in texts]

        def embed_batch(self, texts):
            batches.append(texts)
            return super().embed_batch(texts)

    embedder = CountsWords(16)
    embedder.batch_size = 2
    # Longest in characters is shortest in words, and the other way round.
    texts = ["a b c d e f", "extraordinarily", "x y z", "internationalisation q"]
    vectors = embedder.embed(texts)
    assert batches == [["a b c d e f", "x y z"], ["internationalisation q", "extraordinarily"]]
    for text, vector in zip(texts, vectors, strict=True):
        np.testing.assert_allclose(vector, HashingEmbedder(16).embed_query(text), atol=1e-6)
