"""Adapters that let other frameworks use a knowledge base.

Each adapter lives in its own module and imports its framework there, so that
``import ragqa`` never pays for a framework the caller does not use. Reach them
through the facade, for example :meth:`ragqa.KnowledgeBase.as_langchain_retriever`.
"""

from __future__ import annotations

__all__: list[str] = []
