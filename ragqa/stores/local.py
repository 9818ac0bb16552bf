"""The embedded store: SQLite holds the truth, FAISS and BM25 are derived from it.

A knowledge-base directory looks like this::

    manifest.json    format version, embedding model, dimension, counts, generation
    catalog.sqlite   documents and chunks: text, offsets, lexical tokens, vectors
    vectors.faiss    FAISS inner-product index over the chunk vectors (derived)
    lexical.npz      BM25 index over the chunk tokens (derived)
    .lock            held by the one process that is writing

Why this split: a write must be atomic, and three files cannot be replaced in one
atomic step. SQLite can commit a transaction atomically, so every document change is
one transaction there, and the generation number in its ``meta`` table goes up by one.
The FAISS and BM25 files are rewritten afterwards (each by write-then-rename) and the
manifest, written last, records the generation they belong to. If a process dies in
between, the next open sees that the manifest's generation is behind SQLite's and
rebuilds the derived files from SQLite. Nothing committed is ever lost, and a
half-written index is never loaded.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from ragqa.errors import IndexCorruptError, IndexMismatchError, KnowledgeBaseBusyError, RagqaError
from ragqa.stores.base import FORMAT_VERSION, Manifest, NewDocument, Store, text_hash
from ragqa.types import DocumentInfo

__all__ = ["FORMAT_VERSION", "LocalStore", "Manifest", "NewDocument", "text_hash"]

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
CATALOG = "catalog.sqlite"
VECTORS = "vectors.faiss"
LEXICAL = "lexical.npz"
LOCK = ".lock"
# Creating takes a moment, but another process may hold the lock for a whole
# ingest into a knowledge base it has just created.
_CREATE_LOCK_TIMEOUT = 600.0

_SCHEMA = """
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
    unknown REAL  -- the share of [UNK] tokens; NULL when the embedder cannot tell
);
CREATE INDEX IF NOT EXISTS chunks_by_doc ON chunks(doc_id);
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


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    # The rename itself is only durable once the directory entry is on disk.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class LocalStore(Store):
    """SQLite + FAISS + BM25 in one directory. Not a public API: use KnowledgeBase.

    All methods are thread-safe (Streamlit serves sessions from threads). Writes go
    inside :meth:`writing`, which holds the directory's file lock for a whole ingest
    and writes the derived files once at its end.
    """

    lexical_engine = "ragqa BM25 (lexical.npz)"

    def __init__(self, directory: Path, manifest: Manifest, conn: sqlite3.Connection) -> None:
        self.directory = directory
        self.location = str(directory)
        self._manifest = manifest
        self._conn = conn
        self._lock = threading.RLock()
        self._index: Any = None  # faiss.IndexIDMap2
        self._lexical: Any = None  # ragqa.lexical.BM25Index
        self._loaded_generation = -1
        self._manifest_mtime = 0.0
        # True while the files on disk are behind what is loaded in memory.
        self._derived_stale_on_disk = False
        self._load_derived()

    # ------------------------------------------------------------------ opening

    @staticmethod
    def exists(directory: Path) -> bool:
        """Whether ``directory`` holds a knowledge base (complete or damaged)."""
        return (directory / CATALOG).exists() or (directory / MANIFEST).exists()

    @classmethod
    def create(cls, directory: Path, *, embedding_model: str, dimension: int) -> LocalStore:
        """Create an empty store in ``directory`` (which may exist but must be empty).

        Raises:
            RagqaError: ``directory`` already holds a knowledge base. Of two
                processes creating the same one at once, one creates it (under the
                writer lock) and the other gets this error.
        """
        if cls.exists(directory):  # say so now, not after waiting for the lock
            raise RagqaError(f"{directory} already holds a knowledge base; open it instead")
        directory.mkdir(parents=True, exist_ok=True)
        with directory_lock(directory, _CREATE_LOCK_TIMEOUT):
            return cls._create_locked(directory, embedding_model, dimension)

    @classmethod
    def _create_locked(cls, directory: Path, embedding_model: str, dimension: int) -> LocalStore:
        if cls.exists(directory):
            raise RagqaError(f"{directory} already holds a knowledge base; open it instead")
        # The catalog is built under a temporary name and renamed into place once
        # complete: a crash part-way must not leave a catalog.sqlite without its
        # tables, which could then be neither opened nor created again.
        for leftover in directory.glob(f".{CATALOG}.*.tmp*"):
            leftover.unlink(missing_ok=True)  # from a create that crashed
        building = directory / f".{CATALOG}.{os.getpid()}.tmp"
        conn = _connect(building)
        now = time.time()
        with conn:
            conn.executescript(_SCHEMA)
            conn.executemany(
                "INSERT INTO meta(key, value) VALUES (?, ?)",
                [
                    ("format_version", str(FORMAT_VERSION)),
                    ("embedding_model", embedding_model),
                    ("dimension", str(dimension)),
                    ("generation", "0"),
                    ("created_at", repr(now)),
                    ("tokenizer_version", str(_tokenizer_version())),
                ],
            )
        conn.close()  # the last connection to close folds the WAL into the file
        os.replace(building, directory / CATALOG)
        _fsync_dir(directory)
        conn = _connect(directory / CATALOG)
        manifest = Manifest(FORMAT_VERSION, embedding_model, dimension, 0, 0, 0, now, now)
        store = cls(directory, manifest, conn)
        store.flush()  # empty indexes and the manifest: a new store is complete on disk
        return store

    @classmethod
    def open(cls, directory: Path) -> LocalStore:
        """Open an existing store, checking that its parts belong together."""
        if not directory.is_dir():
            raise RagqaError(
                f"no knowledge base at {directory}: create one with "
                f"`ragqa ingest FILES --kb {directory}`"
            )
        catalog = directory / CATALOG
        if not catalog.exists():
            what = "is incomplete (catalog.sqlite is missing)"
            if not (directory / MANIFEST).exists():
                what = "is not a knowledge base (no manifest.json or catalog.sqlite)"
            raise IndexCorruptError(
                f"{directory} {what}. Rebuild it: `ragqa ingest SOURCES --kb NEW_DIR`"
            )
        conn = _connect(catalog)
        try:
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            fmt = int(meta["format_version"])
        except (sqlite3.DatabaseError, KeyError, ValueError) as exc:
            conn.close()
            raise IndexCorruptError(
                f"{catalog} is damaged ({exc}). Restore it from a backup, or rebuild "
                f"the knowledge base: `ragqa ingest SOURCES --kb NEW_DIR`"
            ) from None
        if fmt != FORMAT_VERSION:
            conn.close()
            raise IndexMismatchError(
                f"{directory} uses knowledge-base format {fmt}, and this ragqa reads format "
                f"{FORMAT_VERSION}. Rebuild it with this version: "
                f"`ragqa ingest SOURCES --kb NEW_DIR`"
            )
        manifest = _read_manifest(directory)
        if manifest is not None and (
            manifest.embedding_model != meta["embedding_model"]
            or manifest.dimension != int(meta["dimension"])
        ):
            conn.close()
            raise IndexCorruptError(
                f"{directory / MANIFEST} disagrees with {CATALOG} about the embedding model "
                f"({manifest.embedding_model!r} vs {meta['embedding_model']!r}). "
                "Delete manifest.json to have it rewritten from the catalog."
            )
        if manifest is None:
            log.warning("%s: manifest.json is missing; rewriting it from the catalog", directory)
            manifest = Manifest(
                FORMAT_VERSION,
                meta["embedding_model"],
                int(meta["dimension"]),
                0,
                0,
                -1,  # forces a rebuild of the derived indexes
                float(meta.get("created_at", time.time())),
                time.time(),
            )
        return cls(directory, manifest, conn)

    @property
    def manifest(self) -> Manifest:
        return self._manifest

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # ------------------------------------------------------------ derived indexes

    def _generation(self) -> int:
        row = self._conn.execute("SELECT value FROM meta WHERE key='generation'").fetchone()
        return int(row[0])

    def _load_derived(self) -> None:
        """Load FAISS and BM25 from disk if they match SQLite, else rebuild them."""
        with self._lock:
            generation = self._generation()
            count = self._conn.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
            index = lexical = None
            if self._manifest.generation == generation:
                index = self._try_read_faiss(count)
                lexical = self._try_read_lexical(count)
            stale_terms = self._stored_tokenizer_version() != _tokenizer_version()
            if stale_terms:
                lexical = None
            rebuilt = index is None or lexical is None
            if index is None:
                index = self._rebuild_faiss()
            if lexical is None:
                lexical = self._rebuild_lexical(retokenize=stale_terms)
            self._index, self._lexical = index, lexical
            self._loaded_generation = generation
            if rebuilt and self._manifest.generation != generation:
                log.info("%s: rebuilt derived indexes at generation %d", self.directory, generation)
            self._derived_stale_on_disk = rebuilt or self._manifest.generation != generation
            self._manifest_mtime = _mtime(self.directory / MANIFEST)

    def _try_read_faiss(self, expected: int) -> Any:
        import faiss

        path = self.directory / VECTORS
        if not path.exists():
            return None
        try:
            index = faiss.read_index(str(path))
        except Exception as exc:  # faiss raises RuntimeError with C++ text
            # The C++ message means nothing to a user; keep it for debugging only.
            log.warning("%s is unreadable; rebuilding it from the catalog", path)
            log.debug("faiss could not read %s: %s", path, exc)
            return None
        if index.ntotal != expected or index.d != self.dimension:
            log.warning("%s is out of step with the catalog; rebuilding it", path)
            return None
        return index

    def _try_read_lexical(self, expected: int) -> Any:
        from ragqa.lexical import BM25Index

        path = self.directory / LEXICAL
        if not path.exists():
            return None
        try:
            lexical = BM25Index.load(path)
        except RagqaError as exc:
            log.warning("%s is unreadable (%s); rebuilding it from the catalog", path, exc)
            return None
        if len(lexical) != expected:
            log.warning("%s is out of step with the catalog; rebuilding it", path)
            return None
        return lexical

    def _new_faiss(self) -> Any:
        import faiss

        # IDMap2 keeps our SQLite chunk ids inside FAISS and supports remove_ids.
        # Inner product on unit vectors is cosine similarity.
        return faiss.IndexIDMap2(faiss.IndexFlatIP(self.dimension))

    def _rebuild_faiss(self) -> Any:
        index = self._new_faiss()
        for ids, vectors in self._iter_vectors():
            index.add_with_ids(vectors, ids)
        return index

    def _iter_vectors(self, batch: int = 20_000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        last = -1
        while True:
            rows = self._conn.execute(
                "SELECT id, vector FROM chunks WHERE id > ? ORDER BY id LIMIT ?", (last, batch)
            ).fetchall()
            if not rows:
                return
            ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            vectors = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32)
            yield ids, vectors.reshape(len(rows), self.dimension)
            last = int(ids[-1])

    def _stored_tokenizer_version(self) -> int:
        row = self._conn.execute("SELECT value FROM meta WHERE key='tokenizer_version'").fetchone()
        return int(row[0]) if row else 0

    def _rebuild_lexical(self, *, retokenize: bool = False) -> Any:
        """Build BM25 from the catalog's stored terms, or from the text itself when
        the terms were made by another version of the tokenizer."""
        from ragqa.lexical import BM25Index, tokenize

        lexical = BM25Index()
        column = "text" if retokenize else "tokens"
        last = -1
        while True:
            rows = self._conn.execute(
                f"SELECT id, {column} FROM chunks WHERE id > ? ORDER BY id LIMIT 20000", (last,)
            ).fetchall()
            if not rows:
                return lexical
            terms = [tokenize(r[1]) if retokenize else r[1].split() for r in rows]
            lexical.add([r[0] for r in rows], terms)
            last = rows[-1][0]

    def _add_missing_columns(self) -> None:
        """Columns that later versions added to existing tables (NULL in old rows)."""
        columns = {row[1] for row in self._conn.execute("PRAGMA table_info(chunks)")}
        if "unknown" not in columns:
            self._conn.execute("ALTER TABLE chunks ADD COLUMN unknown REAL")

    def _upgrade_stored_terms(self) -> None:
        """Re-tokenize every chunk when the tokenizer has changed since it was stored.

        Only a writer does this (it holds the lock); a reader rebuilds its BM25 index
        from the text in memory instead.
        """
        from ragqa.lexical import tokenize

        if self._stored_tokenizer_version() == _tokenizer_version():
            return
        log.info("%s: re-tokenizing chunks for the new lexical tokenizer", self.directory)
        with self._transaction() as conn:
            rows = conn.execute("SELECT id, text FROM chunks").fetchall()
            conn.executemany(
                "UPDATE chunks SET tokens = ? WHERE id = ?",
                [(" ".join(tokenize(text)), cid) for cid, text in rows],
            )
            conn.execute(
                "INSERT OR REPLACE INTO meta(key, value) VALUES ('tokenizer_version', ?)",
                (str(_tokenizer_version()),),
            )

    def refresh(self) -> bool:
        """Pick up changes another process committed. Returns True if anything changed.

        Cheap when nothing changed: one ``stat`` of the manifest.
        """
        mtime = _mtime(self.directory / MANIFEST)
        if mtime == self._manifest_mtime:
            return False
        with self._lock:
            if self._generation() == self._loaded_generation:
                self._manifest_mtime = mtime
                return False
            manifest = _read_manifest(self.directory)
            if manifest is not None:
                self._manifest = manifest
            self._load_derived()
            return True

    def sync_to_catalog(self) -> None:
        """Bring the in-memory indexes up to the catalog's latest generation.

        A writer calls this right after taking the lock, in case another writer
        committed since this store was opened.
        """
        with self._lock:
            self._conn.executescript(_SCHEMA)  # adds any table this version introduced
            self._add_missing_columns()
            self._upgrade_stored_terms()
            if self._generation() != self._loaded_generation:
                manifest = _read_manifest(self.directory)
                if manifest is not None:
                    self._manifest = manifest
                self._load_derived()

    def flush(self) -> None:
        """Write FAISS, BM25 and the manifest for the current generation."""
        import faiss

        with self._lock:
            generation = self._generation()
            _atomic_write_bytes(
                self.directory / VECTORS, faiss.serialize_index(self._index).tobytes()
            )
            self._lexical.save(self.directory / LEXICAL)
            docs, chunks = self._conn.execute(
                "SELECT (SELECT COUNT(*) FROM documents), (SELECT COUNT(*) FROM chunks)"
            ).fetchone()
            self._manifest = Manifest(
                FORMAT_VERSION,
                self._manifest.embedding_model,
                self._manifest.dimension,
                docs,
                chunks,
                generation,
                self._manifest.created_at,
                time.time(),
            )
            _write_manifest(self.directory, self._manifest)
            self._manifest_mtime = _mtime(self.directory / MANIFEST)
            self._derived_stale_on_disk = False

    def derived_files_stale(self) -> bool:
        """True when the derived files on disk are behind the catalog: opening had to
        rebuild them in memory (after a crash or damage), or an interrupted write left
        a temporary file behind. :meth:`repair` fixes both."""
        return self._derived_stale_on_disk or bool(self._leftover_temp_files())

    def repair(self) -> None:
        """Rewrite the derived files from the catalog and delete the temporary files
        of interrupted writes.

        The caller must hold the writer lock: only then is no temporary file still
        being written by a live process.
        """
        with self._lock:
            self.sync_to_catalog()
            for leftover in self._leftover_temp_files():
                leftover.unlink(missing_ok=True)
            self.flush()

    def recover(self) -> None:
        """Write back the index files that opening had to rebuild in memory.

        After a crash between a commit and the index write, or damage to a derived
        file, opening rebuilds FAISS and BM25 from the catalog; without this every
        later open would rebuild them again. Done only when no writer is busy (that
        writer rewrites them when it finishes anyway); in a read-only directory the
        files stay as they are and searching works from memory.
        """
        if not self.derived_files_stale():
            return
        try:
            with directory_lock(self.directory, timeout=0):
                self.repair()
            log.info("%s: rewrote the derived index files from the catalog", self.directory)
        except KnowledgeBaseBusyError:
            pass
        except (OSError, sqlite3.Error) as exc:
            log.warning("%s: could not rewrite the index files (%s)", self.directory, exc)

    def _leftover_temp_files(self) -> list[Path]:
        # Every atomic write goes through a hidden ".NAME.*.tmp" file (see
        # _atomic_write_bytes and BM25Index.save).
        return [
            p
            for name in (MANIFEST, VECTORS, LEXICAL)
            for p in self.directory.glob(f".{name}.*.tmp")
        ]

    # ------------------------------------------------------------------ reading

    def document(self, source: str) -> DocumentInfo | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT source, content_hash, pages, chunks, added_at FROM documents "
                "WHERE source = ?",
                (source,),
            ).fetchone()
        return DocumentInfo(*row) if row else None

    def page_text(self, source: str, page: int) -> str | None:
        """The normalised text of one stored page, or None if there is no such page."""
        with self._lock:
            row = self._conn.execute(
                "SELECT p.text FROM pages p JOIN documents d ON d.id = p.doc_id "
                "WHERE d.source = ? AND p.page = ?",
                (source, page),
            ).fetchone()
        return row[0] if row else None

    def documents(self) -> list[DocumentInfo]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT source, content_hash, pages, chunks, added_at FROM documents "
                "ORDER BY source"
            ).fetchall()
        return [DocumentInfo(*row) for row in rows]

    def counts(self) -> tuple[int, int]:
        """(documents, chunks) as the catalog has them now."""
        with self._lock:
            return self._conn.execute(
                "SELECT (SELECT COUNT(*) FROM documents), (SELECT COUNT(*) FROM chunks)"
            ).fetchone()

    def known_vectors(self, hashes: Iterable[str]) -> dict[str, np.ndarray]:
        """Vectors already stored for chunk texts with these hashes.

        Re-ingesting an edited file mostly re-embeds text the store has seen; looking
        it up here is far cheaper than running the model again.
        """
        wanted = list(dict.fromkeys(hashes))
        found: dict[str, np.ndarray] = {}
        with self._lock:
            for start in range(0, len(wanted), 500):
                part = wanted[start : start + 500]
                marks = ",".join("?" * len(part))
                for key, blob in self._conn.execute(
                    f"SELECT text_hash, vector FROM chunks WHERE text_hash IN ({marks})", part
                ):
                    found.setdefault(key, np.frombuffer(blob, dtype=np.float32))
        return found

    def chunks_by_id(self, ids: Sequence[int]) -> dict[int, tuple[str, str, int, int, int]]:
        """``id -> (text, source, page, start, end)`` for the ids that exist."""
        out: dict[int, tuple[str, str, int, int, int]] = {}
        with self._lock:
            for start in range(0, len(ids), 500):
                part = [int(i) for i in ids[start : start + 500]]
                marks = ",".join("?" * len(part))
                for row in self._conn.execute(
                    f'SELECT c.id, c.text, d.source, c.page, c.start, c."end" '
                    f"FROM chunks c JOIN documents d ON d.id = c.doc_id WHERE c.id IN ({marks})",
                    part,
                ):
                    out[row[0]] = row[1:]
        return out

    def unknown_shares(self, ids: Sequence[int]) -> dict[int, float]:
        out: dict[int, float] = {}
        with self._lock:
            for start in range(0, len(ids), 500):
                part = [int(i) for i in ids[start : start + 500]]
                marks = ",".join("?" * len(part))
                try:
                    rows = self._conn.execute(
                        f"SELECT id, unknown FROM chunks WHERE id IN ({marks}) "
                        "AND unknown IS NOT NULL",
                        part,
                    ).fetchall()
                except sqlite3.OperationalError:  # a catalog from before the column
                    return {}
                out.update(rows)
        return out

    def vectors_by_id(self, ids: Sequence[int]) -> np.ndarray:
        """The stored vectors of these chunks, in the given order."""
        with self._lock:
            return (
                np.vstack([self._index.reconstruct(int(i)) for i in ids])
                if ids
                else (np.zeros((0, self.dimension), dtype=np.float32))
            )

    def dense_search(self, query_vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        """Chunk ids and cosine similarities of the ``k`` nearest chunks."""
        import faiss

        query = np.asarray(query_vector, dtype=np.float32).reshape(1, -1)
        self._check_dimension(query)
        with self._lock:
            if self._index.ntotal == 0:
                return []
            # FAISS spreads one query over its OpenMP threads, whose wake-ups cost
            # more than they save (100k vectors: 10.4 ms on one thread, 14.6 on two).
            threads = faiss.omp_get_max_threads()
            faiss.omp_set_num_threads(1)
            try:
                scores, ids = self._index.search(query, k)
            finally:
                faiss.omp_set_num_threads(threads)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]

    def lexical_search(self, query_tokens: Sequence[str], k: int) -> list[tuple[int, float]]:
        """Chunk ids and BM25 scores of the ``k`` best lexical matches."""
        with self._lock:
            return self._lexical.search(query_tokens, k)

    def __len__(self) -> int:
        with self._lock:
            return int(self._index.ntotal)

    def _check_dimension(self, vectors: np.ndarray) -> None:
        # The embedding model is loaded lazily, so this is where a model that
        # changed under the same name (a path now holding another model) shows.
        if vectors.ndim != 2 or vectors.shape[1] != self.dimension:
            raise IndexMismatchError(
                f"{self.directory} stores {self.dimension}-dimensional vectors, but the "
                f"embedding model {self.embedding_model!r} now makes "
                f"{vectors.shape[-1]}-dimensional ones. Rebuild the knowledge base with "
                "this model: `ragqa ingest SOURCES --kb NEW_DIR`"
            )

    # ------------------------------------------------------------------ writing

    @contextmanager
    def writing(self, timeout: float) -> Iterator[None]:
        """Hold the directory's writer lock; write the derived files once at the end.

        Another process may have committed since this store was opened, so the
        in-memory indexes are brought up to the catalog first.
        """
        with directory_lock(self.directory, timeout):
            try:
                self.sync_to_catalog()
                yield
            finally:
                self.flush()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
                self._conn.execute(
                    "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key='generation'"
                )
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._loaded_generation = self._generation()

    def write_documents(self, documents: Sequence[NewDocument]) -> None:
        """Add or replace whole documents in one transaction, then update the indexes.

        A document that is already stored under the same source is replaced: its old
        chunks go in the same transaction, so a reader sees either the old version or
        the new one, never both or neither.
        """
        if not documents:
            return
        for doc in documents:
            if len(doc.chunks):
                self._check_dimension(np.asarray(doc.vectors))
            if len(doc.vectors) != len(doc.chunks):
                raise ValueError(
                    f"{doc.source}: {len(doc.chunks)} chunks, {len(doc.vectors)} vectors"
                )
        removed: list[int] = []
        added: list[tuple[np.ndarray, np.ndarray, list[Sequence[str]]]] = []
        with self._transaction() as conn:
            for doc in documents:
                removed.extend(self._delete_document(conn, doc.source))
                cur = conn.execute(
                    "INSERT INTO documents(source, content_hash, pages, chunks, added_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (doc.source, doc.content_hash, doc.pages, len(doc.chunks), time.time()),
                )
                doc_id = cur.lastrowid
                conn.executemany(
                    "INSERT INTO pages(doc_id, page, text) VALUES (?, ?, ?)",
                    [(doc_id, number, text) for number, text in doc.page_texts],
                )
                ids = []
                vectors = np.ascontiguousarray(doc.vectors, dtype=np.float32)
                shares = doc.unknown_shares or [None] * len(doc.chunks)
                for chunk, vector, tokens, share in zip(
                    doc.chunks, vectors, doc.tokens, shares, strict=True
                ):
                    cur = conn.execute(
                        'INSERT INTO chunks(doc_id, page, start, "end", text, text_hash, '
                        "tokens, vector, unknown) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            doc_id,
                            chunk.page,
                            chunk.start,
                            chunk.end,
                            chunk.text,
                            text_hash(chunk.text),
                            " ".join(tokens),
                            vector.tobytes(),
                            None if share is None else float(share),
                        ),
                    )
                    ids.append(cur.lastrowid)
                added.append((np.asarray(ids, dtype=np.int64), vectors, list(doc.tokens)))
            # Only after the commit succeeds do the in-memory indexes change (below).
        self._apply(removed, added)

    def remove_document(self, source: str) -> bool:
        """Delete a document and its chunks. Returns False if it was not stored."""
        if self.document(source) is None:
            return False
        with self._transaction() as conn:
            removed = self._delete_document(conn, source)
        self._apply(removed, [])
        return bool(removed)

    def _delete_document(self, conn: sqlite3.Connection, source: str) -> list[int]:
        row = conn.execute("SELECT id FROM documents WHERE source = ?", (source,)).fetchone()
        if row is None:
            return []
        ids = [r[0] for r in conn.execute("SELECT id FROM chunks WHERE doc_id = ?", (row[0],))]
        conn.execute("DELETE FROM chunks WHERE doc_id = ?", (row[0],))
        conn.execute("DELETE FROM pages WHERE doc_id = ?", (row[0],))
        conn.execute("DELETE FROM documents WHERE id = ?", (row[0],))
        # A stored document with zero chunks still counts as found.
        return ids or [-1]

    def _apply(
        self,
        removed: list[int],
        added: list[tuple[np.ndarray, np.ndarray, list[Sequence[str]]]],
    ) -> None:
        with self._lock:
            real = np.asarray([i for i in removed if i >= 0], dtype=np.int64)
            if len(real):
                self._index.remove_ids(real)
                self._lexical.remove(real.tolist())
            for ids, vectors, tokens in added:
                if len(ids):
                    self._index.add_with_ids(vectors, ids)
                    self._lexical.add(ids.tolist(), tokens)


