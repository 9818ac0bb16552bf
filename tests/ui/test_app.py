"""The Streamlit page's logic, through Streamlit's AppTest (no browser, hashing embedder)."""

from __future__ import annotations

import functools
import html
import re
import socket
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from ragqa import KnowledgeBase
from ragqa.conversation import Turn

REPO = Path(__file__).resolve().parents[2]
APP = REPO / "ui" / "app.py"

FACT = "The lighthouse on Quillon Island was built in 1887 by Mara Velez."
QUESTION = "Who built the lighthouse on Quillon Island?"


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The page's environment: the tiny hashing embedder and a data folder in tmp_path."""
    monkeypatch.setenv("RAGQA_EMBEDDING_MODEL", "hashing:64")
    monkeypatch.setenv("RAGQA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RAGQA_CHUNK_SIZE", "200")
    monkeypatch.setenv("RAGQA_CHUNK_OVERLAP", "40")
    return tmp_path / "data"


def start() -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    assert_clean(at)
    return at


def assert_clean(at: AppTest) -> None:
    """No exception escaped to the page (a traceback is never what a user should see)."""
    assert not at.exception, [e.value for e in at.exception]


def make_pdf(pages: list[str], *, password: str | None = None, text: bool = True) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    for page in pages:
        pdf.add_page()
        if text:
            pdf.multi_cell(0, 8, page)
        else:
            pdf.rect(20, 20, 100, 60, style="F")
    if password is not None:
        from fpdf.enums import EncryptionMethod

        pdf.set_encryption(
            owner_password="owner-" + password,
            user_password=password,
            encryption_method=EncryptionMethod.AES_128,
        )
    return bytes(pdf.output())


@functools.cache
def facts_pdf() -> bytes:
    """One PDF, made once: fpdf2 stamps the time, and a duplicate must be byte-identical."""
    return make_pdf(["An opening page about nothing much.", FACT])


def upload(at: AppTest, *files: tuple[str, bytes]) -> AppTest:
    mime = {".pdf": "application/pdf", ".md": "text/markdown", ".txt": "text/plain"}
    at.file_uploader[0].set_value(
        [(n, d, mime.get(Path(n).suffix, "text/plain")) for n, d in files]
    )
    at.run()
    assert_clean(at)
    return at


def texts(elements) -> list[str]:
    return [str(e.value) for e in elements]


def sidebar_messages(at: AppTest) -> str:
    side = at.sidebar
    return "\n".join(
        texts(side.success) + texts(side.info) + texts(side.warning) + texts(side.error)
    )


def ask(at: AppTest, question: str) -> AppTest:
    at.chat_input[0].set_value(question).run()
    assert_clean(at)
    return at


def unescape(markdown: str) -> str:
    return re.sub(r"\\(.)", r"\1", markdown)


def listed_names(at: AppTest) -> list[str]:
    """The file names in the sidebar's document list, as the browser shows them."""
    names = []
    for element in at.sidebar.markdown:
        found = re.fullmatch(r'<span class="ragqa-file">(.*)</span>', str(element.value))
        if found:
            names.append(html.unescape(found.group(1).replace("<wbr>", "")))
    return names


@pytest.fixture
def with_doc(data_dir: Path) -> AppTest:
    at = start()
    upload(at, ("facts.pdf", facts_pdf()))
    assert "facts.pdf: added" in unescape(sidebar_messages(at))
    return at


# ----------------------------------------------------------------- start-up


def test_first_start_creates_the_default_kb(data_dir):
    at = start()
    assert (data_dir / "default" / "manifest.json").exists()
    assert at.sidebar.selectbox(key="kb_name").options == ["default"]
    assert at.title[0].value == "Ask your documents"
    assert "0 documents" in at.caption[0].value
    assert at.info[0].value.startswith("Add documents")  # the welcome
    assert not at.error


def test_a_bad_setting_in_the_environment_is_a_message_not_a_traceback(data_dir, monkeypatch):
    monkeypatch.setenv("RAGQA_TOP_K", "0")
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    assert_clean(at)
    assert "top\\_k must be at least 1" in at.error[0].value


def test_create_a_knowledge_base_from_the_sidebar(data_dir):
    at = start()
    at.text_input(key="new_kb_name").set_value("../evil")
    at.sidebar.button[0].click().run()  # the form's Create button
    assert_clean(at)
    assert "may only hold letters" in sidebar_messages(at)
    assert not (data_dir.parent / "evil").exists()

    at.text_input(key="new_kb_name").set_value("論文")
    at.sidebar.button[0].click().run()
    assert_clean(at)
    assert at.sidebar.selectbox(key="kb_name").options == ["default", "論文"]
    assert at.sidebar.selectbox(key="kb_name").value == "論文"
    assert (data_dir / "論文" / "manifest.json").exists()


