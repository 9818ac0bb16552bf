from __future__ import annotations

import pytest

from ragqa.llm.extractive import ExtractiveAnswerer, _unmentioned_names, short_answer
from ragqa.types import Hit


def hit(text: str, source: str = "a.md") -> Hit:
    return Hit(text, 1.0, source, 1, 0, len(text))


EN = [
    hit(
        "The Eiffel Tower is a wrought-iron tower in Paris. It was designed by the company "
        "of Gustave Eiffel. Construction was completed on 31 March 1889 for the World's Fair. "
        "The tower is 330 metres tall.",
        "paris.md",
    ),
    hit("Tea originated in southwest China. It became popular in England in the 1660s.", "tea.md"),
]
ZH = [
    hit("臺北101是位於臺灣臺北市信義區的摩天大樓。大樓於2004年12月31日完工啟用。", "台北.md"),
    hit("烏龍茶是一種半發酵茶，主要產於福建和臺灣。", "茶.md"),
]


@pytest.fixture
def answerer() -> ExtractiveAnswerer:
    return ExtractiveAnswerer()


def test_english_sentence_answer_cites_its_passage(answerer: ExtractiveAnswerer) -> None:
    result = answerer.extract("What kind of tower is the Eiffel Tower?", EN)
    assert result.found
    assert result.text == "The Eiffel Tower is a wrought-iron tower in Paris [1]."
    assert result.sentences[0].number == 1
    sentence = result.sentences[0]
    assert EN[0].text[sentence.start : sentence.end] == sentence.text


def test_the_passage_holding_the_terms_wins_over_rank(answerer: ExtractiveAnswerer) -> None:
    result = answerer.extract("Where did tea originate?", EN)
    assert result.sentences[0].number == 2
    assert "[2]" in result.text


def test_english_date_and_number_questions_get_short_answers(answerer: ExtractiveAnswerer) -> None:
    assert answerer.extract("When was the Eiffel Tower completed?", EN).text == "31 March 1889 [1]"
    tall = answerer.extract("How tall is the Eiffel Tower?", EN)
    assert tall.short_answer == "330 metres"
    assert tall.text == "330 metres [1]"
    # The sentence it came from is kept for the UI.
    assert tall.sentences[0].text == "The tower is 330 metres tall."


def test_chinese_answers(answerer: ExtractiveAnswerer) -> None:
    when = answerer.extract("臺北101大樓於哪一年完工？", ZH)
    assert when.short_answer == "2004年12月31日"
    assert when.text == "2004年12月31日[1]"
    tea = answerer.extract("烏龍茶主要產於哪裡？", ZH)
    assert tea.text == "烏龍茶是一種半發酵茶，主要產於福建和臺灣[2]。"


def test_simplified_question_matches_traditional_text(answerer: ExtractiveAnswerer) -> None:
    result = answerer.extract("乌龙茶主要产于哪里？", ZH)
    assert result.found and result.sentences[0].number == 2


@pytest.mark.parametrize(
    ("question", "hits", "expected"),
    [
        (
            "Who painted the Mona Lisa?",
            EN,
            "The documents do not contain an answer to this question.",
        ),
        ("蒙娜麗莎是誰畫的？", ZH, "文件中沒有找到這個問題的答案。"),
        ("蒙娜丽莎是谁画的？", ZH, "文件中没有找到这个问题的答案。"),
        (
            "When was the Eiffel Tower completed?",
            [],
            "The documents do not contain an answer to this question.",
        ),
        ("What?", EN, "The documents do not contain an answer to this question."),
    ],
)
def test_nothing_relevant_says_so(answerer, question, hits, expected) -> None:
    result = answerer.extract(question, hits)
    assert not result.found
    assert result.text == expected
    assert result.sentences == ()


def test_no_answer_follows_the_users_language_not_the_rewrite(answerer) -> None:
    result = answerer.extract("Mona Lisa painter?", EN, language_of="它是誰畫的？")
    assert result.text == "文件中沒有找到這個問題的答案。"


