"""The label table: complete in both languages, placeholders consistent, locales mapped."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest

from ragqa.i18n import DEFAULT_LANGUAGE, LABELS, LANGUAGES, language_from_locale, t

REPO = Path(__file__).resolve().parents[1]


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


@pytest.mark.parametrize("key", sorted(LABELS))
def test_every_label_has_every_language_with_the_same_placeholders(key):
    entry = LABELS[key]
    assert set(entry) == set(LANGUAGES), key
    assert all(entry[lang].strip() for lang in LANGUAGES), key
    assert _placeholders(entry["en"]) == _placeholders(entry["zh"]), key


def test_chinese_labels_are_chinese():
    # A label copied across untranslated is the easiest mistake to make.
    untranslated = [
        key
        for key, entry in LABELS.items()
        if entry["zh"] == entry["en"] and not key.startswith("backend_ollama")
    ]
    assert untranslated == []


def test_t_fills_placeholders_and_falls_back_to_english():
    assert t("doc_line", "en", pages=2, chunks=7) == "2 pages, 7 chunks"
    assert t("doc_line", "en", pages=1, chunks=1) == "1 page, 1 chunk"
    assert t("doc_line", "en", pages=0, chunks=1) == "0 pages, 1 chunk"
    assert t("result_added", "en", name="a.md", pages="x", chunks="y") == "a.md: added y from x."
    assert t("doc_line", "zh", pages=2, chunks=7) == "2 頁，7 個片段"
    assert t("chat_clear", "fr") == t("chat_clear", DEFAULT_LANGUAGE)
    with pytest.raises(KeyError):
        t("no_such_label", "en")


@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        ("zh-TW", "zh"),
        ("zh-CN", "zh"),
        ("zh_Hant_HK", "zh"),
        ("ZH", "zh"),
        ("en-US", "en"),
        ("fr-FR", "en"),
        ("", "en"),
        (None, "en"),
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh"),
        ("de-DE,zh;q=0.5", "en"),
    ],
)
def test_language_from_locale(locale, expected):
    assert language_from_locale(locale) == expected


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
