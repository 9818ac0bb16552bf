"""The ``ragqa`` command: ingest, search, info, remove, demo.

Every command goes through :class:`ragqa.KnowledgeBase`; this module only parses
options, draws progress bars and prints. Errors ragqa raises on purpose become one
line on stderr and a non-zero exit code, never a traceback.

Exit codes: 0 success; 1 error; 3 some files failed to ingest (the rest were stored).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from ragqa.config import LLM_BACKENDS, RETRIEVAL_MODES, Settings
from ragqa.errors import RagqaError
from ragqa.knowledge_base import IngestProgress, KnowledgeBase
from ragqa.types import IngestReport

__all__ = ["main"]

EXIT_ERROR = 1
EXIT_PARTIAL = 3


class _Group(click.Group):
    """Turn ragqa's errors into a one-line message and an exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except RagqaError as exc:
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(EXIT_ERROR)
        except KeyboardInterrupt:
            click.echo("Interrupted; everything committed so far is kept.", err=True)
            ctx.exit(130)


def kb_option(func: Callable[..., Any]) -> Callable[..., Any]:
    # --kb and --store are one option: a directory, or a store URI such as
    # milvus:///path/kb.db or milvus://host:19530/name (see ragqa.stores).
    return click.option(
        "--kb",
        "--store",
        "kb_dir",
        envvar=["RAGQA_STORE", "RAGQA_KB_DIR"],
        required=True,
        metavar="DIR|URI",
        help="Knowledge base: a directory, or a store URI such as milvus:///kb.db or "
        "milvus://host:19530/name (env RAGQA_STORE or RAGQA_KB_DIR).",
    )(func)


def _settings(**overrides: Any) -> Settings:
    return Settings.from_env(**overrides)


def _explicit_model(option: str | None) -> str | None:
    """The embedding model the user chose, if any (option or environment)."""
    return option or os.environ.get("RAGQA_EMBEDDING_MODEL") or None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ragqa")
def cli() -> None:
    """Ask questions of your own documents, in Chinese and English."""


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@kb_option
@click.option("--pdf-password", envvar="RAGQA_PDF_PASSWORD", help="Password for encrypted PDFs.")
@click.option(
    "--embedding-model", help="Model for a new knowledge base (env RAGQA_EMBEDDING_MODEL)."
)
@click.option("--chunk-size", type=int, help="Characters per chunk (env RAGQA_CHUNK_SIZE).")
@click.option("--chunk-overlap", type=int, help="Overlap in characters (env RAGQA_CHUNK_OVERLAP).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def ingest(
    paths: tuple[Path, ...],
    kb_dir: str,
    pdf_password: str | None,
    embedding_model: str | None,
    chunk_size: int | None,
    chunk_overlap: int | None,
    as_json: bool,
    quiet: bool,
) -> None:
    """Add files and folders (recursively) to a knowledge base, creating it if needed.

    Unchanged files are skipped, changed files replace their old version, and a file
    that cannot be read is reported with its cause while the rest go on.
    """
    settings = _settings(chunk_size=chunk_size, chunk_overlap=chunk_overlap)
    with KnowledgeBase.open_or_create(
        kb_dir, settings=settings, embedding_model=_explicit_model(embedding_model)
    ) as kb:
        report = run_ingest(kb, list(paths), pdf_password=pdf_password, quiet=quiet or as_json)
    if as_json:
        click.echo(json.dumps(report_to_dict(report), ensure_ascii=False, indent=2))
    else:
        print_report(report)
    if report.failed:
        sys.exit(EXIT_PARTIAL)


@contextmanager
def ingest_progress(quiet: bool) -> Iterator[Callable[[IngestProgress], None]]:
    """A tqdm bar on stderr, as a progress callback for an ingest; failed files are
    printed above it as they happen (shared by the CLI and the ``ingest/`` scripts)."""
    from tqdm import tqdm

    bar = tqdm(total=0, unit="file", disable=quiet, file=sys.stderr, dynamic_ncols=True)

    def on_progress(event: IngestProgress) -> None:
        bar.total = event.files_total
        bar.n = event.files_done
        name = Path(event.source).name
        if event.stage == "embedding":
            bar.set_postfix_str(f"embedding {name} {event.fraction:.0%}", refresh=False)
        else:
            bar.set_postfix_str(f"{event.stage} {name}", refresh=False)
        if event.result is not None and event.result.status == "failed":
            bar.write(f"failed: {event.result.error}", file=sys.stderr)
        bar.refresh()

    try:
        yield on_progress
    finally:
        bar.close()


