"""Benchmark retrieval on the shared question sets: ragqa's modes against baselines.

For each set (DRCD, Traditional Chinese; SQuAD, English) every paragraph is indexed
as one document and every question of the chosen subset is asked; a hit counts
when a returned chunk was cut from the question's own paragraph. Every row of the
table answers exactly the same questions. Rows:

* ``langchain-tutorial``: the LangChain RAG tutorial pipeline,
  ``RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200)``, the
  same bundled all-MiniLM-L6-v2, and ``FAISS.similarity_search``;
* ``bm25-jieba``: ``rank_bm25.BM25Okapi`` over jieba tokens of the same chunks;
* ``ragqa dense`` / ``lexical`` / ``hybrid``: :meth:`ragqa.KnowledgeBase.search`
  with the default settings (the relevance gate on), plus ``hybrid, no gate``
  (``min_relevance=0``) and ``hybrid + mmr``.

Then the relevance gate's error rates: the share of a set's own questions that get
no hits (false rejects) and the share of the *other* set's questions that get some
(false accepts; Chinese questions against the English knowledge base and back).

Usage (from the repository root)::

    python bench/retrieval.py                      # holdout half of both sets
    python bench/retrieval.py --subset tune --limit 300
    python bench/retrieval.py --data-dir ../shared/data --json results.json

Knowledge bases are built once and cached: ragqa's under ``$RAGQA_DATA_DIR/eval``
(the same cache as ``ragqa eval``), the LangChain FAISS index under
``$RAGQA_DATA_DIR/bench``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DATASETS = {
    "zh": "drcd_dev.json",
    "en": "squad_dev_v1.1_articles_01-12.json",
}
K = 10  # results per question: enough for recall@10, MRR@10 and nDCG@10

os.environ.setdefault("GOMP_SPINCOUNT", "10000")  # as ragqa does; see set_openmp_waiting

from langchain_core.embeddings import Embeddings  # noqa: E402

from ragqa import KnowledgeBase, Settings  # noqa: E402
from ragqa.eval_runner import SUBSETS, default_eval_kb_dir, in_subset  # noqa: E402
from ragqa.evaluation import SquadSet, load_squad, retrieval_metrics  # noqa: E402


@dataclass(frozen=True)
class Row:
    """One line of the results table."""

    dataset: str
    system: str
    metrics: dict[str, float]


Search = Callable[[str], list[str]]  # question -> paragraph ids of the top K hits


def default_data_dir() -> Path:
    return Path(os.environ.get("SHARED_DATA_DIR") or REPO.parent / "shared" / "data")


def measure(search: Search, questions: Sequence[Any]) -> dict[str, float]:
    """Ask every question, timing each search, and score the rankings."""
    ranked, latencies = [], []
    for question in questions:
        started = time.perf_counter()
        ranked.append(search(question.question))
        latencies.append((time.perf_counter() - started) * 1000)
    return retrieval_metrics(ranked, [q.paragraph_id for q in questions], latencies)


# -------------------------------------------------------------------- ragqa


def build_ragqa_kb(dataset: Path, squad: SquadSet, settings: Settings) -> Path:
    """Build (or update) the knowledge base ``ragqa eval`` caches for this dataset."""
    directory = default_eval_kb_dir(dataset, settings)
    with KnowledgeBase.open_or_create(directory, settings=settings) as kb:
        kb.add_texts([(f"{dataset.stem}#{p.id}", p.context) for p in squad.paragraphs])
    return directory


def ragqa_search(kb: KnowledgeBase, mode: str) -> Search:
    def search(question: str) -> list[str]:
        return [hit.source.split("#", 1)[1] for hit in kb.search(question, K, mode=mode)]

    return search


# ---------------------------------------------------------------- baselines


class MiniLMEmbeddings(Embeddings):
    """A thin LangChain ``Embeddings`` around the bundled sentence-transformers model.

    It encodes as ``langchain_huggingface.HuggingFaceEmbeddings`` does by default
    (no extra normalisation; the model's own Normalize layer makes unit vectors).
    That package is not used because it pins an older ``huggingface_hub``.
    """

    def __init__(self) -> None:
        from sentence_transformers import SentenceTransformer

        from ragqa.embeddings.sentence_transformers import resolve_model_path

        self._model = SentenceTransformer(resolve_model_path("all-MiniLM-L6-v2"))

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self._model.encode(texts, show_progress_bar=False).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self._model.encode([text], show_progress_bar=False)[0].tolist()


def tutorial_chunks(squad: SquadSet) -> list[Any]:
    """The tutorial's split: 1000-character chunks with 200 of overlap."""
    from langchain_core.documents import Document
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    splitter = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200)
    documents = [Document(p.context, metadata={"paragraph": p.id}) for p in squad.paragraphs]
    return splitter.split_documents(documents)


def langchain_search(chunks: Sequence[Any], cache: Path) -> Search:
    try:
        from langchain_community.vectorstores import FAISS
    except ImportError:
        sys.exit("the LangChain row needs langchain-community: pip install langchain-community")

    embeddings = MiniLMEmbeddings()
    if (cache / "index.faiss").exists():
        # Our own file, written below; nothing from elsewhere is unpickled.
        store = FAISS.load_local(str(cache), embeddings, allow_dangerous_deserialization=True)
    else:
        store = FAISS.from_documents(list(chunks), embeddings)
        store.save_local(str(cache))

    def search(question: str) -> list[str]:
        return [d.metadata["paragraph"] for d in store.similarity_search(question, k=K)]

    return search


_NOT_A_WORD = re.compile(r"^[\W_]+$")


