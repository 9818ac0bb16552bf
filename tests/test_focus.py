"""Tests for ragqa.focus and the retriever's small-to-big stage."""

from __future__ import annotations

from ragqa.focus import QueryTerms, focus, match_text
from ragqa.types import Hit


def hit(text: str, heading: str = "", chunk_id: int = 0) -> Hit:
    return Hit(text, 1.0, "notes.txt", 1, 0, len(text), chunk_id, heading=heading)


def test_terms_match_across_scripts_and_at_word_starts() -> None:
    terms = QueryTerms("預訓練 tea")
    assert "训练" in terms.found(match_text("预训练"))
    assert "tea" in terms.found(match_text("Teas are old"))
    assert "tea" not in terms.found(match_text("instead"))  # not inside a word


def test_the_unit_that_answers_wins_inside_a_chunk() -> None:
    text = (
        "- GPT-1预训练任务?答案:无监督的预训练和有监督任务的微调\n"
        "- T5的预训练任务?答案:采用类似于BERT模型的MLM预训练任务\n"
        "- BERT的预训练任务?答案:MLM 和 NSP"
    )
    (units,) = focus("BERT 的预训练任务", [hit(text)])
    assert text[units[0].start : units[0].end].endswith("MLM 和 NSP")


def test_a_heading_counts_for_the_units_under_it() -> None:
    a = hit("- 预训练:MLM 和 NSP", heading="BERT", chunk_id=1)
    b = hit("- 预训练:自回归语言模型", heading="GPT", chunk_id=2)
    scores = [units[0].score for units in focus("BERT 预训练", [b, a])]
    assert scores[1] > scores[0]


def test_no_terms_no_focus() -> None:
    assert focus("the of", [hit("anything")]) == [[]]


def test_the_retriever_ranks_the_chunk_with_the_answering_line_first(make_kb) -> None:
    # A is ranked first as a whole chunk (it mentions BERT in every item), but only
    # B has a line that answers; the unit stage puts B first and says where.
    from ragqa.retrieval import _Query

    kb = make_kb()
    a = "\n".join(f"- BERT 的第{i}个特点" for i in range(5))
    b = "- 其他模型\n- BERT 的预训练任务:MLM 和 NSP"
    hits = [
        Hit(a, 0.9, "a.txt", 1, 0, len(a), 101),
        Hit(b, 0.7, "b.txt", 1, 0, len(b), 102),
    ]
    query = _Query("BERT 的预训练任务", kb.embedder)
    ranked = kb._retriever._focus(query, hits, 0.3)
    assert [h.source for h in ranked] == ["b.txt", "a.txt"]
    assert b[slice(*ranked[0].focus[0])] == "- BERT 的预训练任务:MLM 和 NSP"
    # With no weight the order stays, and the focus is still found.
    kept = kb._retriever._focus(query, hits, 0.0)
    assert [h.source for h in kept] == ["a.txt", "b.txt"] and kept[1].focus
