"""Answer a question from retrieved passages, with citations mapped back to them.

:func:`stream_answer` yields the answer's text as it is produced and then one
:class:`Answer`; :func:`answer_question` returns just the :class:`Answer`. Retrieval
happens before: both take the hits. With ``Settings.llm == "extractive"`` (the
default) the answer is quoted from the passages by
:class:`ragqa.llm.extractive.ExtractiveAnswerer`; otherwise a chat model writes it
from a prompt built by :func:`ragqa.prompting.build_prompt`.

Citation markers in the model's text are normalised: ``[1, 2]``, ``[1-2]``,
``【1】`` and ``[Source 1]`` all become ``[1]``-style markers (``[1][2]``). A marker
that points at a passage the model was never given (``[7]`` with three passages)
is **removed** from the text, together with the space before it, and its number
is recorded in :attr:`Answer.flagged`: a reader never sees a citation that leads
nowhere, and a caller can still tell that the model invented one. Numbers of four
or more digits (``[2020]``) are not taken for citations.

The streamed text is cleaned the same way as it arrives (a possible marker is held
back until it is complete), so the pieces joined equal ``Answer.text``.

Example:
    >>> from ragqa.config import Settings
    >>> from ragqa.types import Hit
    >>> hits = [Hit("BERT has 340 million parameters.", 1.0, "bert.pdf", 3, 0, 32)]
    >>> answer = answer_question("How many parameters does BERT have?", hits,
    ...                          settings=Settings(llm="fake", llm_model="340 million [1][4]."))
    >>> answer.text, answer.flagged, [(c.number, c.source, c.page) for c in answer.citations]
    ('340 million [1].', (4,), [(1, 'bert.pdf', 3)])
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragqa.config import Settings
from ragqa.conversation import Turn, bound_history, rewrite_question_heuristic
from ragqa.errors import ConfigError, LLMError
from ragqa.lang import detect_language
from ragqa.prompting import build_prompt, no_answer_text
from ragqa.types import Hit

if TYPE_CHECKING:
    from ragqa.embeddings.closeness import UnitCloseness

__all__ = [
    "Answer",
    "Citation",
    "Timings",
    "Usage",
    "answer_question",
    "resolve_citations",
    "stream_answer",
    "strip_citations",
]

# One marker: an opening bracket, an optional label ("Source", "來源"), numbers
# separated by commas or joined as ranges, a closing bracket. The optional
# whitespace before it is part of the match so that a removed marker takes it along.
_LABEL = r"(?:\^|(?:sources?|refs?|passages?|來源|来源|資料|资料|出處|出处)\s*)?"
_ITEM = r"\d{1,3}(?:\s*[-–—~～至到]\s*\d{1,3})?"
_MARKER = re.compile(
    rf"(?P<space>[ \t\u3000]*)[\[［【〔]\s*{_LABEL}(?P<body>{_ITEM}(?:\s*[,，、;；]\s*{_LABEL}{_ITEM})*)"
    r"\s*[\]］】〕]",
    re.IGNORECASE,
)
# The unfinished start of a marker, at the end of streamed text.
_PARTIAL_MARKER = re.compile(
    r"[\[［【〔]\s*(?:\^|[a-z來来源資资料出處处]{0,8}\s*)?[\d\s,，、;；\-–—~～至到]*$",
    re.IGNORECASE,
)
_RANGE = re.compile(r"(\d{1,3})\s*[-–—~～至到]\s*(\d{1,3})")
_MAX_RANGE = 50


@dataclass(frozen=True)
class Citation:
    """A passage the answer cites: ``[number]`` in the text is this passage.

    The fields copy the cited :class:`~ragqa.types.Hit`, so a UI can show the file,
    the page, and highlight ``text`` at ``start:end`` in the page.
    """

    number: int
    source: str
    page: int
    start: int
    end: int
    chunk_id: int
    text: str
    #: The headings above the passage, " › " between them.
    heading: str = ""
    #: What the answer draws on, as ``(start, end)`` offsets into ``text``: the
    #: quoted item, answer or sentence, else the passage's best-matching units.
    spans: tuple[tuple[int, int], ...] = ()

    @property
    def file_name(self) -> str:
        """The source's file name without its folder, for display."""
        return Path(self.source).name

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "source": self.source,
            "file_name": self.file_name,
            "page": self.page,
            "start": self.start,
            "end": self.end,
            "chunk_id": self.chunk_id,
            "heading": self.heading,
            "spans": [list(span) for span in self.spans],
            "text": self.text,
        }


