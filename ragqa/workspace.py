"""The knowledge bases a user keeps under ``Settings.data_dir``, and what the chat page shows.

The Streamlit page (``ui/app.py``) stays thin: everything it decides lives here, so
it can be tested without Streamlit.

* :class:`Workspace` lists, creates (with a validated name) and opens knowledge
  bases, each a folder ``data_dir/NAME``. Uploaded files are saved into that
  knowledge base's own ``uploads/`` folder under a safe name, so nothing a
  browser sends can land anywhere else, and are shown under the name they were
  uploaded with (:mod:`ragqa.uploads`). Before anything is saved, each upload is
  checked: size and count limits, extension against content (``%PDF-`` for .pdf,
  decodable text for .txt/.md), and its SHA-256 against the stored documents, so a
  duplicate is reported instead of ingested twice.
* :func:`describe_result`, :func:`describe_unreadable` and :func:`add_notice` turn
  what happened to an upload into :class:`Notice` values: label keys, so they
  follow the page's language.
* :func:`source_views` and :func:`passage_html` turn an answer's citations into
  passages with the cited part highlighted, escaped first: documents are untrusted
  and must never inject markup into the page.

Example:
    >>> ws = Workspace("/tmp/ragqa-data")                         # doctest: +SKIP
    >>> ws.ensure_default()                                       # doctest: +SKIP
    'default'
    >>> kb = ws.open("default")                                   # doctest: +SKIP
    >>> [u] = ws.save_uploads("default", [("report.pdf", data)], kb.documents())  # doctest: +SKIP
    >>> ws.ingest(kb, u.path).status                              # doctest: +SKIP
    'added'
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragqa.config import Settings
from ragqa.embeddings import Embedder
from ragqa.errors import IndexMismatchError, RagqaError
from ragqa.knowledge_base import UNK_WARNING_RATIO, IngestProgress, KnowledgeBase
from ragqa.types import DocumentInfo, FileResult, Hit

# The upload names are defined in ragqa.uploads; the public ones are re-exported
# here, where the UI and the server have always found them.
from ragqa.uploads import (
    MAX_FILE_NAME_BYTES,
    UPLOAD_EXTENSIONS,
    UPLOADS_DIR,
    WINDOWS_RESERVED,
    UploadNames,
    UploadOutcome,
    check_upload_content,
    display_name,
    is_inside,
    safe_file_name,
    stored_file_name,
    write_inside,
)

if TYPE_CHECKING:
    from ragqa.conversation import Turn

__all__ = [
    "DEFAULT_KB_NAME",
    "MAX_FILE_NAME_BYTES",
    "UPLOAD_EXTENSIONS",
    "ChatMessage",
    "SourceView",
    "UploadNames",
    "UploadOutcome",
    "Workspace",
    "WorkspaceError",
    "Notice",
    "add_notice",
    "answer_claims",
    "cited_sentences",
    "check_upload_content",
    "css_string",
    "describe_outcome",
    "describe_result",
    "describe_unreadable",
    "escape_markdown",
    "file_name_html",
    "forget_notices",
    "history_turns",
    "hit_views",
    "needs_password",
    "passage_html",
    "pdf_of",
    "safe_file_name",
    "source_views",
    "stored_file_name",
    "unreadable_share",
]

DEFAULT_KB_NAME = "default"
MAX_KB_NAME_LENGTH = 64
MAX_FILES_PER_UPLOAD = 20
# Settings that change how a file is read and split; the rest affect only answering.
_INGEST_FIELDS = (
    "chunk_size",
    "chunk_overlap",
    "max_file_mb",
    "max_pages",
    "max_chars_per_file",
    "max_seconds_per_file",
)
_KB_NAME = re.compile(r"[\w][\w\-. ]*")


class WorkspaceError(RagqaError):
    """A knowledge-base name or an upload the workspace refuses.

    Args:
        message: the English message (what ``str(error)`` gives).
        label: the :mod:`ragqa.i18n` key of the same message, so the page can show it
            in the user's language.
        **values: the label's placeholders.
    """

    def __init__(self, message: str, *, label: str, **values: Any) -> None:
        super().__init__(message)
        self.label = label
        self.values = values


class Workspace:
    """The folder of knowledge bases behind the UI: ``root/NAME`` for each one.

    Args:
        root: the folder; usually ``settings.data_dir``. Created on first write.
        settings: used to create and open knowledge bases, and for ``max_file_mb``.
        max_files: how many files one upload may hold.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        settings: Settings | None = None,
        *,
        max_files: int = MAX_FILES_PER_UPLOAD,
    ) -> None:
        self.root = Path(root).expanduser()
        self.settings = settings or Settings.from_env()
        self.max_files = max_files

    @classmethod
    def from_settings(cls, settings: Settings) -> Workspace:
        """The workspace in ``settings.data_dir``."""
        return cls(settings.data_dir, settings)

    # ---------------------------------------------------------------- naming

    @staticmethod
    def validate_name(name: str) -> str:
        """The knowledge-base name, normalised, or a :class:`WorkspaceError` saying why not.

        A name becomes a folder name, so it may only hold letters (any script),
        digits, spaces, ``-``, ``_`` and ``.``, must start with a letter, digit or
        ``_``, and may not end in a dot (Windows drops it).
        """
        name = unicodedata.normalize("NFC", name or "").strip()
        if not name:
            raise WorkspaceError("enter a name", label="kb_name_empty")
        if len(name) > MAX_KB_NAME_LENGTH:
            raise WorkspaceError(
                f"the name is too long: at most {MAX_KB_NAME_LENGTH} characters",
                label="kb_name_too_long",
                max_len=MAX_KB_NAME_LENGTH,
            )
        if not _KB_NAME.fullmatch(name) or name.endswith("."):
            raise WorkspaceError(
                "the name may only hold letters, digits, spaces, '-', '_' and '.'",
                label="kb_name_bad_chars",
            )
        if name.split(".")[0].lower() in WINDOWS_RESERVED:
            raise WorkspaceError(
                f"{name!r} is a reserved name", label="kb_name_reserved", name=name
            )
        return name

    def names(self) -> list[str]:
        """The knowledge bases in this workspace, sorted, ``default`` first."""
        if not self.root.is_dir():
            return []
        found = [
            p.name
            for p in self.root.iterdir()
            if p.is_dir()
            and _KB_NAME.fullmatch(p.name)
            and ((p / "manifest.json").exists() or (p / "catalog.sqlite").exists())
        ]
        return sorted(found, key=lambda n: (n != DEFAULT_KB_NAME, n.casefold()))

    def path(self, name: str) -> Path:
        """The folder of knowledge base ``name`` (validated; it need not exist)."""
        return self.root / self.validate_name(name)

    def uploads_dir(self, name: str) -> Path:
        """Where uploads to knowledge base ``name`` are kept."""
        return self.path(name) / UPLOADS_DIR

    # ------------------------------------------------------ creating, opening

    def create(self, name: str, *, embedder: Embedder | None = None) -> str:
        """Create an empty knowledge base and return its (normalised) name.

        Raises:
            WorkspaceError: the name is invalid or taken (compared case-insensitively,
                since some file systems are).
        """
        name = self.validate_name(name)
        taken = {n.casefold() for n in self.names()}
        if name.casefold() in taken or (self.root / name).exists():
            raise WorkspaceError(
                f"a knowledge base named {name!r} already exists", label="kb_name_taken", name=name
            )
        KnowledgeBase.create(self.root / name, settings=self.settings, embedder=embedder).close()
        (self.root / name / UPLOADS_DIR).mkdir(exist_ok=True)
        return name

    def ensure_default(self, *, embedder: Embedder | None = None) -> str:
        """Create the ``default`` knowledge base if there is none at all; return a name to show."""
        names = self.names()
        if names:
            return names[0]
        return self.create(DEFAULT_KB_NAME, embedder=embedder)

    def open(self, name: str, *, embedder: Embedder | None = None) -> KnowledgeBase:
        """Open knowledge base ``name``.

        ``embedder`` is shared when it is the model the knowledge base was built with;
        otherwise the knowledge base loads its own model rather than refusing to open.

        Raises:
            WorkspaceError: there is no knowledge base of that name.
        """
        directory = self.path(name)
        if not directory.is_dir():
            raise WorkspaceError(
                f"there is no knowledge base named {name!r}", label="kb_not_found", name=name
            )
        try:
            return KnowledgeBase.open(directory, settings=self.settings, embedder=embedder)
        except IndexMismatchError:
            if embedder is None:
                raise
            return KnowledgeBase.open(directory, settings=self.settings)

    # --------------------------------------------------------------- uploads

    def save_uploads(
        self,
        name: str,
        files: Sequence[tuple[str, bytes]],
        documents: Iterable[DocumentInfo] = (),
    ) -> list[UploadOutcome]:
        """Check uploaded files and save the acceptable ones into ``name``'s uploads folder.

        Args:
            name: the knowledge base.
            files: ``(file name as the browser sent it, content)`` pairs.
            documents: what the knowledge base already stores (``kb.documents()``),
                to detect duplicates by content hash.

        Returns:
            One :class:`UploadOutcome` per file, in order. Nothing is ingested yet.
        """
        uploads = self.uploads_dir(name)
        names = UploadNames(self.path(name))
        shown_names = names.load()
        known = {doc.content_hash: names.name_of(doc.source, shown_names) for doc in documents}
        limit_bytes = self.settings.max_file_mb * 1024 * 1024
        outcomes: list[UploadOutcome] = []
        for index, (raw_name, data) in enumerate(files):
            shown = display_name(raw_name)
            digest = hashlib.sha256(data).hexdigest()
            reason = None
            if index >= self.max_files:
                reason = "too_many"
            elif len(data) > limit_bytes:
                reason = "too_large"
            else:
                reason = check_upload_content(raw_name, data)
            if reason is not None:
                outcomes.append(UploadOutcome(shown, "rejected", digest, len(data), reason=reason))
                continue
            if digest in known:
                outcomes.append(
                    UploadOutcome(shown, "duplicate", digest, len(data), existing=known[digest])
                )
                continue
            path = write_inside(uploads, names.claim(shown, stored_file_name(raw_name)), data)
            # A second copy in the same upload is a duplicate of the first.
            known[digest] = shown
            outcomes.append(UploadOutcome(shown, "saved", digest, len(data), path=path))
        return outcomes

    def ingest(
        self,
        kb: KnowledgeBase,
        path: Path,
        *,
        settings: Settings | None = None,
        pdf_password: str | None = None,
        progress: Callable[[IngestProgress], None] | None = None,
    ) -> FileResult:
        """Ingest one saved upload and return its result.

        ``settings`` carries the chunking and limits chosen for new ingests. When they
        differ from ``kb``'s own (a knowledge base shared between sessions must not be
        changed under another session's feet), a second handle on the same folder is
        opened for this ingest, sharing ``kb``'s embedder; ``kb`` sees the new
        documents on its next search.

        A file that failed for good is deleted again, unless it is password-protected
        (the page asks for the password and retries) or an older version of it is
        still stored.
        """
        settings = settings or kb.settings
        changes = {
            f: getattr(settings, f)
            for f in _INGEST_FIELDS
            if getattr(settings, f) != getattr(kb.settings, f)
        }
        if changes:
            with KnowledgeBase.open(
                kb.directory, settings=kb.settings.replace(**changes), embedder=kb.embedder
            ) as writer:
                report = writer.add([path], pdf_password=pdf_password, progress=progress)
        else:
            report = kb.add([path], pdf_password=pdf_password, progress=progress)
        result = report.files[0] if report.files else FileResult(str(path), "failed")
        if result.status == "failed" and not needs_password(result):
            stored = {doc.source for doc in kb.documents()}
            if result.source not in stored:
                self.discard_upload(kb, path)
        return result

    def discard_upload(self, kb: KnowledgeBase, path: Path) -> None:
        """Delete a saved upload, and its uploaded name, if it is inside ``kb``'s uploads folder."""
        if is_inside(Path(path), kb.directory / UPLOADS_DIR):
            Path(path).unlink(missing_ok=True)
            UploadNames(kb.directory).forget(Path(path).name)

    def display_names(
        self, kb: KnowledgeBase, documents: Iterable[DocumentInfo] | None = None
    ) -> dict[str, str]:
        """``{source: the name to show}`` for every document of ``kb`` (or of
        ``documents``, when the caller has just listed them): the name it was
        uploaded under, or its file name when it came from elsewhere (the CLI)."""
        name_of = UploadNames(kb.directory).lookup()
        return {doc.source: name_of(doc.source) for doc in documents or kb.documents()}

    def remove_document(self, kb: KnowledgeBase, source: str) -> bool:
        """Remove a document from ``kb``, and its uploaded file if the UI saved it."""
        removed = kb.remove(source)
        self.discard_upload(kb, Path(source))
        return removed


