"""Tell Chinese from English text, character by character and for a whole string.

Several parts of ragqa care which script a piece of text is in: the normaliser drops
the spaces pypdf puts between CJK characters, the splitter may cut between two CJK
characters but never inside an English word, the lexical index segments Chinese with
jieba, and the prompt builder answers in the question's language.

Example:
    >>> detect_language("台灣的首都是哪裡？")
    'zh'
    >>> detect_language("What is the capital of Taiwan?")
    'en'
    >>> is_cjk("中"), is_cjk("a")
    (True, False)
"""

from __future__ import annotations

import re

__all__ = ["CJK_LETTERS", "cjk_ratio", "detect_language", "is_cjk", "is_cjk_punctuation"]

# Unified ideographs and their extensions, plus kana and hangul: all are written
# without spaces between words, which is what matters to the code that asks.
_CJK_RANGES = (
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x3400, 0x4DBF),  # CJK Extension A
    (0x4E00, 0x9FFF),  # CJK Unified Ideographs
    (0xAC00, 0xD7AF),  # Hangul syllables
    (0xF900, 0xFAFF),  # CJK Compatibility Ideographs
    (0x20000, 0x2FA1F),  # Extensions B-F and compatibility supplement
)
_CJK_PUNCT_RANGES = (
    (0x3000, 0x303F),  # CJK symbols and punctuation: 、。「」『』
    (0xFF00, 0xFFEF),  # Full-width forms: ！，：；？（）
)


def _character_class(ranges: tuple[tuple[int, int], ...]) -> str:
    return "".join(f"{chr(low)}-{chr(high)}" for low, high in ranges)


# The CJK letters as the inside of a regex character class, for code that scans
# whole strings at C speed: f"[{CJK_LETTERS}]+" is a run of them.
CJK_LETTERS = _character_class(_CJK_RANGES)
# One regex match is several times faster than comparing against each range in
# Python, and is_cjk runs once per character of every chunk.
_CJK_CHAR = re.compile(f"[{CJK_LETTERS}]")
_CJK_PUNCT_CHAR = re.compile(f"[{_character_class(_CJK_PUNCT_RANGES)}]")


def is_cjk(char: str) -> bool:
    """True for a Chinese, Japanese or Korean letter (not punctuation)."""
    return _CJK_CHAR.match(char) is not None


def is_cjk_punctuation(char: str) -> bool:
    """True for CJK and full-width punctuation such as 。，！？「」."""
    return _CJK_PUNCT_CHAR.match(char) is not None


def cjk_ratio(text: str) -> float:
    """The share of CJK characters among the letters of ``text`` (0.0 when none)."""
    letters = cjk = 0
    for char in text:
        if is_cjk(char):
            cjk += 1
            letters += 1
        elif char.isalpha():
            letters += 1
    return cjk / letters if letters else 0.0


def detect_language(text: str) -> str:
    """``"zh"`` when CJK characters make up a real part of the text, else ``"en"``.

    One CJK character carries about as much as one English word, so a question
    counts as Chinese at a much lower share of characters than one half.
    """
    return "zh" if cjk_ratio(text) >= 0.2 else "en"
