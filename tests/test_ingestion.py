"""ragqa.ingestion: the store-free steps of an ingest, shared by local and Ray ingests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ragqa import Settings
from ragqa.ingestion import PreparedDocument, read_file, source_key
from ragqa.types import DocumentInfo, FileResult


@pytest.fixture
def note(tmp_path: Path) -> Path:
    path = tmp_path / "note.md"
    path.write_text(
        "Oolong tea is partly oxidised in Taiwan.\n\nGreen tea is not oxidised at all.",
        encoding="utf-8",
    )
    return path


def test_a_new_file_is_read_and_split(note):
    doc = read_file(note, Settings(chunk_size=50, chunk_overlap=0))
    assert isinstance(doc, PreparedDocument)
    assert doc.source == source_key(note) and doc.pages == 1 and doc.vectors is None
    assert [c.text for c in doc.chunks] == [
        "Oolong tea is partly oxidised in Taiwan.",
        "Green tea is not oxidised at all.",
    ]
    assert doc.page_texts == ((1, note.read_text(encoding="utf-8")),)


def test_an_unchanged_file_is_not_read_beyond_its_hash(note, monkeypatch):
    doc = read_file(note, Settings())
    stored = DocumentInfo(doc.source, doc.content_hash, 1, len(doc.chunks), 0.0)
    import ragqa.loaders

    monkeypatch.setattr(ragqa.loaders, "load_document", lambda *a, **k: pytest.fail("read"))
    outcome = read_file(note, Settings(), stored=stored)
    assert outcome == FileResult(doc.source, "unchanged", len(doc.chunks), 1)


def test_bad_files_become_failed_results_not_exceptions(tmp_path, note):
    missing = read_file(tmp_path / "gone.md", Settings())
    assert isinstance(missing, FileResult) and missing.reason == "io"
    empty = tmp_path / "empty.md"
    empty.write_text("", encoding="utf-8")
    assert read_file(empty, Settings()).status == "failed"


def test_with_vectors_checks_the_count(note):
    doc = read_file(note, Settings())
    assert doc.with_vectors(np.zeros((len(doc.chunks), 4))).vectors.dtype == np.float32
    with pytest.raises(ValueError, match="chunks"):
        doc.with_vectors(np.zeros((len(doc.chunks) + 1, 4)))