@dataclass(frozen=True)
class Notice:
    """A message for the page: ``level`` is ``success``, ``info``, ``warning`` or ``error``,
    ``label`` an :mod:`ragqa.i18n` key and ``values`` its placeholders.

    Kept as a key rather than text, so that it follows a change of language.
    """

    level: str
    label: str
    values: dict[str, Any] = field(default_factory=dict)


_REJECTION_LABELS = {
    "too_many": "result_too_many",
    "too_large": "result_too_large",
    "unsupported": "result_unsupported",
    "not_pdf": "result_not_pdf",
    "not_text": "result_not_text",
    "empty": "result_empty",
}


def describe_outcome(outcome: UploadOutcome, *, max_mb: float, max_files: int) -> Notice | None:
    """The notice for an upload that was not saved, or None for a saved one."""
    if outcome.status == "duplicate":
        return Notice(
            "info", "result_duplicate", {"name": outcome.name, "existing": outcome.existing}
        )
    if outcome.status != "rejected":
        return None
    label = _REJECTION_LABELS.get(outcome.reason or "", "result_unsupported")
    return Notice(
        "error",
        label,
        {
            "name": outcome.name,
            "size_mb": f"{outcome.size / 1024 / 1024:.1f}",
            "max_mb": f"{max_mb:g}",
            "max_files": max_files,
        },
    )


