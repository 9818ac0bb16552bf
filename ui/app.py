"""ragqa's chat page: ``streamlit run ui/app.py``.

A thin page over :mod:`ragqa.workspace` and :class:`ragqa.KnowledgeBase`: it draws
widgets, keeps the chat in ``st.session_state`` and holds no logic of its own. It
runs on the embedded defaults with no configuration (the bundled embedding model,
FAISS on disk, the built-in extractive answerer); ``RAGQA_*`` variables set the
defaults the sidebar starts from.
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import streamlit as st

from ragqa import KnowledgeBase, LLMError, RagqaError, Settings
from ragqa.config import LLM_BACKENDS, RETRIEVAL_MODES
from ragqa.embeddings import Embedder, get_embedder
from ragqa.errors import ConfigError
from ragqa.i18n import LANGUAGES, canonical_language, language_from_locale, reply_language, t
from ragqa.knowledge_base import IngestProgress
from ragqa.page_image import render_cited_page
from ragqa.workspace import (
    UPLOAD_EXTENSIONS,
    ChatMessage,
    Notice,
    SourceView,
    Workspace,
    WorkspaceError,
    add_notice,
    css_string,
    describe_outcome,
    describe_result,
    describe_unreadable,
    escape_markdown,
    file_name_html,
    forget_notices,
    history_turns,
    hit_views,
    needs_password,
    pdf_of,
    source_views,
)

# Widget values written back into the session at the top of every run. Streamlit
# forgets the state of a widget that is not drawn in a run (the backend's fields),
# and a selectbox keeps its value as the *label* it showed: after a change of
# language the old label matches no option and the box falls back to its first
# (Hybrid became Dense). Written back before the widgets are drawn, each value is
# the option itself and is shown under its new label at once. The API key is left
# out on purpose: it is not worth keeping a secret around for convenience.
_KEPT_KEYS = (
    "cfg_llm",
    "cfg_llm_model",
    "cfg_llm_base_url",
    "cfg_gguf_path",
    "cfg_fake_reply",
    "cfg_top_k",
    "cfg_retrieval_mode",
    "cfg_chunk_size",
    "cfg_chunk_overlap",
)

# Upload results kept on show per knowledge base; older ones drop off.
_MAX_LOG = 50

# Wide enough that common file names fit on one line in the document list (the
# default, 300, broke them mid-word); the user can still drag it narrower or wider.
_SIDEBAR_PX = 400

_CSS = """
<style>
div.ragqa-passage { font-size: 0.9rem; line-height: 1.5; border-left: 3px solid #d0d7de;
  padding: 0.2rem 0 0.2rem 0.7rem; margin-bottom: 0.8rem; }
