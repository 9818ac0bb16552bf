"""The lexical tokenizer and the BM25 index."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ragqa import tokenizer
from ragqa.errors import IndexCorruptError, RagqaError
from ragqa.evaluation import load_squad, recall_at_k
from ragqa.lang import is_cjk
from ragqa.lexical import BM25Index, tokenize

# -------------------------------------------------------------------- tokenize


def test_english_is_lowercased_stemmed_and_without_function_words() -> None:
    assert tokenize("The teas WERE grown in gardens.") == ["tea", "grown", "garden"]
    # Porter's step 1, with the examples of Porter (1980).
    assert tokenize("caresses ponies cats agreed plastered motoring conflated hopping") == [
        "caress", "poni", "cat", "agree", "plaster", "motor", "conflate", "hop",
    ]  # fmt: skip
    assert tokenize("filing failing sized happy sky") == ["file", "fail", "size", "happi", "sky"]


def test_numbers_and_punctuation() -> None:
    assert tokenize("In 1,000 B.C., 3.14 was pi!") == ["1000", "b", "c", "3", "14", "pi"]
    # An apostrophe inside a word does not split off a one-letter term.
    assert tokenize("Tesla's cars don't") == ["tesla", "car", "dont"]
    assert tokenize("snake_case e-mail") == ["snake", "case", "e", "mail"]


def test_full_width_forms_fold_to_ascii() -> None:
    assert tokenize("ＡＢＣ１２３") == ["abc123"]


def test_chinese_becomes_characters_and_overlapping_pairs() -> None:
    # 臺灣 is converted to 台湾 first; jieba's words come first, then the n-grams.
    assert tokenize("臺灣的茶") == [
        "台湾",
        "的",
        "茶",
        "台",
        "台湾",
        "湾",
        "湾的",
        "的",
        "的茶",
        "茶",
    ]
    # Punctuation ends a run: no pair crosses it. (A one-character run is both
    # jieba's word and its own unigram.)
    assert tokenize("茶，水") == ["茶", "茶", "水", "水"]


def test_traditional_and_simplified_give_the_same_terms() -> None:
    assert tokenize("臺灣的茶葉歷史") == tokenize("台湾的茶叶历史")


def test_mixed_chinese_and_english() -> None:
    assert tokenize("蘋果iPhone手機2023年") == [
        "苹果", "苹", "苹果", "果", "iphone", "手机", "手", "手机", "机", "2023", "年", "年",
    ]  # fmt: skip


def test_nothing_to_index() -> None:
    assert tokenize("") == []
    assert tokenize("  。，！?  ") == []
    assert tokenize("the of and") == []


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_terms_survive_storage_as_one_space_separated_string(text: str) -> None:
    # The store keeps a chunk's terms as " ".join(terms) and reads them back
    # with str.split(), so a term may never be empty or contain whitespace.
    terms = tokenize(text)
    assert " ".join(terms).split() == terms
    assert tokenize(text) == terms  # deterministic


def _runs_char_by_char(text: str) -> list[tuple[str, bool]]:
    """The definition of tokenizer._runs, one character at a time."""
    runs = []
    for match in re.finditer(r"[^\W_]+", text):
        word, start = match.group(), 0
        for i in range(1, len(word) + 1):
            if i == len(word) or is_cjk(word[i]) != is_cjk(word[start]):
                runs.append((word[start:i], is_cjk(word[start])))
                start = i
    return runs


# Letters of every script that the CJK ranges border, and the characters around them.
_MIXED = st.text(
    st.sampled_from("ab1_ 'é中文臺灣かナ한글㐀\u4dbf\u9fff\ua000\uf900\U00020000。，ー・Ａ")
    | st.characters(),
    max_size=60,
)


@settings(max_examples=500, deadline=None)
@given(_MIXED)
def test_runs_split_words_where_the_script_changes(text: str) -> None:
    assert list(tokenizer._runs(text)) == _runs_char_by_char(text)


def test_importing_does_not_load_conversion_tables() -> None:
    code = "import sys, ragqa.lexical; print('opencc' in sys.modules, 'jieba' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["False", "False"]
    assert result.stderr == ""


# ---------------------------------------------------------- BM25: hand-checked


def idf(n_docs: int, df: int) -> float:
    return math.log(1 + (n_docs - df + 0.5) / (df + 0.5))


def test_scores_match_the_okapi_formula_by_hand() -> None:
    index = BM25Index(k1=1.2, b=0.75)
    index.add([1, 2, 3], [["a", "b"], ["b", "c"], ["c"]])
    # N = 3, average length (2 + 2 + 1) / 3 = 5/3.
    # "a": df = 1, idf = ln(1 + 2.5 / 1.5) = ln(8/3) = 0.980829.
    # Doc 1 (length 2): K = 1.2 * (0.25 + 0.75 * 2 / (5/3)) = 1.2 * 1.15 = 1.38,
    # score = 0.980829 * 1 * 2.2 / (1 + 1.38) = 0.906648.
    assert idf(3, 1) == pytest.approx(0.980829, abs=1e-6)
    [(doc, score)] = index.search(["a"], k=10)
    assert doc == 1
    assert score == pytest.approx(0.906648, abs=1e-6)
    # "c": df = 2, idf = ln(1 + 1.5 / 2.5) = ln(1.6) = 0.470004.
    # Doc 3 (length 1): K = 1.2 * (0.25 + 0.75 * 0.6) = 0.84; 0.470004 * 2.2 / 1.84 = 0.561961.
    # Doc 2 (length 2): K = 1.38; 0.470004 * 2.2 / 2.38 = 0.434457.
    result = index.search(["c"], k=10)
    assert [doc for doc, _ in result] == [3, 2]
    assert [s for _, s in result] == pytest.approx([0.561961, 0.434457], abs=1e-6)


def test_term_frequency_saturates_and_query_repeats_count() -> None:
    index = BM25Index(k1=1.2, b=0.0)  # b = 0: no length normalisation, K = k1
    index.add([1, 2, 3], [["x"], ["x", "x", "x"], ["y"]])
    # "x": df = 2 of N = 3, idf = ln(1 + 1.5 / 2.5) = ln 1.6 = 0.470004.
    # tf 1: 2.2 * 1 / (1 + 1.2) = 1.0; tf 3: 2.2 * 3 / (3 + 1.2) = 1.571429.
    scores = dict(index.search(["x"], k=10))
    assert scores[1] == pytest.approx(0.470004, abs=1e-6)
    assert scores[2] == pytest.approx(0.470004 * 1.571429, abs=1e-6)
    # A query that says "x" twice weighs it twice.
    doubled = dict(index.search(["x", "x"], k=10))
    assert doubled[1] == pytest.approx(2 * scores[1])


def test_removal_updates_df_count_and_average_length() -> None:
    index = BM25Index()
    index.add([1, 2], [["x"], ["x", "y"]])
    index.remove([1])
    # Only doc 2 is left: N = 1, df(x) = 1, average length 2.
    # idf = ln(1 + 0.5 / 1.5) = ln(4/3) = 0.287682; K = 1.2 * (0.25 + 0.75) = 1.2;
    # score = 0.287682 * 2.2 / 2.2 = 0.287682.
    assert index.search(["x"], k=10) == [(2, pytest.approx(0.287682, abs=1e-6))]
    assert len(index) == 1
    assert 1 not in index and 2 in index


def test_search_returns_only_matches_best_first_with_ties_by_id() -> None:
    index = BM25Index()
    index.add([30, 10, 20, 40], [["tea"], ["tea"], ["tea"], ["coffee"]])
    assert [doc for doc, _ in index.search(["tea"], k=10)] == [10, 20, 30]
    assert [doc for doc, _ in index.search(["tea"], k=2)] == [10, 20]
    assert index.search(["milk"], k=10) == []
    assert index.search([], k=10) == []
    assert index.search(["tea"], k=0) == []
    assert BM25Index().search(["tea"], k=5) == []


def test_an_empty_document_counts_but_never_matches() -> None:
    index = BM25Index()
    index.add([1, 2], [[], ["tea"]])
    assert len(index) == 2
    assert [doc for doc, _ in index.search(["tea"], k=5)] == [2]


def test_add_rejects_bad_input() -> None:
    index = BM25Index()
    index.add([1], [["a"]])
    with pytest.raises(ValueError, match="already indexed"):
        index.add([1], [["b"]])
    with pytest.raises(ValueError, match="unique"):
        index.add([2, 2], [["b"], ["c"]])
    with pytest.raises(ValueError, match="2 ids but 1"):
        index.add([2, 3], [["b"]])
    with pytest.raises(ValueError, match="k1"):
        BM25Index(k1=-1)
    with pytest.raises(ValueError, match="b must be"):
        BM25Index(b=1.5)
    assert len(index) == 1  # nothing half-added


def test_remove_ignores_unknown_ids_and_a_removed_id_can_come_back() -> None:
    index = BM25Index()
    index.add([1, 2], [["a"], ["b"]])
    index.remove([99, 1, 1])
    assert len(index) == 1
    index.add([1], [["c"]])
    assert [doc for doc, _ in index.search(["a", "c"], k=5)] == [1]


def test_many_small_adds_keep_few_segments() -> None:
    # Query cost grows with the number of segments; merging keeps it near log2.
    index = BM25Index()
    for i in range(1000):
        index.add([i], [["common", f"rare{i}"]])
    postings = sum(segment.size for segment in index._segments)
    assert postings == 2000
    assert len(index._segments) <= math.log2(postings) + 1
    assert len(index.search(["common"], k=2000)) == 1000


# ------------------------------------------------- BM25: against a reference


def reference_bm25(
    docs: dict[int, list[str]], query: list[str], k1: float, b: float
) -> dict[int, float]:
    """Okapi BM25 straight from the formula, over the documents present."""
    n_docs = len(docs)
    average = sum(len(d) for d in docs.values()) / n_docs if n_docs else 0.0
    average = average or 1.0
    scores: dict[int, float] = {}
    for term, repeats in Counter(query).items():
        df = sum(term in d for d in docs.values())
        if df == 0:
            continue
        for doc_id, doc in docs.items():
            tf = doc.count(term)
            if tf:
                norm = k1 * (1 - b + b * len(doc) / average)
                score = repeats * idf(n_docs, df) * tf * (k1 + 1) / (tf + norm)
                scores[doc_id] = scores.get(doc_id, 0.0) + score
    return scores


WORDS = st.sampled_from(["a", "b", "c", "d", "e", "茶", "台湾"])
OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.lists(st.lists(WORDS, max_size=6), max_size=5)),
        st.tuples(st.just("remove"), st.lists(st.integers(0, 40), max_size=6)),
        st.tuples(st.just("save_and_load"), st.none()),
    ),
    max_size=25,
)


def check_against_reference(
    index: BM25Index, present: dict[int, list[str]], query: list[str], k: int
) -> None:
    expected = reference_bm25(present, query, index.k1, index.b)
    expected = {d: s for d, s in expected.items() if s > 0}
    got = index.search(query, k=k)
    # The k best scores, best first (which of several tied chunks comes first
    # may differ by rounding, so ids are checked through their scores).
    best = sorted(expected.values(), reverse=True)[:k]
    assert [s for _, s in got] == pytest.approx(best)
    for doc_id, score in got:
        assert expected[doc_id] == pytest.approx(score)


@settings(max_examples=150, deadline=None)
@given(
    operations=OPERATIONS,
    queries=st.lists(st.lists(WORDS, min_size=1, max_size=4), min_size=1, max_size=4),
    k1=st.sampled_from([0.0, 1.2, 2.0]),
    b=st.sampled_from([0.0, 0.75, 1.0]),
    k=st.sampled_from([1, 2, 3, 1000]),
    dead_lookup_ratio=st.sampled_from([0, 10**9]),
)
def test_index_agrees_with_the_formula_through_adds_removes_and_reloads(
    operations: list[tuple[str, object]],
    queries: list[list[str]],
    k1: float,
    b: float,
    k: int,
    dead_lookup_ratio: int,
) -> None:
    index = BM25Index(k1=k1, b=b)
    # Try pruning before every term, so that the pruned path is exercised
    # on these small indexes too; and either keep removed chunks' postings in
    # every list (counting them) or filter every list, so both paths are.
    index._prune_check_share = 0.0
    index._dead_lookup_ratio = dead_lookup_ratio
    present: dict[int, list[str]] = {}
    next_id = 0
    with tempfile.TemporaryDirectory() as folder:
        for kind, argument in operations:
            if kind == "add":
                ids = list(range(next_id, next_id + len(argument)))
                next_id += len(argument)
                index.add(ids, argument)
                present.update(zip(ids, argument, strict=True))
            elif kind == "remove":
                index.remove(argument)
                for doc_id in argument:
                    present.pop(doc_id, None)
            else:
                index.save(Path(folder) / "lexical.npz")
                index = BM25Index.load(Path(folder) / "lexical.npz")
                index._prune_check_share = 0.0
                index._dead_lookup_ratio = dead_lookup_ratio
            assert len(index) == len(present)
            assert all(doc_id in index for doc_id in present)
            for query in queries:
                check_against_reference(index, present, query, k)


@pytest.fixture
def partitioned(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many scores each of BM25's searches for a k-th best score looked at."""
    import ragqa.lexical

    sizes: list[int] = []
    original = ragqa.lexical._kth_largest

    def spy(values: np.ndarray, k: int) -> float:
        sizes.append(len(values))
        return original(values, k)

    monkeypatch.setattr(ragqa.lexical, "_kth_largest", spy)
    return sizes


def test_pruning_skips_long_lists_and_keeps_the_exact_top_k(partitioned: list[int]) -> None:
    # 10 chunks with a rare word, 400 with a common one (some with both).
    present = {i: ["rare"] * (i % 3 + 1) + ["common"] * (i % 5 + 1) for i in range(10)}
    present.update({i: ["common"] * (i % 7 + 1) + ["filler"] for i in range(10, 410)})
    index = BM25Index()
    index.add(list(present), list(present.values()))
    for k in (1, 3, 10):
        partitioned.clear()
        check_against_reference(index, present, ["rare", "common"], k)
        # "rare" scores 10 chunks; then theta among them beats what "common"
        # can add (idf(common) * 2.2 = 0.055), so the 400-long list is only
        # searched for the candidates.
        assert partitioned == [10]


def test_theta_comes_from_one_terms_chunks_not_from_every_scored_chunk(
    partitioned: list[int],
) -> None:
    # Scanning every scored chunk for theta took about 30 % of a Chinese question's
    # BM25 time at a million chunks (line profiler): its characters score hundreds
    # of thousands of chunks.
    # "rare" in 10 chunks, "rarer" in 5 others, "common" in 400 (some of each).
    present = {i: ["rare"] * (i % 3 + 1) + ["common"] * (i % 5 + 1) for i in range(10)}
    present.update({i: ["rarer", "filler"] for i in range(10, 15)})
    present.update({i: ["common"] * (i % 7 + 1) + ["filler"] for i in range(15, 415)})
    index = BM25Index()
    index.add(list(present), list(present.values()))
    check_against_reference(index, present, ["rarer", "rare", "common"], 3)
    # Before "rare", theta is the 3rd best of rarer's 5 chunks; before "common", of
    # rare's 10, not of all 15 scored so far.
    assert partitioned == [5, 10]


