"""The built-in answerer: quotes the item or sentence that best answers the question.

It needs no model server. The retrieved passages are cut into units
(:mod:`ragqa.structure`: list items, Q&A items, table rows, sentences), and every
unit is scored by the question's terms it contains (from
:func:`ragqa.lexical.tokenize`, so Chinese and English alike), each term weighted by
how rare it is among the retrieved units (an IDF computed over this small set), by
how close together the matches sit, and by the passage's retrieval rank. The best
unit, and a second one when it scores nearly as well, are returned with citations
``[n]`` to their passages.

What a unit's kind changes:

* a **Q&A item** (``3.BERT的预训练任务?答案:MLM 和 NSP``) is matched on its question
  and quoted by its answer only: the answer is "MLM 和 NSP", never the question half;
* a unit is **about** what its question, its first words or its heading name: when
  the question names a model or product (BERT, GPT-3), a unit about another one
  (``T5的预训练任务?答案:类似于BERT的MLM``) counts far less than one about it;
* a **table row** answers only a question that names the row (its own cells, not
  just the header), and then with the cell of the column the question names
  (``中国银行 授信额度: 234,850.00``); a heading path above a unit counts too, at
  half weight.

When the question asks for a number or a date ("how many", "when", "幾", "哪一年")
the answer is the matching expression nearest to the question's words
(:mod:`ragqa.llm.short_answers`), and so is a "who" or "where" question in English
with a capitalised name.

When nothing relevant was retrieved (no hits, or no unit covers enough of the
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
    >>> notes = "- T5的预训练任务?答案:采用类似BERT的MLM\\n- BERT的预训练任务?答案:MLM 和 NSP"
    >>> ExtractiveAnswerer().extract("BERT 用哪些任务做预训练？", [Hit(notes, 1.0, "n.txt", 1, 0, 52)]).text
    'MLM 和 NSP [1]'
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from ragqa.focus import QUESTION_TERMS
from ragqa.lang import detect_language
from ragqa.lexical import tokenize
from ragqa.llm.short_answers import (
    answer_pattern,
    asks_date,
    asks_date_or_number,
    short_answer,
)
from ragqa.prompting import no_answer_text
from ragqa.structure import ITEM_MARKER, Unit, table_cells, units
from ragqa.tokenizer import words
from ragqa.types import Hit

__all__ = ["ExtractedSentence", "Extraction", "ExtractiveAnswerer", "Similarity", "short_answer"]

#: How close in meaning each of some texts is to a question: ``(question, texts)``
#: to one value per text, from 0 (unrelated) to 1.
Similarity = Callable[[str, Sequence[str]], Sequence[float]]

_TERMINAL = ".。!！?？;；…"
# A named thing: a model, product or acronym (BERT, GPT-3, T5, LLaMA, ChatGLM-6B).
_ENTITY = re.compile(r"(?<![A-Za-z0-9])[A-Za-z][A-Za-z0-9]*(?:[-.][A-Za-z0-9]+)*")
# How much the words of a unit's heading path, of a Q&A item's answer half and of a
# table's header count, against the unit's own words.
_WEAK_WEIGHT = 0.5
# A unit about another entity than the one the question names, and one about it.
_OTHER_ENTITY_FACTOR = 0.5
_SAME_ENTITY_FACTOR = 1.25
# A unit that does not name the entity the question asks about at all.
_UNNAMED_ENTITY_FACTOR = 0.6
# ... and one that does not name a model without a version number (PaLM, BERT):
# ranked lower, but not ruled out as an answer.
_UNNAMED_NAME_FACTOR = 0.7
# A table row that the question does not name (no term in its own cells).
_UNNAMED_ROW_FACTOR = 0.3
# A heading names a topic; it answers only when nothing under it does, and then
# with (at most this many of) the units under it.
_HEADING_FACTOR = 0.7
# ... unless the question asks what something is called.
_TITLE_FACTOR = 1.5
_TITLE_QUESTION = re.compile(
    r"\b(?:title|titled|called|named|heading)\b|标题|標題|题目|題目|叫什么|叫什麼|名字|名称|名稱",
    re.IGNORECASE,
)
_SECTION_UNITS = 4
# A sentence that opens by pointing back at the one before it.
_REFERS_BACK = re.compile(
    r"(?:它|其|这种|这个|该|此|它们|These|This|It|They)\b|(?:它|其|这种|这个|该|此)"
)
# The coverage a unit without the asked-for number or date needs to be quoted.
_UNTYPED_MIN_COVERAGE = 0.6
# Words that name the kind of answer wanted ("哪家公司" is answered by "Google"),
# which the answer itself need not contain.
_ANSWER_TYPES = frozenset(
    ["公司", "机构", "组织", "团队", "人", "国家", "城市", "年", "年份", "时间", "时候"]
    + ["方法", "办法", "方式", "内容", "部分", "原因", "作用", "用途", "区别", "不同"]
    + ["company", "organization", "person", "year", "time", "place", "way", "reason"]
)
# How many units, the best by words, are scored by meaning too.
_MEANING_UNITS = 24
# Words that name the kind of date or number asked for ("What date is on ...",
# "哪一年"): a unit holding such an expression has them, whatever its wording.
_TYPE_WORDS = frozenset(
    ["date", "year", "day", "month", "decade", "century", "number", "amount", "count"]
    # Not 数 or 月 alone: they are characters of other words (参数, 岁月).
    + ["年", "一年", "哪一年", "年份", "日期", "时间", "时候", "数量"]
)
# How much a unit that starts with the question's words gains, at most.
_LEAD_BOOST = 0.4
# Sentences shorter than this (characters) are quoted with the one after them.
# English sentences stand alone far more often (SQuAD's gold answers lie in one).
_SHORT_SENTENCE = {"zh": 24, "en": 0}


@dataclass(frozen=True)
class ExtractedSentence:
    """A unit chosen for the answer: passage ``number`` (1-based), offsets in it.

    ``text`` is what the answer quotes (a Q&A item's answer, an item without its
    bullet), and ``start:end`` where that stands in the passage, for highlighting.
    """

    number: int
    text: str
    start: int
    end: int
    score: float


@dataclass(frozen=True)
class Extraction:
    """What the extractive answerer found.

    Attributes:
        text: the answer: the chosen units with citations, or the no-answer
            sentence in the question's language.
        sentences: the chosen units, best first (empty when nothing was found).
        short_answer: the date, number or name the question asks for, when its
            type is clear and the best unit has one, or a table cell; else "".
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
    kind: str
    start: int  # what is quoted, offsets into the passage
    end: int
    text: str
    terms: list[str]  # the unit's own terms, in order (for proximity)
    weak: set[str]  # terms that count at _WEAK_WEIGHT only
    subject: str  # what the unit is about: its question, first words, heading
    lead: str = ""  # its first words, up to the first punctuation mark
    row_cells: list[str] = field(default_factory=list)
    header_cells: list[str] = field(default_factory=list)
    header: bool = False  # the row that names a table's columns
    header_text: str = ""  # that row's text, for the rows under it
    score: float = 0.0
    word_score: float = 0.0  # the score by words alone
    coverage: float = 0.0


