"""Locks on a local knowledge base's directory, across processes.

* :func:`directory_lock`: the one writer (``.lock``), waited for up to a timeout,
  then :class:`~ragqa.errors.KnowledgeBaseBusyError` with a message that says so.
* :func:`checkpoint_lock`: shared while a reader loads the derived files,
  exclusive while a writer replaces them (``.checkpoint.lock``), so nobody loads
  half of an old checkpoint and half of a new one.

Example:
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as tmp, directory_lock(pathlib.Path(tmp), 1):
    ...     (pathlib.Path(tmp) / ".lock").exists()
    True
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from ragqa.errors import KnowledgeBaseBusyError
from ragqa.stores.layout import CHECKPOINT_LOCK, LOCK

__all__ = ["checkpoint_lock", "directory_lock", "file_lock"]


def directory_lock(directory: Path, timeout: float) -> AbstractContextManager[None]:
    """Hold the writer lock of a knowledge-base directory.

    Raises:
        KnowledgeBaseBusyError: another process held it for ``timeout`` seconds.
    """
    return file_lock(directory / LOCK, timeout, what=f"knowledge base {directory}")


@contextmanager
def file_lock(path: Path, timeout: float, *, what: str) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing) across processes.

    Raises:
        KnowledgeBaseBusyError: another process held it for ``timeout`` seconds;
            the message names ``what`` is busy.
    """
    from filelock import FileLock, Timeout

    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=timeout)
    except Timeout:
        raise KnowledgeBaseBusyError(
            f"{what} is busy: another process is writing to it. Try again when it has finished."
        ) from None
    try:
        yield
    finally:
        lock.release()


@contextmanager
def checkpoint_lock(directory: Path, *, shared: bool) -> Iterator[None]:
    """Readers load a checkpoint under a shared lock; a writer replaces its files
    under an exclusive one, so nobody loads half of an old and half of a new one."""
    try:
        import fcntl
    except ImportError:  # Windows: fall back to the exclusive file lock
        with file_lock(directory / CHECKPOINT_LOCK, 60, what=f"knowledge base {directory}"):
            yield
        return
    try:
        fd = os.open(directory / CHECKPOINT_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:  # a read-only directory: nobody can be writing a checkpoint
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock
