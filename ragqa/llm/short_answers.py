"""Short answers: the date, number or name a question asks for, found in a sentence.

When a question asks for a number or a date ("how many", "when", "幾", "哪一年"),
:func:`short_answer` picks the matching expression nearest to the question's words
in a sentence, and so does a "who" or "where" question in English with a
capitalised name. The extractive answerer then answers with that expression ("1889
[1]"), which is what such a question asks for.

Example:
    >>> short_answer("When did Bell patent the telephone?",
    ...              "Bell was granted a patent on March 7, 1876, in Boston.")
    'March 7, 1876'
"""

from __future__ import annotations

import re

from ragqa.lang import detect_language

__all__ = ["answer_pattern", "asks_date", "asks_date_or_number", "short_answer"]

_MONTH = (
    r"(?:January|February|March|April|May|June|July|August|September|October|November|"
    r"December|Jan\.|Feb\.|Mar\.|Apr\.|Aug\.|Sept?\.|Oct\.|Nov\.|Dec\.)"
)
_NUMBER_WORD = (
    r"(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|"
    r"fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|"
    r"eighty|ninety|hundred|thousand|dozen|several)"
)
_EN_DATE_QUESTION = re.compile(
    r"^\s*when\b|\b(?:what|which|in what|in which)\s+(?:year|date|day|month|decade|century|era)\b",
    re.I,
)
_EN_NAME_QUESTION = re.compile(
    r"^\s*(?:who|whom|whose|where)\b|\b(?:who|whom|where)\s+(?:is|was|were|did)\b", re.I
)
_EN_NAME = re.compile(
    r"\b[A-Z][\w'’.-]*(?:\s+(?:of|the|de|von|van|da|del|and|&)?\s*[A-Z][\w'’.-]*)*"
)
_EN_NUMBER_QUESTION = re.compile(
    r"\bhow\s+(?:many|much|long|far|old|large|big|high|tall|deep|wide|often|fast|heavy)\b|"
    r"\bwhat\s+(?:percentage|percent|proportion|number|amount|fraction)\b",
    re.I,
)
_EN_DATE = re.compile(
    rf"\b(?:{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{3,4}}|\d{{1,2}}\s+{_MONTH}\s+\d{{3,4}}|"
    rf"{_MONTH}\s+\d{{3,4}}|\d{{1,2}}(?:st|nd|rd|th)\s+century|\d{{3,4}}s?)\b"
)
_EN_NUMBER = re.compile(
    rf"(?:[$£€¥]\s?)?\b(?:\d[\d,]*(?:\.\d+)?|{_NUMBER_WORD}(?:[\s-]{_NUMBER_WORD})*)\b"
    r"(?:\s?(?:%|percent|per cent|million|billion|trillion|thousand|hundred))?"
    r"(?:\s+[a-z]+)?",
    re.I,
)
_ZH_DATE_QUESTION = re.compile(
    r"哪一年|哪年|何年|何時|何时|什麼時候|什么时候|甚麼時候|哪個時候|哪个时候|哪一天|何日|幾月|几月|"
    r"哪個年代|哪个年代|哪個世紀|哪个世纪|哪一時期|哪个时期|何時期"
)
_ZH_NUMBER_QUESTION = re.compile(
    # "哪几种" asks which ones, not how many.
    r"(?<![哪那])[幾几]|多少|多長|多长|多久|多大|多高|多遠|多远|多重|多深|多寬|多宽"
)
_ZH_DIGITS = r"[0-9０-９一二三四五六七八九十百千萬万億亿兩两零〇○]"
_ZH_DATE = re.compile(
    rf"(?:西元|公元|民國|民国|西元前|公元前)?{_ZH_DIGITS}{{1,5}}年(?:代)?"
    rf"(?:{_ZH_DIGITS}{{1,2}}月)?(?:{_ZH_DIGITS}{{1,3}}[日號号])?|"
    rf"{_ZH_DIGITS}{{1,2}}月{_ZH_DIGITS}{{1,3}}[日號号]|{_ZH_DIGITS}{{1,3}}世紀|{_ZH_DIGITS}{{1,3}}世纪"
)
_ZH_UNIT = (
    r"(?:平方公里|平方公尺|平方米|公里|公尺|公分|公斤|公頃|公顷|英里|英尺|米|尺|里|噸|吨|克|斤|"
    r"億元|亿元|萬元|万元|美元|元|倍|度|歲|岁|年|個月|个月|月|週|周|天|日|小時|小时|分鐘|分钟|秒|"
    r"個|个|名|位|人|次|座|層|层|種|种|件|頭|头|隻|只|條|条|本|部|架|輛|辆|場|场|屆|届|期|項|项|"
    r"家|所|間|间|棟|栋|枚|顆|颗|株|張|张|匹|戶|户|冊|册|章|節|节|艘|首|門|门|支|片|份|型|代|級|级|"
    r"%|％)"
)
_ZH_NUMBER = re.compile(
    rf"(?:約|约|超過|超过|將近|将近|逾|近)?{_ZH_DIGITS}"
    r"[0-9０-９.,．一二三四五六七八九十百千萬万億亿兩两零〇○]*多?"
    rf"{_ZH_UNIT}?"
)


