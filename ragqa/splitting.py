"""Cut pages into overlapping chunks that keep a page's items whole, in both languages.

:func:`split_into_chunks` and :func:`split_pages` cut pages into :class:`Chunk`
values of at most ``chunk_size`` characters, with about ``chunk_overlap`` characters
shared by neighbours, and exact offsets into the page text.

How chunks are cut. First the page is read as blocks (:mod:`ragqa.structure`):
headings, list items, Q&A items, table rows, paragraphs and page furniture. Whole
blocks are packed into a chunk while they fit, a heading starts a new chunk, and no
block is ever cut, except one that alone is longer than a chunk (a long paragraph).
That one is cut like running text: every place between two characters gets a
strength (paragraph end, sentence end, clause mark, space, next to a CJK character,
anything), and each chunk greedily takes as much text as fits, ending at the
strongest place in the back half of its room. A paragraph of a QA dataset is one
such block, so its chunks are what they were before blocks existed.

Each chunk carries the path of headings above it (``Chunk.heading``), and what is
embedded and indexed for it (``Chunk.index_text``) is that path followed by the
chunk's text without its furniture lines (the lexical index also gets the words of
its file's name, :func:`file_name_words`), so that "BERT 的预训练任务" finds the item
"MLM 和 NSP" under the heading "BERT". LangChain's splitters are not used: they lose
exact offsets when chunks overlap and know no Chinese sentence ends.

Example:
    >>> page = Page("n.md", 1, "BERT\\n- 预训练:MLM 和 NSP\\n- 参数:3.4亿\\nGPT\\n- 预训练:语言模型", "h")
    >>> [(c.heading, c.text) for c in split_into_chunks(page, chunk_size=40, chunk_overlap=0)]
    [('', 'BERT\\n- 预训练:MLM 和 NSP\\n- 参数:3.4亿'), ('', 'GPT\\n- 预训练:语言模型')]
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence

from ragqa.errors import ConfigError
from ragqa.lang import CJK_LETTERS
from ragqa.sentences import sentence_spans
from ragqa.structure import Block, heading_path, parse_blocks, repeated_lines
from ragqa.types import Chunk, Page

__all__ = ["file_name_words", "sentence_spans", "split_into_chunks", "split_pages"]

_PARAGRAPH_BREAK = re.compile(r"\n[^\S\n]*\n\s*")
_NON_SPACE = re.compile(r"\S")
_CJK_CHAR = re.compile(f"[{CJK_LETTERS}]")
# Between the headings of a chunk's path.
HEADING_SEPARATOR = " › "

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


def split_into_chunks(
    page: Page, *, chunk_size: int, chunk_overlap: int, furniture: Iterable[str] = ()
) -> list[Chunk]:
    """Cut one page into chunks of at most ``chunk_size`` characters.

    Whole blocks (see the module notes) are packed into each chunk; a heading starts
    a new one, so a chunk holds one section's items. A block longer than
    ``chunk_size`` is cut at its strongest boundary in the back half of the room a
    chunk has: a paragraph end, else a sentence end (。！？；… or . ! ? before a
    space), else a clause mark (，、： or , ; : before a space), else a space. Only
    when none of those exists in the whole window does it cut between two
    characters, and then only next to a CJK character, never inside an English word.
    The one exception is a token with no space or CJK character in it that is longer
    than ``chunk_size`` (a huge URL, a base64 blob): it is cut after a punctuation
    mark in the back half of the window, or else at the size limit.

    Consecutive chunks share about ``chunk_overlap`` characters: whole blocks of the
    same section at the end of one chunk start the next; inside a long block, the
    next chunk starts at the earliest sentence start within the last
    ``chunk_overlap`` characters, if that leaves at least a third of the overlap;
    else at a clause start, a word start or a CJK character, so it never begins
    with half a word. Near the end of a long block, a cut that would leave a last
    chunk with only a few new characters (under a fifth of ``chunk_size``) moves
    earlier when an equally good boundary allows.

    Chunks are trimmed of whitespace by moving their offsets, so
    ``page.text[chunk.start:chunk.end] == chunk.text`` always holds, and no chunk
    is blank or only furniture.

    Args:
        page: the page to cut.
        chunk_size: the largest chunk, in characters; at least 1.
        chunk_overlap: the wished-for overlap, in characters; from 0 to
            ``chunk_size - 1``.
        furniture: lines repeated on many pages of the document
            (:func:`ragqa.structure.repeated_lines`), kept out of chunks' index text.

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
    blocks = parse_blocks(text, furniture)
    chunks = []
    for start, end in _pack(text, blocks, chunk_size, chunk_overlap):
        path = heading_path(text, blocks, start)
        heading = HEADING_SEPARATOR.join(path)
        body = _without_furniture(text, blocks, start, end)
        indexed = "\n".join(part for part in (heading, body) if part)
        chunks.append(
            Chunk(
                text[start:end],
                page.source,
                page.page,
                start,
                end,
                heading=heading,
                indexed="" if indexed == text[start:end] else indexed,
            )
        )
    return chunks


