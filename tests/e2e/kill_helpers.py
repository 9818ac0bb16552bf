"""Run ragqa in a real child process that dies (SIGKILL) or pauses at a chosen point.

Imported by the crash-safety and concurrency tests, and run by them as a script::

    python kill_helpers.py ingest DOCS --kb KB -q      # ``ragqa ingest``, with hooks
    python kill_helpers.py poll KB OUT STOP            # a reader polling search()

The hooks are chosen by environment variables, read only by this test-only wrapper
(never by ragqa itself, and deliberately not ``RAGQA_*``):

``KILLTEST_AT=HOOK:N:WHEN``
    SIGKILL this process at the N-th call of HOOK, ``before`` or ``after`` it runs.
``KILLTEST_PAUSE_AT=HOOK:N:WHEN`` with ``KILLTEST_SIGNAL_DIR=DIR``
    At that point create ``DIR/paused`` and wait until ``DIR/resume`` exists.
``KILLTEST_MARK_AT=HOOK:N:WHEN`` with ``KILLTEST_SIGNAL_DIR=DIR``
    At that point create ``DIR/marked`` and carry on.
``KILLTEST_CENSUS=FILE``
    Write how many times each hook was called to FILE (JSON) at exit.
``KILLTEST_GROUP_CHUNKS=N``
    Commit every N chunks instead of every 512, so that a small test corpus spans
    several transactions.
``KILLTEST_CHECKPOINT=every|default``
    ``every`` (the default here) writes a checkpoint of the derived files at the
    end of every ingest, so that a small corpus reaches the checkpoint's write
    steps; ``default`` keeps ragqa's own thresholds, under which a small ingest
    writes only the manifest.

Hooks: the ``LocalStore`` methods ``write_documents`` and ``flush``;
``_atomic_write_bytes``, the manifest's write (:func:`ragqa.stores.layout.atomic_write_bytes`);
``replace:FILE``, the rename that publishes a derived file; ``sql:KIND``, SQLite statements by kind (``sql:BEGIN``, ``sql:COMMIT``,
``sql:INSERT chunks``, ``sql:script`` ...); ``embed``, one embedding batch;
``load``, one file read; ``lock``, taking the writer lock (``acquire``), and
``lock-attempt``, each try inside it.
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

HERE = Path(__file__).resolve()

# How long a paused child waits for the test before giving up, so that a failed
# test never leaves a process behind.
_PAUSE_LIMIT_SECONDS = 120.0

# The settings every process of these tests uses; the in-process side builds the
# same Settings from them (see :func:`settings_fields`).
CHILD_SETTINGS = {
    "RAGQA_EMBEDDING_MODEL": "hashing:64",
    "RAGQA_CHUNK_SIZE": "200",
    "RAGQA_CHUNK_OVERLAP": "40",
}


def settings_fields() -> dict[str, Any]:
    """``Settings`` keyword arguments equal to :data:`CHILD_SETTINGS`."""
    return {"embedding_model": "hashing:64", "chunk_size": 200, "chunk_overlap": 40}


# --------------------------------------------------------------------- test side


def child_env(**extra: str) -> dict[str, str]:
    """The environment for a child: no ragqa setting of the developer's, offline."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAGQA_", "KILLTEST_"))}
    env.update(CHILD_SETTINGS)
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