def test_answer_is_one_to_three_sentences(answerer: ExtractiveAnswerer) -> None:
    many = [
        hit(f"Tea fact {i}: tea is grown in region {i}. Filler sentence {i}.") for i in range(6)
    ]
    result = ExtractiveAnswerer(max_sentences=3, second_ratio=0.0).extract(
        "Where is tea grown?", many
    )
    assert 1 <= len(result.sentences) <= 3
    assert len(answerer.extract("Where is tea grown?", many).sentences) <= 2


def test_stream_yields_the_answer_in_pieces(answerer: ExtractiveAnswerer) -> None:
    hits = [hit("Tea is grown in China. Tea is grown in India too.")]
    pieces = list(ExtractiveAnswerer(second_ratio=0.5).stream("Where is tea grown in India?", hits))
    assert pieces
    assert (
        "".join(pieces)
        == ExtractiveAnswerer(second_ratio=0.5).extract("Where is tea grown in India?", hits).text
    )


@pytest.mark.parametrize(
    ("question", "sentence", "expected"),
    [
        ("In what year did tea reach England?", "Tea reached England in the 1660s.", "1660s"),
        (
            "How many people live there?",
            "About 2.6 million people live in the city.",
            "2.6 million",
        ),
        (
            "Who designed the tower?",
            "The tower was designed by Gustave Eiffel in 1887.",
            "Gustave Eiffel",
        ),
        ("What is tea?", "Tea is a drink.", ""),
        ("台灣有幾個直轄市？", "台灣目前有六個直轄市。", "六個"),
        ("這座橋何時啟用？", "這座橋於西元1937年5月27日啟用。", "西元1937年5月27日"),
        ("How many parameters did it have in 1900?", "In 1900 it had 12 parameters.", "12"),
    ],
)
def test_short_answer(question: str, sentence: str, expected: str) -> None:
    assert short_answer(question, sentence) == expected


# --------------------------------------------------------- notes: items, Q&A, tables

NOTES = (
    "• 3.BERT的预训练任务?\n答案:MLM 和 NSP\n"
    "• 4.T5的预训练任务?\n答案:采用类似于BERT模型的MLM预训练任务和多任务预训练\n"
    "• 5.GPT-1预训练任务?\n答案:无监督的预训练和有监督任务的微调"
)


def test_a_qa_item_is_answered_by_its_answer_half(answerer: ExtractiveAnswerer) -> None:
    result = answerer.extract("BERT 用哪些任务做预训练？", [hit(NOTES, "notes.txt")])
    assert result.text.startswith("MLM 和 NSP")
    assert "预训练任务?" not in result.text
    (sentence,) = result.sentences[:1]
    assert NOTES[sentence.start : sentence.end] == "MLM 和 NSP"


@pytest.mark.parametrize(
    ("question", "fact"),
    [
        ("BERT的预训练任务是什么", "MLM 和 NSP"),
        ("T5 是怎么预训练的？", "多任务预训练"),
        ("GPT-1 的预训练任务呢", "无监督的预训练和有监督任务的微调"),
        ("GPT 用哪些任务做预训练？", "无监督的预训练"),
    ],
)
def test_the_item_about_the_named_model_wins(
    answerer: ExtractiveAnswerer, question: str, fact: str
) -> None:
    result = answerer.extract(question, [hit(NOTES, "notes.txt")])
    assert fact in result.text.split("[")[0], result.text


def test_an_item_is_quoted_without_its_bullet(answerer: ExtractiveAnswerer) -> None:
    text = "- 开源模型:Bloom、LLaMa、Alpaca、ChatGLM-6B、MOSS\n- Code模型:CodeX、BigCode"
    result = answerer.extract("有哪些开源模型？", [hit(text)])
    assert result.text.startswith("开源模型:Bloom")


TABLE = (
    "截至2023年3月末，发行人获得授信总额为372.53亿元，已使用授信额度为200.10亿元。\n"
    "银行 授信额度 已使用额度\n"
    "中国银行 234,850.00 120,000.00\n"
    "工商银行 137,680.00 80,100.00"
)


