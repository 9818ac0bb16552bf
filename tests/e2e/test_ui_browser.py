"""The chat page in a real headless Chromium: upload a PDF, ask, see the answer and its source.

The app runs as ``streamlit run ui/app.py`` in a subprocess on a free loopback port,
with the real bundled embedding model and a data folder in ``tmp_path``. Screenshots
of every step are saved in ``tmp_path`` (the path is printed), to look at when a
step fails or the layout changes.

Chromium comes from Debian (``apt-get install chromium``), not from Playwright's
own download. Without it the test fails in CI (``CI`` set) and skips elsewhere.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]
FACT = "The lighthouse on Quillon Island was built in 1887 by the engineer Mara Velez."
QUESTION = "Who built the lighthouse on Quillon Island?"
# The bundled model loads on the first page view; give it time on a slow CI box.
SLOW_MS = 180_000


@pytest.fixture
def chromium() -> str:
    """Debian's Chromium; asked for before the app starts, so a skip costs nothing."""
    found = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
    if Path(found).is_file():
        return found
    message = "Debian's chromium is not installed (apt-get install chromium)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def screenshots(tmp_path: Path) -> Path:
    """Where a test saves its screenshots (printed, to look at when a step fails)."""
    shots = tmp_path / "screenshots"
    shots.mkdir()
    print(f"screenshots in {shots}")
    return shots


@contextlib.contextmanager
def launched(playwright: Any, chromium: str) -> Iterator[Any]:
    """Debian's Chromium, headless, closed however the test ends."""
    browser = playwright.chromium.launch(
        executable_path=chromium, headless=True, args=CHROMIUM_ARGS
    )
    try:
        yield browser
    finally:
        browser.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_pdf(path: Path) -> Path:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    pdf.add_page()
    pdf.multi_cell(
        0, 8, "Harbour notes. This first page describes the fishing fleet and the tides."
    )
    pdf.add_page()
    pdf.multi_cell(0, 8, "History of the island. " + FACT + " It still guides ships today.")
    pdf.output(str(path))
    return path


@pytest.fixture
def app_url(tmp_path: Path) -> Iterator[str]:
    """The app, started with .venv's streamlit and always stopped afterwards."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGQA_")}
    env["RAGQA_DATA_DIR"] = str(tmp_path / "data")
    log_path = tmp_path / "streamlit.log"
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        "ui/app.py",
        "--server.address=127.0.0.1",
        f"--server.port={port}",
        "--server.headless=true",
        "--browser.gatherUsageStats=false",
    ]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=log)
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:
                if process.poll() is not None:
                    pytest.fail(f"streamlit exited early:\n{log_path.read_text()}")
                try:
                    with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as reply:
                        if reply.read().strip() == b"ok":
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"streamlit did not come up:\n{log_path.read_text()}")
                time.sleep(0.3)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=15)
    log_text = log_path.read_text(errors="replace")
    assert "Traceback" not in log_text, log_text


def test_upload_ask_and_see_the_source_in_a_browser(chromium, app_url, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    pdf = make_pdf(tmp_path / "island-facts.pdf")
    shots = screenshots(tmp_path)

    with sync_playwright() as playwright, launched(playwright, chromium) as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000}, locale="en-US")
        page.goto(app_url)
        expect(page.get_by_role("heading", name="Ask your documents")).to_be_visible(
            timeout=SLOW_MS
        )
        expect(page.get_by_text("Knowledge base “default”: 0 documents")).to_be_visible(
            timeout=SLOW_MS
        )
        expect(page.get_by_test_id("stFileUploaderDropzone")).to_be_visible()
        expect(page.get_by_test_id("stChatInputTextArea")).to_be_visible()
        page.screenshot(path=shots / "1-start.png", full_page=True, animations="disabled")

        page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(pdf))
        sidebar = page.get_by_test_id("stSidebar")
        expect(sidebar.get_by_text("island-facts.pdf: added")).to_be_visible(timeout=SLOW_MS)
        expect(page.get_by_text("Knowledge base “default”: 1 document,")).to_be_visible()
        page.screenshot(path=shots / "2-ingested.png", full_page=True, animations="disabled")

        chat_input = page.get_by_test_id("stChatInputTextArea")
        chat_input.fill(QUESTION)
        chat_input.press("Enter")
        answer = page.get_by_test_id("stChatMessage").nth(1)
        expect(answer).to_contain_text("Mara Velez", timeout=SLOW_MS)
        expect(answer).to_contain_text("[1]")
        page.screenshot(path=shots / "3-answer.png", full_page=True, animations="disabled")

        answer.get_by_text("Sources (1)").click()
        source = answer.get_by_text("[1] island-facts.pdf, page 2")
        expect(source).to_be_visible()
        cited = answer.locator("mark.ragqa-cited")
        expect(cited.first).to_contain_text("Mara Velez")
        expect(cited.first).to_be_visible()
        expect(answer.get_by_test_id("stExpanderDetails")).to_be_visible()
        page.screenshot(path=shots / "4-sources.png", full_page=True, animations="disabled")

        # No traceback or exception box anywhere on the page.
        expect(page.get_by_test_id("stException")).to_have_count(0)
        assert "Traceback" not in page.content()

        # A browser that prefers Chinese gets the Chinese page by default.
        zh = browser.new_page(viewport={"width": 1400, "height": 1000}, locale="zh-TW")
        zh.goto(app_url)
        expect(zh.get_by_role("heading", name="向文件提問")).to_be_visible(timeout=SLOW_MS)
        expect(zh.get_by_text("知識庫「default」：1 份文件")).to_be_visible()
        expect(zh.get_by_test_id("stChatInputTextArea")).to_have_attribute(
            "placeholder", "針對文件提出問題"
        )
        zh.screenshot(path=shots / "5-chinese.png", full_page=True, animations="disabled")


def test_a_question_about_real_notes_shows_the_fact_and_its_highlight(
    chromium, app_url, shared_data, tmp_path
):
    """The real study notes, a question in the user's own words: the answer carries
    the key fact, and the highlight in the source marks that item, not the chunk."""
    from playwright.sync_api import expect, sync_playwright

    notes = shared_data / "notes" / "llm-application-paradigms.txt"
    shots = screenshots(tmp_path)
    with sync_playwright() as playwright, launched(playwright, chromium) as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000}, locale="en-US")
        page.goto(app_url)
        expect(page.get_by_test_id("stFileUploaderDropzone")).to_be_visible(timeout=SLOW_MS)
        page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(notes))
        sidebar = page.get_by_test_id("stSidebar")
        # The ingest's own message, not the uploader's list of the file.
        expect(sidebar.get_by_text("llm-application-paradigms.txt: added")).to_be_visible(
            timeout=SLOW_MS
        )
        chat_input = page.get_by_test_id("stChatInputTextArea")
        chat_input.fill("LLM 不会用工具怎么办？")
        chat_input.press("Enter")
        answer = page.get_by_test_id("stChatMessage").nth(1)
        expect(answer).to_contain_text("函数调用", timeout=SLOW_MS)
        answer.get_by_test_id("stExpander").first.locator("summary").click()
        cited = answer.locator("mark.ragqa-cited")
        expect(cited.first).to_be_visible()
        expect(cited.first).to_contain_text("函数调用")
        # The mark is the table row the answer quotes, not the whole chunk.
        marked = cited.first.inner_text()
        assert len(marked) < 80, marked
        page.screenshot(path=shots / "notes-answer.png", full_page=True, animations="disabled")
        expect(page.get_by_test_id("stException")).to_have_count(0)