# ------------------------------------------------------------------ uploads


def test_uploads_are_ingested_listed_and_not_ingested_again(data_dir, monkeypatch):
    calls = []
    real_add = KnowledgeBase.add

    def counting_add(self, paths, **kwargs):
        calls.append(paths)
        return real_add(self, paths, **kwargs)

    monkeypatch.setattr(KnowledgeBase, "add", counting_add)
    at = start()
    upload(
        at,
        ("facts.pdf", make_pdf(["Page one.", FACT])),
        ("notes.md", b"# Notes\n\nTea came from China."),
    )
    messages = unescape(sidebar_messages(at))
    assert "facts.pdf: added" in messages and "chunks from 2 pages" in messages
    assert "notes.md: added 1 chunk from 1 page" in messages
    assert listed_names(at) == ["facts.pdf", "notes.md"]
    assert "2 pages, " in unescape("\n".join(texts(at.sidebar.caption)))
    uploads = data_dir / "default" / "uploads"
    assert sorted(p.name for p in uploads.iterdir()) == ["facts.pdf", "notes.md"]
    assert len(calls) == 2

    before = sidebar_messages(at)
    at.run()  # a rerun with the same files still in the uploader
    at.run()
    assert_clean(at)
    assert len(calls) == 2
    assert sidebar_messages(at) == before  # not even looked at again (no "duplicate")
    assert "2 documents," in unescape(at.caption[0].value)


def test_each_upload_shows_a_progress_bar_then_its_result(data_dir, monkeypatch):
    from streamlit.delta_generator import DeltaGenerator

    drawn = []
    real_progress = DeltaGenerator.progress

    def recording_progress(self, value, text=None, **kwargs):
        drawn.append((value, unescape(text or "")))
        return real_progress(self, value, text=text, **kwargs)

    monkeypatch.setattr(DeltaGenerator, "progress", recording_progress)
    at = start()
    upload(at, ("a.md", b"# A\n\nAlpha text."), ("b.txt", b"Beta text."))
    for name in ("a.md", "b.txt"):
        mine = [(value, text) for value, text in drawn if name in text]
        assert mine[0] == (0.0, f"Waiting: {name}")
        assert f"Reading {name}…" in [text for _, text in mine]
        assert any(text.startswith(f"Embedding {name}…") for _, text in mine)
        assert mine[-1] == (1.0, f"{name}: done")
        values = [value for value, _ in mine[1:]]
        assert values == sorted(values)  # a bar only moves forward
    assert "a.md: added 1 chunk from 1 page" in unescape(sidebar_messages(at))


def test_a_duplicate_and_a_mislabelled_upload_are_reported(with_doc):
    at = upload(
        with_doc,
        ("copy.pdf", facts_pdf()),
        ("fake.pdf", b"this is not a pdf at all"),
    )
    messages = unescape(sidebar_messages(at))
    assert "copy.pdf: the same content is already in the knowledge base as facts.pdf" in messages
    assert "fake.pdf is named .pdf but is not a PDF file" in messages
    assert "1 document," in unescape(at.caption[0].value)


def test_an_encrypted_pdf_asks_for_its_password(data_dir):
    at = start()
    upload(at, ("locked.pdf", make_pdf([FACT], password="s3cret")))
    assert "locked.pdf is password-protected" in unescape(sidebar_messages(at))
    password = at.sidebar.text_input[-1]
    assert password.proto.type == password.proto.PASSWORD
    assert "0 documents" in at.caption[0].value

    password.set_value("wrong")
    next(b for b in at.sidebar.button if b.label == "Unlock").click().run()
    assert_clean(at)
    assert "that password did not open the file" in sidebar_messages(at)

    at.sidebar.text_input[-1].set_value("s3cret")
    next(b for b in at.sidebar.button if b.label == "Unlock").click().run()
    assert_clean(at)
    messages = unescape(sidebar_messages(at))
    assert "locked.pdf: added" in messages
    # The warning and the error that the right password resolved are gone.
    assert "password-protected" not in messages and "did not open" not in messages
    assert "1 document," in at.caption[0].value
    assert not [b for b in at.sidebar.button if b.label == "Unlock"]


def test_a_pdf_without_text_says_so(data_dir):
    at = start()
    upload(at, ("scan.pdf", make_pdf(["x"], text=False)))
    assert "scan.pdf has no text layer" in unescape(sidebar_messages(at))
    assert not (data_dir / "default" / "uploads" / "scan.pdf").exists()