mark.ragqa-cited { background: #ffe58f; color: inherit; padding: 0 0.1rem; }
span.ragqa-file { font-weight: 600; word-break: normal; overflow-wrap: break-word; }
</style>
"""

# Streamlit writes its uploader's button and size line in English, with no option
# to change them; for another language the page draws its own words over them.
_UPLOADER_BUTTON = (
    '[data-testid="stFileUploaderDropzone"] button[data-testid="stBaseButton-secondary"] '
    '[data-testid="stMarkdownContainer"] p'
)
_UPLOADER_LIMIT = '[data-testid="stFileUploaderDropzoneInstructions"] span'
_UPLOADER_CSS = """
<style>
{button}, {limit} {{ font-size: 0; }}
{button}::after {{ content: {button_text}; font-size: 0.875rem; }}
{limit}::after {{ content: {limit_text}; font-size: 0.875rem; }}
</style>
"""


# ----------------------------------------------------------------- resources


@st.cache_resource(show_spinner=False)
def load_embedder(
    model: str, batch_size: int, device: str, query_backend: str, precision: str
) -> Embedder:
    """The embedding model, loaded once per process and shared by every session."""
    return get_embedder(
        model,
        batch_size=batch_size,
        device=device,
        query_backend=query_backend,
        precision=precision,
    )


@st.cache_resource(show_spinner=False)
def load_knowledge_base(directory: str) -> KnowledgeBase:
    """One open knowledge base per directory, shared by every session (it is thread-safe)."""
    settings = Settings.from_env()
    workspace = Workspace(Path(directory).parent, settings)
    return workspace.open(Path(directory).name, embedder=shared_embedder(settings))


@st.cache_resource(show_spinner=False, max_entries=4)
def load_chat_model(config_key: str, _settings: Settings) -> Any:  # noqa: ARG001
    """A chat backend per configuration, built once: a local GGUF model takes seconds
    to load. ``_settings`` is not hashed (it holds the API key); ``config_key`` is."""
    from ragqa.llm import get_chat_model

    return get_chat_model(_settings)


def shared_chat_model(settings: Settings) -> Any:
    """The configured chat backend, or None for the built-in extractive answerer."""
    if settings.llm == "extractive":
        return None
    secret = hashlib.sha256(settings.llm_api_key.encode()).hexdigest()
    key = "|".join(
        str(v)
        for v in (
            settings.llm,
            settings.llm_model,
            settings.llm_base_url,
            secret,
            settings.llm_timeout,
            settings.llm_max_retries,
            settings.llm_max_tokens,
        )
    )
    return load_chat_model(key, settings)


def shared_embedder(settings: Settings) -> Embedder:
    return load_embedder(
        settings.embedding_model,
        settings.embedding_batch_size,
        settings.embedding_device,
        settings.query_backend,
        settings.embedding_precision,
    )


# ------------------------------------------------------------------- helpers


def lang() -> str:
    return st.session_state.get("lang", "en")


def label_of(prefix: str, language: str, option: str) -> str:
    """An option's label. The language is bound when the widget is drawn: Streamlit may
    call a ``format_func`` later, outside the run, where the session is not at hand."""
    return t(f"{prefix}_{option}", language)


def tr(key: str, **values: Any) -> str:
    """A label in the current language, its values escaped (they come from documents)."""
    return t(
        key,
        lang(),
        **{k: v if isinstance(v, int) else escape_markdown(str(v)) for k, v in values.items()},
    )


def show_notice(notice: Notice, where: Any = st) -> None:
    text = tr(notice.label, **notice.values)
    {"success": where.success, "info": where.info, "warning": where.warning}.get(
        notice.level, where.error
    )(text)


def flash(notice: Notice) -> None:
    """Queue a notice to show once, from a callback that runs before the page is drawn."""
    st.session_state.setdefault("flash", []).append(notice)


def error_notice(error: Exception) -> Notice:
    if isinstance(error, WorkspaceError):
        return Notice("error", error.label, dict(error.values))
    return Notice("error", "error", {"error": str(error)})


def init_state(base: Settings) -> None:
    state = st.session_state
    if "lang" not in state:
        locale = None
        try:
            locale = st.context.locale or st.context.headers.get("Accept-Language")
        except Exception:  # noqa: BLE001 - no browser context (bare mode, tests)
            locale = None
        state.lang = language_from_locale(locale)
    elif state.lang not in LANGUAGES:
        state.lang = canonical_language(state.lang)  # "zh" from an older page
    state.setdefault("chats", {})  # knowledge base -> [ChatMessage]
    state.setdefault("processed", {})  # knowledge base -> {upload file id: sha256}
    state.setdefault("upload_log", {})  # knowledge base -> [Notice]
    state.setdefault("pending", {})  # knowledge base -> {saved path: name} awaiting a password
    # knowledge base -> n, part of the uploader's key: a new n gives an empty uploader
    state.setdefault("uploader_round", {})
    state.setdefault("confirm_remove", None)  # the source whose removal awaits a yes
    defaults = {
        "cfg_llm": base.llm,
        "cfg_llm_model": base.llm_model if base.llm in ("openai", "ollama") else "",
        "cfg_gguf_path": base.llm_model if base.llm == "llamacpp" else "",
        "cfg_fake_reply": base.llm_model if base.llm == "fake" else "",
        "cfg_llm_base_url": base.llm_base_url,
        "cfg_top_k": base.top_k,
        "cfg_retrieval_mode": base.retrieval_mode,
        "cfg_chunk_size": base.chunk_size,
        "cfg_chunk_overlap": base.chunk_overlap,
    }
    for key, value in defaults.items():
        state.setdefault(key, value)
    for key in _KEPT_KEYS:
        state[key] = state[key]


# ------------------------------------------------------------------- sidebar


def sidebar_language() -> None:
    st.sidebar.radio(
        t("language", lang()),
        LANGUAGES,
        format_func=lambda code: t("language_name", code),
        horizontal=True,
        key="lang",
    )


def create_kb_callback(workspace: Workspace, embedder: Embedder) -> None:
    name = st.session_state.get("new_kb_name", "")
    try:
        created = workspace.create(name, embedder=embedder)
    except RagqaError as error:
        flash(error_notice(error))
        return
    # Runs before the selectbox is drawn again, so it may still set its value.
    st.session_state.kb_name = created
    flash(Notice("success", "kb_created", {"name": created}))


def sidebar_knowledge_bases(workspace: Workspace, embedder: Embedder) -> str:
    names = workspace.names()
    if st.session_state.get("kb_name") not in names:
        st.session_state.kb_name = names[0]
    st.sidebar.selectbox(tr("kb_select"), names, key="kb_name")
    with st.sidebar.expander(tr("kb_new")), st.form("new_kb", clear_on_submit=True):
        st.text_input(
            tr("kb_new_name"),
            key="new_kb_name",
            help=t("kb_new_help", lang(), max_len=64),
        )
        st.form_submit_button(
            tr("kb_create"), on_click=create_kb_callback, args=(workspace, embedder)
        )
    return st.session_state.kb_name


def sidebar_settings(base: Settings) -> Settings:
    """The settings panel; returns the session's settings (validated), or ``base``."""
    state = st.session_state
    with st.sidebar.expander(tr("settings")):
        backends = [b for b in LLM_BACKENDS if b != "fake" or base.llm == "fake"]
        backend = st.selectbox(
            tr("llm_backend"),
            backends,
            format_func=functools.partial(label_of, "backend", lang()),
            key="cfg_llm",
        )
        changes: dict[str, Any] = {"llm": backend}
        if backend in ("openai", "ollama"):
            changes["llm_model"] = st.text_input(tr("llm_model"), key="cfg_llm_model")
            changes["llm_base_url"] = st.text_input(tr("llm_base_url"), key="cfg_llm_base_url")
        if backend == "openai":
            # Never pre-filled: a key from the environment must not travel to the browser.
            typed = st.text_input(
                tr("llm_api_key"),
                type="password",
                key="cfg_llm_api_key",
                help=t("llm_api_key_help", lang()),
                placeholder=t("llm_api_key_from_env", lang()) if base.llm_api_key else "",
            )
            changes["llm_api_key"] = typed or base.llm_api_key
        if backend == "llamacpp":
            changes["llm_model"] = st.text_input(tr("llm_gguf_path"), key="cfg_gguf_path")
        if backend == "fake":
            changes["llm_model"] = st.text_input(tr("llm_model"), key="cfg_fake_reply")

        st.markdown(f"**{tr('retrieval')}**")
        changes["top_k"] = int(
            st.number_input(tr("top_k"), min_value=1, max_value=50, step=1, key="cfg_top_k")
        )
        changes["retrieval_mode"] = st.selectbox(
            tr("retrieval_mode"),
            RETRIEVAL_MODES,
            format_func=functools.partial(label_of, "mode", lang()),
            key="cfg_retrieval_mode",
        )
        st.markdown(f"**{tr('chunking')}**")
        chunk_size = int(
            st.number_input(
                tr("chunk_size"), min_value=50, max_value=20_000, step=50, key="cfg_chunk_size"
            )
        )
        if state.cfg_chunk_overlap > chunk_size // 2:
            state.cfg_chunk_overlap = chunk_size // 2
        changes["chunk_size"] = chunk_size
        changes["chunk_overlap"] = int(
            st.number_input(
                tr("chunk_overlap"),
                min_value=0,
                max_value=chunk_size // 2,
                step=10,
                key="cfg_chunk_overlap",
            )
        )
    try:
        return base.replace(**changes)
    except ConfigError as error:
        st.sidebar.error(tr("settings_invalid", error=error))
        return base


# ------------------------------------------------------------------- uploads


def ingest_with_progress(
    workspace: Workspace,
    kb: KnowledgeBase,
    path: Path,
    name: str,
    slot: Any,
    settings: Settings,
    password: str | None = None,
) -> list[Notice]:
    """Ingest one saved upload, drawing its progress bar in ``slot``; return its notices
    (its result, and a warning when the embedding model cannot read it)."""

    def on_progress(event: IngestProgress) -> None:
        if event.stage == "reading":
            slot.progress(0.02, text=tr("progress_reading", name=name))
        elif event.stage == "embedding":
            percent = int(event.fraction * 100)
            slot.progress(
                0.05 + 0.9 * event.fraction,
                text=tr("progress_embedding", name=name, percent=percent),
            )
        else:
            slot.progress(1.0, text=tr("progress_done", name=name))

    slot.progress(0.0, text=tr("progress_reading", name=name))
    try:
        result = workspace.ingest(
            kb, path, settings=settings, pdf_password=password, progress=on_progress
        )
    except RagqaError as error:
        return [error_notice(error)]
    pending = st.session_state.pending.setdefault(kb_key(kb), {})
    if needs_password(result):
        pending[str(path)] = name
    else:
        pending.pop(str(path), None)
    notices = [describe_result(result, name, retried_password=password is not None)]
    unreadable = describe_unreadable(kb, result, name)
    return notices + [unreadable] if unreadable else notices


def kb_key(kb: KnowledgeBase) -> str:
    return kb.directory.name


def upload_log(kb: KnowledgeBase) -> list[Notice]:
    return st.session_state.upload_log.setdefault(kb_key(kb), [])


def process_uploads(
    workspace: Workspace, kb: KnowledgeBase, files: list[Any], settings: Settings
) -> bool:
    """Save and ingest the uploads not seen before; each gets a bar, then its result.

    Returns True when there were any, so the page is drawn again with the log.
    """
    name = kb_key(kb)
    processed = st.session_state.processed.setdefault(name, {})
    log = upload_log(kb)
    fresh = [f for f in files if f.file_id not in processed]
    if not fresh:
        return False
    try:
        outcomes = workspace.save_uploads(
            name, [(f.name, f.getvalue()) for f in fresh], kb.documents()
        )
    except (RagqaError, OSError) as error:
        add_notice(log, error_notice(error))
        return True
    # Marked before ingesting: a rerun in the middle must not ingest a file twice.
    for upload, outcome in zip(fresh, outcomes, strict=True):
        processed[upload.file_id] = outcome.content_hash
    slots = []
    for outcome in outcomes:
        slot = st.sidebar.empty()
        slot.progress(0.0, text=tr("progress_waiting", name=outcome.name))
        slots.append(slot)
    for outcome, slot in zip(outcomes, slots, strict=True):
        notice = describe_outcome(
            outcome, max_mb=settings.max_file_mb, max_files=workspace.max_files
        )
        notices = [notice] if notice is not None else []
        if notice is None and outcome.path is not None:
            notices = ingest_with_progress(
                workspace, kb, outcome.path, outcome.name, slot, settings
            )
        for each in notices:
            add_notice(log, each)
            show_notice(each, slot)
    return True


def password_forms(workspace: Workspace, kb: KnowledgeBase, settings: Settings) -> None:
    """For each password-protected upload: ask for the password, then retry or skip."""
    pending = st.session_state.pending.get(kb_key(kb), {})
    log = upload_log(kb)
    for path, name in list(pending.items()):
        form_key = "pw_" + hashlib.sha256(path.encode()).hexdigest()[:12]
        with st.sidebar.form(form_key, clear_on_submit=True):
            password = st.text_input(tr("password_label", name=name), type="password")
            left, right = st.columns(2)
            unlock = left.form_submit_button(tr("password_submit"), width="stretch")
            skip = right.form_submit_button(tr("password_skip"), width="stretch")
        if unlock:
            slot = st.sidebar.empty()
            for notice in ingest_with_progress(
                workspace, kb, Path(path), name, slot, settings, password=password
            ):
                add_notice(log, notice)
            st.rerun()
        elif skip:
            pending.pop(path, None)
            workspace.discard_upload(kb, Path(path))
            forget_notices(log, name)
            st.rerun()


def ask_to_remove(source: str) -> None:
    st.session_state.confirm_remove = source


def cancel_remove() -> None:
    st.session_state.confirm_remove = None


def remove_document_callback(
    workspace: Workspace, kb: KnowledgeBase, source: str, name: str
) -> None:
    state = st.session_state
    state.confirm_remove = None
    try:
        workspace.remove_document(kb, source)
    except RagqaError as error:
        state.docs_notice = error_notice(error)
        return
    forget_notices(upload_log(kb), name)
    # A new key gives an empty uploader: the removed file must not stay listed there.
    rounds = state.uploader_round
    rounds[kb_key(kb)] = rounds.get(kb_key(kb), 0) + 1
    state.docs_notice = Notice("success", "doc_removed", {"name": name})


def uploader_css(limit_mb: int) -> str:
    """Streamlit's own uploader words in the page's language (nothing for English)."""
    if lang() == "en":
        return ""
    return _UPLOADER_CSS.format(
        button=_UPLOADER_BUTTON,
        limit=_UPLOADER_LIMIT,
        button_text=css_string(t("upload_button", lang())),
        limit_text=css_string(t("upload_limit", lang(), max_mb=limit_mb)),
    )


def sidebar_documents(workspace: Workspace, kb: KnowledgeBase, settings: Settings) -> None:
    sidebar = st.sidebar
    sidebar.subheader(tr("upload_section"))
    server_limit = int(st.get_option("server.maxUploadSize"))
    limit_mb = max(1, min(server_limit, math.ceil(settings.max_file_mb)))
    if css := uploader_css(limit_mb):
        st.html(css)
    files = sidebar.file_uploader(
        tr("upload_label"),
        type=[ext.lstrip(".") for ext in UPLOAD_EXTENSIONS],
        accept_multiple_files=True,
        key=f"uploader_{kb_key(kb)}_{st.session_state.uploader_round.get(kb_key(kb), 0)}",
        help=t("upload_help", lang(), max_files=workspace.max_files, max_mb=limit_mb),
        max_upload_size=limit_mb,
    )
    # New files draw their bars and results here, then the page is drawn again with
    # them in the log: a success clears the warnings it resolves.
    if process_uploads(workspace, kb, list(files or []), settings):
        st.rerun()
    log = upload_log(kb)
    del log[:-_MAX_LOG]
    for notice in log:
        show_notice(notice, sidebar)
    if log:
        sidebar.button(tr("results_dismiss"), on_click=log.clear, key="dismiss_log")
    password_forms(workspace, kb, settings)
    document_list(workspace, kb)


def document_list(workspace: Workspace, kb: KnowledgeBase) -> None:
    """The stored documents under their uploaded names, each with Remove (asked twice)."""
    documents = kb.documents()
    names = workspace.display_names(kb, documents)
    confirm = st.session_state.confirm_remove
    with st.sidebar.expander(tr("docs_header", count=len(documents)), expanded=True):
        # The result of a removal, here by the list rather than at the sidebar's top.
        if (notice := st.session_state.pop("docs_notice", None)) is not None:
            show_notice(notice)
        if not documents:
            st.caption(tr("docs_empty"))
        for index, doc in enumerate(documents):
            name = names.get(doc.source) or Path(doc.source).name
            key = f"{index}_{doc.content_hash[:12]}"
            st.markdown(file_name_html(name), unsafe_allow_html=True)
            if confirm == doc.source:
                st.warning(tr("doc_remove_confirm", name=name))
                yes, no = st.columns(2)
                yes.button(
                    tr("doc_remove_yes"),
                    type="primary",
                    key=f"confirm_remove_{key}",
                    on_click=remove_document_callback,
                    args=(workspace, kb, doc.source, name),
                    width="stretch",
                )
                no.button(
                    tr("doc_remove_cancel"),
                    key=f"cancel_remove_{key}",
                    on_click=cancel_remove,
                    width="stretch",
                )
                continue
            line, button = st.columns([3, 2], vertical_alignment="center")
            line.caption(tr("doc_line", pages=doc.pages, chunks=doc.chunks))
            button.button(
                tr("doc_remove"),
                icon=":material/delete:",
                type="tertiary",
                key=f"remove_{key}",
                on_click=ask_to_remove,
                args=(doc.source,),
            )


# ---------------------------------------------------------------------- chat


@st.cache_data(show_spinner=False, max_entries=64)
def cited_page_png(path: str, page: int, cited: tuple[str, ...], mtime: float) -> bytes | None:  # noqa: ARG001
    """The cited page as a PNG, made once per page and passage (``mtime`` keys a
    new version of the file). None when the PDF cannot be drawn (a password)."""
    try:
        return render_cited_page(path, page, list(cited))
    except (RagqaError, ValueError, ImportError, OSError):
        return None


def page_image(view: SourceView) -> bytes | None:
    path = pdf_of(view)
    if path is None:
        return None
    return cited_page_png(str(path), view.page, view.cited, os.path.getmtime(path))


def show_sources(message: ChatMessage) -> None:
    if not message.sources:
        if message.passages_only:
            st.info(t("no_passages", message.language or lang()))
        return
    count = len(message.sources)
    label = tr("passages", count=count) if message.passages_only else tr("sources", count=count)
    with st.expander(label, expanded=message.passages_only):
        for view in message.sources:
            line = "source_line" if not message.passages_only else "passage_line"
            st.markdown(
                "**" + tr(line, number=view.number, name=view.file_name, page=view.page) + "**"
            )
            image = page_image(view)
            # The passage's text, and beside it the page it stands on, boxed.
            text, picture = st.columns(2) if image else (st.container(), None)
            with text:
                if view.heading:
                    # Document-controlled text: shown as a caption, escaped for Markdown.
                    st.caption(escape_markdown(view.heading))
                # The passage is escaped character by character in ragqa.workspace.
                st.markdown(view.html, unsafe_allow_html=True)
            if picture is not None:
                caption = tr("source_page_image", name=view.file_name, page=view.page)
                picture.image(image, caption=caption, width="stretch")


def show_message(message: ChatMessage) -> None:
    with st.chat_message(message.role):
        if message.content:
            st.markdown(escape_markdown(message.content))
        if message.error is not None:
            if message.passages_only:
                st.warning(
                    t(
                        "llm_failed",
                        message.language or lang(),
                        error=escape_markdown(message.error),
                    )
                )
            else:
                st.error(tr("error", error=message.error))
        if message.role == "assistant":
            show_sources(message)


def answer(
    workspace: Workspace,
    kb: KnowledgeBase,
    question: str,
    history: list[Any],
    settings: Settings,
    messages: list[ChatMessage],
) -> None:
    """Stream the answer into the current chat message and add it to ``messages``.

    Added as soon as it is complete, before its sources are drawn: a click
    elsewhere (a change of language) stops this run where it is, and the answer
    must not be lost with it.
    """
    said: list[str] = []
    final: dict[str, Any] = {}
    # The chat's fixed replies follow the question, as the answerer's own do.
    language = reply_language(question)

    def tokens() -> Iterator[str]:
        try:
            chat_model = shared_chat_model(settings)
            for piece in kb.ask_stream(question, history, settings=settings, chat_model=chat_model):
                if isinstance(piece, str):
                    said.append(piece)
                    yield escape_markdown(piece)
                else:
                    final["answer"] = piece
        except (LLMError, ConfigError) as error:
            # ConfigError too: a backend that cannot even be built (no model file,
            # no URL) has failed just as surely as one that does not answer.
            final["llm_error"] = error
        except RagqaError as error:
            final["error"] = error

    st.write_stream(tokens())
    text = "".join(said)
    names = workspace.display_names(kb)
    if "answer" in final:
        result = final["answer"]
        views = tuple(source_views(result, names=names))
        message = ChatMessage("assistant", result.text or text, views, language=language)
        messages.append(message)
        show_sources(message)
        return
    if "llm_error" in final:
        error = str(final["llm_error"])
        st.warning(t("llm_failed", language, error=escape_markdown(error)))
        try:
            hits = kb.search(question, settings.top_k, mode=settings.retrieval_mode)
        except RagqaError as search_error:
            messages.append(
                ChatMessage("assistant", text, error=str(search_error), language=language)
            )
            st.error(tr("error", error=search_error))
            return
        message = ChatMessage(
            "assistant",
            text,
            tuple(hit_views(hits, names=names)),
            passages_only=True,
            error=error,
            language=language,
        )
        messages.append(message)
        show_sources(message)
        return
    error = str(final.get("error", "no answer"))
    messages.append(ChatMessage("assistant", text, error=error, language=language))
    st.error(tr("error", error=error))


def clear_chat(name: str) -> None:
    st.session_state.chats[name] = []


def chat(workspace: Workspace, kb: KnowledgeBase, name: str, settings: Settings) -> None:
    messages: list[ChatMessage] = st.session_state.chats.setdefault(name, [])
    documents = kb.documents()
    head, button_slot = st.columns([5, 1], vertical_alignment="bottom")
    head.caption(
        tr(
            "kb_caption",
            name=name,
            docs=len(documents),
            chunks=sum(d.chunks for d in documents),
            backend=t(f"backend_{settings.llm}", lang()),
        )
    )
    welcome = st.empty()
    for message in messages:
        show_message(message)
    question = (st.chat_input(tr("chat_placeholder")) or "").strip()
    if question:
        welcome.empty()
        history = history_turns(messages, settings.history_turns)
        user = ChatMessage("user", question)
        messages.append(user)
        show_message(user)
        with st.chat_message("assistant"):
            answer(workspace, kb, question, history, settings, messages)
    elif not messages:
        welcome.info(tr("chat_ready", name=name) if documents else tr("chat_welcome"))
    # Drawn last, so that it is enabled as soon as the first question is in.
    button_slot.button(
        tr("chat_clear"), on_click=clear_chat, args=(name,), disabled=not messages, key="clear"
    )


# ---------------------------------------------------------------------- page


def main() -> None:
    st.set_page_config(
        page_title="ragqa", page_icon="📚", layout="wide", initial_sidebar_state=_SIDEBAR_PX
    )
    try:
        base = Settings.from_env()
    except ConfigError as error:
        st.error(t("settings_invalid", "en", error=escape_markdown(str(error))))
        st.stop()
    init_state(base)
    sidebar_language()
    st.html(_CSS)  # style only: Streamlit applies it without taking room on the page
    st.title(tr("page_title"))
    for notice in st.session_state.pop("flash", []):
        show_notice(notice, st.sidebar)

    try:
        with st.spinner(tr("loading_model")):
            embedder = shared_embedder(base)
        workspace = Workspace.from_settings(base)
        workspace.ensure_default(embedder=embedder)
        name = sidebar_knowledge_bases(workspace, embedder)
        settings = sidebar_settings(base)
        kb = load_knowledge_base(str(workspace.path(name)))
    except (RagqaError, OSError) as error:
        show_notice(error_notice(error))
        st.stop()

    try:
        sidebar_documents(workspace, kb, settings)
    except (RagqaError, OSError) as error:
        show_notice(error_notice(error), st.sidebar)
    try:
        chat(workspace, kb, name, settings)
    except RagqaError as error:
        show_notice(error_notice(error))


main()
