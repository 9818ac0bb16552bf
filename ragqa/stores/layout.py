"""The files of a local knowledge base's directory, and writing them safely.

The file names, the manifest (read, and replaced atomically with the
description of the checkpoint beside it), and the identities (size and time) that
tell one checkpoint's files from another's. Everything is written to a temporary
file, synced, and renamed into place, and the directory is synced after the
rename, so a crash leaves the old file or the new one, never half of either.

Example:
    >>> import tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = pathlib.Path(tmp) / "note.txt"
    ...     atomic_write_bytes(path, b"kept")
    ...     path.read_bytes(), files_match(path.parent, file_identities(path.parent, ["note.txt"]))
    (b'kept', True)
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ragqa.stores.base import Manifest

__all__ = [
    "CATALOG",
    "CHECKPOINT_LOCK",
    "LEXICAL",
    "LOCK",
    "MANIFEST",
    "VECTORS",
    "atomic_write_bytes",
    "file_identities",
    "files_match",
    "fsync_dir",
    "fsync_file",
    "read_checkpoint",
    "read_manifest",
    "write_manifest",
]

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
CATALOG = "catalog.sqlite"
VECTORS = "vectors.faiss"
LEXICAL = "lexical.npz"
LOCK = ".lock"
CHECKPOINT_LOCK = ".checkpoint.lock"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    # The rename itself is only durable once the directory entry is on disk.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def file_identities(directory: Path, names: Sequence[str]) -> dict[str, list[int]]:
    """``name -> [size, mtime_ns]``: what tells one checkpoint's file from another's."""
    out = {}
    for name in names:
        stat = (directory / name).stat()
        out[name] = [stat.st_size, stat.st_mtime_ns]
    return out


def files_match(directory: Path, recorded: dict[str, Any]) -> bool:
    try:
        return bool(recorded) and file_identities(directory, list(recorded)) == recorded
    except OSError:
        return False


def read_manifest(directory: Path) -> Manifest | None:
    path = directory / MANIFEST
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Manifest(**{k: data[k] for k in Manifest.__dataclass_fields__})
    except (ValueError, KeyError, TypeError) as exc:
        log.warning("%s is damaged (%s); rewriting it from the catalog", path, exc)
        return None


def read_checkpoint(directory: Path) -> dict[str, Any]:
    """manifest.json's description of the checkpoint on disk ({} if none)."""
    try:
        data = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
        checkpoint = data.get("checkpoint") if isinstance(data, dict) else None
        if isinstance(checkpoint, dict) and {"generation", "chunks"} <= set(checkpoint):
            return checkpoint
    except (OSError, ValueError):
        pass
    return {}


def write_manifest(directory: Path, manifest: Manifest, extra: dict[str, Any]) -> None:
    data = json.dumps(extra | manifest.to_dict(), indent=2, sort_keys=True) + "\n"
    atomic_write_bytes(directory / MANIFEST, data.encode("utf-8"))