def remove_buttons(at: AppTest) -> list:
    return [b for b in at.sidebar.button if b.key and b.key.startswith("remove_")]


def test_remove_asks_first_then_says_so_by_the_list_and_clears_the_uploader(with_doc, data_dir):
    at = with_doc
    uploader_key = at.file_uploader[0].key
    remove_buttons(at)[0].click().run()
    assert_clean(at)
    # Nothing removed yet: a question, with a way back.
    [question] = [w for w in at.sidebar.warning if "Remove facts" in unescape(w.value)]
    assert "facts.pdf from this knowledge base?" in unescape(question.value)
    assert "1 document," in at.caption[0].value
    assert (data_dir / "default" / "uploads" / "facts.pdf").exists()
    next(b for b in at.sidebar.button if b.label == "Cancel").click().run()
    assert_clean(at)
    assert "1 document," in at.caption[0].value
    assert not [w for w in at.sidebar.warning if "Remove facts" in unescape(w.value)]

    remove_buttons(at)[0].click().run()
    next(b for b in at.sidebar.button if b.label == "Yes, remove").click().run()
    assert_clean(at)
    assert "0 documents" in at.caption[0].value
    assert not (data_dir / "default" / "uploads" / "facts.pdf").exists()
    # The message is in the document list, by the button, not at the sidebar's top...
    [docs] = [e for e in at.sidebar.expander if e.label.startswith("In this knowledge base")]
    assert [unescape(m.value) for m in docs.success] == ["Removed facts.pdf."]
    # ...the file's upload message went with it, and the uploader is a new, empty one.
    assert "facts.pdf: added" not in unescape(sidebar_messages(at))
    assert at.file_uploader[0].key != uploader_key
    assert not at.file_uploader[0].value


def test_the_uploaded_name_is_kept_in_the_list_and_the_sources(data_dir):
    at = start()
    upload(at, ("pdfminer__naacl06 季報.pdf", facts_pdf()))
    assert "pdfminer__naacl06 季報.pdf: added" in unescape(sidebar_messages(at))
    assert listed_names(at) == ["pdfminer__naacl06 季報.pdf"]
    # Stored under a safe name, never outside the uploads folder.
    uploads = data_dir / "default" / "uploads"
    assert [p.name for p in uploads.iterdir()] == ["pdfminer_naacl06_季報.pdf"]
    ask(at, QUESTION)
    [expander] = [e for e in at.expander if e.label.startswith("Sources")]
    assert "[1] pdfminer__naacl06 季報.pdf, page 2" in unescape("\n".join(texts(expander.markdown)))


def test_an_unreadable_document_is_warned_about_once_in_the_page_language(data_dir, monkeypatch):
    import numpy as np

    from ragqa.embeddings import HashingEmbedder

    # The hashing embedder reads everything; this one, like MiniLM, not Chinese.
    def counts(self, texts):
        cjk = [sum("\u4e00" <= c <= "\u9fff" for c in t) for t in texts]
        return np.array(cjk), np.array(
            [max(1, len(t.split()) + n) for t, n in zip(texts, cjk, strict=True)]
        )

    monkeypatch.setattr(HashingEmbedder, "unknown_token_counts", counts)
    at = start()
    at.sidebar.radio(key="lang").set_value("zh-Hans").run()
    upload(at, ("笔记.txt", "大语言模型是使用大量文本数据训练的深度学习模型。".encode()))
    upload(at, ("notes.txt", b"Tea came from China."))
    warnings = [unescape(w.value) for w in at.sidebar.warning]
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith("笔记.txt：嵌入模型（hashing:64）无法识别这份文档")
    assert "ragqa reindex" in warnings[0] and "multilingual-e5-small" in warnings[0]
    at.run()  # shown from the log, not worked out again or repeated
    assert len([w for w in at.sidebar.warning if "笔记" in w.value]) == 1
    at.sidebar.radio(key="lang").set_value("en").run()
    [warning] = at.sidebar.warning
    assert "cannot read" in warning.value and "Hybrid or Lexical" in warning.value


# --------------------------------------------------------------------- chat


def assistant_text(at: AppTest, index: int = -1) -> str:
    message = [m for m in at.chat_message if m.name == "assistant"][index]
    return unescape("\n".join(texts(message.markdown)))