def run_ingest(
    kb: KnowledgeBase, paths: list[Path], *, pdf_password: str | None, quiet: bool
) -> IngestReport:
    """``kb.add`` with a progress bar on stderr."""
    with ingest_progress(quiet) as on_progress:
        return kb.add(paths, pdf_password=pdf_password, progress=on_progress)


def print_report(report: IngestReport) -> None:
    for warning in report.warnings:
        click.echo(f"Warning: {warning}", err=True)
    click.echo(report.summary())


def add_store_argument(parser: Any) -> None:
    """``--kb``/``--store`` for the argparse scripts in ``ingest/``, like the CLI's."""
    default = os.environ.get("RAGQA_STORE") or os.environ.get("RAGQA_KB_DIR")
    parser.add_argument(
        "--kb",
        "--store",
        dest="kb",
        default=default,
        required=not default,
        help="Knowledge base: a directory or a store URI such as milvus:///kb.db or "
        "milvus://host:19530/name (env RAGQA_STORE or RAGQA_KB_DIR).",
    )


def finish_folder_ingest(
    report: IngestReport, pruned: list[str], folder: Path, report_path: Path | None
) -> int:
    """Print what a folder ingest did, write its JSON report, return the exit code."""
    print_report(report)
    if pruned:
        click.echo(f"{len(pruned)} removed (files gone from {folder})")
    if report_path:
        payload = report_to_dict(report) | {"removed": pruned}
        report_path.write_text(json.dumps(payload, ensure_ascii=False, indent=2), encoding="utf-8")
    return EXIT_PARTIAL if report.failed else 0


def report_to_dict(report: IngestReport) -> dict[str, Any]:
    return {
        "added": report.added,
        "unchanged": report.unchanged,
        "replaced": report.replaced,
        "failed": report.failed,
        "chunks": report.chunks,
        "seconds": round(report.seconds, 3),
        "files": [asdict(f) for f in report.files],
        "warnings": list(report.warnings),
    }


@cli.command()
@click.argument("query")
@kb_option
@click.option("-k", "--top-k", "k", type=int, help="How many hits (env RAGQA_TOP_K).")
@click.option("--mode", type=click.Choice(RETRIEVAL_MODES), help="Retrieval mode.")
@click.option("--json", "as_json", is_flag=True, help="Print hits as JSON.")
def search(query: str, kb_dir: str, k: int | None, mode: str | None, as_json: bool) -> None:
    """Find the passages that best match QUERY."""
    settings = _settings(top_k=k, retrieval_mode=mode)
    with KnowledgeBase.open(kb_dir, settings=settings) as kb:
        hits = kb.search(query)
    if as_json:
        payload = [h.to_dict(rank) for rank, h in enumerate(hits, start=1)]
        click.echo(json.dumps(payload, ensure_ascii=False, indent=2))
        return
    if not hits:
        click.echo("No matching passages.")
    for rank, hit in enumerate(hits, start=1):
        click.secho(
            f"[{rank}] {hit.file_name}, page {hit.page}  (score {hit.score:.3f})", bold=True
        )
        click.echo(_indent(_shorten(hit.text, 400)))


@cli.command()
@click.argument("question")
@kb_option
@click.option("--llm", type=click.Choice(LLM_BACKENDS), help="Answering backend (env RAGQA_LLM).")
@click.option("--llm-model", help="Model name, or GGUF path for llamacpp (env RAGQA_LLM_MODEL).")
@click.option("--llm-base-url", help="Server URL (env RAGQA_LLM_BASE_URL).")
@click.option("-k", "--top-k", "k", type=int, help="Passages to answer from (env RAGQA_TOP_K).")
@click.option("--mode", type=click.Choice(RETRIEVAL_MODES), help="Retrieval mode.")
@click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON.")
def ask(
    question: str,
    kb_dir: str,
    llm: str | None,
    llm_model: str | None,
    llm_base_url: str | None,
    k: int | None,
    mode: str | None,
    as_json: bool,
) -> None:
    """Answer QUESTION from the knowledge base, streaming it, then list the sources.

    The API key, if the backend needs one, is read from RAGQA_LLM_API_KEY only, so that
    it never appears in the shell history or the process list.
    """
    from ragqa.errors import LLMError

    settings = _settings(
        llm=llm, llm_model=llm_model, llm_base_url=llm_base_url, top_k=k, retrieval_mode=mode
    )
    with KnowledgeBase.open(kb_dir, settings=settings) as kb:
        try:
            answer = None
            for piece in kb.ask_stream(question):
                if isinstance(piece, str):
                    if not as_json:
                        click.echo(piece, nl=False)
                else:
                    answer = piece
        except LLMError as exc:
            # The model failed, but retrieval did not: show what was found.
            click.echo(f"\nError: {exc}", err=True)
            click.echo("Retrieved passages:", err=True)
            for rank, hit in enumerate(kb.search(question), start=1):
                click.echo(f"  [{rank}] {hit.file_name}, page {hit.page}", err=True)
                click.echo(_indent(_shorten(hit.text, 300)), err=True)
            sys.exit(EXIT_ERROR)
    if answer is None:  # pragma: no cover - ask_stream always ends with an Answer
        raise RagqaError("no answer was produced")
    if as_json:
        click.echo(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2))
        return
    click.echo()
    print_sources(answer)


