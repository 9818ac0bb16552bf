"""The embedded store: SQLite holds the truth, FAISS and BM25 are derived from it.

A knowledge-base directory looks like this::

    manifest.json    format version, embedding model, dimension, counts, generation
    catalog.sqlite   documents and chunks: text, offsets, lexical tokens, vectors
    vectors.faiss    FAISS index over the chunk vectors (derived)
    lexical.npz      BM25 index over the chunk tokens (derived)
    .lock            held by the one process that is writing
    .checkpoint.lock shared while a checkpoint is loaded, exclusive while one is replaced

Why this split: a write must be atomic, and three files cannot be replaced in one
atomic step. SQLite can commit a transaction atomically, so every document change is
one transaction there, and the generation number in its ``meta`` table goes up by
one. Each chunk records the generation that stored it, and each deleted chunk is
logged with the generation that deleted it.

The FAISS and BM25 files are a **checkpoint** of the catalog at the generation the
manifest names: whoever opens the knowledge base loads them and replays the change
log since (chunks stored and deleted after that generation), and a reader picks up
another process's commits the same way, by replaying the log since what it has.
Writing a checkpoint costs time in proportion to the whole index (hundreds of
megabytes at 100,000 chunks), so a writer writes one only once the log has grown to
``CHECKPOINT_MIN_CHANGES`` chunks or ``CHECKPOINT_SHARE`` of the index: removing one
document from a large knowledge base is one small transaction. Nothing committed is
ever lost, and a half-written checkpoint is never loaded: the files are renamed into
place together under a lock that loading also takes, and the manifest records
each file's size and time, so a checkpoint whose files do not match it is rebuilt
from the catalog instead.

From ``APPROXIMATE_FROM`` chunks on, FAISS holds an IVF-PQ index rather than exact
vectors (see :func:`build_ivfpq`): a fraction of the memory and of the search time,
with every candidate re-scored exactly from the vectors in the catalog.
"""

from __future__ import annotations

import logging
import math
import os
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ragqa.errors import (
    ConfigError,
    IndexCorruptError,
    IndexMismatchError,
    KnowledgeBaseBusyError,
    RagqaError,
)
from ragqa.stores.base import FORMAT_VERSION, Manifest, NewDocument, Store, text_hash
from ragqa.stores.catalog import SCHEMA, connect_catalog, has_column, migrate
from ragqa.stores.ivf import (
    IVF_MIN_CANDIDATES,
    IVF_MIN_TRAIN,
    IVF_RERANK_FACTOR,
    build_ivfpq,
    configure,
)
from ragqa.stores.layout import (
    CATALOG,
    LEXICAL,
    MANIFEST,
    VECTORS,
    file_identities,
    files_match,
    fsync_dir,
    fsync_file,
    read_checkpoint,
    read_manifest,
    write_manifest,
)
from ragqa.stores.locks import checkpoint_lock, directory_lock
from ragqa.types import DocumentInfo

__all__ = ["FORMAT_VERSION", "LocalStore", "Manifest", "NewDocument", "text_hash"]

log = logging.getLogger(__name__)

VECTOR_INDEXES = ("auto", "flat", "ivfpq")
# A writer writes a checkpoint once the changes since the last one reach this many
# chunks or this share of all chunks, whichever is more (see the module notes).
# Replaying 1,000 chunks on open takes about 50 ms; a checkpoint of 100,000 chunks,
# seconds.
CHECKPOINT_MIN_CHANGES = 1_000
CHECKPOINT_SHARE = 0.05
# "auto" switches to an approximate index from this many chunks on: below it, exact
# search over the vectors takes a few milliseconds (measured: 5 ms at 50,000).
APPROXIMATE_FROM = 50_000
# Exact vectors read from the catalog (IVF-PQ only), kept by chunk id. One hybrid
# query reads its 400 re-scored candidates and then the fused candidates, most of
# which it just read; 8,192 vectors of 384 floats are 12 MB. A chunk id is never
# reused and its vector never changes, so nothing in the cache can go stale.
VECTOR_CACHE_LIMIT = 8192
# Creating takes a moment, but another process may hold the lock for a whole
# ingest into a knowledge base it has just created.
_CREATE_LOCK_TIMEOUT = 600.0


