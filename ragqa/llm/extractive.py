"""The built-in answerer: quotes the sentences that best answer the question.

It needs no model server. Every sentence of the retrieved passages is scored by the
question's terms it contains (from :func:`ragqa.lexical.tokenize`, so Chinese and
English alike), each term weighted by how rare it is among the retrieved sentences
(an IDF computed over this small set), by how close together the matches sit, and
by the passage's retrieval rank. The best sentence, and a second one when it scores
nearly as well, are returned with citations ``[n]`` to their passages.

When the question asks for a number or a date ("how many", "when", "幾", "哪一年")
the answerer picks the matching expression nearest to the question's words in
the best sentence as :attr:`Extraction.short_answer`, and so does a "who" or
"where" question in English with a capitalised name. The answer is then that short
expression with its citation ("1889 [1]"), which is what such a question asks for;
the sentence it came from stays in :attr:`Extraction.sentences`.

When nothing relevant was retrieved (no hits, or no sentence covers enough of the
question's weighted terms) it says so in the question's language instead of quoting
noise. It cannot translate: a Chinese question over English passages gets English
sentences.

Example:
    >>> from ragqa.types import Hit
    >>> hits = [Hit("Tea came from China. Coffee came from Ethiopia.", 1.0, "drinks.md", 1, 0, 47)]
    >>> ExtractiveAnswerer().extract("Where did coffee come from?", hits).text
    'Ethiopia [1]'
    >>> ExtractiveAnswerer().extract("What came from Ethiopia?", hits).text
    'Coffee came from Ethiopia [1].'
    >>> ExtractiveAnswerer().extract("Who won the 1998 World Cup?", hits).found
    False
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from ragqa.lang import detect_language
from ragqa.lexical import tokenize
from ragqa.prompting import no_answer_text
from ragqa.splitting import sentence_spans
from ragqa.types import Hit

__all__ = ["ExtractedSentence", "Extraction", "ExtractiveAnswerer"]

# Question words and light verbs carry no content; tokenize() already drops the
# commonest English function words and turns Chinese into Simplified characters.
_QUESTION_TERMS = frozenset(
    [
        "什么",
        "甚么",
        "什",
        "么",
        "哪",
        "哪里",
        "哪个",
        "哪些",
        "哪一",
        "哪一个",
        "谁",
        "几",
        "多少",
        "如何",
        "怎么",
        "怎样",
        "为什么",
        "为何",
        "何",
        "何时",
        "是",
        "的",
        "了",
        "吗",
        "呢",
        "有",
        "在",
        "和",
        "与",
        "及",
        "请问",
        "被",
        "为",
        "于",
        "之",
        "其",
        "该",
        "此",
        "这",
        "那",
        "个",
        "会",
        "能",
        "可以",
        "一",
        "上",
        "中",
        "many",
        "much",
        "name",
        "named",
        "did",
        "does",
        "doe",
    ]
)
_TERMINAL = ".。!！?？;；…"


@dataclass(frozen=True)
class ExtractedSentence:
    """A sentence chosen for the answer: passage ``number`` (1-based), offsets in it."""

    number: int
    text: str
    start: int
    end: int
    score: float


@dataclass(frozen=True)
class Extraction:
    """What the extractive answerer found.

    Attributes:
        text: the answer: the chosen sentences with citations, or the no-answer
            sentence in the question's language.
        sentences: the chosen sentences, best first (empty when nothing was found).
        short_answer: the date, number or name the question asks for, when its
            type is clear and the best sentence has one; else "".
        found: whether anything relevant was found.
    """

    text: str
    sentences: tuple[ExtractedSentence, ...] = ()
    short_answer: str = ""
    found: bool = False


@dataclass
class _Candidate:
    number: int
    rank: int
    start: int
    end: int
    text: str
    terms: list[str]
    score: float = 0.0
    coverage: float = 0.0


class ExtractiveAnswerer:
    """Picks the best sentences from retrieved passages.

    Args:
        max_sentences: at most this many sentences in an answer (1 to 3).
        second_ratio: a further sentence is added only when its score is at least
            this share of the best one's.
        min_coverage: the share of the question's weighted terms the best sentence
            must contain, below which the answer is "not found".
        rank_decay: how much each lower retrieval rank discounts a sentence.
        prefer_short: answer with just the date, number or name the question asks
            for (and its citation) when one is found, instead of the sentence.
        typed_boost: the score factor for a sentence holding the kind of
            expression the question asks for (a date for "when", ...).
    """

    name = "extractive"

    def __init__(
        self,
        *,
        max_sentences: int = 2,
        second_ratio: float = 0.9,
        min_coverage: float = 0.3,
        rank_decay: float = 0.1,
        prefer_short: bool = True,
        typed_boost: float = 1.3,
    ) -> None:
        self.prefer_short = prefer_short
        self.typed_boost = typed_boost
        self.max_sentences = max(1, min(3, max_sentences))
        self.second_ratio = second_ratio
        self.min_coverage = min_coverage
        self.rank_decay = rank_decay

    def extract(
        self, question: str, hits: Sequence[Hit], *, language_of: str | None = None
    ) -> Extraction:
        """Answer ``question`` from ``hits`` (best first).

        Args:
            question: the question (or a standalone rewrite of a follow-up).
            hits: retrieved passages, best first; ``[n]`` cites ``hits[n - 1]``.
            language_of: the text whose language the no-answer sentence follows
                (the user's own question when ``question`` is a rewrite).
        """
        not_found = Extraction(text=no_answer_text(language_of or question))
        query = [t for t in dict.fromkeys(tokenize(question)) if t not in _QUESTION_TERMS]
        candidates = _candidates(hits)
        if not query or not candidates:
            return not_found

        # IDF over the retrieved sentences: a term in every sentence tells them apart
        # no better than a stop word, one in a single sentence is a strong signal.
        # A term found nowhere weighs as much as one found once: it cannot tell
        # sentences apart, but its absence still counts against every one of them.
        df = Counter(term for c in candidates for term in set(c.terms))
        total = len(candidates)
        idf = {
            t: math.log(1 + (total - max(df[t], 1) + 0.5) / (max(df[t], 1) + 0.5)) for t in query
        }
        query_weight = sum(idf.values())
        typed = _answer_pattern(question) is not None
        for candidate in candidates:
            self._score(candidate, idf, query_weight)
            # A "when" question is answered by a sentence with a date in it, a
            # "how many" one by a sentence with a number: prefer those.
            if typed and candidate.score and short_answer(question, candidate.text):
                candidate.score *= self.typed_boost

        ranked = sorted(candidates, key=lambda c: -c.score)
        best = ranked[0]
        if best.coverage < self.min_coverage:
            return not_found
        chosen = [best]
        for candidate in ranked[1:]:
            if (
                len(chosen) >= self.max_sentences
                or candidate.score < self.second_ratio * best.score
            ):
                break
            # A second sentence must add a question term the first one lacks.
            if set(candidate.terms) & set(query) - set().union(*(c.terms for c in chosen)):
                chosen.append(candidate)
        sentences = tuple(
            ExtractedSentence(c.number, c.text, c.start, c.end, round(c.score, 4)) for c in chosen
        )
        short, source = "", best
        for candidate in chosen if self.prefer_short else ():
            short, source = short_answer(question, candidate.text), candidate
            if short:
                break
        if short:
            # Gold answers, and most readers, want "1889 [1]" rather than a sentence
            # for a when / how many / who question; the sentence is in the citation.
            text = _with_citation(short, source.number)
        else:
            text = " ".join(_with_citation(s.text, s.number) for s in sentences)
        return Extraction(text=text, sentences=sentences, short_answer=short, found=True)

    def stream(
        self, question: str, hits: Sequence[Hit], *, language_of: str | None = None
    ) -> Iterator[str]:
        """Yield the answer sentence by sentence, so callers stream it like a model's."""
        extraction = self.extract(question, hits, language_of=language_of)
        if extraction.short_answer or not extraction.sentences:
            yield extraction.text
            return
        for i, sentence in enumerate(extraction.sentences):
            yield ("" if i == 0 else " ") + _with_citation(sentence.text, sentence.number)

    def _score(self, candidate: _Candidate, idf: dict[str, float], query_weight: float) -> None:
        positions = [i for i, term in enumerate(candidate.terms) if term in idf]
        matched = {candidate.terms[i] for i in positions}
        if not matched or query_weight <= 0:
            return
        candidate.coverage = sum(idf[t] for t in matched) / query_weight
        # Matches packed close together are more likely one statement about the
        # question's subject than scattered coincidences.
        window = positions[-1] - positions[0] + 1
        proximity = (len(matched) - 1) / window if len(matched) > 1 else 0.0
        rank_factor = 1.0 / (1.0 + self.rank_decay * candidate.rank)
        candidate.score = candidate.coverage * (1.0 + 0.25 * proximity) * rank_factor


def _candidates(hits: Sequence[Hit]) -> list[_Candidate]:
    out = []
    for rank, hit in enumerate(hits):
        for start, end in sentence_spans(hit.text):
            text = " ".join(hit.text[start:end].split())
            terms = tokenize(text)
            if terms:
                out.append(_Candidate(rank + 1, rank, start, end, text, terms))
    return out


def _with_citation(sentence: str, number: int) -> str:
    """``Tea is old [1].`` / ``茶很古老[1]。``: the marker goes before the final stop."""
    body = sentence.rstrip()
    stop = ""
    while body and body[-1] in _TERMINAL:
        stop = body[-1] + stop
        body = body[:-1]
    body = body.rstrip()
    space = "" if detect_language(body) == "zh" else " "
    return f"{body}{space}[{number}]{stop}"


# ------------------------------------------------------------------ short answers

_MONTH = (
    r"(?:January|February|March|April|May|June|July|August|September|October|November|"
    r"December|Jan\.|Feb\.|Mar\.|Apr\.|Aug\.|Sept?\.|Oct\.|Nov\.|Dec\.)"
)
_NUMBER_WORD = (
    r"(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|"
    r"fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|"
    r"eighty|ninety|hundred|thousand|dozen|several)"
)
_EN_DATE_QUESTION = re.compile(
    r"^\s*when\b|\b(?:what|which|in what|in which)\s+(?:year|date|day|month|decade|century|era)\b",
    re.I,
)
_EN_NAME_QUESTION = re.compile(
    r"^\s*(?:who|whom|whose|where)\b|\b(?:who|whom|where)\s+(?:is|was|were|did)\b", re.I
)
_EN_NAME = re.compile(
    r"\b[A-Z][\w'’.-]*(?:\s+(?:of|the|de|von|van|da|del|and|&)?\s*[A-Z][\w'’.-]*)*"
)
_EN_NUMBER_QUESTION = re.compile(
    r"\bhow\s+(?:many|much|long|far|old|large|big|high|tall|deep|wide|often|fast|heavy)\b|"
    r"\bwhat\s+(?:percentage|percent|proportion|number|amount|fraction)\b",
    re.I,
)
_EN_DATE = re.compile(
    rf"\b(?:{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{3,4}}|\d{{1,2}}\s+{_MONTH}\s+\d{{3,4}}|"
    rf"{_MONTH}\s+\d{{3,4}}|\d{{1,2}}(?:st|nd|rd|th)\s+century|\d{{3,4}}s?)\b"
)
_EN_NUMBER = re.compile(
    rf"(?:[$£€¥]\s?)?\b(?:\d[\d,]*(?:\.\d+)?|{_NUMBER_WORD}(?:[\s-]{_NUMBER_WORD})*)\b"
    r"(?:\s?(?:%|percent|per cent|million|billion|trillion|thousand|hundred))?"
    r"(?:\s+[a-z]+)?",
    re.I,
)
_ZH_DATE_QUESTION = re.compile(
    r"哪一年|哪年|何年|何時|何时|什麼時候|什么时候|甚麼時候|哪個時候|哪个时候|哪一天|何日|幾月|几月|"
    r"哪個年代|哪个年代|哪個世紀|哪个世纪|哪一時期|哪个时期|何時期"
)
_ZH_NUMBER_QUESTION = re.compile(
    r"幾|几|多少|多長|多长|多久|多大|多高|多遠|多远|多重|多深|多寬|多宽"
)
_ZH_DIGITS = r"[0-9０-９一二三四五六七八九十百千萬万億亿兩两零〇○]"
_ZH_DATE = re.compile(
    rf"(?:西元|公元|民國|民国|西元前|公元前)?{_ZH_DIGITS}{{1,5}}年(?:代)?"
    rf"(?:{_ZH_DIGITS}{{1,2}}月)?(?:{_ZH_DIGITS}{{1,3}}[日號号])?|"
    rf"{_ZH_DIGITS}{{1,2}}月{_ZH_DIGITS}{{1,3}}[日號号]|{_ZH_DIGITS}{{1,3}}世紀|{_ZH_DIGITS}{{1,3}}世纪"
)
_ZH_UNIT = (
    r"(?:平方公里|平方公尺|平方米|公里|公尺|公分|公斤|公頃|公顷|英里|英尺|米|尺|里|噸|吨|克|斤|"
    r"億元|亿元|萬元|万元|美元|元|倍|度|歲|岁|年|個月|个月|月|週|周|天|日|小時|小时|分鐘|分钟|秒|"
    r"個|个|名|位|人|次|座|層|层|種|种|件|頭|头|隻|只|條|条|本|部|架|輛|辆|場|场|屆|届|期|項|项|"
    r"家|所|間|间|棟|栋|枚|顆|颗|株|張|张|匹|戶|户|冊|册|章|節|节|艘|首|門|门|支|片|份|型|代|級|级|"
    r"%|％)"
)
_ZH_NUMBER = re.compile(
    rf"(?:約|约|超過|超过|將近|将近|逾|近)?{_ZH_DIGITS}"
    r"[0-9０-９.,．一二三四五六七八九十百千萬万億亿兩两零〇○]*多?"
    rf"{_ZH_UNIT}?"
)


def short_answer(question: str, sentence: str) -> str:
    """The date or number ``question`` asks for, found in ``sentence``; else "".

    Of the matching expressions not already in the question, the one nearest to a
    word the question shares with the sentence wins.

    Example:
        >>> short_answer("When did Bell patent the telephone?",
        ...              "Bell was granted a patent on March 7, 1876, in Boston.")
        'March 7, 1876'
        >>> short_answer("台灣有幾個直轄市？", "台灣目前有六個直轄市，人口約2300萬。")
        '六個'
    """
    pattern = _answer_pattern(question)
    if pattern is None:
        return ""
    lowered_question = question.lower()
    matches = [
        m
        for m in pattern.finditer(sentence)
        if m.group().strip().lower() not in lowered_question
        and _number_core(m.group()) not in lowered_question
        # A capital at the start of a sentence is no sign of a name.
        and not (pattern is _EN_NAME and m.start() == 0 and " " not in m.group().strip())
    ]
    if not matches:
        return ""
    anchors = _anchor_positions(question, sentence)

    def distance(match: re.Match[str]) -> float:
        if not anchors:
            return float(match.start())
        return min(min(abs(match.start() - a), abs(match.end() - a)) for a in anchors)

    best = min(matches, key=distance).group().strip(" ,，").rstrip(".")
    if pattern is _EN_NUMBER and " " in best:
        # "340 million parameters" for "how many parameters": the unit is in the question.
        head, last = best.rsplit(" ", 1)
        if last.lower()[:5] in lowered_question:
            best = head
    return best


def _answer_pattern(question: str) -> re.Pattern[str] | None:
    """What a short answer to ``question`` looks like, when its wording says."""
    if detect_language(question) == "zh":
        if _ZH_DATE_QUESTION.search(question):
            return _ZH_DATE
        return _ZH_NUMBER if _ZH_NUMBER_QUESTION.search(question) else None
    if _EN_DATE_QUESTION.search(question):
        return _EN_DATE
    if _EN_NUMBER_QUESTION.search(question):
        return _EN_NUMBER
    return _EN_NAME if _EN_NAME_QUESTION.search(question) else None


def _number_core(expression: str) -> str:
    """The digits of an expression ("101層" -> "101"), or itself when it has none."""
    digits = re.findall(r"\d+", expression)
    return max(digits, key=len) if digits else expression.strip().lower()


def _anchor_positions(question: str, sentence: str) -> list[int]:
    """Where the question's words (or, for Chinese, its character pairs) occur."""
    lowered = sentence.lower()
    if detect_language(question) == "zh":
        pieces = {question[i : i + 2] for i in range(len(question) - 1)}
        pieces = {p for p in pieces if all(ch.isalnum() for ch in p)}
    else:
        pieces = {
            w
            for w in re.findall(r"[a-z0-9]+", question.lower())
            if w not in _EN_COMMON and len(w) > 2
        }
    positions = []
    for piece in pieces:
        for match in re.finditer(re.escape(piece), lowered):
            positions.append(match.start())
    return positions


_EN_COMMON = frozenset(
    [
        "the",
        "and",
        "was",
        "were",
        "what",
        "when",
        "which",
        "who",
        "whom",
        "whose",
        "how",
        "many",
        "much",
        "did",
        "does",
        "for",
        "from",
        "with",
        "that",
        "this",
        "year",
        "date",
        "day",
        "month",
    ]
)
