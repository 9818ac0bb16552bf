"""Clean up extracted text before it is split, embedded and shown.

Loaders hand every page's text to :func:`normalize_text`, so the rest of ragqa sees
one shape of text whatever the source: ``\\n`` line endings, single spaces, at most one
blank line in a row, no invisible characters, and NFC-composed letters. Two repairs
undo what PDF extraction does to text: pypdf puts spaces between Chinese characters
that were laid out one by one, and keeps the hyphen of words broken across lines.

Each rule is deliberately narrow, because a rule that fires where it should not
destroys meaning (a space between a Chinese and an English word, the hyphen in
"Jean-Paul", a range such as "1990-\\n1995").

Example:
    >>> normalize_text("中 文 PDF   text\\r\\n\\r\\n\\r\\ninfor-\\nmation ")
    '中文 PDF text\\n\\ninformation'
"""

from __future__ import annotations

import re
import unicodedata

from ragqa.lang import is_cjk, is_cjk_punctuation

__all__ = ["normalize_text"]

# Line and paragraph separators other than "\n". Form feed separates pages in text
# exported from PDFs, so it becomes a paragraph break rather than vanishing and gluing
# two words together.
_LINE_BREAKS = {
    "\r\n": "\n",
    "\r": "\n",
    "\u2028": "\n",  # LINE SEPARATOR
    "\x0b": "\n",  # vertical tab
    "\u2029": "\n\n",  # PARAGRAPH SEPARATOR
    "\x0c": "\n\n",  # form feed
}
_LINE_BREAK_RE = re.compile("|".join(re.escape(k) for k in _LINE_BREAKS))

# A soft hyphen marks where a word may be broken; at the end of a line it means the
# word *was* broken there, so the two halves belong together.
_SOFT_HYPHEN_BREAK_RE = re.compile("\u00ad\n")

# Characters that take no room on the page: they only split words a reader sees as
# one ("infor\u200bmation") and make identical text compare unequal.
_INVISIBLE = "\u00ad\u200b\u200c\u200d\u200e\u200f\u2060\ufeff"

# Every control character but tab and newline (C0, DEL and C1; carriage return, vertical
# tab and form feed are line breaks by now), plus the invisibles.
_DROP_RE = re.compile(
    "[\x00-\x08\x0e-\x1f\x7f-\x9f" + _INVISIBLE + "]",
)

# Latin typographic ligatures, which LaTeX and many PDF producers emit: "ﬁlled" must
# match a search for "filled". Only these, not NFKC as a whole, which would also turn
# the full-width punctuation of Chinese text (，：) into ASCII.
_LIGATURES = str.maketrans(
    {
        "\ufb00": "ff",
        "\ufb01": "fi",
        "\ufb02": "fl",
        "\ufb03": "ffi",
        "\ufb04": "ffl",
        "\ufb05": "st",
        "\ufb06": "st",
    }
)

# Horizontal spaces, including no-break and typographic spaces. The ideographic space
# U+3000 is not here: in Chinese typesetting it is a deliberate full-width character.
_SPACE_RUN_RE = re.compile("[ \t\u00a0\u2000-\u200a\u202f\u205f]+")
_TRAILING_SPACE_RE = re.compile(" +$", re.MULTILINE)
_MANY_NEWLINES_RE = re.compile("\n{3,}")

# A hyphen at the end of a line, with the character before and after it.
_HYPHEN_BREAK_RE = re.compile(r"(?<=(\w))-\n(?=(\w))")
# A table cell that is a number: "234,850.00", "12.5%", "-3".
_NUMBER_CELL_RE = re.compile(r"[-+]?\d[\d,.]*%?")
# A single space with the character on each side of it.
_INNER_SPACE_RE = re.compile(r"(?<=(\S)) (?=(\S))")


