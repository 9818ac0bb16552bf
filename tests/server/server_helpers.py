"""Helpers for the server tests: their texts, and a real uvicorn in a thread.

A module of its own (not conftest.py) so that tests can import it by name.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import uvicorn
from fastapi import FastAPI

TEXTS = {
    "docs/paris.md": "The Eiffel Tower is in Paris. It was completed in 1889 for the World's Fair.",
    "docs/tea.md": "Tea originated in southwest China. 茶起源於中國西南，已有數千年歷史。",
    "docs/planets.md": "Venus is the hottest planet because its thick atmosphere traps heat.",
}
NOTES = {"notes/rivers.md": "The Nile is the longest river in Africa."}
API_KEY = "test-key-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"


@contextmanager
def running(app: FastAPI) -> Iterator[LiveServer]:
    """``app`` under uvicorn on a free loopback port, until the block ends."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield LiveServer("127.0.0.1", port)
    finally:
        server.should_exit = True
        thread.join(10)
