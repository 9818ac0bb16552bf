"""Chat-model backends, picked by ``Settings.llm``.

``openai`` talks to any OpenAI-compatible server, ``ollama`` to Ollama's native API,
``llamacpp`` runs a GGUF file in-process, and ``fake`` replies from a script for
tests. ``extractive``, the default, needs no chat model at all: see
:mod:`ragqa.llm.extractive`. Each backend's client library is imported only when
that backend is built.

Example:
    >>> from ragqa.config import Settings
    >>> backend = get_chat_model(Settings(llm="fake", llm_model="Hello [1]."))
    >>> list(backend.stream([("user", "Hi")]))
    ['Hello', ' ', '[1].']
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ragqa.errors import ConfigError
from ragqa.llm.base import ChatBackend, LangChainBackend

if TYPE_CHECKING:
    from ragqa.config import Settings

__all__ = ["ChatBackend", "as_chat_backend", "get_chat_model"]


def get_chat_model(settings: Settings) -> ChatBackend:
    """The chat backend ``settings.llm`` names, configured from ``settings``.

    Build it once and reuse it: the ``llamacpp`` backend loads its model on first use.

    Raises:
        ConfigError: ``settings.llm`` is ``extractive`` (which needs no chat model),
            or the backend's settings are incomplete or its library is missing.
    """
    if settings.llm == "openai":
        from ragqa.llm.openai_backend import openai_backend

        return openai_backend(settings)
    if settings.llm == "ollama":
        from ragqa.llm.ollama_backend import ollama_backend

        return ollama_backend(settings)
    if settings.llm == "llamacpp":
        from ragqa.llm.llamacpp_backend import llamacpp_backend

        return llamacpp_backend(settings)
    if settings.llm == "fake":
        from ragqa.llm.fake import fake_backend

        return fake_backend(settings)
    raise ConfigError(f"llm={settings.llm!r} answers without a chat model")


def as_chat_backend(model: Any) -> ChatBackend:
    """``model`` as a :class:`ChatBackend`: backends pass through, LangChain chat models
    are wrapped.

    Raises:
        ConfigError: ``model`` is neither.
    """
    if isinstance(model, ChatBackend):
        return model
    if hasattr(model, "stream") and hasattr(model, "invoke"):
        return LangChainBackend(model, name="langchain", model=type(model).__name__)
    raise ConfigError(f"not a chat model: {type(model).__name__}")
