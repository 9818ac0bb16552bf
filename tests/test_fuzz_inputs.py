"""Hostile and broken input never escapes as anything but ragqa's own errors.

Every input below goes through :func:`ragqa.loaders.load_document`, which may only
return pages of clean text or raise :class:`LoaderError` with a known ``reason``, and
through :meth:`KnowledgeBase.add`, which may only report a file as failed (never as
an ``internal`` error, which is how it reports a bug) and must leave the knowledge
base intact. Hypothesis generates the inputs with a fixed number of examples per
test, so a run is bounded; a failure prints the example to reproduce it.

Inputs: real PDFs (fixtures made here and the shared PDFs) truncated, with bytes
flipped, zeroed, inserted or deleted; random bytes under every supported
extension; text with zero-width, control, bidi and combining characters in several
encodings, mixed within one file; one huge line; and files built to exhaust a
limit (a FlateDecode stream that inflates to 200 MB, 6,000 pages, a 300 MB file).
"""

from __future__ import annotations

import itertools
import re
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ragqa import KnowledgeBase, Settings
from ragqa.embeddings import HashingEmbedder
from ragqa.errors import LoaderError, RagqaError
from ragqa.integrity import check_integrity
from ragqa.loaders import SUPPORTED_EXTENSIONS, load_document

# The reasons load_document documents; anything else is a bug.
REASONS = {
    "not_found", "io", "unsupported", "empty", "too_large", "binary", "encrypted",
    "unreadable", "no_text", "garbled", "timeout",
}  # fmt: skip

# Small limits, so that a hostile example costs little; the dedicated tests below
# check the limits themselves, at their defaults where that is cheap.
FUZZ_LIMITS = Settings(
    embedding_model="hashing:64",
    chunk_size=200,
    chunk_overlap=40,
    max_file_mb=2,
    max_pages=50,
    max_chars_per_file=200_000,
    max_seconds_per_file=5,
)


def fuzz(examples: int) -> settings:
    """Hypothesis settings for ``examples`` cases. No deadline: pypdf's time per
    file varies with the damage. Fixtures such as ``tmp_path`` are shared by the
    cases of one test on purpose (each case overwrites its file)."""
    return settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


# What normalize_text promises every page: no control characters but tab and
# newline, and no invisible characters.
_NOT_IN_CLEAN_TEXT = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u00ad\u200b-\u200f\u2060\ufeff]")

# A tally of outcomes per test, printed when the module is done (pytest -s).
OUTCOMES: dict[str, Counter[str]] = {}
# Each hypothesis case of a test gets its own folder under the shared tmp_path.
_RUNS = itertools.count()


@pytest.fixture(scope="module", autouse=True)
def _print_outcomes() -> Iterator[None]:
    yield
    for test, counts in OUTCOMES.items():
        print(f"\nfuzz {test}: {sum(counts.values())} cases, {dict(sorted(counts.items()))}")


def load_outcome(path: Path, limits: Settings = FUZZ_LIMITS, password: str | None = None) -> str:
    """Load ``path``; return ``"loaded"`` or the LoaderError's reason.

    Any other exception propagates and fails the test.
    """
    try:
        pages = load_document(path, password=password, settings=limits)
    except LoaderError as exc:
        assert exc.reason in REASONS, exc
        assert str(exc).startswith(str(path)), exc  # the message names the file
        return exc.reason
    assert pages, "load_document returned no pages and no error"
    numbers = [page.page for page in pages]
    assert numbers == sorted(set(numbers)) and numbers[0] >= 1
    for page in pages:
        assert isinstance(page.text, str) and page.text.strip()
        assert not _NOT_IN_CLEAN_TEXT.search(page.text), repr(page.text[:200])
        assert "\r" not in page.text
    assert sum(len(page.text) for page in pages) <= limits.max_chars_per_file
    return "loaded"


def _tally(test: str, outcome: str) -> None:
    OUTCOMES.setdefault(test, Counter())[outcome] += 1


# ----------------------------------------------------------------- seed PDFs


def _fpdf(pages: list[str], *, compress: bool = True) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_creation_date(datetime(2024, 1, 1, tzinfo=UTC))
    pdf.set_compression(compress)
    pdf.set_font("helvetica", size=12)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    return bytes(pdf.output())


def _encrypted(data: bytes, password: str) -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(BytesIO(data)))
    writer.encrypt(user_password=password, owner_password=password + "!", algorithm="AES-128")
    out = BytesIO()
    writer.write(out)
    return out.getvalue()


