"""Turn Chinese and English text into lexical terms, the words BM25 matches.

How Chinese is tokenized was chosen by measurement on DRCD (Traditional Chinese,
1,000 paragraphs, questions split in halves by a hash of their id; MRR@10 on the
tuning half / the held-out half): jieba's search mode 0.940 / 0.947, the same after
Traditional-to-Simplified conversion 0.953 / 0.958, character bigrams 0.955 / 0.967,
character unigrams plus bigrams 0.961 / 0.971, and jieba's words plus unigrams plus
bigrams 0.960 / 0.973. ragqa uses the last: jieba's words (search mode, so a long
word also yields the dictionary words inside it) carry whole-word matches, and the
character n-grams catch what segmentation gets wrong and let a one-character query
word such as 茶 match 茶葉. Converting to Simplified first matters because jieba's
dictionary is Simplified, and it lets a Simplified query find Traditional text. On
English SQuAD, dropping a few function words and Porter's step 1 (plurals, -ed,
-ing) raised MRR@10 from 0.770 to 0.822; the full Snowball stemmer reached only 0.823.

Example:
    >>> tokenize("臺灣的茶")[:3]
    ['台湾', '的', '茶']
    >>> to_simplified("臺灣")
    '台湾'
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import unicodedata
from collections.abc import Iterator
from typing import Any

from ragqa.lang import CJK_LETTERS

__all__ = ["TOKENIZER_VERSION", "script_characters", "to_simplified", "tokenize", "words"]

# Bump when tokenize() changes its output: terms stored by an older version no
# longer match the queries of a newer one, so such indexes must be re-tokenized.
TOKENIZER_VERSION = 1


# Runs of letters and digits; "_" is a word character to ``\w`` but not to us.
_WORD_RUN = re.compile(r"[^\W_]+")
# "don't" -> "dont", "Tesla's" -> "teslas" (stemmed to "tesla"): an apostrophe
# inside a word must not split off a one-letter token.
_INNER_APOSTROPHE = re.compile(r"(?<=[^\W\d_])['’](?=[^\W\d_])")
# "1,000" -> "1000", so that it matches a question that writes "1000".
_THOUSANDS_COMMA = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
# Within a run of letters and digits: a maximal piece of CJK letters, or of others.
_SCRIPT_PIECE = re.compile(f"(?P<cjk>[{CJK_LETTERS}]+)|[^{CJK_LETTERS}]+")

# Only the most frequent English function words. BM25 already gives them a low
# weight, but in a question they still pull towards passages that repeat them,
# and they are the longest posting lists (measured: +0.02 MRR@10 on SQuAD).
_STOPWORDS = frozenset(
    ("a", "an", "and", "are", "as", "at", "be", "been", "but", "by", "did", "do", "does",
     "for", "from", "had", "has", "have", "how", "if", "in", "into", "is", "it", "its", "of",
     "on", "or", "that", "the", "their", "there", "these", "this", "those", "to", "was",
     "were", "what", "when", "where", "which", "who", "whom", "whose", "why", "will", "with")
)  # fmt: skip

_t2s_table: dict[int, str] | None = None  # built on first use
_jieba: Any = None  # jieba.Tokenizer, loaded on first use (about a second)
_t2s_lock = threading.RLock()


def tokenize(text: str) -> list[str]:
    """Turn text into the terms that the lexical index stores and queries with.

    Text is NFKC-normalised (full-width letters and digits become ASCII) and
    lowercased, then cut into runs of letters or digits. A run of CJK characters
    is converted from Traditional to Simplified characters, so either script
    finds the other, segmented into words by jieba, and followed by its
    characters and each overlapping pair (臺灣茶 -> 台湾, 茶, then 台, 台湾, 湾,
    湾茶, 茶). Any other run is one word: a few
    English function words are dropped, and English words lose their plural,
    -ed and -ing endings. Numbers are kept. No term contains whitespace, so a
    term list can be stored as one space-separated string.

    The first call that meets a CJK character builds the conversion table and
    loads jieba's dictionary (about a second); importing this module does not.

    Args:
        text: a chunk or a query, in any mix of Chinese and English.

    Returns:
        The terms in order of appearance, repeats included.

    Example:
        >>> tokenize("The teas were grown in 1,000 gardens")
        ['tea', 'grown', '1000', 'garden']
        >>> tokenize("臺灣的茶")
        ['台湾', '的', '茶', '台', '台湾', '湾', '湾的', '的', '的茶', '茶']
    """
    terms: list[str] = []
    for run, cjk in _runs(_normalise(text)):
        if cjk:
            terms.extend(_cjk_terms(run))
        elif run not in _STOPWORDS:
            terms.append(_stem(run))
    return terms


def words(text: str) -> list[str]:
    """Like :func:`tokenize`, but Chinese gives jieba's words and single characters only.

    Character pairs that straddle two words ("用哪" of 用哪些) match nothing a reader
    would call a match; code that looks for a question's words inside a sentence
    (ragqa.focus) wants the words.

    Example:
        >>> words("BERT 用哪些任务")
        ['bert', '用', '哪些', '任务', '用', '哪', '些', '任', '务']
    """
    terms: list[str] = []
    for run, cjk in _runs(_normalise(text)):
        if cjk:
            run = run.translate(_traditional_to_simplified())
            terms.extend(w for w in _segmenter().cut_for_search(run) if not w.isspace())
            terms.extend(run)
        elif run not in _STOPWORDS:
            terms.append(_stem(run))
    return terms


def _normalise(text: str) -> str:
    # NFKC folds full-width letters and digits (Ａ１) into ASCII; casefold lowercases.
    text = unicodedata.normalize("NFKC", text).casefold()
    text = _INNER_APOSTROPHE.sub("", text)
    return _THOUSANDS_COMMA.sub("", text)


def _runs(text: str) -> Iterator[tuple[str, bool]]:
    """Maximal runs of CJK letters and of other letters or digits, in order."""
    for match in _WORD_RUN.finditer(text):
        word = match.group()
        if word.isascii():  # most words of most text: no CJK to split off
            yield word, False
            continue
        for piece in _SCRIPT_PIECE.finditer(word):
            yield piece.group(), piece.group("cjk") is not None


def _cjk_terms(run: str) -> list[str]:
    """jieba's words, then each character and the pair it starts.

    Example: 臺灣的茶 -> 台湾, 的, 茶 (words), 台, 台湾, 湾, 湾的, 的, 的茶, 茶 (n-grams).
    """
    run = run.translate(_traditional_to_simplified())
    terms = [word for word in _segmenter().cut_for_search(run) if not word.isspace()]
    # Each character, then the pair it starts: 台, 台湾, 湾, 湾的, ... the last alone.
    pairs = [run[i : i + 2] for i in range(len(run) - 1)]
    terms.extend(term for both in zip(run[:-1], pairs, strict=True) for term in both)
    terms.append(run[-1])
    return terms


def _segmenter() -> Any:
    """jieba's tokenizer, with its dictionary loaded once per process, quietly."""
    global _jieba
    if _jieba is None:
        with _t2s_lock:
            if _jieba is None:
                import jieba

                jieba.setLogLevel(logging.WARNING)  # no "Building prefix dict" chatter
                tokenizer = jieba.Tokenizer()
                tokenizer.initialize()
                _jieba = tokenizer
    return _jieba


