"""The UI's workspace: knowledge-base names, safe uploads, ingestion, and source views."""

from __future__ import annotations

import codecs
import html
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from ragqa import Settings
from ragqa.conversation import Turn
from ragqa.embeddings import HashingEmbedder
from ragqa.types import DocumentInfo, FileResult, Hit
from ragqa.workspace import (
    DEFAULT_KB_NAME,
    MAX_FILE_NAME_BYTES,
    ChatMessage,
    Notice,
    SourceView,
    UploadNames,
    UploadOutcome,
    Workspace,
    WorkspaceError,
    add_notice,
    answer_claims,
    check_upload_content,
    cited_sentences,
    css_string,
    describe_outcome,
    describe_result,
    describe_unreadable,
    escape_markdown,
    file_name_html,
    forget_notices,
    history_turns,
    hit_views,
    passage_html,
    pdf_of,
    safe_file_name,
    source_views,
    stored_file_name,
)

FACT = "The lighthouse on Quillon Island was built in 1887 by Mara Velez."


@pytest.fixture
def ws_settings(settings: Settings, tmp_path: Path) -> Settings:
    return settings.replace(data_dir=str(tmp_path / "data"))


@pytest.fixture
def workspace(ws_settings: Settings) -> Workspace:
    return Workspace.from_settings(ws_settings)


@pytest.fixture
def embedder() -> HashingEmbedder:
    return HashingEmbedder(64)


@pytest.fixture
def kb(workspace: Workspace, embedder: HashingEmbedder):
    workspace.ensure_default(embedder=embedder)
    with workspace.open(DEFAULT_KB_NAME, embedder=embedder) as opened:
        yield opened


def make_pdf(pages: list[str], *, password: str | None = None, text: bool = True) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    for page in pages:
        pdf.add_page()
        if text:
            pdf.multi_cell(0, 8, page)
        else:
            pdf.rect(20, 20, 100, 60, style="F")  # a page with ink but no text layer
    if password is not None:
        from fpdf.enums import EncryptionMethod

        pdf.set_encryption(
            owner_password="owner-" + password,
            user_password=password,
            encryption_method=EncryptionMethod.AES_128,
        )
    return bytes(pdf.output())


# ------------------------------------------------------------------ names


@pytest.mark.parametrize("name", ["default", "Papers 2024", "my-kb_v1.2", "我的知識庫", "x"])
def test_valid_names_are_accepted(name):
    assert Workspace.validate_name(f"  {name} ") == name


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("", "kb_name_empty"),
        ("   ", "kb_name_empty"),
        ("../escape", "kb_name_bad_chars"),
        ("a/b", "kb_name_bad_chars"),
        ("a\\b", "kb_name_bad_chars"),
        (".hidden", "kb_name_bad_chars"),
        ("trailing.", "kb_name_bad_chars"),
        ("semi;colon", "kb_name_bad_chars"),
        ("x" * 65, "kb_name_too_long"),
        ("con", "kb_name_reserved"),
        ("NUL.txt", "kb_name_reserved"),
    ],
)
def test_invalid_names_are_refused_with_a_reason(name, label):
    with pytest.raises(WorkspaceError) as caught:
        Workspace.validate_name(name)
    assert caught.value.label == label


def test_first_start_creates_the_default_kb_once(workspace, embedder, tmp_path):
    assert workspace.names() == []
    assert workspace.ensure_default(embedder=embedder) == DEFAULT_KB_NAME
    assert workspace.names() == [DEFAULT_KB_NAME]
    assert (tmp_path / "data" / "default" / "uploads").is_dir()
    assert workspace.ensure_default(embedder=embedder) == DEFAULT_KB_NAME
    assert workspace.names() == [DEFAULT_KB_NAME]


