"""Knowledge bases for the server tests (the hashing embedder), and a live server.

``live_server`` runs the real app under a real uvicorn on a free loopback port in
a thread, so HTTP clients (``openai``, ``ChatOpenAI``, raw sockets) talk to it as
they would to ``ragqa serve``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from server_helpers import NOTES, TEXTS, LiveServer, running

from ragqa import KnowledgeBase, Settings
from ragqa.embeddings import HashingEmbedder
from ragqa.server import KnowledgeBases, ServerConfig, create_app


@pytest.fixture
def workspace_root(tmp_path: Path, settings: Settings) -> Path:
    """A workspace with two knowledge bases: ``default`` (three texts) and ``notes``."""
    root = tmp_path / "kbs"
    for name, texts in (("default", TEXTS), ("notes", NOTES)):
        with KnowledgeBase.create(
            root / name, settings=settings, embedder=HashingEmbedder(64)
        ) as kb:
            assert kb.add_texts(texts).failed == 0
    return root


@pytest.fixture
def make_registry(
    workspace_root: Path, settings: Settings
) -> Iterator[Callable[..., KnowledgeBases]]:
    made: list[KnowledgeBases] = []

    def factory(**overrides: object) -> KnowledgeBases:
        registry = KnowledgeBases.from_workspace(workspace_root, settings.replace(**overrides))
        made.append(registry)
        return registry

    yield factory
    for registry in made:
        registry.close()


@pytest.fixture
def make_app(make_registry) -> Callable[..., FastAPI]:
    def factory(config: ServerConfig | None = None, **overrides: object) -> FastAPI:
        config = config or ServerConfig(lock_timeout=0.2, retry_after=1)
        return create_app(make_registry(**overrides), config)

    return factory


@pytest.fixture
def client(make_app):
    from fastapi.testclient import TestClient

    with TestClient(make_app(), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def live_server(make_app) -> Iterator[Callable[..., LiveServer]]:
    """Start the app (``make_app``'s arguments) under uvicorn; stopped after the test."""
    stack: list = []

    def start(config: ServerConfig | None = None, **overrides: object) -> LiveServer:
        context = running(make_app(config, **overrides))
        stack.append(context)
        return context.__enter__()

    yield start
    for context in reversed(stack):
        context.__exit__(None, None, None)
