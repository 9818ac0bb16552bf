"""The routes of ``ragqa serve``: OpenAI-compatible chat, search and documents.

=======  ==========================  =====================================================
method   path                        what
=======  ==========================  =====================================================
GET      ``/healthz``                ``{"status": "ok"}``, without a key
GET      ``/v1/models``              the knowledge bases, as OpenAI models
POST     ``/v1/chat/completions``    answer the last user message (``stream`` for SSE)
POST     ``/v1/search``              the passages that match ``query``
GET      ``/v1/documents``           the documents of ``?model=``
POST     ``/v1/documents``           upload one file (multipart: ``file``, ``model``)
DELETE   ``/v1/documents/{id}``      remove a document (``?model=``)
=======  ==========================  =====================================================

``model`` names a knowledge base everywhere; where it is optional, the first one
served is meant (``default`` in a workspace). The handlers only translate between
HTTP and :class:`ragqa.KnowledgeBase`; the checks live in the modules they call.
Blocking work (search, answering, ingesting) runs in FastAPI's thread pool, so a
long upload never holds up a question.

Example:
    >>> app = create_app(KnowledgeBases.from_workspace("kbs", Settings()))  # doctest: +SKIP
    >>> uvicorn.run(app, host="127.0.0.1", port=8765)                         # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from ragqa import __version__
from ragqa.answering import Answer
from ragqa.knowledge_base import KnowledgeBase
from ragqa.server import chat, documents
from ragqa.server.config import ServerConfig
from ragqa.server.errors import ApiError, install_error_handlers
from ragqa.server.limits import BodyLimit
from ragqa.server.registry import KnowledgeBases, UnknownKnowledgeBase
from ragqa.server.schemas import (
    ChatCompletion,
    ChatCompletionRequest,
    DeletedDocument,
    DocumentList,
    ModelCard,
    ModelList,
    SearchHit,
    SearchRequest,
    SearchResponse,
    UploadResult,
)
from ragqa.server.security import BearerAuth
from ragqa.uploads import UploadNames

__all__ = ["create_app"]

# Room for the multipart framing and the small form fields around the file itself.
_MULTIPART_OVERHEAD = 64 * 1024
_UPLOAD_PATH = "/v1/documents"


def create_app(registry: KnowledgeBases, config: ServerConfig | None = None) -> FastAPI:
    """The ASGI app serving ``registry``'s knowledge bases.

    Args:
        registry: the knowledge bases to serve.
        config: the API key, the busy-wait and the body limits.
    """
    config = config or ServerConfig()
    app = FastAPI(title="ragqa", version=__version__, docs_url=None, redoc_url=None)
    install_error_handlers(app, retry_after=config.retry_after)
    upload_limit = int(registry.settings.max_file_mb * 1024 * 1024) + _MULTIPART_OVERHEAD

    def limit_for(method: str, path: str) -> int:
        return upload_limit if (method, path) == ("POST", _UPLOAD_PATH) else config.max_json_bytes

    # The last one added runs first: the key is checked before any body is read.
    app.add_middleware(BodyLimit, limit_for=limit_for)
    app.add_middleware(BearerAuth, api_key=config.api_key)

    def lookup(name: str | None) -> tuple[str, KnowledgeBase]:
        try:
            name = name or registry.default_name()
            return name, registry.get(name)
        except UnknownKnowledgeBase:
            raise ApiError(
                404,
                f"there is no knowledge base named {name!r}; GET /v1/models lists them",
                code="model_not_found",
                param="model",
            ) from None

    def names_of(kb: KnowledgeBase) -> Callable[[str], str]:
        # The name each file was uploaded under (uploads are stored under a safe
        # name, which may differ). Read from one small file: no listing of the
        # documents on the way of a search.
        return UploadNames(kb.directory).lookup()

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/models")
    def list_models() -> ModelList:
        return ModelList(
            data=[ModelCard(id=name, created=registry.created(name)) for name in registry.names()]
        )

    @app.get("/v1/models/{model}")
    def get_model(model: str) -> ModelCard:
        name, _ = lookup(model)
        return ModelCard(id=name, created=registry.created(name))

    @app.post("/v1/chat/completions", response_model=None)
    def chat_completions(body: ChatCompletionRequest) -> ChatCompletion | StreamingResponse:
        name, kb = lookup(body.model)
        question, history = chat.question_and_history(body.messages)
        chat_model = registry.chat_model()
        if chat_model is not None:
            chat_model = chat_model.with_options(
                temperature=body.temperature, max_tokens=body.reply_cap()
            )
        pieces = kb.ask_stream(question, history, chat_model=chat_model)
        if body.stream:
            events = chat.start_stream(
                pieces,
                name,
                retry_after=config.retry_after,
                name_of=names_of(kb),
                include_usage=bool(body.stream_options and body.stream_options.include_usage),
            )
            return StreamingResponse(
                events,
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            )
        answer = [item for item in pieces if isinstance(item, Answer)][-1]
        return chat.completion(answer, name, names_of(kb))

    @app.post("/v1/search")
    def search(body: SearchRequest) -> SearchResponse:
        name, kb = lookup(body.model)
        if not body.query.strip():
            raise ApiError(400, "the query is empty", code="empty_question", param="query")
        hits = kb.search(body.query, body.k, mode=body.mode)
        name_of = names_of(kb)
        return SearchResponse(
            model=name,
            data=[
                SearchHit(
                    **{**hit.to_dict(rank), "file_name": name_of(hit.source)},
                    heading=hit.heading,
                )
                for rank, hit in enumerate(hits, start=1)
            ],
        )

    @app.get("/v1/documents")
    def list_documents(model: str | None = None) -> DocumentList:
        name, kb = lookup(model)
        name_of = names_of(kb)
        return DocumentList(
            model=name, data=[documents.document_model(d, name_of) for d in kb.documents()]
        )

    @app.post(_UPLOAD_PATH, response_model=None)
    async def upload_document(request: Request) -> JSONResponse:
        # Parsed here rather than by FastAPI so that every mistake gets a clear
        # message; one file per request keeps each answer about one file.
        async with request.form(max_files=1, max_fields=8, max_part_size=64 * 1024) as form:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise ApiError(
                    400,
                    "send the document as the 'file' field of a multipart/form-data body",
                    code="missing_file",
                    param="file",
                )
            name, kb = lookup(_text_field(form.get("model")))
            password = _text_field(form.get("pdf_password"))
            data = await upload.read()
            uploaded = await run_in_threadpool(
                documents.upload,
                registry.workspace(name),
                name,
                kb,
                upload.filename or "",
                data,
                pdf_password=password,
                lock_timeout=config.lock_timeout,
            )
        result = UploadResult(
            status=uploaded.status,
            model=name,
            document=documents.document_model(uploaded.document, names_of(kb)),
            warnings=list(uploaded.warnings),
        )
        status = 200 if uploaded.status == "duplicate" else 201
        return JSONResponse(result.model_dump(), status_code=status)

    @app.delete("/v1/documents/{doc_id}")
    def delete_document(doc_id: str, model: str | None = None) -> DeletedDocument:
        name, kb = lookup(model)
        info = documents.find_document(kb, doc_id)
        if info is None:
            raise ApiError(
                404,
                f"knowledge base {name!r} has no document {doc_id!r}; GET /v1/documents lists them",
                code="document_not_found",
                param="id",
            )
        documents.remove(registry.workspace(name), kb, info, lock_timeout=config.lock_timeout)
        return DeletedDocument(id=doc_id)

    return app


def _text_field(value: Any) -> str | None:
    """A plain form field's value; a file sent where text belongs counts as absent."""
    return value if isinstance(value, str) and value else None