def test_create_lists_default_first_and_refuses_duplicates(workspace, embedder):
    workspace.ensure_default(embedder=embedder)
    assert workspace.create("Alpha", embedder=embedder) == "Alpha"
    assert workspace.create("筆記", embedder=embedder) == "筆記"
    assert workspace.names() == ["default", "Alpha", "筆記"]
    for taken in ("Alpha", "alpha", " ALPHA "):
        with pytest.raises(WorkspaceError) as caught:
            workspace.create(taken, embedder=embedder)
        assert caught.value.label == "kb_name_taken"


def test_a_folder_that_is_not_a_kb_is_not_listed(workspace, embedder, tmp_path):
    workspace.ensure_default(embedder=embedder)
    (tmp_path / "data" / "stray").mkdir()
    (tmp_path / "data" / "notes.txt").write_text("x")
    assert workspace.names() == ["default"]


def test_open_unknown_kb_is_a_clear_error(workspace):
    with pytest.raises(WorkspaceError) as caught:
        workspace.open("nope")
    assert caught.value.label == "kb_not_found"


def test_open_with_another_model_uses_the_kb_own_model(workspace, embedder):
    workspace.create("k", embedder=embedder)
    with workspace.open("k", embedder=HashingEmbedder(32)) as kb:
        assert kb.embedder.dimension == 64


# ----------------------------------------------------------- file names


@pytest.mark.parametrize(
    ("raw", "safe"),
    [
        ("report.pdf", "report.pdf"),
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\win.ini", "win.ini"),
        ("/abs/path/notes.MD", "notes.md"),
        ("..", "upload"),
        (".bashrc", "bashrc"),
        ("...pdf", "pdf"),  # no extension: refused by the content check
        ("季報 2024 (final).PDF", "季報_2024_(final).pdf"),
        ("a<b>c|d?.txt", "a_b_c_d_.txt"),
        ("nul.txt", "_nul.txt"),
        ("name\x00.pdf", "name_.pdf"),
    ],
)
def test_safe_file_name(raw, safe):
    assert safe_file_name(raw) == safe


def test_safe_file_name_cuts_long_names_on_a_character_boundary():
    name = safe_file_name("長" * 200 + ".pdf")
    assert name.endswith(".pdf")
    assert len(name.encode("utf-8")) <= MAX_FILE_NAME_BYTES
    name.encode("utf-8").decode("utf-8")  # no cut multi-byte character


@hypothesis_settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_safe_file_name_never_leaves_its_folder(raw):
    name = safe_file_name(raw)
    assert name and name not in (".", "..")
    assert "/" not in name and "\\" not in name and "\x00" not in name
    assert not name.startswith(".")
    assert len(name.encode("utf-8")) <= MAX_FILE_NAME_BYTES
    folder = Path("/srv/uploads")
    assert (folder / name).resolve().parent == folder.resolve()


# ---------------------------------------------------------- content checks


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("a.pdf", b"%PDF-1.7\n...", None),
        ("a.PDF", b"\n\n%PDF-1.4 junk first is allowed", None),
        ("a.pdf", b"<html>not a pdf</html>", "not_pdf"),
        ("a.txt", "plain text, naïve café".encode(), None),
        ("a.md", codecs.BOM_UTF8 + "# 標題\n內容".encode(), None),
        ("a.txt", "繁體中文的文字檔案，用 Big5 編碼存檔。".encode("big5"), None),
        ("a.txt", "简体中文的文本文件，用 GBK 编码保存。".encode("gbk"), None),
        ("a.txt", "UTF-16 with a BOM".encode("utf-16"), None),
        ("a.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), "not_text"),
        ("a.md", b"%PDF-1.7\n\x00\x01\x02binary", "not_text"),
        ("a.txt", b"", "empty"),
        ("a.txt", b" \n\t ", "empty"),
        ("a.markdown", b"# Title", None),
        ("a.docx", b"PK\x03\x04", "unsupported"),
        ("noext", b"text", "unsupported"),
    ],
)
def test_check_upload_content(name, data, reason):
    assert check_upload_content(name, data) == reason


