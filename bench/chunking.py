"""How the chunk size was chosen: retrieval and extractive answers at several sizes.

For each (chunk size, overlap) pair it runs ``ragqa eval --answers --subset tune`` on
both shared question sets (the ``tune`` half: parameters are chosen there, and the
``holdout`` half is left for reporting), and prints one table: recall@1/@5, MRR@10,
the extractive answerer's token F1, the number of chunks, and the characters a
prompt of ``top_k`` (5) passages carries, which is what a language model pays for.

    .venv/bin/python bench/chunking.py                        # 300, 600, 1000; ~20 min
    .venv/bin/python bench/chunking.py --sizes 400/60 800/130 --limit 400

The knowledge bases are cached under ``$RAGQA_DATA_DIR/eval`` (one per size), so a
second run only asks the questions again.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("GOMP_SPINCOUNT", "10000")  # as ragqa does; see set_openmp_waiting

from common import CORPORA, default_data_dir, machine, print_table  # noqa: E402

from ragqa import KnowledgeBase, Settings  # noqa: E402
from ragqa.eval_runner import default_eval_kb_dir, in_subset, run_eval  # noqa: E402
from ragqa.evaluation import load_squad  # noqa: E402

DEFAULT_SIZES = ("300/50", "600/100", "1000/200")


def measure(path: Path, settings: Settings, limit: int | None) -> dict[str, float]:
    metrics = run_eval(path, settings=settings, answers=True, subset="tune", limit=limit)
    # What top_k passages cost a prompt, on a sample of the same questions.
    questions = [q for q in load_squad(path).questions if in_subset(q.id, "tune")][:200]
    with KnowledgeBase.open(default_eval_kb_dir(path, settings), settings=settings) as kb:
        chars = [sum(len(h.text) for h in kb.search(q.question)) for q in questions]
        metrics["chunks"] = len(kb)
    metrics["prompt_chars"] = sum(chars) / len(chars)
    return metrics


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", default=list(DEFAULT_SIZES), help="SIZE/OVERLAP")
    parser.add_argument("--data-dir", type=Path, default=default_data_dir())
    parser.add_argument("--limit", type=int, help="Questions per set (a fixed sample).")
    parser.add_argument("--json", type=Path, help="Also write the results here.")
    args = parser.parse_args()

    data_dir = os.environ.get("RAGQA_DATA_DIR") or str(Path(tempfile.gettempdir()) / "ragqa-bench")
    base = Settings.from_env(data_dir=data_dir)
    rows, results = [], []
    for spec in args.sizes:
        size, overlap = (int(x) for x in spec.split("/"))
        settings = base.replace(chunk_size=size, chunk_overlap=overlap)
        for corpus, file_name in CORPORA.items():
            print(f"== {corpus}: chunks of {size}, overlap {overlap}", file=sys.stderr)
            m = measure(args.data_dir / file_name, settings, args.limit)
            results.append({"corpus": corpus, "chunk_size": size, "overlap": overlap, **m})
            rows.append(
                [
                    corpus,
                    f"{size}/{overlap}",
                    m["chunks"],
                    m["recall@1"],
                    m["recall@5"],
                    m["mrr@10"],
                    m["f1"],
                    m["prompt_chars"],
                    int(m["questions"]),
                ]
            )
    print(f"\n{machine()}\n")
    headers = ["set", "size/overlap", "chunks", "R@1", "R@5", "MRR@10", "answer F1"]
    print_table([*headers, "prompt chars (top 5)", "questions"], rows)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
