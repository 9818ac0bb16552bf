"""The default embedding model, multilingual-e5-small, over the whole shared DRCD set.

Every paragraph is ingested into a real knowledge base on disk, through the default
path (the converted model, int8 ONNX batches), and every question is asked. Floors sit
a little under what ``ragqa eval`` measured (README: dense recall@5 0.941, hybrid
0.9963 and recall@1 0.9594); all-MiniLM-L6-v2 had dense recall@5 0.233 here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from ragqa import KnowledgeBase, Settings
from ragqa.embeddings.e5 import E5_MODEL_NAME
from ragqa.eval_runner import run_eval

pytestmark = [pytest.mark.e2e, pytest.mark.shared_data]

FLOORS = {
    "dense": {"recall@5": 0.92, "recall@1": 0.75},
    "hybrid": {"recall@5": 0.99, "recall@1": 0.945},
}


@pytest.fixture(scope="module")
def drcd_kb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("drcd") / "kb"


@pytest.mark.parametrize("mode", ["hybrid", "dense"])
def test_default_model_on_all_of_drcd(shared_data: Path, drcd_kb: Path, mode: str) -> None:
    settings = Settings.from_env()
    assert settings.embedding_model == E5_MODEL_NAME  # the default, not a choice here
    metrics = run_eval(
        shared_data / "drcd_dev.json",
        settings=settings,
        kb_dir=drcd_kb,  # built by the first mode, reused by the second
        mode=mode,
        show_progress=False,
    )
    assert metrics["questions"] >= 3000
    for name, floor in FLOORS[mode].items():
        assert metrics[name] >= floor, (mode, metrics)
    with KnowledgeBase.open(drcd_kb) as kb:
        assert kb.manifest.embedding_model == E5_MODEL_NAME
        assert kb.manifest.dimension == 384
        assert len(kb) >= 1000
