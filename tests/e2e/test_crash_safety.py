"""Nothing committed is lost and nothing half-written is served, whenever a writer dies.

A real ``ragqa ingest`` child process is killed with SIGKILL at every interesting
point of its write path (chosen deterministically through ``kill_helpers``), and at
random moments. After each kill the knowledge base must open, pass
:func:`ragqa.integrity.check_integrity` once opened, hold every document either in
its old state or its new one (never a mix, and never with a content hash that
belongs to the other version), and a later ingest must finish the job so that the
result equals a clean ingest.

The second half damages a finished knowledge base file by file (truncated, zeroed,
deleted) and checks that the damage is either repaired silently (derived files) or
reported with what is wrong and how to rebuild (the catalog), never as a stack trace.
"""

from __future__ import annotations

import json
import logging
import random
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import kill_helpers
import pytest
from kill_helpers import StoredDocument, kill_points, killed, snapshot

from ragqa import KnowledgeBase, Settings
from ragqa.errors import IndexCorruptError
from ragqa.integrity import check_integrity

pytestmark = pytest.mark.e2e

SETTINGS = Settings(**kill_helpers.settings_fields())
# Small commits, so that one ingest of the test corpus is several transactions.
GROUP_CHUNKS = "25"

# Where each hook is killed. Reads are not hooked; "after" is left out where it is
# the same moment as "before" the next hook.
WHENS: dict[str, tuple[str, ...]] = {
    "load": ("before",),
    "embed": ("before",),
    "write_documents": ("before", "after"),
    "sql:script": ("before", "after"),
    "sql:INSERT meta many": ("before", "after"),
    "sql:BEGIN": ("after",),
    "sql:DELETE chunks": ("before",),
    "sql:INSERT documents": ("before",),
    "sql:INSERT chunks": ("before",),
    "sql:COMMIT": ("before", "after"),
    "flush": ("before", "after"),
    "_atomic_write_bytes": ("before", "after"),
    "replace:vectors.faiss": ("before", "after"),
    "replace:lexical.npz": ("before", "after"),
    "replace:manifest.json": ("before", "after"),
    "replace:catalog.sqlite": ("before", "after"),
}
# An ingest into an existing knowledge base ("update"), the first ingest, which
# also creates it ("create"), and an update under ragqa's own checkpoint
# thresholds ("update-lazy"), where a small ingest commits to the catalog and
# rewrites only the manifest; the other two write a checkpoint every time.
SCENARIOS = ("update", "create", "update-lazy")
# Hooks that only some scenarios reach.
ONLY_IN = {
    "sql:INSERT meta many": ("create",),
    "replace:catalog.sqlite": ("create",),
    "sql:DELETE chunks": ("update", "update-lazy"),
    "flush": ("update", "create"),
    "replace:vectors.faiss": ("update", "create"),
    "replace:lexical.npz": ("update", "create"),
}


def _reaches(hook: str, scenario: str) -> bool:
    return scenario in ONLY_IN.get(hook, SCENARIOS)


def _env(scenario: str) -> dict[str, str]:
    return {"KILLTEST_CHECKPOINT": "default" if scenario == "update-lazy" else "every"}


RANDOM_KILLS = 12

WORDS = [
    "river", "stone", "cloud", "harbour", "lantern", "orchard", "meadow", "copper",
    "violin", "glacier", "parcel", "thunder", "saddle", "quartz", "willow", "ember",
    "falcon", "marble", "canyon", "tide", "ledger", "beacon",
]  # fmt: skip