class ExtractiveAnswerer:
    """Picks the best units (items, Q&A answers, rows, sentences) from retrieved passages.

    Args:
        max_sentences: at most this many units in an answer (1 to 3).
        second_ratio: a further unit is added only when its score is at least
            this share of the best one's.
        min_coverage: the share of the question's weighted terms the best unit
            must contain, below which the answer is "not found".
        rank_decay: how much each lower retrieval rank discounts a unit.
        prefer_short: answer with just the date, number or name the question asks
            for (and its citation) when one is found, instead of the sentence.
        typed_boost: the score factor for a unit holding the kind of expression
            the question asks for (a date for "when", ...).
        similarity: scores how close in meaning each unit is to the question,
            from 0 (unrelated) to 1 (:class:`ragqa.embeddings.UnitCloseness` does
            it with the knowledge base's embedding model). Without it, units are
            scored by the question's words alone.
        meaning_weight: the share of a unit's score that its closeness in meaning
            makes, against its words' score, when ``similarity`` is given.
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
        similarity: Similarity | None = None,
        meaning_weight: float = 0.6,
    ) -> None:
        self.similarity = similarity
        self.meaning_weight = meaning_weight
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
        if _unmentioned_names(question, hits):
            # "Kneser-Ney 平滑比加一平滑好在哪？" over notes that never name
            # Kneser-Ney: whatever they say of smoothing is not about it.
            return not_found
        candidates = self.score_units(question, hits)
        if not candidates:
            return not_found
        query = _query_terms(question)
        language = detect_language(question)

        # Whether the passages answer at all is judged by words: the unit their
        # score ranks first must hold enough of the question's terms. Closeness in
        # meaning cannot judge it: e5 puts some unit of the passages as near to an
        # unanswerable question as the answer is to an answerable one.
        judge = max(candidates, key=lambda c: c.word_score)
        if judge.coverage < self.min_coverage:
            return not_found
        # A "how many" or "when" question whose best unit holds no number or date,
        # and matches it only in part, was most likely not answered by the documents.
        untyped = (
            asks_date_or_number(question)
            and judge.kind != "row"
            and not short_answer(question, judge.text)
        )
        # Which unit answers is judged by words and meaning together.
        ranked = sorted(candidates, key=lambda c: -c.score)
        if untyped:
            # ... unless another unit holds the date and enough of the question:
            # "October 14, 1998" under the heading "The Crazy Ones". (Not a number:
            # "一种" holds one, and says nothing of how many parameters GPT-4 has.)
            dated = [
                c
                for c in ranked
                if asks_date(question)
                and c.coverage >= self.min_coverage
                and short_answer(question, c.text)
            ]
            if dated:
                ranked = dated + [c for c in ranked if c not in dated]
            elif judge.coverage < _UNTYPED_MIN_COVERAGE:
                return not_found
        best = ranked[0]
        chosen = [best]
        if best.kind == "heading" or best.header or best.text.endswith((":", "：")):
            # A heading, a table's header or a lead-in matched ("传统语言模型的问题",
            # "LLM局限 | 解决办法", "存在三种常见的学习模型:"): what stands under it
            # answers.
            section = _section_under(best, candidates)
            if section and best.kind == "heading" and section[0].kind == "row":
                # A table's caption: it says what the table is about, and its
                # header row names the columns; the rows under it are no answer.
                chosen = [best, section[0]]
                ranked = []
            elif section:
                chosen = section
                ranked = []
        elif best.kind == "text" and len(best.text) < _SHORT_SENTENCE[language]:
            # A short sentence mostly introduces the next one ("大型语言模型由多个
            # 神经网络层组成。" then the layers): quote the two together.
            following = _next_in_paragraph(best, candidates)
            if following is not None:
                chosen = [best, following]
                ranked = []
        for candidate in ranked[1:]:
            if (
                len(chosen) >= self.max_sentences
                or candidate.score < self.second_ratio * best.score
            ):
                break
            # A second unit must add a question term the first one lacks.
            if set(candidate.terms) & set(query) - set().union(*(c.terms for c in chosen)):
                chosen.append(candidate)
        sentences = tuple(
            ExtractedSentence(c.number, c.text, c.start, c.end, round(c.score, 4)) for c in chosen
        )
        short, source = "", best
        if best.kind == "row" and not best.header:
            short = _table_cell(query, best, question, self.similarity)
        for candidate in chosen if self.prefer_short and not short else ():
            short, source = short_answer(question, candidate.text), candidate
            if short:
                break
        if short:
            # Gold answers, and most readers, want "1889 [1]" rather than a sentence
            # for a when / how many / who question; the sentence is in the citation.
            text = _with_citation(short, source.number)
        elif best.kind == "row" and best.header_text and not best.header:
            # A row whose cells cannot be told apart by column: quoted under its
            # header, so that each value can be read against its column's name.
            text = _with_citation(f"{best.header_text}: {best.text}", best.number)
        else:
            text = " ".join(_with_citation(s.text, s.number) for s in sentences)
        return Extraction(text=text, sentences=sentences, short_answer=short, found=True)

    def score_units(self, question: str, hits: Sequence[Hit]) -> list[_Candidate]:
        """Every unit of ``hits`` as a candidate, scored against ``question`` by words.

        Returns the candidates in passage order; empty when the question has no
        content terms or the passages no units.
        """
        # The question's words and characters, not its character pairs: a pair that
        # straddles two words ("用哪" of 用哪些) is in no answer and only dilutes.
        query = _query_terms(question)
        candidates = _candidates(hits)
        if not query or not candidates:
            return []

        # IDF over the retrieved units: a term in every unit tells them apart no
        # better than a stop word, one in a single unit is a strong signal. A term
        # found nowhere weighs as much as one found once: it cannot tell units
        # apart, but its absence still counts against every one of them.
        df = Counter(term for c in candidates for term in set(c.terms) | c.weak)
        total = len(candidates)
        idf = {
            t: math.log(1 + (total - max(df[t], 1) + 0.5) / (max(df[t], 1) + 0.5)) for t in query
        }
        query_weight = sum(idf.values())
        typed = answer_pattern(question) is not None
        entities = _entities(question)
        # The question's terms beyond the names it mentions: what it asks about them.
        named = set(tokenize(" ".join(entities)))
        content = {
            t for t in query if t not in named and not t.isdigit() and t not in _ANSWER_TYPES
        }
        language = detect_language(question)
        asks_title = bool(_TITLE_QUESTION.search(question))
        type_words = frozenset(t for t in query if t in _TYPE_WORDS) if typed else frozenset()
        factors: list[float] = []
        lexicals: list[float] = []
        for candidate in candidates:
            has_type = typed and bool(short_answer(question, candidate.text))
            # "date" in "What date is on ...?" is matched by the date itself.
            self._score(candidate, idf, query_weight, type_words if has_type else frozenset())
            lexical = candidate.score
            # What the unit is, and what it is about, scale the score.
            factor = 1.0
            # A "when" question is answered by a unit with a date in it, a "how
            # many" one by a unit with a number: prefer those.
            if has_type:
                factor *= self.typed_boost
            entity = _entity_factor(entities, candidate.subject, candidate.text)
            factor *= entity
            if entity <= _UNNAMED_ENTITY_FACTOR:
                # About another model, or none: it may be no answer at all.
                candidate.coverage *= entity
            if candidate.kind == "row" and not set(candidate.terms) & set(query):
                factor *= _UNNAMED_ROW_FACTOR
            elif candidate.kind == "heading":
                factor *= _TITLE_FACTOR if asks_title else _HEADING_FACTOR
            same_language = detect_language(candidate.text) == language
            if content and same_language and not content & (set(candidate.terms) | candidate.weak):
                # It names what the question is about, but says nothing of what is
                # asked: "GPT-3 调整其参数" is no answer to how many parameters
                # GPT-3 has. (Across languages no word can be shared.) Its words
                # count for nothing; only its meaning can still speak for it.
                lexical = candidate.coverage = 0.0
            elif content and language == "zh":
                # A unit that starts with what is asked about defines it: "前馈层
                # (FFN) 由...组成" for "前馈层是干什么用的". (Not in English, where
                # a sentence's subject is as often the wrong one: "The Eiffel Tower
                # is a tower" for "When was the Eiffel Tower completed?")
                lead = content & set(tokenize(candidate.lead))
                share = sum(idf[t] for t in lead) / (sum(idf[t] for t in content) or 1.0)
                factor *= 1.0 + _LEAD_BOOST * share
            candidate.word_score = candidate.score = factor * lexical
            factors.append(factor)
            lexicals.append(lexical)
        if self.similarity is not None and self.meaning_weight > 0:
            self._blend_meaning(question, candidates, factors, lexicals)
        return candidates

    def _blend_meaning(
        self,
        question: str,
        candidates: Sequence[_Candidate],
        factors: Sequence[float],
        lexicals: Sequence[float],
    ) -> None:
        """Mix each unit's closeness in meaning into its score.

        Only the :data:`_MEANING_UNITS` best by words are embedded, about half of
        the 50 a question has: on the natural questions the answers are the same as
        with all of them but for one dev question of 131, at half the cost. The
        others keep their words' share.
        """
        assert self.similarity is not None
        best = sorted(range(len(candidates)), key=lambda i: -candidates[i].word_score)
        best = best[:_MEANING_UNITS]
        values = self.similarity(question, [candidates[i].text for i in best])
        closeness = dict.fromkeys(range(len(candidates)), 0.0)
        closeness.update(
            {i: min(1.0, max(0.0, float(v))) for i, v in zip(best, values, strict=True)}
        )
        weight = self.meaning_weight
        for i, candidate in enumerate(candidates):
            # Squared: among units that all sit near the question, the nearest
            # stand out; ranked by retrieval like the words' score.
            rank_factor = 1.0 / (1.0 + self.rank_decay * candidate.rank)
            semantic = closeness[i] * closeness[i] * rank_factor
            candidate.score = factors[i] * ((1.0 - weight) * lexicals[i] + weight * semantic)

    def stream(
        self, question: str, hits: Sequence[Hit], *, language_of: str | None = None
    ) -> Iterator[str]:
        """Yield the answer unit by unit, so callers stream it like a model's."""
        yield from self.pieces(self.extract(question, hits, language_of=language_of))

    @staticmethod
    def pieces(extraction: Extraction) -> Iterator[str]:
        """An extraction's text in the pieces :meth:`stream` yields."""
        if extraction.short_answer or not extraction.sentences:
            yield extraction.text
            return
        for i, sentence in enumerate(extraction.sentences):
            yield ("" if i == 0 else " ") + _with_citation(sentence.text, sentence.number)

    def _score(
        self,
        candidate: _Candidate,
        idf: dict[str, float],
        query_weight: float,
        covered: frozenset[str] = frozenset(),
    ) -> None:
        positions = [i for i, term in enumerate(candidate.terms) if term in idf]
        strong = ({candidate.terms[i] for i in positions} - candidate.weak) | covered
        weak = {t for t in candidate.weak if t in idf} - strong
        if not (strong or weak) or query_weight <= 0:
            return
        candidate.coverage = (
            sum(idf[t] for t in strong) + _WEAK_WEIGHT * sum(idf[t] for t in weak)
        ) / query_weight
        # Matches packed close together are more likely one statement about the
        # question's subject than scattered coincidences.
        matched = {candidate.terms[i] for i in positions}
        window = positions[-1] - positions[0] + 1 if positions else 1
        proximity = (len(matched) - 1) / window if len(matched) > 1 else 0.0
        rank_factor = 1.0 / (1.0 + self.rank_decay * candidate.rank)
        candidate.score = candidate.coverage * (1.0 + 0.25 * proximity) * rank_factor