class LocalStore(Store):
    """SQLite + FAISS + BM25 in one directory. Not a public API: use KnowledgeBase.

    All methods are thread-safe (Streamlit serves sessions from threads). Writes go
    inside :meth:`writing`, which holds the directory's file lock for a whole ingest
    and writes the derived files once at its end.
    """

    lexical_engine = "ragqa BM25 (lexical.npz)"

    def __init__(
        self,
        directory: Path,
        manifest: Manifest,
        conn: sqlite3.Connection,
        *,
        vector_index: str = "",
    ) -> None:
        if vector_index and vector_index not in VECTOR_INDEXES:
            raise ConfigError(
                f"vector_index must be one of {', '.join(VECTOR_INDEXES)}, not {vector_index!r}"
            )
        self.directory = directory
        self.location = str(directory)
        self._vector_index_choice = vector_index  # "" follows the knowledge base's own
        self._manifest = manifest  # as manifest.json says: model, dimension, creation
        self._live: Manifest | None = None  # the manifest as of the loaded generation
        # manifest.json's "checkpoint": the generation, chunk count, tokenizer
        # version and file identities of the derived files on disk ({} if none).
        self._checkpoint: dict[str, Any] = {}
        self._conn = conn
        self._lock = threading.RLock()
        # BM25 has a lock of its own, so that a hybrid search's BM25 runs while its
        # other side holds the main lock for FAISS and reads vectors. Whoever
        # changes the BM25 index holds both, this one last; a reader holds only it.
        self._lexical_lock = threading.RLock()
        self._index: Any = None  # faiss.IndexIDMap2 over IndexFlatIP, or IndexIVFPQ
        self._lexical: Any = None  # ragqa.lexical.BM25Index
        self._vector_cache: OrderedDict[int, bytes] = OrderedDict()  # least recent first
        self._loaded_generation = -1
        # Chunks stored or deleted since the checkpoint on disk; inf when there is
        # no usable checkpoint at all.
        self._changes_since_checkpoint: float = 0
        self._load_derived()

    # ------------------------------------------------------------------ opening

    @staticmethod
    def exists(directory: Path) -> bool:
        """Whether ``directory`` holds a knowledge base (complete or damaged)."""
        return (directory / CATALOG).exists() or (directory / MANIFEST).exists()

    @classmethod
    def create(
        cls, directory: Path, *, embedding_model: str, dimension: int, vector_index: str = ""
    ) -> LocalStore:
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
            return cls._create_locked(directory, embedding_model, dimension, vector_index)

    @classmethod
    def _create_locked(
        cls, directory: Path, embedding_model: str, dimension: int, vector_index: str
    ) -> LocalStore:
        if cls.exists(directory):
            raise RagqaError(f"{directory} already holds a knowledge base; open it instead")
        # The catalog is built under a temporary name and renamed into place once
        # complete: a crash part-way must not leave a catalog.sqlite without its
        # tables, which could then be neither opened nor created again.
        for leftover in directory.glob(f".{CATALOG}.*.tmp*"):
            leftover.unlink(missing_ok=True)  # from a create that crashed
        building = directory / f".{CATALOG}.{os.getpid()}.tmp"
        conn = connect_catalog(building)
        now = time.time()
        with conn:
            conn.executescript(SCHEMA)
            conn.executemany(
                "INSERT INTO meta(key, value) VALUES (?, ?)",
                [
                    ("format_version", str(FORMAT_VERSION)),
                    ("embedding_model", embedding_model),
                    ("dimension", str(dimension)),
                    ("generation", "0"),
                    ("log_since", "0"),
                    ("created_at", repr(now)),
                    ("tokenizer_version", str(_tokenizer_version())),
                ],
            )
            migrate(conn)
        conn.close()  # the last connection to close folds the WAL into the file
        os.replace(building, directory / CATALOG)
        fsync_dir(directory)
        conn = connect_catalog(directory / CATALOG)
        manifest = Manifest(FORMAT_VERSION, embedding_model, dimension, 0, 0, -1, now, now)
        store = cls(directory, manifest, conn, vector_index=vector_index)
        store.flush()  # empty indexes and the manifest: a new store is complete on disk
        return store

    @classmethod
    def open(cls, directory: Path, *, vector_index: str = "") -> LocalStore:
        """Open an existing store, checking that its parts belong together.

        Args:
            directory: the knowledge base.
            vector_index: ``auto``, ``flat`` or ``ivfpq``: which FAISS index to
                keep (``auto``: exact below ``APPROXIMATE_FROM`` chunks). A writer
                records the choice in the catalog; ``""`` follows that record.
        """
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
        conn = connect_catalog(catalog)
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
        manifest = read_manifest(directory)
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
        return cls(directory, manifest, conn, vector_index=vector_index)

    @property
    def embedding_model(self) -> str:
        return self._manifest.embedding_model

    @property
    def dimension(self) -> int:
        return self._manifest.dimension

    @property
    def manifest(self) -> Manifest:
        """The manifest as of the generation loaded: live counts, not the checkpoint's."""
        with self._lock:
            live = self._live
            if live is None or live.generation != self._loaded_generation:
                documents, chunks = self.counts()
                updated = self._meta_value("updated_at")
                live = self._live = replace(
                    self._manifest,
                    format_version=FORMAT_VERSION,
                    documents=documents,
                    chunks=chunks,
                    generation=self._loaded_generation,
                    updated_at=float(updated) if updated else self._manifest.updated_at,
                )
            return live

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # ------------------------------------------------------------ derived indexes

    def _generation(self) -> int:
        return int(self._meta_value("generation") or 0)

    def _meta_value(self, key: str) -> str | None:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    @contextmanager
    def _snapshot(self) -> Iterator[None]:
        """A read transaction: every query inside sees the same committed state."""
        self._conn.execute("BEGIN")
        try:
            yield
        finally:
            self._conn.execute("COMMIT")

    def _replayable_since(self, generation: int) -> bool:
        """Whether the change log covers every commit after ``generation``."""
        if generation < 0 or not has_column(self._conn, "chunks", "generation"):
            return False  # a catalog from before the log (a writer migrates it)
        return generation >= int(self._meta_value("log_since") or 2**62)

    def _load_derived(self, attempts: int = 3) -> None:
        """Load the checkpoint and replay the change log since it; rebuild the
        derived indexes from the catalog when there is no usable checkpoint."""
        with self._lock:
            with checkpoint_lock(self.directory, shared=True):
                self._manifest = read_manifest(self.directory) or self._manifest
                checkpoint = read_checkpoint(self.directory)
                base = int(checkpoint.get("generation", -1))
                index = lexical = None
                if (
                    base <= self._generation()
                    and self._replayable_since(base)
                    and checkpoint.get("tokenizer_version") == self._stored_tokenizer_version()
                    and files_match(self.directory, checkpoint.get("files", {}))
                ):
                    index = self._try_read_faiss(int(checkpoint["chunks"]))
                    lexical = self._try_read_lexical(int(checkpoint["chunks"]))
            with self._snapshot():
                generation = self._generation()
                usable = index is not None and lexical is not None
                # Checked again inside the snapshot: a writer may have written a newer
                # checkpoint and pruned the log since the files were read.
                replayable = usable and self._replayable_since(base)
                retry = usable and not replayable and attempts > 1
                if replayable:
                    changes: float = self._replay(base, generation, index, lexical)
                elif not retry:
                    if base >= 0:
                        log.info(
                            "%s: rebuilding the derived indexes from the catalog", self.directory
                        )
                    retokenize = self._stored_tokenizer_version() != _tokenizer_version()
                    index = self._rebuild_faiss()
                    lexical = self._rebuild_lexical(retokenize=retokenize)
                    changes = math.inf
            if retry:
                self._load_derived(attempts - 1)
                return
            with self._lexical_lock:
                self._index, self._lexical = index, lexical
            configure(index)
            self._loaded_generation = generation
            self._checkpoint = checkpoint if changes != math.inf else {}
            self._changes_since_checkpoint = changes
            self._live = None

    def _replay(self, since: int, until: int, index: Any, lexical: Any) -> int:
        """Apply the commits after ``since`` up to ``until`` to in-memory indexes;
        returns how many chunks they stored or deleted."""
        if until <= since:
            return 0
        removed = [
            row[0]
            for row in self._conn.execute(
                "SELECT id FROM deleted_chunks WHERE removed > ? AND removed <= ? AND added <= ?",
                (since, until, since),
            )
        ]
        if removed:
            index.remove_ids(np.asarray(removed, dtype=np.int64))
            lexical.remove(removed)
        changes = len(removed)
        where = "generation > ? AND generation <= ?"
        for ids, vectors, terms in self._iter_chunks(where, (since, until), with_terms=True):
            index.add_with_ids(vectors, ids)
            lexical.add(ids.tolist(), terms)
            changes += len(ids)
        return changes

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

    @property
    def vector_index(self) -> str:
        """The FAISS index policy: this store's choice, else the catalog's, else auto."""
        return self._vector_index_choice or self._meta_value("vector_index") or "auto"

    def _wanted_index(self, chunks: int) -> str:
        policy = self.vector_index
        if policy != "auto":
            return policy
        return "ivfpq" if chunks >= APPROXIMATE_FROM else "flat"

    def _index_switch_due(self) -> bool:
        have = "flat" if hasattr(self._index, "id_map") else "ivfpq"
        want = self._wanted_index(len(self))
        return want != have and not (want == "ivfpq" and len(self) < IVF_MIN_TRAIN)

    def _rebuild_faiss(self) -> Any:
        import faiss

        chunks = self._conn.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
        if self._wanted_index(chunks) == "ivfpq" and chunks >= IVF_MIN_TRAIN:
            return build_ivfpq(self.dimension, chunks, self._iter_chunks)
        # IDMap2 keeps our SQLite chunk ids inside FAISS and supports remove_ids.
        # Inner product on unit vectors is cosine similarity.
        index = faiss.IndexIDMap2(faiss.IndexFlatIP(self.dimension))
        for ids, vectors, _ in self._iter_chunks():
            index.add_with_ids(vectors, ids)
        return index

    def _iter_chunks(
        self,
        where: str = "1",
        params: tuple[Any, ...] = (),
        *,
        with_terms: bool = False,
        batch: int = 20_000,
    ) -> Iterator[tuple[np.ndarray, np.ndarray, list[list[str]]]]:
        """``(ids, vectors, terms)`` of the chunks matching ``where``, in id order."""
        last = -1
        column = "tokens" if with_terms else "''"
        while True:
            rows = self._conn.execute(
                f"SELECT id, vector, {column} FROM chunks WHERE ({where}) AND id > ? "
                "ORDER BY id LIMIT ?",
                (*params, last, batch),
            ).fetchall()
            if not rows:
                return
            ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            vectors = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32)
            terms = [r[2].split() for r in rows] if with_terms else []
            yield ids, vectors.reshape(len(rows), self.dimension), terms
            last = int(ids[-1])

    def _stored_tokenizer_version(self) -> int:
        return int(self._meta_value("tokenizer_version") or 0)

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

    def _upgrade_stored_terms(self) -> bool:
        """Re-tokenize every chunk when the tokenizer has changed since it was stored.

        Only a writer does this (it holds the lock); a reader rebuilds its BM25 index
        from the text in memory instead. Returns True if it re-tokenized.
        """
        from ragqa.lexical import tokenize

        if self._stored_tokenizer_version() == _tokenizer_version():
            return False
        log.info("%s: re-tokenizing chunks for the new lexical tokenizer", self.directory)
        with self._transaction() as (conn, _generation):
            rows = conn.execute("SELECT id, text FROM chunks").fetchall()
            conn.executemany(
                "UPDATE chunks SET tokens = ? WHERE id = ?",
                [(" ".join(tokenize(text)), cid) for cid, text in rows],
            )
            conn.execute(
                "INSERT OR REPLACE INTO meta(key, value) VALUES ('tokenizer_version', ?)",
                (str(_tokenizer_version()),),
            )
        return True

    def refresh(self) -> bool:
        """Pick up changes another process committed. Returns True if anything changed.

        Cheap when nothing changed (one indexed read of the catalog); otherwise the
        commits since are replayed from the change log.
        """
        with self._lock:
            if self._generation() == self._loaded_generation:
                return False
            with self._snapshot():
                generation = self._generation()
                loaded = self._loaded_generation
                if 0 <= loaded < generation and self._replayable_since(loaded):
                    with self._lexical_lock:
                        changes = self._replay(loaded, generation, self._index, self._lexical)
                    self._loaded_generation = generation
                    self._changes_since_checkpoint += changes
                    self._live = None
                    return True
            self._load_derived()
            return True

    def sync_to_catalog(self) -> None:
        """Bring the catalog's schema and the in-memory indexes up to date.

        A writer calls this right after taking the lock, in case another writer
        committed since this store was opened.
        """
        with self._lock:
            migrate(self._conn)
            if self._vector_index_choice and self._vector_index_choice != self._meta_value(
                "vector_index"
            ):
                with self._conn:  # a setting, not a change of content: no new generation
                    self._conn.execute(
                        "INSERT OR REPLACE INTO meta(key, value) VALUES ('vector_index', ?)",
                        (self._vector_index_choice,),
                    )
            if self._upgrade_stored_terms():
                self._load_derived()  # every chunk's terms changed
            self.refresh()

    def _checkpoint_due(self) -> bool:
        limit = max(CHECKPOINT_MIN_CHANGES, CHECKPOINT_SHARE * len(self))
        return self._changes_since_checkpoint >= limit

    def _switch_index_if_due(self) -> None:
        """Rebuild FAISS as the other kind when the size or the setting asks for it."""
        if not self._index_switch_due():
            return
        want = self._wanted_index(len(self))
        log.info(
            "%s: switching the vector index to %s at %d chunks", self.directory, want, len(self)
        )
        self._index = self._rebuild_faiss()
        configure(self._index)
        self._changes_since_checkpoint = math.inf

    def flush(self) -> None:
        """Write a checkpoint: FAISS, BM25 and the manifest for the loaded generation.

        The caller must hold the writer lock, with the indexes in step with the
        catalog (as :meth:`writing` keeps them).
        """
        import faiss

        with self._lock:
            generation = self._loaded_generation
            pid = os.getpid()
            vectors_tmp = self.directory / f".{VECTORS}.{pid}.tmp"
            lexical_tmp = self.directory / f".{LEXICAL}.{pid}.tmp"
            try:
                # write_index streams to the file: no copy of the index in memory.
                faiss.write_index(self._index, str(vectors_tmp))
                fsync_file(vectors_tmp)
                with self._lexical_lock:  # saving compacts the index in place
                    self._lexical.save(lexical_tmp, atomic=False)
                with checkpoint_lock(self.directory, shared=False):
                    os.replace(vectors_tmp, self.directory / VECTORS)
                    os.replace(lexical_tmp, self.directory / LEXICAL)
                    self._checkpoint = {
                        "generation": generation,
                        "chunks": len(self._lexical),
                        "tokenizer_version": self._stored_tokenizer_version(),
                        "files": file_identities(self.directory, (VECTORS, LEXICAL)),
                    }
                    self.write_manifest()
            finally:
                vectors_tmp.unlink(missing_ok=True)
                lexical_tmp.unlink(missing_ok=True)
            self._changes_since_checkpoint = 0
            self._prune_log(generation)

    def write_manifest(self) -> None:
        """Write manifest.json: the live counts, and which checkpoint is on disk."""
        with self._lock:
            self._live = None
            write_manifest(self.directory, self.manifest, {"checkpoint": self._checkpoint})

    def _prune_log(self, generation: int) -> None:
        """Forget deletions the checkpoint at ``generation`` already reflects."""
        if not has_column(self._conn, "chunks", "generation"):
            return
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            self._conn.execute("DELETE FROM deleted_chunks WHERE removed <= ?", (generation,))
            self._conn.execute(
                "INSERT OR REPLACE INTO meta(key, value) VALUES ('log_since', ?)",
                (str(generation),),
            )
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise

    def derived_files_stale(self) -> bool:
        """True when the files on disk need a writer: opening had to rebuild or
        replay enough that a checkpoint is due, the manifest is behind the catalog
        (a writer died between its commit and the manifest), or an interrupted
        write left a temporary file behind. :meth:`repair` fixes all three."""
        on_disk = read_manifest(self.directory)
        return (
            self._checkpoint_due()
            or self._index_switch_due()
            or on_disk is None
            or on_disk.generation != self._loaded_generation
            or bool(self._leftover_temp_files())
        )

    def repair(self) -> None:
        """Write a checkpoint if one is due, else the manifest, and delete the
        temporary files of interrupted writes.

        The caller must hold the writer lock: only then is no temporary file still
        being written by a live process.
        """
        with self._lock:
            self.sync_to_catalog()
            for leftover in self._leftover_temp_files():
                leftover.unlink(missing_ok=True)
            self._switch_index_if_due()
            if self._checkpoint_due():
                self.flush()
            else:
                self.write_manifest()

    def recover(self) -> None:
        """Write the checkpoint that opening found due, if no writer is busy.

        After a crash, damage to a derived file or many commits without a
        checkpoint, opening rebuilds or replays the indexes in memory; without this
        every later open would do that work again. In a read-only directory the
        files stay as they are and searching works from memory.
        """
        if not self.derived_files_stale():
            return
        try:
            with directory_lock(self.directory, timeout=0):
                self.repair()
            log.info("%s: wrote a checkpoint of the derived indexes", self.directory)
        except KnowledgeBaseBusyError:
            pass
        except (OSError, sqlite3.Error) as exc:
            log.warning("%s: could not rewrite the index files (%s)", self.directory, exc)

    def _leftover_temp_files(self) -> list[Path]:
        # Every atomic write goes through a hidden ".NAME.*.tmp" file (see
        # atomic_write_bytes, flush and BM25Index.save).
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
        """Vectors already stored for embedded texts (``Chunk.index_text``) with these hashes.

        Re-ingesting an edited file mostly re-embeds text the store has seen; looking
        it up here is far cheaper than running the model again. Chunks stored before
        the index text existed were embedded from their text, so their text hash
        serves.
        """
        wanted = list(dict.fromkeys(hashes))
        found: dict[str, np.ndarray] = {}
        queries = (
            "SELECT index_hash, vector FROM chunks WHERE index_hash IN ({marks})",
            "SELECT text_hash, vector FROM chunks WHERE index_hash IS NULL "
            "AND text_hash IN ({marks})",
        )
        with self._lock:
            for query in queries:
                missing = [h for h in wanted if h not in found]
                for start in range(0, len(missing), 500):
                    part = missing[start : start + 500]
                    marks = ",".join("?" * len(part))
                    for key, blob in self._conn.execute(query.format(marks=marks), part):
                        found.setdefault(key, np.frombuffer(blob, dtype=np.float32))
        return found

    def _rows_by_id(self, select: str, ids: Sequence[int]) -> Iterator[tuple[Any, ...]]:
        """The rows of ``select`` for these ids, which go where it says ``IN ({marks})``.

        500 ids per statement: older SQLite builds allow at most 999 variables.
        The caller holds the lock.
        """
        wanted = [int(i) for i in ids]
        for start in range(0, len(wanted), 500):
            part = wanted[start : start + 500]
            marks = ",".join("?" * len(part))
            yield from self._conn.execute(select.format(marks=marks), part).fetchall()

    def chunks_by_id(self, ids: Sequence[int]) -> dict[int, tuple[str, str, int, int, int]]:
        """``id -> (text, source, page, start, end)`` for the ids that exist."""
        with self._lock:
            rows = self._rows_by_id(
                'SELECT c.id, c.text, d.source, c.page, c.start, c."end" '
                "FROM chunks c JOIN documents d ON d.id = c.doc_id WHERE c.id IN ({marks})",
                ids,
            )
            return {row[0]: row[1:] for row in rows}

    def unknown_shares(self, ids: Sequence[int]) -> dict[int, float]:
        with self._lock:
            try:
                return dict(
                    self._rows_by_id(
                        "SELECT id, unknown FROM chunks WHERE id IN ({marks}) "
                        "AND unknown IS NOT NULL",
                        ids,
                    )
                )
            except sqlite3.OperationalError:  # a catalog from before the column
                return {}

    def headings(self, ids: Sequence[int]) -> dict[int, str]:
        if not len(ids):
            return {}
        with self._lock:
            try:
                rows = self._rows_by_id(
                    "SELECT id, heading FROM chunks WHERE id IN ({marks}) AND heading IS NOT NULL",
                    ids,
                )
                found = dict(rows)
            except sqlite3.OperationalError:  # a catalog from before the column
                found = {}
        missing = [cid for cid in ids if cid not in found]
        if missing:  # chunks stored before headings were: derive them from the page
            found.update(super().headings(missing))
        return found

    def chunk_terms(self, ids: Sequence[int]) -> dict[int, list[str]]:
        if not len(ids):
            return {}
        with self._lock:
            # Terms made by another version of the tokenizer would not match the
            # query's; until a writer re-tokenizes them, the text is tokenized instead.
            if self._stored_tokenizer_version() != _tokenizer_version():
                return {}
            rows = self._rows_by_id("SELECT id, tokens FROM chunks WHERE id IN ({marks})", ids)
            return {cid: tokens.split() for cid, tokens in rows}

    def vectors_by_id(self, ids: Sequence[int]) -> np.ndarray:
        """The stored vectors of these chunks, in the given order."""
        if not len(ids):
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._lock:
            if hasattr(self._index, "id_map"):  # exact vectors in memory
                return np.vstack([self._index.reconstruct(int(i)) for i in ids])
            # An IVF-PQ index keeps only codes; the exact vectors are in the catalog.
            cache = self._vector_cache
            wanted = [int(i) for i in ids]
            found = {i: cache[i] for i in wanted if i in cache}
            unread = [i for i in dict.fromkeys(wanted) if i not in found]
            found.update(
                self._rows_by_id("SELECT id, vector FROM chunks WHERE id IN ({marks})", unread)
            )
            for cid, vector in found.items():
                cache[cid] = vector
                cache.move_to_end(cid)
            while len(cache) > VECTOR_CACHE_LIMIT:
                cache.popitem(last=False)
        missing = np.zeros(self.dimension * 4, dtype=np.uint8).tobytes()
        blob = b"".join(found.get(int(i), missing) for i in ids)
        return np.frombuffer(blob, dtype=np.float32).reshape(len(ids), self.dimension)

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
            exact = hasattr(self._index, "id_map")
            wanted = k if exact else max(IVF_RERANK_FACTOR * k, IVF_MIN_CANDIDATES)
            threads = faiss.omp_get_max_threads()
            faiss.omp_set_num_threads(1)
            try:
                scores, ids = self._index.search(query, wanted)
            finally:
                faiss.omp_set_num_threads(threads)
        found = [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]
        if exact or not found:
            return found
        # PQ scores are approximate: re-score the candidates with their exact vectors
        # (they are also what hybrid fusion and MMR compare).
        candidates = [cid for cid, _ in found]
        exact_scores = self.vectors_by_id(candidates) @ query[0]
        order = np.argsort(-exact_scores, kind="stable")[:k]
        return [(candidates[i], float(exact_scores[i])) for i in order]

    def lexical_search(self, query_tokens: Sequence[str], k: int) -> list[tuple[int, float]]:
        """Chunk ids and BM25 scores of the ``k`` best lexical matches."""
        with self._lexical_lock:
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
                self._switch_index_if_due()
                if self._checkpoint_due():
                    self.flush()
                else:
                    self.write_manifest()  # the counts; the checkpoint stays as it is

    @contextmanager
    def _transaction(self) -> Iterator[tuple[sqlite3.Connection, int]]:
        """One commit: yields the connection and the generation being written."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                generation = self._generation() + 1
                yield self._conn, generation
                self._conn.executemany(
                    "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)",
                    [("generation", str(generation)), ("updated_at", repr(time.time()))],
                )
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise

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
        with self._transaction() as (conn, generation):
            for doc in documents:
                removed.extend(self._delete_document(conn, doc.source, generation))
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
                        "tokens, vector, unknown, generation, heading, index_hash) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                            generation,
                            chunk.heading,
                            text_hash(chunk.index_text),
                        ),
                    )
                    ids.append(cur.lastrowid)
                added.append((np.asarray(ids, dtype=np.int64), vectors, list(doc.tokens)))
            # Only after the commit succeeds do the in-memory indexes change (below).
        self._apply(removed, added, generation)

    def remove_document(self, source: str) -> bool:
        """Delete a document and its chunks. Returns False if it was not stored."""
        if self.document(source) is None:
            return False
        with self._transaction() as (conn, generation):
            removed = self._delete_document(conn, source, generation)
        self._apply(removed, [], generation)
        return bool(removed)

    def _delete_document(self, conn: sqlite3.Connection, source: str, generation: int) -> list[int]:
        row = conn.execute("SELECT id FROM documents WHERE source = ?", (source,)).fetchone()
        if row is None:
            return []
        ids = [r[0] for r in conn.execute("SELECT id FROM chunks WHERE doc_id = ?", (row[0],))]
        # Logged in the same transaction, for whoever replays it (see the module notes).
        conn.execute(
            "INSERT OR IGNORE INTO deleted_chunks(id, added, removed) "
            "SELECT id, generation, ? FROM chunks WHERE doc_id = ?",
            (generation, row[0]),
        )
        conn.execute("DELETE FROM chunks WHERE doc_id = ?", (row[0],))
        conn.execute("DELETE FROM pages WHERE doc_id = ?", (row[0],))
        conn.execute("DELETE FROM documents WHERE id = ?", (row[0],))
        # A stored document with zero chunks still counts as found.
        return ids or [-1]

    def _apply(
        self,
        removed: list[int],
        added: list[tuple[np.ndarray, np.ndarray, list[Sequence[str]]]],
        generation: int,
    ) -> None:
        """Bring the in-memory indexes to ``generation``, which was just committed."""
        with self._lock, self._lexical_lock:
            try:
                real = np.asarray([i for i in removed if i >= 0], dtype=np.int64)
                if len(real):
                    self._index.remove_ids(real)
                    self._lexical.remove(real.tolist())
                for ids, vectors, tokens in added:
                    if len(ids):
                        self._index.add_with_ids(vectors, ids)
                        self._lexical.add(ids.tolist(), tokens)
            except BaseException:
                self._loaded_generation = -1  # the next refresh reloads from the catalog
                raise
            self._loaded_generation = generation
            self._changes_since_checkpoint += len(real) + sum(len(ids) for ids, _, _ in added)
            self._live = None


def _tokenizer_version() -> int:
    from ragqa.lexical import TOKENIZER_VERSION

    return TOKENIZER_VERSION
