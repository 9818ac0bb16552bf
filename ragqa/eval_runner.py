"""Run an evaluation: index a SQuAD-format set, ask every question, score the results.

The metrics themselves live in :mod:`ragqa.evaluation`; this module drives a real
:class:`~ragqa.KnowledgeBase` through them, the same code path users search with.
Each paragraph becomes one document, named ``<dataset stem>#<paragraph id>``, so a
hit's source says which paragraph its chunk was cut from.

Example:
    >>> metrics = run_eval(Path("squad.json"), settings=Settings())  # doctest: +SKIP
    >>> metrics["recall@5"]                                         # doctest: +SKIP
    0.96
"""

from __future__ import annotations

import hashlib
import random
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from ragqa.config import Settings
from ragqa.evaluation import SquadQuestion, answer_metrics, load_squad, retrieval_metrics
from ragqa.knowledge_base import IngestProgress, KnowledgeBase

__all__ = ["SUBSETS", "default_eval_kb_dir", "in_subset", "run_eval"]

# "tune" and "holdout" split the questions in two by a hash of their id, so that
# parameters can be chosen on one half and checked on the other.
SUBSETS = ("all", "tune", "holdout")


def in_subset(question_id: str, subset: str) -> bool:
    """Whether a question belongs to ``subset`` (a stable 50/50 split by id).

    Example:
        >>> in_subset("q1", "all"), in_subset("q1", "tune") != in_subset("q1", "holdout")
        (True, True)
    """
    if subset == "all":
        return True
    first_byte = hashlib.blake2b(question_id.encode("utf-8"), digest_size=1).digest()[0]
    return (first_byte % 2 == 0) == (subset == "tune")


def default_eval_kb_dir(dataset: Path, settings: Settings) -> Path:
    """A cache directory for the knowledge base built from ``dataset``.

    The name carries everything the index depends on (the dataset's content, the
    model and the chunking), so a changed setting never reuses a stale index.
    """
    digest = hashlib.sha256(dataset.read_bytes()).hexdigest()[:12]
    model = re.sub(r"[^A-Za-z0-9.-]+", "_", settings.embedding_model)[-60:]
    name = f"{dataset.stem}-{digest}-{model}-{settings.chunk_size}-{settings.chunk_overlap}"
    return Path(settings.data_dir) / "eval" / name


def run_eval(
    dataset: Path,
    *,
    settings: Settings,
    kb_dir: str | Path | None = None,
    mode: str | None = None,
    k: int = 10,
    answers: bool = False,
    subset: str = "all",
    limit: int | None = None,
    show_progress: bool = True,
) -> dict[str, float]:
    """Evaluate retrieval (and optionally answers) on a SQuAD-format file.

    Args:
        dataset: the ``.json`` file.
        settings: embedding model, chunking, retrieval and answering settings.
        kb_dir: a knowledge base to build or reuse, a directory or a store URI
            (``milvus:///eval.db``); defaults to a cache directory under
            ``settings.data_dir``. Unchanged paragraphs are not re-embedded.
        mode: retrieval mode; defaults to ``settings.retrieval_mode``.
        k: how many chunks to retrieve per question (at least 10 for recall@10).
        answers: also answer each question from its top ``settings.top_k`` hits and
            score the answers against the gold ones.
        subset: ``"all"``, or the ``"tune"`` or ``"holdout"`` half of the questions.
        limit: ask at most this many questions of the subset, a fixed random sample
            (seed 0), for quick looks. Every paragraph is still indexed.
        show_progress: draw progress bars on stderr.

    Returns:
        ``recall@1``, ``recall@5``, ``recall@10``, ``mrr@10``, ``ndcg@10``,
        ``questions``, ``latency_ms_p50``, ``latency_ms_p95``; with ``answers``,
        also ``exact_match``, ``f1``, ``rouge_l`` and ``bleu``.
    """
    from tqdm import tqdm

    from ragqa.errors import ConfigError

    if subset not in SUBSETS:
        raise ConfigError(f"subset must be one of {', '.join(SUBSETS)}, not {subset!r}")
    if k < 1:
        raise ConfigError(f"k must be at least 1, not {k}")
    squad = load_squad(dataset)
    questions = [q for q in squad.questions if in_subset(q.id, subset)]
    if not questions:
        raise ConfigError(f"{dataset}: no questions in subset {subset!r}")
    if limit is not None:
        if limit < 1:
            raise ConfigError(f"limit must be at least 1, not {limit}")
        questions = random.Random(0).sample(questions, min(limit, len(questions)))
    kb_dir = kb_dir or default_eval_kb_dir(dataset, settings)
    prefix = dataset.stem

    with KnowledgeBase.open_or_create(kb_dir, settings=settings) as kb:
        bar = tqdm(
            total=len(squad.paragraphs),
            desc="indexing",
            unit="para",
            disable=not show_progress,
            file=sys.stderr,
        )

        def indexed(event: IngestProgress) -> None:
            bar.n = event.files_done
            bar.refresh()

        kb.add_texts([(f"{prefix}#{p.id}", p.context) for p in squad.paragraphs], progress=indexed)
        bar.close()
        return _ask_all(
            kb, questions, prefix, mode=mode, k=k, answers=answers, show_progress=show_progress
        )


def _ask_all(
    kb: KnowledgeBase,
    questions: Sequence[SquadQuestion],
    prefix: str,
    *,
    mode: str | None,
    k: int,
    answers: bool,
    show_progress: bool,
) -> dict[str, float]:
    from tqdm import tqdm

    from ragqa.answering import answer_question, strip_citations

    ranked: list[list[str]] = []
    gold: list[str] = []
    latencies: list[float] = []
    predictions: list[str] = []
    for question in tqdm(
        questions, desc="asking", unit="q", disable=not show_progress, file=sys.stderr
    ):
        started = time.perf_counter()
        hits = kb.search(question.question, k=k, mode=mode)
        latencies.append((time.perf_counter() - started) * 1000)
        ranked.append([hit.source for hit in hits])
        gold.append(f"{prefix}#{question.paragraph_id}")
        if answers:
            answer = answer_question(
                question.question,
                hits[: kb.settings.top_k],
                settings=kb.settings,
                closeness=kb.closeness,
            )
            predictions.append(strip_citations(answer.text))
    metrics = retrieval_metrics(ranked, gold, latencies)
    metrics["questions"] = int(metrics["questions"])
    if answers:
        metrics.update(answer_metrics(predictions, [q.answers for q in questions]))
    return metrics
