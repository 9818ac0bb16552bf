"""Embedding questions with ONNX Runtime, in a third of the time or less.

A question is a dozen tokens. For inputs that small, torch spends most of a forward
pass dispatching a hundred tiny operations and waking its threads; ONNX Runtime runs
the same graph with far less overhead. Measured on 2 cores with all-MiniLM-L6-v2 and
200 real SQuAD and DRCD questions, in one run: 3.5 ms p50 against 10.9 ms through
``SentenceTransformer.encode``, with a cosine of 1.0 between the two vectors.
Batches of chunks at ingest time stay on torch: there the two measured the same in
float32, and torch's bfloat16 copy of the model is faster still (see
``sentence_transformers.native_bfloat16``).

The graph is exported from the loaded sentence-transformers model once, checked
against it, and cached (``$XDG_CACHE_HOME/ragqa/onnx``, keyed by the model
directory's files). Later processes embed questions without importing torch at all,
so a chat's first answer no longer waits for torch and the model to load.

Beside the float graph, the entry holds one with int8 weights, which is what
``RAGQA_QUERY_BACKEND=auto`` (the default) uses: measured the same way, 3.0 ms
against 6.2 for the float graph, at a cosine of 0.978 to 0.999 to torch's vectors.
``ragqa eval`` over all questions of both shared sets found the same hybrid recall@1
and @5, and recall@10 lower by one to four questions in 3,500 (the README has the
table). ``onnx-fp32`` keeps the float graph, whose vectors equal torch's.

Only models that are a transformer followed by mean or CLS pooling (and optionally a
normalisation) are exported, from a local directory (the bundled default is one);
anything else keeps to torch. ``RAGQA_QUERY_BACKEND=torch`` turns this off.

Example:
    >>> encoder = query_encoder_for("/path/to/model")            # doctest: +SKIP
    >>> encoder.encode("Who wrote it?").shape                     # doctest: +SKIP
    (384,)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "OnnxQueryEncoder",
    "cache_directory",
    "cache_root",
    "export_query_encoder",
    "load_preferring",
]

log = logging.getLogger(__name__)

# Bumped whenever the export or the files in a cache entry change meaning.
EXPORT_VERSION = 2
SPEC = "query_encoder.json"  # written last: its presence marks a complete entry
GRAPH = "model.onnx"
GRAPH_INT8 = "model.int8.onnx"
TOKENIZER = "tokenizer.json"
# The export must reproduce torch's vectors; anything less and it is not used.
MIN_AGREEMENT = 0.9999
# The int8 graph only approximates them. Over 200 real SQuAD and DRCD questions the
# bundled model's int8 vectors had a cosine of 0.978 at worst (median 0.991) to the
# float ones; a model that quantizes much worse than that keeps its float graph.
MIN_INT8_AGREEMENT = 0.97
PROBES = (
    "ragqa checks its exported graph against the original model.",
    "這是一個測試句子，含有中文和 English words。",
    "x",
)


def cache_directory(model_path: str) -> Path | None:
    """Where the export of the model at ``model_path`` is cached; ``None`` when the
    model is not a local directory (a hub name has no files to key the cache on).

    The key covers every file of the model (name, size, modification time), so a
    model updated in place gets a new export.
    """
    root = Path(model_path).expanduser()
    if not root.is_dir():
        return None
    digest = hashlib.sha256(f"{EXPORT_VERSION}\n{root.resolve()}\n".encode())
    for path in sorted(root.rglob("*")):
        if path.is_file():
            stat = path.stat()
            rel = path.relative_to(root).as_posix()
            digest.update(f"{rel}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
    return cache_root() / "onnx" / f"{root.name}-{digest.hexdigest()[:16]}"


def cache_root() -> Path:
    """ragqa's folder in the user's cache (``$XDG_CACHE_HOME/ragqa``), shared by the
    ONNX exports and the converted e5 model."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ragqa"


