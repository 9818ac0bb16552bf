"""OpenAI's chat completions on top of :meth:`ragqa.KnowledgeBase.ask_stream`.

The last message is the question and the earlier user and assistant messages are
the conversation, so a follow-up ("and the second one?") is rewritten into a
standalone question as in the UI. The answer comes from the configured answerer
(``RAGQA_LLM``: the extractive one by default, or a chat model), with its
citations in an extra ``citations`` field.

A streamed answer is sent as server-sent events, one ``chat.completion.chunk``
per piece of text. Errors that happen before the first piece (the model is
unreachable, say) get a proper status code, because the first piece is produced
before the response starts; an error after that can only be sent as an event,
``data: {"error": {...}}``, which the ``openai`` client raises as an ``APIError``.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ragqa.answering import Answer
from ragqa.conversation import Turn
from ragqa.errors import RagqaError
from ragqa.server.errors import ApiError, error_payload, from_ragqa_error
from ragqa.server.schemas import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatMessage,
    Choice,
    ChunkChoice,
    Delta,
    ResponseMessage,
    citation_model,
    usage_model,
)

__all__ = ["completion", "question_and_history", "start_stream"]

log = logging.getLogger(__name__)

_CONVERSATION_ROLES = ("user", "assistant")


def question_and_history(messages: Sequence[ChatMessage]) -> tuple[str, list[Turn]]:
    """The question (the last user message) and the conversation before it.

    Raises:
        ApiError: 400 when the last message is not the user's, or is empty.
    """
    turns = [m for m in messages if m.role in _CONVERSATION_ROLES]
    if not turns or turns[-1].role != "user":
        raise ApiError(
            400,
            "the last message must be the user's question",
            code="invalid_value",
            param="messages",
        )
    question = turns[-1].text().strip()
    if not question:
        raise ApiError(400, "the question is empty", code="empty_question", param="messages")
    history = [Turn(m.role, m.text()) for m in turns[:-1] if m.text().strip()]
    return question, history


def new_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def completion(
    answer: Answer, model: str, name_of: Callable[[str], str] | None = None
) -> ChatCompletion:
    """A whole answer as OpenAI's ``chat.completion``; ``name_of(source)`` is the name
    to cite a file by (:meth:`ragqa.uploads.UploadNames.lookup`)."""
    return ChatCompletion(
        id=new_id(),
        created=int(time.time()),
        model=model,
        choices=[Choice(message=ResponseMessage(content=answer.text))],
        usage=usage_model(answer.usage),
        citations=[citation_model(c, name_of) for c in answer.citations],
    )


def start_stream(
    pieces: Iterator[str | Answer],
    model: str,
    *,
    retry_after: int,
    name_of: Callable[[str], str] | None = None,
    include_usage: bool = False,
) -> Iterator[str]:
    """Take the answer's first piece now, then return the events of the whole answer.

    Raises:
        RagqaError: retrieval or the model failed before anything was produced.
    """
    first = next(pieces)  # errors up to here get a status code of their own
    return _events(
        first,
        pieces,
        model,
        retry_after=retry_after,
        name_of=name_of,
        include_usage=include_usage,
    )


def _events(
    first: str | Answer,
    rest: Iterator[str | Answer],
    model: str,
    *,
    retry_after: int,
    name_of: Callable[[str], str] | None,
    include_usage: bool,
) -> Iterator[str]:
    stream_id, created = new_id(), int(time.time())

    def chunk(delta: Delta, finish: bool = False, citations: Any = None) -> str:
        event = ChatCompletionChunk(
            id=stream_id,
            created=created,
            model=model,
            choices=[ChunkChoice(delta=delta, finish_reason="stop" if finish else None)],
            citations=citations,
        )
        payload = event.model_dump()
        # As OpenAI sends them: an empty delta at the end, finish_reason null before.
        payload["choices"][0]["delta"] = delta.model_dump(exclude_none=True)
        if citations is None:
            del payload["citations"]
        del payload["usage"]  # only in the last chunk, when the client asked for it
        return _sse(payload)

    yield chunk(Delta(role="assistant", content=""))
    item: str | Answer = first
    try:
        while True:
            if isinstance(item, Answer):
                citations = [citation_model(c, name_of) for c in item.citations]
                yield chunk(Delta(), finish=True, citations=citations)
                if include_usage:
                    # As OpenAI ends a stream asked for usage: no choices, the usage.
                    usage = ChatCompletionChunk(
                        id=stream_id,
                        created=created,
                        model=model,
                        choices=[],
                        usage=usage_model(item.usage),
                    )
                    yield _sse(usage.model_dump(exclude_none=True))
                break
            if item:
                yield chunk(Delta(content=item))
            item = next(rest)
    except RagqaError as exc:
        error = from_ragqa_error(exc, retry_after=retry_after)
        yield _sse(error_payload(error.status, error.message, code=error.code))
    except Exception:  # the response has started: an event is all we can still send
        log.exception("unexpected error while streaming an answer")
        yield _sse(error_payload(500, "internal server error", code="internal_error"))
    yield "data: [DONE]\n\n"


def _sse(payload: dict[str, Any]) -> str:
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"