def _traditional_to_simplified() -> dict[int, str]:
    global _t2s_table
    if _t2s_table is None:
        with _t2s_lock:
            if _t2s_table is None:
                _t2s_table = _build_t2s_table()
    return _t2s_table


def to_simplified(text: str) -> str:
    """``text`` with Traditional Chinese characters turned into Simplified ones.

    Character by character (see :func:`_build_t2s_table`), so the result has the
    same length as ``text`` and offsets into one are offsets into the other.
    """
    return text.translate(_traditional_to_simplified())


@functools.lru_cache(maxsize=1)
def _script_only() -> tuple[frozenset[str], frozenset[str]]:
    table = _traditional_to_simplified()
    traditional = frozenset(chr(code) for code in table)
    # 后, 里, 台: Simplified forms that are also Traditional characters say nothing.
    return frozenset(table.values()) - traditional, traditional


def script_characters(text: str) -> tuple[int, int]:
    """How many characters of ``text`` exist only in Simplified, and only in
    Traditional Chinese (by OpenCC's character table, as :func:`to_simplified`).

    Example:
        >>> script_characters("架构由哪两部分构成"), script_characters("架構由哪兩部分構成")
        ((3, 0), (0, 3))
    """
    simplified, traditional = _script_only()
    return (
        sum(1 for char in text if char in simplified),
        sum(1 for char in text if char in traditional),
    )


