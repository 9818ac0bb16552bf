"""Follow-up questions: keep a bounded history and rewrite a follow-up to stand alone.

A follow-up such as "and how many parameters does it have?" or "它有多少參數？" finds
nothing by itself: "it" is not in any document. Before retrieval it is rewritten
into a standalone query from the chat history, by the chat model when one is
configured, otherwise by a heuristic. The heuristic puts the new entity of a
substitution follow-up ("那 GPT 呢？", "What about GPT-2?") in the old one's place in
the earlier question (see :mod:`ragqa.followups`), and adds the salient terms of
the previous questions to any other question that looks like a follow-up.

Example:
    >>> history = [Turn("user", "What is BERT?"), Turn("assistant", "A language model [1].")]
    >>> rewrite_question_heuristic("And how many parameters does it have?", history)
    'And how many parameters does it have? (BERT)'
    >>> rewrite_question_heuristic("What about GPT-2?", history)
    'What is GPT-2?'
    >>> rewrite_question_heuristic("Who wrote Hamlet?", history)
    'Who wrote Hamlet?'
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ragqa.errors import ConfigError, LLMError
from ragqa.followups import resolve_pronoun, substitute_entity, substitution_entity
from ragqa.lang import detect_language, is_cjk
from ragqa.prompting import build_rewrite_messages

if TYPE_CHECKING:
    from ragqa.config import Settings

__all__ = [
    "Turn",
    "bound_history",
    "is_follow_up",
    "rewrite_question",
    "rewrite_question_heuristic",
]

logger = logging.getLogger(__name__)

ROLES = ("user", "assistant")


@dataclass(frozen=True)
class Turn:
    """One message of a conversation: ``role`` is ``"user"`` or ``"assistant"``."""

    role: str
    content: str

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ConfigError(f"a turn's role must be 'user' or 'assistant', not {self.role!r}")


def bound_history(history: Sequence[Turn], max_turns: int) -> tuple[Turn, ...]:
    """The last ``max_turns`` turns (messages), oldest first; none when ``max_turns <= 0``.

    Example:
        >>> turns = [Turn("user", str(i)) for i in range(5)]
        >>> [t.content for t in bound_history(turns, 2)]
        ['3', '4']
    """
    if max_turns <= 0:
        return ()
    return tuple(history[-max_turns:])


# Words that point back into the conversation, or a question that starts mid-thought.
_EN_REFERRING = frozenset(
    [
        "it",
        "its",
        "it's",
        "they",
        "them",
        "their",
        "theirs",
        "that",
        "this",
        "those",
        "these",
        "he",
        "him",
        "his",
        "she",
        "her",
        "hers",
        "one",
        "ones",
        "there",
        "then",
        "such",
        "same",
        "former",
        "latter",
    ]
)
_EN_CONTINUATION = re.compile(r"^\s*(?:and|also|but|so|or|what about|how about|then)\b", re.I)
_ZH_REFERRING = re.compile(
    r"[它他她牠其這这那此該该彼]|上述|前者|後者|后者|同樣|同样"
    # "第二步用的是什么数据？" after "训练分成哪两个步骤？": an ordinal points back.
    r"|第[一二三四五六七八九十两兩\d]{1,3}(?:步|个|個|点|點|种|種|条|條|阶段|階段|部分)"
    r"|[上下]一[步个個]"
)
_EN_ORDINAL = re.compile(
    r"\bthe\s+(?:first|second|third|fourth|next|last|previous|other)\s+"
    r"(?:one|ones|step|steps|part|parts|stage|stages|item|items|point|points)\b",
    re.I,
)
_ZH_CONTINUATION = re.compile(
    r"^\s*(?:那麼|那么|還有|还有|而且|另外|至於|至于|那|而)|呢\s*[？?]?\s*$"
)

# Question words and function words: never salient.
_EN_STOP = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "been",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "for",
        "from",
        "had",
        "has",
        "have",
        "how",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "so",
        "that",
        "the",
        "their",
        "there",
        "these",
        "they",
        "this",
        "those",
        "to",
        "was",
        "were",
        "what",
        "when",
        "where",
        "which",
        "who",
        "whom",
        "whose",
        "why",
        "will",
        "with",
        "would",
        "about",
        "also",
        "many",
        "much",
        "more",
        "most",
        "then",
        "than",
        "you",
        "your",
        "i",
        "me",
        "my",
        "we",
        "our",
        "he",
        "she",
        "him",
        "her",
        "his",
        "them",
        "one",
        "ones",
        "tell",
        "please",
        "explain",
        "describe",
        "give",
    ]
)
_ZH_STOP = re.compile(
    r"什麼|什么|甚麼|哪裡|哪里|哪個|哪个|哪些|哪一|哪|誰|谁|幾|几|多少|如何|為什麼|为什么|"
    r"怎麼|怎么|怎樣|怎样|是否|有沒有|有没有|嗎|吗|呢|請問|请问|是|的|了|和|與|与|及|它|他|她|"
    r"這|这|那|其|此|該|该|個|个|些|可以"
)
_EN_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'\-]*")
_CJK_RUN_OR_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'\-]*|[^\W\d_]+")


def is_follow_up(question: str) -> bool:
    """True when ``question`` seems to lean on the conversation before it.

    It does when it refers back (it, they, that; 它, 這, 那), starts mid-thought
    (and, what about; 那麼, 還有; ends in 呢), or is very short.

    Example:
        >>> is_follow_up("and how many parameters does it have?"), is_follow_up("它有多少參數？")
        (True, True)
        >>> is_follow_up("When was the University of Chicago founded?")
        False
    """
    if detect_language(question) == "zh":
        if _ZH_REFERRING.search(question) or _ZH_CONTINUATION.search(question):
            return True
        content = _ZH_STOP.sub("", "".join(ch for ch in question if is_cjk(ch)))
        return len(content) <= 2
    words = [w.lower() for w in _EN_WORD.findall(question)]
    if _EN_CONTINUATION.search(question) or _EN_ORDINAL.search(question):
        return True
    if any(w in _EN_REFERRING for w in words):
        return True
    return sum(1 for w in words if w not in _EN_STOP) <= 1


def rewrite_question_heuristic(
    question: str, history: Sequence[Turn], *, max_user_turns: int = 3
) -> str:
    """Rewrite a follow-up from the earlier questions; return others unchanged.

    A Chinese follow-up with 它 ("那它有什么毛病？") gets the earlier question's
    subject in its place (:func:`ragqa.followups.resolve_pronoun`). A substitution
    follow-up ("那 GPT 呢？", "What about GPT-2?") becomes the
    question it follows with the new entity in place of the old one; when that
    question was one too, the thread's first question takes each new entity in
    turn. Other follow-ups, and substitutions without a matching entity, get the
    salient terms of the most recent user turn and, when that was a follow-up too,
    of the turns before it back to the question that started the thread (at most
    ``max_user_turns``); terms the question already has are skipped.

    Args:
        question: the new question.
        history: earlier turns, oldest first.
        max_user_turns: how many earlier questions may lend terms.

    Returns:
        ``question`` itself, the earlier question about the new entity, or
        ``question`` followed by the borrowed terms in parentheses (full-width ones
        for Chinese).

    Example:
        >>> history = [Turn("user", "台灣的首都是哪裡？"), Turn("assistant", "台北 [1]。")]
        >>> rewrite_question_heuristic("那人口呢？", history)
        '那人口呢？（台灣 首都）'
        >>> history += [Turn("user", "那日本呢？"), Turn("assistant", "東京 [2]。")]
        >>> rewrite_question_heuristic("那韓國呢？", history)
        '韓國的首都是哪裡？'
    """
    if not is_follow_up(question):
        return question
    earlier = [turn.content for turn in history if turn.role == "user"]
    if substitution_entity(question) is None:
        # "那它有什么毛病？" after "循环神经网络为啥能记住…？": the subject in the
        # pronoun's place, not the earlier question's other words ("记住 信息"),
        # which would send retrieval back to what was already answered.
        resolved = resolve_pronoun(question, earlier[-max_user_turns:])
        if resolved is not None:
            return resolved
        return _borrow_terms(question, earlier, max_user_turns)
    # The thread: the substitution follow-ups before this one, back to the
    # question they all vary (standalone, or a follow-up rewritten by borrowing).
    first = len(earlier)
    while first > 0 and _substitution(earlier[first - 1]) is not None:
        first -= 1
    if first == 0:
        return _borrow_terms(question, earlier, max_user_turns)
    standalone = _borrow_terms(earlier[first - 1], earlier[: first - 1], max_user_turns)
    for index in range(first, len(earlier) + 1):
        text = earlier[index] if index < len(earlier) else question
        swapped = substitute_entity(standalone, substitution_entity(text) or "")
        # A step that finds no entity to replace ("參數量呢？" after "BERT 是什麼模型？")
        # borrows terms, and the later steps substitute into that.
        standalone = (
            swapped.question if swapped else _borrow_terms(text, earlier[:index], max_user_turns)
        )
    return standalone


def _substitution(question: str) -> str | None:
    """The new entity of a substitution follow-up, else None."""
    return substitution_entity(question) if is_follow_up(question) else None


def _borrow_terms(question: str, earlier: Sequence[str], max_user_turns: int) -> str:
    """``question`` with the thread's salient terms added, when it is a follow-up."""
    if not is_follow_up(question):
        return question
    # Walk back through follow-ups to the question that started the thread: its
    # terms come first, then those the follow-ups added.
    thread: list[str] = []
    for text in list(reversed(earlier))[:max_user_turns]:
        thread.insert(0, text)
        if not is_follow_up(text):
            break
    borrowed: list[str] = []
    lowered = question.lower()
    for text in thread:
        for term in _salient_terms(text):
            if term.lower() not in lowered and term not in borrowed:
                borrowed.append(term)
    if not borrowed:
        return question
    if detect_language(question) == "zh":
        return f"{question.strip()}（{' '.join(borrowed)}）"
    return f"{question.strip()} ({' '.join(borrowed)})"


