"""The batch script in ingest/: incremental, prunes, reports."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from ragqa import KnowledgeBase

SCRIPT = Path(__file__).resolve().parents[1] / "ingest" / "ingest_folder.py"


@pytest.fixture
def ingest_folder(monkeypatch):
    monkeypatch.setenv("RAGQA_EMBEDDING_MODEL", "hashing:64")
    spec = importlib.util.spec_from_file_location("ingest_folder", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def test_incremental_runs_and_prune(ingest_folder, write_text, tmp_path, capsys):
    kb = tmp_path / "kb"
    a = write_text("a.md", "Alpha is the first letter of the Greek alphabet.")
    write_text("sub/b.md", "Beta is the second letter. It follows alpha.")
    report_path = tmp_path / "report.json"

    assert ingest_folder([str(a.parent), "--kb", str(kb), "--quiet"]) == 0
    assert "2 added" in capsys.readouterr().out

    write_text("sub/b.md", "Beta changed: it is still the second letter.")
    write_text("c.txt", "Gamma is the third letter.")
    a.unlink()
    code = ingest_folder(
        [str(a.parent), "--kb", str(kb), "--quiet", "--prune", "--report", str(report_path)]
    )
    assert code == 0
    report = json.loads(report_path.read_text())
    assert (report["added"], report["replaced"], report["unchanged"]) == (1, 1, 0)
    assert [Path(p).name for p in report["removed"]] == ["a.md"]
    with KnowledgeBase.open(kb) as opened:
        assert sorted(Path(d.source).name for d in opened.documents()) == ["b.md", "c.txt"]


def test_missing_folder_is_an_error(ingest_folder, tmp_path, capsys):
    assert ingest_folder([str(tmp_path / "nope"), "--kb", str(tmp_path / "kb")]) == 1
    assert "is not a folder" in capsys.readouterr().err