def test_text_check_tolerates_a_character_cut_at_the_sample_end():
    data = ("中" * 200_000).encode("utf-8")  # longer than the sample; 3 bytes a character
    assert check_upload_content("long.txt", data) is None


# ------------------------------------------------------------------ uploads


def test_uploads_are_saved_inside_the_kb_under_safe_names(workspace, kb, tmp_path):
    outcomes = workspace.save_uploads(
        "default",
        [("../../../evil.md", b"# hi\ntext"), ("/etc/cron.d/job.txt", b"text")],
        kb.documents(),
    )
    uploads = (tmp_path / "data" / "default" / "uploads").resolve()
    assert [o.status for o in outcomes] == ["saved", "saved"]
    assert [o.path.name for o in outcomes] == ["evil.md", "job.txt"]
    assert all(o.path.resolve().parent == uploads for o in outcomes)
    assert outcomes[0].name == "evil.md"  # shown without the path it claimed
    assert not (tmp_path / "evil.md").exists()
    assert sorted(p.name for p in uploads.iterdir()) == ["evil.md", "job.txt"]
    [spoof] = workspace.save_uploads("default", [("photo\u202egpj.md", b"text")])
    assert (spoof.name, spoof.path.name) == ("photogpj.md", "photo_gpj.md")


def test_a_symlink_planted_at_the_target_is_replaced_not_followed(workspace, kb, tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("precious")
    uploads = tmp_path / "data" / "default" / "uploads"
    (uploads / "notes.txt").symlink_to(outside)
    [outcome] = workspace.save_uploads("default", [("notes.txt", b"new text")])
    assert outcome.status == "saved"
    assert outside.read_text() == "precious"
    assert not (uploads / "notes.txt").is_symlink()
    assert (uploads / "notes.txt").read_bytes() == b"new text"


def test_size_count_and_content_limits(ws_settings, embedder):
    workspace = Workspace(ws_settings.data_dir, ws_settings.replace(max_file_mb=0.001), max_files=2)
    workspace.ensure_default(embedder=embedder)
    outcomes = workspace.save_uploads(
        "default",
        [
            ("big.txt", b"x" * 2000),  # over 0.001 MB = 1048 bytes
            ("fake.pdf", b"hello"),
            ("third.txt", b"fine, but one file too many"),
        ],
    )
    assert [(o.status, o.reason) for o in outcomes] == [
        ("rejected", "too_large"),
        ("rejected", "not_pdf"),
        ("rejected", "too_many"),
    ]
    assert list((Path(ws_settings.data_dir) / "default" / "uploads").iterdir()) == []
    notice = describe_outcome(outcomes[0], max_mb=0.001, max_files=2)
    assert (notice.level, notice.label) == ("error", "result_too_large")
    assert notice.values["max_mb"] == "0.001"


def test_duplicates_are_found_by_content_in_the_kb_and_in_the_batch(workspace, kb):
    stored = DocumentInfo("/somewhere/original.md", _sha(b"same bytes"), 1, 1, 0.0)
    outcomes = workspace.save_uploads(
        "default",
        [("copy.md", b"same bytes"), ("new.md", b"other"), ("new-again.md", b"other")],
        [stored],
    )
    assert [(o.status, o.existing) for o in outcomes] == [
        ("duplicate", "original.md"),
        ("saved", None),
        ("duplicate", "new.md"),
    ]
    notice = describe_outcome(outcomes[0], max_mb=1, max_files=1)
    assert (notice.level, notice.label) == ("info", "result_duplicate")
    assert describe_outcome(outcomes[1], max_mb=1, max_files=1) is None


def _sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------- ingestion


def _save_one(workspace, kb, name, data) -> UploadOutcome:
    [outcome] = workspace.save_uploads("default", [(name, data)], kb.documents())
    return outcome


def test_ingest_adds_then_a_second_upload_is_a_duplicate(workspace, kb):
    data = make_pdf(["An opening page about nothing much.", FACT])
    outcome = _save_one(workspace, kb, "facts.pdf", data)
    events = []
    result = workspace.ingest(kb, outcome.path, progress=events.append)
    assert (result.status, result.pages) == ("added", 2)
    assert result.chunks >= 2
    assert events[-1].stage == "done"
    notice = describe_result(result, "facts.pdf")
    assert (notice.level, notice.label) == ("success", "result_added")
    hit = kb.search("Who built the lighthouse on Quillon Island?", k=1)[0]
    assert (hit.file_name, hit.page) == ("facts.pdf", 2)
    again = _save_one(workspace, kb, "renamed.pdf", data)
    assert (again.status, again.existing) == ("duplicate", "facts.pdf")


def test_ingest_uses_the_chunking_chosen_for_new_ingests(workspace, kb):
    text = " ".join(f"Sentence number {i} talks about topic {i}." for i in range(60))
    small = workspace.ingest(
        kb,
        _save_one(workspace, kb, "a.txt", text.encode()).path,
        settings=kb.settings.replace(chunk_size=100, chunk_overlap=0),
    )
    large = workspace.ingest(
        kb,
        _save_one(workspace, kb, "b.txt", (text + " Extra.").encode()).path,
        settings=kb.settings.replace(chunk_size=1000, chunk_overlap=0),
    )
    assert small.chunks > 2 * large.chunks
    # The shared handle keeps its own settings and sees both documents.
    assert kb.settings.chunk_size == 200
    assert {Path(d.source).name for d in kb.documents()} == {"a.txt", "b.txt"}


def test_a_failed_file_is_deleted_again(workspace, kb):
    outcome = _save_one(workspace, kb, "scan.pdf", make_pdf(["x"], text=False))
    result = workspace.ingest(kb, outcome.path)
    assert (result.status, result.reason) == ("failed", "no_text")
    assert not outcome.path.exists()
    notice = describe_result(result, "scan.pdf")
    assert (notice.level, notice.label) == ("warning", "result_no_text")


def test_an_encrypted_pdf_is_kept_until_its_password_opens_it(workspace, kb):
    outcome = _save_one(workspace, kb, "locked.pdf", make_pdf([FACT], password="s3cret"))
    first = workspace.ingest(kb, outcome.path)
    assert (first.status, first.reason) == ("failed", "encrypted")
    assert outcome.path.exists()
    assert describe_result(first, "locked.pdf").label == "result_encrypted"

    wrong = workspace.ingest(kb, outcome.path, pdf_password="nope")
    assert wrong.status == "failed"
    assert outcome.path.exists()
    notice = describe_result(wrong, "locked.pdf", retried_password=True)
    assert notice.label == "result_wrong_password"

    right = workspace.ingest(kb, outcome.path, pdf_password="s3cret")
    assert right.status == "added"
    assert kb.search("Quillon lighthouse", k=1)[0].file_name == "locked.pdf"


def test_remove_document_deletes_its_upload_but_nothing_outside(workspace, kb, write_text):
    outcome = _save_one(workspace, kb, "notes.md", b"# Notes\n" + FACT.encode())
    workspace.ingest(kb, outcome.path)
    elsewhere = write_text("outside.md", "Kept: " + FACT)
    kb.add([elsewhere])
    assert workspace.remove_document(kb, str(outcome.path)) is True
    assert not outcome.path.exists()
    assert workspace.remove_document(kb, str(elsewhere)) is True
    assert elsewhere.exists()  # not the workspace's to delete
    assert kb.documents() == []


def test_describe_result_hides_the_server_path():
    source = "/srv/data/default/uploads/bad.pdf"
    result = FileResult(source, "failed", error=f"{source}: damaged PDF", reason="unreadable")
    notice = describe_result(result, "bad.pdf")
    assert notice.label == "result_failed"
    assert notice.values["error"] == "damaged PDF"
    assert "/srv" not in str(notice.values)


# ------------------------------------------------------------- chat views


@dataclass(frozen=True)
class _Citation:
    number: int
    source: str
    page: int
    start: int
    end: int
    chunk_id: int
    text: str


@dataclass(frozen=True)
class _Answer:
    text: str
    citations: tuple = ()
    passages: tuple = ()


UNTRUSTED = (
    "Intro. <script>alert(1)</script> ![x](http://evil.example/t.png) "
    "[link](javascript:alert(1)) $x^2$ :red[red] **bold** &amp; `code` | a | b |\n\n"
    "# Heading\n<img src=x onerror=alert(1)>"
)


def _text_of(rendered_html: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", rendered_html.replace("<br>", "\n")))


def test_passage_html_escapes_everything_and_marks_the_span():
    out = passage_html(UNTRUSTED, [(7, 37)])
    tags = re.findall(r"<[^>]*>", out)
    assert set(tags) <= {
        '<div class="ragqa-passage">',
        "</div>",
        '<mark class="ragqa-cited">',
        "</mark>",
        "<br>",
    }
    assert "\n" not in out  # a blank line would end the HTML block
    marked = re.search(r'<mark class="ragqa-cited">(.*?)</mark>', out).group(1)
    assert html.unescape(marked) == UNTRUSTED[7:37]
    assert _text_of(out) == UNTRUSTED


def test_passage_html_survives_a_markdown_renderer():
    from markdown_it import MarkdownIt

    rendered = MarkdownIt("commonmark", {"html": True}).render(passage_html(UNTRUSTED, [(0, 6)]))
    assert "<script>" not in rendered and "<img" not in rendered and "<a " not in rendered
    assert _text_of(rendered).strip() == UNTRUSTED


@hypothesis_settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=80))
def test_escape_markdown_renders_as_the_literal_text(text):
    from markdown_it import MarkdownIt

    text = " ".join(text.split())  # one paragraph, as Markdown would collapse it anyway
    rendered = MarkdownIt("commonmark").render(escape_markdown(text))
    assert "<a " not in rendered and "<img" not in rendered and "<em>" not in rendered
    body = re.sub(r"^<p>|</p>\n$", "", rendered)
    assert html.unescape(body) == text


