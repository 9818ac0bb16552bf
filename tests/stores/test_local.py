"""LocalStore: transactions, generations and derived-index consistency."""

from __future__ import annotations

import json
import sqlite3
from contextlib import contextmanager

import faiss
import numpy as np
import pytest

from ragqa.stores import LocalStore, NewDocument
from ragqa.stores import local as local_module
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


# ------------------------------------------------- checkpoints and the change log


def _identities(directory):
    return {
        name: (directory / name).stat().st_mtime_ns for name in ("vectors.faiss", "lexical.npz")
    }


def test_a_small_write_leaves_the_checkpoint_and_is_replayed_on_open(store, tmp_path):
    kb = tmp_path / "kb"
    with store.writing(timeout=5):
        store.write_documents([doc("a.md", ["alpha one"])])
    before = _identities(kb)
    with store.writing(timeout=5):
        store.write_documents([doc("b.md", ["beta two"], seed=1)])
        assert store.remove_document("a.md")
    assert _identities(kb) == before  # no checkpoint for three chunks' worth of changes
    manifest = json.loads((kb / "manifest.json").read_text())
    assert (manifest["documents"], manifest["chunks"]) == (1, 1)  # the counts are live
    assert manifest["checkpoint"]["generation"] < manifest["generation"]
    reopened = LocalStore.open(kb)
    try:
        assert reopened.counts() == (1, 1) and len(reopened) == 1
        assert reopened.hits(reopened.lexical_search(["beta"], 1))[0].text == "beta two"
        assert reopened.lexical_search(["alpha"], 5) == []
        # alpha came and went after the checkpoint, so only beta is replayed.
        assert reopened._changes_since_checkpoint == 1
    finally:
        reopened.close()


def test_enough_changes_write_a_checkpoint_and_prune_the_log(store, tmp_path, monkeypatch):
    from ragqa.stores import local

    kb = tmp_path / "kb"
    monkeypatch.setattr(local, "CHECKPOINT_MIN_CHANGES", 3)
    with store.writing(timeout=5):
        store.write_documents([doc("a.md", ["one", "two"])])
    with store.writing(timeout=5):
        store.remove_document("a.md")
        store.write_documents([doc("b.md", ["three"], seed=2)])
    manifest = json.loads((kb / "manifest.json").read_text())
    assert manifest["checkpoint"]["generation"] == manifest["generation"]
    with sqlite3.connect(kb / "catalog.sqlite") as conn:
        assert conn.execute("SELECT COUNT(*) FROM deleted_chunks").fetchone() == (0,)
        log_since = conn.execute("SELECT value FROM meta WHERE key = 'log_since'").fetchone()
    assert int(log_since[0]) == manifest["generation"]
    assert faiss.read_index(str(kb / "vectors.faiss")).ntotal == 1


def test_a_reader_replays_what_a_writer_commits(store, tmp_path, monkeypatch):
    reader = LocalStore.open(tmp_path / "kb")
    try:
        with store.writing(timeout=5):
            store.write_documents([doc("a.md", ["alpha"]), doc("b.md", ["beta"], seed=1)])
        # Replayed from the log, not reloaded: a reload here would fail the test.
        monkeypatch.setattr(reader, "_load_derived", lambda: pytest.fail("full reload"))
        assert reader.refresh() is True
        assert reader.counts() == (2, 2) and len(reader) == 2
        with store.writing(timeout=5):
            store.remove_document("a.md")
        assert reader.refresh() is True
        assert reader.lexical_search(["alpha"], 5) == [] and len(reader) == 1
        assert reader.refresh() is False  # nothing new: one cheap query
    finally:
        reader.close()


def test_a_catalog_from_before_the_change_log_is_migrated(store, tmp_path):
    kb = tmp_path / "kb"
    with store.writing(timeout=5):
        store.write_documents([doc("a.md", ["alpha"])])
    store.close()
    with sqlite3.connect(kb / "catalog.sqlite") as conn:  # the schema ragqa 0.1 wrote
        conn.execute("DROP INDEX IF EXISTS chunks_by_generation")
        conn.execute("ALTER TABLE chunks DROP COLUMN generation")
        conn.execute("ALTER TABLE chunks DROP COLUMN unknown")
        conn.execute("DROP TABLE deleted_chunks")
        conn.execute("DELETE FROM meta WHERE key = 'log_since'")
    old = LocalStore.open(kb)  # readable as it is: rebuilt from the catalog
    try:
        assert old.hits(old.lexical_search(["alpha"], 1))[0].text == "alpha"
        with old.writing(timeout=5):  # a writer migrates it
            old.write_documents([doc("b.md", ["beta"], seed=1)])
            assert old.remove_document("a.md")
    finally:
        old.close()
    reopened = LocalStore.open(kb)
    try:
        assert [d.source for d in reopened.documents()] == ["b.md"]
        assert reopened.lexical_search(["alpha"], 5) == [] and len(reopened) == 1
    finally:
        reopened.close()
    from ragqa.integrity import check_integrity

    assert check_integrity(kb).ok, check_integrity(kb).summary()


