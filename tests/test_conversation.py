from __future__ import annotations

from collections.abc import Iterator

import pytest

from ragqa.config import Settings
from ragqa.conversation import (
    Turn,
    bound_history,
    is_follow_up,
    rewrite_question,
    rewrite_question_heuristic,
)
from ragqa.errors import ConfigError, LLMError
from ragqa.llm import ChatBackend
from ragqa.llm.base import Messages

EN_HISTORY = [
    Turn("user", "What is BERT?"),
    Turn("assistant", "BERT is a language model from Google [1]."),
]
ZH_HISTORY = [
    Turn("user", "BERT 是什麼模型？"),
    Turn("assistant", "BERT 是 Google 的語言模型[1]。"),
]


class RecordingBackend(ChatBackend):
    """A fake model that records the messages it received."""

    name = "recording"

    def __init__(self, reply: str = "", error: LLMError | None = None) -> None:
        super().__init__(model="recorder")
        self.reply = reply
        self.error = error
        self.received: list[list[tuple[str, str]]] = []

    def stream(self, messages: Messages) -> Iterator[str]:
        self.received.append(list(messages))
        if self.error:
            raise self.error
        yield from self.reply.split(" ")[:1]
        for word in self.reply.split(" ")[1:]:
            yield " " + word


def test_turn_validates_its_role() -> None:
    assert Turn("user", "hi").role == "user"
    with pytest.raises(ConfigError):
        Turn("system", "hi")


def test_bound_history_keeps_the_last_turns() -> None:
    turns = [Turn("user", str(i)) for i in range(8)]
    assert [t.content for t in bound_history(turns, 3)] == ["5", "6", "7"]
    assert bound_history(turns, 0) == ()


@pytest.mark.parametrize(
    "question",
    [
        "and how many parameters does it have?",
        "What about its size?",
        "How big are they?",
        "Size?",
        "它有多少參數？",
        "那它的作者呢？",
        "參數量呢？",
        "這個模型多大？",
    ],
)
def test_follow_ups_are_recognised(question: str) -> None:
    assert is_follow_up(question)


@pytest.mark.parametrize(
    "question",
    [
        "When was the University of Chicago founded?",
        "How many parameters does GPT-2 have?",
        "台灣的首都是哪裡？",
        "茶起源於哪個國家？",
    ],
)
def test_standalone_questions_are_not_follow_ups(question: str) -> None:
    assert not is_follow_up(question)


def test_heuristic_adds_the_previous_questions_salient_terms() -> None:
    assert (
        rewrite_question_heuristic("and how many parameters does it have?", EN_HISTORY)
        == "and how many parameters does it have? (BERT)"
    )
    assert rewrite_question_heuristic("它有多少參數？", ZH_HISTORY) == "它有多少參數？（BERT 模型）"


def test_heuristic_leaves_standalone_questions_alone() -> None:
    question = "How many parameters does GPT-2 have?"
    assert rewrite_question_heuristic(question, EN_HISTORY) == question


def test_heuristic_looks_past_a_previous_follow_up() -> None:
    history = [*EN_HISTORY, Turn("user", "And who made it?"), Turn("assistant", "Google [1].")]
    # "And who made it?" has no salient terms of its own; BERT comes from the one before.
    rewritten = rewrite_question_heuristic("When was it released?", history)
    assert rewritten.startswith("When was it released? (BERT")


def test_heuristic_does_not_repeat_terms_already_asked() -> None:
    assert rewrite_question_heuristic("And BERT's size?", EN_HISTORY) == "And BERT's size?"


def test_without_history_the_question_is_unchanged() -> None:
    backend = RecordingBackend("should not be called")
    assert rewrite_question("它呢？", [], settings=Settings(), chat_model=backend) == "它呢？"
    assert backend.received == []


def test_extractive_settings_use_the_heuristic() -> None:
    rewritten = rewrite_question("它有多少參數？", ZH_HISTORY, settings=Settings())
    assert rewritten == "它有多少參數？（BERT 模型）"


def test_llm_rewrite_sends_a_short_bilingual_prompt() -> None:
    backend = RecordingBackend("Standalone question: How many parameters does BERT have?")
    rewritten = rewrite_question(
        "and how many parameters does it have?", EN_HISTORY, settings=Settings(), chat_model=backend
    )
    assert rewritten == "How many parameters does BERT have?"
    (messages,) = backend.received
    assert [role for role, _ in messages] == ["system", "user"]
    assert "standalone" in messages[0][1]
    assert "User: What is BERT?" in messages[1][1]
    assert "and how many parameters does it have?" in messages[1][1]

    zh_backend = RecordingBackend("「BERT 有多少參數？」")
    rewritten = rewrite_question(
        "它有多少參數？", ZH_HISTORY, settings=Settings(), chat_model=zh_backend
    )
    assert rewritten == "BERT 有多少參數？"
    assert "獨立問題" in zh_backend.received[0][0][1]
    assert "使用者：BERT 是什麼模型？" in zh_backend.received[0][1][1]


def test_llm_rewrite_sees_only_the_bounded_history() -> None:
    backend = RecordingBackend("What is X?")
    history = [Turn("user", f"question {i}") for i in range(10)]
    rewrite_question("And it?", history, settings=Settings(history_turns=2), chat_model=backend)
    prompt = backend.received[0][1][1]
    assert "question 9" in prompt and "question 8" in prompt
    assert "question 7" not in prompt


def test_configured_llm_is_used_for_rewriting() -> None:
    settings = Settings(llm="fake", llm_model="How many parameters does BERT have?")
    assert rewrite_question("And it?", EN_HISTORY, settings=settings) == (
        "How many parameters does BERT have?"
    )


@pytest.mark.parametrize("reply", ["", "   ", "word " * 300])
def test_unusable_llm_rewrite_falls_back_to_the_heuristic(reply: str) -> None:
    backend = RecordingBackend(reply)
    rewritten = rewrite_question(
        "How big is it?", EN_HISTORY, settings=Settings(), chat_model=backend
    )
    assert rewritten == "How big is it? (BERT)"


def test_unreachable_llm_falls_back_to_the_heuristic() -> None:
    backend = RecordingBackend(
        error=LLMError("cannot reach http://127.0.0.1:1/v1: connection refused")
    )
    rewritten = rewrite_question(
        "How big is it?", EN_HISTORY, settings=Settings(), chat_model=backend
    )
    assert rewritten == "How big is it? (BERT)"
