"""The catalog: the SQLite database that holds a local knowledge base's truth.

Documents, chunks (text, offsets, lexical tokens, vectors), page texts and the
change log live here (the schema is :data:`SCHEMA`); the FAISS and BM25 files are
derived from it (:mod:`ragqa.stores.local`). A connection from
:func:`connect_catalog` reports a damaged file as :class:`IndexCorruptError`, with
what to do, at whichever statement first reads the damage.

Example:
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     conn = connect_catalog(pathlib.Path(tmp) / "catalog.sqlite")
    ...     _ = conn.executescript(SCHEMA)
    ...     has_column(conn, "chunks", "heading")
    ...     conn.close()
    True
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from ragqa.errors import IndexCorruptError

__all__ = ["SCHEMA", "connect_catalog", "has_column", "migrate"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    source TEXT NOT NULL UNIQUE,
    content_hash TEXT NOT NULL,
    pages INTEGER NOT NULL,
    chunks INTEGER NOT NULL,
    added_at REAL NOT NULL
);
-- AUTOINCREMENT: a chunk id is never reused, so a stale FAISS file can never point
-- an old id at new text.
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    doc_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    page INTEGER NOT NULL,
    start INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    text TEXT NOT NULL,
    text_hash TEXT NOT NULL,
    tokens TEXT NOT NULL,
    vector BLOB NOT NULL,
    unknown REAL,  -- the share of [UNK] tokens; NULL when the embedder cannot tell
    generation INTEGER NOT NULL DEFAULT 0,  -- of the commit that stored the chunk
    heading TEXT,  -- the path of headings above the chunk (ragqa.structure)
    index_hash TEXT  -- text_hash of what was embedded (Chunk.index_text); NULL: text
);
CREATE INDEX IF NOT EXISTS chunks_by_doc ON chunks(doc_id);
-- The change log's other half: which chunks each commit deleted (see the module
-- notes). Rows older than the latest checkpoint are pruned; meta.log_since says
-- from which generation on the log is complete.
CREATE TABLE IF NOT EXISTS deleted_chunks (
    id INTEGER PRIMARY KEY,
    added INTEGER NOT NULL,
    removed INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS deleted_by_generation ON deleted_chunks(removed);
-- The normalised text of every page, so that a UI can show a chunk in its page
-- (chunk offsets point into this text).
CREATE TABLE IF NOT EXISTS pages (
    doc_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    page INTEGER NOT NULL,
    text TEXT NOT NULL,
    PRIMARY KEY (doc_id, page)
);
CREATE INDEX IF NOT EXISTS chunks_by_text_hash ON chunks(text_hash);
"""


def connect_catalog(path: Path) -> sqlite3.Connection:
    try:
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, so a transaction
        # spans exactly one logical change. check_same_thread=False because
        # Streamlit calls from several threads; LocalStore serialises access.
        conn = sqlite3.connect(
            path,
            isolation_level=None,
            check_same_thread=False,
            timeout=30,
            factory=_CatalogConnection,
        )
        conn.execute("PRAGMA journal_mode=WAL")  # readers keep reading while one writes
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
    except sqlite3.DatabaseError as exc:
        raise IndexCorruptError(
            f"{path} is not a readable catalog ({exc}). Restore it from a backup, or "
            f"rebuild the knowledge base: `ragqa ingest SOURCES --kb NEW_DIR`"
        ) from None
    return conn


def migrate(conn: sqlite3.Connection) -> None:
    """Bring an older catalog's schema up to this version's (a writer's job).

    Added columns are NULL or 0 in old rows. The change log starts at the
    generation the catalog has now: older checkpoints are rebuilt, once.
    """
    conn.executescript(SCHEMA)  # tables this version introduced
    if not has_column(conn, "chunks", "unknown"):
        conn.execute("ALTER TABLE chunks ADD COLUMN unknown REAL")
    if not has_column(conn, "chunks", "generation"):
        conn.execute("ALTER TABLE chunks ADD COLUMN generation INTEGER NOT NULL DEFAULT 0")
    if not has_column(conn, "chunks", "heading"):
        conn.execute("ALTER TABLE chunks ADD COLUMN heading TEXT")
    if not has_column(conn, "chunks", "index_hash"):
        conn.execute("ALTER TABLE chunks ADD COLUMN index_hash TEXT")
    conn.execute("CREATE INDEX IF NOT EXISTS chunks_by_index_hash ON chunks(index_hash)")
    conn.execute("CREATE INDEX IF NOT EXISTS chunks_by_generation ON chunks(generation)")
    conn.execute(
        "INSERT OR IGNORE INTO meta(key, value) "
        "SELECT 'log_since', value FROM meta WHERE key = 'generation'"
    )


def has_column(conn: sqlite3.Connection, table: str, column: str) -> bool:
    return any(row[1] == column for row in conn.execute(f"PRAGMA table_info({table})"))


# SQLite's result codes for a damaged file (the low byte of an extended code).
_DAMAGE_CODES = frozenset({sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB})


class _CatalogConnection(sqlite3.Connection):
    """A connection whose statements report a damaged catalog as IndexCorruptError.

    SQLite only notices a damaged page when a statement reads it, which may be
    long after the open (a search touching one chunk). Without this, that surfaces
    as ``sqlite3.DatabaseError: database disk image is malformed`` and a traceback
    instead of a message that says what to do.
    """

    def __init__(self, database: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(database, *args, **kwargs)
        self.path = database

    def cursor(self, factory: Any = None) -> Any:
        return super().cursor(factory or _CatalogCursor)

    # Connection.execute does not go through cursor(), so these three must.
    def execute(self, *args: Any) -> Any:
        return self.cursor().execute(*args)

    def executemany(self, *args: Any) -> Any:
        return self.cursor().executemany(*args)

    def executescript(self, *args: Any) -> Any:
        return self.cursor().executescript(*args)


class _CatalogCursor(sqlite3.Cursor):
    """Every call that may read a page turns damage into IndexCorruptError."""

    def _checked(self, method: Any, *args: Any) -> Any:
        try:
            return method(*args)
        except sqlite3.DatabaseError as exc:
            if getattr(exc, "sqlite_errorcode", 0) & 0xFF not in _DAMAGE_CODES:
                raise
            raise IndexCorruptError(
                f"{self.connection.path} is damaged ({exc}). Restore it from a backup, or "
                "rebuild the knowledge base: `ragqa ingest SOURCES --kb NEW_DIR`"
            ) from None

    def execute(self, *args: Any) -> Any:
        return self._checked(super().execute, *args)

    def executemany(self, *args: Any) -> Any:
        return self._checked(super().executemany, *args)

    def executescript(self, *args: Any) -> Any:
        return self._checked(super().executescript, *args)

    def fetchone(self) -> Any:
        return self._checked(super().fetchone)

    def fetchmany(self, *args: Any) -> Any:
        return self._checked(super().fetchmany, *args)

    def fetchall(self) -> Any:
        return self._checked(super().fetchall)

    def __next__(self) -> Any:
        return self._checked(super().__next__)