def _query_terms(question: str) -> list[str]:
    # The question's words and characters, not its character pairs: a pair that
    # straddles two words ("用哪" of 用哪些) is in no answer and only dilutes.
    return [t for t in dict.fromkeys(words(question)) if t not in QUESTION_TERMS]


def _candidates(hits: Sequence[Hit]) -> list[_Candidate]:
    out = []
    from ragqa.splitting import file_name_words

    for rank, hit in enumerate(hits):
        heading = hit.heading.split(" › ")[-1] if hit.heading else ""
        # The headings above the passage and its file's name ("the issue-297 PDF")
        # say what each of its units is about.
        about = f"{file_name_words(hit.source)}\n{hit.heading}"
        heading_terms = set(tokenize(about))
        previous: _Candidate | None = None
        for unit in units(hit.text):
            candidate = _candidate(hit, rank, unit, heading)
            if candidate is None:
                continue
            if unit.kind == "heading":
                # A heading inside the chunk heads the units after it, as the
                # headings above the chunk head all of them.
                heading = candidate.text
                heading_terms = set(tokenize(about)) | set(candidate.terms)
                previous = candidate
                out.append(candidate)
                continue
            candidate.weak |= heading_terms - set(candidate.terms)
            if previous is not None and _REFERS_BACK.match(candidate.text):
                # "它由一个编码器和一个解码器组成" is about what the sentence before
                # it named (转换器模型): that sentence's words count for it too.
                candidate.weak |= set(previous.terms) - set(candidate.terms)
            previous = candidate
            out.append(candidate)
    return out


