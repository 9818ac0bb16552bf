"""Every failure as OpenAI's error JSON, with the status code a client can act on.

OpenAI clients (the ``openai`` package, LangChain's ``ChatOpenAI``, chat front ends)
read ``{"error": {"message", "type", "param", "code"}}`` and the status: 400 and 404
are the caller's mistake and not retried, 401 asks for a key, 413 says "smaller",
and 429/503 with ``Retry-After`` are retried after that many seconds. So each of
ragqa's errors gets the status that makes a client do the right thing:

==========================  ======  ==========================
what                        status  ``code``
==========================  ======  ==========================
malformed JSON, bad field   400     ``invalid_json``, ``invalid_value``
empty question              400     ``empty_question``
wrong or missing token      401     ``invalid_api_key``
unknown knowledge base      404     ``model_not_found``
unknown document            404     ``document_not_found``
body or file too large      413     ``request_too_large``, ``file_too_large``
not a PDF, TXT or Markdown  415     ``unsupported``, ``not_pdf``, ``not_text``
unreadable document         422     the loader's reason (``encrypted``, ``no_text``)
language model failed       502     ``llm_error``
knowledge base busy         503     ``knowledge_base_busy`` (+ ``Retry-After``)
anything else               500     ``internal_error`` (details only in the log)
==========================  ======  ==========================
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ragqa.errors import ConfigError, KnowledgeBaseBusyError, LLMError, RagqaError

__all__ = [
    "ApiError",
    "BodyTooLarge",
    "error_payload",
    "from_ragqa_error",
    "install_error_handlers",
]

log = logging.getLogger(__name__)

_TYPES = {401: "authentication_error", 429: "rate_limit_error"}


class ApiError(Exception):
    """An error to send as OpenAI's error JSON.

    Args:
        status: the HTTP status.
        message: what went wrong and, where we know, what to do; shown to the user.
        code: a stable machine-readable tag (see the module's table).
        param: the request field at fault, if one is.
        headers: extra response headers (``Retry-After``, ``WWW-Authenticate``).
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str,
        param: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.headers = dict(headers or {})

    def response(self) -> JSONResponse:
        return JSONResponse(
            error_payload(self.status, self.message, code=self.code, param=self.param),
            status_code=self.status,
            headers=self.headers,
        )


class BodyTooLarge(HTTPException):
    """Raised while a request body is read, once it passes its limit.

    An ``HTTPException`` because FastAPI re-raises those from body parsing as they
    are, where any other exception would become a vague 400.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than the limit of {limit:,} bytes")
        self.limit = limit


def error_payload(
    status: int, message: str, *, code: str, param: str | None = None
) -> dict[str, Any]:
    """The JSON body of an error response, in OpenAI's shape."""
    kind = _TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def from_ragqa_error(exc: RagqaError, *, retry_after: int) -> ApiError:
    """The API error for one of ragqa's own errors."""
    if isinstance(exc, KnowledgeBaseBusyError):
        return ApiError(
            503,
            "the knowledge base is busy: another upload or removal is writing to it; "
            f"try again in {retry_after} s",
            code="knowledge_base_busy",
            headers={"Retry-After": str(retry_after)},
        )
    if isinstance(exc, ConfigError):
        return ApiError(400, str(exc), code="invalid_value")
    if isinstance(exc, LLMError):
        return ApiError(502, f"the language model failed: {exc}", code="llm_error")
    log.error("ragqa error while serving a request: %s", exc)
    return ApiError(500, str(exc), code="ragqa_error")


def _validation_error(exc: RequestValidationError) -> ApiError:
    first = exc.errors()[0] if exc.errors() else {}
    if first.get("type") == "json_invalid":
        return ApiError(400, "the request body is not valid JSON", code="invalid_json")
    location = [str(part) for part in first.get("loc", ()) if part != "body"]
    param = ".".join(location) or None
    where = f" at {param}" if param else ""
    message = f"invalid request{where}: {first.get('msg', 'bad value')}"
    return ApiError(400, message, code="invalid_value", param=param)


def install_error_handlers(app: FastAPI, *, retry_after: int) -> None:
    """Make every error the app can raise answer in OpenAI's shape."""

    async def on_api_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return exc.response()

    async def on_ragqa_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RagqaError)
        return from_ragqa_error(exc, retry_after=retry_after).response()

    async def on_validation_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return _validation_error(exc).response()

    async def on_http_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        codes = {
            400: "invalid_request",
            404: "not_found",
            405: "method_not_allowed",
            413: "request_too_large",
        }
        code = codes.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404:
            message = "no such endpoint; see GET /v1/models and the README's API section"
        return ApiError(exc.status_code, message, code=code, headers=exc.headers).response()

    async def on_unexpected(_request: Request, exc: Exception) -> JSONResponse:
        # The traceback goes to the server's log; the client learns nothing about
        # the server's internals (paths, library versions) from it.
        log.exception("unexpected error while serving a request", exc_info=exc)
        return ApiError(500, "internal server error", code="internal_error").response()

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(RagqaError, on_ragqa_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)
