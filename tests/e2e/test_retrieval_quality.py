"""Retrieval quality with the real bundled model on samples of the shared sets.

Half of each set's paragraphs (chosen by a hash of their id) is indexed, and
up to 300 of their held-out questions (the ``holdout`` half, never used to choose
parameters) are asked in every mode. Hybrid search must do at least as well as
either single mode, and come near the issue's recall@5 targets (0.97 Chinese,
0.93 English). A smaller corpus has fewer distractors than the full sets, so the
margins below are small; ``bench/retrieval.py`` measures the full sets.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from ragqa import KnowledgeBase, Settings
from ragqa.eval_runner import in_subset
from ragqa.evaluation import load_squad, retrieval_metrics

pytestmark = [pytest.mark.e2e, pytest.mark.shared_data]

SETS = {
    # file, recall@5 target, recall@1 target
    "zh": ("drcd_dev.json", 0.97, 0.85),
    "en": ("squad_dev_v1.1_articles_01-12.json", 0.93, 0.75),
}
MAX_QUESTIONS = 300
REPO = Path(__file__).resolve().parents[2]


def _sampled(paragraph_id: str) -> bool:
    return hashlib.blake2b(paragraph_id.encode("utf-8"), digest_size=1).digest()[0] % 2 == 0


@pytest.fixture(scope="module", params=sorted(SETS))
def measured(request, tmp_path_factory) -> tuple[str, dict[str, dict[str, float]]]:
    language = request.param
    data = Path(os.environ.get("SHARED_DATA_DIR") or REPO.parent / "shared" / "data")
    path = data / SETS[language][0]
    if not path.exists():
        pytest.skip(f"{path} not found (set SHARED_DATA_DIR)")
    squad = load_squad(path)
    paragraphs = [p for p in squad.paragraphs if _sampled(p.id)]
    kept = {p.id for p in paragraphs}
    questions = [
        q for q in squad.questions if q.paragraph_id in kept and in_subset(q.id, "holdout")
    ][:MAX_QUESTIONS]
    directory = tmp_path_factory.mktemp(f"kb-{language}")
    results: dict[str, dict[str, float]] = {}
    with KnowledgeBase.create(directory, settings=Settings()) as kb:
        kb.add_texts([(p.id, p.context) for p in paragraphs])
        for mode in ("dense", "lexical", "hybrid"):
            ranked = [[h.source for h in kb.search(q.question, k=10, mode=mode)] for q in questions]
            gold = [q.paragraph_id for q in questions]
            results[mode] = retrieval_metrics(ranked, gold, [0.0] * len(gold))
    return language, results


def test_hybrid_beats_both_single_modes(measured):
    language, results = measured
    hybrid = results["hybrid"]["recall@5"]
    assert hybrid >= results["dense"]["recall@5"], (language, results)
    assert hybrid >= results["lexical"]["recall@5"], (language, results)
    assert results["hybrid"]["mrr@10"] >= results["dense"]["mrr@10"], (language, results)


def test_hybrid_is_near_the_targets(measured):
    language, results = measured
    _, recall5_target, recall1_target = SETS[language]
    assert results["hybrid"]["recall@5"] >= recall5_target - 0.01, results["hybrid"]
    assert results["hybrid"]["recall@1"] >= recall1_target - 0.02, results["hybrid"]


def test_sample_is_big_enough(measured):
    _, results = measured
    assert results["hybrid"]["questions"] >= 200
