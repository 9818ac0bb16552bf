"""Query latency and memory of ragqa's knowledge base, and FAISS index choices at scale.

What is measured:

1. ``KnowledgeBase.search`` latency (p50/p95/p99) in each mode (dense, lexical,
   hybrid) at 10k and 100k chunks, with the default settings, over SQuAD and DRCD
   questions. Beside it, the parts timed on their own: the embedder's ``embed_query``,
   ``ragqa.lexical.tokenize``, the store's ``dense_search`` (FAISS) and
   ``lexical_search`` (BM25), at the depth hybrid fusion uses (100). "rest" is hybrid
   minus those parts: fusion, the relevance gate and reading the hits from SQLite.
   Also: resident memory (RSS) after opening the knowledge base and one search, and the
   time of ``kb.remove`` of one 10-chunk document (which includes rewriting the index
   files).
2. ``python -c "import ragqa"`` against ``python -c "import torch"`` (median of 5), and
   whether importing ragqa loads torch.
3. The first answer in a new process: open the 10k knowledge base and ``kb.ask`` one
   question with the default extractive answerer (model load + one query).
4. FAISS alone on synthetic clustered unit vectors (384 dimensions): exact
   ``IndexFlatIP`` against ``IndexHNSWFlat`` (M=32, efSearch 64 and 128) and
   ``IndexIVFPQ``: p50 latency of one-query searches, recall@10 against exact search,
   build time and index memory (its serialised size). 100k by default, 1M with
   ``--full``.

The knowledge bases are synthetic: each chunk recombines 3-5 random sentences of the
SQuAD and DRCD paragraphs (real text, so BM25 sees a real vocabulary), and its vector is
a random unit vector written directly through ``LocalStore.write_documents`` with
``NewDocument``, so that 100k chunks need not be embedded. FAISS's exact search costs
the same whatever the vectors are; the query vectors are real (the bundled model).

Every measurement runs in its own child process, so that RSS belongs to it alone.
Run from the repository root::

    .venv/bin/python bench/query.py                # 10k and 100k, FAISS at 100k; minutes
    .venv/bin/python bench/query.py --full         # adds FAISS at 1M (much longer)
    .venv/bin/python bench/query.py --queries 100 --sizes 10000
"""

from __future__ import annotations

import argparse
import json
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import (
    current_rss_mb,
    default_data_dir,
    load_paragraphs,
    load_questions,
    machine,
    peak_rss_mb,
    percentiles_ms,
    print_table,
    run_worker,
)

HERE = Path(__file__).resolve()
CHUNKS_PER_DOCUMENT = 10
WRITE_BATCH_DOCUMENTS = 200
SEARCH_DEPTH = 100  # ragqa.retrieval.FUSION_DEPTH: what hybrid asks of each index
MODES = ("dense", "lexical", "hybrid")
_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s*")


# ------------------------------------------------------------- building a KB


def _sentences(data_dir: Path) -> list[str]:
    sentences: list[str] = []
    for corpus in ("squad", "drcd"):
        for text in load_paragraphs(data_dir, corpus).values():
            sentences.extend(s for s in _SENTENCE_END.split(text) if len(s) > 20)
    return sentences


