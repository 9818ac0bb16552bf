"""Re-score retrieved chunks with a cross-encoder, which reads query and chunk together.

A bi-encoder (the embedding model) compares two vectors made separately; a
cross-encoder sees both texts at once and judges relevance far better, at the cost
of one model pass per (query, chunk) pair. So it only re-scores the best few
candidates of the first search (``Settings.rerank_depth``, 20 by default).

Any sentence-transformers ``CrossEncoder`` works, by hub name or local path, set as
``Settings.reranker_model`` (``RAGQA_RERANKER_MODEL``); ``""`` turns reranking off.
A model is loaded once per process and shared by every knowledge base.

A model that cannot be loaded raises :class:`~ragqa.errors.ConfigError` on every
search, rather than a warning and results without reranking: the user asked for
it by name, and a typo must not leave them wondering why nothing changed. The
failure is remembered, so a missing model costs one load attempt per process, not
one per query. Set ``RAGQA_RERANKER_MODEL=""`` to search without it.

Example:
    >>> reranker = get_reranker("cross-encoder/ms-marco-MiniLM-L6-v2")  # doctest: +SKIP
    >>> [h.text for h in reranker.rerank("Who wrote the Tea Classic?", hits)][:1]  # doctest: +SKIP
    ['Lu Yu wrote the Classic of Tea around 760.']
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ragqa.errors import ConfigError
from ragqa.types import Hit

__all__ = ["Reranker", "get_reranker"]

_loaded: dict[tuple[str, str], Any] = {}  # (model, device) -> CrossEncoder or ConfigError
_load_lock = threading.Lock()


class Reranker:
    """A loaded cross-encoder that scores (query, text) pairs.

    Create it with :func:`get_reranker`, which loads each model once per process.

    Args:
        name: the model name or path, as given.
        model: the ``sentence_transformers.CrossEncoder``.
        batch_size: pairs per forward pass.
    """

    def __init__(self, name: str, model: Any, *, batch_size: int = 32) -> None:
        self.name = name
        self.model = model
        self.batch_size = batch_size

    def score(self, query: str, texts: Sequence[str]) -> np.ndarray:
        """One relevance score per text, higher for more relevant.

        Raises:
            ConfigError: the model gives several scores per pair (a classifier,
                such as an NLI model, rather than a relevance model).
        """
        if not texts:
            return np.zeros(0)
        scores = np.asarray(
            self.model.predict(
                [(query, text) for text in texts],
                batch_size=self.batch_size,
                show_progress_bar=False,
            ),
            dtype=np.float64,
        )
        if scores.ndim == 2 and scores.shape[1] == 1:
            scores = scores[:, 0]
        if scores.ndim != 1:
            raise ConfigError(
                f"reranker model {self.name!r} gives {scores.shape[-1]} scores per pair; "
                "a reranker must give one relevance score (a cross-encoder with one label)"
            )
        return scores

    def rerank(self, query: str, hits: Sequence[Hit]) -> list[Hit]:
        """The hits sorted by the cross-encoder's score, which becomes their ``score``.

        Equal scores keep the order they came in.

        Example:
            >>> [h.chunk_id for h in reranker.rerank("tea", hits)]  # doctest: +SKIP
            [12, 3, 7]
        """
        scores = self.score(query, [hit.text for hit in hits])
        order = np.argsort(-scores, kind="stable")
        return [replace(hits[i], score=float(scores[i])) for i in order]


def get_reranker(model: str, *, device: str = "") -> Reranker:
    """The reranker for a model name or path, loaded on first use and then shared.

    Args:
        model: a sentence-transformers CrossEncoder name (from the local Hugging
            Face cache; nothing is downloaded when offline) or a directory.
        device: ``""`` lets sentence-transformers choose, else e.g. ``"cpu"``.

    Raises:
        ConfigError: the name is empty, or the model cannot be loaded (the same
            error again on later calls, without a second attempt).
    """
    if not model.strip():
        raise ConfigError("the reranker model name is empty; use '' to turn reranking off")
    key = (model, device)
    with _load_lock:  # one load per model even when several threads ask at once
        if key not in _loaded:
            try:
                _loaded[key] = _load_cross_encoder(model, device)
            except ConfigError as exc:
                _loaded[key] = exc
        loaded = _loaded[key]
    if isinstance(loaded, ConfigError):
        raise loaded
    return Reranker(model, loaded)


def _load_cross_encoder(model: str, device: str) -> Any:
    from ragqa.embeddings.sentence_transformers import quiet_transformers, set_openmp_waiting

    set_openmp_waiting()  # as for the embedder: before torch starts
    try:
        from sentence_transformers import CrossEncoder
    except ImportError:  # pragma: no cover - a core dependency
        raise ConfigError(
            "reranking needs sentence-transformers: pip install sentence-transformers"
        ) from None
    quiet_transformers()
    path = Path(model).expanduser()
    local = path.exists()
    try:
        return CrossEncoder(
            str(path) if local else model,
            device=device or None,
            local_files_only=local or os.environ.get("HF_HUB_OFFLINE") == "1",
        )
    except Exception as exc:  # the hub, the disk and the model format all fail differently
        hint = (
            "check that the directory holds a cross-encoder"
            if local
            else "the name is not in the local Hugging Face cache and cannot be downloaded; "
            "give a local path"
        )
        raise ConfigError(
            f"cannot load reranker model {model!r}: {type(exc).__name__}: {exc} ({hint}). "
            'Set RAGQA_RERANKER_MODEL="" to search without reranking.'
        ) from None
