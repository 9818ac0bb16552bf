"""The JSON shapes of the HTTP API, as pydantic models.

Requests follow OpenAI's where one exists, so that OpenAI clients need nothing
special. ``temperature`` and ``max_tokens`` (or ``max_completion_tokens``) reach
the language model; other sampling fields (``top_p``, ``seed``, ...) are accepted
and ignored, because the knowledge base's configured answerer decides how answers
are made. Responses carry OpenAI's ``usage``, and add what ragqa knows and OpenAI
has no field for: the ``citations`` of an answer, each naming the file, page and
character offsets of a passage it cites.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatCompletionRequest",
    "ChatMessage",
    "CitationModel",
    "DeletedDocument",
    "DocumentList",
    "DocumentModel",
    "ModelCard",
    "ModelList",
    "SearchHit",
    "SearchRequest",
    "SearchResponse",
    "StreamOptions",
    "UploadResult",
    "UsageModel",
    "citation_model",
    "usage_model",
]

# A question is a sentence or a paragraph; this bounds the work one request causes.
MAX_QUERY_CHARS = 4000
MAX_MESSAGES = 200
MAX_K = 50


class _Open(BaseModel):
    """Accepts and ignores fields it does not know, as OpenAI-compatible servers do."""

    model_config = ConfigDict(extra="ignore")


class ContentPart(_Open):
    """One part of a message's content; only ``text`` parts carry a question."""

    type: str
    text: str | None = None


class ChatMessage(_Open):
    """A message of the conversation. ``system`` and ``developer`` messages are
    ignored: ragqa writes its own instructions around the retrieved passages."""

    role: str
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        """The message's text, its text parts joined."""
        if isinstance(self.content, list):
            return "\n".join(part.text or "" for part in self.content if part.type == "text")
        return self.content or ""


class ChatCompletionRequest(_Open):
    """``POST /v1/chat/completions``: ``model`` names the knowledge base."""

    model: str
    messages: list[ChatMessage] = Field(min_length=1, max_length=MAX_MESSAGES)
    stream: bool = False
    stream_options: StreamOptions | None = None
    # Passed to the language model; the extractive answerer has no use for them.
    # A cap can only lower the server's RAGQA_LLM_MAX_TOKENS, for which prompts
    # leave room in the context window.
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)

    def reply_cap(self) -> int | None:
        """The smaller of ``max_tokens`` and ``max_completion_tokens``, if either is set."""
        caps = [cap for cap in (self.max_tokens, self.max_completion_tokens) if cap is not None]
        return min(caps) if caps else None


class StreamOptions(_Open):
    """``include_usage``: end the stream with a chunk that has ``usage`` (as OpenAI does)."""

    include_usage: bool = False


class UsageModel(BaseModel):
    """Language-model tokens of one answer; all 0 for the extractive answerer."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class CitationModel(BaseModel):
    """A passage the answer cites: ``[number]`` in the answer's text is this one.

    ``start``/``end`` are character offsets into the page's text; ``spans`` are
    offsets into ``text`` of what the answer draws on.
    """

    number: int
    source: str
    file_name: str
    page: int
    start: int
    end: int
    chunk_id: int
    heading: str
    spans: list[list[int]]
    text: str


class ResponseMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int = 0
    message: ResponseMessage
    finish_reason: Literal["stop"] = "stop"


class ChatCompletion(BaseModel):
    """OpenAI's chat completion, plus ``citations`` (ragqa's extra field)."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: UsageModel
    citations: list[CitationModel]


class Delta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: Delta
    finish_reason: Literal["stop"] | None = None


class ChatCompletionChunk(BaseModel):
    """One server-sent event of a streamed answer. The last one, with
    ``finish_reason: "stop"``, carries the ``citations``."""

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    citations: list[CitationModel] | None = None
    usage: UsageModel | None = None


class SearchRequest(_Open):
    """``POST /v1/search``. ``model`` defaults to the first knowledge base served."""

    query: str = Field(max_length=MAX_QUERY_CHARS)
    model: str | None = None
    k: int | None = Field(default=None, ge=1, le=MAX_K)
    mode: Literal["dense", "lexical", "hybrid"] | None = None


class SearchHit(BaseModel):
    """One passage found, best first (the shape of ``ragqa search --json``)."""

    rank: int
    score: float
    source: str
    file_name: str
    page: int
    start: int
    end: int
    chunk_id: int
    heading: str
    text: str


class SearchResponse(BaseModel):
    object: Literal["list"] = "list"
    model: str
    data: list[SearchHit]


class DocumentModel(BaseModel):
    """A stored document. ``id`` is what ``DELETE /v1/documents/{id}`` takes."""

    id: str
    object: Literal["document"] = "document"
    file_name: str
    source: str
    pages: int
    chunks: int
    added_at: float


class DocumentList(BaseModel):
    object: Literal["list"] = "list"
    model: str
    data: list[DocumentModel]


class UploadResult(BaseModel):
    """What an upload did: ``added`` or ``replaced`` (201), or ``duplicate`` (200:
    the same bytes are stored already, as ``document``)."""

    status: Literal["added", "replaced", "duplicate"]
    model: str
    document: DocumentModel
    warnings: list[str] = []


class DeletedDocument(BaseModel):
    id: str
    object: Literal["document"] = "document"
    deleted: bool = True


class ModelCard(BaseModel):
    """A knowledge base, listed as an OpenAI model so that clients can pick it."""

    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "ragqa"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


def usage_model(usage: Any) -> UsageModel:
    """A :class:`ragqa.answering.Usage` as its API shape."""
    return UsageModel(
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        total_tokens=usage.total_tokens,
    )


def citation_model(citation: Any, name_of: Callable[[str], str] | None = None) -> CitationModel:
    """A :class:`ragqa.answering.Citation` as its API shape, its file under the name
    ``name_of(source)`` gives (:meth:`ragqa.uploads.UploadNames.lookup`)."""
    fields = citation.to_dict()
    if name_of is not None:
        fields["file_name"] = name_of(citation.source)
    return CitationModel(**fields)
