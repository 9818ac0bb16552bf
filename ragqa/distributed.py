"""Distributed ingestion with Ray Data: parse and chunk in tasks, embed in an actor pool.

A corpus too large for one machine's cores is ingested as a Ray Data pipeline:

1. **read** (one Ray task per file): hash the file; if the knowledge base already
   holds that content, report it unchanged; else load and split it with
   :func:`ragqa.ingestion.read_file`, the very function :meth:`KnowledgeBase.add`
   uses, so both cut every file into the same chunks;
2. **embed** (a pool of Ray actors, each loading the embedding model once): embed
   the chunks of a batch of files together;
3. **write** (the driver): store the results as they stream in, through
   :meth:`KnowledgeBase.add_prepared`, in the same bounded groups as a local ingest.

Ray Data streams blocks through the three stages with backpressure, so memory
stays bounded however large the corpus is. The driver is the only writer, which
is what a Milvus server needs (it offers ragqa no lock). Ray, ragqa and the
embedding model must be installed on every node.

Example:
    >>> import ray                                                  # doctest: +SKIP
    >>> ray.init(address="auto")                                    # doctest: +SKIP
    >>> kb = KnowledgeBase.open_or_create("milvus://milvus:19530/papers")  # doctest: +SKIP
    >>> ray_ingest(kb, ["/mnt/papers"], embed_actors=8).summary()  # doctest: +SKIP
    '51234 added, 0 unchanged, 0 replaced, 12 failed; 2049871 chunks in 5123.0s'
"""

from __future__ import annotations

import itertools
import logging
import os
import pickle
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ragqa.config import Settings
from ragqa.errors import ConfigError
from ragqa.ingestion import PreparedDocument, collect_files, read_file, source_key
from ragqa.knowledge_base import KnowledgeBase, ProgressCallback
from ragqa.types import FileResult, IngestReport

__all__ = ["ray_ingest"]

# Files per embedding batch: enough chunks to keep the model's batches full, few
# enough that one slow file does not hold up many others.
FILES_PER_BATCH = 8
# CPUs a read task reserves: reading a file waits on the disk part of the time.
READ_CPUS = 0.5


def _import_ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401 - the Data library is a separate extra
    except ImportError:
        raise ConfigError(
            "distributed ingestion needs Ray Data: pip install 'ragqa[ray]'"
        ) from None
    return ray


def ray_ingest(
    kb: KnowledgeBase,
    paths: Iterable[str | os.PathLike[str]],
    *,
    pdf_password: str | None = None,
    embed_actors: int | None = None,
    actor_cpus: float = 1.0,
    files_per_batch: int = FILES_PER_BATCH,
    progress: ProgressCallback | None = None,
) -> IngestReport:
    """Ingest files and folders into ``kb`` with a Ray Data pipeline.

    Incremental like :meth:`KnowledgeBase.add`: a file whose content hash is already
    stored is not read beyond its bytes, a changed one replaces its old version.
    Uses the Ray instance this process is connected to (``ray.init``), or starts a
    local one.

    Args:
        kb: the knowledge base to write to, on any store backend.
        paths: files and/or folders, on storage every Ray node can read.
        pdf_password: tried on encrypted PDFs.
        embed_actors: size of the embedding actor pool; by default half the
            cluster's CPUs (the other half parse), at least one.
        actor_cpus: CPUs each embedding actor reserves (and its torch threads).
        files_per_batch: files whose chunks one actor call embeds together.
        progress: called as documents are stored.

    Returns:
        The same :class:`IngestReport` as :meth:`KnowledgeBase.add`.
    """
    ray = _import_ray()
    if not ray.is_initialized():
        ray.init(include_dashboard=False, log_to_driver=False)
    # The caller shows ragqa's own progress; Ray Data's bars and per-second status
    # lines would interleave with it.
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    # Results reach the writer in file order, as in a local ingest: the same files
    # then form the same write groups and get the same chunk ids, so the two ways
    # of ingesting build identical knowledge bases. Workers still run ahead; only
    # the hand-over waits for the slowest file of a window.
    context.execution_options.preserve_order = True
    files, problems = collect_files(paths)
    if not files:
        return kb.add_prepared(problems, total=len(problems), progress=progress)

    stored = {doc.source: doc for doc in kb.documents()}
    rows = [
        {"path": str(path), "stored": pickle.dumps(stored.get(source_key(path)))} for path in files
    ]
    # What the workers need of the settings: chunking and limits. Secrets (an API
    # key, a Milvus token) stay on the driver. Ray already reads files in parallel
    # tasks, so a task reads its PDF in-process rather than start processes of its own.
    shipped = kb.settings.replace(llm_api_key="", milvus_token="", pdf_workers=1)
    if embed_actors is None:
        cpus = int(ray.cluster_resources().get("CPU", 2))
        embed_actors = max(1, cpus // 2)
    if embed_actors < 1 or files_per_batch < 1:
        raise ConfigError("embed_actors and files_per_batch must be at least 1")

    dataset = (
        ray.data.from_items(rows)
        # Reading runs in tasks of its own. Their CPU request differs from the
        # actors', which also keeps Ray from fusing both stages into the actors,
        # where parsing would wait for embedding.
        .map(_read, fn_kwargs={"settings": shipped, "password": pdf_password}, num_cpus=READ_CPUS)
        .map_batches(
            _EmbedChunks,
            fn_constructor_kwargs={
                "model": kb.embedder.name,
                "batch_size": shipped.embedding_batch_size,
                "device": shipped.embedding_device,
                "precision": shipped.embedding_precision,
            },
            batch_size=files_per_batch,
            batch_format="numpy",
            concurrency=embed_actors,
            num_cpus=actor_cpus,
        )
    )
    outcomes: Iterator[PreparedDocument | FileResult] = (
        pickle.loads(row["outcome"]) for row in dataset.iter_rows()
    )
    return kb.add_prepared(
        itertools.chain(problems, outcomes), total=len(files) + len(problems), progress=progress
    )


def _read(row: dict[str, Any], *, settings: Settings, password: str | None) -> dict[str, Any]:
    """A Ray task: one file's outcome (unchanged, failed, or read and split)."""
    outcome = read_file(
        Path(row["path"]), settings, password=password, stored=pickle.loads(row["stored"])
    )
    # Pickled, so that Ray Data moves it as bytes whatever its shape.
    return {"outcome": pickle.dumps(outcome)}


class _EmbedChunks:
    """A Ray actor: loads the embedding model once, then embeds batches of files."""

    def __init__(self, model: str, batch_size: int, device: str, precision: str) -> None:
        from ragqa.embeddings import get_embedder

        self.embedder = get_embedder(
            model, batch_size=batch_size, device=device, precision=precision
        )

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[bytes]]:
        outcomes = [pickle.loads(blob) for blob in batch["outcome"]]
        prepared = [o for o in outcomes if isinstance(o, PreparedDocument)]
        texts = [chunk.index_text for doc in prepared for chunk in doc.chunks]
        vectors = self.embedder.embed(texts) if texts else np.zeros((0, 0), dtype=np.float32)
        out, start = [], 0
        for outcome in outcomes:
            if isinstance(outcome, PreparedDocument):
                end = start + len(outcome.chunks)
                outcome = outcome.with_vectors(vectors[start:end])
                start = end
            out.append(pickle.dumps(outcome))
        return {"outcome": out}
