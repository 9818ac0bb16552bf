"""Find the sentences of a text, in Chinese and English, as ``(start, end)`` offsets.

The extractive answerer picks answer sentences with :func:`sentence_spans`, the
structure parser cuts paragraphs into units with it, and the splitter prefers to cut
between sentences.

Example:
    >>> text = "台灣位於東亞。It has 23 million people. 首都是臺北。"
    >>> [text[s:e] for s, e in sentence_spans(text)]
    ['台灣位於東亞。', 'It has 23 million people.', '首都是臺北。']
"""

from __future__ import annotations

import re

from ragqa.lang import CJK_LETTERS

__all__ = ["sentence_spans"]

# Marks that end a Chinese sentence wherever they appear, even with no space after:
# Chinese puts no space between sentences. "；" ends a sentence too, because Chinese
# uses it between what English would write as separate sentences.
_CJK_SENTENCE_ENDS = "。！？；…｡‼⁇⁈⁉"
# Marks that end an English sentence only when whitespace (or the end, or Chinese
# text) follows, so that "3.14", "e.g.x" and "example.com/a?b=1" stay whole.
_ASCII_SENTENCE_ENDS = ".!?"
# Closing quotes and brackets right after an end mark belong to the sentence they
# close: 「你好。」 is one sentence, and so is (See above.)
_CLOSERS = "」』”’\"'）)】》〉］]｝}〕〗〙〛›»"

_CJK_END_SET = frozenset(_CJK_SENTENCE_ENDS)
_ALL_SENTENCE_ENDS = re.escape(_CJK_SENTENCE_ENDS + _ASCII_SENTENCE_ENDS)
_CJK_CHAR = re.compile(f"[{CJK_LETTERS}]")
# A run of end marks and closers, in group "run". The leading possessive skip runs
# through the text between end marks in one tight loop of the regex engine, instead
# of trying a match at every character; it also skips an ASCII mark followed by a
# letter or digit ("3.14", "a.b?c"), which can never end a sentence.
_END_RUN = re.compile(
    f"(?:[^{_ALL_SENTENCE_ENDS}]++|[.!?](?=[^\\s{_ALL_SENTENCE_ENDS}{re.escape(_CLOSERS)}{CJK_LETTERS}]))*+"
    f"(?:(?P<run>(?:[{_ALL_SENTENCE_ENDS}]+[{re.escape(_CLOSERS)}]*)+)|\\Z)"
)
# A blank line (possibly holding spaces) separates paragraphs. Taking all the
# whitespace that follows makes a long run of blank lines one match, not thousands.
_PARAGRAPH_BREAK = re.compile(r"\n[^\S\n]*\n\s*")
# An answer right after a question mark: the question does not end a sentence there.
_ANSWER_FOLLOWS = re.compile(r"[^\S\n]*(?:答案|回答|答|解答|A|Answer)\s*[:：]", re.IGNORECASE)
_NON_SPACE = re.compile(r"\S")

