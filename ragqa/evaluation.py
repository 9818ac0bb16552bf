"""Measure retrieval and answers against SQuAD-format question sets.

Retrieval is scored on the ranked list of *paragraph ids* a search returned:
several chunks can come from one paragraph, so the list is first deduplicated,
keeping each paragraph at its best rank, and ranks count paragraphs, not chunks.
Each question has exactly one relevant paragraph (its own), so recall@k is a hit
rate, MRR is ``1 / rank`` and nDCG is ``1 / log2(rank + 1)`` (the ideal DCG is 1).

Answers are scored against every gold answer and the best score is kept, as the
SQuAD script does. English is normalised the SQuAD way (lowercase, no punctuation,
no articles a/an/the, single spaces) and scored by words. Chinese is scored by
characters: each CJK character is one token, and a Latin word or number inside
Chinese text stays one token.

Example:
    >>> recall_at_k(["p3", "p3", "p7"], "p7", k=2)  # chunks of p3 count once
    1.0
    >>> round(f1("the Eiffel tower", ["Eiffel Tower in Paris"]), 3)  # 2*(1*.5)/1.5
    0.667
    >>> f1("台北市", ["臺北"])  # 北 in common: P=1/3, R=1/2
    0.4
"""

from __future__ import annotations

import json
import math
import re
import string
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ragqa.errors import LoaderError
from ragqa.lang import is_cjk

__all__ = [
    "SquadParagraph",
    "SquadQuestion",
    "SquadSet",
    "answer_metrics",
    "answer_tokens",
    "bleu",
    "exact_match",
    "f1",
    "load_squad",
    "mrr_at_k",
    "ndcg_at_k",
    "recall_at_k",
    "retrieval_metrics",
    "rouge_l",
]


# ----------------------------------------------------------------- SQuAD files


@dataclass(frozen=True)
class SquadParagraph:
    """One context paragraph: the unit a retrieval question is judged against."""

    id: str
    title: str
    context: str


@dataclass(frozen=True)
class SquadQuestion:
    """One question, the id of the paragraph that answers it, and its gold answers."""

    id: str
    question: str
    paragraph_id: str
    answers: tuple[str, ...]


@dataclass(frozen=True)
class SquadSet:
    """The paragraphs and questions of one SQuAD-format file."""

    paragraphs: tuple[SquadParagraph, ...]
    questions: tuple[SquadQuestion, ...]


