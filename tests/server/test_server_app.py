"""The routes through FastAPI's test client: shapes, answers and every error status."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ragqa import KnowledgeBase
from ragqa.server import ServerConfig
from ragqa.server.documents import document_id


def error_of(response) -> dict:
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]


def chat(client, question: str, model: str = "default", **extra):
    messages = [{"role": "user", "content": question}]
    return client.post("/v1/chat/completions", json={"model": model, "messages": messages, **extra})


# ------------------------------------------------------------------ reading


def test_healthz_and_models(client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    models = client.get("/v1/models").json()
    assert models["object"] == "list"
    assert [m["id"] for m in models["data"]] == ["default", "notes"]
    assert all(m["object"] == "model" and m["created"] > 0 for m in models["data"])
    assert client.get("/v1/models/notes").json()["id"] == "notes"
    assert error_of(client.get("/v1/models/missing"))["code"] == "model_not_found"


def test_chat_completion_answers_with_citations(client) -> None:
    response = chat(client, "When was the Eiffel Tower completed?", temperature=0.2, top_p=1)
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "chat.completion" and body["model"] == "default"
    assert body["id"].startswith("chatcmpl-")
    [choice] = body["choices"]
    assert choice["finish_reason"] == "stop"
    assert choice["message"]["role"] == "assistant"
    assert "1889" in choice["message"]["content"]
    [citation] = body["citations"]
    assert citation["number"] == 1 and "[1]" in choice["message"]["content"]
    assert (citation["file_name"], citation["page"]) == ("paris.md", 1)
    assert citation["text"].startswith("The Eiffel Tower is in Paris.")


def test_chat_uses_the_conversation_and_the_configured_answerer(make_app) -> None:
    app = make_app(llm="fake", llm_model="Completed in 1889 [1][7].")
    with TestClient(app) as client:
        messages = [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Tell me about the Eiffel Tower."},
            {"role": "assistant", "content": "It is in Paris [1]."},
            {"role": "user", "content": [{"type": "text", "text": "When was it completed?"}]},
        ]
        body = client.post(
            "/v1/chat/completions", json={"model": "default", "messages": messages}
        ).json()
    # The fake model's reply, with the marker that points at no passage removed.
    assert body["choices"][0]["message"]["content"] == "Completed in 1889 [1]."
    assert len(body["citations"]) == 1


def test_request_options_and_usage_reach_the_language_model(make_app) -> None:
    app = make_app(llm="fake", llm_model="The tower was completed in 1889 [1].")
    question = [{"role": "user", "content": "When was the Eiffel Tower completed?"}]
    with TestClient(app) as client:
        whole = client.post(
            "/v1/chat/completions", json={"model": "default", "messages": question}
        ).json()
        # The fake model stops after max_tokens words, as a real one after its tokens;
        # the smaller of the two caps OpenAI clients send wins.
        capped = client.post(
            "/v1/chat/completions",
            json={
                "model": "default",
                "messages": question,
                "max_tokens": 9,
                "max_completion_tokens": 3,
                "temperature": 0.5,
            },
        ).json()
        refused = client.post(
            "/v1/chat/completions",
            json={"model": "default", "messages": question, "temperature": 3},
        )
        streamed = client.post(
            "/v1/chat/completions",
            json={
                "model": "default",
                "messages": question,
                "stream": True,
                "stream_options": {"include_usage": True},
            },
        ).text
    assert whole["choices"][0]["message"]["content"] == "The tower was completed in 1889 [1]."
    assert capped["choices"][0]["message"]["content"] == "The tower was"
    usage = whole["usage"]
    assert usage["prompt_tokens"] > 50 and usage["completion_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert capped["usage"]["completion_tokens"] < usage["completion_tokens"]
    assert refused.status_code == 400 and "temperature" in refused.text

    events = [json.loads(e[6:]) for e in streamed.split("\n\n") if e.startswith("data: {")]
    *answer, last = events
    assert last["choices"] == [] and last["usage"] == usage  # as OpenAI ends such a stream
    assert all("usage" not in event for event in answer)


def test_the_extractive_answerer_reports_no_model_tokens(client) -> None:
    body = chat(client, "When was the Eiffel Tower completed?", max_tokens=1).json()
    assert "1889" in body["choices"][0]["message"]["content"]  # no model: no cap either
    assert body["usage"] == {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}


def test_streamed_answer_is_server_sent_events(client) -> None:
    with client.stream(
        "POST",
        "/v1/chat/completions",
        json={
            "model": "default",
            "stream": True,
            "messages": [{"role": "user", "content": "茶起源於哪裡？"}],
        },
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line]
    assert all(line.startswith("data: ") for line in lines)
    assert lines[-1] == "data: [DONE]"
    events = [json.loads(line[len("data: ") :]) for line in lines[:-1]]
    assert events[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert all(e["object"] == "chat.completion.chunk" for e in events)
    assert len({e["id"] for e in events}) == 1
    text = "".join(e["choices"][0]["delta"].get("content", "") for e in events)
    assert "中國西南" in text
    last = events[-1]
    assert last["choices"][0]["finish_reason"] == "stop"
    assert [c["file_name"] for c in last["citations"]] == ["tea.md"]
    assert all("citations" not in e for e in events[:-1])


def test_search_returns_hits_like_the_cli(client) -> None:
    body = client.post("/v1/search", json={"query": "hottest planet", "k": 2}).json()
    assert body["model"] == "default"
    top = body["data"][0]
    assert top["rank"] == 1 and top["file_name"] == "planets.md"
    assert set(top) == {
        "rank", "score", "source", "file_name", "page", "start", "end", "chunk_id",
        "heading", "text",
    }  # fmt: skip
    other = client.post("/v1/search", json={"query": "Nile", "model": "notes"}).json()
    assert [h["file_name"] for h in other["data"]] == ["rivers.md"]
    lexical = client.post("/v1/search", json={"query": "tea", "mode": "lexical"}).json()
    assert lexical["data"][0]["file_name"] == "tea.md"


# ------------------------------------------------------------------ errors


def test_unknown_knowledge_base_is_404(client) -> None:
    for response in (
        chat(client, "Where is the Eiffel Tower?", model="nope"),
        client.post("/v1/search", json={"query": "x", "model": "nope"}),
        client.get("/v1/documents", params={"model": "../default"}),
    ):
        assert response.status_code == 404
        error = error_of(response)
        assert error["code"] == "model_not_found" and error["param"] == "model"
        assert error["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    "messages",
    [
        [{"role": "user", "content": "   "}],
        [{"role": "user", "content": [{"type": "text", "text": ""}]}],
        [{"role": "user", "content": None}],
    ],
)
def test_empty_question_is_400(client, messages) -> None:
    response = client.post("/v1/chat/completions", json={"model": "default", "messages": messages})
    assert response.status_code == 400
    assert error_of(response)["code"] == "empty_question"


def test_bad_requests_are_400_with_the_field(client) -> None:
    cases = {
        "no messages": {"model": "default", "messages": []},
        "no model": {"messages": [{"role": "user", "content": "hi"}]},
        "assistant last": {
            "model": "default",
            "messages": [{"role": "assistant", "content": "hi"}],
        },
        "stream not bool": {
            "model": "default",
            "stream": "sometimes",
            "messages": [{"role": "user", "content": "hi"}],
        },
    }
    for label, body in cases.items():
        response = client.post("/v1/chat/completions", json=body)
        assert response.status_code == 400, label
        assert error_of(response)["param"] in ("messages", "model", "stream"), label
    response = client.post("/v1/search", json={"query": "x", "k": 0})
    assert (response.status_code, error_of(response)["param"]) == (400, "k")
    response = client.post("/v1/search", json={"query": " "})
    assert (response.status_code, error_of(response)["code"]) == (400, "empty_question")


def test_malformed_json_is_400(client) -> None:
    for body in (b'{"model": "default", "messages": [', b"\xff\xfe", b"[]", b"null"):
        response = client.post(
            "/v1/chat/completions", content=body, headers={"content-type": "application/json"}
        )
        assert response.status_code == 400, body
        assert error_of(response)["type"] == "invalid_request_error"
    response = client.post(
        "/v1/chat/completions", content=b"{", headers={"content-type": "application/json"}
    )
    assert error_of(response)["code"] == "invalid_json"


def test_huge_json_body_is_413_before_it_is_read(make_app) -> None:
    with TestClient(make_app(ServerConfig(max_json_bytes=10_000))) as client:
        big = {"model": "default", "messages": [{"role": "user", "content": "x" * 20_000}]}
        response = client.post("/v1/chat/completions", json=big)
        assert response.status_code == 413
        assert error_of(response)["code"] == "request_too_large"

        # Without a Content-Length the body is counted as it arrives.
        def chunks():
            yield b'{"query": "'
            for _ in range(20):
                yield b"y" * 1000
            yield b'"}'

        response = client.post(
            "/v1/search", content=chunks(), headers={"content-type": "application/json"}
        )
        assert response.status_code == 413
        assert chat(client, "Where is the Eiffel Tower?").status_code == 200


def test_unknown_route_and_method_are_openai_errors(client) -> None:
    assert error_of(client.get("/v1/nothing"))["code"] == "not_found"
    response = client.put("/v1/search", json={})
    assert response.status_code == 405
    assert error_of(response)["code"] == "method_not_allowed"


def test_a_failing_language_model_is_502(make_app) -> None:
    with socket.socket() as sock:  # a port that nothing listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    app = make_app(
        llm="openai",
        llm_model="any",
        llm_base_url=f"http://127.0.0.1:{port}/v1",
        llm_max_retries=0,
        llm_timeout=5,
    )
    with TestClient(app) as client:
        for stream in (False, True):
            response = chat(client, "Where is the Eiffel Tower?", stream=stream)
            assert response.status_code == 502, stream
            error = error_of(response)
            assert error["code"] == "llm_error" and error["type"] == "server_error"
            assert "cannot reach" in error["message"]


# --------------------------------------------------------------- documents


def upload(client, name: str, data: bytes, **fields):
    return client.post("/v1/documents", files={"file": (name, data)}, data=fields)


def raw_upload(client, file_name: bytes, data: bytes):
    """An upload whose multipart body carries ``file_name`` byte for byte (an HTTP
    library would escape a NUL or a quote; an attacker's client need not)."""
    body = (
        b'--BOUNDARY\r\nContent-Disposition: form-data; name="file"; filename="'
        + file_name
        + b'"\r\nContent-Type: application/octet-stream\r\n\r\n'
        + data
        + b"\r\n--BOUNDARY--\r\n"
    )
    headers = {"content-type": "multipart/form-data; boundary=BOUNDARY"}
    return client.post("/v1/documents", content=body, headers=headers)


def uploads_dir(workspace_root: Path, kb: str = "default") -> Path:
    return workspace_root / kb / "uploads"


def test_upload_list_search_and_delete(client, workspace_root) -> None:
    text = b"The Amazon rainforest produces a fifth of the world's oxygen."
    response = upload(client, "amazon.md", text)
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "added" and body["model"] == "default"
    document = body["document"]
    assert document["file_name"] == "amazon.md" and document["chunks"] == 1
    assert Path(document["source"]) == uploads_dir(workspace_root) / "amazon.md"
    assert document["id"] == document_id(document["source"])

    listed = client.get("/v1/documents").json()["data"]
    assert document in listed and len(listed) == 4
    hits = client.post("/v1/search", json={"query": "rainforest oxygen"}).json()["data"]
    assert hits[0]["file_name"] == "amazon.md"

    again = upload(client, "copy-of-amazon.md", text)
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    assert again.json()["document"]["id"] == document["id"]

    changed = upload(client, "amazon.md", text + b" It spans nine countries.")
    assert changed.status_code == 201 and changed.json()["status"] == "replaced"

    deleted = client.delete(f"/v1/documents/{document['id']}")
    assert deleted.json() == {"id": document["id"], "object": "document", "deleted": True}
    assert not (uploads_dir(workspace_root) / "amazon.md").exists()
    assert len(client.get("/v1/documents").json()["data"]) == 3
    missing = client.delete(f"/v1/documents/{document['id']}")
    assert missing.status_code == 404
    assert error_of(missing)["code"] == "document_not_found"


def test_uploads_are_named_as_uploaded_everywhere(client, workspace_root) -> None:
    # "季報 2024.md" is stored as 季報_2024.md (no spaces on disk), and the API
    # shows the uploaded name in the listing, the search hits and the citations.
    shown = "季報 2024.md"
    text = b"The harbour toll was raised to 42 florins in 1795."
    document = upload(client, shown, text).json()["document"]
    assert document["file_name"] == shown
    assert Path(document["source"]).name == "季報_2024.md"

    listed = {d["id"]: d["file_name"] for d in client.get("/v1/documents").json()["data"]}
    assert listed[document["id"]] == shown
    hits = client.post("/v1/search", json={"query": "harbour toll florins"}).json()["data"]
    assert hits[0]["file_name"] == shown
    answer = chat(client, "How much was the harbour toll raised to?").json()
    assert "42" in answer["choices"][0]["message"]["content"]
    assert answer["citations"][0]["file_name"] == shown
    streamed = client.post(
        "/v1/chat/completions",
        json={
            "model": "default",
            "stream": True,
            "messages": [{"role": "user", "content": "How much was the harbour toll raised to?"}],
        },
    ).text
    events = [json.loads(e[6:]) for e in streamed.split("\n\n") if e.startswith("data: {")]
    [last] = [event for event in events if "citations" in event]
    assert last["citations"][0]["file_name"] == shown

    # A second, different file of the same safe name is stored apart, not over it.
    other = upload(client, "季報_2024.md", b"The bridge toll stayed at 3 florins.").json()
    assert other["document"]["file_name"] == "季報_2024.md"
    assert other["document"]["id"] != document["id"]
    assert len(client.get("/v1/documents").json()["data"]) == 5


def test_upload_to_another_knowledge_base(client) -> None:
    response = upload(client, "lakes.txt", b"Lake Baikal is the deepest lake.", model="notes")
    assert response.status_code == 201 and response.json()["model"] == "notes"
    names = [d["file_name"] for d in client.get("/v1/documents?model=notes").json()["data"]]
    assert sorted(names) == ["lakes.txt", "rivers.md"]
    assert upload(client, "x.md", b"text", model="nope").status_code == 404


@pytest.mark.parametrize(
    ("name", "data", "status", "code"),
    [
        ("script.sh", b"echo hi", 415, "unsupported"),
        ("fake.pdf", b"just text", 415, "not_pdf"),
        ("binary.md", bytes(range(256)) * 4, 415, "not_text"),
        ("empty.txt", b"  \n", 400, "empty"),
        ("blank.pdf", b"%PDF-1.4 not really a pdf", 422, None),
    ],
)
def test_refused_uploads_say_why(client, workspace_root, name, data, status, code) -> None:
    response = upload(client, name, data)
    assert response.status_code == status
    error = error_of(response)
    assert error["param"] == "file"
    if code:
        assert error["code"] == code
    assert name.split(".")[0] in error["message"]
    # Nothing refused is left behind.
    uploads = uploads_dir(workspace_root)
    assert not uploads.exists() or not any(uploads.iterdir())
    assert len(client.get("/v1/documents").json()["data"]) == 3


def test_file_too_large_is_413(make_app, workspace_root) -> None:
    # max_file_mb is the UI's own limit (Settings), used by the same Workspace code.
    with TestClient(make_app(max_file_mb=0.01)) as client:
        limit = int(0.01 * 1024 * 1024)
        within_body_limit = b"a " * (limit // 2 + 100)  # over the file limit, not the body's
        response = upload(client, "big.txt", within_body_limit)
        assert response.status_code == 413
        assert error_of(response)["code"] == "file_too_large"
        assert "too large" in error_of(response)["message"]
        response = upload(client, "huge.txt", b"a " * (limit * 20))
        assert response.status_code == 413
        assert error_of(response)["code"] == "request_too_large"
        assert upload(client, "small.txt", b"A small file.").status_code == 201
    assert [p.name for p in uploads_dir(workspace_root).iterdir()] == ["small.txt"]


@pytest.mark.parametrize(
    ("raw_name", "saved"),  # saved: the extension kept, or None: refused
    [
        ("../../../escape.md", ".md"),
        ("/etc/cron.d/evil.md", ".md"),
        ("..\\..\\windows.md", ".md"),
        ("nul\x00byte.md", ".md"),
        ("evil.md\x00.pdf", None),  # named .pdf, so refused: it is not a PDF
        (".hidden.md", ".md"),
        ("C:\\Users\\me\\季報 2024.MD", ".md"),
        ("..", None),
        ("", None),
    ],
)
def test_path_tricks_in_file_names_stay_inside_uploads(
    client, workspace_root, tmp_path, raw_name, saved
) -> None:
    response = raw_upload(client, raw_name.encode(), f"Text uploaded as {raw_name!r}.".encode())
    if saved is None:
        assert response.status_code in (400, 415), response.text
    else:
        assert response.status_code == 201, response.text
        source = Path(response.json()["document"]["source"])
        # Saved by the UI's own code (Workspace.save_uploads), inside the uploads folder.
        assert source.parent == uploads_dir(workspace_root)
        assert source.is_file() and source.suffix == saved
        assert not any(c in source.name for c in "\x00/\\") and not source.name.startswith(".")
    inside = {p.resolve() for p in workspace_root.rglob("*")}
    outside = {p.resolve() for p in tmp_path.rglob("*")} - inside
    assert not [p for p in outside if p.suffix == ".md" and "docs" not in p.parts]
    assert client.get("/healthz").status_code == 200


def test_upload_without_a_file_is_400(client) -> None:
    for response in (
        client.post("/v1/documents", data={"model": "default"}),
        client.post("/v1/documents", json={"file": "x"}),
        client.post("/v1/documents", files={"document": ("a.md", b"x")}),
    ):
        assert response.status_code == 400
        assert error_of(response)["code"] == "missing_file"
    two = client.post(
        "/v1/documents", files=[("file", ("a.md", b"one")), ("file", ("b.md", b"two"))]
    )
    assert two.status_code == 400


def test_busy_knowledge_base_is_503_with_retry_after(client, workspace_root, settings) -> None:
    with KnowledgeBase.open(workspace_root / "default", settings=settings) as other:
        doc = client.get("/v1/documents").json()["data"][0]
        with other.store.writing(30):  # another writer holds the lock
            responses = [
                upload(client, "waiting.md", b"This upload finds the knowledge base busy."),
                client.delete(f"/v1/documents/{doc['id']}"),
            ]
            for response in responses:
                assert response.status_code == 503
                assert response.headers["retry-after"] == "1"
                error = error_of(response)
                assert error["code"] == "knowledge_base_busy"
                assert str(workspace_root) not in error["message"]
            # Readers take no lock: questions are answered meanwhile.
            assert chat(client, "Where is the Eiffel Tower?").status_code == 200
    # Nothing of the refused upload stays; once free, the same requests succeed.
    assert not (uploads_dir(workspace_root) / "waiting.md").exists()
    assert upload(client, "waiting.md", b"This upload finds it free.").status_code == 201
    assert client.delete(f"/v1/documents/{doc['id']}").status_code == 200


def test_unexpected_errors_are_500_without_details(make_app, monkeypatch) -> None:
    app = make_app()
    from ragqa.server.registry import KnowledgeBases

    def broken(self, name):
        raise RuntimeError("/secret/path exploded")

    monkeypatch.setattr(KnowledgeBases, "get", broken)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.post("/v1/search", json={"query": "x"})
    assert response.status_code == 500
    assert error_of(response) == {
        "message": "internal server error",
        "type": "server_error",
        "param": None,
        "code": "internal_error",
    }