_MONEY_QUESTION = re.compile(
    r"多少钱|多少錢|花多少|价格|價格|费用|費用|成本|\bcost\b|\bprice\b|how much money", re.I
)
_CURRENCY = re.compile(r"[$£€¥]|元|块|塊|美元|欧元|歐元|euro|dollar|yuan|usd|rmb", re.I)
_BARE_YEAR = re.compile(r"(?:1[5-9]|20)\d\d")
# Characters either side of a number where the words that name it stand, in Chinese.
_LEAD_IN = 12


def short_answer(question: str, sentence: str) -> str:
    """The date or number ``question`` asks for, found in ``sentence``; else "".

    Of the matching expressions not already in the question, the one nearest to a
    word the question shares with the sentence wins; in Chinese, first the one with
    the most of the question's character pairs close around it.

    Example:
        >>> short_answer("When did Bell patent the telephone?",
        ...              "Bell was granted a patent on March 7, 1876, in Boston.")
        'March 7, 1876'
        >>> short_answer("台灣有幾個直轄市？", "台灣目前有六個直轄市，人口約2300萬。")
        '六個'
        >>> short_answer("授信总额是多少？", "授信总额为372.53亿元，已使用授信额度为200.10亿元。")
        '372.53亿元'
    """
    pattern = answer_pattern(question)
    if pattern is None:
        return ""
    lowered_question = question.lower()
    money = bool(_MONEY_QUESTION.search(question))
    matches = [
        m
        for m in pattern.finditer(sentence)
        if m.group().strip().lower() not in lowered_question
        and _number_core(m.group()) not in lowered_question
        # A capital at the start of a sentence is no sign of a name.
        and not (pattern is _EN_NAME and m.start() == 0 and " " not in m.group().strip())
        # "How many" is not answered by a bare year ("released in 2020").
        and not (pattern in (_EN_NUMBER, _ZH_NUMBER) and _BARE_YEAR.fullmatch(m.group().strip()))
        # "How much does it cost" is answered by an amount of money only.
        and not (money and not _CURRENCY.search(m.group()))
    ]
    if not matches:
        return ""
    anchors = _anchor_positions(question, sentence)

    def distance(match: re.Match[str]) -> float:
        if not anchors:
            return float(match.start())
        return min(min(abs(match.start() - a), abs(match.end() - a)) for a in anchors)

    def lead_in(match: re.Match[str]) -> int:
        # How many of the question's character pairs stand close around the number:
        # in "授信总额为372.53亿元，已使用授信额度为200.10亿元" the total sits by
        # "授信总额", though "授信" is nearer the other number.
        if detect_language(question) != "zh":
            return 0
        low, high = match.start() - _LEAD_IN, match.end() + _LEAD_IN
        return sum(1 for a in anchors if low <= a < high and not match.start() <= a < match.end())

    best = min(matches, key=lambda m: (-lead_in(m), distance(m))).group()
    best = best.strip(" ,，").rstrip(".")
    if pattern is _EN_NUMBER and " " in best:
        # "340 million parameters" for "how many parameters": the unit is in the question.
        head, last = best.rsplit(" ", 1)
        if last.lower()[:5] in lowered_question:
            best = head
    return best


def answer_pattern(question: str) -> re.Pattern[str] | None:
    """What a short answer to ``question`` looks like, when its wording says."""
    if detect_language(question) == "zh":
        if _ZH_DATE_QUESTION.search(question):
            return _ZH_DATE
        return _ZH_NUMBER if _ZH_NUMBER_QUESTION.search(question) else None
    if _EN_DATE_QUESTION.search(question):
        return _EN_DATE
    if _EN_NUMBER_QUESTION.search(question):
        return _EN_NUMBER
    return _EN_NAME if _EN_NAME_QUESTION.search(question) else None


def asks_date(question: str) -> bool:
    """Whether ``question`` asks for a date ("when", "哪一年").

    Example:
        >>> asks_date("When is The Crazy Ones dated?"), asks_date("GPT-4 有多少参数？")
        (True, False)
    """
    return answer_pattern(question) in (_EN_DATE, _ZH_DATE)


def asks_date_or_number(question: str) -> bool:
    """Whether ``question`` asks for a date or a number ("when", "多少"), not a name."""
    pattern = answer_pattern(question)
    return pattern is not None and pattern is not _EN_NAME


def _number_core(expression: str) -> str:
    """The digits of an expression ("101層" -> "101"), or itself when it has none."""
    digits = re.findall(r"\d+", expression)
    return max(digits, key=len) if digits else expression.strip().lower()


def _anchor_positions(question: str, sentence: str) -> list[int]:
    """Where the question's words (or, for Chinese, its character pairs) occur."""
    lowered = sentence.lower()
    if detect_language(question) == "zh":
        pieces = {question[i : i + 2] for i in range(len(question) - 1)}
        pieces = {p for p in pieces if all(ch.isalnum() for ch in p)}
    else:
        pieces = {
            w
            for w in re.findall(r"[a-z0-9]+", question.lower())
            if w not in _EN_COMMON and len(w) > 2
        }
    positions = []
    for piece in pieces:
        for match in re.finditer(re.escape(piece), lowered):
            positions.append(match.start())
    return positions


_EN_COMMON = frozenset(
    [
        "the",
        "and",
        "was",
        "were",
        "what",
        "when",
        "which",
        "who",
        "whom",
        "whose",
        "how",
        "many",
        "much",
        "did",
        "does",
        "for",
        "from",
        "with",
        "that",
        "this",
        "year",
        "date",
        "day",
        "month",
    ]
)