def describe_result(result: FileResult, name: str, *, retried_password: bool = False) -> Notice:
    """The notice for an ingested file: chunks added, or why it failed, in words a user acts on.

    Args:
        result: the file's result from :meth:`Workspace.ingest`.
        name: the file name to show.
        retried_password: a password was given this time, so "encrypted" means it was wrong.
    """
    values: dict[str, Any] = {"name": name, "chunks": result.chunks, "pages": result.pages}
    if result.status in ("added", "replaced"):
        return Notice("success", f"result_{result.status}", values)
    if result.status == "unchanged":
        return Notice("info", "result_unchanged", values)
    if needs_password(result):
        if retried_password or result.reason == "wrong_password":
            return Notice("error", "result_wrong_password", values)
        return Notice("warning", "result_encrypted", values)
    if result.reason == "no_text":
        return Notice("warning", "result_no_text", values)
    error = result.error or result.reason or "unknown error"
    # Messages start with the full path of the saved upload; the user knows the file
    # by its name, and the server's folders are none of the page's business.
    if error.startswith(result.source):
        error = error[len(result.source) :].lstrip(": ")
    return Notice("error", "result_failed", {**values, "error": error})


def needs_password(result: FileResult) -> bool:
    """True when a file failed only because it is encrypted (a password may open it)."""
    return result.status == "failed" and result.reason in ("encrypted", "wrong_password")