def test_one_removal_leaves_long_posting_lists_uncopied() -> None:
    # Masking every list after a removal made each query at 100k chunks about
    # half as slow again, until the next compaction.
    present = {i: ["common", f"word{i % 7}"] + ["rare"] * (i == 500) for i in range(1000)}
    index = BM25Index()
    index.add(list(present), list(present.values()))
    index.remove([500, 501])
    del present[500], present[501]
    terms = index._query_terms(Counter(["common", "word3"]), len(index))
    (segment,) = index._segments
    for term in terms:
        ((slots, _tfs),) = term.postings
        assert np.shares_memory(slots, segment.slots)  # the list itself, not a copy
    assert [term.df for term in terms] == [998, sum(i % 7 == 3 for i in present)]
    for query in (["common"], ["word3", "common"], ["word4"], ["rare"], ["rare", "common"]):
        check_against_reference(index, present, query, k=5)
        check_against_reference(index, present, query, k=1000)


# ------------------------------------------------------------ BM25: persistence


def sample_index() -> BM25Index:
    index = BM25Index(k1=1.5, b=0.6)
    index.add([5, 6, 7], [tokenize("綠茶和紅茶"), tokenize("Green tea and black tea"), []])
    index.add([8], [tokenize("烏龍茶 oolong tea")])
    index.remove([6])
    return index


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    index = sample_index()
    (tmp_path / "kb").mkdir()
    path = tmp_path / "kb" / "lexical.npz"
    index.save(path)
    loaded = BM25Index.load(path)
    assert (loaded.k1, loaded.b) == (1.5, 0.6)
    assert len(loaded) == 3
    assert [d in loaded for d in (5, 6, 7, 8)] == [True, False, True, True]
    for query in ("紅茶", "tea", "烏龍 tea", "綠茶 oolong"):
        assert loaded.search(tokenize(query), k=10) == index.search(tokenize(query), k=10)
    # The loaded index keeps working incrementally.
    loaded.add([9], [tokenize("black tea")])
    loaded.remove([8])
    assert [d for d, _ in loaded.search(tokenize("black tea"), k=10)] == [9]
    assert os.listdir(tmp_path / "kb") == ["lexical.npz"]  # no temp file left behind