def print_sources(answer: Any) -> None:
    """The numbered sources an answer cites (or, if none, the ones it was given)."""
    cited = {c.number for c in answer.citations}
    if not answer.passages:
        return
    click.secho("Sources:", bold=True)
    for number, hit in enumerate(answer.passages, start=1):
        if cited and number not in cited:
            continue
        click.echo(f"  [{number}] {hit.file_name}, page {hit.page}")


@cli.command()
@kb_option
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def info(kb_dir: str, as_json: bool) -> None:
    """Show a knowledge base's manifest and documents."""
    with KnowledgeBase.open(kb_dir) as kb:
        manifest = kb.manifest
        documents = kb.documents()
        backend = kb.store.describe()
    if as_json:
        payload = {
            "directory": str(kb_dir),
            "store": backend,
            "manifest": manifest.to_dict(),
            "documents": [asdict(d) for d in documents],
        }
        click.echo(json.dumps(payload, ensure_ascii=False, indent=2))
        return
    click.echo(f"Knowledge base: {kb_dir}")
    for key, value in backend.items():
        if key != "location":
            click.echo(f"  {key:<16} {value}")
    click.echo(f"  format version   {manifest.format_version}")
    click.echo(f"  embedding model  {manifest.embedding_model} ({manifest.dimension} dims)")
    click.echo(f"  documents        {manifest.documents}")
    click.echo(f"  chunks           {manifest.chunks}")
    for doc in documents:
        click.echo(f"  - {doc.source}  ({doc.pages} pages, {doc.chunks} chunks)")