def unreadable_share(kb: KnowledgeBase, source: str) -> float | None:
    """The share of a stored document's tokens that ``kb``'s embedding model cannot
    read (they become ``[UNK]``), or None when the model cannot tell or the document
    is not stored.

    Measured on the document alone, from its stored pages: the knowledge base's own
    warning covers a whole batch, once per opened knowledge base, and the page is
    shared by every session, so it would reach only the first user who uploads.
    """
    doc = next((d for d in kb.documents() if d.source == source), None)
    if doc is None:
        return None
    pages = [text for page in range(1, doc.pages + 1) if (text := kb.page_text(source, page))]
    return kb.embedder.unknown_token_ratio(pages) if pages else None


def describe_unreadable(kb: KnowledgeBase, result: FileResult, name: str) -> Notice | None:
    """A warning for a document that was just stored but that the embedding model
    mostly cannot read, saying what to do; None when it reads well (or failed).

    A Chinese file in a knowledge base built with all-MiniLM-L6-v2, for one, gets
    ``result_unreadable`` with ``{"name": ..., "percent": 38, "model": ...}``.
    """
    if result.status not in ("added", "replaced"):
        return None
    share = unreadable_share(kb, result.source)
    if share is None or share < UNK_WARNING_RATIO:
        return None
    values = {"name": name, "percent": round(share * 100), "model": kb.embedder.name}
    return Notice("warning", "result_unreadable", values)


