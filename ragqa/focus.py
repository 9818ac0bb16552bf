"""Small to big: score the units inside each retrieved chunk, so one matching line wins.

A chunk of notes holds a dozen items, and BM25 and the embedding score the chunk as
a whole: a chunk that mentions BERT five times outranks the one line that answers
"BERT 用哪些任务做预训练？". :func:`focus` scores every unit of the candidate chunks
(items, Q&A items, table rows, sentences; see :mod:`ragqa.structure`) by the
question's terms it holds, each weighted by how rare it is among the candidates'
units, and says for each chunk which units match best. The retriever blends a
chunk's best unit score into its rank and hands the matching units on
(``Hit.focus``), so the answerer, the prompt and the highlight all start from them.

It needs nothing from the store but the hits' text and heading path, so every store
gets it, and it reads no index: terms are found in a unit's text by substring (CJK)
or at a word start (other scripts), not by tokenizing the candidates, which would
cost jieba milliseconds per chunk on every query.

Example:
    >>> from ragqa.types import Hit
    >>> text = "- T5的预训练任务?答案:采用类似BERT的MLM\\n- BERT的预训练任务?答案:MLM 和 NSP"
    >>> hit = Hit(text, 1.0, "notes.txt", 1, 0, len(text))
    >>> [text[f.start:f.end][:8] for f in focus("BERT 用哪些任务做预训练", [hit])[0]]
    ['- BERT的预', '- T5的预训练']
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from ragqa.lang import CJK_LETTERS
from ragqa.structure import Unit, parse_blocks, units
from ragqa.types import Hit

__all__ = ["QUESTION_TERMS", "FocusedUnit", "QueryTerms", "focus", "match_text"]

# Question words and light verbs carry no content; tokenize() already drops the
# commonest English function words and turns Chinese into Simplified characters.
QUESTION_TERMS = frozenset(
    ["什么", "甚么", "什", "么", "哪", "哪里", "哪个", "哪些", "哪一", "哪一个", "谁", "几"]
    + ["多少", "如何", "怎么", "怎样", "为什么", "为何", "何", "何时", "是", "的", "了", "吗"]
    + ["呢", "有", "在", "和", "与", "及", "请问", "被", "为", "于", "之", "其", "该", "此"]
    + ["这", "那", "个", "会", "能", "可以", "一", "上", "中", "用", "些", "哪些", "么"]
    + ["啥", "吧", "呀", "下", "讲", "说", "说说", "介绍", "一下", "告诉", "我"]
    # Filler of questions asked in one's own words: "一般用在什么地方", "大概是怎样的".
    + ["一般", "地方", "大概", "主要", "通常", "具体", "到底", "说到底", "东西", "哪儿"]
    + ["怎么样", "样子", "干", "干嘛", "是不是", "吗", "呢", "么", "还是", "要", "得"]
    + ["搞", "弄", "啥子", "说白了", "白", "哪家", "家"]
    + ["many", "much", "name", "named", "did", "does", "doe", "tell", "me", "about"]
)
# A heading's words count for a unit under it, but less than the unit's own: the
# heading says what the section is about, the unit says what is true of it.
HEADING_WEIGHT = 0.5
# Terms found only in the answer half of a Q&A item count this much.
ANSWER_WEIGHT = 0.5
_CJK_TERM = re.compile(f"[{CJK_LETTERS}]")


def match_text(text: str) -> str:
    """``text`` as terms are matched in it: NFKC, case-folded, Simplified Chinese.

    Example:
        >>> match_text("ＢＥＲＴ的預訓練")
        'bert的预训练'
    """
    from ragqa.tokenizer import to_simplified

    # Most text is NFKC already, and the check is far cheaper than normalising.
    if not unicodedata.is_normalized("NFKC", text):
        text = unicodedata.normalize("NFKC", text)
    return to_simplified(text.casefold())


# A sentence for scoring: up to a Chinese end mark, or an ASCII one before a space.
# Cruder than ragqa.sentences (no abbreviations, no closing quotes), and much faster:
# this runs on ten chunks of every query, and only ranks them.
_QUICK_SENTENCE = re.compile(
    r"[^。！？；!?.]*(?:[。！？；!?]+|\.(?=\s|$)|\.(?!\s)[^。！？；!?.]*)*"
)


@functools.lru_cache(maxsize=4096)
def _prepared(text: str) -> tuple[str, tuple[Unit, ...]]:
    """A chunk's matching text and units, kept for the chunks seen most recently."""
    blocks = parse_blocks(text)
    if len(blocks) != 1 or blocks[0].kind != "text":
        return match_text(text), tuple(units(text, blocks))
    # One paragraph of prose, as most chunks of running text are: its sentences.
    quick = []
    for match in _QUICK_SENTENCE.finditer(text):
        piece = match.group()
        stripped = piece.strip()
        if stripped:
            start = match.start() + piece.index(stripped[0])
            quick.append(Unit("text", start, start + len(stripped)))
    return match_text(text), tuple(quick)