# Words whose period never ends a sentence: a name or an example always follows.
_ABBREVIATIONS_INSIDE = frozenset(
    ("mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "vs", "e.g", "i.e", "cf")
    + ("fig", "figs", "eq", "no", "nos", "vol", "pp", "approx", "ca")
)
# Words whose period ends a sentence only when a capital letter (or Chinese) comes
# next: "etc. and" continues, "etc. The" starts anew. Dotted initialisms such as
# "U.S." are treated the same way.
_ABBREVIATIONS_MAYBE_END = frozenset(
    ("etc", "al", "inc", "ltd", "co", "corp", "jan", "feb", "mar", "apr", "jun", "jul")
    + ("aug", "sep", "sept", "oct", "nov", "dec")
)
_DOTTED_INITIALISM = re.compile(r"(?:[a-z]\.)+[a-z]")


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """The ``(start, end)`` character spans of the sentences in ``text``.

    Spans are in order, do not overlap, and are trimmed of surrounding whitespace,
    so every non-space character of ``text`` lies in exactly one span.

    A sentence ends:

    * after 。！？；… (and runs such as ……, ？！), wherever they stand;
    * after . ! ? when whitespace, the end of the text or Chinese text follows, but
      not after common abbreviations ("e.g.", "Mr.", "vs.") or a single capital
      initial ("J. R. R. Tolkien"), nor after a list number at a line start ("1.");
    * at a blank line (a paragraph break).

    A question mark followed by an answer on the same line (``...?答案:...``,
    ``...? A: ...``) does not end a sentence: question and answer are one item.

    A closing quote or bracket right after the end mark belongs to the sentence.
    A single line break is not a sentence end, because PDF text wraps lines inside
    sentences.

    Args:
        text: any text.

    Returns:
        The spans; empty when ``text`` is blank.

    Example:
        >>> text = "他說：「好。」Pi is 3.14, e.g. in J. R. R. Tolkien's books? Yes!"
        >>> [text[s:e] for s, e in sentence_spans(text)]
        ['他說：「好。」', "Pi is 3.14, e.g. in J. R. R. Tolkien's books?", 'Yes!']
    """
    cuts = [
        m.end("run")
        for m in _END_RUN.finditer(text)
        if m.group("run") and _ends_sentence(text, m.start("run"), m.end("run"))
    ]
    cuts.extend(m.start() for m in _PARAGRAPH_BREAK.finditer(text))
    cuts.sort()
    cuts.append(len(text))
    spans: list[tuple[int, int]] = []
    start = 0
    for cut in cuts:
        if cut <= start:
            continue
        piece = text[start:cut]
        stripped_left = piece.lstrip()
        if stripped_left:
            span_start = start + len(piece) - len(stripped_left)
            spans.append((span_start, span_start + len(stripped_left.rstrip())))
        start = cut
    return spans


def _ends_sentence(text: str, start: int, end: int) -> bool:
    """Whether the run of end marks (and closers) at ``text[start:end]`` ends a sentence."""
    run = text[start:end]
    if run[-1] in "?？" and _ANSWER_FOLLOWS.match(text, end):
        return False  # "BERT的预训练任务?答案:MLM 和 NSP" is one item, question and answer
    if not _CJK_END_SET.isdisjoint(run):
        return True
    if end < len(text) and not (text[end].isspace() or _CJK_CHAR.match(text, end)):
        return False  # 3.14, e.g.x, example.com/a?b
    if run.rstrip(_CLOSERS) != ".":
        return True  # "!", "?", "?!", "..." before a space
    before = text[start - 1] if start else ""
    if not (before.isascii() and before.isalnum()):
        return True  # no word before the period: the common, fast case
    word = _word_before(text, start)
    lowered = word.lower()
    if lowered in _ABBREVIATIONS_INSIDE:
        return False
    if len(word) == 1 and word.isupper():
        return False  # an initial, as in "J. R. R. Tolkien"
    if word.isdigit() and len(word) <= 3 and _starts_line(text, start - len(word)):
        return False  # a numbered list item: "1. First step"
    if lowered in _ABBREVIATIONS_MAYBE_END or _DOTTED_INITIALISM.fullmatch(lowered):
        following = _NON_SPACE.search(text, end)
        return (
            following is None
            or following.group().isupper()
            or bool(_CJK_CHAR.match(text, following.start()))
        )
    return True


def _word_before(text: str, position: int) -> str:
    """The ASCII letters, digits and dots just before ``position`` ("e.g", "Mr", "12")."""
    start = position
    # Abbreviations are short; looking back a few characters keeps this cheap.
    while start > 0 and position - start < 12:
        char = text[start - 1]
        if not (char == "." or (char.isascii() and char.isalnum())):
            break
        start -= 1
    return text[start:position]


def _starts_line(text: str, position: int) -> bool:
    """Whether only spaces and tabs stand between the previous line break and ``position``."""
    while position > 0 and text[position - 1] in " \t":
        position -= 1
    return position == 0 or text[position - 1] == "\n"