def test_a_total_stated_in_text_beats_a_table_row(answerer: ExtractiveAnswerer) -> None:
    result = answerer.extract("截至2023年3月末，发行人授信总额是多少？", [hit(TABLE, "r.pdf")])
    assert "372.53" in result.text and "234,850.00" not in result.text


def test_a_table_answers_from_the_row_and_column_named(answerer: ExtractiveAnswerer) -> None:
    result = answerer.extract("工商银行的已使用额度是多少？", [hit(TABLE, "r.pdf")])
    assert result.text == "工商银行 已使用额度: 80,100.00[1]"


def test_a_row_the_question_does_not_name_is_not_the_answer(
    answerer: ExtractiveAnswerer,
) -> None:
    table = "银行 授信额度\n中国银行 234,850.00\n工商银行 137,680.00"
    result = answerer.extract("建设银行的授信额度是多少？", [hit(table)])
    assert "234,850.00" not in result.text and "137,680.00" not in result.text


def test_heading_words_count_for_the_items_under_it(answerer: ExtractiveAnswerer) -> None:
    items = Hit("- 预训练:MLM 和 NSP\n- 参数:3.4亿", 1.0, "n.md", 1, 0, 24, heading="BERT")
    other = Hit("- 预训练:自回归语言模型\n- 参数:1.17亿", 1.0, "n.md", 1, 30, 55, heading="GPT-1")
    result = answerer.extract("BERT 的预训练是什么？", [other, items])
    assert result.text.startswith("预训练:MLM 和 NSP"), result.text


def _meaning(table: dict[str, float]):
    """A similarity that knows only what ``table`` says (by a substring of the unit)."""

    def similarity(question: str, texts) -> list[float]:
        return [next((v for k, v in table.items() if k in t), 0.0) for t in texts]

    return similarity


TRANSFORMER = hit(
    "转换器模型是大型语言模型中最常见的架构,它通过对输入进行词元化来处理数据。"
    "- 转换器架构的两个部分都会构成嵌入。\n"
    "- 转换器模型由一个编码器和一个解码器组成。\n"
)


def test_meaning_picks_the_unit_whose_words_match_less() -> None:
    question = "transformer 的架构由哪两部分构成？"
    by_words = ExtractiveAnswerer().extract(question, [TRANSFORMER])
    assert by_words.found and "编码器" not in by_words.text  # the words point elsewhere
    similarity = _meaning({"编码器": 0.95, "架构": 0.4})
    by_meaning = ExtractiveAnswerer(similarity=similarity).extract(question, [TRANSFORMER])
    assert by_meaning.text.startswith("转换器模型由一个编码器和一个解码器组成"), by_meaning.text


def test_meaning_alone_does_not_answer_what_the_words_do_not_cover() -> None:
    # Closeness says nothing of whether the passages answer: GPT-4's parameter count
    # is in none of them, however close a unit's meaning.
    notes = hit("GPT-3 有 1750 亿个参数。ChatGLM-6B 有 62 亿个参数。")
    similarity = _meaning({"GPT-3": 1.0})
    extraction = ExtractiveAnswerer(similarity=similarity).extract("GPT-4 有多少参数？", [notes])
    assert not extraction.found


def test_without_weight_meaning_changes_nothing() -> None:
    question = "transformer 的架构由哪两部分构成？"
    similarity = _meaning({"编码器": 1.0})
    plain = ExtractiveAnswerer().extract(question, [TRANSFORMER])
    weightless = ExtractiveAnswerer(similarity=similarity, meaning_weight=0.0)
    assert weightless.extract(question, [TRANSFORMER]) == plain


SMOOTHING = hit(
    "加一平滑Laplace smoothing\n加一平滑的公式如下:每个计数都加 1。\n其中V表示词典的大小", "nlp.txt"
)


