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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import streamlit as st

from ragqa import KnowledgeBase, LLMError, RagqaError, Settings
from ragqa.config import LLM_BACKENDS, RETRIEVAL_MODES
from ragqa.embeddings import Embedder, get_embedder
from ragqa.errors import ConfigError
from ragqa.i18n import LANGUAGES, language_from_locale, t
from ragqa.knowledge_base import IngestProgress
from ragqa.workspace import (
    UPLOAD_EXTENSIONS,
    ChatMessage,
    Notice,
    Workspace,
    WorkspaceError,
    describe_outcome,
    describe_result,
    escape_markdown,
    history_turns,
    hit_views,
    needs_password,
    source_views,
)

# The widget keys whose values must survive while their widget is hidden (Streamlit
# forgets the state of a widget that is not drawn in a run). The API key is left
# out on purpose: it is not worth keeping a secret around for convenience.
_KEPT_KEYS = ("cfg_llm_model", "cfg_llm_base_url", "cfg_gguf_path", "cfg_fake_reply")

# Upload results kept on show per knowledge base; older ones drop off.
_MAX_LOG = 50

_CSS = """
<style>
div.ragqa-passage { font-size: 0.9rem; line-height: 1.5; border-left: 3px solid #d0d7de;
  padding: 0.2rem 0 0.2rem 0.7rem; margin-bottom: 0.8rem; }
mark.ragqa-cited { background: #ffe58f; color: inherit; padding: 0 0.1rem; }
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
    state.setdefault("chats", {})  # knowledge base -> [ChatMessage]
    state.setdefault("processed", {})  # knowledge base -> {upload file id: sha256}
    state.setdefault("upload_log", {})  # knowledge base -> [Notice]
    state.setdefault("pending", {})  # knowledge base -> {saved path: name} awaiting a password
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
    st.sidebar.subheader(tr("kb_section"))
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
) -> Notice:
    """Ingest one saved upload, drawing its progress bar in ``slot``; return its notice."""

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
        return error_notice(error)
    pending = st.session_state.pending.setdefault(kb_key(kb), {})
    if needs_password(result):
        pending[str(path)] = name
    else:
        pending.pop(str(path), None)
    return describe_result(result, name, retried_password=password is not None)


def kb_key(kb: KnowledgeBase) -> str:
    return kb.directory.name


def process_uploads(
    workspace: Workspace, kb: KnowledgeBase, files: list[Any], settings: Settings
) -> None:
    """Save and ingest the uploads not seen before; each gets a bar, then its result."""
    name = kb_key(kb)
    processed = st.session_state.processed.setdefault(name, {})
    log = st.session_state.upload_log.setdefault(name, [])
    fresh = [f for f in files if f.file_id not in processed]
    if not fresh:
        return
    try:
        outcomes = workspace.save_uploads(
            name, [(f.name, f.getvalue()) for f in fresh], kb.documents()
        )
    except (RagqaError, OSError) as error:
        log.append(error_notice(error))
        st.sidebar.error(tr("error", error=error))
        return
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
        if notice is None and outcome.path is not None:
            notice = ingest_with_progress(workspace, kb, outcome.path, outcome.name, slot, settings)
        if notice is not None:
            log.append(notice)
            show_notice(notice, slot)


def password_forms(workspace: Workspace, kb: KnowledgeBase, settings: Settings) -> None:
    """For each password-protected upload: ask for the password, then retry or skip."""
    pending = st.session_state.pending.get(kb_key(kb), {})
    log = st.session_state.upload_log.setdefault(kb_key(kb), [])
    for path, name in list(pending.items()):
        form_key = "pw_" + hashlib.sha256(path.encode()).hexdigest()[:12]
        with st.sidebar.form(form_key, clear_on_submit=True):
            password = st.text_input(tr("password_label", name=name), type="password")
            left, right = st.columns(2)
            unlock = left.form_submit_button(tr("password_submit"))
            skip = right.form_submit_button(tr("password_skip"))
        if unlock:
            slot = st.sidebar.empty()
            notice = ingest_with_progress(
                workspace, kb, Path(path), name, slot, settings, password=password
            )
            log.append(notice)
            st.rerun()
        elif skip:
            pending.pop(path, None)
            workspace.discard_upload(kb, Path(path))
            st.rerun()


def remove_document_callback(workspace: Workspace, kb: KnowledgeBase, source: str) -> None:
    try:
        workspace.remove_document(kb, source)
    except RagqaError as error:
        flash(error_notice(error))
        return
    flash(Notice("success", "doc_removed", {"name": Path(source).name}))


def sidebar_documents(workspace: Workspace, kb: KnowledgeBase, settings: Settings) -> None:
    sidebar = st.sidebar
    sidebar.subheader(tr("upload_section"))
    server_limit = int(st.get_option("server.maxUploadSize"))
    limit_mb = max(1, min(server_limit, math.ceil(settings.max_file_mb)))
    files = sidebar.file_uploader(
        tr("upload_label"),
        type=[ext.lstrip(".") for ext in UPLOAD_EXTENSIONS],
        accept_multiple_files=True,
        key=f"uploader_{kb_key(kb)}",
        help=t("upload_help", lang(), max_files=workspace.max_files, max_mb=limit_mb),
        max_upload_size=limit_mb,
    )
    log = st.session_state.upload_log.setdefault(kb_key(kb), [])
    for notice in log:
        show_notice(notice, sidebar)
    # New files draw their bars and results below the earlier results, then join them.
    process_uploads(workspace, kb, list(files or []), settings)
    if log:
        del log[:-_MAX_LOG]
        sidebar.button(tr("results_dismiss"), on_click=log.clear, key="dismiss_log")
    password_forms(workspace, kb, settings)

    documents = kb.documents()
    with sidebar.expander(tr("docs_header", count=len(documents)), expanded=True):
        if not documents:
            st.caption(tr("docs_empty"))
        for index, doc in enumerate(documents):
            text, button = st.columns([3, 2], vertical_alignment="center")
            text.markdown(
                f"**{escape_markdown(Path(doc.source).name)}**  \n"
                + tr("doc_line", pages=doc.pages, chunks=doc.chunks)
            )
            button.button(
                tr("doc_remove"),
                icon=":material/delete:",
                type="tertiary",
                key=f"remove_{index}_{doc.content_hash[:12]}",
                on_click=remove_document_callback,
                args=(workspace, kb, doc.source),
            )


# ---------------------------------------------------------------------- chat


def show_sources(message: ChatMessage) -> None:
    if not message.sources:
        if message.passages_only:
            st.info(tr("no_passages"))
        return
    count = len(message.sources)
    label = tr("passages", count=count) if message.passages_only else tr("sources", count=count)
    with st.expander(label, expanded=message.passages_only):
        for view in message.sources:
            line = "source_line" if not message.passages_only else "passage_line"
            st.markdown(
                "**" + tr(line, number=view.number, name=view.file_name, page=view.page) + "**"
            )
            if view.heading:
                # Document-controlled text: shown as a caption, escaped for Markdown.
                st.caption(escape_markdown(view.heading))
            # The passage is escaped character by character in ragqa.workspace.
            st.markdown(view.html, unsafe_allow_html=True)


def show_message(message: ChatMessage) -> None:
    with st.chat_message(message.role):
        if message.content:
            st.markdown(escape_markdown(message.content))
        if message.error is not None:
            if message.passages_only:
                st.warning(tr("llm_failed", error=message.error))
            else:
                st.error(tr("error", error=message.error))
        if message.role == "assistant":
            show_sources(message)


def answer(kb: KnowledgeBase, question: str, history: list[Any], settings: Settings) -> ChatMessage:
    """Stream the answer into the current chat message and return it for the history."""
    said: list[str] = []
    final: dict[str, Any] = {}

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
    if "answer" in final:
        result = final["answer"]
        message = ChatMessage("assistant", result.text or text, tuple(source_views(result)))
        show_sources(message)
        return message
    if "llm_error" in final:
        error = str(final["llm_error"])
        st.warning(tr("llm_failed", error=error))
        try:
            hits = kb.search(question, settings.top_k, mode=settings.retrieval_mode)
        except RagqaError as search_error:
            st.error(tr("error", error=search_error))
            return ChatMessage("assistant", text, error=str(search_error))
        message = ChatMessage(
            "assistant", text, tuple(hit_views(hits)), passages_only=True, error=error
        )
        show_sources(message)
        return message
    error = str(final.get("error", "no answer"))
    st.error(tr("error", error=error))
    return ChatMessage("assistant", text, error=error)


def clear_chat(name: str) -> None:
    st.session_state.chats[name] = []


def chat(kb: KnowledgeBase, name: str, settings: Settings) -> None:
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
            messages.append(answer(kb, question, history, settings))
    elif not messages:
        welcome.info(tr("chat_ready", name=name) if documents else tr("chat_welcome"))
    # Drawn last, so that it is enabled as soon as the first question is in.
    button_slot.button(
        tr("chat_clear"), on_click=clear_chat, args=(name,), disabled=not messages, key="clear"
    )


# ---------------------------------------------------------------------- page


def main() -> None:
    st.set_page_config(page_title="ragqa", page_icon="📚", layout="wide")
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
        chat(kb, name, settings)
    except RagqaError as error:
        show_notice(error_notice(error))


main()
