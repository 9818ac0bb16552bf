"""The label table: complete in three languages, each in its own script, locales mapped."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest

from ragqa.i18n import (
    DEFAULT_LANGUAGE,
    LABELS,
    LANGUAGES,
    canonical_language,
    language_from_locale,
    reply_language,
    t,
)
from ragqa.prompting import no_answer_text

REPO = Path(__file__).resolve().parents[1]


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


@pytest.mark.parametrize("key", sorted(LABELS))
def test_every_label_has_every_language_with_the_same_placeholders(key):
    entry = LABELS[key]
    assert set(entry) == set(LANGUAGES), key
    assert all(entry[lang].strip() for lang in LANGUAGES), key
    for lang in LANGUAGES:
        assert _placeholders(entry[lang]) == _placeholders(entry["en"]), (key, lang)


def test_chinese_labels_are_chinese():
    # A label copied across untranslated is the easiest mistake to make.
    same = {"backend_ollama"}  # a product name
    for lang in ("zh-Hans", "zh-Hant"):
        untranslated = [k for k, e in LABELS.items() if e[lang] == e["en"] and k not in same]
        assert untranslated == [], lang


def test_each_chinese_label_is_in_its_own_script():
    from opencc import OpenCC

    to_simplified, to_traditional = OpenCC("t2s"), OpenCC("s2t")
    for key, entry in LABELS.items():
        simplified, traditional = entry["zh-Hans"], entry["zh-Hant"]
        # Nothing in the Simplified label that OpenCC would still simplify...
        assert to_simplified.convert(simplified) == simplified, key
        # ...no Simplified-only character in the Traditional one...
        simplified_only = [
            c
            for c in traditional
            if to_traditional.convert(c) != c and to_simplified.convert(c) == c
        ]
        assert simplified_only == [], key
        # ...and no Traditional label copied into Simplified.
        if to_simplified.convert(traditional) != traditional:
            assert simplified != traditional, key


def test_simplified_uses_mainland_words_not_converted_taiwanese_ones():
    # OpenCC's character conversion would give 档案, 设定, 文件 for "document".
    assert t("page_title", "zh-Hans") == "向文档提问"
    assert t("upload_label", "zh-Hans") == "添加 PDF、TXT 或 MD 文件"
    assert t("settings", "zh-Hans") == "设置"
    assert t("page_title", "zh-Hant") == "向文件提問"
    assert t("upload_label", "zh-Hant") == "加入 PDF、TXT 或 MD 檔案"


def test_t_fills_placeholders_and_falls_back_to_english():
    assert t("doc_line", "en", pages=2, chunks=7) == "2 pages, 7 chunks"
    assert t("doc_line", "en", pages=1, chunks=1) == "1 page, 1 chunk"
    assert t("doc_line", "en", pages=0, chunks=1) == "0 pages, 1 chunk"
    assert t("result_added", "en", name="a.md", pages="x", chunks="y") == "a.md: added y from x."
    assert t("doc_line", "zh-Hant", pages=2, chunks=7) == "2 頁，7 個片段"
    assert t("doc_line", "zh-Hans", pages=2, chunks=7) == "2 页，7 个片段"
    assert t("chat_clear", "fr") == t("chat_clear", DEFAULT_LANGUAGE)
    with pytest.raises(KeyError):
        t("no_such_label", "en")


def test_the_old_zh_code_still_means_traditional():
    # Sessions and callers from before there were two scripts said "zh".
    assert t("doc_line", "zh", pages=2, chunks=7) == "2 頁，7 個片段"
    assert canonical_language("zh") == "zh-Hant"
    assert canonical_language("ZH-HANS") == "zh-Hans"
    assert canonical_language(None) == canonical_language("de") == "en"


@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        ("zh-CN", "zh-Hans"),
        ("zh-SG", "zh-Hans"),
        ("zh-Hans", "zh-Hans"),
        ("zh-Hans-CN", "zh-Hans"),
        ("zh", "zh-Hans"),
        ("ZH", "zh-Hans"),
        ("zh-TW", "zh-Hant"),
        ("zh-HK", "zh-Hant"),
        ("zh-MO", "zh-Hant"),
        ("zh-Hant", "zh-Hant"),
        ("zh_Hant_HK", "zh-Hant"),
        ("zh-Hans-HK", "zh-Hans"),  # the script, when given, wins over the region
        ("en-US", "en"),
        ("fr-FR", "en"),
        ("", "en"),
        (None, "en"),
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh-Hans"),
        ("zh-TW,zh;q=0.9", "zh-Hant"),
        ("de-DE,zh;q=0.5", "en"),
    ],
)
def test_language_from_locale(locale, expected):
    assert language_from_locale(locale) == expected


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("Who built the lighthouse?", "en"),
        ("LLM 不会用工具怎么办？", "zh-Hans"),
        ("這個燈塔是誰建造的？", "zh-Hant"),
        ("这个灯塔是谁建造的？", "zh-Hans"),
    ],
)
def test_replies_follow_the_question_as_the_answerer_does(question, expected):
    assert reply_language(question) == expected
    # The answerer's own "no answer" sentence is in the same language and script.
    assert reply_language(no_answer_text(question)) == expected


def test_every_label_the_page_and_workspace_use_exists():
    # The page and the workspace name labels as string literals; a typo would only
    # show up as a KeyError in front of a user.
    used: set[str] = set()
    app = (REPO / "ui" / "app.py").read_text(encoding="utf-8")
    used |= set(re.findall(r"\btr?\(\s*\"([a-z_]+)\"", app))
    used |= set(re.findall(r"Notice\(\s*\"\w+\",\s*\"([a-z_]+)\"", app))
    workspace = (REPO / "ragqa" / "workspace.py").read_text(encoding="utf-8")
    used |= set(re.findall(r"label=\"([a-z_]+)\"", workspace))
    used |= set(re.findall(r"Notice\(\s*\"\w+\",\s*\"([a-z_]+)\"", workspace))
    used |= set(re.findall(r"\"(result_[a-z_]+)\"", workspace))
    assert len(used) > 30  # the patterns still find the page's labels
    assert sorted(used - set(LABELS)) == []
    # Labels built from a value: one per backend, retrieval mode and result status.
    from ragqa.config import LLM_BACKENDS, RETRIEVAL_MODES

    dynamic = {f"backend_{b}" for b in LLM_BACKENDS} | {f"mode_{m}" for m in RETRIEVAL_MODES}
    dynamic |= {"result_added", "result_replaced"}
    assert sorted(dynamic - set(LABELS)) == []
