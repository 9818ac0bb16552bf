"""The ``ragqa`` command, run in-process with the hashing embedder."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from ragqa.cli import cli

TEA = "Oolong tea is partly oxidised. Dong Ding oolong comes from Lugu in Nantou County."
PLANETS = "Jupiter is the largest planet. Saturn has rings made mostly of ice."


@pytest.fixture
def run(monkeypatch):
    monkeypatch.setenv("RAGQA_EMBEDDING_MODEL", "hashing:64")
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(cli, list(args), catch_exceptions=False)

    return invoke


def test_ingest_search_info_remove(run, write_text, tmp_path):
    kb = str(tmp_path / "kb")
    tea = write_text("tea.md", TEA)
    write_text("planets.md", PLANETS)
    result = run("ingest", str(tea.parent), "--kb", kb, "--quiet")
    assert result.exit_code == 0, result.output
    assert "2 added, 0 unchanged, 0 replaced, 0 failed" in result.output

    result = run("ingest", str(tea.parent), "--kb", kb, "--json")
    report = json.loads(result.output)
    assert (report["added"], report["unchanged"]) == (0, 2)

    result = run("search", "Dong Ding oolong", "--kb", kb, "-k", "2", "--json")
    hits = json.loads(result.output)
    assert hits[0]["file_name"] == "tea.md" and hits[0]["page"] == 1
    assert hits[0]["source"].endswith("tea.md") and hits[0]["rank"] == 1
    assert len(hits) <= 2

    result = run("search", "Jupiter", "--kb", kb, "--mode", "lexical")
    assert "planets.md, page 1" in result.output

    result = run("info", "--kb", kb, "--json")
    info = json.loads(result.output)
    assert info["manifest"]["documents"] == 2
    assert info["manifest"]["embedding_model"] == "hashing:64"
    assert sorted(d["source"].rsplit("/", 1)[-1] for d in info["documents"]) == [
        "planets.md",
        "tea.md",
    ]

    result = run("remove", str(tea), "--kb", kb)
    assert result.exit_code == 0
    result = run("info", "--kb", kb)
    assert "documents        1" in result.output


def test_partial_failure_exits_3_and_names_the_file(run, write_text, tmp_path):
    kb = str(tmp_path / "kb")
    good = write_text("tea.md", TEA)
    bad = write_text("empty.txt", "")
    result = run("ingest", str(good), str(bad), "--kb", kb, "--quiet")
    assert result.exit_code == 3
    assert "1 added" in result.output and "1 failed" in result.output


def test_errors_are_one_line_with_nonzero_exit(run, tmp_path):
    result = CliRunner().invoke(cli, ["search", "x", "--kb", str(tmp_path / "missing")])
    assert result.exit_code == 1
    assert result.output.startswith("Error: no knowledge base at")
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_remove_unknown_document_fails(run, write_text, tmp_path):
    kb = str(tmp_path / "kb")
    run("ingest", str(write_text("tea.md", TEA)), "--kb", kb, "--quiet")
    result = CliRunner().invoke(cli, ["remove", "nope.md", "--kb", kb])
    assert result.exit_code == 1
    assert "is not in" in result.output


def test_bad_setting_in_environment_is_reported(run, tmp_path, monkeypatch):
    monkeypatch.setenv("RAGQA_CHUNK_SIZ", "100")
    result = CliRunner().invoke(cli, ["info", "--kb", str(tmp_path)])
    assert result.exit_code == 1
    assert "RAGQA_CHUNK_SIZ" in result.output and "RAGQA_CHUNK_SIZE" in result.output


def test_ask_streams_an_answer_then_sources(run, write_text, tmp_path):
    kb = str(tmp_path / "kb")
    run(
        "ingest",
        str(write_text("tea.md", TEA)),
        str(write_text("planets.md", PLANETS)),
        "--kb",
        kb,
        "--quiet",
    )
    result = run("ask", "Where does Dong Ding oolong come from?", "--kb", kb)
    assert result.exit_code == 0, result.output
    assert "Lugu" in result.output
    assert "Sources:" in result.output and "tea.md, page 1" in result.output

    result = run("ask", "Where does Dong Ding oolong come from?", "--kb", kb, "--json")
    payload = json.loads(result.output)
    assert {"answer", "citations", "passages"} <= set(payload)
    assert payload["citations"][0]["source"].endswith("tea.md")
    assert payload["citations"][0]["page"] == 1


def test_ask_with_unreachable_llm_shows_passages(run, write_text, tmp_path):
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    kb = str(tmp_path / "kb")
    run("ingest", str(write_text("tea.md", TEA)), "--kb", kb, "--quiet")
    result = CliRunner().invoke(
        cli,
        [
            "ask",
            "Where is Dong Ding from?",
            "--kb",
            kb,
            "--llm",
            "openai",
            "--llm-base-url",
            f"http://127.0.0.1:{port}/v1",
            "--llm-model",
            "m",
        ],
        env={"RAGQA_LLM_MAX_RETRIES": "0", "RAGQA_LLM_TIMEOUT": "5"},
    )
    assert result.exit_code == 1
    assert "cannot reach" in result.output and f"127.0.0.1:{port}" in result.output
    assert "tea.md, page 1" in result.output
    assert "Traceback" not in result.output