def _build_t2s_table() -> dict[int, str]:
    """Traditional -> Simplified, character by character, as a str.translate table.

    Character by character is nearly lossless in this direction (several
    Traditional characters map to one Simplified one), and retrieved exactly as
    well on DRCD as OpenCC's phrase-level conversion, which is slower than the
    rest of tokenizing put together. The table is read through OpenCC's public
    API, one character a line.
    """
    try:
        from opencc import OpenCC
    except ImportError:
        raise ImportError(
            "ragqa needs OpenCC's tables to match Traditional and Simplified Chinese: "
            "pip install opencc-python-reimplemented"
        ) from None
    chars = [
        chr(code)
        for low, high in ((0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF))
        for code in range(low, high + 1)
    ]
    converted = OpenCC("t2s").convert("\n".join(chars)).split("\n")
    if len(converted) != len(chars):
        raise RuntimeError("OpenCC changed the number of lines while converting")
    return {ord(a): b for a, b in zip(chars, converted, strict=True) if a != b}


@functools.lru_cache(maxsize=200_000)
def _stem(word: str) -> str:
    """Step 1 of Porter's stemmer: plurals, -ed and -ing, and a final -y.

    Step 1 removes inflection, which is where a question and its passage most
    often differ ("invented" / "invent", "ponies" / "pony"). Porter's later steps
    remove derivational suffixes and gained little on SQuAD (see the module
    notes), so they are left out. Non-ASCII words and words with digits are kept.

    Example:
        >>> [_stem(w) for w in ["caresses", "ponies", "agreed", "hopping", "sized", "happy"]]
        ['caress', 'poni', 'agree', 'hop', 'size', 'happi']
    """
    if len(word) <= 2 or not word.isascii() or not word.isalpha():
        return word
    # Step 1a: plurals.
    if word.endswith("sses") or word.endswith("ies"):
        word = word[:-2]
    elif word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]
    # Step 1b: -eed, -ed, -ing.
    removed = False
    if word.endswith("eed"):
        if _measure(word[:-3]) > 0:
            word = word[:-1]
    elif word.endswith("ed") and _has_vowel(word[:-2]):
        word, removed = word[:-2], True
    elif word.endswith("ing") and _has_vowel(word[:-3]):
        word, removed = word[:-3], True
    if removed:
        if word.endswith(("at", "bl", "iz")):
            word += "e"  # conflat(ed) -> conflate
        elif len(word) >= 2 and word[-1] == word[-2] and word[-1] not in "aeioulsz":
            word = word[:-1]  # hopp(ing) -> hop
        elif _measure(word) == 1 and _ends_cvc(word):
            word += "e"  # fil(ing) -> file
    # Step 1c: a final y after a vowel-bearing stem becomes i (happy, happiness).
    if word.endswith("y") and _has_vowel(word[:-1]):
        word = word[:-1] + "i"
    return word


def _is_consonant(word: str, i: int) -> bool:
    if word[i] in "aeiou":
        return False
    if word[i] == "y":  # a vowel after a consonant: "happy", but not "yes"
        return i == 0 or not _is_consonant(word, i - 1)
    return True


def _measure(stem: str) -> int:
    """Porter's m: how many vowel-consonant sequences the stem has."""
    pattern = "".join("c" if _is_consonant(stem, i) else "v" for i in range(len(stem)))
    return pattern.count("vc")


def _has_vowel(stem: str) -> bool:
    return any(not _is_consonant(stem, i) for i in range(len(stem)))


def _ends_cvc(word: str) -> bool:
    """Consonant-vowel-consonant at the end, the last not w, x or y ("hop", "fil")."""
    n = len(word)
    return (
        n >= 3
        and _is_consonant(word, n - 3)
        and not _is_consonant(word, n - 2)
        and _is_consonant(word, n - 1)
        and word[-1] not in "wxy"
    )
