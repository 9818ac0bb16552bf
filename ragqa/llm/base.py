"""The one interface every chat backend implements, and the LangChain adapter.

A backend streams the text of a reply to ``(role, content)`` messages; everything
else (a whole reply, token counting, a description) is built on that. LangChain chat
models are wrapped here and nowhere else, so no LangChain object leaves this package.

Example:
    >>> from langchain_core.language_models.fake_chat_models import FakeListChatModel
    >>> backend = LangChainBackend(FakeListChatModel(responses=["Paris [1]."]), name="fake")
    >>> backend.complete([("user", "What is the capital of France?")])
    'Paris [1].'
"""

from __future__ import annotations

import errno
import logging
import socket
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from ragqa.errors import LLMError
from ragqa.prompting import TokenCounter, estimate_tokens

if TYPE_CHECKING:
    from ragqa.config import Settings

__all__ = [
    "ChatBackend",
    "ConnectionFailure",
    "LangChainBackend",
    "Messages",
    "connection_reason",
    "display_url",
    "rebuilt_with_options",
    "scrub",
]

logger = logging.getLogger(__name__)

Messages = Sequence[tuple[str, str]]
"""``(role, content)`` pairs; role is ``"system"``, ``"user"`` or ``"assistant"``."""

ErrorMapper = Callable[[BaseException], "LLMError | None"]


class ConnectionFailure(LLMError):
    """The model could not be reached or timed out: worth another attempt."""


class ChatBackend(ABC):
    """A chat model that streams its reply.

    Subclasses implement :meth:`stream`; it must raise :class:`LLMError` (and
    nothing else) when the model cannot be reached or fails, with a message that
    names the endpoint and never contains the API key.

    Attributes:
        name: the backend's configuration name (``openai``, ``ollama``, ...).
        model: the model's name or path.
        endpoint: where the model runs (a URL, or a file for in-process models).
        temperature: the sampling temperature it was built with (None: the model's own).
        max_tokens: the longest reply it was built to give (None: no cap of ragqa's).
    """

    name: str = "chat"

    def __init__(
        self,
        *,
        model: str = "",
        endpoint: str = "",
        count_tokens: TokenCounter | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> None:
        self.model = model
        self.endpoint = endpoint
        self._count_tokens = count_tokens
        self.temperature = temperature
        self.max_tokens = max_tokens

    @abstractmethod
    def stream(self, messages: Messages) -> Iterator[str]:
        """Yield the reply to ``messages`` piece by piece as the model produces it.

        Raises:
            LLMError: the model could not be reached, timed out or failed.
        """

    def complete(self, messages: Messages) -> str:
        """The whole reply to ``messages`` as one string."""
        return "".join(self.stream(messages))

    def with_options(
        self,
        *,
        temperature: float | None = None,  # noqa: ARG002 - subclasses use them
        max_tokens: int | None = None,  # noqa: ARG002
    ) -> ChatBackend:
        """This backend with another sampling temperature, or a shorter reply cap.

        ``max_tokens`` can only lower the cap the backend was built with: prompts are
        budgeted to leave that much room in the context window, so a longer reply
        could overflow it. None keeps a value as it is. Backends that cannot change
        them (this base class) return themselves.

        Example:
            >>> from ragqa.config import Settings
            >>> from ragqa.llm import get_chat_model
            >>> short = get_chat_model(Settings(llm="fake", llm_model="One two three [1].")).with_options(max_tokens=2)
            >>> short.complete([("user", "?")]), short.max_tokens
            ('One two', 2)
        """
        return self

    def _wanted_options(
        self, temperature: float | None, max_tokens: int | None
    ) -> tuple[float | None, int | None]:
        """The options :meth:`with_options` asks for, with the cap never raised."""
        if temperature is None:
            temperature = self.temperature
        if max_tokens is None or (self.max_tokens is not None and max_tokens > self.max_tokens):
            max_tokens = self.max_tokens
        return temperature, max_tokens

    def count_tokens(self, text: str) -> int:
        """Tokens in ``text`` for this model: its tokenizer if known, else an estimate."""
        counter = self._count_tokens or estimate_tokens
        return counter(text)

    def describe(self) -> str:
        """``name:model at endpoint``, for logs and the UI (never the key)."""
        where = f" at {self.endpoint}" if self.endpoint else ""
        return f"{self.name}:{self.model or 'default'}{where}"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.describe()}>"


