"""Refuse request bodies over their limit before they are read into memory.

A declared ``Content-Length`` over the limit is answered with 413 at once; a body
sent without one (chunked) is counted as it arrives and cut off at the limit. Either
way the server never holds more than the limit of one request, whatever a client
sends, and keeps serving the others.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ragqa.server.errors import ApiError, BodyTooLarge

__all__ = ["BodyLimit"]


class BodyLimit:
    """ASGI middleware: at most ``limit_for(method, path)`` bytes of body per request."""

    def __init__(self, app: ASGIApp, *, limit_for: Callable[[str, str], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["method"], scope["path"])
        declared = _content_length(scope)
        if declared == -1:
            await _refuse(
                scope, receive, send, ApiError(400, "bad Content-Length", code="bad_length")
            )
            return
        if declared is not None and declared > limit:
            error = ApiError(
                413,
                f"the request body ({declared:,} bytes) is larger than the limit of "
                f"{limit:,} bytes",
                code="request_too_large",
            )
            await _refuse(scope, receive, send, error)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, counted, send)


def _content_length(scope: Scope) -> int | None:
    """The declared length; None if there is none, -1 if it is not a number."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else -1
    return None


async def _refuse(scope: Scope, receive: Receive, send: Send, error: ApiError) -> None:
    response = error.response()
    # The client may still be sending; asking it to close the connection keeps the
    # unread body from being taken for the next request.
    response.headers["Connection"] = "close"
    await response(scope, receive, send)
