"""Several real processes on one knowledge base: writers take turns, readers never stop.

A writer holds the directory's lock for a whole ingest. A second writer either waits
for it or, past its ``lock_timeout``, gets :class:`KnowledgeBaseBusyError` with a
message that says so; it never interleaves its writes with the first. Readers take no
lock: they keep searching while a writer commits, and see the new documents once the
writer is done.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import kill_helpers
import pytest
from kill_helpers import snapshot, wait_for

from ragqa import KnowledgeBase, Settings
from ragqa.integrity import check_integrity

pytestmark = pytest.mark.e2e

SETTINGS = Settings(**kill_helpers.settings_fields())
WORDS = [
    "lantern", "orchard", "copper", "violin", "glacier",
    "parcel", "thunder", "saddle", "quartz", "willow",
]  # fmt: skip


def _write_docs(folder: Path, prefix: str, count: int, marker: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(count):
        words = [WORDS[(n * 7 + i * 3) % len(WORDS)] for i in range(120)]
        sentences = [" ".join(words[i : i + 12]) + "." for i in range(0, 120, 12)]
        text = f"{prefix} document {n}. {marker}\n\n" + "\n\n".join(sentences)
        (folder / f"{prefix}-{n:02d}.md").write_text(text, encoding="utf-8")
    return folder


def _clean_ingest(kb_dir: Path, *folders: Path) -> dict[str, kill_helpers.StoredDocument]:
    with KnowledgeBase.open_or_create(kb_dir, settings=SETTINGS) as kb:
        for folder in folders:
            assert kb.add([folder]).failed == 0
    return snapshot(kb_dir)


def _ingest_args(*args: Path) -> list[str]:
    """``ingest FOLDERS... --kb KB -q``; the last argument is the knowledge base."""
    *folders, kb_dir = args
    return ["ingest", *map(str, folders), "--kb", str(kb_dir), "-q"]


def _finish(process: subprocess.Popen[str]) -> str:
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, f"exit {process.returncode}\n{out}\n{err}"
    return out


def test_second_writer_waits_for_the_first(tmp_path: Path) -> None:
    kb_dir = tmp_path / "kb"
    first = _write_docs(tmp_path / "first", "first", 6)
    second = _write_docs(tmp_path / "second", "second", 6)
    _clean_ingest(kb_dir, _write_docs(tmp_path / "seed", "seed", 1))
    signals_a, signals_b = tmp_path / "a", tmp_path / "b"
    signals_a.mkdir()
    signals_b.mkdir()

    # Writer A stops half-way, holding the lock, after its first commit.
    writer_a = kill_helpers.start(
        _ingest_args(first, kb_dir),
        KILLTEST_PAUSE_AT="write_documents:1:after",
        KILLTEST_SIGNAL_DIR=str(signals_a),
        KILLTEST_GROUP_CHUNKS="10",
    )
    wait_for(signals_a / "paused", writer_a)
    # Writer B marks its third try to take the lock: by then it has failed at
    # least once in a waiting acquire (its first try may be the no-wait one with
    # which opening repairs the index files A has not written yet).
    writer_b = kill_helpers.start(
        _ingest_args(second, kb_dir),
        KILLTEST_MARK_AT="lock-attempt:3:after",
        KILLTEST_SIGNAL_DIR=str(signals_b),
    )
    wait_for(signals_b / "marked", writer_b)
    assert writer_b.poll() is None
    (signals_a / "resume").touch()
    assert "6 added" in _finish(writer_a)
    assert "6 added" in _finish(writer_b)

    assert check_integrity(kb_dir).ok
    expected = _clean_ingest(tmp_path / "clean", tmp_path / "seed", first, second)
    assert snapshot(kb_dir) == expected


def test_a_writer_that_cannot_wait_gets_a_clear_busy_error(tmp_path: Path) -> None:
    kb_dir = tmp_path / "kb"
    first = _write_docs(tmp_path / "first", "first", 6)
    second = _write_docs(tmp_path / "second", "second", 3)
    _clean_ingest(kb_dir, _write_docs(tmp_path / "seed", "seed", 1))
    signals = tmp_path / "signals"
    signals.mkdir()
    writer = kill_helpers.start(
        _ingest_args(first, kb_dir),
        KILLTEST_PAUSE_AT="write_documents:1:after",
        KILLTEST_SIGNAL_DIR=str(signals),
        KILLTEST_GROUP_CHUNKS="10",
    )
    wait_for(signals / "paused", writer)
    impatient = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys\n"
            "from ragqa import KnowledgeBase\n"
            "from ragqa.errors import KnowledgeBaseBusyError\n"
            "kb = KnowledgeBase.open(sys.argv[1])\n"
            "try:\n"
            "    kb.add([sys.argv[2]], lock_timeout=0.3)\n"
            "except KnowledgeBaseBusyError as exc:\n"
            "    print(exc)\n"
            "    sys.exit(7)\n",
            str(kb_dir),
            str(second),
        ],
        env=kill_helpers.child_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert impatient.returncode == 7, impatient.stdout + impatient.stderr
    assert "is busy: another process is writing to it" in impatient.stdout
    assert str(kb_dir) in impatient.stdout
    (signals / "resume").touch()
    _finish(writer)

    # The impatient writer changed nothing; the patient one finished.
    assert check_integrity(kb_dir).ok
    expected = _clean_ingest(tmp_path / "clean", tmp_path / "seed", first)
    assert snapshot(kb_dir) == expected


@pytest.mark.parametrize("exists", [True, False], ids=["existing", "new"])
def test_racing_writers_do_not_corrupt_the_knowledge_base(tmp_path: Path, exists: bool) -> None:
    """Two unsynchronised ``ragqa ingest`` runs of overlapping folders, three times.

    With ``new``, both also race to create the knowledge base.
    """
    shared = _write_docs(tmp_path / "shared", "shared", 4)
    only_a = _write_docs(tmp_path / "a", "alpha", 4)
    only_b = _write_docs(tmp_path / "b", "beta", 4)
    expected = _clean_ingest(tmp_path / "clean", only_a, only_b, shared)
    for round_ in range(3):
        kb_dir = tmp_path / f"kb-{round_}"
        if exists:
            _clean_ingest(kb_dir, _write_docs(tmp_path / "seed", "seed", 1))
        writers = [
            kill_helpers.start(_ingest_args(own, shared, kb_dir), KILLTEST_GROUP_CHUNKS="10")
            for own in (only_a, only_b)
        ]
        for writer in writers:
            _finish(writer)
        report = check_integrity(kb_dir)
        assert report.ok, report.summary()
        state = snapshot(kb_dir)
        state = {s: d for s, d in state.items() if "/seed/" not in s}
        assert state == expected


def test_readers_keep_working_while_a_writer_ingests(tmp_path: Path) -> None:
    kb_dir = tmp_path / "kb"
    _clean_ingest(kb_dir, _write_docs(tmp_path / "seed", "seed", 2))
    batch = _write_docs(tmp_path / "batch", "batch", 12, marker="alpha omega marker")
    polls, stop, signals = tmp_path / "polls.jsonl", tmp_path / "stop", tmp_path / "signals"
    signals.mkdir()

    readers = [
        kill_helpers.start(["poll", str(kb_dir), str(polls.with_suffix(f".{n}")), str(stop)])
        for n in range(2)
    ]
    for n, reader in enumerate(readers):
        wait_for(polls.with_suffix(f".{n}"), reader)
    writer = kill_helpers.start(
        _ingest_args(batch, kb_dir),
        KILLTEST_PAUSE_AT="write_documents:2:after",
        KILLTEST_SIGNAL_DIR=str(signals),
        KILLTEST_GROUP_CHUNKS="10",
    )
    # While the writer is paused between two commits, every reader must poll at
    # least twice more: they read a catalog that is half-way through the batch.
    wait_for(signals / "paused", writer)
    seen = {n: _count_lines(polls.with_suffix(f".{n}")) for n in range(2)}
    for n, reader in enumerate(readers):
        while _count_lines(polls.with_suffix(f".{n}")) < seen[n] + 2:
            assert reader.poll() is None, reader.communicate()
            time.sleep(0.01)
    mid_ingest = {n: list(kill_helpers.read_polls(polls.with_suffix(f".{n}")))[-1] for n in seen}
    (signals / "resume").touch()
    _finish(writer)
    stop.touch()
    for reader in readers:
        _finish(reader)

    final = snapshot(kb_dir)
    final_files = sorted(Path(source).name for source in final if "/batch/" in source)
    for n in range(2):
        records = list(kill_helpers.read_polls(polls.with_suffix(f".{n}")))
        errors = [r["error"] for r in records if "error" in r]
        assert not errors, errors[0]
        documents = [r["documents"] for r in records]
        chunks = [r["chunks"] for r in records]
        assert documents == sorted(documents) and chunks == sorted(chunks), "counts went down"
        assert documents[0] == 2 and documents[-1] == len(final) == 14
        # Half-way: some of the batch committed, not all of it.
        assert 2 < mid_ingest[n]["documents"] < 14
        # After the writer finished, the last poll finds every new document.
        assert records[-1]["final"] and records[-1]["hits"] == final_files
        assert records[-1]["chunks"] == sum(len(d.chunks) for d in final.values())
    assert check_integrity(kb_dir).ok


def _count_lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_replacing_documents_never_shows_readers_a_mix(tmp_path: Path) -> None:
    """A reader polling while every document is rewritten sees, for each file, only
    chunks of its old text or of its new text; its document count never changes."""
    kb_dir = tmp_path / "kb"
    docs = _write_docs(tmp_path / "docs", "doc", 8)
    old = _clean_ingest(kb_dir, docs)
    _write_docs(docs, "doc", 8, marker="alpha omega marker")
    new = _clean_ingest(tmp_path / "clean", docs)
    polls, stop = tmp_path / "polls.jsonl", tmp_path / "stop"
    reader = kill_helpers.start(["poll", str(kb_dir), str(polls), str(stop)])
    wait_for(polls, reader)
    _finish(kill_helpers.start(_ingest_args(docs, kb_dir), KILLTEST_GROUP_CHUNKS="10"))
    stop.touch()
    _finish(reader)
    records = list(kill_helpers.read_polls(polls))
    assert not [r for r in records if "error" in r]
    assert {r["documents"] for r in records} == {8}
    assert records[-1]["hits"] == sorted(Path(s).name for s in new)
    assert snapshot(kb_dir) == new != old
    json.dumps(records)  # every record is plain data
    assert check_integrity(kb_dir).ok