def test_an_ivfpq_index_searches_exactly_scored_candidates(tmp_path):
    from ragqa.integrity import check_integrity

    dim, count = 64, 12_000
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(50, dim))
    vectors = centres[rng.integers(0, 50, count)] + 0.3 * rng.normal(size=(count, dim))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    s = LocalStore.create(tmp_path / "kb", embedding_model="m", dimension=dim, vector_index="ivfpq")
    with s.writing(timeout=5):
        for start in range(0, count, 1000):
            texts = [f"text {i}" for i in range(start, start + 1000)]
            chunks = [Chunk(t, f"d{start}", 1, 0, len(t)) for t in texts]
            s.write_documents(
                [NewDocument(f"d{start}", "h", 1, chunks, vectors[start : start + 1000],
                             [t.split() for t in texts])]
            )  # fmt: skip
    assert not hasattr(s._index, "id_map")  # IVF-PQ, not the exact flat index
    found = [s.hits(s.dense_search(vectors[i], 1))[0].text for i in range(0, count, 1200)]
    assert sum(f == f"text {i}" for f, i in zip(found, range(0, count, 1200), strict=True)) >= 9
    top = s.dense_search(vectors[5], 5)
    assert top[0][1] == pytest.approx(1.0, abs=1e-5)  # exact cosines, not PQ estimates
    np.testing.assert_allclose(s.vectors_by_id([top[0][0]]), vectors[5:6], atol=1e-6)

    # Exact vectors come from the catalog once, then from a bounded cache.
    statements: list[str] = []
    s._conn.set_trace_callback(statements.append)
    ids = [cid for cid, _ in s.dense_search(vectors[7], 50)]  # reads 400 candidates
    read = len(statements)
    assert read >= 1
    again = s.vectors_by_id([*ids[::-1], ids[0]])  # reversed, with a repeat
    assert len(statements) == read, "vectors just re-scored are not read again"
    rows = dict(s._conn.execute("SELECT id, vector FROM chunks").fetchall())
    s._conn.set_trace_callback(None)
    expected = [np.frombuffer(rows[cid], dtype=np.float32) for cid in [*ids[::-1], ids[0]]]
    np.testing.assert_array_equal(again, np.vstack(expected))
    assert 0 < len(s._vector_cache) <= local_module.VECTOR_CACHE_LIMIT
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(local_module, "VECTOR_CACHE_LIMIT", 10)
        s.vectors_by_id(ids)
        assert len(s._vector_cache) == 10
        assert list(s._vector_cache) == ids[-10:], "the most recently read are kept"
    with s.writing(timeout=5):
        assert s.remove_document("d0")
    assert len(s) == count - 1000
    s.close()
    reopened = LocalStore.open(tmp_path / "kb", vector_index="ivfpq")
    try:
        assert len(reopened) == count - 1000 and not hasattr(reopened._index, "id_map")
    finally:
        reopened.close()
    assert check_integrity(tmp_path / "kb").ok, check_integrity(tmp_path / "kb").summary()


def test_a_checkpoint_written_while_a_reader_loads_is_not_replayed_onto(
    store, tmp_path, monkeypatch
):
    """The log is pruned when a checkpoint is written; a reader that read the older
    checkpoint's files meanwhile must load the newer one, not replay a cut log."""
    kb = tmp_path / "kb"
    with store.writing(timeout=5):
        store.write_documents([doc("a.md", ["alpha"])])
        store.flush()  # a checkpoint holding alpha
        assert store.remove_document("a.md")  # logged, not checkpointed
    real_lock = local_module.checkpoint_lock
    fired = []

    @contextmanager
    def checkpoint_after_reading(directory, *, shared):
        with real_lock(directory, shared=shared):
            yield
        if shared and not fired:  # the reader has read the old checkpoint's files
            fired.append(True)
            with store.writing(timeout=5):
                store.flush()  # prunes the deletion of alpha from the log

    monkeypatch.setattr(local_module, "checkpoint_lock", checkpoint_after_reading)
    reader = LocalStore.open(kb)
    monkeypatch.undo()
    try:
        assert fired and len(reader) == 0
        assert reader.lexical_search(["alpha"], 5) == []
        assert reader.dense_search(doc("a.md", ["alpha"]).vectors[0], 5) == []
    finally:
        reader.close()


def test_chunk_terms_are_the_stored_ones_unless_the_tokenizer_changed(store, monkeypatch):
    store.write_documents([doc("a.md", ["Red apples", "green pears"])])
    ids = [cid for cid, _ in store.lexical_search(["red", "green"], 5)]
    assert sorted(store.chunk_terms(ids).values()) == [["green", "pears"], ["red", "apples"]]
    assert store.chunk_terms([]) == {} and store.chunk_terms([10**9]) == {}
    monkeypatch.setattr(local_module, "_tokenizer_version", lambda: 10**6)
    assert store.chunk_terms(ids) == {}, "terms of another tokenizer never reach the gate"


def test_bm25_searches_while_another_thread_holds_the_vector_side(store):
    import threading

    store.write_documents([doc("a.md", ["red apples grow", "green pears ripen"])])
    holding, release = threading.Event(), threading.Event()

    def vector_side() -> None:
        with store._lock:  # as dense_search and vectors_by_id hold it
            holding.set()
            release.wait(timeout=30)

    other = threading.Thread(target=vector_side)
    other.start()
    try:
        assert holding.wait(timeout=10)
        found: list = []
        search = threading.Thread(target=lambda: found.append(store.lexical_search(["pears"], 5)))
        search.start()
        search.join(timeout=10)
        assert not search.is_alive(), "BM25 waited for the vector side's lock"
    finally:
        release.set()
        other.join()
    assert [store.hits(hits)[0].text for hits in found] == ["green pears ripen"]


def test_a_writer_changes_bm25_only_when_no_search_is_running(store):
    import threading

    store.write_documents([doc("a.md", ["red apples grow"])])
    with store._lexical_lock:  # a BM25 search in progress
        writer = threading.Thread(target=lambda: store.write_documents([doc("b.md", ["pears"])]))
        writer.start()
        writer.join(timeout=1)
        assert writer.is_alive(), "the writer must wait for the search"
        assert store.lexical_search(["pears"], 5) == []  # re-entrant: the same thread
    writer.join(timeout=30)
    assert not writer.is_alive()
    assert store.hits(store.lexical_search(["pears"], 5))[0].text == "pears"
