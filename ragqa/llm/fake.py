"""A canned chat model for tests and demos (``RAGQA_LLM=fake``): no server, no model.

It replies with ``settings.llm_model`` when that is set, else with a fixed sentence
citing source [1]; the reply streams word by word like a real model's, and stops
after ``settings.llm_max_tokens`` words as a real model stops at its token cap.

Example:
    >>> from ragqa.config import Settings
    >>> fake_backend(Settings(llm="fake", llm_model="Paris [1].")).complete([("user", "?")])
    'Paris [1].'
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

from ragqa.llm.base import LangChainBackend, rebuilt_with_options

if TYPE_CHECKING:
    from ragqa.config import Settings

__all__ = ["DEFAULT_FAKE_REPLY", "fake_backend"]

DEFAULT_FAKE_REPLY = "This is a canned answer from the fake model [1]."


def fake_backend(settings: Settings) -> LangChainBackend:
    """A backend built on LangChain's ``GenericFakeChatModel``, replying the same each time."""
    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel

    reply = settings.llm_model or DEFAULT_FAKE_REPLY
    words = reply.split()
    if len(words) > settings.llm_max_tokens:  # a word stands for a token here
        reply = " ".join(words[: settings.llm_max_tokens])
    return LangChainBackend(
        GenericFakeChatModel(messages=itertools.repeat(reply)),
        name="fake",
        model="canned",
        temperature=settings.llm_temperature,
        max_tokens=settings.llm_max_tokens,
        rebuild=rebuilt_with_options(fake_backend, settings),
    )
