"""The sentence-transformers embedder with the real bundled model: the bfloat16 copy
that embeds batches, and the worker threads that embed several batches at once."""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from ragqa import ConfigError, Settings
from ragqa.embeddings import get_embedder
from ragqa.embeddings import sentence_transformers as st_embedder

MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def _paragraphs(data_dir: Path, count: int) -> list[str]:
    """Real English and Chinese paragraphs from the shared QA sets, of all lengths."""
    texts: list[str] = []
    for name in ("squad_dev_v1.1_articles_01-12.json", "drcd_dev.json"):
        data = json.loads((data_dir / name).read_text(encoding="utf-8"))["data"]
        texts += [p["context"] for article in data[:4] for p in article["paragraphs"][:4]]
    return (texts * (count // len(texts) + 1))[:count]


@pytest.fixture(autouse=True)
def _fresh_batch_models():
    # Which copy embeds batches is decided once per process; each test decides anew.
    st_embedder._batch_model.cache_clear()
    st_embedder._replicas.cache_clear()
    yield
    st_embedder._batch_model.cache_clear()
    st_embedder._replicas.cache_clear()


def _dtype(embedder) -> str:
    return str(next(embedder.batch_model.parameters()).dtype)


def test_the_bfloat16_copy_gives_nearly_the_same_vectors(shared_data):
    texts = _paragraphs(shared_data, 32)
    full = get_embedder(MODEL, precision="float32")
    reduced = get_embedder(MODEL, precision="bfloat16")
    assert _dtype(full) == "torch.float32" and _dtype(reduced) == "torch.bfloat16"
    a, b = full.embed(texts), reduced.embed(texts)
    assert b.dtype == np.float32
    # Normalised in float32, whatever precision pooled them.
    np.testing.assert_allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-5)
    cosines = np.sum(a * b, axis=1)
    assert cosines.min() >= st_embedder.MIN_BF16_AGREEMENT
    assert cosines.min() < 0.999999, "the bfloat16 copy should really be another model"
    # The original stays float32: the ONNX export and torch questions rely on it.
    assert str(next(full.model.parameters()).dtype) == "torch.float32"
    assert reduced.model is full.model


@pytest.mark.parametrize(
    ("amx", "avx512_bf16", "expected"),
    [
        (True, False, True),  # Intel Sapphire Rapids and later
        (False, True, True),  # AMD Zen 4 and later: measured 2.5x faster here
        (False, False, False),  # AVX2 only: bfloat16 would be emulated
        (RuntimeError("no cpuinfo"), True, True),  # one probe failing is not fatal
        (None, None, False),  # a torch without either probe
    ],
)
def test_native_bfloat16_means_amx_or_avx512_bf16(monkeypatch, amx, avx512_bf16, expected):
    import torch

    def probe(value):
        if isinstance(value, Exception):

            def failing():
                raise value

            return failing
        return lambda: value

    for name, value in (
        ("_is_amx_tile_supported", amx),
        ("_is_avx512_bf16_supported", avx512_bf16),
    ):
        if value is None:
            monkeypatch.delattr(torch.cpu, name, raising=False)
        else:
            monkeypatch.setattr(torch.cpu, name, probe(value), raising=False)
    assert st_embedder.native_bfloat16() is expected


def test_auto_uses_bfloat16_only_where_the_cpu_does_it_in_hardware(monkeypatch):
    monkeypatch.setattr(st_embedder, "native_bfloat16", lambda: False)
    embedder = get_embedder(MODEL)
    assert embedder.batch_model is embedder.model
    st_embedder._batch_model.cache_clear()
    st_embedder._replicas.cache_clear()
    monkeypatch.setattr(st_embedder, "native_bfloat16", lambda: True)
    assert _dtype(get_embedder(MODEL)) == "torch.bfloat16"


def test_a_bfloat16_copy_that_strays_is_not_used(monkeypatch, caplog):
    monkeypatch.setattr(st_embedder, "MIN_BF16_AGREEMENT", 1.01)  # no copy can pass
    embedder = get_embedder(MODEL, precision="bfloat16")
    with caplog.at_level(logging.WARNING, logger="ragqa.embeddings.sentence_transformers"):
        assert embedder.batch_model is embedder.model
    assert "strays" in caplog.text


def test_the_precision_setting(monkeypatch):
    monkeypatch.setenv("RAGQA_EMBEDDING_PRECISION", "bfloat16")
    assert Settings.from_env().embedding_precision == "bfloat16"
    monkeypatch.setenv("RAGQA_EMBEDDING_PRECISION", "fp16")
    with pytest.raises(ConfigError, match="embedding_precision must be one of auto"):
        Settings.from_env()
    with pytest.raises(ConfigError, match="precision must be one of"):
        get_embedder(MODEL, precision="int4")


@pytest.fixture
def two_torch_threads():
    """At least two torch threads, so that there are two workers even on one core."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(max(2, before))
    yield torch.get_num_threads()
    torch.set_num_threads(before)


def test_workers_embed_batches_at_once_each_with_a_model_of_its_own(
    monkeypatch, two_torch_threads, shared_data
):
    texts = _paragraphs(shared_data, 40)
    embedder = get_embedder(MODEL, batch_size=4, precision="float32")
    assert embedder.workers == min(st_embedder.MAX_CPU_WORKERS, two_torch_threads)
    alone = np.vstack([embedder.embed_batch([t]) for t in texts])

    in_use: set[int] = set()
    shared: list[str] = []
    threads: set[str] = set()
    guard = threading.Lock()
    encode = st_embedder._encode

    def watched(model, batch, batch_size=16):
        with guard:
            if id(model) in in_use:
                shared.append(threading.current_thread().name)
            in_use.add(id(model))
            threads.add(threading.current_thread().name)
        time.sleep(0.01)  # let the other worker start while this one holds its copy
        try:
            return encode(model, batch, batch_size)
        finally:
            with guard:
                in_use.discard(id(model))

    monkeypatch.setattr(st_embedder, "_encode", watched)
    done: list[int] = []
    vectors = embedder.embed(texts, progress=done.append)
    assert not shared, f"two threads used one model (and its tokenizer) at once: {shared}"
    assert len(threads) >= 2 and all(name.startswith("ragqa-embed") for name in threads)
    assert done[-1] == len(texts) and done == sorted(done)
    # Padding to a batch's longest text changes float32 sums in the last bits only.
    assert float(np.min(np.sum(vectors * alone, axis=1))) > 0.99999


def test_workers_leave_torchs_thread_count_as_it_was(two_torch_threads):
    import torch

    get_embedder(MODEL, batch_size=2, precision="float32").embed([f"text {n}" for n in range(8)])
    assert torch.get_num_threads() == two_torch_threads
    # A worker's torch.set_num_threads(1) is also the default of threads new to
    # torch, such as the UI's next rerun; it must not outlive the ingest.
    seen: list[int] = []
    fresh = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
    fresh.start()
    fresh.join()
    assert seen == [two_torch_threads]


def test_the_bfloat16_copy_pads_batches_to_a_multiple_of_16_tokens(shared_data):
    import copy

    # Beginnings of real paragraphs, of many lengths below the model's 256 tokens.
    texts = [p[: 40 + 23 * n] for n, p in enumerate(_paragraphs(shared_data, 12))]
    reduced = get_embedder(MODEL, precision="bfloat16").batch_model
    unpadded = copy.deepcopy(reduced)
    unpadded[0]._forward_pre_hooks.clear()
    lengths: dict[str, list[int]] = {"padded": [], "unpadded": []}
    for name, model in (("padded", reduced), ("unpadded", unpadded)):
        # What the pooling module receives: the transformer's output, token by token.
        model[1].register_forward_pre_hook(
            lambda _m, args, name=name: lengths[name].append(args[0]["token_embeddings"].shape[1])
        )
    for text in texts:  # one at a time: each batch as long as its text
        a = st_embedder._encode(reduced, [text])
        b = st_embedder._encode(unpadded, [text])
        assert float(a[0] @ b[0]) > 0.9995, text[:40]
    assert all(n % st_embedder.PAD_MULTIPLE == 0 for n in lengths["padded"]), lengths
    assert any(n % st_embedder.PAD_MULTIPLE for n in lengths["unpadded"]), lengths
    assert len(lengths["padded"]) == len(texts)


def test_texts_are_bucketed_by_tokens_not_characters():
    embedder = get_embedder(MODEL, precision="float32")
    # 26 characters but 13 tokens of digits and commas; 26 letters of one word, 2 tokens.
    digits, word = "1,2,3,4,5,6,7,8,9,1,2,3,4,", "abcdefghijklmnopqrstuvwxyz"
    assert len(digits) == len(word)
    counted = embedder.text_lengths([digits, word, "word " * 400])
    tokenizer = embedder.model.tokenizer
    assert counted[:2] == [len(tokenizer(t)["input_ids"]) for t in (digits, word)]
    assert counted[0] > counted[1]
    assert counted[2] == embedder.model.max_seq_length  # truncated, as the model sees it


def test_a_model_whose_tokenizer_cannot_count_is_bucketed_by_characters(monkeypatch):
    embedder = get_embedder(MODEL, precision="float32")
    replicas = embedder._replicas()
    monkeypatch.setattr(replicas, "_counting", None)
    assert embedder.text_lengths(["abc", "a" * 50]) == [3, 50]
    monkeypatch.setattr(replicas, "_counting", lambda *a, **k: 1 / 0)
    assert embedder.text_lengths(["abc"]) == [3]
    assert embedder.embed(["still embeds"]).shape == (1, 384)