def test_escape_markdown_can_be_applied_piece_by_piece():
    pieces = ["**bo", "ld** [1", "](x) $", "5"]
    assert "".join(escape_markdown(p) for p in pieces) == escape_markdown("".join(pieces))


def test_source_views_highlight_the_sentences_the_answer_quotes():
    chunk = "Tea came from China. Coffee came from Ethiopia in the 9th century. Milk is white."
    hit = Hit(chunk, 1.0, "/kb/uploads/drinks.md", 3, 100, 100 + len(chunk), 7)
    citation = _Citation(1, hit.source, 3, hit.start, hit.end, 7, chunk)
    answer = _Answer("Coffee came from Ethiopia in the 9th century [1].", (citation,), (hit,))
    [view] = source_views(answer)
    assert (view.number, view.file_name, view.page) == (1, "drinks.md", 3)
    marked = re.findall(r'<mark class="ragqa-cited">(.*?)</mark>', view.html)
    assert [html.unescape(m) for m in marked] == ["Coffee came from Ethiopia in the 9th century."]


def test_source_views_show_the_chunk_inside_its_page_when_the_page_is_known():
    page = "A" * 500 + " The cited chunk sits here. " + "B" * 500
    start = page.index("The cited")
    end = start + len("The cited chunk sits here.")
    citation = _Citation(1, "/kb/p.pdf", 2, start, end, 1, page[start:end])
    answer = _Answer("It sits here [1].", (citation,))
    [view] = source_views(
        answer, page_text=lambda s, p: page if (s, p) == ("/kb/p.pdf", 2) else None
    )
    marked = re.findall(r'<mark class="ragqa-cited">(.*?)</mark>', view.html)
    assert [html.unescape(m) for m in marked] == ["The cited chunk sits here."]
    shown = _text_of(view.html)
    assert shown.startswith("…A") and shown.endswith("B…")
    assert 600 < len(shown) < 700


