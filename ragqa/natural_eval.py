"""Evaluate answers on natural questions: the ones people ask in their own words.

QA datasets flatter a system: their questions were written by people looking at the
paragraph, so they share its words. A natural-question set is a JSON file of
questions written as users ask them, each with key facts (short strings, any one of
which a correct answer must contain) and the file that holds them, over real
documents::

    {"name": "...", "description": "...", "root": "../shared/data",
     "documents": ["notes/generative-ai-intro.txt", "pdfs/a.pdf"],
     "passwords": {"pdfs/a.pdf": "secret"},
     "questions": [{"id": "zh-001", "lang": "zh", "question": "...", "kind": "paraphrase",
                    "file": "notes/generative-ai-intro.txt", "key_facts": ["..."],
                    "history": ["an earlier question, oldest first"]}]}

``root`` is relative to the repository the set lives in (the nearest folder above
it that holds ``pyproject.toml``), else to the set's own folder. A question of kind
``unanswerable`` has ``"file": null`` and no key facts: its answer must abstain.

:func:`run_natural_eval` ingests the documents into a knowledge base, asks every
question through :meth:`ragqa.KnowledgeBase.ask` (a follow-up after its history,
answered turn by turn) and reports, over answerable questions, how often a key fact
is in the answer, the right file is cited, a key fact is in a cited passage and the
answer cites nothing; over unanswerable ones, how often the answer abstains.

Example:
    >>> metrics = run_natural_eval(Path("bench/data/natural_questions.json"),
    ...                            settings=Settings())               # doctest: +SKIP
    >>> metrics["key_fact_in_answer"], metrics["abstained"]          # doctest: +SKIP
    (0.93, 1.0)
    >>> metrics["by_lang"]["zh"]["right_file_cited"]                 # doctest: +SKIP
    0.97
"""

from __future__ import annotations

import hashlib
import json
import re
import statistics
import sys
import time
import unicodedata
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragqa.config import Settings
from ragqa.errors import ConfigError

__all__ = [
    "NaturalQuestion",
    "NaturalSet",
    "Outcome",
    "is_natural_set",
    "load_natural_set",
    "run_natural_eval",
]

KINDS = ("paraphrase", "synonym", "keyword", "direct", "followup", "unanswerable")
#: The checks made of an answerable question's answer, in report order.
ANSWERABLE_CHECKS = (
    "key_fact_in_answer",
    "right_file_cited",
    "key_fact_in_cited_passage",
    "key_fact_retrieved",
    "false_abstention",
)


@dataclass(frozen=True)
class NaturalQuestion:
    """One question; ``file`` is None and ``key_facts`` empty when it is unanswerable.

    ``history`` holds the user's earlier questions, oldest first, for a follow-up.
    """

    id: str
    lang: str
    question: str
    kind: str
    file: str | None
    key_facts: tuple[str, ...]
    history: tuple[str, ...] = ()

    @property
    def answerable(self) -> bool:
        return self.file is not None


@dataclass(frozen=True)
class NaturalSet:
    """A set of natural questions and the documents they are asked of.

    ``documents`` and each question's ``file`` are relative to ``root``; ``digest``
    identifies the set's content and its documents' folder (for the cache's name).
    """

    path: Path
    name: str
    description: str
    root: Path
    documents: tuple[str, ...]
    passwords: dict[str, str]
    questions: tuple[NaturalQuestion, ...]
    digest: str


@dataclass(frozen=True)
class Outcome:
    """What one question's answer passed.

    The :data:`ANSWERABLE_CHECKS` are None for an unanswerable question;
    ``abstained`` is set for every question (for answerable ones it is reported, not
    scored). ``cited`` lists the cited files, relative to the set's root when they
    are its documents, in citation order without repeats.
    """

    question: NaturalQuestion
    answer: str
    cited: tuple[str, ...]
    abstained: bool
    key_fact_in_answer: bool | None = None
    right_file_cited: bool | None = None
    key_fact_in_cited_passage: bool | None = None
    # In any passage the answerer was given, cited or not: retrieval's share.
    key_fact_retrieved: bool | None = None
    false_abstention: bool | None = None
    latency_ms: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """One line of the ``details`` file."""
        q = self.question
        return {
            "id": q.id,
            "lang": q.lang,
            "kind": q.kind,
            "question": q.question,
            "history": list(q.history),
            "file": q.file,
            "answer": self.answer,
            "cited": list(self.cited),
            "abstained": self.abstained,
            **{check: getattr(self, check) for check in ANSWERABLE_CHECKS},
            "latency_ms": round(self.latency_ms, 1),
        }


def is_natural_set(path: Path) -> bool:
    """Whether ``path`` holds a natural-question set: a top-level ``questions`` list.

    Example:
        >>> is_natural_set(Path("squad_dev.json"))  # doctest: +SKIP
        False
    """
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and isinstance(data.get("questions"), list)


def load_natural_set(path: str | Path, *, docs: str | Path | None = None) -> NaturalSet:
    """Read and check a natural-question set.

    Args:
        path: the set's ``.json`` file.
        docs: the documents' folder, instead of the set's ``root``.

    Raises:
        ConfigError: the file is not JSON, lacks a field or gives it the wrong type,
            names an unknown kind, repeats an id, or lists a document that is not
            there; the message names the file (and the question) and the problem.

    Example:
        >>> natural = load_natural_set("bench/data/natural_questions.json")  # doctest: +SKIP
        >>> natural.questions[0].id, natural.questions[0].key_facts           # doctest: +SKIP
        ('zh-001', ('转换器模型',))
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
        data = json.loads(raw.decode("utf-8"))
    except OSError as error:
        raise ConfigError(f"{path}: cannot read it ({error.strerror or error})") from None
    except (UnicodeDecodeError, ValueError) as error:
        raise ConfigError(f"{path}: not a JSON file ({error})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be an object")
    where = str(path)
    documents = tuple(_list_of_strings(data, "documents", where, required=True))
    if not documents:
        raise ConfigError(f"{path}: 'documents' lists no files to ingest")
    if len(set(documents)) != len(documents):
        raise ConfigError(f"{path}: 'documents' lists a file twice")
    root_text = _string(data, "root", where, required=False) or "."
    root = Path(docs).expanduser().resolve() if docs else _resolve_root(path, root_text)
    for document in documents:
        if not (root / document).is_file():
            hint = "" if docs else "; pass --docs DIR if the documents are elsewhere"
            raise ConfigError(f"{path}: document {document!r} not found under {root}{hint}")
    passwords = data.get("passwords", {})
    if not isinstance(passwords, dict) or not all(isinstance(v, str) for v in passwords.values()):
        raise ConfigError(f"{path}: 'passwords' must map documents to password strings")
    for document in passwords:
        if document not in documents:
            raise ConfigError(f"{path}: 'passwords' names {document!r}, not in 'documents'")
    if not isinstance(data.get("questions"), list):
        raise ConfigError(f"{path}: no 'questions' list at the top level")
    questions = []
    seen: set[str] = set()
    for index, item in enumerate(data["questions"], start=1):
        question = _question(item, f"{path}: question {index}", documents)
        if question.id in seen:
            raise ConfigError(f"{path}: question id {question.id!r} appears twice")
        seen.add(question.id)
        questions.append(question)
    if not questions:
        raise ConfigError(f"{path}: 'questions' is empty")
    # The folder is part of the identity: the same set over other documents (--docs)
    # must not reuse, and pile onto, the cached knowledge base of the first.
    digest = hashlib.sha256(raw + b"\0" + str(root).encode("utf-8")).hexdigest()[:12]
    return NaturalSet(
        path=path,
        name=_string(data, "name", where, required=False) or path.stem,
        description=_string(data, "description", where, required=False),
        root=root,
        documents=documents,
        passwords=dict(passwords),
        questions=tuple(questions),
        digest=digest,
    )


def _question(item: Any, where: str, documents: Collection[str]) -> NaturalQuestion:
    if not isinstance(item, dict):
        raise ConfigError(f"{where} is not an object")
    if isinstance(item.get("id"), str):
        where = f"{where} ({item['id']!r})"
    missing = [key for key in ("id", "lang", "question", "kind", "key_facts") if key not in item]
    if missing:
        raise ConfigError(f"{where} lacks {', '.join(repr(key) for key in missing)}")
    ident = _string(item, "id", where, required=True)
    text = _string(item, "question", where, required=True)
    if not ident or not text.strip():
        raise ConfigError(f"{where}: 'id' and 'question' must not be empty")
    kind = _string(item, "kind", where, required=True)
    if kind not in KINDS:
        raise ConfigError(f"{where}: kind {kind!r} is not one of {', '.join(KINDS)}")
    file = item.get("file")
    if file is not None and not isinstance(file, str):
        raise ConfigError(f"{where}: 'file' must be a path or null")
    facts = tuple(_list_of_strings(item, "key_facts", where, required=True))
    if file is not None and file not in documents:
        raise ConfigError(f"{where}: its file {file!r} is not in 'documents'")
    if (kind == "unanswerable") != (file is None):
        raise ConfigError(f"{where}: an unanswerable question has file null, and only it")
    if (file is None) != (not facts):
        raise ConfigError(f"{where}: an answerable question needs key facts, and only it")
    if any(not fact.strip() for fact in facts):
        raise ConfigError(f"{where}: a key fact is empty")
    return NaturalQuestion(
        id=ident,
        lang=_string(item, "lang", where, required=True),
        question=text,
        kind=kind,
        file=file,
        key_facts=facts,
        history=tuple(_list_of_strings(item, "history", where, required=False)),
    )


def _string(data: dict[str, Any], key: str, where: str, *, required: bool) -> str:
    if key not in data and not required:
        return ""
    if not isinstance(data.get(key), str):
        raise ConfigError(f"{where}: {key!r} must be a string")
    return data[key]


def _list_of_strings(data: dict[str, Any], key: str, where: str, *, required: bool) -> list[str]:
    if key not in data:
        if required:
            raise ConfigError(f"{where}: no {key!r} list")
        return []
    value = data[key]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: {key!r} must be a list of strings")
    return value


def _resolve_root(path: Path, root: str) -> Path:
    """``root`` against the repository holding ``path``, else against its folder."""
    folder = path.resolve().parent
    for candidate in (folder, *folder.parents):
        if (candidate / "pyproject.toml").is_file():
            return (candidate / root).resolve()
    return (folder / root).resolve()


def normalise_for_match(text: str) -> str:
    """Text as key facts are looked for in it: NFKC, case-folded, in Simplified
    characters, with no whitespace at all.

    Example:
        >>> normalise_for_match("無監督的 預訓練") == normalise_for_match("无监督的预训练")
        True
        >>> normalise_for_match("Ｔhe  Crazy\\nOnes")
        'thecrazyones'
    """
    from ragqa.tokenizer import to_simplified

    text = unicodedata.normalize("NFKC", text).casefold()
    return to_simplified("".join(text.split()))


def contains_fact(text: str, facts: Sequence[str]) -> bool:
    """Whether ``text`` holds any of ``facts``, both sides :func:`normalise_for_match`-ed.

    Example:
        >>> contains_fact("它採用 Transformer 架構", ["transformer架构"])
        True
    """
    haystack = normalise_for_match(text)
    return any(normalise_for_match(fact) in haystack for fact in facts)


def abstained(answer: Any) -> bool:
    """An answer that cites nothing, or says the documents hold no answer (in any
    of the scripts :func:`ragqa.prompting.no_answer_text` writes)."""
    from ragqa.prompting import no_answer_text

    if not answer.citations:
        return True
    # One question per script, so each of the three sentences is checked.
    sentences = {no_answer_text(q) for q in ("Who?", "这是什么？", "這是什麼？")}
    text = normalise_for_match(answer.text)
    return any(normalise_for_match(sentence) in text for sentence in sentences)


def score_answer(
    question: NaturalQuestion,
    answer: Any,
    *,
    sources: dict[str, str],
    latency_ms: float = 0.0,
) -> Outcome:
    """Check one answer (an :class:`ragqa.answering.Answer`, or anything with its
    ``text`` and ``citations``).

    Args:
        question: what was asked.
        answer: the answer.
        sources: each document (relative to the set's root) to the source a
            knowledge base records for it (its resolved absolute path).
        latency_ms: how long the answer took, for the details.

    A citation's source is compared with the question's file by resolved path;
    a source that is none of the set's documents (a knowledge base built from
    another copy of them) is compared by file name.

    Example:
        >>> from ragqa.answering import Answer, Citation
        >>> cited = Citation(1, "/data/notes/a.txt", 1, 0, 9, 0, "預訓練模型很大")
        >>> q = NaturalQuestion("q1", "zh", "什么模型？", "direct", "notes/a.txt", ("预训练",))
        >>> o = score_answer(q, Answer("預訓練 模型[1]", (cited,)),
        ...                  sources={"notes/a.txt": "/data/notes/a.txt"})
        >>> o.key_fact_in_answer, o.right_file_cited, o.key_fact_in_cited_passage
        (True, True, True)
    """
    from ragqa.answering import strip_citations

    relative = {source: document for document, source in sources.items()}
    cited = tuple(dict.fromkeys(relative.get(c.source, c.source) for c in answer.citations))
    outcome = Outcome(
        question=question,
        answer=answer.text,
        cited=cited,
        abstained=abstained(answer),
        latency_ms=latency_ms,
    )
    if not question.answerable:
        return outcome
    assert question.file is not None  # answerable
    wanted = sources.get(question.file, question.file)
    right_file = any(
        c.source == wanted
        or (c.source not in relative and Path(c.source).name == Path(wanted).name)
        for c in answer.citations
    )
    return Outcome(
        question=question,
        answer=answer.text,
        cited=cited,
        abstained=outcome.abstained,
        key_fact_in_answer=contains_fact(strip_citations(answer.text), question.key_facts),
        right_file_cited=right_file,
        key_fact_in_cited_passage=any(
            contains_fact(c.text, question.key_facts) for c in answer.citations
        ),
        key_fact_retrieved=any(
            contains_fact(h.text, question.key_facts) for h in getattr(answer, "passages", ())
        ),
        false_abstention=not answer.citations,
        latency_ms=latency_ms,
    )


def summarise(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    """Fractions and counts over a group of outcomes.

    Answerable questions give the :data:`ANSWERABLE_CHECKS`, unanswerable ones
    ``abstained``; a fraction with no question to count is None.

    Example:
        >>> summarise([])["key_fact_in_answer"] is None
        True
    """
    answerable = [o for o in outcomes if o.question.answerable]
    unanswerable = [o for o in outcomes if not o.question.answerable]
    counts = {check: sum(1 for o in answerable if getattr(o, check)) for check in ANSWERABLE_CHECKS}
    counts["abstained"] = sum(1 for o in unanswerable if o.abstained)

    def share(count: int, total: int) -> float | None:
        return round(count / total, 4) if total else None

    summary: dict[str, Any] = {
        "questions": len(outcomes),
        "answerable": len(answerable),
        "unanswerable": len(unanswerable),
    }
    summary.update({check: share(counts[check], len(answerable)) for check in ANSWERABLE_CHECKS})
    summary["abstained"] = share(counts["abstained"], len(unanswerable))
    summary["counts"] = counts
    return summary


def report(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    """:func:`summarise` over all outcomes, with the same by language and by kind."""
    metrics = summarise(outcomes)
    for group, key in (("by_lang", "lang"), ("by_kind", "kind")):
        values = dict.fromkeys(getattr(o.question, key) for o in outcomes)
        order = KINDS if key == "kind" else sorted(values)
        metrics[group] = {
            value: summarise([o for o in outcomes if getattr(o.question, key) == value])
            for value in order
            if value in values
        }
    return metrics


def default_natural_kb_dir(natural: NaturalSet, settings: Settings) -> Path:
    """A cache directory for the set's knowledge base, named by all it depends on:
    the set's content and documents' folder, the model and the chunking (as
    :func:`ragqa.eval_runner.default_eval_kb_dir` does for SQuAD files)."""
    model = re.sub(r"[^A-Za-z0-9.-]+", "_", settings.embedding_model)[-60:]
    name = (
        f"{natural.path.stem}-{natural.digest}-{model}"
        f"-{settings.chunk_size}-{settings.chunk_overlap}"
    )
    return Path(settings.data_dir) / "eval" / name


def run_natural_eval(
    path: str | Path,
    *,
    settings: Settings,
    kb_dir: str | Path | None = None,
    docs: str | Path | None = None,
    show_progress: bool = True,
    details: str | Path | None = None,
) -> dict[str, Any]:
    """Ingest a natural-question set's documents, ask its questions, score the answers.

    Args:
        path: the set's ``.json`` file.
        settings: embedding, chunking, retrieval and answering settings (with
            ``llm`` set, a language model answers).
        kb_dir: a knowledge base to build or reuse, a directory or a store URI; by
            default a cache under ``settings.data_dir/eval``. Unchanged files are
            not read or embedded again.
        docs: the documents' folder, instead of the set's ``root``.
        show_progress: draw progress bars on stderr.
        details: write one JSON line per question here (answer, cited files, checks).

    Returns:
        Over all questions: ``questions``, ``answerable``, ``unanswerable``, the
        fractions ``key_fact_in_answer``, ``right_file_cited``,
        ``key_fact_in_cited_passage`` and ``false_abstention`` (of answerable
        questions) and ``abstained`` (of unanswerable ones), and ``counts`` of each;
        the same per language in ``by_lang`` and per kind in ``by_kind``; then
        ``latency_ms_p50`` (of :meth:`~ragqa.KnowledgeBase.ask`, the question
        itself, not its history), ``backend`` (the answerer), ``embedding_model``,
        ``name``, ``documents`` and ``failed_documents``.

    Raises:
        ConfigError: the set is malformed (see :func:`load_natural_set`).
    """
    from tqdm import tqdm

    from ragqa.conversation import Turn
    from ragqa.ingestion import source_key
    from ragqa.knowledge_base import KnowledgeBase

    natural = load_natural_set(path, docs=docs)
    kb_dir = kb_dir or default_natural_kb_dir(natural, settings)
    sources = {document: source_key(natural.root / document) for document in natural.documents}
    outcomes: list[Outcome] = []
    failed: list[str] = []
    backends: dict[str, None] = {}
    with KnowledgeBase.open_or_create(kb_dir, settings=settings) as kb:
        # One add per file: each encrypted PDF has its own password.
        for document in tqdm(
            natural.documents,
            desc="indexing",
            unit="file",
            disable=not show_progress,
            file=sys.stderr,
        ):
            result = kb.add([natural.root / document], pdf_password=natural.passwords.get(document))
            for file in result.files:
                if file.status == "failed":
                    failed.append(document)
                    print(f"warning: {document}: {file.error}", file=sys.stderr)
        for question in tqdm(
            natural.questions, desc="asking", unit="q", disable=not show_progress, file=sys.stderr
        ):
            # A follow-up is asked as in a chat: each earlier question answered in
            # turn, so the rewrite sees the answers a user would have seen.
            history: list[Turn] = []
            for earlier in question.history:
                reply = kb.ask(earlier, history=tuple(history))
                history += [Turn("user", earlier), Turn("assistant", reply.text)]
            started = time.perf_counter()
            answer = kb.ask(question.question, history=tuple(history))
            elapsed_ms = (time.perf_counter() - started) * 1000
            backends[answer.backend] = None
            outcomes.append(score_answer(question, answer, sources=sources, latency_ms=elapsed_ms))
        model = kb.manifest.embedding_model
    if details is not None:
        with open(details, "w", encoding="utf-8") as fh:
            for outcome in outcomes:
                fh.write(json.dumps(outcome.to_dict(), ensure_ascii=False) + "\n")
    metrics = report(outcomes)
    latencies = [o.latency_ms for o in outcomes]
    metrics.update(
        latency_ms_p50=round(statistics.median(latencies), 1),
        backend=", ".join(backends),
        embedding_model=model,
        name=natural.name,
        documents=len(natural.documents),
        failed_documents=failed,
    )
    return metrics