@cli.command()
@kb_option
@click.option(
    "--embedding-model",
    required=True,
    help="The model to re-embed with, e.g. multilingual-e5-small.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def reindex(kb_dir: str, embedding_model: str, as_json: bool, quiet: bool) -> None:
    """Re-embed a knowledge base with another embedding model, in place.

    The stored pages are split and embedded again; no file is read again. The old
    knowledge base stays as it was until the new one is complete.
    """
    from ragqa.reindex import reindex as run_reindex

    with ingest_progress(quiet or as_json) as on_progress:
        report = run_reindex(kb_dir, embedding_model, settings=_settings(), progress=on_progress)
    if as_json:
        click.echo(json.dumps(asdict(report), ensure_ascii=False, indent=2))
        return
    click.echo(
        f"Re-embedded {report.documents} documents ({report.chunks} chunks) of {kb_dir} "
        f"with {report.embedding_model} (was {report.old_model}) in {report.seconds:.1f} s."
    )
    for source in report.skipped:
        click.echo(f"Skipped {source}: no stored text to split.", err=True)


@cli.command()
@click.argument("path")
@kb_option
def remove(path: str, kb_dir: str) -> None:
    """Remove a document (by the path it was ingested from)."""
    with KnowledgeBase.open(kb_dir) as kb:
        if not kb.remove(path):
            raise RagqaError(f"{path} is not in {kb_dir}; `ragqa info --kb {kb_dir}` lists it")
    click.echo(f"Removed {path}")


@cli.command(name="serve")
@click.option(
    "--kb",
    "kb_dirs",
    multiple=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="A knowledge-base folder to serve, named by its folder's name; repeat for more.",
)
@click.option(
    "--workspace",
    type=click.Path(file_okay=False, path_type=Path),
    help="A folder of knowledge bases, as the UI keeps them (default: DATA_DIR, "
    "env RAGQA_DATA_DIR).",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", type=int, default=8765, show_default=True, help="Port to listen on.")
def serve_command(kb_dirs: tuple[Path, ...], workspace: Path | None, host: str, port: int) -> None:
    """Serve knowledge bases over HTTP: OpenAI-compatible chat, search and uploads.

    By default the UI's knowledge bases are served, on 127.0.0.1 only. Binding any
    other address needs an API key in RAGQA_API_KEY, which clients send as
    'Authorization: Bearer KEY'; the server refuses to start without one.
    """
    # From the environment (RAGQA_API_KEY) only, since an option would show in the
    # process list; then taken out of it, so that no child process inherits it.
    settings = _settings()
    api_key = settings.api_key
    os.environ.pop("RAGQA_API_KEY", None)
    try:
        from ragqa.server import KnowledgeBases, ServerConfig, serve
        from ragqa.server.security import check_bind
    except ImportError as exc:
        raise RagqaError(
            f"ragqa serve needs FastAPI and uvicorn ({exc.name} is missing): "
            "pip install 'ragqa[serve]'"
        ) from None
    if kb_dirs and workspace:
        raise click.UsageError("give either --kb folders or --workspace, not both")
    check_bind(host, api_key)  # before anything is created on disk
    if kb_dirs:
        registry = KnowledgeBases.from_folders(kb_dirs, settings)
    else:
        registry = KnowledgeBases.from_workspace(workspace or settings.data_dir, settings)
    shown_host = f"[{host}]" if ":" in host else host
    guard = "API key required" if api_key else "no API key: this machine only"
    click.echo(
        f"Serving {', '.join(registry.names()) or 'no knowledge base yet'} at "
        f"http://{shown_host}:{port}/v1 ({guard})",
        err=True,
    )
    serve(registry, host=host, port=port, config=ServerConfig(api_key=api_key))


@cli.command(name="eval")
@click.argument("dataset", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--kb",
    "--store",
    "kb_dir",
    metavar="DIR|URI",
    help="Knowledge base to build or reuse, a directory or a store URI "
    "(default: a cache under DATA_DIR/eval).",
)
@click.option("--mode", type=click.Choice(RETRIEVAL_MODES), help="Retrieval mode.")
@click.option(
    "-k", "k", type=int, default=10, show_default=True, help="Chunks per question (SQuAD)."
)
@click.option("--answers", is_flag=True, help="Also answer and score against gold answers (SQuAD).")
@click.option(
    "--subset",
    type=click.Choice(("all", "tune", "holdout")),
    default="all",
    show_default=True,
    help="Score all questions, or one fixed half of them (SQuAD).",
)
@click.option("--limit", type=int, help="Ask at most N questions, a fixed random sample (SQuAD).")
@click.option(
    "--docs",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="The documents' folder, instead of the set's root (natural questions).",
)
@click.option(
    "--details",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write each question's answer, cited files and checks here, one JSON line "
    "per question (natural questions).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
@click.pass_context
def evaluate(
    ctx: click.Context,
    dataset: Path,
    kb_dir: str | None,
    mode: str | None,
    k: int,
    answers: bool,
    subset: str,
    limit: int | None,
    docs: Path | None,
    details: Path | None,
    as_json: bool,
) -> None:
    """Measure retrieval and answers on DATASET.json.

    A SQuAD-format file is scored on retrieval (recall@k, MRR, nDCG) and, with
    --answers, on its gold answers.

    A natural-question set (a top-level "questions" list; see ragqa/natural_eval.py)
    has its documents ingested and every question answered by the configured
    answerer (RAGQA_LLM), follow-ups after their history, and is scored on key facts
    in the answer, the cited file, key facts in the cited passages and abstentions.
    --mode applies to it; -k, --answers, --subset and --limit are refused; --docs
    and --details apply to it only.
    """
    from ragqa.eval_runner import run_eval
    from ragqa.natural_eval import is_natural_set, run_natural_eval

    settings = _settings()
    given = [
        option
        for name, option in (
            ("k", "-k"),
            ("answers", "--answers"),
            ("subset", "--subset"),
            ("limit", "--limit"),
            ("docs", "--docs"),
            ("details", "--details"),
        )
        if ctx.get_parameter_source(name) not in (None, ParameterSource.DEFAULT)
    ]
    if is_natural_set(dataset):
        refused = [option for option in given if option not in ("--docs", "--details")]
        if refused:
            raise click.UsageError(
                f"{', '.join(refused)} apply to SQuAD files only, and {dataset.name} "
                "is a natural-question set"
            )
        if mode:
            settings = settings.replace(retrieval_mode=mode)
        metrics = run_natural_eval(
            dataset, settings=settings, kb_dir=kb_dir, docs=docs, details=details
        )
        if as_json:
            click.echo(json.dumps(metrics, indent=2, ensure_ascii=False))
            return
        print_natural_metrics(dataset, metrics)
        return
    refused = [option for option in given if option in ("--docs", "--details")]
    if refused:
        raise click.UsageError(
            f"{', '.join(refused)} apply to natural-question sets only, and "
            f'{dataset.name} has no top-level "questions" list'
        )
    metrics = run_eval(
        dataset,
        settings=settings,
        kb_dir=kb_dir,
        mode=mode,
        k=k,
        answers=answers,
        subset=subset,
        limit=limit,
    )
    if as_json:
        click.echo(json.dumps(metrics, indent=2))
        return
    click.echo(f"{dataset.name}: mode {mode or settings.retrieval_mode}, {subset} questions")
    for key, value in metrics.items():
        shown = f"{value}" if key == "questions" else f"{value:.4f}"
        click.echo(f"  {key:<16}{shown}")


# Column heading, metric key; the table's columns in print_natural_metrics.
NATURAL_COLUMNS = (
    ("fact", "key_fact_in_answer"),
    ("file", "right_file_cited"),
    ("passage", "key_fact_in_cited_passage"),
    ("found", "key_fact_retrieved"),
    ("no cite", "false_abstention"),
    ("abstain", "abstained"),
)


def print_natural_metrics(dataset: Path, metrics: dict[str, Any]) -> None:
    """The natural-question metrics as a small aligned table, one row per group.

    fact: a key fact in the answer; file: the right file cited; passage: a key fact
    in a cited passage; found: a key fact in any passage given to the answerer
    (retrieval's share); no cite: answerable but nothing cited; abstain: unanswerable
    and abstained. A dash is a group with no question to count.
    """
    click.echo(
        f"{dataset.name}: {metrics['questions']} questions ({metrics['answerable']} "
        f"answerable, {metrics['unanswerable']} unanswerable), {metrics['documents']} documents"
    )
    click.echo(
        f"answerer {metrics['backend']}, embedding model {metrics['embedding_model']}, "
        f"answer p50 {metrics['latency_ms_p50']} ms"
    )
    if metrics["failed_documents"]:
        click.echo(f"failed to ingest: {', '.join(metrics['failed_documents'])}")
    rows = [("all", metrics)]
    rows += [(f"lang {lang}", group) for lang, group in metrics["by_lang"].items()]
    rows += [(f"kind {kind}", group) for kind, group in metrics["by_kind"].items()]
    width = max(len(label) for label, _ in rows)
    header = "".join(f"{title:>9}" for title, _ in NATURAL_COLUMNS)
    click.echo(f"\n{'':<{width}}{'n':>6}{header}")
    for label, group in rows:
        cells = "".join(
            f"{'-' if group[key] is None else format(group[key], '.3f'):>9}"
            for _, key in NATURAL_COLUMNS
        )
        click.echo(f"{label:<{width}}{group['questions']:>6}{cells}")


DEMO_QUESTIONS = (
    "Which planet is the hottest, and why?",
    "茶經的作者是誰？",
    "What happens to stored data if an ingest is interrupted?",
)


@cli.command()
@click.option(
    "--kb",
    "kb_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to build the demo knowledge base (default: DATA_DIR/demo).",
)
def demo(kb_dir: Path | None) -> None:
    """Ingest the bundled sample documents and answer a few questions about them."""
    settings = _settings()
    kb_dir = kb_dir or Path(settings.data_dir) / "demo"
    docs = copy_samples(Path(settings.data_dir) / "demo-docs")
    click.echo(f"Sample documents: {docs}")
    with KnowledgeBase.open_or_create(kb_dir, settings=settings) as kb:
        print_report(run_ingest(kb, [docs], pdf_password=None, quiet=False))
        for question in DEMO_QUESTIONS:
            click.secho(f"\n? {question}", bold=True)
            for rank, hit in enumerate(kb.search(question, k=2), start=1):
                click.echo(f"  [{rank}] {hit.file_name}, page {hit.page}")
                click.echo(_indent(_shorten(hit.text, 200)))
    click.echo(f'\nTry your own: ragqa search "..." --kb {kb_dir}')


def copy_samples(target: Path) -> Path:
    """Copy the sample documents shipped inside the package to ``target``."""
    from importlib.resources import files

    target.mkdir(parents=True, exist_ok=True)
    for item in files("ragqa").joinpath("samples").iterdir():
        if item.is_file() and item.name.endswith((".md", ".txt", ".pdf")):
            destination = target / item.name
            data = item.read_bytes()
            if not destination.exists() or destination.read_bytes() != data:
                destination.write_bytes(data)
    return target


def _shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _indent(text: str) -> str:
    return "    " + text


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="ragqa")


if __name__ == "__main__":  # pragma: no cover
    main()
