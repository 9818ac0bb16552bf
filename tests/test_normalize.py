"""Every normalisation rule, with the cases where it must fire and where it must not."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ragqa.normalize import normalize_text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a\r\nb", "a\nb"),
        ("a\rb", "a\nb"),
        ("a\r\n\r\nb", "a\n\nb"),
        ("a\u2028b", "a\nb"),
        ("a\u2029b", "a\n\nb"),
        ("page one\x0cpage two", "page one\n\npage two"),
    ],
)
def test_line_endings_become_newlines(raw: str, expected: str) -> None:
    assert normalize_text(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a   b", "a b"),
        ("a\t\tb", "a b"),
        ("a \t b", "a b"),
        ("a\tb", "a b"),
        ("10\u00a0km", "10 km"),
        ("a\u2003\u2009b", "a b"),
    ],
)
def test_runs_of_spaces_and_tabs_collapse(raw: str, expected: str) -> None:
    assert normalize_text(raw) == expected


def test_newlines_are_not_spaces_to_collapse() -> None:
    assert normalize_text("a\nb\n\nc") == "a\nb\n\nc"


def test_ideographic_space_is_kept() -> None:
    # U+3000 is a deliberate full-width space in Chinese typesetting.
    assert normalize_text("第一章\u3000總論") == "第一章\u3000總論"


def test_trailing_spaces_are_stripped_on_every_line() -> None:
    assert normalize_text("first  \nsecond\t\nthird") == "first\nsecond\nthird"


def test_leading_space_of_a_line_is_kept_as_one_space() -> None:
    assert normalize_text("a\n    indented") == "a\n indented"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a\n\n\nb", "a\n\nb"),
        ("a\n\n\n\n\n\nb", "a\n\nb"),
        ("a\n  \n \t\n\nb", "a\n\nb"),  # lines of only spaces count as blank
        ("a\n\nb", "a\n\nb"),  # one blank line is a paragraph break and stays
    ],
)
def test_blank_lines_collapse_to_one_paragraph_break(raw: str, expected: str) -> None:
    assert normalize_text(raw) == expected


def test_whole_text_is_stripped() -> None:
    assert normalize_text("\n\n  text  \n\n") == "text"
    assert normalize_text(" \t\n\r\n ") == ""


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("中 文", "中文"),
        ("操 作 手 冊", "操作手冊"),
        ("中 。", "中。"),
        ("你好 ，世界", "你好，世界"),
        ("「 茶 」", "「茶」"),
        ("こんにちは 世界", "こんにちは世界"),
        ("中    文", "中文"),  # a run collapses first, then goes
    ],
)
def test_spaces_between_cjk_characters_are_removed(raw: str, expected: str) -> None:
    assert normalize_text(raw) == expected


@pytest.mark.parametrize(
    "text",
    [
        "使用 Python 处理",  # CJK next to Latin words: the space is meaningful
        "PDF 文件",
        "第 3 章",
        "中文 (English)",
        "안녕하세요 세계",  # Korean writes spaces between words
        "中\n文",  # line breaks are not stray spaces
    ],
)
def test_spaces_next_to_non_cjk_or_between_korean_words_stay(text: str) -> None:
    assert normalize_text(text) == text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("infor-\nmation", "information"),
        ("a well-\nknown fact", "a wellknown fact"),
        ("über-\nschrift", "überschrift"),
        ("infor-  \nmation", "information"),  # trailing spaces go first
        ("one-\ntwo-\nthree", "onetwothree"),
    ],
)
def test_hyphenated_line_breaks_between_lowercase_letters_are_joined(
    raw: str, expected: str
) -> None:
    assert normalize_text(raw) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Jean-\nPaul",  # capitalised compound
        "API-\nbased",  # capital before the hyphen
        "pre-\nSQL",
        "1990-\n1995",  # numeric range
        "pages 10-\n12",
        "x-\n3",
        "end -\nstart",  # a dash with a space before it is not a broken word
        "in-line",  # no line break at all
        "infor-\n\nmation",  # a paragraph break is not a line break
    ],
)
def test_hyphens_that_are_not_broken_words_stay(text: str) -> None:
    assert normalize_text(text) == text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a\x00b", "ab"),
        ("a\x07b\x1bc", "abc"),
        ("a\x7fb\x85c", "abc"),
        ("in\u200bfor\u200cma\u200dtion", "information"),
        ("\ufeffstart", "start"),
        ("word\u2060joined", "wordjoined"),
        ("left\u200eright\u200f", "leftright"),
        ("soft\u00adhyphen", "softhyphen"),
        ("infor\u00ad\nmation", "information"),
    ],
)
def test_control_and_invisible_characters_are_dropped(raw: str, expected: str) -> None:
    assert normalize_text(raw) == expected


def test_tabs_and_newlines_survive_control_character_removal() -> None:
    # They are whitespace, not junk: dropping them would glue words together.
    assert normalize_text("a\tb\nc") == "a b\nc"


def test_text_is_nfc_composed() -> None:
    decomposed = "Cafe\u0301 Zu\u0308rich"
    result = normalize_text(decomposed)
    assert result == "Café Zürich"
    assert unicodedata.is_normalized("NFC", result)


def test_nfc_applies_after_invisible_characters_are_dropped() -> None:
    # Removing the zero-width space leaves e + combining acute, which must compose.
    assert normalize_text("e\u200b\u0301") == "é"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ﬁlled", "filled"),
        ("ﬂow", "flow"),
        ("eﬀect", "effect"),
        ("oﬃce", "office"),
        ("ﬁ\u0301", "fí"),  # spelt out before NFC, so the accent still composes
    ],
)
def test_latin_ligatures_are_spelt_out(raw: str, expected: str) -> None:
    assert normalize_text(raw) == expected


def test_full_width_chinese_punctuation_is_not_turned_into_ascii() -> None:
    assert normalize_text("甲方：中国（盖章），完。") == "甲方：中国（盖章），完。"


def test_rules_combine_on_a_pypdf_like_page() -> None:
    raw = "OP( 操 作 ):  李雅惠  \r\nTO: 天津 外代\r\n\r\n\r\n\r\nThe infor-\nmation is\x00 here.\t"
    assert normalize_text(raw) == "OP( 操作 ): 李雅惠\nTO: 天津外代\n\nThe information is here."


# Characters that exercise every rule, mixed with arbitrary text.
_TRICKY = st.sampled_from(
    list("中文。，「」 \t\n\r-aZ1é\u0301\u00ad\u200b\ufeff\x00\x0c\u2028\u3000ﬁ안녕")
)


@settings(max_examples=500)
@given(st.lists(st.one_of(_TRICKY, st.characters()), max_size=60).map("".join))
def test_normalize_text_is_idempotent(text: str) -> None:
    once = normalize_text(text)
    assert normalize_text(once) == once


@settings(max_examples=300)
@given(st.lists(st.one_of(_TRICKY, st.characters()), max_size=60).map("".join))
def test_normalized_text_has_none_of_what_the_rules_remove(text: str) -> None:
    result = normalize_text(text)
    assert "\r" not in result
    assert "\n\n\n" not in result
    assert " \n" not in result
    assert "  " not in result
    assert result == result.strip()
    assert not any(ch in result for ch in "\x00\u200b\ufeff\u00ad")
    assert unicodedata.is_normalized("NFC", result)


def test_a_chinese_table_header_keeps_its_cells_apart() -> None:
    # As pypdf reads a prospectus's credit table: the header's cells are words of
    # several characters, and only the spaces tell them apart.
    table = "授信银行 授信额度 已使用额度 未使用额度\n中国银行 234,850.00 150,200.00 84,650.00"
    assert normalize_text(table) == table
    # A line of spaced characters over the same numbers is still joined.
    assert normalize_text("授 信 银 行\n中国银行 234,850.00 150,200.00 84,650.00").startswith(
        "授信银行\n"
    )
    assert normalize_text(normalize_text(table)) == normalize_text(table)