class OnnxQueryEncoder:
    """One question in, one unit vector out, through ONNX Runtime.

    Built with :meth:`load` from a cache entry that :func:`export_query_encoder`
    wrote; it needs ``onnxruntime`` and ``tokenizers``, not torch.
    """

    def __init__(
        self, session: Any, tokenizer: Any, spec: dict[str, Any], *, int8: bool = False
    ) -> None:
        from tokenizers import Tokenizer

        self.int8 = int8  # weights quantized to int8, or the float graph

        self._session = session
        self._tokenizer = tokenizer  # truncates to the model's max length
        # A second copy counts whole texts. Toggling truncation on one shared
        # tokenizer would race with encode() in another thread (the UI has many).
        self._counting = Tokenizer.from_str(tokenizer.to_str())
        self._counting.no_truncation()
        self._inputs = list(spec["inputs"])
        self._pooling = spec["pooling"]
        self._lower = bool(spec.get("lowercase", False))
        self.dimension = int(spec["dimension"])
        self._unk_id = spec.get("unk_id")
        self._pad_id = int(spec.get("pad_id") or 0)

    @classmethod
    def load(cls, directory: Path, *, int8: bool = False) -> OnnxQueryEncoder | None:
        """The encoder cached in ``directory``, or ``None`` if there is none (yet),
        or, with ``int8``, if the model's int8 graph failed its check."""
        try:
            spec = json.loads((directory / SPEC).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if spec.get("version") != EXPORT_VERSION or (int8 and not spec.get("int8")):
            return None
        import onnxruntime as ort
        from tokenizers import Tokenizer

        options = ort.SessionOptions()
        options.inter_op_num_threads = 1  # one graph at a time; threads go to its ops
        if int8:
            # One thread leaves the other core to BM25, which hybrid search runs at
            # the same time, and is faster anyway: 3.0 ms p50 against 3.9 on two.
            options.intra_op_num_threads = 1
        # After a run, ONNX Runtime's threads spin waiting for the next one, and
        # take the CPU from BM25 and FAISS, which come next. Measured at 100k chunks
        # over 200 questions: hybrid p50 20.9 ms without spinning, 26.5 ms with it,
        # though the question alone embeds 1.6 ms faster with it.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        try:
            session = ort.InferenceSession(
                str(directory / (GRAPH_INT8 if int8 else GRAPH)),
                options,
                providers=["CPUExecutionProvider"],
            )
            tokenizer = Tokenizer.from_file(str(directory / TOKENIZER))
        except Exception as exc:  # a damaged cache entry: export again
            log.info("cached ONNX query encoder in %s is unusable: %s", directory, exc)
            return None
        tokenizer.no_padding()
        tokenizer.enable_truncation(int(spec["max_length"]))  # as encode() truncates
        return cls(session, tokenizer, spec, int8=int8)

    def _prepare(self, text: str) -> str:
        # What sentence-transformers' Transformer.tokenize does before tokenizing.
        text = text.strip()
        return text.lower() if self._lower else text

    def encode(self, text: str) -> np.ndarray:
        """The unit vector of one text, as the torch model would compute it."""
        encoding = self._tokenizer.encode(self._prepare(text))
        columns = {
            "input_ids": encoding.ids,
            "attention_mask": encoding.attention_mask,
            "token_type_ids": encoding.type_ids,
        }
        feed = {name: np.asarray([columns[name]], dtype=np.int64) for name in self._inputs}
        hidden = self._session.run(None, feed)[0][0]  # (tokens, dimension)
        # CLS pooling takes the first token; mean pooling averages them all (one
        # text has no padding to leave out).
        vector = hidden[0] if self._pooling == "cls" else hidden.mean(axis=0)
        vector = vector.astype(np.float32)
        norm = float(np.linalg.norm(vector))
        return vector / norm if norm > 0 else vector

    def encode_batch(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors of many texts in one run, padded to the longest of them.

        This is how ``RAGQA_EMBEDDING_PRECISION=int8`` embeds chunks (see
        ``SentenceTransformerEmbedder``). Padded positions are masked out of
        attention and of the mean.
        """
        encodings = self._tokenizer.encode_batch([self._prepare(t) for t in texts])
        width = max(len(e.ids) for e in encodings)
        columns = {name: np.zeros((len(texts), width), dtype=np.int64) for name in _INPUTS}
        columns["input_ids"].fill(self._pad_id)
        for row, e in enumerate(encodings):
            n = len(e.ids)
            columns["input_ids"][row, :n] = e.ids
            columns["attention_mask"][row, :n] = e.attention_mask
            columns["token_type_ids"][row, :n] = e.type_ids
        hidden = self._session.run(None, {name: columns[name] for name in self._inputs})[0]
        if self._pooling == "cls":
            vectors = hidden[:, 0]
        else:
            mask = columns["attention_mask"][..., None].astype(np.float32)
            vectors = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1.0)
        vectors = vectors.astype(np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.where(norms > 0, norms, 1.0)

    def token_lengths(self, texts: Sequence[str]) -> list[int]:
        """Each text's length in tokens as :meth:`encode_batch` sees it (truncated)."""
        return [len(e.ids) for e in self._tokenizer.encode_batch([self._prepare(t) for t in texts])]

    def unknown_token_counts(self, texts: Sequence[str]) -> tuple[list[int], list[int]] | None:
        """:meth:`unknown_token_count` for many texts at once."""
        if self._unk_id is None:
            return None
        rows = [e.ids for e in self._counting.encode_batch(list(texts), add_special_tokens=False)]
        return [sum(1 for i in ids if i == self._unk_id) for ids in rows], [len(r) for r in rows]

    def unknown_token_count(self, text: str) -> tuple[int, int] | None:
        """``([UNK] tokens, tokens)`` of ``text`` without special tokens or
        truncation, as the torch embedder counts them; ``None`` without an unk id."""
        if self._unk_id is None:
            return None
        ids = self._counting.encode(text, add_special_tokens=False).ids
        return sum(1 for i in ids if i == self._unk_id), len(ids)


def _plan(model: Any) -> dict[str, Any] | None:
    """What the export needs to know about a sentence-transformers model, or
    ``None`` if it is not a transformer with mean or CLS pooling."""
    modules = list(model) if hasattr(model, "__iter__") else []
    kinds = [type(m).__name__ for m in modules]
    if not (kinds[:2] == ["Transformer", "Pooling"] and kinds[2:] in ([], ["Normalize"])):
        return None
    transformer, pooling = modules[0], modules[1]
    mode = getattr(pooling, "pooling_mode", None)
    if mode is None:  # older sentence-transformers keep one flag per mode
        flags = {
            "mean": getattr(pooling, "pooling_mode_mean_tokens", False),
            "cls": getattr(pooling, "pooling_mode_cls_token", False),
        }
        chosen = [name for name, on in flags.items() if on]
        mode = chosen[0] if len(chosen) == 1 else None
    tokenizer = getattr(model, "tokenizer", None)
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if mode not in ("mean", "cls") or backend is None:
        return None
    names = [n for n in tokenizer.model_input_names if n in _INPUTS]
    if "input_ids" not in names or "attention_mask" not in names:
        return None
    return {
        "transformer": transformer.auto_model,
        "backend": backend,
        "inputs": names,
        "pooling": mode,
        "max_length": int(model.max_seq_length or 512),
        "lowercase": bool(getattr(transformer, "do_lower_case", False)),
        "unk_id": getattr(tokenizer, "unk_token_id", None),
        "pad_id": getattr(tokenizer, "pad_token_id", None),
    }


_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def export_query_encoder(
    model: Any, directory: Path, *, int8: bool = False
) -> OnnxQueryEncoder | None:
    """Export ``model`` (a loaded ``SentenceTransformer``) to ``directory`` and
    return the encoder (its int8 graph, if asked and it passed its check), or
    ``None`` when the model is not supported or the export does not reproduce its
    vectors.

    The entry holds the float graph and, beside it, the same graph with its weights
    quantized to int8 (ONNX Runtime's dynamic quantization, per channel): about
    twice as fast for a question.

    The entry is written to a temporary directory and renamed into place, so a
    crash or a second process exporting at the same time never leaves half of one.
    """
    plan = _plan(model)
    if plan is None:
        log.info("query encoder: %s is not a plain pooled transformer; using torch", model)
        return None
    import torch

    names = plan["inputs"]

    class _Graph(torch.nn.Module):
        """The transformer with positional inputs, returning its token states."""

        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, *tensors: Any) -> Any:
            return self.inner(**dict(zip(names, tensors, strict=True))).last_hidden_state

    directory.parent.mkdir(parents=True, exist_ok=True)
    scratch = directory.with_name(f".{directory.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir()
    try:
        reference = _reference(model)
        sample = model.tokenizer(["hello world"], return_tensors="pt")
        dynamic = {name: {0: "batch", 1: "tokens"} for name in [*names, "hidden"]}
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the exporter's notes on tracing
            torch.onnx.export(
                _Graph(plan["transformer"]).eval(),
                tuple(sample[name] for name in names),
                str(scratch / GRAPH),
                input_names=names,
                output_names=["hidden"],
                dynamic_axes=dynamic,
                opset_version=17,
                dynamo=False,  # the TorchScript exporter needs no onnxscript
            )
        plan["backend"].save(str(scratch / TOKENIZER))
        spec = {
            "version": EXPORT_VERSION,
            "inputs": names,
            "pooling": plan["pooling"],
            "max_length": plan["max_length"],
            "lowercase": plan["lowercase"],
            "unk_id": plan["unk_id"],
            "pad_id": plan["pad_id"],
            "dimension": len(reference[0]),
            "int8": False,
        }
        (scratch / SPEC).write_text(json.dumps(spec, indent=2), encoding="utf-8")
        encoder = OnnxQueryEncoder.load(scratch)
        if encoder is None or _agreement(reference, encoder) < MIN_AGREEMENT:
            log.info("query encoder: the ONNX export of %s disagrees with torch", model)
            return None
        spec["int8"] = _quantize(scratch, reference)
        (scratch / SPEC).write_text(json.dumps(spec, indent=2), encoding="utf-8")
        # If another process got there first, its entry is as good as this one.
        with contextlib.suppress(OSError):
            os.replace(scratch, directory)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return load_preferring(directory, int8=int8)


def load_preferring(directory: Path, *, int8: bool) -> OnnxQueryEncoder | None:
    """The entry's int8 graph if ``int8`` and it has one, else its float graph."""
    return (int8 and OnnxQueryEncoder.load(directory, int8=True)) or OnnxQueryEncoder.load(
        directory
    )


def _quantize(scratch: Path, reference: np.ndarray) -> bool:
    """Write the int8 graph beside the float one; False if it cannot be made or
    strays too far from torch's vectors (it is then removed)."""
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(
            scratch / GRAPH, scratch / GRAPH_INT8, weight_type=QuantType.QInt8, per_channel=True
        )
        (scratch / SPEC).write_text(
            json.dumps({**json.loads((scratch / SPEC).read_text()), "int8": True}),
            encoding="utf-8",
        )
        encoder = OnnxQueryEncoder.load(scratch, int8=True)
        agreement = _agreement(reference, encoder) if encoder is not None else 0.0
    except Exception as exc:  # an operator the quantizer does not know, ...
        log.info("query encoder: no int8 graph: %s", exc)
        agreement = 0.0
    if agreement >= MIN_INT8_AGREEMENT:
        return True
    log.info("query encoder: the int8 graph agrees to %.4f only; using floats", agreement)
    (scratch / GRAPH_INT8).unlink(missing_ok=True)
    return False


def _reference(model: Any) -> np.ndarray:
    """torch's vectors for the probes, which the export must reproduce."""
    return model.encode(list(PROBES), normalize_embeddings=True, show_progress_bar=False)


def _agreement(reference: np.ndarray, encoder: OnnxQueryEncoder) -> float:
    """The lowest cosine between torch's and the export's vectors on the probes."""
    return min(
        float(encoder.encode(text) @ ref) for text, ref in zip(PROBES, reference, strict=True)
    )
