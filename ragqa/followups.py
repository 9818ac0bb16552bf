"""Substitution follow-ups: "那 GPT 呢？" and "What about GPT-2?" ask the last question
again, about a new entity.

Adding the earlier question's terms to such a follow-up, as
:func:`ragqa.conversation.rewrite_question_heuristic` does for "它有多少参数？", sends
retrieval back to the old entity: "那 GPT 呢？（BERT 任务 预训练）" finds BERT. Here the
new entity takes the old one's place in the earlier question instead.

Example:
    >>> substitution_entity("那 GPT 呢？"), substitution_entity("What about its size?")
    ('GPT', None)
    >>> substitute_entity("What are BERT's pre-training tasks?", "GPT").question
    "What are GPT's pre-training tasks?"
    >>> substitute_entity("零样本学习是什么意思？", "少样本").question
    '少样本学习是什么意思？'
"""

from __future__ import annotations

import functools
import logging
import re
from dataclasses import dataclass
from typing import Any

from ragqa.lang import CJK_LETTERS, detect_language

__all__ = ["Substitution", "resolve_pronoun", "substitute_entity", "substitution_entity"]


@dataclass(frozen=True)
class Substitution:
    """``question`` is the earlier question with ``new`` written where ``old`` was."""

    question: str
    old: str
    new: str


# "那 X 呢？", "那么 X 呢", "还有 X 呢", "X 呢？"; "那个 X 呢" points back instead. A
# trailing 的 ("那 GPT 的呢？") belongs to the frame, not to X.
_ZH_FORM = re.compile(
    r"^\s*(?:那麼|那么|還有|还有|至於|至于|那(?![个個些種种樣样裡里边邊]))?\s*"
    r"(?P<entity>[^，,。？?！!；;]+?)\s*的?\s*呢\s*[？?。!！]*\s*$"
)
# An X that refers back or asks something is not a new entity: "那它的作者呢？" and
# "那价格是多少呢？" keep borrowing terms.
_ZH_NOT_ENTITY = re.compile(
    r"[它他她牠其這这那此該该呢是]|什麼|什么|甚麼|哪|誰|谁|幾|几|多少|如何|怎|為何|为何|是否|嗎|吗"
)
# "What about X", "How about for X", "And X?", "and for X?"
_EN_FORM = re.compile(
    r"^\s*(?:(?:and|so|then)\s+)?(?:what|how)\s+about\s+(?P<about>.+?)[\s?.!]*$"
    r"|^\s*and\s+(?P<and>.+?)[\s?.!]*$",
    re.I,
)
_EN_LEAD = re.compile(r"^(?:(?:for|with|in|on|the)\s+)+", re.I)
_EN_NOT_ENTITY = frozenset(
    [
        *("it", "its", "it's", "they", "them", "their", "this", "that", "these", "those"),
        *("he", "him", "his", "she", "her", "one", "ones", "there", "same"),
        *("how", "what", "who", "whom", "whose", "when", "where", "why", "which", "tell"),
        *("is", "are", "was", "were", "do", "does", "did", "can", "could", "will", "would"),
        *("should", "has", "have", "had"),
    ]
)
_EN_MAX_ENTITY_WORDS = 4
_ZH_MAX_ENTITY_CHARS = 16

# A Latin word: letters and digits, with inner "-", "+" and "." (GPT-3, C++, v1.5).
_LATIN_WORD = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9+\-.]*[A-Za-z0-9+])?")
# Gaps that join two capitalised words into one name: "Hugging Face", "University of Chicago".
_NAME_JOINERS = frozenset([" ", " of ", " de "])
_CJK_RUN = re.compile(f"[{CJK_LETTERS}]+")
# Question words, function words and light verbs end a Chinese noun phrase, so
# "任务做预训练" yields the phrases 任务 and 预训练.
_ZH_BOUNDARY = re.compile(
    r"什麼|什么|甚麼|哪裡|哪里|哪個|哪个|哪些|哪|誰|谁|幾|几|多少|如何|為什麼|为什么|怎麼|怎么|"
    r"怎樣|怎样|是否|嗎|吗|呢|請問|请问|是|有|用|做|在|的|了|和|與|与|及|或"
)
# jieba's tags for names of people, places, organisations and other proper nouns.
_PROPER_TAGS = ("nr", "ns", "nt", "nz")


