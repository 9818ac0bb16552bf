"""Every store backend honours the same contract (ragqa.stores.base.Store).

Each test runs on the embedded LocalStore and on Milvus Lite (a real Milvus engine
in a file, through pymilvus). The Milvus databases are created in the test's own
folder and removed at the end.
"""

from __future__ import annotations

import numpy as np
import pytest

from ragqa.errors import KnowledgeBaseBusyError, RagqaError
from ragqa.stores import NewDocument, Store, create_store, open_store, store_exists, text_hash
from ragqa.types import Chunk

DIM = 8
BACKENDS = ("local", "milvus")


def doc(source: str, texts: list[str], seed: int = 0, page_text: str | None = None) -> NewDocument:
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(len(texts), DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    chunks, offset = [], 0
    for text in texts:
        chunks.append(Chunk(text, source, 1, offset, offset + len(text)))
        offset += len(text) + 1
    page = page_text if page_text is not None else " ".join(texts)
    return NewDocument(
        source,
        f"hash-{source}-{seed}",
        1,
        chunks,
        vectors,
        [t.lower().split() for t in texts],
        ((1, page),),
    )


@pytest.fixture(params=BACKENDS)
def location(request, tmp_path):
    if request.param == "local":
        yield str(tmp_path / "kb")
        return
    pytest.importorskip("milvus_lite", reason="milvus-lite is not installed")
    db = tmp_path / "milvus" / "kb.db"
    yield f"milvus://{db}"
    for leftover in db.parent.glob("*"):  # the database and its lock file
        if leftover.is_file():
            leftover.unlink()


@pytest.fixture
def store(location):
    s = create_store(location, embedding_model="test-model", dimension=DIM)
    yield s
    s.close()


def write(store: Store, *documents: NewDocument) -> None:
    with store.writing(timeout=5):
        store.write_documents(list(documents))


def test_create_exists_and_refuse_a_second_create(location):
    assert not store_exists(location)
    create_store(location, embedding_model="test-model", dimension=DIM).close()
    assert store_exists(location)
    with pytest.raises(RagqaError, match="already holds a knowledge base"):
        create_store(location, embedding_model="test-model", dimension=DIM)


def test_write_then_search_both_ways(store):
    d = doc("a.md", ["red apples grow", "green pears ripen"])
    write(store, d)
    assert store.counts() == (1, 2) and len(store) == 2
    cid, score = store.dense_search(d.vectors[1], 1)[0]
    assert score == pytest.approx(1.0, abs=1e-5)
    assert store.hits([(cid, score)])[0].text == "green pears ripen"
    lexical = store.lexical_search(["apples"], 5)
    assert [store.hits(lexical)[0].text] == ["red apples grow"]
    assert lexical[0][1] > 0
    assert store.lexical_search([], 5) == []
    np.testing.assert_allclose(store.vectors_by_id([cid]), d.vectors[1:2], atol=1e-6)


def test_documents_pages_and_manifest(store):
    write(store, doc("b.md", ["beta"], seed=1), doc("a.md", ["alpha one", "alpha two"]))
    assert [(d.source, d.chunks, d.pages) for d in store.documents()] == [
        ("a.md", 2, 1),
        ("b.md", 1, 1),
    ]
    assert store.document("a.md").content_hash == "hash-a.md-0"
    assert store.document("missing.md") is None
    assert store.page_text("a.md", 1) == "alpha one alpha two"
    assert store.page_text("a.md", 2) is None
    manifest = store.manifest
    assert (manifest.embedding_model, manifest.dimension) == ("test-model", DIM)
    assert (manifest.documents, manifest.chunks) == (2, 3)


def test_a_long_page_survives_whole(store):
    page = "長" * 40_000 + "end"  # far more than one Milvus text field holds
    write(store, doc("long.md", ["short chunk"], page_text=page))
    assert store.page_text("long.md", 1) == page


def test_replacing_a_document_swaps_its_chunks(store):
    write(store, doc("a.md", ["one", "two", "three"]))
    old_ids = {cid for cid, _ in store.lexical_search(["one", "two", "three"], 10)}
    write(store, doc("a.md", ["four"], seed=1))
    assert store.counts() == (1, 1)
    assert store.lexical_search(["one", "two", "three"], 10) == []
    new_ids = {cid for cid, _ in store.lexical_search(["four"], 10)}
    assert new_ids and not (old_ids & new_ids), "chunk ids must never be reused"
    assert store.document("a.md").content_hash == "hash-a.md-1"


def test_a_bad_batch_changes_nothing(store):
    write(store, doc("a.md", ["kept text"]))
    bad = doc("b.md", ["x", "y"])
    bad = NewDocument(bad.source, bad.content_hash, 1, bad.chunks, bad.vectors[:1], bad.tokens)
    with pytest.raises(ValueError):  # one vector for two chunks
        write(store, doc("a.md", ["replacement"], seed=2), bad)
    assert store.counts() == (1, 1)
    assert store.hits(store.lexical_search(["kept"], 5))[0].text == "kept text"


def test_remove_document(store):
    write(store, doc("a.md", ["alpha"]), doc("b.md", ["beta"], seed=3))
    with store.writing(timeout=5):
        assert store.remove_document("a.md") is True
        assert store.remove_document("a.md") is False
    assert [d.source for d in store.documents()] == ["b.md"]
    assert store.lexical_search(["alpha"], 5) == []
    assert [
        store.hits(store.dense_search(v, 5))[0].source for v in doc("b.md", ["beta"], 3).vectors
    ] == ["b.md"]
    assert store.page_text("a.md", 1) is None


def test_known_vectors_are_found_by_text(store):
    d = doc("a.md", ["shared passage"])
    write(store, d)
    found = store.known_vectors([text_hash("shared passage"), text_hash("other")])
    assert list(found) == [text_hash("shared passage")]
    np.testing.assert_allclose(found[text_hash("shared passage")], d.vectors[0], atol=1e-6)


def test_reopen_keeps_everything(store, location):
    d = doc("a.md", ["persistent text"])
    write(store, d)
    store.close()
    reopened = open_store(location)
    try:
        assert reopened.counts() == (1, 1)
        assert (
            reopened.hits(reopened.lexical_search(["persistent"], 1))[0].text == "persistent text"
        )
        assert reopened.dense_search(d.vectors[0], 1)[0][1] == pytest.approx(1.0, abs=1e-5)
    finally:
        reopened.close()


def test_a_second_writer_is_told_the_store_is_busy(store, location):
    other = open_store(location) if location.startswith("/") else None
    with store.writing(timeout=5):
        if other is not None:  # a second LocalStore on the same directory
            with pytest.raises(KnowledgeBaseBusyError, match="busy"), other.writing(timeout=0):
                pass
        else:  # Milvus Lite allows one client per file; the lock is the file's
            from ragqa.stores.locks import file_lock

            with (
                pytest.raises(KnowledgeBaseBusyError, match="busy"),
                file_lock(store._lock_path, 0, what="knowledge base"),
            ):
                pass
    if other is not None:
        other.close()