class LangChainBackend(ChatBackend):
    """Any LangChain chat model as a :class:`ChatBackend`.

    Args:
        chat_model: a ``langchain_core`` ``BaseChatModel``.
        name: the backend's configuration name.
        model: the model's name, for messages.
        endpoint: the server URL, for messages.
        map_error: turns a client exception into an :class:`LLMError`, or returns
            ``None`` for exceptions it does not know.
        retries: extra attempts after a connection failure that happened before the
            first token, for clients that do not retry by themselves.
        secret: a value (the API key) to scrub from any error message.
        count_tokens: the model's tokenizer as a counter.
        temperature, max_tokens: what ``chat_model`` was built with.
        rebuild: ``rebuild(temperature, max_tokens)`` builds this backend anew with
            those options, for :meth:`with_options`; None when they cannot change.
    """

    # Variants made by with_options, kept per backend; few combinations occur.
    _MAX_VARIANTS = 8

    def __init__(
        self,
        chat_model: Any,
        *,
        name: str = "langchain",
        model: str = "",
        endpoint: str = "",
        map_error: ErrorMapper | None = None,
        retries: int = 0,
        secret: str = "",
        count_tokens: TokenCounter | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        rebuild: Callable[[float | None, int | None], ChatBackend] | None = None,
    ) -> None:
        super().__init__(
            model=model,
            endpoint=endpoint,
            count_tokens=count_tokens,
            temperature=temperature,
            max_tokens=max_tokens,
        )
        self.name = name
        self._chat_model = chat_model
        self._map_error = map_error
        self._retries = max(0, retries)
        self._secret = secret
        self._rebuild = rebuild
        self._variants: dict[tuple[float | None, int | None], ChatBackend] = {}

    def with_options(
        self, *, temperature: float | None = None, max_tokens: int | None = None
    ) -> ChatBackend:
        wanted = self._wanted_options(temperature, max_tokens)
        if self._rebuild is None or wanted == (self.temperature, self.max_tokens):
            return self
        variant = self._variants.get(wanted)
        if variant is None:
            # Built once per combination: a client object is cheap, not free.
            variant = self._rebuild(*wanted)
            if len(self._variants) < self._MAX_VARIANTS:
                self._variants[wanted] = variant
        return variant

    def stream(self, messages: Messages) -> Iterator[str]:
        lc_messages = to_langchain_messages(messages)
        for attempt in range(self._retries + 1):
            started = False
            try:
                for chunk in self._chat_model.stream(lc_messages):
                    text = _chunk_text(chunk)
                    if text:
                        started = True
                        yield text
                return
            except LLMError:
                raise
            except Exception as exc:  # noqa: BLE001 - every client error becomes LLMError
                mapped = self._map_error(exc) if self._map_error else None
                retryable = isinstance(mapped, ConnectionFailure)
                if retryable and not started and attempt < self._retries:
                    delay = 0.5 * 2**attempt
                    logger.info("retrying %s in %.1fs: %s", self.describe(), delay, mapped)
                    time.sleep(delay)
                    continue
                if mapped is None:
                    detail = scrub(str(exc), self._secret)
                    mapped = LLMError(
                        f"{self.describe()} failed: {type(exc).__name__}"
                        + (f": {detail}" if detail else "")
                    )
                else:
                    mapped = type(mapped)(scrub(str(mapped), self._secret))
                if attempt:
                    mapped = type(mapped)(f"{mapped} (after {attempt + 1} attempts)")
                # ``from None``: the client's traceback may carry request details.
                raise mapped from None


def rebuilt_with_options(
    factory: Callable[[Settings], ChatBackend], settings: Settings
) -> Callable[[float | None, int | None], ChatBackend]:
    """``rebuild`` for a :class:`LangChainBackend` that ``factory`` made from
    ``settings``: the same factory, on the settings with the new options."""
    return lambda temperature, max_tokens: factory(
        settings.replace(llm_temperature=temperature, llm_max_tokens=max_tokens)
    )


def to_langchain_messages(messages: Messages) -> list[Any]:
    """``(role, content)`` pairs as LangChain message objects."""
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

    kinds = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}
    out = []
    for role, content in messages:
        if role not in kinds:
            raise LLMError(f"unknown message role {role!r}")
        out.append(kinds[role](content=content))
    return out


def _chunk_text(chunk: Any) -> str:
    content = getattr(chunk, "content", chunk)
    if isinstance(content, str):
        return content
    # Some providers stream a list of content blocks instead of a string.
    parts = []
    for block in content or ():
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, dict) and block.get("type") == "text":
            parts.append(str(block.get("text", "")))
    return "".join(parts)


def connection_reason(exc: BaseException) -> str:
    """Why a connection failed, in a few words, from an exception and its causes.

    Example:
        >>> connection_reason(ConnectionRefusedError(111, "Connection refused"))
        'connection refused'
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    texts = []
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ConnectionRefusedError):
            return "connection refused"
        if isinstance(current, socket.gaierror):
            return "host name not found"
        if isinstance(current, TimeoutError):
            return "timed out"
        if isinstance(current, OSError) and current.errno == errno.EHOSTUNREACH:
            return "host unreachable"
        texts.append(str(current).lower())
        current = current.__cause__ or current.__context__
    joined = " ".join(texts)
    for needle, reason in (
        ("refused", "connection refused"),
        ("name or service not known", "host name not found"),
        ("nodename nor servname", "host name not found"),
        ("name resolution", "host name not found"),
        ("getaddrinfo", "host name not found"),
        ("timed out", "timed out"),
        ("unreachable", "host unreachable"),
        ("reset by peer", "connection reset"),
        ("ssl", "TLS handshake failed"),
    ):
        if needle in joined:
            return reason
    return "connection failed"


def display_url(url: str) -> str:
    """``url`` without any user name or password in it, and without a trailing slash.

    Example:
        >>> display_url("http://user:secret@localhost:8080/v1/")
        'http://localhost:8080/v1'
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", "")).rstrip("/") or url


def scrub(text: str, secret: str = "", *, limit: int = 300) -> str:
    """A server's or client's message made safe to show: no secret, one line, short.

    Example:
        >>> scrub("bad key sk-abc123 given", "sk-abc123")
        'bad key *** given'
    """
    if secret:
        text = text.replace(secret, "***")
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
