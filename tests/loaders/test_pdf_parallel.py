"""Long PDFs read by several processes: the same pages as one process, and no new
ways to fail."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from loader_fixtures import encrypt_pdf, make_pdf

import ragqa.loaders.pdf_parallel as pdf_parallel
from ragqa.config import Settings
from ragqa.errors import ConfigError, LoaderError
from ragqa.loaders import load_document
from ragqa.loaders.pdf import _OutOfTime

IN_PROCESS = Settings(pdf_workers=1)
TWO = Settings(pdf_workers=2)


def page_list(count: int) -> list[str | None]:
    # Every fifth page is a drawing without text, to check page numbers survive.
    return [None if n % 5 == 4 else f"Page {n + 1} of the long report." for n in range(count)]


@pytest.fixture
def long_pdf(docs: Path) -> Path:
    return make_pdf(docs / "long.pdf", page_list(40))


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[subprocess.Popen[bytes]]:
    """The child processes started during the test."""
    children: list[subprocess.Popen[bytes]] = []
    original = pdf_parallel._Children._start

    def start() -> subprocess.Popen[bytes]:
        children.append(original())
        return children[-1]

    monkeypatch.setattr(pdf_parallel._Children, "_start", staticmethod(start))
    return children


def child_running(monkeypatch: pytest.MonkeyPatch, code: str) -> None:
    """Make every child a ``python -c code`` process instead of the real reader."""

    def start() -> subprocess.Popen[bytes]:
        pipe = subprocess.PIPE
        return subprocess.Popen([sys.executable, "-c", code], stdin=pipe, stdout=pipe, stderr=pipe)

    monkeypatch.setattr(pdf_parallel._Children, "_start", staticmethod(start))


def as_tuples(pages: list[Any]) -> list[tuple[int, str]]:
    return [(page.page, page.text) for page in pages]


# ------------------------------------------------------------------ planning


@given(total=st.integers(0, 500), parts=st.integers(1, 16))
def test_split_ranges_covers_every_page_once_in_order(total: int, parts: int) -> None:
    ranges = pdf_parallel.split_ranges(total, parts)
    assert len(ranges) == parts
    assert [i for part in ranges for i in part] == list(range(total))
    assert max(map(len, ranges)) - min(map(len, ranges)) <= 1


def test_worker_count_follows_the_setting_and_the_page_count(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    per = pdf_parallel.MIN_PAGES_PER_WORKER
    assert pdf_parallel.worker_count(1000, Settings(pdf_workers=3)) == 3
    assert pdf_parallel.worker_count(1000, IN_PROCESS) == 1
    assert pdf_parallel.worker_count(2 * per - 1, Settings(pdf_workers=8)) == 1
    assert pdf_parallel.worker_count(3 * per, Settings(pdf_workers=8)) == 3
    assert pdf_parallel.worker_count(0, TWO) == 1
    monkeypatch.setattr(pdf_parallel, "available_cores", lambda: 6)
    assert pdf_parallel.worker_count(1000, Settings(pdf_workers=0)) == 6


def test_pdf_workers_is_validated_and_read_from_the_environment() -> None:
    with pytest.raises(ConfigError, match="pdf_workers"):
        Settings(pdf_workers=-1)
    assert Settings.from_env({"RAGQA_PDF_WORKERS": "3"}).pdf_workers == 3


# ------------------------------------------------------------------ the same pages


@pytest.mark.shared_data
def test_shared_long_pdf_read_by_two_processes_equals_one(
    shared_data: Path, started: list[subprocess.Popen[bytes]]
) -> None:
    # The 117-page GeoTopo file from pypdf's sample files (see MANIFEST.md).
    path = shared_data / "pdfs" / "samplefiles__GeoTopo-komprimiert.pdf"
    alone = load_document(path, settings=IN_PROCESS)
    assert not started
    together = load_document(path, settings=TWO)
    assert len(started) == 1 and started[0].returncode == 0
    assert together == alone
    assert len(alone) > 100


def test_pages_without_text_keep_the_numbering_across_processes(
    long_pdf: Path, started: list[subprocess.Popen[bytes]]
) -> None:
    pages = load_document(long_pdf, settings=Settings(pdf_workers=2))
    assert len(started) == 1
    expected = [(n + 1, text) for n, text in enumerate(page_list(40)) if text is not None]
    assert as_tuples(pages) == expected


def test_an_encrypted_pdf_is_read_by_processes_with_its_password(
    long_pdf: Path, docs: Path, started: list[subprocess.Popen[bytes]]
) -> None:
    locked = encrypt_pdf(long_pdf, docs / "locked.pdf", "s3cret", "AES-256")
    pages = load_document(locked, password="s3cret", settings=TWO)
    assert len(started) == 1 and started[0].returncode == 0
    assert pages == load_document(locked, password="s3cret", settings=IN_PROCESS)


# ------------------------------------------------------------------ failures


@pytest.mark.parametrize(
    ("code", "cause"),
    [
        ("import sys; sys.stdin.buffer.read(); sys.exit('out of memory')", "exited with code 1"),
        ("import sys; sys.stdin.buffer.read(); print('not a pickle')", "gave no answer"),
    ],
)
def test_a_child_that_fails_leaves_its_pages_to_this_process(
    long_pdf: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    code: str,
    cause: str,
) -> None:
    child_running(monkeypatch, code)
    caplog.set_level(logging.WARNING, logger="ragqa.loaders.pdf_parallel")
    pages = load_document(long_pdf, settings=TWO)
    assert pages == load_document(long_pdf, settings=IN_PROCESS)
    assert "pages 21-40 are read in-process" in caplog.text
    assert cause in caplog.text


def test_no_interpreter_to_start_means_reading_in_process(
    long_pdf: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(sys, "executable", str(long_pdf.parent / "no-such-python"))
    caplog.set_level(logging.WARNING, logger="ragqa.loaders.pdf_parallel")
    pages = load_document(long_pdf, settings=TWO)
    assert len(pages) == 32
    assert "cannot start a process" in caplog.text


def test_a_child_past_the_deadline_is_a_timeout(
    long_pdf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # This process reads its 20 pages in time; the child gets no time at all.
    request = pdf_parallel._request
    monkeypatch.setattr(pdf_parallel, "_request", lambda *args: {**request(*args), "seconds": 0.0})
    with pytest.raises(LoaderError) as caught:
        load_document(long_pdf, settings=TWO)
    assert caught.value.reason == "timeout"
    assert "stopped after 20 of 40 pages" in caught.value.cause


@pytest.mark.timeout(60)  # without the kill, the read would wait for the child
def test_children_are_killed_when_this_process_stops_reading(
    long_pdf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    children: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        pipe = subprocess.PIPE
        code = "import sys, time; sys.stdin.buffer.read(); time.sleep(600)"
        children.append(
            subprocess.Popen([sys.executable, "-c", code], stdin=pipe, stdout=pipe, stderr=pipe)
        )
        return children[-1]

    def out_of_time(*_args: object) -> Any:
        # Wait until the child has started, then run out of time on this side.
        while not children:
            time.sleep(0.01)
        raise _OutOfTime(3)
        yield  # a generator, like the real extract_pages

    monkeypatch.setattr(pdf_parallel._Children, "_start", staticmethod(start))
    monkeypatch.setattr(pdf_parallel, "extract_pages", out_of_time)
    with pytest.raises(LoaderError) as caught:
        load_document(long_pdf, settings=TWO)
    assert "stopped after 3 of 40 pages" in caught.value.cause
    assert children[0].poll() is not None  # killed, not left to sleep


def test_pypdf_warnings_from_the_pages_a_child_read_reach_the_summary(
    long_pdf: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # A child's answer carries what pypdf logged while it read its pages.
    run = pdf_parallel._Children.run

    def with_warning(self: Any, request: dict[str, Any]) -> dict[str, Any]:
        answer = run(self, request)
        return {**answer, "warnings": ["Ignoring wrong pointing object 7 0 (offset 0)"]}

    monkeypatch.setattr(pdf_parallel._Children, "run", with_warning)
    caplog.set_level(logging.INFO, logger="ragqa.loaders.pdf")
    load_document(long_pdf, settings=TWO)
    summaries = [r.getMessage() for r in caplog.records if r.name == "ragqa.loaders.pdf"]
    assert any("worked around 1 problem(s)" in s and "wrong pointing" in s for s in summaries)