def test_asking_renders_the_answer_and_its_sources(with_doc):
    at = ask(with_doc, QUESTION)
    assert [m.name for m in at.chat_message] == ["user", "assistant"]
    answer = assistant_text(at)
    assert "Mara Velez" in answer and "[1]" in answer
    [expander] = [e for e in at.expander if e.label.startswith("Sources")]
    body = "\n".join(texts(expander.markdown))
    assert "[1] facts.pdf, page 2" in unescape(body)
    marked = re.findall(r'<mark class="ragqa-cited">(.*?)</mark>', body)
    assert marked and "Mara" in marked[0]


def test_history_survives_reruns_and_is_passed_to_follow_ups(with_doc, monkeypatch):
    seen = []
    real = KnowledgeBase.ask_stream

    def spy(self, question, history=None, **kwargs):
        seen.append(list(history or []))
        return real(self, question, history, **kwargs)

    monkeypatch.setattr(KnowledgeBase, "ask_stream", spy)
    at = ask(with_doc, QUESTION)
    first_answer = assistant_text(at)
    at.run()
    at.run()
    assert [m.name for m in at.chat_message] == ["user", "assistant"]
    assert assistant_text(at) == first_answer

    ask(at, "And in which year was it built?")
    assert [m.name for m in at.chat_message] == ["user", "assistant"] * 2
    assert seen[0] == []
    assert [t.role for t in seen[1]] == ["user", "assistant"]
    assert seen[1][0] == Turn("user", QUESTION)
    assert "Mara Velez" in seen[1][1].content


def test_clear_chat(with_doc):
    at = ask(with_doc, QUESTION)
    assert at.chat_message
    at.button(key="clear").click().run()
    assert_clean(at)
    assert not at.chat_message
    assert unescape(at.info[0].value) == "Ask a question about the documents in “default”."


def test_document_markup_is_shown_not_obeyed(data_dir):
    at = start()
    evil = (
        "# Tricks\n\nThe lighthouse keeper's cat is named Pixel. "
        "<img src=x onerror=alert(1)> ![t](http://evil.example/t.png) <script>alert(2)</script>"
    )
    upload(at, ("tricks.md", evil.encode()))
    ask(at, "What is the name of the lighthouse keeper's cat?")
    rendered = "\n".join(
        texts(at.markdown) + [t for m in at.chat_message for t in texts(m.markdown)]
    )
    assert "Pixel" in rendered
    assert "<img" not in rendered and "<script" not in rendered
    assert "](http" not in rendered  # no Markdown image or link survives


def test_llm_failure_shows_the_passages_with_a_notice(data_dir, monkeypatch):
    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("RAGQA_LLM", "openai")
    monkeypatch.setenv("RAGQA_LLM_BASE_URL", f"http://127.0.0.1:{port}/v1")
    monkeypatch.setenv("RAGQA_LLM_MAX_RETRIES", "0")
    monkeypatch.setenv("RAGQA_LLM_TIMEOUT", "10")
    at = start()
    upload(at, ("facts.pdf", facts_pdf()))
    ask(at, QUESTION)
    [warning] = at.warning
    assert warning.value.startswith("The language model could not answer")
    [expander] = [e for e in at.expander if e.label.startswith("Retrieved passages")]
    body = unescape("\n".join(texts(expander.markdown)))
    assert "facts.pdf, page 2" in body
    assert "Mara" in body
    assert not at.error


def test_a_pdf_source_shows_its_page_beside_the_passage(with_doc):
    at = ask(with_doc, QUESTION)
    [expander] = [e for e in at.expander if e.label.startswith("Sources")]
    [image] = expander.get("image")
    assert unescape(image.proto.imgs[0].caption) == "Page 2 of facts.pdf, the cited passage boxed"
    # Beside the passage: the two share a row of columns.
    [row] = [b for b in expander.children.values() if getattr(b, "type", "") == "flex_container"]
    assert [c.type for c in row.children.values()] == ["column", "column"]


def test_the_fixed_replies_follow_the_question_not_the_page(data_dir, monkeypatch):
    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("RAGQA_LLM", "openai")
    monkeypatch.setenv("RAGQA_LLM_BASE_URL", f"http://127.0.0.1:{port}/v1")
    monkeypatch.setenv("RAGQA_LLM_MAX_RETRIES", "0")
    monkeypatch.setenv("RAGQA_LLM_TIMEOUT", "10")
    at = start()
    upload(at, ("facts.pdf", facts_pdf()))
    # Chinese questions with the island's name, so that passages are found.
    ask(at, "Quillon Island 的灯塔是谁建造的？")
    [warning] = at.warning
    assert warning.value.startswith("语言模型无法回答")  # Simplified, on an English page
    ask(at, "Quillon Island 的燈塔是誰建造的？")
    assert at.warning[-1].value.startswith("語言模型無法回答")
    assert at.title[0].value == "Ask your documents"
    at.sidebar.radio(key="lang").set_value("zh-Hant").run()
    assert at.warning[0].value.startswith("语言模型无法回答")  # still the question's