def add_notice(log: list[Notice], notice: Notice) -> None:
    """Append ``notice`` to an upload log; a success clears what it resolves.

    A file that was added at last (the right password, a new version) makes the
    warnings and errors about it stale, so they go; other files' notices stay.
    """
    name = notice.values.get("name")
    if notice.level == "success" and name is not None:
        log[:] = [n for n in log if n.level == "success" or n.values.get("name") != name]
    log.append(notice)


def forget_notices(log: list[Notice], name: str) -> None:
    """Drop every notice about the file ``name`` (it has been removed)."""
    log[:] = [n for n in log if n.values.get("name") != name]


# --------------------------------------------------------------------- chat


@dataclass(frozen=True)
class SourceView:
    """One source under an answer, ready to show: ``html`` is escaped and safe.

    ``file_name`` is the name to show (the uploaded one); ``source`` the stored path,
    and ``cited`` the texts marked in the passage, to find them on the page's image.
    """

    number: int
    file_name: str
    page: int
    html: str
    heading: str = ""  # the headings above the passage, " › " between them
    source: str = ""
    cited: tuple[str, ...] = ()


@dataclass(frozen=True)
class ChatMessage:
    """One message of the chat as the page keeps it in its session.

    ``sources`` are the cited passages under an answer; ``passages_only`` marks the
    fallback where the language model failed (``error`` says why) and ``sources``
    holds the retrieved passages instead. ``language`` is the question's, for the
    page's fixed replies ("nothing found"); empty means the page's language.
    """

    role: str
    content: str
    sources: tuple[SourceView, ...] = ()
    passages_only: bool = False
    error: str | None = None
    language: str = ""  # what the page's own replies to it are in (ragqa.i18n.reply_language)


# Markdown, Streamlit's :color[...] directives and $math$ all key on ASCII
# punctuation; a backslash before any of it is a valid CommonMark escape.
_MARKDOWN_SPECIALS = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~$:&=\"'^])")
# In HTML, numeric entities for the same characters (and for HTML's own) keep both
# the browser and any Markdown pass from acting on them.
_HTML_SPECIALS = {c: f"&#{ord(c)};" for c in "\\`*_{}[]()<>#+-.!|~$:&=\"'^"}


def escape_markdown(text: str) -> str:
    """``text`` escaped so that Markdown shows it literally (no links, images, HTML, math).

    Each character is escaped on its own, so streamed pieces can be escaped one by
    one and still join up correctly.

    Example:
        >>> escape_markdown("**bold** <b>x</b> $1")
        '\\\\*\\\\*bold\\\\*\\\\* \\\\<b\\\\>x\\\\</b\\\\> \\\\$1'
    """
    return _MARKDOWN_SPECIALS.sub(r"\\\1", text)


def _escape_html_text(text: str) -> str:
    escaped = "".join(_HTML_SPECIALS.get(c, c) for c in text if c != "\r")
    # A blank line would end the HTML block and hand the rest to Markdown.
    return escaped.replace("\n", "<br>")


def file_name_html(name: str) -> str:
    """A file name as escaped HTML that may wrap only after ``_``, ``-`` and ``.``.

    A long name in a narrow list would otherwise be broken anywhere, mid-word.

    Example:
        >>> file_name_html("a_b<c>.pdf")
        '<span class="ragqa-file">a&#95;<wbr>b&#60;c&#62;&#46;<wbr>pdf</span>'
    """
    parts = []
    for char in name:
        parts.append(_escape_html_text(char))
        if char in "_-.":
            parts.append("<wbr>")
    return f'<span class="ragqa-file">{"".join(parts)}</span>'


