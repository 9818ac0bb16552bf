from __future__ import annotations

import pytest

from ragqa.llm.extractive import ExtractiveAnswerer, short_answer
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
