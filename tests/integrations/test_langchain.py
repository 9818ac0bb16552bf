"""The LangChain retriever: the same hits as kb.search, as Documents, in LCEL chains."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest
from langchain_core.documents import Document
from langchain_core.language_models.fake_chat_models import (
    GenericFakeChatModel,
    ParrotFakeChatModel,
)
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.retrievers import BaseRetriever

from ragqa.errors import ConfigError

TEXTS = {
    "docs/paris.md": "The Eiffel Tower is in Paris. It was completed in 1889 for the World's Fair.",
    "docs/tea.md": "Tea originated in southwest China. 茶起源於中國西南，已有數千年歷史。",
    "docs/planets.md": "Venus is the hottest planet because its thick atmosphere traps heat.",
}

PROMPT = ChatPromptTemplate.from_messages(
    [
        ("system", "Answer from these passages only:\n{context}"),
        ("human", "{question}"),
    ]
)


def format_docs(docs: list[Document]) -> dict[str, str]:
    context = "\n\n".join(
        f"[{d.metadata['rank']}] {d.metadata['file_name']} p.{d.metadata['page']}: {d.page_content}"
        for d in docs
    )
    return {"context": context, "question": "When was the Eiffel Tower completed?"}


@pytest.fixture
def kb(make_kb):
    kb = make_kb()
    assert kb.add_texts(TEXTS).added == 3
    return kb


def test_is_a_langchain_retriever_with_the_hits_as_documents(kb) -> None:
    retriever = kb.as_langchain_retriever(k=2)
    assert isinstance(retriever, BaseRetriever)
    question = "When was the Eiffel Tower completed?"
    docs = retriever.invoke(question)
    hits = kb.search(question, k=2)
    assert hits and len(docs) == len(hits)
    for rank, (doc, hit) in enumerate(zip(docs, hits, strict=True), start=1):
        assert doc.page_content == hit.text
        assert doc.id == str(hit.chunk_id)
        assert doc.metadata == {
            "source": hit.source,
            "file_name": hit.file_name,
            "page": hit.page,
            "start": hit.start,
            "end": hit.end,
            "score": hit.score,
            "chunk_id": hit.chunk_id,
            "rank": rank,
            "heading": hit.heading,
            "focus": [list(span) for span in hit.focus],
        }
    assert docs[0].metadata["file_name"] == "paris.md"
    # The offsets point into the stored page, so a UI can highlight the passage.
    first = docs[0].metadata
    assert kb.page_text(first["source"], first["page"])[first["start"] : first["end"]] == (
        docs[0].page_content
    )


def test_ainvoke_and_batch_give_what_invoke_gives(kb) -> None:
    retriever = kb.as_langchain_retriever(k=2, min_relevance=0)
    questions = ["Eiffel Tower 1889", "茶的起源", "hottest planet"]
    expected = [retriever.invoke(q) for q in questions]
    assert [docs[0].metadata["file_name"] for docs in expected] == [
        "paris.md",
        "tea.md",
        "planets.md",
    ]
    assert retriever.batch(questions) == expected

    async def gather() -> list[list[Document]]:
        return await asyncio.gather(*(retriever.ainvoke(q) for q in questions))

    assert asyncio.run(gather()) == expected


def test_lcel_chain_passes_the_retrieved_passages_to_the_model(kb) -> None:
    retriever = kb.as_langchain_retriever(k=1)
    # The parrot model replies with the last message it was given: what the chain
    # put in front of the model comes back out, so the test sees the real prompt.
    chain = retriever | format_docs | PROMPT | ParrotFakeChatModel() | StrOutputParser()
    assert chain.invoke("When was the Eiffel Tower completed?") == (
        "When was the Eiffel Tower completed?"
    )
    prompt_value = (retriever | format_docs | PROMPT).invoke("Eiffel Tower")
    system = prompt_value.to_messages()[0].content
    assert "[1] paris.md p.1: The Eiffel Tower is in Paris." in system
    assert "tea.md" not in system  # k=1


def test_lcel_chain_with_a_fake_chat_model_streams_and_runs_async(kb) -> None:
    model = GenericFakeChatModel(messages=iter(["It was completed in 1889 [1].", "1889 [1]."]))
    chain = kb.as_langchain_retriever(k=2) | format_docs | PROMPT | model | StrOutputParser()
    pieces = list(chain.stream("Eiffel Tower"))
    assert len(pieces) > 1
    assert "".join(pieces) == "It was completed in 1889 [1]."
    assert asyncio.run(chain.ainvoke("Eiffel Tower")) == "1889 [1]."


def test_options_shape_the_search(kb) -> None:
    lexical = kb.as_langchain_retriever(k=3, mode="lexical")
    assert [d.page_content for d in lexical.invoke("tea China")] == [
        h.text for h in kb.search("tea China", k=3, mode="lexical")
    ]
    # Nothing is relevant to this question, so the relevance gate returns nothing,
    # unless the retriever turns the gate off.
    unrelated = "quantum chromodynamics of gluons"
    assert kb.as_langchain_retriever().invoke(unrelated) == []
    assert len(kb.as_langchain_retriever(k=3, min_relevance=0).invoke(unrelated)) == 3
    # The options apply to that retriever only.
    assert kb.settings.min_relevance == 0.25
    assert kb.search(unrelated) == []


def test_sees_documents_added_after_it_was_built(kb) -> None:
    retriever = kb.as_langchain_retriever(k=1)
    kb.add_texts({"docs/rivers.md": "The Nile is the longest river in Africa."})
    assert retriever.invoke("longest river in Africa")[0].metadata["file_name"] == "rivers.md"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"k": 0}, "k must be at least 1"),
        ({"mode": "fuzzy"}, "mode must be one of dense, lexical, hybrid"),
        ({"llm": "openai"}, "unknown search option(s) llm"),
        ({"min_relevance": 2.0}, "min_relevance must be between 0 and 1"),
    ],
)
def test_bad_options_are_refused_when_the_retriever_is_built(kb, kwargs, message) -> None:
    with pytest.raises(ConfigError) as info:
        kb.as_langchain_retriever(**kwargs)
    assert message in str(info.value)


def test_an_empty_query_is_a_clear_error(kb) -> None:
    with pytest.raises(ConfigError, match="the query is empty"):
        kb.as_langchain_retriever().invoke("   ")


def test_import_ragqa_does_not_import_langchain() -> None:
    code = (
        "import sys, ragqa\n"
        "assert 'ragqa.integrations.langchain' not in sys.modules\n"
        "assert 'langchain_core' not in sys.modules, 'langchain_core imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