def test_an_empty_index_round_trips(tmp_path: Path) -> None:
    BM25Index().save(tmp_path / "lexical.npz")
    loaded = BM25Index.load(tmp_path / "lexical.npz")
    assert len(loaded) == 0
    assert loaded.search(["tea"], k=5) == []


def test_a_failed_save_keeps_the_previous_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "kb").mkdir()
    path = tmp_path / "kb" / "lexical.npz"
    sample_index().save(path)
    before = path.read_bytes()

    def fail(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", fail)
    bigger = sample_index()
    bigger.add([100], [["more"]])
    with pytest.raises(OSError, match="disk full"):
        bigger.save(path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path / "kb") == ["lexical.npz"]


def arrays_of(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as archive:
        return {name: archive[name] for name in archive.files}


def tamper(path: Path, **changes: object) -> None:
    arrays = arrays_of(path)
    for name, value in changes.items():
        if value is None:
            del arrays[name]
        else:
            arrays[name] = np.asarray(value)
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]), "not a readable"),
        (lambda p: p.write_bytes(b"\x00garbage" * 100), "not a readable"),
        (lambda p: p.unlink(), "missing"),
        (lambda p: tamper(p, format="something-else"), "not a ragqa BM25 index"),
        (lambda p: tamper(p, version=[2]), "format version"),
        (lambda p: tamper(p, tfs=None), "unexpected arrays"),
        (lambda p: tamper(p, params=[1.2, 7.0]), "b must be"),
        (lambda p: tamper(p, lengths=arrays_of(p)["lengths"] + 1), "lengths"),
        (lambda p: tamper(p, slots=arrays_of(p)["slots"] + 100), "outside the documents"),
        (lambda p: tamper(p, tfs=arrays_of(p)["tfs"] * 0), "no count"),
        (lambda p: tamper(p, indptr=arrays_of(p)["indptr"][:-1]), "segment sizes"),
        (lambda p: tamper(p, indptr=arrays_of(p)["indptr"][::-1]), "without postings"),
        (lambda p: tamper(p, terms=arrays_of(p)["terms"] + 10_000), "outside the vocabulary"),
        (lambda p: tamper(p, terms=arrays_of(p)["terms"][::-1]), "not sorted"),
        (lambda p: tamper(p, vocab=arrays_of(p)["vocab"][:-1]), "vocabulary"),
        (lambda p: tamper(p, ids=np.zeros(3, dtype=np.int64)), "ids"),
        (lambda p: tamper(p, slots=arrays_of(p)["slots"].astype(np.float64)), "'slots'"),
    ],
)
def test_a_damaged_file_raises_index_corrupt(tmp_path: Path, damage, message: str) -> None:
    path = tmp_path / "lexical.npz"
    sample_index().save(path)
    damage(path)
    with pytest.raises(IndexCorruptError, match=message) as caught:
        BM25Index.load(path)
    assert isinstance(caught.value, RagqaError)
    assert str(path) in str(caught.value)


