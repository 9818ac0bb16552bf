"""Every label the Streamlit page shows, in English and Chinese, in one table.

The page never holds a literal string of its own: it asks :func:`t` for a key in the
current language, so the two languages cannot drift apart and a test can check that
every key has both.

Example:
    >>> t("chat_placeholder", "en")
    'Ask a question about your documents'
    >>> t("doc_line", "zh", pages=3, chunks=12)
    '3 頁，12 個片段'
    >>> language_from_locale("zh-TW"), language_from_locale("fr-FR"), language_from_locale(None)
    ('zh', 'en', 'en')
"""

from __future__ import annotations

__all__ = ["DEFAULT_LANGUAGE", "LABELS", "LANGUAGES", "language_from_locale", "t"]

LANGUAGES: tuple[str, ...] = ("en", "zh")
DEFAULT_LANGUAGE = "en"

# Chinese labels use Traditional characters, like the bundled samples and the
# project's Chinese evaluation set (DRCD).
LABELS: dict[str, dict[str, str]] = {
    # Page and language.
    "page_title": {"en": "Ask your documents", "zh": "向文件提問"},
    # Both languages in both, so a user can find the switch whichever is showing.
    "language": {"en": "Language / 語言", "zh": "語言 / Language"},
    "loading_model": {"en": "Loading the embedding model…", "zh": "正在載入嵌入模型…"},
    "language_name": {"en": "English", "zh": "中文"},
    # Counts, singular|plural (Chinese has one form).
    "n_pages": {"en": "{n} page|{n} pages", "zh": "{n} 頁"},
    "n_chunks": {"en": "{n} chunk|{n} chunks", "zh": "{n} 個片段"},
    "n_docs": {"en": "{n} document|{n} documents", "zh": "{n} 份文件"},
    # Knowledge bases.
    "kb_section": {"en": "Knowledge base", "zh": "知識庫"},
    "kb_select": {"en": "Knowledge base", "zh": "選擇知識庫"},
    "kb_new": {"en": "New knowledge base", "zh": "新增知識庫"},
    "kb_new_name": {"en": "Name", "zh": "名稱"},
    "kb_new_help": {
        "en": "Letters, digits, spaces, '-', '_' and '.'; at most {max_len} characters.",
        "zh": "可用文字、數字、空格、「-」、「_」與「.」，最多 {max_len} 個字元。",
    },
    "kb_create": {"en": "Create", "zh": "建立"},
    "kb_created": {"en": "Created knowledge base “{name}”.", "zh": "已建立知識庫「{name}」。"},
    "kb_caption": {
        "en": "Knowledge base “{name}”: {docs}, {chunks}. Answers by: {backend}.",
        "zh": "知識庫「{name}」：{docs}，{chunks}。回答方式：{backend}。",
    },
    "kb_name_empty": {"en": "Enter a name.", "zh": "請輸入名稱。"},
    "kb_name_too_long": {
        "en": "The name is too long: at most {max_len} characters.",
        "zh": "名稱太長：最多 {max_len} 個字元。",
    },
    "kb_name_bad_chars": {
        "en": "The name may only hold letters, digits, spaces, '-', '_' and '.', "
        "and may not start with '.' or a space.",
        "zh": "名稱只能包含文字、數字、空格、「-」、「_」與「.」，且不能以「.」或空格開頭。",
    },
    "kb_name_reserved": {"en": "“{name}” is a reserved name.", "zh": "「{name}」是保留名稱。"},
    "kb_name_taken": {
        "en": "A knowledge base named “{name}” already exists.",
        "zh": "已經有名為「{name}」的知識庫。",
    },
    "kb_not_found": {
        "en": "There is no knowledge base named “{name}”.",
        "zh": "找不到名為「{name}」的知識庫。",
    },
    # Uploads.
    "upload_section": {"en": "Documents", "zh": "文件"},
    "upload_label": {"en": "Add PDF, TXT or MD files", "zh": "加入 PDF、TXT 或 MD 檔案"},
    "upload_help": {
        "en": "Up to {max_files} files at a time, {max_mb} MB each.",
        "zh": "一次最多 {max_files} 個檔案，每個最多 {max_mb} MB。",
    },
    "progress_waiting": {"en": "Waiting: {name}", "zh": "等待中：{name}"},
    "progress_reading": {"en": "Reading {name}…", "zh": "正在讀取 {name}…"},
    "progress_embedding": {
        "en": "Embedding {name}… {percent}%",
        "zh": "正在建立 {name} 的向量… {percent}%",
    },
    "progress_done": {"en": "{name}: done", "zh": "{name}：完成"},
    "result_added": {
        "en": "{name}: added {chunks} from {pages}.",
        "zh": "{name}：已加入 {pages}、{chunks}。",
    },
    "result_replaced": {
        "en": "{name}: replaced the earlier version ({chunks} from {pages}).",
        "zh": "{name}：已取代舊版本（{pages}、{chunks}）。",
    },
    "result_unchanged": {
        "en": "{name}: already in the knowledge base, unchanged.",
        "zh": "{name}：已在知識庫中，內容未變。",
    },
    "result_duplicate": {
        "en": "{name}: the same content is already in the knowledge base as {existing}.",
        "zh": "{name}：相同內容已以 {existing} 存在於知識庫中。",
    },
    "result_encrypted": {
        "en": "{name} is password-protected. Enter its password to add it.",
        "zh": "{name} 有密碼保護，請輸入密碼以加入。",
    },
    "result_wrong_password": {
        "en": "{name}: that password did not open the file. Try again.",
        "zh": "{name}：密碼無法開啟這個檔案，請再試一次。",
    },
    "result_no_text": {
        "en": "{name} has no text layer (it is probably a scan or images only), so there "
        "is nothing to search. Run OCR on it first, then upload the result.",
        "zh": "{name} 沒有文字層（可能是掃描檔或只有圖片），因此沒有可搜尋的內容。"
        "請先以 OCR 轉換，再上傳結果。",
    },
    "result_too_large": {
        "en": "{name} is too large: {size_mb} MB, the limit is {max_mb} MB.",
        "zh": "{name} 太大：{size_mb} MB，上限為 {max_mb} MB。",
    },
    "result_too_many": {
        "en": "{name} was not added: at most {max_files} files per upload.",
        "zh": "{name} 未加入：每次最多上傳 {max_files} 個檔案。",
    },
    "result_unsupported": {
        "en": "{name}: only PDF, TXT and MD files can be added.",
        "zh": "{name}：只能加入 PDF、TXT 與 MD 檔案。",
    },
    "result_not_pdf": {
        "en": "{name} is named .pdf but is not a PDF file.",
        "zh": "{name} 的副檔名是 .pdf，但內容不是 PDF。",
    },
    "result_not_text": {
        "en": "{name} is not a text file (its content could not be decoded as text).",
        "zh": "{name} 不是文字檔（內容無法解碼為文字）。",
    },
    "result_empty": {"en": "{name} is empty.", "zh": "{name} 是空檔案。"},
    "result_failed": {"en": "{name} could not be added: {error}", "zh": "{name} 無法加入：{error}"},
    "password_label": {"en": "Password for {name}", "zh": "{name} 的密碼"},
    "password_submit": {"en": "Unlock and add", "zh": "解鎖並加入"},
    "password_skip": {"en": "Skip", "zh": "略過"},
    "results_dismiss": {"en": "Dismiss messages", "zh": "清除訊息"},
    "docs_header": {"en": "In this knowledge base ({count})", "zh": "此知識庫中的文件（{count}）"},
    "docs_empty": {
        "en": "No documents yet. Add some above.",
        "zh": "尚無文件，請在上方加入。",
    },
    "doc_line": {"en": "{pages}, {chunks}", "zh": "{pages}，{chunks}"},
    "doc_remove": {"en": "Remove", "zh": "移除"},
    "doc_removed": {"en": "Removed {name}.", "zh": "已移除 {name}。"},
    # Chat.
    "chat_placeholder": {
        "en": "Ask a question about your documents",
        "zh": "針對文件提出問題",
    },
    "chat_clear": {"en": "Clear chat", "zh": "清除對話"},
    "chat_welcome": {
        "en": "Add documents in the sidebar, then ask a question about them.",
        "zh": "請先在側邊欄加入文件，再針對內容提問。",
    },
    "chat_ready": {
        "en": "Ask a question about the documents in “{name}”.",
        "zh": "請針對「{name}」中的文件提問。",
    },
    "sources": {"en": "Sources ({count})", "zh": "來源（{count}）"},
    "source_line": {
        "en": "[{number}] {name}, page {page}",
        "zh": "[{number}] {name}，第 {page} 頁",
    },
    "passages": {"en": "Retrieved passages ({count})", "zh": "檢索到的段落（{count}）"},
    "passage_line": {"en": "{name}, page {page}", "zh": "{name}，第 {page} 頁"},
    "no_passages": {
        "en": "Nothing relevant was found in this knowledge base.",
        "zh": "在此知識庫中找不到相關內容。",
    },
    "llm_failed": {
        "en": "The language model could not answer ({error}). "
        "Here are the most relevant passages instead.",
        "zh": "語言模型無法回答（{error}）。以下是最相關的段落。",
    },
    "error": {"en": "Error: {error}", "zh": "錯誤：{error}"},
    # Settings.
    "settings": {"en": "Settings", "zh": "設定"},
    "llm_backend": {"en": "Answer with", "zh": "回答方式"},
    "backend_extractive": {
        "en": "Built-in extractive (no LLM)",
        "zh": "內建擷取式（不使用 LLM）",
    },
    "backend_openai": {"en": "OpenAI-compatible API", "zh": "OpenAI 相容 API"},
    "backend_ollama": {"en": "Ollama", "zh": "Ollama"},
    "backend_llamacpp": {"en": "Local GGUF model (llama.cpp)", "zh": "本機 GGUF 模型（llama.cpp）"},
    "backend_fake": {"en": "Fake (for tests)", "zh": "測試用假模型"},
    "llm_model": {"en": "Model", "zh": "模型"},
    "llm_gguf_path": {"en": "GGUF file path", "zh": "GGUF 檔案路徑"},
    "llm_base_url": {"en": "Base URL", "zh": "服務網址"},
    "llm_api_key": {"en": "API key", "zh": "API 金鑰"},
    "llm_api_key_help": {
        "en": "Kept in memory for this session only; never saved or shown.",
        "zh": "只在本次工作階段的記憶體中使用，不會儲存或顯示。",
    },
    "llm_api_key_from_env": {
        "en": "(set in the environment)",
        "zh": "（已由環境變數設定）",
    },
    "retrieval": {"en": "Retrieval", "zh": "檢索"},
    "top_k": {"en": "Passages per question (top-k)", "zh": "每題檢索段落數（top-k）"},
    "retrieval_mode": {"en": "Retrieval mode", "zh": "檢索模式"},
    "mode_dense": {"en": "Dense (embeddings)", "zh": "語意（向量）"},
    "mode_lexical": {"en": "Lexical (keywords)", "zh": "關鍵字"},
    "mode_hybrid": {"en": "Hybrid", "zh": "混合"},
    "chunking": {"en": "Chunking (new uploads)", "zh": "切分（套用於新上傳）"},
    "chunk_size": {"en": "Chunk size (characters)", "zh": "片段長度（字元）"},
    "chunk_overlap": {"en": "Chunk overlap (characters)", "zh": "片段重疊（字元）"},
    "settings_invalid": {"en": "Invalid setting: {error}", "zh": "設定無效：{error}"},
}


