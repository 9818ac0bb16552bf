"""The factory, and the contract every loader keeps, run over every backend."""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from loader_fixtures import make_pdf

from ragqa.config import Settings
from ragqa.errors import LoaderError
from ragqa.loaders import SUPPORTED_EXTENSIONS, Loader, is_supported, load_document
from ragqa.loaders.pdf import PdfLoader
from ragqa.loaders.text import TextLoader
from ragqa.normalize import normalize_text
from ragqa.types import Page


def write_txt(path: Path, paragraphs: list[str]) -> Path:
    path.write_text("\n\n".join(paragraphs), encoding="utf-8")
    return path


def write_pdf(path: Path, paragraphs: list[str]) -> Path:
    return make_pdf(path, paragraphs)


# Each backend with a writer that puts the given paragraphs into a file it reads.
# A text file keeps them on one page; a PDF puts each on its own page.
BACKENDS: list[tuple[str, type[Loader], Callable[[Path, list[str]], Path]]] = [
    (".txt", TextLoader, write_txt),
    (".md", TextLoader, write_txt),
    (".pdf", PdfLoader, write_pdf),
]
BACKEND_IDS = [extension for extension, _, _ in BACKENDS]


@pytest.fixture(params=BACKENDS, ids=BACKEND_IDS)
def backend(request: pytest.FixtureRequest) -> tuple[str, type[Loader], Callable]:
    return request.param


def test_supported_extensions() -> None:
    assert frozenset({".pdf", ".txt", ".md", ".markdown"}) == SUPPORTED_EXTENSIONS


@pytest.mark.parametrize(
    ("name", "supported"),
    [
        ("a.pdf", True),
        ("a.PDF", True),
        ("dir.v2/a.Md", True),
        ("a.markdown", True),
        ("a.txt", True),
        ("a.docx", False),
        ("a.pdf.zip", False),
        ("README", False),
        (".txt", False),  # a hidden file named ".txt" has no extension
    ],
)
def test_is_supported_looks_at_the_extension_only(name: str, supported: bool) -> None:
    assert is_supported(name) is supported
    assert is_supported(Path(name)) is supported


def test_every_extension_has_a_loader(backend: tuple[str, type[Loader], Callable]) -> None:
    extension, loader, _ = backend
    assert issubclass(loader, Loader)
    assert extension in loader.extensions


def test_loader_contract(docs: Path, backend: tuple[str, type[Loader], Callable]) -> None:
    extension, loader, writer = backend
    path = writer(docs / f"doc{extension}", ["First  paragraph here.", "Second one."])
    pages = load_document(path)
    assert pages == loader().load(path, password=None, settings=Settings())
    assert all(isinstance(p, Page) for p in pages)
    assert [p.page for p in pages] == list(range(1, len(pages) + 1))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    for page in pages:
        assert page.source == str(path.resolve())
        assert page.content_hash == digest
        assert page.text and normalize_text(page.text) == page.text
    joined = "\n".join(p.text for p in pages)
    assert "First paragraph here." in joined and "Second one." in joined


def test_relative_path_becomes_an_absolute_source(
    docs: Path, backend: tuple[str, type[Loader], Callable], monkeypatch: pytest.MonkeyPatch
) -> None:
    extension, _, writer = backend
    writer(docs / f"rel{extension}", ["Some words."])
    (docs / "sub").mkdir()
    monkeypatch.chdir(docs)
    pages = load_document(f"./sub/../rel{extension}")
    assert pages[0].source == str((docs / f"rel{extension}").resolve())
    assert Path(pages[0].source).is_absolute()


def test_missing_file_is_not_found(docs: Path, backend: tuple[str, type[Loader], Callable]) -> None:
    extension, loader, _ = backend
    missing = docs / f"missing{extension}"
    for call in (
        lambda: load_document(missing),
        lambda: loader().load(missing, password=None, settings=Settings()),
    ):
        with pytest.raises(LoaderError) as caught:
            call()
        assert caught.value.reason == "not_found"
        assert caught.value.path == str(missing)
        assert str(missing) in str(caught.value)


