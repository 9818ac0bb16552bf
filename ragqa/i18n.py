"""Every label the Streamlit page shows, in English, Simplified and Traditional Chinese.

The page never holds a literal string of its own: it asks :func:`t` for a key in the
current language, so the languages cannot drift apart and a test can check that
every key has all three.

Languages are BCP 47 tags: ``"en"``, ``"zh-Hans"`` (Simplified, for mainland China
and Singapore) and ``"zh-Hant"`` (Traditional, for Taiwan, Hong Kong and Macau).
The bare ``"zh"`` of earlier versions still works and means Traditional, which is
what its labels were written in.

Example:
    >>> t("chat_placeholder", "en")
    'Ask a question about your documents'
    >>> t("doc_line", "zh-Hans", pages=3, chunks=12), t("doc_line", "zh-Hant", pages=3, chunks=12)
    ('3 页，12 个片段', '3 頁，12 個片段')
    >>> language_from_locale("zh-CN"), language_from_locale("zh-TW"), language_from_locale("fr")
    ('zh-Hans', 'zh-Hant', 'en')
    >>> reply_language("Who built it?"), reply_language("谁建造的？"), reply_language("誰建造的？")
    ('en', 'zh-Hans', 'zh-Hant')
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_LANGUAGE",
    "LABELS",
    "LANGUAGES",
    "canonical_language",
    "language_from_locale",
    "reply_language",
    "t",
]

LANGUAGES: tuple[str, ...] = ("en", "zh-Hans", "zh-Hant")
DEFAULT_LANGUAGE = "en"

# Regions that write Traditional characters; every other Chinese locale gets Simplified.
_TRADITIONAL_REGIONS = {"tw", "hk", "mo"}
# Earlier names of the languages, still accepted wherever a language is given.
_ALIASES = {"zh": "zh-Hant", "zh-hans": "zh-Hans", "zh-hant": "zh-Hant", "en": "en"}

# Simplified uses mainland terms (文档, 文件, 设置), not converted Taiwanese ones;
# Traditional keeps Taiwan's (文件, 檔案, 設定).
LABELS: dict[str, dict[str, str]] = {
    # Page and language.
    "page_title": {"en": "Ask your documents", "zh-Hans": "向文档提问", "zh-Hant": "向文件提問"},
    # English in each, so a user can find the switch whichever is showing; the
    # options name themselves (English, 简体中文, 繁體中文).
    "language": {"en": "Language", "zh-Hans": "语言 / Language", "zh-Hant": "語言 / Language"},
    "loading_model": {
        "en": "Loading the embedding model…",
        "zh-Hans": "正在加载嵌入模型…",
        "zh-Hant": "正在載入嵌入模型…",
    },
    "language_name": {"en": "English", "zh-Hans": "简体中文", "zh-Hant": "繁體中文"},
    # Counts, singular|plural (Chinese has one form).
    "n_pages": {"en": "{n} page|{n} pages", "zh-Hans": "{n} 页", "zh-Hant": "{n} 頁"},
    "n_chunks": {"en": "{n} chunk|{n} chunks", "zh-Hans": "{n} 个片段", "zh-Hant": "{n} 個片段"},
    "n_docs": {
        "en": "{n} document|{n} documents",
        "zh-Hans": "{n} 份文档",
        "zh-Hant": "{n} 份文件",
    },
    # Knowledge bases.
    "kb_select": {"en": "Knowledge base", "zh-Hans": "知识库", "zh-Hant": "知識庫"},
    "kb_new": {"en": "New knowledge base", "zh-Hans": "新建知识库", "zh-Hant": "新增知識庫"},
    "kb_new_name": {"en": "Name", "zh-Hans": "名称", "zh-Hant": "名稱"},
    "kb_new_help": {
        "en": "Letters, digits, spaces, '-', '_' and '.'; at most {max_len} characters.",
        "zh-Hans": "可用文字、数字、空格、“-”、“_”和“.”，最多 {max_len} 个字符。",
        "zh-Hant": "可用文字、數字、空格、「-」、「_」與「.」，最多 {max_len} 個字元。",
    },
    "kb_create": {"en": "Create", "zh-Hans": "创建", "zh-Hant": "建立"},
    "kb_created": {
        "en": "Created knowledge base “{name}”.",
        "zh-Hans": "已创建知识库“{name}”。",
        "zh-Hant": "已建立知識庫「{name}」。",
    },
    "kb_caption": {
        "en": "Knowledge base “{name}”: {docs}, {chunks}. Answers by: {backend}.",
        "zh-Hans": "知识库“{name}”：{docs}，{chunks}。回答方式：{backend}。",
        "zh-Hant": "知識庫「{name}」：{docs}，{chunks}。回答方式：{backend}。",
    },
    "kb_name_empty": {"en": "Enter a name.", "zh-Hans": "请输入名称。", "zh-Hant": "請輸入名稱。"},
    "kb_name_too_long": {
        "en": "The name is too long: at most {max_len} characters.",
        "zh-Hans": "名称太长：最多 {max_len} 个字符。",
        "zh-Hant": "名稱太長：最多 {max_len} 個字元。",
    },
    "kb_name_bad_chars": {
        "en": "The name may only hold letters, digits, spaces, '-', '_' and '.', "
        "and may not start with '.' or a space.",
        "zh-Hans": "名称只能包含文字、数字、空格、“-”、“_”和“.”，且不能以“.”或空格开头。",
        "zh-Hant": "名稱只能包含文字、數字、空格、「-」、「_」與「.」，且不能以「.」或空格開頭。",
    },
    "kb_name_reserved": {
        "en": "“{name}” is a reserved name.",
        "zh-Hans": "“{name}”是保留名称。",
        "zh-Hant": "「{name}」是保留名稱。",
    },
    "kb_name_taken": {
        "en": "A knowledge base named “{name}” already exists.",
        "zh-Hans": "已经有名为“{name}”的知识库。",
        "zh-Hant": "已經有名為「{name}」的知識庫。",
    },
    "kb_not_found": {
        "en": "There is no knowledge base named “{name}”.",
        "zh-Hans": "找不到名为“{name}”的知识库。",
        "zh-Hant": "找不到名為「{name}」的知識庫。",
    },
    # Uploads.
    "upload_section": {"en": "Documents", "zh-Hans": "文档", "zh-Hant": "文件"},
    "upload_label": {
        "en": "Add PDF, TXT or MD files",
        "zh-Hans": "添加 PDF、TXT 或 MD 文件",
        "zh-Hant": "加入 PDF、TXT 或 MD 檔案",
    },
    "upload_help": {
        "en": "Up to {max_files} files at a time, {max_mb} MB each.",
        "zh-Hans": "一次最多 {max_files} 个文件，每个最多 {max_mb} MB。",
        "zh-Hant": "一次最多 {max_files} 個檔案，每個最多 {max_mb} MB。",
    },
    # Streamlit's uploader writes these in English; the page draws them over (ui/app.py).
    "upload_button": {"en": "Upload", "zh-Hans": "上传", "zh-Hant": "上傳"},
    "upload_limit": {
        "en": "{max_mb} MB per file • PDF, TXT, MD",
        "zh-Hans": "每个文件最多 {max_mb} MB • PDF、TXT、MD",
        "zh-Hant": "每個檔案最多 {max_mb} MB • PDF、TXT、MD",
    },
    "progress_waiting": {
        "en": "Waiting: {name}",
        "zh-Hans": "等待中：{name}",
        "zh-Hant": "等待中：{name}",
    },
    "progress_reading": {
        "en": "Reading {name}…",
        "zh-Hans": "正在读取 {name}…",
        "zh-Hant": "正在讀取 {name}…",
    },
    "progress_embedding": {
        "en": "Embedding {name}… {percent}%",
        "zh-Hans": "正在为 {name} 生成向量… {percent}%",
        "zh-Hant": "正在建立 {name} 的向量… {percent}%",
    },
    "progress_done": {"en": "{name}: done", "zh-Hans": "{name}：完成", "zh-Hant": "{name}：完成"},
    "result_added": {
        "en": "{name}: added {chunks} from {pages}.",
        "zh-Hans": "{name}：已添加 {pages}、{chunks}。",
        "zh-Hant": "{name}：已加入 {pages}、{chunks}。",
    },
    "result_replaced": {
        "en": "{name}: replaced the earlier version ({chunks} from {pages}).",
        "zh-Hans": "{name}：已替换旧版本（{pages}、{chunks}）。",
        "zh-Hant": "{name}：已取代舊版本（{pages}、{chunks}）。",
    },
    "result_unchanged": {
        "en": "{name}: already in the knowledge base, unchanged.",
        "zh-Hans": "{name}：已在知识库中，内容未变。",
        "zh-Hant": "{name}：已在知識庫中，內容未變。",
    },
    "result_duplicate": {
        "en": "{name}: the same content is already in the knowledge base as {existing}.",
        "zh-Hans": "{name}：相同内容已作为 {existing} 存在于知识库中。",
        "zh-Hant": "{name}：相同內容已以 {existing} 存在於知識庫中。",
    },
    "result_encrypted": {
        "en": "{name} is password-protected. Enter its password to add it.",
        "zh-Hans": "{name} 有密码保护，请输入密码以添加。",
        "zh-Hant": "{name} 有密碼保護，請輸入密碼以加入。",
    },
    "result_wrong_password": {
        "en": "{name}: that password did not open the file. Try again.",
        "zh-Hans": "{name}：这个密码无法打开文件，请再试一次。",
        "zh-Hant": "{name}：密碼無法開啟這個檔案，請再試一次。",
    },
    "result_no_text": {
        "en": "{name} has no text layer (it is probably a scan or images only), so there "
        "is nothing to search. Run OCR on it first, then upload the result.",
        "zh-Hans": "{name} 没有文字层（可能是扫描件或只有图片），因此没有可搜索的内容。"
        "请先进行 OCR 识别，再上传结果。",
        "zh-Hant": "{name} 沒有文字層（可能是掃描檔或只有圖片），因此沒有可搜尋的內容。"
        "請先以 OCR 轉換，再上傳結果。",
    },
    # What the embedding model cannot read, and what to do about it.
    "result_unreadable": {
        "en": "{name}: the embedding model ({model}) cannot read {percent}% of this "
        "document's text (it becomes [UNK]), so questions about it are matched mostly by "
        "keywords. Keep the retrieval mode on Hybrid or Lexical (Settings), or have the "
        "knowledge base rebuilt with the multilingual model: "
        "ragqa reindex --kb <folder> --embedding-model multilingual-e5-small.",
        "zh-Hans": "{name}：嵌入模型（{model}）无法识别这份文档 {percent}% 的文字"
        "（会变成 [UNK]），有关它的问题主要靠关键字匹配。请在“设置”中把检索模式保持为"
        "“混合”或“关键字”，或用多语言模型重建这个知识库："
        "ragqa reindex --kb <文件夹> --embedding-model multilingual-e5-small。",
        "zh-Hant": "{name}：嵌入模型（{model}）無法辨識這份文件 {percent}% 的文字"
        "（會變成 [UNK]），有關它的問題主要靠關鍵字比對。請在「設定」中將檢索模式保持為"
        "「混合」或「關鍵字」，或以多語言模型重建這個知識庫："
        "ragqa reindex --kb <資料夾> --embedding-model multilingual-e5-small。",
    },
    "result_too_large": {
        "en": "{name} is too large: {size_mb} MB, the limit is {max_mb} MB.",
        "zh-Hans": "{name} 太大：{size_mb} MB，上限为 {max_mb} MB。",
        "zh-Hant": "{name} 太大：{size_mb} MB，上限為 {max_mb} MB。",
    },
    "result_too_many": {
        "en": "{name} was not added: at most {max_files} files per upload.",
        "zh-Hans": "{name} 未添加：每次最多上传 {max_files} 个文件。",
        "zh-Hant": "{name} 未加入：每次最多上傳 {max_files} 個檔案。",
    },
    "result_unsupported": {
        "en": "{name}: only PDF, TXT and MD files can be added.",
        "zh-Hans": "{name}：只能添加 PDF、TXT 和 MD 文件。",
        "zh-Hant": "{name}：只能加入 PDF、TXT 與 MD 檔案。",
    },
    "result_not_pdf": {
        "en": "{name} is named .pdf but is not a PDF file.",
        "zh-Hans": "{name} 的扩展名是 .pdf，但内容不是 PDF。",
        "zh-Hant": "{name} 的副檔名是 .pdf，但內容不是 PDF。",
    },
    "result_not_text": {
        "en": "{name} is not a text file (its content could not be decoded as text).",
        "zh-Hans": "{name} 不是文本文件（内容无法解码为文字）。",
        "zh-Hant": "{name} 不是文字檔（內容無法解碼為文字）。",
    },
    "result_empty": {
        "en": "{name} is empty.",
        "zh-Hans": "{name} 是空文件。",
        "zh-Hant": "{name} 是空檔案。",
    },
    "result_failed": {
        "en": "{name} could not be added: {error}",
        "zh-Hans": "{name} 无法添加：{error}",
        "zh-Hant": "{name} 無法加入：{error}",
    },
    "password_label": {
        "en": "Password for {name}",
        "zh-Hans": "{name} 的密码",
        "zh-Hant": "{name} 的密碼",
    },
    "password_submit": {"en": "Unlock", "zh-Hans": "解锁", "zh-Hant": "解鎖"},
    "password_skip": {"en": "Skip", "zh-Hans": "跳过", "zh-Hant": "略過"},
    "results_dismiss": {"en": "Dismiss messages", "zh-Hans": "清除消息", "zh-Hant": "清除訊息"},
    "docs_header": {
        "en": "In this knowledge base ({count})",
        "zh-Hans": "此知识库中的文档（{count}）",
        "zh-Hant": "此知識庫中的文件（{count}）",
    },
    "docs_empty": {
        "en": "No documents yet. Add some above.",
        "zh-Hans": "还没有文档，请在上方添加。",
        "zh-Hant": "尚無文件，請在上方加入。",
    },
    "doc_line": {
        "en": "{pages}, {chunks}",
        "zh-Hans": "{pages}，{chunks}",
        "zh-Hant": "{pages}，{chunks}",
    },
    "doc_remove": {"en": "Remove", "zh-Hans": "移除", "zh-Hant": "移除"},
    "doc_remove_confirm": {
        "en": "Remove {name} from this knowledge base? Its passages can no longer be found "
        "or cited; to have them back, upload the file again.",
        "zh-Hans": "要从这个知识库移除 {name} 吗？移除后将无法再检索或引用它的内容；"
        "如需恢复，请重新上传该文件。",
        "zh-Hant": "要從這個知識庫移除 {name} 嗎？移除後將無法再檢索或引用它的內容；"
        "如需復原，請重新上傳該檔案。",
    },
    "doc_remove_yes": {"en": "Yes, remove", "zh-Hans": "确认移除", "zh-Hant": "確認移除"},
    "doc_remove_cancel": {"en": "Cancel", "zh-Hans": "取消", "zh-Hant": "取消"},
    "doc_removed": {
        "en": "Removed {name}.",
        "zh-Hans": "已移除 {name}。",
        "zh-Hant": "已移除 {name}。",
    },
    # Chat.
    "chat_placeholder": {
        "en": "Ask a question about your documents",
        "zh-Hans": "针对文档提出问题",
        "zh-Hant": "針對文件提出問題",
    },
    "chat_clear": {"en": "Clear chat", "zh-Hans": "清除对话", "zh-Hant": "清除對話"},
    "chat_welcome": {
        "en": "Add documents in the sidebar, then ask a question about them.",
        "zh-Hans": "请先在侧边栏添加文档，再针对内容提问。",
        "zh-Hant": "請先在側邊欄加入文件，再針對內容提問。",
    },
    "chat_ready": {
        "en": "Ask a question about the documents in “{name}”.",
        "zh-Hans": "请针对“{name}”中的文档提问。",
        "zh-Hant": "請針對「{name}」中的文件提問。",
    },
    "sources": {
        "en": "Sources ({count})",
        "zh-Hans": "来源（{count}）",
        "zh-Hant": "來源（{count}）",
    },
    "source_line": {
        "en": "[{number}] {name}, page {page}",
        "zh-Hans": "[{number}] {name}，第 {page} 页",
        "zh-Hant": "[{number}] {name}，第 {page} 頁",
    },
    "source_page_image": {
        "en": "Page {page} of {name}, the cited passage boxed",
        "zh-Hans": "{name} 第 {page} 页，框出的是引用的段落",
        "zh-Hant": "{name} 第 {page} 頁，框出的是引用的段落",
    },
    "passages": {
        "en": "Retrieved passages ({count})",
        "zh-Hans": "检索到的段落（{count}）",
        "zh-Hant": "檢索到的段落（{count}）",
    },
    "passage_line": {
        "en": "{name}, page {page}",
        "zh-Hans": "{name}，第 {page} 页",
        "zh-Hant": "{name}，第 {page} 頁",
    },
    "no_passages": {
        "en": "Nothing relevant was found in this knowledge base.",
        "zh-Hans": "在这个知识库中没有找到相关内容。",
        "zh-Hant": "在此知識庫中找不到相關內容。",
    },
    "llm_failed": {
        "en": "The language model could not answer ({error}). "
        "Here are the most relevant passages instead.",
        "zh-Hans": "语言模型无法回答（{error}）。以下是最相关的段落。",
        "zh-Hant": "語言模型無法回答（{error}）。以下是最相關的段落。",
    },
    "error": {"en": "Error: {error}", "zh-Hans": "错误：{error}", "zh-Hant": "錯誤：{error}"},
    # Settings.
    "settings": {"en": "Settings", "zh-Hans": "设置", "zh-Hant": "設定"},
    "llm_backend": {"en": "Answer with", "zh-Hans": "回答方式", "zh-Hant": "回答方式"},
    "backend_extractive": {
        "en": "Built-in extractive (no LLM)",
        "zh-Hans": "内置抽取式（不使用 LLM）",
        "zh-Hant": "內建擷取式（不使用 LLM）",
    },
    "backend_openai": {
        "en": "OpenAI-compatible API",
        "zh-Hans": "OpenAI 兼容 API",
        "zh-Hant": "OpenAI 相容 API",
    },
    "backend_ollama": {"en": "Ollama", "zh-Hans": "Ollama", "zh-Hant": "Ollama"},
    "backend_llamacpp": {
        "en": "Local GGUF model (llama.cpp)",
        "zh-Hans": "本地 GGUF 模型（llama.cpp）",
        "zh-Hant": "本機 GGUF 模型（llama.cpp）",
    },
    "backend_fake": {
        "en": "Fake (for tests)",
        "zh-Hans": "测试用假模型",
        "zh-Hant": "測試用假模型",
    },
    "llm_model": {"en": "Model", "zh-Hans": "模型", "zh-Hant": "模型"},
    "llm_gguf_path": {
        "en": "GGUF file path",
        "zh-Hans": "GGUF 文件路径",
        "zh-Hant": "GGUF 檔案路徑",
    },
    "llm_base_url": {"en": "Base URL", "zh-Hans": "服务地址", "zh-Hant": "服務網址"},
    "llm_api_key": {"en": "API key", "zh-Hans": "API 密钥", "zh-Hant": "API 金鑰"},
    "llm_api_key_help": {
        "en": "Kept in memory for this session only; never saved or shown.",
        "zh-Hans": "只在本次会话的内存中使用，不会保存或显示。",
        "zh-Hant": "只在本次工作階段的記憶體中使用，不會儲存或顯示。",
    },
    "llm_api_key_from_env": {
        "en": "(set in the environment)",
        "zh-Hans": "（已由环境变量设置）",
        "zh-Hant": "（已由環境變數設定）",
    },
    "retrieval": {"en": "Retrieval", "zh-Hans": "检索", "zh-Hant": "檢索"},
    "top_k": {
        "en": "Passages per question (top-k)",
        "zh-Hans": "每个问题检索的段落数（top-k）",
        "zh-Hant": "每題檢索段落數（top-k）",
    },
    "retrieval_mode": {"en": "Retrieval mode", "zh-Hans": "检索模式", "zh-Hant": "檢索模式"},
    "mode_dense": {
        "en": "Dense (embeddings)",
        "zh-Hans": "语义（向量）",
        "zh-Hant": "語意（向量）",
    },
    "mode_lexical": {"en": "Lexical (keywords)", "zh-Hans": "关键字", "zh-Hant": "關鍵字"},
    "mode_hybrid": {"en": "Hybrid", "zh-Hans": "混合", "zh-Hant": "混合"},
    "chunking": {
        "en": "Chunking (new uploads)",
        "zh-Hans": "切分（用于新上传的文件）",
        "zh-Hant": "切分（套用於新上傳）",
    },
    "chunk_size": {
        "en": "Chunk size (characters)",
        "zh-Hans": "片段长度（字符）",
        "zh-Hant": "片段長度（字元）",
    },
    "chunk_overlap": {
        "en": "Chunk overlap (characters)",
        "zh-Hans": "片段重叠（字符）",
        "zh-Hant": "片段重疊（字元）",
    },
    "settings_invalid": {
        "en": "Invalid setting: {error}",
        "zh-Hans": "设置无效：{error}",
        "zh-Hant": "設定無效：{error}",
    },
}


def canonical_language(lang: str | None) -> str:
    """``lang`` as one of :data:`LANGUAGES`; the old ``"zh"`` is Traditional, and
    anything unknown is English.

    Example:
        >>> canonical_language("zh-hans"), canonical_language("zh"), canonical_language("fr")
        ('zh-Hans', 'zh-Hant', 'en')
    """
    return _ALIASES.get((lang or "").lower(), DEFAULT_LANGUAGE)


def t(key: str, lang: str, **values: object) -> str:
    """The label ``key`` in ``lang``, with ``{placeholders}`` filled from ``values``.

    An unknown language falls back to English, so a bad value in the session can
    never break the page. A count (an ``int`` for a placeholder such as ``pages``
    that has an ``n_pages`` label) is written with that label, which may hold a
    singular and a plural form separated by ``|``: "1 page", "2 pages".

    Raises:
        KeyError: ``key`` is not in :data:`LABELS` (a programming error, not a user's).
    """
    lang = canonical_language(lang)
    text = LABELS[key][lang]
    if not values:
        return text
    for name, value in values.items():
        if isinstance(value, int) and not isinstance(value, bool) and f"n_{name}" in LABELS:
            values[name] = _count(f"n_{name}", lang, value)
    return text.format(**values)


def _count(key: str, lang: str, n: int) -> str:
    forms = LABELS[key][lang].split("|")
    return (forms[0] if n == 1 else forms[-1]).format(n=n)


def language_from_locale(locale: str | None) -> str:
    """The UI language for a browser locale such as ``"zh-CN"``, ``"zh-TW"`` or ``"en-US"``.

    Chinese with a Traditional script (``zh-Hant``) or region (``TW``, ``HK``, ``MO``)
    is Traditional; every other Chinese locale (``zh-CN``, ``zh-SG``, ``zh-Hans``,
    bare ``zh``) is Simplified, which most Chinese readers use. Accepts an
    ``Accept-Language`` header too (``"zh-CN,zh;q=0.9,en;q=0.8"``): its first entry
    is the browser's preferred language.

    Example:
        >>> language_from_locale("zh_Hant_HK"), language_from_locale("zh-SG")
        ('zh-Hant', 'zh-Hans')
    """
    if not locale:
        return DEFAULT_LANGUAGE
    first = locale.split(",")[0].split(";")[0].strip().lower().replace("_", "-")
    primary, *subtags = first.split("-")
    if primary != "zh":
        return DEFAULT_LANGUAGE
    if "hant" in subtags:
        return "zh-Hant"
    if "hans" in subtags:
        return "zh-Hans"
    return "zh-Hant" if _TRADITIONAL_REGIONS & set(subtags) else "zh-Hans"


def reply_language(text: str) -> str:
    """The language and script to reply to ``text`` in: ``"en"``, ``"zh-Hans"`` or ``"zh-Hant"``.

    The page's fixed replies in the chat (nothing found, the model failed) follow
    the question, as the answerer's own "no answer" sentence does
    (:func:`ragqa.prompting.no_answer_text`): both go by the same tests, so the two
    never disagree on the script.
    """
    from ragqa.lang import detect_language
    from ragqa.prompting import chinese_script

    if detect_language(text) == "en":
        return "en"
    return "zh-Hans" if chinese_script(text) == "zh-hans" else "zh-Hant"