def rewrite_question(
    question: str,
    history: Sequence[Turn],
    *,
    settings: Settings,
    chat_model: Any = None,
) -> str:
    """Turn a follow-up into a standalone query for retrieval.

    With no earlier user turn the question is returned as it is. With a chat model
    (given, or configured in ``settings.llm``) the model rewrites it from the last
    ``settings.history_turns`` turns; an unusable reply (empty, rambling, the
    follow-up handed back unchanged, or without the new entity of a substitution
    follow-up such as "那 GPT 呢？") or an
    unreachable model falls back to :func:`rewrite_question_heuristic`, so that
    retrieval still runs and the answer step reports the model's error. The
    extractive default uses the heuristic.

    Args:
        question: the new question.
        history: earlier turns, oldest first.
        settings: supplies ``history_turns`` and the backend choice.
        chat_model: a :class:`~ragqa.llm.ChatBackend` or a LangChain chat model to
            use instead of the configured one.

    Returns:
        The standalone query.

    Example:
        >>> from ragqa.config import Settings
        >>> h = [Turn("user", "What is BERT?"), Turn("assistant", "A model [1].")]
        >>> rewrite_question("What about its size?", h, settings=Settings())
        'What about its size? (BERT)'
    """
    history = bound_history(history, settings.history_turns)
    if not any(turn.role == "user" for turn in history):
        return question
    if chat_model is None and settings.llm != "extractive":
        from ragqa.llm import get_chat_model

        chat_model = get_chat_model(settings)
    if chat_model is None:
        return rewrite_question_heuristic(question, history)
    from ragqa.llm import as_chat_backend

    try:
        reply = as_chat_backend(chat_model).complete(build_rewrite_messages(question, history))
    except LLMError as error:
        logger.warning("question rewrite fell back to the heuristic: %s", error)
        return rewrite_question_heuristic(question, history)
    rewritten = _clean_rewrite(reply)
    if not rewritten or len(rewritten) > max(200, 4 * len(question)):
        return rewrite_question_heuristic(question, history)
    if is_follow_up(rewritten) and _same_question(rewritten, question):
        # Small models (Qwen2.5 0.5B) often hand "那 GPT 呢？" back as it is: still a
        # follow-up, which alone retrieves nothing about pre-training.
        logger.info("question rewrite %r left the follow-up as it was", rewritten)
        return rewrite_question_heuristic(question, history)
    entity = _substitution(question)
    # Small models often answer "那 GPT 呢？" by repeating the question about BERT,
    # which would retrieve BERT's passages again: a rewrite must keep the new entity.
    if entity is not None and not _mentions(rewritten, entity):
        logger.info("question rewrite %r dropped %r; used the heuristic", rewritten, entity)
        return rewrite_question_heuristic(question, history)
    return rewritten


