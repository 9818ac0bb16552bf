"""Chat messages in; completions and server-sent events out."""

from __future__ import annotations

import json

import pytest

from ragqa.answering import Answer, Citation
from ragqa.conversation import Turn
from ragqa.errors import LLMError
from ragqa.server.chat import completion, question_and_history, start_stream
from ragqa.server.errors import ApiError
from ragqa.server.schemas import ChatCompletionRequest, ChatMessage

CITATION = Citation(1, "/kb/uploads/paris.md", 1, 0, 29, 7, "The Eiffel Tower is in Paris.")
ANSWER = Answer("In Paris [1].", citations=(CITATION,), question="Where?")


def messages(*pairs: tuple[str, object]) -> list[ChatMessage]:
    return [ChatMessage(role=role, content=content) for role, content in pairs]


def test_last_user_message_is_the_question_and_the_rest_the_history() -> None:
    question, history = question_and_history(
        messages(
            ("system", "Be brief."),
            ("user", "Tell me about the Eiffel Tower."),
            ("assistant", "It is in Paris [1]."),
            ("tool", "ignored"),
            ("user", [{"type": "text", "text": " When was it built? "}, {"type": "image_url"}]),
        )
    )
    assert question == "When was it built?"
    assert history == [
        Turn("user", "Tell me about the Eiffel Tower."),
        Turn("assistant", "It is in Paris [1]."),
    ]


@pytest.mark.parametrize(
    ("pairs", "code"),
    [
        ((("system", "Be brief."),), "invalid_value"),
        ((("user", "Hi"), ("assistant", "Hello")), "invalid_value"),
        ((("user", "  "),), "empty_question"),
        ((("user", [{"type": "image_url"}]),), "empty_question"),
    ],
)
def test_no_question_is_a_400(pairs, code) -> None:
    with pytest.raises(ApiError) as info:
        question_and_history(messages(*pairs))
    assert (info.value.status, info.value.code, info.value.param) == (400, code, "messages")


def test_request_accepts_and_ignores_openai_options() -> None:
    request = ChatCompletionRequest.model_validate(
        {
            "model": "default",
            "messages": [{"role": "user", "content": "Hi", "name": "me"}],
            "temperature": 0,
            "n": 1,
            "stream_options": {"include_usage": True},
            "tools": [],
        }
    )
    assert request.stream is False and request.messages[0].text() == "Hi"


def test_completion_carries_the_citations() -> None:
    body = completion(ANSWER, "default").model_dump()
    assert body["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "In Paris [1]."},
            "finish_reason": "stop",
        }
    ]
    assert body["citations"][0]["file_name"] == "paris.md"
    assert body["citations"][0]["chunk_id"] == 7


def events(lines) -> list[object]:
    out = []
    for line in "".join(lines).split("\n\n"):
        if line:
            assert line.startswith("data: ")
            data = line[len("data: ") :]
            out.append(data if data == "[DONE]" else json.loads(data))
    return out


def test_stream_events_end_with_citations_and_done() -> None:
    parsed = events(start_stream(iter(["In ", "Paris [1].", ANSWER]), "default", retry_after=1))
    assert parsed[-1] == "[DONE]"
    deltas = [e["choices"][0]["delta"] for e in parsed[:-1]]
    assert deltas == [{"role": "assistant", "content": ""}, {"content": "In "},
                      {"content": "Paris [1]."}, {}]  # fmt: skip
    assert [e["choices"][0]["finish_reason"] for e in parsed[:-1]] == [None, None, None, "stop"]
    assert parsed[-2]["citations"][0]["number"] == 1


def test_an_error_before_the_first_piece_is_raised_for_a_status_code() -> None:
    def failing():
        raise LLMError("cannot reach the model")
        yield  # pragma: no cover

    with pytest.raises(LLMError):
        start_stream(failing(), "default", retry_after=1)


def test_an_error_mid_stream_becomes_an_error_event() -> None:
    def failing_late():
        yield "In "
        raise LLMError("the model went away")

    parsed = events(start_stream(failing_late(), "default", retry_after=1))
    assert parsed[1]["choices"][0]["delta"] == {"content": "In "}
    assert parsed[2]["error"]["code"] == "llm_error"
    assert "the model went away" in parsed[2]["error"]["message"]
    assert parsed[-1] == "[DONE]"
