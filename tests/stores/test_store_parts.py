"""The store's parts (catalog, layout, locks, ivf): their worked examples run, and
what the local store relies on them for holds."""

from __future__ import annotations

import doctest
import sqlite3
from pathlib import Path

import pytest

from ragqa.errors import IndexCorruptError
from ragqa.stores import catalog, ivf, layout, locks


@pytest.mark.parametrize("module", [catalog, ivf, layout, locks], ids=lambda m: m.__name__)
def test_worked_examples_run(module) -> None:
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


def test_a_damaged_catalog_is_reported_with_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / layout.CATALOG
    conn = catalog.connect_catalog(path)
    conn.executescript(catalog.SCHEMA)
    conn.executemany("INSERT INTO meta VALUES (?, ?)", [(str(i), "x" * 500) for i in range(200)])
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    # The header and schema page stay; the pages of the rows are overwritten, so
    # the file opens and the damage shows at the statement that reads them.
    data = bytearray(path.read_bytes())
    data[8192:] = b"\xff" * (len(data) - 8192)
    path.write_bytes(bytes(data))
    conn = catalog.connect_catalog(path)
    with pytest.raises(IndexCorruptError, match="is damaged .* rebuild the knowledge base"):
        conn.execute("SELECT * FROM meta").fetchall()
    conn.close()


def test_migrate_adds_the_columns_an_older_catalog_lacks(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "old.sqlite")
    conn.executescript(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "INSERT INTO meta VALUES ('generation', '7');"
        "CREATE TABLE documents (id INTEGER PRIMARY KEY, source TEXT, content_hash TEXT,"
        " pages INTEGER, chunks INTEGER, added_at REAL);"
        "CREATE TABLE chunks (id INTEGER PRIMARY KEY, doc_id INTEGER, page INTEGER,"
        ' start INTEGER, "end" INTEGER, text TEXT, text_hash TEXT, tokens TEXT, vector BLOB);'
    )
    catalog.migrate(conn)
    for column in ("unknown", "generation", "heading", "index_hash"):
        assert catalog.has_column(conn, "chunks", column)
    # The change log starts at the generation the catalog had.
    assert conn.execute("SELECT value FROM meta WHERE key = 'log_since'").fetchone() == ("7",)


def test_a_checkpoint_whose_files_changed_does_not_match(tmp_path: Path) -> None:
    (tmp_path / layout.VECTORS).write_bytes(b"one")
    recorded = layout.file_identities(tmp_path, [layout.VECTORS])
    assert layout.files_match(tmp_path, recorded)
    (tmp_path / layout.VECTORS).write_bytes(b"other file")
    assert not layout.files_match(tmp_path, recorded)
    assert not layout.files_match(tmp_path, {})  # nothing recorded: nothing to trust


def test_a_damaged_manifest_reads_as_none_and_its_checkpoint_as_empty(tmp_path: Path) -> None:
    (tmp_path / layout.MANIFEST).write_text("{not json", encoding="utf-8")
    assert layout.read_manifest(tmp_path) is None
    assert layout.read_checkpoint(tmp_path) == {}
    assert layout.read_manifest(tmp_path / "missing") is None


def test_a_held_writer_lock_makes_another_writer_busy(tmp_path: Path) -> None:
    with locks.directory_lock(tmp_path, timeout=1):
        # filelock is re-entrant within one process, so the second holder is a new
        # lock object on a different thread's behalf: ask from a child process.
        import subprocess
        import sys

        code = (
            "import sys; from pathlib import Path; from ragqa.stores.locks import directory_lock\n"
            "from ragqa.errors import KnowledgeBaseBusyError\n"
            "try:\n"
            "    with directory_lock(Path(sys.argv[1]), timeout=0.2): sys.exit(0)\n"
            "except KnowledgeBaseBusyError as e:\n"
            "    print(e); sys.exit(3)\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True
        )
    assert done.returncode == 3, done.stderr
    assert "is busy" in done.stdout


def test_ivf_search_settings_follow_the_number_of_lists() -> None:
    class Index:  # what configure() reads and sets of a FAISS IVF index
        nlist = 1024
        nprobe = 1

    index = Index()
    ivf.configure(index)
    assert index.nprobe == 1024 // 8
    small = Index()
    small.nlist = 40
    ivf.configure(small)
    assert small.nprobe == 32  # at least IVF_NPROBE_MIN, at most every list
