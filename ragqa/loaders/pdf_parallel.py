"""The pages of one long PDF, read by several processes at once.

pypdf is pure Python, so one process extracts text on one core, and it is slow:
the 117 pages of the shared GeoTopo file take 2.7 to 3.3 s (1.7 to 2.2 s in two
processes). Here the calling process reads the first share of the pages itself while
child processes read the others, each from its own copy of the file's bytes. The
caller then sees the same ``(index, text, failure)`` list as from an in-process
read (:func:`ragqa.loaders.pdf.extract_pages`), in page order.

A child is ``python -m ragqa.loaders.pdf_parallel``, given a pickled request on
stdin and answering on stdout. Plain subprocesses rather than ``multiprocessing``:
its "spawn" and "forkserver" start methods import the caller's main module again
in the child, so a user's script without an ``if __name__ == "__main__":`` guard
would run a second time (and wait for the knowledge base's write lock); "fork"
copies a process whose other threads (torch's, the UI server's) may hold locks.

Whatever goes wrong with a child (it cannot start, it crashes, its answer does not
unpickle), its pages are read in-process instead, with a warning in the log: a
child can make a read faster, never make it fail.

Example:
    >>> split_ranges(10, 3)
    [range(0, 4), range(4, 7), range(7, 10)]
"""

from __future__ import annotations

import logging
import os
import pickle
import subprocess
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragqa.config import Settings
from ragqa.loaders.pdf import (
    PageText,
    _Deadline,
    _OutOfTime,
    _PdfReading,
    _pypdf_warnings,
    extract_pages,
)

if TYPE_CHECKING:
    from pypdf import PdfReader

__all__ = ["MIN_PAGES_PER_WORKER", "page_texts_in_processes", "split_ranges", "worker_count"]

logger = logging.getLogger(__name__)

# Fewer pages than this per process are read in-process: a child takes about
# 0.25 s to start (Python, then pypdf) and re-parses the file's structure, while a
# typical page extracts in 10 to 40 ms.
MIN_PAGES_PER_WORKER = 16
# How long past the file's own deadline a child may take to answer before it is
# killed: it checks the deadline itself, so this only covers start-up and a
# single slow operator.
_GRACE_SECONDS = 10.0


def available_cores() -> int:
    """The cores this process may run on (its affinity mask where there is one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def worker_count(total_pages: int, settings: Settings) -> int:
    """How many processes (the caller included) should read a file of
    ``total_pages`` pages: ``settings.pdf_workers`` (0: one per core), fewer when
    each would get under :data:`MIN_PAGES_PER_WORKER` pages, and at least 1."""
    wanted = settings.pdf_workers or available_cores()
    return max(1, min(wanted, total_pages // MIN_PAGES_PER_WORKER))


def split_ranges(total: int, parts: int) -> list[range]:
    """``range(total)`` cut into ``parts`` consecutive ranges, as even as can be."""
    size, extra = divmod(total, parts)
    bounds = [0]
    for part in range(parts):
        bounds.append(bounds[-1] + size + (part < extra))
    return [range(start, stop) for start, stop in zip(bounds, bounds[1:], strict=False)]


def page_texts_in_processes(
    reading: _PdfReading, reader: PdfReader, total: int, workers: int
) -> list[PageText]:
    """Every page's ``(index, text, failure)``, the first share read here and the
    others by ``workers - 1`` children at the same time.

    Raises:
        _OutOfTime: when the file's deadline passes, in this process or a child.
    """
    ranges = split_ranges(total, workers)
    children = _Children()
    remaining = max(0.0, reading.deadline.end - time.monotonic())
    with ThreadPoolExecutor(len(ranges) - 1, thread_name_prefix="ragqa-pdf") as pool:
        futures = [
            pool.submit(children.run, _request(reading, part, remaining)) for part in ranges[1:]
        ]
        try:
            texts = list(extract_pages(reader, ranges[0], reading.deadline))
            for part, future in zip(ranges[1:], futures, strict=True):
                texts.extend(_collect(future, part, reading, reader, done=len(texts)))
        finally:
            children.stop()  # after a timeout or an error here; a no-op otherwise
    return texts


def _request(reading: _PdfReading, part: range, seconds: float) -> dict[str, Any]:
    return {
        "path": str(reading.path),
        "data": reading.data,
        "password": reading.password,
        "start": part.start,
        "stop": part.stop,
        "seconds": seconds,
    }


def _collect(
    future: Future[dict[str, Any]],
    part: range,
    reading: _PdfReading,
    reader: PdfReader,
    done: int,
) -> list[PageText]:
    """A child's pages, or the same pages read here when the child failed."""
    try:
        answer = future.result()
    except _ChildFailed as exc:
        logger.warning(
            "%s: pages %d-%d are read in-process: %s", reading.path, part.start + 1, part.stop, exc
        )
        return list(extract_pages(reader, part, reading.deadline))
    for message in answer["warnings"]:
        # Into the caller's collector, as if pypdf had logged them here.
        logging.getLogger("pypdf").warning("%s", message)
    if answer["timed_out"] is not None:
        raise _OutOfTime(done + answer["timed_out"])
    texts: list[PageText] = answer["texts"]
    return texts


