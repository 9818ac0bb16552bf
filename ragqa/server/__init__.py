"""``ragqa serve``: an HTTP API over one or more knowledge bases.

OpenAI-compatible chat (``POST /v1/chat/completions``, streamed as server-sent
events), search, document upload and removal, built on FastAPI and uvicorn (the
``serve`` extra: ``pip install 'ragqa[serve]'``). FastAPI because its pydantic
models validate every request at the boundary and OpenAI clients expect exactly
that JSON; uvicorn because it is the maintained ASGI server FastAPI is made for.

* :mod:`ragqa.server.app`: the routes.
* :mod:`ragqa.server.schemas`: the JSON shapes.
* :mod:`ragqa.server.chat`: chat messages in, completions and SSE events out.
* :mod:`ragqa.server.documents`: uploads and removals, through the UI's code.
* :mod:`ragqa.server.registry`: which knowledge bases are served.
* :mod:`ragqa.server.security`: loopback by default, a bearer token otherwise.
* :mod:`ragqa.server.errors` and :mod:`ragqa.server.limits`: OpenAI error JSON
  with the right status, and body size limits.

Example:
    >>> from ragqa.server import KnowledgeBases, ServerConfig, serve   # doctest: +SKIP
    >>> serve(KnowledgeBases.from_workspace("kbs", Settings()), host="127.0.0.1",
    ...       port=8765, config=ServerConfig())                          # doctest: +SKIP
"""

from __future__ import annotations

from ragqa.server.app import create_app
from ragqa.server.config import DEFAULT_HOST, DEFAULT_PORT, ServerConfig
from ragqa.server.registry import KnowledgeBases
from ragqa.server.runner import serve

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "KnowledgeBases", "ServerConfig", "create_app", "serve"]