TEXT = "Oolong tea is partly oxidised. Dong Ding oolong comes from Lugu in Nantou County."
# In no seed file, so that a search for it can only find the good file of a batch.
GOOD = "A quartz lantern glows over the harbour every night."
FIXTURE_PDFS = {
    "compressed": _fpdf([TEXT, "Second page: " + TEXT]),
    "uncompressed": _fpdf([TEXT], compress=False),
    "encrypted": _encrypted(_fpdf([TEXT]), "secret"),
}
# The small shared PDFs: clean, CJK, encrypted, broken xref, scanned, garbled.
SHARED_SEEDS = (
    "samplefiles__minimal-document.pdf",
    "pypdf__multilang.pdf",
    "pypdf__issue-297.pdf",
    "pdfminer__simple3.pdf",
    "pypdf__crazyones-encrypted-256.pdf",
    "pymupdf__test_3854.pdf",
    "pdfminer__pdf-with-jbig2.pdf",
)

MUTATIONS = ("truncate", "flip", "zero_run", "insert", "delete", "flip_tail", "dup_range")


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """A seed file with one to four random edits."""
    data = bytearray(draw(st.sampled_from(seeds)))
    edits = draw(
        st.lists(
            st.tuples(st.sampled_from(MUTATIONS), st.integers(0, 2**31), st.integers(1, 256)),
            min_size=1,
            max_size=4,
        )
    )
    for kind, where, size in edits:
        if not data:
            break
        at = where % len(data)
        if kind == "truncate":
            del data[at:]
        elif kind == "flip":
            data[at] ^= 1 << (size % 8)
        elif kind == "zero_run":
            data[at : at + size] = bytes(len(data[at : at + size]))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=size))
        elif kind == "delete":
            del data[at : at + size]
        elif kind == "flip_tail":
            # The xref table and trailer live at the end: damage the structure,
            # not just a compressed stream.
            tail = max(0, len(data) - 400)
            data[tail + where % (len(data) - tail)] ^= 0xFF
        elif kind == "dup_range":
            data[at:at] = data[at : at + size * 8]
    return bytes(data)


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@fuzz(250)
@given(data=mutated(list(FIXTURE_PDFS.values())), password=st.sampled_from([None, "secret"]))
@example(data=FIXTURE_PDFS["compressed"][:-30], password=None)
@example(data=FIXTURE_PDFS["encrypted"][: len(FIXTURE_PDFS["encrypted"]) // 2], password="secret")
def test_damaged_fixture_pdfs(tmp_path: Path, data: bytes, password: str | None) -> None:
    path = _write(tmp_path, "damaged.pdf", data)
    _tally("damaged fixture PDFs", load_outcome(path, password=password))


@pytest.mark.shared_data
@fuzz(150)
@given(choice=st.data())
def test_damaged_shared_pdfs(tmp_path: Path, shared_data: Path, choice: st.DataObject) -> None:
    seeds = [(shared_data / "pdfs" / name).read_bytes() for name in SHARED_SEEDS]
    data = choice.draw(mutated(seeds))
    path = _write(tmp_path, "damaged.pdf", data)
    _tally("damaged shared PDFs", load_outcome(path))


@pytest.mark.shared_data
@pytest.mark.parametrize("name", SHARED_SEEDS + ("samplefiles__multicolumn.pdf",))
def test_every_truncation_of_a_shared_pdf(tmp_path: Path, shared_data: Path, name: str) -> None:
    """Cut at 24 evenly spaced lengths, including inside the header and the trailer."""
    data = (shared_data / "pdfs" / name).read_bytes()
    for cut in sorted({1, 5, 9, *range(0, len(data), max(1, len(data) // 20)), len(data) - 1}):
        path = _write(tmp_path, f"cut-{cut}.pdf", data[:cut])
        _tally("truncated shared PDFs", load_outcome(path))


@fuzz(150)
@given(data=st.binary(max_size=8192), extension=st.sampled_from(sorted(SUPPORTED_EXTENSIONS)))
@example(data=b"", extension=".pdf")
@example(data=b"%PDF-1.7\n", extension=".pdf")
@example(data=b"\x00" * 100, extension=".txt")
@example(data=b"\xff\xfe" + b"\x00\xd8" * 10, extension=".md")  # UTF-16 with lone surrogates
def test_random_bytes(tmp_path: Path, data: bytes, extension: str) -> None:
    path = _write(tmp_path, f"random{extension}", data)
    _tally("random bytes", load_outcome(path))


# ------------------------------------------------------------------ hostile text

# Characters that break naive text handling: zero-width and bidi controls, C0/C1
# controls, combining marks, line and paragraph separators, a BOM in the middle,
# CJK, emoji and full-width forms.
ODD_CHARACTERS = (
    "\u200b\u200c\u200d\u200e\u200f\u2060\ufeff\u00ad"
    "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
    "\r\n\t\u0301\u0308\u20dd\u2028\u2029"
    "茶起源於中國臺灣的烏龍茶，「」。！ＡＢＣ１２３ﬁﬂ"
    "😀👍🏽\U0001f468\u200d\U0001f469\u200d\U0001f467"
)
CONTROL_CHARACTERS = "\x00\x01\x07\x08\x0b\x0c\x1b\x7f\x85\x9f"


@st.composite
def _hostile_text(draw: st.DrawFn) -> str:
    """Ordinary and odd characters, with a few control characters sprinkled in
    (a text that is mostly controls is rightly read as binary, and tells less)."""
    ordinary = st.characters(codec="utf-8", exclude_categories=("Cc",))
    text = draw(
        st.text(alphabet=st.one_of(st.sampled_from(ODD_CHARACTERS), ordinary), max_size=600)
    )
    controls = st.tuples(st.integers(0, 600), st.sampled_from(CONTROL_CHARACTERS))
    for where, control in draw(st.lists(controls, max_size=len(text) // 30)):
        at = where % (len(text) + 1)
        text = text[:at] + control + text[at:]
    return text


hostile_text = _hostile_text()
ENCODINGS = ("utf-8", "utf-8-sig", "utf-16", "utf-16-le", "gb18030", "big5", "cp1252", "shift_jis")


@st.composite
def encoded_text(draw: st.DrawFn) -> bytes:
    """Text in one encoding, or pieces of it in several (a file edited by two tools)."""
    pieces = draw(
        st.lists(st.tuples(hostile_text, st.sampled_from(ENCODINGS)), min_size=1, max_size=3)
    )
    return b"".join(text.encode(encoding, errors="replace") for text, encoding in pieces)


@fuzz(300)
@given(data=encoded_text(), extension=st.sampled_from([".txt", ".md"]))
@example(data="a\u200bb\u200b".encode() * 1000, extension=".txt")
@example(data="\u202e\u2066茶\x00".encode("utf-16"), extension=".md")
@example(
    data="Ünïcödé ".encode("cp1252") + "茶葉".encode("big5") + "茶叶".encode("gb18030"),
    extension=".txt",
)
def test_hostile_text_files(tmp_path: Path, data: bytes, extension: str) -> None:
    path = _write(tmp_path, f"hostile{extension}", data)
    _tally("hostile text files", load_outcome(path))


def test_one_huge_line_is_split_and_stored(
    make_kb: Callable[..., KnowledgeBase], tmp_path: Path
) -> None:
    """A megabyte without a single line break, space or sentence end."""
    path = _write(tmp_path, "line.txt", b"x" * 1_000_000)
    kb = make_kb()
    report = kb.add([path])
    assert report.added == 1 and report.chunks >= 1_000_000 // 200
    assert check_integrity(kb.directory).ok


# ---------------------------------------------------------- through KnowledgeBase.add

any_file = st.one_of(
    st.tuples(mutated(list(FIXTURE_PDFS.values())), st.just(".pdf")),
    st.tuples(st.binary(max_size=2048), st.sampled_from(sorted(SUPPORTED_EXTENSIONS))),
    st.tuples(encoded_text(), st.sampled_from([".txt", ".md"])),
)


@fuzz(40)
@given(files=st.lists(any_file, min_size=1, max_size=5))
def test_add_reports_bad_files_and_keeps_the_rest(
    tmp_path: Path, files: list[tuple[bytes, str]]
) -> None:
    folder = tmp_path / f"batch-{next(_RUNS)}"
    folder.mkdir()
    (folder / "good.md").write_text(GOOD, encoding="utf-8")
    for n, (data, extension) in enumerate(files):
        (folder / f"file-{n}{extension}").write_bytes(data)
    with KnowledgeBase.create(
        folder / ".kb", settings=FUZZ_LIMITS, embedder=HashingEmbedder(64)
    ) as kb:
        report = kb.add([folder])
        assert len(report.files) == len(files) + 1
        for result in report.files:
            _tally("KnowledgeBase.add files", result.reason or result.status)
            if result.status == "failed":
                assert result.reason in REASONS, result  # never "internal": that is a bug
                assert result.error and Path(result.source).name in result.error
            else:
                assert result.status == "added" and result.chunks > 0
        assert kb.search("quartz lantern harbour", k=1, mode="lexical")[0].file_name == "good.md"
        assert len(kb.documents()) == report.added
    report = check_integrity(folder / ".kb")
    assert report.ok, report.summary()


@pytest.fixture(scope="module")
def small_kb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KnowledgeBase]:
    directory = tmp_path_factory.mktemp("queries")
    with KnowledgeBase.create(
        directory / "kb",
        settings=FUZZ_LIMITS.replace(min_relevance=0.0),
        embedder=HashingEmbedder(64),
    ) as kb:
        kb.add_texts({"tea": TEXT, "茶": "茶起源於中國西南地區，已有數千年的飲用歷史。"})
        yield kb


@fuzz(200)
@given(
    query=hostile_text, mode=st.sampled_from(["dense", "lexical", "hybrid"]), k=st.integers(1, 50)
)
@example(query="\x00", mode="hybrid", k=1)
@example(query="\u200b\u200b", mode="lexical", k=3)
def test_hostile_queries(small_kb: KnowledgeBase, query: str, mode: str, k: int) -> None:
    try:
        hits = small_kb.search(query, k=k, mode=mode)
    except RagqaError as exc:
        _tally("hostile queries", f"{type(exc).__name__}")
        assert str(exc)
        return
    _tally("hostile queries", "answered")
    assert len(hits) <= k and all(h.source in ("tea", "茶") for h in hits)


@fuzz(40)
@given(
    texts=st.dictionaries(st.text(min_size=1, max_size=40), hostile_text, min_size=1, max_size=4)
)
def test_add_texts_with_hostile_text(tmp_path: Path, texts: dict[str, str]) -> None:
    directory = tmp_path / f"kb-{next(_RUNS)}"
    with KnowledgeBase.create(directory, settings=FUZZ_LIMITS, embedder=HashingEmbedder(64)) as kb:
        report = kb.add_texts(texts)
        for result in report.files:
            _tally("add_texts", result.reason or result.status)
            assert result.status == "added" or result.reason == "empty", result
    assert check_integrity(directory).ok


# ----------------------------------------------------------------------- limits


def _pdf(objects: list[bytes]) -> bytes:
    """A PDF file from object bodies numbered from 1; object 1 is the catalog."""
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


_FONT = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"
_PAGE = (
    b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
    b"/Resources << /Font << /F1 3 0 R >> >> /Contents 4 0 R >>"
)


def bomb_pdf(inflated_bytes: int) -> bytes:
    """One page whose FlateDecode content stream inflates to ``inflated_bytes`` of
    text-showing operators (compressed about 350 to 1)."""
    compressor = zlib.compressobj(9)
    block = b"(Lorem ipsum dolor sit amet) Tj T*\n" * 20_000
    parts = [compressor.compress(b"BT /F1 10 Tf 12 TL 72 720 Td\n")]
    for _ in range(0, inflated_bytes, len(block)):
        parts.append(compressor.compress(block))
    parts += [compressor.compress(b"ET\n"), compressor.flush()]
    stream = b"".join(parts)
    return _pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [5 0 R] /Count 1 >>",
            _FONT,
            b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream)
            + stream
            + b"\nendstream",
            _PAGE,
        ]
    )


def many_pages_pdf(pages: int, text: bytes = b"Page text", length: bytes = b"") -> bytes:
    """``pages`` pages that share one small content stream (whose /Length entry may
    be replaced by ``length``)."""
    content = b"BT /F1 12 Tf 72 720 Td (" + text + b") Tj ET"
    kids = b" ".join(b"%d 0 R" % (5 + n) for n in range(pages))
    return _pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % pages,
            _FONT,
            b"<< /Length "
            + (length or b"%d" % len(content))
            + b" >>\nstream\n"
            + content
            + b"\nendstream",
            *[_PAGE] * pages,
        ]
    )


def test_decompression_bomb_is_refused(tmp_path: Path) -> None:
    """200 MB of text operators in a 0.6 MB file, with the default limits.

    pypdf stops inflating at its own cap (75 MB), long before memory runs short,
    and the loader reports the file as failed with the cause.
    """
    data = bomb_pdf(200_000_000)
    assert len(data) < 1_000_000
    path = _write(tmp_path, "bomb.pdf", data)
    with pytest.raises(LoaderError) as error:
        load_document(path, settings=Settings())
    assert error.value.reason in ("too_large", "unreadable")
    assert "limit" in str(error.value).lower()


def test_a_slow_page_stops_at_max_seconds_per_file(tmp_path: Path) -> None:
    """5 MB of operators inflate fine but take pypdf a long time to extract."""
    path = _write(tmp_path, "slow.pdf", bomb_pdf(5_000_000))
    with pytest.raises(LoaderError) as error:
        load_document(path, settings=Settings(max_seconds_per_file=1))
    assert error.value.reason == "timeout"
    assert "max_seconds_per_file" in str(error.value)


def test_too_many_pages_stops_at_max_pages(tmp_path: Path) -> None:
    path = _write(tmp_path, "pages.pdf", many_pages_pdf(6000))
    with pytest.raises(LoaderError) as error:
        load_document(path, settings=Settings())  # the default limit: 5,000 pages
    assert error.value.reason == "too_large"
    assert "6,000 pages is over the limit of 5,000" in str(error.value)
    assert "max_pages" in str(error.value)


def test_too_much_text_stops_at_max_chars_per_file(tmp_path: Path) -> None:
    limits = Settings(max_chars_per_file=5_000)
    pdf = _write(tmp_path, "long.pdf", many_pages_pdf(40, b"x" * 200))
    with pytest.raises(LoaderError) as error:
        load_document(pdf, settings=limits)
    assert error.value.reason == "too_large" and "max_chars_per_file" in str(error.value)
    text = _write(tmp_path, "long.txt", b"word " * 2_000)
    with pytest.raises(LoaderError) as error:
        load_document(text, settings=limits)
    assert error.value.reason == "too_large" and "max_chars_per_file" in str(error.value)


@pytest.mark.parametrize("extension", [".pdf", ".txt"])
def test_enormous_file_stops_at_max_file_mb_without_being_read(
    tmp_path: Path, extension: str
) -> None:
    path = tmp_path / f"huge{extension}"
    with open(path, "wb") as fh:
        fh.truncate(300 * 1024 * 1024)  # sparse: 300 MB that take no disk space
    with pytest.raises(LoaderError) as error:
        load_document(path, settings=Settings())  # the default limit: 200 MB
    assert error.value.reason == "too_large"
    assert "300.0 MB, over the limit of 200 MB" in str(error.value)


def test_add_reports_every_limit_as_a_failed_file(
    make_kb: Callable[..., KnowledgeBase], tmp_path: Path
) -> None:
    folder = tmp_path / "limits"
    folder.mkdir()
    _write(folder, "bomb.pdf", bomb_pdf(200_000_000))
    _write(folder, "pages.pdf", many_pages_pdf(60))
    _write(folder, "long.txt", b"word " * 2_000)
    with open(folder / "huge.md", "wb") as fh:
        fh.truncate(3 * 1024 * 1024)
    _write(folder, "fine.md", TEXT.encode())
    kb = make_kb(max_file_mb=2, max_pages=50, max_chars_per_file=5_000)
    report = kb.add([folder])
    reasons = {Path(f.source).name: f.reason for f in report.files}
    bomb = reasons.pop("bomb.pdf")
    assert bomb in ("too_large", "unreadable")
    assert reasons == {
        "pages.pdf": "too_large",
        "long.txt": "too_large",
        "huge.md": "too_large",
        "fine.md": None,
    }
    assert report.added == 1 and check_integrity(kb.directory).ok


def test_hostile_structures(tmp_path: Path) -> None:
    """Hand-made PDFs that send a parser in circles or out of bounds."""
    cases = {
        # A page tree whose kid is the tree itself.
        "cycle": _pdf(
            [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [2 0 R] /Count 1 >>"]
        ),
        # A page count of a billion with one kid.
        "count": many_pages_pdf(1).replace(b"/Count 1", b"/Count 1000000000"),
        # A stream that claims to be a terabyte long.
        "length": many_pages_pdf(1, length=b"1000000000000"),
        # Arrays nested 50,000 deep.
        "nesting": _pdf(
            [
                b"<< /Type /Catalog /Pages 2 0 R /Deep " + b"[" * 50_000 + b"]" * 50_000 + b" >>",
                b"<< /Type /Pages /Kids [] /Count 0 >>",
            ]
        ),
        # startxref pointing past the end of the file.
        "startxref": many_pages_pdf(1).replace(b"startxref\n", b"startxref\n99999999"),
        # An object that refers to itself as its own length.
        "self_length": many_pages_pdf(1, length=b"4 0 R"),
    }
    for name, data in cases.items():
        outcome = load_outcome(_write(tmp_path, f"{name}.pdf", data), limits=Settings())
        _tally("hostile PDF structures", f"{name}: {outcome}")