def directory_lock(directory: Path, timeout: float) -> AbstractContextManager[None]:
    """Hold the writer lock of a knowledge-base directory.

    Raises:
        KnowledgeBaseBusyError: another process held it for ``timeout`` seconds.
    """
    return file_lock(directory / LOCK, timeout, what=f"knowledge base {directory}")


@contextmanager
def file_lock(path: Path, timeout: float, *, what: str) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing) across processes.

    Raises:
        KnowledgeBaseBusyError: another process held it for ``timeout`` seconds;
            the message names ``what`` is busy.
    """
    from filelock import FileLock, Timeout

    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=timeout)
    except Timeout:
        raise KnowledgeBaseBusyError(
            f"{what} is busy: another process is writing to it. Try again when it has finished."
        ) from None
    try:
        yield
    finally:
        lock.release()


def _tokenizer_version() -> int:
    from ragqa.lexical import TOKENIZER_VERSION

    return TOKENIZER_VERSION


def _connect(path: Path) -> sqlite3.Connection:
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


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime_ns / 1e9
    except FileNotFoundError:
        return 0.0


def _read_manifest(directory: Path) -> Manifest | None:
    path = directory / MANIFEST
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Manifest(**{k: data[k] for k in Manifest.__dataclass_fields__})
    except (ValueError, KeyError, TypeError) as exc:
        log.warning("%s is damaged (%s); rewriting it from the catalog", path, exc)
        return None


def _write_manifest(directory: Path, manifest: Manifest) -> None:
    data = json.dumps(manifest.to_dict(), indent=2, sort_keys=True) + "\n"
    _atomic_write_bytes(directory / MANIFEST, data.encode("utf-8"))
