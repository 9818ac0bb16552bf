"""Models served by Ollama, through its native API.

Example:
    >>> from ragqa.config import Settings
    >>> ollama_backend(Settings(llm="ollama", llm_model="llama3.2")).describe()
    'ollama:llama3.2 at http://localhost:11434'
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from ragqa.errors import ConfigError, LLMError
from ragqa.llm.base import (
    ConnectionFailure,
    LangChainBackend,
    connection_reason,
    display_url,
    rebuilt_with_options,
)

if TYPE_CHECKING:
    from ragqa.config import Settings

__all__ = ["OLLAMA_URL", "map_ollama_error", "ollama_backend"]

OLLAMA_URL = "http://localhost:11434"


def ollama_backend(settings: Settings) -> LangChainBackend:
    """A streaming backend for ``settings.llm_model`` on the Ollama server.

    Ollama's client does not retry, so the backend retries connection failures
    itself (``settings.llm_max_retries`` times, before the first token only).

    Raises:
        ConfigError: no model name was set.
    """
    from langchain_ollama import ChatOllama

    if not settings.llm_model:
        raise ConfigError("set RAGQA_LLM_MODEL to an Ollama model, e.g. llama3.2")
    url = settings.llm_base_url or OLLAMA_URL
    chat_model = ChatOllama(
        model=settings.llm_model,
        base_url=url,
        num_ctx=settings.llm_context_window,
        num_predict=settings.llm_max_tokens,
        temperature=settings.llm_temperature,
        client_kwargs={"timeout": settings.llm_timeout},
    )
    shown = display_url(url)
    return LangChainBackend(
        chat_model,
        name="ollama",
        model=settings.llm_model,
        endpoint=shown,
        map_error=functools.partial(
            map_ollama_error, url=shown, model=settings.llm_model, timeout=settings.llm_timeout
        ),
        retries=settings.llm_max_retries,
        secret=settings.llm_api_key,
        temperature=settings.llm_temperature,
        max_tokens=settings.llm_max_tokens,
        rebuild=rebuilt_with_options(ollama_backend, settings),
    )


def map_ollama_error(
    exc: BaseException, *, url: str, model: str, timeout: float
) -> LLMError | None:
    """An :class:`LLMError` for an ``ollama`` or ``httpx`` exception, else ``None``."""
    import httpx
    import ollama

    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return ConnectionFailure(f"timed out after {timeout:g}s waiting for {url}")
    # The client turns a refused connection into a bare ConnectionError, except
    # while streaming, where httpx's own ConnectError comes through.
    if isinstance(exc, ConnectionError | httpx.TransportError):
        # ollama raises ``from None``, but the httpx error stays on __context__.
        reason = connection_reason(exc)
        return ConnectionFailure(f"cannot reach {url}: {reason} (is `ollama serve` running?)")
    if isinstance(exc, ollama.ResponseError):
        if exc.status_code == 404:
            return LLMError(
                f"{url} has no model {model!r}: run `ollama pull {model}` or check RAGQA_LLM_MODEL"
            )
        return LLMError(f"{url} answered HTTP {exc.status_code}: {exc.error}")
    return None
