"""Loopback by default, a bearer token for anything else, compared in constant time."""

from __future__ import annotations

import hmac
import logging

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from ragqa.cli import cli
from ragqa.errors import ConfigError
from ragqa.server import ServerConfig
from ragqa.server.security import MIN_KEY_LENGTH, check_bind, is_loopback, token_matches

KEY = "s3cret-key-for-the-tests-0123456789"


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("", False),
        ("192.168.1.10", False),
        ("10.0.0.1", False),
        ("no-such-host.invalid", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_binding_beyond_loopback_needs_a_long_enough_key() -> None:
    check_bind("127.0.0.1", "")  # loopback: a key is optional
    for host in ("0.0.0.0", "192.168.1.10", "::"):
        with pytest.raises(ConfigError, match="RAGQA_API_KEY"):
            check_bind(host, "")
    short = "x" * (MIN_KEY_LENGTH - 1)
    with pytest.raises(ConfigError, match="too short") as info:
        check_bind("0.0.0.0", short)
    assert short not in str(info.value)
    check_bind("0.0.0.0", KEY)


def test_token_matches_only_the_exact_bearer_token(monkeypatch) -> None:
    assert token_matches(f"Bearer {KEY}", KEY)
    assert token_matches(f"bearer   {KEY} ", KEY)
    for header in (None, "", KEY, f"Basic {KEY}", f"Bearer {KEY}x", f"Bearer {KEY[:-1]}", "Bearer"):
        assert not token_matches(header, KEY), header
    assert not token_matches("Bearer clé-ünïcode", KEY)  # non-ASCII is compared, not raised
    # The comparison is hmac.compare_digest's, whose time does not depend on the
    # position of the first difference.
    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert token_matches(f"Bearer {KEY}", KEY)
    assert calls == [(KEY.encode(), KEY.encode())]


def test_with_a_key_every_v1_request_must_carry_it(make_app, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    app = make_app(ServerConfig(api_key=KEY))
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200  # open, says nothing
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}):
            for response in (
                client.get("/v1/models", headers=headers),
                client.post("/v1/search", json={"query": "tea"}, headers=headers),
                # Refused before the body is read: no hint that the JSON is bad.
                client.post("/v1/chat/completions", content=b"{", headers=headers),
                client.get("/openapi.json", headers=headers),
            ):
                assert response.status_code == 401
                assert response.headers["www-authenticate"] == "Bearer"
                error = response.json()["error"]
                assert error["code"] == "invalid_api_key"
                assert error["type"] == "authentication_error"
        good = {"Authorization": f"Bearer {KEY}"}
        assert client.get("/v1/models", headers=good).status_code == 200
        assert client.post("/v1/search", json={"query": "tea"}, headers=good).status_code == 200
    assert KEY not in caplog.text


def test_serve_refuses_a_network_address_without_a_key(tmp_path, monkeypatch) -> None:
    data_dir = tmp_path / "data"
    monkeypatch.setenv("RAGQA_DATA_DIR", str(data_dir))
    result = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0"])
    assert result.exit_code == 1
    assert "refusing to serve on 0.0.0.0 without an API key" in result.output
    assert not data_dir.exists()  # refused before anything was created

    monkeypatch.setenv("RAGQA_API_KEY", "tiny-key-42")
    result = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0"])
    assert result.exit_code == 1
    assert "too short" in result.output
    assert "tiny-key-42" not in result.output
    assert not data_dir.exists()
