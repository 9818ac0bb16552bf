from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator

import httpx
import pytest
from langchain_core.language_models.fake_chat_models import (
    FakeListChatModel,
    GenericFakeChatModel,
)

from ragqa.config import Settings
from ragqa.errors import ConfigError, LLMError
from ragqa.llm import ChatBackend, as_chat_backend, get_chat_model
from ragqa.llm.base import (
    ConnectionFailure,
    LangChainBackend,
    connection_reason,
    display_url,
    scrub,
)
from ragqa.llm.ollama_backend import map_ollama_error
from ragqa.llm.openai_backend import map_openai_error

SECRET = "sk-test-SECRET-0123456789abcdef"


@pytest.fixture
def closed_port() -> int:
    """A loopback port that refuses connections: bound, then closed."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


# ------------------------------------------------------------------ factory


def test_factory_builds_each_backend() -> None:
    assert get_chat_model(Settings(llm="fake")).name == "fake"
    openai = get_chat_model(Settings(llm="openai", llm_base_url="http://127.0.0.1:8080/v1/"))
    assert (openai.name, openai.endpoint, openai.model) == (
        "openai",
        "http://127.0.0.1:8080/v1",
        "local-model",
    )
    ollama = get_chat_model(Settings(llm="ollama", llm_model="llama3.2"))
    assert (ollama.name, ollama.endpoint) == ("ollama", "http://localhost:11434")


def test_the_temperature_reaches_the_chat_models() -> None:
    url = "http://127.0.0.1:8080/v1/"
    assert get_chat_model(Settings(llm="openai", llm_base_url=url))._chat_model.temperature == 0
    hot = Settings(llm="openai", llm_base_url=url, llm_temperature=0.7)
    assert get_chat_model(hot)._chat_model.temperature == 0.7
    ollama = get_chat_model(Settings(llm="ollama", llm_model="llama3.2", llm_temperature=0.2))
    assert ollama._chat_model.temperature == 0.2
    with pytest.raises(ConfigError, match="llm_temperature"):
        Settings(llm_temperature=-1)


def test_with_options_rebuilds_the_chat_model_and_never_raises_the_cap() -> None:
    url = "http://127.0.0.1:9/v1"
    base = get_chat_model(Settings(llm="openai", llm_base_url=url, llm_max_tokens=256))
    cooler = base.with_options(temperature=0.7, max_tokens=40)
    assert (cooler.temperature, cooler.max_tokens) == (0.7, 40)
    assert cooler._chat_model.temperature == 0.7 and cooler._chat_model.max_tokens == 40
    # A local server reads max_tokens from the body: that copy follows too.
    assert cooler._chat_model.extra_body == {"max_tokens": 40}
    assert base._chat_model.temperature == 0 and base.max_tokens == 256  # untouched
    # The prompt left room for 256 tokens of reply: a larger cap is not taken.
    assert base.with_options(max_tokens=10_000).max_tokens == 256
    assert base.with_options() is base and base.with_options(max_tokens=256) is base
    assert base.with_options(temperature=0.7, max_tokens=40) is cooler  # built once

    ollama = get_chat_model(Settings(llm="ollama", llm_model="llama3.2", llm_max_tokens=128))
    short = ollama.with_options(max_tokens=16, temperature=1.5)
    assert (short._chat_model.num_predict, short._chat_model.temperature) == (16, 1.5)

    fake = get_chat_model(Settings(llm="fake", llm_model="one two three four [1]."))
    assert fake.with_options(max_tokens=3).complete([("user", "?")]) == "one two three"
    # A LangChain model passed in as it is has no recipe to rebuild from.
    wrapped = as_chat_backend(FakeListChatModel(responses=["x"]))
    assert wrapped.with_options(temperature=1.0, max_tokens=5) is wrapped


def test_factory_rejects_extractive_and_incomplete_settings() -> None:
    with pytest.raises(ConfigError, match="without a chat model"):
        get_chat_model(Settings())
    with pytest.raises(ConfigError, match="RAGQA_LLM_API_KEY"):
        get_chat_model(Settings(llm="openai"))
    with pytest.raises(ConfigError, match="RAGQA_LLM_MODEL"):
        get_chat_model(Settings(llm="openai", llm_api_key=SECRET))
    with pytest.raises(ConfigError, match="RAGQA_LLM_MODEL"):
        get_chat_model(Settings(llm="ollama"))


def test_llamacpp_backend_names_the_missing_file_or_extra(tmp_path) -> None:
    missing = tmp_path / "nope.gguf"
    with pytest.raises(ConfigError) as info:
        get_chat_model(Settings(llm="llamacpp", llm_model=str(missing)))
    # Either llama-cpp-python is missing (install hint) or the file is (its path).
    assert "ragqa[llamacpp]" in str(info.value) or "nope.gguf" in str(info.value)


def test_llamacpp_missing_extra_names_the_install_command(monkeypatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_llama(name, *args, **kwargs):
        if name == "llama_cpp":
            raise ImportError("No module named 'llama_cpp'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_llama)
    with pytest.raises(ConfigError, match=r"pip install 'ragqa\[llamacpp\]'"):
        get_chat_model(Settings(llm="llamacpp", llm_model="model.gguf"))


def test_key_is_not_in_the_backends_repr() -> None:
    backend = get_chat_model(Settings(llm="openai", llm_api_key=SECRET, llm_model="gpt-4o-mini"))
    assert SECRET not in repr(backend)
    assert SECRET not in backend.describe()


def test_as_chat_backend_wraps_langchain_models() -> None:
    backend = as_chat_backend(FakeListChatModel(responses=["hi"]))
    assert isinstance(backend, LangChainBackend)
    assert as_chat_backend(backend) is backend
    with pytest.raises(ConfigError):
        as_chat_backend(object())


# ------------------------------------------------------------------ streaming


def test_fake_backend_streams_tokens() -> None:
    backend = get_chat_model(Settings(llm="fake", llm_model="Tea is old [1]."))
    pieces = list(backend.stream([("system", "rules"), ("user", "What?")]))
    assert len(pieces) > 1
    assert "".join(pieces) == "Tea is old [1]."
    # It replies the same way every time.
    assert backend.complete([("user", "again")]) == "Tea is old [1]."


def test_langchain_backend_converts_roles() -> None:
    seen = []

    class Recording(GenericFakeChatModel):
        def _stream(self, messages, *args, **kwargs):
            seen.append([(type(m).__name__, m.content) for m in messages])
            yield from super()._stream(messages, *args, **kwargs)

    backend = LangChainBackend(Recording(messages=iter(["ok"])))
    assert (
        backend.complete([("system", "s"), ("user", "u"), ("assistant", "a"), ("user", "q")])
        == "ok"
    )
    assert seen[0] == [
        ("SystemMessage", "s"),
        ("HumanMessage", "u"),
        ("AIMessage", "a"),
        ("HumanMessage", "q"),
    ]
    with pytest.raises(LLMError, match="role"):
        backend.complete([("tool", "x")])


def test_default_token_count_is_the_estimate() -> None:
    backend = get_chat_model(Settings(llm="fake"))
    assert backend.count_tokens("你好") >= 3


# ------------------------------------------------------------------ errors


class FlakyModel(FakeListChatModel):
    """Fails with a connection error a number of times, then answers."""

    failures: int = 0

    def _stream(self, *args, **kwargs):
        if self.failures > 0:
            self.failures -= 1
            raise httpx.ConnectError("[Errno 111] Connection refused")
        yield from super()._stream(*args, **kwargs)


def ollama_mapper(exc: BaseException) -> LLMError | None:
    return map_ollama_error(exc, url="http://localhost:11434", model="m", timeout=5)


def test_connection_failures_before_the_first_token_are_retried(monkeypatch) -> None:
    monkeypatch.setattr("ragqa.llm.base.time.sleep", lambda _seconds: None)
    backend = LangChainBackend(
        FlakyModel(responses=["fine"], failures=2), map_error=ollama_mapper, retries=2
    )
    assert backend.complete([("user", "q")]) == "fine"


def test_retries_run_out_with_a_clear_message(monkeypatch) -> None:
    monkeypatch.setattr("ragqa.llm.base.time.sleep", lambda _seconds: None)
    backend = LangChainBackend(
        FlakyModel(responses=["fine"], failures=5), map_error=ollama_mapper, retries=1
    )
    with pytest.raises(ConnectionFailure) as info:
        backend.complete([("user", "q")])
    assert str(info.value).startswith("cannot reach http://localhost:11434: connection refused")
    assert "after 2 attempts" in str(info.value)


def test_unknown_errors_become_llm_errors_without_the_secret() -> None:
    class Leaky(FakeListChatModel):
        def _stream(self, *args, **kwargs):
            raise RuntimeError(f"boom with key {SECRET}")
            yield  # pragma: no cover

    backend = LangChainBackend(Leaky(responses=["x"]), name="openai", secret=SECRET)
    with pytest.raises(LLMError) as info:
        backend.complete([("user", "q")])
    assert SECRET not in str(info.value)
    assert "RuntimeError" in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__


def make_openai_error(kind: str):
    import openai

    request = httpx.Request("POST", "http://127.0.0.1:9/v1/chat/completions")
    if kind == "timeout":
        return openai.APITimeoutError(request=request)
    if kind == "refused":
        error = openai.APIConnectionError(request=request)
        error.__cause__ = httpx.ConnectError("[Errno 111] Connection refused")
        return error
    status = {"auth": 401, "missing": 404, "rate": 429, "server": 500}[kind]
    response = httpx.Response(status, request=request, json={"error": {"message": f"bad {SECRET}"}})
    cls = {
        401: openai.AuthenticationError,
        404: openai.NotFoundError,
        429: openai.RateLimitError,
        500: openai.InternalServerError,
    }[status]
    return cls(
        f"Error code: {status} - key {SECRET}", response=response, body={"message": f"bad {SECRET}"}
    )


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("timeout", "timed out after 5s waiting for http://127.0.0.1:9/v1 (after 3 attempts)"),
        ("refused", "cannot reach http://127.0.0.1:9/v1: connection refused (after 3 attempts)"),
        ("auth", "http://127.0.0.1:9/v1 rejected the API key (HTTP 401); check RAGQA_LLM_API_KEY"),
        ("missing", "answered HTTP 404 for model 'm'"),
        ("rate", "rate-limiting"),
        ("server", "http://127.0.0.1:9/v1 answered HTTP 500: bad"),
    ],
)
def test_openai_errors_are_mapped(kind: str, expected: str) -> None:
    error = map_openai_error(
        make_openai_error(kind), url="http://127.0.0.1:9/v1", model="m", timeout=5, attempts=3
    )
    assert isinstance(error, LLMError)
    assert expected in str(error)
    assert isinstance(error, ConnectionFailure) == (kind in ("timeout", "refused"))


def test_openai_error_messages_never_carry_the_key() -> None:
    class Failing(FakeListChatModel):
        def _stream(self, *args, **kwargs):
            raise make_openai_error("server")
            yield  # pragma: no cover

    def mapper(exc):
        return map_openai_error(exc, url="http://x/v1", model="m", timeout=1)

    backend = LangChainBackend(Failing(responses=["x"]), map_error=mapper, secret=SECRET)
    with pytest.raises(LLMError) as info:
        backend.complete([("user", "q")])
    assert SECRET not in str(info.value)
    assert "HTTP 500" in str(info.value)


def test_ollama_errors_are_mapped() -> None:
    import ollama

    refused = ConnectionError("Failed to connect to Ollama.")
    refused.__context__ = httpx.ConnectError("[Errno 111] Connection refused")
    assert str(ollama_mapper(refused)).startswith(
        "cannot reach http://localhost:11434: connection refused"
    )
    missing = ollama_mapper(ollama.ResponseError("model 'm' not found", 404))
    assert "ollama pull m" in str(missing)
    assert "timed out after 5s" in str(ollama_mapper(httpx.ReadTimeout("slow")))
    assert ollama_mapper(ValueError("other")) is None


def test_connection_reason_and_url_helpers() -> None:
    assert connection_reason(ConnectionRefusedError()) == "connection refused"
    assert (
        connection_reason(socket.gaierror(-2, "Name or service not known")) == "host name not found"
    )
    assert connection_reason(ValueError("?")) == "connection failed"
    assert (
        display_url("https://me:pw@example.invalid:8443/v1/") == "https://example.invalid:8443/v1"
    )
    assert scrub(f"x {SECRET} y", SECRET) == "x *** y"
    assert len(scrub("a" * 1000)) == 300


# ------------------------------------------------------------------ real sockets


def test_refused_port_through_the_real_openai_backend(closed_port: int, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    url = f"http://127.0.0.1:{closed_port}/v1"
    backend = get_chat_model(
        Settings(
            llm="openai", llm_base_url=url, llm_api_key=SECRET, llm_max_retries=0, llm_timeout=5
        )
    )
    with pytest.raises(LLMError) as info:
        list(backend.stream([("user", "hello")]))
    message = str(info.value)
    assert message.startswith(f"cannot reach {url}: connection refused")
    assert SECRET not in message
    assert SECRET not in caplog.text
    assert "Traceback" not in message


def test_refused_port_through_the_real_ollama_backend(closed_port: int) -> None:
    url = f"http://127.0.0.1:{closed_port}"
    backend = get_chat_model(
        Settings(llm="ollama", llm_model="m", llm_base_url=url, llm_max_retries=0, llm_timeout=5)
    )
    with pytest.raises(LLMError, match=f"cannot reach {url}: connection refused"):
        list(backend.stream([("user", "hello")]))


def test_silent_server_times_out_through_the_real_openai_backend() -> None:
    # A listening socket that never answers: the client must give up on its own.
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    port = server.getsockname()[1]
    stop = threading.Event()
    accepted: list[socket.socket] = []

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{port}/v1"
        backend = get_chat_model(
            Settings(llm="openai", llm_base_url=url, llm_max_retries=0, llm_timeout=0.5)
        )
        with pytest.raises(LLMError, match=f"timed out after 0.5s waiting for {url}"):
            list(backend.stream([("user", "hello")]))
    finally:
        stop.set()
        thread.join(5)
        for conn in accepted:
            conn.close()
        server.close()


class _Backend(ChatBackend):
    def stream(self, messages) -> Iterator[str]:
        yield "x"


def test_chat_backend_builds_on_stream() -> None:
    backend = _Backend(model="m", endpoint="e")
    assert backend.complete([("user", "q")]) == "x"
    assert backend.describe() == "chat:m at e"