@dataclass(frozen=True)
class FocusedUnit:
    """A unit of a hit, offsets into ``hit.text``, with its match score in [0, 1]."""

    start: int
    end: int
    score: float
    unit: Unit


class QueryTerms:
    """A query's content terms, and which of them a text holds.

    Args:
        query: the question.

    Example:
        >>> terms = QueryTerms("What are BERT's pre-training tasks?")
        >>> sorted(terms.found(match_text("BERT is pre-trained with MLM.")))
        ['bert', 'pre', 'train']
    """

    def __init__(self, query: str) -> None:
        from ragqa.tokenizer import words

        self.terms = [t for t in dict.fromkeys(words(query)) if t not in QUESTION_TERMS]
        cjk = [t for t in self.terms if _CJK_TERM.search(t)]
        self._cjk = cjk
        latin = sorted((t for t in self.terms if t not in cjk), key=len, reverse=True)
        # One pass finds every Latin term at a word start: stemmed terms ("train"
        # for "training") are prefixes of the words they came from.
        self._latin = (
            re.compile(r"(?<![a-z0-9])(?:" + "|".join(map(re.escape, latin)) + ")")
            if latin
            else None
        )

    def found(self, matched_text: str) -> set[str]:
        """The terms in ``matched_text`` (already passed through :func:`match_text`)."""
        out = {t for t in self._cjk if t in matched_text}
        if self._latin is not None:
            out.update(self._latin.findall(matched_text))
        return out


def focus(
    query: str | QueryTerms, hits: Sequence[Hit], headings: Sequence[str] | None = None
) -> list[list[FocusedUnit]]:
    """Each hit's units that hold the query's terms, best first.

    A unit's score is the IDF-weighted share of the query's terms it holds, its
    hit's heading path counting at :data:`HEADING_WEIGHT`, and a Q&A item's answer
    half at :data:`ANSWER_WEIGHT` (the item is about what its question names). IDF
    is computed over all the units of ``hits``: a term in every unit tells them
    apart no better than a stop word.

    Args:
        query: the question, or its :class:`QueryTerms`.
        hits: the candidate chunks.
        headings: each hit's heading path; defaults to ``hit.heading``.

    Returns:
        One list per hit (empty when nothing matches), best unit first.
    """
    terms = query if isinstance(query, QueryTerms) else QueryTerms(query)
    if not terms.terms:
        return [[] for _ in hits]
    if headings is None:
        headings = [hit.heading for hit in hits]
    found_per_hit: list[list[tuple[Unit, set[str], set[str], set[str]]]] = []
    in_heading: list[set[str]] = []
    df: Counter[str] = Counter()
    total = 0
    for hit, heading in zip(hits, headings, strict=True):
        pieces = []
        matched, hit_units = _prepared(hit.text)
        # The same length as hit.text unless NFKC or case folding changed it.
        aligned = len(matched) == len(hit.text)
        inner_heading: set[str] = set()  # found in a heading inside the chunk
        for unit in hit_units:
            if aligned:
                piece = matched[unit.start : unit.end]
            else:
                piece = match_text(hit.text[unit.start : unit.end])
            found = terms.found(piece)
            if unit.kind == "heading":
                inner_heading = found
            answer_only: set[str] = set()
            if unit.answer_start >= 0 and found:
                # A Q&A item is about what its question names: "T5的预训练任务?答案:
                # 类似BERT的MLM" is no answer about BERT.
                question = piece[: unit.answer_start - unit.start]
                answer_only = found - terms.found(question)
            pieces.append((unit, found, answer_only, inner_heading))
            df.update(found)
            total += 1
        found_per_hit.append(pieces)
        in_heading.append(terms.found(match_text(heading)) if heading else set())
    if not total:
        return [[] for _ in hits]
    # A term found nowhere weighs as much as one found once: it cannot tell units
    # apart, but its absence still counts against every one of them.
    idf = {
        t: math.log(1 + (total - max(df[t], 1) + 0.5) / (max(df[t], 1) + 0.5)) for t in terms.terms
    }
    weight = sum(idf.values())
    out = []
    for pieces, heading_terms in zip(found_per_hit, in_heading, strict=True):
        scored = []
        for unit, found, answer_only, inner_heading in pieces:
            if not found:
                continue
            from_heading = (heading_terms | inner_heading) - found
            score = (
                sum(idf[t] for t in found - answer_only)
                + ANSWER_WEIGHT * sum(idf[t] for t in answer_only)
                + HEADING_WEIGHT * sum(idf[t] for t in from_heading)
            ) / weight
            scored.append(FocusedUnit(unit.start, unit.end, min(1.0, score), unit))
        scored.sort(key=lambda f: -f.score)
        out.append(scored)
    return out
