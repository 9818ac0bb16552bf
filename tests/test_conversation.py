from __future__ import annotations

from collections.abc import Iterator

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel

from ragqa.config import Settings
from ragqa.conversation import (
    Turn,
    bound_history,
    is_follow_up,
    rewrite_question,
    rewrite_question_heuristic,
)
from ragqa.errors import ConfigError, LLMError
from ragqa.followups import Substitution, substitute_entity, substitution_entity
from ragqa.llm import ChatBackend, as_chat_backend
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
    assert rewrite_question_heuristic("那參數量呢？", ZH_HISTORY) == "那參數量呢？（BERT 模型）"


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
    assert rewritten == "BERT 有多少參數？"


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


class EchoBackend(ChatBackend):
    """A fake model that hands the follow-up back, as Qwen2.5 0.5B does."""

    name = "echo"

    def __init__(self, reply: str) -> None:
        super().__init__(model="echo")
        self.reply = reply

    def stream(self, messages: Messages) -> Iterator[str]:
        yield self.reply


@pytest.mark.parametrize("reply", ["那 GPT 呢？", "那GPT呢", "「那 GPT 呢？」"])
def test_a_follow_up_handed_back_unchanged_falls_back_to_the_heuristic(reply: str) -> None:
    history = thread("BERT 用哪些任务做预训练？")
    rewritten = rewrite_question(
        "那 GPT 呢？", history, settings=Settings(), chat_model=EchoBackend(reply)
    )
    assert rewritten == "GPT 用哪些任务做预训练？"
    # A rewrite that still reads as a follow-up but says more is kept.
    kept = "那 GPT 用哪些任务做预训练呢？"
    assert (
        rewrite_question("那 GPT 呢？", history, settings=Settings(), chat_model=EchoBackend(kept))
        == kept
    )


def test_unreachable_llm_falls_back_to_the_heuristic() -> None:
    backend = RecordingBackend(
        error=LLMError("cannot reach http://127.0.0.1:1/v1: connection refused")
    )
    rewritten = rewrite_question(
        "How big is it?", EN_HISTORY, settings=Settings(), chat_model=backend
    )
    assert rewritten == "How big is it? (BERT)"


# ------------------------------------------------------------ substitution follow-ups


def thread(*questions: str) -> list[Turn]:
    """A history of user questions, each answered."""
    turns = []
    for number, question in enumerate(questions, start=1):
        turns += [Turn("user", question), Turn("assistant", f"An answer [{number}].")]
    return turns


@pytest.mark.parametrize(
    ("question", "entity"),
    [
        ("那 GPT 呢？", "GPT"),
        ("GPT 呢？", "GPT"),
        ("那么 GPT-2 呢", "GPT-2"),
        ("那麼 GPT-2 呢？", "GPT-2"),
        ("还有 T5 呢？", "T5"),
        ("那少样本学习呢？", "少样本学习"),
        ("那 GPT 的呢？", "GPT"),
        ("What about GPT?", "GPT"),
        ("How about for GPT-2?", "GPT-2"),
        ("And GPT?", "GPT"),
        ("and for LLaMA?", "LLaMA"),
        ("And what about the RNN?", "RNN"),
    ],
)
def test_substitution_entity_finds_the_new_entity(question: str, entity: str) -> None:
    assert substitution_entity(question) == entity


@pytest.mark.parametrize(
    "question",
    [
        "那它的作者呢？",
        "那个模型呢？",
        "那价格是多少呢？",
        "它有多少参数？",
        "What about its size?",
        "And how many parameters does it have?",
        "How many parameters does GPT-2 have?",
    ],
)
def test_substitution_entity_rejects_other_questions(question: str) -> None:
    assert substitution_entity(question) is None


def test_substitute_entity_reports_what_it_replaced() -> None:
    assert substitute_entity("GPT-3 有多少参数？", "GPT-2") == Substitution(
        question="GPT-2 有多少参数？", old="GPT-3", new="GPT-2"
    )
    # The name that shares a prefix with the new one is the one it replaces.
    assert substitute_entity("Is BERT better than GPT-3?", "GPT-2").question == (
        "Is BERT better than GPT-2?"
    )
    # A phrase containing all of the new entity is replaced whole.
    assert substitute_entity("无监督学习是什么？", "监督学习").question == "监督学习是什么？"


