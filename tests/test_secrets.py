"""The API key given in ``RAGQA_LLM_API_KEY`` never leaves the process's memory.

It must not appear in: the knowledge-base directory after an ingest and a question,
the log records of any logger at any level, the CLI's output (errors included),
``repr(Settings)``, or the messages and tracebacks of the errors a failing backend
raises, whether the server cannot be reached or answers with the key in its reply.
All servers here are on the loopback interface.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ragqa import KnowledgeBase, Settings
from ragqa.config import mask_secret
from ragqa.errors import ConfigError, LLMError

# Distinctive enough that no other text contains it by chance; the pieces below are
# what a careless mask or a truncated message would still show.
KEY = "sk-proj-ZQ9xTESTkey7Wv2Lm4Nn8Pp1Rr6Ss3Tt5Uu0END"
KEY_PIECES = (KEY, KEY[8:30], KEY[-24:])
TEA = "Oolong tea is partly oxidised. Dong Ding oolong comes from Lugu in Nantou County."


def assert_no_key(text: str | bytes, where: str) -> None:
    if isinstance(text, bytes):
        for encoding in ("utf-8", "utf-16-le", "utf-16-be"):
            for piece in KEY_PIECES:
                assert piece.encode(encoding) not in text, f"the key is in {where} ({encoding})"
        return
    for piece in KEY_PIECES:
        assert piece not in text, f"the key is in {where}: {text[:500]!r}"


@pytest.fixture
def key_in_env(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("RAGQA_LLM_API_KEY", KEY)
    return KEY


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _EchoingServer(BaseHTTPRequestHandler):
    """An OpenAI-compatible server that fails, quoting the request's key back."""

    status = 500

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        sent_key = self.headers.get("Authorization", "").removeprefix("Bearer ")
        body = json.dumps(
            {"error": {"message": f"Incorrect API key provided: {sent_key}", "code": "bad"}}
        ).encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass  # keep the test output clean


@pytest.fixture
def echoing_server() -> Iterator[Callable[[int], str]]:
    """Start servers answering with a status; returns their base URLs."""
    servers: list[ThreadingHTTPServer] = []

    def start(status: int) -> str:
        handler = type("Handler", (_EchoingServer,), {"status": status})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/v1"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def kb_dir(tmp_path: Path, settings: Settings, write_text: Callable[..., Path]) -> Path:
    directory = tmp_path / "kb"
    with KnowledgeBase.create(directory, settings=settings) as kb:
        kb.add([write_text("tea.md", TEA)])
    return directory


# ------------------------------------------------------------------- settings


def test_settings_show_the_key_nowhere(key_in_env: str) -> None:
    settings = Settings.from_env()
    assert settings.llm_api_key == KEY  # it was read
    assert_no_key(repr(settings), "repr(Settings)")
    assert_no_key(str(settings), "str(Settings)")
    assert_no_key(f"{settings!r} {settings}", "an f-string of Settings")
    redacted = settings.redacted()
    assert redacted["llm_api_key"] == mask_secret(KEY)
    assert_no_key(json.dumps(redacted), "Settings.redacted()")
    assert_no_key(repr(settings.replace(top_k=3)), "repr of a changed copy")


