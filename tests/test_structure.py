"""Tests for ragqa.structure: each rule on real lines of study notes, and the chunks made
of whole blocks. The lines are copied from ../shared/data/notes/ (and the Q&A items from
the kind of interview notes users ask about), so no shared data is needed to run them."""

from __future__ import annotations

import pytest

from ragqa.sentences import sentence_spans
from ragqa.splitting import split_into_chunks, split_pages
from ragqa.structure import heading_path, parse_blocks, repeated_lines, table_cells, units
from ragqa.types import Page


def kinds(text: str) -> list[tuple[str, str]]:
    return [(b.kind, text[b.start : b.end]) for b in parse_blocks(text)]


# ------------------------------------------------------------------ Q&A items


def test_a_qa_item_on_one_line_keeps_question_and_answer_together() -> None:
    text = "3.BERT的预训练任务?答案:MLM 和 NSP\n4.T5的预训练任务?答案:采用类似于BERT模型的MLM预训练任务和多任务预训练"
    blocks = parse_blocks(text)
    assert [b.kind for b in blocks] == ["qa", "qa"]
    assert text[blocks[0].answer_start : blocks[0].end] == "MLM 和 NSP"
    assert text[blocks[1].answer_start : blocks[1].end].startswith("采用类似于BERT")


def test_a_question_line_and_its_answer_line_are_one_item() -> None:
    text = "• 3.BERT的预训练任务?\n答案:MLM 和 NSP\n• 4.GPT-1预训练任务?\n答案:无监督的预训练和有监督任务的微调"
    blocks = parse_blocks(text)
    assert [b.kind for b in blocks] == ["qa", "qa"]
    assert text[blocks[0].start : blocks[0].end] == "• 3.BERT的预训练任务?\n答案:MLM 和 NSP"
    assert text[blocks[1].answer_start : blocks[1].end] == "无监督的预训练和有监督任务的微调"


def test_english_q_and_a_items() -> None:
    text = "Q: What does RAG stand for? A: Retrieval-augmented generation."
    (block,) = parse_blocks(text)
    assert block.kind == "qa"
    assert text[block.answer_start : block.end] == "Retrieval-augmented generation."


def test_a_question_mark_before_an_answer_is_not_a_sentence_end() -> None:
    text = "说明如下。3.BERT的预训练任务?答案:MLM 和 NSP。What is RAG? A: retrieval."
    assert [text[s:e] for s, e in sentence_spans(text)] == [
        "说明如下。",
        "3.BERT的预训练任务?答案:MLM 和 NSP。",
        "What is RAG? A: retrieval.",
    ]


# ------------------------------------------------------------------ headings and items


def test_headings_of_the_notes() -> None:
    # generative-ai-intro.txt: a numbered Chinese heading that asks a question.
    text = "二、大型语言模型如何运作?\nLLM 运作原理的一个关键因素是它们表示单词的方式。"
    assert kinds(text)[0] == ("heading", "二、大型语言模型如何运作?")
    # nlp-language-models.txt: a short plain heading, blank line, then text.
    text = "统计语言模型\n\n全称为statistics language model,可以说大语言模型的发展最一开始就是以统计学为基础的"
    assert kinds(text)[0] == ("heading", "统计语言模型")
    # A "term: definition" line is not a heading, even without end punctuation.
    text = "Token化:为了将文字表示成数字\n- 句子:我是一名AI工程师。"
    assert [k for k, _ in kinds(text)] == ["text", "item"]


def test_a_wrapped_pdf_line_is_no_heading() -> None:
    text = (
        "Abstract\nThis is a sample document with two columns filled\n"
        "with Lorem Ipsum text to show how it looks."
    )
    assert kinds(text) == [
        ("heading", "Abstract"),
        ("text", text[text.index("This") :]),
    ]


def test_one_symbol_per_line_is_no_heading() -> None:
    # Formulas pasted from a web page come out one symbol per line.
    assert all(kind != "heading" for kind, _ in kinds("p\n(\nI\n)\nSTART\n=\n1"))


@pytest.mark.parametrize(
    "line",
    [
        "- 基础大模型:OpenAl、文心一言、PaLM",
        "  • 语言模型通常表示可以建模自然语言文本生成概率的模型",
        "1)零样本学习;Base LLM 无需明确训练即可响应各种请求",
        "(4):本文中的方法在什么任务和什么性能上实现?",
        "2.列出所有作者的姓名《用英文)。",
    ],
)
def test_list_items_of_the_notes(line: str) -> None:
    assert [k for k, _ in kinds(line)] == ["item"]


def test_an_indented_line_belongs_to_its_item() -> None:
    text = "• 建立在统计学习的理论框架\n    通常使用链式法则表示建模句子的序列\n• 下一项"
    assert kinds(text) == [
        ("item", "• 建立在统计学习的理论框架\n    通常使用链式法则表示建模句子的序列"),
        ("item", "• 下一项"),
    ]


def test_heading_path_follows_levels() -> None:
    text = "# 模型\n## BERT\n- MLM 和 NSP\n## GPT\n- 语言模型\n# 应用\n- RAG"
    blocks = parse_blocks(text)
    assert heading_path(text, blocks, text.index("MLM")) == ("# 模型", "## BERT")
    assert heading_path(text, blocks, text.index("语言模型")) == ("# 模型", "## GPT")
    assert heading_path(text, blocks, text.index("RAG")) == ("# 应用",)


# ------------------------------------------------------------------ tables


