"""Plain-text and Markdown files: one page of normalised text per file.

Most files are UTF-8, but Chinese text saved by older Windows and Mac editors is
often GB18030 (GBK, GB2312) or Big5. General-purpose detectors such as
charset-normalizer guess wrong on short Chinese texts (on 8-character GB18030
snippets it was right less than half the time), so :func:`detect_encoding` tries the likely
encodings itself and keeps the decoding that reads like real Chinese, before it
asks charset-normalizer about anything else.

Example:
    >>> detect_encoding("你好，世界".encode("gb18030"))
    'gb18030'
    >>> detect_encoding("你好，世界".encode("big5"))
    'big5'
    >>> detect_encoding(b"plain ASCII is UTF-8")
    'utf-8'
"""

from __future__ import annotations

import codecs
import functools
import unicodedata
from pathlib import Path

from ragqa.config import Settings
from ragqa.errors import LoaderError
from ragqa.lang import is_cjk_punctuation
from ragqa.loaders.base import Loader, content_hash, read_file, source_of
from ragqa.normalize import normalize_text
from ragqa.types import Page

__all__ = ["TextLoader", "detect_encoding"]

# The share of non-ASCII characters that must be common Chinese characters or CJK
# punctuation for a GB18030 or Big5 decoding to be believed. On snippets of 4 to 64
# characters of real Chinese, the right decoding scored 0.98 or more in 95% of cases
# and the wrong one 0.25 at the median. The higher score wins; this floor only keeps
# text that is not Chinese at all (Latin-1 that happens to decode) out.
_MIN_CHINESE_SCORE = 0.5

# More than this share of control characters in the decoded text means the file is
# not text, whatever its name says.
_MAX_CONTROL_SHARE = 0.05

# Text that is at least this share ASCII bytes, and is not Chinese, is read as
# Windows-1252 when it decodes as such: the usual encoding of legacy English and
# Western European files, whose few other bytes are curly quotes, dashes and accented
# letters. charset-normalizer misreads exactly those short cases ("quote’s" as Big5).
_MIN_ASCII_SHARE_FOR_CP1252 = 0.8

# Code pages nobody saves a .txt file in on a PC today, which charset-normalizer
# sometimes picks for short Western texts, turning them into nonsense.
_EBCDIC = ["cp037", "cp273", "cp424", "cp500", "cp875", "cp1026", "cp1140"]


class TextLoader(Loader):
    """Reads ``.txt`` and ``.md`` files as a single page numbered 1.

    Markdown is kept as written: its markup is short and retrieval copes with it.
    """

    extensions = frozenset({".txt", ".md", ".markdown"})

    def load(self, path: Path, *, password: str | None, settings: Settings) -> list[Page]:
        """Read a text file; see :meth:`Loader.load`.

        Raises:
            LoaderError: reason ``binary`` for a file that is not text, ``empty``
                for one with only whitespace, ``too_large`` over
                ``max_chars_per_file``, or those of :func:`read_file`.
        """
        del password  # text files have no encryption
        data = read_file(path, settings)
        text = _decode(data, path)
        text = normalize_text(text)
        if not text:
            raise LoaderError(str(path), "file contains only whitespace", reason="empty")
        if len(text) > settings.max_chars_per_file:
            raise LoaderError(
                str(path),
                f"{len(text):,} characters is over the limit of "
                f"{settings.max_chars_per_file:,} (raise max_chars_per_file to load it)",
                reason="too_large",
            )
        return [Page(source_of(path), 1, text, content_hash(data))]


def detect_encoding(data: bytes) -> str | None:
    """Name the encoding ``data`` is most likely written in, or ``None`` for binary.

    The order of tries: a byte-order mark (UTF-8 or UTF-16), strict UTF-8, then
    strict GB18030 and Big5 scored by how Chinese the result reads, Windows-1252 for
    mostly-ASCII text, then charset-normalizer for everything else (Shift-JIS,
    Cyrillic code pages, ...).
    Bytes with a NUL in them and no UTF-16 mark are binary.

    Args:
        data: the file's bytes.

    Returns:
        A Python codec name that decodes ``data`` without errors, or ``None``.

    Example:
        >>> detect_encoding("茶起源於中國".encode("big5"))
        'big5'
        >>> detect_encoding(b"\\x89PNG\\r\\n\\x1a\\n\\x00\\x00") is None
        True
    """
    if data.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if b"\x00" in data:
        return None
    try:
        data.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    chinese = _best_chinese_encoding(data)
    if chinese is not None:
        return chinese
    if _is_mostly_ascii(data) and _decodes(data, "cp1252"):
        return "cp1252"
    from charset_normalizer import from_bytes

    best = from_bytes(data, cp_exclusion=_EBCDIC).best()
    return best.encoding if best is not None else None


