"""Retrieval: fusion, coverage weighting, the relevance gate and MMR, on small stores."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from ragqa import ConfigError, KnowledgeBase, Settings
from ragqa.embeddings import Embedder
from ragqa.retrieval import (
    convex_fusion,
    maximal_marginal_relevance,
    reciprocal_rank_fusion,
    term_coverage,
)

TEA = (
    "Oolong tea is partly oxidised. Dong Ding oolong comes from Lugu in Nantou County.\n\n"
    "Green tea is not oxidised at all. It is steamed or pan-fired soon after picking."
)
PLANETS = (
    "Jupiter is the largest planet. Its Great Red Spot is a storm older than three "
    "centuries.\n\nSaturn has rings made mostly of ice."
)


class KeywordEmbedder(Embedder):
    """Vectors chosen by keyword, so that a test decides what dense search prefers.

    A text containing ``~`` (which the lexical tokenizer drops) points along the
    first axis, any other text along the second, so a ``~`` query has cosine 1
    with such chunks and 0 with the rest. Texts report an [UNK] share of
    ``unknown``, or ``chunk_unknown`` for texts containing ``gamma``.
    """

    name = "keyword:2"
    dimension = 2

    def __init__(self, unknown: float | None = 0.0, chunk_unknown: float | None = None) -> None:
        self.unknown = unknown
        self.chunk_unknown = chunk_unknown

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        return np.array([[1.0, 0.0] if "~" in t else [0.0, 1.0] for t in texts], dtype=np.float32)

    def unknown_token_counts(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray] | None:
        if self.unknown is None:
            return None
        shares = [
            self.chunk_unknown if self.chunk_unknown is not None and "gamma" in t else self.unknown
            for t in texts
        ]
        return np.array(shares) * 10, np.full(len(texts), 10.0)


# Lexically, "alpha ~" matches A best (three times); densely, it is identical to
# B. C matches neither.
DOCS = {
    "A": "alpha alpha alpha beta delta",
    "B": "alpha ~ gamma epsilon zeta eta theta",
    "C": "omicron sigma tau upsilon",
}


def keyword_kb(tmp_path, embedder: KeywordEmbedder, **settings: object) -> KnowledgeBase:
    base = Settings(embedding_model="keyword:2", chunk_size=200, chunk_overlap=40)
    kb = KnowledgeBase.create(
        tmp_path / "kw", settings=base.replace(min_relevance=0.0, **settings), embedder=embedder
    )
    kb.add_texts(DOCS)
    return kb


def sources(hits) -> list[str]:
    return [h.source for h in hits]


# ------------------------------------------------------------------- fusion


def test_convex_fusion_by_hand():
    # dense 0.2/0.6/1.0 -> 0/0.5/1; lexical 4/0/2 -> 1/0/0.5
    fused = convex_fusion([0.2, 0.6, 1.0], [4.0, 0.0, 2.0], 0.25)
    assert fused.tolist() == pytest.approx([0.75, 0.125, 0.625])
    # A weight per candidate; equal scores carry no information and become 0.
    fused = convex_fusion([0.5, 0.5], [3.0, 1.0], [0.0, 1.0])
    assert fused.tolist() == [1.0, 0.0]
    with pytest.raises(ValueError, match="2 dense scores but 1 lexical"):
        convex_fusion([0.1, 0.2], [1.0], 0.5)


def test_reciprocal_rank_fusion_by_hand():
    fused = dict(reciprocal_rank_fusion([[7, 8], [8, 9]], k=1))
    assert fused == pytest.approx({7: 1 / 2, 8: 1 / 3 + 1 / 2, 9: 1 / 3})


def test_term_coverage():
    assert term_coverage(["a", "b", "b", "c", "d"], {"b", "d", "x"}) == 0.5
    assert term_coverage([], ["a"]) == 0.0


def test_hybrid_follows_dense_when_the_model_reads_the_query(tmp_path):
    # focus_weight=0: the fused scores themselves, before units have a say.
    with keyword_kb(tmp_path, KeywordEmbedder(unknown=0.0), focus_weight=0.0) as kb:
        assert sources(kb.search("alpha ~", k=3, mode="lexical"))[:2] == ["A", "B"]
        assert sources(kb.search("alpha ~", k=1, mode="dense")) == ["B"]
        hybrid = kb.search("alpha ~", k=3, mode="hybrid")
        # B: 0.5 * 1 (dense) + 0.5 * its normalised BM25; A: 0.5 * 0 + 0.5 * 1.
        assert sources(hybrid)[:2] == ["B", "A"]
        assert hybrid[1].score == pytest.approx(0.5)
        assert all(0.0 <= h.score <= 1.0 for h in hybrid)
        assert hybrid == sorted(hybrid, key=lambda h: -h.score)


@pytest.mark.parametrize("query", ["alpha ~", "alpha beta", "~ omicron", "alpha omicron"])
def test_an_all_unknown_query_is_ranked_by_bm25_alone(tmp_path, query):
    with keyword_kb(tmp_path, KeywordEmbedder(unknown=1.0)) as kb:
        lexical = kb.search(query, k=3, mode="lexical")
        hybrid = kb.search(query, k=len(lexical), mode="hybrid")
        assert [h.chunk_id for h in hybrid] == [h.chunk_id for h in lexical]


def test_an_unreadable_chunk_is_scored_by_bm25_alone(tmp_path):
    # The query is readable, but B (containing "gamma") is all [UNK]: B's dense
    # weight is 0, so its fused score is exactly its min-max normalised BM25 score.
    kind = KeywordEmbedder(unknown=0.0, chunk_unknown=1.0)
    with keyword_kb(tmp_path, kind, focus_weight=0.0) as kb:
        lexical = {h.source: h.score for h in kb.search("alpha ~", k=3, mode="lexical")}
        hybrid = {h.source: h.score for h in kb.search("alpha ~", k=3, mode="hybrid")}
        low = 0.0  # C shares no term with the query: BM25's floor
        assert hybrid["B"] == pytest.approx((lexical["B"] - low) / (lexical["A"] - low))
        assert hybrid["A"] == pytest.approx(0.5)  # readable: 0.5 * 0 + 0.5 * 1


def test_dense_weight_zero_is_lexical_and_one_is_dense(tmp_path):
    with keyword_kb(tmp_path, KeywordEmbedder()) as kb:
        only_bm25 = kb.settings.replace(dense_weight=0.0)
        only_dense = kb.settings.replace(dense_weight=1.0)
        retriever = kb._retriever
        lexical = sources(kb.search("alpha ~", k=2, mode="lexical"))
        assert sources(retriever.search("alpha ~", 2, settings=only_bm25)) == lexical
        assert sources(retriever.search("alpha ~", 1, settings=only_dense)) == ["B"]


# ------------------------------------------------------------ modes, via the KB


@pytest.mark.parametrize("mode", ["dense", "lexical", "hybrid"])
def test_every_mode_finds_the_document(make_kb, write_text, mode):
    kb = make_kb()
    kb.add([write_text("tea.md", TEA), write_text("planets.md", PLANETS)])
    hits = kb.search("Great Red Spot storm on Jupiter", k=2, mode=mode)
    assert hits[0].file_name == "planets.md"
    assert "Red Spot" in hits[0].text


def test_search_validates_its_arguments(make_kb, write_text):
    kb = make_kb()
    kb.add([write_text("tea.md", TEA)])
    with pytest.raises(ConfigError, match="mode must be one of"):
        kb.search("tea", mode="fuzzy")
    with pytest.raises(ConfigError, match="empty"):
        kb.search("  ")
    with pytest.raises(ConfigError, match="k must be at least 1"):
        kb._retriever.search("tea", 0)


def test_an_empty_knowledge_base_finds_nothing(make_kb):
    kb = make_kb()
    for mode in ("dense", "lexical", "hybrid"):
        assert kb.search("tea", k=3, mode=mode) == []


@pytest.mark.parametrize(
    ("field", "value"),
    [("dense_weight", 1.5), ("min_relevance", -0.1), ("rerank_depth", 0)],
)
def test_retrieval_settings_are_validated(field, value):
    with pytest.raises(ConfigError, match=field):
        Settings(**{field: value})


# ----------------------------------------------------------- relevance gate


@pytest.mark.parametrize("mode", ["dense", "lexical", "hybrid"])
def test_an_off_topic_query_finds_nothing(make_kb, write_text, mode):
    kb = make_kb()
    assert kb.settings.min_relevance == Settings().min_relevance > 0  # on by default
    kb.add([write_text("tea.md", TEA), write_text("planets.md", PLANETS)])
    assert kb.search("quantum chromodynamics lattice simulations", k=3, mode=mode) == []
    assert kb.search("Which tea comes from Nantou?", k=3, mode=mode)
    # Turned off, the same query gets the least bad chunks.
    lenient = kb.settings.replace(min_relevance=0.0)
    found = kb._retriever.search("quantum chromodynamics", 3, mode=mode, settings=lenient)
    assert bool(found) == (mode != "lexical")  # BM25 never returns chunks without a match


def test_ask_passes_its_settings_to_retrieval(make_kb, write_text):
    kb = make_kb()
    kb.add([write_text("tea.md", TEA)])
    strict = kb.settings.replace(min_relevance=1.0)
    assert kb.ask("Where does Dong Ding oolong come from?", settings=strict).passages == ()
    assert kb.ask("Where does Dong Ding oolong come from?").passages


# ---------------------------------------------------------------------- MMR


def test_mmr_function_prefers_a_new_item_to_a_near_duplicate():
    similarity = np.array([[1.0, 0.9, 0.2], [0.9, 1.0, 0.1], [0.2, 0.1, 1.0]])
    assert maximal_marginal_relevance([1.0, 0.9, 0.5], similarity, 3, lambda_=1.0) == [0, 1, 2]
    assert maximal_marginal_relevance([1.0, 0.9, 0.5], similarity, 3, lambda_=0.5) == [0, 2, 1]
    assert maximal_marginal_relevance([], np.zeros((0, 0)), 3) == []


def test_mmr_search_picks_a_diverse_second_hit(make_kb):
    kb = make_kb()
    first = "Dong Ding oolong is grown in Lugu, Nantou, and roasted over charcoal."
    kb.add_texts(
        {
            "first": first,
            "copy": first.replace("charcoal.", "charcoal fires."),  # a near-duplicate
            "other": "Dong Ding oolong tastes of honey and ripe fruit.",
            "planets": PLANETS,
        }
    )
    query = "Dong Ding oolong grown in Nantou"
    assert sources(kb.search(query, k=3)) == ["first", "copy", "other"]
    diverse = kb.settings.replace(mmr=True, mmr_lambda=0.5)
    assert sources(kb._retriever.search(query, 3, settings=diverse)) == ["first", "other", "copy"]
    # lambda 1 is plain relevance ranking.
    plain = kb.settings.replace(mmr=True, mmr_lambda=1.0)
    assert sources(kb._retriever.search(query, 3, settings=plain)) == ["first", "copy", "other"]


def test_mmr_compares_unreadable_chunks_by_their_terms(tmp_path):
    # Every vector here is the same (no "~"), as near-identical as the vectors of
    # texts that are all [UNK]; only the terms can tell the near-duplicate apart.
    first = "dong ding oolong grown lugu nantou roasted charcoal"
    texts = {
        "first": first,
        "copy": first + " fires",
        "other": "dong ding oolong tastes honey ripe fruit",
        "planets": PLANETS,
    }
    kb = KnowledgeBase.create(
        tmp_path / "unk",
        settings=Settings(embedding_model="keyword:2", mmr_lambda=0.5),
        embedder=KeywordEmbedder(unknown=1.0),
    )
    with kb:
        kb.add_texts(texts)
        query = "dong ding oolong grown nantou"
        assert sources(kb.search(query, k=2)) == ["first", "copy"]
        diverse = kb.settings.replace(mmr=True)
        assert sources(kb._retriever.search(query, 2, settings=diverse)) == ["first", "other"]


def test_unknown_shares_are_stored_at_ingest_not_recomputed_per_query(tmp_path):
    class Recording(KeywordEmbedder):
        def __init__(self) -> None:
            super().__init__(unknown=0.0, chunk_unknown=1.0)
            self.seen: list[str] = []

        def unknown_token_counts(self, texts):
            self.seen.extend(texts)
            return super().unknown_token_counts(texts)

    embedder = Recording()
    with keyword_kb(tmp_path, embedder) as kb:
        stored = kb.store.unknown_shares([h.chunk_id for h in kb.search("alpha", k=3)])
        assert sorted(stored.values()) == [0.0, 0.0, 1.0]  # B mentions gamma
    with KnowledgeBase.open(tmp_path / "kw", embedder=embedder) as kb:  # a fresh retriever
        embedder.seen.clear()
        assert kb.search("alpha ~", k=3)
        assert embedder.seen == ["alpha ~"]  # the query only, never a chunk


def test_the_relevance_gate_reads_stored_terms_instead_of_tokenizing_hits(
    make_kb, write_text, monkeypatch
):
    import ragqa.lexical
    from ragqa.splitting import file_name_words

    kb = make_kb()
    kb.add([write_text("tea.md", TEA), write_text("planets.md", PLANETS)])
    hits = kb._retriever.search("Which tea comes from Nantou?", 3, mode="lexical")
    assert hits
    stored = kb.store.chunk_terms([h.chunk_id for h in hits])
    # A chunk's terms are its file name's, its headings' and its text's.
    name = {h.chunk_id: file_name_words(h.source) for h in hits}
    assert stored == {
        h.chunk_id: ragqa.lexical.tokenize(
            "\n".join(p for p in (name[h.chunk_id], h.heading, h.text) if p)
        )
        for h in hits
    }

    real_tokenize = ragqa.lexical.tokenize
    tokenized: list[str] = []

    def recording(text):
        tokenized.append(text)
        return real_tokenize(text)

    monkeypatch.setattr(ragqa.lexical, "tokenize", recording)
    with KnowledgeBase.open(kb.directory, embedder=kb.embedder) as fresh:  # empty caches
        gated = fresh.search("Which tea comes from Nantou?", k=3)
        assert tokenized == ["Which tea comes from Nantou?"], "the query only, never a hit"
        # A store without stored terms gives the gate the same answer from the text.
        monkeypatch.setattr(type(fresh.store), "chunk_terms", lambda self, ids: {})
        fresh._retriever._terms_by_chunk = type(fresh._retriever._terms_by_chunk)(100)
        assert fresh.search("Which tea comes from Nantou?", k=3) == gated
        assert len(tokenized) > 1


# ---------------------------------------------------- the two sides at once


def test_hybrid_embeds_and_searches_faiss_while_bm25_runs(tmp_path, monkeypatch) -> None:
    import threading

    embedder = KeywordEmbedder(unknown=0.0)
    kb = keyword_kb(tmp_path, embedder)
    expected = sources(kb.search("alpha ~", k=3, mode="hybrid"))
    store = kb.store
    dense_started = threading.Event()
    overlapped: list[bool] = []
    embedder_threads: set[int] = set()
    original_dense, original_lexical = store.dense_search, store.lexical_search
    original_embed, original_counts = embedder.embed_query, embedder.unknown_token_counts

    def dense_search(vector, k):
        dense_started.set()
        return original_dense(vector, k)

    def lexical_search(terms, k):
        # Run one after the other, the dense side would only start after this.
        overlapped.append(dense_started.wait(timeout=10))
        return original_lexical(terms, k)

    def embed_query(text):
        embedder_threads.add(threading.get_ident())
        return original_embed(text)

    def unknown_token_counts(texts):
        embedder_threads.add(threading.get_ident())
        return original_counts(texts)

    monkeypatch.setattr(store, "dense_search", dense_search)
    monkeypatch.setattr(store, "lexical_search", lexical_search)
    monkeypatch.setattr(embedder, "embed_query", embed_query)
    monkeypatch.setattr(embedder, "unknown_token_counts", unknown_token_counts)
    assert sources(kb.search("alpha ~", k=3, mode="hybrid")) == expected
    assert overlapped == [True]
    # The question's vector and its [UNK] count come from one thread, which is
    # not the caller's: a tokenizer is never used by two threads in one search.
    assert len(embedder_threads) == 1
    assert threading.get_ident() not in embedder_threads


def test_an_error_on_the_dense_side_reaches_the_caller(tmp_path, monkeypatch) -> None:
    from ragqa.errors import IndexMismatchError

    kb = keyword_kb(tmp_path, KeywordEmbedder())

    def dense_search(vector, k):
        raise IndexMismatchError("the model now makes other vectors")

    monkeypatch.setattr(kb.store, "dense_search", dense_search)
    with pytest.raises(IndexMismatchError, match="other vectors"):
        kb.search("alpha ~", k=3, mode="hybrid")
    assert sources(kb.search("alpha", k=1, mode="lexical")) == ["A"]


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork")
def test_a_forked_child_searches_in_hybrid_mode(tmp_path) -> None:
    import os

    kb = keyword_kb(tmp_path, KeywordEmbedder())
    expected = sources(kb.search("alpha ~", k=3, mode="hybrid"))  # the pool now has a thread
    pid = os.fork()
    if pid == 0:  # the child: exit 0 only if its hybrid search comes back, and right
        code = 1
        try:
            import signal

            signal.alarm(30)  # a search that hangs must not hang the test run
            code = 0 if sources(kb.search("alpha ~", k=3, mode="hybrid")) == expected else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