# ------------------------------------------------------- language, settings


def test_language_toggle_switches_labels(with_doc):
    at = with_doc
    assert at.sidebar.radio(key="lang").options == ["English", "简体中文", "繁體中文"]
    at.sidebar.radio(key="lang").set_value("zh-Hant").run()
    assert_clean(at)
    assert at.title[0].value == "向文件提問"
    assert at.chat_input[0].placeholder == "針對文件提出問題"
    assert at.file_uploader[0].label == "加入 PDF、TXT 或 MD 檔案"
    assert "facts.pdf：已加入" in unescape(sidebar_messages(at))  # old messages follow too
    ask(at, QUESTION)
    assert [e for e in at.expander if e.label.startswith("來源")]

    at.sidebar.radio(key="lang").set_value("zh-Hans").run()
    assert at.title[0].value == "向文档提问"
    assert at.file_uploader[0].label == "添加 PDF、TXT 或 MD 文件"
    # Streamlit's own "Upload" and "200MB per file", drawn over in Chinese.
    styles = "\n".join(str(h.proto.body) for h in at.get("html"))
    assert 'content: "上传"' in styles and "每个文件最多" in styles
    assert [e for e in at.expander if e.label.startswith("来源")]
    at.sidebar.radio(key="lang").set_value("en").run()
    assert at.title[0].value == "Ask your documents"


def test_settings_keep_their_values_through_a_change_of_language(with_doc):
    at = with_doc
    at.selectbox(key="cfg_retrieval_mode").set_value("lexical").run()
    at.number_input(key="cfg_top_k").set_value(3).run()
    for language in ("zh-Hans", "zh-Hant", "en"):
        at.sidebar.radio(key="lang").set_value(language).run()
        assert_clean(at)
        ask(at, QUESTION)  # the next action after the switch, where the mode fell back
        mode = at.selectbox(key="cfg_retrieval_mode")
        assert mode.value == "lexical", language
        assert mode.format_func(mode.value) == {"zh-Hans": "关键字", "zh-Hant": "關鍵字"}.get(
            language, "Lexical (keywords)"
        )
        assert at.number_input(key="cfg_top_k").value == 3


def test_the_api_key_is_a_password_field_never_filled_from_the_environment(data_dir, monkeypatch):
    secret = "sk-test-0123456789abcdef"
    monkeypatch.setenv("RAGQA_LLM", "openai")
    monkeypatch.setenv("RAGQA_LLM_API_KEY", secret)
    monkeypatch.setenv("RAGQA_LLM_MODEL", "gpt-test")
    at = start()
    key_input = at.text_input(key="cfg_llm_api_key")
    assert key_input.proto.type == key_input.proto.PASSWORD
    assert key_input.value == ""
    assert key_input.placeholder == "(set in the environment)"
    assert at.text_input(key="cfg_llm_model").value == "gpt-test"
    assert secret not in repr(at)  # in no element or widget value of the page


def test_settings_panel_changes_answering_retrieval_and_chunking(with_doc):
    at = with_doc
    backend = at.selectbox(key="cfg_llm")
    assert backend.options == [  # the test-only fake backend is not offered
        "Built-in extractive (no LLM)",
        "OpenAI-compatible API",
        "Ollama",
        "Local GGUF model (llama.cpp)",
    ]
    assert backend.value == "extractive"
    backend.set_value("ollama").run()
    assert_clean(at)
    assert at.text_input(key="cfg_llm_base_url").label == "Base URL"
    assert "Answers by: Ollama" in at.caption[0].value
    at.selectbox(key="cfg_llm").set_value("llamacpp").run()
    assert at.text_input(key="cfg_gguf_path").label == "GGUF file path"
    at.selectbox(key="cfg_llm").set_value("extractive").run()

    at.number_input(key="cfg_top_k").set_value(1).run()
    ask(at, QUESTION)
    assert [e.label for e in at.expander if e.label.startswith("Sources")] == ["Sources (1)"]

    text = " ".join(f"Sentence number {i} is about topic {i}." for i in range(80))
    at.number_input(key="cfg_chunk_size").set_value(2000).run()
    upload(at, ("long.txt", text.encode()))
    added = re.search(r"long\.txt: added (\d+) chunks", unescape(sidebar_messages(at)))
    assert added and int(added.group(1)) <= 3  # at the default 200 it would be over 10