class _Exploit:
    """Unpickling this would create a file: loading must never unpickle."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_loading_never_unpickles(tmp_path: Path) -> None:
    path = tmp_path / "lexical.npz"
    marker = tmp_path / "pwned"
    sample_index().save(path)
    hostile = np.empty(1, dtype=object)
    hostile[0] = _Exploit(marker)
    tamper(path, ids=hostile)
    with pytest.raises(IndexCorruptError):
        BM25Index.load(path)
    assert not marker.exists()


# ------------------------------------------------------------ BM25: real data


@pytest.mark.shared_data
@pytest.mark.parametrize(
    ("name", "minimum_recall_at_5"),
    # Measured on all questions: 0.993 (DRCD) and 0.922 (SQuAD); the floors
    # leave room for small changes but catch a broken tokenizer or index.
    [("drcd_dev.json", 0.97), ("squad_dev_v1.1_articles_01-12.json", 0.88)],
)
def test_bm25_finds_the_gold_paragraph_in_the_shared_sets(
    shared_data: Path, name: str, minimum_recall_at_5: float
) -> None:
    path = shared_data / name
    if not path.exists():
        pytest.skip(f"{path} is absent")
    squad = load_squad(path)
    index = BM25Index()
    index.add(range(len(squad.paragraphs)), [tokenize(p.context) for p in squad.paragraphs])
    ids = [p.id for p in squad.paragraphs]
    hits = [
        recall_at_k([ids[i] for i, _ in index.search(tokenize(q.question), 5)], q.paragraph_id, 5)
        for q in squad.questions
    ]
    assert sum(hits) / len(hits) >= minimum_recall_at_5
