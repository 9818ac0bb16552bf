"""Any OpenAI-compatible server: OpenAI itself, llama.cpp's server, vLLM, LM Studio, Ollama's /v1.

Example:
    >>> from ragqa.config import Settings
    >>> s = Settings(llm="openai", llm_base_url="http://127.0.0.1:8080/v1")
    >>> openai_backend(s).describe()
    'openai:local-model at http://127.0.0.1:8080/v1'
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
from ragqa.prompting import TokenCounter

if TYPE_CHECKING:
    from ragqa.config import Settings

__all__ = ["OPENAI_URL", "openai_backend", "map_openai_error"]

OPENAI_URL = "https://api.openai.com/v1"
# Local servers ignore the key but the client insists on one.
PLACEHOLDER_KEY = "not-needed"
# llama.cpp's server answers to any model name; some servers need one that exists.
LOCAL_MODEL = "local-model"


def openai_backend(settings: Settings) -> LangChainBackend:
    """A streaming backend for the server at ``settings.llm_base_url`` (OpenAI by default).

    Raises:
        ConfigError: OpenAI's own service without a key or a model name.
    """
    from langchain_openai import ChatOpenAI
    from pydantic import SecretStr

    local = bool(settings.llm_base_url)
    url = settings.llm_base_url or OPENAI_URL
    if not local and not settings.llm_api_key:
        raise ConfigError(
            "RAGQA_LLM_API_KEY is needed for OpenAI's service; for a local "
            "OpenAI-compatible server set RAGQA_LLM_BASE_URL instead"
        )
    if not local and not settings.llm_model:
        raise ConfigError("set RAGQA_LLM_MODEL to the OpenAI model to use, e.g. gpt-4o-mini")
    model = settings.llm_model or LOCAL_MODEL
    chat_model = ChatOpenAI(
        model=model,
        base_url=url,
        api_key=SecretStr(settings.llm_api_key or PLACEHOLDER_KEY),
        timeout=settings.llm_timeout,
        max_retries=settings.llm_max_retries,
        max_tokens=settings.llm_max_tokens,
        temperature=settings.llm_temperature,
        # The client sends the limit as ``max_completion_tokens``, which some local
        # servers (llama-cpp-python's among them) ignore; they read ``max_tokens``.
        extra_body={"max_tokens": settings.llm_max_tokens} if local else None,
        streaming=True,
    )
    shown = display_url(url)
    return LangChainBackend(
        chat_model,
        name="openai",
        model=model,
        endpoint=shown,
        map_error=functools.partial(
            map_openai_error,
            url=shown,
            model=model,
            timeout=settings.llm_timeout,
            attempts=settings.llm_max_retries + 1,
        ),
        secret=settings.llm_api_key,
        count_tokens=None if local else _tiktoken_counter(model),
        temperature=settings.llm_temperature,
        max_tokens=settings.llm_max_tokens,
        rebuild=rebuilt_with_options(openai_backend, settings),
    )


def map_openai_error(
    exc: BaseException, *, url: str, model: str, timeout: float, attempts: int = 1
) -> LLMError | None:
    """An :class:`LLMError` for an ``openai`` or ``httpx`` exception, else ``None``.

    Server messages are left out where they may echo the key (401 and 403); the
    caller scrubs the rest.
    """
    import httpx
    import openai

    tries = f" (after {attempts} attempts)" if attempts > 1 else ""
    if isinstance(exc, openai.APITimeoutError | httpx.TimeoutException):
        return ConnectionFailure(f"timed out after {timeout:g}s waiting for {url}{tries}")
    if isinstance(exc, openai.APIConnectionError | httpx.TransportError):
        return ConnectionFailure(f"cannot reach {url}: {connection_reason(exc)}{tries}")
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        return LLMError(
            f"{url} rejected the API key (HTTP {exc.status_code}); check RAGQA_LLM_API_KEY"
        )
    if isinstance(exc, openai.NotFoundError):
        return LLMError(
            f"{url} answered HTTP 404 for model {model!r}: check RAGQA_LLM_MODEL, and that "
            "RAGQA_LLM_BASE_URL ends in /v1"
        )
    if isinstance(exc, openai.RateLimitError):
        return LLMError(f"{url} is rate-limiting requests (HTTP 429); try again later")
    if isinstance(exc, openai.APIStatusError):
        return LLMError(f"{url} answered HTTP {exc.status_code}: {_server_message(exc)}")
    if isinstance(exc, openai.OpenAIError):
        return LLMError(f"the reply from {url} could not be used: {type(exc).__name__}")
    return None


def _server_message(exc: BaseException) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        message = body.get("message") or (body.get("error") or {}).get("message")
        if message:
            return str(message)
    return str(getattr(exc, "message", "") or exc)


@functools.lru_cache(maxsize=8)
def _tiktoken_counter(model: str) -> TokenCounter | None:
    """OpenAI's tokenizer for ``model`` when tiktoken knows it and has its tables."""
    try:
        import tiktoken

        encoding = tiktoken.encoding_for_model(model)
    except Exception:  # noqa: BLE001 - not installed, unknown model, or tables unreachable
        return None
    return lambda text: len(encoding.encode(text, disallowed_special=()))
