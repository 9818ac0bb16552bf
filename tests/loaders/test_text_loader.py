"""The text and Markdown backend: encodings, binary files and limits."""

from __future__ import annotations

import codecs
import hashlib
from pathlib import Path

import pytest
from loader_fixtures import BIG5_TEXTS, GB18030_TEXTS

from ragqa.config import Settings
from ragqa.errors import LoaderError
from ragqa.loaders import load_document
from ragqa.loaders.text import TextLoader, detect_encoding


def write(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


def load_error(path: Path, **kwargs: object) -> LoaderError:
    with pytest.raises(LoaderError) as caught:
        load_document(path, **kwargs)  # type: ignore[arg-type]
    return caught.value


@pytest.mark.parametrize("name", ["notes.txt", "notes.md", "notes.markdown", "NOTES.TXT"])
def test_text_file_is_one_page_numbered_one(docs: Path, name: str) -> None:
    data = b"# Title\r\n\r\n\r\n\r\nBody  text.\r\n"
    path = write(docs, name, data)
    pages = load_document(path)
    assert len(pages) == 1
    page = pages[0]
    assert page.page == 1
    assert page.text == "# Title\n\nBody text."
    assert page.source == str(path.resolve())
    assert page.content_hash == hashlib.sha256(data).hexdigest()


def test_utf8_with_bom_loses_the_bom(docs: Path) -> None:
    path = write(docs, "bom.txt", codecs.BOM_UTF8 + "你好, BOM".encode())
    assert load_document(path)[0].text == "你好, BOM"


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_utf16_with_bom_is_read(docs: Path, encoding: str) -> None:
    bom = codecs.BOM_UTF16_LE if encoding.endswith("le") else codecs.BOM_UTF16_BE
    path = write(docs, "notepad.txt", bom + "Notepad 的 Unicode 檔案".encode(encoding))
    assert load_document(path)[0].text == "Notepad 的 Unicode 檔案"


@pytest.mark.parametrize("text", GB18030_TEXTS)
def test_short_gb18030_text_is_detected(docs: Path, text: str) -> None:
    data = text.encode("gb18030")
    assert data != text.encode("utf-8")  # not trivially UTF-8
    assert load_document(write(docs, "gb.txt", data))[0].text == text


@pytest.mark.parametrize("text", BIG5_TEXTS)
def test_short_big5_text_is_detected(docs: Path, text: str) -> None:
    data = text.encode("big5")
    assert load_document(write(docs, "big5.md", data))[0].text == text


def test_longer_gb18030_and_big5_files_are_detected(docs: Path) -> None:
    simplified = "\n".join(GB18030_TEXTS * 3)
    traditional = "\n".join(BIG5_TEXTS * 3)
    assert load_document(write(docs, "a.txt", simplified.encode("gb18030")))[0].text == simplified
    assert load_document(write(docs, "b.txt", traditional.encode("big5")))[0].text == traditional


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        ("Café crème, “quoted” text, a naïve façade – and other words.", "cp1252"),
        ("Plain English with one curly quote’s apostrophe.", "cp1252"),
        ("Über die Brücke gehen wir später nach Hause.", "cp1252"),
        ("日本語のテキストファイルです。これはテストです。", "shift_jis"),
        ("Привет, мир! Это небольшой тест кодировки.", "cp1251"),
    ],
)
def test_other_legacy_encodings_fall_back_sensibly(text: str, encoding: str) -> None:
    data = text.encode(encoding)
    detected = detect_encoding(data)
    assert detected is not None
    assert data.decode(detected) == text


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"plain ascii", "utf-8"),
        ("中文".encode(), "utf-8"),
        (codecs.BOM_UTF8 + b"x", "utf-8-sig"),
        (codecs.BOM_UTF16_LE + "x".encode("utf-16-le"), "utf-16"),
        ("簡體中文測試".encode("gb18030"), "gb18030"),
        ("繁體中文測試".encode("big5"), "big5"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", None),
    ],
)
def test_detect_encoding(data: bytes, expected: str | None) -> None:
    assert detect_encoding(data) == expected


@pytest.mark.parametrize(
    "data",
    [
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00",  # an image
        b"PK\x03\x04\x14\x00\x06\x00" + bytes(range(256)),  # a zip (docx, xlsx)
        bytes(range(1, 32)) * 8,  # control characters but no NUL
    ],
)
def test_binary_data_named_txt_is_binary(docs: Path, data: bytes) -> None:
    error = load_error(write(docs, "picture.txt", data))
    assert error.reason == "binary"
    assert error.cause.startswith("binary data")


def test_a_few_control_characters_do_not_make_text_binary(docs: Path) -> None:
    text = "A log line with an escape \x1b[0m in it and enough words around it to be text.\n"
    assert load_document(write(docs, "log.txt", text.encode()))[0].text.startswith("A log line")


def test_empty_text_file_is_empty(docs: Path) -> None:
    error = load_error(write(docs, "empty.md", b""))
    assert error.reason == "empty"


def test_whitespace_only_text_file_is_empty(docs: Path) -> None:
    error = load_error(write(docs, "blank.txt", b" \n\t\r\n  \n"))
    assert error.reason == "empty"
    assert "only whitespace" in error.cause


def test_text_over_max_chars_per_file_is_too_large(docs: Path) -> None:
    path = write(docs, "long.txt", b"word " * 100)
    error = load_error(path, settings=Settings(max_chars_per_file=100))
    assert error.reason == "too_large"
    assert "max_chars_per_file" in error.cause
    assert load_document(path, settings=Settings(max_chars_per_file=499))[0].text.startswith("word")


def test_text_loader_ignores_a_password(docs: Path) -> None:
    path = write(docs, "plain.txt", b"no secrets")
    pages = TextLoader().load(path, password="anything", settings=Settings())
    assert pages[0].text == "no secrets"
