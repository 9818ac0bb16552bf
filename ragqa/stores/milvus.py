"""Milvus as a knowledge base's store: Milvus Lite in one file, or a Milvus server.

Locations (see :mod:`ragqa.stores`)::

    milvus:///data/papers.db              Milvus Lite (pymilvus + milvus-lite), embedded
    milvus:///data/all.db?name=papers     several knowledge bases in one Lite file
    milvus://milvus.internal:19530/papers a Milvus server or cluster

A knowledge base named ``NAME`` is two collections:

* ``NAME_chunks``: one row per chunk (id, text, source, page, offsets, the text's
  hash, ragqa's lexical terms, the vector) plus a sparse field that Milvus fills
  itself from the terms with its BM25 function;
* ``NAME_catalog``: metadata (format version, model, dimension, id counter), one
  row per document and the documents' page texts.

**Lexical search is Milvus's own BM25 full-text search**, over the terms that
:func:`ragqa.lexical.tokenize` makes (jieba words and character n-grams for
Chinese, stemmed words for English), joined by spaces. Milvus only splits them
apart again (the ``standard`` analyzer on Milvus Lite, which keeps runs of word
characters, and ``whitespace`` on a server, whose ``standard`` tokenizer would cut
Chinese words into characters), with ragqa's k1 = 1.2 and b = 0.75, so both
backends score the same terms the same way.

**Writes.** Milvus has no transactions, so a document is written in an order that
makes its catalog row the commit point: the new chunks and pages go in under a new
version number, then the document row names that version, then the old version's
rows are deleted. Readers only return chunks of a document's current version, so
they see the old version or the new one, never a mix. A writer that dies part-way
leaves rows of a version no document row names; the next writer deletes them (each
write is first noted as pending in the catalog, so this needs no scan).

Writers on Milvus Lite hold a file lock beside the ``.db`` file. A Milvus server
cannot offer ragqa a lock: run one writer per knowledge base at a time (a batch
job or ``ingest/ray_ingest.py``'s driver); any number of readers can search.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import numpy as np

from ragqa.errors import ConfigError, IndexCorruptError, IndexMismatchError, RagqaError
from ragqa.stores.base import FORMAT_VERSION, Manifest, NewDocument, Store, text_hash
from ragqa.types import DocumentInfo

__all__ = ["MilvusStore"]

log = logging.getLogger(__name__)

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,200}")
DEFAULT_NAME = "ragqa"
# Milvus's VARCHAR holds at most 65,535 bytes. Page texts are stored in parts of
# this many characters (4 bytes each at most in UTF-8).
_MAX_VARCHAR = 65_535
_PAGE_PART_CHARS = _MAX_VARCHAR // 4
_SOURCE_BYTES = 4_096
# Filter expressions list ids; keep each one well inside Milvus's expression limit.
_BATCH = 500
_QUERY_WINDOW = 16_384  # the most rows one Milvus query returns
_BM25_K1, _BM25_B = 1.2, 0.75  # as ragqa.lexical.BM25Index
# The catalog needs no vectors, but every Milvus collection must have one.
_PLACEHOLDER = [0.0, 0.0]


def doc_key(source: str) -> str:
    """A document's key in Milvus: a hash, so that filter expressions never need
    to quote a file name.

    Example:
        >>> len(doc_key("/home/me/notes.md"))
        32
    """
    return hashlib.blake2b(source.encode("utf-8"), digest_size=16).hexdigest()


def _connection(rest: str) -> tuple[str, str, Path | None]:
    """``(uri, knowledge-base name, lock file)`` from what follows ``milvus://``."""
    path, _, query = rest.partition("?")
    params = parse_qs(query)
    name = params.get("name", [""])[0]
    if path.startswith("/") or path.startswith("~") or path.endswith(".db"):
        # Milvus Lite: a local file. pymilvus starts the embedded engine for it.
        db = Path(path).expanduser()
        db.parent.mkdir(parents=True, exist_ok=True)
        uri, lock = str(db), db.with_name(db.name + ".lock")
    else:
        host, _, segment = path.partition("/")
        if not host:
            raise ConfigError(f"milvus://{rest}: give HOST:PORT, e.g. milvus://localhost:19530/kb")
        name = name or segment.strip("/")
        uri, lock = f"http://{host}", None
    name = name or DEFAULT_NAME
    if not _NAME.fullmatch(name):
        raise ConfigError(
            f"milvus://{rest}: {name!r} cannot name Milvus collections; use letters, "
            "digits and _ (not first a digit)"
        )
    return uri, name, lock


