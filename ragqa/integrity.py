"""Check that the parts of a knowledge-base directory agree with each other.

A knowledge base keeps its truth in ``catalog.sqlite`` and derives ``vectors.faiss``,
``lexical.npz`` and ``manifest.json`` from it (see :mod:`ragqa.stores.local`).
:func:`check_integrity` reads all of them, changes nothing, and sorts what it finds
into two kinds:

- **problems**: the catalog itself is damaged or contradicts itself (a chunk whose
  text is not in its page, a document whose chunk count is wrong, an unreadable
  file). Opening the knowledge base refuses, or would serve wrong answers; the
  remedy is a backup or a rebuild from the source files.
- **stale**: a derived file is missing or unreadable, the manifest's counts are
  behind the catalog, the checkpoint (the FAISS and BM25 files) is not the state
  of the catalog at the generation the manifest says it is, or an interrupted
  write left a temporary file behind. This is what a crash between the catalog
  commit and the index write leaves, and opening the knowledge base repairs it
  from the catalog.

A checkpoint that is merely older than the catalog is not stale: opening replays
the change log since (see :mod:`ragqa.stores.local`). It is checked against the
catalog as it was at the checkpoint's generation, which the log reconstructs.

Run it on a knowledge base that no process is writing to: a writer in the middle
of an ingest has, by design, committed more than its index files show yet.

Example:
    >>> report = check_integrity("my-kb")                           # doctest: +SKIP
    >>> report.ok, report.documents, report.chunks                  # doctest: +SKIP
    (True, 12, 480)
    >>> print(report.summary())                                     # doctest: +SKIP
    my-kb: OK (12 documents, 480 chunks, generation 7)
"""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

from ragqa.stores.base import FORMAT_VERSION, text_hash
from ragqa.stores.layout import CATALOG, LEXICAL, MANIFEST, VECTORS

__all__ = ["IntegrityReport", "check_integrity"]

# A problem list this long already says "rebuild"; more lines would bury it.
_MAX_REPORTED = 20
# Stored vectors and FAISS's copies are the same float32 values, so they should
# agree exactly; the tolerance only allows for a platform's float formatting.
_VECTOR_TOLERANCE = 1e-6
_REBUILD_HINT = "rebuild the knowledge base from its sources: `ragqa ingest SOURCES --kb NEW_DIR`"


@dataclass(frozen=True)
class IntegrityReport:
    """What :func:`check_integrity` found in one knowledge-base directory.

    Attributes:
        directory: the directory checked.
        problems: damage to the catalog (the source of truth). Each line names the
            file and what is wrong.
        stale: derived files that disagree with the catalog, and leftovers of an
            interrupted write. Opening the knowledge base rewrites them.
        documents: documents in the catalog (0 when it cannot be read).
        chunks: chunks in the catalog (0 when it cannot be read).
        generation: the catalog's generation, or ``None`` when it cannot be read.
    """

    directory: str
    problems: tuple[str, ...] = ()
    stale: tuple[str, ...] = ()
    documents: int = 0
    chunks: int = 0
    generation: int | None = None

    @property
    def ok(self) -> bool:
        """True when every part agrees: nothing damaged, nothing stale."""
        return not self.problems and not self.stale

    @property
    def repairable(self) -> bool:
        """True when opening the knowledge base is enough to make it :attr:`ok`."""
        return not self.problems

    def summary(self) -> str:
        """A few lines for a person: the verdict, then each finding.

        Example:
            >>> print(IntegrityReport("kb", stale=("vectors.faiss is missing",)).summary())
            kb: stale derived files (0 documents, 0 chunks); opening it rebuilds them
              - vectors.faiss is missing
        """
        counts = f"{self.documents} documents, {self.chunks} chunks"
        if self.ok:
            return f"{self.directory}: OK ({counts}, generation {self.generation})"
        if self.problems:
            head = f"{self.directory}: DAMAGED ({counts}); restore a backup or {_REBUILD_HINT}"
        else:
            head = f"{self.directory}: stale derived files ({counts}); opening it rebuilds them"
        return "\n".join([head, *(f"  - {line}" for line in (*self.problems, *self.stale))])


