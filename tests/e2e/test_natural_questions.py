"""Natural questions through the real CLI, with the bundled model and the shared data.

``bench/data/natural_questions.json`` holds questions asked the way users ask them
(paraphrases, synonyms, keywords, follow-ups, unanswerable ones), each with key facts
copied from the documents. Twelve of its Chinese questions about the study notes go
through ``ragqa ingest`` and ``ragqa ask --json``: the answer must contain a key fact
and cite the question's file. They are every fourth of the notes questions ragqa
answered when they were chosen, so the test guards what works; how much of the
whole set works is the next test's business: ``ragqa eval`` over all of it must stay
above the floors measured then, and it prints how far each question falls short of
the issue's targets (not met yet; CI counts an expected failure as a skip, and a skip
as a failure). The held-out set beside it is never read by tests.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import run_ragqa as _ragqa

from ragqa.answering import strip_citations
from ragqa.natural_eval import contains_fact

pytestmark = [pytest.mark.e2e, pytest.mark.shared_data, pytest.mark.timeout(1800)]

REPO = Path(__file__).resolve().parents[2]
DATASET = REPO / "bench" / "data" / "natural_questions.json"
# Every fourth of the 47 Chinese notes questions answered (key fact and file) with
# multilingual-e5-small as the default, `ragqa eval ... --details`. Chosen again when
# the default model changed: under MiniLM the set had been every fourth of that
# model's answers.
ASKED = ("zh-004", "zh-013", "zh-022", "zh-028", "zh-034", "zh-044")
ASKED += ("zh-048", "zh-057", "zh-064", "zh-077", "zh-084", "zh-089")
# The targets, not met yet (see the README's natural-question table).
TARGETS = {"key_fact_in_answer": 0.90, "right_file_cited": 0.95, "abstained": 1.0}
# What the whole set measured when this was written (0.598, 0.787, 0.778 with the
# answerer scoring units by meaning too), less a margin for machines that embed in
# another precision (one unanswerable question is 0.111).
FLOORS = {"key_fact_in_answer": 0.57, "right_file_cited": 0.74, "abstained": 0.66}


def _chosen_questions() -> list[dict[str, Any]]:
    if not DATASET.is_file():
        return []
    questions = json.loads(DATASET.read_text(encoding="utf-8"))["questions"]
    return [q for q in questions if q["id"] in ASKED]


CHOSEN = _chosen_questions()


@pytest.fixture(scope="module")
def notes_kb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = Path(os.environ.get("SHARED_DATA_DIR") or REPO.parent / "shared" / "data")
    notes = data / "notes"
    if not notes.is_dir():
        pytest.skip(f"{notes} not found (set SHARED_DATA_DIR)")
    kb = tmp_path_factory.mktemp("natural") / "kb"
    result = _ragqa("ingest", str(notes), "--kb", str(kb), "--quiet")
    assert result.returncode == 0, result.stderr
    return kb


def test_enough_questions_are_chosen():
    assert DATASET.is_file(), f"{DATASET} is missing"
    assert len(CHOSEN) == len(ASKED), (
        f"only {len(CHOSEN)} Chinese notes questions in {DATASET.name}"
    )


@pytest.mark.parametrize("question", CHOSEN, ids=[q["id"] for q in CHOSEN])
def test_ask_answers_from_the_right_note(notes_kb: Path, question: dict[str, Any]):
    result = _ragqa("ask", question["question"], "--kb", str(notes_kb), "--json")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    cited = [c["file_name"] for c in answer["citations"]]
    wanted = Path(question["file"]).name
    problems = []
    if not contains_fact(strip_citations(answer["answer"]), question["key_facts"]):
        problems.append(f"no key fact {question['key_facts']} in the answer")
    if wanted not in cited:
        problems.append(f"{wanted} not cited")
    assert not problems, (
        f"{question['id']} {question['question']!r}: {'; '.join(problems)}\n"
        f"  answer: {answer['answer']!r}\n  cited: {cited}"
    )


@pytest.fixture(scope="module")
def dev_metrics(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    data = Path(os.environ.get("SHARED_DATA_DIR") or REPO.parent / "shared" / "data")
    if not data.is_dir():
        pytest.skip(f"{data} not found (set SHARED_DATA_DIR)")
    details = tmp_path_factory.mktemp("natural-eval") / "details.jsonl"
    args = ["eval", str(DATASET), "--json", "--details", str(details)]
    if data.resolve() != (REPO.parent / "shared" / "data").resolve():
        args += ["--docs", str(data)]  # SHARED_DATA_DIR points elsewhere
    result = _ragqa(*args, timeout=1700)
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)
    assert metrics["failed_documents"] == [], metrics["failed_documents"]
    return metrics, details


def test_eval_stays_above_its_floors(dev_metrics):
    metrics, details = dev_metrics
    _print_misses(metrics, details)  # how far from the targets, question by question
    low = {key: metrics[key] for key, floor in FLOORS.items() if metrics[key] < floor}
    assert not low, f"below the floors {FLOORS}: {low}"


def _print_misses(metrics: dict[str, Any], details: Path) -> None:
    short = {key: value for key, value in metrics.items() if key not in ("by_lang", "by_kind")}
    print(json.dumps(short, ensure_ascii=False))
    missed = {key: metrics[key] for key, target in TARGETS.items() if metrics[key] < target}
    if missed:
        failures = []
        for line in details.read_text(encoding="utf-8").splitlines():
            outcome = json.loads(line)
            failed = [k for k in ("key_fact_in_answer", "right_file_cited") if outcome[k] is False]
            if outcome["key_fact_in_answer"] is None and not outcome["abstained"]:
                failed = ["abstained"]
            if failed:
                failures.append(
                    f"  {outcome['id']} ({outcome['kind']}) {outcome['question']!r}: failed "
                    f"{', '.join(failed)}; cited {outcome['cited']}; "
                    f"answer {outcome['answer'][:120]!r}"
                )
        print(f"below the targets {TARGETS}: {missed}\n" + "\n".join(failures))
