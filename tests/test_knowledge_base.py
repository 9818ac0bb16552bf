"""KnowledgeBase: the add / re-add / replace / remove / reopen life cycle."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ragqa import (
    IndexCorruptError,
    IndexMismatchError,
    KnowledgeBase,
    KnowledgeBaseBusyError,
    RagqaError,
)
from ragqa.embeddings import HashingEmbedder

TEA = (
    "Oolong tea is partly oxidised. Dong Ding oolong comes from Lugu in Nantou County.\n\n"
    "Green tea is not oxidised at all. It is steamed or pan-fired soon after picking."
)
PLANETS = (
    "Jupiter is the largest planet. Its Great Red Spot is a storm older than three "
    "centuries.\n\nSaturn has rings made mostly of ice."
)
CHINESE = "陸羽撰寫了《茶經》，這是世界上第一部關於茶的專著。宋代盛行點茶，並且流行鬥茶。"


def test_add_search_and_documents(make_kb, write_text):
    kb = make_kb()
    tea, planets = write_text("tea.md", TEA), write_text("planets.txt", PLANETS)
    report = kb.add([tea, planets])
    assert (report.added, report.unchanged, report.failed) == (2, 0, 0)
    assert report.chunks == len(kb) >= 2
    docs = {Path(d.source).name: d for d in kb.documents()}
    assert set(docs) == {"tea.md", "planets.txt"}
    assert docs["tea.md"].pages == 1 and docs["tea.md"].chunks >= 1

    hits = kb.search("Dong Ding oolong Nantou", k=3)
    assert hits[0].file_name == "tea.md"
    assert hits[0].page == 1
    assert "Dong Ding" in hits[0].text
    assert hits == sorted(hits, key=lambda h: -h.score) or kb.settings.retrieval_mode == "hybrid"


def test_hit_offsets_point_into_the_page(make_kb, write_text):
    kb = make_kb()
    path = write_text("tea.md", TEA)
    kb.add([path])
    for hit in kb.search("oxidised", k=5):
        assert path.read_text(encoding="utf-8")[hit.start : hit.end] == hit.text
        assert kb.page_text(hit.source, hit.page)[hit.start : hit.end] == hit.text
    assert kb.page_text(str(path.resolve()), 2) is None
    kb.remove(path)
    assert kb.page_text(str(path.resolve()), 1) is None


def test_readding_unchanged_file_does_nothing(make_kb, write_text):
    kb = make_kb()
    path = write_text("tea.md", TEA)
    kb.add([path])
    generation = kb.manifest.generation
    report = kb.add([path])
    assert (report.added, report.unchanged, report.replaced) == (0, 1, 0)
    assert report.chunks == 0
    assert kb.manifest.generation == generation  # nothing was written


def test_changed_file_replaces_its_chunks(make_kb, write_text):
    kb = make_kb()
    path = write_text("notes.md", TEA)
    kb.add([path])
    write_text("notes.md", PLANETS)
    report = kb.add([path])
    assert report.replaced == 1
    assert len(kb.documents()) == 1
    texts = " ".join(h.text for h in kb.search("tea oolong Jupiter Saturn", k=20))
    assert "Jupiter" in texts and "oolong" not in texts
    assert len(kb) == kb.documents()[0].chunks


def test_remove_by_path(make_kb, write_text):
    kb = make_kb()
    tea, planets = write_text("tea.md", TEA), write_text("planets.md", PLANETS)
    kb.add([tea, planets])
    assert kb.remove(tea) is True
    assert [Path(d.source).name for d in kb.documents()] == ["planets.md"]
    assert all(h.file_name == "planets.md" for h in kb.search("oolong tea", k=10))
    assert kb.remove(tea) is False


def test_reopen_from_disk_keeps_everything(tmp_path, settings, write_text):
    directory = tmp_path / "kb"
    with KnowledgeBase.create(directory, settings=settings, embedder=HashingEmbedder(64)) as kb:
        kb.add([write_text("tea.md", TEA), write_text("zh.md", CHINESE)])
        before = [(h.chunk_id, h.text) for h in kb.search("茶經 陸羽", k=3)]
        count = len(kb)
    manifest = json.loads((directory / "manifest.json").read_text())
    assert manifest["format_version"] == 1
    assert manifest["embedding_model"] == "hashing:64"
    assert manifest["dimension"] == 64
    assert (manifest["documents"], manifest["chunks"]) == (2, count)

    with KnowledgeBase.open(directory, settings=settings) as kb:
        assert len(kb) == count
        assert [(h.chunk_id, h.text) for h in kb.search("茶經 陸羽", k=3)] == before
        assert kb.embedder.name == "hashing:64"


def test_open_refuses_another_embedding_model(tmp_path, settings):
    KnowledgeBase.create(tmp_path / "kb", settings=settings, embedder=HashingEmbedder(64)).close()
    with pytest.raises(IndexMismatchError, match="hashing:64.*not 'hashing:32'.*ragqa reindex"):
        KnowledgeBase.open(tmp_path / "kb", embedder=HashingEmbedder(32))
    with pytest.raises(IndexMismatchError, match="built with embedding model"):
        KnowledgeBase.open(tmp_path / "kb", embedding_model="some/other-model")


def test_open_refuses_another_format_version(tmp_path, settings):
    import sqlite3

    KnowledgeBase.create(tmp_path / "kb", settings=settings, embedder=HashingEmbedder(64)).close()
    with sqlite3.connect(tmp_path / "kb" / "catalog.sqlite") as conn:
        conn.execute("UPDATE meta SET value='99' WHERE key='format_version'")
    with pytest.raises(IndexMismatchError, match="format 99.*Rebuild"):
        KnowledgeBase.open(tmp_path / "kb")


def test_open_missing_directory_says_how_to_create(tmp_path):
    with pytest.raises(RagqaError, match="no knowledge base at .*ragqa ingest"):
        KnowledgeBase.open(tmp_path / "nope")


def test_create_refuses_existing_knowledge_base(tmp_path, settings):
    KnowledgeBase.create(tmp_path / "kb", settings=settings, embedder=HashingEmbedder(64)).close()
    with pytest.raises(RagqaError, match="already holds a knowledge base"):
        KnowledgeBase.create(tmp_path / "kb", settings=settings, embedder=HashingEmbedder(64))


def test_several_knowledge_bases_side_by_side(make_kb, write_text):
    first, second = make_kb("first"), make_kb("second")
    first.add([write_text("tea.md", TEA)])
    second.add([write_text("planets.md", PLANETS)])
    assert [Path(d.source).name for d in first.documents()] == ["tea.md"]
    assert [Path(d.source).name for d in second.documents()] == ["planets.md"]
    assert all(h.file_name == "planets.md" for h in second.search("tea", k=5))


def test_folders_are_walked_recursively(make_kb, write_text, tmp_path):
    kb = make_kb()
    write_text("a/tea.md", TEA)
    write_text("a/b/planets.txt", PLANETS)
    write_text("a/.hidden/secret.md", "hidden")
    (tmp_path / "docs" / "a" / "photo.png").write_bytes(b"\x89PNG....")
    report = kb.add([tmp_path / "docs"])
    assert sorted(Path(f.source).name for f in report.files) == ["planets.txt", "tea.md"]


def test_bad_files_are_reported_and_the_batch_goes_on(make_kb, write_text, tmp_path):
    kb = make_kb()
    good = write_text("tea.md", TEA)
    empty = write_text("empty.txt", "")
    binary = tmp_path / "docs" / "blob.txt"
    binary.write_bytes(bytes(range(256)) * 4)
    unsupported = write_text("table.xlsx", "not really")
    missing = tmp_path / "docs" / "missing.md"
    report = kb.add([empty, binary, unsupported, missing, good])
    by_name = {Path(f.source).name: f for f in report.files}
    assert by_name["tea.md"].status == "added"
    assert by_name["empty.txt"].reason == "empty"
    assert by_name["blob.txt"].reason == "binary"
    assert by_name["table.xlsx"].reason == "unsupported"
    assert "table.xlsx" in by_name["table.xlsx"].error
    assert by_name["missing.md"].reason == "not_found"
    assert report.failed == 4 and report.added == 1
    assert [Path(d.source).name for d in kb.documents()] == ["tea.md"]


def test_failure_never_loses_stored_documents(make_kb, write_text, tmp_path):
    kb = make_kb()
    path = write_text("notes.md", TEA)
    kb.add([path])
    chunks = len(kb)
    path.write_bytes(b"")  # the file is now broken: empty
    report = kb.add([path])
    assert report.failed == 1
    assert len(kb) == chunks and kb.documents()[0].chunks == chunks


def test_unchanged_text_is_not_embedded_again(make_kb, write_text):
    class CountingEmbedder(HashingEmbedder):
        calls = 0

        def embed_batch(self, texts):
            CountingEmbedder.calls += len(texts)
            return super().embed_batch(texts)

    kb = make_kb()
    kb._embedder = kb._retriever.embedder = CountingEmbedder(64)
    first = write_text("one.md", TEA)
    kb.add([first])
    embedded = CountingEmbedder.calls
    assert embedded > 0
    write_text("copy.md", TEA)  # same text under another name
    kb.add([first.parent / "copy.md"])
    assert CountingEmbedder.calls == embedded


def test_stale_derived_indexes_are_rebuilt_on_open(tmp_path, settings, write_text):
    """A crash after the catalog commit but before the index files were written."""
    directory = tmp_path / "kb"
    with KnowledgeBase.create(directory, settings=settings, embedder=HashingEmbedder(64)) as kb:
        kb.add([write_text("tea.md", TEA)])
        old_vectors = (directory / "vectors.faiss").read_bytes()
        old_lexical = (directory / "lexical.npz").read_bytes()
        old_manifest = (directory / "manifest.json").read_bytes()
        kb.add([write_text("planets.md", PLANETS)])
        count = len(kb)
    # Put the derived files back to their older generation, as if the process died.
    (directory / "vectors.faiss").write_bytes(old_vectors)
    (directory / "lexical.npz").write_bytes(old_lexical)
    (directory / "manifest.json").write_bytes(old_manifest)
    with KnowledgeBase.open(directory) as kb:
        assert len(kb) == count
        assert kb.search("Jupiter storm", k=1, mode="lexical")[0].file_name == "planets.md"
        assert kb.search("Jupiter storm", k=1, mode="dense")[0].file_name == "planets.md"


@pytest.mark.parametrize("damage", ["garbage", "delete"])
def test_damaged_faiss_file_is_rebuilt(tmp_path, settings, write_text, damage):
    directory = tmp_path / "kb"
    with KnowledgeBase.create(directory, settings=settings, embedder=HashingEmbedder(64)) as kb:
        kb.add([write_text("tea.md", TEA)])
        count = len(kb)
    if damage == "garbage":
        (directory / "vectors.faiss").write_bytes(b"not a faiss index")
    else:
        (directory / "vectors.faiss").unlink()
    with KnowledgeBase.open(directory) as kb:
        assert len(kb) == count
        assert kb.search("oolong", k=1, mode="dense")


def test_damaged_catalog_is_reported_with_a_remedy(tmp_path, settings, write_text):
    directory = tmp_path / "kb"
    with KnowledgeBase.create(directory, settings=settings, embedder=HashingEmbedder(64)) as kb:
        kb.add([write_text("tea.md", TEA)])
    (directory / "catalog.sqlite").write_bytes(b"this is not sqlite" * 100)
    for extra in directory.glob("catalog.sqlite-*"):
        extra.unlink()
    with pytest.raises(IndexCorruptError, match="catalog.sqlite.*rebuild"):
        KnowledgeBase.open(directory)
    (directory / "catalog.sqlite").unlink()
    with pytest.raises(IndexCorruptError, match="catalog.sqlite is missing"):
        KnowledgeBase.open(directory)


def test_missing_manifest_is_rewritten(tmp_path, settings, write_text):
    directory = tmp_path / "kb"
    with KnowledgeBase.create(directory, settings=settings, embedder=HashingEmbedder(64)) as kb:
        kb.add([write_text("tea.md", TEA)])
        count = len(kb)
    (directory / "manifest.json").unlink()
    with KnowledgeBase.open(directory) as kb:
        assert len(kb) == count
        kb.add([write_text("planets.md", PLANETS)])
    assert json.loads((directory / "manifest.json").read_text())["documents"] == 2


def test_a_second_writer_gets_a_clear_busy_error(make_kb, write_text):
    from filelock import FileLock

    kb = make_kb()
    # Another lock object on the same file stands in for another process.
    with FileLock(str(kb.directory / ".lock")), pytest.raises(KnowledgeBaseBusyError, match="busy"):
        kb.add([write_text("tea.md", TEA)], lock_timeout=0.2)
    assert kb.add([write_text("tea.md", TEA)]).added == 1


def test_progress_reports_every_file(make_kb, write_text):
    kb = make_kb()
    events = []
    kb.add([write_text("a.md", TEA), write_text("b.md", PLANETS)], progress=events.append)
    done = [e for e in events if e.stage == "done"]
    assert [Path(e.source).name for e in done] == ["a.md", "b.md"]
    assert done[-1].files_done == done[-1].files_total == 2
    assert all(e.result is not None and e.result.status == "added" for e in done)


def test_search_validates_its_arguments(make_kb, write_text):
    kb = make_kb()
    kb.add([write_text("tea.md", TEA)])
    with pytest.raises(RagqaError, match="mode"):
        kb.search("tea", mode="fuzzy")
    with pytest.raises(RagqaError, match="empty"):
        kb.search("   ")


def test_a_second_opener_sees_committed_changes(tmp_path, settings, write_text):
    directory = tmp_path / "kb"
    writer = KnowledgeBase.create(directory, settings=settings, embedder=HashingEmbedder(64))
    reader = KnowledgeBase.open(directory, settings=settings)
    writer.add([write_text("tea.md", TEA)])
    assert reader.search("oolong", k=1)[0].file_name == "tea.md"
    writer.close()
    reader.close()


def test_add_texts_under_chosen_source_names(make_kb):
    kb = make_kb()
    report = kb.add_texts({"faq/warranty": "The warranty lasts two years.", "faq/empty": "  "})
    by_source = {f.source: f for f in report.files}
    assert by_source["faq/warranty"].status == "added"
    assert by_source["faq/empty"].status == "failed"
    assert kb.search("warranty", k=1)[0].source == "faq/warranty"
    again = kb.add_texts([("faq/warranty", "The warranty lasts two years.")])
    assert again.unchanged == 1
    changed = kb.add_texts([("faq/warranty", "The warranty lasts three years.")])
    assert changed.replaced == 1 and "three" in kb.search("warranty", k=1)[0].text
    assert kb.remove("faq/warranty") is True


def test_unexpected_loader_bug_fails_one_file_only(make_kb, write_text, monkeypatch):
    import ragqa.loaders

    real = ragqa.loaders.load_document

    def flaky(path, **kwargs):
        if path.name == "bad.md":
            raise ZeroDivisionError("bug")
        return real(path, **kwargs)

    monkeypatch.setattr(ragqa.loaders, "load_document", flaky)
    kb = make_kb()
    report = kb.add([write_text("bad.md", TEA), write_text("good.md", PLANETS)])
    assert [(Path(f.source).name, f.status) for f in report.files] == [
        ("bad.md", "failed"),
        ("good.md", "added"),
    ]
    assert report.files[0].reason == "internal"


class _NamedHashing(HashingEmbedder):
    """A hashing embedder recorded under a sentence-transformers-style name, so that
    reopening the knowledge base builds a real (lazy) SentenceTransformerEmbedder."""

    def __init__(self, name: str, dimension: int = 64) -> None:
        super().__init__(dimension)
        self.name = name


def test_opening_does_not_load_the_embedding_model(tmp_path, settings, write_text):
    # The recorded model does not exist, so any attempt to load it would fail:
    # everything below must work without it.
    missing_model = str(tmp_path / "no-such-model")
    with KnowledgeBase.create(
        tmp_path / "kb", settings=settings, embedder=_NamedHashing(missing_model)
    ) as kb:
        path = write_text("tea.md", TEA)
        kb.add([path])
    with KnowledgeBase.open(tmp_path / "kb", settings=settings) as kb:
        assert [Path(d.source).name for d in kb.documents()] == ["tea.md"]
        assert kb.add([path]).unchanged == 1
        assert kb.search("Dong Ding oolong", k=1, mode="lexical")[0].file_name == "tea.md"
        with pytest.raises(RagqaError, match="cannot load embedding model"):
            kb.search("Dong Ding oolong", k=1, mode="dense")


def test_a_model_that_changed_dimension_is_refused_where_its_vectors_arrive(
    tmp_path, settings, write_text
):
    with KnowledgeBase.create(tmp_path / "kb", settings=settings, embedder=_NamedHashing("m")):
        pass
    with KnowledgeBase.open(tmp_path / "kb", settings=settings, embedder=_NamedHashing("m")) as kb:
        kb._embedder = kb._retriever.embedder = _NamedHashing("m", dimension=32)
        with pytest.raises(IndexMismatchError, match="64-dimensional.*32-dimensional"):
            kb.add([write_text("tea.md", TEA)])
        with pytest.raises(IndexMismatchError, match="Rebuild"):
            kb.search("oolong", k=1, mode="dense")
        assert kb.documents() == []