def css_string(text: str) -> str:
    """``text`` as a quoted CSS string, for ``content:``; nothing in it can end the
    string or the rule.

    Example:
        >>> print(css_string('上传 "x"'))
        "上传 \\000022 x\\000022 "
    """
    escaped = "".join(f"\\{ord(c):06x} " if c in '"\\<>{};' or ord(c) < 0x20 else c for c in text)
    return f'"{escaped}"'


def pdf_of(view: SourceView) -> Path | None:
    """The PDF a source was cut from, when it is one and is still there to draw."""
    path = Path(view.source) if view.source else None
    if path is None or path.suffix.lower() != ".pdf" or not path.is_file():
        return None
    return path


def passage_html(text: str, highlights: Sequence[tuple[int, int]] = ()) -> str:
    """A passage as escaped HTML, with each ``text[start:end]`` of ``highlights`` marked.

    Every character of ``text`` is escaped, for HTML and for Markdown alike, and
    line breaks become ``<br>``, so the result can go to
    ``st.markdown(..., unsafe_allow_html=True)`` without the document being able
    to add a single tag, link or image of its own.

    Example:
        >>> passage_html("a <b> c", [(2, 5)])
        '<div class="ragqa-passage">a <mark class="ragqa-cited">&#60;b&#62;</mark> c</div>'
    """
    parts = []
    position = 0
    for start, end in sorted(highlights):
        start, end = max(start, position, 0), min(end, len(text))
        if start >= end:
            continue
        parts.append(_escape_html_text(text[position:start]))
        parts.append(f'<mark class="ragqa-cited">{_escape_html_text(text[start:end])}</mark>')
        position = end
    parts.append(_escape_html_text(text[position:]))
    return f'<div class="ragqa-passage">{"".join(parts)}</div>'


_MARKER = re.compile(r"\[(\d{1,3})\]")
# A passage sentence counts as cited when this share of its terms is in the claim:
# the extractive answerer quotes sentences whole, a chat model paraphrases them.
_CITED_SHARE = 0.5
_BEST_SENTENCE_SHARE = 0.25
_NEAR_BEST = 0.8


def answer_claims(answer_text: str, number: int) -> list[str]:
    """The parts of an answer that cite passage ``number``: the sentence before each ``[n]``.

    In "A is B [1][2]. C is D [2]." passage 2 backs both sentences, passage 1 the first.

    Example:
        >>> answer_claims("Tea came from China [1]. Coffee from Ethiopia [2].", 2)
        ['Coffee from Ethiopia']
    """
    from ragqa.splitting import sentence_spans

    claims: list[str] = []
    previous_end = 0
    claim = ""
    for match in _MARKER.finditer(answer_text):
        segment = answer_text[previous_end : match.start()]
        if segment.strip():
            # Only the last sentence before the marker: earlier ones cite elsewhere.
            spans = sentence_spans(segment)
            claim = segment[spans[-1][0] : spans[-1][1]].strip(" .。") if spans else ""
        if int(match.group(1)) == number and claim and claim not in claims:
            claims.append(claim)
        previous_end = match.end()
    return claims


def cited_sentences(passage_text: str, claims: Sequence[str]) -> list[tuple[int, int]]:
    """The spans of the sentences in ``passage_text`` that the ``claims`` draw on.

    A sentence is cited when at least half of its terms appear in one claim (or half
    of the claim's terms in it, for a short answer) and it matches nearly as well as
    the best sentence; when none reaches half, the best sentence is, if a quarter
    do. No claims, or a claim that shares little with the passage, highlight nothing.
    """
    if not claims:
        return []
    from ragqa.lexical import tokenize
    from ragqa.splitting import sentence_spans

    claim_terms = [set(tokenize(claim)) for claim in claims]
    scored = []
    for start, end in sentence_spans(passage_text):
        terms = set(tokenize(passage_text[start:end]))
        if not terms:
            continue
        # Either way round: a quoted sentence is covered by its claim, and a short
        # answer ("Mara Velez", "1887") is covered by the sentence it came from.
        share = max(
            len(terms & claim) / min(len(terms), len(claim) or len(terms)) for claim in claim_terms
        )
        scored.append((share, start, end))
    if not scored:
        return []
    best = max(share for share, _, _ in scored)
    if best < _BEST_SENTENCE_SHARE:
        return []
    # Near the best only: a sentence sharing one common word with the claim is not
    # what the answer drew on when another sentence matches it whole.
    bar = max(min(_CITED_SHARE, best), _NEAR_BEST * best)
    return [(start, end) for share, start, end in scored if share >= bar]


