"""The PDF backend: pages, passwords, scans, damage, limits and pypdf's failure modes."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from pathlib import Path

import pypdf
import pytest
from loader_fixtures import (
    encrypt_pdf,
    make_cjk_pdf,
    make_image_only_pdf,
    make_pdf,
    make_spaced_cjk_pdf,
)

from ragqa.config import Settings
from ragqa.errors import LoaderError
from ragqa.loaders import load_document
from ragqa.loaders.pdf import PdfLoader, decode_glyph_names, looks_garbled


def load_error(path: Path, **kwargs: object) -> LoaderError:
    with pytest.raises(LoaderError) as caught:
        load_document(path, **kwargs)  # type: ignore[arg-type]
    return caught.value


# ------------------------------------------------------------------ good files


def test_each_pdf_page_is_one_page_record_numbered_from_one(docs: Path) -> None:
    path = make_pdf(docs / "three.pdf", ["Alpha page text.", "Beta page text.", "Gamma page."])
    pages = load_document(path)
    assert [p.page for p in pages] == [1, 2, 3]
    assert [p.text for p in pages] == ["Alpha page text.", "Beta page text.", "Gamma page."]
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert {p.content_hash for p in pages} == {digest}
    assert {p.source for p in pages} == {str(path.resolve())}


def test_pdf_text_is_normalised(docs: Path) -> None:
    path = make_pdf(docs / "spaces.pdf", ["too    many     spaces here"])
    assert load_document(path)[0].text == "too many spaces here"


def test_pages_without_text_are_left_out_and_others_keep_their_numbers(docs: Path) -> None:
    path = make_pdf(docs / "mixed.pdf", ["First page words.", None, "Third page words.", None])
    pages = load_document(path)
    assert [p.page for p in pages] == [1, 3]
    assert pages[1].text == "Third page words."


def test_chinese_pdf_loads_with_its_characters(docs: Path, cjk_font: Path) -> None:
    text = "茶起源於中國西南地區，已有數千年的飲用歷史。"
    path = make_cjk_pdf(docs / "tea.pdf", cjk_font, [text, "第二頁：綠茶與紅茶"])
    pages = load_document(path)
    assert [p.page for p in pages] == [1, 2]
    assert pages[0].text == text
    assert pages[1].text == "第二頁：綠茶與紅茶"


def test_stray_spaces_pypdf_puts_between_chinese_characters_are_removed(
    docs: Path, cjk_font: Path
) -> None:
    path = make_spaced_cjk_pdf(docs / "spaced.pdf", cjk_font, "操作手冊")
    raw = pypdf.PdfReader(path).pages[0].extract_text()
    assert raw.replace(" ", "") == "操作手冊" and " " in raw  # the fixture does produce gaps
    assert load_document(path)[0].text == "操作手冊"


def test_uppercase_extension_is_read_as_pdf(docs: Path) -> None:
    path = make_pdf(docs / "UPPER.PDF", ["Shouting file name."])
    assert load_document(path)[0].text == "Shouting file name."


# ------------------------------------------------------------------ encryption


@pytest.mark.parametrize("algorithm", ["AES-256", "AES-128", "RC4-128", "RC4-40"])
def test_encrypted_pdf_loads_with_its_password(docs: Path, algorithm: str) -> None:
    plain = make_pdf(docs / "plain.pdf", ["Secret minutes of the meeting."])
    locked = encrypt_pdf(plain, docs / "locked.pdf", "s3cret", algorithm)
    pages = load_document(locked, password="s3cret")
    assert pages[0].text == "Secret minutes of the meeting."
    # The hash is of the file as stored, not of the decrypted content.
    assert pages[0].content_hash == hashlib.sha256(locked.read_bytes()).hexdigest()


@pytest.mark.parametrize("algorithm", ["AES-256", "RC4-128"])
def test_encrypted_pdf_without_password_says_to_pass_one(docs: Path, algorithm: str) -> None:
    locked = encrypt_pdf(make_pdf(docs / "p.pdf", ["x y z"]), docs / "locked.pdf", "pw", algorithm)
    error = load_error(locked)
    assert error.reason == "encrypted"
    assert "--pdf-password" in error.cause
    assert str(locked) in str(error)


@pytest.mark.parametrize("algorithm", ["AES-256", "RC4-128"])
def test_encrypted_pdf_with_wrong_password_says_so(docs: Path, algorithm: str) -> None:
    locked = encrypt_pdf(make_pdf(docs / "p.pdf", ["x y z"]), docs / "locked.pdf", "pw", algorithm)
    error = load_error(locked, password="not-it")
    assert error.reason == "encrypted"
    assert error.cause == "wrong password for encrypted PDF"


def test_pdf_that_opens_with_the_empty_password_ignores_a_given_one(docs: Path) -> None:
    # Only the owner password is set: viewers open it without asking, and a password
    # meant for other files of the batch must not make it fail.
    plain = make_pdf(docs / "plain.pdf", ["Printable but protected."])
    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(plain))
    writer.encrypt(user_password="", owner_password="owner", algorithm="AES-256")
    path = docs / "owner-only.pdf"
    with open(path, "wb") as fh:
        writer.write(fh)
    assert load_document(path)[0].text == "Printable but protected."
    assert load_document(path, password="for-another-file")[0].text == "Printable but protected."


def test_password_is_ignored_for_an_unencrypted_pdf(docs: Path) -> None:
    path = make_pdf(docs / "open.pdf", ["Nothing to hide."])
    assert load_document(path, password="whatever")[0].text == "Nothing to hide."


# ------------------------------------------------------------------ no text


def test_pdf_with_only_drawings_has_no_text(docs: Path) -> None:
    error = load_error(make_pdf(docs / "drawing.pdf", [None, None]))
    assert error.reason == "no_text"
    assert "OCR" in error.cause


def test_pdf_with_only_images_has_no_text(docs: Path) -> None:
    error = load_error(make_image_only_pdf(docs / "scan.pdf", pages=2))
    assert error.reason == "no_text"
    assert "scanned or image-only" in error.cause


# ------------------------------------------------------------------ damage


def test_file_that_is_not_a_pdf_is_unreadable(docs: Path) -> None:
    path = docs / "fake.pdf"
    path.write_text("This is a plain text file pretending to be a PDF.\n" * 5)
    error = load_error(path)
    assert error.reason == "unreadable"
    assert "not a PDF file" in error.cause


def test_truncated_pdf_is_unreadable_or_loads_what_survives(docs: Path) -> None:
    whole = make_pdf(docs / "whole.pdf", ["Some text on page one."]).read_bytes()
    path = docs / "truncated.pdf"
    path.write_bytes(whole[: len(whole) // 3])
    try:
        pages = load_document(path)
    except LoaderError as error:
        assert error.reason in ("unreadable", "no_text")
    else:
        assert all(p.text for p in pages)


class RootRecorder(logging.Handler):
    """Records what reaches the root logger, which is what a terminal would show.

    caplog cannot tell: pytest also attaches its handler to non-propagating loggers.
    """

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def names(self) -> list[str]:
        return [record.name for record in self.records]


@pytest.fixture
def root_recorder(caplog: pytest.LogCaptureFixture) -> Iterator[RootRecorder]:
    caplog.set_level(logging.DEBUG)  # restored after the test
    recorder = RootRecorder()
    logging.getLogger().addHandler(recorder)
    yield recorder
    logging.getLogger().removeHandler(recorder)


def test_broken_xref_offset_is_repaired_and_pypdf_warnings_stay_quiet(
    docs: Path, root_recorder: RootRecorder
) -> None:
    data = make_pdf(docs / "good.pdf", ["Recoverable damage."]).read_bytes()
    offset = data.rindex(b"startxref") + len(b"startxref\n")
    end = data.index(b"\n", offset)
    path = docs / "broken-xref.pdf"
    path.write_bytes(data[:offset] + b"999999" + data[end:])
    with pytest.raises(pypdf.errors.PdfReadError):  # the damage is real
        pypdf.PdfReader(path, strict=True)

    root_recorder.records.clear()
    assert load_document(path)[0].text == "Recoverable damage."
    assert not [name for name in root_recorder.names() if name.startswith("pypdf")]
    summaries = [r.getMessage() for r in root_recorder.records if r.name == "ragqa.loaders.pdf"]
    assert len(summaries) == 1
    assert "pypdf worked around 2 problem(s)" in summaries[0]
    assert "incorrect startxref pointer" in summaries[0]


def test_pypdf_logs_outside_a_load_still_reach_the_root_logger(
    docs: Path, root_recorder: RootRecorder
) -> None:
    load_document(make_pdf(docs / "a.pdf", ["installs the collector"]))
    logging.getLogger("pypdf._reader").warning("from someone else's use of pypdf")
    messages = [r.getMessage() for r in root_recorder.records if r.name == "pypdf._reader"]
    assert messages == ["from someone else's use of pypdf"]


# ------------------------------------------------------------------ pypdf failing


def test_reader_raising_anything_becomes_unreadable(
    docs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = make_pdf(docs / "ok.pdf", ["fine"])

    def explode(*args: object, **kwargs: object) -> None:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(pypdf, "PdfReader", explode)
    error = load_error(path)
    assert error.reason == "unreadable"
    assert "maximum recursion depth exceeded" in error.cause
    assert isinstance(error.__cause__, RecursionError)


def test_decrypt_raising_becomes_a_loader_error(
    docs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    locked = encrypt_pdf(make_pdf(docs / "p.pdf", ["x"]), docs / "l.pdf", "pw", "AES-256")

    def no_crypto(self: object, password: str) -> None:
        raise pypdf.errors.DependencyError("cryptography>=3.1 is required for AES algorithm")

    monkeypatch.setattr(pypdf.PdfReader, "decrypt", no_crypto)
    error = load_error(locked, password="pw")
    assert error.reason == "unreadable"
    assert "cryptography" in error.cause


def fail_on_pages(monkeypatch: pytest.MonkeyPatch, failing: set[str]) -> None:
    """Make extract_text raise on pages whose real text is in ``failing``."""
    original = pypdf.PageObject.extract_text

    def flaky(self: pypdf.PageObject, *args: object, **kwargs: object) -> str:
        text = original(self, *args, **kwargs)
        if text.strip() in failing:
            raise KeyError("/Font")
        return text

    monkeypatch.setattr(pypdf.PageObject, "extract_text", flaky)


def test_a_failing_page_is_skipped_and_noted_when_others_extract(
    docs: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    path = make_pdf(docs / "flaky.pdf", ["page one", "page two", "page three"])
    fail_on_pages(monkeypatch, {"page two"})
    caplog.set_level(logging.WARNING, logger="ragqa.loaders.pdf")
    pages = load_document(path)
    assert [p.page for p in pages] == [1, 3]
    assert "skipped 1 of 3 pages" in caplog.text
    assert "page 2: '/Font'" in caplog.text


def test_all_pages_failing_is_unreadable_with_the_first_cause(
    docs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = make_pdf(docs / "broken.pdf", ["page one", "page two"])
    fail_on_pages(monkeypatch, {"page one", "page two"})
    error = load_error(path)
    assert error.reason == "unreadable"
    assert error.cause == "text extraction failed on 2 of 2 pages (page 1: '/Font')"


def fake_extraction(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    def extract(self: pypdf.PageObject, *args: object, **kwargs: object) -> str:
        return text

    monkeypatch.setattr(pypdf.PageObject, "extract_text", extract)


def test_uni_glyph_names_from_older_pypdf_are_decoded(
    docs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What pypdf < 7 extracts from a SimSun PDF without a ToUnicode map.
    fake_extraction(monkeypatch, "OP(/uni64CD/uni4F5C):  /uni674E/uni96C5/uni60E0")
    assert load_document(make_pdf(docs / "f.pdf", ["x"]))[0].text == "OP(操作): 李雅惠"


def test_glyph_names_that_name_nothing_are_garbled(
    docs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_extraction(monkeypatch, "/g23/g7/g41/g41/g50 /g12/g50/g33/g41/g4")
    error = load_error(make_pdf(docs / "f.pdf", ["x", "y"]))
    assert error.reason == "garbled"
    assert "OCR" in error.cause


# ------------------------------------------------------------------ limits


def test_more_pages_than_max_pages_is_too_large(docs: Path) -> None:
    path = make_pdf(docs / "long.pdf", ["one", "two", "three"])
    error = load_error(path, settings=Settings(max_pages=2))
    assert error.reason == "too_large"
    assert "3 pages is over the limit of 2" in error.cause
    assert len(load_document(path, settings=Settings(max_pages=3))) == 3


def test_more_text_than_max_chars_per_file_is_too_large(docs: Path) -> None:
    path = make_pdf(docs / "wordy.pdf", ["a" * 40, "b" * 40])
    error = load_error(path, settings=Settings(max_chars_per_file=60))
    assert error.reason == "too_large"
    assert "by page 2 of 2" in error.cause
    assert len(load_document(path, settings=Settings(max_chars_per_file=80))) == 2


def test_reading_past_max_seconds_per_file_is_a_timeout(docs: Path) -> None:
    path = make_pdf(docs / "slow.pdf", ["one", "two"])
    error = load_error(path, settings=Settings(max_seconds_per_file=0))
    assert error.reason == "timeout"
    assert "max_seconds_per_file" in error.cause


def test_deadline_is_checked_between_pages_without_operators(docs: Path) -> None:
    # Blank pages have no content stream, so pypdf's operator callback never runs.
    writer = pypdf.PdfWriter()
    for _ in range(3):
        writer.add_blank_page(width=200, height=200)
    path = docs / "blank.pdf"
    with open(path, "wb") as fh:
        writer.write(fh)
    assert load_error(path).reason == "no_text"
    error = load_error(path, settings=Settings(max_seconds_per_file=0))
    assert error.reason == "timeout"
    assert "stopped after 0 of 3 pages" in error.cause


def test_deadline_is_checked_inside_a_page(docs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The deadline passes while pypdf works through the page's operators: the
    # operator callback must stop it, not the check between pages.
    import ragqa.loaders.pdf as pdf_module

    calls = {"n": 0}

    class Deadline(pdf_module._Deadline):
        def passed(self) -> bool:
            calls["n"] += 1
            return calls["n"] > 1  # fine before page 1, over from the first operator on

    monkeypatch.setattr(pdf_module, "_Deadline", Deadline)
    error = load_error(make_pdf(docs / "p.pdf", ["some text"]))
    assert error.reason == "timeout"
    assert "stopped after 0 of 1 pages" in error.cause


# ------------------------------------------------------------------ helpers


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("/uni64CD/uni4F5C", "操作"),
        ("TO: /uni5929/uni6D25 2024", "TO: 天津 2024"),
        ("/uni4E002024", "一2024"),  # one group of four digits per name
        ("/uniD800", "/uniD800"),  # a surrogate is not a character
        ("/uni64cd", "/uni64cd"),  # the AGL spells the digits in upper case
        ("/unicorn and /university", "/unicorn and /university"),
    ],
)
def test_decode_glyph_names(raw: str, expected: str) -> None:
    assert decode_glyph_names(raw) == expected


@pytest.mark.parametrize(
    ("text", "garbled"),
    [
        ("/g23/g7/g41/g41/g50", True),
        ("(cid:12)(cid:13)(cid:14) (cid:15)", True),
        ("\ufffd\ufffd\ufffd ab", True),
        ("\ue001\ue002\ue003", True),
        ("See /usr/local/bin for the installed tools and more words here.", False),
        ("操作手冊", False),
        ("A/B testing and 1/2 cups", False),
        ("", False),
    ],
)
def test_looks_garbled(text: str, garbled: bool) -> None:
    assert looks_garbled(text) is garbled


def test_pdf_loader_is_usable_directly(docs: Path) -> None:
    path = make_pdf(docs / "direct.pdf", ["Direct use."])
    pages = PdfLoader().load(path, password=None, settings=Settings())
    assert pages[0].text == "Direct use."
