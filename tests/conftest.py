"""Shared fixtures: every test runs in its own temporary home with a clean environment."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from ragqa import KnowledgeBase, Settings
from ragqa.embeddings import HashingEmbedder

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """The project's shared real data (``../shared/data`` beside the repo)."""
    return Path(os.environ.get("SHARED_DATA_DIR") or REPO.parent / "shared" / "data")


@pytest.fixture(scope="session")
def _shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # One cache for the session: the ONNX query encoder is exported once, not per test.
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, _shared_cache: Path) -> None:
    # No RAGQA_* setting from the developer's shell may leak into a test, and
    # nothing may be written outside the test's own folder.
    for key in list(os.environ):
        if key.startswith("RAGQA_"):
            monkeypatch.delenv(key)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(_shared_cache))
    # The bundled model loads from site-packages; never try the network.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture
def shared_data() -> Path:
    path = shared_data_dir()
    if not path.is_dir():
        message = f"shared data not found at {path} (set SHARED_DATA_DIR)"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI always has it; a skip would hide a broken set-up
        pytest.skip(message)
    return path


@pytest.fixture
def settings() -> Settings:
    """Small chunks so that short test texts still make several chunks."""
    return Settings(embedding_model="hashing:64", chunk_size=200, chunk_overlap=40)


@pytest.fixture
def make_kb(tmp_path: Path, settings: Settings) -> Callable[..., KnowledgeBase]:
    """Create knowledge bases backed by the tiny hashing embedder."""
    opened: list[KnowledgeBase] = []

    def factory(name: str = "kb", **overrides: object) -> KnowledgeBase:
        kb = KnowledgeBase.create(
            tmp_path / name,
            settings=settings.replace(**overrides) if overrides else settings,
            embedder=HashingEmbedder(64),
        )
        opened.append(kb)
        return kb

    yield factory
    for kb in opened:
        kb.close()


@pytest.fixture
def write_text(tmp_path: Path) -> Callable[..., Path]:
    """Write a UTF-8 text file under ``tmp_path/docs`` and return its path."""

    def writer(name: str, text: str) -> Path:
        path = tmp_path / "docs" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    return writer


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    """In CI, an end-to-end or shared-data test that skips has failed.

    Locally such tests skip with a reason when a browser, the llama.cpp build or the
    shared data is missing; CI installs all of them, so a skip there means a set-up
    step broke, and a green run must not hide that.
    """
    outcome = yield
    report = outcome.get_result()
    if (
        os.environ.get("CI")
        and report.skipped
        and (item.get_closest_marker("e2e") or item.get_closest_marker("shared_data"))
    ):
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, which must run every test: {reason}"
