"""Re-embedding a knowledge base with another model (ragqa.reindex), and the
refusal to mix two models' vectors in one."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from ragqa import KnowledgeBase, Settings
from ragqa.cli import cli
from ragqa.errors import ConfigError, IndexMismatchError
from ragqa.reindex import BUILDING, reindex

MINILM = "sentence-transformers/all-MiniLM-L6-v2"
E5 = "multilingual-e5-small"
NOTES = (
    "# 预训练任务\n\n"
    "• 3.BERT的预训练任务?答案:MLM 和 NSP\n"
    "• 4.GPT-1预训练任务? 答案:无监督的预训练和有监督任务的微调\n\n"
    "# Retrieval\n\nHybrid search fuses BM25 with dense vectors by reciprocal rank."
)


def _kb(path: Path, model: str, **files: str) -> Path:
    settings = Settings(embedding_model=model, chunk_size=120, chunk_overlap=20)
    with KnowledgeBase.create(path, settings=settings) as kb:
        for name, text in files.items():
            kb.add_texts({name: text})
    return path


def test_reindex_reembeds_from_stored_pages(tmp_path: Path) -> None:
    kb_dir = _kb(tmp_path / "kb", "hashing:32", **{"notes.md": NOTES, "b.txt": "第二个文件。" * 30})
    with KnowledgeBase.open(kb_dir) as kb:
        before = {d.source: d.content_hash for d in kb.documents()}
        chunks_before = len(kb)
    report = reindex(kb_dir, "hashing:16", settings=Settings(chunk_size=120, chunk_overlap=20))
    assert (report.old_model, report.embedding_model) == ("hashing:32", "hashing:16")
    assert report.documents == 2 and report.chunks == chunks_before
    with KnowledgeBase.open(kb_dir) as kb:
        assert kb.manifest.embedding_model == "hashing:16"
        assert kb.manifest.dimension == 16
        assert {d.source: d.content_hash for d in kb.documents()} == before
        hits = kb.search("BERT 的预训练任务", k=3, mode="lexical")
        assert any("MLM" in h.text for h in hits)
        assert kb.page_text("notes.md", 1).startswith("# 预训练任务")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("kb.")]  # nothing beside it


def test_a_failed_reindex_leaves_the_knowledge_base_as_it_was(tmp_path: Path, monkeypatch) -> None:
    kb_dir = _kb(tmp_path / "kb", "hashing:32", **{"notes.md": NOTES})

    def broken(*args, **kwargs):
        raise RuntimeError("embedding failed half way")

    monkeypatch.setattr("ragqa.embeddings.hashing.HashingEmbedder.embed_batch", broken)
    with pytest.raises(RuntimeError, match="half way"):
        reindex(kb_dir, "hashing:16")
    monkeypatch.undo()
    with KnowledgeBase.open(kb_dir) as kb:
        assert kb.manifest.embedding_model == "hashing:32"
        assert [d.source for d in kb.documents()] == ["notes.md"]
        assert kb.search("MLM", k=1)
    # The next try clears the half-built one and succeeds.
    assert (tmp_path / f"kb{BUILDING}").exists()
    reindex(kb_dir, "hashing:16")
    assert not (tmp_path / f"kb{BUILDING}").exists()


def test_reindex_refuses_what_it_cannot_do(tmp_path: Path) -> None:
    kb_dir = _kb(tmp_path / "kb", "hashing:32", **{"a.txt": "text " * 20})
    with pytest.raises(ConfigError, match="already uses"):
        reindex(kb_dir, "hashing:32")
    with pytest.raises(ConfigError, match="local knowledge base"):
        reindex("milvus:///kb.db", "hashing:16")
    with pytest.raises(ConfigError, match="local knowledge base"):
        reindex(tmp_path / "missing", "hashing:16")


def test_a_minilm_knowledge_base_under_an_e5_default(tmp_path: Path, monkeypatch) -> None:
    """A knowledge base keeps its own model whatever the default is; adding with
    another is refused with the command that re-embeds it; reindex moves it to e5."""
    kb_dir = _kb(tmp_path / "kb", MINILM, **{"notes.md": NOTES})
    e5_settings = Settings(embedding_model=E5, chunk_size=120, chunk_overlap=20)
    with KnowledgeBase.open(kb_dir, settings=e5_settings) as kb:
        assert kb.embedder.name == MINILM
        assert any("reciprocal" in h.text for h in kb.search("How are BM25 and vectors fused?"))
    with pytest.raises(IndexMismatchError, match="ragqa reindex --kb"):
        KnowledgeBase.open_or_create(kb_dir, settings=e5_settings, embedding_model=E5)

    # The CLI refuses a mixed add, and stores nothing.
    extra = tmp_path / "extra.txt"
    extra.write_text("另一个文件。", encoding="utf-8")
    monkeypatch.setenv("RAGQA_EMBEDDING_MODEL", E5)
    result = CliRunner().invoke(cli, ["ingest", str(extra), "--kb", str(kb_dir), "-q"])
    assert result.exit_code != 0
    assert "ragqa reindex" in result.output
    monkeypatch.delenv("RAGQA_EMBEDDING_MODEL")

    result = CliRunner().invoke(
        cli, ["reindex", "--kb", str(kb_dir), "--embedding-model", E5, "-q"]
    )
    assert result.exit_code == 0, result.output
    assert f"with {E5} (was {MINILM})" in result.output
    with KnowledgeBase.open(kb_dir) as kb:
        assert kb.manifest.embedding_model == E5
        assert [d.source for d in kb.documents()] == ["notes.md"]
        # Dense alone now reads Chinese, in other words than the notes'.
        hits = kb.search("BERT 是靠哪些任务来预训练的", k=1, mode="dense")
        assert "MLM" in hits[0].text