def check_integrity(directory: str | os.PathLike[str]) -> IntegrityReport:
    """Verify that a knowledge base's catalog, indexes and manifest agree.

    Checks, in order: the catalog opens and passes SQLite's ``quick_check``; its
    format is this version's; every document has the chunks and pages it claims,
    every chunk's text is its page's text between its offsets, and its stored text
    hash and vector are sound; the manifest names the same model, dimension,
    generation and counts; FAISS holds exactly the catalog's chunk ids with the
    same vectors; the BM25 index holds exactly the catalog's chunk ids.

    Nothing is written: this is safe to run beside readers. Never raises for a
    damaged directory; everything found is in the report.

    Args:
        directory: the knowledge-base directory.

    Returns:
        An :class:`IntegrityReport`; ``report.ok`` is the verdict.
    """
    path = Path(directory)
    checker = _Checker(path)
    checker.run()
    return IntegrityReport(
        directory=str(path),
        problems=tuple(checker.problems[:_MAX_REPORTED]),
        stale=tuple(checker.stale[:_MAX_REPORTED]),
        documents=checker.documents,
        chunks=checker.chunks,
        generation=checker.generation,
    )


class _Checker:
    """One run of :func:`check_integrity`; collects findings as it goes."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.problems: list[str] = []
        self.stale: list[str] = []
        self.documents = 0
        self.chunks = 0
        self.generation: int | None = None
        self.dimension = 0
        self.embedding_model = ""
        self.tokenizer_version = 0
        self.log_since: int | None = None  # None: a catalog from before the change log

    def run(self) -> None:
        if not self.directory.is_dir():
            self.problems.append(f"{self.directory} is not a directory")
            return
        conn = self._open_catalog()
        if conn is None:
            return
        try:
            if not self._check_meta(conn):
                return
            self._check_contents(conn)
            vectors = _StoredVectors(conn, self.dimension)
        except sqlite3.DatabaseError as exc:
            # quick_check reads every page, so this only happens if the file
            # changes under us; report it rather than fail the check itself.
            self.problems.append(f"{CATALOG} could not be read to the end ({exc})")
            conn.close()
            return
        try:
            checkpoint = self._check_manifest()
            chunk_ids = self._checkpoint_ids(conn, checkpoint)
            if chunk_ids is not None:
                self._check_faiss(chunk_ids, vectors)
                self._check_lexical(chunk_ids, checkpoint)
            self._check_leftovers()
        finally:
            conn.close()

    # ------------------------------------------------------------------ catalog

    def _open_catalog(self) -> sqlite3.Connection | None:
        catalog = self.directory / CATALOG
        if not catalog.is_file():
            self.problems.append(f"{CATALOG} is missing: the documents are gone")
            return None
        try:
            # mode=rw: never create an empty catalog where there was none.
            conn = sqlite3.connect(
                f"file:{quote(str(catalog.resolve()))}?mode=rw", uri=True, timeout=30
            )
            rows = conn.execute("PRAGMA quick_check").fetchall()
        except sqlite3.DatabaseError as exc:
            self.problems.append(f"{CATALOG} is not a readable SQLite database ({exc})")
            return None
        verdict = [row[0] for row in rows]
        if verdict != ["ok"]:
            conn.close()
            shown = "; ".join(verdict[:3])
            self.problems.append(f"{CATALOG} fails SQLite's quick_check: {shown}")
            return None
        return conn

    def _check_meta(self, conn: sqlite3.Connection) -> bool:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        missing = {"meta", "documents", "chunks"} - tables
        if missing:
            self.problems.append(
                f"{CATALOG} has no {', '.join(sorted(missing))} table: it was never fully created"
            )
            return False
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        try:
            fmt = int(meta["format_version"])
            self.dimension = int(meta["dimension"])
            self.embedding_model = meta["embedding_model"]
            self.generation = int(meta["generation"])
            self.tokenizer_version = int(meta.get("tokenizer_version", 0))
            columns = {row[1] for row in conn.execute("PRAGMA table_info(chunks)")}
            if "generation" in columns and "log_since" in meta:
                self.log_since = int(meta["log_since"])
        except (KeyError, ValueError) as exc:
            self.problems.append(f"{CATALOG}'s meta table is incomplete ({exc!r} is wrong)")
            return False
        if fmt != FORMAT_VERSION:
            self.problems.append(
                f"{CATALOG} is format {fmt}, and this ragqa reads format {FORMAT_VERSION}"
            )
            return False
        return True

    def _check_contents(self, conn: sqlite3.Connection) -> None:
        """Check every document against its chunks and pages."""
        has_pages = bool(
            conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'pages'").fetchone()
        )
        self.documents, self.chunks = conn.execute(
            "SELECT (SELECT COUNT(*) FROM documents), (SELECT COUNT(*) FROM chunks)"
        ).fetchone()
        orphans = conn.execute(
            "SELECT COUNT(*) FROM chunks WHERE doc_id NOT IN (SELECT id FROM documents)"
        ).fetchone()[0]
        if orphans:
            self.problems.append(f"{CATALOG}: {orphans} chunks belong to no document")
        if has_pages:
            orphans = conn.execute(
                "SELECT COUNT(*) FROM pages WHERE doc_id NOT IN (SELECT id FROM documents)"
            ).fetchone()[0]
            if orphans:
                self.problems.append(f"{CATALOG}: {orphans} pages belong to no document")
        vector_bytes = self.dimension * 4
        # Documents stored before ragqa kept page texts have none, which is fine;
        # one stored after a document that has them must have them too.
        pages_since = (
            conn.execute(
                "SELECT MIN(added_at) FROM documents WHERE id IN (SELECT doc_id FROM pages)"
            ).fetchone()[0]
            if has_pages
            else None
        )
        documents = conn.execute(
            "SELECT id, source, pages, chunks, added_at FROM documents ORDER BY id"
        )
        for doc_id, source, page_count, chunk_count, added_at in documents.fetchall():
            pages: dict[int, str] = {}
            if has_pages:
                pages = dict(
                    conn.execute("SELECT page, text FROM pages WHERE doc_id = ?", (doc_id,))
                )
            expects_pages = pages_since is not None and added_at > pages_since
            if (pages or expects_pages) and len(pages) != page_count:
                self.problems.append(
                    f"{source}: the catalog says {page_count} pages but stores {len(pages)}"
                )
            rows = conn.execute(
                'SELECT page, start, "end", text, text_hash, length(vector), vector '
                "FROM chunks WHERE doc_id = ? ORDER BY id",
                (doc_id,),
            ).fetchall()
            if len(rows) != chunk_count:
                self.problems.append(
                    f"{source}: the catalog says {chunk_count} chunks but stores {len(rows)}"
                )
            for page, start, end, text, stored_hash, size, vector in rows:
                where = f"{source}, page {page}, chars {start}-{end}"
                if text_hash(text) != stored_hash:
                    self.problems.append(f"{where}: the chunk's text hash is wrong")
                if size != vector_bytes:
                    self.problems.append(
                        f"{where}: the vector has {size} bytes, not {vector_bytes}"
                    )
                elif not np.isfinite(np.frombuffer(vector, dtype=np.float32)).all():
                    self.problems.append(f"{where}: the vector is not finite")
                if pages and pages.get(page, "")[start:end] != text:
                    self.problems.append(f"{where}: the chunk's text is not its page's text")

    # ---------------------------------------------------------------- derived

    def _check_manifest(self) -> dict[str, Any]:
        """Check the manifest's model and counts; return its checkpoint block."""
        path = self.directory / MANIFEST
        if not path.is_file():
            self.stale.append(f"{MANIFEST} is missing")
            return {}
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as exc:
            self.stale.append(f"{MANIFEST} is unreadable ({exc})")
            return {}
        if (
            data.get("embedding_model") != self.embedding_model
            or data.get("dimension") != self.dimension
        ):
            # Opening refuses this (it cannot tell which side is right), so it is
            # a problem, not something an open repairs.
            self.problems.append(
                f"{MANIFEST} names model {data.get('embedding_model')!r} with "
                f"{data.get('dimension')} dimensions, but {CATALOG} says "
                f"{self.embedding_model!r} with {self.dimension}; delete {MANIFEST} to "
                "have it rewritten from the catalog"
            )
            return {}
        expected = {
            "format_version": FORMAT_VERSION,
            "generation": self.generation,
            "documents": self.documents,
            "chunks": self.chunks,
        }
        for key, value in expected.items():
            if data.get(key) != value:
                self.stale.append(f"{MANIFEST} says {key} {data.get(key)!r}, the catalog {value!r}")
        checkpoint = data.get("checkpoint")
        if not isinstance(checkpoint, dict) or not {"generation", "chunks"} <= set(checkpoint):
            self.stale.append(f"{MANIFEST} does not describe the derived files")
            return {}
        return checkpoint

    def _checkpoint_ids(self, conn: sqlite3.Connection, checkpoint: dict[str, Any]) -> Any:
        """The chunk ids the derived files must hold: the catalog's at the
        checkpoint's generation, rebuilt from the change log. None if unknowable."""
        if not checkpoint:
            return None
        base = checkpoint["generation"]
        if not isinstance(base, int) or self.generation is None or base > self.generation:
            self.stale.append(
                f"{MANIFEST} names a checkpoint at generation {base!r}, and the catalog is "
                f"at {self.generation}"
            )
            return None
        if self.log_since is None or base < self.log_since:
            self.stale.append(
                f"the derived files are from generation {base}, before the change log "
                f"starts ({self.log_since}); opening rebuilds them"
            )
            return None
        ids = [
            row[0]
            for row in conn.execute(
                "SELECT id FROM chunks WHERE generation <= ? UNION "
                "SELECT id FROM deleted_chunks WHERE added <= ? AND removed > ? ORDER BY 1",
                (base, base, base),
            )
        ]
        if checkpoint["chunks"] != len(ids):
            self.stale.append(
                f"{MANIFEST} says the derived files hold {checkpoint['chunks']!r} chunks, "
                f"the catalog had {len(ids)} at generation {base}"
            )
        files = checkpoint.get("files")
        if isinstance(files, dict):
            for name, recorded in files.items():
                try:
                    stat = (self.directory / name).stat()
                except OSError:
                    continue  # reported as missing below
                if [stat.st_size, stat.st_mtime_ns] != recorded:
                    self.stale.append(f"{name} is not the file {MANIFEST}'s checkpoint names")
        return np.asarray(ids, dtype=np.int64)

    def _check_faiss(self, chunk_ids: np.ndarray, vectors: _StoredVectors) -> None:
        import faiss

        path = self.directory / VECTORS
        if not path.is_file():
            self.stale.append(f"{VECTORS} is missing")
            return
        try:
            index = faiss.read_index(str(path))
            stored_ids = _faiss_ids(index)
        except Exception as exc:  # faiss raises RuntimeError with C++ text, or worse
            self.stale.append(f"{VECTORS} is unreadable ({_one_line(exc)})")
            return
        if index.d != self.dimension:
            self.stale.append(f"{VECTORS} has {index.d} dimensions, not {self.dimension}")
            return
        if index.ntotal != len(chunk_ids):
            self.stale.append(
                f"{VECTORS} holds {index.ntotal} vectors, the catalog had {len(chunk_ids)} "
                "chunks at the checkpoint's generation"
            )
            return
        if not np.array_equal(np.sort(stored_ids), chunk_ids):
            self.stale.append(f"{VECTORS} holds other chunk ids than the catalog")
            return
        if not hasattr(index, "id_map"):
            return  # IVF-PQ keeps codes, not vectors: nothing exact to compare
        in_checkpoint = set(chunk_ids.tolist())
        for ids, expected in vectors:
            # Chunks stored after the checkpoint are not in it (and those deleted
            # since are gone from the catalog): compare the rest.
            keep = np.fromiter((int(i) in in_checkpoint for i in ids), dtype=bool, count=len(ids))
            if not keep.any():
                continue
            found = np.vstack([index.reconstruct(int(i)) for i in ids[keep]])
            if not np.allclose(found, expected[keep], atol=_VECTOR_TOLERANCE):
                self.stale.append(f"{VECTORS} holds other vectors than the catalog")
                return

    def _check_lexical(self, chunk_ids: np.ndarray, checkpoint: dict[str, Any]) -> None:
        from ragqa.errors import RagqaError
        from ragqa.lexical import TOKENIZER_VERSION, BM25Index

        path = self.directory / LEXICAL
        if not path.is_file():
            self.stale.append(f"{LEXICAL} is missing")
            return
        try:
            lexical = BM25Index.load(path)
        except RagqaError as exc:
            self.stale.append(f"{LEXICAL} is unreadable ({_one_line(exc)})")
            return
        if len(lexical) != len(chunk_ids) or not all(int(i) in lexical for i in chunk_ids):
            self.stale.append(
                f"{LEXICAL} holds {len(lexical)} chunks, not the {len(chunk_ids)} the catalog "
                "had at the checkpoint's generation"
            )
        if self.tokenizer_version != TOKENIZER_VERSION:
            self.stale.append(
                f"the lexical terms were made by tokenizer version {self.tokenizer_version}, "
                f"not {TOKENIZER_VERSION}"
            )
        elif checkpoint.get("tokenizer_version") != self.tokenizer_version:
            self.stale.append(f"{LEXICAL} was built from terms of another tokenizer version")

    def _check_leftovers(self) -> None:
        # Every atomic write goes to a hidden ".NAME.*.tmp" file first and renames
        # it; one that is still there is from a write that was interrupted.
        for name in (MANIFEST, VECTORS, LEXICAL, CATALOG):
            for leftover in sorted(self.directory.glob(f".{name}.*.tmp")):
                self.stale.append(f"{leftover.name} is left over from an interrupted write")