def test_a_model_no_passage_names_is_not_answered_about(answerer: ExtractiveAnswerer) -> None:
    # Real lines of the shared notes: they explain add-one smoothing, never Kneser-Ney.
    assert not answerer.extract("Kneser-Ney 平滑比加一平滑好在哪？", [SMOOTHING]).found
    assert not answerer.extract("What GDP does the table give for Denmark?", EN).found
    # Named with other spacing, or in the file's name, it counts as named.
    assert answerer.extract("加一平滑 laplacesmoothing 的公式里 V 是什么？", [SMOOTHING]).found
    report = hit("Lorem ipsum dolor sit amet.", "pypdf__issue-297.pdf")
    assert _unmentioned_names("What text is in the issue-297 PDF?", [report]) == []
    assert _unmentioned_names("What text is in the issue-298 PDF?", [report]) == ["issue-298"]


def test_a_model_the_question_only_compares_with_need_not_be_named(
    answerer: ExtractiveAnswerer,
) -> None:
    notes = hit("转换器模型可以并行处理整个序列,因此训练得更快。", "notes.txt")
    answer = answerer.extract("为什么转换器模型比 LSTM 训练得更快？", [notes])
    assert answer.found and "并行" in answer.text


EU_TABLE = hit(
    "Table 1: EU Countries Information\n"
    "Country Population (millions) Area (km2) Capital Official Language\n"
    "Austria 8.9 83,879 Vienna German\n"
    "Finland 5.5 338,424 Helsinki Finnish, Swedish",
    "multicolumn.pdf",
)


def test_a_table_caption_is_quoted_with_the_header_not_the_rows(
    answerer: ExtractiveAnswerer,
) -> None:
    answer = answerer.extract("What is Table 1 about?", [EU_TABLE])
    assert answer.text.startswith("Table 1: EU Countries Information [1] Country Population")
    assert "Austria" not in answer.text


def test_a_row_the_caption_heads_answers_from_its_cell(answerer: ExtractiveAnswerer) -> None:
    answer = answerer.extract("What capital does the EU table give for Finland?", [EU_TABLE])
    assert "Helsinki" in answer.text and "Table 1" not in answer.text


CRAZY_ONES = hit(
    # The first lines of the shared pypdf__crazyones-encrypted-256.pdf, as pypdf reads them.
    "The Crazy Ones\nOctober 14, 1998\nHeres to the crazy ones. The misﬁts. The rebels.\n"
    "About the only thing you cant do is ignore them. Because they change\nthings.",
    "pypdf__crazyones-encrypted-256.pdf",
)


def test_a_date_line_under_the_title_dates_the_text(answerer: ExtractiveAnswerer) -> None:
    # The date shares no word with the question: the heading above it does, and
    # "date" is matched by the date itself.
    assert answerer.extract("When is The Crazy Ones dated?", [CRAZY_ONES]).text == (
        "October 14, 1998 [1]"
    )
    assert answerer.extract("What date is on The Crazy Ones text?", [CRAZY_ONES]).text == (
        "October 14, 1998 [1]"
    )


def test_a_number_word_does_not_answer_how_many(answerer: ExtractiveAnswerer) -> None:
    notes = hit("GPT 是一种热门基础模型,其带编号的迭代都是对前代(GPT-3、GPT-4 等)的改进。")
    assert not answerer.extract("GPT-4 大概有多少参数？", [notes]).found


def test_meaning_picks_the_column_when_words_tie() -> None:
    table = hit(
        "授信银行 授信额度 已使用额度 未使用额度\n中国银行 234,850.00 150,200.00 84,650.00\n"
        "工商银行 80,000.00 30,000.00 50,000.00",
        "report.pdf",
    )
    question = "工商银行还有多少额度没用？"  # "额度" is in every column's name
    assert "授信额度: 80,000.00" in ExtractiveAnswerer().extract(question, [table]).text
    columns = {"未使用额度": 0.9, "已使用额度": 0.5, "授信额度": 0.4}

    def similarity(question: str, texts) -> list[float]:
        return [columns.get(text, 0.5) for text in texts]  # the units all alike

    answer = ExtractiveAnswerer(similarity=similarity).extract(question, [table])
    assert "未使用额度: 50,000.00" in answer.text, answer.text