def _candidate(hit: Hit, rank: int, unit: Unit, heading: str) -> _Candidate | None:
    """One unit of ``hit`` as a candidate answer, or None if it has no terms."""
    text = hit.text
    start, end = unit.start, unit.end
    weak: set[str] = set()
    row_cells: list[str] = []
    header_cells: list[str] = []
    if unit.kind == "qa" and unit.answer_start >= 0:
        question_half = text[start : unit.answer_start]
        terms = tokenize(question_half)
        answer_terms = tokenize(text[unit.answer_start : end])
        weak = set(answer_terms) - set(terms)
        terms = terms + answer_terms
        subject = ITEM_MARKER.sub("", question_half, count=1)
        start = unit.answer_start  # quote the answer only
    else:
        if unit.kind == "item":
            marker = ITEM_MARKER.match(text, start, end)
            if marker and marker.end() < end:
                start = marker.end()
        terms = tokenize(text[start:end])
        subject = re.split(r"[:：,，。;；]", text[start:end], maxsplit=1)[0][:24]
        if unit.kind == "row":
            row_cells = table_cells(text[start:end])
            header_cells = table_cells(unit.table_header) if unit.table_header else []
            weak = set(tokenize(unit.table_header)) - set(terms) if unit.table_header else set()
            subject = row_cells[0] if row_cells else subject
    if not terms:
        return None
    lead = re.split(r"[:：,，、。;；!?！？(（]", text[start:end], maxsplit=1)[0][:16]
    if heading:
        subject = f"{subject} {heading}"
    quoted = " ".join(text[start:end].split())
    return _Candidate(
        number=rank + 1,
        rank=rank,
        kind=unit.kind,
        start=start,
        end=end,
        text=quoted,
        terms=terms,
        weak=weak,
        subject=subject,
        lead=lead,
        row_cells=row_cells,
        header_cells=header_cells,
        header=unit.kind == "row" and unit.table_header == text[unit.start : unit.end],
        header_text=" ".join(unit.table_header.split()) if unit.kind == "row" else "",
    )