class _StoredVectors:
    """The catalog's chunk vectors in id order, in batches: ``(ids, vectors)``."""

    def __init__(self, conn: sqlite3.Connection, dimension: int, batch: int = 5000) -> None:
        self._conn = conn
        self._dimension = dimension
        self._batch = batch

    def __iter__(self) -> Any:
        last = -1
        while True:
            rows = self._conn.execute(
                "SELECT id, vector FROM chunks WHERE id > ? AND length(vector) = ? "
                "ORDER BY id LIMIT ?",
                (last, self._dimension * 4, self._batch),
            ).fetchall()
            if not rows:
                return
            ids = np.asarray([row[0] for row in rows], dtype=np.int64)
            vectors = np.frombuffer(b"".join(row[1] for row in rows), dtype=np.float32)
            yield ids, vectors.reshape(len(rows), self._dimension)
            last = int(ids[-1])


def _faiss_ids(index: Any) -> np.ndarray:
    """The chunk ids a FAISS index holds: an IDMap2's map, or an IVF index's lists."""
    import faiss

    index = faiss.downcast_index(index)
    if hasattr(index, "id_map"):
        return faiss.vector_to_array(index.id_map)
    ivf = faiss.extract_index_ivf(index)
    lists = ivf.invlists
    parts = [
        faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy()
        for i in range(ivf.nlist)
        if lists.list_size(i)
    ]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 160 else text[:159] + "…"
