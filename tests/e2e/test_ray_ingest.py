"""Distributed ingestion with Ray Data gives what a single-process ingest gives.

A local Ray instance with 2 CPUs is started here. A folder of real text (SQuAD and
DRCD paragraphs as Markdown files, and a real PDF) is ingested with the bundled
embedding model once by ``KnowledgeBase.add`` in this process, and once by
``ingest/ray_ingest.py`` into each store backend (the embedded one and Milvus Lite).
Both must hold the same documents with the same chunk counts and return the same
hits for a fixed set of questions; a second run must find everything unchanged.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from ragqa import KnowledgeBase, Settings

pytestmark = [pytest.mark.e2e, pytest.mark.shared_data, pytest.mark.timeout(900)]

ray = pytest.importorskip("ray", reason="ray[data] is not installed")
REPO = Path(__file__).resolve().parents[2]
PARAGRAPHS_PER_SET = 24
# Hit-by-hit equality needs vectors that do not depend on how chunks were batched,
# and the two ingests batch differently. In float32 they agree to 1e-5; bfloat16
# rounds each batch's padding differently (a cosine of 0.9999), enough to swap two
# near-tied hits. So both ingests here embed in float32; the Ray actors get it from
# the shipped settings, and if they did not, their vectors would not match.
PRECISION = "float32"


def _script():
    spec = importlib.util.spec_from_file_location("ray_ingest", REPO / "ingest" / "ray_ingest.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["ray_ingest"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, shared_data_module) -> tuple[Path, list[str]]:
    folder = tmp_path_factory.mktemp("corpus")
    questions = []
    for name in ("squad_dev_v1.1_articles_01-12.json", "drcd_dev.json"):
        data = json.loads((shared_data_module / name).read_text(encoding="utf-8"))["data"]
        paragraphs = [p for article in data for p in article["paragraphs"]][:PARAGRAPHS_PER_SET]
        for n, paragraph in enumerate(paragraphs):
            sub = folder / Path(name).stem / f"{n // 8}"
            sub.mkdir(parents=True, exist_ok=True)
            (sub / f"p{n:02d}.md").write_text(paragraph["context"], encoding="utf-8")
        questions += [p["qas"][0]["question"] for p in paragraphs[::4]]
    shutil.copy(shared_data_module / "pdfs" / "samplefiles__multicolumn.pdf", folder)
    questions.append("Two-column document with Lorem Ipsum")
    return folder, questions


@pytest.fixture(scope="module")
def shared_data_module():
    # Module-scoped, unlike conftest's shared_data; a skip still fails in CI.
    path = Path(os.environ.get("SHARED_DATA_DIR") or REPO.parent / "shared" / "data")
    if not path.is_dir():
        pytest.skip(f"shared data not found at {path} (set SHARED_DATA_DIR)")
    return path


@pytest.fixture(scope="module", params=["local", "milvus"])
def backend(request, tmp_path_factory) -> tuple[str, Callable[[str], str]]:
    """A store backend, and how to name a fresh knowledge base in it."""
    root = tmp_path_factory.mktemp(request.param)
    if request.param == "local":
        return "local", lambda name: str(root / name)
    pytest.importorskip("milvus_lite", reason="milvus-lite is not installed")
    return "milvus", lambda name: f"milvus://{root / name}.db"


@pytest.fixture(scope="module")
def reference(corpus, backend):
    """A single-process ingest of the corpus into the same backend."""
    folder, questions = corpus
    settings = Settings(embedding_precision=PRECISION)
    with KnowledgeBase.create(backend[1]("single"), settings=settings) as kb:
        report = kb.add([folder])
        assert report.failed == 0, report
        return _snapshot(kb, questions)


def _snapshot(kb: KnowledgeBase, questions: list[str]) -> dict:
    documents = [(Path(d.source).name, d.content_hash, d.pages, d.chunks) for d in kb.documents()]
    hits = {
        (q, mode): [
            (Path(h.source).name, h.page, h.start, h.end) for h in kb.search(q, k=5, mode=mode)
        ]
        for q in questions
        for mode in ("hybrid", "dense")
    }
    ids = [h.chunk_id for q in questions[:3] for h in kb.search(q, k=3, mode="dense")]
    vectors = {
        (Path(h.source).name, h.start): v
        for h, v in zip(
            kb.store.hits([(i, 0.0) for i in ids]), kb.store.vectors_by_id(ids), strict=True
        )
    }
    return {"documents": sorted(documents), "hits": hits, "vectors": vectors}


def test_ray_ingest_matches_a_single_process_ingest(
    local_ray, corpus, backend, reference, tmp_path, monkeypatch
):
    monkeypatch.setenv("RAGQA_EMBEDDING_PRECISION", PRECISION)
    folder, questions = corpus
    location = backend[1]("ray")
    main = _script().main
    report_path = tmp_path / "report.json"
    assert main([str(folder), "--store", location, "--quiet", "--report", str(report_path)]) == 0
    report = json.loads(report_path.read_text())
    assert report["added"] == len(reference["documents"]) and report["failed"] == 0

    with KnowledgeBase.open(location, settings=Settings()) as kb:
        got = _snapshot(kb, questions)
    assert got["documents"] == reference["documents"]
    assert sum(d[3] for d in got["documents"]) == sum(d[3] for d in reference["documents"])
    assert got["hits"] == reference["hits"]
    for key, vector in reference["vectors"].items():
        np.testing.assert_allclose(got["vectors"][key], vector, atol=1e-5)

    # Incremental: nothing is read again, then only the changed file is.
    assert main([str(folder), "--store", location, "--quiet", "--report", str(report_path)]) == 0
    assert json.loads(report_path.read_text())["unchanged"] == len(reference["documents"])
    changed = next(folder.rglob("p00.md"))
    original = changed.read_text(encoding="utf-8")
    try:
        changed.write_text(original + "\n\nAn added closing sentence.", encoding="utf-8")
        assert (
            main([str(folder), "--store", location, "--quiet", "--report", str(report_path)]) == 0
        )
        second = json.loads(report_path.read_text())
        assert (second["replaced"], second["added"]) == (1, 0)
    finally:
        changed.write_text(original, encoding="utf-8")


def test_prune_removes_deleted_files(local_ray, tmp_path, write_text, monkeypatch):
    monkeypatch.setenv("RAGQA_EMBEDDING_MODEL", "hashing:64")
    keep = write_text("keep.md", "Oolong tea is partly oxidised.")
    gone = write_text("sub/gone.md", "Saturn has rings of ice.")
    main = _script().main
    kb_dir = tmp_path / "kb"
    assert main([str(keep.parent), "--kb", str(kb_dir), "--quiet"]) == 0
    gone.unlink()
    assert main([str(keep.parent), "--kb", str(kb_dir), "--quiet", "--prune"]) == 0
    with KnowledgeBase.open(kb_dir) as kb:
        assert [Path(d.source).name for d in kb.documents()] == ["keep.md"]