class _ChildFailed(Exception):
    """A child process did not answer with its pages."""


class _Children:
    """The child processes of one read, and a way to stop them all at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._started: list[subprocess.Popen[bytes]] = []
        self._stopped = False

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            for child in self._started:
                if child.poll() is None:
                    child.kill()

    def run(self, request: dict[str, Any]) -> dict[str, Any]:
        """Start a child, hand it ``request`` and return its answer."""
        with self._lock:
            if self._stopped:
                raise _ChildFailed("the read was stopped")
            child = self._start()
            self._started.append(child)
        try:
            out, err = child.communicate(
                pickle.dumps(request), timeout=request["seconds"] + _GRACE_SECONDS
            )
        except subprocess.TimeoutExpired:
            child.kill()
            child.communicate()
            return {"warnings": [], "timed_out": 0, "texts": []}
        if child.returncode != 0:
            lines = err.decode("utf-8", "replace").strip().splitlines() or ["no message"]
            raise _ChildFailed(
                f"the reading process exited with code {child.returncode}: {lines[-1]}"
            )
        try:
            answer: dict[str, Any] = pickle.loads(out)
        except Exception as exc:
            raise _ChildFailed(f"the reading process gave no answer ({exc})") from None
        return answer

    @staticmethod
    def _start() -> subprocess.Popen[bytes]:
        import ragqa

        # The child must import this very ragqa, even from a source checkout.
        package_root = str(Path(ragqa.__file__).resolve().parent.parent)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        try:
            return subprocess.Popen(
                [sys.executable, "-m", __name__],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
            )
        except (OSError, ValueError) as exc:  # no interpreter (a frozen app), no processes left
            raise _ChildFailed(f"cannot start a process: {exc}") from None


def _read_part(request: dict[str, Any]) -> dict[str, Any]:
    """What a child does: open the file as the caller did, then read its pages."""
    path = Path(request["path"])
    deadline = _Deadline(path, request["seconds"])
    reading = _PdfReading(path, request["data"], Settings(), deadline)
    with _pypdf_warnings.collecting() as warnings:
        reader = reading.open()
        reading.decrypt(reader, request["password"])
        # The caller logged the file's own problems (a broken xref) when it opened
        # it; only what the pages add is news.
        opened = len(warnings)
        part = range(request["start"], request["stop"])
        try:
            texts = list(extract_pages(reader, part, deadline))
        except _OutOfTime as exc:
            return {"warnings": warnings[opened:], "timed_out": exc.pages_done, "texts": []}
    return {"warnings": warnings[opened:], "timed_out": None, "texts": texts}


def main() -> None:
    request = pickle.loads(sys.stdin.buffer.read())
    answer_pipe = sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing but the answer may reach the caller's pipe
    answer = _read_part(request)
    answer_pipe.write(pickle.dumps(answer))
    answer_pipe.flush()


if __name__ == "__main__":
    main()