def jieba_tokens(text: str) -> list[str]:
    """jieba's words, lowercased, without spaces and punctuation."""
    import jieba

    return [w.lower() for w in jieba.lcut(text) if w.strip() and not _NOT_A_WORD.match(w)]


def bm25_search(chunks: Sequence[Any]) -> Search:
    import jieba
    import numpy as np
    from rank_bm25 import BM25Okapi

    jieba.setLogLevel(60)  # its "Building prefix dict" chatter
    index = BM25Okapi([jieba_tokens(c.page_content) for c in chunks])
    paragraphs = [c.metadata["paragraph"] for c in chunks]

    def search(question: str) -> list[str]:
        scores = index.get_scores(jieba_tokens(question))
        return [paragraphs[i] for i in np.argsort(-scores, kind="stable")[:K]]

    return search


# ---------------------------------------------------------------------- run


def select_questions(squad: SquadSet, subset: str, limit: int | None) -> list[Any]:
    questions = [q for q in squad.questions if in_subset(q.id, subset)]
    if limit is not None and limit < len(questions):
        keep = set(random.Random(0).sample(range(len(questions)), limit))
        questions = [q for i, q in enumerate(questions) if i in keep]
    return questions


def run(data_dir: Path, subset: str, limit: int | None) -> tuple[list[Row], list[Row]]:
    settings = Settings.from_env()
    loaded = {}
    for language, name in DATASETS.items():
        path = data_dir / name
        if not path.exists():
            sys.exit(f"{path} not found: give --data-dir or set SHARED_DATA_DIR")
        squad = load_squad(path)
        loaded[language] = (path, squad, select_questions(squad, subset, limit))

    variants = [
        ("ragqa dense", "dense", settings),
        ("ragqa lexical", "lexical", settings),
        ("ragqa hybrid", "hybrid", settings),
        ("ragqa hybrid, no gate", "hybrid", settings.replace(min_relevance=0.0)),
        ("ragqa hybrid + mmr", "hybrid", settings.replace(mmr=True)),
    ]
    rows: list[Row] = []
    kb_dirs: dict[str, Path] = {}
    for language, (path, squad, questions) in loaded.items():
        label = f"{path.stem} ({language})"
        print(f"{label}: {len(questions)} {subset} questions", file=sys.stderr)
        chunks = tutorial_chunks(squad)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
        cache = Path(settings.data_dir) / "bench" / f"langchain-{path.stem}-{digest}"
        cache.mkdir(parents=True, exist_ok=True)
        for system, search in (
            ("langchain-tutorial", langchain_search(chunks, cache)),
            ("bm25-jieba", bm25_search(chunks)),
        ):
            print(f"  {system} ...", file=sys.stderr)
            rows.append(Row(label, system, measure(search, questions)))
        kb_dirs[language] = build_ragqa_kb(path, squad, settings)
        for system, mode, variant in variants:
            print(f"  {system} ...", file=sys.stderr)
            with KnowledgeBase.open(kb_dirs[language], settings=variant) as kb:
                rows.append(Row(label, system, measure(ragqa_search(kb, mode), questions)))

    gate: list[Row] = []
    for language, (path, _, questions) in loaded.items():
        foreign = next(qs for lang, (_, _, qs) in loaded.items() if lang != language)
        with KnowledgeBase.open(kb_dirs[language], settings=settings) as kb:
            own_found = [bool(kb.search(q.question, K)) for q in questions]
            foreign_found = [bool(kb.search(q.question, K)) for q in foreign]
        gate.append(
            Row(
                f"{path.stem} ({language})",
                "relevance gate",
                {
                    "min_relevance": settings.min_relevance,
                    "false_reject": own_found.count(False) / len(own_found),
                    "false_accept": foreign_found.count(True) / len(foreign_found),
                    "on_topic": len(own_found),
                    "off_topic": len(foreign_found),
                },
            )
        )
    return rows, gate


def print_table(rows: Sequence[Row], gate: Sequence[Row]) -> None:
    header = (
        f"| {'dataset':<42} | {'system':<22} | R@1   | R@5   | R@10  | MRR@10 | nDCG@10 "
        f"| p50 ms | p95 ms | questions |"
    )
    print(header)
    print("|" + "|".join("-" * (len(cell)) for cell in header.split("|")[1:-1]) + "|")
    for row in rows:
        m = row.metrics
        print(
            f"| {row.dataset:<42} | {row.system:<22} | {m['recall@1']:.3f} | {m['recall@5']:.3f} "
            f"| {m['recall@10']:.3f} | {m['mrr@10']:.3f}  | {m['ndcg@10']:.3f}   "
            f"| {m['latency_ms_p50']:6.1f} | {m['latency_ms_p95']:6.1f} | {int(m['questions']):9d} |"
        )
    print()
    for row in gate:
        m = row.metrics
        print(
            f"{row.dataset}: min_relevance={m['min_relevance']:.2f}: own questions with no hits "
            f"(false reject) {m['false_reject']:.3f} of {int(m['on_topic'])}; the other set's "
            f"questions with hits (false accept) {m['false_accept']:.3f} of {int(m['off_topic'])}"
        )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subset", choices=SUBSETS, default="holdout")
    parser.add_argument("--limit", type=int, help="a random sample of N questions per set")
    parser.add_argument("--data-dir", type=Path, default=default_data_dir())
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args(argv)
    rows, gate = run(args.data_dir, args.subset, args.limit)
    print_table(rows, gate)
    if args.json:
        data = [row.__dict__ for row in (*rows, *gate)]
        args.json.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