@pytest.mark.parametrize(
    ("question", "entity"),
    [
        ("台灣的首都是哪裡？", "人口"),  # an aspect, not a place: no subject to swap
        ("BERT 是什麼模型？", "參數量"),
        ("Who wrote Hamlet?", "pricing"),  # lower-case English: not a name
        ("What is BERT?", "BERT"),  # already there
        ("什么是机器学习？", "GPT 模型"),
        ("", "GPT"),
    ],
)
def test_substitute_entity_gives_up_when_nothing_fits(question: str, entity: str) -> None:
    assert substitute_entity(question, entity) is None


@pytest.mark.parametrize(
    ("earlier", "follow_up", "standalone"),
    [
        ("BERT 用哪些任务做预训练？", "那 GPT 呢？", "GPT 用哪些任务做预训练？"),
        ("GPT-3 有多少参数？", "那 GPT-2 呢？", "GPT-2 有多少参数？"),
        ("零样本学习是什么意思？", "那少样本学习呢？", "少样本学习是什么意思？"),
        ("零样本学习是什么意思？", "那少样本呢？", "少样本学习是什么意思？"),
        ("零樣本學習是什麼意思？", "那少樣本呢？", "少樣本學習是什麼意思？"),
        ("BERT 的預訓練任務是什麼？", "那 GPT 呢？", "GPT 的預訓練任務是什麼？"),
        ("台灣的首都是哪裡？", "那日本呢？", "日本的首都是哪裡？"),
        (
            "What are BERT's pre-training tasks?",
            "What about GPT?",
            "What are GPT's pre-training tasks?",
        ),
        ("What are BERT's pre-training tasks?", "And GPT?", "What are GPT's pre-training tasks?"),
        (
            "What are BERT's pre-training tasks?",
            "How about for GPT-2?",
            "What are GPT-2's pre-training tasks?",
        ),
    ],
)
def test_heuristic_puts_the_new_entity_in_place_of_the_old(
    earlier: str, follow_up: str, standalone: str
) -> None:
    assert rewrite_question_heuristic(follow_up, thread(earlier)) == standalone


def test_heuristic_substitution_drops_the_old_entity() -> None:
    rewritten = rewrite_question_heuristic("那少样本呢？", thread("零样本学习是什么意思？"))
    assert "少样本" in rewritten and "是什么意思" in rewritten
    assert "零样本" not in rewritten


def test_heuristic_walks_a_thread_of_substitutions() -> None:
    history = thread("BERT 用哪些任务做预训练？", "那 GPT 呢？")
    assert rewrite_question_heuristic("那 T5 呢？", history) == "T5 用哪些任务做预训练？"
    history = thread("What are BERT's pre-training tasks?", "What about GPT?", "And T5?")
    assert rewrite_question_heuristic("How about for LLaMA?", history) == (
        "What are LLaMA's pre-training tasks?"
    )


def test_heuristic_substitutes_into_a_rewritten_pronoun_follow_up() -> None:
    # "它有多少參數？" stands alone as "它有多少參數？（BERT 模型）"; GPT takes BERT's place.
    history = thread("BERT 是什麼模型？", "它有多少參數？")
    assert rewrite_question_heuristic("那 GPT 呢？", history) == "它有多少參數？（GPT 模型）"


def test_heuristic_puts_the_subject_in_place_of_a_chinese_pronoun() -> None:
    # Not the earlier question's other words: "任务做预训练" would find the
    # pre-training passage again, not the one about parameters.
    history = thread("BERT 用哪些任务做预训练？")
    assert rewrite_question_heuristic("它有多少参数？", history) == "BERT 有多少参数？"
    # From the shared notes' questions: the subject is the phrase before the verb.
    history = thread("循环神经网络为啥能记住前面的信息？")
    assert rewrite_question_heuristic("那它有什么毛病？", history) == "循环神经网络有什么毛病？"
    # A follow-up before it is skipped: its own subject is a pronoun.
    history = thread("GPT-3 是哪一年出来的？") + thread("那它是谁开发的？")
    assert rewrite_question_heuristic("它有多少参数？", history) == "GPT-3 有多少参数？"


