"""ragqa.lang: which characters are CJK, and which language a text is in."""

from __future__ import annotations

import pytest

from ragqa.lang import (
    _CJK_PUNCT_RANGES,
    _CJK_RANGES,
    detect_language,
    is_cjk,
    is_cjk_punctuation,
)


@pytest.mark.parametrize(
    ("test", "ranges"), [(is_cjk, _CJK_RANGES), (is_cjk_punctuation, _CJK_PUNCT_RANGES)]
)
def test_the_regexes_match_exactly_the_listed_ranges(test, ranges) -> None:
    # The checks are regexes built from the range tables; every code point up to
    # the end of the last CJK plane must agree with the tables.
    disagree = [
        hex(code)
        for code in range(0x30000)
        if test(chr(code)) != any(low <= code <= high for low, high in ranges)
    ]
    assert not disagree, disagree[:10]


def test_languages() -> None:
    assert detect_language("台灣的首都是哪裡？") == "zh"
    assert detect_language("What is the capital of Taiwan?") == "en"
    assert detect_language("") == "en"
    assert is_cjk("中") and is_cjk("か") and not is_cjk("a") and not is_cjk("。")
    assert is_cjk_punctuation("。") and is_cjk_punctuation("！") and not is_cjk_punctuation("中")