def _client(uri: str, token: str, location: str) -> Any:
    try:
        from pymilvus import MilvusClient
    except ImportError:
        raise ConfigError(
            "the Milvus store needs pymilvus (and milvus-lite for local files): "
            "pip install 'ragqa[milvus]'"
        ) from None
    # Milvus Lite has no server-side timestamp for iterators, and pymilvus warns
    # so; the client-side one it falls back to is right.
    logging.getLogger("pymilvus.client.iterator.query_iterator").setLevel(logging.ERROR)
    try:
        return MilvusClient(uri=uri, token=token, timeout=30)
    except Exception as exc:  # pymilvus raises MilvusException and grpc errors
        raise RagqaError(f"cannot reach Milvus at {location}: {_one_line(exc)}") from None


def _one_line(exc: BaseException) -> str:
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return " ".join(str(message).split())[:300]


class MilvusStore(Store):
    """A knowledge base in Milvus collections. Create it with :meth:`create`, open it
    with :meth:`open`; both take what follows ``milvus://`` in a location."""

    def __init__(self, client: Any, uri: str, name: str, location: str, lock: Path | None) -> None:
        self._client = client
        self.uri = uri
        self.name = name
        self.location = location
        self._lock_path = lock
        self._chunks = f"{name}_chunks"
        self._catalog = f"{name}_catalog"
        self.lexical_engine = (
            "Milvus BM25 full-text search (Milvus Lite), over ragqa's terms"
            if lock is not None
            else "Milvus BM25 full-text search, over ragqa's terms"
        )
        for collection in (self._chunks, self._catalog):  # a reopened one starts released
            client.load_collection(collection)
        self._meta = self._read_meta()
        self._manifest: Manifest | None = None

    # ----------------------------------------------------------------- opening

    @classmethod
    def _connect(cls, rest: str, token: str) -> tuple[Any, str, str, str, Path | None]:
        uri, name, lock = _connection(rest)
        location = f"milvus://{rest}"
        return _client(uri, token, location), uri, name, location, lock

    @classmethod
    def exists(cls, rest: str, *, token: str = "") -> bool:
        client, _, name, _, _ = cls._connect(rest, token)
        try:
            return bool(client.has_collection(f"{name}_catalog"))
        finally:
            client.close()

    @classmethod
    def create(
        cls, rest: str, *, embedding_model: str, dimension: int, token: str = ""
    ) -> MilvusStore:
        """Create the collections of a new, empty knowledge base."""
        client, uri, name, location, lock = cls._connect(rest, token)
        if client.has_collection(f"{name}_catalog") or client.has_collection(f"{name}_chunks"):
            client.close()
            raise RagqaError(f"{location} already holds a knowledge base; open it instead")
        try:
            _create_collections(client, name, dimension, lite=lock is not None)
            now = time.time()
            meta = {
                "format_version": FORMAT_VERSION,
                "embedding_model": embedding_model,
                "dimension": dimension,
                "created_at": now,
                "generation": 0,
                "next_id": 1,
            }
            client.upsert(f"{name}_catalog", [_meta_row(meta)])
            client.flush(f"{name}_catalog")
        except RagqaError:
            client.close()
            raise
        except Exception as exc:
            client.close()
            raise RagqaError(f"cannot create {location}: {_one_line(exc)}") from None
        return cls(client, uri, name, location, lock)

    @classmethod
    def open(cls, rest: str, *, token: str = "") -> MilvusStore:
        """Open an existing knowledge base, checking its format version."""
        client, uri, name, location, lock = cls._connect(rest, token)
        if not client.has_collection(f"{name}_catalog"):
            client.close()
            raise RagqaError(
                f"no knowledge base at {location}: create one with "
                f"`ragqa ingest FILES --store {location}`"
            )
        store = cls(client, uri, name, location, lock)
        if store._meta.get("format_version") != FORMAT_VERSION:
            store.close()
            raise IndexMismatchError(
                f"{location} uses knowledge-base format {store._meta.get('format_version')}, "
                f"and this ragqa reads format {FORMAT_VERSION}. Rebuild it: "
                "`ragqa ingest SOURCES --store NEW_LOCATION`"
            )
        return store

    def close(self) -> None:
        self._client.close()

    # -------------------------------------------------------------- catalog

    def _read_meta(self) -> dict[str, Any]:
        rows = self._client.get(self._catalog, ids=["meta"], output_fields=["value"])
        if not rows:
            raise IndexCorruptError(
                f"{self.location}: the catalog has no metadata row. Rebuild the knowledge "
                "base: `ragqa ingest SOURCES --store NEW_LOCATION`"
            )
        return json.loads(rows[0]["value"])

    def _write_meta(self) -> None:
        self._client.upsert(self._catalog, [_meta_row(self._meta)])

    @property
    def manifest(self) -> Manifest:
        if self._manifest is None:
            documents = self._document_rows()
            self._manifest = Manifest(
                format_version=int(self._meta["format_version"]),
                embedding_model=str(self._meta["embedding_model"]),
                dimension=int(self._meta["dimension"]),
                documents=len(documents),
                chunks=sum(d["chunks"] for d in documents.values()),
                generation=int(self._meta["generation"]),
                created_at=float(self._meta["created_at"]),
                updated_at=float(self._meta.get("updated_at", self._meta["created_at"])),
            )
        return self._manifest

    def refresh(self) -> bool:
        """Milvus serves every reader the latest data; only the manifest is cached."""
        meta = self._read_meta()
        changed = meta.get("generation") != self._meta.get("generation")
        if changed:
            self._meta, self._manifest = meta, None
        return changed

    def _query(self, collection: str, expr: str, fields: list[str]) -> Iterator[dict[str, Any]]:
        """Every row matching ``expr``.

        One query returns at most 16,384 rows, so larger results go through an
        iterator. Small ones do not: an iterator first asks the server for a
        timestamp, which Milvus Lite answers only after a second of retries.
        """
        counted = self._client.query(collection, filter=expr, output_fields=["count(*)"])
        count = int(counted[0]["count(*)"]) if counted else 0
        if count == 0:
            return
        if count <= _QUERY_WINDOW:
            yield from self._client.query(
                collection, filter=expr, output_fields=fields, limit=count
            )
            return
        iterator = self._client.query_iterator(
            collection, batch_size=1000, filter=expr, output_fields=fields
        )
        try:
            while batch := iterator.next():
                yield from batch
        finally:
            iterator.close()

    def _document_rows(self, keys: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
        """``doc key -> document record`` for all documents, or for ``keys``."""
        if keys is None:
            rows = self._query(self._catalog, 'kind == "doc"', ["key", "value"])
        else:
            wanted = [f"doc:{k}" for k in dict.fromkeys(keys)]
            rows = (
                row
                for part in _batches(wanted)
                for row in self._client.get(self._catalog, ids=part, output_fields=["value"])
            )
        out = {}
        for row in rows:
            record = json.loads(row["value"])
            out[record["key"]] = record
        return out

    def documents(self) -> list[DocumentInfo]:
        records = sorted(self._document_rows().values(), key=lambda r: r["source"])
        return [_document_info(r) for r in records]

    def document(self, source: str) -> DocumentInfo | None:
        record = self._document_rows([doc_key(source)]).get(doc_key(source))
        return _document_info(record) if record else None

    def page_text(self, source: str, page: int) -> str | None:
        key = doc_key(source)
        record = self._document_rows([key]).get(key)
        if record is None:
            return None
        rows = self._client.query(
            self._catalog,
            filter=f'kind == "page" and doc == "{key}" and version == {int(record["version"])} '
            f"and page == {int(page)}",
            output_fields=["part", "value"],
        )
        if not rows:
            return None
        return "".join(row["value"] for row in sorted(rows, key=lambda r: r["part"]))

    def counts(self) -> tuple[int, int]:
        documents = self._document_rows()
        return len(documents), sum(d["chunks"] for d in documents.values())

    # --------------------------------------------------------------- chunks

    def known_vectors(self, hashes: Iterable[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        for part in _batches(list(dict.fromkeys(hashes))):
            quoted = ", ".join(f'"{h}"' for h in part)
            for row in self._client.query(
                self._chunks,
                filter=f"text_hash in [{quoted}]",
                output_fields=["text_hash", "vector"],
            ):
                found.setdefault(row["text_hash"], np.asarray(row["vector"], dtype=np.float32))
        return found

    def _chunk_rows(self, ids: Sequence[int], fields: list[str]) -> dict[int, dict[str, Any]]:
        """Rows of the chunks that belong to their document's current version."""
        rows: dict[int, dict[str, Any]] = {}
        for part in _batches([int(i) for i in ids]):
            for row in self._client.get(
                self._chunks, ids=part, output_fields=[*fields, "doc", "version"]
            ):
                rows[int(row["id"])] = row
        current = self._document_rows({row["doc"] for row in rows.values()})
        return {
            cid: row
            for cid, row in rows.items()
            if (doc := current.get(row["doc"])) is not None and doc["version"] == row["version"]
        }

    def chunks_by_id(self, ids: Sequence[int]) -> dict[int, tuple[str, str, int, int, int]]:
        rows = self._chunk_rows(ids, ["text", "source", "page", "start", "end"])
        return {
            cid: (r["text"], r["source"], int(r["page"]), int(r["start"]), int(r["end"]))
            for cid, r in rows.items()
        }

    def unknown_shares(self, ids: Sequence[int]) -> dict[int, float]:
        rows = self._chunk_rows(ids, ["unknown"])
        return {cid: float(r["unknown"]) for cid, r in rows.items() if r["unknown"] >= 0}

    def vectors_by_id(self, ids: Sequence[int]) -> np.ndarray:
        vectors: dict[int, list[float]] = {}
        for part in _batches([int(i) for i in ids]):
            for row in self._client.get(self._chunks, ids=part, output_fields=["vector"]):
                vectors[int(row["id"])] = row["vector"]
        if not ids:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.asarray([vectors[int(i)] for i in ids], dtype=np.float32)

    def dense_search(self, query_vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        vector = np.asarray(query_vector, dtype=np.float32).reshape(-1)
        if len(vector) != self.dimension:
            raise IndexMismatchError(
                f"{self.location} stores {self.dimension}-dimensional vectors, but the "
                f"query vector has {len(vector)}. Rebuild the knowledge base with this model."
            )
        result = self._client.search(
            self._chunks,
            data=[vector.tolist()],
            anns_field="vector",
            limit=k,
            output_fields=["id"],
            search_params={"metric_type": "IP"},
        )
        return [(int(hit["id"]), float(hit["distance"])) for hit in result[0]]

    def lexical_search(self, query_tokens: Sequence[str], k: int) -> list[tuple[int, float]]:
        if not query_tokens:
            return []
        result = self._client.search(
            self._chunks,
            data=[" ".join(query_tokens)],
            anns_field="sparse",
            limit=k,
            output_fields=["id"],
            search_params={"metric_type": "BM25"},
        )
        # BM25 scores are positive; Milvus Lite reports them negated, as distances.
        return [(int(hit["id"]), abs(float(hit["distance"]))) for hit in result[0]]

    # -------------------------------------------------------------- writing

    @contextmanager
    def writing(self, timeout: float) -> Iterator[None]:
        if self._lock_path is None:
            lock = _null_lock()
        else:
            from ragqa.stores.locks import file_lock

            lock = file_lock(self._lock_path, timeout, what=f"knowledge base {self.location}")
        with lock:
            self.refresh()
            self._clean_up_interrupted_writes()
            try:
                yield
            finally:
                self._client.flush(self._chunks)
                self._client.flush(self._catalog)

    def write_documents(self, documents: Sequence[NewDocument]) -> None:
        """Write each document in turn (see the module notes for the order).

        Milvus has no transaction spanning several documents, so everything that
        can be wrong with the batch is checked before the first row is written:
        a bad batch changes nothing, as with the local store.
        """
        for doc in documents:
            self._validate(doc)
        for doc in documents:
            self._write_document(doc)

    def _validate(self, doc: NewDocument) -> None:
        vectors = np.asarray(doc.vectors, dtype=np.float32)
        if len(doc.chunks) and (vectors.ndim != 2 or vectors.shape[1] != self.dimension):
            raise IndexMismatchError(
                f"{self.location} stores {self.dimension}-dimensional vectors, but the "
                f"embedding model made {vectors.shape[-1]}-dimensional ones. Rebuild the "
                "knowledge base with this model."
            )
        if not len(vectors) == len(doc.chunks) == len(doc.tokens):
            raise ValueError(
                f"{doc.source}: {len(doc.chunks)} chunks, {len(vectors)} vectors and "
                f"{len(doc.tokens)} term lists"
            )
        _check_size(doc.source, "the file name", doc.source, _SOURCE_BYTES)
        for chunk, terms in zip(doc.chunks, doc.tokens, strict=True):
            _check_size(doc.source, "a chunk", chunk.text, _MAX_VARCHAR)
            _check_size(doc.source, "a chunk's terms", " ".join(terms), _MAX_VARCHAR)

    def _write_document(self, doc: NewDocument) -> None:
        key = doc_key(doc.source)
        vectors = np.asarray(doc.vectors, dtype=np.float32)
        rows = []
        first_id = self._allocate(len(doc.chunks))
        version = int(self._meta["generation"])
        shares = doc.unknown_shares or [-1.0] * len(doc.chunks)
        for offset, (chunk, vector, terms, share) in enumerate(
            zip(doc.chunks, vectors, doc.tokens, shares, strict=True)
        ):
            joined = " ".join(terms)
            rows.append(
                {
                    "id": first_id + offset,
                    "doc": key,
                    "version": version,
                    "source": doc.source,
                    "page": chunk.page,
                    "start": chunk.start,
                    "end": chunk.end,
                    "text": chunk.text,
                    "text_hash": text_hash(chunk.index_text),
                    "unknown": float(share),
                    "terms": joined,
                    "vector": vector.tolist(),
                }
            )
        pages = [
            {
                "key": f"page:{key}:{version}:{number}:{part}",
                "kind": "page",
                "doc": key,
                "version": version,
                "page": number,
                "part": part,
                "value": text[start : start + _PAGE_PART_CHARS],
                "placeholder": _PLACEHOLDER,
            }
            for number, text in doc.page_texts
            for part, start in enumerate(range(0, max(len(text), 1), _PAGE_PART_CHARS))
        ]
        # Noted first, so that whoever writes next cleans up if this writer dies.
        self._client.upsert(self._catalog, [_pending_row(key, version)])
        for part in _batches(rows):
            self._client.insert(self._chunks, list(part))
        for part in _batches(pages):
            self._client.insert(self._catalog, list(part))
        record = {
            "key": key,
            "source": doc.source,
            "content_hash": doc.content_hash,
            "pages": doc.pages,
            "chunks": len(doc.chunks),
            "added_at": time.time(),
            "version": version,
        }
        self._client.upsert(self._catalog, [_document_row(record)])  # the commit point
        self._drop_other_versions(key, version)
        self._client.delete(self._catalog, ids=[f"pending:{key}"])

    def remove_document(self, source: str) -> bool:
        key = doc_key(source)
        if key not in self._document_rows([key]):
            return False
        self._allocate(0)  # a new generation
        self._client.upsert(self._catalog, [_pending_row(key, -1)])
        self._client.delete(self._catalog, ids=[f"doc:{key}"])  # the commit point
        self._drop_other_versions(key, None)
        self._client.delete(self._catalog, ids=[f"pending:{key}"])
        return True

    def _allocate(self, count: int) -> int:
        """Reserve ``count`` chunk ids and start a new generation; the first id.

        The counter is saved before any chunk is written, so an id is never
        handed out twice, even after a crash.
        """
        first = int(self._meta["next_id"])
        self._meta["next_id"] = first + count
        self._meta["generation"] = int(self._meta["generation"]) + 1
        self._meta["updated_at"] = time.time()
        self._write_meta()
        self._manifest = None
        return first

    def _drop_other_versions(self, key: str, keep: int | None) -> None:
        """Delete a document's chunks and pages of every version but ``keep``."""
        other = "" if keep is None else f" and version != {keep}"
        self._client.delete(self._chunks, filter=f'doc == "{key}"{other}')
        self._client.delete(self._catalog, filter=f'kind == "page" and doc == "{key}"{other}')

    def _clean_up_interrupted_writes(self) -> None:
        """Delete the rows of writes that a crashed writer left unfinished.

        Only a writer may do this (inside :meth:`writing`): the pending note of a
        writer that is still alive looks the same as that of a dead one.
        """
        pending = list(self._query(self._catalog, 'kind == "pending"', ["key", "value"]))
        if not pending:
            return
        current = self._document_rows(json.loads(r["value"])["doc"] for r in pending)
        for row in pending:
            key = json.loads(row["value"])["doc"]
            record = current.get(key)
            self._drop_other_versions(key, None if record is None else int(record["version"]))
            self._client.delete(self._catalog, ids=[row["key"]])
        log.info("%s: cleaned up %d interrupted document writes", self.location, len(pending))

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        out["collections"] = f"{self._chunks}, {self._catalog}"
        return out


def _create_collections(client: Any, name: str, dimension: int, *, lite: bool) -> None:
    from pymilvus import DataType, Function, FunctionType

    chunks = client.create_schema(auto_id=False, enable_dynamic_field=False)
    chunks.add_field("id", DataType.INT64, is_primary=True)
    chunks.add_field("doc", DataType.VARCHAR, max_length=64)
    chunks.add_field("version", DataType.INT64)
    chunks.add_field("source", DataType.VARCHAR, max_length=_SOURCE_BYTES)
    chunks.add_field("page", DataType.INT64)
    chunks.add_field("start", DataType.INT64)
    chunks.add_field("end", DataType.INT64)
    chunks.add_field("text", DataType.VARCHAR, max_length=_MAX_VARCHAR)
    chunks.add_field("text_hash", DataType.VARCHAR, max_length=64)
    chunks.add_field("unknown", DataType.FLOAT)  # [UNK] share; -1 when unknown
    # Milvus Lite knows only the standard and jieba tokenizers; its standard one
    # keeps ragqa's terms whole, and a server's whitespace tokenizer does the same.
    analyzer = {"tokenizer": "standard"} if lite else {"tokenizer": "whitespace"}
    chunks.add_field(
        "terms",
        DataType.VARCHAR,
        max_length=_MAX_VARCHAR,
        enable_analyzer=True,
        analyzer_params=analyzer,
    )
    chunks.add_field("vector", DataType.FLOAT_VECTOR, dim=dimension)
    chunks.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    chunks.add_function(
        Function(
            name="bm25",
            function_type=FunctionType.BM25,
            input_field_names=["terms"],
            output_field_names=["sparse"],
        )
    )
    index = client.prepare_index_params()
    # Exact search on Milvus Lite, like ragqa's FAISS default; HNSW on a server,
    # where collections are large enough for an approximate index to pay.
    if lite:
        index.add_index("vector", index_type="FLAT", metric_type="IP")
    else:
        index.add_index(
            "vector", index_type="HNSW", metric_type="IP", params={"M": 32, "efConstruction": 200}
        )
    index.add_index(
        "sparse",
        index_type="SPARSE_INVERTED_INDEX",
        metric_type="BM25",
        params={"bm25_k1": _BM25_K1, "bm25_b": _BM25_B},
    )
    index.add_index("doc", index_type="INVERTED")
    index.add_index("text_hash", index_type="INVERTED")
    client.create_collection(f"{name}_chunks", schema=chunks, index_params=index)

    catalog = client.create_schema(auto_id=False, enable_dynamic_field=False)
    catalog.add_field("key", DataType.VARCHAR, is_primary=True, max_length=256)
    catalog.add_field("kind", DataType.VARCHAR, max_length=16)
    catalog.add_field("doc", DataType.VARCHAR, max_length=64)
    catalog.add_field("version", DataType.INT64)
    catalog.add_field("page", DataType.INT64)
    catalog.add_field("part", DataType.INT64)
    catalog.add_field("value", DataType.VARCHAR, max_length=_MAX_VARCHAR)
    catalog.add_field("placeholder", DataType.FLOAT_VECTOR, dim=len(_PLACEHOLDER))
    index = client.prepare_index_params()
    index.add_index("placeholder", index_type="FLAT", metric_type="L2")
    index.add_index("kind", index_type="INVERTED")
    index.add_index("doc", index_type="INVERTED")
    client.create_collection(f"{name}_catalog", schema=catalog, index_params=index)


def _catalog_row(key: str, kind: str, value: Any, *, doc: str = "", version: int = 0) -> dict:
    return {
        "key": key,
        "kind": kind,
        "doc": doc,
        "version": version,
        "page": 0,
        "part": 0,
        "value": json.dumps(value, ensure_ascii=False),
        "placeholder": _PLACEHOLDER,
    }


def _meta_row(meta: dict[str, Any]) -> dict[str, Any]:
    return _catalog_row("meta", "meta", meta)


def _document_row(record: dict[str, Any]) -> dict[str, Any]:
    return _catalog_row(f"doc:{record['key']}", "doc", record, doc=record["key"])


def _pending_row(key: str, version: int) -> dict[str, Any]:
    return _catalog_row(
        f"pending:{key}", "pending", {"doc": key, "version": version}, doc=key, version=version
    )


def _document_info(record: dict[str, Any]) -> DocumentInfo:
    return DocumentInfo(
        source=record["source"],
        content_hash=record["content_hash"],
        pages=int(record["pages"]),
        chunks=int(record["chunks"]),
        added_at=float(record["added_at"]),
    )


def _check_size(source: str, what: str, text: str, limit: int) -> None:
    size = len(text.encode("utf-8"))
    if size > limit:
        raise RagqaError(
            f"{source}: {what} is {size:,} bytes, more than a Milvus text field holds "
            f"({limit:,}). Ingest it with a smaller chunk size (RAGQA_CHUNK_SIZE)."
        )


def _batches(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), _BATCH):
        yield items[start : start + _BATCH]


@contextmanager
def _null_lock() -> Iterator[None]:
    yield