def t(key: str, lang: str, **values: object) -> str:
    """The label ``key`` in ``lang``, with ``{placeholders}`` filled from ``values``.

    An unknown language falls back to English, so a bad value in the session can
    never break the page. A count (an ``int`` for a placeholder such as ``pages``
    that has an ``n_pages`` label) is written with that label, which may hold a
    singular and a plural form separated by ``|``: "1 page", "2 pages".

    Raises:
        KeyError: ``key`` is not in :data:`LABELS` (a programming error, not a user's).
    """
    entry = LABELS[key]
    text = entry.get(lang) or entry[DEFAULT_LANGUAGE]
    if not values:
        return text
    for name, value in values.items():
        if isinstance(value, int) and not isinstance(value, bool) and f"n_{name}" in LABELS:
            values[name] = _count(f"n_{name}", lang, value)
    return text.format(**values)


def _count(key: str, lang: str, n: int) -> str:
    entry = LABELS[key]
    forms = (entry.get(lang) or entry[DEFAULT_LANGUAGE]).split("|")
    return (forms[0] if n == 1 else forms[-1]).format(n=n)


def language_from_locale(locale: str | None) -> str:
    """The UI language for a browser locale such as ``"zh-TW"`` or ``"en-US"``.

    Accepts an ``Accept-Language`` header too (``"zh-CN,zh;q=0.9,en;q=0.8"``): its
    first entry is the browser's preferred language.
    """
    if not locale:
        return DEFAULT_LANGUAGE
    first = locale.split(",")[0].split(";")[0].strip().lower().replace("_", "-")
    primary = first.split("-")[0]
    return primary if primary in LANGUAGES else DEFAULT_LANGUAGE
