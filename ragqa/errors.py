"""The exceptions ragqa raises on purpose.

Every error a user can cause derives from :class:`RagqaError`, so the CLI and the
Streamlit page catch one type and turn it into a one-line message instead of a
traceback. Messages name the file and the cause, and say what to do where we know.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "IndexCorruptError",
    "IndexMismatchError",
    "KnowledgeBaseBusyError",
    "LLMError",
    "LoaderError",
    "RagqaError",
]


class RagqaError(Exception):
    """Base class: anything ragqa reports to a user."""


class ConfigError(RagqaError):
    """A setting or option has a value ragqa cannot use."""


class LoaderError(RagqaError):
    """A file could not be turned into text.

    Args:
        path: the file, as the user named it.
        cause: what went wrong, in words a user can act on ("encrypted: pass
            --pdf-password").
        reason: a short machine-readable tag ("encrypted", "no_text", "unsupported",
            "empty", "binary", "unreadable", "too_large", ...), so callers such as the
            UI can react (ask for a password) without parsing the message.
    """

    def __init__(self, path: str, cause: str, *, reason: str = "unreadable") -> None:
        self.path = str(path)
        self.cause = cause
        self.reason = reason
        super().__init__(f"{self.path}: {cause}")


class IndexCorruptError(RagqaError):
    """The knowledge-base directory is damaged or incomplete."""


class IndexMismatchError(RagqaError):
    """The knowledge base was built with another embedding model or format."""


class KnowledgeBaseBusyError(RagqaError):
    """Another process is writing to the same knowledge base."""


class LLMError(RagqaError):
    """The language model could not be reached or gave no usable answer."""