def test_heuristic_keeps_borrowing_for_other_pronoun_follow_ups() -> None:
    assert rewrite_question_heuristic("how many parameters does it have?", EN_HISTORY) == (
        "how many parameters does it have? (BERT)"
    )
    assert rewrite_question_heuristic("Who wrote Hamlet?", thread("What about GPT?")) == (
        "Who wrote Hamlet?"
    )


@pytest.mark.parametrize(
    ("history", "follow_up", "expected"),
    [
        # No entity of the same kind to replace: borrow terms, as before.
        (thread("台灣的首都是哪裡？"), "那人口呢？", "那人口呢？（台灣 首都）"),
        (ZH_HISTORY, "參數量呢？", "參數量呢？（BERT 模型）"),
        # No question to vary: the thread holds only follow-ups.
        (thread("那 BERT 呢？"), "那 GPT 呢？", "那 GPT 呢？（BERT）"),
        # The same entity again.
        (EN_HISTORY, "What about BERT?", "What about BERT?"),
    ],
)
def test_heuristic_substitution_falls_back_to_borrowing(
    history: list[Turn], follow_up: str, expected: str
) -> None:
    assert rewrite_question_heuristic(follow_up, history) == expected


def test_a_step_without_a_match_borrows_and_later_steps_substitute_into_it() -> None:
    history = thread("BERT 是什麼模型？", "參數量呢？")
    assert rewrite_question_heuristic("那 GPT 呢？", history) == "參數量呢？（GPT 模型）"


def test_llm_rewrite_that_keeps_the_new_entity_is_used() -> None:
    model = FakeListChatModel(responses=["GPT 用哪些任务做预训练？"])
    history = thread("BERT 用哪些任务做预训练？")
    rewritten = rewrite_question("那 GPT 呢？", history, settings=Settings(), chat_model=model)
    assert rewritten == "GPT 用哪些任务做预训练？"

    backend = as_chat_backend(FakeListChatModel(responses=["Question: What are GPT's tasks?"]))
    rewritten = rewrite_question(
        "What about GPT?", EN_HISTORY, settings=Settings(), chat_model=backend
    )
    assert rewritten == "What are GPT's tasks?"


@pytest.mark.parametrize(
    "reply",
    [
        "BERT 用哪些任务做预训练？",  # the old entity again
        "用哪些任务做预训练？",  # no entity at all
    ],
)
def test_llm_rewrite_that_drops_the_new_entity_falls_back(reply: str) -> None:
    model = FakeListChatModel(responses=[reply])
    history = thread("BERT 用哪些任务做预训练？")
    rewritten = rewrite_question("那 GPT 呢？", history, settings=Settings(), chat_model=model)
    assert rewritten == "GPT 用哪些任务做预训练？"


def test_llm_rewrite_of_an_english_substitution_falls_back_too() -> None:
    model = FakeListChatModel(responses=["What are BERT's pre-training tasks?"])
    history = thread("What are BERT's pre-training tasks?")
    rewritten = rewrite_question(
        "How about for GPT-2?", history, settings=Settings(), chat_model=model
    )
    assert rewritten == "What are GPT-2's pre-training tasks?"


def test_llm_rewrite_of_a_pronoun_follow_up_is_not_checked_for_an_entity() -> None:
    model = FakeListChatModel(responses=["How many parameters does BERT have?"])
    rewritten = rewrite_question(
        "how many parameters does it have?", EN_HISTORY, settings=Settings(), chat_model=model
    )
    assert rewritten == "How many parameters does BERT have?"


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("第二步用的是什么样的数据？", True),  # from the shared notes' questions
        ("下一步呢", True),
        ("What happens in the second step?", True),
        ("第二次世界大战是哪一年结束的？", False),
        ("What is the second law of thermodynamics?", False),
    ],
)
def test_an_ordinal_that_points_back_makes_a_follow_up(question: str, expected: bool) -> None:
    assert is_follow_up(question) is expected