def _next_in_paragraph(unit: _Candidate, candidates: Sequence[_Candidate]) -> _Candidate | None:
    """The sentence right after ``unit`` in the same paragraph of the same passage."""
    for candidate in candidates:
        if candidate.number == unit.number and candidate.start >= unit.end:
            between = candidate.text and candidate.start - unit.end <= 2
            return candidate if between and candidate.kind == "text" else None
    return None


def _section_under(heading: _Candidate, candidates: Sequence[_Candidate]) -> list[_Candidate]:
    """The units right under ``heading`` in its passage, up to the next heading (at most
    :data:`_SECTION_UNITS`)."""
    out: list[_Candidate] = []
    for candidate in candidates:
        if candidate.number != heading.number or candidate.start <= heading.start:
            continue
        if candidate.kind == "heading" or len(out) >= _SECTION_UNITS:
            break
        out.append(candidate)
    return out


def _entities(text: str) -> set[str]:
    """The names in ``text`` that look like models or products: BERT, GPT-3, T5, LLaMA.

    A name has a digit or at least two capitals: "When" and "Eiffel" are not names.

    Example:
        >>> sorted(_entities("GPT-1 与 BERT 的 pre-training 有何不同? When, LLaMA?"))
        ['bert', 'gpt-1', 'llama']
    """
    out = set()
    for match in _ENTITY.finditer(text):
        name = match.group()
        capitals = sum(1 for c in name if c.isupper())
        if len(name) >= 2 and (capitals >= 2 or any(c.isdigit() for c in name)):
            out.add(name.lower())
    return out - _GENERIC_ACRONYMS


