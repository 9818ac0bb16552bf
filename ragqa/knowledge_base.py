"""The facade: one object to ingest documents into, search, and ask.

Example:
    >>> from ragqa import KnowledgeBase
    >>> kb = KnowledgeBase.create("my-kb")                        # doctest: +SKIP
    >>> kb.add(["handbook.pdf", "notes/"]).summary()              # doctest: +SKIP
    '2 added, 0 unchanged, 0 replaced, 0 failed; 41 chunks in 3.2s'
    >>> hit = kb.search("How long is the warranty?", k=3)[0]      # doctest: +SKIP
    >>> hit.file_name, hit.page                                   # doctest: +SKIP
    ('handbook.pdf', 12)
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ragqa.config import Settings
from ragqa.embeddings import Embedder, get_embedder
from ragqa.embeddings.closeness import UnitCloseness
from ragqa.errors import IndexMismatchError, LoaderError, RagqaError
from ragqa.ingestion import (
    PreparedDocument,
    collect_files,
    prepare_text,
    read_file,
    source_key,
)
from ragqa.stores import Manifest, NewDocument, Store, create_store, open_store, store_exists
from ragqa.stores.base import text_hash
from ragqa.types import DocumentInfo, FileResult, Hit, IngestReport

if TYPE_CHECKING:
    from ragqa.answering import Answer
    from ragqa.conversation import Turn

__all__ = ["IngestProgress", "KnowledgeBase"]

log = logging.getLogger(__name__)

# Files are embedded in groups of about this many chunks: big enough to keep the
# model's batches full when documents are small, small enough that memory stays
# bounded however large the corpus is.
_GROUP_CHUNKS = 512
# Above this share of [UNK] tokens the embedding model is mostly blind to the text.
UNK_WARNING_RATIO = 0.05


@dataclass(frozen=True)
class IngestProgress:
    """A progress report from :meth:`KnowledgeBase.add`, for bars in a CLI or UI.

    ``stage`` is ``"reading"``, ``"embedding"`` or ``"done"``. ``fraction`` is how far
    the current stage is, from 0 to 1. ``result`` is set when a file is done.
    """

    source: str
    stage: str
    files_done: int
    files_total: int
    fraction: float = 0.0
    result: FileResult | None = None


ProgressCallback = Callable[[IngestProgress], None]


class KnowledgeBase:
    """A directory of documents you can search and ask questions of.

    Create one with :meth:`create`, open an existing one with :meth:`open`. Several
    knowledge bases can live side by side, each in its own directory. A location
    may also name another store (see :mod:`ragqa.stores`), such as Milvus:
    ``KnowledgeBase.create("milvus:///data/papers.db")``.
    """

    def __init__(self, store: Store, embedder: Embedder, settings: Settings) -> None:
        self._store = store
        self._embedder = embedder
        self.settings = settings
        self._unk_warned = False
        self._coverage_counts = (0.0, 0.0)  # [UNK] and all tokens stored by this ingest
        from ragqa.retrieval import Retriever

        self._retriever = Retriever(store, embedder, settings)
        # The extractive answerer's scores by meaning, on models measured for it.
        self._closeness = UnitCloseness(embedder) if embedder.meaning_weight > 0 else None

    # ------------------------------------------------------------ constructors

    @classmethod
    def create(
        cls,
        directory: str | os.PathLike[str],
        *,
        settings: Settings | None = None,
        embedder: Embedder | None = None,
    ) -> KnowledgeBase:
        """Create a new, empty knowledge base in ``directory``.

        Args:
            directory: where to keep it; created if missing, and must not already
                hold a knowledge base. A store URI such as ``milvus:///kb.db`` works
                too (see :mod:`ragqa.stores`).
            settings: defaults to ``Settings.from_env()``.
            embedder: defaults to the model named by ``settings.embedding_model``.
        """
        settings = settings or Settings.from_env()
        embedder = embedder or get_embedder(
            settings.embedding_model,
            batch_size=settings.embedding_batch_size,
            device=settings.embedding_device,
            query_backend=settings.query_backend,
            precision=settings.embedding_precision,
        )
        store = create_store(
            directory,
            embedding_model=embedder.name,
            dimension=embedder.dimension,
            token=settings.milvus_token,
            vector_index=settings.vector_index,
        )
        return cls(store, embedder, settings)

    @classmethod
    def open(
        cls,
        directory: str | os.PathLike[str],
        *,
        settings: Settings | None = None,
        embedder: Embedder | None = None,
        embedding_model: str | None = None,
    ) -> KnowledgeBase:
        """Open an existing knowledge base.

        The embedding model recorded in its manifest is used unless you name one; a
        different model or dimension is refused, because its vectors would not be
        comparable with the stored ones.

        Raises:
            IndexMismatchError: the knowledge base was built with another model.
            IndexCorruptError: the directory is damaged.
        """
        settings = settings or Settings.from_env()
        store = open_store(
            directory, token=settings.milvus_token, vector_index=settings.vector_index
        )
        try:
            wanted = embedder.name if embedder is not None else embedding_model
            if wanted is not None and wanted != store.embedding_model:
                raise IndexMismatchError(
                    f"{directory} was built with embedding model {store.embedding_model!r} "
                    f"({store.dimension} dimensions), not {wanted!r}: their vectors cannot "
                    "be mixed. Open it without choosing a model, or re-embed it with the "
                    f"new one: `ragqa reindex --kb {directory} --embedding-model {wanted}`"
                )
            if embedder is not None and embedder.dimension != store.dimension:
                raise IndexMismatchError(
                    f"{directory} stores {store.dimension}-dimensional vectors, but "
                    f"{embedder.name!r} makes {embedder.dimension}-dimensional ones. "
                    "Rebuild the knowledge base with this model."
                )
            # Built from the manifest's name, the model loads on first use: listing
            # documents, a lexical search or re-adding unchanged files never pays
            # for torch. Its dimension is then checked where its vectors meet the
            # store (LocalStore.write_documents and dense_search).
            embedder = embedder or get_embedder(
                store.embedding_model,
                batch_size=settings.embedding_batch_size,
                device=settings.embedding_device,
                query_backend=settings.query_backend,
                precision=settings.embedding_precision,
            )
        except BaseException:
            store.close()
            raise
        store.recover()
        return cls(store, embedder, settings.replace(embedding_model=store.embedding_model))

    @classmethod
    def open_or_create(
        cls,
        directory: str | os.PathLike[str],
        *,
        settings: Settings | None = None,
        embedder: Embedder | None = None,
        embedding_model: str | None = None,
    ) -> KnowledgeBase:
        """Open the knowledge base in ``directory``, creating it if there is none."""
        token = (settings or Settings.from_env()).milvus_token
        if not store_exists(directory, token=token):
            wanted = settings or Settings.from_env()
            if embedding_model:
                wanted = wanted.replace(embedding_model=embedding_model)
            try:
                return cls.create(directory, settings=wanted, embedder=embedder)
            except RagqaError:
                if not store_exists(directory, token=token):
                    raise
                # Another process created it since we looked: open theirs.
        return cls.open(
            directory, settings=settings, embedder=embedder, embedding_model=embedding_model
        )

    # ------------------------------------------------------------------ reading

    @property
    def location(self) -> str:
        """Where the knowledge base is stored: a directory or a store URI."""
        return self._store.location

    @property
    def directory(self) -> Path:
        """The knowledge base's directory (embedded stores only).

        Raises:
            ConfigError: the knowledge base lives in a server, not in a directory.
        """
        directory = getattr(self._store, "directory", None)
        if directory is None:
            from ragqa.errors import ConfigError

            raise ConfigError(f"{self.location} is not a directory")
        return Path(directory)

    @property
    def store(self) -> Store:
        """The backend that holds the chunks (see :mod:`ragqa.stores`)."""
        return self._store

    @property
    def embedder(self) -> Embedder:
        return self._embedder

    @property
    def closeness(self) -> UnitCloseness | None:
        """What scores answer units by meaning for the extractive answerer (None when
        the embedding model has no ``meaning_weight``)."""
        return self._closeness

    @property
    def manifest(self) -> Manifest:
        """The manifest as last written (counts are refreshed by every write)."""
        self._store.refresh()
        return self._store.manifest

    def documents(self) -> list[DocumentInfo]:
        """The stored documents, sorted by source path."""
        return self._store.documents()

    def page_text(self, source: str, page: int) -> str | None:
        """The normalised text of a stored page; a Hit's ``start:end`` index into it.

        Example:
            >>> hit = kb.search("warranty", k=1)[0]                     # doctest: +SKIP
            >>> kb.page_text(hit.source, hit.page)[hit.start : hit.end] == hit.text  # doctest: +SKIP
            True
        """
        return self._store.page_text(source, page)

    def __len__(self) -> int:
        """The number of chunks stored."""
        return self._store.counts()[1]

    def search(self, query: str, k: int | None = None, *, mode: str | None = None) -> list[Hit]:
        """The ``k`` chunks that best match ``query``, best first.

        Args:
            query: a question or keywords, in any language.
            k: how many hits; defaults to ``settings.top_k``.
            mode: ``"dense"``, ``"lexical"`` or ``"hybrid"``; defaults to
                ``settings.retrieval_mode``.

        Example:
            >>> [(h.file_name, h.page) for h in kb.search("warranty", k=2)]  # doctest: +SKIP
            [('handbook.pdf', 12), ('faq.md', 1)]
        """
        self._store.refresh()  # see what another process committed meanwhile
        return self._retriever.search(query, k or self.settings.top_k, mode=mode)

    def as_langchain_retriever(
        self, k: int | None = None, mode: str | None = None, **search_options: Any
    ) -> Any:
        """This knowledge base as a LangChain retriever (``langchain_core``'s ``BaseRetriever``).

        Its ``Document`` values carry the chunk's text as ``page_content`` and the
        hit's ``source``, ``file_name``, ``page``, ``start``, ``end``, ``score``,
        ``chunk_id``, ``rank``, ``heading`` and ``focus`` as metadata (see
        :func:`ragqa.integrations.langchain.hit_to_document`). ``invoke``,
        ``ainvoke`` and ``batch`` all work; each search sees what other processes
        committed meanwhile, as :meth:`search` does.

        Args:
            k: how many documents; defaults to ``settings.top_k``.
            mode: ``"dense"``, ``"lexical"`` or ``"hybrid"``; defaults to
                ``settings.retrieval_mode``.
            **search_options: retrieval settings for this retriever only, such as
                ``min_relevance=0``, ``mmr=True`` or ``reranker_model=...`` (see
                :data:`ragqa.integrations.langchain.SEARCH_OPTIONS`).

        Raises:
            ConfigError: ``k`` below 1, an unknown mode or an unknown option.

        Example:
            >>> retriever = kb.as_langchain_retriever(k=3, mode="hybrid")  # doctest: +SKIP
            >>> chain = retriever | format_docs | prompt | chat_model      # doctest: +SKIP
        """
        # Imported here: LangChain stays out of `import ragqa`.
        from ragqa.integrations.langchain import KnowledgeBaseRetriever, check_search_options

        check_search_options(k, mode, search_options)
        settings = self.settings.replace(**search_options)  # validated like any settings
        top_k = k or settings.top_k
        chosen_mode = mode or settings.retrieval_mode

        def search(query: str) -> list[Hit]:
            self._store.refresh()
            return self._retriever.search(query, top_k, mode=chosen_mode, settings=settings)

        return KnowledgeBaseRetriever(
            search=search, k=top_k, mode=chosen_mode, options=dict(search_options)
        )

    # ---------------------------------------------------------------- answering

    def ask(
        self,
        question: str,
        history: Sequence[Turn] | None = None,
        *,
        settings: Settings | None = None,
        chat_model: Any = None,
    ) -> Answer:
        """Answer a question from the documents, citing its sources.

        Args:
            question: the question, in Chinese or English.
            history: earlier turns of the conversation, oldest first; a follow-up
                question is rewritten into a standalone one before retrieval.
            settings: overrides for this question (top_k, retrieval_mode, llm, ...).
            chat_model: a LangChain chat model or ragqa backend to use instead of the
                configured one.

        Example:
            >>> answer = kb.ask("Which planet is the hottest?")       # doctest: +SKIP
            >>> answer.text                                          # doctest: +SKIP
            'Venus ... is the hottest planet [1].'
            >>> [(c.number, Path(c.source).name, c.page) for c in answer.citations]  # doctest: +SKIP
            [(1, 'solar-system.md', 1)]
        """
        final = None
        for item in self.ask_stream(question, history, settings=settings, chat_model=chat_model):
            if not isinstance(item, str):
                final = item
        if final is None:  # pragma: no cover - stream_answer always ends with one
            raise RagqaError("the answerer produced no answer")
        return final

    def ask_stream(
        self,
        question: str,
        history: Sequence[Turn] | None = None,
        *,
        settings: Settings | None = None,
        chat_model: Any = None,
    ) -> Iterator[str | Answer]:
        """Like :meth:`ask`, but yield the answer's text as it is produced, then the
        final :class:`Answer`.

        Raises:
            LLMError: the language model failed; retrieval results are still
                available from :meth:`search`.
        """
        from ragqa.answering import stream_answer
        from ragqa.conversation import rewrite_question

        settings = settings or self.settings
        history = tuple(history or ())
        if chat_model is None and settings.llm != "extractive":
            from ragqa.llm import get_chat_model

            chat_model = get_chat_model(settings)  # one backend for rewrite and answer
        started = time.perf_counter()
        query = (
            rewrite_question(question, history, settings=settings, chat_model=chat_model)
            if history
            else question
        )
        self._store.refresh()
        hits = self._retriever.search(
            query, settings.top_k, mode=settings.retrieval_mode, settings=settings
        )
        yield from stream_answer(
            question,
            hits,
            settings=settings,
            chat_model=chat_model,
            history=history,
            retrieve_seconds=time.perf_counter() - started,
            closeness=self.closeness,
        )

    # ------------------------------------------------------------------ writing

    def add(
        self,
        paths: Iterable[str | os.PathLike[str]] | str | os.PathLike[str],
        *,
        pdf_password: str | None = None,
        progress: ProgressCallback | None = None,
        lock_timeout: float = 60.0,
    ) -> IngestReport:
        """Ingest files and folders (recursively), skipping those already stored.

        An unchanged file (same content hash) is not read again; a changed one
        replaces its old chunks; a file that cannot be read is reported with its
        cause and the rest go on. Nothing already stored is lost on failure.

        Args:
            paths: files and/or directories.
            pdf_password: tried on encrypted PDFs.
            progress: called as files are read, embedded and stored.
            lock_timeout: seconds to wait if another process is writing.

        Returns:
            An :class:`IngestReport` with one :class:`FileResult` per file.
        """
        if isinstance(paths, str | os.PathLike):
            paths = [paths]
        files, problems = collect_files(paths)

        def read(path: Path) -> PreparedDocument | FileResult:
            stored = self._store.document(source_key(path))
            return read_file(path, self.settings, password=pdf_password, stored=stored)

        jobs = [(source_key(path), functools.partial(read, path)) for path in files]
        return self._ingest(jobs, len(jobs), problems, progress, lock_timeout)

    def add_texts(
        self,
        texts: Mapping[str, str] | Iterable[tuple[str, str]],
        *,
        progress: ProgressCallback | None = None,
        lock_timeout: float = 60.0,
    ) -> IngestReport:
        """Ingest texts that are not files, each under a source name of your choice.

        The same rules apply as for files: an unchanged text is skipped, a changed
        one replaces the old version under its source name.

        Example:
            >>> kb.add_texts({"faq/warranty": "The warranty lasts two years."})  # doctest: +SKIP
            IngestReport(files=(FileResult(source='faq/warranty', status='added', ...
        """
        items = list(texts.items() if isinstance(texts, Mapping) else texts)

        def read(source: str, text: str) -> PreparedDocument | FileResult:
            digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
            stored = self._store.document(source)
            if stored is not None and stored.content_hash == digest:
                return FileResult(source, "unchanged", stored.chunks, stored.pages)
            try:
                return prepare_text(source, text, self.settings)
            except LoaderError as exc:
                return FileResult(source, "failed", error=str(exc), reason=exc.reason)

        jobs = [(source, functools.partial(read, source, text)) for source, text in items]
        return self._ingest(jobs, len(jobs), [], progress, lock_timeout)

    def add_prepared(
        self,
        outcomes: Iterable[PreparedDocument | FileResult],
        *,
        total: int = 0,
        progress: ProgressCallback | None = None,
        lock_timeout: float = 60.0,
    ) -> IngestReport:
        """Store documents that were read (and perhaps embedded) elsewhere.

        This is how a distributed ingest (``ingest/ray_ingest.py``) writes what its
        workers produced: each item is a :class:`~ragqa.ingestion.PreparedDocument`
        from :func:`ragqa.ingestion.read_file`, with vectors if a worker embedded
        it (else it is embedded here), or the :class:`FileResult` of a file that was
        unchanged or failed. Items are consumed as they come, in bounded groups.

        Args:
            outcomes: the items, in any order; an iterator is fine.
            total: how many items to expect, for progress reports (0: unknown).
            progress: called as documents are stored.
            lock_timeout: seconds to wait if another process is writing.
        """
        jobs = ((item.source, functools.partial(lambda x: x, item)) for item in outcomes)
        return self._ingest(jobs, total, [], progress, lock_timeout)

    def _ingest(
        self,
        jobs: Iterable[tuple[str, Callable[[], PreparedDocument | FileResult]]],
        total: int,
        problems: list[FileResult],
        progress: ProgressCallback | None,
        lock_timeout: float,
    ) -> IngestReport:
        """Prepare each job, embed them in bounded groups and commit group by group."""
        started = time.perf_counter()
        results = list(problems)
        total += len(results)
        notify = progress or (lambda _event: None)
        with self._store.writing(lock_timeout):
            group: list[PreparedDocument] = []
            group_chunks = 0
            for source, prepare in jobs:
                notify(IngestProgress(source, "reading", len(results), total))
                outcome = prepare()
                if isinstance(outcome, FileResult):
                    results.append(outcome)
                    notify(IngestProgress(source, "done", len(results), total, 1.0, outcome))
                    continue
                group.append(outcome)
                group_chunks += len(outcome.chunks)
                if group_chunks >= _GROUP_CHUNKS:
                    results.extend(self._store_group(group, notify, len(results), total))
                    group, group_chunks = [], 0
            results.extend(self._store_group(group, notify, len(results), total))
        warnings = self._coverage_warning(results)
        return IngestReport(tuple(results), time.perf_counter() - started, tuple(warnings))

    def _store_group(
        self, group: list[PreparedDocument], notify: ProgressCallback, done: int, total: int
    ) -> list[FileResult]:
        """Embed a group of documents together (those without vectors), then store
        them in one write."""
        if not group:
            return []
        from ragqa.lexical import tokenize
        from ragqa.splitting import file_name_words

        texts = [
            chunk.index_text for item in group if item.vectors is None for chunk in item.chunks
        ]
        known = self._store.known_vectors(text_hash(t) for t in texts)
        missing = [t for t in dict.fromkeys(texts) if text_hash(t) not in known]
        label = group[0].source if len(group) == 1 else f"{len(group)} files"

        def embedded(count: int) -> None:
            notify(IngestProgress(label, "embedding", done, total, count / len(missing)))

        if missing:
            fresh = self._embedder.embed(missing, progress=embedded)
            known.update((text_hash(t), v) for t, v in zip(missing, fresh, strict=True))
        # Every chunk's [UNK] count, stored for retrieval and summed for the
        # coverage warning; one batched tokenizer call, a fraction of embedding.
        all_texts = [chunk.index_text for item in group for chunk in item.chunks]
        counts = self._embedder.unknown_token_counts(all_texts)
        if counts is not None:
            unknown, tokens = self._coverage_counts
            self._coverage_counts = (unknown + counts[0].sum(), tokens + counts[1].sum())
            shares = np.divide(
                counts[0], counts[1], out=np.zeros(len(all_texts)), where=counts[1] > 0
            )

        statuses = [
            "added" if self._store.document(item.source) is None else "replaced" for item in group
        ]
        documents, offset = [], 0
        for item in group:
            end = offset + len(item.chunks)
            # Users call a document by its file's name ("the multilang PDF").
            name = file_name_words(item.source)
            documents.append(
                NewDocument(
                    source=item.source,
                    content_hash=item.content_hash,
                    pages=item.pages,
                    chunks=item.chunks,
                    vectors=item.vectors
                    if item.vectors is not None
                    else np.vstack([known[text_hash(c.index_text)] for c in item.chunks]),
                    tokens=[tokenize(f"{name}\n{c.index_text}") for c in item.chunks],
                    page_texts=item.page_texts,
                    unknown_shares=None if counts is None else shares[offset:end].tolist(),
                )
            )
            offset = end
        self._store.write_documents(documents)
        results = []
        for item, status in zip(group, statuses, strict=True):
            result = FileResult(item.source, status, len(item.chunks), item.pages)
            results.append(result)
            notify(IngestProgress(item.source, "done", done + len(results), total, 1.0, result))
        return results

    def _coverage_warning(self, results: Sequence[FileResult]) -> list[str]:
        """Warn once per knowledge base object when the model cannot read the text."""
        unknown, total = self._coverage_counts
        self._coverage_counts = (0.0, 0.0)
        if self._unk_warned or not total or not any(r.chunks for r in results):
            return []
        ratio = unknown / total
        if ratio < UNK_WARNING_RATIO:
            return []
        self._unk_warned = True
        message = (
            f"the embedding model {self._embedder.name!r} cannot represent {ratio:.0%} of "
            "the tokens in these documents (they become [UNK]), so search leans on word "
            "matching for them. For better results with Chinese text, move it to the "
            "bundled multilingual model: `ragqa reindex --kb DIR --embedding-model "
            "multilingual-e5-small`."
        )
        log.warning(message)
        return [message]

    def remove(self, path: str | os.PathLike[str], *, lock_timeout: float = 60.0) -> bool:
        """Remove a stored document by its path. Returns False if it was not stored.

        The path may be given as it was when ingested; it is resolved the same way.
        """
        source = source_key(path)
        with self._store.writing(lock_timeout):
            if self._store.remove_document(source):
                return True
            # Also accept the stored source string verbatim (e.g. from documents()).
            return self._store.remove_document(str(path))

    def remove_missing(self, folder: str | os.PathLike[str]) -> list[str]:
        """Remove the stored documents under ``folder`` whose files no longer exist.

        What a nightly job runs after ingesting the folder, so that deleted files
        leave the knowledge base too. Returns the removed sources.
        """
        root = Path(source_key(folder))
        removed = []
        for doc in self.documents():
            path = Path(doc.source)
            if path.is_relative_to(root) and not path.exists():
                self.remove(doc.source)
                removed.append(doc.source)
        return removed

    # ---------------------------------------------------------------- lifecycle

    def close(self) -> None:
        """Release the catalog connection."""
        self._store.close()

    def __enter__(self) -> KnowledgeBase:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"KnowledgeBase({self.location!r}, model={self._embedder.name!r})"