def test_table_rows_from_the_notes() -> None:
    text = "LLM局限 | 解决办法 |\n不会用工具: 不能利用外部的工具 | 函数调用 |"
    blocks = parse_blocks(text)
    assert [b.kind for b in blocks] == ["row", "row"]
    assert blocks[0].header and not blocks[1].header
    assert table_cells(text[blocks[1].start : blocks[1].end]) == [
        "不会用工具: 不能利用外部的工具",
        "函数调用",
    ]


def test_numeric_rows_of_a_pdf_table_have_their_header() -> None:
    text = "银行 授信额度 已使用额度\n中国银行 234,850.00 120,000.00\n工商银行 137,680.00 80,000.00"
    rows = units(text)
    assert [u.kind for u in rows] == ["row", "row", "row"]
    assert rows[1].table_header == "银行 授信额度 已使用额度"


# ------------------------------------------------------------------ furniture


def test_page_furniture_is_recognised() -> None:
    text = (
        "https://i-blog.csdnimg.cn/direct/2128e7aa0cf3469fa03f5980d3e2afb2.png\n"
        "**扫描二维码进行NFT抽奖**\n正文。\n12"
    )
    assert [k for k, _ in kinds(text)] == ["furniture", "furniture", "text", "furniture"]


def test_lines_repeated_on_many_pages_are_furniture() -> None:
    topics = ["收入", "成本", "利润", "现金", "负债"]
    bodies = [f"{t}一节。\n{t}的说明。\n{t}的附注。\n{t}的结论。" for t in topics]
    pages = [f"ACME 2023 年报\n{body}\n第 {i} 页" for i, body in enumerate(bodies, 1)]
    furniture = repeated_lines(pages)
    assert "ACME 2023 年报" in furniture
    chunks = split_pages(
        [Page("r.pdf", i + 1, text, "h") for i, text in enumerate(pages)],
        chunk_size=200,
        chunk_overlap=0,
    )
    assert [c.text for c in chunks] == bodies


# ------------------------------------------------------------------ chunks of whole blocks


NOTES = """LLM应用范式3——API微调

准备数据-长传数据-模型微调-新的API
- 基础模型与数据(算法、算力门槛高)
- 基础大模型:OpenAl、文心一言、PaLM
- 开源模型:Bloom、LLaMa、Alpaca、ChatGLM-6B、MOSS
- Code模型:CodeX、BigCode
- 模型hubs:Huggingface
- 数据与工具:Humanfirst、scale、数据集"""


def test_chunks_never_cut_an_item_and_carry_their_headings() -> None:
    page = Page("notes.txt", 1, NOTES, "h")
    chunks = split_into_chunks(page, chunk_size=60, chunk_overlap=20)
    items = [line for line in NOTES.splitlines() if line.startswith("- ")]
    for item in items:
        assert any(item in c.text for c in chunks), item
    for c in chunks:
        for line in c.text.splitlines():
            assert line in NOTES.splitlines(), f"cut inside a line: {line!r}"
        assert NOTES[c.start : c.end] == c.text
    later = [c for c in chunks if "Huggingface" in c.text][0]
    assert later.heading == "LLM应用范式3——API微调 › 准备数据-长传数据-模型微调-新的API"
    assert later.index_text.startswith(later.heading + "\n")


def test_a_paragraph_longer_than_a_chunk_is_cut_as_before() -> None:
    # One long paragraph (a QA dataset's context): cut at sentences, as always.
    text = "。".join(f"第{i}句话说的是一件事情" for i in range(40)) + "。"
    chunks = split_into_chunks(Page("p", 1, text, "h"), chunk_size=100, chunk_overlap=20)
    assert all(c.text.endswith("。") for c in chunks)
    assert all(not c.heading and not c.indexed for c in chunks)


# ------------------------------------------- captions and labels (PDF text)

# The text pypdf extracts from the shared PDFs samplefiles__multicolumn.pdf (page 3)
# and pypdf__multilang.pdf.
EU_TABLE = (
    "Table 1: EU Countries Information\n"
    "Country Population (millions) Area (km2) Capital Official Language\n"
    "Austria 8.9 83,879 Vienna German\n"
    "Finland 5.5 338,424 Helsinki Finnish, Swedish"
)
MULTILANG = "English:\nHello World\nRussian:\nПривет, мир\nChinese (traditional):\n你好世界"


def test_a_table_caption_heads_its_rows() -> None:
    assert [kind for kind, _ in kinds(EU_TABLE)] == ["heading", "row", "row", "row"]
    rows = [b for b in parse_blocks(EU_TABLE) if b.kind == "row"]
    assert heading_path(EU_TABLE, parse_blocks(EU_TABLE), rows[-1].start) == (
        "Table 1: EU Countries Information",
    )
    # A sentence that mentions a table is no caption.
    assert kinds("Table 2 shows the results.\nThey are good.")[0][0] == "text"


def test_a_label_and_its_value_on_the_next_line_are_one_unit() -> None:
    assert [text for _, text in kinds(MULTILANG)] == [
        "English:\nHello World",
        "Russian:\nПривет, мир",
        "Chinese (traditional):\n你好世界",
    ]


def test_a_lead_in_is_not_joined_with_the_first_line_it_introduces() -> None:
    # From nlp-language-models.txt: a formula pasted one symbol per line.
    assert kinds("加一平滑的公式如下:\nP\nA\ndd")[0] == ("text", "加一平滑的公式如下:")
    assert kinds("其他常用 LLM 模型还包括:\nPaLM 很常用")[0] == ("text", "其他常用 LLM 模型还包括:")
