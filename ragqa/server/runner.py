"""Run the server with uvicorn, after the security checks.

Nothing here prints or logs the API key: uvicorn's access log shows the request
line and status, never headers.
"""

from __future__ import annotations

import logging

from ragqa.server.app import create_app
from ragqa.server.config import ServerConfig
from ragqa.server.registry import KnowledgeBases
from ragqa.server.security import check_bind

__all__ = ["serve"]

log = logging.getLogger(__name__)


def serve(
    registry: KnowledgeBases,
    *,
    host: str,
    port: int,
    config: ServerConfig,
    log_level: str = "info",
) -> None:
    """Serve ``registry`` on ``host:port`` until interrupted.

    Raises:
        ConfigError: ``host`` is not loopback and no usable API key is set, or the
            configured answerer cannot be built.
    """
    import uvicorn

    check_bind(host, config.api_key)
    # A misconfigured answerer (RAGQA_LLM=openai without a server, say) stops the
    # start here, instead of failing every question later.
    registry.chat_model()
    app = create_app(registry, config)
    try:
        uvicorn.run(
            app,
            host=host,
            port=port,
            log_level=log_level,
            server_header=False,  # no version banner for scanners
            timeout_graceful_shutdown=10,
        )
    finally:
        registry.close()