def test_source_views_without_citations_list_the_passages_plainly():
    hits = tuple(Hit(f"text {i}", 1.0, f"/d/f{i}.txt", 1, 0, 6, i) for i in range(2))
    views = source_views(_Answer("The documents do not say.", (), hits))
    assert [(v.number, v.file_name) for v in views] == [(1, "f0.txt"), (2, "f1.txt")]
    assert all("<mark" not in v.html for v in views)


def test_answer_claims_and_cited_sentences():
    text = "A is B [1][2]. C is D [2]. Nothing here."
    assert answer_claims(text, 1) == ["A is B"]
    assert answer_claims(text, 2) == ["A is B", "C is D"]
    assert answer_claims(text, 3) == []
    passage = "茶起源於中國。咖啡起源於衣索比亞。"
    assert cited_sentences(passage, answer_claims("咖啡起源於衣索比亞 [1]。", 1)) == [(7, 17)]
    assert cited_sentences(passage, ["Completely unrelated words"]) == []
    # A short answer marks the sentence it was taken from.
    text = "The keeper retired in 1902. The lighthouse was built in 1887 by Mara Velez."
    assert cited_sentences(text, answer_claims("Mara Velez [1]", 1)) == [(28, 75)]


def test_history_turns_are_bounded_and_skip_empty_answers():
    messages = [
        ChatMessage("user", "q1"),
        ChatMessage("assistant", "a1"),
        ChatMessage("user", "q2"),
        ChatMessage("assistant", "", passages_only=True, error="down"),
        ChatMessage("user", "q3"),
        ChatMessage("assistant", "a3"),
    ]
    assert history_turns(messages, 10) == [
        Turn("user", "q1"),
        Turn("assistant", "a1"),
        Turn("user", "q2"),
        Turn("user", "q3"),
        Turn("assistant", "a3"),
    ]
    assert history_turns(messages, 2) == [Turn("user", "q3"), Turn("assistant", "a3")]
    assert history_turns(messages, 0) == []


