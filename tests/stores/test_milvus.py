"""Knowledge bases in Milvus Lite: the same API, CLI and hybrid retrieval as the default.

Milvus Lite is a real Milvus engine in one file, spoken to through pymilvus like a
Milvus server. Each test creates its database in its own folder and removes it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from ragqa import ConfigError, IndexMismatchError, KnowledgeBase, RagqaError, Settings
from ragqa.cli import cli
from ragqa.embeddings import HashingEmbedder
from ragqa.stores import parse_location
from ragqa.stores.milvus import MilvusStore

pytest.importorskip("milvus_lite", reason="milvus-lite is not installed")

DOCS = {
    "tea.md": "Oolong tea is partly oxidised. Dong Ding oolong comes from Lugu in Nantou County.\n\n"
    "Green tea is not oxidised at all. It is steamed or pan-fired soon after picking.",
    "planets.txt": "Jupiter is the largest planet. Its Great Red Spot is a storm older than three "
    "centuries.\n\nSaturn has rings made mostly of ice.",
    "茶經.md": "陸羽撰寫了《茶經》，這是世界上第一部關於茶的專著。宋代盛行點茶，並且流行鬥茶。",
}
QUERIES = ["Dong Ding oolong", "rings of ice", "茶經的作者是誰", "Great Red Spot storm", "綠茶"]


@pytest.fixture
def milvus_db(tmp_path: Path):
    db = tmp_path / "milvus" / "kb.db"
    yield f"milvus://{db}"
    for leftover in db.parent.glob("*"):
        if leftover.is_file():
            leftover.unlink()


@pytest.fixture
def docs(write_text) -> Path:
    for name, text in DOCS.items():
        folder = write_text(name, text).parent
    return folder


def _kb(location: str, settings: Settings) -> KnowledgeBase:
    return KnowledgeBase.open_or_create(location, settings=settings, embedder=HashingEmbedder(64))


def test_the_knowledge_base_life_cycle(milvus_db, docs, settings):
    with _kb(milvus_db, settings) as kb:
        report = kb.add([docs])
        assert (report.added, report.failed) == (3, 0)
        assert kb.add([docs]).unchanged == 3
        assert {Path(d.source).name for d in kb.documents()} == set(DOCS)
        hit = kb.search("Dong Ding oolong", k=1)[0]
        assert hit.file_name == "tea.md" and hit.page == 1
        assert kb.page_text(hit.source, 1)[hit.start : hit.end] == hit.text
        (docs / "tea.md").write_text("Black tea is fully oxidised.", encoding="utf-8")
        assert kb.add([docs]).replaced == 1
        assert kb.search("fully oxidised black", k=1, mode="lexical")[0].text.startswith("Black")
        assert kb.remove(docs / "planets.txt") is True
        assert kb.search("Jupiter Saturn rings", k=5, mode="lexical") == []
    with _kb(milvus_db, settings) as kb:  # reopened from the file
        assert len(kb.documents()) == 2
        assert kb.manifest.documents == 2


def test_every_mode_ranks_as_the_local_store_does(milvus_db, docs, settings, tmp_path):
    """Same chunks, same vectors, same terms: the same answers, in every mode."""
    results = {}
    for location in (milvus_db, str(tmp_path / "local-kb")):
        with _kb(location, settings) as kb:
            kb.add([docs])
            results[location] = {
                (mode, query): [(h.source, h.start) for h in kb.search(query, k=3, mode=mode)]
                for mode in ("dense", "lexical", "hybrid")
                for query in QUERIES
            }
    milvus, local = results.values()
    assert milvus == local
    assert any(milvus.values())


def test_the_cli_works_on_a_milvus_store(milvus_db, docs, monkeypatch):
    monkeypatch.setenv("RAGQA_EMBEDDING_MODEL", "hashing:64")
    runner = CliRunner()
    result = runner.invoke(cli, ["ingest", str(docs), "--store", milvus_db, "-q"])
    assert result.exit_code == 0, result.output
    assert "3 added" in result.output
    result = runner.invoke(cli, ["search", "Dong Ding oolong", "--store", milvus_db, "--json"])
    assert result.exit_code == 0, result.output
    hits = json.loads(result.output)
    assert hits[0]["file_name"] == "tea.md" and hits[0]["page"] == 1
    monkeypatch.setenv("RAGQA_STORE", milvus_db)  # the environment names the store too
    result = runner.invoke(cli, ["info"])
    assert result.exit_code == 0, result.output
    assert "Milvus BM25" in result.output and "documents        3" in result.output
    result = runner.invoke(cli, ["ask", "Where does Dong Ding oolong come from?", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["citations"][0]["source"].endswith("tea.md")


def test_another_embedding_model_is_refused(milvus_db, settings):
    _kb(milvus_db, settings).close()
    with pytest.raises(IndexMismatchError, match="hashing:64.*not 'hashing:32'"):
        KnowledgeBase.open(milvus_db, embedder=HashingEmbedder(32))


def test_opening_a_missing_store_says_how_to_create_it(milvus_db):
    with pytest.raises(RagqaError, match="no knowledge base at .*ragqa ingest FILES --store"):
        KnowledgeBase.open(milvus_db)


def test_orphans_of_a_crashed_writer_are_never_served_and_are_deleted(milvus_db, settings):
    with _kb(milvus_db, settings) as kb:
        kb.add_texts({"tea": "Oolong tea comes from Nantou."})
        store = kb.store
        real_upsert = store._client.upsert

        def dies_at_the_commit_point(collection, rows, **kwargs):
            if any(str(row.get("key", "")).startswith("doc:") for row in rows):
                raise RuntimeError("killed before the document row was written")
            return real_upsert(collection, rows, **kwargs)

        store._client.upsert = dies_at_the_commit_point
        with pytest.raises(RuntimeError, match="killed"):
            kb.add_texts({"tea": "Oolong, rewritten in a second version."})
        store._client.upsert = real_upsert
        # The new version's chunks are in Milvus, but no reader sees them.
        assert [h.text for h in kb.search("oolong version", k=5, mode="lexical")] == [
            "Oolong tea comes from Nantou."
        ]
        assert (
            kb.store.document("tea").content_hash
            == hashlib.sha256(b"Oolong tea comes from Nantou.").hexdigest()
        )

        def chunk_rows() -> int:
            return len(store._client.query(store._chunks, filter="id >= 0", output_fields=["id"]))

        assert chunk_rows() == 2  # the live chunk and the orphan
        kb.add_texts({"other": "Something else entirely."})  # the next writer cleans up
        assert chunk_rows() == 2  # the live tea chunk and the new one


@pytest.mark.parametrize(
    ("location", "message"),
    [
        ("redis://host/kb", "unknown store"),
        ("milvus://", "give HOST:PORT"),
        ("milvus:///tmp/x.db?name=1bad", "cannot name Milvus collections"),
    ],
)
def test_bad_locations_are_config_errors(location, message):
    with pytest.raises(ConfigError, match=message):
        KnowledgeBase.open(location)


def test_locations_are_parsed():
    assert parse_location("milvus:///data/kb.db") == ("milvus", "/data/kb.db")
    assert parse_location("faiss:///data/kb") == ("local", "/data/kb")
    assert parse_location("C:\\kbs\\papers") == ("local", "C:\\kbs\\papers")


def test_two_knowledge_bases_share_one_file(tmp_path, settings):
    db = tmp_path / "shared.db"
    with _kb(f"milvus://{db}?name=tea", settings) as tea:
        tea.add_texts({"a": "Oolong tea."})
    with _kb(f"milvus://{db}?name=planets", settings) as planets:
        planets.add_texts({"b": "Saturn's rings."})
        assert [d.source for d in planets.documents()] == ["b"]
        assert isinstance(planets.store, MilvusStore)
