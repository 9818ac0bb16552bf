"""``ragqa serve``: options, what it serves, and the key taken from the environment."""

from __future__ import annotations

import builtins
import os

import pytest
from click.testing import CliRunner

import ragqa.server
from ragqa.cli import cli
from ragqa.errors import ConfigError
from ragqa.server import ServerConfig, serve

KEY = "a-long-enough-key-for-the-network"


@pytest.fixture
def served(monkeypatch):
    """Record what the command would serve instead of binding a port."""
    calls = []

    def fake_serve(registry, *, host, port, config):
        calls.append(
            {
                "names": registry.names(),
                "host": host,
                "port": port,
                "config": config,
                "env_key": os.environ.get("RAGQA_API_KEY"),
            }
        )

    monkeypatch.setattr(ragqa.server, "serve", fake_serve)
    return calls


def test_serves_the_workspace_by_default(workspace_root, monkeypatch, served) -> None:
    monkeypatch.setenv("RAGQA_DATA_DIR", str(workspace_root))
    result = CliRunner().invoke(cli, ["serve"])
    assert result.exit_code == 0, result.output
    [call] = served
    assert call["names"] == ["default", "notes"]
    assert (call["host"], call["port"]) == ("127.0.0.1", 8765)
    assert call["config"].api_key == ""
    assert "Serving default, notes at http://127.0.0.1:8765/v1" in result.output


def test_serves_chosen_folders_with_the_key_from_the_environment(
    workspace_root, monkeypatch, served
) -> None:
    monkeypatch.setenv("RAGQA_API_KEY", KEY)
    result = CliRunner().invoke(
        cli,
        ["serve", "--kb", str(workspace_root / "notes"), "--host", "0.0.0.0", "--port", "9001"],
    )
    assert result.exit_code == 0, result.output
    [call] = served
    assert call["names"] == ["notes"] and call["host"] == "0.0.0.0" and call["port"] == 9001
    assert call["config"].api_key == KEY
    # Taken out of the environment: no child process inherits it, and it is never shown.
    assert call["env_key"] is None
    assert KEY not in result.output and KEY not in repr(call["config"])
    assert "API key required" in result.output


def test_kb_and_workspace_together_are_refused(workspace_root, served) -> None:
    result = CliRunner().invoke(
        cli, ["serve", "--kb", str(workspace_root / "notes"), "--workspace", str(workspace_root)]
    )
    assert result.exit_code == 2 and "not both" in result.output
    assert not served


def test_a_missing_folder_is_a_one_line_error(tmp_path, served) -> None:
    result = CliRunner().invoke(cli, ["serve", "--kb", str(tmp_path / "nothing")])
    assert result.exit_code == 1
    assert "holds no knowledge base" in result.output and "Traceback" not in result.output
    assert not served


def test_without_the_serve_extra_the_message_says_what_to_install(monkeypatch) -> None:
    real_import = builtins.__import__

    def no_fastapi(name, *args, **kwargs):
        if name == "ragqa.server":
            raise ModuleNotFoundError("No module named 'fastapi'", name="fastapi")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_fastapi)
    result = CliRunner().invoke(cli, ["serve"])
    assert result.exit_code == 1
    assert "pip install 'ragqa[serve]'" in result.output and "fastapi" in result.output


def test_serve_checks_the_address_before_starting(make_registry) -> None:
    with pytest.raises(ConfigError, match="without an API key"):
        serve(make_registry(), host="0.0.0.0", port=1, config=ServerConfig())


def test_a_misconfigured_answerer_stops_the_start(make_registry) -> None:
    # OpenAI's own service needs a key; without one nothing should be served.
    registry = make_registry(llm="openai")
    with pytest.raises(ConfigError, match="RAGQA_LLM_API_KEY"):
        serve(registry, host="127.0.0.1", port=1, config=ServerConfig())