PageText = Callable[[str, int], "str | None"]


def source_views(
    answer: Any,
    *,
    page_text: PageText | None = None,
    context_chars: int = 300,
    names: Mapping[str, str] | None = None,
) -> list[SourceView]:
    """The sources to show under an answer, each with its cited part highlighted.

    With ``page_text`` (``(source, page) -> the page's normalised text``) each cited
    chunk is shown inside its page, ``context_chars`` either side; without it the
    chunk itself is shown. Either way what the answer draws on is highlighted: the
    citation's spans (the item or answer quoted), else the sentences that match
    the text before the ``[n]`` marker, else (in a page) the whole chunk.

    Args:
        answer: an ``Answer`` (``text``, ``citations``, ``passages``). When it cites
            nothing, its passages are shown unhighlighted instead.
        page_text: where to find a page's full text, if anywhere.
        context_chars: how much of the page to show around a chunk.
        names: ``{source: name to show}`` (:meth:`Workspace.display_names`); a
            source not in it is shown by its file name.

    Sources are numbered as the answer numbers them: 1..n in the order the text
    first cites them (:func:`ragqa.answering.resolve_citations`).
    """
    names = names or {}
    citations = tuple(getattr(answer, "citations", ()) or ())
    if not citations:
        return hit_views(getattr(answer, "passages", ()) or (), names=names)
    views = []
    for citation in citations:
        page = page_text(citation.source, citation.page) if page_text is not None else None
        # What the answer drew on, in the passage: the quoted item or answer (the
        # citation's spans), else the passage sentences its claim matches.
        spans = list(getattr(citation, "spans", ()) or ())
        if not spans:
            claims = answer_claims(getattr(answer, "text", ""), citation.number)
            spans = cited_sentences(citation.text, claims)
        if page and page[citation.start : citation.end] == citation.text:
            lo = max(0, citation.start - context_chars)
            hi = min(len(page), citation.end + context_chars)
            prefix = "…" if lo > 0 else ""
            suffix = "…" if hi < len(page) else ""
            shown = prefix + page[lo:hi] + suffix
            # Where the chunk's first character stands in what is shown.
            offset = len(prefix) + citation.start - lo
            marks = [(s + offset, e + offset) for s, e in spans] or [
                (offset, offset + len(citation.text))
            ]
            body = passage_html(shown, marks)
        else:
            body = passage_html(citation.text, spans)
        cited = tuple(citation.text[s:e] for s, e in spans) or (citation.text,)
        views.append(
            SourceView(
                citation.number,
                names.get(citation.source) or Path(citation.source).name,
                citation.page,
                body,
                getattr(citation, "heading", "") or "",
                citation.source,
                cited,
            )
        )
    return views


def hit_views(hits: Iterable[Hit], *, names: Mapping[str, str] | None = None) -> list[SourceView]:
    """Search hits as sources, numbered from 1, without highlighting."""
    names = names or {}
    return [
        SourceView(
            number,
            names.get(hit.source) or hit.file_name,
            hit.page,
            passage_html(hit.text),
            hit.heading,
            hit.source,
            (hit.text,),
        )
        for number, hit in enumerate(hits, start=1)
    ]


def history_turns(messages: Sequence[ChatMessage], max_turns: int) -> list[Turn]:
    """The chat so far as ``Turn`` values for a follow-up: the last ``max_turns`` messages.

    Bounded (like :func:`ragqa.conversation.bound_history`, in messages) so a long
    chat neither overflows the model's context nor slows every answer. Answers that
    failed carry only what the model managed to say, and are left out when empty.
    """
    from ragqa.conversation import Turn, bound_history

    turns = [Turn(m.role, m.content) for m in messages if m.content.strip()]
    return list(bound_history(turns, max_turns))
