"""The ONNX Runtime query encoder against the real bundled model and torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ragqa import ConfigError, Settings
from ragqa.embeddings import get_embedder, onnx_query
from ragqa.embeddings import sentence_transformers as st_embedder
from ragqa.embeddings.onnx_query import (
    SPEC,
    OnnxQueryEncoder,
    cache_directory,
    export_query_encoder,
)

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
TEXTS = [
    "Who founded the Normans?",
    "誰是中華民國的第一任總統？",
    "  What does 'BM25' score, and why?  ",
    "Ünïcödé accents, zero\u200bwidth and ｆｕｌｌｗｉｄｔｈ characters",
    "a long one " * 200,  # beyond the model's 256 tokens: truncated like torch does
    "x",
]


@pytest.fixture(scope="module")
def torch_model():
    return st_embedder._load(st_embedder.resolve_model_path(MODEL), "")


@pytest.fixture
def model_dir() -> Path:
    return Path(st_embedder.resolve_model_path(MODEL))


def test_the_export_reproduces_torchs_vectors_and_unknown_counts(torch_model, tmp_path):
    encoder = export_query_encoder(torch_model, tmp_path / "cache" / "entry")
    assert encoder is not None
    reference = torch_model.encode(TEXTS, normalize_embeddings=True)
    for text, ref in zip(TEXTS, reference, strict=True):
        vector = encoder.encode(text)
        assert vector.shape == (384,) and vector.dtype == np.float32
        assert float(vector @ ref) > 0.9999, text
    tokenizer = torch_model.tokenizer
    for text in TEXTS:
        ids = tokenizer([text], add_special_tokens=False, truncation=False)["input_ids"][0]
        expected = (sum(1 for i in ids if i == tokenizer.unk_token_id), len(ids))
        assert encoder.unknown_token_count(text) == expected, text
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["entry"], "no scratch left"
    assert not encoder.int8


def test_the_int8_graph_stays_close_to_torch(torch_model, tmp_path):
    encoder = export_query_encoder(torch_model, tmp_path / "entry", int8=True)
    assert encoder is not None and encoder.int8
    assert (tmp_path / "entry" / onnx_query.GRAPH_INT8).is_file()
    floats = OnnxQueryEncoder.load(tmp_path / "entry")
    assert floats is not None and not floats.int8
    reference = torch_model.encode(TEXTS, normalize_embeddings=True)
    cosines = [float(encoder.encode(t) @ ref) for t, ref in zip(TEXTS, reference, strict=True)]
    assert min(cosines) >= onnx_query.MIN_INT8_AGREEMENT, cosines
    assert max(cosines) < 0.99999, "the int8 graph really is another graph"
    # The same tokenizer: [UNK] counts do not depend on the weights.
    assert [encoder.unknown_token_count(t) for t in TEXTS] == [
        floats.unknown_token_count(t) for t in TEXTS
    ]


def test_an_int8_graph_that_strays_from_torch_is_dropped(torch_model, tmp_path, monkeypatch):
    monkeypatch.setattr(onnx_query, "MIN_INT8_AGREEMENT", 1.5)  # no cosine reaches it
    encoder = export_query_encoder(torch_model, tmp_path / "entry", int8=True)
    assert encoder is not None and not encoder.int8, "the float graph is used instead"
    assert not (tmp_path / "entry" / onnx_query.GRAPH_INT8).exists()
    assert OnnxQueryEncoder.load(tmp_path / "entry", int8=True) is None
    assert json.loads((tmp_path / "entry" / SPEC).read_text())["int8"] is False


def test_a_new_process_embeds_questions_from_the_cache_without_torch(tmp_path):
    cache = tmp_path / "cache"
    script = (
        "import sys, json\n"
        "from ragqa.embeddings import get_embedder\n"
        f"e = get_embedder({MODEL!r})\n"
        "v = e.embed_query('Who founded the Normans?')\n"
        "print(json.dumps({'torch': 'torch' in sys.modules, 'onnx': e.query_encoder() is not None,"
        " 'v': v.tolist()}))\n"
    )
    env = dict(os.environ, XDG_CACHE_HOME=str(cache))

    def run() -> dict:
        done = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
        )
        return json.loads(done.stdout.strip().splitlines()[-1])

    first, second = run(), run()
    assert first["onnx"] and first["torch"], "the first process exports, which needs torch"
    assert second["onnx"] and not second["torch"], "later processes need no torch at all"
    assert list((cache / "ragqa" / "onnx").glob(f"*/{SPEC}"))
    np.testing.assert_allclose(first["v"], second["v"], atol=1e-6)


def test_the_cache_key_follows_the_models_files(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    model = tmp_path / "my-model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    first = cache_directory(str(model))
    assert first is not None and first.parent == tmp_path / "cache" / "ragqa" / "onnx"
    assert first.name.startswith("my-model-")
    assert cache_directory(str(model)) == first
    (model / "config.json").write_text('{"changed": true}')
    assert cache_directory(str(model)) != first, "an updated model gets a new export"
    assert cache_directory("someone/hub-model") is None, "no files to key a hub name on"


def test_a_damaged_cache_entry_is_not_used(torch_model, tmp_path):
    entry = tmp_path / "entry"
    assert export_query_encoder(torch_model, entry) is not None
    graph = entry / onnx_query.GRAPH
    graph.write_bytes(graph.read_bytes()[:1000])
    assert OnnxQueryEncoder.load(entry) is None
    (entry / SPEC).write_text("{not json")
    assert OnnxQueryEncoder.load(entry) is None
    assert OnnxQueryEncoder.load(tmp_path / "missing") is None


def test_an_export_that_disagrees_with_torch_is_thrown_away(torch_model, tmp_path, monkeypatch):
    monkeypatch.setattr(onnx_query, "MIN_AGREEMENT", 1.5)  # no cosine reaches it
    assert export_query_encoder(torch_model, tmp_path / "cache" / "entry") is None
    assert list((tmp_path / "cache").iterdir()) == [], "neither the entry nor its scratch"


def test_models_that_are_not_a_pooled_transformer_stay_on_torch(torch_model, tmp_path):
    class Dense:
        pass

    class Odd(list):
        tokenizer = torch_model.tokenizer
        max_seq_length = 256

    assert onnx_query._plan(Odd([torch_model[0], torch_model[1], Dense()])) is None
    assert onnx_query._plan(Odd([torch_model[0]])) is None
    assert export_query_encoder(Odd([torch_model[0]]), tmp_path / "entry") is None
    assert onnx_query._plan(torch_model)["pooling"] == "mean"


def test_the_embedder_falls_back_to_torch_when_no_export_is_possible(tmp_path, monkeypatch, caplog):
    st_embedder._query_encoder.cache_clear()
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")  # the cache cannot be created below a file
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    try:
        embedder = get_embedder(MODEL)
        with caplog.at_level("WARNING"):
            vector = embedder.embed_query("Who founded the Normans?")
        assert embedder.query_encoder() is None
        assert "cannot export" in caplog.text
        reference = get_embedder(MODEL, query_backend="torch").embed_query(
            "Who founded the Normans?"
        )
        assert float(vector @ reference) > 0.9999
    finally:
        st_embedder._query_encoder.cache_clear()


def test_the_query_backend_setting(monkeypatch):
    assert get_embedder(MODEL).query_encoder().int8
    assert not get_embedder(MODEL, query_backend="onnx-fp32").query_encoder().int8
    assert get_embedder(MODEL, query_backend="torch").query_encoder() is None
    assert get_embedder(MODEL, device="cuda").query_encoder() is None
    with pytest.raises(ConfigError, match="query_backend"):
        get_embedder(MODEL, query_backend="onnx-gpu")
    monkeypatch.setenv("RAGQA_QUERY_BACKEND", "torch")
    assert Settings.from_env().query_backend == "torch"
    monkeypatch.setenv("RAGQA_QUERY_BACKEND", "onnx-fp32")
    assert Settings.from_env().query_backend == "onnx-fp32"
    monkeypatch.setenv("RAGQA_QUERY_BACKEND", "fast")
    with pytest.raises(ConfigError, match="query_backend"):
        Settings.from_env()


def test_threads_asking_their_first_questions_at_once_export_once(tmp_path, monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    st_embedder._query_encoder.cache_clear()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    real_export = onnx_query.export_query_encoder
    exports = []

    def counting(model, directory, **options):
        exports.append(directory)
        return real_export(model, directory, **options)

    monkeypatch.setattr(onnx_query, "export_query_encoder", counting)
    try:
        embedder = get_embedder(MODEL)
        with ThreadPoolExecutor(4) as pool:
            vectors = list(pool.map(embedder.embed_query, ["Who founded the Normans?"] * 4))
        assert len(exports) == 1
        assert embedder.query_encoder() is not None
        for vector in vectors[1:]:
            np.testing.assert_allclose(vector, vectors[0], atol=1e-6)
        leftovers = [p.name for p in (tmp_path / "cache" / "ragqa" / "onnx").iterdir()]
        assert len(leftovers) == 1 and not leftovers[0].startswith("."), leftovers
    finally:
        st_embedder._query_encoder.cache_clear()