@dataclass(frozen=True)
class Timings:
    """Seconds spent: finding passages, producing the answer, and in all."""

    retrieve: float = 0.0
    generate: float = 0.0
    total: float = 0.0


@dataclass(frozen=True)
class Usage:
    """Language-model tokens an answer took: the prompt's and the reply's, each as
    the backend's tokenizer counts them (an estimate where it has none). The
    extractive answerer uses no model, so both are 0."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class Answer:
    """An answer and everything needed to check it.

    Attributes:
        text: the answer, with citation markers ``[n]`` that all point into
            ``passages``.
        citations: the passages cited, numbered 1..n in order of first citation.
        passages: the hits the answer was made from, numbered from 1: ``[n]`` is
            ``passages[n - 1]``. The cited ones come first, in citation order,
            then the rest in rank order.
        timings: where the time went.
        language: ``"en"`` or ``"zh"``, the question's language.
        backend: ``extractive``, ``openai``, ``ollama``, ``llamacpp``, ``fake``, or
            ``langchain`` for a chat model passed in directly.
        flagged: numbers of markers removed because no such passage was given.
        dropped: retrieved hits left out of the prompt to fit the context window.
        question: the question as asked.
        usage: the language-model tokens it took.
    """

    text: str
    citations: tuple[Citation, ...] = ()
    passages: tuple[Hit, ...] = ()
    timings: Timings = field(default_factory=Timings)
    language: str = "en"
    backend: str = ""
    flagged: tuple[int, ...] = ()
    dropped: tuple[Hit, ...] = ()
    question: str = ""
    usage: Usage = field(default_factory=Usage)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (for ``--json``) with keys ``answer``, ``citations`` and
        ``passages`` among others."""
        return {
            "question": self.question,
            "answer": self.text,
            "language": self.language,
            "backend": self.backend,
            "citations": [citation.to_dict() for citation in self.citations],
            "flagged": list(self.flagged),
            "passages": [
                _hit_dict(number, hit) for number, hit in enumerate(self.passages, start=1)
            ],
            "dropped": [_hit_dict(None, hit) for hit in self.dropped],
            "timings": {
                "retrieve": self.timings.retrieve,
                "generate": self.timings.generate,
                "total": self.timings.total,
            },
            "usage": {
                "prompt_tokens": self.usage.prompt_tokens,
                "completion_tokens": self.usage.completion_tokens,
            },
        }


def resolve_citations(
    text: str, passage_count: int, *, renumber: bool = False
) -> tuple[str, tuple[int, ...], tuple[int, ...]]:
    """Normalise citation markers and drop those that point at no passage.

    Args:
        text: an answer with markers such as ``[1]``, ``[1, 2]``, ``[1-3]``, ``【1】``.
        passage_count: how many passages the answer could cite (1..count).
        renumber: number the cited passages 1..n in the order the text first
            cites them, so that a reader sees [1], [2], ... whatever their rank.

    Returns:
        ``(text, cited, flagged)``: the cleaned text, the valid numbers (as given,
        before renumbering) in order of first appearance, and the out-of-range
        numbers that were removed.

    Example:
        >>> resolve_citations("Yes [1, 2]; no 【3】 [9].", 3)
        ('Yes [1][2]; no [3].', (1, 2, 3), (9,))
        >>> resolve_citations("See [2-4] and [2020].", 3)
        ('See [2][3] and [2020].', (2, 3), (4,))
        >>> resolve_citations("B [3]. A [1][3].", 3, renumber=True)
        ('B [1]. A [2][1].', (3, 1), ())
    """
    cited: list[int] = []
    flagged: list[int] = []

    def replace(match: re.Match[str]) -> str:
        numbers = _marker_numbers(match.group("body"))
        valid = [n for n in numbers if 1 <= n <= passage_count]
        for n in numbers:
            bucket = cited if n in valid else flagged
            if n not in bucket:
                bucket.append(n)
        if not valid:
            return ""
        shown = [cited.index(n) + 1 for n in valid] if renumber else valid
        return match.group("space") + "".join(f"[{n}]" for n in shown)

    return _MARKER.sub(replace, text), tuple(cited), tuple(flagged)


def strip_citations(text: str) -> str:
    """``text`` without any citation markers, for scoring an answer against gold text.

    Example:
        >>> strip_citations("Paris [1][2] is big 【3】.")
        'Paris is big.'
    """
    return _MARKER.sub("", text).strip()