# ------------------------------------------------------- names as uploaded


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("pdfminer__naacl06-shinyama.pdf", "pdfminer__naacl06-shinyama.pdf"),  # kept as it is
        ("季報_2024_(final).pdf", "季報_2024_(final).pdf"),
        ("/abs/path/a__b.md", "a__b.md"),  # only the last component, still
        ("季報 2024.PDF", "季報_2024.pdf"),  # a space and an upper-case extension: made safe
        ("photo\u202egpj.md", "photo_gpj.md"),
        ("_leading.txt", "_leading.txt"),
        ("-leading.txt", "leading.txt"),
        (".hidden.txt", "hidden.txt"),
        ("nul.txt", "_nul.txt"),
        ("cafe\u0301.txt", "café.txt"),  # decomposed (macOS) becomes composed
    ],
)
def test_stored_file_name_keeps_a_name_that_is_already_safe(raw, stored):
    assert stored_file_name(raw) == stored


@hypothesis_settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_stored_file_name_never_leaves_its_folder(raw):
    name = stored_file_name(raw)
    assert name and name not in (".", "..") and not name.startswith(".")
    assert "/" not in name and "\\" not in name and "\x00" not in name
    assert len(name.encode("utf-8")) <= MAX_FILE_NAME_BYTES
    folder = Path("/srv/uploads")
    assert (folder / name).resolve().parent == folder.resolve()


