"""`ragqa eval` over a small hand-made SQuAD file, with the hashing embedder."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from ragqa import ConfigError, Settings
from ragqa.cli import cli
from ragqa.eval_runner import default_eval_kb_dir, in_subset, run_eval

PARAGRAPHS = {
    "tea": (
        "Oolong tea is partly oxidised. Dong Ding oolong comes from Lugu in Nantou.",
        [("Where does Dong Ding oolong come from?", "Lugu in Nantou")],
    ),
    "jupiter": (
        "Jupiter is the largest planet. Its Great Red Spot is a giant storm.",
        [("What is the Great Red Spot?", "a giant storm")],
    ),
    "茶經": ("陸羽撰寫了《茶經》，這是世界上第一部關於茶的專著。", [("誰撰寫了茶經？", "陸羽")]),
}
KEYS = {
    "recall@1",
    "recall@5",
    "recall@10",
    "mrr@10",
    "ndcg@10",
    "questions",
    "latency_ms_p50",
    "latency_ms_p95",
}


@pytest.fixture
def dataset(tmp_path):
    data = {
        "data": [
            {
                "title": "t",
                "paragraphs": [
                    {
                        "context": context,
                        "qas": [
                            {
                                "id": f"{pid}-{i}",
                                "question": q,
                                "answers": [{"text": a, "answer_start": context.find(a)}],
                            }
                            for i, (q, a) in enumerate(qas)
                        ],
                    }
                    for pid, (context, qas) in PARAGRAPHS.items()
                ],
            }
        ]
    }
    path = tmp_path / "mini.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def test_metrics_have_exactly_the_promised_keys(dataset, tmp_path):
    settings = Settings(embedding_model="hashing:64", data_dir=str(tmp_path / "data"))
    metrics = run_eval(dataset, settings=settings, mode="lexical", show_progress=False)
    assert set(metrics) == KEYS
    assert metrics["questions"] == 3
    assert metrics["recall@5"] == 1.0  # three paragraphs, five chunks: always found
    assert 0 < metrics["mrr@10"] <= 1


def test_answers_add_answer_metrics(dataset, tmp_path):
    settings = Settings(embedding_model="hashing:64", data_dir=str(tmp_path / "data"))
    metrics = run_eval(dataset, settings=settings, answers=True, show_progress=False)
    assert set(metrics) == KEYS | {"exact_match", "f1", "rouge_l", "bleu"}
    assert metrics["f1"] > 0  # the answer sentences contain the gold spans


def test_knowledge_base_is_cached_and_reused(dataset, tmp_path):
    settings = Settings(embedding_model="hashing:64", data_dir=str(tmp_path / "data"))
    run_eval(dataset, settings=settings, show_progress=False)
    kb_dir = default_eval_kb_dir(dataset, settings)
    assert (kb_dir / "manifest.json").exists()
    mtime = (kb_dir / "catalog.sqlite").stat().st_mtime_ns
    run_eval(dataset, settings=settings, show_progress=False)
    assert (kb_dir / "catalog.sqlite").stat().st_mtime_ns == mtime
    assert default_eval_kb_dir(dataset, settings.replace(chunk_size=300)) != kb_dir


def test_limit_asks_a_fixed_sample(dataset, tmp_path):
    settings = Settings(embedding_model="hashing:64", data_dir=str(tmp_path / "data"))
    assert run_eval(dataset, settings=settings, limit=2, show_progress=False)["questions"] == 2
    assert run_eval(dataset, settings=settings, limit=99, show_progress=False)["questions"] == 3
    with pytest.raises(ConfigError, match="limit must be"):
        run_eval(dataset, settings=settings, limit=0, show_progress=False)


def test_subsets_split_questions_in_two():
    ids = [f"q{i}" for i in range(400)]
    tune = {i for i in ids if in_subset(i, "tune")}
    holdout = {i for i in ids if in_subset(i, "holdout")}
    assert tune.isdisjoint(holdout) and tune | holdout == set(ids)
    assert 150 < len(tune) < 250


def test_bad_arguments(dataset, tmp_path):
    settings = Settings(embedding_model="hashing:64", data_dir=str(tmp_path / "data"))
    with pytest.raises(ConfigError, match="subset"):
        run_eval(dataset, settings=settings, subset="half", show_progress=False)
    with pytest.raises(ConfigError, match="k must be"):
        run_eval(dataset, settings=settings, k=0, show_progress=False)


def test_cli_eval_json(dataset, tmp_path, monkeypatch):
    monkeypatch.setenv("RAGQA_EMBEDDING_MODEL", "hashing:64")
    result = CliRunner().invoke(
        cli, ["eval", str(dataset), "--kb", str(tmp_path / "kb"), "--mode", "hybrid", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert set(json.loads(result.stdout)) == KEYS


def test_cli_eval_rejects_a_file_that_is_not_squad(tmp_path, monkeypatch):
    monkeypatch.setenv("RAGQA_EMBEDDING_MODEL", "hashing:64")
    bad = tmp_path / "bad.json"
    bad.write_text('{"not": "squad"}')
    result = CliRunner().invoke(cli, ["eval", str(bad)])
    assert result.exit_code == 1
    assert "bad.json" in result.output
