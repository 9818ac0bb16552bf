"""``ragqa eval`` gives the same recall on Milvus Lite as on the embedded store.

A sample of each shared QA set (its first paragraphs, with their questions) is
written as a SQuAD-format file and evaluated twice with the bundled model: into a
local knowledge base and into Milvus Lite. Milvus scores BM25 itself (over ragqa's
terms, with statistics per segment), so rankings may differ in near-ties; recall
must agree within 0.01. ``bench``-scale figures on the full sets are in the README.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ragqa import Settings
from ragqa.eval_runner import run_eval

pytestmark = [pytest.mark.e2e, pytest.mark.shared_data, pytest.mark.timeout(1200)]
pytest.importorskip("milvus_lite", reason="milvus-lite is not installed")

REPO = Path(__file__).resolve().parents[2]
SETS = ("drcd_dev.json", "squad_dev_v1.1_articles_01-12.json")
PARAGRAPHS = 150


def _sample(source: Path, target: Path) -> Path:
    data = json.loads(source.read_text(encoding="utf-8"))["data"]
    kept, count = [], 0
    for article in data:
        paragraphs = article["paragraphs"][: PARAGRAPHS - count]
        kept.append({"title": article["title"], "paragraphs": paragraphs})
        count += len(paragraphs)
        if count >= PARAGRAPHS:
            break
    target.write_text(json.dumps({"data": kept}, ensure_ascii=False), encoding="utf-8")
    return target


@pytest.mark.parametrize("name", SETS)
def test_recall_agrees_within_a_hundredth(name, tmp_path):
    data = Path(os.environ.get("SHARED_DATA_DIR") or REPO.parent / "shared" / "data")
    if not (data / name).exists():
        pytest.skip(f"{data / name} not found (set SHARED_DATA_DIR)")
    dataset = _sample(data / name, tmp_path / name)
    settings = Settings(data_dir=str(tmp_path / "data"))
    local = run_eval(dataset, settings=settings, kb_dir=tmp_path / "local", show_progress=False)
    milvus = run_eval(
        dataset, settings=settings, kb_dir=f"milvus://{tmp_path / 'eval.db'}", show_progress=False
    )
    assert local["questions"] == milvus["questions"] > 300
    for key in ("recall@1", "recall@5", "recall@10"):
        assert abs(local[key] - milvus[key]) <= 0.01, (key, local, milvus)
    assert milvus["recall@5"] > 0.9, milvus  # a real search, not two agreeing failures