# Acronyms of fields and parts, not of models: a unit about language models need
# not write "LLM" to be about them.
_GENERIC_ACRONYMS = frozenset(
    ["llm", "llms", "ai", "agi", "nlp", "nlu", "nlg", "api", "gpu", "cpu", "ffn", "ml", "dl"]
    + ["pdf", "faq", "qa", "ui", "url", "id"]
)


# What follows these is what the question compares its subject with ("比 LSTM 学得
# 快"): the answer may well not name it.
_COMPARED_WITH = re.compile(
    r"(?:比|比起|相比|相比于|相较于|跟|和|与|同|than|compared\s+(?:to|with)|versus|vs\.?)\s*$",
    re.IGNORECASE,
)


def _squashed(text: str) -> str:
    return re.sub(r"[\s\-_.·]+", "", text.lower())


def _unmentioned_names(question: str, hits: Sequence[Hit]) -> list[str]:
    """The models or products ``question`` asks about that no passage names.

    A passage names one in its text, its headings or its file's name, written
    with or without spaces and hyphens ("GPT-3", "gpt3"). A name the question
    compares its subject with (after 比, 跟, "than") need not be named.

    Example:
        >>> hits = [Hit("加一平滑:每个计数加 1。", 1.0, "nlp.md", 1, 0, 12)]
        >>> _unmentioned_names("Kneser-Ney 平滑比加一平滑好在哪？", hits)
        ['kneser-ney']
        >>> _unmentioned_names("为什么加一平滑比 Kneser-Ney 简单？", hits)
        []
    """
    from ragqa.splitting import file_name_words

    asked = [
        match.group().lower()
        for match in _ENTITY.finditer(question)
        if match.group().lower() in _entities(match.group())
        and not _COMPARED_WITH.search(question[: match.start()])
    ]
    if not asked:
        return []
    seen = _squashed(" ".join(f"{h.text} {h.heading} {file_name_words(h.source)}" for h in hits))
    return [name for name in dict.fromkeys(asked) if _squashed(name) not in seen]