def answer_question(
    question: str,
    hits: Sequence[Hit],
    *,
    settings: Settings,
    chat_model: Any = None,
    history: Sequence[Turn] = (),
    retrieve_seconds: float = 0.0,
    closeness: UnitCloseness | None = None,
) -> Answer:
    """Answer ``question`` from ``hits`` (best first); see :func:`stream_answer`.

    Example:
        >>> answer_question("Who?", [], settings=Settings()).text
        'The documents do not contain an answer to this question.'
    """
    answer: Answer | None = None
    for item in stream_answer(
        question,
        hits,
        settings=settings,
        chat_model=chat_model,
        history=history,
        retrieve_seconds=retrieve_seconds,
        closeness=closeness,
    ):
        if isinstance(item, Answer):
            answer = item
    assert answer is not None  # stream_answer always ends with one
    return answer


def stream_answer(
    question: str,
    hits: Sequence[Hit],
    *,
    settings: Settings,
    chat_model: Any = None,
    history: Sequence[Turn] = (),
    retrieve_seconds: float = 0.0,
    closeness: UnitCloseness | None = None,
) -> Iterator[str | Answer]:
    """Yield the answer's text in pieces as it is produced, then the :class:`Answer`.

    The backend is ``chat_model`` when given (a :class:`ragqa.llm.ChatBackend` or a
    LangChain chat model), else the extractive answerer when ``settings.llm`` is
    ``extractive``, else :func:`ragqa.llm.get_chat_model` of ``settings``. With no
    hits a chat model is not asked: the answer says the documents have none.

    Args:
        question: the question as the user asked it.
        hits: retrieved passages, best first.
        settings: the backend, the context window and the answer's token budget.
        chat_model: a backend to use instead of the configured one.
        history: earlier turns, oldest first; the last ``settings.history_turns``
            are used (as earlier messages for a chat model; to complete a
            follow-up question for the extractive answerer).
        retrieve_seconds: time already spent on retrieval, for :class:`Timings`.
        closeness: scores the passages' units by meaning for the extractive
            answerer (the knowledge base passes one built on its embedder); without
            it, the extractive answerer matches words only.

    Yields:
        ``str`` pieces whose concatenation is ``Answer.text``, then the ``Answer``.

    Raises:
        ConfigError: the question is empty, or the backend is misconfigured.
        LLMError: the chat model failed, before or during the answer.
    """
    if not question.strip():
        raise ConfigError("the question is empty")
    started = time.perf_counter()
    language = detect_language(question)
    history = bound_history(history, settings.history_turns)
    hits = tuple(hits)
    dropped: tuple[Hit, ...] = ()

    quoted: dict[int, tuple[tuple[int, int], ...]] = {}  # passage number -> spans
    count_tokens: Callable[[str], int] | None = None  # the model's, when one answers
    prompt_tokens = 0
    if chat_model is None and settings.llm == "extractive":
        from ragqa.llm.extractive import ExtractiveAnswerer

        backend_name = "extractive"
        passages = hits
        query = rewrite_question_heuristic(question, history) if history else question
        answerer = (
            ExtractiveAnswerer(similarity=closeness, meaning_weight=closeness.weight)
            if closeness is not None
            else ExtractiveAnswerer()
        )
        extraction = answerer.extract(query, passages, language_of=question)
        for sentence in extraction.sentences:
            spans = quoted.get(sentence.number, ())
            quoted[sentence.number] = (*spans, (sentence.start, sentence.end))
        pieces = ExtractiveAnswerer.pieces(extraction)
    else:
        from ragqa.llm import as_chat_backend, get_chat_model

        backend = (
            as_chat_backend(chat_model) if chat_model is not None else get_chat_model(settings)
        )
        backend_name = backend.name
        count_tokens = backend.count_tokens
        if not hits:
            passages = ()
            pieces = iter([no_answer_text(question)])
        else:
            prompt = build_prompt(
                question,
                hits,
                context_window=settings.llm_context_window,
                max_answer_tokens=settings.llm_max_tokens,
                count_tokens=backend.count_tokens,
                history=history,
            )
            passages, dropped = prompt.passages, prompt.dropped
            prompt_tokens = prompt.token_count
            pieces = backend.stream(prompt.messages)

    generate_started = time.perf_counter()
    cleaner = _CitationStream(len(passages))
    for piece in pieces:
        out = cleaner.feed(piece)
        if out:
            yield out
    tail = cleaner.finish()
    if tail:
        yield tail
    if not cleaner.text:
        raise LLMError(f"the {backend_name} backend returned an empty answer")
    finished = time.perf_counter()

    # Passages renumbered as the text now cites them: cited ones first, 1..n.
    order = list(cleaner.cited) + [n for n in range(1, len(passages) + 1) if n not in cleaner.cited]
    citations = tuple(
        _citation(shown, passages[number - 1], quoted.get(number))
        for shown, number in enumerate(cleaner.cited, start=1)
    )
    yield Answer(
        text=cleaner.text,
        citations=citations,
        passages=tuple(passages[n - 1] for n in order),
        timings=Timings(
            retrieve=retrieve_seconds,
            generate=finished - generate_started,
            total=retrieve_seconds + finished - started,
        ),
        language=language,
        backend=backend_name,
        flagged=cleaner.flagged,
        dropped=dropped,
        question=question,
        usage=Usage(
            prompt_tokens, count_tokens(cleaner.raw) if count_tokens and prompt_tokens else 0
        ),
    )


