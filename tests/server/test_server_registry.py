"""Which knowledge bases are served: a workspace (live) or a fixed list of folders."""

from __future__ import annotations

import pytest

from ragqa import KnowledgeBase
from ragqa.embeddings import HashingEmbedder
from ragqa.errors import ConfigError
from ragqa.server import KnowledgeBases
from ragqa.server.registry import UnknownKnowledgeBase


def test_workspace_is_listed_live_and_knowledge_bases_are_shared(
    workspace_root, settings, make_registry
) -> None:
    registry = make_registry()
    assert registry.names() == ["default", "notes"]
    assert registry.default_name() == "default"
    kb = registry.get("notes")
    assert registry.get("notes") is kb  # opened once, then shared
    # One created meanwhile (say, in the UI) is served at once.
    KnowledgeBase.create(
        workspace_root / "papers", settings=settings, embedder=HashingEmbedder(64)
    ).close()
    assert registry.names() == ["default", "notes", "papers"]
    assert len(registry.get("papers")) == 0
    for bad in ("missing", "../notes", "notes/..", ""):
        with pytest.raises(UnknownKnowledgeBase):
            registry.get(bad)


def test_an_empty_workspace_gets_a_default_knowledge_base(tmp_path, settings) -> None:
    registry = KnowledgeBases.from_workspace(tmp_path / "empty", settings)
    assert registry.names() == ["default"]
    assert (tmp_path / "empty" / "default" / "manifest.json").exists()
    registry.close()


def test_folders_are_served_under_their_names(workspace_root, tmp_path, settings) -> None:
    elsewhere = tmp_path / "elsewhere" / "papers"
    KnowledgeBase.create(elsewhere, settings=settings, embedder=HashingEmbedder(64)).close()
    registry = KnowledgeBases.from_folders([workspace_root / "notes", elsewhere], settings)
    assert registry.names() == ["notes", "papers"]
    assert registry.get("papers").directory == elsewhere.resolve()
    assert registry.workspace("papers").uploads_dir("papers") == elsewhere.resolve() / "uploads"
    with pytest.raises(UnknownKnowledgeBase):
        registry.get("default")  # in the same workspace folder, but not asked for
    registry.close()


def test_bad_folders_are_refused_with_what_to_do(workspace_root, tmp_path, settings) -> None:
    (tmp_path / "plain").mkdir()
    other_notes = tmp_path / "other" / "notes"
    KnowledgeBase.create(other_notes, settings=settings, embedder=HashingEmbedder(64)).close()
    bad_name = tmp_path / "-bad name!"
    KnowledgeBase.create(bad_name, settings=settings, embedder=HashingEmbedder(64)).close()
    cases = {
        "holds no knowledge base": [tmp_path / "plain"],
        "not store URIs": ["milvus:///tmp/kb.db"],
        "two knowledge bases are named 'notes'": [workspace_root / "notes", other_notes],
        "cannot name a model": [bad_name],
        "no knowledge base to serve": [],
    }
    for message, folders in cases.items():
        with pytest.raises(ConfigError, match=message):
            KnowledgeBases.from_folders(folders, settings)


def test_models_are_built_once(make_registry) -> None:
    registry = make_registry(llm="fake", llm_model="Canned [1].")
    assert registry.chat_model() is registry.chat_model()
    assert registry.shared_embedder() is registry.shared_embedder()
    assert make_registry().chat_model() is None  # the extractive answerer needs none
