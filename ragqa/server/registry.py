"""Which knowledge bases the server offers, opened once and shared by all requests.

Two ways to say which:

* a **workspace** (the default: ``Settings.data_dir``, the folder the chat UI keeps
  its knowledge bases in), whose knowledge bases are listed afresh on every request,
  so one created in the UI is served at once;
* a fixed list of **knowledge-base folders** (``ragqa serve --kb DIR --kb DIR2``),
  each named by its folder's name.

Either way every knowledge base is reached through a :class:`ragqa.workspace.Workspace`,
so uploads land in its ``uploads/`` folder and are checked by exactly the code the
UI uses. A knowledge base is opened on first use and then shared: it is
thread-safe, and one embedding model serves all knowledge bases built with it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ragqa.config import Settings
from ragqa.embeddings import Embedder, get_embedder
from ragqa.errors import ConfigError
from ragqa.knowledge_base import KnowledgeBase
from ragqa.workspace import Workspace, WorkspaceError

__all__ = ["KnowledgeBases", "UnknownKnowledgeBase"]


class UnknownKnowledgeBase(LookupError):
    """No knowledge base of that name is served."""


class KnowledgeBases:
    """The knowledge bases one server offers.

    Build it with :meth:`from_workspace` or :meth:`from_folders`; both check their
    input and raise :class:`~ragqa.errors.ConfigError` with what to fix.
    """

    def __init__(
        self,
        workspaces: dict[str, Workspace] | None,
        workspace: Workspace | None,
        settings: Settings,
    ) -> None:
        self._fixed = workspaces
        self._workspace = workspace
        self.settings = settings
        self._open: dict[str, KnowledgeBase] = {}
        self._opening: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()  # guards the open knowledge bases
        self._models_lock = threading.Lock()  # guards the shared models
        self._embedder: Embedder | None = None
        self._chat_model: Any = None

    @classmethod
    def from_workspace(
        cls, root: str | os.PathLike[str], settings: Settings, *, create_default: bool = True
    ) -> KnowledgeBases:
        """Serve every knowledge base in the workspace folder ``root``.

        Like the UI, an empty workspace gets an empty ``default`` knowledge base, so
        that there is something to upload to.
        """
        workspace = Workspace(root, settings)
        registry = cls(None, workspace, settings)
        if create_default:
            workspace.ensure_default(embedder=registry.shared_embedder())
        return registry

    @classmethod
    def from_folders(
        cls, folders: Sequence[str | os.PathLike[str]], settings: Settings
    ) -> KnowledgeBases:
        """Serve these knowledge-base folders, each under its folder's name.

        Raises:
            ConfigError: a folder holds no knowledge base, is a store URI (the
                server keeps uploads in the knowledge base's folder), has a name the
                UI would refuse, or shares its name with another.
        """
        workspaces: dict[str, Workspace] = {}
        for folder in folders:
            if "://" in str(folder):
                raise ConfigError(
                    f"{folder}: ragqa serve works on knowledge-base folders, not store URIs"
                )
            path = Path(folder).expanduser().resolve()
            if not ((path / "manifest.json").exists() or (path / "catalog.sqlite").exists()):
                raise ConfigError(
                    f"{folder} holds no knowledge base; create one with "
                    f"`ragqa ingest FILES --kb {folder}` or in the UI"
                )
            try:
                name = Workspace.validate_name(path.name)
            except WorkspaceError as error:
                raise ConfigError(
                    f"{folder}: the folder's name cannot name a model: {error}"
                ) from None
            if name.casefold() in {n.casefold() for n in workspaces}:
                raise ConfigError(
                    f"two knowledge bases are named {name!r}; serve folders with distinct names"
                )
            workspaces[name] = Workspace(path.parent, settings)
        if not workspaces:
            raise ConfigError("no knowledge base to serve")
        return cls(workspaces, None, settings)

    # ----------------------------------------------------------------- lookup

    def names(self) -> list[str]:
        """The knowledge bases served, in order; the first is the default."""
        if self._fixed is not None:
            return list(self._fixed)
        assert self._workspace is not None
        return self._workspace.names()

    def default_name(self) -> str:
        names = self.names()
        if not names:
            raise UnknownKnowledgeBase("")
        return names[0]

    def workspace(self, name: str) -> Workspace:
        """The workspace that holds knowledge base ``name``.

        Raises:
            UnknownKnowledgeBase: none of that name is served.
        """
        if name not in self.names():
            raise UnknownKnowledgeBase(name)
        if self._fixed is not None:
            return self._fixed[name]
        assert self._workspace is not None
        return self._workspace

    def get(self, name: str) -> KnowledgeBase:
        """Knowledge base ``name``, opened on first use and shared afterwards.

        Raises:
            UnknownKnowledgeBase: none of that name is served.
        """
        workspace = self.workspace(name)
        with self._lock:
            kb = self._open.get(name)
            if kb is not None:
                return kb
            opening = self._opening.setdefault(name, threading.Lock())
        # Opened under a lock of its own: a large knowledge base takes a while to
        # load, and questions to the others should not wait for it.
        with opening:
            with self._lock:
                kb = self._open.get(name)
            if kb is None:
                kb = workspace.open(name, embedder=self.shared_embedder())
                with self._lock:
                    self._open[name] = kb
            return kb

    def created(self, name: str) -> int:
        """When knowledge base ``name`` was created, in Unix seconds (for /v1/models)."""
        try:
            return int(self.workspace(name).path(name).stat().st_ctime)
        except OSError:
            return 0

    # -------------------------------------------------------- shared models

    def shared_embedder(self) -> Embedder:
        """The configured embedding model, built once (it loads on first use).

        A knowledge base built with another model opens with its own instead.
        """
        with self._models_lock:
            if self._embedder is None:
                s = self.settings
                self._embedder = get_embedder(
                    s.embedding_model,
                    batch_size=s.embedding_batch_size,
                    device=s.embedding_device,
                    query_backend=s.query_backend,
                    precision=s.embedding_precision,
                )
            return self._embedder

    def chat_model(self) -> Any:
        """The configured chat backend, built once; None for the extractive answerer.

        Built once because a local GGUF model takes seconds to load, and shared by
        all requests as the UI shares it between sessions.
        """
        if self.settings.llm == "extractive":
            return None
        with self._models_lock:
            if self._chat_model is None:
                from ragqa.llm import get_chat_model

                self._chat_model = get_chat_model(self.settings)
            return self._chat_model

    def close(self) -> None:
        with self._lock:
            for kb in self._open.values():
                kb.close()
            self._open.clear()
