"""Helpers shared by ``bench/ingest.py`` and ``bench/query.py``.

Both benchmarks run each measured pipeline in its own child process, so that peak
resident memory (``ru_maxrss``) belongs to one pipeline only, and both read the
same two question sets from ``../shared/data`` beside the repository.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
SQUAD_FILE = "squad_dev_v1.1_articles_01-12.json"
DRCD_FILE = "drcd_dev.json"
CORPORA = {"squad": SQUAD_FILE, "drcd": DRCD_FILE}


def default_data_dir() -> Path:
    """``$SHARED_DATA_DIR``, else ``../shared/data`` beside the repository."""
    return Path(os.environ.get("SHARED_DATA_DIR", REPO.parent / "shared" / "data"))


def load_paragraphs(data_dir: Path, corpus: str, limit: int | None = None) -> dict[str, str]:
    """The distinct paragraphs of a SQuAD-format file, keyed by a stable source name."""
    with open(data_dir / CORPORA[corpus], encoding="utf-8") as f:
        data = json.load(f)["data"]
    texts: dict[str, str] = {}
    for article_no, article in enumerate(data):
        for para_no, para in enumerate(article["paragraphs"]):
            texts.setdefault(f"{corpus}/{article_no}/{para_no}", para["context"])
    items = list(texts.items())[: limit or None]
    return dict(items)


def load_questions(data_dir: Path, corpus: str) -> list[str]:
    """Every question of a SQuAD-format file, in file order."""
    with open(data_dir / CORPORA[corpus], encoding="utf-8") as f:
        data = json.load(f)["data"]
    return [qa["question"] for a in data for p in a["paragraphs"] for qa in p["qas"]]


def peak_rss_mb() -> float:
    """This process's peak resident memory so far (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    """This process's resident memory now, from /proc (Linux only)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def percentiles_ms(seconds: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99 of a list of durations, in milliseconds."""
    ms = np.asarray(seconds) * 1000
    return {f"p{p}": float(np.percentile(ms, p)) for p in (50, 95, 99)}


def run_worker(
    script: Path,
    args: Sequence[str],
    timeout: float = 7200,
    env_overrides: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Run ``script --worker ...`` in a fresh interpreter; it prints one JSON line last."""
    env = dict(os.environ, TOKENIZERS_PARALLELISM="false", **(env_overrides or {}))
    proc = subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"worker {args} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def machine() -> str:
    """One line naming the CPU, its cores and the memory, for the results."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        mem_kb = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
        mem = f"{mem_kb / 2**20:.0f} GiB RAM"
    except (OSError, StopIteration):
        mem = "unknown RAM"
    return f"{model}, {os.cpu_count()} cores, {mem}, Python {platform.python_version()}"


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A Markdown table, so that the output can be pasted into RESULTS.md."""

    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:,.1f}" if abs(value) >= 10 else f"{value:.2f}"
        return str(value)

    print("| " + " | ".join(headers) + " |")
    print("|" + "---|" * len(headers))
    for row in rows:
        print("| " + " | ".join(cell(v) for v in row) + " |")