def _is_mostly_ascii(data: bytes) -> bool:
    ascii_bytes = sum(1 for byte in data if byte < 0x80)
    return ascii_bytes >= _MIN_ASCII_SHARE_FOR_CP1252 * len(data)


def _decodes(data: bytes, encoding: str) -> bool:
    try:
        data.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


def _decode(data: bytes, path: Path) -> str:
    encoding = detect_encoding(data)
    if encoding is None:
        raise LoaderError(str(path), "binary data, not text", reason="binary")
    try:
        text = data.decode(encoding)
    except (UnicodeDecodeError, LookupError) as exc:
        # Only reachable for a UTF-16 mark followed by bytes that are not UTF-16.
        raise LoaderError(str(path), f"binary data, not text ({exc})", reason="binary") from exc
    if _control_share(text) > _MAX_CONTROL_SHARE:
        raise LoaderError(str(path), "binary data, not text", reason="binary")
    return text


def _control_share(text: str) -> float:
    controls = sum(
        1 for char in text if unicodedata.category(char) == "Cc" and char not in "\t\n\r\x0c"
    )
    return controls / len(text) if text else 0.0


def _best_chinese_encoding(data: bytes) -> str | None:
    """GB18030 or Big5, whichever decodes ``data`` into more plausible Chinese."""
    either = _gb2312_common() | _big5_common()
    candidates: list[tuple[float, float, bool, str]] = []
    for encoding, own_common in (("gb18030", _gb2312_common()), ("big5", _big5_common())):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        # Ties (likely only for a text of two or three characters) go first to the
        # decoding whose characters are common in its own script, then to GB18030,
        # the more widespread of the two.
        candidates.append(
            (
                _chinese_score(text, either),
                _chinese_score(text, own_common),
                encoding == "gb18030",
                encoding,
            )
        )
    if not candidates:
        return None
    score, _, _, encoding = max(candidates)
    return encoding if score >= _MIN_CHINESE_SCORE else None


def _chinese_score(text: str, common: frozenset[str]) -> float:
    """The share of non-ASCII characters that are common Chinese or CJK punctuation.

    A Chinese character with an ASCII letter on both sides ("Br點ke") does not count:
    that is what a Latin-1 "ü" read as GB18030 looks like, never real text.
    """
    non_ascii = plausible = 0
    for i, char in enumerate(text):
        if char.isascii():
            continue
        non_ascii += 1
        if is_cjk_punctuation(char):
            plausible += 1
        elif char in common:
            before = text[i - 1] if i > 0 else ""
            after = text[i + 1] if i + 1 < len(text) else ""
            if not (_is_ascii_letter(before) and _is_ascii_letter(after)):
                plausible += 1
    return plausible / non_ascii if non_ascii else 1.0


def _is_ascii_letter(char: str) -> bool:
    return char.isascii() and char.isalpha()


@functools.cache
def _gb2312_common() -> frozenset[str]:
    """The 3,755 level-1 ("most used") simplified characters of GB2312.

    The encodings themselves rank their characters: GB2312 puts its common ones in
    rows 0xB0-0xD7 and Big5 in 0xA440-0xC67E, so no frequency list has to be shipped.
    """
    return _decode_block("gb2312", range(0xB0, 0xD8), range(0xA1, 0xFF))


@functools.cache
def _big5_common() -> frozenset[str]:
    """The 5,401 frequently used traditional characters of Big5 (0xA440-0xC67E)."""
    trail_bytes = [*range(0x40, 0x7F), *range(0xA1, 0xFF)]
    return _decode_block("big5", range(0xA4, 0xC7), trail_bytes, last=b"\xc6\x7e")


def _decode_block(
    encoding: str, leads: range, trails: range | list[int], last: bytes = b"\xff\xff"
) -> frozenset[str]:
    """The characters of every two-byte code in a block, up to ``last``."""
    chars: set[str] = set()
    for lead in leads:
        for trail in trails:
            code = bytes((lead, trail))
            if code > last:
                break
            try:
                chars.add(code.decode(encoding))
            except UnicodeDecodeError:
                continue
    return frozenset(chars)
