"""Uploading and removing documents, through the same code as the chat UI.

An upload is checked and saved by :meth:`ragqa.workspace.Workspace.save_uploads`
(size limit from ``Settings.max_file_mb``, extension against content, a sanitised
file name inside the knowledge base's ``uploads/`` folder, duplicates by content
hash), then ingested; its messages are the UI's, from
:func:`ragqa.workspace.describe_outcome` and :func:`~ragqa.workspace.describe_result`.
The only difference is the wait for a busy knowledge base: the UI waits, an HTTP
client is told "busy" after ``lock_timeout`` seconds and retries.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ragqa.errors import KnowledgeBaseBusyError
from ragqa.i18n import t
from ragqa.ingestion import source_key
from ragqa.knowledge_base import KnowledgeBase
from ragqa.server.errors import ApiError
from ragqa.server.schemas import DocumentModel
from ragqa.types import DocumentInfo
from ragqa.workspace import (
    Workspace,
    describe_outcome,
    describe_result,
    needs_password,
)

__all__ = ["Uploaded", "document_id", "document_model", "find_document", "remove", "upload"]

# Why an upload was refused, as an HTTP status: 413 "smaller", 415 "another type".
_REJECTION_STATUS = {
    "too_large": 413,
    "unsupported": 415,
    "not_pdf": 415,
    "not_text": 415,
}
_REJECTION_CODES = {"too_large": "file_too_large"}


def document_id(source: str) -> str:
    """A stable, URL-safe id for a stored document: derived from its source, so it
    survives restarts, and opaque, so that a URL never carries a server path."""
    return "doc-" + hashlib.sha256(source.encode("utf-8")).hexdigest()[:24]


def document_model(
    info: DocumentInfo, name_of: Callable[[str], str] | None = None
) -> DocumentModel:
    """A stored document as its API shape, under the name ``name_of(source)`` gives
    (:meth:`ragqa.uploads.UploadNames.lookup`), else its file name."""
    return DocumentModel(
        id=document_id(info.source),
        file_name=name_of(info.source) if name_of else Path(info.source).name,
        source=info.source,
        pages=info.pages,
        chunks=info.chunks,
        added_at=info.added_at,
    )


def find_document(kb: KnowledgeBase, doc_id: str) -> DocumentInfo | None:
    """The stored document with id ``doc_id``, if any."""
    return next((d for d in kb.documents() if document_id(d.source) == doc_id), None)


@dataclass(frozen=True)
class Uploaded:
    """A stored upload: ``status`` is ``added``, ``replaced`` or ``duplicate``."""

    status: str
    document: DocumentInfo
    warnings: tuple[str, ...] = ()


def upload(
    workspace: Workspace,
    name: str,
    kb: KnowledgeBase,
    file_name: str,
    data: bytes,
    *,
    pdf_password: str | None,
    lock_timeout: float,
) -> Uploaded:
    """Check, save and ingest one uploaded file into knowledge base ``name``.

    Raises:
        ApiError: the file was refused (413, 415, 400) or could not be read (422).
        KnowledgeBaseBusyError: another writer held the knowledge base for
            ``lock_timeout`` seconds; nothing was stored.
    """
    documents = kb.documents()
    [outcome] = workspace.save_uploads(name, [(file_name, data)], documents)
    notice = describe_outcome(
        outcome, max_mb=workspace.settings.max_file_mb, max_files=workspace.max_files
    )
    if outcome.status == "duplicate":
        stored = next(d for d in documents if d.content_hash == outcome.content_hash)
        return Uploaded("duplicate", stored)
    if outcome.status != "saved" or outcome.path is None:
        reason = outcome.reason or "unsupported"
        message = t(notice.label, "en", **notice.values) if notice else reason
        raise ApiError(
            _REJECTION_STATUS.get(reason, 400),
            message,
            code=_REJECTION_CODES.get(reason, reason),
            param="file",
        )
    path = outcome.path
    try:
        report = kb.add([path], pdf_password=pdf_password, lock_timeout=lock_timeout)
    except KnowledgeBaseBusyError:
        _discard_unless_stored(workspace, kb, path)
        raise
    result = report.files[0]
    if result.status == "failed":
        # Unlike the UI, nothing is kept for a retry: a client retries by sending
        # the file again (with its password).
        _discard_unless_stored(workspace, kb, path)
        failure = describe_result(result, outcome.name, retried_password=bool(pdf_password))
        message = t(failure.label, "en", **failure.values)
        if needs_password(result):
            message += " Send the password in the pdf_password form field."
        raise ApiError(422, message, code=result.reason or "unreadable", param="file")
    stored = next(d for d in kb.documents() if d.source == result.source)
    # "unchanged": a concurrent upload of the same file stored it first.
    status = "duplicate" if result.status == "unchanged" else result.status
    return Uploaded(status, stored, report.warnings)


def remove(
    workspace: Workspace, kb: KnowledgeBase, info: DocumentInfo, *, lock_timeout: float
) -> None:
    """Remove a stored document, and its uploaded file if the upload saved it.

    Raises:
        KnowledgeBaseBusyError: another writer held the knowledge base too long.
    """
    kb.remove(info.source, lock_timeout=lock_timeout)
    workspace.discard_upload(kb, Path(info.source))


def _discard_unless_stored(workspace: Workspace, kb: KnowledgeBase, path: Path) -> None:
    # An older version of the same file may still be stored from its saved copy.
    if source_key(path) not in {d.source for d in kb.documents()}:
        workspace.discard_upload(kb, path)