def test_empty_file_is_empty(docs: Path, backend: tuple[str, type[Loader], Callable]) -> None:
    extension, _, _ = backend
    path = docs / f"empty{extension}"
    path.write_bytes(b"")
    with pytest.raises(LoaderError) as caught:
        load_document(path)
    assert caught.value.reason == "empty"
    assert "0 bytes" in caught.value.cause


def test_file_over_max_file_mb_is_too_large(
    docs: Path, backend: tuple[str, type[Loader], Callable]
) -> None:
    extension, _, writer = backend
    path = writer(docs / f"big{extension}", ["Some text. " * 50])
    size_mb = path.stat().st_size / (1024 * 1024)
    with pytest.raises(LoaderError) as caught:
        load_document(path, settings=Settings(max_file_mb=size_mb / 2))
    assert caught.value.reason == "too_large"
    assert "max_file_mb" in caught.value.cause
    assert load_document(path, settings=Settings(max_file_mb=size_mb * 2))


def test_folder_is_an_io_error(tmp_path: Path) -> None:
    folder = tmp_path / "looks-like.txt"
    folder.mkdir()
    with pytest.raises(LoaderError) as caught:
        load_document(folder)
    assert caught.value.reason == "io"
    assert "folder" in caught.value.cause


@pytest.mark.parametrize("name", ["slides.pptx", "data.csv", "README", "archive.pdf.gz"])
def test_unsupported_extension_names_the_supported_ones(docs: Path, name: str) -> None:
    path = docs / name
    path.write_bytes(b"some content")
    with pytest.raises(LoaderError) as caught:
        load_document(path)
    assert caught.value.reason == "unsupported"
    assert caught.value.cause.endswith("supported: .markdown, .md, .pdf, .txt")


def test_missing_file_is_reported_before_its_extension(docs: Path) -> None:
    with pytest.raises(LoaderError) as caught:
        load_document(docs / "gone.docx")
    assert caught.value.reason == "not_found"


def test_home_folder_is_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "home-note.md").write_text("at home", encoding="utf-8")
    assert load_document("~/home-note.md")[0].text == "at home"


# ------------------------------------------------------------------ robustness


@pytest.fixture(scope="module")
def a_valid_pdf(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    folder = tmp_path_factory.mktemp("seed")
    return make_pdf(folder / "seed.pdf", ["Seed page one.", "Seed page two."]).read_bytes()


def load_bytes(data: bytes, name: str) -> list[Page] | LoaderError:
    """Load ``data`` saved as ``name``: the pages, or the LoaderError (nothing else)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(data)
        try:
            return load_document(path, settings=Settings(max_seconds_per_file=10))
        except LoaderError as error:
            assert error.reason in {
                "empty",
                "binary",
                "encrypted",
                "unreadable",
                "no_text",
                "garbled",
                "too_large",
                "timeout",
            }
            assert error.cause
            return error


@settings(max_examples=150, deadline=None)
@given(data=st.binary(max_size=2048), extension=st.sampled_from([".pdf", ".txt", ".md"]))
def test_random_bytes_give_pages_or_a_loader_error(data: bytes, extension: str) -> None:
    result = load_bytes(data, "random" + extension)
    if isinstance(result, list):
        assert result and all(page.text for page in result)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    edits=st.lists(
        st.tuples(st.floats(0, 1, exclude_max=True), st.binary(min_size=1, max_size=8)),
        min_size=1,
        max_size=6,
    ),
    cut=st.one_of(st.none(), st.floats(0, 1)),
)
def test_damaged_pdfs_give_pages_or_a_loader_error(
    a_valid_pdf: bytes, edits: list[tuple[float, bytes]], cut: float | None
) -> None:
    data = bytearray(a_valid_pdf)
    for where, replacement in edits:
        at = int(where * len(data))
        data[at : at + len(replacement)] = replacement
    if cut is not None:
        data = data[: int(cut * len(data))]
    result = load_bytes(bytes(data), "damaged.pdf")
    if isinstance(result, list):
        assert result and all(page.text for page in result)


def test_environment_does_not_change_the_defaults(
    docs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without settings, load_document uses Settings() and never reads RAGQA_*
    # variables (an unknown one would otherwise raise ConfigError here).
    monkeypatch.setenv("RAGQA_NOT_A_SETTING", "1")
    path = write_txt(docs / "env.txt", ["fine"])
    assert load_document(path)[0].text == "fine"
