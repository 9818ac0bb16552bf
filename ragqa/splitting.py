"""Cut page text into sentences and into overlapping chunks, for Chinese and English.

Two public jobs live here:

* :func:`sentence_spans` finds the sentences of a text as ``(start, end)`` offsets.
  The extractive answerer uses it to pick answer sentences; the splitter uses it to
  prefer cutting between sentences.
* :func:`split_into_chunks` and :func:`split_pages` cut pages into :class:`Chunk`
  values of at most ``chunk_size`` characters, with about ``chunk_overlap``
  characters shared by neighbours, and exact offsets into the page text.

How chunks are cut: every place between two characters gets a strength (paragraph
end, sentence end, clause mark, space, next to a CJK character, anything), and each
chunk greedily takes as much text as fits, ending at the strongest place in the
back half of its room. LangChain's splitters are not used: they lose exact offsets
when chunks overlap and know no Chinese sentence ends.

Example:
    >>> text = "台灣位於東亞。It has 23 million people. 首都是臺北。"
    >>> [text[s:e] for s, e in sentence_spans(text)]
    ['台灣位於東亞。', 'It has 23 million people.', '首都是臺北。']
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterable

from ragqa.errors import ConfigError
from ragqa.lang import CJK_LETTERS
from ragqa.types import Chunk, Page

__all__ = ["sentence_spans", "split_into_chunks", "split_pages"]

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


# --- Chunks ------------------------------------------------------------------------

# Boundary strengths, strongest first (a lower number is a better place to cut).
_PARAGRAPH, _SENTENCE, _CLAUSE, _WORD, _CJK, _FORCED = 0, 1, 2, 3, 4, 5

# Clause marks: Chinese ones anywhere, ASCII ones only before whitespace ("3,000" and
# "http://" are not clauses). Clause and word boundaries are too many to list for a
# whole page, so they are searched for in the window at hand: the greedy ".*" finds
# the last one in a window in one pass of the regex engine, and the match ends one
# character after the cut.
_LAST_CLAUSE_END = re.compile(r"(?s).*(?:[，、：︰﹐﹑﹕].|[,;:]\s)")
_LAST_WORD_END = re.compile(r"(?s).*\S\s")
_CLAUSE_START = re.compile(r"(?:[，、：︰﹐﹑﹕]\s*|[,;:]\s+)(?=\S)")
_WORD_START = re.compile(r"\s(?=\S)")
_LAST_CJK_CHAR = re.compile(f"(?s).*[{CJK_LETTERS}]")
# Punctuation and symbols: inside a token too long for one chunk (a URL), cutting
# after one of these at least does not split a run of letters.
_LAST_SYMBOL = re.compile(r"(?s).*(?:[^\w\s]|_)")


def split_into_chunks(page: Page, *, chunk_size: int, chunk_overlap: int) -> list[Chunk]:
    """Cut one page into chunks of at most ``chunk_size`` characters.

    Each chunk ends at the strongest boundary in the back half of the room it has: a
    paragraph end, else a sentence end (。！？；… or . ! ? before a space), else a
    clause mark (，、： or , ; : before a space), else a space. Only when none of
    those exists in the whole window does it cut between two characters, and then
    only next to a CJK character, never inside an English word.

    The one exception is a token with no space or CJK character in it that is longer
    than ``chunk_size`` (a huge URL, a base64 blob): it cannot fit, so it is cut
    after a punctuation mark in the back half of the window, or else at the size
    limit.

    Consecutive chunks share about ``chunk_overlap`` characters: the next chunk
    starts at the earliest sentence start within the last ``chunk_overlap``
    characters, if that leaves at least a third of the overlap; else at a clause
    start, a word start or a CJK character, so it never begins with half a word.
    With no such place it starts where the previous chunk ended.

    Near the end of a page, a cut that would leave a last chunk with only a few new
    characters (under a fifth of ``chunk_size``) moves earlier when an equally good
    boundary allows, so the last two chunks share the text. Chunks are trimmed of whitespace by moving their offsets,
    so ``page.text[chunk.start:chunk.end] == chunk.text`` always holds, and no chunk
    is blank.

    Args:
        page: the page to cut.
        chunk_size: the largest chunk, in characters; at least 1.
        chunk_overlap: the wished-for overlap, in characters; from 0 to
            ``chunk_size - 1``.

    Returns:
        The chunks, in page order; empty when the page is blank.

    Raises:
        ConfigError: ``chunk_size`` or ``chunk_overlap`` is out of range.

    Example:
        >>> page = Page("a.txt", 1, "第一句。第二句很長，有逗號。Third one.", "h")
        >>> [c.text for c in split_into_chunks(page, chunk_size=16, chunk_overlap=4)]
        ['第一句。第二句很長，有逗號。', '有逗號。Third one.']
    """
    _check_sizes(chunk_size, chunk_overlap)
    text = page.text
    return [
        Chunk(text[start:end], page.source, page.page, start, end)
        for start, end in _chunk_spans(text, chunk_size, chunk_overlap)
    ]


def split_pages(pages: Iterable[Page], *, chunk_size: int, chunk_overlap: int) -> list[Chunk]:
    """Cut every page into chunks (see :func:`split_into_chunks`), pages in order.

    Chunks never span two pages, so every chunk keeps one source and page number.

    Example:
        >>> pages = [Page("a.pdf", 1, "One. Two.", "h"), Page("a.pdf", 2, "  ", "h")]
        >>> [(c.page, c.text) for c in split_pages(pages, chunk_size=50, chunk_overlap=0)]
        [(1, 'One. Two.')]
    """
    _check_sizes(chunk_size, chunk_overlap)
    chunks: list[Chunk] = []
    for page in pages:
        chunks.extend(split_into_chunks(page, chunk_size=chunk_size, chunk_overlap=chunk_overlap))
    return chunks


def _check_sizes(chunk_size: int, chunk_overlap: int) -> None:
    # bool is an int subclass, but chunk_size=True is surely a mistake.
    if not isinstance(chunk_size, int) or isinstance(chunk_size, bool) or chunk_size < 1:
        raise ConfigError(f"chunk_size must be a whole number of at least 1, not {chunk_size!r}")
    if (
        not isinstance(chunk_overlap, int)
        or isinstance(chunk_overlap, bool)
        or not 0 <= chunk_overlap < chunk_size
    ):
        raise ConfigError(
            f"chunk_overlap must be a whole number from 0 to chunk_size - 1 "
            f"({chunk_size - 1}), not {chunk_overlap!r}"
        )


def _chunk_spans(text: str, chunk_size: int, chunk_overlap: int) -> list[tuple[int, int]]:
    """The ``(start, end)`` offsets of the chunks of ``text`` (sizes already checked)."""
    text_end = len(text.rstrip())
    start = _next_non_space(text, 0, text_end)
    if start >= text_end:
        return []
    boundaries = _Boundaries(text)
    # Ending a chunk in the back half of its window keeps chunks reasonably full
    # while still letting a paragraph or sentence end win over a word boundary.
    min_fill = chunk_size // 2
    # A last chunk that adds fewer new characters than this is a wasted embedding.
    min_tail = max(1, chunk_size // 5)
    spans: list[tuple[int, int]] = []
    previous_end = start
    while text_end - start > chunk_size:
        high = start + chunk_size
        # Every end lies beyond the previous one, so each chunk adds new text and
        # the loop always moves on.
        low = max(previous_end, start)
        end, strength = boundaries.best_end(low, start + min_fill, high)
        if strength == _FORCED and start < previous_end:
            # The overlap leaves too little room for the next word: drop it, so
            # that only a token longer than a whole chunk is ever cut.
            start = _next_non_space(text, previous_end, text_end)
            continue
        if text_end - end < min_tail and text_end - min_tail > low:
            # This cut would leave a tiny tail: cut earlier if an equally good
            # boundary allows, so that the last two chunks share the text.
            earlier, earlier_strength = boundaries.best_end(
                low, start + min_fill, text_end - min_tail
            )
            if earlier_strength <= strength:
                end = earlier
        spans.append((start, end))
        next_start = None
        if chunk_overlap:
            next_start = boundaries.best_start(
                max(end - chunk_overlap, start + 1), end - chunk_overlap // 3, end
            )
        if next_start is None:
            next_start = _next_non_space(text, end, text_end)
        previous_end, start = end, next_start
    spans.append((start, text_end))
    return spans


def _next_non_space(text: str, position: int, limit: int) -> int:
    """The first offset at or after ``position`` holding a non-space, else ``limit``."""
    match = _NON_SPACE.search(text, position, limit)
    return match.start() if match else limit


def _previous_non_space(text: str, position: int, low: int) -> int:
    """``position`` moved back over whitespace, but not below ``low``."""
    # Only ever called on the spaces and tabs before a blank line, so cheap.
    while position > low and text[position - 1].isspace():
        position -= 1
    return position


class _Boundaries:
    """Where in a text a chunk may end and where one may start, by strength.

    Every end offset follows a non-space character and every start offset holds
    one, so a chunk from a start to an end needs no trimming. Paragraph and sentence
    boundaries are listed up front; clause, word and CJK ones are searched for in
    the window at hand, as there are too many to list.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.paragraph_ends = [
            _previous_non_space(text, m.start(), 0) for m in _PARAGRAPH_BREAK.finditer(text)
        ]
        spans = sentence_spans(text)
        self.sentence_starts = [start for start, _ in spans]
        self.sentence_ends = [end for _, end in spans]

    def best_end(self, low: int, preferred: int, high: int) -> tuple[int, int]:
        """Where to end a chunk, in ``(low, high]``, and that boundary's strength.

        The strongest boundary at or after ``preferred`` wins, the furthest one
        among equals; failing that, the strongest anywhere in the range; then the
        last cut next to a CJK character; then, inside an over-long token, after
        a punctuation mark, or at ``high`` itself.
        """
        text = self.text
        last = [
            _last_listed(self.paragraph_ends, high),
            _last_listed(self.sentence_ends, high),
            _last_searched(_LAST_CLAUSE_END, text, low, high),
            _last_searched(_LAST_WORD_END, text, low, high),
        ]
        for floor in (max(low + 1, preferred), low + 1):
            for strength, position in enumerate(last):
                if position >= floor:
                    return position, strength
        if high < len(text) and _CJK_CHAR.match(text, high) and not text[high - 1].isspace():
            return high, _CJK  # just before a CJK character
        after_cjk = _LAST_CJK_CHAR.match(text, low, high)
        if after_cjk:
            return after_cjk.end(), _CJK  # just after the last one
        # A token longer than the window: after its last punctuation mark if that
        # keeps the chunk at least half full ("https://" alone is no chunk), else
        # right at the limit.
        after_symbol = _LAST_SYMBOL.match(text, low, high)
        if after_symbol and after_symbol.end() >= preferred:
            return after_symbol.end(), _FORCED
        return high, _FORCED

    def best_start(self, low: int, useful: int, high: int) -> int | None:
        """Where to start an overlap, in ``[low, high)``, or None for nowhere.

        A sentence or clause start counts only at or before ``useful``, so that the
        overlap is not a mere few characters; a word start or a CJK character counts
        anywhere. The earliest place of the strongest kind wins, which gives the most
        overlap within the budget.
        """
        index = bisect_left(self.sentence_starts, low)
        if index < len(self.sentence_starts) and self.sentence_starts[index] <= useful:
            return self.sentence_starts[index]
        text = self.text
        # Both patterns match just before the start they find; low is at least 1.
        clause = _CLAUSE_START.search(text, low - 1, high)
        if clause and clause.end() <= useful:
            return clause.end()
        word = _WORD_START.search(text, low - 1, high)
        if word:
            return word.end()
        cjk = _CJK_CHAR.search(text, low, high)
        return cjk.start() if cjk else None


def _last_listed(positions: list[int], high: int) -> int:
    """The last of the sorted ``positions`` at or before ``high``, else -1."""
    index = bisect_right(positions, high) - 1
    return positions[index] if index >= 0 else -1


def _last_searched(pattern: re.Pattern[str], text: str, low: int, high: int) -> int:
    """The last cut in ``(low, high]`` found by a ``_LAST_*`` pattern, else -1."""
    match = pattern.match(text, low, high + 1)
    return match.end() - 1 if match else -1