def test_the_uploaded_name_is_shown_everywhere_while_the_stored_one_is_safe(workspace, kb):
    files = [
        ("pdfminer__naacl06-shinyama.pdf", make_pdf([FACT])),
        ("季報 2024.PDF", make_pdf(["Quarterly revenue rose by four percent."])),
    ]
    outcomes = workspace.save_uploads("default", files, kb.documents())
    assert [o.name for o in outcomes] == [name for name, _ in files]
    assert [o.path.name for o in outcomes] == ["pdfminer__naacl06-shinyama.pdf", "季報_2024.pdf"]
    for outcome in outcomes:
        assert workspace.ingest(kb, outcome.path).status == "added"
    names = workspace.display_names(kb)
    assert sorted(names.values()) == ["pdfminer__naacl06-shinyama.pdf", "季報 2024.PDF"]
    # Only the renamed file has an entry, kept in the knowledge base's folder.
    assert UploadNames(kb.directory).load() == {"季報_2024.pdf": "季報 2024.PDF"}
    assert (kb.directory / "upload_names.json").is_file()

    # In the sources under an answer, and in the duplicate message.
    hit = kb.search("How much did quarterly revenue rise?", k=1)[0]
    [view] = hit_views([hit], names=names)
    assert view.file_name == "季報 2024.PDF" and view.source == hit.source
    again = _save_one(workspace, kb, "copy.pdf", files[1][1])
    assert (again.status, again.existing) == ("duplicate", "季報 2024.PDF")

    # Removed: the entry goes with the file.
    workspace.remove_document(kb, hit.source)
    assert UploadNames(kb.directory).load() == {}


def test_two_names_that_make_the_same_safe_name_do_not_overwrite_each_other(workspace, kb):
    first = _save_one(workspace, kb, "a b.txt", b"Alpha text.")
    second = _save_one(workspace, kb, "a_b.txt", b"Beta text.")
    third = _save_one(workspace, kb, "a?b.txt", b"Gamma text.")
    assert [o.path.name for o in (first, second, third)] == ["a_b.txt", "a_b-2.txt", "a_b-3.txt"]
    assert first.path.read_bytes() == b"Alpha text."
    for outcome in (first, second, third):
        workspace.ingest(kb, outcome.path)
    shown = sorted(workspace.display_names(kb).values())
    assert shown == ["a b.txt", "a?b.txt", "a_b.txt"]
    # A new version of an upload replaces it, under the same stored name.
    newer = _save_one(workspace, kb, "a b.txt", b"Alpha, second edition.")
    assert newer.path == first.path
    assert workspace.ingest(kb, newer.path).status == "replaced"


def test_documents_from_elsewhere_are_shown_by_their_file_name(workspace, kb, tmp_path):
    outside = tmp_path / "cli notes.txt"
    outside.write_text("Added with the command line.")
    kb.add([outside])
    assert list(workspace.display_names(kb).values()) == ["cli notes.txt"]
    names = UploadNames(kb.directory)
    (kb.directory / "upload_names.json").write_text("not json")  # damaged: names still shown
    assert names.name_of(str(outside)) == "cli notes.txt"


# ---------------------------------------------------------------- notices


def test_a_success_clears_the_warnings_and_errors_it_resolves():
    log: list[Notice] = []
    add_notice(log, Notice("warning", "result_encrypted", {"name": "locked.pdf"}))
    add_notice(log, Notice("error", "result_not_pdf", {"name": "fake.pdf"}))
    add_notice(log, Notice("error", "result_wrong_password", {"name": "locked.pdf"}))
    add_notice(log, Notice("success", "result_added", {"name": "locked.pdf"}))
    assert [(n.level, n.values["name"]) for n in log] == [
        ("error", "fake.pdf"),  # another file's: still there
        ("success", "locked.pdf"),
    ]
    add_notice(log, Notice("warning", "result_unreadable", {"name": "locked.pdf"}))
    assert len(log) == 3  # a warning after the success stays
    forget_notices(log, "locked.pdf")
    assert [n.values["name"] for n in log] == ["fake.pdf"]


