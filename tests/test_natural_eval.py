"""Natural-question sets: loading, matching, scoring, follow-ups and `ragqa eval` routing.

The sets are written to ``tmp_path`` over small text files and indexed with the
hashing embedder; where an outcome must be exact, ``KnowledgeBase.ask`` is replaced
by a fake that answers from a table.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from ragqa import ConfigError, KnowledgeBase, Settings
from ragqa.answering import Answer, Citation
from ragqa.cli import cli
from ragqa.conversation import Turn
from ragqa.natural_eval import (
    NaturalQuestion,
    abstained,
    contains_fact,
    default_natural_kb_dir,
    is_natural_set,
    load_natural_set,
    normalise_for_match,
    report,
    run_natural_eval,
    score_answer,
)
from ragqa.prompting import no_answer_text

TEA = "陸羽撰寫了《茶經》，這是世界上第一部關於茶的專著。凍頂烏龍茶產於南投鹿谷。"
PLANETS = "Venus is the hottest planet. Its thick carbon dioxide atmosphere traps heat."
QUESTIONS = [
    {
        "id": "zh-1",
        "lang": "zh",
        "question": "谁写了茶经？",
        "kind": "direct",
        "file": "notes/tea.txt",
        "key_facts": ["陆羽"],
    },
    {
        "id": "en-1",
        "lang": "en",
        "question": "Which planet is the hottest?",
        "kind": "paraphrase",
        "file": "notes/planets.md",
        "key_facts": ["Venus"],
    },
    {
        "id": "en-2",
        "lang": "en",
        "question": "And why is it so hot?",
        "kind": "followup",
        "file": "notes/planets.md",
        "key_facts": ["carbon dioxide"],
        "history": ["Which planet is the hottest?", "Is it bigger than Mars?"],
    },
    {
        "id": "en-3",
        "lang": "en",
        "question": "Who won the football world cup in 2030?",
        "kind": "unanswerable",
        "file": None,
        "key_facts": [],
    },
]


def write_set(repo: Path, **changes: object) -> Path:
    """A set in ``repo/bench/data`` whose root is ``../docs``, beside the repository."""
    data = {
        "name": "mini",
        "description": "a tiny set",
        "root": "../docs",
        "documents": ["notes/tea.txt", "notes/planets.md"],
        "passwords": {},
        "questions": QUESTIONS,
    }
    data.update(changes)
    path = repo / "bench" / "data" / "mini.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


@pytest.fixture
def repo(tmp_path: Path, write_text) -> Path:
    write_text("notes/tea.txt", TEA)
    write_text("notes/planets.md", PLANETS)
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    return repo


@pytest.fixture
def natural_set(repo: Path) -> Path:
    return write_set(repo)


@pytest.fixture
def hashing_settings(tmp_path: Path) -> Settings:
    return Settings(embedding_model="hashing:64", data_dir=str(tmp_path / "data"))


def cite(source: str, text: str, number: int = 1) -> Citation:
    return Citation(number, source, 1, 0, len(text), number, text)


def question(file: str | None = "notes/tea.txt", facts: tuple[str, ...] = ("陆羽",)):
    kind = "direct" if file else "unanswerable"
    return NaturalQuestion("q", "zh", "谁写了茶经？", kind, file, facts if file else ())


# Loading ---------------------------------------------------------------------------


def test_load_resolves_root_against_the_repository(natural_set: Path, tmp_path: Path):
    natural = load_natural_set(natural_set)
    assert natural.root == (tmp_path / "docs").resolve()
    assert natural.name == "mini" and len(natural.questions) == 4
    followup = natural.questions[2]
    assert followup.history == ("Which planet is the hottest?", "Is it bigger than Mars?")
    assert natural.questions[0].history == ()
    assert [q.answerable for q in natural.questions] == [True, True, True, False]
    assert is_natural_set(natural_set)


def test_root_falls_back_to_the_sets_folder(tmp_path: Path, write_text):
    write_text("notes/tea.txt", TEA)
    write_text("notes/planets.md", PLANETS)
    path = tmp_path / "docs" / "mini.json"  # no pyproject.toml anywhere above
    path.write_text(
        json.dumps(
            {"root": ".", "documents": ["notes/tea.txt"], "questions": [QUESTIONS[0]]},
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    assert load_natural_set(path).root == (tmp_path / "docs").resolve()


def test_docs_overrides_the_root(repo: Path, tmp_path: Path):
    path = write_set(repo, root="../nowhere")
    with pytest.raises(ConfigError, match="not found under"):
        load_natural_set(path)
    natural = load_natural_set(path, docs=tmp_path / "docs")
    assert natural.root == (tmp_path / "docs").resolve()
    # Other documents, another cache: the two must never share a knowledge base.
    settings = Settings(embedding_model="hashing:64")
    other = load_natural_set(write_set(repo), docs=None)
    assert natural.digest != other.digest
    assert default_natural_kb_dir(natural, settings) != default_natural_kb_dir(other, settings)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"documents": None}, "'documents' must be a list of strings"),
        ({"documents": []}, "lists no files"),
        ({"documents": ["notes/tea.txt", "notes/gone.txt"]}, "'notes/gone.txt' not found"),
        ({"questions": [{"id": "a", "lang": "zh", "kind": "direct"}]}, "lacks 'question', 'key_"),
        ({"questions": [dict(QUESTIONS[0], kind="vague")]}, "kind 'vague' is not one of"),
        ({"questions": [QUESTIONS[0], QUESTIONS[0]]}, "'zh-1' appears twice"),
        ({"questions": [dict(QUESTIONS[0], file="notes/x.txt")]}, "'notes/x.txt' is not in"),
        ({"questions": [dict(QUESTIONS[3], file="notes/tea.txt")]}, "unanswerable question"),
        ({"questions": [dict(QUESTIONS[0], key_facts=[])]}, "needs key facts"),
        ({"questions": [dict(QUESTIONS[0], key_facts="陆羽")]}, "must be a list of strings"),
        ({"questions": [dict(QUESTIONS[2], history="x")]}, "'history' must be a list"),
        ({"passwords": {"pdfs/a.pdf": "pw"}}, "'passwords' names 'pdfs/a.pdf'"),
        ({"questions": []}, "'questions' is empty"),
    ],
)
def test_malformed_sets_name_the_file_and_the_problem(repo: Path, changes, message):
    path = write_set(repo, **changes)
    with pytest.raises(ConfigError, match=message) as caught:
        load_natural_set(path)
    assert str(path) in str(caught.value)


def test_a_missing_top_level_key_or_bad_json_is_reported(repo: Path):
    path = write_set(repo)
    data = json.loads(path.read_text(encoding="utf-8"))
    del data["documents"]
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ConfigError, match="no 'documents' list"):
        load_natural_set(path)
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(ConfigError, match="not a JSON file"):
        load_natural_set(path)
    assert not is_natural_set(path)


# Matching and scoring --------------------------------------------------------------


def test_normalisation_ignores_script_width_case_and_whitespace():
    assert normalise_for_match("無監督 預訓練") == normalise_for_match("无监督预训练")
    assert normalise_for_match("ＧＰＴ－３\u3000Model") == "gpt-3model"
    assert contains_fact("The model has\n175 billion   parameters", ["175 Billion Parameters"])
    assert contains_fact("陸羽撰寫了《茶經》", ["陆羽撰写"])  # Traditional answer, Simplified fact
    assert contains_fact("陆羽撰写了茶经", ["陸羽撰寫"])  # and the other way round
    assert not contains_fact("盧仝寫了七碗茶詩", ["陆羽"])


def test_key_fact_in_answer_ignores_citation_markers():
    q = NaturalQuestion("q", "en", "Which?", "direct", "notes/planets.md", ("Venus is hottest",))
    answer = Answer("Venus [1] is hottest.", (cite("/d/notes/planets.md", "Venus ..."),))
    outcome = score_answer(q, answer, sources={"notes/planets.md": "/d/notes/planets.md"})
    assert outcome.key_fact_in_answer


def test_checks_of_an_answerable_question():
    sources = {"notes/tea.txt": "/d/notes/tea.txt", "notes/b.txt": "/d/notes/b.txt"}
    right = Answer("陸羽寫的 [1]。", (cite("/d/notes/tea.txt", "陸羽撰寫了《茶經》"),))
    outcome = score_answer(question(), right, sources=sources)
    assert (outcome.key_fact_in_answer, outcome.right_file_cited) == (True, True)
    assert outcome.key_fact_in_cited_passage and not outcome.false_abstention
    assert outcome.cited == ("notes/tea.txt",) and not outcome.abstained

    # The fact is said, but from another document's passage that lacks it.
    wrong = Answer("陆羽 [1]", (cite("/d/notes/b.txt", "别的内容"),))
    outcome = score_answer(question(), wrong, sources=sources)
    assert outcome.key_fact_in_answer and not outcome.right_file_cited
    assert not outcome.key_fact_in_cited_passage and outcome.cited == ("notes/b.txt",)

    nothing = Answer(no_answer_text("谁写了茶经？"))
    outcome = score_answer(question(), nothing, sources=sources)
    assert outcome.false_abstention and outcome.abstained
    assert not (outcome.key_fact_in_answer or outcome.right_file_cited)


def test_right_file_by_name_when_the_kb_holds_another_copy():
    sources = {"notes/tea.txt": "/d/notes/tea.txt", "other/tea.txt": "/d/other/tea.txt"}
    elsewhere = Answer("陆羽 [1]", (cite("/copy/notes/tea.txt", "陆羽"),))
    assert score_answer(question(), elsewhere, sources=sources).right_file_cited
    # A document of the set with the same name is another file, not a copy.
    namesake = Answer("陆羽 [1]", (cite("/d/other/tea.txt", "陆羽"),))
    assert not score_answer(question(), namesake, sources=sources).right_file_cited


@pytest.mark.parametrize("script_question", ["Who?", "这是什么？", "這是什麼？"])
def test_abstention_is_recognised_in_every_script(script_question: str):
    sentence = no_answer_text(script_question)
    cited = (cite("/d/notes/tea.txt", "x"),)
    assert abstained(Answer(f"{sentence} [1]", cited))
    assert abstained(Answer("Something.", ()))  # nothing cited
    assert not abstained(Answer("Venus [1].", cited))
    outcome = score_answer(question(file=None), Answer(sentence, cited), sources={})
    assert outcome.abstained and outcome.key_fact_in_answer is None


def hit_with(text: str):
    from ragqa.types import Hit

    return Hit(
        chunk_id=1, source="/d/notes/tea.txt", page=1, start=0, end=len(text), text=text, score=1.0
    )


def test_report_gives_fractions_counts_and_groups():
    sources = {"notes/tea.txt": "/d/notes/tea.txt"}
    good = Answer("陆羽 [1]", (cite("/d/notes/tea.txt", "陸羽"),))
    # The fact was retrieved but not quoted: retrieval's share, not the answer's.
    retrieved = Answer("?", passages=(hit_with("茶經的作者是陸羽"),))
    outcomes = [
        score_answer(question(), retrieved, sources=sources),
        score_answer(question(), good, sources=sources),
        score_answer(question(), Answer("?"), sources=sources),
        score_answer(question(file=None), Answer("no"), sources=sources),
    ]
    metrics = report(outcomes)
    assert (metrics["questions"], metrics["answerable"], metrics["unanswerable"]) == (4, 3, 1)
    assert metrics["key_fact_in_answer"] == 0.3333 and metrics["false_abstention"] == 0.6667
    assert metrics["abstained"] == 1.0
    assert metrics["counts"] == {
        "key_fact_in_answer": 1,
        "right_file_cited": 1,
        "key_fact_in_cited_passage": 1,
        "key_fact_retrieved": 1,
        "false_abstention": 2,
        "abstained": 1,
    }
    assert list(metrics["by_lang"]) == ["zh"]
    assert list(metrics["by_kind"]) == ["direct", "unanswerable"]
    assert metrics["by_kind"]["direct"]["abstained"] is None  # no unanswerable question
    assert metrics["by_kind"]["unanswerable"]["right_file_cited"] is None


# Running ---------------------------------------------------------------------------


class ScriptedAnswers:
    """Stands in for KnowledgeBase.ask: records each call, answers from a table."""

    def __init__(self, docs: Path) -> None:
        self.calls: list[tuple[str, tuple[Turn, ...]]] = []
        tea, planets = (str((docs / f).resolve()) for f in ("notes/tea.txt", "notes/planets.md"))
        self.table = {
            "谁写了茶经？": Answer("陸羽 [1]", (cite(tea, TEA),)),
            "Which planet is the hottest?": Answer("Venus [1].", (cite(planets, PLANETS),)),
            "Is it bigger than Mars?": Answer("Yes [1].", (cite(planets, PLANETS),)),
            "And why is it so hot?": Answer("Its thick atmosphere [1].", (cite(tea, TEA),)),
        }

    def ask(self, text: str, history=None, **kwargs) -> Answer:  # noqa: ARG002
        # Set on the class as a bound method, so the knowledge base is not passed.
        self.calls.append((text, tuple(history or ())))
        default = Answer(no_answer_text(text), backend="extractive")
        answer = self.table.get(text, default)
        return Answer(answer.text, answer.citations, backend="extractive")


def test_follow_ups_are_asked_after_their_history(
    natural_set: Path, hashing_settings: Settings, tmp_path: Path, monkeypatch
):
    scripted = ScriptedAnswers(tmp_path / "docs")
    monkeypatch.setattr(KnowledgeBase, "ask", scripted.ask)
    details = tmp_path / "details.jsonl"
    metrics = run_natural_eval(
        natural_set, settings=hashing_settings, show_progress=False, details=details
    )
    asked = [text for text, _ in scripted.calls]
    assert asked == [
        "谁写了茶经？",
        "Which planet is the hottest?",
        "Which planet is the hottest?",  # en-2's history, answered in turn
        "Is it bigger than Mars?",
        "And why is it so hot?",
        "Who won the football world cup in 2030?",
    ]
    assert scripted.calls[2][1] == ()
    assert scripted.calls[3][1] == (
        Turn("user", "Which planet is the hottest?"),
        Turn("assistant", "Venus [1]."),
    )
    assert scripted.calls[4][1] == (
        *scripted.calls[3][1],
        Turn("user", "Is it bigger than Mars?"),
        Turn("assistant", "Yes [1]."),
    )
    assert scripted.calls[0][1] == scripted.calls[5][1] == ()

    # zh-1 and en-1 pass everything; en-2 cites the wrong file and misses the fact.
    assert metrics["questions"] == 4 and metrics["answerable"] == 3
    assert metrics["key_fact_in_answer"] == round(2 / 3, 4)
    assert metrics["right_file_cited"] == round(2 / 3, 4)
    assert metrics["abstained"] == 1.0 and metrics["false_abstention"] == 0.0
    assert metrics["by_lang"]["zh"]["key_fact_in_answer"] == 1.0
    assert metrics["by_kind"]["followup"]["right_file_cited"] == 0.0
    assert metrics["backend"] == "extractive" and metrics["embedding_model"] == "hashing:64"
    assert metrics["failed_documents"] == [] and metrics["documents"] == 2
    assert metrics["latency_ms_p50"] >= 0

    lines = [json.loads(line) for line in details.read_text(encoding="utf-8").splitlines()]
    assert [line["id"] for line in lines] == ["zh-1", "en-1", "en-2", "en-3"]
    assert lines[2]["cited"] == ["notes/tea.txt"] and lines[2]["right_file_cited"] is False
    assert lines[3]["abstained"] is True and lines[3]["key_fact_in_answer"] is None
    assert {"question", "kind", "answer", "history", "file"} <= set(lines[0])


def test_real_answers_over_the_cached_knowledge_base(natural_set: Path, hashing_settings: Settings):
    metrics = run_natural_eval(natural_set, settings=hashing_settings, show_progress=False)
    assert metrics["questions"] == 4 and metrics["backend"] == "extractive"
    assert 0.0 <= metrics["key_fact_in_answer"] <= 1.0
    kb_dir = default_natural_kb_dir(load_natural_set(natural_set), hashing_settings)
    with KnowledgeBase.open(kb_dir) as kb:
        assert {Path(d.source).name for d in kb.documents()} == {"tea.txt", "planets.md"}
    mtime = (kb_dir / "catalog.sqlite").stat().st_mtime_ns
    run_natural_eval(natural_set, settings=hashing_settings, show_progress=False)
    assert (kb_dir / "catalog.sqlite").stat().st_mtime_ns == mtime  # nothing re-embedded
    changed = default_natural_kb_dir(
        load_natural_set(natural_set), hashing_settings.replace(chunk_size=300)
    )
    assert changed != kb_dir


def test_each_pdf_gets_its_own_password(
    repo: Path, hashing_settings: Settings, tmp_path: Path, monkeypatch
):
    path = write_set(repo, passwords={"notes/tea.txt": "secret"})
    seen: list[tuple[str, str | None]] = []
    original = KnowledgeBase.add

    def add(kb, paths, *, pdf_password=None, **kwargs):
        seen.extend((Path(p).name, pdf_password) for p in paths)
        return original(kb, paths, pdf_password=pdf_password, **kwargs)

    monkeypatch.setattr(KnowledgeBase, "add", add)
    monkeypatch.setattr(KnowledgeBase, "ask", ScriptedAnswers(tmp_path / "docs").ask)
    run_natural_eval(path, settings=hashing_settings, show_progress=False)
    assert seen == [("tea.txt", "secret"), ("planets.md", None)]


# The CLI ---------------------------------------------------------------------------


@pytest.fixture
def cli_env(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("RAGQA_EMBEDDING_MODEL", "hashing:64")
    monkeypatch.setattr(KnowledgeBase, "ask", ScriptedAnswers(tmp_path / "docs").ask)


@pytest.mark.usefixtures("cli_env")
def test_cli_routes_a_natural_set(natural_set: Path, tmp_path: Path):
    details = tmp_path / "d.jsonl"
    args = ["eval", str(natural_set), "--kb", str(tmp_path / "kb"), "--json"]
    result = CliRunner().invoke(cli, [*args, "--details", str(details)])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert metrics["questions"] == 4 and metrics["abstained"] == 1.0
    assert {"by_lang", "by_kind", "latency_ms_p50", "backend", "embedding_model"} <= set(metrics)
    assert len(details.read_text(encoding="utf-8").splitlines()) == 4

    table = CliRunner().invoke(cli, args[:-1])
    assert table.exit_code == 0, table.output
    assert "4 questions (3 answerable, 1 unanswerable)" in table.stdout
    rows = {
        line.split()[0] + " " + line.split()[1]: line
        for line in table.stdout.splitlines()
        if line.startswith(("lang ", "kind "))
    }
    assert set(rows) == {
        "lang en",
        "lang zh",
        "kind direct",
        "kind paraphrase",
        "kind followup",
        "kind unanswerable",
    }
    assert rows["lang zh"].split()[2:5] == ["1", "1.000", "1.000"]


@pytest.mark.usefixtures("cli_env")
def test_cli_docs_option_overrides_the_root(repo: Path, tmp_path: Path):
    path = write_set(repo, root="../nowhere")
    bare = CliRunner().invoke(cli, ["eval", str(path), "--json"])
    assert bare.exit_code == 1 and "not found under" in bare.output and "--docs" in bare.output
    result = CliRunner().invoke(cli, ["eval", str(path), "--docs", str(tmp_path / "docs")])
    assert result.exit_code == 0, result.output


@pytest.mark.usefixtures("cli_env")
@pytest.mark.parametrize(
    "option", [["-k", "5"], ["--answers"], ["--subset", "tune"], ["--limit", "2"], ["-k", "10"]]
)
def test_cli_refuses_squad_options_for_a_natural_set(natural_set: Path, option: list[str]):
    result = CliRunner().invoke(cli, ["eval", str(natural_set), *option])
    assert result.exit_code == 2
    assert option[0] in result.output and "natural-question set" in result.output


@pytest.mark.usefixtures("cli_env")
def test_cli_refuses_natural_options_for_a_squad_file(tmp_path: Path):
    squad = tmp_path / "squad.json"
    squad.write_text(json.dumps({"data": []}), encoding="utf-8")
    result = CliRunner().invoke(cli, ["eval", str(squad), "--details", str(tmp_path / "d")])
    assert result.exit_code == 2 and "--details apply to natural-question sets" in result.output


@pytest.mark.usefixtures("cli_env")
def test_cli_reports_a_malformed_natural_set_in_one_line(repo: Path):
    path = write_set(repo, questions=[{"id": "x"}])
    result = CliRunner().invoke(cli, ["eval", str(path)])
    assert result.exit_code == 1
    assert f"Error: {path}: question 1 ('x') lacks" in result.output