def _build_worker(kb_dir: Path, size: int, data_dir: Path) -> dict[str, Any]:
    """Write ``size`` synthetic chunks into a new knowledge base at ``kb_dir``."""
    from ragqa import Settings
    from ragqa.embeddings import get_embedder
    from ragqa.lexical import tokenize
    from ragqa.stores import LocalStore, NewDocument
    from ragqa.types import Chunk

    rng = random.Random(0)
    vector_rng = np.random.default_rng(0)
    sentences = _sentences(data_dir)
    # Tokenising each sentence once and concatenating is what tokenising the chunk
    # gives (sentences split at punctuation), at a fraction of jieba's cost.
    sentence_tokens = [tokenize(s) for s in sentences]
    embedder = get_embedder(Settings().embedding_model)
    # Likewise each sentence's [UNK] and token counts, which ingest stores per chunk.
    unknown, total = embedder.unknown_token_counts(sentences)
    started = time.perf_counter()
    store = LocalStore.create(kb_dir, embedding_model=embedder.name, dimension=embedder.dimension)
    # As an ingest writes: under the writer lock, whose end switches the vector index
    # to IVF-PQ past APPROXIMATE_FROM chunks and writes a checkpoint.
    writing = store.writing(timeout=60)
    writing.__enter__()
    batch: list[NewDocument] = []
    for doc_no in range(size // CHUNKS_PER_DOCUMENT):
        source = f"synthetic/{doc_no:07d}"
        chunks, tokens, shares, offset = [], [], [], 0
        for _ in range(CHUNKS_PER_DOCUMENT):
            picks = rng.sample(range(len(sentences)), rng.randint(3, 5))
            text = " ".join(sentences[i] for i in picks)
            chunks.append(Chunk(text, source, 1, offset, offset + len(text)))
            tokens.append([t for i in picks for t in sentence_tokens[i]])
            shares.append(float(unknown[picks].sum() / max(total[picks].sum(), 1)))
            offset += len(text) + 1
        vectors = vector_rng.standard_normal((len(chunks), embedder.dimension), dtype=np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        page = " ".join(c.text for c in chunks)
        batch.append(NewDocument(source, source, 1, chunks, vectors, tokens, ((1, page),), shares))
        if len(batch) == WRITE_BATCH_DOCUMENTS:
            store.write_documents(batch)
            batch = []
    store.write_documents(batch)
    writing.__exit__(None, None, None)
    store.close()
    return {"build_s": time.perf_counter() - started, "chunks": size}


# -------------------------------------------------------------- measuring it


def _measure_worker(kb_dir: Path, data_dir: Path, queries: int) -> dict[str, Any]:
    from ragqa import KnowledgeBase
    from ragqa.lexical import tokenize

    rss_before = current_rss_mb()
    started = time.perf_counter()
    kb = KnowledgeBase.open(kb_dir)
    for mode in MODES:  # loads the model, jieba and the indexes before timing
        kb.search("warm up 暖身", mode=mode)
    load_s = time.perf_counter() - started
    rss_loaded = current_rss_mb()

    rng = random.Random(1)
    pool = load_questions(data_dir, "squad") + load_questions(data_dir, "drcd")
    questions = rng.sample(pool, min(queries, len(pool)))
    store, embedder = kb._store, kb.embedder  # the parts, timed on their own
    parts: dict[str, list[float]] = {"embed_query": [], "tokenize": [], "faiss": [], "bm25": []}
    totals: dict[str, list[float]] = {mode: [] for mode in MODES}
    for question in questions:
        t0 = time.perf_counter()
        vector = embedder.embed_query(question)
        t1 = time.perf_counter()
        terms = tokenize(question)
        t2 = time.perf_counter()
        store.dense_search(vector, SEARCH_DEPTH)
        t3 = time.perf_counter()
        store.lexical_search(terms, SEARCH_DEPTH)
        t4 = time.perf_counter()
        for name, seconds in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            parts[name].append(seconds)
        for mode in MODES:
            t = time.perf_counter()
            kb.search(question, mode=mode)
            totals[mode].append(time.perf_counter() - t)

    # Remove one document from the middle: the FAISS ids, BM25 postings, SQLite rows,
    # and the rewritten index files.
    source = kb.documents()[len(kb.documents()) // 2].source
    t = time.perf_counter()
    removed = kb.remove(source)
    remove_s = time.perf_counter() - t
    chunks = len(kb)
    kb.close()
    return {
        "chunks": chunks,
        "queries": len(questions),
        "load_s": load_s,
        "rss_before_open_mb": rss_before,
        "rss_loaded_mb": rss_loaded,
        "totals": {m: percentiles_ms(v) for m, v in totals.items()},
        "parts": {n: percentiles_ms(v) for n, v in parts.items()},
        "remove_s": remove_s,
        "removed": removed,
    }


def _first_answer_worker(kb_dir: Path) -> dict[str, Any]:
    t0 = time.perf_counter()
    from ragqa import KnowledgeBase

    t1 = time.perf_counter()
    kb = KnowledgeBase.open(kb_dir)
    t2 = time.perf_counter()
    answer = kb.ask("When was the university founded?")
    t3 = time.perf_counter()
    kb.close()
    return {
        "import_s": t1 - t0,
        "open_s": t2 - t1,
        "ask_s": t3 - t2,
        "answer_chars": len(answer.text),
    }


def _import_times(repeats: int = 5) -> dict[str, Any]:
    """Median wall time of a new interpreter that imports each module."""

    def timed(code: str) -> tuple[float, str]:
        times, out = [], ""
        for _ in range(repeats):
            t = time.perf_counter()
            out = subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True
            ).stdout.strip()
            times.append(time.perf_counter() - t)
        return float(np.median(times)), out

    empty, _ = timed("pass")
    ragqa_s, loads_torch = timed("import sys, ragqa; print('torch' in sys.modules)")
    torch_s, _ = timed("import torch")
    return {
        "python_s": empty,
        "ragqa_s": ragqa_s,
        "torch_s": torch_s,
        "ragqa_loads_torch": loads_torch == "True",
    }


# ------------------------------------------------------------ FAISS at scale


def _clustered_vectors(n: int, dim: int, seed: int) -> np.ndarray:
    """Unit vectors around 1,000 random centres: closer to text embeddings than
    uniform noise, on which every approximate index looks worse than it is."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((1000, dim), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 100_000):
        stop = min(n, start + 100_000)
        x = centres[rng.integers(0, 1000, stop - start)]
        x = x + 0.08 * rng.standard_normal((stop - start, dim), dtype=np.float32)
        out[start:stop] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def _faiss_worker(size: int, queries: int) -> dict[str, Any]:
    import faiss

    dim = 384
    data = _clustered_vectors(size, dim, seed=0)
    # Queries come from the same distribution, not from the data.
    query_vectors = _clustered_vectors(queries, dim, seed=0)
    query_vectors += 0.02 * np.random.default_rng(2).standard_normal(
        query_vectors.shape, dtype=np.float32
    )
    query_vectors /= np.linalg.norm(query_vectors, axis=1, keepdims=True)

    def build_flat() -> Any:
        index = faiss.IndexFlatIP(dim)
        index.add(data)
        return index

    def build_hnsw() -> Any:
        index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
        index.add(data)
        return index

    nlist = int(4 * np.sqrt(size))

    def build_ivfpq(add: bool = True) -> Any:
        quantizer = faiss.IndexFlatIP(dim)
        # 48 sub-quantizers of 8 bits: 48 bytes a vector instead of 1,536.
        index = faiss.IndexIVFPQ(quantizer, dim, nlist, 48, 8, faiss.METRIC_INNER_PRODUCT)
        sample = data[np.random.default_rng(3).choice(size, min(size, 20 * nlist), replace=False)]
        index.train(sample)
        if add:
            index.add(data)
        return index

    def timed_search(index: Any) -> tuple[float, np.ndarray]:
        index.search(query_vectors[:5], 10)  # warm-up
        times, found = [], []
        for q in query_vectors:
            t = time.perf_counter()
            _, ids = index.search(q.reshape(1, -1), 10)
            times.append(time.perf_counter() - t)
            found.append(ids[0])
        return percentiles_ms(times)["p50"], np.asarray(found)

    def build_ivfpq_refined() -> Any:
        # PQ codes alone cap recall; re-ranking 10x k candidates with the exact
        # vectors restores it, at the cost of keeping those vectors in memory.
        index = faiss.IndexRefineFlat(build_ivfpq(add=False))
        index.add(data)
        index.k_factor = 10
        return index

    rows = []
    exact_ids: np.ndarray | None = None
    for name, build, settings in (
        ("IndexFlatIP (exact)", build_flat, [("", None)]),
        ("IndexHNSWFlat M=32", build_hnsw, [("efSearch=64", 64), ("efSearch=128", 128)]),
        (f"IndexIVFPQ nlist={nlist} m=48", build_ivfpq, [("nprobe=16", 16), ("nprobe=64", 64)]),
        (f"IVFPQ nlist={nlist} + IndexRefineFlat x10", build_ivfpq_refined, [("nprobe=64", 64)]),
    ):
        t = time.perf_counter()
        index = build()
        build_s = time.perf_counter() - t
        memory_mb = faiss.serialize_index(index).nbytes / 2**20
        for label, value in settings:
            if "efSearch" in label:
                index.hnsw.efSearch = value
            elif "nprobe" in label:
                faiss.extract_index_ivf(index).nprobe = value
            p50, ids = timed_search(index)
            if exact_ids is None:
                exact_ids = ids
            recall = np.mean(
                [len(set(a) & set(b)) / 10 for a, b in zip(ids, exact_ids, strict=True)]
            )
            rows.append(
                {
                    "index": f"{name} {label}".strip(),
                    "p50_ms": p50,
                    "recall10": float(recall),
                    "build_s": build_s,
                    "memory_mb": memory_mb,
                }
            )
        del index
    return {"size": size, "rows": rows}


# ------------------------------------------------------------------- driver


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=default_data_dir())
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=200, help="questions per size")
    parser.add_argument("--faiss-sizes", type=int, nargs="*", default=None)
    parser.add_argument("--full", action="store_true", help="FAISS at 1M chunks too")
    parser.add_argument("--work-dir", type=Path, help="keep the built knowledge bases here")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--worker", choices=["build", "measure", "first-answer", "faiss"], help=argparse.SUPPRESS
    )
    parser.add_argument("--kb", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        size = args.sizes[0]
        if args.worker == "build":
            result = _build_worker(args.kb, size, args.data_dir)
        elif args.worker == "measure":
            result = _measure_worker(args.kb, args.data_dir, args.queries)
        elif args.worker == "first-answer":
            result = _first_answer_worker(args.kb)
        else:
            result = _faiss_worker(size, args.queries)
        print(json.dumps({**result, "peak_rss_mb": peak_rss_mb()}))
        return

    faiss_sizes = args.faiss_sizes
    if faiss_sizes is None:
        faiss_sizes = [100_000, 1_000_000] if args.full else [100_000]
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work_dir or Path(tmp)
        results = run(args, work, faiss_sizes)
    report(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


def run(args: argparse.Namespace, work: Path, faiss_sizes: list[int]) -> dict[str, Any]:
    common = ["--data-dir", str(args.data_dir), "--queries", str(args.queries)]
    out: dict[str, Any] = {"machine": machine(), "kb": [], "faiss": []}
    for size in args.sizes:
        kb_dir = work / f"kb-{size}"
        if not (kb_dir / "manifest.json").exists():
            print(f"  building {size:,} chunks ...", file=sys.stderr, flush=True)
            built = run_worker(
                HERE, ["--worker", "build", "--kb", str(kb_dir), "--sizes", str(size), *common]
            )
        else:
            built = {"build_s": float("nan")}
        print(f"  measuring {size:,} chunks ...", file=sys.stderr, flush=True)
        measured = run_worker(
            HERE, ["--worker", "measure", "--kb", str(kb_dir), "--sizes", str(size), *common]
        )
        out["kb"].append({"size": size, "build_s": built["build_s"], **measured})
        if size == min(args.sizes):
            print("  first answer in a new process ...", file=sys.stderr, flush=True)
            t = time.perf_counter()
            first = run_worker(HERE, ["--worker", "first-answer", "--kb", str(kb_dir)])
            out["first_answer"] = {"wall_s": time.perf_counter() - t, "chunks": size, **first}
    print("  import times ...", file=sys.stderr, flush=True)
    out["imports"] = _import_times()
    for size in faiss_sizes:
        print(f"  FAISS at {size:,} ...", file=sys.stderr, flush=True)
        out["faiss"].append(
            run_worker(HERE, ["--worker", "faiss", "--sizes", str(size), "--queries", "200"])
        )
    return out


def report(results: dict[str, Any]) -> None:
    print(f"machine: {results['machine']}")
    print("synthetic chunks (recombined SQuAD/DRCD sentences) with random unit vectors")
    print("written through LocalStore.write_documents; query vectors from the real model\n")
    rows = []
    for r in results["kb"]:
        for mode in MODES:
            t = r["totals"][mode]
            rows.append([f"{r['chunks']:,}", mode, t["p50"], t["p95"], t["p99"]])
    print("KnowledgeBase.search latency, ms (target at 100k: p50 <= 15, p99 <= 50)\n")
    print_table(["chunks", "mode", "p50", "p95", "p99"], rows)

    print("\nparts, p50 ms (depth 100); rest = hybrid p50 minus the parts\n")
    rows = []
    for r in results["kb"]:
        p = {n: v["p50"] for n, v in r["parts"].items()}
        rest = r["totals"]["hybrid"]["p50"] - sum(p.values())
        rows.append(
            [f"{r['chunks']:,}", p["embed_query"], p["tokenize"], p["faiss"], p["bm25"], rest]
        )
    print_table(["chunks", "embed_query", "tokenize", "FAISS", "BM25", "rest"], rows)

    print("\nmemory, build and remove (target: remove from 100k < 1 s)\n")
    rows = [
        [
            f"{r['chunks'] + 10 * r['removed']:,}",
            r["rss_loaded_mb"],
            r["rss_before_open_mb"],
            r["load_s"],
            r["build_s"],
            r["remove_s"],
        ]
        for r in results["kb"]
    ]
    print_table(
        ["chunks", "RSS loaded MB", "RSS before open MB", "open+warm s", "build s", "remove s"],
        rows,
    )

    imp = results["imports"]
    print(
        f"\nimports (median of 5 new interpreters): python alone {imp['python_s']:.2f} s, "
        f"import ragqa {imp['ragqa_s']:.2f} s (loads torch: {imp['ragqa_loads_torch']}), "
        f"import torch {imp['torch_s']:.2f} s"
    )
    if "first_answer" in results:
        f = results["first_answer"]
        print(
            f"first answer in a new process ({f['chunks']:,} chunks, extractive): "
            f"{f['wall_s']:.2f} s wall "
            f"= import {f['import_s']:.2f} + open {f['open_s']:.2f} + ask {f['ask_s']:.2f} "
            "(+ interpreter start)"
        )
    for block in results["faiss"]:
        print(
            f"\nFAISS alone, {block['size']:,} clustered unit vectors, 384 d, 200 queries "
            "(target at 1M: p50 <= 25 ms with recall@10 >= 0.95)\n"
        )
        print_table(
            ["index", "p50 ms", "recall@10", "build s", "memory MB"],
            [
                [r["index"], r["p50_ms"], f"{r['recall10']:.3f}", r["build_s"], r["memory_mb"]]
                for r in block["rows"]
            ],
        )


if __name__ == "__main__":
    main()