def test_an_unreadable_document_gets_one_warning_saying_what_to_do(workspace, kb, monkeypatch):
    import numpy as np

    def counts(self, texts):
        cjk = [sum("\u4e00" <= c <= "\u9fff" for c in t) for t in texts]
        return np.array(cjk), np.array(
            [len(t.split()) + n for t, n in zip(texts, cjk, strict=True)]
        )

    chinese = _save_one(
        workspace, kb, "筆記.txt", "大語言模型是使用大量文本數據訓練的模型。".encode()
    )
    english = _save_one(workspace, kb, "notes.txt", b"Tea came from China.")
    results = [workspace.ingest(kb, o.path) for o in (chinese, english)]
    # The hashing embedder reads everything: no warning.
    assert describe_unreadable(kb, results[0], "筆記.txt") is None
    monkeypatch.setattr(HashingEmbedder, "unknown_token_counts", counts)
    notice = describe_unreadable(kb, results[0], "筆記.txt")
    assert (notice.level, notice.label) == ("warning", "result_unreadable")
    assert notice.values["name"] == "筆記.txt" and notice.values["model"] == "hashing:64"
    assert notice.values["percent"] > 50
    assert describe_unreadable(kb, results[1], "notes.txt") is None
    failed = FileResult(results[0].source, "failed", reason="io")
    assert describe_unreadable(kb, failed, "筆記.txt") is None
    from ragqa.i18n import t

    assert "ragqa reindex" in t("result_unreadable", "zh-Hant", **notice.values)


# ---------------------------------------------------------- page helpers


def test_file_names_wrap_only_between_their_parts():
    shown = file_name_html("pdfminer__naacl06-shinyama.pdf")
    assert shown.count("<wbr>") == 4  # after _, _, - and .
    assert html.unescape(shown.replace("<wbr>", "")) == (
        '<span class="ragqa-file">pdfminer__naacl06-shinyama.pdf</span>'
    )
    assert "<b>" not in file_name_html("<b>x</b>.pdf")


@pytest.mark.parametrize("text", ['上传 "x"', "a\\b", "}</style><script>", "line\nbreak"])
def test_css_strings_cannot_end_the_string_or_the_rule(text):
    quoted = css_string(text)
    inner = quoted[1:-1]
    assert quoted[0] == quoted[-1] == '"'
    assert not any(c in inner for c in '"<>{};\n')
    assert "\\" not in inner.replace("\\0000", "")  # only escapes of our own


def test_only_a_pdf_that_is_still_there_gets_a_page_image(tmp_path):
    pdf = tmp_path / "a.PDF"
    pdf.write_bytes(make_pdf(["x"]))
    assert pdf_of(SourceView(1, "a.PDF", 1, "", source=str(pdf))) == pdf
    assert pdf_of(SourceView(1, "a.txt", 1, "", source=str(tmp_path / "a.txt"))) is None
    assert pdf_of(SourceView(1, "gone.pdf", 1, "", source=str(tmp_path / "gone.pdf"))) is None
    assert pdf_of(SourceView(1, "old", 1, "")) is None  # a view from before sources were kept


def test_source_views_carry_the_uploaded_name_the_source_and_the_cited_text():
    chunk = "Tea came from China. Coffee came from Ethiopia in the 9th century."
    hit = Hit(chunk, 1.0, "/kb/uploads/drinks_2024.md", 3, 0, len(chunk), 7)
    citation = _Citation(1, hit.source, 3, hit.start, hit.end, 7, chunk)
    answer = _Answer("Coffee came from Ethiopia in the 9th century [1].", (citation,), (hit,))
    [view] = source_views(answer, names={hit.source: "drinks 2024.md"})
    assert (view.file_name, view.source) == ("drinks 2024.md", hit.source)
    assert view.cited == ("Coffee came from Ethiopia in the 9th century.",)
    [plain] = source_views(answer)
    assert plain.file_name == "drinks_2024.md"
