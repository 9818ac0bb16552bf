"""What a page is made of: headings, list items, Q&A items, table rows, paragraphs.

Study notes and reports are not running prose. A 600-character window of notes holds
a dozen unrelated list items, and a line such as ``3.BERT的预训练任务?答案:MLM 和 NSP``
is one fact that must never be cut in two. :func:`parse_blocks` reads a page's text
line by line and labels each piece; the splitter packs whole blocks into chunks, the
retriever scores a chunk by its best unit (:func:`units`), and the answerer quotes a
unit's answer part.

The rules, each narrow on purpose (a rule that fires on running prose would break
the QA datasets' paragraphs into pieces):

* **heading**: a Markdown ``#`` line, a Chinese numbered heading (``一、``, ``第二章``),
  or a short line without end punctuation that starts a section: after a blank line,
  a finished sentence or another block, and followed by text.
* **item**: a line that starts with a bullet (``-``, ``•``, ``1.``, ``(2)``, ``①``);
  more deeply indented lines that follow belong to it.
* **qa**: a question and its answer, on one line (``问题?答案:...``, ``Q: ... A: ...``)
  or a question line followed by an ``答案:``/``A:`` line. ``answer_start`` says where
  the answer begins, so that an answer never quotes the question half.
* **row**: a table row: cells split by ``|`` or tabs, or a line of mostly numbers.
* **furniture**: page furniture that says nothing about the content: bare image
  links, "scan the QR code" lines, page numbers, and any line repeated on many
  pages (see :func:`repeated_lines`). It is kept out of retrieval.
* **text**: everything else. Lines that wrap inside one paragraph (PDF text) are
  joined into one block.

Example:
    >>> text = "BERT\\n1.BERT的预训练任务?答案:MLM 和 NSP\\n- 参数量:3.4亿"
    >>> [(b.kind, text[b.start:b.end]) for b in parse_blocks(text)]
    [('heading', 'BERT'), ('qa', '1.BERT的预训练任务?答案:MLM 和 NSP'), ('item', '- 参数量:3.4亿')]
    >>> qa = parse_blocks(text)[1]
    >>> text[qa.answer_start:qa.end]
    'MLM 和 NSP'
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ragqa.lang import CJK_LETTERS
from ragqa.sentences import sentence_spans

__all__ = [
    "BLOCK_KINDS",
    "ITEM_MARKER",
    "Block",
    "Unit",
    "heading_path",
    "parse_blocks",
    "repeated_lines",
    "table_cells",
    "units",
]

BLOCK_KINDS = ("heading", "item", "qa", "row", "text", "furniture")

# A list item's marker: a bullet, a number with a dot or bracket, a circled number.
# "1.5 GB" and "3.14" are not markers: a dot must not be followed by a digit.
_BULLET = re.compile(
    r"[-*+•·‧●○◦▪▫■□◆◇►▶➢✓✔→]\s*"
    r"|(?:\d{1,3}|[a-zA-Z])[.．、)）](?!\d)\s*"
    r"|[(（](?:\d{1,3}|[a-zA-Z一二三四五六七八九十])[)）]\s*"
    r"|[①-⑳⑴-⒇]\s*"
)
# The public name: the answerer takes a list item's marker off what it quotes.
ITEM_MARKER = _BULLET
_MARKDOWN_HEADING = re.compile(r"(#{1,6})\s+\S")
_ZH_NUMBERED_HEADING = re.compile(
    r"(?:[一二三四五六七八九十]{1,3}[、．.]|第[一二三四五六七八九十百\d]{1,4}[章节節部篇回讲講课課])"
)
# Where the answer of a Q&A item begins: 答案: / 答: / 回答: / A: / Answer:.
_ANSWER_MARK = r"(?:答案|回答|答|解答|A|Ans|Answer)\s*[:：]"
_ANSWER_START = re.compile(rf"\s*{_ANSWER_MARK}\s*", re.IGNORECASE)
# A question, then its answer on the same line: "...?答案:...", "Q: ...? A: ...".
_INLINE_QA = re.compile(rf"[?？]\s*(?:[(（]?\s*)?(?P<mark>{_ANSWER_MARK})\s*(?=\S)", re.IGNORECASE)
_Q_PREFIX = re.compile(r"\s*(?:问题|問題|问|問|Q|Question)\s*[:：]", re.IGNORECASE)

_TERMINAL = "。！？；.!?;…"
_CLOSERS = "」』”’\"'）)】》〉"
_CLAUSE = "，,、：:"

_RELATED = re.compile(
    r"(?:相关文章|相關文章|相关推荐|相關推薦|推荐阅读|推薦閱讀|猜你喜欢|related (?:articles|posts))\s*[:：]?",
    re.IGNORECASE,
)
# A bare page number ("12", "- 12 -"): furniture only as a page's first or last line,
# since a table cell or a formula can stand alone on a line too.
_PAGE_NUMBER = re.compile(r"[-–—]?\s*\d{1,4}\s*[-–—]?")
# Lines that say nothing about a document's content. Matched against a whole line.
_FURNITURE = re.compile(
    r"(?:https?://\S+\.(?:png|jpe?g|gif|webp|svg|bmp)(?:\?\S*)?"
    r"|.{0,20}(?:扫码|扫描二维码|掃描二維碼|扫一扫|掃一掃|长按识别|長按識別|关注公众号|關注公眾號)"
    r".{0,30}"
    r"|(?:scan|scan the|scan this) (?:qr )?code.{0,40}"
    r"|第\s*\d{1,4}\s*页(?:\s*[/／,，]?\s*共\s*\d{1,4}\s*页)?"
    r"|第\s*\d{1,4}\s*頁(?:\s*[/／,，]?\s*共\s*\d{1,4}\s*頁)?"
    r"|(?:page|p\.)\s*\d{1,4}(?:\s*(?:of|/)\s*\d{1,4})?"
    r"|目录|目錄|文章目录|文章目錄|contents|table of contents"
    r")",
    re.IGNORECASE,
)
_NUMBER = re.compile(r"[-+]?\(?\d[\d,，]*(?:\.\d+)?%?\)?")
_DIGIT_RUN = re.compile(r"\d+")
# A line of more space-separated cells than this is prose, not a table row.
_MAX_ROW_CELLS = 30
_MAX_ROW_CHARS = 160
_CJK = re.compile(f"[{CJK_LETTERS}]")
_LATIN_LOWER = re.compile(r"[a-z]")
# Words that open a clause continuing what came before: no heading starts so.
_CLAUSE_START = re.compile(
    r"(?:其中|但是|但|因此|所以|如果|这里|这些|这个|这|我们|可以|也|而且|而|并且|例如|比如|即|注[:：]?)"
)
_LETTERS = re.compile(f"[{CJK_LETTERS}A-Za-z]")

# Headings are short: a Chinese one of at most this many characters, an English one
# of at most this many words.
_MAX_ZH_HEADING = 20
_MAX_EN_HEADING_WORDS = 10
# A table's caption ("Table 1: EU Countries Information", "表 3 授信情况") heads the
# rows under it, as a heading does.
_TABLE_CAPTION = re.compile(r"(?:Table|Tab\.|表)\s*\d+(?:[.-]\d+)*\s*[:：.．]?\s*\S", re.IGNORECASE)
_MAX_CAPTION = 100
# A label on a line of its own ("Russian:") and the short value on the next line
# ("Привет, мир") are one statement, as forms and PDF layouts print them.
_LABEL = re.compile(r"[^:：。！？!?;；]{1,24}[:：]")
_MAX_LABEL_VALUE = 40
# ... but not a lead-in to what follows ("公式如下:", "as follows:"), whose next line
# is only the first of many.
_LEAD_IN = re.compile(r".*(?:如下|以下|包括|包含|如|follows?|following|include[sd]?)\s*[:：]", re.I)


@dataclass(frozen=True)
class Block:
    """One structural piece of a page: ``text[start:end]``, trimmed of whitespace.

    ``level`` is a heading's depth (0 is the title a page opens with, 1 the top
    section); ``answer_start`` is where a Q&A
    item's answer begins (``-1`` for every other kind). ``header`` marks the table
    row that names a table's columns.
    """

    kind: str
    start: int
    end: int
    level: int = 0
    answer_start: int = -1
    header: bool = False


@dataclass(frozen=True)
class Unit:
    """The smallest piece that can answer a question: one sentence, item, Q&A or row.

    Offsets are into the text given to :func:`units`. ``answer_start`` is where the
    answer of a Q&A item begins (else ``-1``); ``table_header`` is the text of the
    header row of the table a row belongs to, when that row is in the same text.
    """

    kind: str
    start: int
    end: int
    answer_start: int = -1
    table_header: str = ""


@dataclass
class _Line:
    start: int  # first non-space character
    end: int  # after the last non-space character
    indent: int
    text: str  # stripped


def _lines(text: str) -> list[_Line | None]:
    """Every line of ``text``, ``None`` for blank ones."""
    out: list[_Line | None] = []
    position = 0
    for raw in text.split("\n"):
        stripped = raw.strip()
        if stripped:
            lead = len(raw) - len(raw.lstrip())
            start = position + lead
            out.append(_Line(start, start + len(stripped), lead, stripped))
        else:
            out.append(None)
        position += len(raw) + 1
    return out


def repeated_lines(
    pages: Sequence[str], *, min_pages: int = 3, share: float = 0.5
) -> frozenset[str]:
    """Lines that recur on many pages of one document: running headers and footers.

    A line counts when it is on at least ``min_pages`` pages and on at least
    ``share`` of them. In the first and last three lines of a page digits are
    ignored when comparing (and come back as ``#``), so "Page 3" and "Page 4" are
    the same footer.

    Example:
        >>> pages = [f"ACME report\\nA.\\nB.\\nfact {i}.\\nC.\\nD.\\nPage {i}" for i in range(4)]
        >>> sorted(line for line in repeated_lines(pages) if len(line) > 2)
        ['ACME report', 'Page #']
    """
    if len(pages) < min_pages:
        return frozenset()
    counts: Counter[str] = Counter()
    for text in pages:
        lines = [" ".join(line.split()) for line in text.split("\n") if line.strip()]
        # Only the first and last lines of a page, where running headers and footers
        # stand, are compared with their numbers ignored ("Page 3" is "Page 4"); in
        # the body, "Table 3" and "Table 4" are different lines.
        edges = {_furniture_key(line) for line in lines[:3] + lines[-3:]}
        counts.update(edges | set(lines))
    needed = max(min_pages, share * len(pages))
    return frozenset(line for line, n in counts.items() if n >= needed and len(line) <= 120)


def _furniture_key(line: str) -> str:
    return re.sub(r"\d+", "#", " ".join(line.split()))


def parse_blocks(text: str, furniture: Iterable[str] = ()) -> list[Block]:
    """Label the pieces of ``text``: headings, items, Q&A items, rows, text, furniture.

    Args:
        text: a page's normalised text.
        furniture: lines known to be page furniture (from :func:`repeated_lines`),
            compared with digits replaced by ``#``.

    Returns:
        The blocks in order; they do not overlap and every non-space character of
        ``text`` is in one of them.

    Example:
        >>> text = "Results\\n| bank | credit |\\n| A | 12.5 |\\nThe total is\\nlarge."
        >>> [b.kind for b in parse_blocks(text)]
        ['heading', 'row', 'row', 'text']
    """
    known_furniture = frozenset(furniture)
    if "\n" not in text.strip():
        # One line, as a QA dataset's paragraph or most chunks of prose are: no
        # wrapping, headings or tables to look for, and this runs on every query.
        stripped = text.strip()
        if not stripped:
            return []
        start = text.index(stripped[0])
        line = _Line(start, start + len(stripped), 0, stripped)
        kind, _ = _classify(line, None, False, None, known_furniture)
        if kind == "heading":
            return [Block("heading", line.start, line.end, 1)]
        if kind == "text" or kind == "item":
            answer = _answer_start(text, line.start, line.end)
            return [Block("qa" if answer >= 0 else kind, line.start, line.end, answer_start=answer)]
        return [Block(kind, line.start, line.end)]
    lines = _lines(text)
    lengths = sorted(len(line.text) for line in lines if line)
    # A PDF wraps a paragraph's lines at about the same width; a line at least this
    # long that does not end a sentence runs on into the next.
    wrap_width = lengths[int(0.9 * (len(lengths) - 1))] * 0.75 if lengths else 0
    blocks: list[Block] = []
    explicit_levels: list[int] = []  # levels of the numbered headings above
    previous: _Line | None = None  # the line before, None after a blank line
    previous_open = False  # whether that line was prose that may run on
    title: int | None = None  # the index of a plain heading the page opened with
    i = 0
    # Web pages copied whole end in a list of other articles: from a "相关文章" line
    # on, nothing belongs to the document.
    tail = next(
        (i for i, line in enumerate(lines) if line is not None and _RELATED.fullmatch(line.text)),
        len(lines),
    )
    present = [index for index, line in enumerate(lines) if line is not None]
    edges = {present[0], present[-1]} if present else set()
    while i < len(lines):
        line = lines[i]
        if line is None:
            previous = None
            i += 1
            continue
        if i >= tail or (i in edges and _PAGE_NUMBER.fullmatch(line.text)):
            blocks.append(Block("furniture", line.start, line.end))
            previous, previous_open, i = line, False, i + 1
            continue
        following = _next_line(lines, i)
        kind, level = _classify(line, previous, previous_open, following, known_furniture)
        previous_open = kind == "text"
        if kind == "heading":
            if level:
                explicit_levels = [lv for lv in explicit_levels if lv < level] + [level]
                if title is not None and blocks[title].level == 1:
                    # The plain line the page opened with stands over numbered
                    # sections: it is the document's title, in every path.
                    blocks[title] = Block("heading", blocks[title].start, blocks[title].end, 0)
                title = None
            elif all(b.kind == "furniture" for b in blocks):
                title = len(blocks)
                level = 1
            elif blocks and blocks[-1].kind == "heading":
                level = blocks[-1].level + 1  # a heading right under a heading: a subsection
            else:
                level = (explicit_levels[-1] if explicit_levels else 0) + 1
            blocks.append(Block("heading", line.start, line.end, level))
            previous, i = line, i + 1
            continue
        if kind in ("furniture", "row"):
            blocks.append(Block(kind, line.start, line.end))
            previous, i = line, i + 1
            continue
        # item, qa and text blocks may run over several lines.
        end_index = i
        if kind == "item":
            end_index = _item_end(lines, i, known_furniture)
        elif kind == "text":
            end_index = _paragraph_end(lines, i, wrap_width, known_furniture)
        last = lines[end_index]
        assert last is not None
        end = last.end
        answer = _answer_start(text, line.start, end)
        if answer < 0 and line.text[-1] in "?？":
            # The answer on the next line: "3.BERT的预训练任务?" then "答案:MLM 和 NSP".
            nxt = lines[end_index + 1] if end_index + 1 < len(lines) else None
            if nxt is not None and _ANSWER_START.match(nxt.text):
                end_index = _answer_lines_end(lines, end_index + 1, known_furniture)
                last = lines[end_index]
                assert last is not None
                end = last.end
                answer = _answer_start(text, line.start, end, multiline=True)
        if answer >= 0:
            kind = "qa"
        blocks.append(Block(kind, line.start, end, answer_start=answer))
        previous, i = last, end_index + 1
    return _mark_table_headers(text, _lone_number_lines_are_text(text, blocks))


def _next_line(lines: Sequence[_Line | None], i: int) -> _Line | None:
    """The first non-blank line after ``lines[i]``, or None at the end."""
    for line in lines[i + 1 :]:
        if line is not None:
            return line
    return None


def _classify(
    line: _Line,
    previous: _Line | None,
    previous_open: bool,
    following: _Line | None,
    furniture: frozenset[str],
) -> tuple[str, int]:
    """``(kind, explicit heading level or 0)`` for a line that starts a block."""
    text = line.text
    if _FURNITURE.fullmatch(text) or _furniture_key(text) in furniture:
        return "furniture", 0
    markdown = _MARKDOWN_HEADING.match(text)
    if markdown:
        return "heading", len(markdown.group(1))
    if _is_row(text):
        return "row", 0
    if (
        _TABLE_CAPTION.match(text)
        and len(text) <= _MAX_CAPTION
        and text[-1] not in _TERMINAL
        and following is not None
    ):
        return "heading", 0
    if _INLINE_QA.search(text) or _Q_PREFIX.match(text):
        return "text", 0  # its answer is found below; "qa" is decided there
    if _ZH_NUMBERED_HEADING.match(text) and _numbered_heading_shaped(text):
        return "heading", 1
    if _BULLET.match(text):
        return "item", 0
    if (
        _heading_shaped(text)
        and _starts_section(previous, previous_open)
        and following is not None
        # A heading names something, and what follows it is more than a symbol:
        # pasted formulas come out one symbol per line.
        and len(_LETTERS.findall(text)) >= 2
        and len(following.text) >= 3
        and not _continues(following.text)
        and not _ANSWER_START.match(following.text)
    ):
        return "heading", 0
    return "text", 0


def _heading_shaped(text: str) -> bool:
    """Short, and not a sentence or a "term: definition" line."""
    if text[-1] in _TERMINAL + _CLAUSE or text[-1] in "?？":
        return False
    if _CLAUSE_START.match(text):
        return False  # "其中V表示词典的大小" goes on from the line before
    if len(_DIGIT_RUN.findall(text)) >= 3:
        return False  # "Belgium 11.5 30,689 Brussels": data, not a heading
    if re.search(r"[:：]\s*\S", text) or "|" in text:
        return False
    if _CJK.search(text):
        return len(text) <= _MAX_ZH_HEADING
    words = text.split()
    return len(words) <= _MAX_EN_HEADING_WORDS and not _LATIN_LOWER.match(text)


def _numbered_heading_shaped(text: str) -> bool:
    """ "二、模型如何运作?" is a heading: a numbered one may ask, and run a little longer."""
    body = text.rstrip("?？")
    if not body or body[-1] in _TERMINAL + _CLAUSE or re.search(r"[:：]\s*\S", body):
        return False
    return len(text) <= 2 * _MAX_ZH_HEADING and not re.search(r"[。！；]", text)


def _starts_section(previous: _Line | None, previous_open: bool) -> bool:
    """Whether a line after ``previous`` can begin something new, not carry on a
    paragraph whose last sentence is unfinished (``previous_open``)."""
    if previous is None or not previous_open:
        return True
    last = previous.text.rstrip(_CLOSERS)[-1:] or previous.text[-1]
    return last in _TERMINAL or last in "?？"


def _continues(text: str) -> bool:
    """A line that carries on the sentence of the line before it (lowercase English)."""
    return bool(_LATIN_LOWER.match(text))


def _is_row(text: str) -> bool:
    """A table row: cells between pipes or tabs, or a line of mostly numbers."""
    if text.count("|") >= 2 or (text.count("|") == 1 and text.endswith("|")):
        return True
    if text.count("\t") >= 2:
        return True
    # A cheap test first: most lines of prose hold fewer than two numbers.
    if len(_DIGIT_RUN.findall(text)) < 2:
        return False
    cells = text.split()
    if not 3 <= len(cells) <= _MAX_ROW_CELLS:
        return False
    numbers = sum(1 for cell in cells if _NUMBER.fullmatch(cell))
    # "Finland 5.5 338,424 Helsinki Finnish, Swedish": cells of words and numbers;
    # a lone line like it is turned back into text (_lone_number_lines_are_text).
    return numbers >= 2 and numbers >= 0.25 * len(cells) and len(text) <= _MAX_ROW_CHARS


def _item_end(lines: Sequence[_Line | None], i: int, furniture: frozenset[str]) -> int:
    """The last line of the list item starting at ``lines[i]``: deeper-indented
    lines that follow belong to it, and so does a line that wraps its sentence."""
    first = lines[i]
    assert first is not None
    end = i
    j = i + 1
    while j < len(lines):
        line = lines[j]
        if line is None or _BULLET.match(line.text) or _is_boundary_line(line, furniture):
            break
        last = lines[end]
        assert last is not None
        if line.indent > first.indent or (_continues(line.text) and last.text[-1] not in _TERMINAL):
            end = j
            j += 1
            continue
        break
    return end


def _paragraph_end(
    lines: Sequence[_Line | None], i: int, wrap_width: float, furniture: frozenset[str]
) -> int:
    """The last line of the paragraph starting at ``lines[i]``: PDF lines that wrap
    inside a sentence are joined; a line that ends a sentence or stands on its own
    (in notes every line is an item) ends the paragraph."""
    end = i
    while end + 1 < len(lines):
        line, nxt = lines[end], lines[end + 1]
        assert line is not None
        if nxt is None or _BULLET.match(nxt.text) or _is_boundary_line(nxt, furniture):
            break
        if _INLINE_QA.search(nxt.text) or _ANSWER_START.match(nxt.text):
            break
        after = lines[end + 2] if end + 2 < len(lines) else None
        if _heading_shaped(nxt.text) and after is not None and _BULLET.match(after.text):
            break  # a heading over a list, not the last line of a paragraph
        if (
            end == i
            and _LABEL.fullmatch(line.text)
            and not _LEAD_IN.fullmatch(line.text)
            and sum(char.isalpha() for char in nxt.text) >= 2
            and len(nxt.text) <= _MAX_LABEL_VALUE
            and not nxt.text.endswith((":", "："))
            and not _is_row(nxt.text)
        ):
            return end + 1  # "Russian:" then "Привет, мир"
        tail = line.text.rstrip(_CLOSERS)[-1:]
        wrapped = (
            tail not in _TERMINAL
            and tail not in "?？"
            and (_continues(nxt.text) or (len(line.text) >= wrap_width and len(line.text) >= 20))
        )
        if not wrapped:
            break
        end += 1
    return end


def _answer_lines_end(lines: Sequence[_Line | None], i: int, furniture: frozenset[str]) -> int:
    """The last line of an answer that starts at ``lines[i]`` ("答案:" ...): it runs
    on over lines until a blank line, a new item or question, or a heading."""
    end = i
    while end + 1 < len(lines):
        nxt = lines[end + 1]
        if nxt is None or _BULLET.match(nxt.text) or _is_boundary_line(nxt, furniture):
            break
        if nxt.text[-1] in "?？" or _INLINE_QA.search(nxt.text) or _Q_PREFIX.match(nxt.text):
            break
        end += 1
    return end


def _is_boundary_line(line: _Line, furniture: frozenset[str]) -> bool:
    text = line.text
    return bool(
        _FURNITURE.fullmatch(text)
        or _furniture_key(text) in furniture
        or _MARKDOWN_HEADING.match(text)
        or _is_row(text)
    )


def _answer_start(text: str, start: int, end: int, *, multiline: bool = False) -> int:
    """Where the answer of a Q&A item in ``text[start:end]`` begins, else -1."""
    if multiline:
        newline = text.find("\n", start, end)
        match = _ANSWER_START.match(text, newline + 1, end) if newline >= 0 else None
        if match:
            return _skip_spaces(text, match.end(), end)
    match = _INLINE_QA.search(text, start, end)
    if match:
        return _skip_spaces(text, match.end(), end)
    if _Q_PREFIX.match(text, start, end):
        # "Q: What is X? A: Y" without a "?" before the mark is still an item.
        answer = re.compile(rf"\s{_ANSWER_MARK}\s*", re.IGNORECASE).search(text, start, end)
        if answer:
            return _skip_spaces(text, answer.end(), end)
    return -1


def _skip_spaces(text: str, position: int, end: int) -> int:
    while position < end and text[position].isspace():
        position += 1
    return position if position < end else -1


def _lone_number_lines_are_text(text: str, blocks: list[Block]) -> list[Block]:
    """A line of numbers makes a table row only beside another row: "October 14,
    1998" alone is a date, not a table."""
    out = list(blocks)
    for i, block in enumerate(out):
        if block.kind != "row" or "|" in text[block.start : block.end]:
            continue
        if "\t" in text[block.start : block.end]:
            continue
        beside = [out[j] for j in (i - 1, i + 1) if 0 <= j < len(out)]
        if not any(b.kind == "row" for b in beside):
            out[i] = Block("text", block.start, block.end)
    return out


def _mark_table_headers(text: str, blocks: list[Block]) -> list[Block]:
    """Mark each table's header row: the first row of a run when it holds no numbers,
    or the one-line text just above a run of rows with as many cells
    ("银行 授信额度" over "中国银行 234,850.00")."""
    out = list(blocks)
    for i, block in enumerate(out):
        if block.kind != "row" or (i and out[i - 1].kind == "row"):
            continue
        cells = table_cells(text[block.start : block.end])
        followed = i + 1 < len(out) and out[i + 1].kind == "row"
        if followed and not any(_NUMBER.fullmatch(cell) for cell in cells):
            out[i] = Block("row", block.start, block.end, header=True)
            continue
        above = out[i - 1] if i else None
        if (
            above is not None
            and above.kind in ("text", "heading")
            and "\n" not in text[above.start : above.end]
        ):
            names = table_cells(text[above.start : above.end])
            # Cells split at spaces need not line up ("Area (km2)" is two words).
            spaced = "|" not in text[block.start : block.end]
            counts_fit = len(names) == len(cells) or (spaced and len(names) >= len(cells))
            if counts_fit and len(names) >= 2 and not any(_NUMBER.fullmatch(n) for n in names):
                out[i - 1] = Block("row", above.start, above.end, header=True)
    return out


def table_cells(row: str) -> list[str]:
    """A table row's cells: split at pipes or tabs if it has them, else at spaces.

    Example:
        >>> table_cells("| 银行 | 授信额度 |"), table_cells("中国银行 234,850.00 120.5")
        (['银行', '授信额度'], ['中国银行', '234,850.00', '120.5'])
    """
    if "|" in row:
        parts = row.strip().strip("|").split("|")
    elif "\t" in row:
        parts = row.split("\t")
    else:
        parts = row.split()
    return [part.strip() for part in parts if part.strip()]


def heading_path(text: str, blocks: Sequence[Block], position: int) -> tuple[str, ...]:
    """The headings above ``position`` in ``text``, outermost first.

    Example:
        >>> text = "一、模型\\nBERT\\n要点一。\\n二、应用\\nRAG\\n要点二。"
        >>> blocks = parse_blocks(text)
        >>> heading_path(text, blocks, text.index("要点一")), heading_path(text, blocks, len(text) - 1)
        (('一、模型', 'BERT'), ('二、应用', 'RAG'))
    """
    stack: list[tuple[int, str]] = []
    for block in blocks:
        if block.start > position:
            break
        if block.kind != "heading":
            continue
        # A heading right at ``position`` is not above it, but it does end its
        # siblings' sections.
        stack = [(level, title) for level, title in stack if level < block.level]
        if block.end <= position:
            stack.append((block.level, text[block.start : block.end]))
    return tuple(title for _, title in stack)


def units(text: str, blocks: Sequence[Block] | None = None) -> list[Unit]:
    """The units of ``text`` that can answer a question, in order.

    Items, Q&A items, rows and headings are one unit each (a short line taken for a
    heading may still be the answer); a paragraph is cut into its sentences;
    furniture is no unit.

    Example:
        >>> text = "模型\\n- 参数:1亿。\\n它很快。它很小。"
        >>> [(u.kind, text[u.start:u.end]) for u in units(text)]
        [('heading', '模型'), ('item', '- 参数:1亿。'), ('text', '它很快。'), ('text', '它很小。')]
    """
    if blocks is None:
        blocks = parse_blocks(text)
    out: list[Unit] = []
    header = ""
    for block in blocks:
        if block.kind == "row":
            if block.header:
                header = text[block.start : block.end]
            out.append(Unit("row", block.start, block.end, table_header=header))
            continue
        header = ""
        if block.kind in ("item", "qa", "heading"):
            out.append(Unit(block.kind, block.start, block.end, block.answer_start))
        elif block.kind == "text":
            for start, end in sentence_spans(text[block.start : block.end]):
                out.append(Unit("text", block.start + start, block.start + end))
    return out
