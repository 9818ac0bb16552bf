"""A real uvicorn server on a loopback port, used by real clients.

The official ``openai`` client and LangChain's ``ChatOpenAI`` talk to it as to any
OpenAI-compatible server; raw sockets send what no polite client would. The
knowledge bases use the hashing embedder, so this runs in seconds;
``tests/e2e/test_server.py`` repeats the essentials with the real model and the CLI.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import random
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest
from langchain_openai import ChatOpenAI
from server_helpers import API_KEY

from ragqa.integrity import check_integrity
from ragqa.server import ServerConfig

QUESTION = "When was the Eiffel Tower completed?"


@pytest.fixture
def server(live_server):
    return live_server(ServerConfig(api_key=API_KEY, lock_timeout=0.3, retry_after=1))


@pytest.fixture
def openai_client(server):
    return openai.OpenAI(base_url=server.base_url, api_key=API_KEY, max_retries=0, timeout=30)


def test_openai_client_without_streaming(openai_client) -> None:
    assert [m.id for m in openai_client.models.list()] == ["default", "notes"]
    response = openai_client.chat.completions.create(
        model="default", messages=[{"role": "user", "content": QUESTION}], temperature=0
    )
    assert response.object == "chat.completion" and response.model == "default"
    content = response.choices[0].message.content
    assert "1889" in content and "[1]" in content
    assert response.choices[0].finish_reason == "stop"
    citations = response.model_extra["citations"]
    assert [(c["file_name"], c["page"]) for c in citations] == [("paris.md", 1)]


def test_openai_client_streaming(openai_client) -> None:
    whole = openai_client.chat.completions.create(
        model="default", messages=[{"role": "user", "content": "茶起源於哪裡？"}]
    )
    stream = openai_client.chat.completions.create(
        model="default", messages=[{"role": "user", "content": "茶起源於哪裡？"}], stream=True
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == whole.choices[0].message.content and "中國西南" in text
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].model_extra["citations"] == whole.model_extra["citations"]


def test_openai_client_errors(server, openai_client) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        openai_client.chat.completions.create(
            model="nope", messages=[{"role": "user", "content": QUESTION}]
        )
    assert info.value.code == "model_not_found"
    with pytest.raises(openai.BadRequestError) as info:
        openai_client.chat.completions.create(
            model="default", messages=[{"role": "user", "content": " "}]
        )
    assert info.value.code == "empty_question"
    wrong = openai.OpenAI(base_url=server.base_url, api_key="not-the-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        wrong.models.list()
    with pytest.raises(openai.AuthenticationError):
        wrong.chat.completions.create(
            model="default", messages=[{"role": "user", "content": QUESTION}], stream=True
        )


def test_langchain_chat_openai_pointed_at_the_server(server) -> None:
    model = ChatOpenAI(base_url=server.base_url, api_key=API_KEY, model="default", max_retries=0)
    reply = model.invoke(QUESTION)
    assert "1889" in reply.content
    pieces = [chunk.content for chunk in model.stream(QUESTION)]
    assert "".join(pieces) == reply.content
    # A conversation: the follow-up is understood from the history.
    history = [("human", "Tell me about the Eiffel Tower."), ("ai", reply.content)]
    assert "1889" in model.invoke([*history, ("human", "When was it completed?")]).content


def big_text(paragraphs: int, seed: int) -> str:
    rng = random.Random(seed)
    words = ["lantern", "orchard", "copper", "violin", "glacier", "parcel", "quartz", "willow"]
    body = "\n\n".join(
        " ".join(rng.choice(words) for _ in range(40)) + "." for _ in range(paragraphs)
    )
    return f"Inventory report number {seed}.\n\n{body}"


def test_concurrent_requests_while_uploads_run(server, workspace_root) -> None:
    """24 requests at once while a large upload is ingested: each is answered or
    told "busy" with Retry-After; none fails, and every upload is stored in the end."""
    headers = {"Authorization": f"Bearer {API_KEY}"}
    http = httpx.Client(base_url=server.url, headers=headers, timeout=60)
    client = openai.OpenAI(base_url=server.base_url, api_key=API_KEY, max_retries=0, timeout=60)
    uploading = threading.Event()
    upload_window: list[float] = []

    def big_upload() -> httpx.Response:
        data = big_text(3000, seed=0).encode()
        uploading.set()
        started = time.monotonic()
        response = http.post("/v1/documents", files={"file": ("inventory-0.md", data)})
        upload_window[:] = [started, time.monotonic()]
        return response

    def small_upload(n: int) -> tuple[str, httpx.Response]:
        name = f"note-{n}.md"
        return name, http.post(
            "/v1/documents", files={"file": (name, f"Note {n}: the harbour opens at {n} am.")}
        )

    def ask(stream: bool) -> tuple[str, float]:
        messages = [{"role": "user", "content": QUESTION}]
        if stream:
            events = client.chat.completions.create(model="default", messages=messages, stream=True)
            text = "".join(c.choices[0].delta.content or "" for c in events)
        else:
            text = client.chat.completions.create(model="default", messages=messages)
            text = text.choices[0].message.content
        return text, time.monotonic()

    def search() -> tuple[str, float]:
        body = http.post("/v1/search", json={"query": "longest river", "model": "notes"})
        body.raise_for_status()
        return body.json()["data"][0]["file_name"], time.monotonic()

    with ThreadPoolExecutor(max_workers=25) as pool:
        upload_future = pool.submit(big_upload)
        assert uploading.wait(10)
        time.sleep(0.3)  # let the big upload take the knowledge base's lock
        small = [pool.submit(small_upload, n) for n in range(4)]
        answers = [pool.submit(ask, n % 2 == 0) for n in range(12)]
        searches = [pool.submit(search) for _ in range(8)]
        big = upload_future.result()
        small_results = [f.result() for f in small]
        answer_results = [f.result() for f in answers]
        search_results = [f.result() for f in searches]

    assert big.status_code == 201, big.text
    assert all("1889" in text for text, _ in answer_results)
    assert all(name == "rivers.md" for name, _ in search_results)
    started, finished = upload_window
    during = [t for _, t in answer_results + search_results if started < t < finished]
    assert during, "no question was answered while the upload ran"
    busy = []
    for name, response in small_results:
        if response.status_code == 503:
            assert response.headers["retry-after"] == "1"
            assert response.json()["error"]["code"] == "knowledge_base_busy"
            busy.append(name)
        else:
            assert response.status_code == 201, response.text
    assert busy, "the uploads behind the big one should have been told the KB was busy"
    for name in busy:  # what a client does with Retry-After
        response = http.post("/v1/documents", files={"file": (name, f"{name} retried.")})
        assert response.status_code == 201
    names = {d["file_name"] for d in http.get("/v1/documents").json()["data"]}
    assert names >= {"inventory-0.md", *(f"note-{n}.md" for n in range(4))}
    assert len(names) == 3 + 1 + 4
    assert check_integrity(workspace_root / "default").ok


def raw_request(server, data: bytes, *, read_after: float = 5.0) -> bytes:
    with socket.create_connection((server.host, server.port), timeout=read_after) as sock:
        # The server may answer and close before the whole body is sent.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(data)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except (TimeoutError, ConnectionResetError):
            pass
    return b"".join(chunks)


def status_of(raw: bytes) -> int:
    return int(raw.split(b" ", 2)[1])


def test_bad_input_gets_a_clear_status_and_the_server_keeps_serving(server) -> None:
    auth = f"Authorization: Bearer {API_KEY}\r\n".encode()
    # A body far over the limit, declared: refused before it is read.
    huge = 50 * 1024 * 1024
    raw = raw_request(
        server,
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + auth
        + b"Content-Type: application/json\r\nContent-Length: " + str(huge).encode()
        + b"\r\n\r\n" + b"{" * 100_000,
    )  # fmt: skip
    assert status_of(raw) == 413 and b"request_too_large" in raw
    # The same, chunked, with no length declared: cut off at the limit.
    piece = b"x" * 65536
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for _ in range(40))
    raw = raw_request(
        server,
        b"POST /v1/search HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + auth
        + b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked,
    )  # fmt: skip
    assert status_of(raw) == 413
    # Not HTTP at all, a bad Content-Length, malformed JSON, a wrong token.
    assert status_of(raw_request(server, b"HELLO\r\n\r\n")) == 400
    raw = raw_request(
        server,
        b"POST /v1/search HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        + auth
        + b"Content-Length: -5\r\n\r\n",
    )
    assert status_of(raw) == 400
    connection = http.client.HTTPConnection(server.host, server.port, timeout=10)
    for body, token, expected in (
        (b'{"query": ', API_KEY, 400),
        (json.dumps({"query": "tea"}).encode(), "wrong-token", 401),
        (json.dumps({"query": "tea"}).encode(), API_KEY, 200),
    ):
        connection.request(
            "POST",
            "/v1/search",
            body=body,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        response = connection.getresponse()
        payload = json.loads(response.read())
        assert response.status == expected, payload
        assert ("error" in payload) == (expected != 200)
    connection.close()
    # Still serving.
    client = openai.OpenAI(base_url=server.base_url, api_key=API_KEY, max_retries=0)
    reply = client.chat.completions.create(
        model="default", messages=[{"role": "user", "content": QUESTION}]
    )
    assert "1889" in reply.choices[0].message.content
