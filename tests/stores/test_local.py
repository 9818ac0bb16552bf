"""LocalStore: transactions, generations and derived-index consistency."""

from __future__ import annotations

import json
import sqlite3

import faiss
import numpy as np
import pytest

from ragqa.stores import LocalStore, NewDocument
from ragqa.types import Chunk

DIM = 8


def doc(source: str, texts: list[str], seed: int = 0) -> NewDocument:
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(len(texts), DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    chunks = [Chunk(t, source, 1, i * 10, i * 10 + len(t)) for i, t in enumerate(texts)]
    return NewDocument(
        source, f"hash-{source}-{seed}", 1, chunks, vectors, [t.lower().split() for t in texts]
    )


@pytest.fixture
def store(tmp_path):
    s = LocalStore.create(tmp_path / "kb", embedding_model="test-model", dimension=DIM)
    yield s
    s.close()


def test_write_search_and_flush(store, tmp_path):
    d = doc("a.md", ["red apples grow", "green pears ripen"])
    store.write_documents([d])
    assert len(store) == 2 and store.counts() == (1, 2)
    cid, score = store.dense_search(d.vectors[1], 1)[0]
    assert score == pytest.approx(1.0, abs=1e-5)
    assert store.hits([(cid, score)])[0].text == "green pears ripen"
    assert store.hits(store.lexical_search(["apples"], 5))[0].text == "red apples grow"

    store.flush()
    manifest = json.loads((tmp_path / "kb" / "manifest.json").read_text())
    assert (manifest["documents"], manifest["chunks"], manifest["generation"]) == (1, 2, 1)
    assert faiss.read_index(str(tmp_path / "kb" / "vectors.faiss")).ntotal == 2


def test_replacing_a_document_swaps_its_chunks_atomically(store):
    store.write_documents([doc("a.md", ["one", "two", "three"])])
    old_ids = {cid for cid, _ in store.lexical_search(["one", "two", "three"], 10)}
    store.write_documents([doc("a.md", ["four"], seed=1)])
    assert store.counts() == (1, 1)
    assert store.lexical_search(["one", "two", "three"], 10) == []
    new_ids = {cid for cid, _ in store.lexical_search(["four"], 10)}
    assert not (old_ids & new_ids), "chunk ids must never be reused"


def test_failed_transaction_changes_nothing(store):
    store.write_documents([doc("a.md", ["kept text"])])
    bad = doc("b.md", ["x", "y"])
    bad = NewDocument(bad.source, bad.content_hash, 1, bad.chunks, bad.vectors[:1], bad.tokens)
    with pytest.raises(ValueError):  # zip(strict=True): one vector for two chunks
        store.write_documents([doc("a.md", ["replacement"], seed=2), bad])
    assert store.counts() == (1, 1)
    assert store.hits(store.lexical_search(["kept"], 5))[0].text == "kept text"
    assert len(store) == 1


def test_remove_document(store):
    store.write_documents([doc("a.md", ["alpha"]), doc("b.md", ["beta"], seed=3)])
    assert store.remove_document("a.md") is True
    assert store.remove_document("a.md") is False
    assert [d.source for d in store.documents()] == ["b.md"]
    assert len(store) == 1 and store.lexical_search(["alpha"], 5) == []


def test_known_vectors_are_found_by_text(store):
    d = doc("a.md", ["shared passage"])
    store.write_documents([d])
    from ragqa.stores.local import text_hash

    found = store.known_vectors([text_hash("shared passage"), text_hash("other")])
    assert list(found) == [text_hash("shared passage")]
    np.testing.assert_array_equal(found[text_hash("shared passage")], d.vectors[0])


def test_generation_counts_commits_and_reopen_rebuilds_when_behind(store, tmp_path):
    store.write_documents([doc("a.md", ["alpha"])])
    store.flush()
    store.write_documents([doc("b.md", ["beta"], seed=4)])  # committed, not flushed
    store.close()
    with sqlite3.connect(tmp_path / "kb" / "catalog.sqlite") as conn:
        generation = conn.execute("SELECT value FROM meta WHERE key='generation'").fetchone()
    assert generation == ("2",)
    reopened = LocalStore.open(tmp_path / "kb")
    assert len(reopened) == 2  # FAISS on disk had 1; rebuilt from the catalog
    assert reopened.hits(reopened.lexical_search(["beta"], 1))[0].text == "beta"
    reopened.close()