def _paragraphs(seed: int, count: int) -> list[str]:
    rng = random.Random(seed)
    return [
        ". ".join(" ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 14))) for _ in range(4))
        + f". Marker {seed}-{n}."
        for n in range(count)
    ]


def _write_corpus(docs: Path, version: int) -> None:
    """Version 1: ten text files and two PDFs. Version 2 changes four text files
    (one only at its end) and one PDF, keeps the rest, and adds three files."""
    from fpdf import FPDF

    docs.mkdir(parents=True, exist_ok=True)
    for n in range(10):
        paragraphs = _paragraphs(n, 6)
        if version == 2 and n < 3:
            paragraphs = _paragraphs(100 + n, 5)  # rewritten
        if version == 2 and n == 3:
            paragraphs = [*paragraphs[:-1], "An alpha omega marker closes this version."]
        suffix = ".md" if n % 2 else ".txt"
        (docs / f"note-{n:02d}{suffix}").write_text("\n\n".join(paragraphs), encoding="utf-8")
    if version == 2:
        for n in range(10, 13):
            text = "\n\n".join(_paragraphs(n, 5))
            (docs / f"note-{n:02d}.md").write_text(text, encoding="utf-8")
    for n in range(2):
        seed = 200 + n + (10 if version == 2 and n == 0 else 0)
        pdf = FPDF()
        # A fixed date, so that an unchanged PDF has unchanged bytes.
        pdf.set_creation_date(datetime(2024, 1, 1, tzinfo=UTC))
        pdf.set_font("helvetica", size=11)
        for page in _paragraphs(seed, 3):
            pdf.add_page()
            pdf.multi_cell(0, 7, page)
        (docs / f"report-{n}.pdf").write_bytes(bytes(pdf.output()))


def _ingest(kb_dir: Path, docs: Path) -> None:
    with KnowledgeBase.open_or_create(kb_dir, settings=SETTINGS) as kb:
        report = kb.add([docs])
    assert report.failed == 0, report.summary()


@dataclass(frozen=True)
class Corpus:
    """The documents, the knowledge base before the interrupted ingest, and the
    states every document may be in afterwards."""

    docs: Path
    old_kb: Path
    old: dict[str, StoredDocument]
    new: dict[str, StoredDocument]
    census: dict[str, dict[str, int]]  # scenario -> hook -> calls
    seconds: dict[str, float]  # scenario -> how long the ingest ran


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    root = tmp_path_factory.mktemp("crash")
    docs = root / "docs"
    _write_corpus(docs, 1)
    old_kb = root / "old-kb"
    _ingest(old_kb, docs)
    old = snapshot(old_kb)
    _write_corpus(docs, 2)

    # The reference: the old knowledge base brought up to date without any crash,
    # which must also equal a fresh ingest of the new corpus.
    clean = root / "clean-kb"
    shutil.copytree(old_kb, clean)
    _ingest(clean, docs)
    new = snapshot(clean)
    fresh = root / "fresh-kb"
    _ingest(fresh, docs)
    assert snapshot(fresh) == new
    assert len(new) == 15 and sum(new[s] != old.get(s) for s in new) == 8

    # A census run through the wrapper counts the calls of each hook, and shows
    # that the wrapper alone changes nothing.
    census, seconds = {}, {}
    for scenario in SCENARIOS:
        kb_dir = _prepare(root / f"census-{scenario}", scenario, old_kb)
        counts_file = root / f"census-{scenario}.json"
        process = kill_helpers.start(
            ["ingest", str(docs), "--kb", str(kb_dir), "-q"],
            KILLTEST_CENSUS=str(counts_file),
            KILLTEST_GROUP_CHUNKS=GROUP_CHUNKS,
            **_env(scenario),
        )
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "READY"
        started = time.monotonic()
        out, err = process.communicate(timeout=120)
        seconds[scenario] = time.monotonic() - started
        assert process.returncode == 0, out + err
        assert snapshot(kb_dir) == new
        census[scenario] = json.loads(counts_file.read_text())
    # Several transactions per ingest, or the kills between them test nothing.
    assert census["update"]["sql:COMMIT"] >= 3, census
    return Corpus(docs, old_kb, old, new, census, seconds)


def _prepare(work: Path, scenario: str, old_kb: Path) -> Path:
    kb_dir = work / "kb"
    if scenario.startswith("update"):
        shutil.copytree(old_kb, kb_dir)
    else:
        work.mkdir(parents=True)
    return kb_dir


def verify_after_crash(corpus: Corpus, scenario: str, kb_dir: Path) -> str:
    """Check the state a killed ingest left, then finish the job; returns a label
    for the state found (which documents were new)."""
    old = corpus.old if scenario.startswith("update") else {}
    if not (kb_dir / "catalog.sqlite").exists():
        # Killed before the catalog existed: there is nothing to open yet, and
        # nothing may pretend to be a knowledge base.
        assert scenario == "create", "the catalog of an existing knowledge base vanished"
        assert not (kb_dir / "manifest.json").exists()
        found: dict[str, StoredDocument] = {}
    else:
        with KnowledgeBase.open(kb_dir, settings=SETTINGS) as kb:
            listed = {d.source for d in kb.documents()}
            # Both indexes answer; the texts they return are stored texts.
            lexical = kb.search("marker river", k=5, mode="lexical")
            dense = kb.search("marker river", k=5, mode="dense")
            assert len(kb) == sum(len(doc.chunks) for doc in snapshot(kb_dir).values())
        report = check_integrity(kb_dir)
        assert report.ok, report.summary()
        found = snapshot(kb_dir)
        assert set(found) == listed
        stored_texts = {chunk[3] for doc in found.values() for chunk in doc.chunks}
        assert all(hit.text in stored_texts for hit in (*lexical, *dense))
    missing = set(old) - set(found)
    assert not missing, f"documents lost: {sorted(missing)}"
    assert set(found) <= set(corpus.new)
    for source, doc in found.items():
        # Whole old version or whole new version: chunks, pages and content hash
        # all belong to the same one.
        assert doc in (old.get(source), corpus.new[source]), f"{source} is a mix"
    label = "".join(
        "n" if found.get(s) == corpus.new[s] and old.get(s) != corpus.new[s] else "."
        for s in sorted(corpus.new)
    )

    _ingest(kb_dir, corpus.docs)  # the next ingest finishes the job
    assert snapshot(kb_dir) == corpus.new
    report = check_integrity(kb_dir)
    assert report.ok, report.summary()
    return label


@pytest.fixture(scope="module")
def tally() -> Iterator[Counter[str]]:
    counts: Counter[str] = Counter()
    yield counts
    print(f"\ncrash safety: {dict(counts)}")


def test_scenario_only_hooks_are_reached_only_there(corpus: Corpus) -> None:
    """The hooks in ONLY_IN are not killed in the other scenarios: check that they
    really never reach them, so that no kill point is left out by mistake."""
    for hook in ONLY_IN:
        for scenario in SCENARIOS:
            reached = hook in corpus.census[scenario]
            assert reached == _reaches(hook, scenario), (hook, scenario, corpus.census[scenario])


@pytest.mark.parametrize(
    ("hook", "scenario"),
    [(h, s) for h in WHENS for s in SCENARIOS if _reaches(h, s)],
)
def test_kill_at_every_write_step(
    corpus: Corpus, scenario: str, hook: str, tmp_path: Path, tally: Counter[str]
) -> None:
    census = corpus.census[scenario]
    assert hook in census, census
    points = kill_points({hook: census[hook]}, WHENS)
    states = set()
    for n, point in enumerate(points):
        kb_dir = _prepare(tmp_path / f"run-{n}", scenario, corpus.old_kb)
        result = kill_helpers.run(
            ["ingest", str(corpus.docs), "--kb", str(kb_dir), "-q"],
            KILLTEST_AT=point,
            KILLTEST_GROUP_CHUNKS=GROUP_CHUNKS,
            **_env(scenario),
        )
        assert killed(result.returncode), (
            f"{point}: not killed ({result.returncode})\n{result.stderr}"
        )
        try:
            states.add(verify_after_crash(corpus, scenario, kb_dir))
        except AssertionError as exc:
            raise AssertionError(f"after a kill at {point} ({scenario}): {exc}") from exc
        shutil.rmtree(kb_dir.parent)
        tally["kill points"] += 1
    tally["states seen"] += len(states)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_kill_at_random_moments(
    corpus: Corpus, scenario: str, tmp_path: Path, tally: Counter[str]
) -> None:
    """SIGKILL after a random delay, seeded so that a failure can be rerun."""
    rng = random.Random(f"kill-{scenario}")
    finished = 0
    for n in range(RANDOM_KILLS):
        kb_dir = _prepare(tmp_path / f"run-{n}", scenario, corpus.old_kb)
        process = kill_helpers.start(
            ["ingest", str(corpus.docs), "--kb", str(kb_dir), "-q"],
            KILLTEST_GROUP_CHUNKS=GROUP_CHUNKS,
            **_env(scenario),
        )
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "READY"
        time.sleep(rng.uniform(0, corpus.seconds[scenario]))
        process.kill()
        process.communicate(timeout=60)
        finished += process.returncode == 0
        verify_after_crash(corpus, scenario, kb_dir)
        shutil.rmtree(kb_dir.parent)
        tally["random kills"] += 1
    tally["random runs that finished first"] += finished


# ------------------------------------------------------------ damaged directories

TEA = "\n\n".join(_paragraphs(7, 8))
PLANETS = "\n\n".join(_paragraphs(8, 8))
DERIVED = ("manifest.json", "vectors.faiss", "lexical.npz", ".lock")
DAMAGES = ("truncated", "zeroed", "deleted")


def _damage(path: Path, how: str) -> None:
    if how == "deleted":
        path.unlink()
        return
    size = path.stat().st_size
    path.write_bytes(path.read_bytes()[: size // 2] if how == "truncated" else bytes(size))


@pytest.fixture
def built(tmp_path: Path, write_text: Callable[..., Path]) -> tuple[Path, Path]:
    """A finished knowledge base of two files; returns (its directory, the docs)."""
    kb_dir = tmp_path / "kb"
    write_text("tea.md", TEA)
    docs = write_text("planets.md", PLANETS).parent
    _ingest(kb_dir, docs)
    assert check_integrity(kb_dir).ok
    return kb_dir, docs


def _answers(kb_dir: Path) -> tuple[object, ...]:
    with KnowledgeBase.open(kb_dir, settings=SETTINGS) as kb:
        return (
            len(kb),
            [(h.chunk_id, h.text) for h in kb.search("marker canyon", k=4, mode="lexical")],
            [(h.chunk_id, h.text) for h in kb.search("marker canyon", k=4, mode="dense")],
        )


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ragqa.cli", *args],
        env=kill_helpers.child_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("how", DAMAGES)
@pytest.mark.parametrize("name", DERIVED)
def test_damaged_derived_file_is_rebuilt_silently(
    built: tuple[Path, Path], name: str, how: str, caplog: pytest.LogCaptureFixture
) -> None:
    kb_dir, _ = built
    before = _answers(kb_dir)
    _damage(kb_dir / name, how)
    if name != ".lock":
        assert not check_integrity(kb_dir).ok  # the check sees it
    with caplog.at_level(logging.WARNING):
        assert _answers(kb_dir) == before
    assert all(r.levelno < logging.ERROR for r in caplog.records)
    report = check_integrity(kb_dir)
    assert report.ok, report.summary()  # rewritten on disk by the open, not only in memory


@pytest.mark.parametrize("how", DAMAGES)
@pytest.mark.parametrize("name", DERIVED[:3])
def test_cli_shows_no_index_internals_for_a_damaged_derived_file(
    built: tuple[Path, Path], name: str, how: str
) -> None:
    kb_dir, _ = built
    _damage(kb_dir / name, how)
    result = _cli("search", "marker canyon", "--kb", str(kb_dir), "--mode", "lexical")
    assert result.returncode == 0, result.stderr
    assert "planets.md" in result.stdout or "tea.md" in result.stdout
    for internal in ("Traceback", "faiss::", "index_read", "sqlite3.", "zipfile"):
        assert internal not in result.stderr, result.stderr
    assert check_integrity(kb_dir).ok


def _assert_reported_with_remedy(kb_dir: Path, what: str) -> None:
    report = check_integrity(kb_dir)
    assert report.problems and not report.repairable, report.summary()
    with pytest.raises(IndexCorruptError) as error:
        KnowledgeBase.open(kb_dir, settings=SETTINGS)
    message = str(error.value)
    assert what in message and "ragqa ingest" in message, message
    assert "\n" not in message
    for command in (("search", "marker"), ("info",), ("ingest", str(kb_dir.parent / "docs"))):
        result = _cli(*command, "--kb", str(kb_dir))
        assert result.returncode == 1, (command, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr and "sqlite3." not in result.stderr
        assert result.stderr.startswith("Error: ") and "ragqa ingest" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


@pytest.mark.parametrize("how", DAMAGES)
def test_damaged_catalog_is_reported_with_how_to_rebuild(
    built: tuple[Path, Path], how: str
) -> None:
    kb_dir, _ = built
    _damage(kb_dir / "catalog.sqlite", how)
    _assert_reported_with_remedy(kb_dir, "catalog.sqlite")


def test_catalog_damaged_in_the_middle_is_reported(built: tuple[Path, Path]) -> None:
    """Pages of zeros inside the file: the header is fine, the tables are not."""
    kb_dir, _ = built
    path = kb_dir / "catalog.sqlite"
    data = bytearray(path.read_bytes())
    page = 4096
    for start in range(2 * page, len(data), 2 * page):
        data[start : start + page] = bytes(page)
    path.write_bytes(bytes(data))
    _assert_reported_with_remedy(kb_dir, "catalog.sqlite")


def test_only_the_catalog_left_is_enough(built: tuple[Path, Path]) -> None:
    kb_dir, _ = built
    before = _answers(kb_dir)
    for path in kb_dir.iterdir():
        if path.name != "catalog.sqlite":
            path.unlink()
    assert check_integrity(kb_dir).repairable
    assert _answers(kb_dir) == before
    assert check_integrity(kb_dir).ok


def test_catalog_gone_but_indexes_left_is_reported(built: tuple[Path, Path]) -> None:
    kb_dir, _ = built
    (kb_dir / "catalog.sqlite").unlink()
    _assert_reported_with_remedy(kb_dir, "catalog.sqlite is missing")


# ------------------------------------------------ check_integrity itself can fail


def _tamper_sql(kb_dir: Path, *statements: str) -> None:
    import sqlite3

    conn = sqlite3.connect(kb_dir / "catalog.sqlite")
    with conn:
        for statement in statements:
            conn.execute(statement)
    conn.close()


TAMPERING: dict[str, tuple[tuple[str, ...], str, str]] = {
    # name: (SQL, "problems" or "stale", a fragment of the finding)
    "chunk text edited": (
        ("UPDATE chunks SET text = 'edited' WHERE id = (SELECT MIN(id) FROM chunks)",),
        "problems",
        "text hash is wrong",
    ),
    "chunk offsets moved": (
        ('UPDATE chunks SET start = start + 1, "end" = "end" + 1 WHERE id = 2',),
        "problems",
        "not its page's text",
    ),
    "chunk count wrong": (("UPDATE documents SET chunks = chunks + 1",), "problems", "chunks but"),
    # The later of the two documents (an earlier one may predate stored pages).
    "page missing": (("DELETE FROM pages WHERE doc_id = 2",), "problems", "pages but"),
    "vector cut short": (
        ("UPDATE chunks SET vector = substr(vector, 1, 8) WHERE id = 3",),
        "problems",
        "the vector has 8 bytes",
    ),
    "generation bumped": (
        ("UPDATE meta SET value = value + 1 WHERE key = 'generation'",),
        "stale",
        "generation",
    ),
    "chunk deleted": (("DELETE FROM chunks WHERE id = 1",), "problems", "chunks but"),
}


@pytest.mark.parametrize("case", list(TAMPERING))
def test_check_integrity_finds_each_disagreement(built: tuple[Path, Path], case: str) -> None:
    kb_dir, _ = built
    statements, kind, fragment = TAMPERING[case]
    _tamper_sql(kb_dir, *statements)
    report = check_integrity(kb_dir)
    findings = report.problems if kind == "problems" else report.stale
    assert any(fragment in line for line in findings), report.summary()
    assert not report.ok
    assert report.repairable == (kind == "stale")


def test_check_integrity_compares_ids_and_vectors_not_just_counts(
    built: tuple[Path, Path], write_text: Callable[..., Path]
) -> None:
    """A FAISS file of the right size from another state must not pass."""
    kb_dir, docs = built
    other = kb_dir.parent / "other"
    shutil.copytree(kb_dir, other)
    (docs / "tea.md").write_text(TEA + " One more sentence at the end.", encoding="utf-8")
    _ingest(other, docs)  # replaces tea.md: new chunk ids
    with KnowledgeBase.open(kb_dir, settings=SETTINGS) as kb, KnowledgeBase.open(other) as changed:
        assert len(kb) == len(changed)
        for each in (kb, changed):  # checkpoints of both states, not only manifests
            with each.store.writing(timeout=5):
                each.store.flush()
    shutil.copy(other / "vectors.faiss", kb_dir / "vectors.faiss")
    report = check_integrity(kb_dir)
    assert any("not the file" in line for line in report.stale), report.summary()

    # Even with the manifest made to vouch for the foreign file, its ids give it away.
    manifest_path = kb_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    stat = (kb_dir / "vectors.faiss").stat()
    manifest["checkpoint"]["files"]["vectors.faiss"] = [stat.st_size, stat.st_mtime_ns]
    manifest_path.write_text(json.dumps(manifest))
    report = check_integrity(kb_dir)
    assert any("other chunk ids" in line for line in report.stale), report.summary()