class _CitationStream:
    """Cleans citation markers in streamed text without ever taking back a piece.

    Trailing whitespace and an unfinished marker at the end are held back until
    more text shows what they are; everything before is cleaned and released.
    Cleaning a prefix gives a prefix of the cleaned whole, because a marker can
    never straddle the released part and the held-back part.
    """

    def __init__(self, passage_count: int) -> None:
        self._count = passage_count
        self.raw = ""  # what the model produced, markers and all
        self._emitted = ""
        self.text = ""
        self.cited: tuple[int, ...] = ()
        self.flagged: tuple[int, ...] = ()

    def feed(self, piece: str) -> str:
        self.raw += piece
        ready = self.raw
        partial = _PARTIAL_MARKER.search(ready)
        if partial and len(ready) - partial.start() <= 40:
            ready = ready[: partial.start()]
        # Strip after resolving too: removing a marker can leave whitespace at the
        # end ("Start \n【7】" -> "Start \n"), and trailing whitespace is only
        # released once text follows it. Renumbering goes by first appearance, so
        # a prefix is renumbered as the whole will be.
        cleaned = resolve_citations(ready.rstrip(), self._count, renumber=True)[0].strip()
        return self._release(cleaned)

    def finish(self) -> str:
        self.text, self.cited, self.flagged = resolve_citations(
            self.raw, self._count, renumber=True
        )
        self.text = self.text.strip()
        return self._release(self.text)

    def _release(self, cleaned: str) -> str:
        if not cleaned.startswith(self._emitted):
            # Cannot happen for well-formed input; never emit text out of order.
            return ""
        delta = cleaned[len(self._emitted) :]
        self._emitted = cleaned
        return delta


def _marker_numbers(body: str) -> list[int]:
    numbers: list[int] = []
    for item in re.split(r"[,，、;；]", body):
        digits = re.sub(r"[^\d\-–—~～至到]", "", item)
        span = _RANGE.fullmatch(digits)
        if span:
            low, high = sorted((int(span.group(1)), int(span.group(2))))
            expanded = range(low, high + 1) if high - low <= _MAX_RANGE else (low, high)
            numbers.extend(expanded)
        elif digits.isdigit():
            numbers.append(int(digits))
    return list(dict.fromkeys(numbers))


def _citation(number: int, hit: Hit, spans: tuple[tuple[int, int], ...] | None) -> Citation:
    return Citation(
        number=number,
        source=hit.source,
        page=hit.page,
        start=hit.start,
        end=hit.end,
        chunk_id=hit.chunk_id,
        text=hit.text,
        heading=hit.heading,
        # What the extractive answerer quoted; a model's answer is traced to the
        # units that matched the question best.
        spans=spans if spans is not None else hit.focus[:1],
    )


def _hit_dict(number: int | None, hit: Hit) -> dict[str, Any]:
    out: dict[str, Any] = {} if number is None else {"number": number}
    out.update(
        source=hit.source,
        file_name=hit.file_name,
        page=hit.page,
        start=hit.start,
        end=hit.end,
        chunk_id=hit.chunk_id,
        score=hit.score,
        heading=hit.heading,
        focus=[list(span) for span in hit.focus],
        text=hit.text,
    )
    return out