def _same_question(a: str, b: str) -> bool:
    """True when ``a`` and ``b`` differ only in spacing, case and punctuation."""

    def key(text: str) -> str:
        return "".join(ch for ch in text.casefold() if ch.isalnum())

    return key(a) == key(b)


def _mentions(text: str, entity: str) -> bool:
    """True when ``entity`` occurs in ``text``, ignoring case and spacing."""
    return "".join(entity.split()).casefold() in "".join(text.split()).casefold()


def _clean_rewrite(reply: str) -> str:
    # Small models like to prefix a label or wrap the question in quotes.
    lines = [line.strip() for line in reply.strip().splitlines() if line.strip()]
    if not lines:
        return ""
    text = re.sub(
        r"^(?:standalone question|rewritten question|question|獨立問題|独立问题|問題|问题)\s*[:：]\s*",
        "",
        lines[0],
        flags=re.I,
    )
    return text.strip().strip("\"'“”「」『』").strip()


def _salient_terms(text: str) -> list[str]:
    """Content words of a question, in order, in their original form."""
    if detect_language(text) == "zh":
        terms = []
        for run in _CJK_RUN_OR_WORD.findall(text):
            if run[0].isascii():
                if run.lower() not in _EN_STOP:
                    terms.append(run)
                continue
            # Cutting out question and function words leaves the content as pieces.
            terms.extend(piece for piece in _ZH_STOP.split(run) if len(piece) >= 2)
        return terms
    return [word for word in _EN_WORD.findall(text) if word.lower() not in _EN_STOP]
