"""What the HTTP server needs to know beyond :class:`ragqa.Settings`.

Kept apart from ``Settings`` on purpose: the API key must never reach a settings
object that gets logged or shown, and the other values only matter to the server.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "ServerConfig"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


@dataclass(frozen=True)
class ServerConfig:
    """How the server guards and paces itself.

    Attributes:
        api_key: the bearer token every ``/v1`` request must carry; "" lets any
            request in (only allowed on a loopback address, see
            :func:`ragqa.server.security.check_bind`).
        lock_timeout: seconds an upload or a removal waits for a knowledge base that
            another writer holds, before the client gets a 503 "busy". Short, because
            an HTTP client would rather retry than hang.
        retry_after: the ``Retry-After`` seconds sent with that 503.
        max_json_bytes: the largest JSON body accepted; a question and a chat
            history fit easily, and a bigger body is refused before it is read.
    """

    api_key: str = field(default="", repr=False)
    lock_timeout: float = 5.0
    retry_after: int = 5
    max_json_bytes: int = 1024 * 1024
