"""Query latency and memory of ragqa's knowledge base, and FAISS index choices at scale.

What is measured:

1. ``KnowledgeBase.search`` latency (p50/p95/p99) in each mode (dense, lexical,
   hybrid) at 10k and 100k chunks, with the default settings, over SQuAD and DRCD
   questions. Each question is searched in hybrid mode first, so that no other search
   of it has filled the caches hybrid reads. Beside it, the parts timed on their own,
   after those searches: the embedder's ``embed_query``, ``ragqa.lexical.tokenize``, the
   store's ``dense_search`` (FAISS) and ``lexical_search`` (BM25), at the depth hybrid
   fusion uses (100). Hybrid runs the two sides at once (question and FAISS beside
   tokenizer and BM25), so "rest" is hybrid minus the longer side: fusion, the
   relevance gate and reading chunks from SQLite.
   Also: resident memory (RSS) after opening the knowledge base and one search, and the
   time of ``kb.remove`` of one 10-chunk document (which includes rewriting the index
   files), and hybrid latency again right after it, while the removed chunks' postings
   wait in BM25 for the next checkpoint. A checkpoint then follows, so that a rerun
   with ``--work-dir`` starts from a compact index, as a fresh build does.
2. ``python -c "import ragqa"`` against ``python -c "import torch"`` (median of 5), and
   whether importing ragqa loads torch.
3. The first answer in a new process: open the 10k knowledge base and ``kb.ask`` one
   question with the default extractive answerer. Twice, in an empty cache of its own:
   the very first start exports the ONNX query encoder (loading torch for it); a later
   start reads the export and never imports torch.
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
    embedder = get_embedder(Settings.from_env().embedding_model)
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
    sample = rng.sample(pool, min(2 * queries, len(pool)))
    # Questions of their own for after the removal, so that it finds no cache warm.
    questions, after_questions = sample[:queries], sample[queries:]
    store, embedder = kb._store, kb.embedder  # the parts, timed on their own
    parts: dict[str, list[float]] = {"embed_query": [], "tokenize": [], "faiss": [], "bm25": []}
    totals: dict[str, list[float]] = {mode: [] for mode in MODES}
    for question in questions:
        # Each question is searched in hybrid mode first, as a user's new question
        # is: the other modes and the parts below read the same chunks, and would
        # leave their vectors and terms in the store's and the retriever's caches.
        for mode in ("hybrid", "dense", "lexical"):
            t = time.perf_counter()
            kb.search(question, mode=mode)
            totals[mode].append(time.perf_counter() - t)
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

    # The same questions embedded by torch, which ragqa used before its ONNX Runtime
    # query encoder: the baseline for that part, measured in this run.
    from ragqa.embeddings import get_embedder

    torch_embedder = get_embedder(kb.settings.embedding_model, query_backend="torch")
    torch_embedder.embed_query("warm up")
    torch_times = []
    for question in questions:
        t = time.perf_counter()
        torch_embedder.embed_query(question)
        torch_times.append(time.perf_counter() - t)

    # Remove one document from the middle: the FAISS ids, BM25 postings, SQLite rows,
    # and the rewritten index files.
    source = kb.documents()[len(kb.documents()) // 2].source
    t = time.perf_counter()
    removed = kb.remove(source)
    remove_s = time.perf_counter() - t
    chunks = len(kb)
    # Until the next checkpoint, the removed chunks' postings stay in BM25's lists
    # (and the removal in the change log): hybrid search once more, in that state.
    after_removal = []
    for question in after_questions:
        t = time.perf_counter()
        kb.search(question, mode="hybrid")
        after_removal.append(time.perf_counter() - t)
    # Then a checkpoint, so that a later run with --work-dir starts from a compact
    # index like a fresh build (one document fewer) rather than replaying removals.
    with store.writing(timeout=60):
        store.flush()
    kb.close()
    return {
        "chunks": chunks,
        "queries": len(questions),
        "load_s": load_s,
        "rss_before_open_mb": rss_before,
        "rss_loaded_mb": rss_loaded,
        "totals": {m: percentiles_ms(v) for m, v in totals.items()},
        "parts": {n: percentiles_ms(v) for n, v in parts.items()},
        "embed_query_torch": percentiles_ms(torch_times),
        "remove_s": remove_s,
        "removed": removed,
        "hybrid_after_removal": percentiles_ms(after_removal),
    }


def _first_answer_worker(kb_dir: Path) -> dict[str, Any]:
    t0 = time.perf_counter()
    from ragqa import KnowledgeBase

    t1 = time.perf_counter()
    kb = KnowledgeBase.open(kb_dir)
    t2 = time.perf_counter()
    answer = kb.ask("When was the university founded?")
    t3 = time.perf_counter()
    # What the first answer paid for: loading the model is all but one query of it.
    t4 = time.perf_counter()
    kb.ask("Who designed the building?")
    t5 = time.perf_counter()
    kb.close()
    return {
        "torch_loaded": "torch" in sys.modules,
        "import_s": t1 - t0,
        "open_s": t2 - t1,
        "ask_s": t3 - t2,
        "second_ask_s": t5 - t4,
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
    """Unit vectors around 1,000 random centres, as text embeddings cluster by
    topic: two points of one centre have a cosine of about 0.7, of two centres
    about 0 (uniform noise, on which every approximate index looks worse than it
    is, has no such structure). The centres are always the same; ``seed`` picks
    the points around them."""
    centres = np.random.default_rng(0).standard_normal((1000, dim), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    rng = np.random.default_rng(seed + 1)
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 100_000):
        stop = min(n, start + 100_000)
        x = centres[rng.integers(0, 1000, stop - start)]
        x = x + 0.035 * rng.standard_normal((stop - start, dim), dtype=np.float32)
        out[start:stop] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def _faiss_worker(size: int, queries: int) -> dict[str, Any]:
    """FAISS alone: exact search against ragqa's approximate index, as the store
    builds and searches it (``ragqa.stores.local``), and HNSW for comparison."""
    import faiss

    from ragqa.stores import ivf as ivf_index

    faiss.omp_set_num_threads(1)  # as LocalStore.dense_search does for one query
    dim, k = 384, 10
    data = _clustered_vectors(size, dim, seed=0)
    # Queries come from the same distribution, not from the data.
    query_vectors = _clustered_vectors(queries, dim, seed=1)
    query_vectors += 0.02 * np.random.default_rng(2).standard_normal(
        query_vectors.shape, dtype=np.float32
    )
    query_vectors /= np.linalg.norm(query_vectors, axis=1, keepdims=True)
    ids = np.arange(size, dtype=np.int64)

    def chunks(*_args: Any, **_kwargs: Any) -> Any:
        for start in range(0, size, 100_000):
            yield ids[start : start + 100_000], data[start : start + 100_000], []

    def exact_search(index: Any, q: np.ndarray) -> np.ndarray:
        return index.search(q.reshape(1, -1), k)[1][0]

    def ragqa_search(index: Any, q: np.ndarray, wanted: int) -> np.ndarray:
        # LocalStore.dense_search: PQ candidates, re-scored with the exact vectors.
        candidates = index.search(q.reshape(1, -1), wanted)[1][0]
        candidates = candidates[candidates >= 0]
        exact = data[candidates] @ q
        return candidates[np.argsort(-exact)[:k]]

    def timed(search: Any) -> tuple[float, np.ndarray]:
        for q in query_vectors[:5]:
            search(q)  # warm-up
        times, found = [], []
        for q in query_vectors:
            t = time.perf_counter()
            found.append(search(q))
            times.append(time.perf_counter() - t)
        return percentiles_ms(times)["p50"], np.asarray(found)

    rows: list[dict[str, Any]] = []
    t = time.perf_counter()
    flat = faiss.IndexFlatIP(dim)
    flat.add(data)
    flat_build = time.perf_counter() - t
    p50, exact_ids = timed(lambda q: exact_search(flat, q))
    rows.append(_row("IndexFlatIP (exact)", p50, 1.0, flat_build, flat))

    def recall(found: np.ndarray) -> float:
        return float(
            np.mean([len(set(a) & set(b)) / k for a, b in zip(found, exact_ids, strict=True)])
        )

    t = time.perf_counter()
    ivf = ivf_index.build_ivfpq(dim, size, chunks)
    build = time.perf_counter() - t
    nlist = faiss.extract_index_ivf(ivf).nlist
    # ragqa re-scores max(IVF_RERANK_FACTOR * k, IVF_MIN_CANDIDATES) = 400
    # candidates, for a dense search of 10 as for hybrid search's depth of 100.
    ivf_index.configure(ivf)
    for nprobe in sorted({16, 32, 64, 128, ivf.nprobe}):
        ivf.nprobe = nprobe
        for wanted in (100, 400):
            p50, found = timed(lambda q, w=wanted: ragqa_search(ivf, q, w))
            label = f"ragqa IVF-PQ nlist={nlist} m=48, nprobe={nprobe}, re-score {wanted}"
            rows.append(_row(label, p50, recall(found), build, ivf))
    if size <= 200_000:  # HNSW's build takes too long at a million on 2 cores
        t = time.perf_counter()
        hnsw = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
        hnsw.add(data)
        build = time.perf_counter() - t
        for ef in (64, 128):
            hnsw.hnsw.efSearch = ef
            p50, found = timed(lambda q: exact_search(hnsw, q))
            rows.append(_row(f"IndexHNSWFlat M=32 efSearch={ef}", p50, recall(found), build, hnsw))
    return {"size": size, "rows": rows}


def _real_vectors_worker(data_dir: Path, queries: int) -> dict[str, Any]:
    """ragqa's IVF-PQ on real vectors: the bundled model's embeddings of every
    distinct SQuAD and DRCD sentence, searched with real questions."""
    import faiss

    from ragqa import Settings
    from ragqa.embeddings import get_embedder
    from ragqa.stores import ivf as ivf_index

    faiss.omp_set_num_threads(1)
    embedder = get_embedder(Settings.from_env().embedding_model)
    sentences = list(dict.fromkeys(_sentences(data_dir)))
    data = embedder.embed(sentences)
    rng = random.Random(1)
    pool = load_questions(data_dir, "squad") + load_questions(data_dir, "drcd")
    query_vectors = np.vstack([embedder.embed_query(q) for q in rng.sample(pool, queries)])
    flat = faiss.IndexFlatIP(data.shape[1])
    flat.add(data)
    exact = flat.search(query_vectors, 10)[1]
    ids = np.arange(len(data), dtype=np.int64)
    ivf = ivf_index.build_ivfpq(data.shape[1], len(data), lambda: iter([(ids, data, [])]))
    ivf_index.configure(ivf)
    default = ivf.nprobe
    rows = []
    for nprobe in sorted({8, 16, default, 64}):
        ivf.nprobe = nprobe
        candidates = ivf.search(query_vectors, ivf_index.IVF_MIN_CANDIDATES)[1]
        found = []
        for q, c in zip(query_vectors, candidates, strict=True):
            c = c[c >= 0]
            found.append(c[np.argsort(-(data[c] @ q))[:10]])
        recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, exact, strict=True)])
        rows.append({"nprobe": nprobe, "nlist": ivf.nlist, "recall10": float(recall)})
    return {"vectors": len(data), "default_nprobe": default, "rows": rows}


def _row(name: str, p50: float, recall10: float, build_s: float, index: Any) -> dict[str, Any]:
    import faiss

    return {
        "index": name,
        "p50_ms": p50,
        "recall10": recall10,
        "build_s": build_s,
        "memory_mb": faiss.serialize_index(index).nbytes / 2**20,
    }


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
        "--worker",
        choices=["build", "measure", "first-answer", "faiss", "real"],
        help=argparse.SUPPRESS,
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
        elif args.worker == "real":
            result = _real_vectors_worker(args.data_dir, args.queries)
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
            # Twice, in a cache of its own: the very first start exports the query
            # encoder to ONNX (torch loads for that); every later start reads it.
            out["first_answer"] = []
            with tempfile.TemporaryDirectory() as cache:
                for start in ("first start, empty cache", "later start"):
                    t = time.perf_counter()
                    first = run_worker(
                        HERE,
                        ["--worker", "first-answer", "--kb", str(kb_dir)],
                        env_overrides={"XDG_CACHE_HOME": cache},
                    )
                    wall = time.perf_counter() - t
                    out["first_answer"].append(
                        {"start": start, "wall_s": wall, "chunks": size, **first}
                    )
    print("  import times ...", file=sys.stderr, flush=True)
    out["imports"] = _import_times()
    print("  IVF-PQ recall on real vectors ...", file=sys.stderr, flush=True)
    out["real"] = run_worker(HERE, ["--worker", "real", *common])
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
        t = r["hybrid_after_removal"]
        rows.append([f"{r['chunks']:,}", "hybrid, after a removal", t["p50"], t["p95"], t["p99"]])
    print("KnowledgeBase.search latency, ms (target at 100k: p50 <= 15, p99 <= 50)\n")
    print_table(["chunks", "mode", "p50", "p95", "p99"], rows)

    print("\nparts, p50 ms (depth 100); rest = hybrid p50 minus the longer side\n")
    rows = []
    for r in results["kb"]:
        p = {n: v["p50"] for n, v in r["parts"].items()}
        longer_side = max(p["embed_query"] + p["faiss"], p["tokenize"] + p["bm25"])
        rest = r["totals"]["hybrid"]["p50"] - longer_side
        rows.append(
            [
                f"{r['chunks']:,}",
                p["embed_query"],
                r["embed_query_torch"]["p50"],
                p["tokenize"],
                p["faiss"],
                p["bm25"],
                rest,
            ]
        )
    headers = ["chunks", "embed_query", "(torch instead)", "tokenize", "FAISS", "BM25", "rest"]
    print_table(headers, rows)

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
    for f in results.get("first_answer", []):
        print(
            f"first answer in a new process ({f['start']}; {f['chunks']:,} chunks, "
            f"extractive): {f['wall_s']:.2f} s wall = import {f['import_s']:.2f} + open "
            f"{f['open_s']:.2f} + ask {f['ask_s']:.2f} (+ interpreter start), torch loaded: "
            f"{f['torch_loaded']}; a second question then takes {f['second_ask_s']:.3f} s"
        )
    real = results.get("real")
    if real:
        print(
            f"\nragqa's IVF-PQ on real vectors ({real['vectors']:,} distinct SQuAD and DRCD "
            f"sentences, the bundled model; {results['kb'][0]['queries']} real questions): "
            "recall@10 against exact search, 400 candidates re-scored; ragqa's nprobe is "
            f"{real['default_nprobe']}\n"
        )
        print_table(
            ["nlist", "nprobe", "recall@10"],
            [[r["nlist"], r["nprobe"], f"{r['recall10']:.3f}"] for r in real["rows"]],
        )
    for block in results["faiss"]:
        print(
            f"\nFAISS alone, {block['size']:,} clustered unit vectors, 384 d, 200 queries, "
            "one thread (target at 1M: p50 <= 25 ms with recall@10 >= 0.95 against exact)\n"
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
