"""Metrics and SQuAD loading, checked against values computed by hand."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from ragqa.errors import LoaderError, RagqaError
from ragqa.evaluation import (
    SquadParagraph,
    SquadQuestion,
    answer_metrics,
    answer_tokens,
    bleu,
    exact_match,
    f1,
    load_squad,
    mrr_at_k,
    ndcg_at_k,
    recall_at_k,
    retrieval_metrics,
    rouge_l,
)

# ------------------------------------------------------------------ load_squad

TINY_SQUAD = {
    "version": "1.1",
    "data": [
        {
            "title": "Tea",
            "paragraphs": [
                {
                    "context": "Tea originated in China.",
                    "qas": [
                        {
                            "id": "q1",
                            "question": "Where did tea originate?",
                            "answers": [
                                {"text": "China", "answer_start": 18},
                                {"text": "in China", "answer_start": 15},
                            ],
                        }
                    ],
                },
                {"context": "Nobody asks about this one.", "qas": []},
            ],
        },
        {
            "title": "茶",
            "paragraphs": [
                {
                    "id": "tea-zh-1",  # DRCD-style paragraph id: kept as it is
                    "context": "茶起源於中國。",
                    "qas": [
                        {
                            "id": "q2",
                            "question": "茶起源於哪裡？",
                            "answers": [{"text": "中國", "answer_start": 4}],
                        },
                        {"id": "q3", "question": "Unanswerable?", "answers": []},
                    ],
                }
            ],
        },
    ],
}


def write_json(tmp_path: Path, content: object, name: str = "set.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(content, ensure_ascii=False), encoding="utf-8")
    return path


def test_load_squad_reads_paragraphs_and_questions_in_order(tmp_path: Path) -> None:
    squad = load_squad(write_json(tmp_path, TINY_SQUAD))
    assert squad.paragraphs == (
        SquadParagraph("0-0", "Tea", "Tea originated in China."),
        SquadParagraph("0-1", "Tea", "Nobody asks about this one."),
        SquadParagraph("tea-zh-1", "茶", "茶起源於中國。"),
    )
    assert squad.questions == (
        SquadQuestion("q1", "Where did tea originate?", "0-0", ("China", "in China")),
        SquadQuestion("q2", "茶起源於哪裡？", "tea-zh-1", ("中國",)),
        SquadQuestion("q3", "Unanswerable?", "tea-zh-1", ()),
    )


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ([1, 2, 3], '"data"'),
        ({"data": [{"title": "x"}]}, "data[0]"),
        ({"data": [{"paragraphs": [{"qas": []}]}]}, "data[0].paragraphs[0]"),
        ({"data": [{"paragraphs": [{"context": "c"}]}]}, '"qas"'),
        ({"data": [{"paragraphs": [{"context": "c", "qas": [{"id": "1"}]}]}]}, "qas[0]"),
        (
            {"data": [{"paragraphs": [{"context": "c", "qas": [
                {"id": "1", "question": "q", "answers": [{"answer_start": 0}]}]}]}]},
            '"text"',
        ),
        (
            {"data": [{"paragraphs": [{"id": "p", "context": "c", "qas": []},
                                      {"id": "p", "context": "d", "qas": []}]}]},
            "repeats the paragraph id",
        ),
        (
            {"data": [{"paragraphs": [{"context": "c", "qas": [
                {"id": "1", "question": "q"}, {"id": "1", "question": "r"}]}]}]},
            "repeats the question id",
        ),
    ],
)  # fmt: skip
def test_load_squad_names_what_is_wrong(tmp_path: Path, content: object, fragment: str) -> None:
    path = write_json(tmp_path, content)
    with pytest.raises(LoaderError) as caught:
        load_squad(path)
    assert caught.value.reason == "unsupported"
    assert str(path) in str(caught.value)
    assert "not in SQuAD format" in str(caught.value)
    assert fragment in str(caught.value)


def test_load_squad_rejects_a_file_that_is_not_json(tmp_path: Path) -> None:
    path = tmp_path / "notes.json"
    path.write_text("just some notes, {not json", encoding="utf-8")
    with pytest.raises(LoaderError, match="not a JSON file") as caught:
        load_squad(path)
    assert caught.value.reason == "unsupported"


def test_load_squad_reports_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(RagqaError, match="cannot read it"):
        load_squad(tmp_path / "absent.json")


@pytest.mark.shared_data
@pytest.mark.parametrize(
    ("name", "paragraphs", "questions"),
    [("drcd_dev.json", 1000, 3524), ("squad_dev_v1.1_articles_01-12.json", 620, 3468)],
)
def test_load_squad_reads_the_shared_sets(
    shared_data: Path, name: str, paragraphs: int, questions: int
) -> None:
    path = shared_data / name
    if not path.exists():
        pytest.skip(f"{path} is absent")
    squad = load_squad(path)
    # Counts as MANIFEST.md gives them.
    assert (len(squad.paragraphs), len(squad.questions)) == (paragraphs, questions)
    contexts = {p.id: p.context for p in squad.paragraphs}
    assert len(contexts) == paragraphs
    # Every gold answer is a span of its own paragraph.
    for question in squad.questions:
        assert question.answers
        assert any(answer in contexts[question.paragraph_id] for answer in question.answers)


# ------------------------------------------------------------ retrieval metrics


def test_ranks_count_distinct_paragraphs() -> None:
    ranked = ["p1", "p1", "p2", "p1", "p3"]  # five chunks from three paragraphs
    # Distinct: p1, p2, p3, so p3 is at rank 3, not 5.
    assert recall_at_k(ranked, "p3", 3) == 1.0
    assert recall_at_k(ranked, "p3", 2) == 0.0
    assert mrr_at_k(ranked, "p3", 10) == pytest.approx(1 / 3)
    assert ndcg_at_k(ranked, "p3", 10) == pytest.approx(0.5)  # 1 / log2(3 + 1)
    assert ndcg_at_k(ranked, "p2", 10) == pytest.approx(1 / math.log2(3))  # 0.6309
    assert ndcg_at_k(ranked, "p1", 10) == 1.0  # 1 / log2(2)


def test_metrics_are_zero_when_gold_is_missing_or_beyond_k() -> None:
    assert recall_at_k(["a", "b"], "z", 10) == 0.0
    assert mrr_at_k(["a", "b"], "z", 10) == 0.0
    assert ndcg_at_k(["a", "b"], "z", 10) == 0.0
    assert mrr_at_k(["a", "b", "c"], "c", 2) == 0.0  # rank 3 > k = 2
    assert ndcg_at_k(["a", "b", "c"], "c", 2) == 0.0
    assert recall_at_k([], "a", 5) == 0.0


def test_retrieval_metrics_averages_over_questions() -> None:
    ranked = [
        ["a", "b", "c"],  # gold a at rank 1
        ["x", "x", "y", "g"],  # gold g at distinct rank 3
        ["m", "n"],  # gold absent
        ["q"] + [f"d{i}" for i in range(10)],  # gold d5 at rank 7
    ]
    gold = ["a", "g", "z", "d5"]
    metrics = retrieval_metrics(ranked, gold, [1.0, 2.0, 3.0, 4.0])
    assert set(metrics) == {
        "recall@1", "recall@5", "recall@10", "mrr@10", "ndcg@10",
        "questions", "latency_ms_p50", "latency_ms_p95",
    }  # fmt: skip
    assert metrics["recall@1"] == 0.25  # only the first: 1/4
    assert metrics["recall@5"] == 0.5  # first and second: 2/4
    assert metrics["recall@10"] == 0.75  # and the fourth: 3/4
    # (1 + 1/3 + 0 + 1/7) / 4 = 1.476190 / 4
    assert metrics["mrr@10"] == pytest.approx((1 + 1 / 3 + 1 / 7) / 4)
    assert metrics["mrr@10"] == pytest.approx(0.369048, abs=1e-6)
    # (1 + 1/log2(4) + 0 + 1/log2(8)) / 4 = (1 + 0.5 + 0.3333) / 4
    assert metrics["ndcg@10"] == pytest.approx(0.458333, abs=1e-6)
    assert metrics["questions"] == 4.0
    # Linear interpolation: position 0.5 * 3 = 1.5 -> 2 + 0.5 * (3 - 2) = 2.5,
    # position 0.95 * 3 = 2.85 -> 3 + 0.85 * (4 - 3) = 3.85.
    assert metrics["latency_ms_p50"] == pytest.approx(2.5)
    assert metrics["latency_ms_p95"] == pytest.approx(3.85)


def test_retrieval_metrics_rejects_empty_or_mismatched_input() -> None:
    with pytest.raises(ValueError, match="no questions"):
        retrieval_metrics([], [], [])
    with pytest.raises(ValueError, match="2 rankings, 1 gold"):
        retrieval_metrics([["a"], ["b"]], ["a"], [1.0, 2.0])


# --------------------------------------------------------------- answer tokens


def test_answer_tokens_normalise_english_the_squad_way() -> None:
    # Lowercase, punctuation deleted (U.S. -> us), articles dropped, spaces collapsed.
    assert answer_tokens("  The U.S.  Army, an  army!") == ["us", "army", "army"]
    # "a"/"the" inside words are not articles.
    assert answer_tokens("theatre and panda") == ["theatre", "and", "panda"]


def test_answer_tokens_count_chinese_by_character() -> None:
    assert answer_tokens("「中華民國」， 臺北") == ["中", "華", "民", "國", "臺", "北"]
    # Latin words and numbers inside Chinese stay whole.
    assert answer_tokens("蘋果的iPhone 15於2023年") == [
        "蘋", "果", "的", "iphone", "15", "於", "2023", "年",
    ]  # fmt: skip


# -------------------------------------------------------------- answer metrics


def test_exact_match() -> None:
    assert exact_match("The Eiffel Tower!", ["eiffel tower"]) == 1.0
    assert exact_match("Eiffel", ["eiffel tower"]) == 0.0
    assert exact_match("臺北 市", ["臺北市"]) == 1.0  # spaces do not count in Chinese
    assert exact_match("台北", ["臺北"]) == 0.0  # scripts are not converted
    assert exact_match("dog", ["cat", "Dog."]) == 1.0  # best over golds


def test_f1_english() -> None:
    # pred [big, red, dog] vs gold [red, dog, barked]: 2 common, P = R = 2/3.
    assert f1("the big red dog", ["a red dog barked"]) == pytest.approx(2 / 3)
    assert f1("cat", ["dog"]) == 0.0  # no overlap
    assert f1("Red dog", ["red DOG"]) == 1.0  # perfect
    # Repeats count once each: pred [dog, dog] vs [dog]: 1 common, P=1/2, R=1, F=2/3.
    assert f1("dog dog", ["dog"]) == pytest.approx(2 / 3)
    assert f1("dog", ["cat", "hot dog"]) == pytest.approx(2 / 3)  # best: P=1, R=1/2


def test_f1_chinese_by_character() -> None:
    # 中華民國 (4) vs 中華人民共和國 (7): 中華民國 common = 4, P = 1, R = 4/7,
    # F = 2 * 4/7 / (1 + 4/7) = 8/11 = 0.7273.
    assert f1("中華民國", ["中華人民共和國"]) == pytest.approx(8 / 11)
    assert f1("台北市", ["臺北"]) == pytest.approx(0.4)  # 北: P=1/3, R=1/2, F=0.4


def test_empty_predictions_and_golds() -> None:
    assert f1("", ["dog"]) == 0.0
    assert exact_match("", ["dog"]) == 0.0
    assert rouge_l("", ["dog"]) == 0.0
    assert bleu("", ["dog"]) == 0.0
    # No gold answer (SQuAD 2.0): only an empty answer is right.
    assert exact_match("", []) == 1.0
    assert f1("", []) == 1.0
    assert f1("dog", []) == 0.0
    assert f1("the", ["dog"]) == 0.0  # normalises to nothing


def test_rouge_l_rewards_order() -> None:
    # Lin (2004): gold [police, killed, gunman]; pred [police, kill, gunman]:
    # LCS 2, P = R = 2/3.
    assert rouge_l("police kill the gunman", ["police killed the gunman"]) == pytest.approx(2 / 3)
    # pred [gunman, kill, police]: LCS 1, P = R = 1/3, where bag-of-words F1 is 2/3.
    assert rouge_l("the gunman kill police", ["police killed the gunman"]) == pytest.approx(1 / 3)
    assert f1("the gunman kill police", ["police killed the gunman"]) == pytest.approx(2 / 3)
    # 民國中華 vs 中華民國: LCS 2 (中華), P = R = 2/4.
    assert rouge_l("民國中華", ["中華民國"]) == pytest.approx(0.5)
    assert rouge_l("中華民國", ["中華民國"]) == 1.0
    assert rouge_l("cat", ["dog"]) == 0.0


def test_bleu() -> None:
    assert bleu("eiffel tower", ["Eiffel Tower"]) == pytest.approx(1.0)
    # One token, so only unigrams: p1 = 1, BP = exp(1 - 2/1) = 0.36788.
    assert bleu("eiffel", ["eiffel tower"]) == pytest.approx(math.exp(-1))
    # [red, dog, barked, loudly] vs [red, dog, barked]: p1 = 3/4, p2 = 2/3, p3 = 1/2,
    # p4 = 0 -> 0.1/1 smoothed; no brevity penalty. (0.75*0.6667*0.5*0.1)^(1/4)
    # = 0.025^(1/4) = 0.39764.
    assert bleu("red dog barked loudly", ["red dog barked"]) == pytest.approx(0.39764, abs=1e-5)
    # 台北市 vs 台北: p1 = 2/3, p2 = 1/2, p3 = 0.1/1. (1/30)^(1/3) = 0.32183.
    assert bleu("台北市", ["台北"]) == pytest.approx(0.32183, abs=1e-5)
    assert bleu("cat", ["dog"]) == 0.0  # no unigram in common: 0, not smoothed
    assert bleu("cat", ["dog", "cat"]) == 1.0  # best over golds


def test_answer_metrics_averages() -> None:
    metrics = answer_metrics(
        ["Eiffel Tower", "the big red dog", ""],
        [["The Eiffel Tower"], ["a red dog barked"], ["cat"]],
    )
    assert set(metrics) == {"exact_match", "f1", "rouge_l", "bleu"}
    assert metrics["exact_match"] == pytest.approx(1 / 3)  # (1 + 0 + 0) / 3
    assert metrics["f1"] == pytest.approx((1 + 2 / 3 + 0) / 3)  # 0.5556
    # [big, red, dog] vs [red, dog, barked]: LCS 2 (red dog), P = R = 2/3.
    assert metrics["rouge_l"] == pytest.approx((1 + 2 / 3 + 0) / 3)
    # Second: p1 = 2/3, p2 = 1/2 (red dog), p3 = 0.1/1; BP = 1 (equal lengths).
    # (2/3 * 1/2 * 0.1)^(1/3) = 0.32183; (1 + 0.32183 + 0) / 3 = 0.44061.
    assert metrics["bleu"] == pytest.approx(0.44061, abs=1e-5)


def test_answer_metrics_rejects_empty_or_mismatched_input() -> None:
    with pytest.raises(ValueError, match="no answers"):
        answer_metrics([], [])
    with pytest.raises(ValueError, match="2 predictions but 1"):
        answer_metrics(["a", "b"], [["a"]])