def substitution_entity(question: str) -> str | None:
    """The new entity X of a follow-up shaped "那 X 呢？" or "What about X?", else None.

    Forms: "那 X 呢", "那么 X 呢", "还有 X 呢", "X 呢？"; "What about X", "How about
    (for) X", "And (for) X?". An X that refers back ("那它的作者呢？", "What about
    its size?") or asks a question of its own is not an entity.

    Example:
        >>> substitution_entity("那么少样本学习呢？"), substitution_entity("How about for GPT-2?")
        ('少样本学习', 'GPT-2')
        >>> substitution_entity("那它的作者呢？") is None
        True
    """
    zh = _ZH_FORM.match(question)
    if zh:
        entity = zh.group("entity").strip()
        if len(entity) > _ZH_MAX_ENTITY_CHARS or _ZH_NOT_ENTITY.search(entity):
            return None
        return entity or None
    en = _EN_FORM.match(question)
    if not en:
        return None
    entity = _EN_LEAD.sub("", (en.group("about") or en.group("and")).strip()).strip()
    words = [word.lower() for word in entity.split()]
    if not words or len(words) > _EN_MAX_ENTITY_WORDS:
        return None
    if any(word.strip(",") in _EN_NOT_ENTITY for word in words):
        return None
    return entity


def substitute_entity(question: str, entity: str) -> Substitution | None:
    """``question`` about ``entity`` instead of the entity of the same kind it names.

    A Latin ``entity`` (BERT, GPT-3, LLaMA, Google) replaces a name in ``question``:
    the one sharing the longest prefix with it, else the first. A Chinese one
    replaces the noun phrase sharing the longest suffix, its head, with it (少样本
    for 零样本 in 零样本学习); failing that, a proper noun at the start of the question
    when it is one too (日本 for 台湾 in 台湾的首都是哪里). None when nothing fits,
    or when ``question`` already names ``entity``.

    Args:
        question: a standalone question.
        entity: the new entity, from :func:`substitution_entity`.

    Returns:
        The rewritten question with what it replaced, or None.

    Example:
        >>> substitute_entity("GPT-3 有多少参数？", "GPT-2")
        Substitution(question='GPT-2 有多少参数？', old='GPT-3', new='GPT-2')
        >>> substitute_entity("台湾的首都是哪里？", "人口") is None  # 人口 is no place
        True
    """
    entity = entity.strip()
    if not entity or not question.strip():
        return None
    if _CJK_RUN.search(entity):
        if re.search(r"[A-Za-z]", entity):
            return None  # "GPT 模型": neither a plain name nor a Chinese phrase
        span = _shared_head_span(question, entity) or _proper_subject_span(question, entity)
    elif detect_language(question) == "zh" or _looks_like_name(entity, initial=False):
        span = _name_span(question, entity)
    else:
        span = None  # "What about pricing?" names an aspect, not an entity
    if span is None:
        return None
    start, end = span
    old = question[start:end]
    if old.casefold() == entity.casefold():
        return None
    return Substitution(question[:start] + entity + question[end:], old, entity)


def _looks_like_name(word: str, *, initial: bool) -> bool:
    """GPT-3, T5, LLaMA, iPhone; Google unless it starts the sentence (What, How)."""
    if not any(char.isalpha() for char in word):
        return False
    if any(char.isdigit() for char in word) or any(char.isupper() for char in word[1:]):
        return True
    return word[0].isupper() and not initial and word != "I"


def _name_span(question: str, entity: str) -> tuple[int, int] | None:
    # In Chinese text any Latin word is a name: BERT, transformer, RNN.
    every_word = detect_language(question) == "zh"
    spans: list[tuple[int, int]] = []
    for match in _LATIN_WORD.finditer(question):
        initial = not question[: match.start()].strip(" \"'“‘(")
        if not (every_word or _looks_like_name(match.group(), initial=initial)):
            continue
        if spans and question[spans[-1][1] : match.start()] in _NAME_JOINERS:
            spans[-1] = (spans[-1][0], match.end())
        else:
            spans.append(match.span())
    # "And BERT's size?" after "What is BERT?" asks about the same entity.
    wanted = {entity.casefold(), *(word.casefold() for word in _LATIN_WORD.findall(entity))}
    if not spans or any(question[s:e].casefold() in wanted for s, e in spans):
        return None
    # GPT-2 replaces GPT-3 rather than BERT in "Is BERT better than GPT-3?".
    return max(spans, key=lambda span: _common_prefix(question[span[0] : span[1]], entity))


def _shared_head_span(question: str, entity: str) -> tuple[int, int] | None:
    """The span of the noun phrase sharing the longest suffix with ``entity``.

    The replaced span is as long as ``entity``, so 少样本 replaces 零样本 and keeps 学习,
    within one phrase; a phrase that contains all of ``entity`` (无监督学习 for 监督学习)
    is replaced whole.
    """
    best: tuple[int, int] | None = None
    best_shared = 0
    for start, end in _zh_phrases(question):
        for stop in range(start + 1, end + 1):
            shared = _common_suffix(question[start:stop], entity)
            if shared <= best_shared or question[start:stop] == entity:
                continue
            first = start if shared == len(entity) else max(start, stop - len(entity))
            best, best_shared = (first, stop), shared
    return best