def _same_entity(a: str, b: str) -> bool:
    """GPT and GPT-3 are one family; BERT and T5 are not."""
    if a == b:
        return True
    short, long = sorted((a, b), key=len)
    return long.startswith(short) and not long[len(short)].isalpha()


def _entity_factor(asked: set[str], subject: str, text: str) -> float:
    """How a unit's score changes with what it is about, for a question naming ``asked``.

    About the named model (its question, first words or heading name it): up. About
    another one: down. Not naming it anywhere: down a little, since "调整其参数"
    says nothing of how many parameters GPT-3 has.
    """
    if not asked:
        return 1.0
    named = _entities(subject)
    if any(_same_entity(a, n) for a in asked for n in named):
        return _SAME_ENTITY_FACTOR
    if named:
        return _OTHER_ENTITY_FACTOR
    mentioned = _entities(text)
    if any(_same_entity(a, n) for a in asked for n in mentioned):
        return 1.0
    # Only a numbered version (GPT-3, T5) must be named: what holds for "a
    # transformer" may hold for BERT, but a fact about GPT-2 is no fact about GPT-3.
    if any(any(c.isdigit() for c in a) for a in asked):
        return _UNNAMED_ENTITY_FACTOR
    return _UNNAMED_NAME_FACTOR


def _table_cell(
    query: Sequence[str],
    row: _Candidate,
    question: str = "",
    similarity: Similarity | None = None,
) -> str:
    """``row label column: value`` for the column the question names, else "".

    The column is the one whose name shares most words with the question. When
    several share as many ("额度" is in 授信额度, 已使用额度 and 未使用额度), the
    one closest in meaning decides, if ``similarity`` is given: "还有多少额度没用"
    asks for 未使用额度.
    """
    if not row.header_cells or len(row.header_cells) != len(row.row_cells):
        return ""
    wanted = set(query)
    overlaps = [len(wanted & set(tokenize(cell))) for cell in row.header_cells]
    most = max(overlaps[1:], default=0)
    if not most:
        return ""
    tied = [j for j in range(1, len(overlaps)) if overlaps[j] == most]
    column = tied[0]
    if len(tied) > 1 and similarity is not None:
        closeness = similarity(question, [row.header_cells[j] for j in tied])
        column = tied[max(range(len(tied)), key=lambda i: closeness[i])]
    return f"{row.row_cells[0]} {row.header_cells[column]}: {row.row_cells[column]}"


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