def start(args: list[str], **env: str) -> subprocess.Popen[str]:
    """Start ``kill_helpers.py ARGS`` as a child process, piping its output."""
    return subprocess.Popen(
        [sys.executable, str(HERE), *args],
        env=child_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run(args: list[str], timeout: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``kill_helpers.py ARGS`` to the end (or its death)."""
    return subprocess.run(
        [sys.executable, str(HERE), *args],
        env=child_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def wait_for(path: Path, process: subprocess.Popen[str] | None = None, limit: float = 60) -> None:
    """Wait until ``path`` exists; fail early if ``process`` exits first."""
    give_up = time.monotonic() + limit
    while not path.exists():
        if process is not None and process.poll() is not None:
            out, err = process.communicate()
            raise AssertionError(f"child exited {process.returncode} first:\n{out}\n{err}")
        if time.monotonic() > give_up:
            raise AssertionError(f"{path} did not appear within {limit:g}s")
        time.sleep(0.01)


def killed(returncode: int) -> bool:
    return returncode == -signal.SIGKILL


@dataclass(frozen=True)
class StoredDocument:
    """A document as the catalog holds it, without ids and timestamps."""

    content_hash: str
    pages: int
    chunks: tuple[tuple[int, int, int, str], ...]  # (page, start, end, text)
    page_texts: tuple[tuple[int, str], ...]


def snapshot(directory: Path) -> dict[str, StoredDocument]:
    """Every document in a knowledge base's catalog, by source.

    Read straight from SQLite, so that it shows exactly what was committed, even
    when the derived indexes are behind.
    """
    catalog = quote(str(directory / "catalog.sqlite"))
    conn = sqlite3.connect(f"file:{catalog}?mode=ro", uri=True)
    try:
        out = {}
        for doc_id, source, digest, pages in conn.execute(
            "SELECT id, source, content_hash, pages FROM documents"
        ).fetchall():
            chunks = conn.execute(
                'SELECT page, start, "end", text FROM chunks WHERE doc_id = ? ORDER BY id',
                (doc_id,),
            ).fetchall()
            page_texts = conn.execute(
                "SELECT page, text FROM pages WHERE doc_id = ? ORDER BY page", (doc_id,)
            ).fetchall()
            out[source] = StoredDocument(digest, pages, tuple(chunks), tuple(page_texts))
        return out
    finally:
        conn.close()


def kill_points(census: dict[str, int], whens: dict[str, tuple[str, ...]]) -> list[str]:
    """``HOOK:N:WHEN`` specs for every hook in ``whens`` that the census saw.

    A hook called at most four times is killed at every call; a busier one at its
    first two, middle and last two calls, which covers the edges where state
    changes without running hundreds of processes.
    """
    points = []
    for hook, count in sorted(census.items()):
        if hook not in whens:
            continue
        calls = range(1, count + 1) if count <= 4 else sorted({1, 2, count // 2, count - 1, count})
        points.extend(f"{hook}:{n}:{when}" for n in calls for when in whens[hook])
    return points


# -------------------------------------------------------------------- child side


class _Hooks:
    """Counts hook calls and acts at the one the environment names."""

    def __init__(self, environ: dict[str, str]) -> None:
        self.counts: Counter[str] = Counter()
        self.actions: dict[tuple[str, int, str], Callable[[], None]] = {}
        signal_dir = Path(environ.get("KILLTEST_SIGNAL_DIR", "."))
        for variable, action in (
            ("KILLTEST_AT", _die),
            ("KILLTEST_PAUSE_AT", lambda: _pause(signal_dir)),
            ("KILLTEST_MARK_AT", lambda: (signal_dir / "marked").touch()),
        ):
            spec = environ.get(variable)
            if spec:
                hook, n, when = spec.rsplit(":", 2)
                self.actions[(hook, int(n), when)] = action
        census = environ.get("KILLTEST_CENSUS")
        if census:
            atexit.register(lambda: Path(census).write_text(json.dumps(self.counts)))

    def around(self, hook: str) -> _Call:
        self.counts[hook] += 1
        return _Call(self, hook, self.counts[hook])

    def fire(self, hook: str, n: int, when: str) -> None:
        action = self.actions.get((hook, n, when))
        if action is not None:
            action()


class _Call:
    """``with hooks.around(name):`` fires the before and after actions of one call."""

    def __init__(self, hooks: _Hooks, hook: str, n: int) -> None:
        self.hooks, self.hook, self.n = hooks, hook, n

    def __enter__(self) -> None:
        self.hooks.fire(self.hook, self.n, "before")

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is None:
            self.hooks.fire(self.hook, self.n, "after")


def _die() -> None:
    # SIGKILL: no atexit, no finally blocks, no flushing. The closest thing to a
    # power cut that a test can cause (only the OS page cache survives).
    os.kill(os.getpid(), signal.SIGKILL)


def _pause(signal_dir: Path) -> None:
    (signal_dir / "paused").touch()
    give_up = time.monotonic() + _PAUSE_LIMIT_SECONDS
    while not (signal_dir / "resume").exists():
        if time.monotonic() > give_up:
            os._exit(99)
        time.sleep(0.01)


def _sql_kind(sql: str) -> str | None:
    """The hook name of a statement worth dying at, or None for reads."""
    words = sql.replace("(", " ").split()
    if not words:
        return None
    verb = words[0].upper()
    if verb in ("BEGIN", "COMMIT", "ROLLBACK"):
        return f"sql:{verb}"
    if verb == "INSERT" and len(words) > 2:
        return f"sql:INSERT {words[2]}"
    if verb == "DELETE" and len(words) > 2:
        return f"sql:DELETE {words[2]}"
    if verb == "UPDATE" and len(words) > 1:
        return f"sql:UPDATE {words[1]}"
    return None


class _HookedConnection:
    """A sqlite3 connection whose writes pass through the hooks.

    ``sqlite3.Connection`` methods cannot be patched, so the store gets this proxy.
    """

    def __init__(self, conn: sqlite3.Connection, hooks: _Hooks) -> None:
        self._conn = conn
        self._hooks = hooks

    def execute(self, sql: str, *args: Any) -> Any:
        kind = _sql_kind(sql)
        if kind is None:
            return self._conn.execute(sql, *args)
        with self._hooks.around(kind):
            return self._conn.execute(sql, *args)

    def executemany(self, sql: str, *args: Any) -> Any:
        with self._hooks.around(f"{_sql_kind(sql)} many"):
            return self._conn.executemany(sql, *args)

    def executescript(self, sql: str) -> Any:
        with self._hooks.around("sql:script"):
            return self._conn.executescript(sql)

    def __enter__(self) -> _HookedConnection:
        self._conn.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> Any:
        return self._conn.__exit__(*exc_info)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def _wrap_method(owner: Any, name: str, hooks: _Hooks, hook: str) -> None:
    original = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with hooks.around(hook):
            return original(*args, **kwargs)

    setattr(owner, name, wrapper)


def install_hooks(environ: dict[str, str]) -> _Hooks:
    """Patch ragqa's write path so that every hook point passes through ``_Hooks``."""
    import filelock

    import ragqa.knowledge_base
    import ragqa.loaders
    import ragqa.stores.layout as layout
    import ragqa.stores.local as local
    from ragqa.embeddings import HashingEmbedder

    hooks = _Hooks(environ)
    if environ.get("KILLTEST_GROUP_CHUNKS"):
        ragqa.knowledge_base._GROUP_CHUNKS = int(environ["KILLTEST_GROUP_CHUNKS"])
    if environ.get("KILLTEST_CHECKPOINT", "every") == "every":
        local.CHECKPOINT_MIN_CHANGES = 0
        local.CHECKPOINT_SHARE = 0.0

    _wrap_method(local.LocalStore, "write_documents", hooks, "write_documents")
    _wrap_method(local.LocalStore, "flush", hooks, "flush")
    _wrap_method(layout, "atomic_write_bytes", hooks, "_atomic_write_bytes")
    _wrap_method(HashingEmbedder, "embed_batch", hooks, "embed")
    _wrap_method(ragqa.loaders, "load_document", hooks, "load")
    _wrap_method(filelock.FileLock, "acquire", hooks, "lock")
    # One try to take the lock; a waiting acquire() tries again every 50 ms, so the
    # second failed try proves that a process is waiting.
    _wrap_method(filelock.FileLock, "_acquire", hooks, "lock-attempt")

    connect = local.connect_catalog
    local.connect_catalog = lambda path: _HookedConnection(connect(path), hooks)

    # The rename that publishes a derived file: "before" is a complete temporary
    # file not yet in place, "after" is in place but not yet durable.
    real_replace = os.replace
    published = {"manifest.json", "vectors.faiss", "lexical.npz", "catalog.sqlite"}

    def replace(src: Any, dst: Any, **kwargs: Any) -> None:
        name = Path(dst).name
        if name not in published:
            real_replace(src, dst, **kwargs)
            return
        with hooks.around(f"replace:{name}"):
            real_replace(src, dst, **kwargs)

    os.replace = replace  # type: ignore[assignment]
    return hooks


def _poll(kb_dir: Path, out: Path, stop: Path) -> int:
    """A reader: search and count in a loop until ``stop`` exists, then once more.

    Every poll appends one JSON line to ``out``; an exception is recorded, not
    raised, so that the test sees all of them.
    """
    import traceback

    from ragqa import KnowledgeBase, Settings

    settings = Settings(**settings_fields(), min_relevance=0.0)
    polls = 0
    with KnowledgeBase.open(kb_dir, settings=settings) as kb, open(out, "a") as log:
        last = False
        while True:
            last = stop.exists()  # checked before the poll: the poll after it is final
            record: dict[str, Any] = {"poll": polls, "final": last}
            try:
                record["documents"] = len(kb.documents())
                record["chunks"] = len(kb)
                hits = kb.search("alpha omega marker", k=50, mode="lexical")
                record["hits"] = sorted({hit.file_name for hit in hits})
                record["dense_hits"] = len(kb.search("marker", k=5, mode="dense"))
            except Exception:  # noqa: BLE001 - the test wants to see every failure
                record["error"] = traceback.format_exc()
            log.write(json.dumps(record) + "\n")
            log.flush()
            polls += 1
            if last:
                return 0
            time.sleep(0.02)


def read_polls(out: Path) -> Iterator[dict[str, Any]]:
    for line in out.read_text().splitlines():
        yield json.loads(line)


def main(argv: list[str]) -> int:
    command, *rest = argv
    if command == "poll":
        return _poll(Path(rest[0]), Path(rest[1]), Path(rest[2]))
    if command == "ingest":
        install_hooks(dict(os.environ))
        from ragqa.cli import cli

        print("READY", flush=True)
        cli.main(args=["ingest", *rest], prog_name="ragqa")  # exits
    raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