def _zh_phrases(text: str) -> list[tuple[int, int]]:
    phrases = []
    for run in _CJK_RUN.finditer(text):
        cut = run.start()
        for boundary in _ZH_BOUNDARY.finditer(text, run.start(), run.end()):
            if boundary.start() > cut:
                phrases.append((cut, boundary.start()))
            cut = boundary.end()
        if run.end() > cut:
            phrases.append((cut, run.end()))
    return phrases


def _proper_subject_span(question: str, entity: str) -> tuple[int, int] | None:
    # Only proper nouns: an aspect such as 人口 or 历史 in place of the subject
    # ("历史起源于哪个国家？") would lose the subject, where borrowing terms keeps it.
    if not all(flag.startswith(_PROPER_TAGS) for _, flag in _tagged(entity)):
        return None
    offset = 0
    for word, flag in _tagged(question):
        if not word.strip() or word in ("请问", "請問"):
            offset += len(word)
            continue
        return (offset, offset + len(word)) if flag.startswith(_PROPER_TAGS) else None
    return None


def _tagged(text: str) -> list[tuple[str, str]]:
    return [(pair.word, pair.flag) for pair in _pos_tagger().cut(text)]


@functools.cache
def _pos_tagger() -> Any:
    """jieba's part-of-speech tagger, its dictionary loaded on first use (about a second).

    Only a Chinese entity that shares no head with the question gets here, so
    most conversations never pay for it.
    """
    import jieba
    import jieba.posseg

    jieba.setLogLevel(logging.WARNING)  # no "Building prefix dict" chatter
    return jieba.posseg.dt


def _common_prefix(a: str, b: str) -> int:
    a, b = a.casefold(), b.casefold()
    length = 0
    while length < min(len(a), len(b)) and a[length] == b[length]:
        length += 1
    return length


def _common_suffix(a: str, b: str) -> int:
    return _common_prefix(a[::-1], b[::-1])


# A pronoun that stands for what the earlier question was about: "那它有什么毛病？".
_ZH_PRONOUN = re.compile(r"它们|它們|它|牠")
# The opening words of a follow-up that only say "and now": 那, 那么, 那要是.
_ZH_OPENING = re.compile(r"^\s*(?:那么|那麼|那|还有|還有)\s*")
# What an earlier question is about: the phrase it opens with, up to its verb or
# question word ("循环神经网络 | 为啥能记住…", "GPT-3 | 是哪一年出来的", "RNN | 比 MLP…").
_ZH_SUBJECT = re.compile(
    r"^\s*(?P<subject>[^，,。？?！!：:；;（(]{2,16}?)\s*"
    r"(?:是|为啥|為啥|为什么|為什麼|为何|為何|能|会|會|不|有|比|的|靠|用|在|怎么|怎麼|如何|跟|和|与|與|要|属于|屬於)"
)


def resolve_pronoun(question: str, earlier: list[str]) -> str | None:
    """A Chinese follow-up with 它 written about what the earlier question was
    about, or None when it has no 它 or no earlier question names a subject.

    Only the subject takes the pronoun's place; what the earlier question asked
    ("哪一年") is left out, since the follow-up asks something else.

    Example:
        >>> resolve_pronoun("那它有什么毛病？", ["循环神经网络为啥能记住前面的信息？"])
        '循环神经网络有什么毛病？'
        >>> resolve_pronoun("那它是哪家公司发布的？", ["GPT-3 是哪一年出来的？"])
        'GPT-3 是哪家公司发布的？'
        >>> resolve_pronoun("那它的短板呢？", ["RNN 比 MLP 强在哪？"]), resolve_pronoun("它呢？", [])
        ('RNN 的短板呢？', None)
    """
    pronoun = _ZH_PRONOUN.search(question)
    if pronoun is None or detect_language(question) != "zh":
        return None
    for text in reversed(earlier):
        if _ZH_PRONOUN.search(text) or _ZH_OPENING.match(text):
            continue  # itself a follow-up: its subject is further back
        match = _ZH_SUBJECT.match(text)
        if match is None:
            continue
        subject = match.group("subject").strip()
        before = _ZH_OPENING.sub("", question[: pronoun.start()], count=1)
        after = question[pronoun.end() :]
        # Latin names keep a space before the Chinese that follows ("GPT-3 是").
        gap = " " if subject[-1].isascii() and after[:1] and not after[:1].isascii() else ""
        return f"{before}{subject}{gap}{after.lstrip()}"
    return None