def load_squad(path: Path) -> SquadSet:
    """Read a SQuAD v1/v2-format JSON file (SQuAD, DRCD, CMRC, ...).

    A paragraph's id is its own ``id`` field when it has one (DRCD does) and
    ``"<article>-<paragraph>"``, both counted from 0, when not (SQuAD). SQuAD 2.0
    questions without an answer get an empty answer tuple.

    Args:
        path: the JSON file.

    Returns:
        The paragraphs in file order, and the questions in file order.

    Raises:
        LoaderError: the file cannot be read, is not JSON, or is not in SQuAD
            format (the message names the first offending entry).

    Example:
        >>> squad = load_squad(Path("dev-v1.1.json"))  # doctest: +SKIP
        >>> squad.questions[0].paragraph_id, squad.questions[0].answers  # doctest: +SKIP
        ('0-0', ('Denver Broncos', 'Denver Broncos', 'Denver Broncos'))
    """
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise LoaderError(str(path), f"cannot read it ({exc.strerror or exc})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LoaderError(str(path), f"not a JSON file ({exc})", reason="unsupported") from None
    try:
        return _parse_squad(raw)
    except _NotSquad as exc:
        raise LoaderError(
            str(path),
            f"not in SQuAD format: {exc} (expected "
            '{"data": [{"title", "paragraphs": [{"context", "qas": [...]}]}]})',
            reason="unsupported",
        ) from None


class _NotSquad(Exception):
    pass


def _parse_squad(raw: Any) -> SquadSet:
    if not isinstance(raw, dict) or not isinstance(raw.get("data"), list):
        raise _NotSquad('the top level has no "data" list')
    paragraphs: list[SquadParagraph] = []
    questions: list[SquadQuestion] = []
    paragraph_ids: set[str] = set()
    question_ids: set[str] = set()
    for a, article in enumerate(raw["data"]):
        where = f"data[{a}]"
        if not isinstance(article, dict) or not isinstance(article.get("paragraphs"), list):
            raise _NotSquad(f'{where} has no "paragraphs" list')
        title = str(article.get("title", ""))
        for p, paragraph in enumerate(article["paragraphs"]):
            where = f"data[{a}].paragraphs[{p}]"
            if not isinstance(paragraph, dict) or not isinstance(paragraph.get("context"), str):
                raise _NotSquad(f'{where} has no "context" text')
            if not isinstance(paragraph.get("qas"), list):
                raise _NotSquad(f'{where} has no "qas" list')
            paragraph_id = str(paragraph.get("id", f"{a}-{p}"))
            if paragraph_id in paragraph_ids:
                raise _NotSquad(f"{where} repeats the paragraph id {paragraph_id!r}")
            paragraph_ids.add(paragraph_id)
            paragraphs.append(SquadParagraph(paragraph_id, title, paragraph["context"]))
            for q, qa in enumerate(paragraph["qas"]):
                questions.append(_parse_question(qa, f"{where}.qas[{q}]", paragraph_id))
                if questions[-1].id in question_ids:
                    raise _NotSquad(f"{where}.qas[{q}] repeats the question id {qa['id']!r}")
                question_ids.add(questions[-1].id)
    return SquadSet(tuple(paragraphs), tuple(questions))


def _parse_question(qa: Any, where: str, paragraph_id: str) -> SquadQuestion:
    if not isinstance(qa, dict) or not isinstance(qa.get("question"), str) or "id" not in qa:
        raise _NotSquad(f'{where} needs an "id" and a "question" text')
    answers = qa.get("answers", [])
    if not isinstance(answers, list) or not all(
        isinstance(answer, dict) and isinstance(answer.get("text"), str) for answer in answers
    ):
        raise _NotSquad(f'{where} has "answers" without "text"')
    return SquadQuestion(
        str(qa["id"]), qa["question"], paragraph_id, tuple(ans["text"] for ans in answers)
    )


# ---------------------------------------------------------------- retrieval


def _rank(ranked: Sequence[str], gold: str) -> int | None:
    """The 1-based rank of ``gold`` among the distinct ids of ``ranked``."""
    seen: set[str] = set()
    for item in ranked:
        if item in seen:
            continue
        seen.add(item)
        if item == gold:
            return len(seen)
    return None


def recall_at_k(ranked: Sequence[str], gold: str, k: int) -> float:
    """1.0 if the gold paragraph is among the first ``k`` distinct paragraphs, else 0.0.

    Example:
        >>> recall_at_k(["a", "b", "c"], "c", k=2)
        0.0
    """
    rank = _rank(ranked, gold)
    return 1.0 if rank is not None and rank <= k else 0.0


def mrr_at_k(ranked: Sequence[str], gold: str, k: int) -> float:
    """Reciprocal rank of the gold paragraph, 0.0 when it is not in the first ``k``.

    Example:
        >>> mrr_at_k(["a", "a", "b"], "b", k=10)  # "a" twice is one paragraph
        0.5
    """
    rank = _rank(ranked, gold)
    return 1.0 / rank if rank is not None and rank <= k else 0.0


def ndcg_at_k(ranked: Sequence[str], gold: str, k: int) -> float:
    """nDCG with one relevant paragraph: ``1 / log2(rank + 1)``, 0.0 beyond ``k``.

    Example:
        >>> ndcg_at_k(["a", "b", "c"], "c", k=10)  # 1 / log2(4)
        0.5
    """
    rank = _rank(ranked, gold)
    return 1.0 / math.log2(rank + 1) if rank is not None and rank <= k else 0.0


def retrieval_metrics(
    ranked: Sequence[Sequence[str]], gold: Sequence[str], latencies_ms: Sequence[float]
) -> dict[str, float]:
    """Average retrieval quality and latency over a set of questions.

    Args:
        ranked: for each question, the paragraph ids of its results, best first
            (repeats allowed: one per chunk).
        gold: for each question, the id of its one relevant paragraph.
        latencies_ms: for each question, how long its search took.

    Returns:
        ``recall@1``, ``recall@5``, ``recall@10``, ``mrr@10`` and ``ndcg@10``
        averaged over questions, ``questions`` (the count), and
        ``latency_ms_p50`` / ``latency_ms_p95`` (percentiles with linear
        interpolation between the two nearest latencies, NumPy's default).

    Raises:
        ValueError: no questions, or the three sequences differ in length.

    Example:
        >>> m = retrieval_metrics([["a", "b"], ["c", "d"]], ["b", "x"], [3.0, 5.0])
        >>> m["recall@5"], m["mrr@10"], m["latency_ms_p50"]
        (0.5, 0.25, 4.0)
    """
    if not gold:
        raise ValueError("no questions to score")
    if not len(ranked) == len(gold) == len(latencies_ms):
        raise ValueError(
            f"{len(ranked)} rankings, {len(gold)} gold ids and {len(latencies_ms)} latencies"
        )
    pairs = list(zip(ranked, gold, strict=True))
    latencies = np.asarray(latencies_ms, dtype=np.float64)
    return {
        "recall@1": _mean(recall_at_k(r, g, 1) for r, g in pairs),
        "recall@5": _mean(recall_at_k(r, g, 5) for r, g in pairs),
        "recall@10": _mean(recall_at_k(r, g, 10) for r, g in pairs),
        "mrr@10": _mean(mrr_at_k(r, g, 10) for r, g in pairs),
        "ndcg@10": _mean(ndcg_at_k(r, g, 10) for r, g in pairs),
        "questions": float(len(pairs)),
        "latency_ms_p50": float(np.percentile(latencies, 50)),
        "latency_ms_p95": float(np.percentile(latencies, 95)),
    }


def _mean(values: Any) -> float:
    values = list(values)
    return float(sum(values) / len(values))


# ------------------------------------------------------------------ answers

_ARTICLES = re.compile(r"\b(a|an|the)\b")


def _is_punctuation(char: str) -> bool:
    # ASCII punctuation as SQuAD strips it ($, +, ^ ... included), plus every
    # Unicode punctuation character, which covers 。，、「」《》 and full-width forms.
    return char in string.punctuation or unicodedata.category(char).startswith("P")


def answer_tokens(text: str) -> list[str]:
    """Normalise an answer and split it into the tokens the answer metrics count.

    Lowercase, delete punctuation, drop the English articles a/an/the, then make
    every CJK character a token of its own and every other run of letters or
    digits a word token.

    Example:
        >>> answer_tokens("The Eiffel Tower!")
        ['eiffel', 'tower']
        >>> answer_tokens("在 2023 年，iPhone 發表")
        ['在', '2023', '年', 'iphone', '發', '表']
    """
    text = "".join(c for c in text.lower() if not _is_punctuation(c))
    text = _ARTICLES.sub(" ", text)
    tokens: list[str] = []
    for piece in text.split():
        word = ""
        for char in piece:
            if is_cjk(char):
                if word:
                    tokens.append(word)
                    word = ""
                tokens.append(char)
            else:
                word += char
        if word:
            tokens.append(word)
    return tokens


def _best(metric: Any, prediction: str, golds: Sequence[str]) -> float:
    # A question without a gold answer (SQuAD 2.0) expects an empty prediction.
    predicted = answer_tokens(prediction)
    return max(metric(predicted, answer_tokens(gold)) for gold in (golds or [""]))


def _both_empty_or_zero(predicted: list[str], gold: list[str]) -> float | None:
    # SQuAD 2.0's convention: empty against empty is a perfect match.
    if not predicted or not gold:
        return float(predicted == gold)
    return None


def exact_match(prediction: str, golds: Sequence[str]) -> float:
    """1.0 if the prediction equals some gold answer after normalisation.

    Example:
        >>> exact_match("the Eiffel Tower.", ["Eiffel Tower"])
        1.0
    """
    return _best(lambda p, g: float(p == g), prediction, golds)


def _f1(predicted: list[str], gold: list[str]) -> float:
    empty = _both_empty_or_zero(predicted, gold)
    if empty is not None:
        return empty
    common = sum((Counter(predicted) & Counter(gold)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(gold)
    return 2 * precision * recall / (precision + recall)


def f1(prediction: str, golds: Sequence[str]) -> float:
    """SQuAD token F1 (bag of tokens), the best over the gold answers.

    Example:
        >>> f1("Paris France", ["Paris"])  # P=1/2, R=1: 2*.5/1.5
        0.6666666666666666
    """
    return _best(_f1, prediction, golds)


def _lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b, start=1):
            current.append(previous[j - 1] + 1 if x == y else max(previous[j], current[-1]))
        previous = current
    return previous[-1]


def _rouge_l(predicted: list[str], gold: list[str]) -> float:
    empty = _both_empty_or_zero(predicted, gold)
    if empty is not None:
        return empty
    lcs = _lcs_length(predicted, gold)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(predicted), lcs / len(gold)
    return 2 * precision * recall / (precision + recall)


def rouge_l(prediction: str, golds: Sequence[str]) -> float:
    """ROUGE-L F1: the longest common subsequence of tokens, as an F-measure.

    Precision is ``LCS / len(prediction)``, recall ``LCS / len(gold)``, and they
    are combined with equal weight (beta = 1, as the ``rouge-score`` package does).

    Example:
        >>> rouge_l("tower eiffel", ["eiffel tower"])  # LCS=1: P=R=1/2
        0.5
    """
    return _best(_rouge_l, prediction, golds)


def _ngrams(tokens: Sequence[str], n: int) -> Counter[tuple[str, ...]]:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def _bleu(predicted: list[str], gold: list[str], max_order: int = 4) -> float:
    empty = _both_empty_or_zero(predicted, gold)
    if empty is not None:
        return empty
    # Effective order: a 2-token answer has no 3- or 4-grams, and counting those
    # orders as misses would cap a perfect short answer far below 1.
    orders = min(max_order, len(predicted))
    log_precision = 0.0
    for n in range(1, orders + 1):
        candidates = _ngrams(predicted, n)
        matches = sum((candidates & _ngrams(gold, n)).values())
        if n == 1 and matches == 0:
            return 0.0  # no word in common: nothing to smooth (as NLTK does)
        # Chen & Cherry (2014) smoothing method 1: a zero count becomes 0.1.
        log_precision += math.log((matches or 0.1) / sum(candidates.values()))
    brevity = min(1.0, math.exp(1 - len(gold) / len(predicted)))
    return brevity * math.exp(log_precision / orders)


def bleu(prediction: str, golds: Sequence[str]) -> float:
    """Sentence BLEU against each gold answer separately; the best is kept.

    Up to 4-gram precision with uniform weights, but only over the orders the
    prediction has (a 2-token prediction uses 1- and 2-grams, like sacrebleu's
    ``effective_order``), with smoothing method 1 of Chen & Cherry (2014): an
    order with no matching n-gram counts 0.1 matches instead of 0. No unigram
    in common scores 0. The brevity penalty is ``exp(1 - len(gold) /
    len(prediction))`` when the prediction is shorter than the gold answer.
    Sentence-level, not corpus-level: :func:`answer_metrics` averages it.

    Example:
        >>> bleu("eiffel tower", ["eiffel tower"])
        1.0
        >>> round(bleu("eiffel", ["eiffel tower"]), 4)  # p1=1, BP=exp(1-2/1)
        0.3679
    """
    return _best(_bleu, prediction, golds)


def answer_metrics(predictions: Sequence[str], golds: Sequence[Sequence[str]]) -> dict[str, float]:
    """Average answer quality over a set of questions.

    Args:
        predictions: the answer given to each question.
        golds: for each question, its acceptable answers.

    Returns:
        ``exact_match``, ``f1``, ``rouge_l`` and ``bleu``, each averaged over the
        questions, between 0 and 1.

    Raises:
        ValueError: no questions, or the two sequences differ in length.

    Example:
        >>> answer_metrics(["Paris", "blue"], [["Paris"], ["red"]])["exact_match"]
        0.5
    """
    if not predictions:
        raise ValueError("no answers to score")
    if len(predictions) != len(golds):
        raise ValueError(f"{len(predictions)} predictions but {len(golds)} gold answer lists")
    pairs = list(zip(predictions, golds, strict=True))
    return {
        "exact_match": _mean(exact_match(p, g) for p, g in pairs),
        "f1": _mean(f1(p, g) for p, g in pairs),
        "rouge_l": _mean(rouge_l(p, g) for p, g in pairs),
        "bleu": _mean(bleu(p, g) for p, g in pairs),
    }