_DOCUMENT_SUFFIXES = (".pdf", ".txt", ".md", ".markdown", ".text")
_NAME_SEPARATORS = re.compile(r"[\s_\-.]+")


def file_name_words(source: str) -> str:
    """The words of a document file's name, which users call it by ("the multilang
    PDF"): added to the lexical terms of each of its chunks, not to what is embedded,
    so that the same text in two files still shares one vector. Sources that are
    not file paths (a dataset's paragraph ids) give "".

    Example:
        >>> file_name_words("/docs/pypdf__multilang.pdf"), file_name_words("squad#12")
        ('pypdf multilang pdf', '')
    """
    lowered = source.lower()
    if not lowered.endswith(_DOCUMENT_SUFFIXES):
        return ""
    name = re.split(r"[/\\]", source)[-1]
    return " ".join(part for part in _NAME_SEPARATORS.split(name) if part)


def split_pages(pages: Iterable[Page], *, chunk_size: int, chunk_overlap: int) -> list[Chunk]:
    """Cut every page into chunks (see :func:`split_into_chunks`), pages in order.

    Chunks never span two pages, so every chunk keeps one source and page number.
    Lines repeated on many pages of one source (running headers and footers) are
    page furniture, kept out of what is indexed.

    Example:
        >>> pages = [Page("a.pdf", 1, "One. Two.", "h"), Page("a.pdf", 2, "  ", "h")]
        >>> [(c.page, c.text) for c in split_pages(pages, chunk_size=50, chunk_overlap=0)]
        [(1, 'One. Two.')]
    """
    _check_sizes(chunk_size, chunk_overlap)
    pages = list(pages)
    furniture: dict[str, frozenset[str]] = {}
    for source in dict.fromkeys(page.source for page in pages):
        furniture[source] = repeated_lines([p.text for p in pages if p.source == source])
    chunks: list[Chunk] = []
    for page in pages:
        chunks.extend(
            split_into_chunks(
                page,
                chunk_size=chunk_size,
                chunk_overlap=chunk_overlap,
                furniture=furniture[page.source],
            )
        )
    return chunks


def _pack(
    text: str, blocks: Sequence[Block], chunk_size: int, chunk_overlap: int
) -> list[tuple[int, int]]:
    """The ``(start, end)`` offsets of chunks made of whole blocks."""
    spans: list[tuple[int, int]] = []
    current: list[Block] = []

    def flush() -> None:
        if current:
            spans.append((current[0].start, current[-1].end))

    # A page that is nothing but furniture ("12") is still text the user gave.
    keep_furniture = all(block.kind == "furniture" for block in blocks)
    for block in blocks:
        if block.kind == "furniture" and not keep_furniture:
            continue
        if block.end - block.start > chunk_size:
            # Too long to keep whole: cut it like running text, on its own.
            flush()
            current = []
            piece = text[block.start : block.end]
            spans.extend(
                (block.start + s, block.start + e)
                for s, e in _chunk_spans(piece, chunk_size, chunk_overlap)
            )
            continue
        if current:
            too_big = block.end - current[0].start > chunk_size
            new_section = block.kind == "heading" and any(b.kind != "heading" for b in current)
            if too_big or new_section:
                flush()
                current = _overlap(current, block, chunk_size, chunk_overlap) if too_big else []
        current.append(block)
    flush()
    return spans


def _overlap(
    previous: list[Block], block: Block, chunk_size: int, chunk_overlap: int
) -> list[Block]:
    """The whole blocks at the end of ``previous`` that the next chunk repeats.

    Only items, rows and text of the same section, within ``chunk_overlap``
    characters, and never all of ``previous`` (the next chunk must move on).
    """
    kept: list[Block] = []
    for candidate in reversed(previous[1:]):
        if candidate.kind == "heading":
            break
        if previous[-1].end - candidate.start > chunk_overlap:
            break
        if block.end - candidate.start > chunk_size:
            break
        kept.insert(0, candidate)
    return kept


def _without_furniture(text: str, blocks: Sequence[Block], start: int, end: int) -> str:
    """``text[start:end]`` with the furniture blocks inside it left out."""
    parts = []
    position = start
    for block in blocks:
        if block.kind != "furniture" or block.end <= start or block.start >= end:
            continue
        parts.append(text[position : block.start])
        position = block.end
    parts.append(text[position:end])
    return "\n".join(part.strip() for part in parts if part.strip())


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
