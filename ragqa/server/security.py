"""Who may use the server: loopback by default, a bearer token for anything else.

The rules, in the order they apply:

* The server binds ``127.0.0.1`` unless told otherwise, so by default only
  programs on the same machine reach it.
* Binding any other address (``0.0.0.0``, a LAN address, a host name that is not
  loopback only) requires an API key from ``RAGQA_API_KEY`` of at least
  :data:`MIN_KEY_LENGTH` characters; without one the server refuses to start.
* When a key is set, every ``/v1`` request must send ``Authorization: Bearer KEY``.
  Keys are compared with :func:`hmac.compare_digest`, whose time does not depend on
  where the strings differ, so a client cannot guess the key one character at a time.
* The key is read from the environment only (never an option: it would show in the
  shell history and the process list) and is never logged or echoed in an error.
"""

from __future__ import annotations

import hmac
import ipaddress
import socket

from starlette.types import ASGIApp, Receive, Scope, Send

from ragqa.errors import ConfigError
from ragqa.server.errors import ApiError

__all__ = [
    "API_KEY_ENV",
    "MIN_KEY_LENGTH",
    "BearerAuth",
    "check_bind",
    "is_loopback",
    "token_matches",
]

API_KEY_ENV = "RAGQA_API_KEY"
# A key anyone on the network may try: long enough that guessing it is hopeless.
MIN_KEY_LENGTH = 16


def is_loopback(host: str) -> bool:
    """Whether ``host`` reaches this machine only: a loopback address, or a name
    all of whose addresses are loopback. "" and ``0.0.0.0`` mean every interface."""
    host = host.strip().strip("[]")
    if not host:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False  # a name we cannot resolve is not known to be safe
    addresses = {info[4][0] for info in infos}
    return bool(addresses) and all(
        ipaddress.ip_address(address.split("%", 1)[0]).is_loopback for address in addresses
    )


def check_bind(host: str, api_key: str) -> None:
    """Refuse to serve ``host`` without a usable key, unless it is loopback only.

    Raises:
        ConfigError: a non-loopback host and no key, or a key too short to be safe
            there. The message says how to fix it and never contains the key.
    """
    if is_loopback(host):
        return
    if not api_key:
        raise ConfigError(
            f"refusing to serve on {host or 'every interface'} without an API key: "
            f"set {API_KEY_ENV} to a secret of at least {MIN_KEY_LENGTH} characters "
            "(clients send it as 'Authorization: Bearer ...'), or bind 127.0.0.1"
        )
    if len(api_key) < MIN_KEY_LENGTH:
        raise ConfigError(
            f"{API_KEY_ENV} is too short to guard a network address: use at least "
            f"{MIN_KEY_LENGTH} characters, for example "
            "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
        )


def token_matches(authorization: str | None, api_key: str) -> bool:
    """Whether an ``Authorization`` header carries ``api_key`` as a bearer token.

    Example:
        >>> token_matches("Bearer s3cret-s3cret", "s3cret-s3cret")
        True
        >>> token_matches("Bearer guess", "s3cret-s3cret"), token_matches(None, "k")
        (False, False)
    """
    if not authorization:
        return False
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    # Bytes, so that a non-ASCII token is compared like any other instead of raising.
    return hmac.compare_digest(token.strip().encode("utf-8"), api_key.encode("utf-8"))


class BearerAuth:
    """ASGI middleware: every request under ``/v1`` must carry the API key.

    Checked before anything else, the body included, so a client without the key
    learns nothing (not even whether its JSON was valid) and costs almost nothing.
    ``/healthz`` stays open, for load balancers and container health checks; it
    reports nothing but "ok".
    """

    def __init__(self, app: ASGIApp, *, api_key: str) -> None:
        self.app = app
        self._api_key = api_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self._api_key or not _protected(scope["path"]):
            await self.app(scope, receive, send)
            return
        headers = {name: value for name, value in scope.get("headers", ())}
        authorization = headers.get(b"authorization", b"").decode("latin-1")
        if token_matches(authorization, self._api_key):
            await self.app(scope, receive, send)
            return
        error = ApiError(
            401,
            "missing or wrong API key: send the server's RAGQA_API_KEY as "
            "'Authorization: Bearer <key>'",
            code="invalid_api_key",
            headers={"WWW-Authenticate": "Bearer"},
        )
        await error.response()(scope, receive, send)


def _protected(path: str) -> bool:
    return path != "/healthz"
