"""What the small-to-big unit stage (ragqa/focus.py) costs a hybrid search.

On a knowledge base that ``bench/query.py --work-dir DIR`` built (100,000 synthetic
chunks by default), the same real questions are searched with the stage on (the
default: ten candidates, their units scored) and off (no unit stage, a pool of k),
one after the other for each question, in alternating order, in one process: the
baseline is measured in the same run, and the ratio is what to compare.

    .venv/bin/python bench/query.py --sizes 100000 --faiss-sizes --work-dir /some/dir
    .venv/bin/python bench/focus_cost.py /some/dir/kb-100000 --queries 560
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from pathlib import Path

from common import default_data_dir, load_questions

import ragqa.retrieval as retrieval
from ragqa import KnowledgeBase


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kb", type=Path, help="a knowledge base built by bench/query.py")
    parser.add_argument("--queries", type=int, default=560)
    parser.add_argument("--data-dir", type=Path, default=default_data_dir())
    args = parser.parse_args()

    questions = load_questions(args.data_dir, "squad") + load_questions(args.data_dir, "drcd")
    questions = random.Random(3).sample(questions, args.queries + 40)
    with KnowledgeBase.open(args.kb) as kb:
        retriever = kb._retriever
        with_stage = retriever._focus
        depth = retrieval.FOCUS_DEPTH

        def without_stage(query, hits, weight):  # noqa: ARG001 - same signature
            return list(hits)

        for question in questions[:40]:  # warm-up: model, caches, page cache
            kb.search(question)
        on: list[float] = []
        off: list[float] = []
        for i, question in enumerate(questions[40:]):
            for stage in (True, False) if i % 2 else (False, True):
                retriever._focus = with_stage if stage else without_stage
                retrieval.FOCUS_DEPTH = depth if stage else 0
                started = time.perf_counter()
                kb.search(question)
                (on if stage else off).append((time.perf_counter() - started) * 1000)
        retriever._focus, retrieval.FOCUS_DEPTH = with_stage, depth
        chunks = len(kb)
    print(f"{chunks:,} chunks, {len(on)} questions, hybrid search, ms")
    for label, times in (("without the unit stage", off), ("with it", on)):
        print(
            f"  {label:<24} p50 {statistics.median(times):6.2f}  mean {statistics.mean(times):6.2f}"
        )
    print(f"  ratio of p50s           {statistics.median(on) / statistics.median(off):.3f}")


if __name__ == "__main__":
    main()
