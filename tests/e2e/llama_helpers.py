"""The end-to-end tests' way to reach ``scripts/llama_server.py``, which is a script,
not a module of the package: loaded once by path and shared by every test file."""

from __future__ import annotations

import contextlib
import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def load_llama_script() -> ModuleType:
    """``scripts/llama_server.py`` as the module ``llama_server``."""
    if "llama_server" in sys.modules:
        return sys.modules["llama_server"]
    spec = importlib.util.spec_from_file_location(
        "llama_server", REPO / "scripts" / "llama_server.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["llama_server"] = module
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def bundled_llama_server(folder: Path) -> Iterator[Any]:
    """llama.cpp's server with the bundled Gemma 3 270M, joined into ``folder``."""
    script = load_llama_script()
    gguf = script.locate_model("", folder)
    with script.LlamaServer.start(
        gguf, n_ctx=2048, chat_format=script.BUNDLED_CHAT_FORMAT, log_path=folder / "log"
    ) as running:
        yield running
