"""What every loader is, and the checks every loader makes before it parses a file.

A loader turns one file into :class:`~ragqa.types.Page` records. Each backend
(:mod:`ragqa.loaders.pdf`, :mod:`ragqa.loaders.text`) subclasses :class:`Loader` and
implements :meth:`Loader.load`; :func:`ragqa.loaders.load_document` picks the backend
by the file's extension.

Example:
    >>> class UpperLoader(Loader):
    ...     extensions = frozenset({".up"})
    ...     def load(self, path, *, password, settings):
    ...         data = read_file(path, settings)
    ...         text = data.decode().upper()
    ...         return [Page(source_of(path), 1, text, content_hash(data))]
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar

from ragqa.config import Settings
from ragqa.errors import LoaderError
from ragqa.types import Page

__all__ = ["Loader", "content_hash", "read_file", "source_of"]

_BYTES_PER_MB = 1024 * 1024


class Loader(ABC):
    """One file format's way of turning a file into pages of normalised text.

    Attributes:
        extensions: the lower-case file extensions, with their dot, that this
            loader reads.
    """

    extensions: ClassVar[frozenset[str]] = frozenset()

    @abstractmethod
    def load(self, path: Path, *, password: str | None, settings: Settings) -> list[Page]:
        """Read ``path`` and return its pages, in page order.

        Pages without text are left out, so page numbers may have gaps. Every page
        carries the file's absolute path as ``source``, its 1-based page number and
        the SHA-256 of the file's bytes.

        Args:
            path: the file to read.
            password: the password for an encrypted file; ignored by formats that
                have no encryption.
            settings: the limits (``max_file_mb``, ``max_pages``,
                ``max_chars_per_file``, ``max_seconds_per_file``) to respect.

        Returns:
            At least one page.

        Raises:
            LoaderError: the file cannot be turned into text; ``reason`` says why.
        """


def source_of(path: Path) -> str:
    """The ``source`` every page of ``path`` carries: its absolute, resolved path.

    Example:
        >>> source_of(Path("/tmp/../tmp/notes.txt"))
        '/tmp/notes.txt'
    """
    return str(path.expanduser().resolve())


def content_hash(data: bytes) -> str:
    """The SHA-256 of a file's bytes, in hex: how a changed file is recognised.

    Example:
        >>> content_hash(b"abc")[:16]
        'ba7816bf8f01cfea'
    """
    return hashlib.sha256(data).hexdigest()


def read_file(path: Path, settings: Settings) -> bytes:
    """Read a whole file, refusing what is missing, empty or over ``max_file_mb``.

    Args:
        path: the file to read.
        settings: supplies ``max_file_mb``.

    Returns:
        The file's bytes, never empty.

    Raises:
        LoaderError: reason ``not_found``, ``io`` (a folder, no permission, ...),
            ``too_large`` or ``empty``.

    Example:
        >>> read_file(Path("missing.txt"), Settings())
        Traceback (most recent call last):
        ...
        ragqa.errors.LoaderError: missing.txt: no such file
    """
    limit = int(settings.max_file_mb * _BYTES_PER_MB)
    try:
        size = path.stat().st_size
        if path.is_dir():
            raise LoaderError(str(path), "is a folder, not a file", reason="io")
        if size > limit:
            raise _too_large(path, size, settings)
        with open(path, "rb") as fh:
            # Read one byte past the limit: the file may have grown since stat().
            data = fh.read(limit + 1)
    except FileNotFoundError:
        raise LoaderError(str(path), "no such file", reason="not_found") from None
    except OSError as exc:
        raise LoaderError(
            str(path), f"cannot read file: {exc.strerror or exc}", reason="io"
        ) from exc
    if len(data) > limit:
        raise _too_large(path, len(data), settings)
    if not data:
        raise LoaderError(str(path), "file is empty (0 bytes)", reason="empty")
    return data


def _too_large(path: Path, size: int, settings: Settings) -> LoaderError:
    return LoaderError(
        str(path),
        f"file is {size / _BYTES_PER_MB:.1f} MB, over the limit of "
        f"{settings.max_file_mb:g} MB (raise max_file_mb to load it)",
        reason="too_large",
    )