def test_setting_errors_do_not_quote_the_key(
    key_in_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAGQA_TOP_K", "many")
    with pytest.raises(ConfigError) as error:
        Settings.from_env()
    assert_no_key(str(error.value), "a ConfigError")
    monkeypatch.delenv("RAGQA_TOP_K")
    # A misspelt variable name: the message names it, never its value.
    monkeypatch.setenv("RAGQA_LLM_APIKEY", KEY)
    with pytest.raises(ConfigError, match="RAGQA_LLM_APIKEY") as error:
        Settings.from_env()
    assert_no_key(str(error.value), "an unknown-setting error")


# ------------------------------------------------------------------- backends


def _failing_ask(kb_dir: Path, base_url: str) -> LLMError:
    settings = Settings.from_env(
        embedding_model="hashing:64",
        llm="openai",
        llm_base_url=base_url,
        llm_max_retries=0,
        llm_timeout=10,
    )
    assert settings.llm_api_key == KEY
    with KnowledgeBase.open(kb_dir, settings=settings) as kb, pytest.raises(LLMError) as error:
        kb.ask("Where does Dong Ding oolong come from?")
    return error.value


def _assert_error_and_logs_clean(error: BaseException, caplog: pytest.LogCaptureFixture) -> None:
    assert_no_key(str(error), "the error message")
    assert_no_key(repr(error), "the error's repr")
    # The whole chain, as a traceback would print it.
    assert_no_key("".join(traceback.format_exception(error)), "the traceback")
    for record in caplog.records:
        text = record.getMessage()
        if record.exc_info:
            text += "".join(traceback.format_exception(*record.exc_info))
        assert_no_key(text, f"a log record of {record.name}")


def test_unreachable_server(
    key_in_env: str, kb_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, openai's and httpx's included
    error = _failing_ask(kb_dir, f"http://127.0.0.1:{closed_port()}/v1")
    assert "cannot reach" in str(error) and "connection refused" in str(error)
    _assert_error_and_logs_clean(error, caplog)
    assert caplog.records  # the clients did log at debug level; none of it leaked


@pytest.mark.parametrize("status", [401, 403, 400, 500])
def test_server_that_quotes_the_key_back(
    key_in_env: str,
    kb_dir: Path,
    caplog: pytest.LogCaptureFixture,
    echoing_server: Callable[[int], str],
    status: int,
) -> None:
    caplog.set_level(logging.DEBUG)
    error = _failing_ask(kb_dir, echoing_server(status))
    assert f"HTTP {status}" in str(error)
    _assert_error_and_logs_clean(error, caplog)


# ------------------------------------------------------------ files and the CLI


def _cli(*args: str, home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("RAGQA_")}
    environment.update(
        RAGQA_EMBEDDING_MODEL="hashing:64",
        RAGQA_LLM_API_KEY=KEY,
        HOME=str(home),
        XDG_DATA_HOME=str(home / "data"),
        **env,
    )
    return subprocess.run(
        [sys.executable, "-m", "ragqa.cli", *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_cli_output_and_files_never_hold_the_key(
    tmp_path: Path, write_text: Callable[..., Path], echoing_server: Callable[[int], str]
) -> None:
    home = tmp_path / "home"
    kb = str(tmp_path / "cli-kb")
    docs = write_text("tea.md", TEA).parent
    unreachable = f"http://127.0.0.1:{closed_port()}/v1"
    runs = {
        "ingest": _cli("ingest", str(docs), "--kb", kb, home=home),
        "ingest --json": _cli("ingest", str(docs), "--kb", kb, "--json", home=home),
        "search": _cli("search", "oolong", "--kb", kb, home=home),
        "info": _cli("info", "--kb", kb, "--json", home=home),
        "ask extractive": _cli("ask", "Where is Lugu?", "--kb", kb, "--json", home=home),
        "ask unreachable": _cli(
            "ask", "Where is Lugu?", "--kb", kb, "--llm", "openai", "--llm-base-url", unreachable,
            home=home, RAGQA_LLM_MAX_RETRIES="1",
        ),
        "ask echoing 401": _cli(
            "ask", "Where is Lugu?", "--kb", kb, "--llm", "openai",
            "--llm-base-url", echoing_server(401), home=home,
        ),
        "ask echoing 500": _cli(
            "ask", "Where is Lugu?", "--kb", kb, "--llm", "openai",
            "--llm-base-url", echoing_server(500), home=home, RAGQA_LLM_MAX_RETRIES="0",
        ),
        "ask openai without a model": _cli(
            "ask", "Where is Lugu?", "--kb", kb, "--llm", "openai", home=home
        ),
        "bad setting": _cli("search", "oolong", "--kb", kb, home=home, RAGQA_TOP_K="many"),
        "missing kb": _cli("search", "oolong", "--kb", str(tmp_path / "none"), home=home),
    }  # fmt: skip
    for name, result in runs.items():
        assert_no_key(result.stdout, f"the stdout of `ragqa {name}`")
        assert_no_key(result.stderr, f"the stderr of `ragqa {name}`")
        assert "Traceback" not in result.stderr, (name, result.stderr)
    assert runs["ingest"].returncode == 0 and runs["ask extractive"].returncode == 0
    for failed in ("ask unreachable", "ask echoing 401", "ask echoing 500", "bad setting"):
        assert runs[failed].returncode == 1 and "Error: " in runs[failed].stderr, failed
    assert "RAGQA_LLM_MODEL" in runs["ask openai without a model"].stderr

    # Nothing on disk either: the knowledge base, and the home and data folders.
    for root in (Path(kb), home):
        for path in root.rglob("*"):
            if path.is_file():
                assert_no_key(path.read_bytes(), str(path))


def test_ask_through_the_api_leaves_no_key_in_the_directory(
    key_in_env: str, kb_dir: Path, echoing_server: Callable[[int], str]
) -> None:
    _failing_ask(kb_dir, echoing_server(500))
    settings = Settings.from_env(embedding_model="hashing:64")
    with KnowledgeBase.open(kb_dir, settings=settings) as kb:
        assert kb.ask("Where does Dong Ding oolong come from?").text
        assert_no_key(repr(kb), "repr(KnowledgeBase)")
    for path in kb_dir.rglob("*"):
        if path.is_file():
            assert_no_key(path.read_bytes(), str(path))
