"""Tests for ragqa.splitting: sentence spans and chunks for Chinese, English and mixed text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ragqa import ConfigError, Settings
from ragqa.lang import is_cjk
from ragqa.splitting import sentence_spans, split_into_chunks, split_pages
from ragqa.structure import parse_blocks
from ragqa.types import Chunk, Page

# --- helpers -----------------------------------------------------------------------


def sentences(text: str) -> list[str]:
    return [text[start:end] for start, end in sentence_spans(text)]


def chunk(
    text: str, size: int, overlap: int, source: str = "doc.txt", page: int = 1
) -> list[Chunk]:
    return split_into_chunks(
        Page(source, page, text, "hash"), chunk_size=size, chunk_overlap=overlap
    )


def is_word_char(char: str) -> bool:
    """A letter or digit of a space-separated script: cutting between two is mid-word."""
    return char.isalnum() and not is_cjk(char)


def token_length_around(text: str, position: int) -> int:
    """Length of the run of non-space, non-CJK characters that spans ``position``."""
    start = end = position
    while start > 0 and not text[start - 1].isspace() and not is_cjk(text[start - 1]):
        start -= 1
    while end < len(text) and not text[end].isspace() and not is_cjk(text[end]):
        end += 1
    return end - start


def cuts_mid_word(text: str, position: int) -> bool:
    return 0 < position < len(text) and (
        is_word_char(text[position - 1]) and is_word_char(text[position])
    )


def check_chunks(page: Page, chunks: list[Chunk], size: int, overlap: int) -> None:
    """Every invariant the splitter promises, for one page."""
    text = page.text
    covered = [False] * len(text)
    for index, item in enumerate(chunks):
        assert item.source == page.source and item.page == page.page
        assert text[item.start : item.end] == item.text, "offsets must round trip"
        assert item.text.strip() == item.text and item.text, "chunks are trimmed, never blank"
        assert len(item.text) <= size, f"chunk {index} has {len(item.text)} > {size} chars"
        for position in (item.start, item.end):
            if cuts_mid_word(text, position):
                # The one documented exception: a token longer than a whole chunk.
                assert token_length_around(text, position) > size, (
                    f"chunk {index} cut mid-word at {position}: "
                    f"{text[max(0, position - 15) : position]!r}|{text[position : position + 15]!r}"
                )
        for position in range(item.start, item.end):
            covered[position] = True
    for previous, current in zip(chunks, chunks[1:], strict=False):
        assert previous.start < current.start and previous.end < current.end, "chunks in order"
        assert previous.end - current.start <= overlap, "overlap within budget"
    # Page furniture (page numbers, image links, repeated headers) is left out of
    # chunks; everything else is in one.
    for block in parse_blocks(text):
        if (
            block.kind == "furniture"
            and len(chunks)
            and not any(c.start <= block.start < c.end for c in chunks)
        ):
            covered[block.start : block.end] = [True] * (block.end - block.start)
    missing = [i for i, char in enumerate(text) if not char.isspace() and not covered[i]]
    assert not missing, f"characters not in any chunk: {missing[:10]}"


# --- sentence_spans ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Pi is 3.14 today. Next one.", ["Pi is 3.14 today.", "Next one."]),
        ("Use e.g. this one. Then i.e. that.", ["Use e.g. this one.", "Then i.e. that."]),
        ("e.g.x stays whole. Yes.", ["e.g.x stays whole.", "Yes."]),
        ("Mr. Smith met Dr. Lee vs. Bob. Done.", ["Mr. Smith met Dr. Lee vs. Bob.", "Done."]),
        ("J. R. R. Tolkien wrote it. Yes.", ["J. R. R. Tolkien wrote it.", "Yes."]),
        ("The U.S.A. is big. It is.", ["The U.S.A. is big.", "It is."]),
        (
            "Lists, pens, etc. and more. Then etc. The end.",
            ["Lists, pens, etc. and more.", "Then etc.", "The end."],
        ),
        (
            "See https://example.com/a.b?c=1&d=2.5 now. Ok.",
            ["See https://example.com/a.b?c=1&d=2.5 now.", "Ok."],
        ),
        ("Really?! Yes... I think so.", ["Really?!", "Yes...", "I think so."]),
        ('He said "Stop." Then left.', ['He said "Stop."', "Then left."]),
        ("(See above.) Next.", ["(See above.)", "Next."]),
        ("Steps:\n1. Open it\n2. Close it", ["Steps:\n1. Open it\n2. Close it"]),
        ("他說……我不知道。真的", ["他說……", "我不知道。", "真的"]),
        ("她問：「真的嗎？」我說：「是。」", ["她問：「真的嗎？」", "我說：「是。」"]),
        ("什麼？！不會吧！", ["什麼？！", "不會吧！"]),
        ("第一；第二。", ["第一；", "第二。"]),
        ("“你好。”他說", ["“你好。”", "他說"]),
        ("『書名』很好。", ["『書名』很好。"]),
        ("OK!你好?我", ["OK!", "你好?", "我"]),
    ],
)
def test_sentence_spans_tricky_cases(text: str, expected: list[str]) -> None:
    assert sentences(text) == expected


def test_sentence_spans_line_breaks_and_paragraphs() -> None:
    # A PDF wraps lines inside sentences; only a blank line or an end mark ends one.
    text = (
        "This sentence wraps\nonto a second line. Next\nline.\n\nA new paragraph\nhere\n \n  Third"
    )
    assert sentences(text) == [
        "This sentence wraps\nonto a second line.",
        "Next\nline.",
        "A new paragraph\nhere",
        "Third",
    ]
    assert sentences("台灣位於\n東亞。首都\n是臺北") == ["台灣位於\n東亞。", "首都\n是臺北"]


def test_sentence_spans_mixed_languages() -> None:
    text = "他引用道：「This is a test. It works.」然後離開。The term 人工智慧 is common. 機器學習也是。"
    assert sentences(text) == [
        "他引用道：「This is a test.",
        "It works.」",  # the closing bracket ends the quoted sentence
        "然後離開。",
        "The term 人工智慧 is common.",
        "機器學習也是。",
    ]


def test_sentence_spans_offsets_are_trimmed_and_exact() -> None:
    text = "  First one.   Second one!\n\n\t第三句。  "
    spans = sentence_spans(text)
    assert spans == [(2, 12), (15, 26), (29, 33)]
    assert [text[s:e] for s, e in spans] == ["First one.", "Second one!", "第三句。"]


@pytest.mark.parametrize("text", ["", "   ", "\n\n\n", "。", "..."])
def test_sentence_spans_blank_and_punctuation_only(text: str) -> None:
    assert [text[s:e] for s, e in sentence_spans(text)] == ([text] if text.strip() else [])


# --- split_into_chunks: behaviour on realistic text ------------------------------

ENGLISH_SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Retrieval systems cut documents into chunks.",
    "Each chunk should hold whole sentences where possible.",
    "Dr. Smith measured 3.14 units, e.g. in the lab.",
    "Nobody likes a chunk that starts with half a word!",
    "Is that not obvious?",
]
ENGLISH = " ".join(ENGLISH_SENTENCES * 4)
TRADITIONAL = (
    "臺灣位於東亞，是一個島嶼。首都是臺北市，人口眾多。"
    "這裡的夜市非常有名；遊客常常流連忘返。你去過嗎？當然去過！"
) * 8
SIMPLIFIED = (
    "人工智能是计算机科学的一个分支。它研究如何让机器像人一样思考。"
    "机器学习是其中最重要的方法之一，深度学习又是机器学习的一种。"
) * 8
MIXED = (
    "在自然語言處理中，BERT 是一種常見的模型。It was released by Google in 2018. "
    "他說：「Attention is all you need.」這句話很有名。The word 注意力 means attention. "
) * 4


@pytest.mark.parametrize("text", [ENGLISH, TRADITIONAL, SIMPLIFIED, MIXED])
@pytest.mark.parametrize(("size", "overlap"), [(60, 10), (100, 20), (150, 0), (300, 45)])
def test_invariants_on_sample_texts(text: str, size: int, overlap: int) -> None:
    page = Page("notes.md", 3, text, "hash")
    chunks = split_into_chunks(page, chunk_size=size, chunk_overlap=overlap)
    assert len(chunks) > 1
    check_chunks(page, chunks, size, overlap)


@pytest.mark.parametrize("text", [ENGLISH, TRADITIONAL, SIMPLIFIED])
def test_cuts_fall_at_sentence_ends_when_sentences_fit(text: str) -> None:
    ends = {end for _, end in sentence_spans(text)}
    starts = {start for start, _ in sentence_spans(text)}
    chunks = chunk(text, 130, 60)
    assert len(chunks) > 2
    for item in chunks:
        assert item.end in ends, f"chunk ends mid-sentence: {item.text[-20:]!r}"
    for item in chunks[1:]:
        # Every sentence here is shorter than two thirds of the overlap budget, so
        # the overlap starts at a sentence start.
        assert item.start in starts, f"overlap starts mid-sentence: {item.text[:20]!r}"


def test_paragraph_end_wins_over_sentence_end() -> None:
    first = "One short sentence. " * 4 + "End of the first paragraph."
    second = "Second paragraph sentence. " * 6
    text = f"{first}\n\n{second}"
    chunks = chunk(text, 160, 0)
    assert chunks[0].text == first  # 107 chars: a sentence end at 127+ would also fit
    check_chunks(Page("doc.txt", 1, text, "hash"), chunks, 160, 0)


def test_clause_then_word_boundaries_when_no_sentence_fits() -> None:
    chinese = "這是一個非常長的句子，沒有句號，只有逗號，一直延續下去，" * 6
    for item in chunk(chinese, 50, 0)[:-1]:
        assert item.text.endswith("，")
    english = "a long sentence without any end mark " * 10
    for item in chunk(english, 50, 10):
        assert not cuts_mid_word(english, item.start) and not cuts_mid_word(english, item.end)


def test_chinese_without_punctuation_is_cut_between_characters() -> None:
    text = "中" * 250
    chunks = chunk(text, 100, 20)
    check_chunks(Page("doc.txt", 1, text, "hash"), chunks, 100, 20)
    assert all(len(item.text) > 50 for item in chunks)
    assert all(chunks[i].end - chunks[i + 1].start == 20 for i in range(len(chunks) - 1))


def test_english_never_cut_mid_word() -> None:
    words = ["antidisestablishment", "retrieval", "a", "of", "chunking", "Chinese", "中文", "x"]
    text = " ".join(words[i % len(words)] for i in range(400))
    for size, overlap in [(25, 5), (40, 15), (77, 0), (120, 60)]:
        chunks = chunk(text, size, overlap)
        for item in chunks:
            assert not cuts_mid_word(text, item.start), item.text
            assert not cuts_mid_word(text, item.end), item.text


def test_overlap_exists_and_starts_at_a_word_boundary() -> None:
    # Sentences longer than the overlap: the overlap must start at a word start.
    sentence = "This sentence is deliberately rather long so that overlaps begin inside it. "
    text = sentence * 8
    chunks = chunk(text, 200, 30)
    for previous, current in zip(chunks, chunks[1:], strict=False):
        overlap = previous.end - current.start
        assert 10 <= overlap <= 30
        assert text[current.start - 1].isspace()


def test_chinese_overlap_starts_at_a_clause_or_sentence() -> None:
    chunks = chunk(TRADITIONAL, 80, 20)
    for previous, current in zip(chunks, chunks[1:], strict=False):
        assert previous.end > current.start
        assert TRADITIONAL[current.start - 1] in "，。；？！", TRADITIONAL[current.start - 3 :][:6]


def test_zero_overlap_chunks_do_not_share_text() -> None:
    chunks = chunk(ENGLISH, 120, 0)
    for previous, current in zip(chunks, chunks[1:], strict=False):
        assert previous.end <= current.start


def test_huge_url_is_the_only_mid_word_cut() -> None:
    url = "https://example.com/" + "abcdefghij" * 30
    text = f"Read this first. Then open {url} and read the rest of the page carefully."
    chunks = chunk(text, 100, 20)
    page = Page("doc.txt", 1, text, "hash")
    check_chunks(page, chunks, 100, 20)
    # The URL really was cut: some chunk boundary falls between two of its letters.
    assert any(cuts_mid_word(text, c.end) for c in chunks)
    # The sentence end beats the word boundary before the URL.
    assert chunks[0].text == "Read this first."


def test_overlap_is_dropped_rather_than_cutting_a_word() -> None:
    # A 50-letter word just fits a 60-char chunk on its own but not with an overlap.
    word = "w" * 50
    text = f"alpha beta gamma delta {word} omega"
    chunks = chunk(text, 60, 20)
    for item in chunks:
        assert not cuts_mid_word(text, item.start) and not cuts_mid_word(text, item.end)
    assert any(item.text.startswith(word) for item in chunks)


def test_tiny_tail_is_not_its_own_chunk() -> None:
    # Greedy packing would end the first chunk at the last sentence end that fits
    # (95) and leave "Tail." as a 5-character chunk.
    text = "Sentence number one here. " * 3 + "Another one ends. Tail."
    assert len(text) == 101 and text.index("Tail.") == 96
    chunks = chunk(text, 100, 0)
    assert [c.text for c in chunks] == [
        "Sentence number one here. " * 2 + "Sentence number one here.",
        "Another one ends. Tail.",
    ]
    check_chunks(Page("doc.txt", 1, text, "hash"), chunks, 100, 0)


def test_short_page_is_one_trimmed_chunk() -> None:
    text = "\n\n  短短一句話。Short.  \n"
    (only,) = chunk(text, 600, 100)
    assert only.text == "短短一句話。Short."
    assert text[only.start : only.end] == only.text


@pytest.mark.parametrize("text", ["", "   ", "\n\n\t\u3000 "])
def test_blank_page_has_no_chunks(text: str) -> None:
    assert chunk(text, 50, 10) == []


def test_chunk_size_one() -> None:
    text = "ab 中文。"
    chunks = chunk(text, 1, 0)
    assert [c.text for c in chunks] == ["a", "b", "中", "文", "。"]


@pytest.mark.parametrize(
    ("size", "overlap"),
    [(0, 0), (-5, 0), (10, -1), (10, 10), (10, 11), (10.0, 2), (10, 2.5), (True, 0), ("10", 2)],
)
def test_invalid_sizes_raise_config_error(size: object, overlap: object) -> None:
    with pytest.raises(ConfigError, match="chunk_"):
        chunk("text", size, overlap)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="chunk_"):
        split_pages([], chunk_size=size, chunk_overlap=overlap)  # type: ignore[arg-type]


def test_split_pages_keeps_source_and_page() -> None:
    pages = [
        Page("a.pdf", 1, ENGLISH, "h1"),
        Page("a.pdf", 2, "   ", "h1"),
        Page("a.pdf", 3, TRADITIONAL, "h1"),
        Page("b.txt", 1, "Just one line.", "h2"),
    ]
    chunks = split_pages(pages, chunk_size=200, chunk_overlap=30)
    assert {(c.source, c.page) for c in chunks} == {("a.pdf", 1), ("a.pdf", 3), ("b.txt", 1)}
    assert chunks[-1] == Chunk("Just one line.", "b.txt", 1, 0, 14)
    for page in pages:
        mine = [c for c in chunks if (c.source, c.page) == (page.source, page.page)]
        check_chunks(page, mine, 200, 30)
    # A generator works too, and the pages keep their order.
    assert split_pages(iter(pages), chunk_size=200, chunk_overlap=30) == chunks


# --- property tests ----------------------------------------------------------------

PIECES = st.one_of(
    st.text(alphabet="臺灣中文字詞語人工智能機器学习的是", min_size=1, max_size=12),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyzABC0123456789", min_size=1, max_size=14),
    st.sampled_from(
        [
            "。",
            "，",
            "、",
            "！",
            "？",
            "；",
            "：",
            "…",
            "……",
            "「",
            "」",
            "『",
            "』",
            "“",
            "”",
            "（",
            "）",
        ]
        + [
            ".",
            ",",
            "!",
            "?",
            ";",
            ":",
            "?!",
            "...",
            '"',
            "'",
            "(",
            ")",
            "-",
            "/",
            "3.14",
            "e.g.",
            "Mr.",
        ]
    ),
    st.sampled_from([" ", " ", " ", "  ", "\n", "\n\n", "\t", "\u3000", " \n \n "]),
)
RANDOM_TEXT = st.lists(PIECES, max_size=120).map("".join)


@st.composite
def sizes(draw: st.DrawFn) -> tuple[int, int]:
    size = draw(st.integers(min_value=1, max_value=160))
    overlap = draw(st.integers(min_value=0, max_value=size - 1))
    return size, overlap


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=RANDOM_TEXT, size_overlap=sizes())
def test_property_chunks_keep_every_invariant(text: str, size_overlap: tuple[int, int]) -> None:
    size, overlap = size_overlap
    page = Page("random.txt", 7, text, "hash")
    check_chunks(
        page, split_into_chunks(page, chunk_size=size, chunk_overlap=overlap), size, overlap
    )


@settings(max_examples=300, deadline=None)
@given(text=RANDOM_TEXT)
def test_property_sentence_spans_partition_the_text(text: str) -> None:
    spans = sentence_spans(text)
    covered = 0
    previous_end = 0
    for start, end in spans:
        assert previous_end <= start < end, "spans are ordered, disjoint and non-empty"
        piece = text[start:end]
        assert piece == piece.strip(), "spans are trimmed"
        assert not text[previous_end:start].strip(), "only whitespace between spans"
        covered += end - start
        previous_end = end
    assert not text[previous_end:].strip()


# --- real data -----------------------------------------------------------------------


def _paragraphs(path: Path) -> list[str]:
    data = json.loads(path.read_text(encoding="utf-8"))
    return [p["context"] for article in data["data"] for p in article["paragraphs"]]


@pytest.mark.shared_data
@pytest.mark.parametrize("file_name", ["drcd_dev.json", "squad_dev_v1.1_articles_01-12.json"])
def test_real_paragraphs_with_default_settings(shared_data: Path, file_name: str) -> None:
    path = shared_data / file_name
    if not path.is_file():
        pytest.skip(f"{file_name} not found in {shared_data}")
    defaults = Settings()
    size, overlap = defaults.chunk_size, defaults.chunk_overlap
    paragraphs = _paragraphs(path)
    assert len(paragraphs) > 500
    total = 0
    for number, text in enumerate(paragraphs):
        page = Page(file_name, number + 1, text, "hash")
        chunks = split_into_chunks(page, chunk_size=size, chunk_overlap=overlap)
        check_chunks(page, chunks, size, overlap)
        total += len(chunks)
        # Real paragraphs end with a sentence, and so does every chunk but the last
        # of each paragraph, unless a sentence is longer than the back half of a chunk.
        assert chunks[-1].end == len(text.rstrip())
    assert total >= len(paragraphs)