def normalize_text(text: str) -> str:
    """Return ``text`` in the normalised form every page is stored in.

    The rules, in the order they run:

    1. ``\\r\\n``, ``\\r`` and Unicode line separators become ``\\n``.
    2. Control characters other than ``\\n`` and ``\\t`` are dropped, and so are
       zero-width and soft-hyphen characters (a soft hyphen at a line end joins the
       two halves of the word).
    3. NFC normalisation composes letters and accents into single code points, and
       Latin ligatures are spelt out ("ﬁ" becomes "fi").
    4. Each run of spaces and tabs becomes one space; spaces at line ends go.
    5. ``lower-\\nlower`` joins a word hyphenated across a line break. Nothing else
       does: "Jean-\\nPaul", "1990-\\n1995" and "API-\\nbased" keep their hyphen.
    6. A space between two CJK characters, or between a CJK character and CJK
       punctuation, is removed. Spaces between CJK and Latin text stay, and so do
       spaces between Korean words, which Korean writes with spaces. So do the
       spaces between the cells of a table's header row: a line of CJK words over
       a line of as many cells, numbers among them ("授信银行 授信额度" over
       "中国银行 234,850.00").
    7. Three or more newlines become two (one blank line), and the text is stripped.

    The function is idempotent: ``normalize_text(normalize_text(t)) ==
    normalize_text(t)``.

    Args:
        text: raw text from a loader.

    Returns:
        The normalised text; ``""`` when nothing but whitespace was left.

    Example:
        >>> normalize_text("操 作 手 冊 ， 第 1 版\\t\\tfor  Jean-\\nPaul")
        '操作手冊，第 1 版 for Jean-\\nPaul'
    """
    text = _LINE_BREAK_RE.sub(lambda m: _LINE_BREAKS[m.group(0)], text)
    text = _SOFT_HYPHEN_BREAK_RE.sub("", text)
    text = _DROP_RE.sub("", text)
    text = unicodedata.normalize("NFC", text.translate(_LIGATURES))
    text = _SPACE_RUN_RE.sub(" ", text)
    text = _TRAILING_SPACE_RE.sub("", text)
    text = _HYPHEN_BREAK_RE.sub(_join_hyphenated, text)
    text = _join_cjk_lines(text)
    text = _MANY_NEWLINES_RE.sub("\n\n", text)
    return text.strip()


def _join_hyphenated(match: re.Match[str]) -> str:
    # Only lowercase on both sides is safely one word split by the line break:
    # a capital after the hyphen is a compound name, a digit is a range.
    before, after = match.group(1), match.group(2)
    return "" if before.islower() and after.islower() else match.group(0)


def _join_cjk_lines(text: str) -> str:
    """Rule 6, line by line: a table's header row keeps its cells apart."""
    lines = text.split("\n")
    out = [""] * len(lines)
    below = ""  # the next line that is not blank, walking up from the end
    for i in range(len(lines) - 1, -1, -1):
        line = lines[i]
        if " " in line and _heads_a_table(line, below):
            out[i] = line
        else:
            out[i] = _INNER_SPACE_RE.sub(_drop_space_inside_cjk, line)
        if line.strip():
            below = line
    return "\n".join(out)


def _heads_a_table(line: str, below: str) -> bool:
    cells, values = line.split(" "), below.split(" ")
    numbers = sum(1 for value in values if _NUMBER_CELL_RE.fullmatch(value))
    # Cells of one character are characters set apart: pypdf's spacing, not cells.
    words = all(len(cell) >= 2 for cell in cells)
    return (
        words
        and len(cells) == len(values) >= 3
        and numbers >= 2
        and not any(_NUMBER_CELL_RE.fullmatch(cell) for cell in cells)
    )


def _drop_space_inside_cjk(match: re.Match[str]) -> str:
    before, after = match.group(1), match.group(2)
    return "" if _is_spaceless(before) and _is_spaceless(after) else " "


def _is_spaceless(char: str) -> bool:
    """True for a character of a script written without spaces between words."""
    # Hangul counts as CJK in ragqa.lang, but Korean separates words with spaces.
    if "\uac00" <= char <= "\ud7af":
        return False
    return is_cjk(char) or is_cjk_punctuation(char)
